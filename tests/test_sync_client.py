"""The SCIM client against a real SCIM server on 127.0.0.1: apply, conflicts, duplicates, Bulk, faults.

No HTTP mocks: the sandbox (scim2-server over SQLite) serves every request; faults come from its
server-side hook or from the loopback fault proxy in tests/support.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from support.faultproxy import FaultProxy, Rule
from support.plainscim import plain_scim2_server

from rosterbook.core.dialects import Dialect, load_dialect
from rosterbook.core.plan import Change, FieldChange
from rosterbook.core.scim_map import PATCH_OP, Operation, changes_to_operations, dialect_from_schemas, memberships, resource_to_values
from rosterbook.sandbox import Sandbox, start_sandbox
from sync_client.errors import InsecureTransport, ScimAuthError
from sync_client.retry import RetryPolicy
from sync_client.scim import OperationResult, ScimClient

HR = "urn:rosterbook:params:scim:schemas:extension:hr:2.0:User"
FAST = RetryPolicy(base_delay=0.01, max_delay=0.5, max_total=5, seed=7)


# --- helpers -----------------------------------------------------------------------------------


@dataclass
class State:
    """The platform's users as rows: key -> (id, version, values)."""

    dialect: Dialect
    users: dict[str, tuple[str, str | None, dict[str, str | None]]]
    group_ids: dict[str, str]

    def change(self, key: str, action: str = "update", new_key: str | None = None, **after: str | None) -> Change:
        rid, version, values = self.users[key]
        fields = {col: FieldChange(values.get(col), value) for col, value in after.items()}
        if new_key is not None:
            fields["Username"] = FieldChange(key, new_key)
            action = "rename"
        intended = {**values, **after, **({"Username": new_key} if new_key else {})}
        return Change(action, 2, f"r-{rid}", new_key or key, old_key=key if new_key else None, resource_id=rid, version=version,  # type: ignore[arg-type]
                      fields=fields, values=intended)


def state_of(client: ScimClient) -> State:
    disc = client.discover()
    dialect = dialect_from_schemas(load_dialect("scim"), disc.schemas, disc.resource_types)
    export = client.export_users()
    names = {u["id"]: u["userName"] for u in export.users}
    groups = memberships(export.groups)
    users = {
        u["userName"]: (u["id"], u["meta"]["version"], resource_to_values(u, dialect, user_names_by_id=names, groups_of_user=groups))
        for u in export.users
    }
    return State(dialect, users, {g["displayName"]: g["id"] for g in export.groups})


def new_user(key: str, row: int, **values: str | None) -> Change:
    base: dict[str, str | None] = {"Username": key, "First name": "New", "Last name": "Person", "Email": key, "Status": "Active"}
    base.update(values)
    return Change("create", row, None, key, values=base, fields={k: FieldChange(None, v) for k, v in base.items() if v})


def operations(state: State, changes: list[Change]) -> list[Operation]:
    names = {key: rid for key, (rid, _, _) in state.users.items()}
    ops, failures = changes_to_operations(changes, state.dialect, user_ids_by_name=names, group_ids_by_name=state.group_ids)
    assert failures == []
    return ops


def statuses(results: list[OperationResult]) -> Counter[str]:
    return Counter(r.status for r in results)


def count_users(url: str, user_name: str) -> int:
    data = requests.get(f"{url}/Users", params={"filter": f'userName eq "{user_name}"'}, timeout=10).json()
    return int(data["totalResults"])


def someone_else_patches(url: str, user_id: str, path: str, value: Any) -> None:
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": path, "value": value}]}
    assert requests.patch(f"{url}/Users/{user_id}", json=body, timeout=10).status_code == 204


@pytest.fixture
def sb(fresh_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """A small fresh sandbox per test (tests change its data)."""
    return fresh_sandbox(users=40, seed=3)


@pytest.fixture
def client(sb: Sandbox) -> Iterator[ScimClient]:
    with ScimClient(sb.url, retry=FAST) as c:
        yield c


# --- transport rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kw", "message"),
    [
        ("https://hr.example.com/scim/v2", {"verify": False}, "TLS verification cannot be turned off"),
        ("http://hr.example.com/scim/v2", {}, "uses plain HTTP"),
        ("ftp://hr.example.com", {}, "is not an http\\(s\\) URL"),
        ("https://hr.example.com/scim/v2", {"verify": "/nonexistent/ca.pem"}, "CA bundle '/nonexistent/ca.pem' does not exist"),
    ],
)
def test_insecure_transport_is_refused(url: str, kw: dict[str, Any], message: str) -> None:
    with pytest.raises(InsecureTransport, match=message):
        ScimClient(url, **kw)


def test_a_refused_token_stops_the_run_without_showing_it() -> None:
    with start_sandbox(users=1, token="right-token") as sandbox:
        with ScimClient(sandbox.url, token="right-token") as good:
            assert good.discover().bulk
        with ScimClient(sandbox.url, token="wrong-token-123") as bad, pytest.raises(ScimAuthError) as caught:
            bad.export_users()
        assert "401" in str(caught.value) and "wrong-token-123" not in str(caught.value)
        assert "wrong-token-123" not in repr(bad)


# --- discovery and apply ------------------------------------------------------------------------


def test_discovery_and_schema_driven_columns(client: ScimClient) -> None:
    disc = client.discover()
    assert (disc.bulk, disc.bulk_max_operations, disc.bulk_max_payload, disc.etag) == (True, 1000, 1_048_576, True)
    assert HR in {s["id"] for s in disc.schemas}
    dialect = dialect_from_schemas(load_dialect("scim"), disc.schemas, disc.resource_types)
    assert {"Team", "Position", "Locations", "Cost center", "Organization", "Division"} <= set(dialect.column_names)


@pytest.mark.parametrize("use_bulk", [True, False], ids=["bulk", "single"])
def test_apply_creates_updates_archives_renames(sb: Sandbox, use_bulk: bool) -> None:
    client = ScimClient(sb.url, retry=FAST, use_bulk=use_bulk)
    state = state_of(client)
    a, b, c, d = sorted(state.users)[:4]
    group = sorted(state.group_ids)[0]
    changes = [
        state.change(a, **{"Job title": "=Head of Fun", "Locations": "Main\\|HQ|Cork", "Phone": None, "Groups": group}),
        state.change(b, "archive", Status="Archived"),
        state.change(c, new_key="renamed." + c),
        new_user("boss@new.example", 50, Team="Alpha"),
        new_user("report@new.example", 51, Manager="boss@new.example", Groups=group, Status="Pending"),
    ]
    results = client.apply(operations(state, changes))
    assert statuses(results) == {"ok": len(results)}, [r.message for r in results if not r.ok]
    after = state_of(client)
    assert after.users[a][2]["Job title"] == "=Head of Fun"
    assert after.users[a][2]["Locations"] == "Main\\|HQ|Cork"
    assert after.users[a][2]["Phone"] is None
    assert after.users[a][2]["Groups"] == group
    assert after.users[b][2]["Status"] == "Archived"
    assert c not in after.users and after.users["renamed." + c][0] == state.users[c][0]  # same id, new name
    assert after.users["report@new.example"][2]["Manager"] == "boss@new.example"
    assert after.users["report@new.example"][2]["Groups"] == group
    assert after.users["report@new.example"][2]["Status"] == "Pending"
    assert after.users[d] == state.users[d]  # untouched
    by_path = {r.path: r for r in results}
    assert by_path[f"/Users/{state.users[a][0]}"].version == after.users[a][1]  # the new ETag, kept for the next sync


def test_a_concurrent_change_is_a_conflict_with_current_values(sb: Sandbox, client: ScimClient) -> None:
    state = state_of(client)
    x, y, z = sorted(state.users)[:3]
    someone_else_patches(sb.url, state.users[x][0], "title", "Changed elsewhere")
    someone_else_patches(sb.url, state.users[y][0], "title", "Same as ours")  # they made our change already
    changes = [state.change(x, **{"Job title": "Ours"}), state.change(y, **{"Job title": "Same as ours"}), state.change(z, **{"Job title": "Fine"})]
    results = client.apply(operations(state, changes))
    by_key = {r.key: r for r in results}
    assert by_key[x].status == "conflict" and by_key[x].http_status == 412
    assert by_key[x].current is not None and by_key[x].current["title"] == "Changed elsewhere"
    assert "changed on the platform since the export" in by_key[x].message
    assert by_key[y].status == "ok" and "already applied" in by_key[y].message
    assert by_key[z].status == "ok"  # one row's conflict stops nothing else
    assert state_of(client).users[x][2]["Job title"] == "Changed elsewhere"  # nobody's edit was overwritten


@pytest.mark.parametrize("use_bulk", [True, False], ids=["bulk", "single"])
def test_duplicates_invalid_and_deleted_rows(sb: Sandbox, use_bulk: bool) -> None:
    client = ScimClient(sb.url, retry=FAST, use_bulk=use_bulk)
    state = state_of(client)
    a, b, c, d = sorted(state.users)[:4]
    requests.delete(f"{sb.url}/Users/{state.users[d][0]}", timeout=10)
    ops = operations(state, [
        new_user(a.upper(), 60, **{"First name": "Someone else"}),  # userName is case-insensitive: taken
        state.change(b, new_key=c),  # renamed onto another user's name
        state.change(d, **{"Job title": "Ghost"}),  # deleted on the platform
        state.change(c, **{"Job title": "Still fine"}),
    ])
    bad = Operation("PATCH", f"/Users/{state.users[a][0]}", {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": "maybe"}]},
                    state.users[a][1], None, "r-bad", a, 61)
    results = client.apply([*ops, bad])
    got = {(r.key, r.status) for r in results}
    assert got == {(a.upper(), "duplicate"), (c, "duplicate"), (d, "not-found"), (c, "ok"), (a, "invalid")}
    dup = next(r for r in results if r.key == a.upper())
    assert dup.current is not None and dup.current["userName"] == a
    invalid = next(r for r in results if r.status == "invalid")
    assert invalid.http_status == 400 and "active" in invalid.message
    assert count_users(sb.url, a) == 1


# --- Bulk limits ---------------------------------------------------------------------------------


@pytest.fixture
def small_bulk_server() -> Iterator[str]:
    """A plain scim2-server announcing small Bulk limits (10 operations, 6,000 bytes)."""
    config = {
        "patch": {"supported": True}, "bulk": {"supported": True, "maxOperations": 10, "maxPayloadSize": 6000},
        "filter": {"supported": True, "maxResults": 50}, "etag": {"supported": True}, "sort": {"supported": False},
        "changePassword": {"supported": False},
    }
    with plain_scim2_server(config) as (url, _app):
        yield url


def test_bulk_is_chunked_at_the_announced_limits(small_bulk_server: str) -> None:
    group = requests.post(f"{small_bulk_server}/Groups", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "All"}, timeout=10).json()
    with FaultProxy(small_bulk_server) as proxy, ScimClient(proxy.url, retry=FAST) as client:
        disc = client.discover()
        dialect = dialect_from_schemas(load_dialect("scim"), disc.schemas, disc.resource_types)
        changes = [new_user(f"user{i:02}@example.org", i + 2, Groups="All", **{"Job title": "x" * 200}) for i in range(45)]
        ops, failures = changes_to_operations(changes, dialect, user_ids_by_name={}, group_ids_by_name={"All": group["id"]})
        assert failures == [] and len(ops) == 90
        results = client.apply(ops)
        bulks = [s for s in proxy.seen if s.target.endswith("/Bulk")]
        export = client.export_users()
    assert statuses(results) == {"ok": 90}
    assert all(s.size <= 6000 for s in bulks)
    assert len(bulks) >= 9  # 90 operations, at most 10 per request
    assert export.total == 45
    assert len(export.groups[0]["members"]) == 45  # member adds in later chunks found the users created earlier


def test_more_operations_than_one_bulk_request_takes(sb: Sandbox, client: ScimClient) -> None:
    state = state_of(client)
    changes = [new_user(f"bulk{i:04}@example.org", i + 2) for i in range(1100)]
    before = len(sb.request_log)
    results = client.apply(operations(state, changes))
    bulk_posts = [r for r in sb.request_log[before:] if r.path == "/Bulk"]
    assert statuses(results) == {"ok": 1100}
    assert len(bulk_posts) == 2  # 1000 + 100
    assert client.export_users().total == len(state.users) + 1100


# --- retries and faults --------------------------------------------------------------------------


def test_429_from_the_server_hook_is_retried(sb: Sandbox, client: ScimClient) -> None:
    state = state_of(client)
    keys = sorted(state.users)[:3]
    sb.faults.add(429, {"Retry-After": "0"}, method="POST", path="/Bulk", times=2)
    results = client.apply(operations(state, [state.change(k, **{"Job title": "Retried"}) for k in keys]))
    assert statuses(results) == {"ok": 3}
    assert sb.faults.pending == 0
    assert all(state_of(client).users[k][2]["Job title"] == "Retried" for k in keys)


def test_a_retry_after_beyond_the_budget_fails_the_rows_without_waiting(sb: Sandbox) -> None:
    client = ScimClient(sb.url, retry=RetryPolicy(base_delay=0.01, max_delay=1.0), use_bulk=False)
    state = state_of(client)
    key = sorted(state.users)[0]
    sb.faults.add(429, {"Retry-After": "3600"}, method="PATCH", path="/Users")
    [result] = client.apply(operations(state, [state.change(key, **{"Job title": "Later"})]))
    assert (result.status, result.http_status) == ("failed", 429)


def test_429_and_503_through_the_fault_proxy(sb: Sandbox) -> None:
    with FaultProxy(sb.url) as proxy:
        proxy.add(Rule("status", method="PATCH", status=429, retry_after="0", times=3))
        proxy.add(Rule("status", method="GET", status=503, retry_after="0", times=2))
        client = ScimClient(proxy.url, retry=FAST, use_bulk=False)
        state = state_of(client)
        keys = sorted(state.users)[:4]
        results = client.apply(operations(state, [state.change(k, Team="Proxy") for k in keys]))
        assert proxy.fault_counts() == {"status 429": 3, "status 503": 2}
    assert statuses(results) == {"ok": 4}


@pytest.mark.parametrize("use_bulk", [True, False], ids=["bulk", "single"])
def test_a_create_whose_response_was_lost_is_not_made_twice(sb: Sandbox, use_bulk: bool) -> None:
    with FaultProxy(sb.url) as proxy:
        client = ScimClient(proxy.url, retry=FAST, use_bulk=use_bulk)
        state = state_of(client)
        key = sorted(state.users)[0]
        proxy.add(Rule("drop_after", method="POST", path="/Users$|/Bulk$"))
        changes = [new_user("lost@example.org", 70, Groups=sorted(state.group_ids)[0]), new_user("also@example.org", 71),
                   state.change(key, **{"Job title": "Once"})]
        results = client.apply(operations(state, changes))
        assert proxy.fault_counts() == {"drop_after": 1}
        assert statuses(results) == {"ok": len(results)}, [r.message for r in results]
        assert count_users(sb.url, "lost@example.org") == 1 and count_users(sb.url, "also@example.org") == 1
        again = state_of(client)
    assert again.users["lost@example.org"][2]["Groups"] == sorted(state.group_ids)[0]
    assert again.users[key][2]["Job title"] == "Once"


def test_unknown_outcomes_are_resolved_before_creating_again(sb: Sandbox) -> None:
    with FaultProxy(sb.url) as proxy:
        client = ScimClient(proxy.url, retry=FAST, use_bulk=False)
        state = state_of(client)
        key = sorted(state.users)[0]
        proxy.add(Rule("status", method="POST", path="/Users$", status=502, retry_after=None))  # never reached the server
        proxy.add(Rule("drop_before", method="PATCH"))  # safe to repeat: If-Match
        results = client.apply(operations(state, [new_user("gateway@example.org", 80), state.change(key, Team="Again")]))
        lookups = [s for s in proxy.seen if s.method == "GET" and "filter=" in s.target]
        assert proxy.fault_counts() == {"status 502": 1, "drop_before": 1}
    assert statuses(results) == {"ok": 2}
    assert len(lookups) == 1  # looked up before creating again
    assert count_users(sb.url, "gateway@example.org") == 1


def test_a_lost_create_whose_look_up_fails_is_reported_as_possibly_created(sb: Sandbox) -> None:
    """The row fails this run, but its message must not read as "not created": the platform did create it."""
    with FaultProxy(sb.url) as proxy:
        client = ScimClient(proxy.url, retry=FAST, use_bulk=False)
        state = state_of(client)
        proxy.add(Rule("drop_after", method="POST", path="/Users$"))
        proxy.add(Rule("status", method="GET", path="filter=userName", status=503, retry_after="0", times=None))
        results = client.apply(operations(state, [new_user("unsure@example.org", 90)]))
    assert [r.status for r in results] == ["failed"]
    assert "the platform's answer was lost and looking 'unsure@example.org' up failed" in results[0].message
    assert "the user may have been created: run the sync again" in results[0].message
    assert count_users(sb.url, "unsure@example.org") == 1


def test_current_versions_reports_what_the_platform_holds(sb: Sandbox, client: ScimClient) -> None:
    state = state_of(client)
    a, b = sorted(state.users)[:2]
    someone_else_patches(sb.url, state.users[a][0], "title", "Moved on")
    current = client.current_versions([state.users[a][0], state.users[b][0], "no-such-id"])
    assert set(current) == {state.users[a][0], state.users[b][0]}
    assert current[state.users[a][0]].version != state.users[a][1]
    assert current[state.users[b][0]].version == state.users[b][1]
    assert current[state.users[a][0]].resource["title"] == "Moved on"


def test_current_versions_of_many_users_reads_pages_with_the_same_answer(sb: Sandbox, client: ScimClient) -> None:
    state = state_of(client)
    keys = sorted(state.users)
    ids = [state.users[k][0] for k in keys]
    someone_else_patches(sb.url, ids[0], "title", "Paged")
    one_by_one = {rid: current for rid in ids if (current := client.get(f"/Users/{rid}")) is not None}
    before = client.requests_sent
    paged = client.current_versions([*ids, "no-such-id"], total=len(ids))
    # A page per 1000 users instead of a GET per user, and the same versions and resources.
    assert client.requests_sent - before <= 1 + len(ids) // 1000 + 1
    assert {rid: c.version for rid, c in paged.items()} == {rid: c.version for rid, c in one_by_one.items()}
    assert paged[ids[0]].resource["title"] == "Paged"
    assert {rid: c.resource["userName"] for rid, c in paged.items()} == {rid: c.resource["userName"] for rid, c in one_by_one.items()}
    # A few users out of many are read by an id filter (the sandbox announces filtering), one by itself by GET.
    before = client.requests_sent
    assert set(client.current_versions(ids[:2], total=len(ids))) == set(ids[:2])
    assert client.requests_sent - before == 1
    assert [(r.path, r.query.startswith("filter=")) for r in sb.request_log[-1:]] == [("/Users", True)]
    before = client.requests_sent
    assert set(client.current_versions(ids[:1], total=len(ids))) == set(ids[:1])
    assert [r.path for r in sb.request_log[-1:]] == [f"/Users/{ids[0]}"] and client.requests_sent - before == 1
