"""current_versions reads changed users through ``id eq`` filters where the platform announces filtering, and gives
exactly what one GET per user gives, on any server: request counts come from the server or the proxy, never the client.

Servers: the sandbox (SQLite, ``id eq`` by primary key), a plain scim2-server (in-memory) that may ignore the filter
or page smaller than asked, the fault proxy refusing ``id eq`` filters (400/501/401/403), and a platform whose
bodies carry no ``meta.version`` while it announces ETags.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import pytest
import requests
from support.faultproxy import FaultProxy, Rule
from support.plainscim import plain_scim2_server
from support.scimproxies import HeaderVersionProxy, HoldingProxy, VersionlessProxy

from rosterbook.sandbox import Sandbox
from sync_client.errors import ScimAuthError
from sync_client.retry import RetryPolicy
from sync_client.scim import FILTER_CHUNK, CurrentResource, ScimClient

FAST = RetryPolicy(base_delay=0.01, max_delay=0.5, max_total=5, seed=7)
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def by_get(client: ScimClient, ids: Iterable[str]) -> dict[str, tuple[str | None, dict[str, Any]]]:
    """What one GET per user says: id -> (version, resource), absent users left out."""
    found = {rid: client.get(f"/Users/{rid}") for rid in ids}
    return {rid: (c.version, c.resource) for rid, c in found.items() if c is not None}


def shown(found: dict[str, CurrentResource]) -> dict[str, tuple[str | None, dict[str, Any]]]:
    return {rid: (c.version, c.resource) for rid, c in found.items()}


def kinds(targets: Iterable[str]) -> tuple[int, list[str]]:
    """(filter requests on /Users, the single GETs' user ids) among request targets (path?query)."""
    targets = list(targets)
    filters = sum(1 for t in targets if "/Users?" in t and "filter=id" in t)
    gets = [t.split("/Users/", 1)[1] for t in targets if "/Users/" in t]
    return filters, gets


def user_ids(url: str) -> list[str]:
    data = requests.get(f"{url}/Users", params={"count": 1000}, timeout=10).json()
    return sorted(u["id"] for u in data["Resources"])


# --- the sandbox -----------------------------------------------------------------------------------


def test_the_sandbox_answers_chunks_of_id_filters_with_what_gets_say(fresh_sandbox: Callable[..., Sandbox]) -> None:
    sb = fresh_sandbox(users=125, seed=5)
    ids = user_ids(sb.url)[:120]
    deleted = ids[3:120:25]  # 5 users deleted since the export: absent
    for rid in deleted:
        assert requests.delete(f"{sb.url}/Users/{rid}", timeout=10).status_code == 204
    with ScimClient(sb.url, retry=FAST) as client:
        client.discover()
        expected = by_get(client, ids)
        before = len(sb.request_log)
        found = client.current_versions(ids)
        log = sb.request_log[before:]
    assert shown(found) == expected and len(found) == 115
    filters, gets = kinds(f"{r.path}?{r.query}" if r.query else r.path for r in log)
    assert filters == math.ceil(120 / FILTER_CHUNK) == 3
    assert sorted(gets) == sorted(deleted) and len(log) == filters + len(gets)
    assert all(r.status == 200 for r in log if r.query)


def test_a_filter_refused_with_400_or_501_is_tried_once_and_every_user_read_by_get(sandbox: Sandbox) -> None:
    ids = [*user_ids(sandbox.url), "no-such-id-1", "no-such-id-2"]
    for status in (400, 501):
        with FaultProxy(sandbox.url) as proxy, ScimClient(proxy.url, retry=FAST) as client:
            proxy.add(Rule("status", method="GET", path=r"filter=id\+eq", status=status, retry_after=None, times=None))
            expected = by_get(client, ids)
            before = len(proxy.seen)
            first = client.current_versions(ids)
            again = client.current_versions(ids[:10])  # later in the same command: the filter is not tried again
            filters, gets = kinds(s.target for s in proxy.seen[before:])
        assert shown(first) == expected and shown(again) == {rid: expected[rid] for rid in ids[:10]}
        assert filters == 1 and len(gets) == len(ids) + 10, status


def test_a_refused_token_stops_after_one_get_with_todays_message(sandbox: Sandbox) -> None:
    ids = user_ids(sandbox.url)
    with FaultProxy(sandbox.url) as proxy, ScimClient(proxy.url, retry=FAST) as client:
        client.discover()
        proxy.add(Rule("status", method="GET", path=r"/Users", status=401, retry_after=None, times=None))
        before = len(proxy.seen)
        with pytest.raises(ScimAuthError, match=rf"refused the request \(no token is bound to this URL\) \(401\) on GET /Users/{ids[0]}\."):
            client.current_versions(ids)
        filters, gets = kinds(s.target for s in proxy.seen[before:])
    assert (filters, gets) == (1, [ids[0]])


def test_a_platform_forbidding_only_searches_is_read_by_gets(sandbox: Sandbox) -> None:
    ids = [*user_ids(sandbox.url)[:30], "no-such-id"]
    with FaultProxy(sandbox.url) as proxy, ScimClient(proxy.url, retry=FAST) as client:
        proxy.add(Rule("status", method="GET", path=r"filter=", status=403, retry_after=None, times=None))
        expected = by_get(client, ids)
        before = len(proxy.seen)
        found = client.current_versions(ids)
        filters, gets = kinds(s.target for s in proxy.seen[before:])
    assert shown(found) == expected and (filters, len(gets)) == (1, len(ids))


# --- versions ----------------------------------------------------------------------------------------


def test_with_etags_announced_a_listed_user_without_meta_version_is_read_by_get(sandbox: Sandbox) -> None:
    ids = user_ids(sandbox.url)
    stripped = set(ids[::7])
    with ScimClient(sandbox.url) as direct:
        truth = by_get(direct, ids)  # versions in the bodies
    with HeaderVersionProxy(sandbox.url, only=stripped) as bare, FaultProxy(bare.url) as proxy, ScimClient(proxy.url, retry=FAST) as client:
        assert client.discover().etag
        for total in (None, len(ids)):  # through id filters, and through every page
            before = len(proxy.seen)
            found = client.current_versions(ids, total=total)
            filters, gets = kinds(s.target for s in proxy.seen[before:])
            assert {rid: c.version for rid, c in found.items()} == {rid: v for rid, (v, _) in truth.items()}
            assert sorted(gets) == sorted(stripped) and filters == (2 if total is None else 0)


def test_without_etags_a_listed_user_without_a_version_is_taken_as_its_get_gives_it(sandbox: Sandbox) -> None:
    ids = [*user_ids(sandbox.url)[:20], "no-such-id"]
    with VersionlessProxy(sandbox.url) as bare, FaultProxy(bare.url) as proxy, ScimClient(proxy.url, retry=FAST) as client:
        expected = by_get(client, ids)
        before = len(proxy.seen)
        found = client.current_versions(ids)
        filters, gets = kinds(s.target for s in proxy.seen[before:])
    assert shown(found) == expected and {c.version for c in found.values()} == {None}
    assert (filters, gets) == (1, ["no-such-id"])


# --- a plain scim2-server (in-memory), as announced and misbehaving ---------------------------------------


class Misbehaving:
    """scim2-server's WSGI application, recording each request's path?query, and answering ``id eq`` filters as told:
    ``pass``, ``ignore-filter`` (the first unfiltered page instead), ``short-pages`` (3 users at most)."""

    def __init__(self, app: Any, behaviour: str) -> None:
        self.app, self.behaviour = app, behaviour
        self.seen: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        query = environ.get("QUERY_STRING", "")
        with self.lock:
            self.seen.append(f"{environ.get('PATH_INFO', '')}?{query}" if query else environ.get("PATH_INFO", ""))
        if "filter=id" in query:
            parts = [p for p in query.split("&") if not (self.behaviour == "ignore-filter" and p.startswith("filter="))]
            if self.behaviour == "short-pages":
                parts = [p if not p.startswith("count=") else "count=3" for p in parts]
            environ = {**environ, "QUERY_STRING": "&".join(parts)}
        return self.app(environ, start_response)


def plain_config(*, filtering: bool, max_results: int = 50) -> dict[str, Any]:
    return {
        "patch": {"supported": True}, "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": filtering, "maxResults": max_results}, "etag": {"supported": True}, "sort": {"supported": False},
        "changePassword": {"supported": False},
    }  # fmt: skip


@pytest.fixture
def plain_server() -> Iterator[Callable[..., tuple[str, Misbehaving, list[str]]]]:
    """A factory: a plain scim2-server with 30 users, announcing ``config`` and misbehaving as told."""
    with ExitStack() as stack:

        def start(config: dict[str, Any], behaviour: str = "pass") -> tuple[str, Misbehaving, list[str]]:
            url, app = stack.enter_context(plain_scim2_server(config, lambda app: Misbehaving(app, behaviour)))
            ids = []
            for i in range(30):
                body = {"schemas": [USER], "userName": f"user{i:02}@example.org", "title": f"Title {i}"}
                ids.append(requests.post(f"{url}/Users", json=body, timeout=10).json()["id"])
            return url, app, ids

        yield start


@pytest.mark.parametrize(
    ("filtering", "max_results", "behaviour", "filters", "extra_gets"),
    [
        (True, 50, "pass", 1, 0),  # 23 ids, one chunk
        (True, 7, "pass", 4, 0),  # chunks of the announced maxResults: 7+7+7+2
        (True, 10, "ignore-filter", 3, None),  # each answer the first 10 (or 3) of all 30 users: only asked ones taken
        (True, 50, "short-pages", 1, 20 - 3),  # 3 users per answer: the rest by GET
        (False, 50, "pass", 0, 20),  # filtering not announced: no filter request at all
    ],
)
def test_a_plain_scim2_server_gives_what_gets_give(plain_server: Callable[..., tuple[str, Misbehaving, list[str]]], filtering: bool,
                                                    max_results: int, behaviour: str, filters: int, extra_gets: int | None) -> None:
    url, app, ids = plain_server(plain_config(filtering=filtering, max_results=max_results), behaviour)
    present = ids[::-1][:20]  # not the listing's order, and not every user
    wanted = [*present, "no-such-id-1", "no-such-id-2", "no-such-id-3"]
    with ScimClient(url, retry=FAST) as client:
        assert client.discover().filter == filtering
        expected = by_get(client, wanted)
        before = len(app.seen)
        found = client.current_versions(wanted)
        seen_filters, gets = kinds(app.seen[before:])
    assert shown(found) == expected and list(found) == present
    assert seen_filters == filters and len(app.seen) - before == filters + len(gets)
    assert {"no-such-id-1", "no-such-id-2", "no-such-id-3"} <= set(gets) and len(set(gets)) == len(gets)
    if extra_gets is not None:
        assert len(gets) == 3 + extra_gets
    else:
        assert 3 < len(gets) < 3 + 20



def test_discovery_asks_its_three_endpoints_at_once_and_fails_in_their_order(fresh_sandbox: Callable[..., Sandbox]) -> None:
    """ServiceProviderConfig, /Schemas and /ResourceTypes go out together (one round trip of a far platform, not three):
    with the ServiceProviderConfig's answer held back, the platform still receives the other two. An error is the one
    the first failing endpoint gives, in that order, as when they were asked one after the other."""
    platform = fresh_sandbox(users=3)
    with HoldingProxy(platform.url, "GET", r"/ServiceProviderConfig$", nth=1) as proxy, ScimClient(proxy.url, retry=FAST) as client:
        with ThreadPoolExecutor(max_workers=1) as pool:
            discovering = pool.submit(client.discover)
            assert proxy.held.wait(10)
            deadline = time.monotonic() + 10
            asked = set()
            while asked != {"/Schemas", "/ResourceTypes"} and time.monotonic() < deadline:
                asked = {r.path for r in platform.request_log} & {"/Schemas", "/ResourceTypes"}
                time.sleep(0.01)
            proxy.release()
            disc = discovering.result(timeout=10)
        assert asked == {"/Schemas", "/ResourceTypes"}  # asked while the first answer was still on its way
        assert disc.filter and any(t.get("name") == "User" for t in disc.resource_types)
    for failing, expected in ((r"/Schemas$", "Schemas"), (r"/(ServiceProviderConfig|ResourceTypes)$", "ServiceProviderConfig")):
        with FaultProxy(platform.url) as fault, ScimClient(fault.url, retry=FAST) as client:
            fault.add(Rule("status", method="GET", path=failing, status=401, retry_after=None, times=None))
            with pytest.raises(ScimAuthError) as caught:
                client.discover()
            assert expected in str(caught.value)
