"""``table.exported_as_is``: the rows still exactly as exported, found once for the diff and the cleared-cell check.

The diff and ``cleared_keeps`` used to compare every row with its snapshot entry each on its own (about 0.3 s each on
50,000 users). Now both take the one answer. What must hold: the answer is exactly the rows whose every dialect
column equals the exported value; given it or not (when the diff and the check find it themselves, or when every row
goes the long way), the diff and the warnings are the same.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rosterbook.core.crosschecks import cleared_keeps, columns_of_table
from rosterbook.core.dialects import load_dialect
from rosterbook.core.diff import diff
from rosterbook.core.settings import Settings
from rosterbook.core.table import SnapshotRow, build_table, exported_as_is

_DIALECT = load_dialect("jostle")
_HEADERS = ["Username", "First Name", "Last Name", "Work Email", "Job Title", "Location", "Manager", "Shoe size"]
_COLUMNS = _HEADERS[:-1]  # the last one is a custom field, which the comparison leaves out
_EDITS = st.sampled_from(["as exported", "cleared", "spaces only", "padded", "changed", "copied id", "no id", "custom field",
                          "not in the entry"])


def _user(n: int) -> dict[str, str | None]:
    return {"Username": f"user{n}", "First Name": f"First{n}", "Last Name": f"Last{n}", "Work Email": f"user{n}@example.com",
            "Job Title": "Engineer" if n % 2 else None, "Location": "Dublin", "Manager": "user0" if n else None}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_EDITS, st.sampled_from(_COLUMNS[1:])), min_size=1, max_size=12))
def test_the_rows_as_exported_are_found_once_and_the_diff_and_the_warnings_do_not_depend_on_who_found_them(
        edits: list[tuple[str, str]]) -> None:
    snapshot = {f"r{n}": SnapshotRow(f"r{n}", f"user{n}", None, None, _user(n), {}) for n in range(len(edits))}
    rows: list[list[str | None]] = []
    row_ids: list[str | None] = []
    expected: set[int] = set()
    for n, (edit, column) in enumerate(edits):
        values: dict[str, str | None] = dict(_user(n))
        row_id: str | None = f"r{n}"
        if edit == "cleared":
            values[column] = None
        elif edit == "spaces only":
            values[column] = "   "
        elif edit == "padded":
            values[column] = f" {values[column] or 'x'} "
        elif edit == "changed":
            values[column] = f"{values[column] or ''}2"
        elif edit == "copied id" and n:
            row_id = "r0"
        elif edit == "no id":
            row_id = None
        elif edit == "not in the entry":  # exported before the column existed: its missing value counts as blank
            kept = {c: v for c, v in _user(n).items() if c != column}
            snapshot[f"r{n}"] = SnapshotRow(f"r{n}", f"user{n}", None, None, kept, {})
        cells = [values[c] for c in _COLUMNS] + ["43" if edit == "custom field" else None]
        rows.append(cells)
        row_ids.append(row_id)
        owner = snapshot.get(row_id) if row_id is not None else None
        if owner is not None and all(cells[i] == owner.values.get(c) for i, c in enumerate(_COLUMNS)):
            expected.add(n + 2)
    table = build_table("Users", _DIALECT, _HEADERS, rows, row_ids)
    as_is = exported_as_is(table, snapshot)
    assert as_is == expected

    configured = Settings.for_dialect("jostle")
    entries = list(snapshot.values())
    found = diff(table, entries, configured)
    assert found == diff(table, entries, configured, as_is=as_is)
    assert found == diff(table, entries, configured, as_is=frozenset())  # every row the long way: the same changes
    assert {c.row for c in found if c.action == "unchanged"} >= expected - {n + 2 for n, (e, _) in enumerate(edits) if e == "custom field"}

    columns = columns_of_table(table)
    warned = list(cleared_keeps(columns, snapshot))
    assert warned == list(cleared_keeps(columns, snapshot, as_is))
    cleared = {n + 2 for n, (edit, column) in enumerate(edits) if edit in ("cleared", "spaces only") and _user(n)[column] is not None}
    assert {p.row for p in warned if p.code == "blank-keeps"} == cleared
