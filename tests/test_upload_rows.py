"""upload_rows(): which rows and columns a CSV platform's upload file carries, in the platform's spelling."""

from __future__ import annotations

from typing import Any

import pytest
from test_diff import USERS, edited, sheet_of

from rosterbook.core.dialects import load_dialect
from rosterbook.core.plan import Settings, make_plan
from rosterbook.core.problems import Problem
from rosterbook.core.upload import upload_rows
from rosterbook.errors import DataError


def upload(name: str, *args: Any, settings: Settings | None = None, plan_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> tuple[list[str], list[list[str]]]:
    table, snapshot = edited(name, *args, **kwargs)
    settings = settings or Settings.for_dialect(name)
    plan = make_plan(table, snapshot, settings, **(plan_kwargs or {}))
    return upload_rows(plan, table, snapshot, settings)


PROGRESSION_HEADER = ["First Name", "Last Name", "email", "position", "team", "manager", "account_active"]


def test_progression_carries_only_changed_rows_with_exact_headers_and_status_words() -> None:
    header, rows = upload(
        "progression",
        edits={1: {"account_active": "Archived"}, 2: {"Last Name": "Ng-Lee", "team": None}},
        new=[{"First Name": "Dan", "Last Name": "Wu", "email": "dan@example.com", "account_active": "Active"}],
    )
    assert header == PROGRESSION_HEADER
    assert rows == [
        ["Bob", "Ray", "bob@example.com", "", "Core", "ann@example.com", "Archived"],
        ["Cat", "Ng-Lee", "cat@example.com", "Designer", "Design", "ann@example.com", "Active"],  # blank team kept: written as exported
        ["Dan", "Wu", "dan@example.com", "", "", "", "Active"],
    ]


def test_nothing_changed_has_no_rows() -> None:
    assert upload("progression") == (PROGRESSION_HEADER, [])


def test_rows_with_errors_are_not_in_the_file() -> None:
    problem = Problem("error", "Users", "A2", 2, "First Name", None, "required", "required.")
    _header, rows = upload("progression", edits={0: {"Last Name": "X"}, 1: {"Last Name": "Y"}}, plan_kwargs={"problems": [problem]})
    assert [r[2] for r in rows] == ["bob@example.com"]
    _header, rows = upload("progression", edits={0: {"email": "new@example.com"}})
    assert rows == []


EDAPP_HEADER = ["Email", "Username", "First Name", "Last Name", "User groups", "Roles", "Password", "External ID"]


def test_edapp_lists_keep_the_default_roles_and_the_password_column_is_always_there() -> None:
    # 002: "Update fields without deleting any columns": Password is present, blank unless a row sets one.
    header, rows = upload("edapp", edits={0: {"User groups": "marketing;sales;", "Roles": "Reviewer"}})
    assert header == EDAPP_HEADER
    assert rows == [["ann@example.com", "ann", "Ann", "Lee", "marketing; sales", "Reviewer; Learner; Prizing User", "", "000417"]]
    header, rows = upload("edapp", edits={0: {"First Name": "Anne"}, 1: {"Password": "N3w!passw0rd"}})
    assert header == EDAPP_HEADER
    assert [r[6] for r in rows] == ["", "N3w!passw0rd"]


def test_edapp_new_user_with_blank_username_leaves_it_blank_for_the_platform() -> None:
    _header, rows = upload("edapp", new=[{"Email": "cy@example.com", "First Name": "Cy"}])
    assert rows == [["cy@example.com", "", "Cy", "", "", "Learner; Prizing User", "", ""]]


def test_edapp_custom_fields_pass_through() -> None:
    headers = [*load_dialect("edapp").column_names, "Job Title"]
    table = sheet_of("edapp", [(None, {"Email": "cy@example.com", "Job Title": "=cmd"})], headers)
    settings = Settings.for_dialect("edapp")
    plan = make_plan(table, [], settings)
    header, rows = upload_rows(plan, table, [], settings)
    assert header[-1] == "Job Title" and rows[0][-1] == "=cmd"  # injection escaping is the CSV writer's job


def test_jostle_partial_file_carries_the_username_plus_the_changed_columns() -> None:
    # 004: Username plus the changed columns; each row carries its exported value where it changed nothing,
    # so the file never relies on what a blank means.
    header, rows = upload("jostle", edits={0: {"Job Title": "Chief Executive"}, 1: {"Location": "Main\\|HQ|Remote"}})
    assert header == ["Username", "Job Title", "Location"]
    assert rows == [["sarah.lee", "Chief Executive", "Main\\|HQ"], ["david.cohen", "VP Operations", "Main\\|HQ|Remote"]]


def test_jostle_sheet_with_only_some_columns() -> None:
    header, rows = upload("jostle", edits={1: {"Org": "Operations | Facilities"}}, headers=["Username", "Org"])
    assert (header, rows) == (["Username", "Org"], [["david.cohen", "Operations|Facilities"]])


def test_jostle_new_user_brings_its_filled_columns() -> None:
    header, rows = upload("jostle", edits={0: {"Job Title": "Chief"}}, new=[{"Username": "new.user", "First Name": "New", "Last Name": "User", "Location": "Main\\|HQ"}])
    assert header == ["Username", "First Name", "Last Name", "Job Title", "Location"]
    assert rows == [["sarah.lee", "Sarah", "Lee", "Chief", "Main\\|HQ"], ["new.user", "New", "User", "", "Main\\|HQ"]]


INCENTEEV_HEADER = ["First name", "Last name", "Email", "Role(s)", "Permission profile", "Employee ID", "Job title", "Phone number", "Role ID"]


def test_incenteev_without_deactivate_missing_carries_changed_rows_only() -> None:
    header, rows = upload("incenteev", edits={1: {"Role ID": "R-300"}}, drop=[0])
    assert header == INCENTEEV_HEADER
    assert [r[2] for r in rows] == ["hugo@example.com"]


def test_incenteev_with_deactivate_missing_is_the_full_file_without_removed_users() -> None:
    users = [*USERS["incenteev"], {**USERS["incenteev"][1], "Email": "ines@example.com", "First name": "Ines"}]
    settings = Settings.for_dialect("incenteev", deactivate_missing=True)
    problem = Problem("error", "Users", "A3", 3, "First name", None, "x", "bad.")
    new = [{"First name": "Zoe", "Last name": "Z", "Email": "zoe@example.com", "Role(s)": "Sales Rep", "Permission profile": "Participant"},
           {"First name": None, "Email": "bad@example.com"}]
    header, rows = upload("incenteev", users, edits={1: {"Role ID": "R-300"}, 2: {"Job title": "Broken"}}, drop=[0], new=new, settings=settings,
                          plan_kwargs={"problems": [problem, Problem("error", "Users", "A5", 5, "First name", None, "x", "bad.")]})
    assert header == INCENTEEV_HEADER
    assert rows == [
        ["Hugo", "Bernard", "hugo@example.com", "Sales Manager", "Manager", "00023", "Manager North", "", "R-300"],
        # row 3 has an error: it stays in the file as exported, so Ines is not deactivated
        ["Ines", "Bernard", "ines@example.com", "Sales Manager", "Manager", "00023", "Manager North", "", "R-210"],
        ["Zoe", "Z", "zoe@example.com", "Sales Rep", "Participant", "", "", "", ""],
        # the new user with an error (row 5) is left out: it would be created otherwise
    ]


def test_incenteev_full_file_keeps_skipped_rows_as_exported() -> None:
    settings = Settings.for_dialect("incenteev", deactivate_missing=True)
    _header, rows = upload("incenteev", edits={0: {"Job title": "CEO"}, 1: {"Role ID": "R-300"}}, settings=settings, plan_kwargs={"skip_rows": [2]})
    assert [(r[6], r[8]) for r in rows] == [("Directrice", "R-100"), ("Manager North", "R-300")]


def test_a_full_file_with_nothing_to_change_is_no_file() -> None:
    settings = Settings.for_dialect("incenteev", deactivate_missing=True)
    assert upload("incenteev", settings=settings)[1] == []
    assert upload("incenteev", edits={0: {"Job title": "CEO"}}, settings=settings, plan_kwargs={"skip_rows": [2]})[1] == []


def test_a_refused_plan_has_no_upload_file() -> None:
    users = [{**USERS["incenteev"][0], "Email": f"u{i}@example.com"} for i in range(40)]
    settings = Settings.for_dialect("incenteev", deactivate_missing=True)
    with pytest.raises(DataError, match="no upload file: the plan is refused: 30 users would lose access"):
        upload("incenteev", users, drop=list(range(30)), settings=settings)
    _header, rows = upload("incenteev", users, drop=list(range(30)), settings=settings, plan_kwargs={"confirm_deletions": True})
    assert len(rows) == 10


def test_snapshot_is_used_for_rows_that_are_not_sent() -> None:
    # The snapshot (not the sheet) is what a not-sent row must say in a full file.
    settings = Settings.for_dialect("incenteev", deactivate_missing=True)
    table, snapshot = edited("incenteev", edits={0: {"Email": "other@example.com"}, 1: {"Role ID": "R-300"}})
    plan = make_plan(table, snapshot, settings)
    assert plan.counts["error"] == 1
    _header, rows = upload_rows(plan, table, snapshot, settings)
    assert [r[2] for r in rows] == ["claire@example.com", "hugo@example.com"]
