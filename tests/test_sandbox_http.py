"""The sandbox over HTTP: discovery, filters, pagination, Bulk, ETags, uniqueness, auth, the loopback guard, faults, restarts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from rosterbook.errors import UsageError
from rosterbook.sandbox import ENTERPRISE_SCHEMA, HR_SCHEMA, USER_SCHEMA, Sandbox, embedded, is_loopback, start_sandbox

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
TIMEOUT = 30


@pytest.fixture(autouse=True)
def _no_leftover_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that fails half-way must not leave faults armed on the module's shared sandbox.

    The shared sandbox is read-only (conftest.py fails a test that changes it): tests that write start their own.
    """
    yield
    if "sandbox" in request.fixturenames:
        request.getfixturevalue("sandbox").faults.clear()


def _get(sandbox: Sandbox, path: str, **params: Any) -> requests.Response:
    return requests.get(f"{sandbox.url}{path}", params=params, timeout=TIMEOUT)


def _all_users(sandbox: Sandbox) -> list[dict[str, Any]]:
    """Every user, read page by page (the listing the tests compare filters against)."""
    users: list[dict[str, Any]] = []
    while True:
        page = _get(sandbox, "/Users", startIndex=len(users) + 1, count=25).json()
        users.extend(page["Resources"])
        if len(users) >= page["totalResults"]:
            return users


def _new_user(user_name: str, **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": user_name, **extra}


# --- discovery ----------------------------------------------------------------------------------


def test_schemas_announce_the_hr_extension(sandbox: Sandbox) -> None:
    schemas = {s["id"]: s for s in _get(sandbox, "/Schemas").json()["Resources"]}
    hr = schemas[HR_SCHEMA]
    attributes = {a["name"]: a for a in hr["attributes"]}

    assert set(attributes) == {"accountStatus", "team", "position", "locations", "startDate"}
    assert attributes["accountStatus"]["canonicalValues"] == ["Active", "Pending", "Archived"]
    assert attributes["locations"]["multiValued"] is True
    assert {a["type"] for a in attributes.values()} == {"string"}
    assert _get(sandbox, f"/Schemas/{HR_SCHEMA}").json()["id"] == HR_SCHEMA


def test_user_resource_type_carries_both_extensions(sandbox: Sandbox) -> None:
    user = _get(sandbox, "/ResourceTypes/User").json()
    assert [e["schema"] for e in user["schemaExtensions"]] == [ENTERPRISE_SCHEMA, HR_SCHEMA]
    config = _get(sandbox, "/ServiceProviderConfig").json()
    assert config["bulk"]["supported"] and config["etag"]["supported"] and config["filter"]["maxResults"] == 1000


# --- filters ------------------------------------------------------------------------------------


def test_filters_find_what_the_listing_holds(sandbox: Sandbox) -> None:
    users = _all_users(sandbox)
    someone = next(u for u in users if u[HR_SCHEMA]["accountStatus"] == "Pending")
    cases: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
        (f'userName eq "{someone["userName"].upper()}"', lambda u: u["userName"] == someone["userName"]),
        (f'emails.value eq "{someone["emails"][0]["value"]}"', lambda u: u["emails"][0]["value"] == someone["emails"][0]["value"]),
        (f'emails eq "{someone["emails"][0]["value"].title()}"', lambda u: u["emails"][0]["value"] == someone["emails"][0]["value"]),
        (f'externalId eq "{someone["externalId"]}"', lambda u: u["externalId"] == someone["externalId"]),
        (f'id eq "{someone["id"]}"', lambda u: u["id"] == someone["id"]),
        (f'{ENTERPRISE_SCHEMA}:employeeNumber eq "{someone[ENTERPRISE_SCHEMA]["employeeNumber"]}"',
         lambda u: u[ENTERPRISE_SCHEMA]["employeeNumber"] == someone[ENTERPRISE_SCHEMA]["employeeNumber"]),
        (f'{HR_SCHEMA}:accountStatus eq "pending"', lambda u: u[HR_SCHEMA]["accountStatus"] == "Pending"),
        (f'{HR_SCHEMA}:team eq "{someone[HR_SCHEMA]["team"]}" and active eq true',
         lambda u: u[HR_SCHEMA]["team"] == someone[HR_SCHEMA]["team"] and u["active"]),
        (f'userName eq "{someone["userName"]}" or userName eq "{users[0]["userName"]}"',
         lambda u: u["userName"] in (someone["userName"], users[0]["userName"])),
        ('userName sw "a"', lambda u: u["userName"].startswith("a")),
        ('userName eq "nobody@lumen.example"', lambda u: False),
    ]
    for scim_filter, expected in cases:
        page = _get(sandbox, "/Users", filter=scim_filter, count=1000).json()
        wanted = sorted(u["id"] for u in users if expected(u))
        assert page["totalResults"] == len(wanted), scim_filter
        assert sorted(u["id"] for u in page["Resources"]) == wanted, scim_filter


def test_leading_zero_ids_are_matched_as_text(sandbox: Sandbox) -> None:
    user = next(u for u in _all_users(sandbox) if u["externalId"].startswith("0"))
    stripped = user["externalId"].lstrip("0")

    assert _get(sandbox, "/Users", filter=f'externalId eq "{user["externalId"]}"').json()["totalResults"] == 1
    assert _get(sandbox, "/Users", filter=f'externalId eq "{stripped}"').json()["totalResults"] == 0


# --- pagination ---------------------------------------------------------------------------------


def test_pages_cover_every_user_once(sandbox: Sandbox) -> None:
    first = _get(sandbox, "/Users", startIndex=1, count=7).json()
    assert first["totalResults"] == sandbox.storage.count("User")
    assert (first["startIndex"], first["itemsPerPage"], len(first["Resources"])) == (1, 7, 7)

    ids = [u["id"] for u in _all_users(sandbox)]
    assert len(ids) == len(set(ids)) == first["totalResults"]
    beyond = _get(sandbox, "/Users", startIndex=first["totalResults"] + 1, count=10).json()
    assert beyond["Resources"] == [] and beyond["totalResults"] == first["totalResults"]
    last = _get(sandbox, "/Users", startIndex=first["totalResults"] - 2, count=10).json()
    assert [u["id"] for u in last["Resources"]] == ids[-3:]


def test_count_is_capped_at_max_results(fresh_sandbox: Callable[..., Sandbox]) -> None:
    running = fresh_sandbox(users=1005)

    page = _get(running, "/Users", count=5000).json()

    assert page["totalResults"] == 1005
    assert page["itemsPerPage"] == len(page["Resources"]) == 1000


def test_fast_listing_equals_scim2_server_listing(fresh_sandbox: Callable[..., Sandbox]) -> None:
    """The plain-listing fast path sends exactly what scim2-server's own path sends."""
    running = fresh_sandbox(users=40)
    created = requests.post(f"{running.url}/Users", json=_new_user("pw.user", password="Secret-123"), timeout=TIMEOUT).json()
    group = {"schemas": [GROUP_SCHEMA], "displayName": "With refs", "members": [{"value": created["id"], "$ref": f"Users/{created['id']}"}]}
    assert requests.post(f"{running.url}/Groups", json=group, timeout=TIMEOUT).status_code == 201
    handler = running._application.handler
    queries: list[dict[str, Any]] = [{}, {"count": 7}, {"startIndex": 35, "count": 10}, {"startIndex": 0, "count": 3}, {"count": 0}, {"startIndex": 500}]
    for endpoint in ("/Users", "/Groups"):
        for query in queries:
            handler.fast_listing = True
            fast = _get(running, endpoint, **query)
            handler.fast_listing = False
            slow = _get(running, endpoint, **query)
            assert fast.status_code == slow.status_code == 200
            assert fast.json() == slow.json(), (endpoint, query)
    handler.fast_listing = True
    listed = _get(running, "/Users", count=100).json()["Resources"]
    assert all("password" not in u for u in listed)
    groups = _get(running, "/Groups").json()["Resources"]
    assert any(m.get("$ref", "").startswith("http://") for g in groups for m in g["members"])



def test_a_filter_naming_ids_is_served_as_scim2_server_serves_it(fresh_sandbox: Callable[..., Sandbox]) -> None:
    """``id eq "a" or id eq "b" ...`` (how a client reads the users it changes) takes the fast path: the same JSON as
    scim2-server's own search, for unknown and repeated ids, pages of the matches, groups with references; any other
    filter goes through scim2-server."""
    running = fresh_sandbox(users=30)
    created = requests.post(f"{running.url}/Users", json=_new_user("pw.user", password="Secret-123"), timeout=TIMEOUT).json()
    group = {"schemas": [GROUP_SCHEMA], "displayName": "With refs", "members": [{"value": created["id"], "$ref": f"Users/{created['id']}"}]}
    group_id = requests.post(f"{running.url}/Groups", json=group, timeout=TIMEOUT).json()["id"]
    users = _get(running, "/Users", count=100).json()["Resources"]
    ids = [u["id"] for u in users[::3]] + [created["id"], "no-such-id", users[0]["id"]]
    some = " or ".join(f'id eq "{i}"' for i in ids)
    handler = running._application.handler
    served: list[int] = []
    named = handler.sqlite.documents_named
    handler.sqlite.documents_named = lambda *args: served.append(1) or named(*args)  # counts the fast path's reads
    cases: list[tuple[str, dict[str, Any]]] = [
        ("/Users", {"filter": some}), ("/Users", {"filter": some, "count": 4}), ("/Users", {"filter": some, "startIndex": 3, "count": 5}),
        ("/Users", {"filter": some, "count": 0}), ("/Users", {"filter": f'id eq "{ids[1]}"'}), ("/Users", {"filter": 'id eq "no-such-id"'}),
        ("/Users", {"filter": f'id eq "{ids[1].upper()}"'}), ("/Groups", {"filter": f'id eq "{group_id}"'}),
        ("/Users", {"filter": f'id eq "{ids[1]}" or userName eq "pw.user"'}), ("/Users", {"filter": f'id eq "{ids[1]}" and active eq true'}),
    ]
    for endpoint, query in cases:
        handler.fast_listing = True
        fast = _get(running, endpoint, **query)
        handler.fast_listing = False
        slow = _get(running, endpoint, **query)
        assert fast.status_code == slow.status_code == 200, (endpoint, query)
        assert fast.json() == slow.json(), (endpoint, query)
    assert len(served) == 8  # the eight id-only filters; the two mixed ones went through scim2-server
    handler.fast_listing = True
    found = _get(running, "/Users", filter=some).json()
    assert found["totalResults"] == len(set(ids)) - 1  # each known id once, the unknown one left out
    assert all("password" not in u for u in found["Resources"])


# --- writes: uniqueness, ETags, PATCH -----------------------------------------------------------


def test_duplicate_user_name_is_a_409_whatever_the_case(sandbox: Sandbox) -> None:
    existing = _all_users(sandbox)[0]["userName"]

    response = requests.post(f"{sandbox.url}/Users", json=_new_user(existing.upper()), timeout=TIMEOUT)

    assert response.status_code == 409
    assert response.json()["scimType"] == "uniqueness"


def test_stale_if_match_is_refused_with_412(fresh_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = fresh_sandbox(users=0)
    user = requests.post(f"{sandbox.url}/Users", json=_new_user("etag.person@lumen.example"), timeout=TIMEOUT)
    url, first = user.json()["meta"]["location"], user.headers["ETag"]
    patch = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "Lead"}]}

    applied = requests.patch(url, json=patch, headers={"If-Match": first}, timeout=TIMEOUT)
    stale = requests.patch(url, json=patch | {"Operations": [{"op": "replace", "path": "title", "value": "Other"}]},
                           headers={"If-Match": first}, timeout=TIMEOUT)

    assert applied.status_code == 204 and applied.headers["ETag"] != first
    assert stale.status_code == 412
    current = requests.get(url, timeout=TIMEOUT)
    assert current.json()["title"] == "Lead" and current.headers["ETag"] == applied.headers["ETag"]
    assert requests.delete(url, headers={"If-Match": first}, timeout=TIMEOUT).status_code == 412
    assert requests.delete(url, headers={"If-Match": applied.headers["ETag"]}, timeout=TIMEOUT).status_code == 204


def test_patch_add_to_locations_appends(fresh_sandbox: Callable[..., Sandbox]) -> None:
    """RFC 7644 §3.5.2.1: add to a multi-valued attribute adds values; replace replaces them."""
    sandbox = fresh_sandbox(users=0)
    body = _new_user("loc.person@lumen.example", **{HR_SCHEMA: {"locations": ["Paris"]}})
    url = requests.post(f"{sandbox.url}/Users", json=body, timeout=TIMEOUT).json()["meta"]["location"]
    path = f"{HR_SCHEMA}:locations"

    requests.patch(url, json={"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": path, "value": ["Dublin | Docklands"]}]}, timeout=TIMEOUT)
    added = requests.get(url, timeout=TIMEOUT).json()[HR_SCHEMA]["locations"]
    requests.patch(url, json={"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": path, "value": ["Lagos"]}]}, timeout=TIMEOUT)
    replaced = requests.get(url, timeout=TIMEOUT).json()[HR_SCHEMA]["locations"]

    assert added == ["Paris", "Dublin | Docklands"]
    assert replaced == ["Lagos"]


# --- Bulk ---------------------------------------------------------------------------------------


def test_bulk_resolves_bulk_ids(fresh_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = fresh_sandbox(users=0)
    operations = [
        {"method": "POST", "path": "/Users", "bulkId": "u1", "data": _new_user("bulk.one@lumen.example")},
        {"method": "POST", "path": "/Groups", "bulkId": "g1",
         "data": {"schemas": [GROUP_SCHEMA], "displayName": "Bulk crew", "members": [{"value": "bulkId:u1"}]}},
        {"method": "PATCH", "path": "/Users/bulkId:u1",
         "data": {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "Bulk title"}]}},
    ]

    response = requests.post(f"{sandbox.url}/Bulk", json={"schemas": [BULK_REQUEST], "Operations": operations}, timeout=TIMEOUT)

    results = response.json()["Operations"]
    assert response.status_code == 200
    assert [int(r["status"]) for r in results] == [201, 201, 200]
    user = requests.get(results[0]["location"], timeout=TIMEOUT).json()
    group = requests.get(results[1]["location"], timeout=TIMEOUT).json()
    assert group["members"][0]["value"] == user["id"]
    assert user["title"] == "Bulk title"


def test_bulk_fail_on_errors_stops_and_keeps_earlier_operations(fresh_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = fresh_sandbox(users=3)
    taken = _all_users(sandbox)[0]["userName"]
    operations = [
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": _new_user("bulk.first@lumen.example")},
        {"method": "POST", "path": "/Users", "bulkId": "b", "data": _new_user(taken)},
        {"method": "POST", "path": "/Users", "bulkId": "c", "data": _new_user("bulk.never@lumen.example")},
    ]

    body = {"schemas": [BULK_REQUEST], "failOnErrors": 1, "Operations": operations}
    results = requests.post(f"{sandbox.url}/Bulk", json=body, timeout=TIMEOUT).json()["Operations"]

    assert [int(r["status"]) for r in results] == [201, 409]
    assert _get(sandbox, "/Users", filter='userName eq "bulk.first@lumen.example"').json()["totalResults"] == 1
    assert _get(sandbox, "/Users", filter='userName eq "bulk.never@lumen.example"').json()["totalResults"] == 0


# --- token and loopback guard -------------------------------------------------------------------


def test_bearer_token_is_required_when_set(fresh_sandbox: Callable[..., Sandbox]) -> None:
    running = fresh_sandbox(users=3, token="tok-123")

    missing = requests.get(f"{running.url}/Users", timeout=TIMEOUT)
    wrong = requests.get(f"{running.url}/Users", headers={"Authorization": "Bearer nope"}, timeout=TIMEOUT)
    right = requests.get(f"{running.url}/Users", headers={"Authorization": "Bearer tok-123"}, timeout=TIMEOUT)
    config = requests.get(f"{running.url}/ServiceProviderConfig", timeout=TIMEOUT)

    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert "tok-123" not in missing.text + wrong.text + repr(running)
    assert right.status_code == 200 and right.json()["totalResults"] == 3
    assert config.status_code == 200  # RFC 7644 §4: discoverable without authentication
    assert config.json()["authenticationSchemes"][0]["type"] == "oauthbearertoken"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("localhost", True), ("::1", True), ("[::1]", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("example.org", False)],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_non_loopback_bind_is_refused_unless_allowed() -> None:
    with pytest.raises(UsageError, match=r"refusing to serve on '0\.0\.0\.0': it is not a loopback address.*--allow-remote"):
        start_sandbox(host="0.0.0.0", users=0)
    with start_sandbox(host="0.0.0.0", users=0, allow_remote=True) as running:
        assert running.host == "0.0.0.0"
        assert requests.get(f"http://127.0.0.1:{running.port}/v2/Users", timeout=TIMEOUT).json()["totalResults"] == 0


def test_ipv6_loopback(fresh_sandbox: Callable[..., Sandbox]) -> None:
    running = fresh_sandbox(users=2, host="::1")
    assert running.url.startswith("http://[::1]:")
    assert _get(running, "/Users").json()["totalResults"] == 2


# --- the fault hook -----------------------------------------------------------------------------


def test_faults_answer_before_the_storage(fresh_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = fresh_sandbox(users=3)
    users_before = sandbox.storage.count("User")
    served_before = sandbox.request_count
    sandbox.faults.add(429, {"Retry-After": "2"}, method="POST", path="/Users", times=2)
    url = f"{sandbox.url}/Users"

    first = requests.post(url, json=_new_user("fault.one@lumen.example"), timeout=TIMEOUT)
    listing = requests.get(url, timeout=TIMEOUT)  # another method: not matched
    second = requests.post(url, json=_new_user("fault.one@lumen.example"), timeout=TIMEOUT)
    third = requests.post(url, json=_new_user("fault.one@lumen.example"), timeout=TIMEOUT)

    assert (first.status_code, first.headers["Retry-After"]) == (429, "2")
    assert first.json()["status"] == "429"
    assert listing.status_code == 200
    assert second.status_code == 429
    assert third.status_code == 201
    assert sandbox.storage.count("User") == users_before + 1
    assert sandbox.request_count == served_before + 4
    assert [r.status for r in sandbox.request_log[-4:]] == [429, 200, 429, 201]
    assert sandbox.faults.pending == 0


def test_fault_after_serving_loses_the_response_not_the_change(fresh_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = fresh_sandbox(users=0)
    sandbox.faults.add(502, body="Bad gateway", method="POST", path="/v2/Users", after_serving=True)

    lost = requests.post(f"{sandbox.url}/Users", json=_new_user("fault.kept@lumen.example"), timeout=TIMEOUT)

    assert lost.status_code == 502 and lost.text == "Bad gateway"
    assert _get(sandbox, "/Users", filter='userName eq "fault.kept@lumen.example"').json()["totalResults"] == 1


def test_fault_on_one_resource_path(sandbox: Sandbox) -> None:
    user = _all_users(sandbox)[0]
    sandbox.faults.add(503, method="GET", path=f"/Users/{user['id']}", delay=0.2)
    sandbox.faults.add(500, method="DELETE")
    sandbox.faults.clear()
    sandbox.faults.add(503, method="GET", path=f"/Users/{user['id']}", delay=0.2)

    other = _get(sandbox, "/Users", count=1)
    faulted = _get(sandbox, f"/Users/{user['id']}")
    after = _get(sandbox, f"/Users/{user['id']}")

    assert other.status_code == 200
    assert faulted.status_code == 503
    assert after.status_code == 200 and after.json()["id"] == user["id"]


# --- persistence --------------------------------------------------------------------------------


def _version_number(etag: str) -> int:
    return int(etag.removeprefix("W/").strip('"'))


def test_data_and_versions_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.sqlite3"
    with start_sandbox(db, users=12) as first:
        created = requests.post(f"{first.url}/Users", json=_new_user("restart.me@lumen.example"), timeout=TIMEOUT)
        patch = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "Kept"}]}
        patched = requests.patch(created.json()["meta"]["location"], json=patch, timeout=TIMEOUT)
        doomed = requests.post(f"{first.url}/Users", json=_new_user("doomed@lumen.example"), timeout=TIMEOUT)
        requests.delete(doomed.json()["meta"]["location"], timeout=TIMEOUT)
        seen = {_version_number(u["meta"]["version"]) for u in _all_users(first)} | {_version_number(doomed.headers["ETag"])}
        assert first.seeded == 12

    with start_sandbox(db, users=99) as second:
        user = requests.get(f"{second.url}/Users/{created.json()['id']}", timeout=TIMEOUT)
        again = requests.post(f"{second.url}/Users", json=_new_user("after.restart@lumen.example"), timeout=TIMEOUT)
        assert second.seeded == 0  # the database held data: not seeded again, --users ignored
        assert second.storage.count("User") == 14
        assert user.json()["title"] == "Kept" and user.headers["ETag"] == patched.headers["ETag"]

    assert _version_number(again.headers["ETag"]) > max(seen)


def test_embedded_mode_keeps_data_between_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROSTERBOOK_HOME", str(tmp_path / "home"))
    with embedded() as first:
        assert first.db_path == tmp_path / "home" / "sandbox.sqlite3"
        assert first.host == "127.0.0.1" and first.token is None
        assert first.seeded == first.storage.count("User") == 300
        requests.post(f"{first.url}/Users", json=_new_user("embedded.person@lumen.example"), timeout=TIMEOUT)
    with embedded(tmp_path / "home") as second:
        assert second.seeded == 0
        assert _get(second, "/Users", filter='userName eq "embedded.person@lumen.example"').json()["totalResults"] == 1
    assert second.request_count == 1


def test_a_file_that_is_not_a_database_is_a_usage_error(tmp_path: Path) -> None:
    notes = tmp_path / "notes.sqlite3"
    notes.write_text("not a database, just notes\n" * 100, encoding="utf-8")

    with pytest.raises(UsageError, match=r"cannot open the sandbox database '.*notes\.sqlite3': file is not a database"):
        start_sandbox(notes)
    assert notes.read_text(encoding="utf-8").startswith("not a database")
