"""Reading CSV files as real exports write them: encodings, BOMs, delimiters, line ends, quoted line breaks."""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rosterbook.csvfile import SplitLines, _split_plain, check_csv, parse_csv_text, read_csv, sniff_delimiter
from rosterbook.errors import UsageError

ROWS = [["Zoë", "Lefèvre", "zoe@example.com"], ["José", "García", "jose@example.com"]]
HEADERS = ["First Name", "Last Name", "email"]


def _write(path: Path, text: str, encoding: str) -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("cp1252", "cp1252"), ("utf-16", "utf-16")],
)
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_encodings_delimiters_and_line_ends(tmp_path: Path, encoding: str, expected: str, delimiter: str, newline: str) -> None:
    text = newline.join(delimiter.join(r) for r in [HEADERS, *ROWS]) + newline
    data = read_csv(_write(tmp_path / "users.csv", text, encoding))
    assert data.headers == HEADERS
    assert data.rows == ROWS
    assert (data.encoding, data.delimiter, data.newline, data.name) == (expected, delimiter, newline, "users.csv")


def test_quoted_cells_keep_line_breaks_delimiters_and_quotes(tmp_path: Path) -> None:
    text = 'Username,Job Title,Org\r\nemily.wong,"Communications Manager\r\nInternal Comms","Sales, EMEA"\r\ntom,"6"" screen",IT\r\n'
    data = read_csv(_write(tmp_path / "j.csv", text, "utf-8"))
    assert data.rows == [["emily.wong", "Communications Manager\r\nInternal Comms", "Sales, EMEA"], ["tom", '6" screen', "IT"]]


def test_semicolons_inside_a_comma_file_do_not_fool_the_sniffer() -> None:
    text = 'Email,User groups,Roles\na@example.com,marketing; operations;,Admin; Learner\nb@example.com,sales,Learner\n'
    assert sniff_delimiter(text) == ","
    assert parse_csv_text(text).rows[0] == ["a@example.com", "marketing; operations;", "Admin; Learner"]


@pytest.mark.parametrize("delimiter", [";", ",", "\t"], ids=["semicolon", "comma", "tab"])
@pytest.mark.parametrize("hint", ["sep={}\n", "sep={}\r\n", '"sep={}"\r\n'], ids=["lf", "crlf", "quoted"])
def test_excel_sep_hint_line(hint: str, delimiter: str) -> None:
    data = parse_csv_text(hint.format(delimiter) + f"email{delimiter}account_active\na@example.com{delimiter}Active\n")
    assert (data.delimiter, data.headers, data.rows) == (delimiter, ["email", "account_active"], [["a@example.com", "Active"]])


def test_single_column_file() -> None:
    data = parse_csv_text("Username\nann\nbob\n")
    assert (data.delimiter, data.headers, data.rows) == (",", ["Username"], [["ann"], ["bob"]])


def test_blank_lines_keep_row_numbers_as_excel_shows_them(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.csv", "First Name,Last Name,email,account_active\r\nAnn,Lee,ann@example.com,Active\r\n\r\nBob,Ray,bob@example,Active\r\n", "utf-8")
    report = check_csv(path, "progression")
    assert report.rows == 2
    assert [p.cell for p in report.problems] == ["C4"]


def test_stray_quotes_are_read_leniently() -> None:
    assert parse_csv_text('a,b\n"x"y,z\n').rows == [["xy", "z"]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"^users\.csv: the file is empty\.$"),
        (b"  \r\n ", r"^users\.csv: the file is empty\.$"),
        (b"\x00\x01\x02binary\x00", r"^users\.csv: holds binary data, not CSV text\.$"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", r"^users\.csv: is an Excel 97-2003 workbook \(\.xls\), which rosterbook cannot read: open it in Excel and save it as Excel Workbook \(\.xlsx\)\.$"),
        (b'email,name\r\na@example.com,"Ann\r\nb@example.com,Bob\r\n', r"^users\.csv: a quoted cell starting on line 2 is never closed \(a '\"' is missing\)\.$"),
        (b"\r\n\r\nemail\r\n", r"^users\.csv: the first line should be the header row, but it is blank\.$"),
        (codecs.BOM_UTF8 + b"\xff\xfe bad", r"^users\.csv: starts like utf-8-sig text but byte 3 is not valid utf-8-sig\.$"),
    ],
)
def test_unreadable_files_are_usage_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "users.csv"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message):
        read_csv(path)


def test_a_workbook_is_not_a_csv(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(UsageError, match=r"^users\.csv: is an Excel workbook \(\.xlsx\), not a CSV file: give it an \.xlsx name and check it as a workbook \(rosterbook check users\.xlsx\)\.$"):
        read_csv(path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"nope\.csv: no such file\.$"):
        read_csv(tmp_path / "nope.csv")
    with pytest.raises(UsageError, match=r": is a folder, not a CSV file\.$"):
        read_csv(tmp_path)


def test_undefined_cp1252_bytes_fall_back_to_latin1(tmp_path: Path) -> None:
    (tmp_path / "y.csv").write_bytes(b"Username\nab\x81c\n")
    data = read_csv(tmp_path / "y.csv")
    assert (data.encoding, data.rows) == ("latin-1", [["ab\x81c"]])


# --- the sample variants read alike -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "original", "encoding", "delimiter", "newline"),
    [
        ("progression_export_excel_semicolon.csv", "progression_export.csv", "utf-8-sig", ";", "\r\n"),
        ("edapp_export_cp1252.csv", "edapp_export.csv", "cp1252", ",", "\r\n"),
        ("incenteev_users_semicolon_cp1252.csv", "incenteev_users.csv", "cp1252", ";", "\n"),
        ("jostle_extract_bom_lf.csv", "jostle_extract.csv", "utf-8-sig", ",", "\n"),
    ],
)
def test_sample_variants_read_like_the_original(samples: Path, variant: str, original: str, encoding: str, delimiter: str, newline: str) -> None:
    a, b = read_csv(samples / variant), read_csv(samples / original)
    assert (a.encoding, a.delimiter, a.newline) == (encoding, delimiter, newline)
    assert b.encoding == "utf-8"
    assert a.headers == b.headers
    assert [[cell.replace("\r\n", "\n") for cell in row] for row in a.rows] == [[cell.replace("\r\n", "\n") for cell in row] for row in b.rows]


def test_the_jostle_sample_has_a_line_break_inside_a_cell(samples: Path) -> None:
    rows = read_csv(samples / "jostle_extract.csv").rows
    assert rows[6][4] == "Communications Manager\nInternal Comms"


# --- check_csv ------------------------------------------------------------------------------------------------


def test_unrecognised_header_row_is_a_usage_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "other.csv", "Name,Shoe size\nAnn,38\n", "utf-8")
    with pytest.raises(UsageError, match=r"^other\.csv: cannot tell which platform this header row is for; give --dialect \(one of 'edapp', 'incenteev', 'jostle', 'progression', 'scim'\)\.$"):
        check_csv(path)


def test_the_dialect_named_wins_over_recognition(samples: Path) -> None:
    report = check_csv(samples / "progression_export.csv", "incenteev")
    assert {p.code for p in report.problems} >= {"unknown-header", "missing-column"}
    assert report.ok is False


@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "quoted"])
def test_one_overflowing_row_in_a_later_part_of_a_big_file(tmp_path: Path, quoted: bool) -> None:
    # The cell checks count each part's row widths (1,000 rows a part) and the overflow check reads the widest of
    # them: one row of 2,500 with a cell too many, in the third part, is still found, in a plain file and a quoted one.
    rows = [f"Ann{i},Lee,ann{i}@example.com,Active" for i in range(2_500)]
    rows[2_100] = "Bob,Ray,Jr.,bob@example.com,Active"
    if quoted:
        rows[0] = '"Ann0",Lee,ann0@example.com,Active'
    path = _write(tmp_path / "p.csv", "First Name,Last Name,email,account_active\n" + "\n".join(rows) + "\n", "utf-8")
    report = check_csv(path, "progression")
    assert [(p.cell, p.code) for p in report.problems if p.code == "extra-cells"] == [("E2102", "extra-cells")]


def test_a_row_with_more_cells_than_headers(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.csv", "First Name,Last Name,email,account_active\nAnn,Lee,ann@example.com,Active,\nBob,Ray,Jr.,bob@example.com,Active\n", "utf-8")
    report = check_csv(path, "progression")
    assert [(p.cell, p.code) for p in report.problems] == [("C3", "invalid-email"), ("D3", "unknown-status"), ("E3", "extra-cells")]
    assert report.problems[-1].render() == (
        "p.csv!E3: this row has 5 cells but the header row has 4: a value containing ',' may have lost its quotes, shifting the cells after it."
    )


# --- the split fast path reads what the csv module reads ------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(',;\t\r\n "xé\x00\x0b\u2028')), max_size=40), st.sampled_from([",", ";", "\t"]))
def test_the_split_fast_path_reads_what_the_csv_module_reads(text: str, delimiter: str) -> None:
    plain = _split_plain(text, delimiter)
    if plain is not None:
        assert plain == list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    else:
        assert '"' in text or "\x00" in text or text.count("\r") != text.count("\r\n")


def test_a_line_beyond_the_csv_modules_field_limit_is_left_to_it() -> None:
    assert _split_plain("a," + "x" * (csv.field_size_limit() + 1) + "\n", ",") is None
    assert _split_plain("a,b\r\nc,d\r\n\r\n", ",") == [["a", "b"], ["c", "d"], []]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["", "a", "bé", " c"]), max_size=5), max_size=8), st.integers(1, 5))
def test_marked_cells_are_the_records_cells_exactly_when_every_record_is_as_wide(records: list[list[str]], width: int) -> None:
    # The lines of a plain file; a record of one empty cell is an empty line, read as the empty record.
    lines = [",".join(r) for r in records]
    split = SplitLines(lines, ",")
    expected = [line.split(",") if line else [] for line in lines]
    marked = split.marked_cells(width)
    if marked is None:
        assert width < 2 or not lines or any(len(r) != width for r in expected)
    else:
        assert all(len(r) == width for r in expected)
        assert [marked[i :: width + 1] for i in range(width)] == [[r[i] for r in expected] for i in range(width)]
        assert marked[width :: width + 1] == ["\x00"] * (len(lines) - 1)


def test_marked_cells_see_a_short_row_and_a_long_one_that_make_up_the_count() -> None:
    split = SplitLines(["a,b,c", "d,e", "f,g,h,i", "j,k,l"], ",")
    assert split.marked_cells(3) is None  # 12 cells for 4 rows of 3, but not 3 in each
    assert SplitLines(["a,b,c", "d,e,f"], ",").marked_cells(3) == ["a", "b", "c", "\x00", "d", "e", "f"]
    assert SplitLines(["a,b", ""], ",").marked_cells(2) is None  # an empty line is an empty record
    whole = SplitLines(["a,b", "c,d"], ",")
    assert list(whole) == [["a", "b"], ["c", "d"]] and whole.marked_cells(2) is None  # already split: the records serve


@pytest.mark.parametrize("length", [65_535, 65_536, 65_537, 131_071, 131_072, 131_073, 200_000])
@pytest.mark.parametrize("at", [0, 1, 70_000, 131_072])
def test_the_line_length_guard_is_exact_whatever_piece_the_long_line_falls_in(length: int, at: int) -> None:
    # Many short lines, with one long line starting ``at`` characters in: the pieces searched for a line feed
    # (half the field limit each) fall anywhere across it. The csv module takes a line up to its limit.
    limit = csv.field_size_limit()
    short = "a,b\n" * (at // 4)
    text = short + "c," + "x" * (length - 2) + "\n" + "d,e\n" * 40_000
    got = _split_plain(text, ",")
    if length > limit:
        assert got is None
    else:
        assert got is not None and len(got) == at // 4 + 40_001 and max(map(len, text.split("\n"))) == length
