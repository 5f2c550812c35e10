"""The loopback fault proxy itself: forwards faithfully, keeps connections alive, injects each fault."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests
from support.faultproxy import FaultProxy, Rule
from support.shared import released, shared

from rosterbook.sandbox import Sandbox, start_sandbox


@pytest.fixture(scope="module")
def upstream() -> Iterator[Sandbox]:
    """The module's shared, read-only upstream (tests that write start their own)."""
    sandbox = start_sandbox(users=5, seed=2)
    try:
        yield shared(sandbox)
    finally:
        released(sandbox)
        sandbox.stop()


def test_forwards_and_keeps_the_client_connection_alive(upstream: Sandbox) -> None:
    with FaultProxy(upstream.url) as proxy, requests.Session() as session:
        direct = requests.get(f"{upstream.url}/Users", timeout=10).json()
        answers = [session.get(f"{proxy.url}/Users", timeout=10) for _ in range(5)]
        assert all(a.status_code == 200 and a.json() == direct for a in answers)
        assert answers[0].headers["Content-Type"] == "application/scim+json"
        assert proxy.connections == 1  # HTTP/1.1 keep-alive towards the client
        assert proxy.forwarded == proxy.requests == 5
        assert [s.method for s in proxy.seen] == ["GET"] * 5


def test_status_faults_carry_retry_after(upstream: Sandbox) -> None:
    with FaultProxy(upstream.url) as proxy:
        proxy.add(Rule("status", method="GET", path="/Users", status=429, retry_after="7", times=1))
        first = requests.get(f"{proxy.url}/Users", timeout=10)
        second = requests.get(f"{proxy.url}/Users", timeout=10)
        assert (first.status_code, first.headers["Retry-After"]) == (429, "7")
        assert first.json()["status"] == "429"
        assert second.status_code == 200
        assert proxy.forwarded == 1 and proxy.fault_counts() == {"status 429": 1}


def test_drop_before_never_reaches_the_server(upstream: Sandbox) -> None:
    with FaultProxy(upstream.url) as proxy:
        proxy.add(Rule("drop_before", method="POST"))
        before = upstream.request_count
        with pytest.raises(requests.ConnectionError):
            requests.post(f"{proxy.url}/Users", json=_user("never"), timeout=10)
        assert upstream.request_count == before
    assert _count(upstream, "never") == 0


def _count(sandbox: Sandbox, user_name: str) -> int:
    return int(requests.get(f"{sandbox.url}/Users", params={"filter": f'userName eq "{user_name}"'}, timeout=10).json()["totalResults"])


def _user(user_name: str) -> dict[str, object]:
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name}


def test_drop_after_applies_then_loses_the_answer(fresh_sandbox: Callable[..., Sandbox]) -> None:
    own = fresh_sandbox(users=0)  # this test writes: not on the module's shared upstream
    with FaultProxy(own.url) as proxy:
        proxy.add(Rule("drop_after", method="POST", path="/Users$"))
        with pytest.raises(requests.ConnectionError):
            requests.post(f"{proxy.url}/Users", json=_user("applied"), timeout=10)
        assert proxy.forwarded == 1 and proxy.fault_counts() == {"drop_after": 1}
    assert _count(own, "applied") == 1


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_cut_response_applies_then_breaks_the_answer_off(fresh_sandbox: Callable[..., Sandbox], method: str) -> None:
    """A POST's answer (201 with a body) loses half its body; a PATCH's (204, no body) half its status line."""
    own = fresh_sandbox(users=0)
    created = requests.post(f"{own.url}/Users", json=_user("cut.me"), timeout=10).json()
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "title", "value": "Cut"}]}
    with FaultProxy(own.url) as proxy:
        proxy.add(Rule("cut_response", method=method))
        with pytest.raises(requests.exceptions.RequestException) as raised:
            if method == "POST":
                requests.post(f"{proxy.url}/Users", json=_user("cut.answer"), timeout=10)
            else:
                requests.patch(f"{proxy.url}/Users/{created['id']}", json=patch, timeout=10)
        assert isinstance(raised.value, requests.exceptions.ChunkedEncodingError | requests.exceptions.ConnectionError)
        assert proxy.forwarded == 1 and proxy.fault_counts() == {"cut_response": 1}
    if method == "POST":
        assert _count(own, "cut.answer") == 1
    else:
        assert requests.get(f"{own.url}/Users/{created['id']}", timeout=10).json()["title"] == "Cut"


def test_status_after_applies_then_answers_a_gateway_error(fresh_sandbox: Callable[..., Sandbox]) -> None:
    own = fresh_sandbox(users=0)
    with FaultProxy(own.url) as proxy:
        proxy.add(Rule("status_after", method="POST", status=502))
        answer = requests.post(f"{proxy.url}/Users", json=_user("behind.the.gateway"), timeout=10)
        assert answer.status_code == 502 and answer.json()["status"] == "502"
        assert proxy.forwarded == 1 and proxy.fault_counts() == {"status_after 502": 1}
    assert _count(own, "behind.the.gateway") == 1


def test_rules_target_one_request_by_its_body_and_methods_by_pattern(upstream: Sandbox) -> None:
    with FaultProxy(upstream.url) as proxy, requests.Session() as session:
        # Refused before the server: the shared upstream stays as it is.
        proxy.add(Rule("status", method="POST|PATCH", body=r'"userName":\s*"target"', status=503, times=None, name="the target"))
        other = session.post(f"{proxy.url}/Users", json=_user("someone.else@x.example") | {"active": "not a boolean"}, timeout=10)
        hit = [session.post(f"{proxy.url}/Users", json=_user("target"), timeout=10).status_code for _ in range(2)]
        patched = session.patch(f"{proxy.url}/Users/none", json={"userName": "target"}, timeout=10)
        listed = session.get(f"{proxy.url}/Users", params={"filter": 'userName eq "target"'}, timeout=10)
    assert other.status_code == 400  # forwarded: the server refused the bad value itself
    assert hit == [503, 503] and patched.status_code == 503 and listed.status_code == 200
    assert [f.rule for f in proxy.faults] == ["the target"] * 3


def test_rules_skip_then_fire_a_bounded_number_of_times(upstream: Sandbox) -> None:
    with FaultProxy(upstream.url) as proxy, requests.Session() as session:
        proxy.add(Rule("status", path="/Groups", status=503, skip=1, times=2))
        codes = [session.get(f"{proxy.url}/Groups", timeout=10).status_code for _ in range(5)]
    assert codes == [200, 503, 503, 200, 200]


def test_random_faults_are_reproducible_with_a_seed(upstream: Sandbox) -> None:
    def run(seed: int) -> list[int]:
        with FaultProxy(upstream.url, seed=seed, random_rates={"status": 0.5}, random_status=502) as proxy, requests.Session() as session:
            return [session.get(f"{proxy.url}/ServiceProviderConfig", timeout=10).status_code for _ in range(20)]

    first, again = run(4), run(4)
    assert first == again
    assert set(first) == {200, 502}


def test_latency_and_delay_still_answer(upstream: Sandbox) -> None:
    with FaultProxy(upstream.url, latency=0.01) as proxy:
        proxy.add(Rule("delay", delay=0.02))
        assert requests.get(f"{proxy.url}/Schemas", timeout=10).status_code == 200
        assert proxy.fault_counts() == {"delay": 1}


def test_stop_is_idempotent_and_closes_the_port(upstream: Sandbox) -> None:
    proxy = FaultProxy(upstream.url).start()
    url = proxy.url
    assert requests.get(f"{url}/Schemas", timeout=10).status_code == 200
    proxy.stop()
    proxy.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/Schemas", timeout=2)


def test_refuses_a_non_http_upstream() -> None:
    with pytest.raises(ValueError, match="upstream must be http://host:port"):
        FaultProxy("https://example.com")
