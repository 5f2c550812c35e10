"""The README's first command: the whole round trip against the embedded sandbox, told step by step."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rosterbook import workbook as wbk
from rosterbook.app import check_workbook, export_workbook, preview_workbook, sync_workbook
from rosterbook.core.codecs import canonical_or_text
from rosterbook.core.dialects import Dialect
from rosterbook.errors import DataError
from rosterbook.session import Loaded, Session, open_book
from rosterbook.sheets import SheetBook


def run_demo(
    *,
    home: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    echo: Callable[[str], Any] = print,
) -> int:
    """The README's first command: the whole round trip against the embedded sandbox, told step by step.

    Export -> simulated edits (archive, activate, team, roles, email, a deleted row, a new user
    with a typo) -> check -> fix -> preview -> sync -> export again, checking the platform now
    holds every edit. Returns the exit code (0 when the round trip held).
    """
    from rosterbook.sandbox import default_home

    folder = Path(home) if home is not None else default_home()
    path = Path(out) if out is not None else folder / "demo" / "demo.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%H%M%S%f")[:9]

    echo(f"1. Export: the embedded sandbox (data in {folder}) -> {path}")
    result = export_workbook(path, force=True, home=folder)
    echo(f"   {result['rows']} users, {len(result['columns'])} columns, lists: " + ", ".join(f"{k} ({v})" for k, v in result["lists"].items()))

    echo("2. Edit the workbook as a user would:")
    book = open_book(path)
    loaded = Session.open(book).loaded
    intended = _demo_edits(book, loaded, stamp, echo)
    book.save()

    echo("3. Check:")
    report = check_workbook(path)
    shown = [p for p in report.problems if p.severity == "error"] + [p for p in report.problems if p.severity == "warning"][:3]
    for problem in shown:
        echo(f"   {problem.render()}")
    if len(report.problems) > len(shown):
        echo(f"   ... and {len(report.problems) - len(shown)} more warnings (the Problems column has them all)")
    echo(f"   {report.summary()}")
    fixes = [p for p in report.problems if p.severity == "error" and p.fix is not None]
    if fixes:
        book = open_book(path)
        for problem in fixes:
            book.write_values(wbk.USERS, problem.row, _column_index(problem.cell), [[problem.fix]])
        book.save()
        echo(f"   fix: {', '.join(f'{p.cell} -> {p.fix!r}' for p in fixes)}")
        report = check_workbook(path)
        echo(f"   check again: {report.summary()}")
    if not report.ok:
        echo("   the sheet still has errors: stopping here.")
        return 1

    echo("4. Preview:")
    plan = preview_workbook(path, home=folder)
    echo("   " + ", ".join(f"{n} {a}" for a, n in plan.counts.items() if n))
    if plan.invitations:
        echo(f"   invitation emails: {len(plan.invitations)} ({', '.join(plan.invitations)})")
    for change in plan.changes:
        if change.action == "unchanged":
            continue
        fields_ = "; ".join(f"{k}: {v.before!r} -> {v.after!r}" for k, v in sorted(change.fields.items()))
        echo(f"   row {change.row} {change.action} {change.key}: {fields_}")

    echo("5. Sync:")
    synced = sync_workbook(path, home=folder)
    echo(f"   sent {synced['sent']} rows: {synced['confirmed']} confirmed, {synced['failed']} failed (see the Sync log sheet)")
    if not synced["ok"]:
        return 1

    echo("6. Export again:")
    again = export_workbook(path, home=folder)
    fresh = Session.open(path, read_only=True).loaded
    by_key = {r.text(fresh.dialect.key): r for r in fresh.table.rows}
    missing = []
    for key, values in intended.items():
        row = by_key.get(key)
        if row is None or any(_canon(fresh.dialect, name, row.text(name)) != _canon(fresh.dialect, name, text) for name, text in values.items()):
            missing.append(key)
    echo(f"   {again['rows']} users; {len(intended) - len(missing)} of {len(intended)} edited users read back as edited.")
    if missing:
        echo(f"   not as edited: {', '.join(missing)}")
        return 1
    echo(f"Done. Open {path} to see the Users, Preview and Sync log sheets.")
    return 0


def _column_index(cell: str) -> int:
    letters = "".join(ch for ch in cell if ch.isalpha())
    index = 0
    for ch in letters:
        index = index * 26 + ord(ch.upper()) - 64
    return index


def _demo_edits(book: SheetBook, loaded: Loaded, stamp: str, echo: Callable[[str], Any]) -> dict[str, dict[str, str | None]]:
    """Edit the demo workbook; return key -> the values the platform should then hold."""
    table = loaded.table
    dialect = loaded.dialect
    pos = table.positions
    status = dialect.status_column or "Status"
    rows = list(table.rows)
    intended: dict[str, dict[str, str | None]] = {}

    def put(row_number: int, column: str, value: str | None) -> None:
        book.write_values(wbk.USERS, row_number, pos[column], [[value]])

    def key_of(row: Any) -> str:
        return row.text(dialect.key) or ""

    active = [r for r in rows if r.text(status) == "Active"]
    pending = [r for r in rows if r.text(status) == "Pending"]
    used: set[int] = set()

    def pick(candidates: Sequence[Any]) -> Any:
        for row in candidates:
            if row.number not in used:
                used.add(row.number)
                return row
        raise DataError("the demo organisation has too few users for the demo; start from a fresh sandbox home.")

    row = pick(active)
    put(row.number, status, "Archived")
    intended[key_of(row)] = {status: "Archived"}
    echo(f"   row {row.number} {key_of(row)}: {status} Active -> Archived")
    if pending:
        row = pick(pending)
        put(row.number, status, "Active")
        intended[key_of(row)] = {status: "Active"}
        echo(f"   row {row.number} {key_of(row)}: {status} Pending -> Active")
    teams = loaded.lists.get("Team") or []
    if "Team" in pos and len(teams) > 1:
        row = pick(active)
        now = row.text("Team")
        team = next(t for t in teams if t != now)
        put(row.number, "Team", team)
        intended[key_of(row)] = {"Team": team}
        echo(f"   row {row.number} {key_of(row)}: Team {now!r} -> {team!r}")
    if "Roles" in pos:
        row = pick(active)
        roles = "Manager; Reviewer" if row.text("Roles") != "Manager; Reviewer" else "Learner"
        put(row.number, "Roles", roles)
        intended[key_of(row)] = {"Roles": roles}
        echo(f"   row {row.number} {key_of(row)}: Roles {row.text('Roles')!r} -> {roles!r}")
    if "Email" in pos:
        row = pick(active)
        email = f"{key_of(row).split('@')[0]}.{stamp}@example.org"
        put(row.number, "Email", email)
        intended[key_of(row)] = {"Email": email}
        echo(f"   row {row.number} {key_of(row)}: Email -> {email!r}")
    row = pick(rows)
    width = loaded.users.data_width
    book.write_values(wbk.USERS, row.number, 1, [[None] * len(loaded.users.headers)])
    echo(f"   row {row.number} {key_of(row)}: deleted (the scim dialect leaves users missing from the sheet alone)")
    new_row = loaded.users.last_row + 1
    new_key = f"demo.user{stamp}"
    new_values = {dialect.key: new_key, "First name": "Dana", "Last name": "Démo", "Email": f"{new_key}@example.org",
                  status: "actve", "Team": teams[0] if teams else None}
    cells: list[Any] = [None] * width
    for name, value in new_values.items():
        if name in pos and value is not None:
            cells[pos[name] - 1] = value
    book.write_values(wbk.USERS, new_row, 1, [cells])
    book.fit_table(wbk.USERS, new_row, len(loaded.users.headers))
    expected: dict[str, str | None] = {k: v for k, v in new_values.items() if k in pos and v is not None}
    expected[status] = "Active"
    intended[new_key] = expected
    echo(f"   row {new_row} {new_key}: new user, {status} typed 'actve' (a typo)")
    return intended


def _canon(dialect: Dialect, name: str, text: str | None) -> str | None:
    column = wbk.find_column(dialect, name)
    if column is None:
        return text
    return canonical_or_text(text, column.type, separator=column.separator, escape=column.escape)
