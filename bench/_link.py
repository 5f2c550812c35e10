"""Shared by the sync, export and round-trip benchmarks: a sandbox behind a 50 ms link, in its own process.

The sandbox (``rosterbook.sandbox.start_sandbox`` over SQLite) and the loopback proxy that adds
latency to every request (``tests/support/faultproxy.py``) run in a child process, so the
server's CPU and memory are not charged to the client being measured, and both the peer and
rosterbook reach the same kind of platform. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token-not-a-secret"
"""The sandboxes' bearer token (exported as ROSTERBOOK_TOKEN for rosterbook's own client)."""
LATENCY = 0.050
"""Seconds the proxy adds to every request: a platform far away."""

_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from rosterbook.sandbox import start_sandbox
from tests.support.faultproxy import FaultProxy
db, users, seed, token, latency = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], float(sys.argv[6])
sandbox = start_sandbox(db, users=users, seed=seed, token=token)
proxy = FaultProxy(sandbox.url, latency=latency, max_connections=128, idle_timeout=600.0, lifetime=7200.0).start()
print(json.dumps({"direct": sandbox.url, "far": proxy.url, "seeded": sandbox.seeded}), flush=True)
sys.stdin.read()  # until the parent closes stdin (or dies)
proxy.stop()
sandbox.stop()
"""


@dataclass(frozen=True)
class Link:
    """A running sandbox: ``direct`` is its own URL, ``far`` the same platform behind the latency proxy."""

    direct: str
    far: str
    seeded: int
    seconds: float
    """How long the child took to seed and start."""


@contextmanager
def far_sandbox(db_path: Path, users: int, *, seed: int = 1, latency: float = LATENCY) -> Iterator[Link]:
    """Start a seeded sandbox and its latency proxy in a child process; stop both on exit."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(ROOT), str(db_path), str(users), str(seed), TOKEN, str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line:
            raise SystemExit("the sandbox process did not start (see its error above)")
        info = json.loads(line)
        yield Link(info["direct"], info["far"], int(info["seeded"]), time.perf_counter() - started)
    finally:
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def use_token(platform: str) -> None:
    """Let rosterbook's client find the sandboxes' token the way a user would set it (never the keyring), bound to ``platform``."""
    os.environ["ROSTERBOOK_TOKEN"] = TOKEN
    os.environ["ROSTERBOOK_PLATFORM"] = platform


def session() -> requests.Session:
    """A plain requests session with the token, as a peer script would open it."""
    s = requests.Session()
    s.headers.update({"Authorization": f"Bearer {TOKEN}", "Accept": "application/scim+json", "Content-Type": "application/scim+json"})
    return s


def all_users(base_url: str) -> dict[str, dict[str, Any]]:
    """Every user on a platform by id, without ``meta`` (versions and timestamps differ run to run)."""
    s = session()
    out: dict[str, dict[str, Any]] = {}
    start = 1
    while True:
        page = s.get(f"{base_url}/Users", params={"startIndex": start, "count": 1000}, timeout=120).json()
        resources = page.get("Resources") or []
        for user in resources:
            out[str(user["id"])] = {k: v for k, v in user.items() if k != "meta"}
        start += len(resources)
        if not resources or start > int(page.get("totalResults") or 0):
            break
    s.close()
    return out


def all_groups(base_url: str) -> dict[str, dict[str, Any]]:
    """Every group on a platform by id, without ``meta``."""
    s = session()
    page = s.get(f"{base_url}/Groups", params={"count": 1000}, timeout=120).json()
    s.close()
    return {str(g["id"]): {k: v for k, v in g.items() if k != "meta"} for g in page.get("Resources") or []}


def machine() -> str:
    """The line every benchmark starts with: cores and Python."""
    return f"machine: {os.cpu_count()} cores (nproc), python {sys.version.split()[0]}, link latency {LATENCY * 1000:.0f} ms per request"
