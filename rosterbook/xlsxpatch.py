"""PatchBook: the SheetBook over an existing .xlsx file that writes by patching it, not rebuilding it.

Values are read with python-calamine (``fastread``). Writes are recorded; ``save()`` then streams a
new zip next to the workbook and renames it over the workbook:

- parts that do not change are copied as their compressed bytes (``zipcopy``), byte for byte;
- a changed worksheet is streamed: rows that do not change are copied as they are, only the rows
  holding a changed cell are rebuilt (other cells of such a row keep their bytes too);
- cell formats are added to ``styles.xml`` (a mark's fill, the Text number format), notes go into
  the sheet's comments part and its VML drawing (created when missing), the Users Table is fitted,
  new sheets are added with their relationships and content types.

Every save also re-asserts the rosterbook layout's protections, whoever saved the file last
(LibreOffice turns very hidden sheets into hidden ones, shrinks drop-downs and drops the frozen
pane and the Table style): ``_snapshot``, ``_dialect``, ``_file_format`` and ``_history`` very hidden; on ``Users``, the Table
fitted to the data with its style, the header frozen, drop-downs and conditional formats over whole
columns, the Text columns formatted as Text and ``_row_id`` hidden.

No openpyxl here: a 50,000-user workbook patches in seconds where openpyxl's load and save take
most of a minute.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import operator
import os
import re
import zipfile
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lxml import etree

from rosterbook import ooxml
from rosterbook import workbook as layout
from rosterbook.core.codecs import Cell, to_text
from rosterbook.core.problems import column_letter
from rosterbook.errors import DataError, RosterbookError, UsageError
from rosterbook.fastread import FastBook, normalise
from rosterbook.ooxml import MAIN, REL, Area, Node, Root
from rosterbook.safesave import atomic_write, remove_leftovers
from rosterbook.sheets import NO_VISIBLE_SHEET, NOTE_AUTHOR, Mark, Visibility, marked_note, their_note
from rosterbook.zipcopy import Deflated, ParallelDeflater, ZipCopier, ZipTooLarge

DIALECT_SHEET = "_dialect"
"""Very hidden, like ``_snapshot``: ``rosterbook.session.DIALECT_SHEET`` (a test checks they agree)."""

ERROR_COLOR = "FFC7CE"
WARNING_COLOR = "FFEB9C"
TEXT_FORMAT = 49
"""The built-in ``@`` (Text) number format."""
_MAX_TEXT = 32767  # Excel's limit for one cell
_MAX_NOTE = 30000
_NEEDS_CLEANING = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_CHUNK = 1 << 20
_LEVEL = 6
_SHEET_LEVEL = 3
"""Deflate level of rewritten worksheets: twice as fast as 6 on a 50 MB sheet, 13% bigger."""
_M = f"{{{MAIN}}}"


def _clean(text: str) -> str:
    """Text a cell can hold: no control characters XML 1.0 cannot carry, no lone surrogates, at most 32,767 characters."""
    if _NEEDS_CLEANING.search(text):
        text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", text)
        text = re.sub(r"[\ud800-\udfff]", "\ufffd", text)
    return text[:_MAX_TEXT]


def _same(old: Cell, new: Cell) -> bool:
    return old is new or (old.__class__ is new.__class__ and old == new)


# --- styles.xml ----------------------------------------------------------------------------------------

_KEEP: Any = object()
_MINIMAL_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    f'<styleSheet xmlns="{MAIN}"><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'
)
_DATE_FORMATS = {dt.datetime: 22, dt.date: 14, dt.time: 21}
"""Built-in number formats for date cells (openpyxl and calamine read them back as dates)."""


class _Styles:
    """The workbook's cell formats: derive a format from an existing one with another fill or number format.

    New formats and fills are appended; everything already in ``styles.xml`` keeps its index and bytes.
    """

    def __init__(self, text: str | None) -> None:
        self.created = text is None
        self.text = _MINIMAL_STYLES if text is None else text
        self.root, _ = ooxml.root_of(self.text, "styleSheet")
        doc = ooxml.parse_xml(self.text.encode("utf-8"))
        xfs = doc.find(_M + "cellXfs")
        fills = doc.find(_M + "fills")
        if xfs is None or fills is None or not len(xfs) or not len(fills):
            raise ValueError("styles.xml has no cell formats or fills")
        self.xfs: list[etree._Element] = list(xfs)
        self.fill_count = len(fills)
        self._keys: dict[bytes, int] = {}
        for index, xf in enumerate(self.xfs):
            self._keys.setdefault(_c14n(xf), index)
        self._fills: dict[str, int] = {}
        for index, fill in enumerate(fills):
            pattern = fill.find(_M + "patternFill")
            color = pattern.find(_M + "fgColor") if pattern is not None else None
            rgb = (color.get("rgb") or "").upper() if color is not None else ""
            if pattern is not None and pattern.get("patternType") == "solid" and len(rgb) >= 6:
                self._fills.setdefault(rgb[-6:], index)
        self.new_xfs: list[str] = []
        self.new_fills: list[str] = []
        self._variants: dict[tuple[int, Any, int | None], int] = {}

    @property
    def changed(self) -> bool:
        return self.created or bool(self.new_xfs or self.new_fills)

    def number_format(self, index: int) -> int:
        xf = self.xfs[index] if 0 <= index < len(self.xfs) else self.xfs[0]
        return int(xf.get("numFmtId") or 0)

    def _fill(self, color: str) -> int:
        if color not in self._fills:
            p = self.root.prefix
            self.new_fills.append(
                f'<{p}fill><{p}patternFill patternType="solid"><{p}fgColor rgb="FF{color}"/><{p}bgColor rgb="FF{color}"/>'
                f"</{p}patternFill></{p}fill>"
            )
            self._fills[color] = self.fill_count + len(self.new_fills) - 1
        return self._fills[color]

    def variant(self, base: int, *, fill: Any = _KEEP, number_format: int | None = None) -> int:
        """The format ``base`` with its fill set (``"error"``, ``"warning"``, None for no fill) and/or its number format."""
        key = (base, fill, number_format)
        if key in self._variants:
            return self._variants[key]
        source = self.xfs[base] if 0 <= base < len(self.xfs) else self.xfs[0]
        xf = etree.fromstring(etree.tostring(source))
        if fill is not _KEEP:
            fill_id = 0 if fill is None else self._fill(ERROR_COLOR if fill == "error" else WARNING_COLOR)
            if int(xf.get("fillId") or 0) != fill_id:
                xf.set("fillId", str(fill_id))
                xf.set("applyFill", "1")
        if number_format is not None and int(xf.get("numFmtId") or 0) != number_format:
            xf.set("numFmtId", str(number_format))
            xf.set("applyNumberFormat", "1")
        found = self._keys.get(_c14n(xf))
        if found is None:
            found = len(self.xfs)
            self.xfs.append(xf)
            self._keys[_c14n(xf)] = found
            self.new_xfs.append(self.root.serialize(xf))
        self._variants[key] = found
        return found

    def fill_of(self, index: int) -> int:
        xf = self.xfs[index] if 0 <= index < len(self.xfs) else self.xfs[0]
        return int(xf.get("fillId") or 0)

    def render(self) -> bytes:
        text = self.text
        p = re.escape(self.root.prefix)
        for name, added, total in (("fills", self.new_fills, self.fill_count + len(self.new_fills)),
                                   ("cellXfs", self.new_xfs, len(self.xfs))):
            if not added:
                continue
            end = re.search(rf"</{p}{name}\s*>", text)
            start = re.search(rf"<{p}{name}\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>", text)
            if end is None or start is None:
                raise ValueError(f"styles.xml: no {name} element")
            text = text[: end.start()] + "".join(added) + text[end.start() :]
            text = text[: start.start()] + ooxml.set_attr(start.group(0), "count", str(total)) + text[start.end() :]
        return text.encode("utf-8")


def _c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n")


# --- notes: the comments part and its VML drawing ----------------------------------------------------------

_VML_NS = 'xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" xmlns:x="urn:schemas-microsoft-com:office:excel"'
_SHAPETYPE = (
    '<v:shapetype xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" id="_x0000_t202" '
    'coordsize="21600,21600" o:spt="202" path="m,l,21600r21600,l21600,xe"><v:stroke joinstyle="miter"/>'
    '<v:path gradientshapeok="t" o:connecttype="rect"/></v:shapetype>'
)
_SHAPE = re.compile(rb"<([\w.-]+):shape\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*?(?:/>|>.*?</\1:shape\s*>)", re.S)
_SHAPE_ID = re.compile(rb"_x0000_s(\d+)")
_ROW_COL = re.compile(rb"<(?:[\w.-]+:)?Row>\s*(\d+)\s*</(?:[\w.-]+:)?Row>.*?<(?:[\w.-]+:)?Column>\s*(\d+)\s*</", re.S)
_IDMAP = re.compile(rb"<(?:[\w.-]+:)?idmap\b[^>]*\bdata=\"([\d,\s]*)\"")


def _note_shape(shape_id: int, row: int, column: int) -> str:
    return (
        f'<v:shape {_VML_NS} id="_x0000_s{shape_id}" type="#_x0000_t202" '
        'style="position:absolute;margin-left:59.25pt;margin-top:1.5pt;width:360px;height:120px;z-index:1;visibility:hidden" '
        'fillcolor="#ffffe1" o:insetmode="auto"><v:fill color2="#ffffe1"/><v:shadow color="black" obscured="t"/>'
        '<v:path o:connecttype="none"/><v:textbox style="mso-direction-alt:auto"><div style="text-align:left"></div></v:textbox>'
        '<x:ClientData ObjectType="Note"><x:MoveWithCells/><x:SizeWithCells/><x:AutoFill>False</x:AutoFill>'
        f"<x:Row>{row - 1}</x:Row><x:Column>{column - 1}</x:Column></x:ClientData></v:shape>"
    )


def _new_vml(block: int) -> bytes:
    return (
        f'<xml {_VML_NS}><o:shapelayout v:ext="edit"><o:idmap v:ext="edit" data="{block}"/></o:shapelayout>'
        '<v:shapetype id="_x0000_t202" coordsize="21600,21600" o:spt="202" path="m,l,21600r21600,l21600,xe">'
        '<v:stroke joinstyle="miter"/><v:path gradientshapeok="t" o:connecttype="rect"/></v:shapetype></xml>'
    ).encode()


_NEW_COMMENTS = (
    f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<comments xmlns="{MAIN}"><authors/><commentList/></comments>'
).encode()


class _Notes:
    """One sheet's notes: its comments part, edited with lxml, and the Note shapes of its VML drawing."""

    def __init__(self, comments: bytes | None) -> None:
        self.doc = ooxml.parse_xml(comments if comments is not None else _NEW_COMMENTS)
        authors = self.doc.find(_M + "authors")
        if authors is None:
            authors = etree.Element(_M + "authors")
            self.doc.insert(0, authors)
        self.authors = authors
        listed = self.doc.find(_M + "commentList")
        if listed is None:
            listed = etree.SubElement(self.doc, _M + "commentList")
        self.list = listed
        self.by_cell: dict[tuple[int, int], etree._Element] = {}
        for comment in list(listed):
            try:
                self.by_cell[ooxml.parse_ref(comment.get("ref") or "")] = comment
            except ValueError:
                continue
        self.original = set(self.by_cell)
        self.changed = False

    def remove(self, cell: tuple[int, int]) -> None:
        comment = self.by_cell.pop(cell, None)
        if comment is not None:
            self.list.remove(comment)
            self.changed = True

    def remove_where(self, covered: Callable[[int, int], bool]) -> None:
        """Clear rosterbook's notes from the covered cells; the part of a note someone wrote stays (``sheets.their_note``)."""
        for cell in [c for c in self.by_cell if covered(*c)]:
            self.mark(cell, None)

    def note(self, cell: tuple[int, int]) -> tuple[str | None, str | None]:
        """A cell's note text (every run of it) and author; (None, None) without a note."""
        comment = self.by_cell.get(cell)
        if comment is None:
            return None, None
        body = comment.find(_M + "text")
        text = "".join(t.text or "" for t in body.iter(_M + "t")) if body is not None else ""
        try:
            author = self.authors[int(comment.get("authorId") or 0)].text
        except (IndexError, ValueError):
            author = None
        return text, author

    def mark(self, cell: tuple[int, int], mark: str | None) -> None:
        """rosterbook's mark on a cell (None: taken off), beside the note someone wrote there (``sheets.marked_note``)."""
        text, author = self.note(cell)
        wanted = marked_note(text, author, mark)
        if wanted == text:
            return
        if wanted is None:
            self.remove(cell)
        else:
            self.set(cell, wanted, author if text is not None and their_note(text, author) is not None else NOTE_AUTHOR)

    def _author(self, name: str | None = None) -> int:
        name = name or NOTE_AUTHOR
        for index, author in enumerate(self.authors):
            if (author.text or "") == name:
                return index
        etree.SubElement(self.authors, _M + "author").text = name
        return len(self.authors) - 1

    def set(self, cell: tuple[int, int], text: str, author: str | None = None) -> None:
        self.remove(cell)
        comment = etree.SubElement(self.list, _M + "comment")
        comment.set("ref", ooxml.area_text((cell[0], cell[1], cell[0], cell[1])))
        comment.set("authorId", str(self._author(author)))
        comment.set("shapeId", "0")
        body = etree.SubElement(comment, _M + "text")
        run = etree.SubElement(body, _M + "t")
        run.text = _clean(text)[:_MAX_NOTE]
        if run.text != run.text.strip() or "\n" in run.text:
            run.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
        self.by_cell[cell] = comment
        self.changed = True

    def render(self) -> bytes:
        ordered = sorted(self.by_cell.items())
        for _, comment in ordered:
            self.list.remove(comment)
        for _, comment in ordered:
            self.list.append(comment)
        out: bytes = etree.tostring(self.doc.getroottree(), xml_declaration=True, encoding="UTF-8", standalone=True)
        return out

    def render_vml(self, vml: bytes, block: int) -> bytes:
        """The VML drawing with a Note shape for each note and none for a note that is gone (other shapes kept)."""
        wanted = set(self.by_cell)
        shown: set[tuple[int, int]] = set()
        pieces: list[bytes] = []
        last = 0
        top = max((int(m.group(1)) for m in _SHAPE_ID.finditer(vml)), default=block * 1024)
        for shape in _SHAPE.finditer(vml):
            body = shape.group(0)
            place = _ROW_COL.search(body)
            if b'ObjectType="Note"' not in body or place is None:
                continue
            cell = (int(place.group(1)) + 1, int(place.group(2)) + 1)
            if cell in wanted and cell not in shown:
                shown.add(cell)
                continue
            pieces.append(vml[last : shape.start()])
            last = shape.end()
        pieces.append(vml[last:])
        text = b"".join(pieces)
        missing = sorted(wanted - shown)
        if not missing:
            return text
        added = []
        if b"_x0000_t202" not in text:
            added.append(_SHAPETYPE.encode())
        for cell in missing:
            top += 1
            added.append(_note_shape(top, *cell).encode())
        end = text.rfind(b"</xml>")
        if end == -1:
            raise ValueError("the VML drawing has no </xml> end")
        return text[:end] + b"".join(added) + text[end:]


# --- the package ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rel:
    id: str
    type: str
    target: str
    """The zip member it points to (resolved), or the raw target when external."""
    external: bool


class _Package:
    """What ``save`` needs to know of the zip: its members, the workbook's sheets and relationships."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with zipfile.ZipFile(path) as archive:
            self.infos = archive.infolist()
        self.lower = {info.filename.lower(): info.filename for info in self.infos}
        self._cache: dict[str, bytes] = {}
        root = [r for r in self.rels("") if r.type == ooxml.REL_OFFICE_DOCUMENT and not r.external]
        if not root:
            raise ValueError("no workbook part")
        self.workbook = self.member(root[0].target)
        self.workbook_text = self.read(self.workbook).decode("utf-8")
        doc = ooxml.parse_xml(self.workbook_text.encode("utf-8"))
        by_id = {r.id: r for r in self.rels(self.workbook)}
        self.sheets: list[tuple[str, str | None, Visibility, bool]] = []
        listed = doc.find(_M + "sheets")
        for node in listed if listed is not None else ():
            rel = by_id.get(node.get(f"{{{REL}}}id") or "")
            part = self.member(rel.target) if rel is not None and not rel.external else None
            worksheet = rel is not None and rel.type == ooxml.REL_WORKSHEET and part is not None and self.has(part)
            state = node.get("state") or "visible"
            visibility: Visibility = state if state in ("hidden", "veryHidden") else "visible"  # type: ignore[assignment]
            self.sheets.append((node.get("name") or "", part or "", visibility, worksheet))
        self.styles = next((self.member(r.target) for r in by_id.values() if r.type == ooxml.REL_STYLES and not r.external), None)
        self.calc_chain = next((self.member(r.target) for r in by_id.values() if r.type == ooxml.REL_CALC_CHAIN), None)

    def member(self, name: str) -> str:
        """The zip member's own spelling of a part name (OPC part names are case-insensitive)."""
        return self.lower.get(name.lower(), name)

    def has(self, name: str) -> bool:
        return name.lower() in self.lower

    def read(self, name: str) -> bytes:
        name = self.member(name)
        if name not in self._cache:
            with zipfile.ZipFile(self.path) as archive:
                self._cache[name] = archive.read(name)
        return self._cache[name]

    def rels(self, part: str) -> list[_Rel]:
        name = ooxml.rels_path(part) if part else "_rels/.rels"
        if not self.has(name):
            return []
        doc = ooxml.parse_xml(self.read(name))
        out = []
        for node in doc:
            if not isinstance(node.tag, str) or ooxml.local(node.tag) != "Relationship":
                continue
            external = node.get("TargetMode") == "External"
            target = node.get("Target") or ""
            out.append(_Rel(node.get("Id") or "", node.get("Type") or "", target if external else ooxml.resolve(part, target), external))
        return out


# --- one sheet's state ---------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Sheet:
    name: str
    part: str | None
    state: Visibility
    saved_state: Visibility
    grid: list[list[Cell]] | None = None
    sparse: bool = False
    """``grid`` holds only the cells written since the sheet was streamed (``PatchBook.iter_values``), not the sheet."""
    formulas: dict[tuple[int, int], str] = field(default_factory=dict)
    """Formula cells: their text as openpyxl gives it (``=...``); calamine gives their cached result."""
    shared: dict[str, tuple[tuple[int, int], str]] = field(default_factory=dict)
    """Shared formulas: group -> (master cell, master formula)."""
    shared_of: dict[tuple[int, int], str] = field(default_factory=dict)
    merged: list[Area] = field(default_factory=list)
    dirty: set[tuple[int, int]] = field(default_factory=set)
    marks: dict[tuple[int, int], tuple[Mark, str] | None] = field(default_factory=dict)
    regions: list[tuple[int, int | None]] = field(default_factory=list)
    hidden: set[int] = field(default_factory=set)
    text_columns: set[int] = field(default_factory=set)
    restyle: set[int] = field(default_factory=set)
    table_fit: tuple[int, int] | None = None
    unmerged: list[Area] = field(default_factory=list)
    protect: bool = False
    freeze: str = layout.FREEZE
    """The Users sheet's first scrolling cell when ``protect`` re-asserts the frozen header (``workbook.users_dress``)."""
    table_style: str = layout.TABLE_STYLE
    formula_gone: bool = False
    own_formula: dict[tuple[int, int], str] = field(default_factory=dict)
    """Cells of a shared formula whose master was overwritten: they get their own formula text."""
    unselect: bool = False
    worksheet: bool = True
    """False for a chart sheet or a dialog sheet: listed, never written."""
    followers: set[tuple[int, int]] | None = None
    tidy: bool = False
    """The grid is trimmed and rectangular (no write since)."""

    def needs_rewrite(self) -> bool:
        return self.worksheet and bool(
            self.part is None or self.dirty or self.marks or self.regions or self.hidden or self.text_columns or self.restyle
            or self.unmerged or self.protect or self.own_formula or self.unselect or self.table_fit is not None
        )

    def reset(self) -> None:
        """Forget what was written (it is in the file now)."""
        self.dirty, self.marks, self.regions, self.unmerged = set(), {}, [], []
        self.hidden, self.text_columns, self.restyle, self.own_formula = set(), set(), set(), {}
        self.table_fit, self.protect, self.formula_gone, self.unselect = None, False, False, False
        self.saved_state = self.state

    def merged_followers(self) -> set[tuple[int, int]]:
        if self.followers is None:
            self.followers = _merged_followers(self.merged)
        return self.followers


def _check_path(path: Path) -> None:
    if not path.exists():
        raise UsageError(f"{str(path)!r}: no such file.")
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        raise UsageError(f"{str(path)!r}: not an .xlsx workbook (rosterbook reads .xlsx files; save it from Excel as .xlsx).")


class PatchBook:
    """A SheetBook over an existing .xlsx file: reads with calamine, ``save()`` patches the file (see the module).

    Beyond the SheetBook protocol: ``path``, ``merged_ranges(sheet)``, and ``last_saved_parts``, the zip
    members the last ``save()`` wrote anew (every other member was copied as it was).

    ``values(sheet)`` returns a new list of rows, but the rows are the book's own (copying a 50,000-row
    sheet on every read costs seconds): read them, do not change them. Writes never change a row that
    was handed out; they put a new one in its place.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        _check_path(self.path)
        remove_leftovers(self.path)
        self.last_saved_parts: frozenset[str] = frozenset()
        self.strings: dict[str, str] = {}
        """One object per distinct text read (``FastBook.strings``), kept across saves."""
        self._messages: list[str] = []
        self._sheets: dict[str, _Sheet] = {}
        self._open({})

    def _open(self, previous: Mapping[str, _Sheet]) -> None:
        self._reader: FastBook | None = None
        try:
            if not previous:
                self._reader = FastBook(self.path, strings=self.strings)  # a file calamine cannot read is refused at once
            self._pkg = _Package(self.path)
        except UsageError:
            raise
        except Exception as exc:  # a damaged package: whatever the parser raised, it is unreadable
            raise UsageError(f"{str(self.path)!r}: cannot be read as an .xlsx workbook ({type(exc).__name__}: {exc}).") from None
        sheets: dict[str, _Sheet] = {}
        for name, part, state, worksheet in self._pkg.sheets:
            sheet = _Sheet(name, part, state, state, worksheet=worksheet)
            old = previous.get(name)
            if old is not None and old.grid is not None and not old.sparse:
                sheet.grid, sheet.formulas, sheet.merged = old.grid, old.formulas, old.merged
                sheet.shared, sheet.shared_of = old.shared, old.shared_of
            sheets[name] = sheet
        self._sheets = sheets

    # --- reading --------------------------------------------------------------------------------------

    @property
    def _fast(self) -> FastBook:
        """The calamine reader, opened when a sheet not read yet is needed (after a save, the new file)."""
        if self._reader is None:
            self._reader = FastBook(self.path, strings=self.strings)
        return self._reader

    def sheet_names(self) -> list[str]:
        return list(self._sheets)

    def _sheet(self, name: str) -> _Sheet:
        sheet = self._sheets.get(name)
        if sheet is None:
            raise KeyError(name)
        return sheet

    def _writable(self, name: str) -> _Sheet:
        sheet = self._sheet(name)
        if not sheet.worksheet:
            raise DataError(f"{name}: is a chart or dialog sheet, not a worksheet: rosterbook cannot write there.")
        return sheet

    def _grid(self, sheet: _Sheet) -> list[list[Cell]]:
        if sheet.grid is not None and not sheet.sparse:
            return sheet.grid
        if sheet.part is None or not sheet.worksheet or sheet.name not in self._fast.sheet_names():
            sheet.grid = []
            return sheet.grid
        grid = self._fast.values(sheet.name)
        sheet.merged = list(self._fast.merged_ranges(sheet.name))
        if self._fast.has_formulas(sheet.name):
            try:
                self._read_formulas(sheet, grid)
            except (ValueError, etree.LxmlError, zipfile.BadZipFile, KeyError, OSError) as exc:  # a damaged sheet
                raise UsageError(f"{str(self.path)!r}: cannot be read as an .xlsx workbook (sheet {sheet.name!r}) "
                                 f"({type(exc).__name__}: {exc}).") from None
        if sheet.sparse:  # the cells written since the sheet was streamed go over what the file holds
            written = sheet.grid or []
            for r, c in sorted(sheet.dirty):
                _put(grid, r, c, written[r - 1][c - 1] if r <= len(written) and c <= len(written[r - 1]) else None)
            sheet.sparse, sheet.tidy = False, False
        sheet.grid = grid
        return grid

    def _sparse(self, sheet: _Sheet) -> bool:
        """Whether writes may go to a sheet streamed, not read whole: its merged cells are known and it holds no
        formula (whose cells a write must take apart). The grid then collects only what is written."""
        if sheet.grid is not None:
            return sheet.sparse
        merged = self._fast.merged_known(sheet.name)
        if merged is None or sheet.part is None or not sheet.worksheet or self._fast.has_formulas(sheet.name):
            return False
        sheet.grid, sheet.sparse, sheet.merged, sheet.followers = [], True, list(merged), None
        return True

    def _read_formulas(self, sheet: _Sheet, grid: list[list[Cell]]) -> None:
        """Formula cells as openpyxl gives them: ``=`` and the formula's text (shared ones translated to their cell)."""
        from openpyxl.formula.translate import Translator

        assert sheet.part is not None
        found: dict[tuple[int, int], str] = {}
        pending: list[tuple[tuple[int, int], str]] = []
        with zipfile.ZipFile(self.path) as archive, archive.open(sheet.part) as stream:
            for _, cell in etree.iterparse(stream, events=("end",), tag=_M + "c", huge_tree=True, resolve_entities=False):
                formula = cell.find(_M + "f")
                ref = cell.get("r")
                if formula is not None and ref:
                    where = ooxml.parse_ref(ref)
                    kind = formula.get("t")
                    text = formula.text or ""
                    if kind == "shared" and formula.get("si") is not None:
                        group = formula.get("si") or ""
                        sheet.shared_of[where] = group
                        if formula.get("ref") is not None and text:
                            sheet.shared[group] = (where, "=" + text)
                            found[where] = "=" + text
                        else:
                            pending.append((where, group))
                    elif kind != "dataTable":
                        found[where] = "=" + text
                cell.clear()
        for where, group in pending:
            master = sheet.shared.get(group)
            if master is not None:
                origin = ooxml.area_text((*master[0], *master[0]))
                found[where] = Translator(master[1], origin=origin).translate_formula(ooxml.area_text((*where, *where)))
        for (row, column), text in found.items():
            _put(grid, row, column, text)
        sheet.formulas = found

    def prefetch(self, *sheets: str, formulas: Sequence[str] = ()) -> None:
        """Start parsing ``sheets`` on another core while other work goes on (``FastBook.prefetch``); that core then
        finds whether ``formulas`` hold formulas, which reading a sheet whole and writing a streamed sheet ask (a sheet
        not named is scanned when asked)."""
        parsed = [sheet for sheet in sheets if (target := self._sheets.get(sheet)) is not None and target.grid is None
                  and target.part is not None and target.worksheet]
        if parsed:
            self._fast.prefetch(*parsed, formulas=formulas)

    def iter_values(self, sheet: str) -> Iterator[list[Cell]]:
        """The sheet's rows one at a time, as ``FastBook.iter_values`` streams them, when it was not read whole: a sheet
        read once (the snapshot's 50,000 long entries) is then never held, and a write into it keeps only what it
        writes (``_sparse``). A formula cell gives its cached value here; ``values`` gives its text."""
        target = self._sheet(sheet)
        if target.grid is not None or target.part is None or not target.worksheet or sheet not in self._fast.sheet_names():
            yield from self.values(sheet)
            return
        yield from self._fast.iter_values(sheet)

    def values(self, sheet: str) -> list[list[Cell]]:
        target = self._sheet(sheet)
        grid = self._grid(target)
        if not target.tidy:
            # Trailing blank rows and columns dropped, rows padded to one width: in place, once per change.
            while grid and all(v is None for v in grid[-1]):
                grid.pop()
            width = 0
            for row in grid:
                for index in range(len(row) - 1, width - 1, -1):
                    if row[index] is not None:
                        width = index + 1
                        break
            for index, row in enumerate(grid):
                if len(row) != width:
                    grid[index] = row[:width] + [None] * (width - len(row))
            target.tidy = True
        # The caller's own list of rows; the rows themselves are shared (writes replace a row, never change it).
        return grid[:]

    def visibility(self, sheet: str) -> Visibility:
        return self._sheet(sheet).state

    def merged_ranges(self, sheet: str) -> list[tuple[int, int, int, int]]:
        """Merged cell ranges as (first row, first column, last row, last column), 1-based."""
        target = self._sheet(sheet)
        self._grid(target)
        return list(target.merged)

    # --- writing ------------------------------------------------------------------------------------

    def write_values(self, sheet: str, row: int, column: int, values: Sequence[Sequence[Cell]]) -> None:
        target = self._writable(sheet)
        sparse = self._sparse(target)
        grid = target.grid if sparse and target.grid is not None else self._grid(target)
        covered = target.merged_followers() if target.merged else None
        for r, line in enumerate(values, start=row):
            for c, value in enumerate(line, start=column):
                if value.__class__ is str:
                    value = _clean(str(value)) or None
                elif isinstance(value, float) and not math.isfinite(value):
                    value = str(value)
                key = (r, c)
                old = grid[r - 1][c - 1] if r <= len(grid) and c <= len(grid[r - 1]) else None
                formula = key in target.formulas
                if not formula and not sparse and _same(old, normalise(value)):
                    continue
                if value is not None and covered is not None and key in covered:
                    raise DataError(f"{sheet}!{ooxml.area_text((r, c, r, c))} is inside merged cells, so nothing can be written there: "
                                    "unmerge them and run again.")
                if formula:
                    self._drop_formula(target, key)
                _put(grid, r, c, normalise(value))
                target.dirty.add(key)
                target.tidy = False

    def _drop_formula(self, sheet: _Sheet, key: tuple[int, int]) -> None:
        sheet.formulas.pop(key, None)
        sheet.formula_gone = True
        sheet.own_formula.pop(key, None)
        group = sheet.shared_of.pop(key, None)
        if group is None:
            return
        master = sheet.shared.get(group)
        if master is not None and master[0] == key:
            # The group's other cells lose the formula they share: each gets its own text.
            del sheet.shared[group]
            for cell, other in list(sheet.shared_of.items()):
                if other == group and cell in sheet.formulas:
                    sheet.own_formula[cell] = sheet.formulas[cell]
                    del sheet.shared_of[cell]

    def clear(self, sheet: str, first_row: int, last_column: int | None = None) -> None:
        target = self._writable(sheet)
        grid = self._grid(target)
        for r in range(first_row, len(grid) + 1):
            line = grid[r - 1]
            width = len(line) if last_column is None else min(last_column, len(line))
            gone = [c for c in range(1, width + 1) if line[c - 1] is not None or (r, c) in target.formulas]
            if not gone:
                continue
            line = list(line)  # a new row: values() handed out the old one
            for c in gone:
                if (r, c) in target.formulas:
                    self._drop_formula(target, (r, c))
                line[c - 1] = None
                target.dirty.add((r, c))
            grid[r - 1] = line
            target.tidy = False
        target.regions.append((first_row, last_column))
        for key in [k for k in target.marks if k[0] >= first_row and (last_column is None or k[1] <= last_column)]:
            del target.marks[key]
        kept = []
        for area in target.merged:
            if area[2] >= first_row and (last_column is None or area[1] <= last_column):
                target.unmerged.append(area)  # its other cells could not be written: the area is being cleared anyway
            else:
                kept.append(area)
        target.merged, target.followers = kept, None

    def ensure_sheet(self, sheet: str, visibility: Visibility = "visible") -> None:
        target = self._sheets.get(sheet)
        if target is None:
            target = self._sheets[sheet] = _Sheet(sheet, None, visibility, visibility, grid=[])
        target.state = visibility

    def hide_columns(self, sheet: str, columns: Sequence[int]) -> None:
        self._sheet(sheet).hidden.update(columns)

    def mark(self, sheet: str, marks: Mapping[str, tuple[Mark, str] | None]) -> None:
        target = self._writable(sheet)
        self._grid(target)
        covered = target.merged_followers() if target.merged else set()
        for address, mark in marks.items():
            key = ooxml.parse_ref(address)
            if key in covered:
                continue  # the merged range's own problem marks its first cell
            target.marks[key] = mark

    def fit_table(self, sheet: str, last_row: int, last_column: int) -> None:
        self._sheet(sheet).table_fit = (max(2, last_row), last_column)

    def set_text_columns(self, sheet: str, columns: Sequence[int]) -> None:
        target = self._sheet(sheet)
        target.text_columns.update(columns)
        target.restyle.update(columns)

    def progress(self, message: str) -> None:
        self._messages.append(message)

    # --- the layout's protections -------------------------------------------------------------------------

    def _protect(self) -> None:
        for name in (layout.SNAPSHOT, layout.SNAPSHOT_UPDATES, DIALECT_SHEET, layout.FILE_FORMAT, layout.HISTORY):
            sheet = self._sheets.get(name)
            if sheet is not None and sheet.state != "veryHidden":
                if sheet.state == "visible":
                    sheet.unselect = True
                sheet.state = "veryHidden"
        users = self._sheets.get(layout.USERS)
        if users is None:
            return
        grid = self._grid(users)
        headers = [to_text(v) for v in grid[0]] if grid else []
        if layout.ROW_ID not in headers:
            return  # not the rosterbook layout
        users.protect = True
        width = max(i + 1 for i, h in enumerate(headers) if h is not None)
        last = len(grid)
        while last > 1 and all(v is None for v in grid[last - 1]):
            last -= 1
        dialect = self._layout_dialect()
        if dialect is None:  # the Settings or the dialect cannot be read: at least the layout's own columns
            row_id = headers.index(layout.ROW_ID) + 1
            if users.table_fit is None:
                users.table_fit = (max(2, last), width)
            users.hidden.add(row_id)
            users.text_columns.add(row_id)
            return
        # The same description of the Users sheet as the export applies (workbook.users_dress): one dress.
        dress = layout.users_dress(dialect, [h or "" for h in headers[:width]], {}, last)
        if users.table_fit is None:
            users.table_fit = (dress.last_row, dress.last_column)
        users.hidden.update(dress.hidden_columns)
        users.text_columns.update(dress.text_columns)
        users.freeze = dress.freeze or layout.FREEZE
        users.table_style = dress.table_style

    def _layout_dialect(self) -> Any:
        """The workbook's dialect as the session finds it (None when it cannot be read)."""
        from rosterbook.session import workbook_dialect

        try:
            return workbook_dialect(self, layout.read_settings(self))
        except (RosterbookError, ValueError):
            return None

    # --- saving ---------------------------------------------------------------------------------------

    def save(self) -> None:
        """Write the changes into the file (atomically: a temporary file beside it, then a rename)."""
        if self._sheets and all(s.state != "visible" for s in self._sheets.values()):
            raise DataError(NO_VISIBLE_SHEET)
        self._protect()
        try:
            outputs = _SaveJob(self).run()
        except BaseException as exc:
            for sheet in self._sheets.values():
                if sheet.worksheet and sheet.part is not None and not self._pkg.has(sheet.part):
                    sheet.part = None  # still a new sheet
            if isinstance(exc, (ValueError, etree.LxmlError, zipfile.BadZipFile, KeyError)) and not isinstance(exc, RosterbookError):
                raise UsageError(f"{str(self.path)!r}: cannot be written as an .xlsx workbook ({type(exc).__name__}: {exc}).") from None
            raise
        self.last_saved_parts = frozenset(outputs)
        if not outputs:
            for sheet in self._sheets.values():
                sheet.reset()
            return
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        try:
            with atomic_write(self.path) as out, self.path.open("rb") as source:
                copier = ZipCopier(out)
                for info in self._pkg.infos:
                    if info.filename not in outputs:
                        copier.copy(source, info)
                        continue
                    content = outputs.pop(info.filename)
                    if content is not None:
                        _put_member(copier, info.filename, content)
                for name, content in outputs.items():
                    if content is not None:
                        _put_member(copier, name, content)
                copier.close()
        except BaseException as exc:
            # Nothing was replaced: the changes stay recorded, a later save can try again.
            for sheet in self._sheets.values():
                if sheet.worksheet and sheet.part is not None and not self._pkg.has(sheet.part):
                    sheet.part = None
            if isinstance(exc, ZipTooLarge):
                raise UsageError(f"{str(self.path)!r}: the workbook would be over 4 GB, too large for rosterbook to write.") from None
            raise
        self._open(self._sheets)


def _region(first_row: int, last_column: int | None) -> Callable[[int, int], bool]:
    return lambda r, c: r >= first_row and (last_column is None or c <= last_column)


def _put_member(copier: ZipCopier, name: str, content: bytes | Deflated) -> None:
    if isinstance(content, Deflated):
        copier.put(name, content)
    else:
        copier.write(name, content, _LEVEL)


def _put(grid: list[list[Cell]], row: int, column: int, value: Cell) -> None:
    """Set one cell of the cached grid. The row is replaced, never changed in place: ``values()`` hands out the rows."""
    while len(grid) < row:
        if value is None:
            return
        grid.append([])
    line = grid[row - 1]
    if len(line) < column:
        if value is None:
            return
        line = [*line, *([None] * (column - len(line)))]
    else:
        line = list(line)
    line[column - 1] = value
    grid[row - 1] = line


def _merged_followers(merged: Iterable[Area]) -> set[tuple[int, int]]:
    """The cells of merged ranges other than each range's first cell (read-only in Excel)."""
    out: set[tuple[int, int]] = set()
    for r1, c1, r2, c2 in merged:
        if (r2 - r1 + 1) * (c2 - c1 + 1) > 1_000_000:
            continue  # absurd merges are refused by the readers before anything is written
        out.update((r, c) for r in range(r1, r2 + 1) for c in range(c1, c2 + 1) if (r, c) != (r1, c1))
    return out


# --- the save --------------------------------------------------------------------------------------------------


_NEW_SHEET = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    f'<worksheet xmlns="{MAIN}" xmlns:r="{REL}"><sheetViews><sheetView workbookViewId="0"/></sheetViews>'
    '<sheetFormatPr defaultRowHeight="15"/><sheetData/>'
    '<pageMargins left="0.75" right="0.75" top="1" bottom="1" header="0.5" footer="0.5"/></worksheet>'
).encode()


class _SaveJob:
    """Works out every changed part of one save: name -> new content (None: the part is removed)."""

    def __init__(self, book: PatchBook) -> None:
        self.book = book
        self.pkg = book._pkg
        self.out: dict[str, bytes | Deflated | None] = {}
        self._styles: _Styles | None = None
        self.content_types: list[tuple[str, str]] = []
        """Overrides to add: (part name, content type)."""
        self.vml_extension = False
        self.rels_added: dict[str, list[tuple[str, str, str]]] = {}
        """Relationships to add: source part -> [(id, type, target relative to the source)]."""
        self.new_names: set[str] = set()

    @property
    def styles(self) -> _Styles:
        if self._styles is None:
            text = self.pkg.read(self.pkg.styles).decode("utf-8") if self.pkg.styles and self.pkg.has(self.pkg.styles) else None
            self._styles = _Styles(text)
        return self._styles

    def fresh_name(self, pattern: str) -> str:
        """A part name not in the package: ``pattern`` holds ``{}`` for a number."""
        number = 1
        while True:
            name = pattern.format(number)
            if not self.pkg.has(name) and name.lower() not in self.new_names:
                self.new_names.add(name.lower())
                return name
            number += 1

    def fresh_rel_id(self, source: str) -> str:
        taken = {r.id for r in self.pkg.rels(source)} | {r[0] for r in self.rels_added.get(source, [])}
        number = len(taken) + 1
        while f"rId{number}" in taken:
            number += 1
        return f"rId{number}"

    def add_rel(self, source: str, rel_type: str, target: str) -> str:
        rid = self.fresh_rel_id(source)
        self.rels_added.setdefault(source, []).append((rid, rel_type, ooxml.relative(source, target)))
        return rid

    def run(self) -> dict[str, bytes | Deflated | None]:
        book = self.book
        new_sheets: list[tuple[_Sheet, str]] = []
        for sheet in book._sheets.values():
            if sheet.part is None:
                sheet.part = self.fresh_name("xl/worksheets/sheet{}.xml")
                rid = self.add_rel(self.pkg.workbook, ooxml.REL_WORKSHEET, sheet.part)
                self.content_types.append((sheet.part, ooxml.CT_WORKSHEET))
                new_sheets.append((sheet, rid))
                sheet.grid = sheet.grid if sheet.grid is not None else []
                self._sheet(sheet, new=True)
            elif sheet.needs_rewrite():
                self._sheet(sheet, new=False)
        formula_gone = any(s.formula_gone for s in book._sheets.values())
        self._workbook(new_sheets, formula_gone)
        if self._styles is not None and self._styles.changed:
            name = self.pkg.styles or "xl/styles.xml"
            self.out[name] = self._styles.render()
            if self._styles.created:
                self.add_rel(self.pkg.workbook, ooxml.REL_STYLES, name)
                self.content_types.append((name, ooxml.CT_STYLES))
        self._rels()
        self._content_types()
        return self.out

    # --- one worksheet ---------------------------------------------------------------------------------

    def _sheet(self, sheet: _Sheet, *, new: bool) -> None:
        assert sheet.part is not None
        part = sheet.part
        rels = [] if new else self.pkg.rels(part)
        # A sheet written while streamed: the writer needs only the cells written (every other one is copied).
        grid = sheet.grid if sheet.sparse and sheet.grid is not None else self.book._grid(sheet)
        table = next((r for r in rels if r.type == ooxml.REL_TABLE and not r.external and self.pkg.has(r.target)), None)
        if table is not None and sheet.table_fit is not None:
            self._table(sheet, self.pkg.member(table.target), grid)
        comments = next((r for r in rels if r.type == ooxml.REL_COMMENTS and not r.external and self.pkg.has(r.target)), None)
        notes: _Notes | None = None
        if comments is not None and (sheet.marks or sheet.regions):
            notes = _Notes(self.pkg.read(comments.target))
        elif any(m is not None for m in sheet.marks.values()):
            notes = _Notes(None)
        if notes is not None:
            for first_row, last_column in sheet.regions:
                notes.remove_where(_region(first_row, last_column))
            for cell, mark in sheet.marks.items():
                notes.mark(cell, mark[1] if mark is not None else None)
        writer = _SheetWriter(self, sheet, grid, notes is not None and bool(notes.by_cell), rels)

        def source() -> IO[bytes]:
            if new:
                return io.BytesIO(_NEW_SHEET)
            with zipfile.ZipFile(self.pkg.path) as archive:
                # The member's stream keeps the archive's file open by itself.
                return archive.open(part)

        result = writer.run(source)
        if result is not None:
            self.out[part] = result
        if notes is not None and (notes.changed or writer.new_vml is not None):
            self._notes(sheet, notes, comments, writer)

    def _notes(self, sheet: _Sheet, notes: _Notes, comments: _Rel | None, writer: _SheetWriter) -> None:
        assert sheet.part is not None
        if comments is not None:
            comments_part = self.pkg.member(comments.target)
        else:
            comments_part = self.fresh_name("xl/comments/comment{}.xml")
            self.add_rel(sheet.part, ooxml.REL_COMMENTS, comments_part)
            self.content_types.append((comments_part, ooxml.CT_COMMENTS))
        self.out[comments_part] = notes.render()
        if writer.new_vml is not None:
            vml_part = writer.new_vml
            self.vml_extension = True
            original = _new_vml(self._vml_block())
        elif writer.vml_part is not None:
            vml_part = writer.vml_part
            original = self.pkg.read(vml_part)
        else:
            raise ValueError(f"{sheet.name}: the sheet's notes have no VML drawing")
        block = 1
        found = _IDMAP.search(original)
        if found is not None:
            digits = re.findall(rb"\d+", found.group(1))
            block = int(digits[0]) if digits else 1
        self.out[vml_part] = notes.render_vml(original, block)

    def _vml_block(self) -> int:
        """An idmap block (1,024 shape ids) no other VML drawing of the workbook uses."""
        used = {0}
        for info in self.pkg.infos:
            if info.filename.lower().endswith(".vml"):
                for match in _IDMAP.finditer(self.pkg.read(info.filename)):
                    used.update(int(d) for d in re.findall(rb"\d+", match.group(1)))
        return max(used) + 1

    def _table(self, sheet: _Sheet, part: str, grid: list[list[Cell]]) -> None:
        assert sheet.table_fit is not None
        last_row, width = sheet.table_fit
        data = self.pkg.read(part)
        doc = ooxml.parse_xml(data)
        ref = f"A1:{column_letter(width)}{last_row}"
        before = _c14n(doc)
        doc.set("ref", ref)
        names: list[str] = []
        seen: set[str] = set()
        header = grid[0] if grid else []
        for index in range(1, width + 1):
            head = header[index - 1] if index <= len(header) else None
            text = to_text(head)
            # Excel repairs (drops) a table whose column names are blank, duplicated or not text.
            name = text if text is not None else f"Column{index}"
            if text is None:
                self.book.write_values(sheet.name, 1, index, [[name]])
            while name.casefold() in seen:
                name += "_"
            seen.add(name.casefold())
            names.append(name)
        autofilter = doc.find(_M + "autoFilter")
        if autofilter is not None:
            autofilter.set("ref", ref)
            for column in list(autofilter.findall(_M + "filterColumn")):
                if int(column.get("colId") or 0) >= width:
                    autofilter.remove(column)
        columns = doc.find(_M + "tableColumns")
        if columns is None:
            columns = etree.Element(_M + "tableColumns")
            place = [i for i, child in enumerate(doc) if isinstance(child.tag, str) and ooxml.local(child.tag) in ("autoFilter", "sortState")]
            doc.insert(place[-1] + 1 if place else 0, columns)
        existing = list(columns)
        if [c.get("name") for c in existing] != names:
            by_name: dict[str, list[etree._Element]] = {}
            for column in existing:
                by_name.setdefault(column.get("name") or "", []).append(column)
            top = max((int(c.get("id") or 0) for c in existing), default=0)
            for column in existing:
                columns.remove(column)
            for name in names:
                reuse = by_name.get(name)
                if reuse:
                    columns.append(reuse.pop(0))
                    continue
                top += 1
                column = etree.SubElement(columns, _M + "tableColumn")
                column.set("id", str(top))
                column.set("name", name)
        columns.set("count", str(len(names)))
        if doc.find(_M + "tableStyleInfo") is None:
            style = etree.Element(_M + "tableStyleInfo")
            for key, value in (("name", sheet.table_style), ("showFirstColumn", "0"), ("showLastColumn", "0"),
                               ("showRowStripes", "1"), ("showColumnStripes", "0")):
                style.set(key, value)
            columns.addnext(style)
        if _c14n(doc) != before:
            self.out[part] = etree.tostring(doc.getroottree(), xml_declaration=True, encoding="UTF-8", standalone=True)

    # --- workbook-level parts ------------------------------------------------------------------------------

    def _workbook(self, new_sheets: list[tuple[_Sheet, str]], formula_gone: bool) -> None:
        text = self.pkg.workbook_text
        root, _ = ooxml.root_of(text, "workbook")
        p = root.prefix
        changed = False
        order = list(self.book._sheets.values())

        def edit(match: re.Match[str]) -> str:
            nonlocal changed
            tag = match.group(0)
            name = _unescape(ooxml.get_attr(tag, "name") or "")
            sheet = self.book._sheets.get(name)
            if sheet is None or sheet.part is None or sheet.state == sheet.saved_state:
                return tag
            changed = True
            return ooxml.set_attr(tag, "state", None if sheet.state == "visible" else sheet.state)

        text = re.sub(rf"<{re.escape(p)}sheet\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>", edit, text)
        if new_sheets:
            changed = True
            ids = [int(m) for m in re.findall(r"\ssheetId=\"(\d+)\"", text)]
            top = max(ids, default=0)
            declared = re.search(rf"\sxmlns:([\w.-]+)=\"{re.escape(REL)}\"", root.start)
            r = declared.group(1) if declared else "r"
            extra = "" if declared else f' xmlns:r="{REL}"'
            added = []
            for sheet, rid in new_sheets:
                top += 1
                state = "" if sheet.state == "visible" else f' state="{sheet.state}"'
                added.append(f'<{p}sheet{extra} name="{ooxml.escape_attr(sheet.name)}" sheetId="{top}"{state} {r}:id="{rid}"/>')
            end = re.search(rf"</{re.escape(p)}sheets\s*>", text)
            if end is None:
                raise ValueError("workbook.xml has no sheets element")
            text = text[: end.start()] + "".join(added) + text[end.start() :]
        # The active tab must not be a sheet that is now hidden.
        view = re.search(rf"<{re.escape(p)}workbookView\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>", text)
        if view is not None:
            tag = view.group(0)
            new_tag = tag
            visible = [i for i, s in enumerate(order) if s.state == "visible"]
            for attribute in ("activeTab", "firstSheet"):
                value = ooxml.get_attr(tag, attribute)
                index = int(value) if value and value.isdigit() else 0
                if visible and index < len(order) and order[index].state != "visible":
                    users = next((i for i in visible if order[i].name == layout.USERS), visible[0])
                    new_tag = ooxml.set_attr(new_tag, attribute, str(users))
            if new_tag != tag:
                changed = True
                text = text[: view.start()] + new_tag + text[view.end() :]
        if changed:
            self.out[self.pkg.workbook] = text.encode("utf-8")
        if formula_gone and self.pkg.calc_chain is not None and self.pkg.has(self.pkg.calc_chain):
            # Excel repairs a file whose calculation chain names a cell that no longer holds a formula; it rebuilds the chain.
            self.out[self.pkg.member(self.pkg.calc_chain)] = None

    def _rels(self) -> None:
        chain = self.pkg.member(self.pkg.calc_chain) if self.pkg.calc_chain else None
        dropped = chain if chain is not None and chain in self.out and self.out[chain] is None else None
        sources = set(self.rels_added)
        if dropped is not None:
            sources.add(self.pkg.workbook)
        for source in sources:
            name = ooxml.rels_path(source)

            def added(prefix: str, source: str = source) -> str:
                return "".join(
                    f'<{prefix}Relationship Id="{rid}" Type="{rel_type}" Target="{ooxml.escape_attr(target)}"/>'
                    for rid, rel_type, target in self.rels_added.get(source, [])
                )

            if self.pkg.has(name):
                text = self.pkg.read(name).decode("utf-8")
                if dropped is not None and source == self.pkg.workbook:
                    text = re.sub(rf"<(?:[\w.-]+:)?Relationship\b[^>]*Type=\"{re.escape(ooxml.REL_CALC_CHAIN)}\"[^>]*/>", "", text)
                root, _ = ooxml.root_of(text, "Relationships")
                end = re.search(rf"</{re.escape(root.prefix)}Relationships\s*>", text)
                if end is None:  # <Relationships/>
                    text = re.sub(r"/>\s*$", f">{added(root.prefix)}</{root.prefix}Relationships>", text.rstrip())
                else:
                    text = text[: end.start()] + added(root.prefix) + text[end.start() :]
                self.out[self.pkg.member(name)] = text.encode("utf-8")
            else:
                self.out[name] = (
                    f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="{ooxml.PKG_REL}">{added("")}</Relationships>'
                ).encode()

    def _content_types(self) -> None:
        name = self.pkg.member("[Content_Types].xml")
        text = self.pkg.read(name).decode("utf-8")
        original = text
        dropped = [n for n, content in self.out.items() if content is None]
        for part in dropped:
            text = re.sub(rf"<(?:[\w.-]+:)?Override\b[^>]*PartName=\"/{re.escape(part)}\"[^>]*/>", "", text, flags=re.I)
        doc = ooxml.parse_xml(text.encode("utf-8"))
        defaults = {(n.get("Extension") or "").lower() for n in doc if isinstance(n.tag, str) and ooxml.local(n.tag) == "Default"}
        overrides = {(n.get("PartName") or "").lower() for n in doc if isinstance(n.tag, str) and ooxml.local(n.tag) == "Override"}
        root, _ = ooxml.root_of(text, "Types")
        p = root.prefix
        added = []
        for part, content_type in self.content_types:
            if "/" + part.lower() not in overrides:
                added.append(f'<{p}Override PartName="/{ooxml.escape_attr(part)}" ContentType="{content_type}"/>')
        if self.vml_extension and "vml" not in defaults:
            added.insert(0, f'<{p}Default Extension="vml" ContentType="{ooxml.CT_VML}"/>')
        if self.rels_added and "rels" not in defaults:
            added.insert(0, f'<{p}Default Extension="rels" ContentType="{ooxml.CT_RELS}"/>')
        if added:
            end = re.search(rf"</{re.escape(root.prefix)}Types\s*>", text)
            if end is None:
                raise ValueError("[Content_Types].xml has no end")
            text = text[: end.start()] + "".join(added) + text[end.start() :]
        if text != original:
            self.out[name] = text.encode("utf-8")


def _unescape(text: str) -> str:
    def ref(match: re.Match[str]) -> str:
        body = match.group(1)
        if body.startswith("#x"):
            return chr(int(body[2:], 16))
        if body.startswith("#"):
            return chr(int(body[1:]))
        return {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}.get(body, match.group(0))

    return re.sub(r"&(#x[0-9A-Fa-f]+|#[0-9]+|\w+);", ref, text)


# --- streaming one worksheet -------------------------------------------------------------------------------------

_R_ATTR = re.compile(rb"\sr=\"(\d+)\"")
_CELL_REF = re.compile(rb"\sr=\"([A-Z]{1,3})(\d+)\"")
_S_ATTR = re.compile(rb"\ss=\"(\d+)\"")
_FORMULA = re.compile(rb"<(?:[\w.-]+:)?f\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*?(?:/>|>.*?</(?:[\w.-]+:)?f>)", re.S)
_WHITESPACE = frozenset(b" \t\r\n")


class _Sink:
    """Collects a sheet's new XML in pieces and deflates it a megabyte at a time on other threads (zlib lets go of
    the GIL: the next rows are read while the last ones are compressed, two pieces at once: ``ParallelDeflater``)."""

    def __init__(self) -> None:
        self.deflater = ParallelDeflater(_SHEET_LEVEL)
        self.pieces: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> None:
        if data:
            self.pieces.append(data)
            self.size += len(data)
            if self.size >= _CHUNK:
                self.flush()

    def flush(self) -> None:
        if not self.pieces:
            return
        data = b"".join(self.pieces)
        self.pieces, self.size = [], 0
        self.deflater.write(data)

    def finish(self) -> Deflated:
        self.flush()
        return self.deflater.finish()

    def close(self) -> None:
        self.deflater.close()


class _Discard:
    """A sink that keeps nothing (the look-ahead pass)."""

    def write(self, data: bytes) -> None:
        return None


class _SheetWriter:
    """Streams one worksheet's XML: the head and tail edited element by element, changed rows rebuilt, others copied."""

    def __init__(self, job: _SaveJob, sheet: _Sheet, grid: list[list[Cell]], wants_notes: bool, rels: list[_Rel]) -> None:
        self.job = job
        self.sheet = sheet
        self.grid = grid
        self.wants_notes = wants_notes
        self.rels = rels
        self.vml_part: str | None = None
        """The existing VML drawing the sheet's legacyDrawing names."""
        self.new_vml: str | None = None
        """A VML drawing this save creates (the sheet had none)."""
        self.changed = False
        self.col_styles: list[tuple[int, int, int]] = []
        self._col_starts: list[int] = []
        self.p = b""
        by_row: dict[int, set[int]] = {}
        for r, c in sheet.dirty:
            by_row.setdefault(r, set()).add(c)
        for r, c in sheet.marks:
            by_row.setdefault(r, set()).add(c)
        for r, c in sheet.own_formula:
            by_row.setdefault(r, set()).add(c)
        self.by_row = by_row
        self.pending: list[int] = sorted(by_row)
        self.next_new = 0
        self.region_start = min((r for r, _ in sheet.regions), default=None)
        self.all_rows = bool(sheet.restyle)
        self.width = sheet.table_fit[1] if sheet.table_fit is not None else None

    # --- the whole part ---

    def run(self, source: Callable[[], IO[bytes]]) -> Deflated | None:
        """The new part, deflated; None when it would be the same as the old one."""
        rows = bool(self.by_row) or self.region_start is not None or self.all_rows
        if not rows and self.sheet.part is not None and self.job.pkg.has(self.sheet.part):
            # Only the head or the tail may change: look before deflating a big sheet again for nothing.
            with source() as stream:
                if self._pass(stream, None) is None:
                    return None
            self.changed = False
            self.next_new = 0
        sink = _Sink()
        try:
            with source() as stream:
                self._pass(stream, sink)
            result = sink.finish()
        finally:
            sink.close()
        if not self.changed and self.sheet.part is not None and self.job.pkg.has(self.sheet.part):
            return None
        return result

    def _pass(self, stream: IO[bytes], sink: _Sink | None) -> bool | None:
        """Stream the part into ``sink`` (None: only find out whether anything changes; None returned when nothing does)."""
        buf = b""
        while True:
            chunk = stream.read(_CHUNK)
            buf += chunk
            try:
                root, content = ooxml.root_of(buf[: 1 << 16].decode("utf-8", errors="replace"), "worksheet")
            except ValueError:
                if chunk and len(buf) < (1 << 16):
                    continue
                raise
            break
        self.root = root
        p = self.p = root.prefix.encode()
        opening = b"<" + p + b"sheetData"
        while (found := _find_tag(buf, opening)) == -1:
            chunk = stream.read(_CHUNK)
            if not chunk:
                raise ValueError("worksheet without sheetData")
            buf += chunk
        while (close := buf.find(b">", found)) == -1:
            chunk = stream.read(_CHUNK)
            if not chunk:
                raise ValueError("truncated sheetData")
            buf += chunk
        head_text = buf[:found].decode("utf-8")
        prolog = head_text[:content]
        head_nodes = ooxml.split(head_text[content:])
        new_head = self._edit_head([Node(n.name, n.text) for n in head_nodes], root)
        if [n.text for n in new_head] != [n.text for n in head_nodes]:
            self.changed = True
        out = sink if sink is not None else _Discard()
        out.write(prolog.encode("utf-8"))
        out.write("".join(n.text for n in new_head).encode("utf-8"))
        if buf[close - 1 : close] == b"/":
            out.write(b"<" + p + b"sheetData>")
            self._new_rows_until(out, None)
            out.write(b"</" + p + b"sheetData>")
            rest = buf[close + 1 :]
        elif sink is None:
            rest = self._skip_rows(stream, buf, close + 1)
        else:
            out.write(buf[found : close + 1])
            rest = self._rows(stream, buf, close + 1, out)
        while chunk := stream.read(_CHUNK):
            rest += chunk
        tail = rest.decode("utf-8")
        tail_nodes = ooxml.split(tail)
        new_tail = self._edit_tail([Node(n.name, n.text) for n in tail_nodes], root, final=sink is not None)
        if [n.text for n in new_tail] != [n.text for n in tail_nodes]:
            self.changed = True
        out.write("".join(n.text for n in new_tail).encode("utf-8"))
        return True if self.changed else None

    def _skip_rows(self, stream: IO[bytes], buf: bytes, pos: int) -> bytes:
        """Everything after the sheet data's end tag (its rows only read past)."""
        closing = b"</" + self.p + b"sheetData"
        while True:
            j = buf.find(closing, pos)
            if j != -1:
                close = buf.find(b">", j)
                if close != -1:
                    return buf[close + 1 :]
            chunk = stream.read(_CHUNK)
            if not chunk:
                raise ValueError("truncated worksheet")
            keep = max(pos, len(buf) - len(closing) - 2)
            buf, pos = buf[keep:] + chunk, 0

    # --- rows ---

    def _touched(self, row: int) -> bool:
        return self.all_rows or row in self.by_row or (self.region_start is not None and row >= self.region_start)

    def _rows(self, stream: IO[bytes], buf: bytes, pos: int, sink: _Sink | _Discard) -> bytes:
        p = self.p
        row_open = b"<" + p + b"row"
        row_close = b"</" + p + b"row>"
        data_close = b"</" + p + b"sheetData"
        numbered = re.compile(b"<" + re.escape(p) + rb'row\s(?:[^>]*?\s)?r="(\d+)"')  # a row's start tag and its number
        copy_from = pos
        last = 0
        # Where the sheet data ends in this buffer (-1: later); looked up once per buffer, not once per row.
        j = buf.find(data_close, pos)
        skip = self._skippable(buf, pos, j, last, numbered)
        while True:
            if skip is not None:
                # Rows nobody touches are passed over a buffer at a time, not one by one (50,000 rows: 0.6 s of Python).
                starts, numbers, end = skip
                at = bisect_left(starts, pos)
                upto = bisect_left(numbers, self._next_touched(), at)
                if upto > at:
                    last = numbers[upto - 1]
                    pos = starts[upto] if upto < len(starts) else end
            i = buf.find(row_open, pos)
            incomplete = False
            if j != -1 and (i == -1 or j < i):
                sink.write(buf[copy_from:j])
                self._new_rows_until(sink, None)
                close = buf.find(b">", j)
                while close == -1:
                    chunk = stream.read(_CHUNK)
                    if not chunk:
                        raise ValueError("truncated sheetData")
                    buf += chunk
                    close = buf.find(b">", j)
                sink.write(buf[j : close + 1])
                return buf[close + 1 :]
            if i == -1:
                incomplete = True
                cut = max(pos, len(buf) - len(data_close))
            else:
                after = buf[i + len(row_open) : i + len(row_open) + 1]
                if after and after[0] not in _WHITESPACE and after not in (b">", b"/"):
                    pos = i + 1
                    continue
                k = buf.find(b">", i)
                end = -1
                if after and k != -1:
                    if buf[k - 1 : k] == b"/":
                        end = k + 1
                    else:
                        e = buf.find(row_close, k)
                        end = e + len(row_close) if e != -1 else -1
                if end == -1:
                    incomplete = True
                    cut = i
                else:
                    found = _R_ATTR.search(buf, i, k)
                    number = int(found.group(1)) if found else last + 1
                    last = number
                    if self.next_new < len(self.pending) and self.pending[self.next_new] < number:
                        sink.write(buf[copy_from:i])
                        copy_from = i
                        self._new_rows_until(sink, number)
                    if self.next_new < len(self.pending) and self.pending[self.next_new] == number:
                        self.next_new += 1
                    if self._touched(number):
                        sink.write(buf[copy_from:i])
                        rebuilt = self._rebuild(number, buf[i:end])
                        if rebuilt != buf[i:end]:
                            self.changed = True
                        sink.write(rebuilt)
                        copy_from = end
                    pos = end
                    continue
            if incomplete:
                chunk = stream.read(_CHUNK)
                if not chunk:
                    raise ValueError("truncated worksheet")
                sink.write(buf[copy_from:cut])
                buf = buf[cut:] + chunk
                pos = copy_from = 0
                j = buf.find(data_close)
                skip = self._skippable(buf, pos, j, last, numbered)

    def _next_touched(self) -> float:
        """The first row number from which rows are rebuilt or added (inf: none left)."""
        pending = self.pending[self.next_new] if self.next_new < len(self.pending) else math.inf
        return pending if self.region_start is None else min(pending, self.region_start)

    def _skippable(self, buf: bytes, pos: int, j: int, last: int, numbered: re.Pattern[bytes]) -> tuple[list[int], list[int], int] | None:
        """The complete rows of ``buf`` from ``pos``: where each starts, its number, and where the last one ends; None
        when they cannot be passed over by number (a row without its ``r``, rows out of order: then row by row)."""
        if self.all_rows:
            return None
        row_close = b"</" + self.p + b"row>"
        end = buf.rfind(row_close, pos, j if j != -1 else len(buf))
        if end == -1:
            return None
        end += len(row_close)
        found = list(numbered.finditer(buf, pos, end))
        if len(found) != buf.count(b"<" + self.p + b"row", pos, end):
            return None
        numbers = [int(m.group(1)) for m in found]
        if not numbers or numbers[0] <= last or not all(map(operator.lt, numbers, numbers[1:])):
            return None
        return [m.start() for m in found], numbers, end

    def _new_rows_until(self, sink: _Sink | _Discard, number: int | None) -> None:
        """Rows that do not exist in the file yet, before row ``number`` (all the rest when None)."""
        pending = self.pending
        while self.next_new < len(pending) and (number is None or pending[self.next_new] < number):
            row = pending[self.next_new]
            self.next_new += 1
            built = self._rebuild(row, None)
            if built:
                self.changed = True
                sink.write(built)

    def _rebuild(self, number: int, original: bytes | None) -> bytes:
        """One row with its changes: unchanged cells keep their bytes; the row itself when nothing changes."""
        p = self.p
        cells: list[tuple[int, bytes]] = []
        extra = b""
        row_style = 0
        if original is None:
            start = b'<' + p + b'row r="' + str(number).encode() + b'">'
        else:
            k = original.find(b">")
            selfclosing = original[k - 1 : k] == b"/"
            start = original[: k - 1].rstrip() + b">" if selfclosing else original[: k + 1]
            if b'customFormat="1"' in start or b'customFormat="true"' in start:
                found = _S_ATTR.search(start)
                row_style = int(found.group(1)) if found else 0
            inner = b"" if selfclosing else original[k + 1 : len(original) - len(b"</" + p + b"row>")]
            cells, extra = self._cells(inner)
        wanted = self.by_row.get(number, set())
        present = {c for c, _ in cells}
        out: list[tuple[int, bytes]] = []
        same = True
        for column, segment in cells:
            if self._cell_touched(number, column, wanted):
                new = self._cell(number, column, segment, row_style)
                same = same and new == segment
                segment = new
            if segment:
                out.append((column, segment))
        for column in sorted(wanted - present):
            segment = self._cell(number, column, None, row_style)
            if segment:
                same = False
                out.append((column, segment))
        if same and original is not None:
            return original
        out.sort(key=lambda item: item[0])
        body = b"".join(s for _, s in out)
        start = re.sub(rb"\sspans=\"[^\"]*\"", b"", start)
        if not body and not extra:
            if original is None:
                return b""
            attributes = re.findall(rb"\s([\w:.-]+)=", start)
            if all(a in (b"r", b"spans") or a.endswith(b"dyDescent") for a in attributes):
                return b""
        return start + body + extra + b"</" + p + b"row>"

    def _cell_touched(self, row: int, column: int, wanted: set[int]) -> bool:
        if column in wanted or column in self.sheet.restyle:
            return True
        return any(row >= first and (last is None or column <= last) for first, last in self.sheet.regions)

    def _cells(self, inner: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
        p = self.p
        opening = b"<" + p + b"c"
        closing = b"</" + p + b"c>"
        out: list[tuple[int, bytes]] = []
        pos = 0
        column = 0
        while True:
            i = inner.find(opening, pos)
            while i != -1:
                after = inner[i + len(opening) : i + len(opening) + 1]
                if after and (after[0] in _WHITESPACE or after in (b">", b"/")):
                    break
                i = inner.find(opening, i + 1)
            if i == -1:
                return out, inner[pos:].strip()
            k = inner.find(b">", i)
            if k == -1:
                raise ValueError("a cell without an end")
            if inner[k - 1 : k] == b"/":
                end = k + 1
            else:
                end = inner.find(closing, k)
                if end == -1:
                    raise ValueError("a cell without an end")
                end += len(closing)
            segment = inner[i:end]
            found = _CELL_REF.search(segment, 0, k - i + 1)
            column = ooxml.column_index(found.group(1).decode()) if found else column + 1
            out.append((column, segment))
            pos = end

    def _default_style(self, column: int, row_style: int) -> int:
        if row_style:
            return row_style
        index = bisect_right(self._col_starts, column) - 1
        if index >= 0:
            first, last, style = self.col_styles[index]
            if first <= column <= last:
                return style
        return 0

    def _cell(self, row: int, column: int, segment: bytes | None, row_style: int) -> bytes:
        sheet = self.sheet
        key = (row, column)
        styles = self.job.styles if (key in sheet.marks or sheet.regions or sheet.restyle or key in sheet.dirty) else None
        if segment is not None:
            k = segment.find(b">")
            found = _S_ATTR.search(segment, 0, k + 1)
            base = int(found.group(1)) if found else 0
        else:
            base = self._default_style(column, row_style)
        style = base
        if styles is not None:
            if key in sheet.marks:
                mark = sheet.marks[key]
                style = styles.variant(style, fill=None if mark is None else mark[0])
            elif any(row >= first and (last is None or column <= last) for first, last in sheet.regions) and styles.fill_of(style) != 0:
                style = styles.variant(style, fill=None)
            if column in sheet.restyle:
                style = styles.variant(style, number_format=TEXT_FORMAT)
        ref = (column_letter(column) + str(row)).encode()
        if key in sheet.dirty:
            value = self.grid[row - 1][column - 1] if row <= len(self.grid) and column <= len(self.grid[row - 1]) else None
            if (isinstance(value, dt.datetime | dt.date | dt.time) and styles is not None
                    and styles.number_format(style) not in range(14, 23) and styles.number_format(style) not in range(45, 48)):
                style = styles.variant(style, number_format=_DATE_FORMATS.get(type(value), 22))
            return _cell_xml(self.p, ref, style, value)
        if segment is None:
            if not style:
                return b""
            return b"<" + self.p + b'c r="' + ref + b'" s="' + str(style).encode() + b'"/>'
        if key in sheet.own_formula:
            text = sheet.own_formula[key][1:]
            segment = _FORMULA.sub(lambda _: b"<" + self.p + b"f>" + ooxml.escape_text(text).encode() + b"</" + self.p + b"f>", segment, count=1)
        if style != base:
            k = segment.find(b">")
            tag = segment[: k + 1].decode("utf-8")
            tag = ooxml.set_attr(tag, "s", str(style) if style else None)
            segment = tag.encode("utf-8") + segment[k + 1 :]
        return segment

    # --- head and tail ---

    def _edit_head(self, nodes: list[Node], root: Root) -> list[Node]:
        sheet = self.sheet
        nodes = list(nodes)
        # dimension: grown to what is written (a shrinking sheet keeps its old one: harmless)
        extent = [(r, c) for (r, c) in sheet.dirty if self._value(r, c) is not None] + list(sheet.marks)
        dimension = ooxml.find(nodes, "dimension")
        if extent:
            last_row = max(r for r, _ in extent)
            last_col = max(c for _, c in extent)
            area = (1, 1, last_row, last_col)
            if dimension is not None:
                ref = ooxml.get_attr(dimension.text, "ref")
                try:
                    old = ooxml.parse_area(ref or "A1")
                except ValueError:
                    old = (1, 1, 1, 1)
                area = (min(old[0], 1), min(old[1], 1), max(old[2], last_row), max(old[3], last_col))
                if area != old:
                    dimension.text = ooxml.set_attr(dimension.text, "ref", ooxml.area_text(area))
            else:
                ooxml.insert(nodes, Node("dimension", f'<{root.prefix}dimension ref="{ooxml.area_text(area)}"/>'))
        if sheet.protect:
            self._freeze(nodes, root)
        if sheet.unselect:
            views = ooxml.find(nodes, "sheetViews")
            if views is not None:
                views.text = re.sub(r"\stabSelected=\"(?:1|true)\"", "", views.text)
        self._cols(nodes, root)
        return nodes

    def _value(self, row: int, column: int) -> Cell:
        grid = self.grid
        return grid[row - 1][column - 1] if row <= len(grid) and column <= len(grid[row - 1]) else None

    def _freeze(self, nodes: list[Node], root: Root) -> None:
        """The header row (and first column) frozen, as the export left it, unless a frozen pane is there."""
        p = root.prefix
        cell = self.sheet.freeze
        rows, columns = ooxml.parse_ref(cell)
        pane = f'<{p}pane xSplit="{columns - 1}" ySplit="{rows - 1}" topLeftCell="{cell}" activePane="bottomRight" state="frozen"/>'
        selections = (f'<{p}selection pane="topRight"/><{p}selection pane="bottomLeft"/>'
                      f'<{p}selection pane="bottomRight" activeCell="{cell}" sqref="{cell}"/>')
        views = ooxml.find(nodes, "sheetViews")
        if views is None:
            ooxml.insert(nodes, Node("sheetViews", f'<{p}sheetViews><{p}sheetView workbookViewId="0">{pane}{selections}</{p}sheetView></{p}sheetViews>'))
            return
        element = root.parse(views.text)
        view = element.find(_M + "sheetView")
        if view is None:
            return
        current = view.find(_M + "pane")
        if current is not None and current.get("state") in ("frozen", "frozenSplit"):
            return
        for child in list(view):
            if ooxml.local(child.tag) in ("pane", "selection"):
                view.remove(child)
        for index, fragment in enumerate([pane, *re.findall(r"<[^>]+/>", selections)]):
            view.insert(index, root.parse(fragment))
        views.text = root.serialize(element)

    def _cols(self, nodes: list[Node], root: Root) -> None:
        sheet = self.sheet
        node = ooxml.find(nodes, "cols")
        entries: list[dict[str, str]] = []
        if node is not None:
            for col in root.parse(node.text):
                if isinstance(col.tag, str) and ooxml.local(col.tag) == "col":
                    entries.append({k: v for k, v in col.attrib.items() if isinstance(k, str)})
        entries.sort(key=lambda e: int(e.get("min") or 0))
        styles = self.job.styles if sheet.text_columns else None

        def find(column: int) -> dict[str, str] | None:
            return next((e for e in entries if int(e.get("min") or 0) <= column <= int(e.get("max") or 0)), None)

        def needs(column: int) -> bool:
            entry = find(column)
            if column in sheet.hidden and (entry is None or entry.get("hidden") not in ("1", "true")):
                return True
            if styles is not None and column in sheet.text_columns:
                style = int(entry.get("style") or 0) if entry is not None else 0
                return styles.number_format(style) != TEXT_FORMAT
            return False

        todo = sorted(c for c in sheet.hidden | sheet.text_columns if needs(c))
        for column in todo:
            entry = find(column)
            if entry is None:
                entry = {"min": str(column), "max": str(column), "width": "9.140625"}
                entries.append(entry)
            else:
                first, last = int(entry["min"]), int(entry["max"])
                index = entries.index(entry)
                pieces = []
                if first < column:
                    pieces.append({**entry, "min": str(first), "max": str(column - 1)})
                entry = {**entry, "min": str(column), "max": str(column)}
                pieces.append(entry)
                if column < last:
                    pieces.append({**entry, "min": str(column + 1), "max": str(last)})
                entries[index : index + 1] = pieces
            if column in sheet.hidden:
                entry["hidden"] = "1"
            if styles is not None and column in sheet.text_columns:
                entry["style"] = str(styles.variant(int(entry.get("style") or 0), number_format=TEXT_FORMAT))
            entries.sort(key=lambda e: int(e.get("min") or 0))
        if todo:
            p = root.prefix
            body = "".join(
                f"<{p}col " + " ".join(f'{k}="{ooxml.escape_attr(v)}"' for k, v in entry.items()) + "/>" for entry in entries
            )
            text = f"<{p}cols>{body}</{p}cols>"
            if node is None:
                ooxml.insert(nodes, Node("cols", text))
            else:
                node.text = text
        self.col_styles = [(int(e["min"]), int(e["max"]), int(e.get("style") or 0)) for e in entries if e.get("style")]
        self._col_starts = [first for first, _, _ in self.col_styles]

    def _edit_tail(self, nodes: list[Node], root: Root, *, final: bool) -> list[Node]:
        sheet = self.sheet
        legacy = ooxml.find(nodes, "legacyDrawing")
        if legacy is not None:
            found = re.search(r"\s(?:[\w.-]+:)?id=\"([^\"]*)\"", legacy.text)
            rel = next((r for r in self.rels if found is not None and r.id == found.group(1)), None)
            if rel is not None and not rel.external and self.job.pkg.has(rel.target):
                self.vml_part = self.job.pkg.member(rel.target)
        if sheet.unmerged:
            node = ooxml.find(nodes, "mergeCells")
            if node is not None:
                element = root.parse(node.text)
                gone = set(sheet.unmerged)
                for merge in list(element):
                    try:
                        area = ooxml.parse_area(merge.get("ref") or "")
                    except ValueError:
                        continue
                    if area in gone:
                        element.remove(merge)
                if len(element):
                    element.set("count", str(len(element)))
                    node.text = root.serialize(element)
                else:
                    nodes.remove(node)
        if sheet.protect and self.width is not None:
            width = self.width
            for node in nodes:
                if node.name == "conditionalFormatting":
                    node.text = _whole_columns_tag(node.text, width)
                elif node.name == "dataValidations":
                    node.text = re.sub(r"<(?:[\w.-]+:)?dataValidation\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>",
                                       lambda m: _whole_columns_tag(m.group(0), width), node.text)
        if self.wants_notes and self.vml_part is None and legacy is None:
            # Notes need a VML drawing: a new one, named by a new legacyDrawing element.
            assert sheet.part is not None
            if final:
                self.new_vml = self.job.fresh_name("xl/drawings/commentsDrawing{}.vml")
                rid = self.job.add_rel(sheet.part, ooxml.REL_VML, self.new_vml)
            else:
                rid = "rId0"
            declared = re.search(rf"\sxmlns:([\w.-]+)=\"{re.escape(REL)}\"", root.start)
            attribute = f'{declared.group(1)}:id="{rid}"' if declared else f'xmlns:r="{REL}" r:id="{rid}"'
            ooxml.insert(nodes, Node("legacyDrawing", f"<{root.prefix}legacyDrawing {attribute}/>"))
        elif self.wants_notes and self.vml_part is None:
            raise ValueError(f"{sheet.name}: the sheet's legacy drawing is missing from the package")
        return nodes


def _find_tag(buf: bytes, opening: bytes) -> int:
    pos = 0
    while True:
        i = buf.find(opening, pos)
        if i == -1:
            return -1
        after = buf[i + len(opening) : i + len(opening) + 1]
        if after and (after[0] in _WHITESPACE or after in (b">", b"/")):
            return i
        if not after:
            return -1
        pos = i + 1


def _whole_columns_tag(tag_or_element: str, width: int) -> str:
    """An element over the Table's columns whose ``sqref`` starts at row 2 made to reach the sheet's last row
    (``E2:E1302`` -> ``E2:E1048576``): LibreOffice shrinks them to the rows in use."""
    end = tag_or_element.find(">")
    tag = tag_or_element[: end + 1]
    sqref = ooxml.get_attr(tag, "sqref")
    if not sqref:
        return tag_or_element
    try:
        areas = [ooxml.parse_area(a) for a in sqref.split()]
    except ValueError:
        return tag_or_element
    if not areas or any(a[3] > width for a in areas) or min(a[0] for a in areas) != 2:
        return tag_or_element
    grown = [(r1, c1, ooxml.MAX_ROW if r1 == 2 else r2, c2) for r1, c1, r2, c2 in areas]
    kept: list[Area] = []
    for index, area in enumerate(grown):
        covered = any(
            other[0] <= area[0] and other[1] <= area[1] and other[2] >= area[2] and other[3] >= area[3] and (other != area or j < index)
            for j, other in enumerate(grown) if j != index
        )
        if not covered:
            kept.append(area)
    text = " ".join(ooxml.area_text(a) for a in kept)
    if text == sqref:
        return tag_or_element
    return ooxml.set_attr(tag, "sqref", text) + tag_or_element[end + 1 :]


_EPOCH = dt.datetime(1899, 12, 30)


def _serial(value: dt.datetime | dt.date | dt.time) -> float:
    if isinstance(value, dt.datetime):
        delta = value.replace(tzinfo=None) - _EPOCH
    elif isinstance(value, dt.date):
        delta = dt.datetime(value.year, value.month, value.day) - _EPOCH
    else:
        delta = dt.datetime.combine(dt.date(1899, 12, 30), value) - _EPOCH
    serial = delta.days + delta.seconds / 86400 + delta.microseconds / 86400e6
    return serial


def _cell_xml(p: bytes, ref: bytes, style: int, value: Cell) -> bytes:
    s = b' s="' + str(style).encode() + b'"' if style else b""
    head = b"<" + p + b'c r="' + ref + b'"' + s
    if value is None:
        return head + b"/>" if style else b""
    if value.__class__ is str:
        text = str(value)
        space = b' xml:space="preserve"' if text != text.strip() or "\n" in text or "\t" in text else b""
        return (head + b' t="inlineStr"><' + p + b"is><" + p + b"t" + space + b">" + ooxml.escape_text(text).encode("utf-8")
                + b"</" + p + b"t></" + p + b"is></" + p + b"c>")
    if isinstance(value, bool):
        return head + b' t="b"><' + p + b"v>" + (b"1" if value else b"0") + b"</" + p + b"v></" + p + b"c>"
    if isinstance(value, int):
        return head + b"><" + p + b"v>" + str(value).encode() + b"</" + p + b"v></" + p + b"c>"
    if isinstance(value, float):
        return head + b"><" + p + b"v>" + repr(value).encode() + b"</" + p + b"v></" + p + b"c>"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return head + b"><" + p + b"v>" + repr(_serial(value)).encode() + b"</" + p + b"v></" + p + b"c>"
    return _cell_xml(p, ref, style, str(value))
