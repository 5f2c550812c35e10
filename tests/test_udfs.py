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


@pytest.mark.parametrize(
    ("item", "separator", "expected"),
    [
        ("Main|HQ", "|", "Main\\|HQ"),
        ("Admin", "; ", "Admin"),
        ("Admin", ";", "Admin"),
        # '; ' lists (EdApp, Incenteev, SCIM groups and roles) have no escape: a backslash would be sent as part of the name.
        (
            "Admin; Learner",
            "; ",
            "rosterbook: 'Admin; Learner' contains ';', which separates the items of EdApp (SafetyCulture Training), Incenteev and "
            "SCIM 2.0 platform lists; those lists have no escape, so one item cannot contain it. Rename the item on the platform.",
        ),
        (
            "Admin",
            ",",
            "rosterbook: no platform's lists are separated by ','; the separators are '; ' (EdApp (SafetyCulture Training), Incenteev, "
            "SCIM 2.0 platform); '|' (Jostle, SCIM 2.0 platform).",
        ),
    ],
)
def test_escape_knows_which_lists_have_an_escape(item: str, separator: str, expected: str) -> None:
    got = udfs.ROSTERBOOK_ESCAPE(item, separator)
    assert got == expected
    assert "\\;" not in got


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
    assert got == "rosterbook: no dialect: this is not a rosterbook workbook (it has no Settings sheet); name the platform's dialect in the formula."
    assert udfs.ROSTERBOOK_STATUS("Active", "progression", CallerContext(book, "Sheet1", 2)) == "OK"


# --- header problems are reported, never "OK" -------------------------------------------------------------

ROW = ["jdoe", "Jane", "Doe", "jane@example.com", "Main", "00042", "2024-01-02"]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            ["Usrname", *JOSTLE[1:]],
            "Users Username: the header row has no 'Username' column, which identifies users on Jostle.\n"
            "Users!A1 Usrname: 'Usrname' is not a Jostle column, so it would be sent as a custom field; did you mean 'Username'? (warning)",
        ),
        (
            [*JOSTLE[:3], "Work Emial", *JOSTLE[4:]],
            "Users!D1 Work Emial: 'Work Emial' is not a Jostle column, so it would be sent as a custom field; did you mean 'Work Email'? (warning)",
        ),
        ([*JOSTLE[:6], "Username"], "Users!G1 Username: 'Username' names column 'Username' again (first in A1)."),
    ],
)
def test_header_problems_are_reported_not_ok(headers: list[str], expected: str) -> None:
    assert udfs.ROSTERBOOK_CHECK(ROW, headers, "jostle") == expected
    assert udfs.ROSTERBOOK_CHECK_TABLE([headers, ROW, ROW[:1] + [None] * 6], "jostle")[0] == [expected]


def test_a_missing_column_is_reported_on_every_row() -> None:
    headers = ["First Name", "Last Name", "position", "team", "manager", "account_active"]  # no 'email', the key
    got = udfs.ROSTERBOOK_CHECK_TABLE([headers, ["Jane", "Doe", None, None, None, "Active"], ["Al", "Lee", None, None, None, "actve"]], "progression")
    missing = "Users email: the header row has no 'email' column, which identifies users on Progression."
    assert got[0] == [missing]
    assert got[1] == [missing + "\nUsers!F3 account_active: 'actve' is not one of 'Active', 'Pending', 'Archived'. Did you mean 'Active'?"]


def test_a_table_range_without_its_header_row_says_so() -> None:
    got = udfs.ROSTERBOOK_CHECK_TABLE([ROW, ROW], "jostle", None, "2,1,2,7,Users")
    assert got == [[
        "rosterbook: the range's first row (Users!A2:G2) is not a header row: none of its cells names a Jostle column. "
        "Include the header row, e.g. =ROSTERBOOK_CHECK_TABLE(A1:G3)."
    ]]


# --- the range's own place: headers of the same columns, the sheet's cell names -------------------------------


@pytest.fixture
def jostle_rows(tmp_path: Path) -> OpenpyxlBook:
    """A Jostle workbook whose Users sheet has a header row and one row of data."""
    path = tmp_path / "rows.xlsx"
    book = OpenpyxlBook.new(path)
    wbk.write_settings(book, Settings(dialect="jostle"))
    book.ensure_sheet(wbk.USERS)
    book.write_values(wbk.USERS, 1, 1, [JOSTLE, ["jdoe", "Jane", None, "bad@", "Main|HQ", "00042", "2024-01-02"]])
    book.save()
    return OpenpyxlBook(path)


def test_a_row_check_uses_the_headers_of_its_own_columns(jostle_rows: OpenpyxlBook) -> None:
    caller = CallerContext(jostle_rows, "Check", 2)
    cells = [None, "bad@", "Main|HQ", "00042", "2024-01-02"]  # C2:G2, as Excel passes =ROSTERBOOK_CHECK(C2:G2)
    assert udfs.ROSTERBOOK_CHECK(cells, None, None, caller, "2,3,1,5,Users") == (
        "Users!C2 Last Name: blank keeps an existing user's value, but a new user needs a value. (warning)\n"
        "Users!D2 Work Email: 'bad@' is not a valid email address: There must be something after the @-sign.\n"
        "Users!E2 Location: 'Main|HQ' will be split into 'Main', 'HQ'; if it is meant as one name, write 'Main\\|HQ'. Did you mean 'Main\\|HQ'? (warning)"
    )
    # Only its own cells: the same row from A (First Name blank is B2's problem, not in C2:G2's answer).
    assert "B2" not in udfs.ROSTERBOOK_CHECK(cells, None, None, caller, "2,3,1,5,Users")
    # A table further right and down names its cells where they are.
    table = [JOSTLE[2:], [None, "bad@", None, None, None]]
    assert udfs.ROSTERBOOK_CHECK_TABLE(table, None, caller, "1,3,2,5,Users") == [[
        "Users!C2 Last Name: blank keeps an existing user's value, but a new user needs a value. (warning)\n"
        "Users!D2 Work Email: 'bad@' is not a valid email address: There must be something after the @-sign."
    ]]


def test_the_functions_follow_a_settings_change(jostle_rows: OpenpyxlBook) -> None:
    caller = CallerContext(jostle_rows, "Check", 2)
    assert udfs.ROSTERBOOK_STATUS("Active", None, caller) == "rosterbook: the jostle dialect has no status column."
    # The same open workbook, its Settings edited: the next recalculation checks with the new dialect.
    wbk.write_settings(jostle_rows, Settings(dialect="progression"))
    assert udfs.ROSTERBOOK_STATUS("Active", None, caller) == "OK"
    assert udfs.ROSTERBOOK_STATUS("actve", None, caller).startswith("account_active: 'actve' is not one of")


def test_status_over_a_range_answers_every_cell() -> None:
    column = [["Active"], ["actve"], [None], ["Pending"], [None], [None]]
    assert udfs.ROSTERBOOK_STATUS(column, "progression") == [
        ["OK"],
        ["account_active: 'actve' is not one of 'Active', 'Pending', 'Archived'. Did you mean 'Active'?"],
        ["account_active: blank keeps an existing user's value, but a new user needs a value; expected one of 'Active', 'Pending', 'Archived'. (warning)"],
        ["OK"],
        [""],
        [""],
    ]
    assert udfs.ROSTERBOOK_LIST([["Main|HQ", "Main\\|HQ"]], "Location", "jostle")[0][1] == "OK"
