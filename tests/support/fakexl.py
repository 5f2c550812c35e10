"""A recording stand-in for the xlwings objects ``addin.sheet`` uses (Excel is not available here).

``FakeApp``/``FakeBook``/``FakeSheet``/``FakeRange``/``FakeTable``/``FakeNote`` keep cells in a dict
and behave as xlwings does for what the adapter calls: values read as a 2-D block (blanks None),
``value =`` writes a block (a string starting with ``'`` stored without it, as Excel does), formulas
kept apart from values, notes, fills, number formats, Tables. Every call is appended to
``app.log`` as a tuple, so tests assert what reached "Excel" and in which order.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Cell = tuple[int, int]


def _letters_to_index(letters: str) -> int:
    index = 0
    for ch in letters.upper():
        index = index * 26 + ord(ch) - 64
    return index


_REF = re.compile(r"^\$?([A-Z]{1,3})?\$?(\d+)?$")


def _parse_area(text: str) -> tuple[int, int, int, int]:
    """(first row, first column, last row, last column) of ``A1``, ``$A$1:$B$2``, ``A:A``."""
    parts = text.split(":")
    corners = []
    for part in parts:
        match = _REF.match(part)
        if match is None:
            raise ValueError(f"bad address {text!r}")
        letters, digits = match.groups()
        corners.append((int(digits) if digits else None, _letters_to_index(letters) if letters else None))
    (r1, c1), (r2, c2) = corners[0], corners[-1]
    return (r1 or 1, c1 or 1, r2 or 1_048_576, c2 or 16_384)


@dataclass
class FakeNote:
    """A cell note (xlwings ``Note``)."""

    sheet: FakeSheet
    cell: Cell
    text: str
    author: str = "Someone"

    @property
    def location(self) -> FakeRange:
        return FakeRange(self.sheet, [(*self.cell, *self.cell)])

    def delete(self) -> None:
        self.sheet.app.log.append(("note.delete", self.sheet.name, self.cell))
        self.sheet.notes_by_cell.pop(self.cell, None)


class _RangeApi:
    def __init__(self, rng: FakeRange) -> None:
        self.rng = rng


class FakeRange:
    """An xlwings ``Range`` over one or more areas of a FakeSheet."""

    def __init__(self, sheet: FakeSheet, areas: list[tuple[int, int, int, int]], ndim: int | None = None) -> None:
        self.sheet = sheet
        self.areas = areas
        self._ndim = ndim
        self.api = _RangeApi(self)

    # --- geometry
    @property
    def row(self) -> int:
        return self.areas[0][0]

    @property
    def column(self) -> int:
        return self.areas[0][1]

    @property
    def last_cell(self) -> FakeRange:
        _, _, r2, c2 = self.areas[0]
        return FakeRange(self.sheet, [(r2, c2, r2, c2)])

    @property
    def address(self) -> str:
        from rosterbook.core.problems import column_letter

        def one(area: tuple[int, int, int, int]) -> str:
            r1, c1, r2, c2 = area
            first = f"${column_letter(c1)}${r1}"
            return first if (r1, c1) == (r2, c2) else f"{first}:${column_letter(c2)}${r2}"

        return ",".join(one(a) for a in self.areas)

    def cells(self) -> Iterator[Cell]:
        for r1, c1, r2, c2 in self.areas:
            if r2 - r1 > 100_000 or c2 - c1 > 1_000:  # a whole column: only the cells in use
                for cell in sorted(set(self.sheet.values) | set(self.sheet.formats)):
                    if r1 <= cell[0] <= r2 and c1 <= cell[1] <= c2:
                        yield cell
                continue
            for r in range(r1, r2 + 1):
                for c in range(c1, c2 + 1):
                    yield (r, c)

    def options(self, ndim: int | None = None, **_: Any) -> FakeRange:
        return FakeRange(self.sheet, self.areas, ndim)

    # --- values
    @property
    def value(self) -> Any:
        r1, c1, r2, c2 = self.areas[0]
        self.sheet.app.log.append(("read", self.sheet.name, self.address))
        grid = [[self.sheet.values.get((r, c)) for c in range(c1, c2 + 1)] for r in range(r1, r2 + 1)]
        if self._ndim == 2:
            return grid
        if len(grid) == 1 and len(grid[0]) == 1:
            return grid[0][0]
        if self._ndim == 1 or len(grid) == 1:
            return grid[0] if len(grid) == 1 else [row[0] for row in grid]
        return grid

    @value.setter
    def value(self, block: Any) -> None:
        self.sheet.app.log.append(("write", self.sheet.name, self.address, block))
        r1, c1 = self.row, self.column
        rows = block if isinstance(block, list) and block and isinstance(block[0], list) else [[block]]
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                if isinstance(value, str) and value.startswith("'"):
                    value = value[1:]  # Excel's text prefix is not part of the value
                self.sheet.set((r1 + i, c1 + j), value)

    def clear_contents(self) -> None:
        self.sheet.app.log.append(("clear_contents", self.sheet.name, self.address))
        for cell in list(self.cells()):
            self.sheet.values.pop(cell, None)
            self.sheet.formulas.pop(cell, None)

    @property
    def color(self) -> Any:
        return self.sheet.colors.get((self.row, self.column))

    @color.setter
    def color(self, value: Any) -> None:
        self.sheet.app.log.append(("color", self.sheet.name, self.address, value))
        for cell in self.cells():
            if value is None:
                self.sheet.colors.pop(cell, None)
            else:
                self.sheet.colors[cell] = value

    @property
    def number_format(self) -> str:
        return self.sheet.formats.get((self.row, self.column), "General")

    @number_format.setter
    def number_format(self, value: str) -> None:
        self.sheet.app.log.append(("number_format", self.sheet.name, self.address, value))
        for area in self.areas:
            self.sheet.format_areas.append((area, value))

    @property
    def column_width(self) -> float:
        return 8.43

    @column_width.setter
    def column_width(self, value: float) -> None:
        self.sheet.app.log.append(("column_width", self.sheet.name, self.address, value))

    # --- formulas
    @property
    def formula(self) -> Any:
        return self.sheet.formulas.get((self.row, self.column))

    @formula.setter
    def formula(self, text: str) -> None:
        self.sheet.app.log.append(("formula", self.sheet.name, self.address, text))
        for cell in self.cells():
            self.sheet.formulas[cell] = text

    @property
    def formula2(self) -> Any:
        return self.sheet.formulas.get((self.row, self.column))

    @formula2.setter
    def formula2(self, text: str) -> None:
        if not self.sheet.app.dynamic_arrays:
            raise AttributeError("Formula2")  # what pywin32 raises on an Excel without dynamic arrays
        self.sheet.app.log.append(("formula2", self.sheet.name, self.address, text))
        self.sheet.formulas[(self.row, self.column)] = text

    @property
    def formula_array(self) -> Any:
        return self.sheet.formulas.get((self.row, self.column))

    @formula_array.setter
    def formula_array(self, text: str) -> None:
        self.sheet.app.log.append(("formula_array", self.sheet.name, self.address, text))
        for cell in self.cells():
            self.sheet.formulas[cell] = "{" + text + "}"

    @property
    def merge_cells(self) -> bool:
        return False  # no merged cells in these sheets

    # --- notes
    @property
    def note(self) -> FakeNote | None:
        return self.sheet.notes_by_cell.get((self.row, self.column))

    def add_note(self, text: str) -> FakeNote:
        self.sheet.app.log.append(("add_note", self.sheet.name, self.address, text))
        note = FakeNote(self.sheet, (self.row, self.column), text, author=self.sheet.app.user_name)
        self.sheet.notes_by_cell[(self.row, self.column)] = note
        return note


@dataclass
class FakeTable:
    """An Excel Table (ListObject) on a sheet."""

    sheet: FakeSheet
    name: str
    area: tuple[int, int, int, int]

    def resize(self, rng: FakeRange) -> None:
        self.sheet.app.log.append(("table.resize", self.sheet.name, self.name, rng.address))
        self.area = rng.areas[0]


class _SheetApi:
    def __init__(self, sheet: FakeSheet) -> None:
        self.sheet = sheet

    @property
    def Visible(self) -> int:
        return self.sheet.visibility

    @Visible.setter
    def Visible(self, value: int) -> None:
        self.sheet.visibility = value


class FakeSheet:
    """An xlwings ``Sheet``: cells, formulas, notes, fills, formats and Tables."""

    def __init__(self, app: FakeApp, name: str) -> None:
        self.app = app
        self.name = name
        self.values: dict[Cell, Any] = {}
        self.formulas: dict[Cell, str] = {}
        self.colors: dict[Cell, Any] = {}
        self.formats: dict[Cell, str] = {}
        self.format_areas: list[tuple[tuple[int, int, int, int], str]] = []
        self.notes_by_cell: dict[Cell, FakeNote] = {}
        self.tables: list[FakeTable] = []
        self.visibility = -1
        self.api = _SheetApi(self)

    def set(self, cell: Cell, value: Any) -> None:
        self.formulas.pop(cell, None)
        if value is None or value == "":
            self.values.pop(cell, None)
        else:
            self.values[cell] = value

    @property
    def visible(self) -> bool:
        return self.visibility == -1

    @visible.setter
    def visible(self, value: bool) -> None:
        self.visibility = -1 if value else 0

    @property
    def used_range(self) -> FakeRange:
        used = set(self.values) | set(self.formulas)
        if not used:
            return FakeRange(self, [(1, 1, 1, 1)])
        return FakeRange(self, [(1, 1, max(r for r, _ in used), max(c for _, c in used))])

    def range(self, first: Any, last: Any = None) -> FakeRange:
        if isinstance(first, str):
            return FakeRange(self, [_parse_area(part) for part in first.replace("$", "").split(",")])
        end = last if last is not None else first
        return FakeRange(self, [(first[0], first[1], end[0], end[1])])

    @property
    def notes(self) -> list[FakeNote]:
        return list(self.notes_by_cell.values())

    def activate(self) -> None:
        self.app.log.append(("activate", self.name))

    def grid(self) -> list[list[Any]]:
        """The used range's values, as a test reads them back."""
        last = self.used_range.last_cell
        return [[self.values.get((r, c)) for c in range(1, last.column + 1)] for r in range(1, last.row + 1)]


class FakeSheets:
    """``book.sheets``: by name or index, in order, ``add``."""

    def __init__(self, app: FakeApp) -> None:
        self.app = app
        self.items: list[FakeSheet] = []

    def __iter__(self) -> Iterator[FakeSheet]:
        return iter(list(self.items))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: Any) -> FakeSheet:
        if isinstance(key, int):
            return self.items[key]
        for sheet in self.items:
            if sheet.name == key:
                return sheet
        raise KeyError(key)

    def add(self, name: str, after: Any = None) -> FakeSheet:
        self.app.log.append(("sheets.add", name))
        sheet = FakeSheet(self.app, name)
        self.items.append(sheet)
        return sheet


class _AppApi:
    def __init__(self, app: FakeApp) -> None:
        self.app = app

    def GetOpenFilename(self, filter_: str, index: int, title: str) -> Any:
        self.app.log.append(("GetOpenFilename", filter_, index, title))
        return self.app.answers.pop(0)

    def GetSaveAsFilename(self, initial: str, filter_: str, index: int, title: str) -> Any:
        self.app.log.append(("GetSaveAsFilename", initial, filter_, index, title))
        return self.app.answers.pop(0)


@dataclass
class FakeApp:
    """An xlwings ``App``: status bar, screen updating, calculation mode, dialogs (scripted answers)."""

    log: list[tuple[Any, ...]] = field(default_factory=list)
    answers: list[Any] = field(default_factory=list)
    dynamic_arrays: bool = True
    user_name: str = "Ann Admin"
    pid: int = 4242
    screen_updating: bool = True
    calculation: str = "automatic"
    status_bar: Any = None

    def __post_init__(self) -> None:
        self.api = _AppApi(self)

    def alert(self, prompt: str, title: str | None = None, buttons: str = "ok", mode: str | None = None) -> str:
        self.log.append(("alert", prompt, title, buttons, mode))
        return str(self.answers.pop(0)) if buttons != "ok" else "ok"


class FakeBook:
    """An xlwings ``Book``: its app, name and full name, sheets, the selection."""

    def __init__(self, app: FakeApp | None = None, name: str = "Book1", fullname: str | None = None) -> None:
        self.app = app or FakeApp()
        self.name = name
        self.fullname = fullname if fullname is not None else name
        self.sheets = FakeSheets(self.app)
        self.selection: FakeRange | None = None

    def sheet(self, name: str, rows: list[list[Any]] | None = None) -> FakeSheet:
        """Add a sheet holding ``rows`` from A1 (test set-up; not logged)."""
        sheet = FakeSheet(self.app, name)
        self.sheets.items.append(sheet)
        for r, row in enumerate(rows or [], start=1):
            for c, value in enumerate(row, start=1):
                sheet.set((r, c), value)
        return sheet
