"""The round trip against a real sandbox: export -> edit the .xlsx as a user would -> check -> preview -> sync -> export again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import requests

from rosterbook import app
from rosterbook import workbook as wbk
from rosterbook.errors import DataError, UsageError
from rosterbook.sandbox import Sandbox, start_sandbox

USERS = 30


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A fresh sandbox with a small demo organisation, on 127.0.0.1 and a free port."""
    with start_sandbox(tmp_path / "sandbox.sqlite3", users=USERS) as running:
        yield running


def _sheet(path: Path) -> tuple[Any, Any, dict[str, int]]:
    wb = openpyxl.load_workbook(path)
    ws = wb["Users"]
    cols = {str(c.value): c.column for c in ws[1] if c.value}
    return wb, ws, cols


def _rows_by_key(path: Path) -> dict[str, dict[str, Any]]:
    _, ws, cols = _sheet(path)
    out = {}
    for row in ws.iter_rows(min_row=2, values_only=True):
        if row[cols["Username"] - 1]:
            out[row[cols["Username"] - 1]] = {name: row[i - 1] for name, i in cols.items()}
    return out


def _find(ws: Any, cols: dict[str, int], *, status: str, skip: set[int]) -> int:
    for row in range(2, ws.max_row + 1):
        if row not in skip and ws.cell(row, cols["Status"]).value == status:
            skip.add(row)
            return row
    raise AssertionError(f"no {status} user left")


def test_round_trip_against_the_sandbox(tmp_path: Path, sandbox: Sandbox) -> None:
    book = tmp_path / "users.xlsx"
    exported = app.export_workbook(book, platform=sandbox.url)
    assert exported["rows"] == USERS and exported["source"] == "scim"
    assert "Team" in exported["lists"] and exported["lists"]["Status"] == 3

    # Edit as a user would, with openpyxl: change status, team, roles; add a row; edit an email; delete a row.
    wb, ws, cols = _sheet(book)
    used: set[int] = set()
    archived = _find(ws, cols, status="Active", skip=used)
    team_row = _find(ws, cols, status="Active", skip=used)
    roles_row = _find(ws, cols, status="Active", skip=used)
    email_row = _find(ws, cols, status="Active", skip=used)
    deleted = _find(ws, cols, status="Active", skip=used)
    key = {r: ws.cell(r, cols["Username"]).value for r in (archived, team_row, roles_row, email_row, deleted)}
    teams = [c.value for c in wb["Lists"][openpyxl.utils.get_column_letter(1 + list(_lists_header(wb)).index("Team"))][1:] if c.value]
    new_team = next(t for t in teams if t != ws.cell(team_row, cols["Team"]).value)
    ws.cell(archived, cols["Status"]).value = "Archived"
    ws.cell(team_row, cols["Team"]).value = new_team
    ws.cell(roles_row, cols["Roles"]).value = "Author; Reviewer"
    ws.cell(email_row, cols["Email"]).value = "brand.new.address@example.org"
    last = ws.max_row + 1
    for name, value in {"Username": "new.hire", "First name": "Nia", "Last name": "Hire", "Email": "new.hire@example.org",
                        "Status": "Active", "Team": new_team}.items():
        ws.cell(last, cols[name]).value = value
    ws.delete_rows(deleted)  # shifts the rows below up: identity rides on the hidden _row_id
    wb.save(book)

    report = app.check_workbook(book)
    assert report.errors == 0, report.render_text()

    plan = app.preview_workbook(book)
    assert {k: v for k, v in plan.counts.items() if v and k != "unchanged"} == {"create": 1, "update": 3, "archive": 1}
    assert plan.invitations == ("new.hire",)
    preview = openpyxl.load_workbook(book)["Preview"]
    assert ["create", 1] in [[r[0], r[1]] for r in preview.iter_rows(values_only=True)]

    result = app.sync_workbook(book)
    assert (result["sent"], result["confirmed"], result["failed"], result["ok"]) == (5, 5, 0, True)
    log = list(openpyxl.load_workbook(book)["Sync log"].iter_rows(min_row=2, values_only=True))
    assert sorted((r[2], r[3], r[4]) for r in log) == sorted(
        [(key[archived], "archive", "ok"), (key[team_row], "update", "ok"), (key[roles_row], "update", "ok"),
         (key[email_row], "update", "ok"), ("new.hire", "create", "ok")]
    )
    statuses = {k: v["Sync status"] for k, v in _rows_by_key(book).items() if v["Sync status"]}
    assert set(statuses) == {key[archived], key[team_row], key[roles_row], key[email_row], "new.hire"}
    assert statuses["new.hire"].startswith("created ")

    # Nothing left to send: a second sync sends nothing.
    assert app.sync_workbook(book)["sent"] == 0

    # Export again: the platform holds every edit; the deleted row's user is still there (SCIM ignores missing rows).
    app.export_workbook(book, platform=sandbox.url)
    again = _rows_by_key(book)
    assert len(again) == USERS + 1
    assert again[key[archived]]["Status"] == "Archived"
    assert again[key[team_row]]["Team"] == new_team
    assert again[key[roles_row]]["Roles"] == "Author; Reviewer"
    assert again[key[email_row]]["Email"] == "brand.new.address@example.org"
    assert again["new.hire"]["Team"] == new_team and again["new.hire"]["Status"] == "Active"
    assert key[deleted] in again
    assert app.preview_workbook(book).sendable() == []


def _lists_header(wb: Any) -> list[str]:
    return [c.value for c in wb["Lists"][1]]


def test_platform_text_is_inert_in_the_workbook(tmp_path: Path, sandbox: Sandbox) -> None:
    hostile = '=HYPERLINK("http://evil.example","click")'
    response = requests.post(
        f"{sandbox.url}/Users",
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "mallory", "name": {"givenName": hostile, "familyName": "+SUM(1)"}},
        timeout=10,
    )
    assert response.status_code == 201
    book = tmp_path / "users.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    _, ws, cols = _sheet(book)
    row = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, cols["Username"]).value == "mallory")
    for name, text in (("First name", hostile), ("Last name", "+SUM(1)")):
        cell = ws.cell(row, cols[name])
        assert (cell.value, cell.data_type) == (text, "s")


def test_unsynced_edits_block_re_export_unless_forced(tmp_path: Path, sandbox: Sandbox) -> None:
    book = tmp_path / "users.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    wb, ws, cols = _sheet(book)
    ws.cell(3, cols["Job title"]).value = "Chief Tea Officer"
    wb.save(book)
    with pytest.raises(DataError, match=r"unsynced edits in 1 row \(3\)"):
        app.export_workbook(book, platform=sandbox.url)
    app.export_workbook(book, platform=sandbox.url, force=True)
    assert openpyxl.load_workbook(book)["Users"].cell(3, cols["Job title"]).value != "Chief Tea Officer"


def test_conflicts_refuse_the_sync_until_skipped(tmp_path: Path, sandbox: Sandbox) -> None:
    book = tmp_path / "users.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    wb, ws, cols = _sheet(book)
    ws.cell(2, cols["Job title"]).value = "Edited in the sheet"
    ws.cell(3, cols["Job title"]).value = "Also edited"
    wb.save(book)
    # Someone changes row 2's user on the platform after the export.
    snapshot = app.load(app.open_book(book)).snapshot
    rid = wbk.read_users(app.open_book(book), app.load(app.open_book(book)).dialect).row_ids[2]
    platform_id = snapshot[rid].resource_id
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "title", "value": "Changed on the platform"}]}
    assert requests.patch(f"{sandbox.url}/Users/{platform_id}", json=patch, timeout=10).status_code in (200, 204)

    plan = app.preview_workbook(book)
    assert plan.counts["conflict"] == 1 and plan.counts["update"] == 1
    with pytest.raises(DataError, match=r"changed on the platform since the export \(row 2\).*--skip-rows 2"):
        app.sync_workbook(book)
    result = app.sync_workbook(book, skip_rows=[2])
    assert (result["sent"], result["confirmed"]) == (1, 1)
    current = requests.get(f"{sandbox.url}/Users/{platform_id}", timeout=10).json()
    assert current["title"] == "Changed on the platform"  # never overwritten


def test_partial_failure_then_rerun_sends_only_what_is_left(tmp_path: Path, sandbox: Sandbox) -> None:
    book = tmp_path / "users.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    # A user appears on the platform after the export; the sheet adds the same userName.
    created = requests.post(f"{sandbox.url}/Users", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "late.comer"}, timeout=10)
    assert created.status_code == 201
    wb, ws, cols = _sheet(book)
    ws.cell(2, cols["Job title"]).value = "Updated fine"
    last = ws.max_row + 1
    for name, value in {"Username": "late.comer", "First name": "Late", "Last name": "Comer", "Email": "late@example.org", "Status": "Pending"}.items():
        ws.cell(last, cols[name]).value = value
    wb.save(book)
    first = app.sync_workbook(book)
    outcomes = {r["key"]: r["outcome"] for r in first["rows"]}
    assert outcomes["late.comer"] == "failed" and first["failed"] == 1 and first["confirmed"] == 1
    assert first["ok"] is False
    failed = next(r for r in first["rows"] if r["key"] == "late.comer")
    assert failed["http_status"] == 409
    second = app.sync_workbook(book)
    assert [r["key"] for r in second["rows"]] == ["late.comer"]  # the confirmed update is not sent again
    log = list(openpyxl.load_workbook(book)["Sync log"].iter_rows(min_row=2, values_only=True))
    assert [(r[2], r[4]) for r in log].count(("late.comer", "failed")) == 2


def test_errors_refuse_the_sync_and_revert_restores(tmp_path: Path, sandbox: Sandbox) -> None:
    book = tmp_path / "users.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    before = _rows_by_key(book)
    wb, ws, cols = _sheet(book)
    original_status = ws.cell(4, cols["Status"]).value
    ws.cell(4, cols["Status"]).value = "actve"
    ws.cell(5, cols["Job title"]).value = "Typo-free edit"
    gone = ws.cell(6, cols["Username"]).value
    ws.delete_rows(6)
    extra = ws.max_row + 1
    ws.cell(extra, cols["Username"]).value = "temp.row"
    wb.save(book)
    with pytest.raises(DataError, match=rf"2 rows have errors \(rows 4, {extra}\).*--skip-rows 4,{extra}\."):
        app.sync_workbook(book)
    report = app.check_workbook(book)
    assert [(p.cell, p.code) for p in report.problems if p.severity == "error"][:1] == [(f"{openpyxl.utils.get_column_letter(cols['Status'])}4", "unknown-status")]
    problems_cell = openpyxl.load_workbook(book)["Users"].cell(4, cols["Problems"]).value
    assert problems_cell.startswith(f"{openpyxl.utils.get_column_letter(cols['Status'])}4 Status:")

    result = app.revert_rows(book, [4]).to_dict()
    assert result == {"reverted": [4], "cleared": [], "restored": []}
    assert openpyxl.load_workbook(book)["Users"].cell(4, cols["Status"]).value == original_status
    assert " Status:" not in (openpyxl.load_workbook(book)["Users"].cell(4, cols["Problems"]).value or "")

    result = app.revert_rows(book).to_dict()
    assert result["reverted"] == [5] and result["restored"] == [gone] and len(result["cleared"]) == 1
    assert _rows_by_key(book).keys() == before.keys()
    assert all(_rows_by_key(book)[k]["Job title"] == v["Job title"] for k, v in before.items())
    assert app.preview_workbook(book).sendable() == []


def test_guard_refuses_mass_archive_until_confirmed(tmp_path: Path, sandbox: Sandbox) -> None:
    book = tmp_path / "users.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    wb, ws, cols = _sheet(book)
    settings_rows = {r[0].value: r[1] for r in wb["Settings"].iter_rows(min_row=2) if r[0].value}
    settings_rows["deletion_threshold_min"].value = "2"
    archived = 0
    for row in range(2, ws.max_row + 1):
        if ws.cell(row, cols["Status"]).value == "Active" and archived < 3:
            ws.cell(row, cols["Status"]).value = "Archived"
            archived += 1
    wb.save(book)
    requests_before, version_before = sandbox.request_count, sandbox.storage.last_version
    with pytest.raises(DataError, match=r"would take access away from 3 users .*, more than the deletion guard's threshold of 2; nothing was sent"):
        app.sync_workbook(book)
    # The refused attempt only read the platform's current versions: no write reached it, nothing changed there.
    asked = sandbox.request_log[-(sandbox.request_count - requests_before):]
    assert asked and {r.method for r in asked} == {"GET"}, [(r.method, r.path) for r in asked]
    assert sandbox.storage.last_version == version_before
    assert app.sync_workbook(book, confirm_deletions=True)["confirmed"] == 3
    assert sandbox.storage.last_version == version_before + 3


def test_cancelled_confirmation_sends_nothing(tmp_path: Path, sandbox: Sandbox) -> None:
    book = tmp_path / "users.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    wb, ws, cols = _sheet(book)
    ws.cell(2, cols["Job title"]).value = "Never sent"
    wb.save(book)
    asked: list[dict[str, int]] = []

    def say_no(plan: Any) -> bool:
        asked.append(dict(plan.counts))
        return False

    count = sandbox.request_count
    with pytest.raises(app.SyncCancelled):
        app.sync_workbook(book, confirm=say_no)
    assert asked[0]["update"] == 1
    assert not any(r.method in ("POST", "PATCH", "PUT", "DELETE") for r in sandbox.request_log[count:])


@pytest.mark.parametrize(("spec", "rows"), [("7", [7]), ("7,9-12", [7, 9, 10, 11, 12]), (" 3 , 3,2", [2, 3]), (None, [])])
def test_parse_rows(spec: str | None, rows: list[int]) -> None:
    assert app.parse_rows(spec) == rows


@pytest.mark.parametrize(
    ("spec", "message"),
    [("x", r"'x' is not a row number or range"), ("5-3", "runs backwards"), ("1", "row 1 is the header"), ("2-", "is not a row number")],
)
def test_parse_rows_errors(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        app.parse_rows(spec)


class _Crash(Exception):
    """Stands for the process dying (power cut, Ctrl-C) between two batches."""


def test_a_sync_that_dies_mid_way_is_resumable(tmp_path: Path, sandbox: Sandbox) -> None:
    book = tmp_path / "users.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    wb, ws, cols = _sheet(book)
    titles = {row: f"Batch title {row}" for row in range(2, 6)}
    for row, title in titles.items():
        ws.cell(row, cols["Job title"]).value = title
    wb.save(book)

    calls: list[tuple[int, int]] = []

    def crash_in_second_batch(stage: str, done: int, total: int) -> None:
        if stage == "Syncing" and total == 2:  # the client's progress within one batch of two rows
            calls.append((done, total))
            if len(calls) == 3:  # the first row of the second batch was sent, then the process dies
                raise _Crash

    with pytest.raises(_Crash):
        app.sync_workbook(book, progress=crash_in_second_batch, batch=2)
    log = list(openpyxl.load_workbook(book)["Sync log"].iter_rows(min_row=2, values_only=True))
    assert [(r[1], r[4]) for r in log] == [("2", "ok"), ("3", "ok")]  # the first batch was saved with its outcomes
    # Rows 4 and 5 reached the platform before the crash (one Bulk request) without being recorded: the
    # re-run sees the platform already holds them, records them and sends nothing (no conflict, no duplicate).
    again = app.sync_workbook(book, batch=2)
    assert again["sent"] == 0 and again["ok"]
    log = list(openpyxl.load_workbook(book)["Sync log"].iter_rows(min_row=2, values_only=True))
    assert [(r[1], r[4]) for r in log] == [("2", "ok"), ("3", "ok"), ("4", "ok"), ("5", "ok")]
    assert "already on the platform" in log[2][8]
    assert app.preview_workbook(book).sendable() == []
    app.export_workbook(book, platform=sandbox.url)
    rows = openpyxl.load_workbook(book)["Users"]
    assert {rows.cell(r, cols["Job title"]).value for r in range(2, rows.max_row + 1)} >= set(titles.values())


def test_exported_pipe_lists_are_not_taken_for_unescaped_names(tmp_path: Path, sandbox: Sandbox) -> None:
    """The platform's own 'Kraków|Lagos' (two known locations) is no warning; a typed 'Main|HQ' still is."""
    book = tmp_path / "users.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    wb, ws, cols = _sheet(book)
    pipes = [r for r in range(2, ws.max_row + 1) if "|" in str(ws.cell(r, cols["Locations"]).value or "").replace("\\|", "")]
    assert pipes, "the demo organisation has users with several locations"
    assert not [p for p in app.check_workbook(book, write=False).problems if p.code == "unescaped-separator"]
    ws.cell(pipes[0], cols["Locations"]).value = "Main|HQ"
    wb.save(book)
    found = [p for p in app.check_workbook(book, write=False).problems if p.code == "unescaped-separator"]
    assert [(p.row, p.column, p.fix) for p in found] == [(pipes[0], "Locations", "Main\\|HQ")]


def test_an_id_excel_turned_into_a_number_is_caught_not_sent(tmp_path: Path, sandbox: Sandbox) -> None:
    """'000123' typed back (or converted) as the number 123 is an error with the exported value as the fix."""
    book = tmp_path / "users.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    wb, ws, cols = _sheet(book)
    row = next(r for r in range(2, ws.max_row + 1) if str(ws.cell(r, cols["Employee ID"]).value or "").startswith("0"))
    exported = ws.cell(row, cols["Employee ID"]).value
    ws.cell(row, cols["Employee ID"]).value = int(exported)
    wb.save(book)
    found = [p for p in app.check_workbook(book, write=False).problems if p.code == "lost-leading-zeros"]
    assert [(p.row, p.column, p.fix) for p in found] == [(row, "Employee ID", exported)]
    before = sandbox.request_count
    with pytest.raises(DataError, match="errors"):
        app.sync_workbook(book, confirm=lambda plan: True)
    assert sandbox.request_count == before


def test_edited_rows_are_the_rows_the_core_diff_changes(tmp_path: Path, sandbox: Sandbox) -> None:
    book = tmp_path / "users.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    wb, ws, cols = _sheet(book)
    listed = next(r for r in range(2, ws.max_row + 1) if "; " in str(ws.cell(r, cols["Groups"]).value or ""))
    blank = next(r for r in range(2, ws.max_row + 1) if r != listed and ws.cell(r, cols["Manager"]).value is None)
    groups = str(ws.cell(listed, cols["Groups"]).value).split("; ")
    # Edits that change nothing on the platform: list items re-ordered, a clear word where nothing was set.
    ws.cell(listed, cols["Groups"]).value = "; ".join(reversed(groups))
    ws.cell(blank, cols["Manager"]).value = "(clear)"
    wb.save(book)
    loaded = app.load(app.open_book(book))
    assert app.edited_rows(loaded) == {}
    app.export_workbook(book, platform=sandbox.url)  # nothing to lose: no --force needed

    wb, ws, cols = _sheet(book)
    ws.cell(3, cols["Job title"]).value = "Chief Tea Officer"
    wb.save(book)
    loaded = app.load(app.open_book(book))
    edits = app.edited_rows(loaded)
    plan = app.preview_workbook(book, home=tmp_path)
    assert edits == {3: {"Job title": "Chief Tea Officer"}}
    assert sorted(edits) == [c.row for c in plan.changes if c.action != "unchanged"]
