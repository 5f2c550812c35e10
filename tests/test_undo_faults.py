"""Undo through the fault-injection proxy: a sync of creates, updates, archives, renames and membership changes is undone
through a loopback proxy that drops connections before and after the server applied a request, stalls, and answers
502/503/429 at chosen cut points. Undo is run again until nothing is left: the platform then holds, resource by resource,
what it held before the sync (created users archived), nobody was created or archived twice, and every Sync log line of
each undo run is true against the server's raw state at the end of that run. Kept small (a few hundred requests): the 2,000-change sync test covers the engine at scale.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.books import HR, edit, log_entries, platform_state, sheet_rows
from support.faultproxy import FaultProxy, Rule
from support.syncaudit import UNKNOWN_OUTCOME, duplicates, raw_users

from rosterbook import app
from rosterbook import workbook as wbk
from rosterbook.errors import RosterbookError
from rosterbook.fastread import FastBook
from rosterbook.sandbox import Sandbox
from rosterbook.undo import undo_sync

USERS = 150
UPDATES, CREATES, ARCHIVES, RENAMES, MEMBERSHIPS = 40, 15, 10, 8, 8
BATCH = 15
MAX_RUNS = 8
Users = dict[str, dict[str, Any]]
Groups = dict[str, dict[str, Any]]


def _cut_points() -> list[Rule]:
    bulk, patch, listing = r"/Bulk$", r"/(Users|Groups)/[0-9a-f]+$", r"/Users\?(?!filter)"
    return [
        Rule("drop_after", "POST", bulk, skip=0), Rule("drop_before", "POST", bulk, skip=1), Rule("status", "POST", bulk, status=502, skip=2),
        Rule("status", "POST", bulk, status=503, retry_after="1", skip=3), Rule("status", "POST", bulk, status=429, retry_after="1", skip=4),
        Rule("delay", "POST", bulk, delay=0.5, skip=5),
        Rule("drop_after", "PATCH", patch, skip=2), Rule("drop_before", "PATCH", patch, skip=6), Rule("status", "PATCH", patch, status=502, skip=10),
        Rule("drop_after", "PATCH", patch, skip=14),
        # Refused longer than the client retries, and an error it does not retry: those rows fail, the next run puts them back.
        Rule("status", "PATCH", patch, status=503, retry_after="0", skip=4, times=6), Rule("status", "PATCH", patch, status=500, skip=12),
        Rule("drop_before", "GET", listing, skip=0), Rule("status", "GET", listing, status=502, skip=1),
    ]


def _edits(book: Path, rng: random.Random) -> list[str]:
    rows = sheet_rows(book)
    active = sorted(n for n, r in rows.items() if r["Status"] == "Active")
    picked = rng.sample(active, UPDATES + ARCHIVES + RENAMES + MEMBERSHIPS)
    updated, archived = picked[:UPDATES], picked[UPDATES : UPDATES + ARCHIVES]
    renamed, grouped = picked[UPDATES + ARCHIVES : UPDATES + ARCHIVES + RENAMES], picked[UPDATES + ARCHIVES + RENAMES :]
    cells = {(n, "Job title"): f"Fault title {i}" for i, n in enumerate(updated)}
    cells.update({(n, "Status"): "Archived" for n in archived})
    cells.update({(n, "Username"): f"fault.renamed.{i}@lumen.example" for i, n in enumerate(renamed)})
    cells.update({(n, "Groups"): "New Starters" for n in grouped})
    new = [{"Username": f"fault.new.{i:02d}@lumen.example", "First name": "Fault", "Last name": f"New {i}", "Email": f"fault.new.{i:02d}@lumen.example",
            "Status": "Active", "Groups": "Mentors"} for i in range(CREATES)]
    edit(book, cells, new_rows=new)
    return [r["Username"] for r in new]


def _audit(sandbox: Sandbox, lines: list[dict[str, Any]], users_before: Users, groups_before: Groups) -> int:
    """Each Sync log line of one undo run against the server's raw state right after it: ``ok`` means the user (and its
    group memberships) is as before the sync (a created user: archived, in no group); ``failed`` or ``partial`` means it
    is not, unless the message says the platform's answer was lost."""
    users, groups = platform_state(sandbox.url)
    before = {i: {g["displayName"] for g in groups_before.values() if i in g["members"]} for i in users_before}
    for line in lines:
        user_id = str(line["Platform id"])
        member_of = {g["displayName"] for g in groups.values() if user_id in g["members"]}
        if user_id in users_before:
            as_before = users[user_id] == users_before[user_id] and member_of == before[user_id]
        else:
            as_before = users[user_id][HR]["accountStatus"] == "Archived" and users[user_id]["active"] is False and not member_of
        if line["Outcome"] == "ok":
            assert as_before, line
        else:
            assert line["Outcome"] in ("failed", "partial") and (not as_before or UNKNOWN_OUTCOME.search(str(line["Message"]))), line
    return len(lines)


@pytest.mark.parametrize("updates_sheet", [False, True], ids=["snapshot-written-whole", "snapshot-updates-sheet"])
def test_an_undo_survives_the_fault_proxy_and_a_rerun(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path,
                                                      record_property: Callable[[str, object], None], monkeypatch: pytest.MonkeyPatch,
                                                      updates_sheet: bool) -> None:
    if updates_sheet:  # thresholds at 1: the sync and every undo run write their entries to ``_snapshot_updates``
        monkeypatch.setattr(wbk, "UPDATES_FROM", 1)
        monkeypatch.setattr(wbk, "UPDATES_SHARE", 1)
    sandbox = fresh_sandbox(users=USERS, seed=9)
    book = tmp_path / "faults.xlsx"
    stopped: list[str] = []
    failed: list[int] = []
    runs = audited = 0
    with FaultProxy(sandbox.url, seed=5) as proxy:
        # The workbook talks to the platform through the proxy all along (an undo goes to the platform its sync went to).
        app.export_workbook(book, platform=proxy.url)
        users_before, groups_before = platform_state(sandbox.url)
        created = _edits(book, random.Random(3))
        synced = app.sync_workbook(book, confirm_deletions=True)
        assert synced.ok and synced.confirmed == UPDATES + CREATES + ARCHIVES + RENAMES + MEMBERSHIPS
        assert len(wbk.read_snapshot_sheet(FastBook(book)).updates) == (synced.confirmed if updates_sheet else 0)
        for rule in _cut_points():
            proxy.add(rule)
        for runs in range(1, MAX_RUNS + 1):  # noqa: B007 - the count is reported
            logged = len(log_entries(book))
            try:
                result = undo_sync(book, confirm_deletions=True, batch=BATCH)
            except RosterbookError as exc:
                stopped.append(str(exc))  # the platform unreachable for a whole run: nothing is lost, run again
                continue
            finally:
                audited += _audit(sandbox, log_entries(book)[logged:], users_before, groups_before)
            assert result.undo_of == synced.sync_id
            failed.append(result.failed)
            if result.sent == 0:
                break
        else:
            raise AssertionError(f"undo still had work after {MAX_RUNS} runs; early stops: {stopped}")
        faults = list(proxy.faults)
        proxy.clear()
        assert app.preview_workbook(book).sendable() == []  # the workbook agrees with the platform
    assert len(faults) >= 12, [(f.kind, f.method, f.target) for f in faults]
    assert failed[0] > 0 and failed[-1] == 0 and runs >= 2  # the first run left rows failed; a rerun put them back

    users_after, groups_after = platform_state(sandbox.url)
    new_ids = {i for i in users_after if i not in users_before}
    assert sorted(users_after[i]["userName"] for i in new_ids) == created  # nobody created twice, nobody deleted
    assert all(users_after[i][HR]["accountStatus"] == "Archived" and users_after[i]["active"] is False for i in new_ids)
    wrong = [b["userName"] for i, b in users_before.items() if users_after[i] != b]
    assert wrong == []
    assert groups_after == groups_before

    assert not any(n > 1 for n in duplicates(raw_users(sandbox)).values())  # on the stored documents themselves
    # Every row of the sync was put back by exactly one 'ok' line (each line audited at its run's end, above).
    undo_lines = [e for e in log_entries(book) if e["Sync id"] != synced.sync_id]
    synced_ids = {str(e["Platform id"]) for e in log_entries(book) if e["Sync id"] == synced.sync_id}
    assert sorted(str(e["Platform id"]) for e in undo_lines if e["Outcome"] == "ok") == sorted(synced_ids)
    assert audited == len(undo_lines)
    if updates_sheet:
        assert wbk.read_snapshot_sheet(FastBook(book)).updates  # the undo runs' entries went there too
    record_property("rosterbook_summary", f"fault-injection undo{' (snapshot updates sheet)' if updates_sheet else ''}: {len(synced_ids)} rows put back through {len(faults)} cut points "
                                      f"({', '.join(sorted({f.kind if f.kind != 'status' else f'status {f.status}' for f in faults}))}), "
                                      f"{runs} runs ({failed[0]} rows failed in the first), {len(stopped)} stopped early, duplicates 0, users not as before 0, {audited} log lines audited")
