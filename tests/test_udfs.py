"""The Excel cell functions, called as plain Python with the value shapes Excel passes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from addin import udfs
from addin.sheet import CallerContext
from rosterbook import workbook as wbk
from rosterbook.core.settings import Settings
from rosterbook.xlsx import OpenpyxlBook

JOSTLE = ["Username", "First Name", "Last Name", "Work Email", "Location", "Employee ID", "Start Date"]
PROGRESSION = ["First Name", "Last Name", "email", "position", "team", "manager", "account_active"]


# --- shapes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a", ["a"]),
        (None, [None]),
        (3.0, [3.0]),
        (["a", None, 2.0], ["a", None, 2.0]),
        (("a", "b"), ["a", "b"]),
        ([["a", None, 2.0]], ["a", None, 2.0]),
        ([["a"], ["b"]], ["a", "b"]),
    ],
)
def test_as_row_accepts_every_shape_excel_passes(value: object, expected: list[object]) -> None:
    assert udfs.as_row(value) == expected


def test_as_row_refuses_a_block() -> None:
    with pytest.raises(ValueError, match="expected one row of cells, got 2 rows"):
        udfs.as_row([["a", "b"], ["c", "d"]])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a", [["a"]]),
        (["h1", "h2"], [["h1", "h2"]]),
        ([["h1", "h2"], ["a", None]], [["h1", "h2"], ["a", None]]),
    ],
)
def test_as_table_accepts_every_shape_excel_passes(value: object, expected: list[list[object]]) -> None:
    assert udfs.as_table(value) == expected


# --- per-row check ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (["jdoe", "Jane", "Doe", "jane@example.com", "Main", "00042", "2024-01-02"], "OK"),
        # A 1-row 2-D range is the same row.
        ([["jdoe", "Jane", "Doe", "jane@example.com", "Main", "00042", "2024-01-02"]], "OK"),
        # Blanks come as None: blank keeps the value on Jostle; a new user would need a name.
        (
            ["jdoe", None, None, None, None, None, None],
            "Users!B2 First Name: blank keeps an existing user's value, but a new user needs a value. (warning)\n"
            "Users!C2 Last Name: blank keeps an existing user's value, but a new user needs a value. (warning)",
        ),
        ([None, "Jane", "Doe", "jane@example.com", None, None, None], "Users!A2 Username: a value is required."),
        (
            ["jdoe", "Jane", "Doe", "jane@exa mple", None, None, None],
            "Users!D2 Work Email: 'jane@exa mple' is not a valid email address: The part after the @-sign contains invalid characters: SPACE.",
        ),
        # Excel hands numbers over as floats: an ID typed as a number lost its leading zeros.
        (
            ["jdoe", "Jane", "Doe", None, None, 42.0, None],
            "Users!F2 Employee ID: '42' was stored as a number, so leading zeros may have been lost. Format the column as Text and check the ID. (warning)",
        ),
        (
            ["jdoe", "Jane", "Doe", None, "Main|HQ", None, None],
            "Users!E2 Location: 'Main|HQ' will be split into 'Main', 'HQ'; if it is meant as one name, write 'Main\\|HQ'. Did you mean 'Main\\|HQ'? (warning)",
        ),
    ],
)
def test_check_row(row: list[object], expected: str) -> None:
    assert udfs.ROSTERBOOK_CHECK(row, JOSTLE, "jostle") == expected


def test_check_row_joins_several_problems_one_per_line() -> None:
    got = udfs.ROSTERBOOK_CHECK(["Jane", "Doe", "not-an-email", None, None, None, "actve"], PROGRESSION, "progression")
    assert got.splitlines() == [
        "Users!C2 email: 'not-an-email' is not a valid email address: An email address must have an @-sign.",
        "Users!G2 account_active: 'actve' is not one of 'Active', 'Pending', 'Archived'. Did you mean 'Active'?",
    ]


def test_check_row_headers_as_a_2d_header_range() -> None:
    assert udfs.ROSTERBOOK_CHECK([["jdoe", "Jane"]], [JOSTLE[:2]], "JOSTLE") == "OK"


def test_check_row_without_dialect_or_workbook_says_what_to_pass() -> None:
    assert udfs.ROSTERBOOK_CHECK(["jdoe"], ["Username"]) == (
        'rosterbook: no dialect: pass one, e.g. =ROSTERBOOK_CHECK(A2:H2, , "jostle"), or call from a rosterbook workbook.'
    )


def test_unknown_dialect_is_a_message_not_a_traceback() -> None:
    got = udfs.ROSTERBOOK_CHECK(["x"], ["Username"], "nosuch")
    assert got.startswith("rosterbook: ") and "nosuch" in got


# --- whole table in one call -------------------------------------------------------------------------------


def test_check_table_returns_one_message_per_data_row_duplicates_included() -> None:
    table = [
        JOSTLE,
        ["jdoe", "Jane", "Doe", "jane@example.com", "Main", "001", "2024-01-02"],
        ["JDOE", "John", "Doe", "john@example.com", None, "002", None],
        ["asmith", "Al", "Smith", None, None, 3.0, dt.datetime(2024, 3, 1)],
        [None, None, None, None, None, None, None],
        [None, None, None, None, None, None, None],
    ]
    got = udfs.ROSTERBOOK_CHECK_TABLE(table, "jostle")
    assert len(got) == 5 and all(len(r) == 1 for r in got)
    assert got[0] == ["OK"]
    assert got[1] == ["Users!A3 Username: 'JDOE' is already the Username of row 2 (A2); each user can appear only once."]
    assert got[2][0].startswith("Users!F4 Employee ID: '3' was stored as a number")
    # Trailing blank rows of the selected range get a blank answer, not "OK".
    assert got[3:] == [[""], [""]]


def test_check_table_with_only_a_header_row() -> None:
    assert udfs.ROSTERBOOK_CHECK_TABLE([JOSTLE], "jostle") == [["rosterbook: no data rows below the header row."]]
    assert udfs.ROSTERBOOK_CHECK_TABLE(JOSTLE, "jostle") == [["rosterbook: no data rows below the header row."]]


def test_check_table_agrees_with_row_by_row_checks() -> None:
    rows = [[f"user{i}", "Ann", "Lee", f"u{i}@example.com", "Main|HQ" if i % 3 == 0 else "Main", f"{i:04d}", None] for i in range(30)]
    together = udfs.ROSTERBOOK_CHECK_TABLE([JOSTLE, *rows], "jostle")
    one_by_one = [udfs.ROSTERBOOK_CHECK(row, JOSTLE, "jostle") for row in rows]
    # Row by row, every row is "row 2"; the table numbers them 2, 3, ...
    assert [r[0] for r in together] == [text.replace("Users!E2 ", f"Users!E{n} ") for n, text in enumerate(one_by_one, start=2)]
    assert sum(1 for r in together if r[0] != "OK") == 10


# --- per-value functions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "dialect", "expected"),
    [
        ("Active", "progression", "OK"),
        ("actve", "progression", "account_active: 'actve' is not one of 'Active', 'Pending', 'Archived'. Did you mean 'Active'?"),
        ("active", "progression", "account_active: 'active' is not one of 'Active', 'Pending', 'Archived': write the word exactly, without symbols or additions. Did you mean 'Active'?"),
        ([["Pending"]], "progression", "OK"),
        (1.0, "progression", "account_active: '1' is not one of 'Active', 'Pending', 'Archived'."),
        ("Active", "jostle", "rosterbook: the jostle dialect has no status column."),
    ],
)
def test_status(value: object, dialect: str, expected: str) -> None:
    assert udfs.ROSTERBOOK_STATUS(value, dialect) == expected


@pytest.mark.parametrize(
    ("value", "column", "dialect", "expected"),
    [
        ("Main | HQ", "Location", "jostle", "OK"),
        ("Main\\|HQ", "location", "jostle", "OK"),
        (None, "Location", "jostle", "OK"),
        ("Main|HQ", "Location", "jostle", "Location: 'Main|HQ' will be split into 'Main', 'HQ'; if it is meant as one name, write 'Main\\|HQ'. Did you mean 'Main\\|HQ'? (warning)"),
        ("Admin; Learner", "Roles", "edapp", "OK"),
        ("Main", "Username", "jostle", "rosterbook: 'Username' is not a list column of the jostle dialect."),
        ("Main", "Office", "jostle", "rosterbook: 'Office' is not a jostle column; expected one of 'Username', 'First Name', 'Last Name', 'Work Email', 'Job Title', 'Location', 'Org', 'Manager', 'Work Phone', 'Employee ID', 'Start Date'."),
    ],
)
def test_list(value: object, column: str, dialect: str, expected: str) -> None:
    assert udfs.ROSTERBOOK_LIST(value, column, dialect) == expected


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("Main|HQ", "Main\\|HQ"),
        ("Main", "Main"),
        ("a|b|c", "a\\|b\\|c"),
        (None, ""),
        (12.0, "12"),
        ("Main\\", "rosterbook: 'Main\\\\' ends with '\\\\', which would escape the separator '|'."),
    ],
)
def test_escape(item: object, expected: str) -> None:
    assert udfs.ROSTERBOOK_ESCAPE(item) == expected


# --- the dialect and headers from the calling workbook -------------------------------------------------------


@pytest.fixture
def jostle_book(tmp_path: Path) -> OpenpyxlBook:
    path = tmp_path / "jostle.xlsx"
    book = OpenpyxlBook.new(path)
    wbk.write_settings(book, Settings(dialect="jostle"))
    book.ensure_sheet(wbk.USERS)
    book.write_values(wbk.USERS, 1, 1, [JOSTLE])
    book.save()
    return OpenpyxlBook(path)  # read back from the file


def test_dialect_and_headers_come_from_the_callers_workbook(jostle_book: OpenpyxlBook) -> None:
    caller = CallerContext(jostle_book, wbk.USERS, 7)
    assert udfs.ROSTERBOOK_CHECK(["jdoe", "Jane", "Doe", "jane@example.com"], caller=caller) == "OK"
    assert udfs.ROSTERBOOK_CHECK([None, "Jane", "Doe"], caller=caller) == "Users!A7 Username: a value is required."
    assert udfs.ROSTERBOOK_LIST("Main|HQ", "Location", caller=caller).startswith("Location: 'Main|HQ' will be split")
    assert udfs.ROSTERBOOK_CHECK_TABLE([JOSTLE[:1], ["a"], ["a"]], caller=caller) == [
        ["OK"],
        ["Users!A3 Username: 'a' is already the Username of row 2 (A2); each user can appear only once."],
    ]


def test_explicit_dialect_wins_over_the_workbooks(jostle_book: OpenpyxlBook) -> None:
    caller = CallerContext(jostle_book, wbk.USERS, 2)
    assert udfs.ROSTERBOOK_STATUS("Active", "progression", caller) == "OK"
    assert udfs.ROSTERBOOK_STATUS("Active", None, caller) == "rosterbook: the jostle dialect has no status column."


def test_a_workbook_without_settings_gets_a_message(tmp_path: Path) -> None:
    book = OpenpyxlBook.new(tmp_path / "plain.xlsx")
    book.ensure_sheet("Sheet1")
    got = udfs.ROSTERBOOK_STATUS("Active", caller=CallerContext(book, "Sheet1", 2))
    assert got.startswith("rosterbook: the workbook has no 'Settings' sheet")
