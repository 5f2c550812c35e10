"""A fast read-only view of an .xlsx file (python-calamine), giving the same values as openpyxl.

openpyxl builds a Python object per cell and parses styles; calamine parses the sheet XML in
Rust. For a 50,000-row workbook that is the difference between seconds and a fraction of one.
Values are normalised to what ``OpenpyxlBook.values`` returns: blanks are None (not ``""``),
whole numbers are ``int``, date cells are ``datetime``, trailing blank rows and columns dropped.

One difference cannot be normalised: a formula cell gives its cached result here, its formula
text in openpyxl (``FastBook.has_formulas`` tells whether a sheet has any).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import threading
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from python_calamine import CalamineWorkbook, SheetVisibleEnum

from rosterbook.core.codecs import Cell
from rosterbook.errors import UsageError
from rosterbook.sheets import Mark, Visibility, check_extent, trim_grid


def _visibility(value: Any) -> Visibility:
    # calamine's enum is not hashable: compare, don't look up.
    if value == SheetVisibleEnum.VeryHidden:
        return "veryHidden"
    if value == SheetVisibleEnum.Hidden:
        return "hidden"
    return "visible"


def normalise(value: Any) -> Cell:
    """One calamine value as openpyxl gives it."""
    if value == "" or value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, dt.timedelta):
        # openpyxl gives a time of day for a time-formatted cell under 24 hours.
        if dt.timedelta(0) <= value < dt.timedelta(days=1):
            return (dt.datetime.min + value).time()
        return str(value)
    return value


class FastBook:
    """A read-only SheetBook over an .xlsx file; the write methods refuse."""

    def __init__(self, path: str | os.PathLike[str], *, strings: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        self.strings: dict[str, str] = strings if strings is not None else {}
        """One object per distinct text read through ``values`` (a caller may share it with what else it reads)."""
        if not self.path.exists():
            raise UsageError(f"{str(self.path)!r}: no such file.")
        try:
            self._wb = CalamineWorkbook.from_path(str(self.path))
            self._meta = {m.name: m for m in self._wb.sheets_metadata}
        except Exception as exc:  # a damaged file: whatever the parser raised, it is unreadable
            raise self._unreadable(exc) from None
        self._merged: dict[str, list[tuple[int, int, int, int]]] = {}
        self._prefetched: dict[str, tuple[threading.Event, list[Any]]] = {}
        """Sheets a prefetch thread parses: set once parsed, and the sheet or the error met."""
        self._threads: list[threading.Thread] = []
        self._scans: dict[str, threading.Event] = {}
        """Sheets whose formula scan a prefetch thread does: set once done."""
        self._formulas: dict[str, bool] = {}
        """``has_formulas`` answers already found (by a prefetch thread, or an earlier call)."""

    def prefetch(self, *sheets: str, formulas: Sequence[str] = ()) -> None:
        """Start parsing ``sheets``, in this order, on a thread of its own, while the caller does other work: calamine
        parses in Rust without holding Python's lock, so a second core does it (the 50,000-row Users sheet, ~0.6 s).
        Its reader is a second one over the same file: two threads never share one. Each sheet can be read as soon as
        it is parsed. Then the same thread finds whether each of ``formulas`` holds a formula (``has_formulas``, which
        a writing step asks: inflating lets go of the lock too)."""
        wanted = [sheet for sheet in dict.fromkeys(sheets) if sheet in self._meta and sheet not in self._prefetched]
        if not wanted:
            return
        slots: dict[str, tuple[threading.Event, list[Any]]] = {sheet: (threading.Event(), []) for sheet in wanted}
        scans = {name: threading.Event() for name in formulas if name in self._meta and name not in self._formulas and name not in self._scans}
        self._scans.update(scans)

        reader: CalamineWorkbook | None = None  # opened by the thread when it parses its first sheet

        def parse_one(sheet: str, parsed: threading.Event, out: list[Any]) -> None:
            nonlocal reader
            try:
                check_extent(sheet, *self._extent(sheet))
                if reader is None:
                    reader = CalamineWorkbook.from_path(str(self.path))
                out.append(reader.get_sheet_by_name(sheet))
            except BaseException as exc:  # handed to the reading thread, which raises what it would have raised
                out.append(exc)
            finally:
                parsed.set()  # the reader goes on with this sheet while this thread parses the next one

        def parse() -> None:
            try:
                # Each sheet parsed is the reading thread's alone (popped here, held in ``_prefetched`` until read): the
                # scans below take a while, and holding the parsed Users sheet through them (40 MB) raised a step's peak.
                for sheet in list(slots):
                    parse_one(sheet, *slots.pop(sheet))
            finally:
                if reader is not None:
                    reader.close()
            for name, done in scans.items():
                try:
                    with contextlib.suppress(Exception):  # a damaged member: has_formulas scans again and says so
                        self._formulas[name] = self._scan_formulas(name)
                finally:
                    done.set()

        thread = threading.Thread(target=parse, name=f"prefetch {', '.join(wanted)}", daemon=True)
        self._prefetched.update(slots)
        self._threads.append(thread)
        thread.start()

    def _loaded(self, sheet: str) -> Any:
        """The calamine sheet: the one prefetched (its error raised here), else parsed now."""
        started = self._prefetched.pop(sheet, None)
        if started is None:
            check_extent(sheet, *self._extent(sheet))
            return self._wb.get_sheet_by_name(sheet)
        parsed, out = started
        parsed.wait()
        if out and isinstance(out[0], BaseException):
            raise out[0]
        return out[0]

    def sheet_names(self) -> list[str]:
        return list(self._wb.sheet_names)

    def close(self) -> None:
        """Release the file (Windows cannot replace a file that is open)."""
        for thread in self._threads:  # their readers hold the file too
            thread.join()
        self._threads.clear()
        self._prefetched.clear()
        self._wb.close()

    def values(self, sheet: str) -> list[list[Cell]]:
        # Equal texts become one object (``strings``): a 50,000-row sheet repeats its departments, statuses and
        # managers, and the snapshot (read first) holds most of the rest.
        return trim_grid(list(self.iter_values(sheet, share=True)))

    def iter_values(self, sheet: str, *, share: bool = False) -> Iterator[list[Cell]]:
        """The sheet's rows from row 1 one at a time, normalised as ``values`` gives them (trailing blank rows and
        columns not trimmed, rows as long as the used range). A sheet read once and dropped (the snapshot's long
        entries) never holds all its cells as Python objects at once. ``share``: equal texts are one object."""
        if sheet not in self._meta:
            raise KeyError(sheet)
        try:
            # calamine builds a dense grid: a stray value at XFD1048576 would abort the process (check_extent refuses it).
            loaded = self._loaded(sheet)
            self._merged[sheet] = [(r0 + 1, c0 + 1, r1 + 1, c1 + 1) for (r0, c0), (r1, c1) in loaded.merged_cell_ranges or ()]
            start = loaded.start
            # iter_rows yields blank rows down to the used range, then its rows from its first column on.
            rows = loaded.iter_rows() if start is not None else iter(())
        except UsageError:
            raise
        except Exception as exc:  # calamine's XmlError and friends on a damaged sheet
            raise self._unreadable(exc, sheet) from None
        lead: list[Cell] = [None] * start[1] if start is not None else []
        memo = self.strings.setdefault if share else None
        # Most cells are text: only the others go through normalise (a million calls cost seconds).
        for row in rows:
            if memo is not None:
                cells = [memo(v, v) if v.__class__ is str and v else normalise(v) for v in row]
            else:
                cells = [v if v.__class__ is str and v else normalise(v) for v in row]
            yield lead + cells if lead else cells

    def _unreadable(self, exc: Exception, sheet: str | None = None) -> UsageError:
        where = f" (sheet {sheet!r})" if sheet is not None else ""
        return UsageError(f"{str(self.path)!r}: cannot be read as an .xlsx workbook{where} ({type(exc).__name__}: {exc}).")

    def _sheet_xml(self, sheet: str) -> tuple[zipfile.ZipFile, str] | None:
        """The open archive and the member holding ``sheet``'s XML (None when the workbook does not list it)."""
        try:
            archive = zipfile.ZipFile(self.path)
        except Exception as exc:  # a damaged archive
            raise self._unreadable(exc, sheet) from None
        try:
            target = _sheet_part(archive, sheet)
            if target is not None and target not in archive.NameToInfo:
                raise KeyError(f"the workbook lists {target!r}, which the file does not hold")
        except Exception as exc:  # a damaged workbook.xml or its relationships
            archive.close()
            raise self._unreadable(exc, sheet) from None
        if target is None:
            archive.close()
            return None
        return archive, target

    def visibility(self, sheet: str) -> Visibility:
        return _visibility(self._meta[sheet].visible)

    def merged_ranges(self, sheet: str) -> list[tuple[int, int, int, int]]:
        """Merged cell ranges as (first row, first column, last row, last column), 1-based."""
        if sheet not in self._merged:
            self.values(sheet)
        return self._merged[sheet]

    def merged_known(self, sheet: str) -> list[tuple[int, int, int, int]] | None:
        """The merged ranges of a sheet already parsed (``values`` or ``iter_values``), without parsing it; else None."""
        return self._merged.get(sheet)

    def _extent(self, sheet: str) -> tuple[int, int]:
        """(last row, last column) of the sheet's used range: its <dimension> tag, else a scan of its cells."""
        found_xml = self._sheet_xml(sheet)
        if found_xml is None:
            return 0, 0
        archive, target = found_xml
        try:
            with archive, archive.open(target) as stream:
                head = stream.read(1 << 16)
                found = _DIMENSION.search(head)
                if found is not None:
                    return int(found.group(2)), _column_index(found.group(1))
                last_row = last_column = 0
                chunk, tail = head, b""
                while chunk:
                    for ref in _CELL_REF.finditer(tail + chunk):
                        last_row = max(last_row, int(ref.group(2)))
                        last_column = max(last_column, _column_index(ref.group(1)))
                    tail = chunk[-32:]
                    chunk = stream.read(1 << 20)
                return last_row, last_column
        except Exception as exc:  # a damaged member: bad CRC, bad deflate data
            raise self._unreadable(exc, sheet) from None

    def has_formulas(self, sheet: str) -> bool:
        """True when the sheet's XML holds a formula (whose cached value this reader returns)."""
        scanning = self._scans.get(sheet)
        if scanning is not None:
            scanning.wait()
        known = self._formulas.get(sheet)
        if known is None:
            known = self._formulas[sheet] = self._scan_formulas(sheet)
        return known

    def _scan_formulas(self, sheet: str) -> bool:
        found_xml = self._sheet_xml(sheet)
        if found_xml is None:
            return False
        archive, target = found_xml
        try:
            with archive, archive.open(target) as stream:
                tail = b""
                while chunk := stream.read(1 << 16):
                    if b"<f>" in tail + chunk or b"<f " in tail + chunk:
                        return True
                    tail = chunk[-4:]
        except Exception as exc:  # a damaged member: bad CRC, bad deflate data
            raise self._unreadable(exc, sheet) from None
        return False

    # --- writes: refused -----------------------------------------------------------------------

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise UsageError(f"{self.path.name}: opened read-only (fast reader); cannot write.")

    def write_values(self, sheet: str, row: int, column: int, values: Sequence[Sequence[Cell]]) -> None:
        self._read_only()

    def clear(self, sheet: str, first_row: int, last_column: int | None = None) -> None:
        self._read_only()

    def ensure_sheet(self, sheet: str, visibility: Visibility = "visible") -> None:
        if sheet not in self._meta:
            self._read_only()

    def hide_columns(self, sheet: str, columns: Sequence[int]) -> None:
        self._read_only()

    def mark(self, sheet: str, marks: Mapping[str, tuple[Mark, str] | None]) -> None:
        self._read_only()

    def fit_table(self, sheet: str, last_row: int, last_column: int) -> None:
        self._read_only()

    def set_text_columns(self, sheet: str, columns: Sequence[int]) -> None:
        self._read_only()

    def progress(self, message: str) -> None:
        return None

    def save(self) -> None:
        self._read_only()


_DIMENSION = re.compile(rb'<dimension ref="(?:[A-Z]{1,3}[0-9]+:)?([A-Z]{1,3})([0-9]{1,7})"')
_CELL_REF = re.compile(rb'<c r="([A-Z]{1,3})([0-9]{1,7})"')


def _column_index(letters: bytes) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + letter - 64
    return index


def _sheet_part(archive: zipfile.ZipFile, sheet: str) -> str | None:
    """The zip member holding a sheet's XML, found through workbook.xml and its relationships."""
    from xml.etree import ElementTree

    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    rel_ns = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    book = ElementTree.fromstring(archive.read("xl/workbook.xml"))
    rid = None
    for node in book.iterfind("m:sheets/m:sheet", ns):
        if node.get("name") == sheet:
            rid = node.get(rel_ns)
    if rid is None:
        return None
    rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    for node in rels:
        if node.get("Id") == rid:
            target = node.get("Target") or ""
            target = target.lstrip("/")
            return target if target.startswith("xl/") else re.sub(r"^(\./)?", "xl/", target)
    return None


def read_values(path: str | os.PathLike[str], sheet: str) -> list[list[Cell]]:
    """One sheet's values, as ``OpenpyxlBook(path).values(sheet)`` gives them, but fast."""
    return FastBook(path).values(sheet)
