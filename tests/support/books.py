"""Helpers for tests that edit real .xlsx workbooks as a user would and read a SCIM platform directly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
from openpyxl import load_workbook

from rosterbook import workbook as wbk

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
HR = "urn:rosterbook:params:scim:schemas:extension:hr:2.0:User"
SCIM_JSON = {"Content-Type": "application/scim+json"}


def sheet_rows(path: Path, key: str = "Username") -> dict[str, dict[str, Any]]:
    """The Users sheet's rows by ``key``: every header -> cell value (row number under ``_row``)."""
    wb = load_workbook(path)
    ws = wb[wbk.USERS]
    headers = [str(c.value) if c.value is not None else "" for c in ws[1]]
    out: dict[str, dict[str, Any]] = {}
    for number, cells in enumerate(ws.iter_rows(min_row=2, values_only=True), start=2):
        values = dict(zip(headers, cells, strict=False))
        if values.get(key):
            out[str(values[key])] = {**values, "_row": number}
    wb.close()
    return out


def edit(path: Path, cells: Mapping[tuple[str, str], Any], *, settings: Mapping[str, Any] | None = None,
         new_rows: Sequence[Mapping[str, Any]] = (), key: str = "Username") -> None:
    """Type values into the Users sheet: ``{(key, column): value}``; append ``new_rows``; change Settings values."""
    wb = load_workbook(path)
    ws = wb[wbk.USERS]
    col = {str(c.value): c.column for c in ws[1] if c.value is not None}
    rows = {str(ws.cell(r, col[key]).value): r for r in range(2, ws.max_row + 1) if ws.cell(r, col[key]).value}
    for (name, column), value in cells.items():
        ws.cell(rows[name], col[column]).value = value
    last = max(rows.values(), default=1)
    for offset, values in enumerate(new_rows, start=1):
        for column, value in values.items():
            ws.cell(last + offset, col[column]).value = value
    if settings:
        for setting in wb[wbk.SETTINGS].iter_rows(min_row=2):
            if setting[0].value in settings:
                setting[1].value = settings[setting[0].value]
    wb.save(path)


def edit_rows(path: Path, edits: Mapping[tuple[int, str], Any], *, new: Mapping[str, Any] | None = None, delete: int | None = None,
              settings: Mapping[str, str] | None = None) -> None:
    """Edit the Users sheet as a user would in Excel, by row number: ``{(row, column): value}``, a new row at the bottom,
    a deleted row; Settings values."""
    wb = load_workbook(path)
    ws = wb[wbk.USERS]
    cols = {str(c.value): c.column for c in ws[1] if c.value}
    for (row, header), value in edits.items():
        ws.cell(row, cols[header]).value = value
    if new:
        last = max(r for r in range(1, ws.max_row + 1) if any(ws.cell(r, c).value for c in cols.values())) + 1
        for header, value in new.items():
            ws.cell(last, cols[header]).value = value
    if delete is not None:
        ws.delete_rows(delete)
    for name, value in (settings or {}).items():
        sheet = wb[wbk.SETTINGS]
        row = next(r for r in range(1, sheet.max_row + 1) if sheet.cell(r, 1).value == name)
        sheet.cell(row, 2).value = value
    wb.save(path)


def log_entries(path: Path) -> list[dict[str, Any]]:
    """The Sync log's entries as dicts by header."""
    wb = load_workbook(path, read_only=True)
    grid = [list(r) for r in wb[wbk.SYNC_LOG].iter_rows(values_only=True)]
    wb.close()
    headers = [str(h) for h in grid[0]]
    return [dict(zip(headers, r, strict=False)) for r in grid[1:] if any(c is not None for c in r)]


def platform_users(url: str) -> dict[str, dict[str, Any]]:
    """Every user on the platform by userName (raw SCIM JSON), read directly."""
    out: dict[str, dict[str, Any]] = {}
    start = 1
    while True:
        page = requests.get(f"{url}/Users", params={"startIndex": start, "count": 1000}, timeout=60).json()
        for user in page.get("Resources", []):
            out[user["userName"]] = user
        start += len(page.get("Resources", []))
        if not page.get("Resources") or start > int(page["totalResults"]):
            return out


def platform_groups(url: str) -> dict[str, set[str]]:
    """Group displayName -> member ids, read directly."""
    page = requests.get(f"{url}/Groups", params={"count": 1000}, timeout=60).json()
    return {g["displayName"]: {m["value"] for m in g.get("members") or ()} for g in page.get("Resources", [])}


def patch_user(url: str, user_id: str, operations: list[dict[str, Any]]) -> None:
    """Another admin's change on the platform (a PATCH straight to the server)."""
    body = {"schemas": [PATCH_OP], "Operations": operations}
    answer = requests.patch(f"{url}/Users/{user_id}", json=body, headers=SCIM_JSON, timeout=30)
    assert answer.status_code in (200, 204), answer.text


ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def platform_state(url: str) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Every user and group as the server holds it, by id, without ``meta`` (versions and times move with any write);
    a group's members as a sorted list of ids.

    The enterprise manager's ``displayName`` is left out too: RFC 7643 makes it read-only, the server's copy of the
    manager's name; the sandbox keeps whatever a client sent, and rosterbook sends the manager by id only.
    """
    users: dict[str, dict[str, Any]] = {}
    for user in platform_users(url).values():
        body = {k: v for k, v in user.items() if k != "meta"}
        manager = (body.get(ENTERPRISE) or {}).get("manager")
        if isinstance(manager, dict):
            body[ENTERPRISE] = {**body[ENTERPRISE], "manager": {k: v for k, v in manager.items() if k != "displayName"}}
        users[str(user["id"])] = body
    page = requests.get(f"{url}/Groups", params={"count": 1000}, timeout=60).json()
    groups = {str(g["id"]): {**{k: v for k, v in g.items() if k not in ("meta", "members")},
                             "members": sorted(m["value"] for m in g.get("members") or ())} for g in page.get("Resources", [])}
    return users, groups


def as_format_2(ws: Any) -> None:
    """Make an openpyxl snapshot sheet what rosterbook wrote before the updates sheet (format 2): the format's name,
    and a digest summed over each line's (row, check) instead of a hash of the lines."""
    count = total = 0
    for row in ws.iter_rows(min_row=2, max_col=2):
        if row[0].value is not None:
            count, total = count + 1, total + wbk._place(row[0].row, str(row[1].value))
    ws["D1"] = "rosterbook-snapshot-2"
    ws["E1"] = wbk._digest(count, total)
