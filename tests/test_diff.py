"""diff(): every action on each seed dialect, blank semantics, lists, row identity and key changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from rosterbook.core.dialects import load_dialect
from rosterbook.core.diff import SET_MARK, Change, FieldChange, diff
from rosterbook.core.plan import Settings
from rosterbook.core.table import SnapshotRow, Table, build_table
from rosterbook.csvfile import read_csv
from rosterbook.errors import UsageError

Users = list[dict[str, str | None]]

USERS: dict[str, Users] = {
    "progression": [
        {"First Name": "Ann", "Last Name": "Lee", "email": "ann@example.com", "position": "Engineer", "team": "Core", "manager": None, "account_active": "Active"},
        {"First Name": "Bob", "Last Name": "Ray", "email": "bob@example.com", "position": None, "team": "Core", "manager": "ann@example.com", "account_active": "Pending"},
        {"First Name": "Cat", "Last Name": "Ng", "email": "cat@example.com", "position": "Designer", "team": "Design", "manager": "ann@example.com", "account_active": "Active"},
    ],
    "edapp": [
        {"Email": "ann@example.com", "Username": "ann", "First Name": "Ann", "Last Name": "Lee", "User groups": "marketing; operations",
         "Roles": "Admin; Learner; Prizing User", "External ID": "000417"},
        {"Email": "bob@example.com", "Username": "bob@example.com", "First Name": "Bob", "Last Name": "Ray", "User groups": "operations",
         "Roles": "Learner; Prizing User", "External ID": "000418"},
    ],
    "incenteev": [
        {"First name": "Claire", "Last name": "Moreau", "Email": "claire@example.com", "Role(s)": "Sales Director", "Permission profile": "Administrator",
         "Employee ID": "00017", "Job title": "Directrice", "Phone number": "+33 1 84 88 12 00", "Role ID": "R-100"},
        {"First name": "Hugo", "Last name": "Bernard", "Email": "hugo@example.com", "Role(s)": "Sales Manager", "Permission profile": "Manager",
         "Employee ID": "00023", "Job title": "Manager North", "Phone number": None, "Role ID": "R-210"},
    ],
    "jostle": [
        {"Username": "sarah.lee", "First Name": "Sarah", "Last Name": "Lee", "Work Email": "sarah@example.net", "Job Title": "CEO",
         "Location": "Main\\|HQ", "Org": "Executive", "Manager": None, "Work Phone": "+1 416 555 0100", "Employee ID": "000101", "Start Date": "2015-03-02"},
        {"Username": "david.cohen", "First Name": "David", "Last Name": "Cohen", "Work Email": "david@example.net", "Job Title": "VP Operations",
         "Location": "Toronto|Remote", "Org": "Operations", "Manager": "sarah.lee", "Work Phone": None, "Employee ID": "000102", "Start Date": "2016-07-18"},
    ],
    "scim": [
        {"Username": "ann", "First name": "Ann", "Last name": "Lee", "Email": "ann@example.com", "Status": "Active", "Job title": "Engineer",
         "Department": "R&D", "Team": "Core", "Position": "Engineer", "Locations": "Paris", "Manager": None, "Groups": "staff; engineering",
         "Roles": "Learner", "Employee ID": "0042", "Phone": None, "Start date": "2020-01-06", "External ID": "E42"},
        {"Username": "bob", "First name": "Bob", "Last name": "Ray", "Email": "bob@example.com", "Status": "Pending", "Job title": None,
         "Department": "R&D", "Team": "Core", "Position": None, "Locations": None, "Manager": "ann", "Groups": "staff",
         "Roles": "Learner", "Employee ID": "0043", "Phone": None, "Start date": None, "External ID": None},
    ],
}


def snapshot_of(name: str, users: Users) -> list[SnapshotRow]:
    """What an export of ``users`` records (SCIM users get an id and a version)."""
    dialect = load_dialect(name)
    rows = []
    for index, user in enumerate(users):
        key = user.get(dialect.key) or (user.get(dialect.key_fallback) if dialect.key_fallback else None)
        assert key is not None
        scim = dialect.kind == "scim"
        values = {c.name: user.get(c.name) for c in dialect.columns if not c.write_only}
        rows.append(SnapshotRow(f"r{index}", key, f"id-{index}" if scim else None, 'W/"1"' if scim else None, values))
    return rows


def sheet_of(name: str, rows: Sequence[tuple[str | None, Mapping[str, Any]]], headers: Sequence[str] | None = None) -> Table:
    """A table of (row_id, cells by header) rows, as the workbook reader builds it."""
    dialect = load_dialect(name)
    heads = list(headers) if headers is not None else list(dialect.column_names)
    data = [[cells.get(h) for h in heads] for _, cells in rows]
    return build_table("Users", dialect, heads, data, [row_id for row_id, _ in rows])


def edited(
    name: str,
    users: Users | None = None,
    edits: Mapping[int, Mapping[str, Any]] | None = None,
    *,
    new: Sequence[Mapping[str, Any]] = (),
    drop: Sequence[int] = (),
    headers: Sequence[str] | None = None,
) -> tuple[Table, list[SnapshotRow]]:
    """The exported users as a sheet with some cells edited, rows added and rows removed, plus the snapshot."""
    users = USERS[name] if users is None else users
    edits = edits or {}
    rows: list[tuple[str | None, Mapping[str, Any]]] = [
        (f"r{i}", {**user, **edits.get(i, {})}) for i, user in enumerate(users) if i not in drop
    ]
    rows += [(None, cells) for cells in new]
    return sheet_of(name, rows, headers), snapshot_of(name, users)


def run(name: str, *args: Any, settings: Settings | None = None, **kwargs: Any) -> list[Change]:
    table, snapshot = edited(name, *args, **kwargs)
    return diff(table, snapshot, settings or Settings.for_dialect(name))


def changed(changes: list[Change]) -> list[Change]:
    return [c for c in changes if c.action != "unchanged"]


def summary(change: Change) -> tuple[str, int | None, str, dict[str, tuple[str | None, str | None]]]:
    return change.action, change.row, change.key, {k: (f.before, f.after) for k, f in change.fields.items()}


# --- nothing edited: nothing changes -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(USERS))
def test_the_export_read_back_has_no_changes(name: str) -> None:
    changes = run(name)
    assert [c.action for c in changes] == ["unchanged"] * len(USERS[name])
    assert [c.row for c in changes] == list(range(2, 2 + len(USERS[name])))


@pytest.mark.parametrize(
    ("sample", "name"),
    [("progression_export.csv", "progression"), ("edapp_export.csv", "edapp"), ("jostle_extract.csv", "jostle"), ("incenteev_users.csv", "incenteev")],
)
def test_a_real_sample_export_read_back_has_no_changes(samples: Path, sample: str, name: str) -> None:
    data = read_csv(samples / sample)
    dialect = load_dialect(name)
    table = build_table("Users", dialect, data.headers, data.rows, [f"r{i}" for i in range(len(data.rows))])
    snapshot = [
        SnapshotRow(f"r{i}", row.text(dialect.key) or row.text(dialect.key_fallback or dialect.key) or "", None, None,
                    {**{c.name: row.text(c.name) for c in dialect.columns if not c.write_only}, **{h: str(v) for h, v in row.extra.items() if v}})
        for i, row in enumerate(table.rows)
    ]
    changes = diff(table, snapshot, Settings.for_dialect(name))
    assert len(changes) == len(table.rows) > 5
    assert changed(changes) == []


# --- every action, table-driven over the seed dialects ---------------------------------------

CASES: list[tuple[str, str, dict[str, Any], list[tuple[str, int | None, str, dict[str, tuple[str | None, str | None]]]]]] = [
    ("progression update", "progression", {"edits": {0: {"Last Name": "Lee-Smith"}}},
     [("update", 2, "ann@example.com", {"Last Name": ("Lee", "Lee-Smith")})]),
    ("progression archive", "progression", {"edits": {1: {"account_active": "Archived"}}},
     [("archive", 3, "bob@example.com", {"account_active": ("Pending", "Archived")})]),
    ("progression reactivate is an update", "progression", {"users": [{**USERS["progression"][0], "account_active": "Archived"}], "edits": {0: {"account_active": "Active"}}},
     [("update", 2, "ann@example.com", {"account_active": ("Archived", "Active")})]),
    ("progression create", "progression", {"new": [{"First Name": "Dan", "Last Name": "Wu", "email": "dan@example.com", "account_active": "Pending"}]},
     [("create", 5, "dan@example.com", {"First Name": (None, "Dan"), "Last Name": (None, "Wu"), "email": (None, "dan@example.com"), "account_active": (None, "Pending")})]),
    ("progression blank team keeps, blank first name clears", "progression", {"edits": {0: {"team": None, "position": None, "First Name": None}}},
     [("update", 2, "ann@example.com", {"First Name": ("Ann", None)})]),
    ("progression removed row: nothing happens", "progression", {"drop": [1]}, []),
    ("progression email case only: same user", "progression", {"edits": {0: {"email": "Ann@Example.com"}}}, []),
    ("progression position needs team", "progression", {"users": [{**USERS["progression"][1], "team": None}], "edits": {0: {"position": "Tester"}}}, []),
    ("progression position with team kept from export", "progression", {"edits": {1: {"position": "Tester", "team": None}}},
     [("update", 3, "bob@example.com", {"position": (None, "Tester")})]),
    ("edapp update email and name", "edapp", {"edits": {0: {"Email": "ann.lee@example.com", "First Name": "Anne"}}},
     [("update", 2, "ann", {"Email": ("ann@example.com", "ann.lee@example.com"), "First Name": ("Ann", "Anne")})]),
    ("edapp list spelled differently is the same list", "edapp", {"edits": {0: {"User groups": "operations;marketing;", "Roles": "Admin;Learner;Prizing User"}}}, []),
    ("edapp default roles are never removed", "edapp", {"edits": {0: {"Roles": "Admin"}}}, []),
    ("edapp replace groups", "edapp", {"edits": {0: {"User groups": "marketing; sales"}}},
     [("update", 2, "ann", {"User groups": ("marketing; operations", "marketing; sales")})]),
    ("edapp roles replaced keep the default roles", "edapp", {"edits": {0: {"Roles": "Reviewer"}}},
     [("update", 2, "ann", {"Roles": ("Admin; Learner; Prizing User", "Reviewer; Learner; Prizing User")})]),
    ("edapp blank groups keep", "edapp", {"edits": {0: {"User groups": None, "Roles": None, "External ID": None}}}, []),
    ("edapp blank username on a user whose username is the email", "edapp", {"edits": {1: {"Username": None}}}, []),
    ("edapp new user: roles default, username from email", "edapp", {"new": [{"Email": "cy@example.com", "First Name": "Cy"}]},
     [("create", 4, "cy@example.com", {"Email": (None, "cy@example.com"), "First Name": (None, "Cy"), "Roles": (None, "Learner; Prizing User")})]),
    ("edapp new user's roles get the default roles too", "edapp", {"new": [{"Email": "cy@example.com", "Username": "cy", "Roles": "Reviewer"}]},
     [("create", 4, "cy", {"Email": (None, "cy@example.com"), "Username": (None, "cy"), "Roles": (None, "Reviewer; Learner; Prizing User")})]),
    ("edapp password set", "edapp", {"edits": {1: {"Password": "S3cret!pass"}}},
     [("update", 3, "bob@example.com", {"Password": (None, SET_MARK)})]),
    ("incenteev update role id", "incenteev", {"edits": {1: {"Role ID": "R-300", "Role(s)": "Sales Manager; Coach"}}},
     [("update", 3, "hugo@example.com", {"Role(s)": ("Sales Manager", "Sales Manager; Coach"), "Role ID": ("R-210", "R-300")})]),
    ("incenteev blank clears", "incenteev", {"edits": {0: {"Job title": None}}},
     [("update", 2, "claire@example.com", {"Job title": ("Directrice", None)})]),
    ("incenteev removed row without deactivate-missing", "incenteev", {"drop": [0]}, []),
    ("incenteev create", "incenteev", {"new": [{"First name": "Ines", "Last name": "L", "Email": "ines@example.com", "Role(s)": "Sales Rep", "Permission profile": "Participant"}]},
     [("create", 4, "ines@example.com", {"First name": (None, "Ines"), "Last name": (None, "L"), "Email": (None, "ines@example.com"), "Role(s)": (None, "Sales Rep"), "Permission profile": (None, "Participant")})]),
    ("jostle escaped pipe is one location", "jostle", {"edits": {0: {"Location": "Main\\|HQ"}}}, []),
    ("jostle unescaped pipe is two locations", "jostle", {"edits": {0: {"Location": "Main|HQ"}}},
     [("update", 2, "sarah.lee", {"Location": ("Main\\|HQ", "Main|HQ")})]),
    ("jostle spaces around the separator", "jostle", {"edits": {1: {"Location": "Toronto | Remote"}}}, []),
    ("jostle blank keeps", "jostle", {"edits": {0: {"Job Title": None, "Work Phone": None}}}, []),
    ("jostle only some columns present", "jostle", {"edits": {1: {"Job Title": "COO"}}, "headers": ["Username", "Job Title"]},
     [("update", 3, "david.cohen", {"Job Title": ("VP Operations", "COO")})]),
    ("jostle only some columns present, others untouched", "jostle", {"headers": ["Username", "Org"], "edits": {0: {"Org": "Executive|Board"}}},
     [("update", 2, "sarah.lee", {"Org": ("Executive", "Executive|Board")})]),
    ("scim rename", "scim", {"edits": {1: {"Username": "bob.ray"}}},
     [("rename", 3, "bob.ray", {"Username": ("bob", "bob.ray")})]),
    ("scim case-only rename", "scim", {"edits": {1: {"Username": "Bob"}}},
     [("rename", 3, "Bob", {"Username": ("bob", "Bob")})]),
    ("scim archive", "scim", {"edits": {0: {"Status": "Archived", "Job title": "Former engineer"}}},
     [("archive", 2, "ann", {"Status": ("Active", "Archived"), "Job title": ("Engineer", "Former engineer")})]),
    ("scim blank keeps, clear word clears", "scim", {"edits": {0: {"Job title": None, "Department": "(clear)", "Locations": "(CLEAR)", "Groups": None}}},
     [("update", 2, "ann", {"Department": ("R&D", None), "Locations": ("Paris", None)})]),
    ("scim clear word on a blank field is nothing", "scim", {"edits": {1: {"Job title": "(clear)"}}}, []),
    ("scim create", "scim", {"new": [{"Username": "cy", "First name": "Cy", "Last name": "Z", "Email": "cy@example.com", "Status": "Active", "Job title": "(clear)"}]},
     [("create", 4, "cy", {"Username": (None, "cy"), "First name": (None, "Cy"), "Last name": (None, "Z"), "Email": (None, "cy@example.com"), "Status": (None, "Active")})]),
    ("scim rename and archive together count as archive", "scim", {"edits": {0: {"Username": "ann.old", "Status": "Archived"}}},
     [("archive", 2, "ann.old", {"Status": ("Active", "Archived"), "Username": ("ann", "ann.old")})]),
    ("scim numbers and dates from Excel compare as text", "scim", {"edits": {0: {"Employee ID": "0042", "External ID": "E42"}}}, []),
]


@pytest.mark.parametrize(("name", "kwargs", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_actions(name: str, kwargs: dict[str, Any], expected: list[tuple[str, int | None, str, dict[str, Any]]]) -> None:
    assert [summary(c) for c in changed(run(name, **kwargs))] == expected


# --- key changes on immutable-key platforms: an error with the seed's advice -------------------


@pytest.mark.parametrize(
    ("name", "row", "column", "new", "cell", "advice"),
    [
        ("progression", 0, "email", "ann.lee@example.com", "C2", "Change the email on the People page first"),
        ("edapp", 0, "Username", "ann.lee", "B2", "Change the username on the learner's profile instead."),
        ("incenteev", 1, "Email", "hugo.b@example.com", "C3", "Change the address in the platform first"),
        ("jostle", 1, "Username", "dcohen", "A3", "A System Admin can change a user's Work email/Username by editing their Profile."),
    ],
)
def test_an_edited_key_is_an_error_never_a_new_user(name: str, row: int, column: str, new: str, cell: str, advice: str) -> None:
    old = USERS[name][row][column]
    [change] = changed(run(name, edits={row: {column: new}}))
    assert (change.action, change.key, change.old_key) == ("error", new, old)
    [problem] = change.problems
    assert (problem.code, problem.cell, problem.column, problem.value, problem.fix) == ("key-changed", cell, column, new, old)
    assert f"was {old!r} at export and is now {new!r}" in problem.message
    assert advice in problem.message
    assert problem.render().startswith(f"Users!{cell} {column}: the key {load_dialect(name).key!r} was")


def test_edapp_blank_username_that_would_become_another_learner_is_a_key_change() -> None:
    # Ann's username 'ann' differs from her email: a blank Username means username = email, a new learner.
    [change] = changed(run("edapp", edits={0: {"Username": None}}))
    assert (change.action, change.key, change.old_key) == ("error", "ann@example.com", "ann")
    assert change.problems[0].cell == "B2"


# --- lists: add vs replace -------------------------------------------------------------------------


def test_add_mode_keeps_removed_items_and_says_so() -> None:
    settings = Settings.for_dialect("edapp", list_mode="add")
    [change] = changed(run("edapp", edits={0: {"User groups": "marketing; sales", "Roles": "Reviewer"}}, settings=settings))
    assert summary(change)[3] == {
        "User groups": ("marketing; operations", "marketing; operations; sales"),
        "Roles": ("Admin; Learner; Prizing User", "Admin; Learner; Prizing User; Reviewer"),
    }
    assert change.notes == (
        "'operations' is not removed from User groups: list_mode is add",
        "'Admin' is not removed from Roles: list_mode is add",
        "'Learner' is not removed from Roles: list_mode is add",
        "'Prizing User' is not removed from Roles: list_mode is add",
    )


def test_add_mode_with_only_removals_changes_nothing_but_keeps_the_note() -> None:
    settings = Settings.for_dialect("edapp", list_mode="add")
    changes = run("edapp", edits={1: {"User groups": "sales", "Roles": "Learner; Prizing User"}}, settings=settings)
    assert [summary(c) for c in changed(changes)] == [("update", 3, "bob@example.com", {"User groups": ("operations", "operations; sales")})]
    changes = run("edapp", edits={1: {"User groups": None}}, settings=settings)
    assert changed(changes) == []


def test_replace_mode_drops_removed_default_roles_only_with_a_note() -> None:
    [change] = [c for c in run("edapp", edits={0: {"Roles": "Admin; Reviewer"}}) if c.row == 2]
    assert summary(change)[3] == {"Roles": ("Admin; Learner; Prizing User", "Admin; Reviewer; Learner; Prizing User")}
    assert change.notes == (
        "'Learner' stays in Roles: EdApp (SafetyCulture Training) keeps it for every user imported from a file",
        "'Prizing User' stays in Roles: EdApp (SafetyCulture Training) keeps it for every user imported from a file",
    )


def test_scim_lists_add_mode_clear_word_removes_nothing() -> None:
    settings = Settings.for_dialect("scim", list_mode="add")
    [change] = changed(run("scim", edits={0: {"Groups": "(clear)", "Roles": "Learner; Author"}}, settings=settings))
    assert summary(change)[3] == {"Roles": ("Learner", "Learner; Author")}
    assert change.notes == ("'staff' is not removed from Groups: list_mode is add", "'engineering' is not removed from Groups: list_mode is add")


# --- values, write-only columns, custom fields ---------------------------------------------------


def test_update_values_are_the_full_intended_row() -> None:
    [change] = changed(run("jostle", edits={1: {"Job Title": "COO"}}, headers=["Username", "Job Title"]))
    assert change.values == {**USERS["jostle"][1], "Job Title": "COO"}


def test_a_password_is_a_change_when_filled_and_never_in_values_or_fields() -> None:
    [change] = changed(run("edapp", edits={1: {"Password": "S3cret!pass"}}))
    assert change.secrets == {"Password": "S3cret!pass"}
    assert "Password" not in change.values
    assert "S3cret" not in repr(change)
    [create] = changed(run("edapp", new=[{"Email": "cy@example.com", "Password": "Other#pass1"}]))
    assert create.secrets == {"Password": "Other#pass1"}
    assert create.fields["Password"] == FieldChange(None, SET_MARK)
    assert "Password" not in create.values


def test_custom_fields_are_compared_when_the_export_recorded_them() -> None:
    users = [{**USERS["edapp"][0], "Job Title": "Lead"}]
    headers = [*load_dialect("edapp").column_names, "Job Title", "Department"]
    table = sheet_of("edapp", [("r0", {**users[0], "Job Title": "Head", "Department": "Ops"})], headers)
    snap = snapshot_of("edapp", [users[0]])
    snap = [SnapshotRow("r0", "ann", None, None, {**snap[0].values, "Job Title": "Lead"})]
    [change] = diff(table, snap, Settings.for_dialect("edapp"))
    assert summary(change) == ("update", 2, "ann", {"Job Title": ("Lead", "Head")})
    table = sheet_of("edapp", [(None, {"Email": "cy@example.com", "Department": "Ops"})], headers)
    [create] = diff(table, [], Settings.for_dialect("edapp"))
    assert create.values["Department"] == "Ops"
    assert create.fields["Department"] == FieldChange(None, "Ops")


def test_excel_numbers_and_dates_compare_as_their_text() -> None:
    import datetime as dt

    changes = run("jostle", edits={0: {"Start Date": dt.datetime(2015, 3, 2), "Employee ID": "000101"}})
    assert changed(changes) == []
    [change] = changed(run("jostle", edits={0: {"Employee ID": 101.0}}))
    assert summary(change)[3] == {"Employee ID": ("000101", "101")}


# --- row identity -------------------------------------------------------------------------------------


def test_rows_are_matched_by_row_id_whatever_their_order() -> None:
    users = USERS["progression"]
    rows: list[tuple[str | None, dict[str, Any]]] = [("r2", {**users[2], "Last Name": "Ng-Smith"}), (None, {"First Name": "Dan", "Last Name": "Wu", "email": "dan@example.com", "account_active": "Active"}),
            ("r0", users[0]), ("r1", users[1])]
    changes = diff(sheet_of("progression", rows), snapshot_of("progression", users), Settings.for_dialect("progression"))
    assert [(c.action, c.row, c.row_id, c.key) for c in changes] == [
        ("update", 2, "r2", "cat@example.com"), ("create", 3, None, "dan@example.com"),
        ("unchanged", 4, "r0", "ann@example.com"), ("unchanged", 5, "r1", "bob@example.com"),
    ]


def test_a_new_row_with_the_key_of_a_user_removed_from_the_sheet_updates_that_user() -> None:
    users = USERS["progression"]
    rows = [("r0", users[0]), (None, {**users[1], "Last Name": "Ray-Jones"})]
    [first, second] = diff(sheet_of("progression", rows), snapshot_of("progression", users), Settings.for_dialect("progression"))
    assert first.action == "unchanged"
    assert summary(second) == ("update", 3, "bob@example.com", {"Last Name": ("Ray", "Ray-Jones")})
    assert second.row_id == "r1"
    assert second.notes == ("matched to the exported user 'bob@example.com' by key: the row has no row id of that user",)


def test_a_copied_row_keeps_the_identity_on_the_original_and_the_copy_is_new() -> None:
    users = USERS["progression"][:1]
    copy = {**users[0], "First Name": "Eve", "email": "eve@example.com"}
    for rows in ([("r0", copy), ("r0", users[0])], [("r0", users[0]), ("r0", copy)]):
        changes = diff(sheet_of("progression", rows), snapshot_of("progression", users), Settings.for_dialect("progression"))
        by_key = {c.key: c for c in changes}
        assert by_key["ann@example.com"].action == "unchanged"
        assert by_key["eve@example.com"].action == "create"
        assert "same hidden row id" in by_key["eve@example.com"].notes[0]


def test_an_unknown_row_id_is_a_new_user_with_a_note() -> None:
    users = USERS["progression"]
    rows = [("zz", {"First Name": "Dan", "Last Name": "Wu", "email": "dan@example.com", "account_active": "Active"})]
    [change] = diff(sheet_of("progression", rows), snapshot_of("progression", users), Settings.for_dialect("progression"))
    assert (change.action, change.notes) == ("create", ("the hidden row id is not in this workbook's snapshot: treated as a new user",))


# --- users removed from the sheet -------------------------------------------------------------------


@pytest.mark.parametrize(("deactivate", "expected"), [(False, []), (True, [("deactivate", None, "claire@example.com", {})])])
def test_incenteev_deactivate_missing(deactivate: bool, expected: list[Any]) -> None:
    settings = Settings.for_dialect("incenteev", deactivate_missing=deactivate)
    changes = run("incenteev", drop=[0], settings=settings)
    assert [summary(c) for c in changed(changes)] == expected
    if deactivate:
        assert changes[-1].values == USERS["incenteev"][0]


def test_deactivate_missing_means_nothing_where_the_platform_has_no_such_option() -> None:
    settings = Settings.for_dialect("progression", deactivate_missing=True)
    assert changed(run("progression", drop=[0, 1], settings=settings)) == []


def test_settings_for_another_dialect_are_a_usage_error() -> None:
    table, snapshot = edited("edapp")
    with pytest.raises(UsageError, match="the settings are for 'progression' but the sheet is read as 'edapp'"):
        diff(table, snapshot, Settings.for_dialect("progression"))


def test_diff_leaves_the_garbage_collector_as_it_found_it() -> None:
    import gc

    table, snapshot = edited("progression", edits={0: {"Last Name": "X"}})
    assert gc.isenabled()
    diff(table, snapshot, Settings.for_dialect("progression"))
    assert gc.isenabled()
    gc.disable()
    try:
        diff(table, snapshot, Settings.for_dialect("progression"))
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_sheet_without_the_key_column_cannot_change_the_key() -> None:
    # EdApp's Username column deleted: Ann's email is not her username, yet she is the same learner.
    headers = ["Email", "First Name", "Last Name", "User groups", "Roles", "External ID"]
    [change] = changed(run("edapp", edits={0: {"First Name": "Anne"}}, headers=headers))
    assert summary(change) == ("update", 2, "ann", {"First Name": ("Ann", "Anne")})
    [create] = changed(run("edapp", new=[{"Email": "cy@example.com"}], headers=headers))
    assert (create.action, create.key) == ("create", "cy@example.com")
