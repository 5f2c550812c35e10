"""A sync killed with SIGKILL (a real subprocess running the CLI) at several moments, then the rows it had
sent edited again: the next sync sends those edits as ordinary updates (no conflict with our own write,
no "already belongs to another user" for a row it had created), and ``export --keep-edits`` keeps every
unsynced edit. The moment: a Bulk request the server applied while the answer was held back by a real
loopback proxy, so the client never learnt it.

Also: before the first request, a workbook (or its folder) that cannot be written stops the sync with
exit 2 and nothing sent; a final save that fails after sending keeps the outcomes in the journal beside
the workbook, which the next command applies. In both cases the sync's history (what it changed, for undo)
is kept too.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.books import edit, log_entries, platform_users, sheet_rows
from support.scimproxies import HoldingProxy

from rosterbook import app, journal
from rosterbook import workbook as wbk
from rosterbook.fastread import FastBook, _sheet_part
from rosterbook.sandbox import Sandbox
from rosterbook.session import Session
from rosterbook.undo import undo_sync

USERS, EDITED, CREATED, BATCH = 120, 60, 10, 20
"""70 changes in batches of 20: the creates and 10 updates, then 20, 20 and 10 updates (a Bulk request each)."""
ROSTERBOOK = str(Path(sys.executable).parent / "rosterbook")
ROSTERBOOK_WITH_UPDATES = [sys.executable, "-c", "import rosterbook.workbook as w, rosterbook.engine as e; w.UPDATES_FROM = w.UPDATES_SHARE = 1; "
                           "e.Checkpoints.due = lambda self: True; from rosterbook.cli import main; main()"]
"""The CLI with the snapshot updates sheet's thresholds at 1 (what a 2,000-user workbook does at 120 users) and a
checkpoint after every batch (a long sync's clock, in a moment): each checkpoint of the killed sync writes the entries
confirmed so far to ``_snapshot_updates`` and copies the snapshot as it was."""


@pytest.fixture(autouse=True)
def _no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROSTERBOOK_TOKEN", raising=False)


def _first_edits(book: Path) -> tuple[list[str], list[str]]:
    names = sorted(sheet_rows(book))[:EDITED]
    created = [f"new.{i:02d}@lumen.example" for i in range(CREATED)]
    edit(book, {(n, "Job title"): f"First edit {i}" for i, n in enumerate(names)},
         new_rows=[{"Username": c, "First name": "New", "Last name": f"Person {i}", "Email": c, "Status": "Pending", "Job title": "Joiner"}
                   for i, c in enumerate(created)])
    return names, created


def _killed_sync(book: Path, proxy: HoldingProxy, updates: bool = False) -> None:
    """Run `rosterbook sync` in a subprocess and SIGKILL it while the proxy holds back the chosen answer (``updates``:
    with ``ROSTERBOOK_WITH_UPDATES``)."""
    command = ROSTERBOOK_WITH_UPDATES if updates else [ROSTERBOOK]
    process = subprocess.Popen([*command, "sync", str(book), "--yes", "--batch", str(BATCH)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env={**os.environ, "ROSTERBOOK_DEBUG": "1"})
    try:
        assert proxy.held.wait(120), process.communicate(timeout=5)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL


@pytest.fixture(params=[(1, False), (3, False), (4, False), (3, True), (4, True)],
                ids=["first-batch", "third-batch", "last-batch", "third-batch-updates-sheet", "last-batch-updates-sheet"])
def killed(request: pytest.FixtureRequest, fresh_sandbox: Callable[..., Sandbox], tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Path, list[str], list[str]]]:
    nth, updates = request.param
    if updates:  # every command of the test, in this process too, goes through the updates sheet
        monkeypatch.setattr(wbk, "UPDATES_FROM", 1)
        monkeypatch.setattr(wbk, "UPDATES_SHARE", 1)
    sandbox = fresh_sandbox(users=USERS, seed=12)
    book = tmp_path / "book.xlsx"
    with HoldingProxy(sandbox.url, "POST", r"/Bulk$", nth=nth) as proxy:
        app.export_workbook(book, platform=proxy.url)
        snapshot_part = _snapshot_part(book)
        names, created = _first_edits(book)
        _killed_sync(book, proxy, updates)
    assert journal.exists(book)  # what was sent, and what came back, is beside the workbook
    if updates:
        # The batches confirmed before the kill were checkpointed as updates, the export's snapshot left as it was.
        sheet = wbk.read_snapshot_sheet(FastBook(book))
        assert len(sheet.updates) == (nth - 1) * BATCH and _snapshot_part(book) == snapshot_part
    edit(book, {}, settings={"platform_url": sandbox.url})  # the proxy is gone: talk to the platform directly
    # The user edits again the rows the killed sync had sent (created rows included).
    edit(book, {**{(n, "Job title"): f"Second edit {i}" for i, n in enumerate(names)}, **{(c, "Job title"): "Created then edited" for c in created}})
    yield sandbox, book, names, created


def _snapshot_part(book: Path) -> bytes:
    with zipfile.ZipFile(book) as archive:
        member = _sheet_part(archive, wbk.SNAPSHOT)
        assert member is not None
        return archive.read(member)


def _platform_holds_the_second_edits(sandbox: Sandbox, names: list[str], created: list[str]) -> None:
    users = platform_users(sandbox.url)
    assert len(users) == USERS + CREATED  # nobody created twice
    assert [users[n]["title"] for n in names] == [f"Second edit {i}" for i in range(len(names))]
    assert all(users[c]["title"] == "Created then edited" for c in created)


def test_after_a_kill_edits_of_sent_rows_sync_as_updates(killed: tuple[Sandbox, Path, list[str], list[str]]) -> None:
    sandbox, book, names, created = killed
    plan = app.preview_workbook(book)
    assert plan.counts["conflict"] == 0, plan.render_text()
    assert {c.key for c in plan.changes if c.action == "create"} <= set(created)
    result = app.sync_workbook(book)
    assert result.ok, [r.to_dict() for r in result.rows if r.outcome != "ok"]
    assert all(r.action in ("update", "create") for r in result.rows)
    _platform_holds_the_second_edits(sandbox, names, created)
    assert not journal.exists(book)
    assert app.preview_workbook(book).sendable() == []
    assert all(e["Outcome"] == "ok" for e in log_entries(book))
    # The killed sync's history holds every row the platform got from it (from its journal, or re-based), for undo.
    killed_sync, second = Session.open(book).history().records.values()
    assert second.sync_id == result.sync_id and len(second.steps) == EDITED + CREATED
    sent = {step.key: step for step in killed_sync.steps}
    assert set(created) <= set(sent) and len(sent) in (BATCH, 3 * BATCH, EDITED + CREATED)
    assert all(sent[n].fields["Job title"][1] == f"First edit {i}" for i, n in enumerate(names) if n in sent)


def test_after_a_kill_export_keep_edits_keeps_every_unsynced_edit(killed: tuple[Sandbox, Path, list[str], list[str]]) -> None:
    sandbox, book, names, created = killed
    app.export_workbook(book, keep_edits=True)
    rows = sheet_rows(book)
    assert [rows[n]["Job title"] for n in names] == [f"Second edit {i}" for i in range(len(names))]
    assert all(rows[c]["Job title"] == "Created then edited" for c in created)
    plan = app.preview_workbook(book)
    assert plan.counts["conflict"] == 0, plan.render_text()
    assert app.sync_workbook(book).ok
    _platform_holds_the_second_edits(sandbox, names, created)


# --- the workbook cannot be written --------------------------------------------------------------------------


def _read_only(folder: Path, on: bool) -> None:
    """A folder nobody can create files in: immutable for root (who ignores permissions), read-only for anyone else."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i" if on else "-i", str(folder)], check=True, capture_output=True)
    else:
        folder.chmod(0o555 if on else 0o755)


def test_a_folder_that_cannot_be_written_stops_the_sync_before_any_request(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox = fresh_sandbox(users=10, seed=3)
    folder = tmp_path / "read-only"
    folder.mkdir()
    book = folder / "book.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    edit(book, {(sorted(sheet_rows(book))[0], "Job title"): "Never sent"})
    before = len(sandbox.request_log)
    _read_only(folder, True)
    try:
        done = subprocess.run([ROSTERBOOK, "sync", str(book), "--yes"], check=False, capture_output=True, text=True, timeout=120)
    finally:
        _read_only(folder, False)
    assert done.returncode == 2, done.stderr
    assert f"{str(folder)!r} cannot be written" in done.stderr and "nothing was sent" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(sandbox.request_log) == before


def _file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_disk_too_full_for_the_workbook_stops_the_sync_before_any_request(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox = fresh_sandbox(users=10, seed=3)
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    edit(book, {(sorted(sheet_rows(book))[0], "Job title"): "Never sent"})
    before = len(sandbox.request_log)
    done = subprocess.run([ROSTERBOOK, "sync", str(book), "--yes"], check=False, capture_output=True, text=True, timeout=120,
                          preexec_fn=_file_size_limit(book.stat().st_size // 2))
    assert done.returncode == 2 and "cannot be written (File too large)" in done.stderr and "nothing was sent" in done.stderr, done.stderr
    assert len(sandbox.request_log) == before


def test_a_save_that_fails_after_sending_keeps_the_outcomes_for_the_next_command(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox = fresh_sandbox(users=40, seed=3)
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    names = sorted(sheet_rows(book))[:8]
    titles = [platform_users(sandbox.url)[n].get("title") for n in names]
    edit(book, {(n, "Job title"): f"Sent {i}" for i, n in enumerate(names)})
    size = book.stat().st_size
    # Room for the probe (the workbook's size) but not for the workbook once it holds the Sync log (EFBIG on save).
    done = subprocess.run([ROSTERBOOK, "sync", str(book), "--yes"], check=False, capture_output=True, text=True, timeout=120,
                          preexec_fn=_file_size_limit(size + 64))
    assert done.returncode == 1, done.stderr
    assert "the sync was sent, but the workbook could not be saved (" in done.stderr
    assert "File too large" in done.stderr or "EFBIG" in done.stderr
    assert str(journal.journal_path(book)) in done.stderr and "Traceback" not in done.stderr + done.stdout
    assert book.stat().st_size == size  # the old workbook, intact
    assert [platform_users(sandbox.url)[n]["title"] for n in names] == [f"Sent {i}" for i in range(len(names))]
    # The next command applies what the journal kept: every row logged, nothing left to send, nothing sent twice.
    writes = len([r for r in sandbox.request_log if r.method != "GET"])
    plan = app.preview_workbook(book)
    assert plan.sendable() == [] and plan.counts["conflict"] == 0
    assert sorted(e["Key"] for e in log_entries(book) if e["Outcome"] == "ok") == sorted(names)
    assert not journal.exists(book)
    assert len([r for r in sandbox.request_log if r.method != "GET"]) == writes
    # What the journal kept includes the sync's history: it can be undone.
    assert undo_sync(book).confirmed == len(names)
    assert [platform_users(sandbox.url)[n].get("title") for n in names] == titles
