"""Reading CSV exports that survive real life, and checking them against a dialect.

Platforms and Excel write CSV files in many shapes: UTF-8 with or without a BOM, Windows-1252
(Excel's "CSV" on Western Windows), UTF-16 ("Unicode text"), ``,`` or ``;`` (locales whose
decimal separator is a comma) or tab delimiters, a ``sep=;`` hint line, CRLF line ends and
line breaks inside quoted cells. ``read_csv`` takes them all; anything else is a ``UsageError``
with a one-line message.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Literal, overload

from rosterbook.core.checks import check_cells_and_columns
from rosterbook.core.crosschecks import cross_checks
from rosterbook.core.dialects import Dialect, dialect_names, load_dialect, recognise
from rosterbook.core.problems import Problem, cell_address, quote
from rosterbook.core.report import CheckReport
from rosterbook.core.textsafety import plain_cells
from rosterbook.errors import UsageError

__all__ = ["CsvData", "SplitLines", "check_csv", "cut_short_problem", "decode_csv", "dialect_and_reason", "dialect_of", "read_csv"]

_DELIMITERS = (",", ";", "\t")
_SNIFF_RECORDS = 50


@dataclass(frozen=True, slots=True)
class CsvData:
    """A CSV file as read: the header row, the data rows (as strings, not padded) and how it was written."""

    headers: list[str]
    """The first record, a BOM or ``sep=`` hint line removed."""
    rows: Sequence[list[str]]
    """Every later record; a blank line is an empty list, so row numbers match what Excel shows (a ``SplitLines``
    when read with ``lazy``)."""
    encoding: str
    """``utf-8-sig`` (BOM), ``utf-8``, ``cp1252``, ``latin-1`` or ``utf-16``."""
    delimiter: str
    """``,``, ``;`` or a tab."""
    name: str
    """The file name, used as the sheet name in problems (``users.csv!G7``)."""
    newline: str = "\r\n"
    """The line ending the file uses (``\\r\\n`` or ``\\n``)."""
    stray_quotes: tuple[tuple[int, int], ...] = ()
    """(sheet row, 1-based column) of cells with text after a closing quote, read leniently (``"x"y`` as ``xy``)."""
    cut_short: bool = False
    """The file ends inside its last row (fewer cells than the header and no line end): an interrupted download or copy."""
    source: str | None = field(default=None, repr=False, compare=False)
    """The text the records were split from when no cell is quoted (each cell is the text between delimiters), else
    None: one scan of it can answer for every cell (``textsafety.plain_cells``)."""


def read_csv(path: str | Path, *, lazy: bool = False) -> CsvData:
    """Read a CSV export whatever its encoding, delimiter and line ends; UsageError when it is not one.

    ``lazy``: a file without quotes keeps its records as lines, split when read (``SplitLines``).
    """
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{file}: no such file.") from None
    except IsADirectoryError:
        if file.suffix.casefold() == ".numbers":  # a Numbers document is a folder (a package) on macOS
            from rosterbook.formats import foreign_message

            raise UsageError(foreign_message(file.name, "numbers")) from None
        raise UsageError(f"{file}: is a folder, not a CSV file.") from None
    except OSError as exc:
        raise UsageError(f"{file}: cannot be read ({exc.strerror or exc}).") from None
    text, encoding = decode_csv(data, file.name)
    return parse_csv_text(text, file.name, encoding, lazy=lazy)


def decode_csv(data: bytes, name: str = "<csv>") -> tuple[str, str]:
    """The text of a CSV file's bytes and the encoding it was in (BOMs honoured, UTF-8, then Windows-1252)."""
    if not data[:4096].strip() and not data.strip():  # the start decides, without copying a whole file that is not blank
        raise UsageError(f"{name}: the file is empty.")
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        from rosterbook.formats import foreign_message, spreadsheet_kind

        kind = spreadsheet_kind(data)
        raise UsageError(foreign_message(name, kind) if kind is not None else f"{name}: is a zip file, not a CSV file.")
    if data.startswith(codecs.BOM_UTF8):
        return _decode(data, "utf-8-sig", name), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _decode(data, "utf-16", name), "utf-16"
    if b"\x00" in data[:65536]:
        raise UsageError(f"{name}: holds binary data, not CSV text.")
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"  # every byte is a character: nothing left to refuse


def _decode(data: bytes, encoding: str, name: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        offset = exc.start + (len(codecs.BOM_UTF8) if encoding == "utf-8-sig" else 0)  # the decoder counts after the BOM
        raise UsageError(f"{name}: starts like {encoding} text but byte {offset} is not valid {encoding}.") from None


def parse_csv_text(text: str, name: str = "<csv>", encoding: str = "utf-8", *, lazy: bool = False) -> CsvData:
    """Split CSV text into a header row and data rows, finding the delimiter (``lazy``: see ``read_csv``)."""
    text = text.lstrip("\ufeff")
    delimiter: str | None = None
    end = text.find("\n")
    first_line = text if end == -1 else text[:end]
    # Not .strip(): in "sep=\t" the tab is the delimiter named.
    hint = first_line.strip(" \r").strip('"')
    if hint.casefold().startswith("sep=") and len(hint) == 5:
        delimiter, text = hint[4], "" if end == -1 else text[end + 1 :]  # Excel's "sep=;" hint line
    if delimiter is None:
        delimiter = sniff_delimiter(text)
    newline = "\r\n" if "\r\n" in text[:65536] else "\n"
    records, stray, plain = _parse(text, delimiter, name, lazy)
    if not records or not any(cell.strip() for cell in records[0]):
        raise UsageError(f"{name}: the first line should be the header row, but it is blank.")
    headers = [h.strip() for h in records[0]]
    cut_short = len(records) > 1 and 0 < len(records[-1]) < len(headers) and not text.endswith(("\n", "\r"))
    return CsvData(headers, records[1:], encoding, delimiter, name, newline, stray, cut_short, text if plain else None)


def _parse(text: str, delimiter: str, name: str, lazy: bool = False) -> tuple[Sequence[list[str]], tuple[tuple[int, int], ...], bool]:
    """The records, the stray quotes read leniently, and whether the records are the text split at delimiters and line ends."""
    plain = _split_plain(text, delimiter, lazy)
    if plain is not None:
        return plain, (), True
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)), (), False
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            line = _unclosed_quote_line(text, delimiter)
            raise UsageError(f"{name}: a quoted cell starting on line {line} is never closed (a '\"' is missing).") from None
    # Stray quotes inside cells ("6" screen") are common in hand-edited files: read them leniently.
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)), _stray_quotes(text, delimiter), False
    except csv.Error as exc:  # pragma: no cover - the lenient reader only fails on absurd field sizes
        raise UsageError(f"{name}: not a readable CSV file ({exc}).") from None


_FIELD_LIMIT = csv.field_size_limit()


def _split_plain(text: str, delimiter: str, lazy: bool = False) -> Sequence[list[str]] | None:
    """The records of a CSV text without quotes, split at C speed; None when the csv module must read it.

    Without a '"' there is no quoting, so a record is a line and a field is what lies between
    delimiters: exactly what ``csv.reader`` returns (an empty line is an empty record), about 3x
    faster. Texts with a lone carriage return (a line end to the csv module), a NUL or a line
    longer than the csv module's field limit (both refused by it) are left to it. Line ends and line lengths are
    decided by memchr-speed searches, not by counting every character (5 ms less on a 4.5 MB file). ``lazy``: the
    lines, split when read.
    """
    if '"' in text or "\x00" in text:
        return None
    if "\r" in text:
        lines = text.split("\r\n")
        rest = "".join(lines)  # the text without its CRLFs: a carriage return or line feed in it is a lone one
        if "\r" in rest:
            return None  # a lone carriage return ends a record for the csv module
        if "\n" in rest:
            lines = text.replace("\r\n", "\n").split("\n")  # mixed line ends
        del rest
    else:
        lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the line end of the last record
    if lines and not _lines_within_limit(text) and max(map(len, lines)) > _FIELD_LIMIT:
        return None
    split = SplitLines(lines, delimiter)
    return split if lazy else split.records()


def _lines_within_limit(text: str) -> bool:
    """Whether every line of ``text`` is certainly shorter than the csv module's field limit, without measuring each.

    A line of ``2 * half`` characters or more spans a whole aligned piece of ``half`` characters holding no line feed;
    so if every such piece holds one (a C-speed search each, about 70 for a 4 MB file), every line is shorter. False
    means "not certain": the caller measures the lines (a text without line feeds at all, or a very long line).
    """
    half = _FIELD_LIMIT // 2
    return half > 0 and all(text.find("\n", start, start + half) != -1 for start in range(0, len(text) - half + 1, half))


class SplitLines(Sequence[list[str]]):
    """The records of a text without quotes (``_split_plain``), kept as its lines and split where read.

    ``check_csv`` checks 1,000 rows at a time: splitting each part just before it is checked keeps the part's cells
    in the processor's caches, where splitting all 50,000 rows first has them read back from memory. A slice is
    lazy too; iterating splits every line, once (the records are kept from then on). Until then a record read by its
    index is a new list each time: read-only, as ``check_csv`` reads them.
    """

    __slots__ = ("_delimiter", "_lines", "_records")

    def __init__(self, lines: list[str], delimiter: str) -> None:
        self._lines = lines
        self._delimiter = delimiter
        self._records: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self._lines)

    @overload
    def __getitem__(self, index: int) -> list[str]: ...

    @overload
    def __getitem__(self, index: slice) -> SplitLines: ...

    def __getitem__(self, index: int | slice) -> list[str] | SplitLines:
        if isinstance(index, slice):
            return SplitLines(self._lines[index], self._delimiter)
        if self._records is not None:
            return self._records[index]
        line = self._lines[index]
        return line.split(self._delimiter) if line else []

    def __iter__(self) -> Iterator[list[str]]:
        return iter(self.records())

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same records (a ``CsvData`` read lazily equals one read whole)."""
        if isinstance(other, SplitLines) and other._delimiter == self._delimiter and other._lines == self._lines:
            return True
        return isinstance(other, Sequence) and len(other) == len(self) and list(other) == self.records()

    __hash__ = None  # type: ignore[assignment]  # a sequence of lists is not hashable

    def __repr__(self) -> str:
        return f"SplitLines({len(self._lines)} lines, delimiter {self._delimiter!r})"

    def records(self) -> list[list[str]]:
        """Every record, split once (an empty line is an empty record, as ``csv.reader`` reads it)."""
        if self._records is None:
            lines, delimiter = self._lines, self._delimiter
            if "" in lines:
                self._records = [line.split(delimiter) if line else [] for line in lines]
            else:
                self._records = list(map(str.split, lines, repeat(delimiter)))
        return self._records

    def marked_cells(self, width: int) -> list[str] | None:
        """The cells of every record in one list, a marker cell (a NUL, which no line holds) after each record but the
        last, when every record has ``width`` cells (at least 2); else None. Column ``i`` is then ``cells[i::width + 1]``.

        One join and one split of the lines (what ``check_csv``'s parts take): no list per record, and no count per line
        to know the widths. The markers prove them: with ``n`` records, ``n * (width + 1) - 1`` cells whose every
        ``(width + 1)``th is a marker leave each record exactly ``width`` cells. 50,000 rows: about 34 -> 28 ms.
        """
        lines, delimiter = self._lines, self._delimiter
        if self._records is not None or width < 2 or not lines:  # width 1: an empty line would read as one blank cell
            return None
        cells = f"{delimiter}\x00{delimiter}".join(lines).split(delimiter)
        if len(cells) != len(lines) * (width + 1) - 1 or cells[width :: width + 1].count("\x00") != len(lines) - 1:
            return None
        return cells

    def widest(self) -> int:
        """The most cells a record has, without splitting any (0 for none)."""
        if self._records is not None:
            return max(map(len, self._records), default=0)
        return max(map(str.count, self._lines, repeat(self._delimiter)), default=-1) + 1


def _stray_quotes(text: str, delimiter: str) -> tuple[tuple[int, int], ...]:
    """(record number, 1-based field) of the cells where text follows a quoted cell's closing quote.

    The lenient reader glues that text on (``"a@example.com"x`` reads as ``a@example.comx``): a key
    could silently become another one, so ``check_csv`` reports each such cell.
    """
    found: list[tuple[int, int]] = []
    record = field = 1
    quoted = after_close = False
    at_start = True
    i, end = 0, len(text)
    while i < end:
        ch = text[i]
        if quoted:
            if ch == '"':
                if i + 1 < end and text[i + 1] == '"':
                    i += 1
                else:
                    quoted, after_close = False, True
        elif ch == delimiter:
            field, at_start, after_close = field + 1, True, False
        elif ch in "\r\n":
            if ch == "\r" and i + 1 < end and text[i + 1] == "\n":
                i += 1
            record, field, at_start, after_close = record + 1, 1, True, False
        elif ch == '"' and at_start:
            quoted, at_start = True, False
        else:
            if after_close:
                found.append((record, field))
                after_close = False
            at_start = False
        i += 1
    return tuple(found)


def _unclosed_quote_line(text: str, delimiter: str) -> int:
    """The line on which the record that the strict reader chokes on starts."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    try:
        while True:
            start = reader.line_num + 1
            next(reader)
    except (StopIteration, csv.Error):
        return start


def sniff_delimiter(text: str) -> str:
    """``,``, ``;`` or tab: the one that splits the header into the most cells and the next rows alike."""
    sample = _first_records(text)
    best = ","
    best_score: tuple[int, float, int] = (0, 0.0, 0)
    for delimiter in _DELIMITERS:
        try:
            records = list(csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter))
        except csv.Error:
            continue
        records = [r for r in records if r]
        if not records:
            continue
        width = len(records[0])
        body = records[1:-1] if len(records) > 2 else records[1:]  # the sample may cut the last record
        same = sum(1 for r in body if len(r) == width) / len(body) if body else 1.0
        score = (int(width > 1), same, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _first_records(text: str) -> str:
    """The start of the text: about the first records (a cut inside a quoted cell does no harm)."""
    end = 0
    for _ in range(_SNIFF_RECORDS):
        found = text.find("\n", end)
        if found == -1:
            return text
        end = found + 1
    return text[:end]


# --- checking ---------------------------------------------------------------------------------------


def dialect_of(data: CsvData, name: str | None) -> Dialect:
    """The dialect called ``name``, else the one the file's header row is recognised as (UsageError when none fits)."""
    return dialect_and_reason(data, name)[0]


def dialect_and_reason(data: CsvData, name: str | None, kind: Literal["csv", "scim"] | None = None) -> tuple[Dialect, str | None]:
    """``dialect_of``, plus why that dialect was chosen when another one also fits the header row (else None);
    ``kind`` limits the candidates (``csv`` for a platform's own export)."""
    _refuse_saved_users_sheet(data)
    if name is not None:
        return load_dialect(name), None
    found = recognise(data.headers, kind)
    if found.dialect is None:
        names = ", ".join(repr(n) for n in dialect_names())
        why = f" ({found.reason})" if found.reason else ""
        raise UsageError(f"{data.name}: cannot tell which platform this header row is for{why}; give --dialect (one of {names}).")
    return found.dialect, found.reason


_LAYOUT_HEADERS = ("Problems", "Sync status", "_row_id")


def _refuse_saved_users_sheet(data: CsvData) -> None:
    """A CSV saved from a rosterbook workbook's Users sheet is not a platform export: say so, with the way out."""
    heads = {h.strip() for h in data.headers if h}
    found = [h for h in _LAYOUT_HEADERS if h in heads]
    if "_row_id" in heads or len(found) >= 2:
        saved = (f"{data.name}: this is the Users sheet of a rosterbook workbook saved as CSV (it has the {', '.join(repr(h) for h in found)} "
                 "columns rosterbook adds): open the .xlsx workbook instead")
        raise UsageError(lambda w: f"{saved} ({w.check_file('BOOK.xlsx')}). For a CSV platform, upload the file Sync writes next to the workbook (BOOK-upload.csv).")


def check_csv(path: str | Path, dialect: str | None = None, *, progress: Callable[[int, int], None] | None = None,
              note: Callable[[str], None] | None = None) -> CheckReport:
    """Check a CSV export or upload file against a dialect (recognised from the header row when None).

    ``note(text)`` hears which dialect was chosen and why, when another one also fits the header row.
    """
    data = read_csv(path, lazy=True)
    chosen, reason = dialect_and_reason(data, dialect)
    if reason is not None and note is not None:
        note(f"{data.name}: {reason}.")
    plain = data.source is not None and plain_cells(data.source, data.delimiter)
    report, columns = check_cells_and_columns(chosen, data.headers, data.rows, sheet=data.name, progress=progress, plain=plain)
    problems = list(report.problems)
    problems.extend(cross_checks(columns))
    problems.extend(_overflowing_rows(data, columns.widths))
    problems.extend(_stray_quote_problems(data))
    if data.cut_short:
        problems.append(cut_short_problem(data))
    return CheckReport.from_problems(report.rows, problems)


def cut_short_problem(data: CsvData) -> Problem:
    """The error for a file that ends inside its last row."""
    number = len(data.rows) + 1
    cells = data.rows[-1]
    message = (
        f"the file ends in the middle of this row ({len(cells)} of {len(data.headers)} cells, no line end): it looks cut short "
        "(an interrupted download or copy), so users after it may be missing. Export or save the file again."
    )
    return Problem("error", data.name, cell_address(len(cells), number), number, "", cells[-1], "cut-short", message)


def _stray_quote_problems(data: CsvData) -> list[Problem]:
    """Cells read leniently because text follows their closing quote: the value read is not what was meant."""
    out = []
    for number, column in data.stray_quotes:
        cells = data.headers if number == 1 else (data.rows[number - 2] if number - 2 < len(data.rows) else [])
        value = cells[column - 1] if column - 1 < len(cells) else None
        header = data.headers[column - 1] if column - 1 < len(data.headers) else ""
        message = (
            f"text follows the closing quote of a quoted cell, so it was read as {quote(value)}. "
            'Inside a quoted cell write a quote as "" (or remove the quotes around the cell).'
        )
        out.append(Problem("error", data.name, cell_address(column, number), number, header, value, "stray-quote", message))
    return out


def _overflowing_rows(data: CsvData, widths: Collection[int] = ()) -> list[Problem]:
    """Rows with more cells than the header: usually a value whose delimiter lost its quotes. ``widths``: how many
    cells the rows have, when the cell checks counted them (``Columns.widths``)."""
    width = len(data.headers)
    rows = data.rows
    if not rows or (max(widths) if widths else rows.widest() if isinstance(rows, SplitLines) else max(map(len, rows))) <= width:
        return []
    shown = "a tab" if data.delimiter == "\t" else repr(data.delimiter)
    out = []
    for offset, cells in enumerate(data.rows):
        if len(cells) <= width:
            continue
        extra = [i for i in range(width, len(cells)) if cells[i].strip()]
        if not extra:
            continue
        number = offset + 2
        message = (
            f"this row has {len(cells)} cells but the header row has {width}: "
            f"a value containing {shown} may have lost its quotes, shifting the cells after it."
        )
        out.append(Problem("error", data.name, cell_address(extra[0] + 1, number), number, "", cells[extra[0]], "extra-cells", message))
    return out

