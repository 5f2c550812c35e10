"""The sandbox's fast path for Bulk PATCH gives what scim2-server's own code gives.

Two identical storages (same demo organisation, same fixed clock) receive the same random Bulk
requests: one through the sandbox's handler (simple PATCHes applied to the stored documents,
rosterbook/sandbox/patch.py), one through scim2-server's own ``ScimHandler``. After every request
the answers (status and body) and every stored resource must be equal, versions and
``lastModified`` included. The operations mix what the fast path takes with what it must hand over
(filters, multi-valued attributes, read-only ones, wrong types, unknown paths), on users and
groups that exist or not, with current, stale or no versions, taken userNames, and failOnErrors.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.service import ScimService

from rosterbook.sandbox import ENTERPRISE_SCHEMA, HR_SCHEMA, SqliteStorage, build_provider, demo_organisation, start_sandbox
from rosterbook.sandbox.patch import PATCH_OP, PatchCompiler, apply_simple
from rosterbook.sandbox.server import BULK_REQUEST_SCHEMA, _SandboxHandler

PROVIDER = build_provider()
USERS = 8
CLOCK = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
BASE = "http://127.0.0.1:1/v2"

# Paths the fast path takes (when the document allows), then ones it must hand over.
SIMPLE_TEXT = [
    "title", "TITLE", "urn:ietf:params:scim:schemas:core:2.0:User:title", "displayName", "externalId", "userName",
    "name.givenName", "name.familyName", "name.honorificPrefix", f"{ENTERPRISE_SCHEMA}:department", f"{ENTERPRISE_SCHEMA}:costCenter",
    f"{ENTERPRISE_SCHEMA}:manager.value", f"{HR_SCHEMA}:accountStatus", f"{HR_SCHEMA}:team",
]  # fmt: skip
SIMPLE_BOOL = ["active"]
OTHER = [
    "emails", 'emails[type eq "work"].value', f"{HR_SCHEMA}:locations", "meta.created", "id", "password", "nope",
    "name", f"{ENTERPRISE_SCHEMA}:manager.displayName", ENTERPRISE_SCHEMA, "roles", "members",
]  # fmt: skip
GROUP_PATHS = ["displayName", "externalId", "members", 'members[value eq "x"]', "nope"]


def _clock() -> datetime.datetime:
    return CLOCK


def _sparse(users: list[dict[str, Any]]) -> None:
    """Thin some demo users out, so operations meet absent and one-attribute extensions and complex attributes."""
    users[0]["name"] = {"givenName": users[0]["name"]["givenName"]}
    users[1][ENTERPRISE_SCHEMA] = {"department": "Sales"}
    del users[2][ENTERPRISE_SCHEMA]
    users[2]["schemas"].remove(ENTERPRISE_SCHEMA)
    users[3][ENTERPRISE_SCHEMA] = {"manager": {"value": users[0]["id"]}}
    del users[4]["name"], users[4]["title"]
    users[5][HR_SCHEMA] = {"team": "Ops"}


def _storage() -> SqliteStorage:
    users, groups = demo_organisation(USERS, seed=3)
    _sparse(users)
    storage = SqliteStorage(":memory:", PROVIDER, clock=_clock)
    types = {str(rt.name): rt for rt in PROVIDER.resource_types}
    storage.load([(types["User"], users), (types["Group"], groups)])
    return storage


def test_the_starting_documents_are_what_scim2_server_would_store() -> None:
    """The documents both storages start from are canonical (a model round trip changes nothing)."""
    user = next(rt for rt in PROVIDER.resource_types if rt.name == "User")
    model = PROVIDER.model_for(user)
    users = [d for d in _documents(_storage()).values() if "userName" in d]
    assert len(users) == USERS
    for doc in users:
        assert model.model_validate(doc).model_dump(mode="json") == doc  # type: ignore[union-attr]


def _documents(storage: SqliteStorage) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for resource_type in PROVIDER.resource_types:
        _, texts = storage.documents(resource_type, 0, None)
        for text in texts:
            doc = json.loads(text)
            out[doc["id"]] = doc
    return out


def _index_rows(storage: SqliteStorage) -> list[tuple[str, int, str, int]]:
    with storage.lock:
        rows = [("uniques", *row) for row in storage._conn.execute("SELECT code, key, rid FROM uniques")]
        rows += [("lookups", *row) for row in storage._conn.execute("SELECT code, key, rid FROM lookups")]
    return sorted(rows)


TEXTS = st.one_of(
    st.sampled_from(["Engineer", "engineer", "", " ", "Ünïcødé 名前", "x" * 300]),
    st.text(max_size=12),
    st.just("\ud800"),  # a lone surrogate: JSON lets it through, a database cannot store it
)
VALUES = st.one_of(TEXTS, st.booleans(), st.integers(-3, 3), st.none(), st.just([]), st.just(["a"]), st.just({"value": "v"}))


@st.composite
def _operation(draw: st.DrawFn, ids: list[str], group_ids: list[str], names: list[str], versions: dict[str, str]) -> dict[str, Any]:
    on_group = draw(st.integers(0, 9)) == 0
    rid = draw(st.sampled_from(group_ids)) if on_group else draw(st.sampled_from([*ids, *ids, *ids, "0" * 32]))
    # Mostly what a sync sends (the fast path's share), sometimes anything.
    plain = not on_group and draw(st.integers(0, 3)) > 0
    subs = []
    for _ in range(draw(st.integers(1, 3))):
        if plain:
            path = draw(st.sampled_from(SIMPLE_TEXT + SIMPLE_BOOL))
            sub: dict[str, Any] = {"op": draw(st.sampled_from(["replace", "replace", "add", "remove", "remove"])), "path": path}
            if sub["op"] != "remove":
                if path in SIMPLE_BOOL:
                    sub["value"] = draw(st.booleans())
                elif path == "userName" and draw(st.booleans()):
                    sub["value"] = draw(st.sampled_from(names))  # taken (or the user's own): 409 or no change
                else:
                    sub["value"] = draw(TEXTS)
            subs.append(sub)
            continue
        paths = GROUP_PATHS if on_group else SIMPLE_TEXT + SIMPLE_BOOL + OTHER
        sub = {"op": draw(st.sampled_from(["replace", "add", "remove", "Replace", "delete"]))}
        if draw(st.integers(0, 9)):
            sub["path"] = draw(st.sampled_from(paths))
        if sub["op"] != "remove" or draw(st.integers(0, 4)) == 0:
            sub["value"] = draw(VALUES)
        subs.append(sub)
    entry: dict[str, Any] = {"method": "PATCH", "path": f"/{'Groups' if on_group else 'Users'}/{rid}",
                             "data": {"schemas": [PATCH_OP], "Operations": subs}}  # fmt: skip
    version = draw(st.sampled_from(["current", "current", "current", "stale", "none", "none"]))
    if version == "current" and rid in versions:
        entry["version"] = versions[rid]
    elif version == "stale":
        entry["version"] = 'W/"1"'
    if draw(st.integers(0, 9)) == 0:
        entry["bulkId"] = draw(st.sampled_from(["a", "b"]))
    return entry


def _bulk(handler: ScimHandler, body: dict[str, Any]) -> tuple[int, Any]:
    request = ScimRequest("POST", BASE, "/Bulk", {}, {"Content-Type": "application/scim+json"}, json.dumps(body).encode())
    try:
        response = handler.handle(request)
    except Exception as exc:  # a request-level SCIM error, as the WSGI application would answer it
        response = handler.service.error_response(exc)
    return int(response.status), response.body


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_bulk_patch_equals_scim2_server(data: st.DataObject) -> None:
    fast_storage, reference_storage = _storage(), _storage()
    fast = _SandboxHandler(ScimService(PROVIDER), fast_storage)
    reference = ScimHandler(ScimService(PROVIDER), reference_storage)
    for _ in range(data.draw(st.integers(1, 3), label="requests")):
        docs = _documents(reference_storage)
        users = [d for d in docs.values() if "userName" in d]
        ids = sorted(d["id"] for d in users)
        group_ids = sorted(d["id"] for d in docs.values() if "userName" not in d)
        names = [d["userName"] for d in users]
        versions = {rid: d["meta"]["version"] for rid, d in docs.items()}
        operations = data.draw(st.lists(_operation(ids, group_ids, names, versions), min_size=1, max_size=6), label="operations")
        body: dict[str, Any] = {"schemas": [BULK_REQUEST_SCHEMA], "Operations": operations}
        fail_on_errors = data.draw(st.sampled_from([None, None, 1, 2]), label="failOnErrors")
        if fail_on_errors is not None:
            body["failOnErrors"] = fail_on_errors
        assert _bulk(fast, body) == _bulk(reference, body)
        assert _documents(fast_storage) == _documents(reference_storage)
        assert _index_rows(fast_storage) == _index_rows(reference_storage)  # what uniqueness and filters read
        assert fast_storage.last_version == reference_storage.last_version


def test_the_fast_path_takes_what_a_sync_sends() -> None:
    """Guards the property test against a fast path that never runs: a sync's title/department PATCH is simple."""
    user = next(rt for rt in PROVIDER.resource_types if rt.name == "User")
    compiler = PatchCompiler(PROVIDER.model_for(user))  # type: ignore[arg-type]
    data = {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "title", "value": "Engineer"},
        {"op": "replace", "path": f"{ENTERPRISE_SCHEMA}:department", "value": "R&D"},
        {"op": "replace", "path": "active", "value": False},
    ]}  # fmt: skip
    operations = compiler.compile(data)
    assert operations is not None
    doc = {"id": "1", "title": "Intern", "active": True, ENTERPRISE_SCHEMA: {"department": "Sales"}}
    assert apply_simple(doc, operations)
    assert doc == {"id": "1", "title": "Engineer", "active": False, ENTERPRISE_SCHEMA: {"department": "R&D"}}
    assert not apply_simple(doc, operations)  # the same values again: nothing changes (no new version)
    for path in ('emails[type eq "work"].value', "emails", "meta.created", "password", f"{HR_SCHEMA}:locations"):
        assert compiler.compile({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": path, "value": "x"}]}) is None


@pytest.mark.parametrize("fast_bulk", [True, False])
def test_bulk_over_http_keeps_versions_monotonic(fast_bulk: bool) -> None:
    """Over HTTP: new versions only grow, a stale version gets 412, the faults hook and the request log still apply."""
    import requests

    with start_sandbox(users=5) as sandbox:
        sandbox._application.handler.fast_bulk = fast_bulk
        users = requests.get(f"{sandbox.url}/Users", timeout=10).json()["Resources"]
        before = {u["id"]: int(u["meta"]["version"][3:-1]) for u in users}
        operations = [
            {"method": "PATCH", "path": f"/Users/{u['id']}", "version": u["meta"]["version"],
             "data": {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": f"T{i}"}]}}
            for i, u in enumerate(users)
        ]  # fmt: skip
        operations.append({**operations[0], "version": 'W/"1"'})
        body = {"schemas": [BULK_REQUEST_SCHEMA], "Operations": operations}
        sandbox.faults.add(503, method="POST", path="/Bulk")
        assert requests.post(f"{sandbox.url}/Bulk", json=body, timeout=10).status_code == 503
        answer = requests.post(f"{sandbox.url}/Bulk", json=body, timeout=10).json()["Operations"]
        assert [o["status"] for o in answer] == ["200"] * len(users) + ["412"]
        after = [int(o["version"][3:-1]) for o in answer[:-1]]
        assert min(after) > max(before.values()) and after == sorted(after) and len(set(after)) == len(after)
        assert [(r.method, r.path, r.status) for r in sandbox.request_log[-2:]] == [("POST", "/Bulk", 503), ("POST", "/Bulk", 200)]
