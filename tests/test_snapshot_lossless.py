"""The snapshot holds anything the platform holds, and no user can brick a workbook or stop an export.

Reproduced first against the sandbox on loopback: a 32,300-character job title typed in Excel, a
40,000-character title on the platform, a title with control characters, a name with a lone
surrogate, a user in 1,200 groups. The snapshot keeps each exactly; the Users sheet shows what a
cell cannot hold as a marked cell form with a note; untouched it is never sent; edited, the edit
replaces the whole value and check says what will be sent. LibreOffice's re-save changes none of it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from openpyxl import load_workbook
from support.books import edit, patch_user, platform_users, sheet_rows
from support.scimproxies import ReplacingProxy

from rosterbook import app
from rosterbook import workbook as wbk
from rosterbook.core.cellform import CELL_LIMIT, cell_form
from rosterbook.errors import DataError
from rosterbook.sandbox import Sandbox
from rosterbook.xlsx import OpenpyxlBook

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


@pytest.fixture(autouse=True)
def _no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROSTERBOOK_TOKEN", raising=False)


def _nothing_to_send(book: Path) -> None:
    plan = app.preview_workbook(book)
    assert not plan.sendable(), plan.render_text()


def test_a_long_title_typed_in_the_sheet_syncs_and_bricks_nothing(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox = fresh_sandbox(users=8, seed=2)
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    name = sorted(sheet_rows(book))[1]
    title = ("Ärztin für Sicherheit " * 1600)[:32300]
    edit(book, {(name, "Job title"): title})
    assert app.check_workbook(book).errors == 0
    assert app.sync_workbook(book).ok
    assert platform_users(sandbox.url)[name]["title"] == title
    # Every later command still works: nothing was "edited" in the snapshot, and nothing is left to send.
    _nothing_to_send(book)
    app.export_workbook(book)
    assert sheet_rows(book)[name]["Job title"] == title


def test_values_a_cell_cannot_hold_are_kept_exactly_and_never_sent_untouched(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox = fresh_sandbox(users=8, seed=2)
    users = platform_users(sandbox.url)
    long_name, ctrl_name, other = sorted(users)[:3]
    long_title = " ".join(f"{i:05d}" for i in range(6700))  # 40,199 characters
    patch_user(sandbox.url, users[long_name]["id"], [{"op": "replace", "path": "title", "value": long_title}])
    patch_user(sandbox.url, users[ctrl_name]["id"], [{"op": "replace", "path": "title", "value": "Ctrl\x01\x02Title"}])
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=sandbox.url)

    rows = sheet_rows(book)
    assert rows[long_name]["Job title"] == long_title[:CELL_LIMIT]
    assert rows[ctrl_name]["Job title"] == "Ctrl\ufffd\ufffdTitle"
    snapshot = wbk.read_snapshot(OpenpyxlBook(book))
    assert {s.key: s.values["Job title"] for s in snapshot.values() if s.key in (long_name, ctrl_name)} == {
        long_name: long_title, ctrl_name: "Ctrl\x01\x02Title"}
    ws = load_workbook(book)[wbk.USERS]
    col = [c.value for c in ws[1]].index("Job title") + 1
    note = ws.cell(rows[ctrl_name]["_row"], col).comment
    assert note is not None and "The platform keeps its text as long as this cell is not edited" in note.text and "U+0001, U+0002" in note.text

    # Untouched: no phantom edit, a plain export again is not refused, and a sync of another row leaves them alone.
    _nothing_to_send(book)
    report = app.check_workbook(book)
    assert report.errors == 0 and {(p.column, p.code) for p in report.problems} == {("Job title", "cut-short"), ("Job title", "invalid-unicode")}
    edit(book, {(other, "Job title"): "Other edit"})
    assert app.sync_workbook(book).confirmed == 1
    after = platform_users(sandbox.url)
    assert (after[long_name]["title"], after[ctrl_name]["title"]) == (long_title, "Ctrl\x01\x02Title")

    # LibreOffice opens and saves the workbook: still nothing to send.
    _libreoffice_resave(book, tmp_path)
    _nothing_to_send(book)
    app.export_workbook(book)

    # Edited: the cell replaces the whole value, and check says exactly what will be sent.
    edit(book, {(ctrl_name, "Job title"): "Control Title"})
    report = app.check_workbook(book)
    [replaced] = [p for p in report.problems if p.code == "replaces-unshown-value"]
    assert "sync sends exactly this cell's text instead, 13 characters: 'Control Title'" in replaced.message
    assert app.sync_workbook(book).confirmed == 1
    assert platform_users(sandbox.url)[ctrl_name]["title"] == "Control Title"
    assert platform_users(sandbox.url)[long_name]["title"] == long_title


def test_one_odd_user_never_stops_the_export(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox = fresh_sandbox(users=8, seed=2)
    users = platform_users(sandbox.url)
    odd = sorted(users)[2]
    patch_user(sandbox.url, users[odd]["id"], [{"op": "replace", "path": "name.familyName", "value": "LONESURROGATE"}])
    book = tmp_path / "book.xlsx"
    # The platform answers with a lone surrogate in one user's name (JSON's own escape \udc80).
    with ReplacingProxy(sandbox.url, {b"LONESURROGATE": b"Lone\\\\udc80".replace(b"\\\\", b"\\")}) as proxy:
        result = app.export_workbook(book, platform=proxy.url)
        assert result.rows == 8
        rows = sheet_rows(book)
        assert rows[odd]["Last name"] == "Lone\ufffd" and "not valid Unicode" in str(rows[odd][wbk.PROBLEMS])
        # The snapshot keeps the platform's text exactly, lone surrogate included; the cell shows its cell form, which is
        # no edit: nothing is sent, and the platform keeps its own text.
        [snap] = [s for s in wbk.read_snapshot(OpenpyxlBook(book)).values() if s.key == odd]
        assert snap.values["Last name"] == "Lone\udc80"
        _nothing_to_send(book)
        # Another admin changes that user's title while the sheet changes it too: a conflict whose JSON, printed by the
        # real command (a process with its own stdout), shows the platform's text with the surrogate escaped.
        patch_user(sandbox.url, users[odd]["id"], [{"op": "replace", "path": "title", "value": "Set on the platform"}])
        edit(book, {(odd, "Job title"): "Set in the sheet"})
        env = {**os.environ, "ROSTERBOOK_PLATFORM": proxy.url, "PYTHONIOENCODING": "utf-8"}
        done = subprocess.run([str(Path(sys.executable).with_name("rosterbook")), "preview", str(book), "--json"], capture_output=True, env=env,
                              timeout=120, check=False)
        assert done.returncode == 1 and b"Traceback" not in done.stderr and done.stdout, done.stderr
        [conflict] = [c for c in json.loads(done.stdout)["changes"] if c["action"] == "conflict"]
        assert conflict["current"]["Last name"] == "Lone\udc80"
        assert conflict["current"]["Job title"] == "Set on the platform"


def test_a_user_in_1200_groups(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox = fresh_sandbox(users=6, seed=2)
    users = platform_users(sandbox.url)
    member = sorted(users)[0]
    names = [f"Project group number {i:04d} with a long name" for i in range(1200)]
    for start in range(0, len(names), 600):
        operations = [{"method": "POST", "path": "/Groups", "bulkId": f"g{i}",
                       "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name,
                                "members": [{"value": users[member]["id"]}]}} for i, name in enumerate(names[start : start + 600], start=start)]
        answer = requests.post(f"{sandbox.url}/Bulk", json={"schemas": [BULK], "Operations": operations},
                               headers={"Content-Type": "application/scim+json"}, timeout=120)
        assert answer.status_code == 200
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    cell = sheet_rows(book)[member]["Groups"]
    [snap] = [s for s in wbk.read_snapshot(OpenpyxlBook(book)).values() if s.key == member]
    assert len(snap.values["Groups"] or "") > CELL_LIMIT and cell == cell_form(snap.values["Groups"] or "")
    _nothing_to_send(book)
    edit(book, {(member, "Job title"): "Member of many"})
    plan = app.preview_workbook(book)
    [change] = plan.sendable()
    assert set(change.fields) == {"Job title"}
    assert app.sync_workbook(book).ok


def test_an_edited_truncated_or_reordered_snapshot_is_refused(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox = fresh_sandbox(users=8, seed=2)
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    edit(book, {(sorted(sheet_rows(book))[0], "Job title"): "Edited"})
    clean = book.read_bytes()

    def snapshot_changed(change: Callable[..., None]) -> None:
        book.write_bytes(clean)
        wb = load_workbook(book)
        change(wb[wbk.SNAPSHOT])
        wb.save(book)

    def gul(ws: object) -> None:  # a value changed in an entry (Gülşen -> Gul), the row's check left alone
        cell = ws["C3"]  # type: ignore[index]
        cell.value = str(cell.value).replace('"Last name":"', '"Last name":"X')

    for change in (gul, lambda ws: ws.delete_rows(ws.max_row, 1), lambda ws: ws.move_range("A2:Z2", rows=ws.max_row)):
        snapshot_changed(change)
        before = len(sandbox.request_log)
        with pytest.raises(DataError, match=r"_snapshot: the export snapshot was edited, truncated or re-ordered") as info:
            app.sync_workbook(book)
        assert "Export again: `rosterbook export BOOK --keep-edits`" in str(info.value)
        assert len(sandbox.request_log) == before  # nothing sent, not even a read
        with pytest.raises(DataError, match="_snapshot: the export snapshot"):
            app.preview_workbook(book)


def _libreoffice_resave(book: Path, tmp_path: Path) -> None:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    assert soffice is not None, "LibreOffice is needed (installed by .ci/run)"
    out = tmp_path / "lo"
    subprocess.run([soffice, "--headless", f"-env:UserInstallation=file://{tmp_path}/lo-profile", "--convert-to", "xlsx:Calc MS Excel 2007 XML",
                    "--outdir", str(out), str(book)], check=True, capture_output=True, timeout=180)
    shutil.copy(out / book.name, book)
