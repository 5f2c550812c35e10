"""Dialects: the seeds' facts are encoded, files are validated on load, header rows are recognised."""

from __future__ import annotations

from pathlib import Path

import pytest

from rosterbook.core.dialects import (
    all_dialects,
    describe_dialect,
    dialect_names,
    load_dialect,
    normalise_header,
    parse_dialect,
    recognise_dialect,
)
from rosterbook.csvfile import read_csv
from rosterbook.errors import DialectError, UsageError

MINIMAL = """
name = "mini"
title = "Mini"
kind = "csv"
key = "email"
[[columns]]
name = "email"
type = "email"
"""


def test_the_five_dialects_load() -> None:
    assert dialect_names() == ("edapp", "incenteev", "jostle", "progression", "scim")
    assert [d.name for d in all_dialects()] == list(dialect_names())


def test_unknown_dialect_is_a_usage_error() -> None:
    with pytest.raises(DialectError, match=r"^unknown dialect 'workday': expected one of 'edapp', 'incenteev', 'jostle', 'progression', 'scim'$") as info:
        load_dialect("workday")
    assert isinstance(info.value, UsageError)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('colour = "blue"\n', r"mini\.toml: invalid dialect: colour: Extra inputs are not permitted"),
        ('[[columns]]\nname = "x"\nflavour = "y"\n', r"columns\.1\.flavour: Extra inputs are not permitted"),
        ('[[columns]]\nname = "groups"\ntype = "list"\n', r"list column 'groups' needs a separator"),
        ('[[columns]]\nname = "x"\nseparator = ";"\n', r"only list columns take a separator or escape \('x'\)"),
        ('[[columns]]\nname = "role"\ntype = "choice"\n', r"choice column 'role' needs choices"),
        ('[[columns]]\nname = "x"\npattern = "("\n', r"pattern of 'x' is not a valid regular expression"),
        (
            '[[columns]]\nname = "roles"\ntype = "list"\nseparator = "; "\nchoices = ["A", "B"]\ndefault = "A; C"\n',
            r"default of 'roles' holds 'C', which is not one of its choices",
        ),
        ('[[columns]]\nname = "email"\n', r"header 'email' names both 'email' and 'email'|column names must be unique"),
        ('status_column = "email"\n', r"a status column needs status_words"),
        ('key_fallback = "nope"\n', r"key_fallback 'nope' is not a column"),
    ],
)
def test_invalid_dialect_files_are_refused(extra: str, message: str) -> None:
    head, _, columns = MINIMAL.partition("[[columns]]")
    text = head + extra + "[[columns]]" + columns if not extra.startswith("[[") else MINIMAL + extra
    with pytest.raises(DialectError, match=message):
        parse_dialect(text, "mini.toml")


def test_not_toml_is_refused() -> None:
    with pytest.raises(DialectError, match=r"^mini\.toml: not valid TOML: "):
        parse_dialect("name = ", "mini.toml")


def test_minimal_dialect_parses() -> None:
    dialect = parse_dialect(MINIMAL)
    assert dialect.key == "email"
    assert dialect.options.invite_new_users.available is False


# --- what the seeds say ------------------------------------------------------------------------------


def test_progression_encodes_seeds_000_and_001() -> None:
    d = load_dialect("progression")
    assert d.key == "email" and not d.key_mutable
    assert [(w.word, w.seat, w.invite, w.login, w.archived) for w in d.status_words] == [
        ("Active", True, True, True, False),
        ("Pending", False, False, False, False),
        ("Archived", False, False, False, True),
    ]
    assert d.invitations == "status" and d.billing == "seats" and d.missing_users == "ignored"
    assert {c.name for c in d.columns if c.required == "always"} == {"First Name", "Last Name", "email"}
    assert d.column("account_active").required == "new"
    assert all(d.column(n).blank == "keep" for n in ("manager", "position", "team", "account_active"))
    assert d.column("position").requires == ("team",)
    assert d.column("team").choices_from_platform and "without a team" in d.column("team").unknown_choice


def test_edapp_encodes_seed_002() -> None:
    d = load_dialect("edapp")
    assert (d.key, d.key_fallback) == ("Username", "Email")
    roles = d.column("Roles")
    assert roles.choices == (
        "Admin", "Content Author", "Manager Analytics", "Learner", "Prizing User", "Excluded from Analytics", "Reviewer", "Facilitator",
    )
    assert roles.default == "Learner; Prizing User"
    assert roles.separator == d.column("User groups").separator == "; "
    password = d.column("Password")
    assert password.write_only and password.blank == "keep"
    assert d.column("External ID").unique
    assert d.invitations == "toggle" and d.options.invite_new_users.available
    assert d.options.list_mode.choices == ("add", "replace")
    assert d.extra_columns == "custom"


def test_incenteev_encodes_seed_003() -> None:
    d = load_dialect("incenteev")
    assert {c.name for c in d.columns if c.required == "always"} == {"First name", "Last name", "Email", "Role(s)", "Permission profile"}
    assert d.missing_users == "option" and d.options.deactivate_missing.default is False
    assert d.options.simulation.available and d.options.simulation.default is True
    assert d.delete_by_removing_row
    assert "Role ID" in d.column_names


def test_jostle_encodes_seed_004() -> None:
    d = load_dialect("jostle")
    assert d.key == "Username" and not d.key_mutable
    assert d.partial_columns
    for name in ("Location", "Org"):
        assert (d.column(name).separator, d.column(name).escape) == ("|", "\\")
    assert "Profile" in d.key_change_advice


def test_csv_dialects_explain_key_changes() -> None:
    for d in all_dialects():
        assert d.key_change_advice, d.name
        assert d.notes, d.name


@pytest.mark.parametrize(
    ("header", "column"),
    [("EMAIL", "email"), ("\ufeffFirst Name", "First Name"), ("first_name", "First Name"), ("Account Active", "account_active"), ("status", "account_active")],
)
def test_headers_match_by_name_or_alias(header: str, column: str) -> None:
    found = load_dialect("progression").find_column(header)
    assert found is not None and found.name == column


def test_normalise_header() -> None:
    assert normalise_header("\ufeff First_Name-\t") == "firstname"


# --- recognising a header row ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "dialect"),
    [
        ("progression_export.csv", "progression"),
        ("progression_export_excel_semicolon.csv", "progression"),
        ("edapp_export.csv", "edapp"),
        ("edapp_export_cp1252.csv", "edapp"),
        ("incenteev_users.csv", "incenteev"),
        ("incenteev_users_semicolon_cp1252.csv", "incenteev"),
        ("jostle_extract.csv", "jostle"),
        ("jostle_extract_bom_lf.csv", "jostle"),
    ],
)
def test_sample_exports_are_recognised(samples: Path, sample: str, dialect: str) -> None:
    found = recognise_dialect(read_csv(samples / sample).headers)
    assert found is not None and found.name == dialect


@pytest.mark.parametrize(
    ("headers", "dialect"),
    [
        (["Username", "Location"], "jostle"),  # 004: a file with only Username and the changed fields
        (["Username", "First name", "Last name", "Email", "Status", "Team"], "scim"),
        (["Email", "Username", "User groups", "Shoe size"], "edapp"),  # a custom field passes
        (["email", "First Name", "Last Name", "account_active"], "progression"),
        (["email", "First Name", "Last Name", "account_active", "Shoe size"], "progression"),  # the check reports 'Shoe size'
    ],
)
def test_header_rows_are_recognised(headers: list[str], dialect: str) -> None:
    found = recognise_dialect(headers)
    assert found is not None and found.name == dialect


@pytest.mark.parametrize(
    "headers",
    [
        [],
        ["Name", "Phone", "Notes"],  # no key anywhere
        ["Username", "Email"],  # EdApp, Jostle and SCIM alike
        ["Username", "a", "b", "c"],  # mostly unexplained
    ],
)
def test_unrecognisable_header_rows(headers: list[str]) -> None:
    assert recognise_dialect(headers) is None


def test_describe_dialect_shows_rules_columns_and_notes() -> None:
    text = describe_dialect(load_dialect("jostle"))
    assert text.splitlines()[0] == "jostle: Jostle (CSV upload file)"
    assert "an upload file may carry only the key and the columns being changed" in text
    assert "  Location [list; blank keeps; separator '|', escape '\\\\'" in text
    assert "notes:" in text
