"""A token goes only to the platform it is bound to, whatever URL a workbook names.

The attack: a workbook received by email whose Settings name another server (here a real
listening server on 127.0.0.1 that records every request's headers). With ROSTERBOOK_TOKEN set
for the real platform, preview, sync and export of that workbook (CLI and ribbon) send that
server no token: they are refused before anything is sent, with a message saying how to sign in
there. A token stored in the keyring for one URL never goes to another either.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
import pytest
from support.hostile import HostileServer
from support.memkeyring import memory_keyring
from support.ribbonui import RecordingUI

from addin import ribbon
from rosterbook import app
from rosterbook import workbook as wbk
from rosterbook.cli import run
from rosterbook.sandbox import Sandbox
from rosterbook.xlsx import OpenpyxlBook
from sync_client.auth import store_token
from sync_client.errors import TokenNotBound


@dataclass
class Setup:
    token: str
    platform: Sandbox
    """The real platform (requires the token)."""
    book: Path
    """A workbook exported from it, then edited (3 titles) and pointed at ``other``."""
    other: HostileServer
    """Another loopback server (in front of a tokenless sandbox), recording every request's headers."""
    outputs: list[str] = field(default_factory=list)


@pytest.fixture
def setup(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> Iterator[Setup]:
    token = "rbtok-" + secrets.token_hex(20)
    monkeypatch.setenv("ROSTERBOOK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ROSTERBOOK_TOKEN", token)
    monkeypatch.delenv("ROSTERBOOK_PLATFORM", raising=False)
    platform = fresh_sandbox(users=12, seed=2, token=token)
    decoy = fresh_sandbox(users=12, seed=2)  # tokenless: anything sent there would be answered
    book = tmp_path / "received.xlsx"
    assert run(["export", str(book), "--platform", platform.url]) == 0  # --platform names it: the token may go there
    wb = openpyxl.load_workbook(book)
    ws = wb[wbk.USERS]
    col = {str(c.value): c.column for c in ws[1] if c.value is not None}
    for r in (2, 3, 4):
        ws.cell(r, col["Job title"]).value = f"Edited {r}"
    with HostileServer(decoy.url, "pass") as other:
        settings = wb[wbk.SETTINGS]
        row = next(r for r in range(1, settings.max_row + 1) if settings.cell(r, 1).value == "platform_url")
        settings.cell(row, 2).value = other.url  # what an attacker sets in the workbook they send
        wb.save(book)
        capsys.readouterr()
        yield Setup(token, platform, book, other)


def _cli(setup: Setup, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = run(list(args))
    captured = capsys.readouterr()
    text = captured.out + captured.err
    setup.outputs.append(text)
    return code, text


def _refusal(url: str) -> str:
    return (rf"ROSTERBOOK_TOKEN is bound to no platform: it is only sent to the URL named by ROSTERBOOK_PLATFORM or --platform\. "
            rf"Nothing was sent to {re.escape(url)}\. To sign in for {re.escape(url)}, run 'rosterbook login {re.escape(url)}'")


@pytest.mark.parametrize("command", ["preview", "sync"])
def test_a_workbook_naming_another_server_gets_no_token(setup: Setup, capsys: pytest.CaptureFixture[str], command: str) -> None:
    args = [command, str(setup.book)] + (["--yes"] if command == "sync" else [])
    code, text = _cli(setup, capsys, *args)
    assert code == 2 and re.search(_refusal(setup.other.url), text), text
    assert "Traceback" not in text and setup.token[:16] not in text
    assert setup.other.seen == []  # refused before anything was sent: no token, no user data
    # The same with ROSTERBOOK_PLATFORM naming the real platform: still not sent elsewhere.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROSTERBOOK_PLATFORM", setup.platform.url)
        code, text = _cli(setup, capsys, *args)
    assert code == 2 and f"ROSTERBOOK_TOKEN is bound to {setup.platform.url}, not to {setup.other.url}. Nothing was sent" in text
    assert setup.other.seen == []


def test_export_as_the_ribbon_runs_it_gets_no_token(setup: Setup, tmp_path: Path) -> None:
    """The ribbon exports from the URL in the workbook's Settings: that URL never chooses where the token goes."""
    with pytest.raises(TokenNotBound, match=_refusal(setup.other.url)):
        app.export_workbook(tmp_path / "fresh.xlsx", platform=setup.other.url)
    # The add-in asks before it first connects to a URL no token is bound to: no, and nothing is sent.
    no = RecordingUI(answers=[False])
    outcome = ribbon.dispatch("export", OpenpyxlBook(setup.book), no)
    assert not outcome.ok and outcome.message.startswith(f"Nothing was sent: rosterbook did not connect to {setup.other.url}.")
    assert len(no.questions) == 1 and f"Connect to {setup.other.url} without a token?" in no.questions[0]
    # Yes: still no token for it; refused before anything is sent, in Excel's words.
    yes = RecordingUI(answers=[True])
    outcome = ribbon.dispatch("export", OpenpyxlBook(setup.book), yes)
    assert not outcome.ok and "Nothing was sent to" in outcome.message
    assert f"To sign in for {setup.other.url}, press Sign in on the rosterbook tab" in outcome.message
    assert setup.other.seen == []


def test_the_named_platform_gets_the_token_and_nothing_else_does(setup: Setup, capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Control: the recording server does see a token once its owner names it (so the checks above can fail)."""
    monkeypatch.setenv("ROSTERBOOK_PLATFORM", setup.other.url)
    code, text = _cli(setup, capsys, "preview", str(setup.book))
    assert code == 0, text
    assert setup.other.tokens_seen() and set(setup.other.tokens_seen()) == {f"Bearer {setup.token}"}
    # --platform on the command line names a platform too (for this command only).
    monkeypatch.delenv("ROSTERBOOK_PLATFORM")
    before = len(setup.other.seen)
    code, text = _cli(setup, capsys, "export", str(setup.book.with_name("named.xlsx")), "--platform", setup.other.url)
    assert code == 0, text
    assert len(setup.other.seen) > before and all("Authorization" in s.headers for s in setup.other.seen[before:])


def test_a_keyring_token_goes_only_to_its_own_url(setup: Setup, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with memory_keyring():
        monkeypatch.delenv("ROSTERBOOK_TOKEN")
        store_token(setup.platform.url + "/", setup.token)  # rosterbook login URL
        code, text = _cli(setup, capsys, "preview", str(setup.book))  # the workbook names the other server
        assert code == 0, text  # it needs no token, and gets none
        assert setup.other.seen and setup.other.tokens_seen() == []
        exported = setup.book.with_name("own.xlsx")
        code, text = _cli(setup, capsys, "export", str(exported), "--platform", setup.platform.url.replace("http://", "HTTP://") + "/")
        assert code == 0, text  # the stored token reached its own platform (URL compared normalised)


def test_the_embedded_sandbox_needs_no_token(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """With ROSTERBOOK_TOKEN set and no platform named, the embedded sandbox still works: it is given no token."""
    monkeypatch.setenv("ROSTERBOOK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ROSTERBOOK_TOKEN", "rbtok-" + secrets.token_hex(8))
    monkeypatch.delenv("ROSTERBOOK_PLATFORM", raising=False)
    assert run(["export", str(tmp_path / "demo.xlsx")]) == 0
    assert run(["preview", str(tmp_path / "demo.xlsx")]) == 0
    assert "Traceback" not in capsys.readouterr().err
