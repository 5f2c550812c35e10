"""Row checks: exact messages, new/existing users, platform values, cross-row duplicates, the planted samples."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rosterbook.core.checks import check_cells, check_matrix, check_table, check_value
from rosterbook.core.codecs import Cell
from rosterbook.core.dialects import load_dialect, parse_dialect
from rosterbook.core.problems import Problem
from rosterbook.core.report import CheckReport
from rosterbook.core.table import build_table
from rosterbook.csvfile import check_csv, read_csv

PROGRESSION_HEADERS = ["First Name", "Last Name", "email", "position", "team", "manager", "account_active"]


def _row(**cells: str) -> list[Cell]:
    base = {"First Name": "Ann", "Last Name": "Lee", "email": "ann@example.com", "account_active": "Active"}
    base.update(cells)
    return [base.get(h, "") for h in PROGRESSION_HEADERS]


def _rendered(problems: list[Problem]) -> list[str]:
    return [p.render() for p in problems]


# --- one value -----------------------------------------------------------------------------------------

VALUE_CASES: list[tuple[str, str, Cell, list[str]]] = [
    ("progression", "account_active", "Active", []),
    ("progression", "account_active", "actve", ["Users!G7 account_active: 'actve' is not one of 'Active', 'Pending', 'Archived'. Did you mean 'Active'?"]),
    (
        "progression",
        "account_active",
        "ACTIVE",
        ["Users!G7 account_active: 'ACTIVE' is not one of 'Active', 'Pending', 'Archived': write the word exactly, without symbols or additions. Did you mean 'Active'?"],
    ),
    (
        "progression",
        "account_active",
        None,
        ["Users!G7 account_active: blank keeps an existing user's value, but a new user needs a value; expected one of 'Active', 'Pending', 'Archived'. (warning)"],
    ),
    ("progression", "status", "Pending", []),  # an alias
    ("progression", "First Name", None, ["Users!G7 First Name: a value is required."]),
    ("progression", "manager", None, []),  # blank keeps the manager
    (
        "progression",
        "First Name",
        '=PROPER("ann")',
        ["Users!G7 First Name: '=PROPER(\"ann\")' is a formula's text, not a value: it would be sent as that text. Type the value itself."],
    ),
    (
        "edapp",
        "Roles",
        "Admin,Learner",
        ["Users!G7 Roles: 'Admin,Learner' uses ',' between items; separate Roles with '; '. Did you mean 'Admin; Learner'?"],
    ),
    ("edapp", "Roles", "Admin; Learner;", []),
    (
        "edapp",
        "Roles",
        "Admn; Learner",
        [
            "Users!G7 Roles: 'Admn' is not one of 'Admin', 'Content Author', 'Manager Analytics', 'Learner', 'Prizing User', "
            "'Excluded from Analytics', 'Reviewer', 'Facilitator'. Did you mean 'Admin; Learner'?"
        ],
    ),
    (
        "edapp",
        "Roles",
        "Admn; Boss",
        [
            "Users!G7 Roles: 'Admn', 'Boss' are not among 'Admin', 'Content Author', 'Manager Analytics', 'Learner', 'Prizing User', "
            "'Excluded from Analytics', 'Reviewer', 'Facilitator'."
        ],
    ),
    ("edapp", "Roles", "Learner; Learner", ["Users!G7 Roles: 'Learner' is listed more than once. Did you mean 'Learner'? (warning)"]),
    (
        "edapp",
        "User groups",
        "marketing, operations",
        [
            "Users!G7 User groups: 'marketing, operations' contains ',', but User groups items are separated by '; '; "
            "if these are separate items, write 'marketing; operations'. Did you mean 'marketing; operations'? (warning)"
        ],
    ),
    ("edapp", "Password", "hunter2", ["Users!G7 Password: a value here sets the user's password; leave the cell blank to keep the current password. (warning)"]),
    ("edapp", "Password", None, []),
    ("edapp", "Username", None, []),  # takes the email
    (
        "edapp",
        "External ID",
        417.0,
        ["Users!G7 External ID: '417' was stored as a number, so leading zeros may have been lost. Format the column as Text and check the ID. (warning)"],
    ),
    (
        "edapp",
        "External ID",
        1.2345678901234e17,
        [
            "Users!G7 External ID: '1.2345678901234e+17' is a number Excel rewrote (in scientific notation, or past 15 digits): "
            "the original ID is lost. Format the column as Text and type it again."
        ],
    ),
    (
        "jostle",
        "Location",
        "Main|HQ",
        ["Users!G7 Location: 'Main|HQ' will be split into 'Main', 'HQ'; if it is meant as one name, write 'Main\\|HQ'. Did you mean 'Main\\|HQ'? (warning)"],
    ),
    ("jostle", "Location", "Main\\|HQ", []),
    ("jostle", "Location", "Main\\|HQ | Remote", []),
    (
        "jostle",
        "Location",
        "Main\\",
        ["Users!G7 Location: 'Main\\' ends with '\\', which the platform reads as escaping the next '|'; remove the trailing '\\'. Did you mean 'Main'?"],
    ),
    (
        "jostle",
        "Org",
        "Sales; Marketing",
        [
            "Users!G7 Org: 'Sales; Marketing' contains ';', but Org items are separated by '|'; if these are separate items, "
            "write 'Sales|Marketing'. Did you mean 'Sales|Marketing'? (warning)"
        ],
    ),
    ("jostle", "Org", "Sales, EMEA", []),  # commas are common inside names
    ("jostle", "Start Date", dt.datetime(2021, 4, 3), []),
    ("jostle", "Start Date", dt.date(2021, 4, 3), []),
    (
        "jostle",
        "Start Date",
        "03/04/2021",
        ["Users!G7 Start Date: '03/04/2021' could be 2021-04-03 or 2021-03-04 (day and month are ambiguous); write dates as YYYY-MM-DD."],
    ),
    ("jostle", "Start Date", "24/02/2020", ["Users!G7 Start Date: '24/02/2020' is not a date written YYYY-MM-DD. Did you mean '2020-02-24'?"]),
    (
        "jostle",
        "Start Date",
        dt.datetime(2021, 4, 3, 9, 30),
        ["Users!G7 Start Date: '2021-04-03 09:30:00' has a time of day; a date is expected (YYYY-MM-DD). Did you mean '2021-04-03'?"],
    ),
    ("jostle", "Start Date", 44289.0, ["Users!G7 Start Date: '44289' is a number, not a date written YYYY-MM-DD. Did you mean '2021-04-03'?"]),
    (
        "jostle",
        "Work Phone",
        14165550100.0,
        ["Users!G7 Work Phone: '14165550100' was stored as a number, so a leading '+' or zeros may have been lost. Format the column as Text and check the phone number. (warning)"],
    ),
    ("jostle", "Work Phone", "+1 416 555 0100", []),
    ("jostle", "First Name", None, ["Users!G7 First Name: blank keeps an existing user's value, but a new user needs a value. (warning)"]),
    (
        "incenteev",
        "Email",
        "Jane <jane@example.com>",
        [
            "Users!G7 Email: 'Jane <jane@example.com>' is not a valid email address: "
            "A display name and angle brackets around the email address are not permitted here. Did you mean 'jane@example.com'?"
        ],
    ),
    (
        "progression",
        "acount_active",
        "Active",
        [
            "Users!G7 acount_active: 'acount_active' is not a Progression column; expected one of 'First Name', 'Last Name', 'email', 'position', "
            "'team', 'manager', 'account_active'. Did you mean 'account_active'?"
        ],
    ),
]


@pytest.mark.parametrize(("dialect", "column", "value", "expected"), VALUE_CASES)
def test_check_value_messages(dialect: str, column: str, value: Cell, expected: list[str]) -> None:
    problems = check_value(load_dialect(dialect), column, value, cell="G7")
    assert _rendered(problems) == expected
    assert all(p.row == 7 for p in problems)


def test_a_password_never_appears_in_a_problem() -> None:
    problems = check_value(load_dialect("edapp"), "Password", "=Secret123")
    assert [p.code for p in problems] == ["formula"]
    assert all("Secret123" not in json.dumps(p.to_dict()) for p in problems)
    assert problems[0].value == "(hidden)"


# --- a table --------------------------------------------------------------------------------------------


def _check(rows: list[list[Cell]], *, dialect: str = "progression", headers: list[str] | None = None, **kwargs: Any) -> list[tuple[str, str, str]]:
    table = build_table("Users", load_dialect(dialect), headers or PROGRESSION_HEADERS, rows, row_ids=kwargs.pop("row_ids", None))
    return [(p.cell, p.code, p.severity) for p in check_table(table, **kwargs)]


def test_clean_rows_have_no_problems() -> None:
    assert _check([_row(), _row(email="bob@example.com", position="Engineer", team="Platform", manager="ann@example.com")]) == []


def test_blank_status_with_a_snapshot_depends_on_the_row_being_new() -> None:
    rows = [_row(account_active=""), _row(email="new@example.com", account_active="")]
    assert _check(rows) == [("G2", "required-if-new", "warning"), ("G3", "required-if-new", "warning")]
    assert _check(rows, has_snapshot=True, row_ids=["r1", None]) == [("G3", "required", "error")]


def test_a_missing_status_column_matters_once_there_are_new_users() -> None:
    headers = ["First Name", "Last Name", "email"]
    rows: list[list[Cell]] = [["Ann", "Lee", "ann@example.com"]]
    assert _check(rows, headers=headers) == [("", "missing-column", "warning")]
    assert _check(rows, headers=headers, has_snapshot=True, row_ids=["r1"]) == []
    assert _check(rows, headers=headers, has_snapshot=True, row_ids=[None]) == [("", "missing-column", "error")]
    assert _check([["ann.lee", "Location"]], dialect="jostle", headers=["Username", "Location"]) == []  # 004: partial files


def test_position_needs_a_team() -> None:
    table = build_table("Users", load_dialect("progression"), PROGRESSION_HEADERS, [_row(position="Engineer II")])
    assert _rendered(list(check_table(table))) == [
        "Users!D2 position: 'Engineer II' is only applied together with 'team', which is blank: fill in 'team' too."
    ]


def test_platform_values_are_warnings_with_the_consequence() -> None:
    table = build_table("Users", load_dialect("progression"), PROGRESSION_HEADERS, [_row(position="Engineer", team="platform"), _row(email="b@example.com", position="Engineer", team="Growth")])
    problems = list(check_table(table, platform_choices={"team": ["Design", "Platform"], "position": ["Engineer"]}))
    assert _rendered(problems) == [
        "Users!E2 team: 'platform' is not a known team (known: 'Design', 'Platform'). Progression still creates or updates the user, "
        "without a team, until that team exists (000); upload again once it is created. Did you mean 'Platform'? (warning)",
        "Users!E3 team: 'Growth' is not a known team (known: 'Design', 'Platform'). Progression still creates or updates the user, "
        "without a team, until that team exists (000); upload again once it is created. (warning)",
    ]


def test_platform_groups_in_a_list() -> None:
    # 002: a group "needs to be written exactly how the user group is named or the LMS will not recognise it".
    headers = ["Email", "User groups"]
    table = build_table("Users", load_dialect("edapp"), headers, [["a@example.com", "marketing; Operations"]])
    problems = list(check_table(table, platform_choices={"User groups": {"marketing", "operations"}}))
    assert [(p.cell, p.code, p.severity, p.fix) for p in problems] == [("B2", "inexact-value", "error", "marketing; operations")]
    assert problems[0].message == (
        "EdApp (SafetyCulture Training) spells 'Operations' as 'operations': write it exactly. "
        "EdApp does not recognise a group that is not spelled exactly as it is named (002)."
    )



def test_a_repeated_value_is_flagged_in_every_cell_that_holds_it() -> None:
    """Findings are worked out once per distinct text (a 50,000-row sheet repeats its groups): each cell still gets its own
    problem, at its own address, and a cell spelled differently its own finding."""
    headers = ["Email", "User groups", "Roles"]
    rows = [["a@example.com", "marketing; Operations", "Learner"], ["b@example.com", "marketing", "Lerner"],
            ["c@example.com", "marketing; Operations", "Lerner"], ["d@example.com", "marketing;  Operations", "Learner"]]
    table = build_table("Users", load_dialect("edapp"), headers, rows)
    problems = list(check_table(table, platform_choices={"User groups": {"marketing", "operations"}}))
    found = sorted((p.cell, p.code, p.fix) for p in problems)
    assert found == [("B2", "inexact-value", "marketing; operations"), ("B4", "inexact-value", "marketing; operations"),
                     ("B5", "inexact-value", "marketing; operations"), ("C3", "not-allowed", "Learner"), ("C4", "not-allowed", "Learner")]


@pytest.mark.parametrize(
    ("cell", "found"),
    [
        ("Marketing", [("inexact-value", "error", "marketing")]),
        ("  sales   north ", [("inexact-value", "error", "Sales North")]),
        ("marketing; Sales  North; Finance", [("inexact-value", "error", "marketing; Sales North; Finance"), ("unknown-value", "warning", None)]),
        ("Finanze", [("unknown-value", "warning", None)]),
        ("marketing; Sales North", []),
    ],
)
def test_edapp_group_spelled_differently_from_a_known_group_is_an_error(cell: str, found: list[tuple[str, str, str | None]]) -> None:
    table = build_table("Users", load_dialect("edapp"), ["Email", "User groups"], [["a@example.com", cell]])
    problems = list(check_table(table, platform_choices={"User groups": {"marketing", "Sales North"}}))
    assert [(p.code, p.severity, p.fix) for p in problems] == found


def test_a_fix_never_repeats_an_item() -> None:
    # 'Sales Rep; sales rep' once suggested 'Sales Rep; Sales Rep'.
    table = build_table("Users", load_dialect("incenteev"), ["Email", "Role(s)"], [["a@example.com", "Sales Rep; sales rep"]])
    problems = [p for p in check_table(table, platform_choices={"Role(s)": {"Sales Rep"}}) if p.code == "unknown-value"]
    assert [p.fix for p in problems] == ["Sales Rep"]
    table = build_table("Users", load_dialect("edapp"), ["Email", "Roles"], [["a@example.com", "admin; Admin"]])
    assert [p.fix for p in check_table(table) if p.code == "not-allowed"] == ["Admin"]


def test_duplicate_keys_point_at_the_first_row_case_insensitively() -> None:
    rows = [_row(), _row(email="bob@example.com"), _row(email="ANN@example.com"), _row(email="Ann@Example.com")]
    table = build_table("Users", load_dialect("progression"), PROGRESSION_HEADERS, rows)
    assert _rendered(list(check_table(table))) == [
        "Users!C4 email: 'ANN@example.com' is already the email of row 2 (C2); each user can appear only once.",
        "Users!C5 email: 'Ann@Example.com' is already the email of row 2 (C2); each user can appear only once.",
    ]


def test_duplicates_across_chunks_point_at_the_first_row() -> None:
    """Repeats within a chunk, across chunks (check_table reads 1,000 rows at a time), and of a value repeated twice."""
    emails = [f"u{i}@example.com" for i in range(2500)]
    emails[8] = emails[9] = "twin@example.com"  # rows 10 and 11
    emails[1498] = emails[2398] = emails[1].upper()  # rows 1500 and 2400 repeat row 3
    rows = [_row(email=email) for email in emails]
    expected = [
        "Users!C11 email: 'twin@example.com' is already the email of row 10 (C10); each user can appear only once.",
        "Users!C1500 email: 'U1@EXAMPLE.COM' is already the email of row 3 (C3); each user can appear only once.",
        "Users!C2400 email: 'U1@EXAMPLE.COM' is already the email of row 3 (C3); each user can appear only once.",
    ]
    assert _rendered(list(check_table(build_table("Users", load_dialect("progression"), PROGRESSION_HEADERS, rows)))) == expected
    assert _rendered(list(check_cells(load_dialect("progression"), PROGRESSION_HEADERS, rows).problems)) == expected


def test_edapp_key_falls_back_to_the_email() -> None:
    headers = ["Email", "Username", "External ID"]
    rows: list[list[Cell]] = [
        ["a@example.com", "", "001"],
        ["b@example.com", "A@example.com", "002"],  # same learner as row 2, whose username is its email
        ["c@example.com", "carl", "001"],  # unique External ID
        ["", "", ""],  # blank row: skipped
        ["", "dora", "003"],  # email required
    ]
    table = build_table("Users", load_dialect("edapp"), headers, rows)
    assert _rendered(list(check_table(table))) == [
        "Users!B3 Username: 'A@example.com' is already the Username of row 2 (A2); each user can appear only once.",
        "Users!C4 External ID: '001' is already the External ID of row 2 (C2); External ID must be unique.",
        "Users!A6 Email: a value is required.",
    ]


def test_a_row_without_any_key() -> None:
    mini = parse_dialect('name = "mini"\ntitle = "Mini"\nkind = "csv"\nkey = "login"\n[[columns]]\nname = "login"\n[[columns]]\nname = "nick"\n')
    table = build_table("Users", mini, ["login", "nick"], [["", "x"]])
    assert _rendered(list(check_table(table))) == ["Users!A2 login: a value is required: 'login' identifies the user on Mini."]


def test_header_problems_come_first() -> None:
    headers = [*PROGRESSION_HEADERS, "Shoe size", "email"]
    assert _check([[*_row(), "42", "x@example.com"]], headers=headers) == [("H1", "unknown-header", "error"), ("I1", "duplicate-header", "error")]


def test_custom_fields_are_checked_for_formulas() -> None:
    headers = ["Email", "Job Title"]
    assert _check([["a@example.com", "=B1"]], dialect="edapp", headers=headers) == [("B2", "formula", "error")]


def test_progress_is_reported() -> None:
    calls: list[tuple[int, int]] = []
    table = build_table("Users", load_dialect("progression"), PROGRESSION_HEADERS, [_row(email=f"u{i}@example.com") for i in range(2500)])
    assert list(check_table(table, progress=lambda done, total: calls.append((done, total)))) == []
    assert calls == [(0, 2500), (1000, 2500), (2000, 2500), (2500, 2500)]


# --- the Excel array function ---------------------------------------------------------------------------------


def test_check_matrix_gives_one_list_per_row() -> None:
    rows = [_row(), [None] * 7, _row(email="ann@EXAMPLE.com", account_active="actve"), _row(email="b@example.com")]
    result = check_matrix(load_dialect("progression"), [*PROGRESSION_HEADERS, "Shoe size"], rows, first_row=5)
    assert [[(p.cell, p.code) for p in found] for found in result] == [
        [],
        [],
        [("C7", "duplicate-key"), ("G7", "unknown-status")],
        [],
    ]
    assert result[2][0].message == "'ann@EXAMPLE.com' is already the email of row 5 (C5); each user can appear only once."


_cells = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["Active", "actve", "a@b.co", "x|y", "a\\", "=1", "03/04/2021", "1.2E+05", "Admin,Learner"]),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.datetimes(),
)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["progression", "edapp", "incenteev", "jostle", "scim"]), st.lists(st.lists(_cells, min_size=0, max_size=20), max_size=6))
def test_checks_never_raise(dialect_name: str, rows: list[list[Cell]]) -> None:
    dialect = load_dialect(dialect_name)
    result = check_matrix(dialect, list(dialect.column_names), rows)
    assert len(result) == len(rows)
    for found in result:
        for problem in found:
            assert problem.severity in ("error", "warning") and problem.code and problem.message


# --- reports ------------------------------------------------------------------------------------------------


def test_report_sorts_by_row_then_column_and_counts() -> None:
    table = build_table("users.csv", load_dialect("progression"), PROGRESSION_HEADERS, [_row(account_active="actve", **{"First Name": ""}), _row(email="bad")])
    report = CheckReport.from_problems(len(table.rows), reversed(list(check_table(table))))
    assert [p.cell for p in report.problems] == ["A2", "G2", "C3"]
    assert report.ok is False and report.errors == 3 and report.warnings == 0
    assert report.render_text().splitlines()[0] == "users.csv!A2 First Name: a value is required."
    assert report.summary() == "2 rows checked: 3 errors, 0 warnings."
    data = report.to_dict()
    assert data["ok"] is False and data["rows"] == 2
    assert list(data["problems"][0]) == ["severity", "sheet", "cell", "row", "column", "value", "code", "message", "fix"]


def test_warnings_alone_are_ok() -> None:
    report = CheckReport.from_problems(1, [Problem("warning", "Users", "A2", 2, "x", "y", "z", "m")])
    assert report.ok and report.summary() == "1 row checked: 0 errors, 1 warning."
    assert CheckReport.from_problems(0, []).summary() == "0 rows checked: no problems."


# --- the sample exports -----------------------------------------------------------------------------------------

PLANTED = ["progression_planted.csv", "edapp_planted.csv", "incenteev_planted.csv", "jostle_planted.csv"]
CLEAN = [
    "progression_export.csv",
    "progression_export_excel_semicolon.csv",
    "edapp_export.csv",
    "edapp_export_cp1252.csv",
    "incenteev_users.csv",
    "incenteev_users_semicolon_cp1252.csv",
    "jostle_extract.csv",
    "jostle_extract_bom_lf.csv",
]


@pytest.mark.parametrize("name", PLANTED)
def test_every_planted_problem_is_found_at_its_cell_and_nothing_else(samples: Path, name: str) -> None:
    expected = json.loads((samples / name.replace(".csv", ".expected.json")).read_text(encoding="utf-8"))
    report = check_csv(samples / name)
    found = sorted((p.cell, p.code, p.severity) for p in report.problems)
    assert found == sorted((e["cell"], e["code"], e["severity"]) for e in expected["problems"])
    fixes = {(p.cell, p.code): p.fix for p in report.problems}
    for e in expected["problems"]:
        if "fix" in e:
            assert fixes[(e["cell"], e["code"])] == e["fix"]
    assert report.ok is False


@pytest.mark.parametrize("name", CLEAN)
def test_clean_exports_have_no_problems(samples: Path, name: str) -> None:
    report = check_csv(samples / name)
    assert report.problems == []
    assert report.ok and report.rows > 10


@pytest.mark.parametrize("name", PLANTED)
def test_planted_files_check_the_same_with_the_dialect_named(samples: Path, name: str) -> None:
    dialect = json.loads((samples / name.replace(".csv", ".expected.json")).read_text(encoding="utf-8"))["dialect"]
    assert check_csv(samples / name, dialect).to_dict() == check_csv(samples / name).to_dict()


# --- the fast paths agree with check_table ------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["progression", "edapp", "jostle"]), st.lists(st.lists(_cells, min_size=0, max_size=12), max_size=8))
@example("progression", [[None] * 7 + ["="]])  # a formula under an unknown (non-custom) header is not read
def test_check_cells_and_check_matrix_agree_with_check_table(dialect_name: str, rows: list[list[Cell]]) -> None:
    dialect = load_dialect(dialect_name)
    headers: list[Cell] = [*dialect.column_names[:9], "Custom"]
    table = build_table("Users", dialect, headers, rows)
    expected = CheckReport.from_problems(len(table.rows), check_table(table))
    assert check_cells(dialect, headers, rows) == expected
    per_row = check_matrix(dialect, headers, rows)
    assert sorted((p for found in per_row for p in found), key=str) == sorted((p for p in expected.problems if p.row > 1), key=str)


@pytest.mark.parametrize("name", PLANTED)
def test_check_cells_agrees_with_check_table_on_the_samples(samples: Path, name: str) -> None:
    data = read_csv(samples / name)
    dialect = load_dialect(json.loads((samples / name.replace(".csv", ".expected.json")).read_text(encoding="utf-8"))["dialect"])
    table = build_table(data.name, dialect, data.headers, data.rows)
    assert check_cells(dialect, data.headers, data.rows, sheet=data.name) == CheckReport.from_problems(len(table.rows), check_table(table))


def test_known_values_silence_the_pipe_question() -> None:
    headers = ["Username", "Location"]
    rows: list[list[Cell]] = [["ann", "Toronto|Remote"], ["bob", "Main|HQ"]]
    assert _check(rows, dialect="jostle", headers=headers) == [("B2", "unescaped-separator", "warning"), ("B3", "unescaped-separator", "warning")]
    known = {"Location": {"Toronto", "Remote", "Main|HQ"}}
    # 004: 'Main|HQ' is a known location: an unescaped '|' would create 'Main' and 'HQ' instead.
    assert _check(rows, dialect="jostle", headers=headers, platform_choices=known) == [("B3", "splits-known-value", "error")]


@pytest.mark.parametrize(
    ("cell", "found"),
    [
        ("Remote|Main|HQ", [("splits-known-value", "error", "Remote|Main\\|HQ")]),
        ("Main|HQ|Toronto", [("splits-known-value", "error", "Main\\|HQ|Toronto")]),
        ("main|hq", [("splits-known-value", "error", "Main\\|HQ")]),
        ("Remote|Main\\|HQ", []),
        ("Toronto|Remote", []),  # two known locations: exported multi-value cells are never flagged
        ("Toronto | Remote", []),
        ("Kraków|Lagos", [("unescaped-separator", "warning", "Kraków\\|Lagos")]),  # unknown: the old question stays a question
    ],
)
def test_an_unescaped_pipe_splitting_a_known_name_is_an_error_escaping_only_that_name(cell: str, found: list[tuple[str, str, str | None]]) -> None:
    table = build_table("Users", load_dialect("jostle"), ["Username", "Location"], [["ann", cell]])
    problems = list(check_table(table, platform_choices={"Location": {"Toronto", "Remote", "Main|HQ"}}))
    assert [(p.code, p.severity, p.fix) for p in problems] == found
    if found and found[0][0] == "splits-known-value":
        assert "splits the known Location 'Main|HQ' at its '|', so Jostle would create separate values" in problems[0].message
