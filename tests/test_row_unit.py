"""A row is one unit: a row whose own user operation fails sends none of its group memberships; a row
whose user operation went through but a membership did not is "partly applied", the Sync log says
exactly what went through, and the snapshot records exactly what the platform confirmed (the next
preview shows only what is left). Against the sandbox on loopback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from openpyxl import load_workbook
from support.books import edit, log_entries, platform_groups, platform_users, sheet_rows

from rosterbook import app
from rosterbook import workbook as wbk
from rosterbook.sandbox import Sandbox


@pytest.fixture(autouse=True)
def _no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROSTERBOOK_TOKEN", raising=False)


def _groups_of(url: str, user_id: str) -> set[str]:
    return {name for name, members in platform_groups(url).items() if user_id in members}


def test_a_rename_refused_with_409_changes_no_group(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox = fresh_sandbox(users=20, seed=2)
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    rows = sheet_rows(book)
    a = sorted(rows)[0]
    # After the export, someone creates a user on the platform whose username the sheet then gives to row a.
    b = "taken.since.export@lumen.example"
    created = requests.post(f"{sandbox.url}/Users", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": b},
                            headers={"Content-Type": "application/scim+json"}, timeout=30)
    assert created.status_code == 201
    users = platform_users(sandbox.url)
    groups = sorted(platform_groups(sandbox.url))
    wanted = next(g for g in groups if g not in _groups_of(sandbox.url, users[a]["id"]))
    before = platform_groups(sandbox.url)
    # Row a takes b's username (taken on the platform: 409) and joins a group in the same row.
    edit(book, {(a, "Username"): b.upper(), (a, "Groups"): "; ".join(sorted(_groups_of(sandbox.url, users[a]["id"]) | {wanted}))})
    result = app.sync_workbook(book)
    [row] = result.rows
    assert (row.outcome, row.http_status) == ("failed", 409)
    assert platform_groups(sandbox.url) == before  # the row's membership change was never sent
    assert platform_users(sandbox.url)[a]["id"] == users[a]["id"]
    [entry] = log_entries(book)
    assert (entry["Outcome"], entry["Action"]) == ("failed", "rename")


def test_a_membership_that_fails_leaves_the_row_partly_applied(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox = fresh_sandbox(users=20, seed=2)
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    name = sorted(sheet_rows(book))[3]
    user = platform_users(sandbox.url)[name]
    mine = _groups_of(sandbox.url, user["id"])
    group_ids = {g: gid for g, gid in ((g["displayName"], g["id"]) for g in _all_groups(sandbox.url))}
    joining = sorted(g for g in group_ids if g not in mine)[0]
    edit(book, {(name, "Job title"): "Partly Applied", (name, "Groups"): "; ".join(sorted(mine | {joining}))})
    sandbox.faults.add(500, method="PATCH", path=f"/Groups/{group_ids[joining]}", times=1)
    result = app.sync_workbook(book)
    [row] = result.rows
    assert row.outcome == "partial" and not result.ok and result.failed == 1
    assert row.message.startswith("the user's own change went through; not added to ") and repr(joining) in row.message
    assert platform_users(sandbox.url)[name]["title"] == "Partly Applied"
    assert _groups_of(sandbox.url, user["id"]) == mine
    [entry] = log_entries(book)
    assert entry["Outcome"] == "partial" and "not added to" in str(entry["Message"])
    assert str(sheet_rows(book)[name][wbk.SYNC_STATUS]).startswith("update partly applied ")
    # The snapshot holds exactly what went through: the next preview shows only the group left to add.
    plan = app.preview_workbook(book)
    [change] = [c for c in plan.changes if c.action == "update"]
    assert set(change.fields) == {"Groups"}
    again = app.sync_workbook(book)
    assert again.ok and _groups_of(sandbox.url, user["id"]) == mine | {joining}


def _all_groups(url: str) -> list[dict[str, str]]:
    return list(requests.get(f"{url}/Groups", params={"count": 1000}, timeout=30).json()["Resources"])


def _sort_visible_columns(path: Path, column: str) -> None:
    """Sort the Users rows by one column, moving every visible cell but leaving the hidden _row_id column in place
    (what selecting the visible columns and sorting them does)."""
    wb = load_workbook(path)
    ws = wb[wbk.USERS]
    headers = [c.value for c in ws[1]]
    rid = headers.index(wbk.ROW_ID)
    by = headers.index(column)
    rows = [list(r) for r in ws.iter_rows(min_row=2, max_row=ws.max_row, values_only=True)]
    ids = [r[rid] for r in rows]
    ordered = sorted(rows, key=lambda r: (str(r[by] or ""), str(r[0])))
    for number, (cells, row_id) in enumerate(zip(ordered, ids, strict=True), start=2):
        for index, value in enumerate(cells):
            ws.cell(number, index + 1).value = row_id if index == rid else value
    wb.save(path)


def test_sorting_only_the_visible_columns_scrambles_no_group(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    sandbox = fresh_sandbox(users=250, seed=6)
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    groups_before = platform_groups(sandbox.url)
    users_before = platform_users(sandbox.url)
    _sort_visible_columns(book, "Last name")
    plan = app.preview_workbook(book)
    assert plan.counts["rename"] + plan.counts["archive"] > 200, plan.counts  # nearly every row now names another user

    result = app.sync_workbook(book, confirm_deletions=True)
    assert platform_groups(sandbox.url) == groups_before  # no membership changed anywhere
    after = platform_users(sandbox.url)
    by_id = {u["id"]: u for u in after.values()}
    # Every row's outcome in the log is true: a failed row changed nothing, an ok row holds what the sheet says.
    rows = {r["_row"]: r for r in sheet_rows(book).values()}
    for entry in log_entries(book):
        assert entry["Outcome"] in ("ok", "failed"), entry
        if entry["Outcome"] == "failed":
            assert str(entry["HTTP status"]) == "409", entry
        else:
            row = rows[int(entry["Row"])]
            assert after[row["Username"]]["title"] == row["Job title"], entry
    failed = sum(1 for e in log_entries(book) if e["Outcome"] == "failed")
    assert failed == result.failed and failed > 200
    assert {u["id"]: u["userName"] for u in users_before.values()} == {i: u["userName"] for i, u in by_id.items()}
