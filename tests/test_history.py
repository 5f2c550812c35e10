"""The sync history and the reverse decision, without a platform: lossless lines, checks and digest, and the value rules."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from rosterbook import history
from rosterbook import workbook as wbk
from rosterbook.core.dialects import load_dialect
from rosterbook.core.history import SYNC_ID, Step, SyncInfo, SyncRecord, new_sync_id, sync_time
from rosterbook.core.plan import Current
from rosterbook.core.settings import Settings
from rosterbook.core.table import Row, SnapshotRow
from rosterbook.core.undo import Reverse, UndoInput, reverse
from rosterbook.session import open_book
from rosterbook.xlsx import OpenpyxlBook

SID = "20261123-101502-3f9a0c"


def test_sync_ids_sort_by_time_and_say_when() -> None:
    import datetime as dt

    first = new_sync_id(dt.datetime(2026, 11, 23, 10, 15, 2))
    assert SYNC_ID.match(first) and first.startswith("20261123-101502-")
    assert first < new_sync_id(dt.datetime(2026, 11, 23, 10, 15, 3))
    assert sync_time(SID) == "2026-11-23 10:15:02"


ODD = "a\x01b\ud800c\U0001f600" + "x" * 40_000
"""Text no cell holds as it is: a control character, a lone surrogate, an emoji, and longer than a cell."""


def _written(path: Path, steps: list[Step]) -> None:
    book = OpenpyxlBook.new(path)
    wbk.ensure_layout(book)
    history.append(book, [history.info_line(SyncInfo(SID, "scim", None, "scim")), *(history.step_line(s) for s in steps)])
    book.save()


def test_history_lines_keep_any_value_exactly_through_a_saved_file(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    step = Step(SID, 7, "r6", "ann", "update", "ok", "id-1", None, {"Job title": (ODD, "short"), "Team": (None, "Ops")})
    _written(path, [step])
    for book in (open_book(path), open_book(path, read_only=True)):  # the patching reader and the fast one
        read = history.read_history(book)
        assert read.problem is None and read.records[SID].steps == (step,)
    assert openpyxl.load_workbook(path)[wbk.HISTORY].sheet_state == "veryHidden"


@pytest.mark.parametrize(("damage", "problem"), [
    ("edit", "_history!A3 do not match their check"),
    ("delete", "lines were deleted, added or moved"),
    ("header", "its header row was changed"),
])
def test_an_edited_deleted_or_moved_line_is_found(tmp_path: Path, damage: str, problem: str) -> None:
    path = tmp_path / "book.xlsx"
    _written(path, [Step(SID, n, f"r{n}", f"user{n}", "update", "ok", None, None, {"Team": ("A", "B")}) for n in range(2, 5)])
    wb = openpyxl.load_workbook(path)
    ws = wb[wbk.HISTORY]
    if damage == "edit":
        ws.cell(3, 3).value = str(ws.cell(3, 3).value).replace('"B"', '"C"')
    elif damage == "delete":
        ws.delete_rows(4)
    else:
        ws.cell(1, 4).value = "something else"
    wb.save(path)
    assert history.read_history(open_book(path)).problem == problem


def _undo(steps: list[Step], current: dict[str, Current] | None, snapshot: dict[str, SnapshotRow], **options: object) -> Reverse:
    dialect = load_dialect("scim")
    rows = [Row(n, {"Username": s.key, **dict(s.values)}, s.row_id) for n, s in enumerate(snapshot.values(), start=2)]
    given = UndoInput(dialect, Settings(dialect="scim"), SyncRecord(SyncInfo(SID, "scim", None, "scim"), tuple(steps)), snapshot, rows,
                      current, **options)  # type: ignore[arg-type]
    return reverse(given)


def test_each_field_is_decided_by_what_the_platform_holds_now() -> None:
    step = Step(SID, 2, "r1", "ann", "update", "ok", "id-1", None,
                {"Job title": ("Old", "New"), "Team": ("Old team", "New team"), "Department": ("Old dept", "New dept")})
    snap = SnapshotRow("r1", "ann", "id-1", "3", {"Username": "ann", "Job title": "New", "Team": "New team", "Department": "New dept"})
    now = Current("4", {"Username": "ann", "Job title": "New", "Team": "Old team", "Department": "Someone else's"})
    out = _undo([step], {"id-1": now}, {"r1": snap})
    [change] = out.changes
    assert change.action == "update" and change.version == "4"  # sent with the version just read (its If-Match)
    assert {n: (f.before, f.after) for n, f in change.fields.items()} == {"Job title": ("New", "Old")}  # as the sync set: sent back
    assert change.conflicts["Department"].platform == "Someone else's"  # changed since: kept
    # Held as before already (Team), or kept (Department): the snapshot records what the platform holds.
    assert change.values["Team"] == "Old team" and change.values["Department"] == "Someone else's" and change.values["Job title"] == "Old"


def test_a_list_in_another_order_is_the_same_list() -> None:
    step = Step(SID, 2, "r1", "ann", "update", "ok", "id-1", None, {"Groups": ("A", "A; B")})
    snap = SnapshotRow("r1", "ann", "id-1", None, {"Username": "ann", "Groups": "A; B"})
    out = _undo([step], {"id-1": Current(None, {"Username": "ann", "Groups": "B; A"})}, {"r1": snap})
    [change] = out.changes
    assert not change.conflicts and change.fields["Groups"].after == "A"


def test_a_user_gone_from_the_platform_is_said() -> None:
    step = Step(SID, 2, "r1", "ann", "update", "ok", "id-1", None, {"Job title": ("Old", "New")})
    out = _undo([step], {}, {"r1": SnapshotRow("r1", "ann", "id-1", None, {"Username": "ann"})})
    assert out.changes == [] and out.notes == [f"ann: no longer on SCIM 2.0 platform, so what sync {SID} changed cannot be put back."]
