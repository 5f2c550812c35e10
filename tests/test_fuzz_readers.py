"""Fuzzing the readers (hypothesis): whatever bytes a CSV file or an .xlsx workbook holds, reading and
checking it either works, with problems carrying the documented codes, or raises the one error class
that case calls for (UsageError, exit 2, for a file that cannot be read as CSV; UsageError or DataError
for a broken workbook), never anything else. And a CSV file written in any delimiter, line end and
encoding the README lists is read back cell for cell.
"""

from __future__ import annotations

import csv
import io
import random
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from rosterbook.app import check_workbook, load, open_book
from rosterbook.core.dialects import dialect_names, load_dialect
from rosterbook.csvfile import check_csv, read_csv
from rosterbook.errors import DataError, DialectError, RosterbookError, UsageError
from rosterbook.workbook import SnapshotDamaged

BAD = Path(__file__).resolve().parent / "samples" / "bad"
BASE_BOOKS = {"scim": BAD / "book_bad_status_and_email.xlsx", "progression": BAD / "book_progression_bad_cells.xlsx"}
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BOOK_FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""Each workbook example reads a real .xlsx three ways (~0.3 s): fewer examples, same variety of damage."""


KNOWN_CODES = frozenset({
    "ambiguous-date", "blank-keeps", "conflict", "copied-row", "csv-escaped", "cut-short", "date-not-text", "duplicate-header",
    "duplicate-item", "duplicate-key", "duplicate-value", "escape-at-end", "extra-cells", "formula", "headerless-column", "inexact-value",
    "invalid-bool", "invalid-date", "invalid-email", "invalid-phone", "invalid-unicode", "invisible-character", "key-changed",
    "lookalike-key", "lost-leading-zeros", "mangled-number", "merged-cells", "missing-column", "missing-key", "missing-key-column",
    "misspelled-header", "not-allowed", "number-not-text", "pattern-mismatch", "reference-cycle", "required", "required-if-new",
    "requires-column", "self-reference", "separator-in-item", "sets-password", "special-use-domain", "splits-known-value", "stray-quote",
    "unescaped-separator", "unknown-column", "unknown-header", "unknown-reference", "unknown-row-id", "unknown-status", "unknown-value",
    "unrepresentable-item", "wrong-separator",
})
"""Every problem code the checks can give (the README promises stable kebab-case slugs): a new one is added here on purpose."""


def _refused(exc: RosterbookError, *expected: tuple[type[RosterbookError], int]) -> None:
    """The error is exactly one of the expected classes, with its exit code, and says something."""
    assert (type(exc), exc.exit_code) in expected, f"{type(exc).__name__} (exit {exc.exit_code}): {exc}"
    assert str(exc).strip() and "Traceback" not in str(exc)


def _problems_are_documented(problems: object) -> None:
    for problem in problems:  # type: ignore[attr-defined]
        assert problem.code in KNOWN_CODES, (problem.code, problem.render())
        assert problem.render().startswith(problem.sheet)
        assert problem.row >= 0


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """One folder for the module (hypothesis runs many examples per test; function fixtures would be shared anyway)."""
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


# --- CSV ---------------------------------------------------------------------------------------

_HEADERS = sorted({name for d in dialect_names() for c in load_dialect(d).columns for name in (c.name, *c.aliases)})
_CELLS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(['"', '""', '"x"y', "a,b", "a;b", "a\tb", "line\nbreak", "\r", "=1+1", "+cmd", "-2", "@SUM(1)", "\ufeff",
                     "Active", "actve", "ann@example.com", "ann@@example", "000123", "1.2E+05", "03/04/2021", "2024-02-30",
                     "Main\\|HQ", "x\\", "a|b", "Admin; Learner", "Admin,Learner", " ", "\x00", "\u202e", "😀", "ß", "İ"]),
)
_ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16", "latin-1"])


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """CSV-like bytes: a header of (mostly) real column names, rows of awkward cells, any delimiter,
    line end, quoting and encoding, sometimes cut short or with a few bytes flipped."""
    headers = draw(st.lists(st.one_of(st.sampled_from(_HEADERS), st.text(max_size=8)), min_size=1, max_size=12))
    rows = draw(st.lists(st.lists(_CELLS, max_size=len(headers) + 2), max_size=12))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    newline = draw(st.sampled_from(["\r\n", "\n", "\r"]))
    quote_all = draw(st.booleans())

    def cell(text: str) -> str:
        if quote_all or any(ch in text for ch in (delimiter, '"', "\n", "\r")):
            return '"' + text.replace('"', draw(st.sampled_from(['""', '"']))) + '"'
        return text

    text = newline.join(delimiter.join(cell(c) for c in line) for line in [headers, *rows]) + draw(st.sampled_from(["", newline]))
    if draw(st.booleans()):
        text = "sep=" + delimiter + newline + text
    data = text.encode(draw(_ENCODINGS), errors="replace")
    if data and draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    if data and draw(st.booleans()):
        noise = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            noise[draw(st.integers(0, len(noise) - 1))] = draw(st.integers(0, 255))
        data = bytes(noise)
    return data


def _check_csv_bytes(folder: Path, data: bytes, dialect: str | None) -> None:
    path = folder / "fuzz.csv"
    path.write_bytes(data)
    try:
        report = check_csv(path, dialect)
    except RosterbookError as exc:
        # A file that cannot be read as CSV is a usage error (exit 2) naming the file; nothing else may escape.
        _refused(exc, (UsageError, 2))
        assert str(exc).startswith("fuzz.csv"), str(exc)
        return
    _problems_are_documented(report.problems)


@FUZZ
@given(data=csv_files(), dialect=st.one_of(st.none(), st.sampled_from(dialect_names())))
def test_csv_reader_and_checks_never_crash_on_csv_like_files(scratch: Path, data: bytes, dialect: str | None) -> None:
    _check_csv_bytes(scratch, data, dialect)


@FUZZ
@given(data=st.binary(max_size=3000))
def test_csv_reader_never_crashes_on_arbitrary_bytes(scratch: Path, data: bytes) -> None:
    _check_csv_bytes(scratch, data, None)
    _check_csv_bytes(scratch, data, "jostle")


_COLUMN_SETS = [list(load_dialect(d).column_names) for d in dialect_names()]
_ROUND_TRIP_ENCODINGS = ("utf-8", "utf-8-sig", "cp1252", "utf-16")
_PUNCTUATION = st.sampled_from([",", ";", "\t", '"', '""', "\r\n", "\n", "\r", " ", "sep=;", "\ufeff", "=1+1", "'", "|", "\\|"])


@st.composite
def written_csv(draw: st.DrawFn) -> tuple[bytes, list[str], list[list[str]], str, str]:
    """A CSV file as a platform or Excel writes it: a real header row, rows of any text (delimiters, quotes and
    line breaks inside cells), quoted where needed, in any delimiter, line end and encoding the README lists."""
    encoding = draw(st.sampled_from(_ROUND_TRIP_ENCODINGS))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    headers = draw(st.sampled_from(_COLUMN_SETS))
    # Text each encoding can hold; NUL and lone surrogates are not text (NUL marks a binary file).
    alphabet = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00",
                             max_codepoint=None if encoding != "cp1252" else 0x2122)
    cell = st.one_of(st.text(alphabet, max_size=12), _PUNCTUATION, st.lists(_PUNCTUATION, max_size=3).map("".join))
    if encoding == "cp1252":
        cell = cell.filter(_fits_cp1252)
    rows = draw(st.lists(st.lists(cell, min_size=len(headers), max_size=len(headers)), max_size=8))
    newline = draw(st.sampled_from(["\r\n", "\n", "\r"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    lines = []
    for record in [headers, *rows]:
        # Each record on its own, quoted as for CRLF (any cell holding a CR or LF is quoted, as Excel does), then
        # joined by the chosen line end: csv.writer leaves a LF unquoted when the line end is a lone CR.
        buffer = io.StringIO(newline="")
        csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n", quoting=quoting).writerow(record)
        lines.append(buffer.getvalue().removesuffix("\r\n"))
    text = newline.join(lines) + newline
    if draw(st.booleans()):
        text = f"sep={delimiter}\r\n" + text  # Excel's hint line
    data = text.encode(encoding)
    if encoding == "cp1252":
        # Windows-1252 bytes that also decode as UTF-8 ('Ã©' is the UTF-8 of 'é') cannot be told apart from
        # UTF-8; the reader takes UTF-8, as documented. Such files are left out, not read back differently.
        assume(_not_utf8(data))
    return data, headers, rows, delimiter, encoding


def _fits_cp1252(text: str) -> bool:
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _not_utf8(data: bytes) -> bool:
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@FUZZ
@given(case=written_csv())
def test_every_cell_is_read_back_exactly_in_every_delimiter_and_encoding(scratch: Path, case: tuple[bytes, list[str], list[list[str]], str, str]) -> None:
    data, headers, rows, delimiter, encoding = case
    path = scratch / "written.csv"
    path.write_bytes(data)
    read = read_csv(path)
    # Plain ASCII is the same bytes in UTF-8 and Windows-1252: the reader names it UTF-8.
    assert (read.delimiter, read.encoding) == (delimiter, "utf-8" if encoding == "cp1252" and data.isascii() else encoding)
    assert read.headers == headers
    assert read.rows == rows  # cell for cell, every character


# --- workbooks -------------------------------------------------------------------------------------


_BOOK_ERRORS = ((UsageError, 2), (DialectError, 2), (DataError, 1), (SnapshotDamaged, 1))
"""A broken workbook: unreadable or naming an unknown dialect (usage, exit 2), or a layout or snapshot that does not hold (data, exit 1)."""


def _read(path: Path) -> None:
    """Everything the CLI does to read a workbook: the fast reader, openpyxl, the layout, the checks."""
    for write in (False, True):
        try:
            report = check_workbook(path, write=write)
        except RosterbookError as exc:
            _refused(exc, *_BOOK_ERRORS)
            continue
        _problems_are_documented(report.problems)
    try:
        load(open_book(path))
    except RosterbookError as exc:
        _refused(exc, *_BOOK_ERRORS)


_MEMBERS = ("xl/workbook.xml", "xl/worksheets/sheet1.xml", "xl/sharedStrings.xml", "xl/styles.xml", "[Content_Types].xml",
            "xl/_rels/workbook.xml.rels", "xl/worksheets/sheet6.xml", "xl/tables/table1.xml")
_FRAGMENTS = [b"<", b">", b"</row>", b'<c r="XFD1048576" t="s"><v>99999</v></c>', b'<c r="A1" t="n"><v>NaN</v></c>',
              b'<c r="B2" t="b"><v>7</v></c>', b'<c r="C3" t="d"><v>not-a-date</v></c>', b'<c r="D4" t="e"><v>#REF!</v></c>',
              b'<c r="E5"><f>SUM(1,2)</f><v>3</v></c>', b"&amp;", b"&bogus;", b"\x00", b"\xff\xfe", b'<row r="0">', b'<row r="-5">',
              b'<sheet name="Users" sheetId="9" r:id="rId99"/>', b'<dimension ref="A1:XFD1048576"/>', b"<![CDATA[", b'state="veryHidden"']


@st.composite
def broken_workbooks(draw: st.DrawFn) -> tuple[str, list[tuple[str, str, int, bytes]]]:
    """A base workbook and XML-level edits: (member, kind, position in [0, 1000), bytes)."""
    base = draw(st.sampled_from(sorted(BASE_BOOKS)))
    edits = draw(st.lists(
        st.tuples(st.sampled_from(_MEMBERS), st.sampled_from(["insert", "replace", "truncate", "delete", "flip"]),
                  st.integers(0, 999), st.one_of(st.sampled_from(_FRAGMENTS), st.binary(min_size=1, max_size=8))),
        min_size=1, max_size=3))
    return base, edits


def _apply(source: Path, target: Path, edits: list[tuple[str, str, int, bytes]]) -> None:
    with zipfile.ZipFile(source) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    for member, kind, position, payload in edits:
        if member not in parts:
            continue
        data = parts[member]
        at = position * len(data) // 1000
        if kind == "insert":
            data = data[:at] + payload + data[at:]
        elif kind == "replace":
            data = data[:at] + payload + data[at + len(payload):]
        elif kind == "truncate":
            data = data[:at]
        elif kind == "delete":
            parts.pop(member)
            continue
        else:
            data = data[:at] + bytes([data[at] ^ payload[0]]) + data[at + 1:] if at < len(data) else data
        parts[member] = data
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    target.write_bytes(buffer.getvalue())


@BOOK_FUZZ
@given(case=broken_workbooks())
def test_workbook_readers_never_crash_on_broken_xml(scratch: Path, case: tuple[str, list[tuple[str, str, int, bytes]]]) -> None:
    base, edits = case
    path = scratch / "fuzz.xlsx"
    _apply(BASE_BOOKS[base], path, edits)
    _read(path)


_VALUES = st.one_of(
    st.none(), st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20), st.integers(-10**18, 10**18), st.floats(allow_nan=True, allow_infinity=False), st.booleans(),
    st.datetimes(), st.dates(), st.times(),
    st.sampled_from(["=1+1", "=A1", "=HYPERLINK(\"x\")", "@x", "+1", "-", "{}", "[]", '{"Username": null}', "r1", "r999", "Active",
                     "TRUE", "maybe", "150%", "-1", "scim", "progression", "workday", "http://x", "https://u:p@x", "#REF!"]),
)


@st.composite
def edited_workbooks(draw: st.DrawFn) -> tuple[str, list[tuple[str, int, int, object]], list[tuple[str, str]]]:
    """A base workbook, cell edits on any sheet (hidden ones too), and sheet-level edits."""
    base = draw(st.sampled_from(sorted(BASE_BOOKS)))
    sheets = ["Users", "Settings", "_snapshot", "Lists", "Sync log", "Preview", "_dialect"]
    cells = draw(st.lists(st.tuples(st.sampled_from(sheets), st.integers(1, 16), st.integers(1, 24), _VALUES), max_size=12))
    sheet_edits = draw(st.lists(st.tuples(st.sampled_from(sheets), st.sampled_from(["delete", "hide", "rename", "merge", "clear"])), max_size=2))
    return base, cells, sheet_edits


@BOOK_FUZZ
@given(case=edited_workbooks())
def test_workbook_readers_never_crash_on_edited_cells_and_sheets(
    scratch: Path, case: tuple[str, list[tuple[str, int, int, object]], list[tuple[str, str]]]
) -> None:
    base, cells, sheet_edits = case
    path = scratch / "edited.xlsx"
    shutil.copyfile(BASE_BOOKS[base], path)
    wb = load_workbook(path)
    for sheet, row, column, value in cells:
        if sheet in wb.sheetnames:
            cell = wb[sheet].cell(row, column)
            if type(cell).__name__ != "MergedCell":
                cell.value = value
    for sheet, kind in sheet_edits:
        if sheet not in wb.sheetnames:
            continue
        ws = wb[sheet]
        if kind == "delete" and len(wb.sheetnames) > 1:
            del wb[sheet]
        elif kind == "hide":
            ws.sheet_state = random.Random(len(cells)).choice(["hidden", "veryHidden", "visible"])
        elif kind == "rename":
            ws.title = sheet + " (2)"
        elif kind == "merge":
            ws.merge_cells("A2:C3")
        else:
            ws.delete_rows(1, ws.max_row)
    if not any(wb[s].sheet_state == "visible" for s in wb.sheetnames):
        wb[wb.sheetnames[0]].sheet_state = "visible"  # openpyxl refuses to save a book with no visible sheet
    wb.save(path)
    _read(path)


def test_the_fuzzed_bases_are_real_workbooks() -> None:
    """The bases are complete exported workbooks (so the fuzzing starts from something the readers accept)."""
    for path in BASE_BOOKS.values():
        loaded = load(open_book(path))
        assert loaded.table.rows
