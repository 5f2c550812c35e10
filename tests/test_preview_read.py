"""A preview reads the platform while the sheet is checked (``Session.current_while_checking``).

Nothing is refused before a preview's read, so its waits on the link pass while the checks run. What
must not change: the plan is made against what the platform holds (a platform edit is a conflict), the
front end hears every stage on its own thread and in order (Excel's status bar belongs to the thread
Excel called), a failed read is the error shown, and a sync still refuses a sheet with errors before
anything, even a read, is sent. (A token bound to another platform: ``test_token_binding``.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
import requests

from rosterbook import app
from rosterbook.errors import RosterbookError
from rosterbook.sandbox import Sandbox


def _edit(book: Path, cells: dict[tuple[int, str], str]) -> dict[int, str]:
    """Write ``cells`` ((row, column header) -> text) into the Users sheet; the Username of each row written."""
    wb = openpyxl.load_workbook(book)
    ws = wb["Users"]
    cols = {str(c.value): c.column for c in ws[1] if c.value}
    for (row, header), text in cells.items():
        ws.cell(row, cols[header]).value = text
    wb.save(book)
    return {row: str(ws.cell(row, cols["Username"]).value) for row, _ in cells}


def test_preview_reads_the_platform_while_checking_and_reports_on_the_calling_thread(tmp_path: Path, fresh_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = fresh_sandbox()
    book = tmp_path / "users.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    names = _edit(book, {(3, "Job title"): "Sheet title A", (5, "Job title"): "Sheet title B", (7, "Job title"): "Sheet title C"})
    # Another admin changes row 5's user on the platform meanwhile: only a plan made against the platform sees it.
    found = requests.get(f"{sandbox.url}/Users", params={"filter": f'userName eq "{names[5]}"'}, timeout=10).json()["Resources"][0]
    answer = requests.patch(f"{sandbox.url}/Users/{found['id']}", timeout=10, json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "Platform title"}]})
    assert answer.status_code in (200, 204)
    heard: list[tuple[str, int, int, int]] = []
    before = len(sandbox.request_log)

    plan = app.preview_workbook(book, progress=lambda stage, done, total: heard.append((stage, done, total, threading.get_ident())))

    conflicts = [b for b in plan.blockers() if b.kind == "conflicts"]
    assert len(conflicts) == 1 and conflicts[0].rows == (5,)
    assert plan.counts["update"] == 2
    reads = [r for r in sandbox.request_log[before:] if r.method == "GET" and r.path.startswith("/Users")]
    assert reads and all(r.status == 200 for r in reads)
    assert {ident for *_, ident in heard} == {threading.get_ident()}
    stages = [stage for stage, *_ in heard]
    assert "Checking" in stages and "Reading current versions" in stages
    assert max(i for i, s in enumerate(stages) if s == "Checking") < stages.index("Reading current versions")
    assert [(done, total) for stage, done, total, _ in heard if stage == "Reading current versions"] == [(0, 3), (3, 3)]


def test_a_failed_read_in_a_preview_is_the_error_the_user_sees(tmp_path: Path, fresh_sandbox: Callable[..., Sandbox]) -> None:
    """The read fails on its thread (the platform went away): the preview says so as it did before, and the
    checks that ran meanwhile do not hide it; nothing is written."""
    sandbox = fresh_sandbox()
    book = tmp_path / "users.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    _edit(book, {(3, "Job title"): "Sheet title A"})
    saved = book.read_bytes()
    sandbox.stop()
    with pytest.raises(RosterbookError, match=r"did not answer usefully after \d+ attempts"):
        app.preview_workbook(book)
    assert book.read_bytes() == saved


def test_a_sync_with_errors_still_sends_nothing_not_even_a_read(tmp_path: Path, fresh_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = fresh_sandbox()
    book = tmp_path / "users.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    _edit(book, {(3, "Status"): "actve", (4, "Job title"): "A title"})
    before = len(sandbox.request_log)
    with pytest.raises(RosterbookError, match="actve"):
        app.sync_workbook(book)
    assert sandbox.request_log[before:] == []
    # The preview of the same sheet reads the platform (nothing is refused before its read) and shows the error.
    plan = app.preview_workbook(book)
    assert [b.rows for b in plan.blockers() if b.kind == "errors"] == [(3,)]
    assert len(sandbox.request_log) > before
