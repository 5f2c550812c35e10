"""The only module that touches a live Excel workbook (xlwings): ``XlwingsBook`` and the UDF caller context.

``XlwingsBook`` implements ``rosterbook.sheets.SheetBook`` over an ``xlwings.Book``: a sheet is read
in one 2-D call, a block is written in one call (strings Excel would turn into formulas, numbers,
dates or booleans are written as literal text), marks are a fill colour plus a note, progress goes
to the status bar, and ``batch()`` turns off screen updating and automatic calculation during bulk
writes. Everything above it (``rosterbook.workbook``, ``rosterbook.app``) is the same code the CLI
runs on .xlsx files through ``rosterbook.xlsxpatch.PatchBook``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import xlwings as xw

from rosterbook.core.codecs import Cell
from rosterbook.core.problems import column_letter
from rosterbook.errors import RosterbookError
from rosterbook.sheets import NOTE_AUTHOR, DressableBook, Mark, SheetBook, Visibility, marked_note, their_note, trim_grid
from rosterbook.workbook import SHEET_ORDER, DropDown, SheetDress

ERROR_RGB = (255, 199, 206)
WARNING_RGB = (255, 235, 156)
_VISIBLE, _HIDDEN, _VERY_HIDDEN = -1, 0, 2  # Excel's XlSheetVisibility
_UNION_CHUNK = 25  # addresses per union range (Excel caps a range address at 255 characters)

# A string Excel would not keep as typed text when assigned to a cell's Value: formulas and
# injection prefixes, numbers (leading zeros), dates/times, percentages, booleans, error words,
# and a leading apostrophe (which Excel would swallow).
_SPECIAL_FIRST = frozenset("=+-@'#\t\r\n")
_NUMBERISH = re.compile(r"\d")
_BOOL_WORDS = frozenset({"TRUE", "FALSE"})


def excel_text(value: Cell) -> Cell:
    """The value to assign so a string stays literal text: prefixed with ``'`` when Excel would convert it.

    The apostrophe is Excel's text prefix, not part of the value: reading the cell back gives the
    string as written.
    """
    if not isinstance(value, str) or not value:
        return value
    if value[0] in _SPECIAL_FIRST or _NUMBERISH.search(value) or value.strip().upper() in _BOOL_WORDS:
        return "'" + value
    return value


def rectangular(values: Sequence[Sequence[Cell]]) -> list[list[Cell]]:
    """Rows padded with None to the widest row (Excel writes a rectangle in one call)."""
    width = max((len(r) for r in values), default=0)
    return [[excel_text(v) for v in row] + [None] * (width - len(row)) for row in values]


trim = trim_grid
"""Drop trailing blank rows and columns (a used range often extends past the data)."""


_AREA = re.compile(r"^\$?[A-Z]{0,3}\$?(\d+)(?::\$?[A-Z]{0,3}\$?(\d+))?$")


def rows_of_address(address: str) -> list[int]:
    """Row numbers covered by an A1 address with one or more areas (``$A$2:$C$4,$A$7``, ``$5:$6``)."""
    rows: set[int] = set()
    for area in address.replace(" ", "").split(","):
        match = _AREA.match(area.split("!")[-1])
        if match is None:
            continue
        first = int(match.group(1))
        last = int(match.group(2) or first)
        rows.update(range(min(first, last), max(first, last) + 1))
    return sorted(rows)


AUTHOR = NOTE_AUTHOR
"""The author of the notes rosterbook writes into files (``rosterbook.xlsx``), kept when Excel opens them."""


def _note_parts(note: Any) -> tuple[str, str | None]:
    """A note's text and author (an author Excel cannot tell is None)."""
    try:
        author = str(note.author or "")
    except Exception:
        author = None
    return str(note.text or ""), author


def is_rosterbook_note(note: Any) -> bool:
    """A note rosterbook wrote: a problem mark (``E7 account_active: ...``, as ``write_problems`` writes it)
    or a note by the ``rosterbook`` author; anything else someone typed is theirs (see ``their_note``)."""
    return their_note(*_note_parts(note)) is None


Area = tuple[int, int, int, int]
"""A block of cells as (first row, first column, last row, last column), 1-based."""


def merge_areas(merged: Callable[[Area], object], area_of: Callable[[int, int], Area], last_row: int, last_column: int) -> list[Area]:
    """The merged areas within A1 to (``last_row``, ``last_column``), found by halving the block.

    ``merged(block)`` is Excel's ``MergeCells`` of a block: False when no cell of it is merged
    (then the block is skipped whole: one call for a sheet without merged cells), True when all
    are, None (or anything else) when some are. ``area_of(row, column)`` is the merge area of a
    merged cell. Each merged area costs a few calls per halving step, not one call per cell.
    """
    found: set[Area] = set()
    blocks: list[Area] = [(1, 1, last_row, last_column)] if last_row >= 1 and last_column >= 1 else []
    while blocks:
        block = blocks.pop()
        first_row, first_col, end_row, end_col = block
        state = merged(block)
        if state is False or state == 0:
            continue
        single = (first_row, first_col) == (end_row, end_col)
        if state is True or single:
            area = area_of(first_row, first_col)
            if area[2] > area[0] or area[3] > area[1]:  # a lone cell is its own "merge area"
                found.add(area)
            if single or (area[0] <= first_row and area[1] <= first_col and area[2] >= end_row and area[3] >= end_col):
                continue  # the whole block lies in that one area
        if end_row - first_row >= end_col - first_col:
            middle = (first_row + end_row) // 2
            blocks += [(first_row, first_col, middle, end_col), (middle + 1, first_col, end_row, end_col)]
        else:
            middle = (first_col + end_col) // 2
            blocks += [(first_row, first_col, end_row, middle), (first_row, middle + 1, end_row, end_col)]
    return sorted(found)


class XlwingsBook:
    """A SheetBook over the workbook open in Excel (``xw.Book.caller()``)."""

    def __init__(self, book: Any, *, system: str | None = None) -> None:
        self.book = book
        self.app = book.app
        self.system = sys.platform if system is None else system
        self._status_before: Any = None

    @classmethod
    def caller(cls) -> XlwingsBook:
        """The workbook whose ribbon button or formula called Python."""
        return cls(xw.Book.caller())

    @property
    def name(self) -> str:
        """The workbook's name in Excel (``Book1`` until saved)."""
        return str(self.book.name)

    @property
    def path(self) -> str | None:
        """The open workbook's full path on disk; None while it was never saved (or when Excel gives
        only a web address, for a file in OneDrive or SharePoint that has no folder here)."""
        try:
            full = str(self.book.fullname or "")
        except Exception:  # xlwings cannot map a OneDrive or SharePoint address to a local folder
            return None
        if not full or "://" in full or not ("/" in full or "\\" in full):
            return None
        return full

    # --- SheetBook ------------------------------------------------------------------------

    def sheet_names(self) -> list[str]:
        return [s.name for s in self.book.sheets]

    def values(self, sheet: str) -> list[list[Cell]]:
        ws = self._ws(sheet)
        last = ws.used_range.last_cell
        data = ws.range((1, 1), (last.row, last.column)).options(ndim=2).value
        return trim([list(row) for row in (data or [])])

    def merged_ranges(self, sheet: str) -> list[Area]:
        """Merged cell ranges as (first row, first column, last row, last column), 1-based (see ``merge_areas``)."""
        ws = self._ws(sheet)
        last = ws.used_range.last_cell

        def merged(block: Area) -> object:
            return ws.range(block[:2], block[2:]).merge_cells

        def area_of(row: int, column: int) -> Area:
            area = ws.range((row, column)).merge_area
            end = area.last_cell
            return (area.row, area.column, end.row, end.column)

        return merge_areas(merged, area_of, last.row, last.column)

    def header_row(self, sheet: str) -> list[Cell]:
        """Row 1 only (UDFs call this once per formula; reading the whole sheet would be wasteful)."""
        found = self.rows(sheet, 1, 1)
        return found[0] if found else []

    def rows(self, sheet: str, first_row: int, last_row: int) -> list[list[Cell]]:
        """Rows ``first_row`` to ``last_row``, every used column, in one read (the cell functions' rows)."""
        ws = self._ws(sheet)
        last = ws.used_range.last_cell
        data = ws.range((first_row, 1), (last_row, max(1, last.column))).options(ndim=2).value
        return [list(row) for row in (data or [])]

    def extent(self, sheet: str) -> tuple[int, int]:
        """The last used row and column (what changed in the snapshot, without reading it)."""
        last = self._ws(sheet).used_range.last_cell
        return (int(last.row), int(last.column))

    def write_values(self, sheet: str, row: int, column: int, values: Sequence[Sequence[Cell]]) -> None:
        block = rectangular(values)
        if not block or not block[0]:
            return
        self._ws(sheet).range((row, column)).value = block

    def clear(self, sheet: str, first_row: int, last_column: int | None = None) -> None:
        ws = self._ws(sheet)
        last = ws.used_range.last_cell
        if last.row < first_row:
            return
        right = last_column if last_column is not None else last.column
        target = ws.range((first_row, 1), (last.row, right))
        target.clear_contents()
        target.color = None
        # Notes someone wrote stay; rosterbook's own (problem marks, header help) go with the block's values.
        for note in list(ws.notes):
            cell = note.location
            if cell.row >= first_row and cell.column <= right:
                text, author = _note_parts(note)
                theirs = their_note(text, author)
                if theirs is None:
                    note.delete()
                elif theirs != text:
                    note.text = theirs

    def ensure_sheet(self, sheet: str, visibility: Visibility = "visible") -> None:
        if sheet not in self.sheet_names():
            self.book.sheets.add(sheet, after=self.book.sheets[-1])
        ws = self._ws(sheet)
        if visibility == "veryHidden":
            try:
                ws.api.Visible = _VERY_HIDDEN
                return
            except Exception:  # macOS: no very hidden through this API; hidden is the closest
                ws.visible = False
                return
        ws.visible = visibility == "visible"

    def visibility(self, sheet: str) -> Visibility:
        ws = self._ws(sheet)
        try:
            state = int(ws.api.Visible)
        except Exception:
            return "visible" if ws.visible else "hidden"
        return "visible" if state == _VISIBLE else "veryHidden" if state == _VERY_HIDDEN else "hidden"

    def hide_columns(self, sheet: str, columns: Sequence[int]) -> None:
        ws = self._ws(sheet)
        for index in columns:
            ws.range(f"{column_letter(index)}:{column_letter(index)}").column_width = 0

    def mark(self, sheet: str, marks: Mapping[str, tuple[Mark, str] | None]) -> None:
        ws = self._ws(sheet)
        by_colour: dict[Any, list[str]] = {}
        for address, mark in marks.items():
            colour = None if mark is None else ERROR_RGB if mark[0] == "error" else WARNING_RGB
            by_colour.setdefault(colour, []).append(address)
        for colour, addresses in by_colour.items():
            for start in range(0, len(addresses), _UNION_CHUNK):
                ws.range(",".join(addresses[start : start + _UNION_CHUNK])).color = colour
        for address, mark in marks.items():
            cell = ws.range(address)
            note = cell.note
            text, author = _note_parts(note) if note is not None else (None, None)
            wanted = marked_note(text, author, mark[1] if mark is not None else None)
            if wanted == text:
                continue
            if wanted is None:
                note.delete()
            elif note is not None:
                note.text = wanted  # someone's own note stays above rosterbook's part
            else:
                cell.add_note(wanted)

    def fit_table(self, sheet: str, last_row: int, last_column: int) -> None:
        ws = self._ws(sheet)
        if not ws.tables:
            return
        ws.tables[0].resize(ws.range((1, 1), (max(2, last_row), last_column)))

    def set_text_columns(self, sheet: str, columns: Sequence[int]) -> None:
        ws = self._ws(sheet)
        letters = [f"{column_letter(c)}:{column_letter(c)}" for c in sorted(set(columns))]
        for start in range(0, len(letters), _UNION_CHUNK):
            ws.range(",".join(letters[start : start + _UNION_CHUNK])).number_format = "@"

    def progress(self, message: str) -> None:
        self.app.status_bar = message

    persists = False
    """``save()`` writes nothing: no sync journal beside the file (see ``rosterbook.sheets.SheetBook.save``)."""

    def save(self) -> None:
        """Nothing: in Excel the user decides when to save."""

    # --- the dress (``rosterbook.workbook.SheetDress``) -----------------------------------------

    def dress(self, spec: SheetDress) -> None:
        """Apply a sheet's dress as the CLI's file has it (``rosterbook.xlsx.apply_dress``).

        Through xlwings where it has the call on Windows and macOS (Table, header style, widths, notes,
        formats); drop-downs, highlighting, the frozen header and print setup through Excel's object
        model (COM on Windows; on macOS the drop-downs and the frozen header through AppleScript, and
        the highlighting only where the workbook already has it: the templates do).
        """
        if spec.sheet not in self.sheet_names():
            return
        ws = self._ws(spec.sheet)
        if spec.table is not None:
            self._table(ws, spec)
        if spec.header_columns:
            header = ws.range((1, 1), (1, spec.header_columns))
            header.font.bold = True
            if spec.header_font:
                header.font.color = _rgb(spec.header_font)
            if spec.header_fill:
                header.color = _rgb(spec.header_fill)
        for index, width in spec.widths.items():
            ws.range(f"{column_letter(index)}:{column_letter(index)}").column_width = width
        if spec.table is not None:
            self._header_notes(ws, spec)
        if spec.table is not None:
            # Columns a template or an earlier export formatted as Text may hold other data now.
            ws.range((1, 1), (MAX_ROW, _MAX_COLUMN)).number_format = "General"
        if spec.text_columns:
            self.set_text_columns(spec.sheet, spec.text_columns)
        if spec.hidden_columns:
            self.hide_columns(spec.sheet, spec.hidden_columns)
        if spec.table is not None:
            self._drop_downs(ws, spec)
            self._highlights(ws, spec)
        if spec.freeze is not None:
            self._freeze(ws, spec.freeze)
        if spec.printable and self.system != "darwin":
            _try(lambda: _print_setup(ws.api.PageSetup, spec.print_area))

    def remove_sheet(self, sheet: str) -> None:
        """Delete a sheet (the empty ``Sheet1`` a new workbook came with)."""
        self._ws(sheet).delete()

    def arrange(self) -> None:
        """Sheets in layout order (Windows; on macOS they stay where Excel added them), the Users sheet in front."""
        names = self.sheet_names()
        if self.system != "darwin":
            previous: Any = None
            for name in [n for n in SHEET_ORDER if n in names]:
                ws = self._ws(name)
                if previous is not None:
                    ws.api.Move(After=previous.api)
                previous = ws
        if _USERS in names:
            self._ws(_USERS).activate()

    def _table(self, ws: Any, spec: SheetDress) -> None:
        area = ws.range((1, 1), (spec.last_row, spec.last_column))
        if not ws.tables:
            ws.tables.add(source=area, name=spec.table, table_style_name=spec.table_style)
            return
        table = ws.tables[0]
        table.resize(area)
        table.table_style = spec.table_style

    def _header_notes(self, ws: Any, spec: SheetDress) -> None:
        """The header notes, marked as rosterbook's (Excel makes the user their author); someone's own note stays above."""
        for index in range(1, spec.last_column + 1):
            cell = ws.range((1, index))
            note = cell.note
            text, author = _note_parts(note) if note is not None else (None, None)
            help_text = spec.notes.get(index)
            wanted = marked_note(text, author, f"{HEADER_NOTE_START}{help_text}" if help_text else None)
            if wanted == text:
                continue
            if wanted is None:
                note.delete()
            elif note is not None:
                note.text = wanted
            else:
                cell.add_note(wanted)

    def _drop_downs(self, ws: Any, spec: SheetDress) -> None:
        for drop in spec.drop_downs:
            letter = column_letter(drop.column)
            target = ws.range(f"{letter}2:{letter}{MAX_ROW}")
            if self.system == "darwin":
                _mac_drop_down(target.api, drop)
            else:
                _windows_drop_down(target.api.Validation, drop)

    def _highlights(self, ws: Any, spec: SheetDress) -> None:
        if self.system == "darwin":
            return  # AppleScript cannot add one: the templates carry it (it finds Problems by its header, wherever it is)
        area = ws.range((2, 1), (MAX_ROW, 16384)).api
        _try(area.FormatConditions.Delete)
        for light in spec.highlights:
            target = ws.range((2, light.first_column), (MAX_ROW, light.last_column)).api
            condition = target.FormatConditions.Add(Type=_XL_EXPRESSION, Formula1="=" + light.formula)
            condition.Interior.Color = _bgr(light.fill)
            condition.Font.Color = _bgr(light.font)

    def _freeze(self, ws: Any, cell: str) -> None:
        """Freeze the panes above and left of ``cell`` (Excel freezes the active sheet's window)."""
        match = re.match(r"^([A-Z]+)(\d+)$", cell)
        if match is None:
            return
        columns = sum((ord(ch) - 64) * 26**i for i, ch in enumerate(reversed(match.group(1)))) - 1
        rows = int(match.group(2)) - 1
        ws.activate()
        if self.system == "darwin":
            window = self.app.api.active_window
            _try(lambda: (window.freeze_panes.set(False), window.split_row.set(rows), window.split_column.set(columns),
                          window.freeze_panes.set(True)))
            return
        window = self.book.api.Windows(1)
        window.FreezePanes = False
        window.ScrollRow, window.ScrollColumn = 1, 1
        window.SplitRow, window.SplitColumn = rows, columns
        window.FreezePanes = True

    # --- Excel only ----------------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Screen updating off and manual calculation during bulk writes; restored afterwards."""
        app = self.app
        updating, calculation = app.screen_updating, app.calculation
        app.screen_updating = False
        app.calculation = "manual"
        try:
            yield
        finally:
            app.calculation = calculation
            app.screen_updating = updating
            app.status_bar = False  # hands the status bar back to Excel

    def write_formula(self, sheet: str, row: int, column: int, formula: str, *, last_row: int | None = None, spill: bool = False) -> None:
        """Put one formula in rows ``row`` to ``last_row`` of a column (in a Table: its calculated column).

        ``spill``: one dynamic-array formula in the first cell (Excel 365/2021), or where Excel has no
        dynamic arrays, a legacy array formula over all the rows.
        """
        ws = self._ws(sheet)
        end = max(row, last_row or row)
        target = ws.range((row, column), (end, column))
        target.number_format = "General"  # a Text cell would keep the formula as text
        if not spill:
            target.formula = formula
            return
        first = ws.range((row, column))
        try:
            first.formula2 = formula
        except Exception:  # no dynamic arrays in this Excel
            target.formula_array = formula

    def table_name(self, sheet: str) -> str | None:
        """The name of the sheet's Excel Table (the Users Table), None without one."""
        ws = self._ws(sheet)
        return str(ws.tables[0].name) if ws.tables else None

    def selected_rows(self, sheet: str) -> list[int]:
        """Row numbers of the current selection on ``sheet`` (empty if the selection is elsewhere)."""
        selection = self.book.selection
        if selection is None or selection.sheet.name != sheet:
            return []
        return rows_of_address(selection.address)

    def activate(self, sheet: str) -> None:
        """Show this sheet."""
        self._ws(sheet).activate()

    def _ws(self, sheet: str) -> Any:
        try:
            return self.book.sheets[sheet]
        except Exception:
            raise KeyError(sheet) from None


def _conforms(book: XlwingsBook) -> DressableBook:
    """mypy checks here that XlwingsBook implements the SheetBook protocol (and can show the dress)."""
    return book


_USERS = "Users"
MAX_ROW = 1048576
_MAX_COLUMN = 16384
HEADER_NOTE_START = f"{NOTE_AUTHOR}:\n"
"""How a header note rosterbook writes in Excel starts (Excel makes the user its author; its own notes start "Name:")."""
_XL_EXPRESSION = 2  # XlFormatConditionType.xlExpression
_XL_VALIDATE_LIST, _XL_ALERT_STOP, _XL_BETWEEN = 3, 1, 1


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return (int(hex_colour[0:2], 16), int(hex_colour[2:4], 16), int(hex_colour[4:6], 16))


def _bgr(hex_colour: str) -> int:
    """Excel's COM colour number (red + green * 256 + blue * 65536)."""
    red, green, blue = _rgb(hex_colour)
    return red + green * 256 + blue * 65536


def _try(action: Callable[[], Any]) -> None:
    """Something Excel may refuse (no printer for page setup, an older Excel for Mac): the rest of the dress still goes on."""
    with suppress(Exception):  # a cosmetic part of the dress must never fail an export
        action()


def _windows_drop_down(validation: Any, drop: DropDown) -> None:
    validation.Delete()
    validation.Add(Type=_XL_VALIDATE_LIST, AlertStyle=_XL_ALERT_STOP, Operator=_XL_BETWEEN, Formula1="=" + drop.source)
    validation.IgnoreBlank = True
    validation.InCellDropdown = True
    validation.ShowError = drop.strict  # 'Admin; Learner' in a list column must be typeable
    validation.ErrorTitle = drop.title
    validation.ErrorMessage = drop.error
    validation.InputTitle = drop.title
    validation.InputMessage = drop.prompt or ""
    validation.ShowInput = drop.prompt is not None


def _mac_drop_down(target: Any, drop: DropDown) -> None:
    """AppleScript's validation object, as xlwings sets one on macOS (``add data validation``, then its properties)."""
    from appscript import k  # macOS only

    validation = target.validation
    _try(validation.delete)
    validation.add_data_validation(type=k.validate_list, formula1="=" + drop.source)
    for name, value in (("ignore_blank", True), ("in_cell_dropdown", True), ("show_error", drop.strict), ("error_title", drop.title),
                        ("error_message", drop.error), ("input_title", drop.title), ("input_message", drop.prompt or ""),
                        ("show_input", drop.prompt is not None)):
        getattr(validation, name).set(value)


def _print_setup(page: Any, area: str | None) -> None:
    """Landscape, one page wide, gridlines, header row repeated (what the CLI's file has)."""
    page.Orientation = 2  # xlLandscape
    page.Zoom = False
    page.FitToPagesWide = 1
    page.FitToPagesTall = False
    page.PrintGridlines = True
    page.PrintTitleRows = "$1:$1"
    if area is not None:
        page.PrintArea = area


# --- the ribbon's user interface in Excel ---------------------------------------------------------------

_MSGBOX_LIMIT = 1000  # Excel's MsgBox shows about 1024 characters


class ExcelUI:
    """Dialogs for the ribbon (``app.alert``, file pickers); progress goes through the book's status bar.

    File pickers are Excel's own on Windows (``GetOpenFilename``/``GetSaveAsFilename``). On macOS
    those do not reach Python through AppleScript, so the pickers are AppleScript's Standard
    Additions run inside Excel (``osax``, which xlwings uses for ``app.alert`` there): the dialog
    shows over Excel and Excel's sandbox lets it open the file chosen.
    """

    def __init__(self, excel: XlwingsBook, *, system: str | None = None, additions: Any = None,
                 masked_prompt: Callable[[str, str], str | None] | None = None) -> None:
        self.excel = excel
        self.system = sys.platform if system is None else system
        self._additions = additions
        self._masked_prompt = masked_prompt or tk_masked_prompt

    def alert(self, message: str, *, error: bool = False) -> None:
        self.excel.app.alert(_fit(message), title="rosterbook", buttons="ok", mode="critical" if error else "info")

    def confirm(self, message: str) -> bool:
        return self.excel.app.alert(_fit(message), title="rosterbook", buttons="yes_no", mode="info") == "yes"

    def choose_file(self, title: str) -> str | None:
        """Ask for a CSV file to open; None when cancelled."""
        if self.system == "darwin":
            return self._mac_dialog("choose_file", with_prompt=title, of_type=list(_CSV_TYPES))
        chosen = self.excel.app.api.GetOpenFilename("CSV files (*.csv),*.csv", 1, title)
        return chosen if isinstance(chosen, str) and chosen else None

    def choose_save_path(self, title: str, suggested: str) -> str | None:
        """Ask where to save a file (``suggested``: a file name, or a full path whose folder the dialog opens in); None when cancelled."""
        if self.system == "darwin":
            return self._mac_dialog("choose_file_name", with_prompt=title, default_name=suggested.replace("\\", "/").rsplit("/", 1)[-1])
        chosen = self.excel.app.api.GetSaveAsFilename(suggested, "CSV files (*.csv),*.csv", 1, title)
        return chosen if isinstance(chosen, str) and chosen else None

    def ask_secret(self, title: str, prompt: str) -> str | None:
        """Ask for a token in a dialog that masks it; None when cancelled.

        macOS: AppleScript's ``display dialog ... with hidden answer``, run by Excel. Windows: Excel's
        own input boxes cannot mask, so a small Tk form with a masked entry, kept above Excel.
        """
        if self.system == "darwin":
            additions = self._standard_additions()
            try:
                additions.activate()
                answer = additions.display_dialog(prompt, default_answer="", hidden_answer=True, buttons=["Cancel", "Sign in"],
                                                  default_button="Sign in", cancel_button="Cancel", with_title=title)
            except Exception as exc:
                if _cancelled(exc):
                    return None
                raise
            text = _record_field(answer, "text_returned")
            return str(text) if text else None
        return self._masked_prompt(title, prompt)

    def selected_rows(self, book: SheetBook, sheet: str) -> list[int]:
        return self.excel.selected_rows(sheet)

    def show_sheet(self, book: SheetBook, sheet: str) -> None:
        self.excel.activate(sheet)

    def _mac_dialog(self, command: str, **options: Any) -> str | None:
        additions = self._standard_additions()
        try:
            additions.activate()  # the dialog shows in front, over Excel
            chosen = getattr(additions, command)(**options)
        except Exception as exc:
            if _cancelled(exc):
                return None
            raise
        path = getattr(chosen, "path", chosen)
        return str(path) if path else None

    def _standard_additions(self) -> Any:
        if self._additions is None:
            import osax  # appscript's; installed with xlwings on macOS

            self._additions = osax.OSAX(pid=self.excel.app.pid)
        return self._additions


_CSV_TYPES = ("public.comma-separated-values-text", "csv")
_USER_CANCELLED = -128  # AppleScript's "User canceled."


def _cancelled(exc: Exception) -> bool:
    return getattr(exc, "errornumber", None) == _USER_CANCELLED or "-128" in str(exc)


def _record_field(record: Any, name: str) -> Any:
    """A field of an AppleScript record as appscript returns it (keys are ``appscript.k`` keywords)."""
    try:
        from appscript import k  # macOS only

        return record[getattr(k, name)]
    except (ImportError, KeyError, TypeError):
        pass
    for key, value in dict(record).items():
        if getattr(key, "name", getattr(key, "AS_name", key)) == name:
            return value
    return None


def tk_masked_prompt(title: str, prompt: str) -> str | None:
    """A small form with a masked entry (Tk, which the Windows Python installer includes), in front of Excel; None when cancelled."""
    try:
        import tkinter
        from tkinter import simpledialog
    except ImportError:
        raise RosterbookError(
            "this Python has no Tk, which the Sign in dialog needs on Windows: reinstall Python with 'tcl/tk and IDLE' ticked, "
            "then run the add-in's install again."
        ) from None
    root = tkinter.Tk()
    try:
        root.withdraw()
        root.attributes("-topmost", True)  # above Excel, which called Python
        answer = simpledialog.askstring(title, prompt, show="\u2022", parent=root)
    finally:
        root.destroy()
    return answer if answer else None


def _fit(message: str) -> str:
    return message if len(message) <= _MSGBOX_LIMIT else message[: _MSGBOX_LIMIT - 3] + "..."


# --- UDF caller context ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CallerContext:
    """Where a UDF was called from: the workbook (a SheetBook), the sheet and the row of the calling cell."""

    book: SheetBook | None
    sheet: str = "Users"
    row: int = 2

    def header_row(self) -> list[Cell]:
        """The calling sheet's row 1."""
        found = self.read(self.sheet, 1, 1)
        return list(found[0]) if found else []

    def read(self, sheet: str, first_row: int, last_row: int) -> list[list[Cell]]:
        """Whole rows ``first_row`` to ``last_row`` of ``sheet`` (every used column), in one read."""
        if self.book is None or last_row < first_row:
            return []
        block = getattr(self.book, "rows", None)
        if callable(block):
            return [list(r) for r in block(sheet, first_row, last_row)]
        grid = self.book.values(sheet)
        out = [list(r) for r in grid[first_row - 1 : last_row]]
        return out + [[] for _ in range(last_row - first_row + 1 - len(out))]


def caller_context(caller: Any) -> CallerContext | None:
    """The context of a UDF's ``caller`` argument: None, a ready CallerContext (tests), or the calling xlwings Range."""
    if caller is None or isinstance(caller, CallerContext):
        return caller
    return CallerContext(XlwingsBook(caller.sheet.book), caller.sheet.name, int(caller.row))


@dataclass(frozen=True)
class Place:
    """Where a range argument of a UDF lies: its sheet, first row and column, and size."""

    sheet: str
    row: int
    column: int
    rows: int = 1
    columns: int = 1


def place_of(text: Any) -> Place | None:
    """The ``place`` the add-in's VBA passes for a range argument (``RosterbookPlace``: "row,column,rows,columns,sheet");
    None for anything else (an array of values has no place)."""
    if not isinstance(text, str) or text.count(",") < 4:
        return None
    row, column, rows, columns, sheet = text.split(",", 4)
    try:
        return Place(sheet, int(row), int(column), int(rows), int(columns))
    except ValueError:
        return None
