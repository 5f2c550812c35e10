"""A hostile or broken platform is a clear error, bounded in time and memory, and never gets or leaks the token.

Each case runs the real CLI (``rosterbook.cli.run``) against a real misbehaving SCIM server on
127.0.0.1 (``tests/support/hostile.py``, in front of a sandbox) and checks: the exit code, the
message (naming the URL and what was wrong), no traceback, the command ended (a hang is caught by
a generous bound, the client's own limits are set short), and the token is in no output and no
file. ``./rb test`` prints how many misbehaviours passed under "rosterbook summaries".
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from support.hostile import HostileServer, Recorder

from rosterbook import workbook as wbk
from rosterbook.cli import run
from rosterbook.sandbox import Sandbox

HOSTILE_PROPERTY = "rosterbook_hostile"
"""tests/conftest.py counts the passed cases recording this in the summary."""

HANG = 30.0
"""A command still running after this many seconds is hung (the client's own limits below are far shorter)."""
LIMITS = {"ROSTERBOOK_CONNECT_TIMEOUT": "2", "ROSTERBOOK_READ_TIMEOUT": "0.5", "ROSTERBOOK_DEADLINE": "3"}


@dataclass(frozen=True)
class Case:
    """One misbehaviour: what the platform does, which command meets it, and how it must end."""

    behaviour: str
    command: str
    """``export`` (a fresh export), ``sync`` (export through a well-behaved platform, edit, then sync), ``preview``."""
    exit: int
    message: str
    """A regex the command's output must match."""
    env: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    then_preview_unchanged: bool = False
    """Run preview after the export: nothing may look edited (no phantom edit)."""

    @property
    def id(self) -> str:
        return self.behaviour + (f"-{self.env_id}" if self.env_id else "")

    @property
    def env_id(self) -> str:
        return "max-1mb" if "ROSTERBOOK_MAX_RESPONSE_MB" in self.env else ""


URL = r"http://127\.0\.0\.1:\d+/v2"
SHORT = {"ROSTERBOOK_DEADLINE": "1", "ROSTERBOOK_READ_TIMEOUT": "0.3"}

CASES = [
    Case("ignore-start-index", "export", 1, rf"GET {URL}/(Users|Groups)\?startIndex=6 answered with startIndex=1: the platform ignores startIndex"),
    Case("repeat-page", "export", 1, rf"GET {URL}/(Users|Groups)\?startIndex=6 listed only (users|groups) already listed on earlier pages"),
    Case("huge-total", "export", 1, rf"GET {URL}/(Users|Groups) said totalResults=1,000,000,000,000, but its pages ended after \d+ (users|groups)"),
    Case("html-login", "export", 1, rf"GET {URL}/ServiceProviderConfig answered 200 with content type 'text/html; charset=utf-8', not SCIM JSON"),
    Case("not-json", "export", 1, rf"GET {URL}/ServiceProviderConfig answered 200 with a body that is not valid JSON "
                                  r"\(content type 'application/scim\+json', 24 bytes: Expecting value at line 1 column 1\)"),
    Case("truncated-json", "export", 1, rf"GET {URL}/ServiceProviderConfig answered 200 with a body that is not valid JSON"),
    Case("cut-connection", "export", 1, r"the answer was cut short \(ChunkedEncodingError\) on GET /ServiceProviderConfig", env=SHORT),
    Case("drip", "export", 1, rf"gave up on {URL}: the 1 s allowed .*\(ROSTERBOOK_DEADLINE\) passed; last problem: no complete answer within "
                              r"0.3 s \(ROSTERBOOK_READ_TIMEOUT\) on GET /ServiceProviderConfig", env=SHORT),
    Case("slow-headers", "export", 1, r"no complete answer within 0.3 s \(ROSTERBOOK_READ_TIMEOUT\) on GET /ServiceProviderConfig", env=SHORT),
    Case("unavailable", "export", 1, rf"(GET {URL}/ServiceProviderConfig answered 503: down for maintenance|gave up on {URL}.*503 on GET)", env=SHORT),
    Case("lone-surrogate", "export", 0, r"Warning: Users!\w+2 Job title: the platform sent characters a workbook cannot hold", then_preview_unchanged=True),
    Case("invalid-utf8", "export", 0, r"Warning: Users!\w+2 Last name: the platform sent text that is not valid Unicode", then_preview_unchanged=True),
    Case("no-schemas", "export", 0, rf"Warning: {URL}/Schemas is missing \(404\): assumed the RFC 7643 core User and enterprise extension schemas"),
    Case("bad-config", "export", 0, rf"Warning: {URL}/ServiceProviderConfig is not a valid SCIM ServiceProviderConfig"),
    Case("duplicate-ids", "export", 0, rf"Warning: {URL}/Users: the platform listed \d+ users more than once across pages; each was kept once"),
    Case("unknown-members", "export", 0, rf"Warning: {URL}/Groups: 1 group\(s\) list members that are not users on the platform, ignored"),
    Case("huge-user", "export", 0, r"Warning: Users!\w+2 Job title: the platform's text is 10,000,000 characters", then_preview_unchanged=True),
    Case("huge-user", "export", 1, rf"GET {URL}/Users\?startIndex=1&count=5 answered 200 with 10,[0-9,]+ bytes, more than the 1 MB allowed "
                                         r"\(ROSTERBOOK_MAX_RESPONSE_MB\); refused",
         env={"ROSTERBOOK_MAX_RESPONSE_MB": "1"}),
    Case("resource-without-id", "export", 1, rf"GET {URL}/Users\?startIndex=1&count=5 listed a resource without an id"),
    Case("wrong-shape", "export", 1, rf"GET {URL}/Users\?startIndex=1&count=5 answered a JSON list, not a SCIM ListResponse object"),
    Case("redirect-reads", "export", 1, rf"GET {URL}/Users\?startIndex=1&count=5 was redirected \(302\) to another origin, http://127\.0\.0\.1:\d+; "
                                        r"rosterbook follows redirects only within http://127\.0\.0\.1:\d+"),
    Case("echo-token-in-data", "export", 0, r"Exported 12 users"),
    Case("unauthorized-mid-sync", "sync", 1, rf"the platform refused the token \(401\) on PATCH /Users/\S+\. To sign in for {URL}, "
                                             rf"run 'rosterbook login {URL}', or set ROSTERBOOK_PLATFORM={URL} together with its token",
         options={"no_bulk": True, "writes_allowed": 1}),
    Case("redirect-writes", "sync", 1, r"was redirected \(307\) to http://127\.0\.0\.1:\d+; rosterbook never follows a redirect with a change"),
    Case("echo-authorization", "sync", 1, r"the platform refused the values: invalid request; the request headers were Authorization: \[redacted\]"),
    Case("html-on-writes", "sync", 1, r"answered 200 with content type 'text/html; charset=utf-8', not SCIM JSON; whether the change was applied is unknown"),
]


def _artefacts(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, and every member of each zip (.xlsx) separately."""
    out: dict[str, bytes] = {}
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            out[str(path)] = data
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as archive:
                    out.update({f"{path}!{name}": archive.read(name) for name in archive.namelist()})
    return out


def leaks(secret: str, texts: list[str], folder: Path) -> list[str]:
    """Where ``secret`` (or its first 16 characters, or its UTF-16 form) appears: outputs by index, files by path."""
    needles = [secret.encode(), secret[:16].encode(), secret.encode("utf-16-le")]
    found = [f"output {i}" for i, text in enumerate(texts) if secret[:16] in text]
    return found + [name for name, data in _artefacts(folder).items() if any(n in data for n in needles)]


@dataclass
class Ran:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


class Cli:
    """Runs the real CLI in-process on a thread, so a hang fails the test instead of stalling the suite."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.outputs: list[str] = []

    def __call__(self, *args: str) -> Ran:
        self.capsys.readouterr()
        result: dict[str, int] = {}
        thread = threading.Thread(target=lambda: result.setdefault("code", run(list(args))), daemon=True)
        thread.start()
        thread.join(HANG)
        assert not thread.is_alive(), f"rosterbook {' '.join(args)} did not end within {HANG:g} s"
        captured = self.capsys.readouterr()
        ran = Ran(result["code"], captured.out, captured.err)
        self.outputs.append(ran.text)
        return ran


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(capsys)


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A fresh token in ROSTERBOOK_TOKEN, a home folder under tmp_path, and the client's limits set short."""
    secret = "rbtok-" + secrets.token_hex(20)
    monkeypatch.setenv("ROSTERBOOK_TOKEN", secret)
    monkeypatch.setenv("ROSTERBOOK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ROSTERBOOK_DEBUG", raising=False)
    monkeypatch.delenv("ROSTERBOOK_PLATFORM", raising=False)
    for name, value in LIMITS.items():
        monkeypatch.setenv(name, value)
    yield secret


def _edit_titles(book: Path, rows: int = 3) -> None:
    wb = openpyxl.load_workbook(book)
    ws = wb[wbk.USERS]
    col = {str(c.value): c.column for c in ws[1] if c.value is not None}
    for r in range(2, 2 + rows):
        ws.cell(r, col["Job title"]).value = f"Changed title {r}"
    wb.save(book)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_hostile_platform_ends_cleanly(case: Case, fresh_sandbox: Callable[..., Sandbox], tmp_path: Path, cli: Cli, token: str,
                                         monkeypatch: pytest.MonkeyPatch, record_property: Callable[[str, object], None]) -> None:
    sandbox = fresh_sandbox(users=12, seed=4)
    book = tmp_path / "book.xlsx"
    with Recorder() as elsewhere, HostileServer(sandbox.url, "pass", elsewhere=elsewhere.url, **case.options) as hostile:
        monkeypatch.setenv("ROSTERBOOK_PLATFORM", hostile.url)  # the token is bound to the hostile platform: it gets it
        if case.command == "sync":
            assert cli("export", str(book), "--platform", hostile.url).code == 0
            _edit_titles(book)
        for name, value in case.env.items():
            monkeypatch.setenv(name, value)
        hostile.behaviour = case.behaviour
        began = time.monotonic()
        ran = cli("export", str(book), "--platform", hostile.url) if case.command == "export" else cli("sync", str(book), "--yes")
        took = time.monotonic() - began
        assert re.search(case.message, ran.text), ran.text
        assert ran.code == case.exit, ran.text
        assert "Traceback" not in ran.text and "internal error" not in ran.text
        if case.then_preview_unchanged:
            hostile.behaviour = "pass"
            preview = cli("preview", str(book), "--json")
            assert preview.code == 0, preview.text
            assert '"update": 0' in preview.out and '"conflict": 0' in preview.out  # the replaced or cut text is no edit
        assert elsewhere.seen == []  # a redirect never took anything to another origin
        assert hostile.tokens_seen(), "the bound platform got the token (the leak checks below can fail)"
    assert leaks(token, cli.outputs, tmp_path) == []
    assert "abc123def456" not in "".join(cli.outputs)  # an echoed cookie is scrubbed too
    record_property(HOSTILE_PROPERTY, f"{case.id}:{took:.1f}")


def test_a_lone_surrogate_is_shown_replaced_and_marked_on_its_cell(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path, cli: Cli, token: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The rest of the organisation is unaffected; the cell shows U+FFFD and its Problems cell says why; LibreOffice opens the file."""
    sandbox = fresh_sandbox(users=12, seed=4)
    book = tmp_path / "book.xlsx"
    with HostileServer(sandbox.url, "lone-surrogate") as hostile:
        monkeypatch.setenv("ROSTERBOOK_PLATFORM", hostile.url)
        ran = cli("export", str(book), "--platform", hostile.url, "--json")
    assert ran.code == 0, ran.text
    wb = openpyxl.load_workbook(book)
    ws = wb[wbk.USERS]
    col = {str(c.value): c.column for c in ws[1] if c.value is not None}
    assert ws.cell(2, col["Job title"]).value == "Head \ufffd of \ufffdSales"
    assert "invalid-unicode" not in str(ws.cell(2, col[wbk.PROBLEMS]).value)  # the line shows the message, the code is in --json
    assert "not valid Unicode" in str(ws.cell(2, col[wbk.PROBLEMS]).value)
    assert all(ws.cell(r, col["Username"]).value for r in range(2, 14))  # all 12 users exported
    assert [ws.cell(r, col[wbk.PROBLEMS]).value for r in range(3, 14)] == [None] * 11
    # The real thing: LibreOffice opens the file and shows the replacement character in the cell.
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        if os.environ.get("CI") == "true":
            pytest.fail("LibreOffice (soffice) is missing on CI: .ci/run installs libreoffice-calc-nogui")
        pytest.skip("LibreOffice (soffice) is not installed; apt-get install -y libreoffice-calc-nogui")
    out = tmp_path / "out"
    done = subprocess.run([soffice, f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}", "--headless", "--convert-to",
                           "csv:Text - txt - csv (StarCalc):44,34,76", "--outdir", str(out), str(book)],
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    lines = (out / "book.csv").read_text(encoding="utf-8").splitlines()
    assert "Head \ufffd of \ufffdSales" in lines[1] and len(lines) >= 13


@pytest.fixture
def sandbox_with_token(fresh_sandbox: Callable[..., Sandbox], token: str) -> Sandbox:
    return fresh_sandbox(users=12, seed=4, token=token)


def test_a_token_echoed_by_the_platform_is_nowhere(sandbox_with_token: Sandbox, tmp_path: Path, cli: Cli, token: str,
                                                   monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A platform quoting the request's Authorization header in its 400 error detail, and in a user's data: the token is
    in no output (text or --json), no log record, no part of the saved workbook, and no file under the home folder."""
    caplog.set_level(logging.DEBUG)  # every logger, urllib3's connection logging included
    book = tmp_path / "book.xlsx"
    with HostileServer(sandbox_with_token.url, "pass") as hostile:
        monkeypatch.setenv("ROSTERBOOK_PLATFORM", hostile.url)
        assert cli("export", str(book), "--platform", hostile.url).code == 0
        _edit_titles(book, rows=4)
        hostile.behaviour = "echo-authorization"
        assert cli("preview", str(book)).code == 0
        first = cli("sync", str(book), "--yes")
        assert first.code == 1 and "[redacted]" in first.out
        again = cli("sync", str(book), "--yes", "--json")
        assert again.code == 1 and '"outcome": "failed"' in again.out and "[redacted]" in again.out
        hostile.behaviour = "echo-token-in-data"
        assert cli("export", str(tmp_path / "again.xlsx"), "--platform", hostile.url, "--json").code == 0
        assert len([s for s in hostile.seen if s.method != "GET"]) >= 4
    logged = openpyxl.load_workbook(book, read_only=True)
    messages = [row[8] for row in logged[wbk.SYNC_LOG].iter_rows(min_row=2, values_only=True) if row[4] == "failed"]
    logged.close()  # a read-only workbook keeps its file open until closed (else a ResourceWarning in a later test)
    assert messages and all("[redacted]" in m and "Bearer" not in m for m in messages)
    exported = openpyxl.load_workbook(tmp_path / "again.xlsx", read_only=True)
    cells = [cell for row in exported[wbk.USERS].iter_rows(values_only=True) for cell in row]
    exported.close()
    assert "Seen: Bearer [redacted]" in cells
    assert len(_artefacts(tmp_path)) > 20
    assert caplog.records, "logging was captured"
    assert leaks(token, cli.outputs + [r.getMessage() for r in caplog.records], tmp_path) == []


def test_a_read_follows_a_redirect_within_the_platform_only(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path, cli: Cli, token: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Same origin (here a relative Location): followed, token and all. Another origin: refused (the redirect-reads case)."""
    sandbox = fresh_sandbox(users=12, seed=4)
    with HostileServer(sandbox.url, "redirect-same-origin") as hostile:
        monkeypatch.setenv("ROSTERBOOK_PLATFORM", hostile.url)
        ran = cli("export", str(tmp_path / "book.xlsx"), "--platform", hostile.url)
        assert ran.code == 0 and "Exported 12 users" in ran.out, ran.text
        moved = [s for s in hostile.seen if "/moved/Users" in s.target]
        assert moved and all(s.headers.get("Authorization") == f"Bearer {token}" for s in moved)
