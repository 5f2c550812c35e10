"""The cell functions say what the Check button says, cell for cell, on a real export from the sandbox.

The workbook is a real .xlsx written by ``export`` and edited with openpyxl; the functions get the
values Excel would hand them (the Users range read back from the file) and the range's place, as the
add-in's VBA passes it; the Check button's problems come from ``app.check_workbook``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import openpyxl
import pytest

from addin import udfs
from addin.sheet import CallerContext
from rosterbook import app, cellcheck
from rosterbook import workbook as wbk
from rosterbook.core.problems import Problem
from rosterbook.sandbox import Sandbox
from rosterbook.xlsx import OpenpyxlBook

CROSS_ROW = frozenset({"duplicate-key", "duplicate-value", "copied-row"})
"""What a one-row function cannot see: other rows."""


@pytest.fixture(scope="module")
def exported(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("agree") / "users.xlsx"
    app.export_workbook(path, platform=sandbox.url)
    return path


def _lines(text: str) -> list[str]:
    return [] if text in ("OK", "") else text.split("\n")


def check_button(path: Path) -> tuple[list[Problem], dict[int, list[Problem]]]:
    """The Check button's problems: the header row's, and each data row's."""
    report = app.check_workbook(path, write=False)
    header = [p for p in report.problems if p.row <= 1]
    rows: dict[int, list[Problem]] = {}
    for problem in report.problems:
        if problem.row > 1:
            rows.setdefault(problem.row, []).append(problem)
    return header, rows


def users_range(path: Path) -> tuple[OpenpyxlBook, list[list[object]], int]:
    """The Users sheet from A1 to the ``_row_id`` column, as Excel passes a range (rectangular, blanks None)."""
    book = OpenpyxlBook(path)
    grid = book.values(wbk.USERS)
    width = [str(h) for h in grid[0]].index(wbk.ROW_ID) + 1
    return book, [(list(row) + [None] * width)[:width] for row in grid], width


def table_function(path: Path) -> list[str]:
    """``=ROSTERBOOK_CHECK_TABLE(Users[[#All],[Username]:[_row_id]])`` in the Check sheet, as Excel calls it."""
    cellcheck.forget()
    book, table, width = users_range(path)
    place = f"1,1,{len(table)},{width},{wbk.USERS}"
    result = udfs.ROSTERBOOK_CHECK_TABLE(table, None, CallerContext(book, "Check", 2), place)
    assert all(len(r) == 1 for r in result)
    return [r[0] for r in result]


def assert_table_agrees(path: Path) -> int:
    """Every data row's cell says exactly what Check says about that row (and the header row); returns rows with problems."""
    header, rows = check_button(path)
    said = table_function(path)
    _, table, _ = users_range(path)
    flagged = 0
    for number, text in enumerate(said, start=2):
        blank = all(v is None or str(v).strip() == "" for v in table[number - 1])
        expected = [p.render() for p in [*header, *rows.get(number, [])]]
        if blank:
            assert text == "", number
            continue
        assert _lines(text) == expected, f"row {number}"
        flagged += bool(expected)
    # Check found nothing the functions left out (rows beyond the range, say).
    assert set(rows) <= set(range(2, len(said) + 2))
    return flagged


def test_a_fresh_export_agrees_and_no_platform_value_is_a_split_warning(exported: Path) -> None:
    _, table, _ = users_range(exported)
    locations = table[0].index("Locations")
    # The platform's own multi-location values, written by the export: 'Lagos|Paris' is two known locations.
    written = [row[locations] for row in table[1:] if row[locations] and "|" in str(row[locations]).replace("\\|", "")]
    assert len(written) >= 3
    assert assert_table_agrees(exported) == 0
    assert not any("split" in text for text in table_function(exported))


def _edit(source: Path, target: Path) -> Path:
    """The export, edited as a person would: typos, a duplicate, a blank key, an unknown location with '|', a new
    user with blanks, and then the data rows sorted in reverse."""
    shutil.copyfile(source, target)
    wb = openpyxl.load_workbook(target)
    ws = wb[wbk.USERS]
    col = {str(c.value): c.column for c in ws[1] if c.value}
    last = max(r for r in range(2, ws.max_row + 1) if ws.cell(r, col["Username"]).value)
    ws.cell(3, col["Status"]).value = "actve"
    ws.cell(4, col["Username"]).value = ws.cell(2, col["Username"]).value.upper()  # a duplicate (case-insensitive)
    ws.cell(5, col["Username"]).value = None
    ws.cell(6, col["Locations"]).value = "Main|HQ"  # not a location the platform has: one name, or two?
    ws.cell(7, col["Email"]).value = "not-an-email"
    ws.cell(8, col["Employee ID"]).value = 31  # a number: leading zeros lost
    ws.cell(9, col["Start date"]).value = "03/12/2024"
    new = last + 1
    ws.cell(new, col["Username"]).value = "dana.demo"
    ws.cell(new, col["Status"]).value = "Pending"
    ws.cell(new, col["Locations"]).value = "Lagos|Paris"  # two locations the platform has
    values = [[ws.cell(r, c).value for c in range(1, ws.max_column + 1)] for r in range(2, new + 1)]
    for offset, row in enumerate(reversed(values), start=2):
        for c, value in enumerate(row, start=1):
            ws.cell(offset, c).value = value
    wb.save(target)
    return target


def test_an_edited_and_sorted_workbook_agrees_cell_for_cell(exported: Path, tmp_path: Path) -> None:
    edited = _edit(exported, tmp_path / "edited.xlsx")
    _, rows = check_button(edited)
    codes = {p.code for found in rows.values() for p in found}
    assert {"unknown-status", "duplicate-key", "required", "unescaped-separator", "invalid-email"} <= codes, codes
    assert assert_table_agrees(edited) >= 6


def test_a_misspelled_header_reaches_every_row_as_check_reports_it(exported: Path, tmp_path: Path) -> None:
    edited = tmp_path / "header.xlsx"
    shutil.copyfile(exported, edited)
    wb = openpyxl.load_workbook(edited)
    ws = wb[wbk.USERS]
    ws.cell(1, 4).value = "Emial"
    wb.save(edited)
    header, _ = check_button(edited)
    assert header, "Check reports the header"
    said = table_function(edited)
    assert all(_lines(text)[: len(header)] == [p.render() for p in header] for text in said if text)
    assert_table_agrees(edited)


def test_one_row_at_a_time_agrees_except_across_rows(exported: Path, tmp_path: Path) -> None:
    edited = _edit(exported, tmp_path / "edited.xlsx")
    header, rows = check_button(edited)
    book, table, _ = users_range(edited)
    data = [str(h) for h in table[0]].index(wbk.PROBLEMS)  # the data columns, A to the one before Problems
    cellcheck.forget()
    for number in range(2, len(table) + 1):
        cells = table[number - 1][:data]
        if all(v is None for v in cells):
            continue
        said = udfs.ROSTERBOOK_CHECK(cells, None, None, CallerContext(book, "Check", number), f"{number},1,1,{data},{wbk.USERS}")
        expected = [p.render() for p in [*header, *rows.get(number, [])] if p.code not in CROSS_ROW and (not p.cell or _column(p.cell) <= data)]
        assert [line for line in _lines(said)] == expected, f"row {number}"


def _column(cell: str) -> int:
    index = cellcheck.column_index(cell)
    assert index is not None
    return index
