"""The rows and columns of a CSV platform's upload file, from a plan (no file writing here).

Which rows: only the users that change (create, update, archive), except where the platform
deactivates users missing from the file and that option is on (Incenteev): then the file is the
full user file, every user still in the sheet, so nobody is deactivated by accident. In a full
file a row that is not sent (error, conflict, skipped) carries the values as exported, and a new
user with an error is left out (it would be created otherwise).

Which columns: the dialect's columns with its exact header names, then custom fields. Where the
platform takes partial files (Jostle), only the key plus the columns that change on some row; a
blank cell there means "keep". Write-only columns (passwords) appear only when some row sets
one. Values are canonical text, which is the platform's own spelling (status words, ``; `` or
``|`` lists with ``\\|`` escapes, ISO dates). CSV writing and injection escaping are the
writer's job (``sync_client.csv_upload``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rosterbook.core.errors import DataError
from rosterbook.core.plan import Change, Plan, Settings
from rosterbook.core.table import SnapshotRow, Table


@dataclass(frozen=True, slots=True)
class _Entry:
    row: int
    key: str
    values: Mapping[str, str | None]
    secrets: Mapping[str, str]
    changed: frozenset[str]
    """Names of the fields that change (used for partial files)."""


def upload_rows(plan: Plan, table: Table, snapshot: Sequence[SnapshotRow], settings: Settings) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the upload file for ``plan`` (see the module docstring)."""
    dialect = plan.dialect
    if plan.refused:
        raise DataError(f"no upload file: the plan is refused: {plan.refusal}")
    full = dialect.missing_users == "option" and settings.deactivate_missing
    entries = _full_entries(plan, snapshot) if full else _changed_entries(plan)
    entries.sort(key=lambda e: e.row)
    needs = {c.name: c.requires for c in dialect.columns if c.requires}
    if needs:
        # A change to a column that requires others is applied only with them filled in the same row.
        entries = [_with_required(e, needs) for e in entries]
    extras = dialect.extra_headers(table.headers)
    partial = dialect.partial_columns and not full
    secret_names = {name for e in entries for name in e.secrets}
    if partial:
        changed = {name for e in entries for name in e.changed}
        columns = [c.name for c in dialect.columns if c.name == dialect.key or c.name in changed]
        columns += [h for h in extras if h in changed]
    else:
        columns = [c.name for c in dialect.columns if not c.write_only or c.name in secret_names]
        columns += [h for h in extras if any(e.values.get(h) is not None for e in entries)]
    rows: list[list[str]] = []
    for entry in entries:
        cells: list[str] = []
        for name in columns:
            if name in entry.secrets:
                value: str | None = entry.secrets[name]
            elif name in secret_names and name not in entry.values:
                value = None  # a password column other rows use: blank keeps this user's password
            elif partial and name != dialect.key and name not in entry.changed:
                value = None  # a blank cell in a partial file keeps the platform's value
            else:
                value = entry.values.get(name)
            if name == dialect.key and value is None and partial:
                value = entry.key
            cells.append(value or "")
        rows.append(cells)
    return columns, rows


def _with_required(entry: _Entry, needs: Mapping[str, tuple[str, ...]]) -> _Entry:
    extra = {r for name in entry.changed for r in needs.get(name, ())}
    return _Entry(entry.row, entry.key, entry.values, entry.secrets, entry.changed | extra) if extra else entry


def _entry(change: Change) -> _Entry:
    assert change.row is not None
    return _Entry(change.row, change.key, change.values, change.secrets, frozenset(change.fields))


def _changed_entries(plan: Plan) -> list[_Entry]:
    return [_entry(c) for c in plan.changes if c.action in ("create", "update", "archive") and c.row is not None]


def _full_entries(plan: Plan, snapshot: Sequence[SnapshotRow]) -> list[_Entry]:
    by_id = {s.row_id: s for s in snapshot}
    skipped_rows = {c.row for c in plan.skipped}
    entries: list[_Entry] = []
    sent = ("create", "update", "archive", "rename", "unchanged")
    for change in (*plan.changes, *plan.skipped):
        if change.row is None:
            continue  # removed from the sheet: left out, so the platform deactivates them
        if change.action in sent and change.row not in skipped_rows:
            entries.append(_entry(change))
            continue
        snap = by_id.get(change.row_id) if change.row_id is not None else None
        if snap is None:
            continue  # a new user who is not sent is simply not in the file
        values = change.current if change.action == "conflict" and change.current is not None else snap.values
        entries.append(_Entry(change.row, snap.key, values, {}, frozenset()))
    return entries
