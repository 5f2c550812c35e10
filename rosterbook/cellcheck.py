"""What the cell functions check: the Check button's own problems, for the cells of a range.

The Excel functions (``addin/udfs.py``) check a few cells of a workbook, many times over; the Check
button checks the whole Users sheet once. Both must find the same problems in the same cells, so
the cells go through the Check button's code (``rosterbook.session.problems_of``) with the
workbook's rules: its own dialect (the very hidden ``_dialect`` sheet of a SCIM
export), the values its platform knows (Lists and the export snapshot), and which rows are new
users (hidden row ids against the snapshot).

Reading those rules means reading the whole snapshot, so ``rules_for`` keeps them per workbook and
reads them again when the Settings, Lists or ``_dialect`` sheet or the snapshot's size changed (or a
minute has passed: a sync rewrites snapshot rows in place).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rosterbook import workbook as wbk
from rosterbook.core.codecs import Cell, to_text
from rosterbook.core.dialects import Dialect, load_dialect
from rosterbook.core.problems import Problem, sorted_problems
from rosterbook.core.settings import Settings
from rosterbook.core.table import HEADER_ROW, SnapshotRow, is_blank_row
from rosterbook.errors import RosterbookError
from rosterbook.session import DIALECT_SHEET, Loaded, platform_choices, problems_of, workbook_dialect
from rosterbook.sheets import Mark, SheetBook, Visibility

MAX_AGE = 60.0
"""Seconds the rules of a workbook are kept even when nothing they come from looks changed."""
_CACHED = 16  # workbooks whose rules are kept


@dataclass(frozen=True)
class Rules:
    """What the checks of one workbook depend on besides its cells."""

    settings: Settings
    dialect: Dialect
    snapshot: Mapping[str, SnapshotRow]
    lists: Mapping[str, list[str]]
    exported: bool
    """The workbook has an export snapshot: rows without a row id are new users."""
    choices: Mapping[str, list[str]]
    """``rosterbook.session.platform_choices`` of the whole workbook."""
    own: bool
    """True: the workbook's own rules; False: a dialect named in the formula, checked on its own."""


@dataclass(frozen=True)
class Block:
    """Cells to check, as the sheet holds them: a header row and data rows, each starting at column A."""

    sheet: str
    headers: Sequence[Cell]
    rows: Sequence[Sequence[Cell]]
    first_row: int
    """The sheet row of ``rows[0]``."""
    header_row: int = HEADER_ROW


@dataclass(frozen=True)
class Checked:
    """The problems of a block: the header row's, then one list per data row (a blank row: none)."""

    header: list[Problem]
    rows: list[list[Problem]]
    blank: list[bool]
    """Whether each data row is blank (nothing to check)."""
    recognised: bool
    """Whether any header names a column of the dialect (else the block has no header row)."""


# --- the rules of a workbook ---------------------------------------------------------------------

_cache: dict[str, tuple[tuple[Any, ...], float, Rules]] = {}


def rules_for(book: SheetBook | None, dialect: str | None = None) -> Rules:
    """The rules for checking cells of ``book``: its own (as the Check button uses them) unless ``dialect``
    names another dialect than its Settings, or it is not a rosterbook workbook (then ``dialect`` is needed)."""
    name = dialect.strip().lower() if dialect and dialect.strip() else None
    names = book.sheet_names() if book is not None else []
    if book is None or wbk.SETTINGS not in names:
        if name is None:
            raise RosterbookError("no dialect: this is not a rosterbook workbook (it has no Settings sheet); name the platform's dialect in the formula.")
        return _named(name)
    small = {sheet: book.values(sheet) for sheet in (wbk.SETTINGS, wbk.LISTS, DIALECT_SHEET) if sheet in names}
    fingerprint = (
        tuple(_frozen(small.get(sheet)) for sheet in (wbk.SETTINGS, wbk.LISTS, DIALECT_SHEET)),
        _extent(book, wbk.SNAPSHOT) if wbk.SNAPSHOT in names else None,
        _extent(book, wbk.SNAPSHOT_UPDATES) if wbk.SNAPSHOT_UPDATES in names else None,
    )
    key = _key(book)
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and hit[0] == fingerprint and now - hit[1] < MAX_AGE:
        rules = hit[2]
    else:
        rules = _read(book, names, small)
        if len(_cache) >= _CACHED:
            _cache.clear()
        _cache[key] = (fingerprint, now, rules)
    if name is not None and name != rules.settings.dialect:
        return _named(name)
    return rules


def forget() -> None:
    """Drop every workbook's kept rules."""
    _cache.clear()


def _named(name: str) -> Rules:
    dialect = load_dialect(name)
    return Rules(Settings(dialect=name), dialect, {}, {}, False, {}, own=False)


def _read(book: SheetBook, names: Sequence[str], small: Mapping[str, list[list[Cell]]]) -> Rules:
    view = GridBook(small)
    settings = wbk.read_settings(view)
    dialect = workbook_dialect(view, settings)
    snapshot = wbk.read_snapshot(book)
    exported = wbk.SNAPSHOT in names
    lists = wbk.read_lists(view)
    users = wbk.users_from_grid([], dialect)
    whole = Loaded(view, settings, dialect, snapshot, users, lists, exported, stored=snapshot)
    return Rules(settings, dialect, snapshot, lists, exported, platform_choices(whole), own=True)


def _frozen(grid: Sequence[Sequence[Cell]] | None) -> tuple[tuple[Cell, ...], ...] | None:
    return None if grid is None else tuple(tuple(row) for row in grid)


def _extent(book: SheetBook, sheet: str) -> tuple[int, int]:
    extent = getattr(book, "extent", None)
    if callable(extent):
        found = extent(sheet)
        return (int(found[0]), int(found[1]))
    grid = book.values(sheet)
    return (len(grid), max((len(r) for r in grid), default=0))


def _key(book: SheetBook) -> str:
    for attribute in ("path", "name"):
        value = getattr(book, attribute, None)
        if value:
            return f"{attribute}:{value}"
    return f"id:{id(book)}"


# --- checking a block --------------------------------------------------------------------------------


def check_block(rules: Rules, block: Block) -> Checked:
    """The problems the Check button finds in these cells (cross-row ones among these rows only)."""
    headers = list(block.headers)
    rows = block.rows
    texts = [to_text(h) or "" for h in headers]
    # Rows are new users only when the snapshot says so through their hidden row ids.
    snapshot = rules.snapshot if rules.exported and wbk.ROW_ID in texts else None
    users = wbk.users_from_grid([headers, *rows], rules.dialect, snapshot, first_row=block.first_row)
    ids = set(users.row_ids.values())
    mine = {rid: snap for rid, snap in (snapshot or {}).items() if rid in ids}
    # The Check button's own code: platform_choices of a snapshot restricted to these rows, with the
    # whole workbook's known values passed in as lists, gives the whole workbook's choices.
    view = GridBook({})
    loaded = Loaded(view, rules.settings, rules.dialect, mine, users, {**rules.lists, **rules.choices}, snapshot is not None, stored=mine)
    found = problems_of(loaded)
    header: list[Problem] = []
    by_row: list[list[Problem]] = [[] for _ in rows]
    for problem in found:
        if block.sheet != wbk.USERS:
            problem = replace(problem, sheet=block.sheet)
        if problem.row <= HEADER_ROW:
            header.append(_at_header_row(problem, block.header_row))
        elif 0 <= problem.row - block.first_row < len(rows):
            by_row[problem.row - block.first_row].append(problem)
    recognised = any(wbk.find_column(rules.dialect, t) is not None for t in texts if t)
    # In the order the Check button shows them.
    ordered = [sorted_problems(found) if len(found) > 1 else found for found in by_row]
    return Checked(sorted_problems(header), ordered, [is_blank_row(r) for r in rows], recognised)


_HEADER_CELL = re.compile(rf"^([A-Z]{{1,3}}){HEADER_ROW}$")


def _at_header_row(problem: Problem, header_row: int) -> Problem:
    """A header problem of a block whose header row is not row 1 (a table further down a sheet)."""
    if header_row == HEADER_ROW:
        return problem
    return replace(problem, row=header_row, cell=_HEADER_CELL.sub(rf"\g<1>{header_row}", problem.cell))


def column_index(cell: str) -> int | None:
    """The 1-based column of an A1 address (``E7`` -> 5); None for a problem without a cell."""
    letters = "".join(ch for ch in cell if ch.isalpha())
    if not letters:
        return None
    index = 0
    for ch in letters.upper():
        index = index * 26 + ord(ch) - 64
    return index


def data_width(headers: Sequence[Cell]) -> int:
    """Columns a check reads: up to the last header, a ``Check`` helper column right of ``Problems`` excluded."""
    texts = [to_text(h) or "" for h in headers]
    problems = texts.index(wbk.PROBLEMS) if wbk.PROBLEMS in texts else None
    last = 0
    for index, text in enumerate(texts, start=1):
        if text and not (text == wbk.CHECK and problems is not None and index > problems + 1):
            last = index
    return last


# --- a SheetBook over grids in memory --------------------------------------------------------------


class GridBook:
    """A read-only SheetBook over grids already read (the library reads the rules and cells from it)."""

    def __init__(self, grids: Mapping[str, list[list[Cell]]]) -> None:
        self.grids = dict(grids)

    def sheet_names(self) -> list[str]:
        return list(self.grids)

    def values(self, sheet: str) -> list[list[Cell]]:
        return self.grids[sheet]

    def write_values(self, sheet: str, row: int, column: int, values: Sequence[Sequence[Cell]]) -> None:
        raise RosterbookError("the cell functions never write into the workbook")

    def clear(self, sheet: str, first_row: int, last_column: int | None = None) -> None:
        raise RosterbookError("the cell functions never write into the workbook")

    def ensure_sheet(self, sheet: str, visibility: Visibility = "visible") -> None:
        raise RosterbookError("the cell functions never write into the workbook")

    def visibility(self, sheet: str) -> Visibility:
        return "visible"

    def hide_columns(self, sheet: str, columns: Sequence[int]) -> None:
        raise RosterbookError("the cell functions never write into the workbook")

    def mark(self, sheet: str, marks: Mapping[str, tuple[Mark, str] | None]) -> None:
        raise RosterbookError("the cell functions never write into the workbook")

    def fit_table(self, sheet: str, last_row: int, last_column: int) -> None:
        raise RosterbookError("the cell functions never write into the workbook")

    def set_text_columns(self, sheet: str, columns: Sequence[int]) -> None:
        raise RosterbookError("the cell functions never write into the workbook")

    def progress(self, message: str) -> None:
        """Nothing: a formula shows no progress."""

    def save(self) -> None:
        raise RosterbookError("the cell functions never write into the workbook")


def _conforms(book: GridBook) -> SheetBook:
    """mypy checks here that GridBook implements the SheetBook protocol."""
    return book


__all__ = ["MAX_AGE", "Block", "Checked", "GridBook", "Rules", "check_block", "column_index", "data_width", "forget", "rules_for"]
