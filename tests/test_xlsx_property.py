"""Property: whatever the writes (values, clears, marks, new sheets, hidden columns, saves in between), the
file PatchBook patches reads back as the file openpyxl writes after loading it whole (the reference) —
values and types (openpyxl and calamine), number formats, fills, notes, merged cells, hidden columns,
sheets and their visibility — and passes the package checks Excel makes on opening."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill
from support.xlsxcheck import package_problems

from rosterbook.errors import DataError
from rosterbook.fastread import FastBook
from rosterbook.xlsx import OpenpyxlBook
from rosterbook.xlsxpatch import PatchBook

SHEETS = ("Data", "Side", "Quiet")
NEW_SHEET = "Added later"


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    """A workbook with what the writes meet: styled and Text-formatted cells, notes, a fill, merged cells, a hidden sheet."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "base.xlsx"
        wb = openpyxl.Workbook()
        ws = wb.active
        assert ws is not None
        ws.title = "Data"
        ws.append(["Name", "Code", "Count", "Flag", "Note"])
        for i in range(1, 15):
            ws.append([f"Person {i}", f"{i:05d}", i * 1.5, i % 2 == 0, None if i % 3 else f"note {i}"])
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in range(2, 16):
            ws.cell(row, 2).number_format = "@"
        ws["A4"].fill = PatternFill("solid", start_color="FFC7CE", end_color="FFC7CE")
        ws["A4"].comment = Comment("an old mark", "rosterbook")
        ws["C5"].comment = Comment("a user's note", "Ann")
        ws["F10"] = "merged"
        ws.merge_cells("F10:G11")
        side = wb.create_sheet("Side")
        side.append(["a", 1])
        quiet = wb.create_sheet("Quiet")
        quiet.append(["hidden", "sheet"])
        quiet.sheet_state = "hidden"
        wb.save(path)
        yield path


_TEXT = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
    st.sampled_from(["=SUM(A1)", "+1", "-x", "@me", "  padded  ", "two\nlines", "<&>\"'", "Zoë 李", "00123", "TRUE", "_x000D_"]),
)
# openpyxl writes 16 significant digits (0.1000000014901161 for the float nearest 0.1 in 32 bits), PatchBook all 17:
# values of 15 digits, what Excel itself keeps, read back the same from both.
_FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=32).map(lambda f: float(f"{f:.15g}"))
_VALUES = st.one_of(st.none(), _TEXT, st.integers(-10**12, 10**12), _FLOATS, st.booleans())
_ADDRESS = st.tuples(st.integers(1, 20), st.integers(1, 8))


def _letter(column: int) -> str:
    return "ABCDEFGH"[column - 1]


_OPERATION = st.one_of(
    st.tuples(st.just("write"), st.sampled_from(SHEETS), _ADDRESS,
              st.lists(st.lists(_VALUES, min_size=1, max_size=3), min_size=1, max_size=3)),
    st.tuples(st.just("clear"), st.sampled_from(SHEETS), st.integers(1, 20), st.one_of(st.none(), st.integers(1, 8))),
    st.tuples(st.just("mark"), st.sampled_from(SHEETS),
              st.dictionaries(_ADDRESS.map(lambda a: f"{_letter(a[1])}{a[0]}"),
                              st.one_of(st.none(), st.tuples(st.sampled_from(["error", "warning"]), _TEXT.filter(bool))), max_size=4)),
    st.tuples(st.just("ensure"), st.sampled_from([*SHEETS, NEW_SHEET]), st.sampled_from(["visible", "hidden", "veryHidden"])),
    st.tuples(st.just("hide"), st.sampled_from(SHEETS), st.lists(st.integers(1, 8), max_size=2)),
    st.tuples(st.just("save")),
)


def _apply(book: Any, operation: tuple[Any, ...]) -> str | None:
    """Run one operation; the error it raised, if any (both writers must agree on it)."""
    kind = operation[0]
    try:
        if kind == "save":
            book.save()
            return None
        sheet = operation[1]
        if sheet == NEW_SHEET and kind != "ensure" and sheet not in book.sheet_names():
            return "missing"
        if kind == "write":
            (row, column), block = operation[2], operation[3]
            book.write_values(sheet, row, column, block)
        elif kind == "clear":
            book.clear(sheet, operation[2], operation[3])
        elif kind == "mark":
            book.mark(sheet, operation[2])
        elif kind == "ensure":
            book.ensure_sheet(sheet, operation[2])
        elif kind == "hide":
            book.hide_columns(sheet, operation[2])
    except DataError as exc:
        return str(exc)
    return None


def _seen(path: Path) -> dict[str, Any]:
    """Everything a reader sees in the file, per sheet."""
    wb = openpyxl.load_workbook(path)
    fast = FastBook(path)
    out: dict[str, Any] = {"sheets": [(ws.title, ws.sheet_state) for ws in wb.worksheets]}
    for ws in wb.worksheets:
        cells = {}
        for row in ws.iter_rows():
            for c in row:
                value = None if c.value == "" else c.value
                fill = str(c.fill.fgColor.rgb)[-6:] if c.fill.fill_type else None
                seen = (value, c.data_type if value is not None else None, c.number_format, fill, c.comment.text if c.comment else None, bool(c.font.b))
                if seen != (None, None, "General", None, None, False):
                    cells[c.coordinate] = seen
        out[ws.title] = {
            "cells": cells,
            "merged": sorted(str(r) for r in ws.merged_cells.ranges),
            "hidden": sorted(k for k, d in ws.column_dimensions.items() if d.hidden),
            "calamine": fast.values(ws.title),
        }
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(operations=st.lists(_OPERATION, min_size=1, max_size=8))
def test_patching_reads_back_as_openpyxls_whole_save(base: Path, operations: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        patch, reference = Path(folder) / "patch.xlsx", Path(folder) / "reference.xlsx"
        shutil.copy(base, patch)
        shutil.copy(base, reference)
        patching = PatchBook(patch)
        whole = OpenpyxlBook(reference, openpyxl.load_workbook(reference))
        for operation in operations:
            assert _apply(patching, operation) == _apply(whole, operation), operation
        refused = _apply(patching, ("save",))
        assert refused == _apply(whole, ("save",))
        if refused is not None:
            return  # every sheet hidden: both refuse to save
        assert package_problems(patch) == []
        assert _seen(patch) == _seen(reference)
        assert PatchBook(patch).values("Data") == FastBook(reference).values("Data")
