"""Undo on a SCIM platform (the sandbox): a sync of creates, updates, renames, archives and membership changes, then
``rosterbook undo``: the server's raw state, resource by resource, is what it was before the sync (created users
archived, never deleted); a second undo has nothing left to do; a field another admin changed since is kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from support.books import HR, edit, log_entries, patch_user, platform_state, platform_users, sheet_rows
from support.ribbonui import RecordingUI

from addin import ribbon
from rosterbook import app
from rosterbook import workbook as wbk
from rosterbook.cli import run
from rosterbook.errors import DataError
from rosterbook.sandbox import Sandbox
from rosterbook.undo import preview_undo, undo_sync
from rosterbook.xlsx import OpenpyxlBook

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def _run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = run([*args, "--json"])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, json.loads(out.out) if out.out.strip() else {"stderr": out.err}


def _scenario(book: Path) -> dict[str, list[str]]:
    """The sheet edits of the sync to undo: creates, updates, renames, archives, memberships, an activation, a manager."""
    rows = sheet_rows(book)
    active = sorted(n for n, r in rows.items() if r["Status"] == "Active" and r.get("Groups"))
    pending = sorted(n for n, r in rows.items() if r["Status"] == "Pending")
    plain = [n for n in active if n != "" and rows[n].get("Team")]
    updated, cleared, archived, renamed, grouped = plain[:3], plain[3:5], plain[5:7], plain[7:9], plain[9:11]
    manager = next(n for n in plain[11:] if rows[n].get("Manager"))
    cells: dict[tuple[str, str], Any] = {}
    for i, name in enumerate(updated):
        cells[(name, "Job title")] = f"Undo me {i}"
        cells[(name, "Locations")] = "Remote|Main\\|HQ"
    cells[(updated[0], "First name")] = "Renamed-First"  # the display name follows the name (and goes back with it)
    cells[(updated[1], "Email")] = "changed.email@lumen.example"
    for name in cleared:
        cells[(name, "Team")] = "(clear)"
        cells[(name, "Department")] = "Moved Department"
    for name in archived:
        cells[(name, "Status")] = "Archived"
    for i, name in enumerate(renamed):
        cells[(name, "Username")] = f"renamed.{i}@lumen.example"
    cells[(grouped[0], "Groups")] = f"{rows[grouped[0]]['Groups']}; New Starters"
    cells[(grouped[1], "Groups")] = str(rows[grouped[1]]["Groups"]).split("; ")[0]  # memberships removed
    cells[(manager, "Manager")] = updated[2]
    assert pending
    cells[(pending[0], "Status")] = "Active"
    new_rows = [{"Username": "undo.new.0@lumen.example", "First name": "Una", "Last name": "Dunne", "Email": "undo.new.0@lumen.example",
                 "Status": "Active", "Groups": "Mentors; New Starters", "Job title": "Joiner"},
                {"Username": "undo.new.1@lumen.example", "First name": "Ned", "Last name": "Quill", "Email": "undo.new.1@lumen.example",
                 "Status": "Pending"}]
    edit(book, cells, new_rows=new_rows)
    return {"created": [r["Username"] for r in new_rows], "renamed": renamed, "updated": updated}


def test_undo_puts_the_platform_back_resource_by_resource(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    sandbox = fresh_sandbox(users=40, seed=4)
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    users_before, groups_before = platform_state(sandbox.url)
    touched = _scenario(book)
    code, synced = _run_json(capsys, "sync", str(book), "--yes")
    assert code == 0 and synced["confirmed"] == synced["sent"] >= 14
    assert {a for a, n in synced["counts"].items() if n and a != "unchanged"} == {"create", "update", "archive", "rename"}
    sync_id = synced["sync_id"]
    assert {e["Sync id"] for e in log_entries(book)} == {sync_id}  # every Sync log line names its sync
    assert platform_state(sandbox.url) != (users_before, groups_before)

    code, plan = _run_json(capsys, "undo", str(book), "--preview")
    assert code == 0 and plan["undo_of"] == sync_id and plan["counts"]["archive"] == 2  # the two users the sync created
    assert set(plan) == set(app.preview_workbook(book).to_dict()) | {"undo_of", "cannot_undo"}  # the preview's shape, plus undo_of
    code, undone = _run_json(capsys, "undo", str(book), "--yes")
    assert code == 0, undone
    assert undone["undo_of"] == sync_id and undone["sync_id"] != sync_id and undone["failed"] == 0 and undone["kept"] == []

    users_after, groups_after = platform_state(sandbox.url)
    created = {i: u for i, u in users_after.items() if i not in users_before}
    assert sorted(u["userName"] for u in created.values()) == touched["created"]  # nobody deleted, nobody created twice
    for user in created.values():
        assert user[HR]["accountStatus"] == "Archived" and user["active"] is False
    for user_id, before in users_before.items():
        assert users_after[user_id] == before, before["userName"]
    assert groups_after == groups_before  # memberships back, the created users' too
    # The workbook agrees with the platform: nothing left to send, and the snapshot is what a fresh export reads.
    assert [(c.key, dict(c.fields)) for c in app.preview_workbook(book).sendable()] == []
    fresh = tmp_path / "fresh.xlsx"
    app.export_workbook(fresh, platform=sandbox.url)
    ours = {s.key: dict(s.values) for s in wbk.read_snapshot(OpenpyxlBook(book)).values()}
    theirs = {s.key: dict(s.values) for s in wbk.read_snapshot(OpenpyxlBook(fresh)).values()}
    assert ours == theirs

    code, again = _run_json(capsys, "undo", str(book), "--yes", "--sync", sync_id)
    assert code == 0 and again["sent"] == 0 and again["rows"] == [] and again["undo_of"] == sync_id
    capsys.readouterr()
    assert run(["undo", str(book), "--yes"]) == 0
    assert capsys.readouterr().out.strip().endswith("everything it changed is as it was before.")
    assert platform_state(sandbox.url) == (users_after, groups_after)


def test_a_field_another_admin_changed_since_is_kept_and_the_rest_goes_back(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox = fresh_sandbox(users=20, seed=6)
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    rows = sheet_rows(book)
    first, second = sorted(n for n, r in rows.items() if r["Status"] == "Active")[:2]
    was = {n: (rows[n]["Job title"], rows[n]["Department"]) for n in (first, second)}
    edit(book, {(first, "Job title"): "Sync title", (first, "Department"): "Sync department", (second, "Job title"): "Sync title 2"})
    synced = app.sync_workbook(book)
    assert synced.ok
    # Another admin changes one of the fields that sync set.
    patch_user(sandbox.url, platform_users(sandbox.url)[first]["id"], [{"op": "replace", "path": "title", "value": "Another admin's title"}])

    plan = preview_undo(book)
    change = next(c for c in plan.to_dict()["changes"] if c["key"] == first)
    assert change["action"] == "update" and list(change["fields"]) == ["Department"]
    assert change["conflicts"] == {"Job title": {"exported": "Sync title", "platform": "Another admin's title", "sheet": was[first][0]}}
    preview = openpyxl.load_workbook(book)[wbk.PREVIEW]
    assert any(r[0] == "Undo of sync" and r[1] == synced.sync_id for r in preview.iter_rows(values_only=True))

    result = undo_sync(book)
    assert result.ok and [dict(k) for k in result.kept] == [{"row": rows[first]["_row"], "key": first, "column": "Job title",
                                                               "set_by_sync": "Sync title", "platform": "Another admin's title",
                                                               "before": was[first][0]}]
    users = platform_users(sandbox.url)
    assert users[first]["title"] == "Another admin's title"  # never overwritten
    assert users[first][ENTERPRISE]["department"] == was[first][1]  # the rest of that row went back
    assert users[second]["title"] == was[second][0]
    # The sheet and the snapshot take the platform's value: the next preview sends nothing over it.
    assert sheet_rows(book)[first]["Job title"] == "Another admin's title"
    assert app.preview_workbook(book).sendable() == []


def test_undo_asks_once_for_the_deletion_guard_and_the_command_line_needs_confirm_deletions(fresh_sandbox: Callable[..., Sandbox],
                                                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROSTERBOOK_HOME", str(tmp_path / "home"))
    sandbox = fresh_sandbox(users=10, seed=2)
    ribbon.remember_platform(sandbox.url)
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    new = [{"Username": f"guard.{i}@lumen.example", "First name": "G", "Last name": f"N{i}", "Email": f"guard.{i}@lumen.example",
            "Status": "Active"} for i in range(3)]
    edit(book, {}, new_rows=new, settings={"deletion_threshold_min": "2", "deletion_threshold_ratio": "0"})
    assert app.sync_workbook(book).confirmed == 3
    writes = len([r for r in sandbox.request_log if r.method != "GET"])
    with pytest.raises(DataError, match=r"would take access away from 3 users .* more than the deletion guard's threshold of 2"):
        undo_sync(book)
    assert run(["undo", str(book), "--yes"]) == 1
    assert len([r for r in sandbox.request_log if r.method != "GET"]) == writes  # nothing sent
    ui = RecordingUI(answers=[True])
    outcome = ribbon.dispatch("undo", OpenpyxlBook(book), ui)
    assert outcome.ok, outcome.message
    assert len(ui.questions) == 1 and "take access away from 3 users" in ui.questions[0] and ui.questions[0].endswith("Undo now?")
    assert all(platform_users(sandbox.url)[u["Username"]]["active"] is False for u in new)


def test_the_ribbon_undoes_the_last_sync_after_one_question(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROSTERBOOK_HOME", str(tmp_path / "home"))
    sandbox = fresh_sandbox(users=10, seed=2)
    ribbon.remember_platform(sandbox.url)
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    name = sorted(sheet_rows(book))[0]
    title = sheet_rows(book)[name]["Job title"]
    edit(book, {(name, "Job title"): "Ribbon title"})
    app.sync_workbook(book)
    no = RecordingUI(answers=[False])
    cancelled = ribbon.dispatch("undo", OpenpyxlBook(book), no)
    assert not cancelled.ok and cancelled.message == "Undo cancelled: nothing was sent."
    assert platform_users(sandbox.url)[name]["title"] == "Ribbon title"
    yes = RecordingUI(answers=[True])
    done = ribbon.dispatch("undo", OpenpyxlBook(book), yes)
    assert done.ok and done.message.startswith("Undo of sync ") and "1 of 1 rows put back" in done.message
    assert yes.questions[0].startswith("Undo sync ") and "1 update" in yes.questions[0]
    assert platform_users(sandbox.url)[name]["title"] == title
    assert sheet_rows(book)[name]["Job title"] == title
    nothing = ribbon.dispatch("undo", OpenpyxlBook(book), RecordingUI())
    assert nothing.ok and nothing.message.startswith("Nothing left to undo of sync")


def test_rows_sync_ids_and_what_undo_refuses(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sandbox = fresh_sandbox(users=12, seed=3)
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    assert run(["undo", str(book), "--yes"]) == 1
    assert "this workbook has no sync to undo" in capsys.readouterr().err
    rows = sheet_rows(book)
    a, b = sorted(rows)[:2]
    edit(book, {(a, "Job title"): "First sync"})
    first = app.sync_workbook(book)
    edit(book, {(a, "Job title"): "Second sync", (b, "Job title"): "Second sync"})
    second = app.sync_workbook(book)
    # --rows: only that user; the default is the last sync.
    result = undo_sync(book, rows=[rows[b]["_row"]])
    assert result.undo_of == second.sync_id and [r.key for r in result.rows] == [b]
    assert platform_users(sandbox.url)[a]["title"] == "Second sync"
    # --sync names an earlier one (its last part is enough): a field a later sync changed since is kept.
    capsys.readouterr()
    assert run(["undo", str(book), "--yes", "--sync", first.sync_id.rsplit("-", 1)[1]]) == 0
    out = capsys.readouterr().out
    assert f"Kept: row {rows[a]['_row']} {a} Job title: set to 'First sync' by that sync, now 'Second sync' on the platform" in out
    assert run(["undo", str(book), "--yes", "--sync", "nosuch"]) == 1
    assert "'nosuch' is not a sync of this workbook. The last syncs" in capsys.readouterr().err
    # An undo is a sync: naming its id redoes what it undid.
    assert platform_users(sandbox.url)[b]["title"] == rows[b]["Job title"]
    redo = undo_sync(book, sync_id=result.sync_id)
    assert redo.undo_of == result.sync_id and redo.confirmed == 1
    assert platform_users(sandbox.url)[b]["title"] == "Second sync"


def test_an_edited_history_is_refused_by_name_and_sync_still_works(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox = fresh_sandbox(users=8, seed=3)
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    name = sorted(sheet_rows(book))[0]
    edit(book, {(name, "Job title"): "Synced"})
    app.sync_workbook(book)
    wb = openpyxl.load_workbook(book)
    ws = wb[wbk.HISTORY]
    assert ws.sheet_state == "veryHidden"
    ws.cell(3, 3).value = str(ws.cell(3, 3).value).replace("Synced", "Forged")
    wb.save(book)
    with pytest.raises(DataError, match=r"_history: the sync history was edited outside rosterbook \(_history!A3 do not match their check\)"):
        undo_sync(book)
    edit(book, {(name, "Job title"): "Synced again"})
    assert app.sync_workbook(book).confirmed == 1  # a sync only appends: it never needs the old lines
    assert platform_users(sandbox.url)[name]["title"] == "Synced again"
