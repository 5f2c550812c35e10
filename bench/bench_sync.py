"""Syncing 5,000 changed users over a 50 ms link: rosterbook's sync against one PATCH per user, same run.

Two identical sandboxes (same seed, same ids) each sit behind a loopback proxy that adds 50 ms
to every request (``bench/_link.py``). Every one of the 5,000 users gets a new job title and
department. Then:

1. the peer: a straightforward client on plain ``requests`` that PATCHes one user at a time
   (a keep-alive session, the same two attributes per user);
2. rosterbook: ``app.sync_workbook`` on a workbook exported from the other sandbox and edited
   with openpyxl as a user would, i.e. the whole command: read the workbook, check it, read the
   platform's current versions (conflicts), plan, send (Bulk), log every row, save.

Both end states are then read back and must be identical (every user, every group).
Target (issue 9, item 3): rosterbook at least 20x faster.
Run: ``.venv/bin/python bench/bench_sync.py [--users 5000]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _link import LATENCY, all_groups, all_users, far_sandbox, machine, session, use_token

from rosterbook import app
from sync_client.scim import ScimClient

TARGET = 20.0
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
DEPARTMENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"


def new_values(user_names: list[str]) -> dict[str, tuple[str, str]]:
    """The edit: userName -> (job title, department), different for every user."""
    return {name: (f"Benchmark title {i}", f"Department {i % 40}") for i, name in enumerate(sorted(user_names, key=str.casefold))}


def peer_sync(base_url: str, users: dict[str, dict[str, Any]], wanted: dict[str, tuple[str, str]]) -> int:
    """One PATCH per user, one after the other, as a script on plain requests would; returns the count."""
    s = session()
    sent = 0
    for rid, user in users.items():
        title, department = wanted[user["userName"]]
        body = {"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "title", "value": title},
            {"op": "replace", "path": DEPARTMENT, "value": department},
        ]}
        response = s.patch(f"{base_url}/Users/{rid}", json=body, timeout=60)
        if response.status_code not in (200, 204):
            raise SystemExit(f"peer: PATCH /Users/{rid} answered {response.status_code}: {response.text[:200]}")
        sent += 1
    s.close()
    return sent


def edit_workbook(book: Path, wanted: dict[str, tuple[str, str]]) -> int:
    """Type the new values into the exported workbook with openpyxl, as a user would; returns rows edited."""
    wb = openpyxl.load_workbook(book)
    ws = wb["Users"]
    cols = {str(c.value): c.column for c in ws[1] if c.value}
    edited = 0
    for row in range(2, ws.max_row + 1):
        name = ws.cell(row, cols["Username"]).value
        if name in wanted:
            title, department = wanted[str(name)]
            ws.cell(row, cols["Job title"]).value = title
            ws.cell(row, cols["Department"]).value = department
            edited += 1
    wb.save(book)
    return edited


@dataclass
class Timer:
    """Time spent in ScimClient.apply during the timed command, and how many calls."""

    seconds: float = 0.0
    calls: int = 0


@contextmanager
def timed_apply() -> Iterator[Timer]:
    """Add up the time rosterbook's sync spends in ScimClient.apply (sending), to tell it from the workbook's share."""
    timer = Timer()
    original = ScimClient.apply

    def apply(self: ScimClient, operations: Any, progress: Any = None) -> Any:
        start = time.perf_counter()
        try:
            return original(self, operations, progress)
        finally:
            timer.seconds += time.perf_counter() - start
            timer.calls += 1

    ScimClient.apply = apply  # type: ignore[method-assign]
    try:
        yield timer
    finally:
        ScimClient.apply = original  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    """Run both syncs and print one line per figure."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=5000)
    args = parser.parse_args(argv)
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with far_sandbox(folder / "peer.sqlite3", args.users) as peer_link, far_sandbox(folder / "rb.sqlite3", args.users) as rb_link:
            use_token(rb_link.far)
            print(f"two sandboxes of {args.users:,} users each (same seed), started in {max(peer_link.seconds, rb_link.seconds):.1f} s")
            before = all_users(peer_link.direct)
            if before != all_users(rb_link.direct):
                raise SystemExit("the two sandboxes do not start identical")
            wanted = new_values([u["userName"] for u in before.values()])

            # Not timed: the peer's input (ids and values) and rosterbook's (an exported, edited workbook).
            book = folder / "users.xlsx"
            app.export_workbook(book, platform=rb_link.far)
            edited = edit_workbook(book, wanted)
            if edited != args.users:
                raise SystemExit(f"edited {edited} rows, expected {args.users}")

            t = time.perf_counter()
            peer_sent = peer_sync(peer_link.far, before, wanted)
            t_peer = time.perf_counter() - t
            print(f"peer (plain requests, one PATCH per user)   {t_peer:8.1f} s  {peer_sent:,} PATCHes, {t_peer / peer_sent * 1000:.0f} ms per user")

            stages: dict[str, list[float]] = {}

            def progress(stage: str, done: int, total: int) -> None:
                now = time.perf_counter()
                stages.setdefault(stage, [now, now])[1] = now

            t = time.perf_counter()
            with timed_apply() as sending:
                result = app.sync_workbook(book, progress=progress)
            t_rb = time.perf_counter() - t
            if (result["sent"], result["confirmed"], result["failed"]) != (args.users, args.users, 0):
                raise SystemExit(f"rosterbook sync: sent {result['sent']}, confirmed {result['confirmed']}, failed {result['failed']}")
            ratio = t_peer / t_rb
            verdict = "ok" if ratio >= TARGET else "MISSED"
            print(f"rosterbook sync_workbook (whole command)    {t_rb:8.1f} s  {result['confirmed']:,} users confirmed   "
                  f"{ratio:.1f}x faster than the peer (target >= {TARGET:.0f}x: {verdict})")
            for stage, (first, last) in stages.items():
                print(f"  stage {stage!r}: {first - t:6.1f} s .. {last - t:6.1f} s after start")
            print(f"  sending (ScimClient.apply: {sending.calls} calls, Bulk requests and their answers) {sending.seconds:6.1f} s, "
                  f"{t_peer / sending.seconds:.0f}x the peer; the rest (workbook read, check, preview, log, saves) {t_rb - sending.seconds:.1f} s")

            peer_state, rb_state = all_users(peer_link.direct), all_users(rb_link.direct)
            same_users = peer_state == rb_state
            same_groups = all_groups(peer_link.direct) == all_groups(rb_link.direct)
            changed = sum(1 for rid, u in rb_state.items() if u != before.get(rid))
            print(f"end state: users identical {same_users}, groups identical {same_groups}, {changed:,} users changed on each")
            if not (same_users and same_groups):
                differ = [rid for rid in peer_state if peer_state[rid] != rb_state.get(rid)][:3]
                for rid in differ:
                    print(f"  differs {rid}: peer {peer_state[rid]} / rosterbook {rb_state.get(rid)}")
                return 2
    print(f"latency per request {LATENCY * 1000:.0f} ms; figure: {ratio:.1f}x")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
