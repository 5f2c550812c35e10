"""The SheetBook adapter that builds a new .xlsx file with openpyxl, and the Users sheet's Excel dress:
the ``Users`` Table, frozen header, Text columns, drop-downs, conditional formatting, widths and
header comments. ``export`` and ``scripts/make_template.py`` (``build_template``) write with it.

An existing workbook is written by ``rosterbook.xlsxpatch.PatchBook``, which patches the file instead
of loading and saving it whole; ``OpenpyxlBook(path)`` still opens one (reads go through the fast
calamine reader until the first write, which loads the file with openpyxl), for tests and scripts.
Only openpyxl's public API is used.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import MergedCell
from openpyxl.comments import Comment
from openpyxl.formatting.rule import FormulaRule
from openpyxl.styles import Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.filters import AutoFilter
from openpyxl.worksheet.table import Table, TableColumn, TableStyleInfo
from openpyxl.worksheet.worksheet import Worksheet

from rosterbook import workbook as layout
from rosterbook.core.codecs import Cell
from rosterbook.core.dialects import Dialect
from rosterbook.core.problems import column_letter
from rosterbook.core.settings import Settings
from rosterbook.errors import DataError, UsageError
from rosterbook.safesave import atomic_write, remove_leftovers
from rosterbook.sheets import NO_VISIBLE_SHEET, NOTE_AUTHOR, Mark, Visibility, check_extent, marked_note, their_note, trim_grid

TABLE_NAME = layout.USERS
ERROR_FILL = PatternFill("solid", start_color=layout.ERROR_FILL, end_color=layout.ERROR_FILL)
WARNING_FILL = PatternFill("solid", start_color=layout.WARNING_FILL, end_color=layout.WARNING_FILL)
NO_FILL = PatternFill(fill_type=None)
AUTHOR = NOTE_AUTHOR
_MAX_TEXT = 32767  # Excel's limit for one cell
_NEEDS_CLEANING = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _text(value: str) -> str:
    """Text a cell can hold (no control characters XML 1.0 cannot carry, at most 32,767 characters)."""
    return (_NEEDS_CLEANING.sub("", value) if _NEEDS_CLEANING.search(value) else value)[:_MAX_TEXT]


class OpenpyxlBook:
    """A SheetBook that ``save()`` writes whole with openpyxl (atomically: a temporary file beside it, then a rename).

    ``OpenpyxlBook.new(path)`` starts an empty workbook (export, the templates): big blocks of text
    written into it go straight into the saved file (``_splice_rows``), the rest through openpyxl.
    ``OpenpyxlBook(path)`` opens an existing file: reads are served by the fast calamine reader until
    the first write (or when the sheet holds formulas, whose text only openpyxl gives), which loads
    the whole file with openpyxl.
    """

    def __init__(self, path: str | os.PathLike[str], workbook: Workbook | None = None) -> None:
        self.path = Path(path)
        self._wb: Workbook | None = workbook
        self._fast: Any = None
        if workbook is None:
            _check_path(self.path)
            remove_leftovers(self.path)
            from rosterbook.fastread import FastBook

            self._fast = FastBook(self.path)
        self._progress: list[str] = []
        self._new = False
        self._bulk: dict[str, tuple[int, int, list[Sequence[Cell]]]] = {}
        """Rows of a new workbook written straight into the saved file: sheet -> (first row, first column, rows)."""

    @property
    def wb(self) -> Workbook:
        """The openpyxl workbook, loaded on first use."""
        if self._wb is None:
            self._wb = _load(self.path)
            self._fast = None
        return self._wb

    @property
    def loaded(self) -> bool:
        """Whether openpyxl has loaded the file (every write does)."""
        return self._wb is not None

    @classmethod
    def new(cls, path: str | os.PathLike[str]) -> OpenpyxlBook:
        """An empty book (no sheets yet) that will be saved at ``path``."""
        wb = Workbook()
        wb.remove(wb.active)
        book = cls(path, wb)
        book._new = True
        return book

    # --- SheetBook ------------------------------------------------------------------------

    def sheet_names(self) -> list[str]:
        if self._wb is None:
            return list(self._fast.sheet_names())
        return list(self._wb.sheetnames)

    def values(self, sheet: str) -> list[list[Cell]]:
        self._materialise(sheet)
        if self._wb is None:
            if sheet not in self._fast.sheet_names():
                raise KeyError(sheet)
            if not self._fast.has_formulas(sheet):
                return list(self._fast.values(sheet))
        ws = self._ws(sheet)
        # Checked before a grid is built: a stray cell at XFD1048576 would be billions of cells.
        check_extent(sheet, ws.max_row, ws.max_column)
        rows: list[list[Cell]] = [list(r) for r in ws.iter_rows(min_row=1, max_row=ws.max_row, max_col=ws.max_column, values_only=True)]
        return trim_grid(rows)

    def write_values(self, sheet: str, row: int, column: int, values: Sequence[Sequence[Cell]]) -> None:
        ws = self._ws(sheet)
        if self._can_defer(ws, row, values):
            # openpyxl would build and serialise a million Cell objects: the first two lines go through it
            # (so every column's style is known), the rest is written into the file at save.
            self._bulk[sheet] = (row + 2, column, list(values[2:]))
            values = values[:2]
        else:
            self._materialise(sheet)
        last_row, last_column = ws.max_row, ws.max_column
        for r, line in enumerate(values, start=row):
            for c, value in enumerate(line, start=column):
                if value is None or value == "":
                    if r <= last_row and c <= last_column:  # never create cells only to blank them
                        blank = ws.cell(row=r, column=c)
                        if not isinstance(blank, MergedCell):
                            blank.value = None
                    continue
                cell = ws.cell(row=r, column=c)
                if isinstance(cell, MergedCell):
                    raise DataError(f"{sheet}!{cell.coordinate} is inside merged cells, so nothing can be written there: unmerge them and run again.")
                if value.__class__ is str:
                    # Literal text, never a formula: '=HYPERLINK(...)' from a platform stays inert.
                    cell.value = _text(str(value))
                    cell.data_type = "s"
                else:
                    cell.value = value

    def merged_ranges(self, sheet: str) -> list[tuple[int, int, int, int]]:
        """Merged cell ranges as (first row, first column, last row, last column), 1-based."""
        if self._wb is None:
            return list(self._fast.merged_ranges(sheet))
        return [(r.min_row, r.min_col, r.max_row, r.max_col) for r in self._ws(sheet).merged_cells.ranges]

    def clear(self, sheet: str, first_row: int, last_column: int | None = None) -> None:
        self._materialise(sheet)
        ws = self._ws(sheet)
        for merged in list(ws.merged_cells.ranges):
            if merged.max_row >= first_row and (last_column is None or merged.min_col <= last_column):
                ws.unmerge_cells(str(merged))  # its other cells are read-only: the area is being cleared anyway
        if first_row > ws.max_row:
            return
        width = ws.max_column if last_column is None else min(last_column, ws.max_column)
        for line in ws.iter_rows(min_row=first_row, max_row=ws.max_row, max_col=width):
            for cell in line:
                cell.value = None
                # Someone's own note stays; rosterbook's (problem marks, header help) goes with the values.
                cell.comment = _their_comment(cell.comment)
                if cell.fill is not None and cell.fill.fill_type is not None:
                    cell.fill = NO_FILL

    def ensure_sheet(self, sheet: str, visibility: Visibility = "visible") -> None:
        wb = self.wb
        if sheet not in wb.sheetnames:
            wb.create_sheet(sheet)
        wb[sheet].sheet_state = visibility

    def visibility(self, sheet: str) -> Visibility:
        if self._wb is None:
            visibility: Visibility = self._fast.visibility(sheet)
            return visibility
        if sheet not in self._wb.sheetnames:
            raise KeyError(sheet)
        state: Visibility = self._wb[sheet].sheet_state
        return state

    def hide_columns(self, sheet: str, columns: Sequence[int]) -> None:
        ws = self._ws(sheet)
        for index in columns:
            ws.column_dimensions[column_letter(index)].hidden = True

    def mark(self, sheet: str, marks: Mapping[str, tuple[Mark, str] | None]) -> None:
        self._materialise(sheet)
        ws = self._ws(sheet)
        for address, mark in marks.items():
            cell = ws[address]
            if isinstance(cell, MergedCell):
                continue  # read-only; the merged range's own problem marks its first cell
            old = cell.comment
            if mark is None:
                cell.fill = NO_FILL
                cell.comment = _their_comment(old)
                continue
            kind, note = mark
            cell.fill = ERROR_FILL if kind == "error" else WARNING_FILL
            text = marked_note(old.text if old is not None else None, old.author if old is not None else None, note) or note
            # A note someone wrote stays, with its author; rosterbook's lines go below the marker.
            comment = Comment(text[:30000], old.author if old is not None and text != note else AUTHOR)
            comment.width, comment.height = 360, 120
            cell.comment = comment

    def fit_table(self, sheet: str, last_row: int, last_column: int) -> None:
        ws = self._ws(sheet)
        if not ws.tables:
            return
        table = next(iter(ws.tables.values()))
        ref = f"A1:{column_letter(last_column)}{max(2, last_row)}"
        table.ref = ref
        table.autoFilter = AutoFilter(ref=ref)
        columns = []
        names: set[str] = set()
        for index in range(1, last_column + 1):
            head = ws.cell(row=1, column=index).value
            # Excel repairs (drops) a table whose column names are blank, duplicated or not text.
            name = str(head) if head not in (None, "") else f"Column{index}"
            while name.casefold() in names:
                name += "_"
            names.add(name.casefold())
            columns.append(TableColumn(id=index, name=name))
            if head in (None, ""):
                ws.cell(row=1, column=index).value = name
        table.tableColumns = columns

    def set_text_columns(self, sheet: str, columns: Sequence[int]) -> None:
        ws = self._ws(sheet)
        for index in set(columns):
            ws.column_dimensions[column_letter(index)].number_format = "@"
            # The cells holding a value; the column's own format covers the others.
            for (cell,) in ws.iter_rows(min_row=1, max_row=ws.max_row, min_col=index, max_col=index):
                if cell.value is not None:
                    cell.number_format = "@"

    def progress(self, message: str) -> None:
        self._progress.append(message)

    # --- the dress (``rosterbook.workbook.SheetDress``) -----------------------------------------

    def dress(self, spec: layout.SheetDress) -> None:
        """Apply a sheet's dress: Table, frozen panes, header style and notes, widths, drop-downs, highlights."""
        apply_dress(self, spec)

    def remove_sheet(self, sheet: str) -> None:
        """Delete a sheet (an empty ``Sheet1`` a new workbook came with)."""
        self.wb.remove(self._ws(sheet))

    def arrange(self) -> None:
        """Sheets in layout order, Users in front."""
        order_sheets(self)

    def save(self) -> None:
        """Write to a temporary file beside the target, then replace it: a crash never leaves half a workbook."""
        wb = self.wb
        if wb.sheetnames and all(ws.sheet_state != "visible" for ws in wb.worksheets):
            raise DataError(NO_VISIBLE_SHEET)
        for sheet, (first, _, _) in list(self._bulk.items()):
            if self._ws(sheet).max_row >= first:
                self._materialise(sheet)  # something else wrote there: openpyxl writes it all
        remove_leftovers(self.path)
        with atomic_write(self.path) as out:
            if not self._bulk:
                wb.save(out)
                return
            skeleton = io.BytesIO()
            wb.save(skeleton)
            _splice_rows(skeleton, out, wb, self._bulk)

    def _can_defer(self, ws: Worksheet, row: int, values: Sequence[Sequence[Cell]]) -> bool:
        """Only a big block of text into an empty part of a sheet of a workbook this process is creating."""
        if not self._new or ws.title in self._bulk or len(values) < _BULK_MIN:
            return False
        if ws.max_row >= row + 2:
            return False
        return all(v is None or v.__class__ is str for line in values for v in line)

    def _materialise(self, sheet: str) -> None:
        """Turn a sheet's deferred rows into openpyxl cells (something reads or clears the sheet)."""
        pending = self._bulk.pop(sheet, None)
        if pending is not None:
            first, column, rows = pending
            self.write_values(sheet, first, column, rows)

    def _ws(self, sheet: str) -> Worksheet:
        wb = self.wb
        if sheet not in wb.sheetnames:
            raise KeyError(sheet)
        ws: Worksheet = wb[sheet]
        return ws


_BULK_MIN = 2000


def _their_comment(comment: Comment | None) -> Comment | None:
    """The part of a cell comment someone wrote (``rosterbook.sheets.their_note``), as a comment; None when it was all rosterbook's."""
    if comment is None:
        return None
    theirs = their_note(comment.text, comment.author)
    if theirs is None:
        return None
    if theirs == comment.text:
        return comment
    kept = Comment(theirs, comment.author)
    kept.width, kept.height = comment.width, comment.height
    return kept


def _splice_rows(skeleton: BinaryIO, out: BinaryIO, wb: Workbook, bulk: Mapping[str, tuple[int, int, list[Sequence[Cell]]]]) -> None:
    """Copy the zip openpyxl wrote to ``skeleton`` into ``out``, inserting the deferred rows into their sheets.

    Each cell takes the style openpyxl gave the cell of the same column in the row above the
    block (the block's second line, written through openpyxl), so formats are the same as if
    openpyxl had written every row; strings are inline strings, as openpyxl writes them. Rows are
    streamed into the zip a few thousand at a time.
    """
    from rosterbook.fastread import _sheet_part

    skeleton.seek(0)
    with zipfile.ZipFile(skeleton) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as target:
        members: dict[str, str] = {}
        for name in bulk:
            member = _sheet_part(source, name)
            if member is None:
                raise RuntimeError(f"saved workbook has no part for sheet {name!r}")
            members[member] = name
        for info in source.infolist():
            data = source.read(info.filename)
            sheet: str | None = members.get(info.filename)
            if sheet is None:
                target.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
                continue
            spliced = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            spliced.compress_type = zipfile.ZIP_DEFLATED
            with target.open(spliced, "w", force_zip64=True) as stream:
                _write_rows(stream, data.decode("utf-8"), wb[sheet], bulk[sheet])


def _write_rows(stream: Any, xml: str, ws: Worksheet, block: tuple[int, int, list[Sequence[Cell]]]) -> None:
    from xml.sax.saxutils import escape

    first, column, rows = block
    template = _row_styles(xml, first - 1)
    columns = _column_styles(xml)
    last_col = column
    for line in rows:
        for offset in range(len(line) - 1, -1, -1):
            if line[offset] is not None and line[offset] != "":
                last_col = max(last_col, column + offset)
                break
    last_row = first + len(rows) - 1
    width = max(last_col, ws.max_column)
    xml = re.sub(r'<dimension ref="[^"]*"\s*/>', f'<dimension ref="A1:{column_letter(width)}{last_row}"/>', xml, count=1)
    if "</sheetData>" in xml:
        head, tail = xml.split("</sheetData>", 1)
    else:
        head, tail = xml.split("<sheetData/>", 1)
        head += "<sheetData>"
    stream.write(head.encode("utf-8"))
    letters = [column_letter(column + i) for i in range(last_col - column + 1)]
    styles = [template.get(letter) or columns.get(column + i) for i, letter in enumerate(letters)]
    out: list[str] = []
    for number, line in enumerate(rows, start=first):
        cells = []
        for offset, value in enumerate(line):
            if value is None or value == "":
                continue
            text = escape(_text(str(value)))
            space = ' xml:space="preserve"' if text != text.strip() or "\n" in text else ""
            style = styles[offset]
            attrs = f' s="{style}"' if style else ""
            cells.append(f'<c r="{letters[offset]}{number}"{attrs} t="inlineStr"><is><t{space}>{text}</t></is></c>')
        out.append(f'<row r="{number}">{"".join(cells)}</row>')
        if len(out) >= 2000:
            stream.write("".join(out).encode("utf-8"))
            out.clear()
    stream.write("".join(out).encode("utf-8"))
    stream.write(("</sheetData>" + tail).encode("utf-8"))


def _row_styles(xml: str, row: int) -> dict[str, str]:
    """Column letter -> style id of the cells of one row of a sheet's XML (as openpyxl wrote it)."""
    match = re.search(rf'<row r="{row}"[^>]*>(.*?)</row>', xml, re.S)
    if match is None:
        return {}
    return {m.group(1): m.group(2) for m in re.finditer(r'<c r="([A-Z]+)\d+"(?: s="(\d+)")?', match.group(1)) if m.group(2)}


def _column_styles(xml: str) -> dict[int, str]:
    """Column index -> the column's own style id (``<col min max style>``): a Text column's format."""
    out: dict[int, str] = {}
    for match in re.finditer(r"<col\b([^>]*)/?>", xml):
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if "style" in attrs and "min" in attrs and "max" in attrs:
            for index in range(int(attrs["min"]), int(attrs["max"]) + 1):
                out[index] = attrs["style"]
    return out


def _check_path(path: Path) -> None:
    if not path.exists():
        raise UsageError(f"{str(path)!r}: no such file.")
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        raise UsageError(f"{str(path)!r}: not an .xlsx workbook (rosterbook reads .xlsx files; save it from Excel as .xlsx).")


def _load(path: Path) -> Workbook:
    """The workbook as openpyxl loads it; a damaged file is a UsageError."""
    _check_path(path)
    try:
        # Our own handle: openpyxl leaves its zip file open when a damaged part makes it raise.
        with path.open("rb") as handle:
            return load_workbook(handle)
    except Exception as exc:  # a damaged file makes openpyxl's XML parsers raise anything (lxml, IndexError, ...)
        raise UsageError(f"{str(path)!r}: cannot be read as an .xlsx workbook ({type(exc).__name__}: {exc}).") from None


# --- the Users sheet's dress -------------------------------------------------------------------


def _rgb_fill(rgb: str) -> PatternFill:
    return PatternFill("solid", start_color=rgb, end_color=rgb)


def apply_dress(book: OpenpyxlBook, spec: layout.SheetDress) -> None:
    """Write a sheet's dress (``rosterbook.workbook.SheetDress``) into the openpyxl workbook."""
    wb = book.wb
    if spec.sheet not in wb.sheetnames:
        return
    ws = wb[spec.sheet]
    if spec.table is not None:
        if not ws.tables:
            table = Table(displayName=spec.table, ref=f"A1:{column_letter(spec.last_column)}2")
            table.tableStyleInfo = TableStyleInfo(name=spec.table_style, showRowStripes=True)
            ws.add_table(table)
        book.fit_table(spec.sheet, spec.last_row, spec.last_column)
    if spec.freeze is not None:
        ws.freeze_panes = spec.freeze
    if spec.printable:
        _print_setup(ws)
    if spec.print_area is not None:
        ws.print_area = spec.print_area
    for index in range(1, spec.header_columns + 1):
        cell = ws.cell(row=1, column=index)
        # Direct header formatting as well as the Table style: LibreOffice ignores Table styles.
        cell.font = Font(bold=True, color=spec.header_font) if spec.header_font else Font(bold=True)
        if spec.header_fill:
            cell.fill = _rgb_fill(spec.header_fill)
    for index, width in spec.widths.items():
        ws.column_dimensions[column_letter(index)].width = width
    if spec.table is not None:  # the Users sheet: its header notes are all rosterbook's
        for index in range(1, spec.last_column + 1):
            text = spec.notes.get(index)
            ws.cell(row=1, column=index).comment = Comment(text, AUTHOR, width=320, height=110) if text else None
    if spec.text_columns:
        book.set_text_columns(spec.sheet, spec.text_columns)
    if spec.hidden_columns:
        book.hide_columns(spec.sheet, spec.hidden_columns)
    if spec.drop_downs or spec.highlights or spec.table is not None:
        ws.conditional_formatting = type(ws.conditional_formatting)()
        ws.data_validations.dataValidation = []
    for drop in spec.drop_downs:
        letter = column_letter(drop.column)
        dv = DataValidation(type="list", formula1=drop.source, allow_blank=True, showDropDown=False)
        dv.showErrorMessage = drop.strict
        dv.errorStyle = "stop"
        dv.errorTitle = drop.title
        dv.error = drop.error
        dv.promptTitle = drop.title
        dv.prompt = drop.prompt
        dv.showInputMessage = drop.prompt is not None
        dv.add(f"{letter}2:{letter}{layout.MAX_ROW}")
        ws.add_data_validation(dv)
    for light in spec.highlights:
        ws.conditional_formatting.add(
            f"{column_letter(light.first_column)}2:{column_letter(light.last_column)}{layout.MAX_ROW}",
            FormulaRule(formula=[light.formula], fill=_rgb_fill(light.fill), font=Font(color=light.font)),
        )


def _print_setup(ws: Worksheet) -> None:
    """Landscape, one page wide, gridlines, header row repeated: prints (and renders to PDF) readably."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.gridLines = True
    ws.print_title_rows = "1:1"


def order_sheets(book: OpenpyxlBook) -> None:
    """Sheets in layout order (others after), Users active."""
    wb = book.wb
    wanted = [name for name in layout.SHEET_ORDER if name in wb.sheetnames]
    others = [name for name in wb.sheetnames if name not in layout.SHEET_ORDER]
    for position, name in enumerate([*wanted, *others]):
        wb.move_sheet(name, offset=position - wb.sheetnames.index(name))
    if layout.USERS in wb.sheetnames:
        wb.active = wb.sheetnames.index(layout.USERS)
        for ws in wb.worksheets:
            ws.sheet_view.tabSelected = ws.title == layout.USERS


# --- the template ------------------------------------------------------------------------------


def build_template(path: str | os.PathLike[str], dialect: Dialect) -> OpenpyxlBook:
    """An empty rosterbook workbook for ``dialect``: every sheet of the layout, nothing exported yet."""
    book = OpenpyxlBook.new(path)
    layout.ensure_layout(book)
    headers = [c.name for c in dialect.sheet_columns]
    layout.write_users(book, dialect, headers, [], [])
    lists = layout.dialect_lists(dialect)
    layout.write_lists(book, lists)
    settings = Settings.for_dialect(dialect)
    layout.write_settings(book, settings)
    layout.write_snapshot(book, [])
    layout.write_preview(book, {"counts": {}, "changes": []})
    for spec in layout.workbook_dress(dialect, layout.users_headers(dialect, headers), lists, 2, settings):
        book.dress(spec)
    order_sheets(book)
    book.wb.properties.creator = AUTHOR
    book.wb.properties.title = f"rosterbook users: {dialect.title}"
    # Fixed timestamps: a fresh generation is byte-comparable in its parts, not just structurally.
    import datetime as dt

    stamp = dt.datetime(2026, 1, 1)
    book.wb.properties.created = stamp
    book.wb.properties.modified = stamp
    return book


def template_structure(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What makes a template a template, as plain data: sheets and their visibility, values,
    the Users Table, frozen panes, column formats and widths, drop-downs, conditional formats,
    header comments. Two files with equal structures are the same template."""
    wb = load_workbook(path)
    out: dict[str, Any] = {"sheets": [(ws.title, ws.sheet_state) for ws in wb.worksheets]}
    for ws in wb.worksheets:
        dims = {
            key: (round(d.width or 0, 2), bool(d.hidden), d.number_format)
            for key, d in sorted(ws.column_dimensions.items())
            if d.width or d.hidden or d.number_format != "General"
        }
        out[ws.title] = {
            "values": [[c for c in row] for row in ws.iter_rows(values_only=True)],
            "freeze": ws.freeze_panes,
            "columns": dims,
            "tables": sorted((t.displayName, t.ref, tuple(c.name for c in t.tableColumns)) for t in ws.tables.values()),
            "validations": sorted((dv.type, str(dv.sqref), dv.formula1, bool(dv.showErrorMessage)) for dv in ws.data_validations.dataValidation),
            "conditional": sorted(
                (str(cf.sqref), tuple(tuple(rule.formula or ()) for rule in cf.rules)) for cf in ws.conditional_formatting
            ),
            "comments": sorted((c.coordinate, c.comment.text) for row in ws.iter_rows(max_row=1) for c in row if c.comment),
        }
    return out
