"""``plan.sheet_may_refuse``: a sync makes the plan without the platform (to refuse what the sheet alone refuses,
before any request) only when the problems or the diff hold an error. What must hold: when it says no, that plan has
none of ``SHEET_BLOCKERS``, whatever the sheet holds; and a sync of a sheet with errors still sends nothing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rosterbook.core.checks import check_table
from rosterbook.core.crosschecks import columns_of_table, cross_checks
from rosterbook.core.dialects import load_dialect
from rosterbook.core.diff import diff
from rosterbook.core.plan import SHEET_BLOCKERS, make_plan, sheet_may_refuse
from rosterbook.core.settings import Settings
from rosterbook.core.table import SnapshotRow, build_table

_EDITS = st.sampled_from(["as exported", "bad email", "blank name", "cleared title", "unknown id", "new user", "new key",
                          "duplicate key", "formula"])


@settings(max_examples=80, deadline=None)
@given(dialect=st.sampled_from(["jostle", "edapp", "scim"]), edits=st.lists(_EDITS, min_size=1, max_size=10),
       broken_header=st.booleans())
def test_no_error_means_no_sheet_blocker(dialect: str, edits: list[str], broken_header: bool) -> None:
    chosen = load_dialect(dialect)
    columns = [c.name for c in chosen.columns if not c.write_only][:6]
    headers: list[str | None] = list(columns)
    if broken_header:
        headers[-1] = headers[0]  # a duplicated header
    snapshot = {f"r{n}": SnapshotRow(f"r{n}", f"user{n}", f"id{n}", None, {c: _value(c, n, chosen.key) for c in columns}, {})
                for n in range(len(edits))}
    rows: list[list[str | None]] = []
    row_ids: list[str | None] = []
    for n, edit in enumerate(edits):
        cells = [_value(c, n, chosen.key) for c in columns]
        row_id: str | None = f"r{n}"
        if edit == "bad email":
            cells = [f"user{n}(at)example.com" if "@" in (c or "") else c for c in cells]
        elif edit == "blank name":
            cells[1] = None
        elif edit == "cleared title":
            cells[-1] = None
        elif edit == "unknown id":
            row_id = f"gone{n}"
        elif edit == "new user":
            row_id, cells[0] = None, f"newcomer{n}"
        elif edit == "new key":
            cells[0] = f"renamed{n}"
        elif edit == "duplicate key" and n:
            cells[0] = _value(columns[0], 0, chosen.key)
        elif edit == "formula":
            cells[1] = "=1+2"
        rows.append(cells)
        row_ids.append(row_id)
    table = build_table("Users", chosen, headers, rows, row_ids)
    problems = [*check_table(table, has_snapshot=True), *cross_checks(columns_of_table(table), snapshot)]
    configured = Settings.for_dialect(dialect)
    entries = list(snapshot.values())
    changes = diff(table, entries, configured)
    plan = make_plan(table, entries, configured, problems=problems, changes=changes)
    sheet = [b.kind for b in plan.blockers() if b.kind in SHEET_BLOCKERS]
    assert sheet_may_refuse(problems, changes) or not sheet, sheet


def _value(column: str, n: int, key: str) -> str | None:
    if column == key:
        return f"user{n}"
    lowered = column.casefold()
    if "mail" in lowered:
        return f"user{n}@example.com"
    if "status" in lowered or "active" in lowered:
        return None
    return f"{column} {n}"
