"""A recording stand-in for the xlwings objects ``addin.sheet`` uses (Excel is not available here).

``FakeApp``/``FakeBook``/``FakeSheet``/``FakeRange``/``FakeTable``/``FakeNote`` keep cells in a dict
and behave as xlwings does for what the adapter calls: values read as a 2-D block (blanks None),
``value =`` writes a block (a string starting with ``'`` stored without it, as Excel does), formulas
kept apart from values, notes, fills, fonts, number formats, column widths, Tables, and the parts
of Excel's object model (``.api``, as pywin32 shows it on Windows) the adapter drives: data
validation, conditional formats, the window's frozen panes, page setup. Every call is appended to
``app.log`` as a tuple, so tests assert what reached "Excel" and in which order.

``to_openpyxl(book)`` writes what the stand-in holds into an openpyxl workbook, and
``from_openpyxl(path)`` opens a file in it (a template or an earlier export, as Excel would show
them), so a workbook dressed "in Excel" can be compared with the CLI's file.
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


def _area_text(area: tuple[int, int, int, int]) -> str:
    from rosterbook.core.problems import column_letter

    r1, c1, r2, c2 = area
    first = f"{column_letter(c1)}{r1}"
    return first if (r1, c1) == (r2, c2) else f"{first}:{column_letter(c2)}{r2}"


class FakeValidation:
    """Excel's ``Range.Validation`` over one area (Windows COM names)."""

    _PROPS = ("IgnoreBlank", "InCellDropdown", "ShowError", "ErrorTitle", "ErrorMessage", "InputTitle", "InputMessage", "ShowInput")

    def __init__(self, sheet: FakeSheet, area: tuple[int, int, int, int]) -> None:
        object.__setattr__(self, "sheet", sheet)
        object.__setattr__(self, "area", area)

    def Delete(self) -> None:
        self.sheet.app.log.append(("Validation.Delete", self.sheet.name, _area_text(self.area)))
        self.sheet.validations.pop(self.area, None)

    def Add(self, **options: Any) -> None:
        self.sheet.app.log.append(("Validation.Add", self.sheet.name, _area_text(self.area), options))
        if self.area in self.sheet.validations:
            raise RuntimeError("Validation.Add on cells that have one (Excel: delete it first)")
        self.sheet.validations[self.area] = {**options, "ShowError": True, "ShowInput": True}

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._PROPS:
            raise AttributeError(name)
        self.sheet.validations[self.area][name] = value

    def __getattr__(self, name: str) -> Any:
        return self.sheet.validations[self.area][name]


class _Colour:
    def __init__(self) -> None:
        self.Color: int | None = None


class FakeCondition:
    """One ``FormatCondition``: an expression, the fill (``Interior.Color``) and font colour (BGR numbers)."""

    def __init__(self, area: tuple[int, int, int, int], formula: str) -> None:
        self.area = area
        self.formula = formula
        self.Interior = _Colour()
        self.Font = _Colour()


class FakeFormatConditions:
    """``Range.FormatConditions``: Delete removes the conditions inside the range, Add appends one."""

    def __init__(self, sheet: FakeSheet, area: tuple[int, int, int, int]) -> None:
        self.sheet = sheet
        self.area = area

    def Delete(self) -> None:
        self.sheet.app.log.append(("FormatConditions.Delete", self.sheet.name, _area_text(self.area)))
        r1, c1, r2, c2 = self.area
        self.sheet.conditions = [c for c in self.sheet.conditions
                                 if not (r1 <= c.area[0] and c1 <= c.area[1] and c.area[2] <= r2 and c.area[3] <= c2)]

    def Add(self, Type: int, Formula1: str) -> FakeCondition:
        self.sheet.app.log.append(("FormatConditions.Add", self.sheet.name, _area_text(self.area), Type, Formula1))
        assert Type == 2  # xlExpression
        condition = FakeCondition(self.area, Formula1)
        self.sheet.conditions.append(condition)
        return condition


class _Property:
    """An AppleScript property reference (appscript): ``.set(value)`` records the call and hands the value on."""

    def __init__(self, log: list[tuple[Any, ...]], where: str, on_set: Any) -> None:
        self.log, self.where, self.on_set = log, where, on_set

    def set(self, value: Any) -> None:
        self.log.append((f"{self.where}.set", value))
        self.on_set(value)


_MAC_VALIDATION = {"show_error": "ShowError", "error_title": "ErrorTitle", "error_message": "ErrorMessage", "input_title": "InputTitle",
                   "input_message": "InputMessage", "show_input": "ShowInput", "ignore_blank": "IgnoreBlank", "in_cell_dropdown": "InCellDropdown"}


class MacValidation:
    """AppleScript's ``validation`` of a range, as xlwings uses it on macOS (``add_data_validation``, properties)."""

    def __init__(self, sheet: FakeSheet, area: tuple[int, int, int, int]) -> None:
        self.sheet, self.area = sheet, area

    def delete(self) -> None:
        self.sheet.app.log.append(("validation.delete", self.sheet.name, _area_text(self.area)))
        self.sheet.validations.pop(self.area, None)

    def add_data_validation(self, type: Any, formula1: str) -> None:
        self.sheet.app.log.append(("validation.add_data_validation", self.sheet.name, _area_text(self.area), type, formula1))
        self.sheet.validations[self.area] = {"Type": type, "Formula1": formula1, "ShowError": True, "ShowInput": True}

    def __getattr__(self, name: str) -> _Property:
        if name not in _MAC_VALIDATION:
            raise AttributeError(name)
        store = self.sheet.validations[self.area]
        return _Property(self.sheet.app.log, f"validation.{name}", lambda value: store.__setitem__(_MAC_VALIDATION[name], value))


class _RangeApi:
    def __init__(self, rng: FakeRange) -> None:
        self.rng = rng

    @property
    def validation(self) -> MacValidation:
        return MacValidation(self.rng.sheet, self.rng.areas[0])

    @property
    def Validation(self) -> FakeValidation:
        return FakeValidation(self.rng.sheet, self.rng.areas[0])

    @property
    def FormatConditions(self) -> FakeFormatConditions:
        return FakeFormatConditions(self.rng.sheet, self.rng.areas[0])


class FakeFont:
    """``Range.font``: bold and colour, kept per cell."""

    def __init__(self, rng: FakeRange) -> None:
        self.rng = rng

    def _set(self, key: str, value: Any) -> None:
        self.rng.sheet.app.log.append((f"font.{key}", self.rng.sheet.name, self.rng.address, value))
        for cell in self.rng.cells():
            self.rng.sheet.fonts.setdefault(cell, {})[key] = value

    @property
    def bold(self) -> Any:
        return self.rng.sheet.fonts.get((self.rng.row, self.rng.column), {}).get("bold")

    @bold.setter
    def bold(self, value: bool) -> None:
        self._set("bold", value)

    @property
    def color(self) -> Any:
        return self.rng.sheet.fonts.get((self.rng.row, self.rng.column), {}).get("color")

    @color.setter
    def color(self, value: Any) -> None:
        self._set("color", value)


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
        for _, c1, _, c2 in self.areas:
            for column in range(c1, c2 + 1):
                self.sheet.widths[column] = value

    @property
    def font(self) -> FakeFont:
        return FakeFont(self)

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
    table_style: str = "TableStyleMedium2"

    def resize(self, rng: FakeRange) -> None:
        self.sheet.app.log.append(("table.resize", self.sheet.name, self.name, rng.address))
        self.area = rng.areas[0]


class FakeTables(list[FakeTable]):
    """``sheet.tables``: the sheet's Tables, and ``add``."""

    def __init__(self, sheet: FakeSheet) -> None:
        super().__init__()
        self.sheet = sheet

    def add(self, source: FakeRange, name: str | None = None, table_style_name: str = "TableStyleMedium2", **_: Any) -> FakeTable:
        self.sheet.app.log.append(("tables.add", self.sheet.name, source.address, name, table_style_name))
        table = FakeTable(self.sheet, name or f"Table{len(self) + 1}", source.areas[0], table_style_name)
        self.append(table)
        return table


class _PageSetup:
    def __init__(self, sheet: FakeSheet) -> None:
        object.__setattr__(self, "sheet", sheet)

    def __setattr__(self, name: str, value: Any) -> None:
        self.sheet.page_setup[name] = value


class _SheetApi:
    def __init__(self, sheet: FakeSheet) -> None:
        self.sheet = sheet

    @property
    def PageSetup(self) -> _PageSetup:
        return _PageSetup(self.sheet)

    def Move(self, Before: Any = None, After: Any = None) -> None:
        self.sheet.app.log.append(("Move", self.sheet.name, "after" if After is not None else "before", (After or Before).sheet.name))
        items = self.sheet.collection.items  # type: ignore[union-attr]
        items.remove(self.sheet)
        anchor = items.index((After or Before).sheet)
        items.insert(anchor + 1 if After is not None else anchor, self.sheet)

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
        self.tables = FakeTables(self)
        self.visibility = -1
        self.api = _SheetApi(self)
        self.fonts: dict[Cell, dict[str, Any]] = {}
        self.widths: dict[int, float] = {}
        self.validations: dict[tuple[int, int, int, int], dict[str, Any]] = {}
        self.conditions: list[FakeCondition] = []
        self.freeze: tuple[int, int] | None = None
        """Rows and columns frozen (the window's SplitRow and SplitColumn when FreezePanes was set)."""
        self.page_setup: dict[str, Any] = {}
        self.collection: FakeSheets | None = None

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
        self.app.active_sheet = self

    def delete(self) -> None:
        self.app.log.append(("sheet.delete", self.name))
        assert self.collection is not None
        self.collection.items.remove(self)

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
        sheet.collection = self
        self.items.append(sheet)
        return sheet


class MacWindow:
    """AppleScript's ``active window`` of Excel: ``freeze_panes``, ``split_row``, ``split_column`` (``.set``)."""

    def __init__(self, app: FakeApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {"freeze_panes": False, "split_row": 0, "split_column": 0}

    def __getattr__(self, name: str) -> _Property:
        if name not in ("freeze_panes", "split_row", "split_column"):
            raise AttributeError(name)

        def on_set(value: Any) -> None:
            self.state[name] = value
            sheet = self.app.active_sheet
            if name == "freeze_panes" and sheet is not None:
                sheet.freeze = (self.state["split_row"], self.state["split_column"]) if value else None

        return _Property(self.app.log, f"active_window.{name}", on_set)


class _AppApi:
    def __init__(self, app: FakeApp) -> None:
        self.app = app
        self.active_window = MacWindow(app)

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
    active_sheet: Any = None

    def __post_init__(self) -> None:
        self.api = _AppApi(self)

    def alert(self, prompt: str, title: str | None = None, buttons: str = "ok", mode: str | None = None) -> str:
        self.log.append(("alert", prompt, title, buttons, mode))
        return str(self.answers.pop(0)) if buttons != "ok" else "ok"


class FakeWindow:
    """A workbook window (``Windows(1)``): freezing applies to the active sheet, as in Excel."""

    def __init__(self, app: FakeApp) -> None:
        object.__setattr__(self, "app", app)
        object.__setattr__(self, "state", {"FreezePanes": False, "ScrollRow": 1, "ScrollColumn": 1, "SplitRow": 0, "SplitColumn": 0})

    def __getattr__(self, name: str) -> Any:
        return self.state[name]

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self.state:
            raise AttributeError(name)
        self.app.log.append((f"window.{name}", value))
        self.state[name] = value
        sheet = self.app.active_sheet
        if name == "FreezePanes" and sheet is not None:
            sheet.freeze = (self.state["SplitRow"], self.state["SplitColumn"]) if value else None


class _BookApi:
    def __init__(self, book: FakeBook) -> None:
        self.book = book
        self.window = FakeWindow(book.app)

    def Windows(self, index: int) -> FakeWindow:
        assert index == 1
        return self.window


class FakeBook:
    """An xlwings ``Book``: its app, name and full name, sheets, the selection."""

    def __init__(self, app: FakeApp | None = None, name: str = "Book1", fullname: str | None = None) -> None:
        self.app = app or FakeApp()
        self.name = name
        self.fullname = fullname if fullname is not None else name
        self.sheets = FakeSheets(self.app)
        self.selection: FakeRange | None = None
        self.api = _BookApi(self)

    def sheet(self, name: str, rows: list[list[Any]] | None = None) -> FakeSheet:
        """Add a sheet holding ``rows`` from A1 (test set-up; not logged)."""
        sheet = FakeSheet(self.app, name)
        sheet.collection = self.sheets
        self.sheets.items.append(sheet)
        for r, row in enumerate(rows or [], start=1):
            for c, value in enumerate(row, start=1):
                sheet.set((r, c), value)
        return sheet


# --- a file opened in the stand-in, and the stand-in saved as a file -------------------------------------------


def _hex_of(colour: Any) -> str | None:
    """``(r, g, b)`` or a COM BGR number as ``RRGGBB``."""
    if colour is None:
        return None
    if isinstance(colour, tuple):
        return "".join(f"{v:02X}" for v in colour)
    number = int(colour)
    return f"{number & 0xFF:02X}{(number >> 8) & 0xFF:02X}{(number >> 16) & 0xFF:02X}"


def _bgr(hex_colour: str) -> int:
    red, green, blue = int(hex_colour[0:2], 16), int(hex_colour[2:4], 16), int(hex_colour[4:6], 16)
    return red + green * 256 + blue * 65536


def from_openpyxl(path: Any, app: FakeApp | None = None, fullname: str | None = None) -> FakeBook:
    """The .xlsx file at ``path`` as Excel shows it: values, Tables, drop-downs, conditional formats, frozen panes,
    column widths and formats, notes (a template from New workbook, or an earlier export)."""
    import openpyxl
    from openpyxl.utils import column_index_from_string, range_boundaries

    wb = openpyxl.load_workbook(path)
    book = FakeBook(app, name=str(fullname or "Book1").replace("\\", "/").rsplit("/", 1)[-1], fullname=fullname or "Book1")

    def area(ref: str) -> tuple[int, int, int, int]:
        c1, r1, c2, r2 = range_boundaries(ref)
        return (r1, c1, r2, c2)

    for ws in wb.worksheets:
        sheet = book.sheet(ws.title, [list(r) for r in ws.iter_rows(values_only=True)])
        sheet.visibility = {"visible": -1, "hidden": 0, "veryHidden": 2}[ws.sheet_state]
        for table in ws.tables.values():
            sheet.tables.append(FakeTable(sheet, table.displayName, area(table.ref), table.tableStyleInfo.name if table.tableStyleInfo else ""))
        for dv in ws.data_validations.dataValidation:
            for ref in str(dv.sqref).split():
                sheet.validations[area(ref)] = {"Type": 3, "Formula1": "=" + str(dv.formula1), "ShowError": bool(dv.showErrorMessage),
                                                "ErrorTitle": dv.errorTitle, "ErrorMessage": dv.error, "InputTitle": dv.promptTitle,
                                                "InputMessage": dv.prompt, "ShowInput": bool(dv.showInputMessage)}
        for rng, rules in ws.conditional_formatting._cf_rules.items():
            for rule in rules:
                for ref in str(rng.sqref).split():
                    condition = FakeCondition(area(ref), "=" + rule.formula[0])
                    sheet.conditions.append(condition)
        if ws.freeze_panes:
            c1, r1, _, _ = range_boundaries(ws.freeze_panes)
            sheet.freeze = (r1 - 1, c1 - 1)
        for key, dim in ws.column_dimensions.items():
            first, last = column_index_from_string(key), column_index_from_string(key)
            if dim.min and dim.max:
                first, last = dim.min, dim.max
            for column in range(first, last + 1):
                if dim.width:
                    sheet.widths[column] = dim.width
                if dim.hidden:
                    sheet.widths[column] = 0
                if dim.number_format and dim.number_format != "General":
                    sheet.format_areas.append(((1, column, 1_048_576, column), dim.number_format))
        for row in ws.iter_rows():
            for cell in row:
                if cell.comment is not None:
                    sheet.notes_by_cell[(cell.row, cell.column)] = FakeNote(sheet, (cell.row, cell.column), cell.comment.text, cell.comment.author)
    return book


def to_openpyxl(book: FakeBook) -> Any:
    """What the stand-in holds, as an openpyxl workbook (to compare with the CLI's file through openpyxl)."""
    import openpyxl
    from openpyxl.comments import Comment
    from openpyxl.formatting.rule import FormulaRule
    from openpyxl.styles import Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation
    from openpyxl.worksheet.table import Table, TableStyleInfo

    from rosterbook.core.problems import column_letter

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for sheet in book.sheets:
        ws = wb.create_sheet(sheet.name)
        ws.sheet_state = {-1: "visible", 0: "hidden", 2: "veryHidden"}[sheet.visibility]
        for (r, c), value in sorted(sheet.values.items()):
            cell = ws.cell(r, c)
            cell.value = value
            if isinstance(value, str):
                cell.data_type = "s"
        formats: dict[int, str] = {}
        for (r1, c1, r2, c2), number_format in sheet.format_areas:  # whole columns; the last one set wins
            if r1 == 1 and r2 >= 1_048_576:
                formats.update(dict.fromkeys(range(c1, min(c2, 200) + 1), number_format))
        for column, number_format in formats.items():
            if number_format != "General":
                ws.column_dimensions[column_letter(column)].number_format = number_format
        for column, width in sheet.widths.items():
            dim = ws.column_dimensions[column_letter(column)]
            if width == 0:
                dim.hidden = True
            else:
                dim.width = width
        for (r, c), font in sheet.fonts.items():
            colour = _hex_of(font.get("color"))
            ws.cell(r, c).font = Font(bold=font.get("bold"), color=colour)
        for (r, c), colour in sheet.colors.items():
            hex_colour = _hex_of(colour)
            if hex_colour:
                ws.cell(r, c).fill = PatternFill("solid", start_color=hex_colour, end_color=hex_colour)
        for table in sheet.tables:
            ref = _area_text(table.area)
            made = Table(displayName=table.name, ref=ref)
            made.tableStyleInfo = TableStyleInfo(name=table.table_style, showRowStripes=True)
            ws.add_table(made)
        for (r1, c1, r2, c2), options in sheet.validations.items():
            dv = DataValidation(type="list", formula1=str(options["Formula1"]).removeprefix("="), allow_blank=True)
            dv.showErrorMessage = bool(options.get("ShowError"))
            dv.add(_area_text((r1, c1, r2, c2)))
            ws.add_data_validation(dv)
        for condition in sheet.conditions:
            fill = _hex_of(condition.Interior.Color) or "FFFFFF"
            ws.conditional_formatting.add(_area_text(condition.area), FormulaRule(formula=[condition.formula.removeprefix("=")],
                                                                                   fill=PatternFill("solid", start_color=fill, end_color=fill)))
        if sheet.freeze:
            rows, columns = sheet.freeze
            ws.freeze_panes = f"{column_letter(columns + 1)}{rows + 1}"
        for (r, c), note in sheet.notes_by_cell.items():
            ws.cell(r, c).comment = Comment(note.text, note.author)
    return wb
