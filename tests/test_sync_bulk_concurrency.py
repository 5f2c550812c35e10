"""Bulk chunks go out a few at a time, and a chunk waits for the chunks it depends on.

The platform is a plain scim2-server announcing small Bulk limits (10 operations per request) that
takes 50 ms per Bulk request (a slow platform: concurrent requests overlap in time). The server
records when each Bulk request started and ended, what it created and what it referenced, so the
test reads the order from the server's side, not from the client.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
import requests
from scim2_server.applications.wsgi import WSGIApplication
from support.plainscim import plain_scim2_server

from rosterbook.core.dialects import load_dialect
from rosterbook.core.plan import Change, FieldChange
from rosterbook.core.scim_map import changes_to_operations, dialect_from_schemas
from sync_client.retry import RetryPolicy
from sync_client.scim import BULK_CONCURRENCY, ScimClient

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

FAST = RetryPolicy(base_delay=0.01, max_delay=0.5, max_total=5, seed=7)
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


@dataclass
class BulkSeen:
    """One Bulk request as the server saw it."""

    start: float
    end: float = 0.0
    created: set[str] = field(default_factory=set)
    """Ids of the users it created."""
    referenced: set[str] = field(default_factory=set)
    """Member values (user ids, or unresolved ``bulkId:`` references) it added to groups."""
    bulk_ids: set[str] = field(default_factory=set)
    """bulkIds of the creates it carried."""
    groups: set[str] = field(default_factory=set)
    """Paths of the groups it changed."""


class _Recorder:
    """WSGI middleware: Bulk requests take 50 ms and are recorded (start, end, what they held)."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self.seen: list[BulkSeen] = []
        self.lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").endswith("/Bulk"):
            return self.app(environ, start_response)
        seen = BulkSeen(time.monotonic())
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size)
        environ["wsgi.input"] = _Body(body)
        time.sleep(0.05)
        answer = b"".join(self.app(environ, start_response))
        seen.end = time.monotonic()
        for operation in json.loads(body)["Operations"]:
            if operation["method"] == "POST":
                seen.bulk_ids.add(operation["bulkId"])
            else:
                seen.groups.add(operation["path"])
                for change in operation["data"]["Operations"]:
                    seen.referenced.update(member["value"] for member in change.get("value") or [])
        for outcome in json.loads(answer).get("Operations", []):
            if outcome["method"] == "POST" and outcome.get("location"):
                seen.created.add(outcome["location"].rsplit("/", 1)[-1])
        with self.lock:
            self.seen.append(seen)
        return [answer]


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, size: int = -1) -> bytes:
        out, self.data = (self.data, b"") if size < 0 else (self.data[:size], self.data[size:])
        return out


@pytest.fixture
def slow_bulk_server() -> Iterator[tuple[str, _Recorder]]:
    """A plain scim2-server announcing 10 operations per Bulk request, 50 ms per Bulk request."""
    config = {
        "patch": {"supported": True}, "bulk": {"supported": True, "maxOperations": 10, "maxPayloadSize": 1_048_576},
        "filter": {"supported": True, "maxResults": 50}, "etag": {"supported": True}, "sort": {"supported": False},
        "changePassword": {"supported": False},
    }  # fmt: skip
    with plain_scim2_server(config, _Recorder) as (url, recorder):
        yield url, recorder


def _new_user(key: str, row: int, **values: str) -> Change:
    base = {"Username": key, "First name": "New", "Last name": "Person", "Email": key, "Status": "Active", **values}
    return Change("create", row, None, key, values=base, fields={k: FieldChange(None, v) for k, v in base.items() if v})  # type: ignore[arg-type]


def _overlap(a: BulkSeen, b: BulkSeen) -> bool:
    return a.start < b.end and b.start < a.end


def test_independent_chunks_overlap_and_dependent_ones_wait(slow_bulk_server: tuple[str, _Recorder]) -> None:
    url, recorder = slow_bulk_server
    groups = {}
    for name in ("All", "Team"):
        answer = requests.post(f"{url}/Groups", json={"schemas": [GROUP_SCHEMA], "displayName": name}, timeout=10)
        groups[name] = answer.json()["id"]
    with ScimClient(url, retry=FAST) as client:
        disc = client.discover()
        dialect = dialect_from_schemas(load_dialect("scim"), disc.schemas, disc.resource_types)
        changes = [_new_user(f"user{i:02}@example.org", i + 2, Groups="All; Team" if i % 3 == 0 else "All") for i in range(40)]
        ops, failures = changes_to_operations(changes, dialect, user_ids_by_name={}, group_ids_by_name=groups)
        assert failures == [] and len(ops) == 40 + 40 + 14
        results = client.apply(ops)
        members = {g["displayName"]: {m["value"] for m in g.get("members", [])} for g in client.list_resources("/Groups")}
        ids = {u["userName"]: u["id"] for u in client.list_resources("/Users")}
    assert {r.status for r in results} == {"ok"}, [r.message for r in results if not r.ok]
    seen = sorted(recorder.seen, key=lambda s: s.start)
    assert len(seen) >= 10  # 94 operations, at most 10 per request
    created = {user: request for request in seen for user in request.created}
    assert set(created) == set(ids.values()) and len(created) == 40
    assert members == {"All": set(created), "Team": {ids[f"user{i:02}@example.org"] for i in range(0, 40, 3)}}
    # Concurrency: independent chunks (the creates) were in flight together, never more than allowed.
    assert any(_overlap(a, b) for a in seen for b in seen if a is not b)
    assert max(sum(1 for other in seen if other.start <= s.start < other.end) for s in seen) <= BULK_CONCURRENCY
    for request in seen:
        # A reference left as bulkId: is only sent with the create it names...
        assert all(ref.removeprefix("bulkId:") in request.bulk_ids for ref in request.referenced if ref.startswith("bulkId:"))
        # ... and a resolved one only after the request that created the user had finished.
        for user in request.referenced & set(created):
            assert created[user] is request or created[user].end <= request.start
        # Requests on the same group never overlap: they stay in order.
        assert not any(_overlap(request, other) for other in seen if other is not request and request.groups & other.groups)


def test_the_pool_size_caps_concurrency(slow_bulk_server: tuple[str, _Recorder]) -> None:
    url, recorder = slow_bulk_server
    with ScimClient(url, retry=FAST, max_workers=1) as client:
        disc = client.discover()
        dialect = dialect_from_schemas(load_dialect("scim"), disc.schemas, disc.resource_types)
        ops, _ = changes_to_operations([_new_user(f"solo{i:02}@example.org", i + 2) for i in range(25)], dialect, user_ids_by_name={}, group_ids_by_name={})
        results = client.apply(ops)
    assert {r.status for r in results} == {"ok"} and len(recorder.seen) == 3
    assert not any(_overlap(a, b) for a in recorder.seen for b in recorder.seen if a is not b)
