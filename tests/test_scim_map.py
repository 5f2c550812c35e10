"""scim_map on plain data: resources -> cells, schemas -> columns, changes -> SCIM operations."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rosterbook.core.dialects import load_dialect
from rosterbook.core.plan import Change, FieldChange
from rosterbook.core.scim_map import (
    CORE_USER,
    ENTERPRISE_USER,
    PATCH_OP,
    Operation,
    ScimMapError,
    ScimPath,
    already_applied,
    change_to_operations,
    changes_to_operations,
    dialect_from_schemas,
    late_name,
    memberships,
    parse_path,
    resolve_refs,
    resource_to_values,
    with_late_names,
)

HR = "urn:rosterbook:params:scim:schemas:extension:hr:2.0:User"
SCIM = load_dialect("scim")

ANN: dict[str, Any] = {
    "schemas": [CORE_USER, ENTERPRISE_USER, HR],
    "id": "u-ann",
    "meta": {"version": 'W/"7"'},
    "userName": "ann@example.org",
    "name": {"givenName": "Ann", "familyName": "Lee"},
    "title": "=SUM(A1)",
    "active": True,
    "emails": [{"value": "home@example.org", "type": "home"}, {"value": "ann@example.org", "type": "work", "primary": True}],
    "phoneNumbers": [{"value": "+44 20 7946 0000", "type": "work"}],
    "roles": [{"value": "Admin"}, {"value": "Learner"}],
    "externalId": "00123",
    ENTERPRISE_USER: {"employeeNumber": "000627", "department": "Sales", "manager": {"value": "u-bob", "displayName": "Bob"}},
    HR: {"accountStatus": "Active", "team": "North", "locations": ["Dublin | Docklands", "Cork"], "startDate": "2014-04-08"},
}


def values_of(resource: dict[str, Any], **kw: Any) -> dict[str, str | None]:
    return resource_to_values(
        resource, SCIM, user_names_by_id=kw.get("names", {"u-bob": "bob@example.org"}), groups_of_user=kw.get("groups", {"u-ann": ["Sales", "All staff"]})
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("userName", ScimPath(None, "userName")),
        ("name.givenName", ScimPath(None, "name", None, "givenName")),
        ('emails[type eq "work"].value', ScimPath(None, "emails", ("type", "work"), "value")),
        (f"{HR}:locations", ScimPath(HR, "locations")),
        (f"{ENTERPRISE_USER}:manager.value", ScimPath(ENTERPRISE_USER, "manager", None, "value")),
    ],
)
def test_parse_path(path: str, expected: ScimPath) -> None:
    assert parse_path(path) == expected
    assert parse_path(path).text() == path


def test_parse_path_refuses_what_it_cannot_map() -> None:
    with pytest.raises(ValueError, match="unsupported SCIM attribute path 'emails\\[type ne'"):
        parse_path("emails[type ne")


def test_resource_to_values_gives_canonical_cells() -> None:
    assert values_of(ANN) == {
        "Username": "ann@example.org",
        "First name": "Ann",
        "Last name": "Lee",
        "Email": "ann@example.org",  # the work email, not the first one
        "Status": "Active",
        "Job title": "=SUM(A1)",  # neutralising is the writers' job; values stay exact
        "Department": "Sales",
        "Team": "North",
        "Position": None,
        "Locations": "Dublin \\| Docklands|Cork",  # a literal '|' escaped
        "Manager": "bob@example.org",  # id -> userName
        "Groups": "All staff; Sales",  # from Group memberships, sorted
        "Roles": "Admin; Learner",
        "Employee ID": "000627",
        "Phone": "+44 20 7946 0000",
        "Start date": "2014-04-08",
        "External ID": "00123",
        "Display name": None,
        "Formatted name": None,
    }


def test_resource_to_values_fallbacks() -> None:
    bare = {"id": "u-x", "userName": "x", "active": False, "emails": [{"value": "x@example.org"}],
            ENTERPRISE_USER: {"manager": {"value": "gone"}}}
    values = values_of(bare)
    assert values["Email"] == "x@example.org"  # no type: the first email still shows
    assert values["Status"] == "Archived"  # no accountStatus: follows active
    assert values["Manager"] is None  # a manager id nobody has: blank (keeps it)
    assert values["Groups"] is None


@pytest.mark.parametrize("manager", ["u-bob", "gone", "u-padded"])
def test_a_manager_named_late_is_named_as_if_known_at_once(manager: str) -> None:
    # An export maps each page as it arrives: a manager on a later page gets a stand-in, named once every user is known.
    user = {**ANN, ENTERPRISE_USER: {"manager": {"value": manager}}}
    names = {"u-bob": "bob@example.org", "u-padded": "  pad@example.org "}
    later = values_of(user, names={manager: late_name(manager)})  # not listed yet
    assert later["Manager"] == late_name(manager)
    assert with_late_names(later, SCIM, names) == values_of(user, names=names)  # "gone": blank, as a dangling id is


def test_memberships_reads_group_members() -> None:
    groups = [{"id": "g1", "displayName": "Sales", "members": [{"value": "a"}, {"value": "b"}]}, {"id": "g2", "displayName": "Ops"}]
    assert memberships(groups) == {"a": ["Sales"], "b": ["Sales"]}


# --- columns from /Schemas -------------------------------------------------------------------

CORE_SCHEMA = {"id": CORE_USER, "attributes": [{"name": n, "type": "string"} for n in ("userName", "title", "externalId", "active")]
               + [{"name": "name", "type": "complex", "subAttributes": [{"name": "givenName"}, {"name": "familyName"}]},
                  {"name": "emails", "type": "complex", "multiValued": True, "subAttributes": [{"name": "value"}, {"name": "type"}]}]}
GROUP_SCHEMA = {"id": "urn:ietf:params:scim:schemas:core:2.0:Group", "attributes": [{"name": "displayName"}, {"name": "members"}]}
ENTERPRISE_SCHEMA = {"id": ENTERPRISE_USER, "attributes": [
    {"name": "department", "type": "string"}, {"name": "costCenter", "type": "string", "description": "Cost center."},
    {"name": "manager", "type": "complex", "subAttributes": [{"name": "value"}]}]}
HR_SCHEMA = {"id": HR, "attributes": [{"name": n, "type": "string"} for n in ("accountStatus", "team")]
             + [{"name": "badges", "type": "string", "multiValued": True}, {"name": "remote", "type": "boolean"},
                {"name": "score", "type": "integer", "mutability": "readOnly"}]}


def test_columns_follow_the_announced_schemas() -> None:
    dialect = dialect_from_schemas(SCIM, [CORE_SCHEMA, GROUP_SCHEMA, ENTERPRISE_SCHEMA, HR_SCHEMA])
    names = dialect.column_names
    assert names[:6] == ("Username", "First name", "Last name", "Email", "Status", "Job title")
    for dropped in ("Position", "Locations", "Roles", "Phone", "Employee ID", "Start date"):
        assert dropped not in names  # not announced by this platform
    assert {"Team", "Manager", "Groups", "Department"} <= set(names)
    added = {c.name: c for c in dialect.columns if c.name not in SCIM.column_names}
    assert set(added) == {"Cost center", "Badges", "Remote"}  # complex and read-only attributes are not offered
    assert added["Badges"].type == "list" and added["Badges"].separator == "; "
    assert added["Remote"].type == "bool"
    assert added["Cost center"].scim == f"{ENTERPRISE_USER}:costCenter" and added["Cost center"].help == "Cost center."


def test_without_a_status_attribute_status_follows_active() -> None:
    dialect = dialect_from_schemas(SCIM, [CORE_SCHEMA, GROUP_SCHEMA])
    assert dialect.column("Status").scim is None and dialect.scim_active_from_status
    change = Change("archive", 5, "r5", "ann", resource_id="u-ann", version='W/"1"', fields={"Status": FieldChange("Active", "Archived")})
    [op] = change_to_operations(change, dialect, user_ids_by_name={}, group_ids_by_name={})
    assert op.body["Operations"] == [{"op": "replace", "path": "active", "value": False}]


def test_without_status_or_active_the_status_column_goes() -> None:
    core = {"id": CORE_USER, "attributes": [{"name": "userName"}]}
    dialect = dialect_from_schemas(SCIM, [core])
    # externalId is a common attribute of every resource (RFC 7643 §3.1): it stays, though /Schemas never lists it.
    assert dialect.column_names == ("Username", "External ID") and dialect.status_column is None and dialect.billing == "none"


def test_external_id_is_a_column_although_the_user_schema_does_not_list_it() -> None:
    """scim2-server's /Schemas, like the RFC's own User schema, lists no externalId: the column must not be dropped."""
    core = {"id": CORE_USER, "attributes": [{"name": n, "type": "string"} for n in ("userName", "title", "active")]}
    types = [{"name": "User", "endpoint": "/Users", "schema": CORE_USER, "schemaExtensions": []}]
    dialect = dialect_from_schemas(SCIM, [core], types)
    assert "External ID" in dialect.column_names
    assert dialect.column("External ID").scim == "externalId"


def test_resource_types_limit_the_extensions() -> None:
    types = [{"name": "User", "endpoint": "/Users", "schema": CORE_USER, "schemaExtensions": [{"schema": ENTERPRISE_USER}]}]
    dialect = dialect_from_schemas(SCIM, [CORE_SCHEMA, GROUP_SCHEMA, ENTERPRISE_SCHEMA, HR_SCHEMA], types)
    assert "Team" not in dialect.column_names and "Badges" not in dialect.column_names


# --- changes -> operations --------------------------------------------------------------------

NEW_VALUES = {"Username": "cy@example.org", "First name": "Cy", "Last name": "Ng", "Email": "cy@example.org", "Status": "Pending",
              "Locations": "Main\\|HQ|Cork", "Roles": "Learner", "Manager": "ann@example.org", "Groups": "Sales; Ops", "Remote": None}


def create(values: dict[str, str | None] = NEW_VALUES, row: int = 9) -> Change:
    return Change("create", row, None, str(values["Username"]), values=values, fields={k: FieldChange(None, v) for k, v in values.items() if v})


def test_a_create_posts_the_whole_user_and_adds_memberships() -> None:
    ops = change_to_operations(create(), SCIM, user_ids_by_name={"ANN@example.org": "u-ann"}, group_ids_by_name={"Sales": "g1", "Ops": "g2"})
    post, *groups = ops
    assert (post.method, post.path, post.bulk_id, post.if_match, post.row, post.key) == ("POST", "/Users", "row-9", None, 9, "cy@example.org")
    assert post.body == {
        "schemas": [CORE_USER, HR, ENTERPRISE_USER],
        "userName": "cy@example.org",
        "name": {"givenName": "Cy", "familyName": "Ng"},
        "emails": [{"type": "work", "value": "cy@example.org", "primary": True}],
        HR: {"locations": ["Main|HQ", "Cork"], "accountStatus": "Pending"},
        "roles": [{"value": "Learner"}],
        ENTERPRISE_USER: {"manager": {"value": "u-ann"}},
        "active": False,  # Pending cannot log in
    }
    assert [(g.path, g.body["Operations"]) for g in groups] == [
        ("/Groups/g1", [{"op": "add", "path": "members", "value": [{"value": "bulkId:row-9"}]}]),
        ("/Groups/g2", [{"op": "add", "path": "members", "value": [{"value": "bulkId:row-9"}]}]),
    ]
    assert groups[0].references() == {"row-9"}


def test_an_update_patches_only_what_changed() -> None:
    fields = {
        "Job title": FieldChange("Rep", "Lead"),
        "Email": FieldChange("ann@example.org", "ann.lee@example.org"),
        "Phone": FieldChange("+1 555", None),  # (clear)
        "Team": FieldChange(None, "South"),
        "Locations": FieldChange("Cork", "Cork|Main\\|HQ"),
        "Manager": FieldChange("bob@example.org", None),
        "Groups": FieldChange("Ops; Sales", "Sales; Support"),
    }
    change = Change("update", 4, "r4", "ann@example.org", resource_id="u-ann", version='W/"7"', fields=fields)
    user, *groups = change_to_operations(change, SCIM, user_ids_by_name={}, group_ids_by_name={"Ops": "g2", "Support": "g3", "Sales": "g1"})
    assert (user.method, user.path, user.if_match) == ("PATCH", "/Users/u-ann", 'W/"7"')
    assert user.body == {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "title", "value": "Lead"},
        {"op": "replace", "path": 'emails[value eq "ann@example.org"].value', "value": "ann.lee@example.org"},
        {"op": "remove", "path": 'phoneNumbers[value eq "+1 555"]'},
        {"op": "replace", "path": f"{HR}:team", "value": "South"},
        {"op": "replace", "path": f"{HR}:locations", "value": ["Cork", "Main|HQ"]},
        {"op": "remove", "path": f"{ENTERPRISE_USER}:manager"},
    ]}
    assert [(g.path, g.body["Operations"][0]["op"], g.if_match) for g in groups] == [("/Groups/g3", "add", None), ("/Groups/g2", "remove", None)]
    assert groups[1].body["Operations"][0]["path"] == 'members[value eq "u-ann"]'


def test_an_email_added_where_there_was_none() -> None:
    change = Change("update", 4, "r4", "x", resource_id="u-x", version='W/"1"', fields={"Email": FieldChange(None, "x@example.org")})
    [op] = change_to_operations(change, SCIM, user_ids_by_name={}, group_ids_by_name={})
    assert op.body["Operations"] == [{"op": "add", "path": "emails", "value": [{"type": "work", "value": "x@example.org"}]}]


def test_archive_and_rename() -> None:
    archive = Change("archive", 3, "r3", "ann", resource_id="u-ann", version='W/"2"', fields={"Status": FieldChange("Active", "Archived")})
    [op] = change_to_operations(archive, SCIM, user_ids_by_name={}, group_ids_by_name={})
    assert op.body["Operations"] == [{"op": "replace", "path": f"{HR}:accountStatus", "value": "Archived"}, {"op": "replace", "path": "active", "value": False}]
    rename = Change("rename", 3, "r3", "ann.lee", old_key="ann", resource_id="u-ann", version='W/"2"', fields={"Username": FieldChange("ann", "ann.lee")})
    [op] = change_to_operations(rename, SCIM, user_ids_by_name={}, group_ids_by_name={})
    assert (op.path, op.if_match, op.body["Operations"]) == ("/Users/u-ann", 'W/"2"', [{"op": "replace", "path": "userName", "value": "ann.lee"}])


@pytest.mark.parametrize("action", ["unchanged", "conflict", "error"])
def test_nothing_is_sent_for(action: str) -> None:
    change = Change(action, 3, "r3", "ann", resource_id="u-ann", fields={"Job title": FieldChange("a", "b")})  # type: ignore[arg-type]
    assert change_to_operations(change, SCIM, user_ids_by_name={}, group_ids_by_name={}) == []


def test_unknown_manager_and_group_are_row_failures() -> None:
    with pytest.raises(ScimMapError, match="'nobody' is not a user on the platform"):
        change_to_operations(create({**NEW_VALUES, "Manager": "nobody"}), SCIM, user_ids_by_name={}, group_ids_by_name={"Sales": "g1", "Ops": "g2"})
    ops, failures = changes_to_operations([create({**NEW_VALUES, "Manager": None})], SCIM, user_ids_by_name={}, group_ids_by_name={})
    assert ops == []
    assert [(f.row, f.column, f.message) for f in failures] == [(9, "Groups", "'Sales' is not a group on the platform; create it there first.")]


def test_a_manager_created_or_renamed_in_the_same_plan() -> None:
    boss = create({"Username": "boss", "First name": "B", "Last name": "S", "Email": "b@example.org", "Status": "Active"}, row=2)
    report = create({**NEW_VALUES, "Manager": "boss", "Groups": None}, row=3)
    renamed = Change("rename", 4, "r4", "chief", old_key="old", resource_id="u-chief", version='W/"1"', fields={"Username": FieldChange("old", "chief")})
    other = Change("update", 5, "r5", "z", resource_id="u-z", version='W/"1"', fields={"Manager": FieldChange(None, "chief")})
    ops, failures = changes_to_operations([boss, report, renamed, other], SCIM, user_ids_by_name={}, group_ids_by_name={})
    assert failures == []
    assert ops[1].body[ENTERPRISE_USER] == {"manager": {"value": "bulkId:row-2"}}
    assert ops[3].body["Operations"] == [{"op": "replace", "path": f"{ENTERPRISE_USER}:manager", "value": {"value": "u-chief"}}]


# --- already applied? --------------------------------------------------------------------------


def patch(*ops: dict[str, Any], path: str = "/Users/u-ann") -> Operation:
    return Operation("PATCH", path, {"schemas": [PATCH_OP], "Operations": list(ops)}, 'W/"1"', None, "r1", "ann")


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        (patch({"op": "replace", "path": "title", "value": "=SUM(A1)"}), True),
        (patch({"op": "replace", "path": "title", "value": "Lead"}), False),
        (patch({"op": "remove", "path": "nickName"}), True),
        (patch({"op": "remove", "path": "title"}), False),
        (patch({"op": "replace", "path": f"{HR}:locations", "value": ["Cork", "Dublin | Docklands"]}), True),
        (patch({"op": "replace", "path": f"{HR}:locations", "value": ["Cork"]}), False),
        (patch({"op": "replace", "path": 'emails[value eq "old@example.org"].value', "value": "ann@example.org"}), True),
        (patch({"op": "remove", "path": 'emails[value eq "home@example.org"]'}), False),
        (patch({"op": "replace", "path": f"{ENTERPRISE_USER}:manager", "value": {"value": "u-bob"}}), True),
        (patch({"op": "replace", "path": "roles", "value": [{"value": "Admin"}]}), False),
        (patch({"op": "replace", "path": "active", "value": True}, {"op": "replace", "path": f"{HR}:accountStatus", "value": "Active"}), True),
    ],
)
def test_already_applied_patches(op: Operation, expected: bool) -> None:
    assert already_applied(op, ANN) is expected


def test_already_applied_memberships_and_creates() -> None:
    group = {"id": "g1", "displayName": "Sales", "members": [{"value": "u-ann"}]}
    assert already_applied(patch({"op": "add", "path": "members", "value": [{"value": "u-ann"}]}, path="/Groups/g1"), group)
    assert not already_applied(patch({"op": "remove", "path": 'members[value eq "u-ann"]'}, path="/Groups/g1"), group)
    post = Operation("POST", "/Users", {"schemas": [CORE_USER], "userName": "ann@example.org", "name": {"givenName": "Ann"},
                                        "emails": [{"type": "work", "value": "ann@example.org", "primary": True}]}, None, "row-2")
    created = copy.deepcopy(ANN)
    created["emails"] = created["emails"][1:]
    assert already_applied(post, created)  # attributes the POST did not send don't matter
    assert not already_applied(post, ANN)  # a second email: not the user this POST made
    created["name"]["givenName"] = "Anne"
    assert not already_applied(post, created)


def test_resolve_refs_fills_created_ids() -> None:
    body = {"Operations": [{"op": "add", "value": [{"value": "bulkId:row-2"}, {"value": "bulkId:row-3"}]}]}
    assert resolve_refs(body, {"row-2": "u-2"}) == {"Operations": [{"op": "add", "value": [{"value": "u-2"}, {"value": "bulkId:row-3"}]}]}
