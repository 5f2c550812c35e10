"""The loopback fault proxy itself: forwards faithfully, keeps connections alive, injects each fault."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from support.faultproxy import FaultProxy, Rule

from rosterbook.sandbox import Sandbox, start_sandbox


@pytest.fixture(scope="module")
def upstream() -> Iterator[Sandbox]:
    sandbox = start_sandbox(users=5, seed=2)
    try:
        yield sandbox
    finally:
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
            requests.post(f"{proxy.url}/Users", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "never"}, timeout=10)
        assert upstream.request_count == before
    assert requests.get(f"{upstream.url}/Users", params={"filter": 'userName eq "never"'}, timeout=10).json()["totalResults"] == 0


def test_drop_after_applies_then_loses_the_answer(upstream: Sandbox) -> None:
    with FaultProxy(upstream.url) as proxy:
        proxy.add(Rule("drop_after", method="POST", path="/Users$"))
        with pytest.raises(requests.ConnectionError):
            requests.post(f"{proxy.url}/Users", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "applied"}, timeout=10)
        assert proxy.forwarded == 1 and proxy.fault_counts() == {"drop_after": 1}
    assert requests.get(f"{upstream.url}/Users", params={"filter": 'userName eq "applied"'}, timeout=10).json()["totalResults"] == 1


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
