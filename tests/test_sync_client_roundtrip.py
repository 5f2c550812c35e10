"""Round trips against the sandbox: export 5,000 users; change 100, apply, export again; apply twice."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from support.shared import released, shared
from test_sync_client import FAST, State, new_user, operations, state_of, statuses

from rosterbook.core.plan import Change
from rosterbook.sandbox import Sandbox, start_sandbox
from sync_client.scim import ScimClient


@pytest.fixture(scope="module")
def big() -> Iterator[Sandbox]:
    """5,000 users, shared by the module's tests, read-only."""
    sandbox = start_sandbox(users=5000, seed=11)
    try:
        yield shared(sandbox)
    finally:
        released(sandbox)
        sandbox.stop()


def test_export_of_5000_users(big: Sandbox) -> None:
    seen: list[tuple[int, int]] = []
    with ScimClient(big.url, retry=FAST) as client:
        result = client.export_users(progress=lambda done, total: seen.append((done, total)))
        sent = client.requests_sent
    ids = {u["id"] for u in result.users}
    assert result.total == 5000 and len(ids) == 5000
    assert all(u["meta"]["version"] for u in result.users)
    members = sum(len(g.get("members") or ()) for g in result.groups)
    assert members > 0 and all(m["value"] in ids for g in result.groups for m in g.get("members") or ())
    assert seen[-1][0] == seen[-1][1] == 5000 + len(result.groups)
    assert max(done for done, _ in seen) == seen[-1][0]
    # The largest page the server allows (1000): a handful of requests, not one per user.
    assert sent <= 3 + 7 + 2


def _hundred_changes(state: State, rng: random.Random) -> list[Change]:
    keys = sorted(state.users)
    rng.shuffle(keys)
    teams = ["Alpha", "Beta", "=Gamma"]
    changes: list[Change] = []
    for i, key in enumerate(keys[:100]):
        values = state.users[key][2]
        if i < 60:
            changes.append(state.change(key, Team=teams[i % 3], **{"Job title": f"Title {i}", "Locations": f"Site {i}|Main\\|HQ"}))
        elif i < 75:
            changes.append(state.change(key, "archive", Status="Archived"))
        elif i < 90:
            changes.append(state.change(key, new_key=f"renamed{i}.{key}"))
        elif values.get("Phone") is not None:
            changes.append(state.change(key, Phone=None))  # (clear)
        else:
            changes.append(state.change(key, Phone="+44 20 7946 0000"))
    return changes


def _expected(state: State, changes: list[Change]) -> dict[str, dict[str, str | None]]:
    want = {key: dict(values) for key, (_, _, values) in state.users.items()}
    renamed: dict[str, str] = {}
    for change in changes:
        if change.old_key:
            want.pop(change.old_key)
            renamed[change.old_key] = change.key
        want[change.key] = dict(change.values)
    for values in want.values():
        # The manager link is the id: a renamed manager's reports show the new userName.
        manager = values.get("Manager")
        if manager in renamed:
            values["Manager"] = renamed[manager]
    return want


def test_change_100_users_apply_export_and_apply_again() -> None:
    with start_sandbox(users=300, seed=5) as sandbox, ScimClient(sandbox.url, retry=FAST) as client:
        state = state_of(client)
        changes = _hundred_changes(state, random.Random(5))
        changes += [new_user("fresh1@example.org", 900), new_user("fresh2@example.org", 901, Manager="fresh1@example.org")]
        ops = operations(state, changes)
        first = client.apply(ops)
        assert statuses(first) == {"ok": len(ops)}, [r.message for r in first if not r.ok][:5]

        after = state_of(client)
        want = _expected(state, changes)
        got = {key: values for key, (_, _, values) in after.users.items()}
        assert set(got) == set(want)
        new_keys = {"fresh1@example.org", "fresh2@example.org"}
        assert {k: v for k, v in got.items() if k not in new_keys} == {k: v for k, v in want.items() if k not in new_keys}
        for key in new_keys:
            assert {c: v for c, v in got[key].items() if want[key].get(c) is not None} == {c: v for c, v in want[key].items() if v is not None}

        # The same operations again (a re-run after a crash): nothing changes, nothing is duplicated.
        before_requests = sandbox.request_count
        second = client.apply(ops)
        assert statuses(second) == {"ok": len(ops)}, [r.message for r in second if not r.ok][:5]
        assert sandbox.request_count > before_requests
        again = state_of(client)
        assert {k: (rid, version) for k, (rid, version, _) in again.users.items()} == {k: (rid, version) for k, (rid, version, _) in after.users.items()}
        assert len(again.users) == len(state.users) + 2
