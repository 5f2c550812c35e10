"""How fast is the sandbox at 50,000 users? Seeding, a full paginated listing over HTTP, against scim2-server's memory storage.

What ``rosterbook sandbox --users 50000`` does, timed:

1. seeding: generating the demo organisation and writing it to a new SQLite file (one transaction),
   then starting the server; and restarting over the now-full file;
2. a full listing over HTTP with requests (``GET /Users?startIndex=..&count=1000``, 50 pages),
   checking every user comes back exactly once;
3. single look-ups: ``userName eq`` and ``emails.value eq`` (indexed);
4. the peer, in the same run: scim2-server's own ``InMemoryStorage`` holding the same users, served
   by scim2-server's own WSGI application on the same kind of threaded server, listed the same way.
   ``--slow-path`` also lists the sandbox with its fast listing path turned off (scim2-server's
   response path over the SQLite storage).

Prints seconds and the listing ratio (peer / sandbox: how many times faster the sandbox lists).
Run: ``.venv/bin/python bench/bench_sandbox.py [--users 50000] [--no-peer] [--slow-path]``.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import requests
from scim2_models import Resource
from scim2_server.memory import InMemoryStorage
from scim2_server.testserver.application import BearerTokenApplication
from scim2_server.testserver.cli import ThreadingWSGIServer

from rosterbook.sandbox import build_provider, demo_organisation, start_sandbox

PAGE = 1000


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _list_all(url: str) -> tuple[float, list[str]]:
    """Seconds to read every user page by page, and their ids."""
    session = requests.Session()
    ids: list[str] = []
    started = time.perf_counter()
    total = None
    while total is None or len(ids) < total:
        page = session.get(f"{url}/Users", params={"startIndex": len(ids) + 1, "count": PAGE}, timeout=600).json()
        total = page["totalResults"]
        if not page["Resources"]:
            break
        ids.extend(user["id"] for user in page["Resources"])
    return time.perf_counter() - started, ids


def _timed(label: str, action: Any) -> Any:
    gc.collect()
    started = time.perf_counter()
    result = action()
    print(f"  {label:<46} {time.perf_counter() - started:8.2f} s", flush=True)
    return result


def _memory_peer(users: int) -> tuple[str, Any]:
    """scim2-server's InMemoryStorage holding the same organisation, served by its own application."""
    provider = build_provider()
    user_docs, group_docs = demo_organisation(users, seed=1)
    now = "2025-06-30T00:00:00Z"
    resources: list[Resource[Any]] = []
    for kind, docs in (("User", user_docs), ("Group", group_docs)):
        model: Any = provider.model_for(kind)
        for number, doc in enumerate(docs, start=len(resources) + 1):
            meta = {"resourceType": kind, "created": now, "lastModified": now, "version": f'W/"{number}"'}
            resources.append(model.model_validate({**doc, "meta": meta}))
    storage = InMemoryStorage()
    storage.resources = resources
    server = make_server("127.0.0.1", 0, BearerTokenApplication(storage, provider), server_class=ThreadingWSGIServer, handler_class=_Quiet)
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/v2", server


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--no-peer", action="store_true", help="Skip scim2-server's memory storage.")
    parser.add_argument("--slow-path", action="store_true", help="Also list with the sandbox's fast listing off.")
    args = parser.parse_args()
    users = args.users
    print(f"sandbox benchmark: {users:,} users, pages of {PAGE}")

    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "sandbox.sqlite3"
        _timed("demo organisation generated (no writes)", lambda: demo_organisation(users, seed=1))
        sandbox = _timed("seed into a new SQLite file + start", lambda: start_sandbox(db, users=users))
        sandbox.stop()
        sandbox = _timed("restart over the full file", lambda: start_sandbox(db))
        print(f"  database size: {db.stat().st_size / 1e6:.1f} MB")
        try:
            ours, ids = _list_all(sandbox.url)
            assert len(ids) == len(set(ids)) == users, (len(ids), len(set(ids)))
            print(f"  {'full listing over HTTP (sandbox)':<46} {ours:8.2f} s  ({users / ours:,.0f} users/s)")
            session = requests.Session()
            last = session.get(f"{sandbox.url}/Users", params={"startIndex": users, "count": 1}, timeout=60).json()["Resources"][0]
            for label, scim_filter in (("userName eq", f'userName eq "{last["userName"]}"'), ("emails.value eq", f'emails.value eq "{last["emails"][0]["value"]}"')):
                started = time.perf_counter()
                found = session.get(f"{sandbox.url}/Users", params={"filter": scim_filter}, timeout=600).json()
                assert found["totalResults"] == 1
                print(f"  {'look-up ' + label:<46} {time.perf_counter() - started:8.3f} s")
            if args.slow_path:
                sandbox._application.handler.fast_listing = False
                slow, slow_ids = _list_all(sandbox.url)
                assert sorted(slow_ids) == sorted(ids)
                sandbox._application.handler.fast_listing = True
                print(f"  {'full listing, fast path off (SQLite storage)':<46} {slow:8.2f} s")
        finally:
            sandbox.stop()

    if args.no_peer:
        return
    url, server = _timed("peer: scim2-server memory storage filled", lambda: _memory_peer(users))
    try:
        peer, peer_ids = _list_all(url)
        assert len(peer_ids) == len(set(peer_ids)) == users
        print(f"  {'full listing over HTTP (peer: memory storage)':<46} {peer:8.2f} s  ({users / peer:,.0f} users/s)")
    finally:
        server.shutdown()
        server.server_close()
    print(f"listing ratio: the sandbox lists {peer / ours:.1f}x as fast as scim2-server's memory storage (peer/sandbox time)")


if __name__ == "__main__":
    main()
