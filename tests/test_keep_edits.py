"""``export --keep-edits``: the platform is read again and replaces the snapshot, and every unsynced edit
of the sheet is re-applied on top; a field edited both in the sheet and on the platform since the
export is a conflict in the preview (exported -> now on the platform -> in the sheet), never silently
resolved. On a SCIM platform (the sandbox on loopback) and on a CSV platform (its export files).
A workbook also stays bound to its platform: ``export BOOK`` without ``--platform`` reads the
platform in its Settings, and another platform is refused while unsynced edits exist.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from openpyxl import load_workbook
from support.books import SCIM_JSON, edit, edit_rows, patch_user, platform_users, sheet_rows

from rosterbook import app
from rosterbook import workbook as wbk
from rosterbook.cli import run
from rosterbook.errors import DataError, UnsyncedEditsError
from rosterbook.sandbox import Sandbox

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@pytest.fixture(autouse=True)
def _no_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ROSTERBOOK_TOKEN", raising=False)
    monkeypatch.setenv("ROSTERBOOK_HOME", str(tmp_path / "home"))  # the embedded sandbox, were anything to start it


def test_keep_edits_on_a_scim_platform(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sandbox = fresh_sandbox(users=20, seed=7)
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    users = platform_users(sandbox.url)
    a, b, c, gone = sorted(users)[:4]
    new_row = {"Username": "typed.in@lumen.example", "First name": "Typed", "Last name": "In", "Email": "typed.in@lumen.example", "Status": "Pending"}
    edit(book, {(a, "Job title"): "Sheet A", (b, "Job title"): "Sheet B", (c, "Last name"): "Sheet-C", (gone, "Job title"): "Lost"},
         new_rows=[new_row])
    # Meanwhile, on the platform: b's title (also edited in the sheet), c's department (not edited there), a user deleted, one added.
    patch_user(sandbox.url, users[b]["id"], [{"op": "replace", "path": "title", "value": "Platform B"}])
    patch_user(sandbox.url, users[c]["id"], [{"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Platform dept"}])
    assert requests.delete(f"{sandbox.url}/Users/{users[gone]['id']}", timeout=30).status_code == 204
    added = requests.post(f"{sandbox.url}/Users", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "added@lumen.example"},
                          headers=SCIM_JSON, timeout=30)
    assert added.status_code == 201

    with pytest.raises(UnsyncedEditsError, match="--keep-edits"):
        app.export_workbook(book)  # plain export still refuses to drop them
    code = run(["export", str(book), "--keep-edits", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    rows = sheet_rows(book)
    assert result["keep_edits"] == {"rows": sorted([rows[a]["_row"], rows[b]["_row"], rows[c]["_row"], rows["typed.in@lumen.example"]["_row"]]),
                                    "conflicts": [rows[b]["_row"]], "gone": [gone], "refreshed": []}
    assert (rows[a]["Job title"], rows[b]["Job title"], rows[c]["Last name"], rows[c]["Department"]) == ("Sheet A", "Sheet B", "Sheet-C", "Platform dept")
    assert "added@lumen.example" in rows and gone not in rows and rows["typed.in@lumen.example"][wbk.ROW_ID] is None

    plan = app.preview_workbook(book)
    by_key = {ch.key: ch for ch in plan.changes if ch.action != "unchanged"}
    assert {k: ch.action for k, ch in by_key.items()} == {a: "update", b: "conflict", c: "update", "typed.in@lumen.example": "create"}
    assert "Last name" in by_key[c].fields and "Department" not in by_key[c].fields  # the platform's department is not sent back
    [conflict] = [ch for ch in plan.to_dict()["changes"] if ch["action"] == "conflict"]
    assert conflict["conflicts"] == {"Job title": {"exported": users[b].get("title"), "platform": "Platform B", "sheet": "Sheet B"}}

    result_sync = app.sync_workbook(book, skip_rows=[rows[b]["_row"]])
    assert result_sync.ok and result_sync.confirmed == 3
    after = platform_users(sandbox.url)
    assert (after[a]["title"], after[b]["title"], after[c]["name"]["familyName"]) == ("Sheet A", "Platform B", "Sheet-C")
    assert after[c][ENTERPRISE]["department"] == "Platform dept" and "typed.in@lumen.example" in after
    # The conflict stays a conflict until the sheet settles it (typing the platform's value adopts it).
    assert app.preview_workbook(book).counts["conflict"] == 1
    edit(book, {(b, "Job title"): "Platform B"})
    assert app.preview_workbook(book).counts["conflict"] == 0


def test_keep_edits_keeps_a_row_deleted_from_the_sheet_deleted(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    # A row deleted in the sheet is an unsynced edit too: after the refresh its user is still an exported user (in the
    # snapshot, with the platform's fresh values), not a user new on the platform put back at the bottom of the sheet.
    sandbox = fresh_sandbox(users=20, seed=7)
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    users = platform_users(sandbox.url)
    rows = sheet_rows(book)
    removed, edited = sorted(n for n in rows if rows[n]["Status"] == "Active")[:2]
    edit_rows(book, {(rows[edited]["_row"], "Job title"): "Sheet title"}, delete=rows[removed]["_row"])
    patch_user(sandbox.url, users[removed]["id"], [{"op": "replace", "path": "title", "value": "Platform title"}])
    result = app.export_workbook(book, keep_edits=True)
    assert result.keep_edits is not None and result.keep_edits["conflicts"] == []
    after = sheet_rows(book)
    assert removed not in after and after[edited]["Job title"] == "Sheet title" and len(after) == len(rows) - 1
    plan = app.preview_workbook(book)
    assert {ch.key: ch.action for ch in plan.changes if ch.action != "unchanged"} == {edited: "update"}
    # This platform keeps users missing from the sheet: the deleted row changes nothing, and the preview says why.
    [gone] = [ch for ch in plan.changes if ch.key == removed]
    assert gone.row is None and gone.values["Job title"] == "Platform title" and "deleted from the sheet" in gone.notes[0]
    assert app.sync_workbook(book).ok
    now = platform_users(sandbox.url)
    assert (now[removed]["active"], now[removed]["title"], now[edited]["title"]) == (True, "Platform title", "Sheet title")


def test_keep_edits_on_a_csv_platform(samples: Path, tmp_path: Path) -> None:
    first = samples / "progression_export.csv"
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, from_csv=first)
    keys = sorted(sheet_rows(book, key="email"))
    a, b = keys[0], keys[1]
    edit(book, {(a, "position"): "Sheet position", (b, "team"): "Sheet team"}, key="email")
    # The platform's newer export: b's team changed there too, a's Last Name changed (not edited in the sheet).
    lines = first.read_text(encoding="utf-8").splitlines()
    newer = tmp_path / "newer.csv"
    out = []
    for line in lines:
        cells = line.split(",")
        if cells[2] == b:
            cells[4] = "Platform team"
        if cells[2] == a:
            cells[1] = "Renamed"
        out.append(",".join(cells))
    newer.write_text("\n".join(out) + "\n", encoding="utf-8")
    with pytest.raises(UnsyncedEditsError):
        app.export_workbook(book, from_csv=newer)
    result = app.export_workbook(book, from_csv=newer, keep_edits=True)
    rows = sheet_rows(book, key="email")
    assert result.keep_edits is not None and result.keep_edits["conflicts"] == [rows[b]["_row"]]
    assert (rows[a]["position"], rows[a]["Last Name"], rows[b]["team"]) == ("Sheet position", "Renamed", "Sheet team")
    plan = app.preview_workbook(book)
    assert {ch.key: ch.action for ch in plan.changes if ch.action != "unchanged"} == {a: "update", b: "conflict"}
    [conflict] = [ch for ch in plan.changes if ch.action == "conflict"]
    assert conflict.conflicts["team"].platform == "Platform team" and conflict.conflicts["team"].sheet == "Sheet team"
    with pytest.raises(DataError, match="changed on the platform since the export"):
        app.sync_workbook(book)
    synced = app.sync_workbook(book, skip_rows=[rows[b]["_row"]])
    assert synced.upload_rows == 1
    # Reverting the conflicting row takes the platform's value: the conflict settles, nothing left to send for it.
    app.revert_rows(book, [rows[b]["_row"]])
    assert sheet_rows(book, key="email")[b]["team"] == "Platform team"
    assert not [ch for ch in app.preview_workbook(book).changes if ch.key == b and ch.action != "unchanged"]


def test_a_workbook_stays_bound_to_its_platform(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    first, other = fresh_sandbox(users=6, seed=1), fresh_sandbox(users=9, seed=2)
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=first.url)
    before = len(first.request_log)
    again = app.export_workbook(book)  # no --platform: the workbook's own platform, not the embedded sandbox
    assert again.platform_url == first.url and again.rows == 6 and len(first.request_log) > before
    assert not (tmp_path / "home").exists()  # the embedded sandbox was never started
    name = sorted(sheet_rows(book))[0]
    edit(book, {(name, "Job title"): "Unsynced"})
    with pytest.raises(UnsyncedEditsError, match=rf"bound to {first.url} \(Settings!B\d+\).*would drop its unsynced edits in row"):
        app.export_workbook(book, platform=other.url)
    with pytest.raises(UnsyncedEditsError, match="bound to"):
        app.export_workbook(book, platform=other.url, keep_edits=True)
    assert sheet_rows(book)[name]["Job title"] == "Unsynced"
    switched = app.export_workbook(book, platform=other.url, force=True)  # explicit, and the edits explicitly discarded
    assert switched.rows == 9 and wbk.read_settings(_book(book)).platform_url == other.url


def test_keep_edits_after_the_snapshot_was_damaged(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox = fresh_sandbox(users=8, seed=2)
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    a, b = sorted(sheet_rows(book))[:2]
    edit(book, {(a, "Job title"): "Kept A", (b, "Job title"): "Kept B"})
    wb = load_workbook(book)
    ws = wb[wbk.SNAPSHOT]
    ws.move_range(f"A2:Z{ws.max_row}", rows=1)  # every entry one row down: re-ordered, each entry intact
    wb.save(book)
    with pytest.raises(DataError, match="_snapshot: the export snapshot was edited, truncated or re-ordered"):
        app.preview_workbook(book)
    app.export_workbook(book, keep_edits=True)  # entries intact: every edit kept
    rows = sheet_rows(book)
    assert (rows[a]["Job title"], rows[b]["Job title"]) == ("Kept A", "Kept B")
    assert {c.key for c in app.preview_workbook(book).sendable()} == {a, b}

    # An entry edited: its row's edits cannot be told apart; refused, unless --force (that row refreshed, the others kept).
    wb = load_workbook(book)
    ws = wb[wbk.SNAPSHOT]
    row = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, 1).value == rows[a][wbk.ROW_ID])
    ws.cell(row, 3).value = str(ws.cell(row, 3).value).replace('"Job title":"', '"Job title":"x')
    wb.save(book)
    with pytest.raises(DataError, match=rf"Row {rows[a]['_row']} of the Users sheet cannot be matched to the export snapshot"):
        app.export_workbook(book, keep_edits=True)
    result = app.export_workbook(book, keep_edits=True, force=True)
    assert result.keep_edits is not None and result.keep_edits["refreshed"] == [rows[a]["_row"]]
    assert sheet_rows(book)[b]["Job title"] == "Kept B"


def _book(path: Path) -> object:
    from rosterbook.xlsx import OpenpyxlBook

    return OpenpyxlBook(path)
