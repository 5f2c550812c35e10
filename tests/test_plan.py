"""make_plan(): errors, skipped rows, conflicts, the deletion guard, invitations, seats, JSON and text; properties."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from test_diff import USERS, edited, sheet_of, snapshot_of

from rosterbook.core.codecs import canonical, split_list
from rosterbook.core.dialects import load_dialect
from rosterbook.core.diff import Change, FieldChange
from rosterbook.core.plan import (
    ACTIONS,
    Blocker,
    Conflict,
    Current,
    Plan,
    Settings,
    apply_change,
    deletion_threshold,
    holds_values,
    make_plan,
)
from rosterbook.core.problems import Problem
from rosterbook.core.table import SnapshotRow, Table, build_table
from rosterbook.errors import UsageError


def plan_of(name: str, *args: Any, settings: Settings | None = None, plan_kwargs: Mapping[str, Any] | None = None, **kwargs: Any) -> Plan:
    table, snapshot = edited(name, *args, **kwargs)
    return make_plan(table, snapshot, settings or Settings.for_dialect(name), **(plan_kwargs or {}))


def people(count: int, status: str = "Active", start: int = 0) -> list[dict[str, str | None]]:
    return [
        {"First Name": f"P{i}", "Last Name": "Test", "email": f"p{i}@example.com", "position": None, "team": "Core", "manager": None, "account_active": status}
        for i in range(start, start + count)
    ]


def new_person(email: str, status: str | None) -> dict[str, str | None]:
    return {"First Name": "New", "Last Name": "Person", "email": email, "account_active": status}


# --- settings ----------------------------------------------------------------------------------------


def test_settings_take_the_dialect_option_defaults() -> None:
    assert Settings.for_dialect("edapp") == Settings("edapp", invite_new_users=False, list_mode="replace", deactivate_missing=False)
    assert Settings.for_dialect("incenteev", deactivate_missing=True).deactivate_missing is True
    assert Settings.for_dialect(load_dialect("scim"), subscription_seats=10).subscription_seats == 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"list_mode": "merge"}, "list_mode 'merge' is not one of 'add', 'replace'."),
        ({"deletion_threshold_ratio": 1.5}, "deletion_threshold_ratio 1.5 is not between 0 and 1."),
        ({"deletion_threshold_min": -1}, "deletion_threshold_min -1 is negative."),
        ({"subscription_seats": -3}, "subscription_seats -3 is negative."),
    ],
)
def test_bad_settings_are_usage_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as info:
        Settings("progression", **kwargs)
    assert str(info.value) == message


# --- errors and skipped rows -----------------------------------------------------------------------


def _problem(row: int, severity: str = "error", cell: str = "D") -> Problem:
    return Problem(severity, "Users", f"{cell}{row}", row, "position", "x", "test-problem", "a test problem.")  # type: ignore[arg-type]


def test_rows_with_errors_are_not_sent_and_skipped_rows_are_left_out() -> None:
    edits = {0: {"Last Name": "A"}, 1: {"Last Name": "B"}, 2: {"Last Name": "C"}}
    problems = [_problem(2), _problem(3), _problem(4, "warning")]
    plan = plan_of("progression", edits=edits, plan_kwargs={"problems": problems, "skip_rows": [3]})
    assert [(c.action, c.row) for c in plan.changes] == [("update", 4), ("error", 2)]
    assert plan.changes[1].problems == (problems[0],)
    assert [(c.action, c.row) for c in plan.skipped] == [("update", 3)]
    assert [c.row for c in plan.sendable()] == [4]
    assert plan.counts["error"] == 1 and plan.counts["update"] == 1
    assert plan.to_dict()["skipped"] == [{"row": 3, "key": "bob@example.com", "action": "update"}]
    assert plan.problems == tuple(problems)


def test_an_unchanged_row_with_an_error_stays_unchanged() -> None:
    plan = plan_of("progression", plan_kwargs={"problems": [_problem(2)]})
    assert plan.counts["unchanged"] == 3 and plan.counts["error"] == 0


def test_a_key_change_error_is_among_the_plan_problems() -> None:
    plan = plan_of("progression", edits={0: {"email": "ann.lee@example.com"}})
    assert [p.code for p in plan.problems] == ["key-changed"]
    assert plan.sendable() == []
    skipped = plan_of("progression", edits={0: {"email": "ann.lee@example.com"}}, plan_kwargs={"skip_rows": [2]})
    assert skipped.counts["error"] == 0 and [c.row for c in skipped.skipped] == [2]


def test_a_header_error_refuses_the_whole_plan() -> None:
    dialect = load_dialect("progression")
    table = build_table("Users", dialect, ["First Name", "email", "Nickname"], [["Ann", "ann@example.com", "A"]], ["r0"])
    plan = make_plan(table, snapshot_of("progression", USERS["progression"][:1]), Settings.for_dialect("progression"))
    assert plan.refused
    assert plan.refusal is not None and plan.refusal.startswith("the sheet itself has 2 error(s)")
    assert plan.sendable() == []


# --- conflicts --------------------------------------------------------------------------------------


def test_a_user_changed_on_the_platform_since_export_is_a_conflict() -> None:
    now = {**USERS["scim"][0], "Job title": "Staff engineer"}
    current = {"id-0": Current('W/"7"', now), "id-1": Current('W/"1"', USERS["scim"][1])}
    plan = plan_of("scim", edits={0: {"Job title": "Lead"}, 1: {"Job title": "Tester"}}, plan_kwargs={"current": current})
    [conflict] = [c for c in plan.changes if c.action == "conflict"]
    assert (conflict.row, conflict.fields, conflict.current) == (2, {"Job title": FieldChange("Engineer", "Lead")}, now)
    assert conflict.notes == ("changed on the platform since the export (Job title): not overwritten",)
    assert [c.row for c in plan.sendable()] == [3]
    text = plan.render_text()
    assert "  Job title: exported 'Engineer' -> now on the platform 'Staff engineer' -> in the sheet 'Lead'" in text
    assert plan.to_dict()["changes"][1]["current"]["Job title"] == "Staff engineer"
    assert plan.to_dict()["changes"][1]["conflicts"] == {"Job title": {"exported": "Engineer", "platform": "Staff engineer", "sheet": "Lead"}}


@pytest.mark.parametrize("version", [None, 'W/"7"'])
def test_conflicts_are_decided_by_the_values_sent_not_by_versions(version: str | None) -> None:
    # Row 2 sends Job title, which the platform changed; row 3 sends Job title, while the platform changed
    # only Last name. With or without versions, only the values decide.
    current = {"id-0": Current(version, {**USERS["scim"][0], "Job title": "Staff engineer"}),
               "id-1": Current(version, {**USERS["scim"][1], "Last name": "Changed"})}
    plan = plan_of("scim", edits={0: {"Job title": "Lead"}, 1: {"Job title": "Tester"}}, plan_kwargs={"current": current})
    conflicts = {c.row: dict(c.conflicts) for c in plan.changes if c.action == "conflict"}
    assert conflicts == {2: {"Job title": Conflict("Engineer", "Staff engineer", "Lead")}}
    [update] = plan.sendable()
    assert update.row == 3 and update.version == version  # sent with the version just read (its If-Match), not the exported one


def test_a_user_renamed_on_the_platform_is_a_conflict_of_the_key() -> None:
    current = {"id-1": Current(None, {**USERS["scim"][1], "Username": "robert"})}
    plan = plan_of("scim", edits={1: {"Job title": "Tester"}}, plan_kwargs={"current": current})
    [conflict] = [c for c in plan.changes if c.action == "conflict"]
    assert dict(conflict.conflicts) == {"Username": Conflict("bob", "robert", "bob")}
    assert "  Username: exported 'bob' -> now on the platform 'robert' -> in the sheet 'bob'" in plan.render_text()


def test_the_platform_already_holding_the_edit_is_adopted_with_or_without_versions() -> None:
    current = {"id-0": Current(None, {**USERS["scim"][0], "Job title": "Lead"})}
    plan = plan_of("scim", edits={0: {"Job title": "Lead"}}, plan_kwargs={"current": current})
    assert plan.counts["update"] == 0 and [s.values["Job title"] for s in plan.adopted] == ["Lead"]


def test_no_conflict_without_a_version_to_compare_or_without_a_change() -> None:
    current = {"id-0": Current(None, {}), "id-1": Current('W/"9"', {})}
    plan = plan_of("scim", edits={0: {"Job title": "Lead"}}, plan_kwargs={"current": current})
    assert plan.counts["conflict"] == 0 and plan.counts["update"] == 1 and plan.counts["unchanged"] == 1


# --- the deletion guard ------------------------------------------------------------------------------


def test_a_truncated_incenteev_file_with_deactivate_missing_trips_the_guard() -> None:
    users = [{**USERS["incenteev"][0], "Email": f"u{i}@example.com"} for i in range(100)]
    settings = Settings.for_dialect("incenteev", deactivate_missing=True)
    plan = plan_of("incenteev", users, drop=list(range(60, 100)), settings=settings)
    assert plan.counts["deactivate"] == 40
    assert plan.guard.to_dict() == {"tripped": True, "deactivations": 40, "threshold": 25, "confirmed": False, "active": 100,
                                    "losing_access": [f"u{i}@example.com" for i in range(60, 100)]}
    assert plan.guard["tripped"] is True
    assert plan.refused and plan.sendable() == []
    assert plan.refusal == ("40 users would lose access (archived, deactivated or set to a status that cannot log in), more than the deletion guard "
                            "allows (25); confirm the deletions to go ahead.")
    assert ("Deletion guard: 40 lose access ('u60@example.com', 'u61@example.com', 'u62@example.com', 'u63@example.com', 'u64@example.com' "
            "and 35 more: archived, deactivated or set to a status that cannot log in), more than 25 (10% of 100 active users, at least 25): "
            "refused unless confirmed.") in plan.render_text()
    confirmed = plan_of("incenteev", users, drop=list(range(60, 100)), settings=settings, plan_kwargs={"confirm_deletions": True})
    assert not confirmed.refused and len(confirmed.sendable()) == 40
    off = plan_of("incenteev", users, drop=list(range(60, 100)))
    assert not off.guard.tripped and off.counts["deactivate"] == 0


def test_the_guard_counts_every_loss_of_access_together() -> None:
    # 250 users, every Active one set to Pending (nobody of them can log in afterwards): the guard trips.
    users = people(215) + people(35, "Pending", start=215)
    plan = plan_of("progression", users, edits={i: {"account_active": "Pending"} for i in range(215)})
    assert plan.counts["update"] == 215 and plan.counts["archive"] == 0
    assert plan.guard.tripped and plan.guard.deactivations == 215 and plan.refused
    assert plan.guard.losing[:2] == ("p0@example.com", "p1@example.com")
    # Mixed: archives, Active -> Pending, Pending -> Archived all count, once each; Pending -> Active does not.
    mixed = plan_of("progression", users, edits={0: {"account_active": "Archived"}, 1: {"account_active": "Pending"},
                                                 215: {"account_active": "Archived"}, 216: {"account_active": "Active"}})
    assert mixed.guard.losing == ("p1@example.com", "p0@example.com", "p215@example.com")
    assert not mixed.guard.tripped


@pytest.mark.parametrize(
    ("active", "archived", "archive", "threshold", "tripped"),
    [
        (300, 0, 30, 30, False),
        (300, 0, 31, 30, True),
        (255, 0, 26, 25, True),  # 10% of 255 is 25.5: 26 is more
        (50, 0, 25, 25, False),  # the minimum of 25 wins over 10% of 50
        (50, 0, 26, 25, True),
        (40, 400, 26, 25, True),  # archived users are not active users
    ],
)
def test_the_guard_threshold_is_the_larger_of_the_ratio_and_the_minimum(active: int, archived: int, archive: int, threshold: int, tripped: bool) -> None:
    users = people(active) + people(archived, "Archived", start=active)
    plan = plan_of("progression", users, edits={i: {"account_active": "Archived"} for i in range(archive)})
    assert (plan.counts["archive"], plan.guard.threshold, plan.guard.tripped, plan.refused) == (archive, threshold, tripped, tripped)


def test_guard_settings_are_honoured() -> None:
    settings = Settings.for_dialect("progression", deletion_threshold_ratio=0.5, deletion_threshold_min=0)
    plan = plan_of("progression", people(10), edits={i: {"account_active": "Archived"} for i in range(6)}, settings=settings)
    assert (plan.guard.threshold, plan.guard.tripped) == (5, True)


# --- invitations and seats ---------------------------------------------------------------------------


def test_progression_invites_new_users_created_active_and_pending_users_made_active() -> None:
    # 000: "Pending users have not yet been sent an invite"; 001: users imported Active get one. Bob is Pending.
    new = [new_person("a@example.com", "Active"), new_person("p@example.com", "Pending")]
    plan = plan_of("progression", new=new, edits={1: {"account_active": "Active"}})
    assert plan.invitations == ("a@example.com", "bob@example.com")
    assert plan.to_dict()["invitations"] == {"count": 2, "keys": ["a@example.com", "bob@example.com"]}
    assert [c.invite for c in plan.changes if c.action == "create"] == [True, False]
    bob = next(c for c in plan.changes if c.key == "bob@example.com")
    assert bob.invite and "Pending -> Active: Progression may send an invitation email" in bob.notes[0]


def test_archived_to_active_is_not_counted_as_an_invitation() -> None:
    # The seeds say nothing of invitations on re-activation: Archived users were invited once already.
    users = people(2, "Archived")
    plan = plan_of("progression", users, edits={0: {"account_active": "Active"}})
    assert plan.counts["update"] == 1 and plan.invitations == ()


@pytest.mark.parametrize(("toggle", "expected"), [(True, ("cy@example.com", "dee")), (False, ())])
def test_edapp_invites_new_users_when_the_toggle_is_on(toggle: bool, expected: tuple[str, ...]) -> None:
    new = [{"Email": "cy@example.com"}, {"Email": "dee@example.com", "Username": "dee"}]
    plan = plan_of("edapp", new=new, settings=Settings.for_dialect("edapp", invite_new_users=toggle))
    assert plan.invitations == expected
    assert plan.seats is None and plan.to_dict()["seats"] is None


def test_new_users_with_errors_get_no_invitation() -> None:
    plan = plan_of("progression", new=[new_person("a@example.com", "Active")], plan_kwargs={"problems": [_problem(5)]})
    assert plan.invitations == ()


@pytest.mark.parametrize(
    ("subscription", "before_active", "expected"),
    [
        (None, 2, {"before": 2, "after": 4, "subscription": None, "extra_billed": None, "over_subscription": None, "change": 2}),
        (3, 2, {"before": 2, "after": 4, "subscription": 3, "extra_billed": 1, "over_subscription": 1, "change": 2}),
        (10, 2, {"before": 2, "after": 4, "subscription": 10, "extra_billed": 0, "over_subscription": 0, "change": 2}),
        (1, 2, {"before": 2, "after": 4, "subscription": 1, "extra_billed": 2, "over_subscription": 3, "change": 2}),
    ],
)
def test_seats_before_and_after_against_the_subscription(subscription: int | None, before_active: int, expected: dict[str, Any]) -> None:
    users = people(before_active) + people(2, "Pending", start=before_active)
    edits = {0: {"account_active": "Archived"}, before_active: {"account_active": "Active"}, before_active + 1: {"account_active": "Active", "Last Name": "Err"}}
    new = [new_person("a@example.com", "Active"), new_person("b@example.com", "Active"), new_person("c@example.com", "Pending")]
    settings = Settings.for_dialect("progression", subscription_seats=subscription)
    # The last Pending -> Active row has an error: it is not sent, so it takes no seat.
    plan = plan_of("progression", users, edits=edits, new=new, settings=settings, plan_kwargs={"problems": [_problem(2 + before_active + 1)]})
    assert plan.seats is not None
    assert plan.seats.to_dict() == expected
    assert plan.seats["after"] == expected["after"]


def test_seats_line_in_the_preview() -> None:
    plan = plan_of("progression", new=[new_person("a@example.com", "Active")], settings=Settings.for_dialect("progression", subscription_seats=2))
    assert "Seats: 2 -> 3 (subscription 2; 1 extra seat billed pro rata)" in plan.render_text().splitlines()


# --- order, JSON and text ----------------------------------------------------------------------------


def test_changes_are_sorted_by_action_then_row_and_counts_list_every_action() -> None:
    plan = plan_of(
        "progression",
        edits={0: {"account_active": "Archived"}, 2: {"Last Name": "Z"}, 1: {"email": "x@example.com"}},
        new=[new_person("a@example.com", "Pending")],
    )
    assert [(c.action, c.row) for c in plan.changes] == [("create", 5), ("update", 4), ("archive", 2), ("error", 3)]
    assert list(plan.counts) == list(ACTIONS)
    assert plan.counts == {"create": 1, "update": 1, "archive": 1, "rename": 0, "conflict": 0, "unchanged": 0, "deactivate": 0, "error": 1}


def test_the_json_form() -> None:
    plan = plan_of("scim", edits={1: {"Username": "bob.ray"}}, new=[{"Username": "cy", "Email": "cy@example.com", "Status": "Active"}],
                   settings=Settings.for_dialect("scim", subscription_seats=5))
    data = plan.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["counts"]["unchanged"] == 1
    assert data["changes"] == [
        {"action": "create", "row": 4, "key": "cy", "old_key": None,
         "fields": {"Username": {"from": None, "to": "cy"}, "Email": {"from": None, "to": "cy@example.com"}, "Status": {"from": None, "to": "Active"}},
         "notes": [], "invite": True, "current": None, "problems": []},
        {"action": "rename", "row": 3, "key": "bob.ray", "old_key": "bob", "fields": {"Username": {"from": "bob", "to": "bob.ray"}},
         "notes": [], "invite": False, "current": None, "problems": []},
    ]
    assert data["seats"] == {"before": 1, "after": 2, "subscription": 5, "extra_billed": 0, "over_subscription": 0, "change": 1}
    assert data["invitations"] == {"count": 1, "keys": ["cy"]}
    assert data["guard"]["tripped"] is False and data["refused"] is False


def test_unchanged_rows_with_notes_are_listed() -> None:
    plan = plan_of("edapp", edits={0: {"Roles": "Admin"}})
    assert plan.counts["unchanged"] == 2
    assert [(c["action"], c["row"]) for c in plan.to_dict()["changes"]] == [("unchanged", 2)]


def test_the_text_preview() -> None:
    plan = plan_of(
        "progression",
        edits={0: {"Last Name": "Lee-Smith", "team": None}, 1: {"account_active": "Archived"}},
        new=[new_person("dan@example.com", "Active")],
        settings=Settings.for_dialect("progression", subscription_seats=2),
    )
    assert plan.render_text() == "\n".join([
        "Plan for Progression: 1 create, 1 update, 1 archive, 0 rename, 0 conflict, 1 unchanged, 0 deactivate, 0 error",
        "Invitation emails: 1 (dan@example.com)",
        "Seats: 2 -> 3 (subscription 2; 1 extra seat billed pro rata)",
        "Losing access: 1 ('bob@example.com'), within the deletion guard's threshold of 25.",
        "",
        "create row 5 dan@example.com (invitation email)",
        "  First Name: (blank) -> 'New'",
        "  Last Name: (blank) -> 'Person'",
        "  email: (blank) -> 'dan@example.com'",
        "  account_active: (blank) -> 'Active'",
        "",
        "update row 2 ann@example.com",
        "  Last Name: 'Lee' -> 'Lee-Smith'",
        "",
        "archive row 3 bob@example.com",
        "  account_active: 'Pending' -> 'Archived'",
    ])


def test_the_text_preview_never_shows_a_password() -> None:
    plan = plan_of("edapp", edits={0: {"Password": "Hunter2!x"}})
    assert "  Password: (blank) -> (set)" in plan.render_text()
    assert "Hunter2" not in plan.render_text() + json.dumps(plan.to_dict())


# --- apply_change -------------------------------------------------------------------------------------


def test_apply_change_gives_the_confirmed_snapshot_entry() -> None:
    table, snapshot = edited("scim", edits={0: {"Job title": "Lead"}}, new=[{"Username": "cy", "Status": "Pending"}])
    plan = make_plan(table, snapshot, Settings.for_dialect("scim"))
    update, create = (next(c for c in plan.changes if c.action == a) for a in ("update", "create"))
    after = apply_change(snapshot[0], update, version='W/"2"')
    assert after == SnapshotRow("r0", "ann", "id-0", 'W/"2"', {**snapshot[0].values, "Job title": "Lead"})
    new = apply_change(None, create, resource_id="id-9", version='W/"1"', row_id="n1")
    assert (new.row_id, new.key, new.resource_id, new.values["Status"], new.values["Team"]) == ("n1", "cy", "id-9", "Pending", None)
    with pytest.raises(ValueError, match="needs a row_id"):
        apply_change(None, create)
    with pytest.raises(ValueError, match="never sent"):
        apply_change(snapshot[0], Change("error", 2, "r0", "ann"))


def test_apply_change_drops_passwords() -> None:
    plan = plan_of("edapp", edits={0: {"Password": "Hunter2!x", "First Name": "Anne"}})
    [update] = plan.sendable()
    entry = apply_change(snapshot_of("edapp", USERS["edapp"])[0], update)
    assert "Password" not in entry.values and entry.values["First Name"] == "Anne"


# --- properties ----------------------------------------------------------------------------------------

_WORD = st.text(alphabet="abcdeXYZ éü'", min_size=1, max_size=6).map(str.strip).filter(bool)


def _value(name: str, column: str) -> st.SearchStrategy[str]:
    """Canonical values for one column of one dialect."""
    col = load_dialect(name).column(column)
    if col.type == "email":
        return st.sampled_from("abcdefgh").map(lambda c: f"{c}@example.com")
    if col.type == "status":
        return st.sampled_from([w.word for w in load_dialect(name).status_words])
    if col.type == "list":
        separator = col.separator or "; "
        item = st.text(alphabet="abcXY |" if col.escape else "abcXY ", min_size=1, max_size=5).map(str.strip).filter(lambda s: bool(s) and not s.startswith("|") and not s.endswith("|"))
        if col.choices:
            item = st.sampled_from(col.choices)
        return st.lists(item, min_size=1, max_size=3, unique=True).map(lambda items: canonical(separator.join(items) if not col.escape else "|".join(i.replace("|", "\\|") for i in items), "list", separator=separator, escape=col.escape))
    if col.type in ("id", "phone"):
        return st.text(alphabet="0123456789", min_size=1, max_size=6)
    if col.type == "date":
        return st.dates().map(lambda d: d.isoformat())
    if col.choices:
        return st.sampled_from(col.choices)
    return _WORD


@st.composite
def _users(draw: st.DrawFn, name: str, count: int) -> list[dict[str, str | None]]:
    dialect = load_dialect(name)
    users = []
    for index in range(count):
        user: dict[str, str | None] = {}
        for col in dialect.columns:
            if col.write_only:
                continue
            blankable = col.required == "never" and col.name != dialect.key
            user[col.name] = None if blankable and draw(st.booleans()) else draw(_value(name, col.name))
        key = dialect.key
        user[key] = f"u{index}@example.com" if dialect.column(key).type == "email" else f"user{index}"
        users.append(user)
    return users


def _headers(draw: st.DrawFn, name: str) -> list[str]:
    dialect = load_dialect(name)
    if not dialect.partial_columns:
        return list(dialect.column_names)
    others = [c for c in dialect.column_names if c != dialect.key]
    return [dialect.key, *draw(st.lists(st.sampled_from(others), unique=True, max_size=len(others)))]


@st.composite
def _unedited(draw: st.DrawFn, name: str) -> tuple[Table, list[SnapshotRow]]:
    users = draw(_users(name, draw(st.integers(0, 5))))
    snapshot = snapshot_of(name, users)
    order = draw(st.permutations(range(len(users))))
    rows = [(snapshot[i].row_id, users[i]) for i in order]
    return sheet_of(name, rows, _headers(draw, name)), snapshot


NAMES = sorted(USERS)


@pytest.mark.parametrize("name", NAMES)
@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_property_the_snapshot_as_a_sheet_has_no_changes(name: str, data: st.DataObject) -> None:
    table, snapshot = data.draw(_unedited(name))
    for mode in ("replace", "add"):
        plan = make_plan(table, snapshot, Settings.for_dialect(name, list_mode=mode, deactivate_missing=True))
        assert plan.counts["unchanged"] == len(snapshot)
        assert plan.sendable() == [] and plan.problems == ()


@st.composite
def _edited(draw: st.DrawFn, name: str) -> tuple[Table, list[SnapshotRow], list[tuple[str | None, dict[str, Any]]], list[str]]:
    dialect = load_dialect(name)
    users = draw(_users(name, draw(st.integers(1, 5))))
    snapshot = snapshot_of(name, users)
    headers = _headers(draw, name)
    rows: list[tuple[str | None, dict[str, Any]]] = []
    for index, user in enumerate(users):
        if draw(st.integers(0, 5)) == 0:
            continue  # removed from the sheet
        cells: dict[str, Any] = dict(user)
        for col in dialect.columns:
            if col.name == dialect.key and not dialect.key_mutable:
                continue  # an edited immutable key is an error, tested elsewhere
            choice = draw(st.integers(0, 6))
            if choice == 1:
                cells[col.name] = None
            elif choice == 2 and col.clear_word:
                cells[col.name] = col.clear_word
            elif choice == 3:
                cells[col.name] = draw(_value(name, col.name)) if not col.write_only else "Pass#word1"
        if dialect.key_mutable and cells[dialect.key] != user[dialect.key]:
            cells[dialect.key] = f"renamed{index}"  # a rename to a key nobody else has
        rows.append((f"r{index}", cells))
    for index in range(draw(st.integers(0, 2))):
        new = draw(_users(name, 1))[0]
        new[dialect.key] = f"new{index}@example.com" if dialect.column(dialect.key).type == "email" else f"new{index}"
        rows.insert(draw(st.integers(0, len(rows))), (None, new))
    return sheet_of(name, rows, headers), snapshot, rows, headers


def _items(text: str | None, separator: str, escape: str | None) -> set[str]:
    return set(split_list(text, separator, escape)) if text else set()


@pytest.mark.parametrize("name", NAMES)
@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_property_applying_the_plan_yields_the_edited_rows(name: str, data: st.DataObject) -> None:
    dialect = load_dialect(name)
    table, snapshot, rows, headers = data.draw(_edited(name))
    mode = data.draw(st.sampled_from(["replace", "add"]))
    settings = Settings.for_dialect(name, list_mode=mode, deactivate_missing=data.draw(st.booleans()))
    plan = make_plan(table, snapshot, settings, confirm_deletions=True)
    assert plan.counts["error"] == 0 and plan.counts["conflict"] == 0

    entries = {s.row_id: s for s in snapshot}
    row_ids: dict[int, str] = {}
    for change in plan.changes:
        if change.row is not None:
            row_ids[change.row] = change.row_id or f"n{change.row}"
    for change in plan.sendable():
        if change.action == "deactivate":
            assert change.row_id is not None
            del entries[change.row_id]
        elif change.action == "create":
            entries[row_ids[change.row or 0]] = apply_change(None, change, row_id=row_ids[change.row or 0])
        else:
            assert change.row_id is not None
            entries[change.row_id] = apply_change(entries[change.row_id], change)
    new_snapshot = list(entries.values())

    # The edited cells are now what the snapshot holds, as far as the platform takes them.
    before = {s.row_id: s for s in snapshot}
    for row in table.rows:
        entry = entries[row_ids[row.number]]
        old = before.get(row_ids[row.number])
        for col in dialect.columns:
            if col.write_only or col.name not in table.positions or col.requires or (col.name == dialect.key and not dialect.key_mutable):
                continue
            text = row.text(col.name)
            cleared = text is not None and col.clear_word is not None and text.casefold() == col.clear_word.casefold()
            was = old.values.get(col.name) if old is not None else col.default
            if col.type == "list":
                assert col.separator is not None
                got, had = _items(entry.values[col.name], col.separator, col.escape), _items(was, col.separator, col.escape)
                typed = set() if cleared else _items(text, col.separator, col.escape)
                retained = _items(col.default, col.separator, col.escape) if dialect.kind == "csv" else set()
                if old is None:
                    assert got == had if text is None else typed <= got <= typed | retained
                elif text is None and col.blank == "keep":
                    assert got == had
                elif mode == "add":
                    assert got == had | typed
                else:
                    assert typed <= got <= typed | (had & retained)
            elif text is None:
                assert entry.values[col.name] == (was if col.blank == "keep" or old is None else None)
            else:
                assert entry.values[col.name] == (None if cleared else text)

    # And the same sheet against the new snapshot is a plan with nothing to send (once the sync has
    # blanked the password cells it sent).
    sent = {c.name: None for c in dialect.columns if c.write_only}
    again = sheet_of(name, [(row_ids[r.number], {**cells, **sent}) for r, (_, cells) in zip(table.rows, rows, strict=True)], headers)
    replan = make_plan(again, new_snapshot, settings)
    assert [c for c in replan.changes if c.action != "unchanged"] == []


@pytest.mark.parametrize(
    ("users", "ratio", "minimum", "threshold"),
    [(255, 0.10, 25, 25), (259, 0.10, 0, 25), (300, 0.10, 25, 30), (0, 0.10, 25, 25), (1000, 0.5, 0, 500), (7, 1.0, 0, 7)],
)
def test_deletion_threshold_is_the_floor_of_the_ratio_or_the_minimum(users: int, ratio: float, minimum: int, threshold: int) -> None:
    # The one formula both guards use: the plan's (sync) and the export's (a cut-short CSV export).
    assert deletion_threshold(users, ratio, minimum) == threshold


@pytest.mark.parametrize(
    ("now", "wanted", "held"),
    [
        ({"User groups": "Sales; Ops"}, {"User groups": "Sales;Ops"}, True),  # canonical list spelling
        ({"User groups": "Sales; Ops"}, {"User groups": "Sales; Ops; HR"}, False),
        ({"First Name": "Ana"}, {"First Name": "Ana", "Password": "(set)"}, True),  # a password is never read back
        ({"First Name": "Ana"}, {"First Name": "Anna"}, False),
        ({}, {"First Name": "Ana"}, False),
        ({"First Name": None}, {"First Name": None}, True),
        ({"Cost centre": "42"}, {"Cost centre": "42"}, True),  # a custom field compares as text
        ({"Cost centre": "42"}, {"Cost centre": "042"}, False),
    ],
)
def test_holds_values_compares_canonical_text_without_passwords(now: dict[str, str | None], wanted: dict[str, str | None], held: bool) -> None:
    # The one comparison behind "the platform already has this edit" (re-export guard, adopting a sync that died).
    assert holds_values(load_dialect("edapp"), now, wanted) is held


# --- what a blocker says, in each front end's words ----------------------------------------------------------


def _every_blocker() -> list[Blocker]:
    """A plan blocked for each reason a sync refuses: header, errors, unknown rows, conflicts, the deletion guard."""
    dialect = load_dialect("progression")
    header = make_plan(build_table("Users", dialect, ["First Name", "email", "Nickname"], [["Ann", "ann@example.com", "A"]], ["r0"]),
                       snapshot_of("progression", USERS["progression"][:1]), Settings.for_dialect("progression"))
    unknown = Problem("error", "Users", "", 4, "_row_id", "r99", "unknown-row-id", "not in the snapshot.")
    errors = plan_of("progression", edits={0: {"Last Name": "A"}, 1: {"Last Name": "B"}}, plan_kwargs={"problems": [_problem(2), unknown]})
    now = {**USERS["scim"][0], "Job title": "Staff engineer"}
    conflicts = plan_of("scim", edits={0: {"Job title": "Lead"}}, plan_kwargs={"current": {"id-0": Current('W/"7"', now)}})
    users = people(100)
    guard = plan_of("progression", users, edits={i: {"account_active": "Archived"} for i in range(30)})
    found = [*header.blockers(), *errors.blockers(), *conflicts.blockers(), *guard.blockers()]
    assert [b.kind for b in found] == ["header", "errors", "unknown-rows", "conflicts", "deletions"]
    return found


def test_blockers_speak_command_line_by_default() -> None:
    by_kind = {b.kind: b for b in _every_blocker()}
    assert by_kind["errors"].message.startswith("1 row has errors (row 2); nothing was sent. Fix them (rosterbook check lists them), "
                                                "or skip those rows with --skip-rows 2. First: Users!D2 position: a test problem.")
    assert by_kind["conflicts"].message == ("1 row was changed on the platform since the export (row 2); nothing was sent. "
                                            "See them with `rosterbook preview`, then export again, or skip them with --skip-rows 2.")
    assert by_kind["deletions"].message.endswith("If that is intended, run again with --confirm-deletions.")
    assert by_kind["deletions"].confirmable and by_kind["errors"].rows == (2,) and by_kind["unknown-rows"].rows == (4,)


def test_blockers_in_the_ribbons_words_name_buttons_not_flags() -> None:
    from support.ribbonui import assert_excel_words

    from addin.words import EXCEL

    by_kind = {b.kind: b.render(EXCEL) for b in _every_blocker()}
    for text in by_kind.values():
        assert_excel_words(text)
    assert by_kind["errors"].startswith("1 row has errors (row 2); nothing was sent. Fix them (Check lists them). First: Users!D2 position")
    assert by_kind["unknown-rows"].endswith("Revert it (Revert selected rows), or export again.")
    assert by_kind["conflicts"].endswith("See them with Preview, then export again.")
    assert by_kind["deletions"].endswith("If that is intended, press Sync again and answer Yes to its question.")
