"""The ribbon's "Add check column": the cell functions' answer beside every row of the Users sheet (``addin.check_column``).

Where the formulas live, and why:

- A Table cannot hold a spilled array (``#SPILL!``), and one ``ROSTERBOOK_CHECK`` per row would
  call Python once per row and never see duplicates across rows. So one
  ``=ROSTERBOOK_CHECK_TABLE(Users[[#All],[<first>]:[_row_id]])`` sits in ``Check!A2`` and spills one
  message per Users row: row n of the ``Check`` sheet is row n of the ``Users`` sheet.
- The Users Table gets a ``Check`` column right of the hidden ``_row_id``, whose calculated formula
  ``=INDEX(Check!$A:$A,ROW())&""`` shows that message on its own row.

Sorting the Users rows changes the table formula's argument, so it recalculates in the new order;
filtering hides rows without moving them; a row added to the Table gets the calculated formula and
falls inside ``Users[#All]``. The table formula reads every column the Check button reads (up to
``_row_id``, so rows are told new or exported as Check tells them), never the Check column itself
(that would be a circular reference). Check, Preview and Sync ignore both: the sheet is not one of
theirs, and a ``Check`` header right of ``Problems`` is a helper column (``rosterbook.workbook.CHECK``).
Export into a workbook that has the column writes it again (``rosterbook.app``), where the workbook
can hold formulas (the one open in Excel).
"""

from __future__ import annotations

import re
from typing import Any

from rosterbook import workbook as wbk
from rosterbook.core.codecs import to_text
from rosterbook.core.problems import column_letter
from rosterbook.errors import RosterbookError
from rosterbook.sheets import SheetBook

SHEET = "Check"
"""The sheet holding the one table formula (its column A lines up with the Users rows)."""
ROW_FORMULA = f'=INDEX({SHEET}!$A:$A,ROW())&""'
"""The Users Check column's calculated formula: the Check sheet's message of the same row ("" when none)."""
_SPECIAL = re.compile(r"([\[\]#'@])")  # escaped with ' inside a structured reference's column name


def structured_column(name: str) -> str:
    """A column name as written inside a structured reference (``[Role(s)]``, ``[a'#b]`` for ``a#b``)."""
    return "[" + _SPECIAL.sub(r"'\1", name) + "]"


def table_formula(table: str | None, first: str, last_header: str, last_column: int, last_row: int) -> str:
    """``=ROSTERBOOK_CHECK_TABLE(...)`` over the Users columns up to ``_row_id`` (a plain range without a Table)."""
    if table:
        reference = f"{table}[[#All],{structured_column(first)}:{structured_column(last_header)}]"
    else:
        reference = f"{wbk.USERS}!$A$1:${column_letter(last_column)}${max(2, last_row)}"
    return f"=ROSTERBOOK_CHECK_TABLE({reference})"


def has_check_column(book: SheetBook) -> bool:
    """Whether the Users sheet has the Check column (a ``Check`` header right of ``Problems``)."""
    if wbk.USERS not in book.sheet_names():
        return False
    reader = getattr(book, "header_row", None)
    cells = reader(wbk.USERS) if callable(reader) else (book.values(wbk.USERS) or [[]])[0]
    head = [to_text(h) or "" for h in cells]
    return wbk.PROBLEMS in head and wbk.CHECK in head[head.index(wbk.PROBLEMS) + 1 :]


def add_check_column(book: SheetBook) -> dict[str, Any]:
    """Write (or rewrite) the Check sheet's table formula and the Users sheet's Check column."""
    writer = getattr(book, "write_formula", None)
    if not callable(writer):
        raise RosterbookError("the Check column holds Excel formulas: add it from Excel's rosterbook tab.")
    if wbk.USERS not in book.sheet_names():
        raise RosterbookError(f"this workbook has no {wbk.USERS} sheet yet: press Export first.")
    reader = getattr(book, "header_row", None)

    def first_row(sheet: str) -> list[str]:
        cells = reader(sheet) if callable(reader) else (book.values(sheet) or [[]])[0]
        return [to_text(h) or "" for h in cells]

    head = first_row(wbk.USERS)
    if SHEET in book.sheet_names() and first_row(SHEET)[:1] not in ([], [""], [wbk.CHECK]):
        raise RosterbookError(f"this workbook already has a sheet called {SHEET!r} that is not rosterbook's: rename it, then press the button again.")
    if wbk.ROW_ID not in head or wbk.PROBLEMS not in head or not head[0]:
        raise RosterbookError(
            f"the {wbk.USERS} sheet lacks its {wbk.PROBLEMS!r} or hidden {wbk.ROW_ID!r} column, so the Check column has no place: Export again."
        )
    row_id = head.index(wbk.ROW_ID) + 1
    problems = head.index(wbk.PROBLEMS) + 1
    helper = next((i for i, h in enumerate(head, start=1) if h == wbk.CHECK and i > problems), None)
    column = helper or row_id + 1
    extent = getattr(book, "extent", None)
    last_row = max(2, int(extent(wbk.USERS)[0]) if callable(extent) else len(book.values(wbk.USERS)))
    if helper is None:
        book.write_values(wbk.USERS, 1, column, [[wbk.CHECK]])
    book.fit_table(wbk.USERS, last_row, max(column, len(head)))
    namer = getattr(book, "table_name", None)
    table = namer(wbk.USERS) if callable(namer) else None
    formula = table_formula(table, head[0], wbk.ROW_ID, row_id, last_row)
    book.ensure_sheet(SHEET)
    book.clear(SHEET, 1)
    book.write_values(SHEET, 1, 1, [[wbk.CHECK]])
    writer(SHEET, 2, 1, formula, last_row=last_row, spill=True)
    writer(wbk.USERS, 2, column, ROW_FORMULA, last_row=last_row)
    return {"sheet": SHEET, "formula": formula, "column": column_letter(column), "rows": last_row - 1, "table": table}


__all__ = ["ROW_FORMULA", "SHEET", "add_check_column", "has_check_column", "structured_column", "table_formula"]
