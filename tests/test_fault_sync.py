"""Syncs cut at every stage by a loopback fault proxy, run again until nothing is left, audited against
the platform's raw state (the sandbox's stored JSON, never rosterbook's own export or mapping).

Cut points are placed on requests by their body (the Bulk request holding a given create, the second
single POST of a given user...), so each one lands where it is meant to whatever the interleaving:
creates and updates, inside Bulk requests and single ones, before the server saw them, after it
applied them (answer dropped, or a gateway's 502), and in the middle of the answer; on the first
attempt and on the replays; plus random faults on every method, POST included. A 401 stops one run.

After every run the raw state is read and every Sync log entry of that run, ok and failed, is
checked against it (tests/support/syncaudit.py); at the end the platform holds exactly the intended
users (every attribute), nobody twice (userName, emails, externalId), and every edit is still in the
workbook. Two self-tests run the audit on a client with a known bug injected and see it fail.

The summary line is printed in pytest's terminal summary (``pytest_terminal_summary`` in conftest.py).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import requests
from openpyxl import load_workbook
from support.faultproxy import FaultKind, FaultProxy, Rule
from support.scimproxies import VersionlessProxy
from support.syncaudit import (
    Audit,
    Intent,
    RunRecord,
    StateChecker,
    archive_intent,
    audit,
    create_intent,
    duplicates,
    raw_users,
    rename_intent,
    update_intent,
)

from rosterbook import app
from rosterbook import workbook as wbk
from rosterbook.errors import RosterbookError
from rosterbook.sandbox import Sandbox
from sync_client import scim

Rows = dict[str, dict[str, Any]]
BULK, USERS_POST, USER_PATH, LOOKUP, LISTING = r"/Bulk$", r"/Users$", r"/Users/[0-9a-f]+$", r"filter=userName", r"/Users\?(?!filter)"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
STOPS = ("(401) on ", "did not answer usefully", "cannot be reached")
"""What may stop a run early (the 401 this test injects; the platform unreachable for a whole run)."""


@dataclass(frozen=True)
class Scenario:
    users: int
    seed: int
    creates: int
    updates: int
    archives: int
    renames: int
    batch: int
    max_runs: int
    max_stopped: int

    @property
    def changes(self) -> int:
        return self.creates + self.updates + self.archives + self.renames


BIG = Scenario(users=1_500, seed=5, creates=550, updates=1_050, archives=250, renames=150, batch=100, max_runs=6, max_stopped=2)
SMALL = Scenario(users=120, seed=6, creates=30, updates=40, archives=10, renames=10, batch=30, max_runs=6, max_stopped=2)


@dataclass
class Edits:
    """The edits made to the workbook: intents for the audit, rows for the sheet check, and who is in which batch."""

    intents: list[Intent]
    intended: Rows
    renames: dict[str, str]
    order: list[tuple[str, str]]
    """(kind, text unique to its request body) in the order sync sends the changes: creates, updates, archives, renames."""

    def batch(self, number: int, size: int) -> list[tuple[str, str]]:
        return self.order[number * size : (number + 1) * size]


# --- the workbook ----------------------------------------------------------------------------------


def _users(path: Path) -> tuple[list[str], Rows]:
    """The Users sheet's data headers and rows by Username, as cell texts."""
    wb = load_workbook(path, read_only=True)
    grid = [list(r) for r in wb[wbk.USERS].iter_rows(values_only=True)]
    wb.close()
    headers = [str(h) for h in grid[0]]
    width = headers.index(wbk.PROBLEMS)
    rows: Rows = {}
    for cells in grid[1:]:
        values = {h: (None if c is None or c == "" else str(c)) for h, c in zip(headers[:width], cells[:width], strict=False)}
        if values.get("Username") is not None:
            rows[str(values["Username"])] = values
    return headers[:width], rows


def _log(path: Path) -> list[dict[str, Any]]:
    wb = load_workbook(path, read_only=True)
    grid = [list(r) for r in wb[wbk.SYNC_LOG].iter_rows(values_only=True)] if wbk.SYNC_LOG in wb.sheetnames else []
    wb.close()
    if not grid:
        return []
    headers = [str(h) for h in grid[0]]
    return [dict(zip(headers, r, strict=False)) for r in grid[1:] if any(c is not None for c in r)]


def _edit(path: Path, scenario: Scenario, original: dict[str, dict[str, Any]], platform_url: str) -> Edits:
    """Make the edits a user would, point the workbook at ``platform_url``, and say what the platform must end up holding."""
    rng = random.Random(scenario.seed)
    by_name = {str(doc["userName"]): doc for doc in original.values()}
    wb = load_workbook(path)
    for setting in wb[wbk.SETTINGS].iter_rows(min_row=2):
        if setting[0].value == "platform_url":
            setting[1].value = platform_url
    ws = wb[wbk.USERS]
    col = {str(c.value): c.column for c in ws[1] if c.value is not None}
    rows = list(range(2, ws.max_row + 1))
    active = [r for r in rows if ws.cell(r, col["Status"]).value == "Active"]
    archived = set(rng.sample(active, scenario.archives))
    rest = [r for r in rows if r not in archived]
    renamed = set(rng.sample(rest, scenario.renames))
    updated = set(rng.sample([r for r in rest if r not in renamed], scenario.updates))
    intents: list[Intent] = []
    renames: dict[str, str] = {}
    order: dict[str, list[tuple[str, str]]] = {"create": [], "update": [], "archive": [], "rename": []}
    for r in sorted(updated):
        title = f"Fault-tolerant role {r}"
        ws.cell(r, col["Job title"]).value = title
        intents.append(update_intent(by_name[str(ws.cell(r, col["Username"]).value)], title))
        order["update"].append(("update", f'"{title}"'))
    for r in sorted(archived):
        ws.cell(r, col["Status"]).value = "Archived"
        doc = by_name[str(ws.cell(r, col["Username"]).value)]
        intents.append(archive_intent(doc))
        order["archive"].append(("archive", f"/Users/{doc['id']}\""))
    for r in sorted(renamed):
        old = str(ws.cell(r, col["Username"]).value)
        new = f"renamed.{r}@lumen.example"
        ws.cell(r, col["Username"]).value = new
        renames[old] = new
        intents.append(rename_intent(by_name[old], new))
        order["rename"].append(("rename", f'"{new}"'))
    last = ws.max_row
    for i in range(scenario.creates):
        name = f"new.person{i:04d}@lumen.example"
        for header, value in (("Username", name), ("First name", "New"), ("Last name", f"Person {i:04d}"), ("Email", name),
                              ("Status", "Pending"), ("Job title", "Joiner")):
            ws.cell(last + 1 + i, col[header]).value = value
        intents.append(create_intent(name, "New", f"Person {i:04d}", "Pending", "Joiner"))
        order["create"].append(("create", f'"{name}"'))
    wb.save(path)
    _, intended = _users(path)
    # The platform keeps managers by id: a renamed manager shows under the new name for their reports.
    for values in intended.values():
        if values.get("Manager") in renames:
            values["Manager"] = renames[values["Manager"]]
    return Edits(intents, intended, renames, [*order["create"], *order["update"], *order["archive"], *order["rename"]])


# --- cut points ----------------------------------------------------------------------------------------


def _attempts(name: str, method: str, path: str, body: str, *cuts: str) -> list[Rule]:
    """Consecutive attempts at one request (the one whose body holds ``body``), each cut its own way: "drop_before", "status 502"..."""
    rules = []
    for n, cut in enumerate(cuts, 1):
        kind, _, status = cut.partition(" ")
        assert kind in ("drop_before", "drop_after", "cut_response", "status", "status_after", "delay"), kind
        rules.append(Rule(kind, method, path, body=re.escape(body), status=int(status or 503), retry_after="0",  # type: ignore[arg-type]
                          delay=0.5, name=f"{name} (attempt {n}: {cut})"))
    return rules


def _lookup(name: str, user: str, *cuts: str) -> list[Rule]:
    """Cuts on the look-ups of ``user`` by userName (what the client does after a create's answer was lost)."""
    encoded = user.replace("@", "%40").strip('"')
    return [replace(rule, body=None, path=rf"filter=userName.*{re.escape(encoded)}") for rule in _attempts(name, "GET", LOOKUP, "", *cuts)]


def _big_cut_points(edits: Edits) -> list[Rule]:
    """Where the 2,000-change sync is cut. Batches of 100: 0-4 creates, 5 creates + updates, 6-15 updates, then archives, renames."""
    b = [edits.batch(n, BIG.batch) for n in range(20)]
    first = [batch[0][1] for batch in b]
    assert [k for k, _ in b[1]] == ["create"] * 100 and {k for k, _ in b[5]} == {"create", "update"} and [k for k, _ in b[6]] == ["update"] * 100
    # Batch 5 is lost before the server saw it: its creates and updates are replayed as single requests
    # that reach the server for the first time, and are cut there, in one wave (their retry waits overlap).
    c2 = [text for kind, text in b[5] if kind == "create"]
    u2 = [text for kind, text in b[5] if kind == "update"]
    return [
        # Bulk requests (each change's first attempt).
        *_attempts("Bulk of creates, applied, answer cut in the middle", "POST", BULK, first[0], "cut_response"),
        *_attempts("Bulk of creates, applied, answer lost", "POST", BULK, first[1], "drop_after"),
        *_attempts("Bulk of creates and updates, lost before the server saw it", "POST", BULK, first[5], "drop_before"),
        *_attempts("Bulk of updates, applied, then a gateway's 502", "POST", BULK, first[6], "status_after 502"),
        *_attempts("Bulk of updates, applied, answer cut in the middle", "POST", BULK, first[7], "cut_response"),
        *_attempts("Bulk of updates, 503, then 429, then stalled", "POST", BULK, first[8], "status 503", "status 429", "delay"),
        *_attempts("Bulk of updates, a gateway's 502 before the server", "POST", BULK, first[9], "status 502"),
        *_attempts("Bulk of updates, the token refused (the run stops)", "POST", BULK, first[10], "status 401"),
        # Single creates replaying batch 5: their first attempt at the server.
        *_attempts("single create, lost before, then applied and lost", "POST", USERS_POST, c2[0], "drop_before", "drop_after"),
        *_attempts("single create, a gateway's 502 before, then applied and cut", "POST", USERS_POST, c2[1], "status 502", "cut_response"),
        *_attempts("single create, applied, then a gateway's 502", "POST", USERS_POST, c2[2], "status_after 502"),
        *_lookup("its look-up, 503 then dropped", c2[2], "status 503", "drop_after"),
        *_attempts("single create, applied, answer cut", "POST", USERS_POST, c2[3], "cut_response"),
        *_attempts("single create, 503 then lost before", "POST", USERS_POST, c2[4], "status 503", "drop_before"),
        *_attempts("single create lost before the server five times (fails this run)", "POST", USERS_POST, c2[5], *["drop_before"] * 5),
        *_attempts("the same create in the next run's Bulk, lost before the server again", "POST", BULK, c2[5], "drop_before"),
        *_attempts("single create, applied, answer lost", "POST", USERS_POST, c2[6], "drop_after"),
        *_lookup("its look-ups all refused (outcome unknown this run)", c2[6], *["status 503"] * 5),
        # Single updates replaying batch 5: their first attempt at the server.
        *_attempts("single update lost before the server five times (fails this run)", "PATCH", USER_PATH, u2[0], *["drop_before"] * 5),
        *_attempts("single update applied, every answer lost (outcome unknown this run)", "PATCH", USER_PATH, u2[1], *["drop_after"] * 5),
        *_attempts("single update, lost before, then applied and lost", "PATCH", USER_PATH, u2[2], "drop_before", "drop_after"),
        *_attempts("single update, applied, answer cut", "PATCH", USER_PATH, u2[3], "cut_response"),
        *_attempts("single update, applied, then a gateway's 502", "PATCH", USER_PATH, u2[4], "status_after 502"),
        *_attempts("single update, a gateway's 502 before the server, then 429", "PATCH", USER_PATH, u2[5], "status 502", "status 429"),
        # Replays of Bulk requests the server had applied: a create gets 409 and a look-up, an update 412 and a read.
        *_attempts("replayed create of an applied Bulk, lost before", "POST", USERS_POST, b[1][5][1], "drop_before"),
        *_attempts("replayed create of an applied Bulk, answer cut", "POST", USERS_POST, b[1][6][1], "cut_response"),
        *_attempts("replayed update of an applied Bulk, lost before, then its 412 cut", "PATCH", USER_PATH, b[6][5][1], "drop_before", "cut_response"),
        # The listing of current versions before the plan, and discovery.
        Rule("drop_before", "GET", LISTING, name="listing, lost before"), Rule("status", "GET", LISTING, status=502, name="listing, 502"),
        Rule("status", "GET", r"/ServiceProviderConfig", status=503, retry_after="0", skip=1, name="discovery, 503"),
        Rule("drop_before", "GET", r"/Schemas", skip=1, name="discovery, lost"),
    ]


def _small_cut_points(edits: Edits) -> list[Rule]:
    """Where the single-request sync is cut (a platform without Bulk): every change's first attempt is a single request."""
    creates = [text for kind, text in edits.order if kind == "create"]
    updates = [text for kind, text in edits.order if kind == "update"]
    return [
        *_attempts("create lost before the server, its replay applied and lost", "POST", USERS_POST, creates[1], "drop_before", "drop_after"),
        *_attempts("create applied, answer lost", "POST", USERS_POST, creates[2], "drop_after"),
        *_attempts("create applied, answer cut", "POST", USERS_POST, creates[3], "cut_response"),
        *_attempts("create, a gateway's 502 before the server, its replay applied and cut", "POST", USERS_POST, creates[4], "status 502", "cut_response"),
        *_attempts("create applied, then a gateway's 502", "POST", USERS_POST, creates[5], "status_after 502"),
        *_attempts("create lost before five times (fails this run)", "POST", USERS_POST, creates[6], *["drop_before"] * 5),
        *_attempts("update lost before the server", "PATCH", USER_PATH, updates[1], "drop_before"),
        *_attempts("update applied, answer lost", "PATCH", USER_PATH, updates[2], "drop_after"),
        *_attempts("update applied, answer cut", "PATCH", USER_PATH, updates[3], "cut_response", "drop_before"),
        *_attempts("update applied, then a gateway's 502", "PATCH", USER_PATH, updates[4], "status_after 502"),
        *_attempts("update, the token refused (the run stops)", "PATCH", USER_PATH, updates[35], "status 401"),
    ]


# --- running ----------------------------------------------------------------------------------------


def _sync_until_done(book: Path, scenario: Scenario, sandbox: Sandbox, proxy: FaultProxy, skip: list[int]) -> list[RunRecord]:
    """Run sync until a run ends with every row confirmed, recording each run's end, raw state and new log entries."""
    records: list[RunRecord] = []
    logged = 0
    for run in range(1, scenario.max_runs + 1):
        stopped: str | None = None
        sent: int | None = None
        failed: int | None = None
        try:
            result = app.sync_workbook(book, confirm_deletions=True, batch=scenario.batch, skip_rows=skip)
            sent, failed = int(result["sent"]), int(result["failed"])
        except RosterbookError as exc:
            stopped = str(exc)
            assert any(s in stopped for s in STOPS), f"run {run} stopped for an unexpected reason: {stopped}"
        log = _log(book)
        records.append(RunRecord(run, stopped, sent, raw_users(sandbox), log[logged:]))
        logged = len(log)
        if failed == 0:
            return records
    raise AssertionError(f"sync still had work after {scenario.max_runs} runs: {[(r.stopped, r.sent) for r in records]}")


@dataclass
class Outcome:
    runs: list[RunRecord]
    audit: Audit
    rules: list[Rule]
    faults: Counter[str]
    random: Counter[str]
    """Random faults by method."""
    duplicates: int
    lost: int
    platform_edits: int = 0


def _no_bulk(sandbox: Sandbox) -> None:
    """Make the sandbox announce no Bulk support (a real platform may not have it): its server hook answers discovery."""
    config = requests.get(f"{sandbox.url}/ServiceProviderConfig", timeout=10).json()
    config["bulk"] = {"supported": False, "maxOperations": 0, "maxPayloadSize": 0}
    sandbox.faults.add(200, body=config, method="GET", path="/ServiceProviderConfig", times=1_000_000)


def run_scenario(scenario: Scenario, sandbox: Sandbox, folder: Path, cut_points: Callable[[Edits], list[Rule]],
                 random_rates: dict[FaultKind, float], *, bulk: bool = True, versionless: bool = False, platform_edits: int = 0) -> Outcome:
    """Export, edit, sync through the fault proxy until done; audit every run; check the end state and the workbook.

    ``versionless``: a second real proxy between the fault proxy and the sandbox makes it a platform without versions
    (no ``meta.version``, no ETag, ``etag.supported=false``): conflicts and replays are decided by values.
    ``platform_edits``: that many users the sheet updates are changed by another admin after the export: they are
    conflicts, skipped, and must keep the other admin's value.
    """
    book = folder / "faults.xlsx"
    with ExitStack() as stack:
        platform = stack.enter_context(VersionlessProxy(sandbox.url)).url if versionless else sandbox.url
        app.export_workbook(book, platform=platform)
        if versionless:  # the platform really gave no versions: every decision below is by values
            assert all(snap.version is None for snap in wbk.read_snapshot(app.open_book(book, read_only=True)).values())
        original_headers, original_rows = _users(book)
        assert len(original_rows) == scenario.users
        original = raw_users(sandbox)
        if not bulk:
            _no_bulk(sandbox)
        proxy = stack.enter_context(FaultProxy(platform, seed=scenario.seed, random_rates=random_rates))
        edits = _edit(book, scenario, original, proxy.url)
        assert Counter(i.kind for i in edits.intents) == {"create": scenario.creates, "update": scenario.updates,
                                                          "archive": scenario.archives, "rename": scenario.renames}
        rules = cut_points(edits)
        for rule in rules:
            proxy.add(rule)
        conflicts = _platform_edits(sandbox, edits, book, platform_edits)
        original = raw_users(sandbox)  # the other admin's edits are what the platform holds now
        runs = _sync_until_done(book, scenario, sandbox, proxy, skip=sorted(conflicts.values()))
        faults = proxy.fault_counts()
        randomly = Counter(f.method for f in proxy.faults if not f.rule)

    # Every Sync log entry of every run, ok and failed, against the raw state right after that run.
    checker = StateChecker(original, edits.intents)
    result = audit(checker, runs)
    stopped = [r for r in runs if r.stopped is not None]
    assert len(stopped) <= scenario.max_stopped, [r.stopped for r in stopped]

    # The end: exactly the intended users, every attribute as stored, nobody twice, every change confirmed once.
    final = raw_users(sandbox)
    assert all(checker.applied(i, final) for i in edits.intents), [i.key for i in edits.intents if not checker.applied(i, final)][:5]
    assert len(final) == scenario.users + scenario.creates
    twice = duplicates(final)
    assert not twice, twice.most_common(5)
    assert set(result.confirmed) == {i.key for i in edits.intents}, sorted({i.key for i in edits.intents} - set(result.confirmed))[:5]

    # No edit in the workbook was lost: the sheet still shows every intended value, and nothing is left to send.
    headers, sheet = _users(book)
    assert headers == original_headers
    lost = sum(1 for name, want in edits.intended.items() if sheet.get(name) != want and not _same_but_manager(sheet.get(name), want, edits.renames))
    assert lost == 0
    assert set(app.edited_rows(app.load(app.open_book(book)))) == set(conflicts.values())  # only the skipped conflicts are left
    overwritten = [name for name in conflicts if final_by_name(final, name).get("title") != OTHER_ADMIN.format(name)]
    assert overwritten == []  # the other fields' edits are held by the intents the audit checked
    return Outcome(runs, result, rules, faults, randomly, sum(twice.values()), lost, len(conflicts))


OTHER_ADMIN = "Another admin's title for {}"


def final_by_name(state: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    [doc] = [d for d in state.values() if str(d["userName"]).casefold() == name.casefold()]
    return doc


def _platform_edits(sandbox: Sandbox, edits: Edits, book: Path, count: int) -> dict[str, int]:
    """Another admin edits ``count`` users the sheet updates (the last ones: no cut point aims at them), after the export.

    Half in the field the sheet sends (the title): conflicts, which the sync skips and must not overwrite; they
    leave the intents. Half in another field (the department): no conflict, the title goes through and the
    department stays as the other admin set it. Returns the conflicts' names -> sheet rows.
    """
    if not count:
        return {}
    chosen = [i for i in edits.intents if i.kind == "update"][-count:]
    conflicting, elsewhere = chosen[: count // 2], chosen[count // 2 :]
    for intent, path, value in [*((i, "title", OTHER_ADMIN.format(i.key)) for i in conflicting),
                                *((i, f"{ENTERPRISE}:department", "Another admin's department") for i in elsewhere)]:
        requests.patch(f"{sandbox.url}/Users/{intent.user_id}", timeout=30, json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": path, "value": value}]}).raise_for_status()
    now = raw_users(sandbox)
    keys = {i.key for i in conflicting}
    moved = {i.key: update_intent(now[str(i.user_id)], str(i.after["title"])) for i in elsewhere}
    edits.intents[:] = [moved.get(i.key, i) for i in edits.intents if i.key not in keys]
    wb = load_workbook(book, read_only=True)
    ws = wb[wbk.USERS]
    header = [c.value for c in next(ws.iter_rows(max_row=1))]
    rows = {str(r[header.index("Username")]): n for n, r in enumerate(ws.iter_rows(min_row=2, values_only=True), start=2) if r[0] is not None}
    wb.close()
    return {name: rows[name] for name in keys}


def _same_but_manager(row: dict[str, Any] | None, want: dict[str, Any], renames: dict[str, str]) -> bool:
    """The sheet still shows a renamed manager's old name in reports' rows (only the platform follows the id)."""
    if row is None:
        return False
    if row.get("Manager") in renames:
        row = {**row, "Manager": renames[row["Manager"]]}
    return row == want


def _summary(title: str, scenario: Scenario, outcome: Outcome) -> str:
    stopped = sum(1 for r in outcome.runs if r.stopped is not None)
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(outcome.faults.items()))
    randomly = ", ".join(f"{method} {n}" for method, n in sorted(outcome.random.items())) or "none"
    return (f"{title}: {scenario.changes} changes, {sum(outcome.faults.values())} cuts ({kinds}), {len(outcome.rules)} placed cut points all fired, "
            f"random cuts by method: {randomly}, "
            f"{len(outcome.runs)} runs ({stopped} stopped early), Sync log verified against the raw state: {outcome.audit.ok} ok + "
            f"{outcome.audit.failed} failed ({outcome.audit.failed_applied} with the answer lost but applied), "
            f"raw duplicates {outcome.duplicates}, lost edits {outcome.lost}, platform edits overwritten 0 of {outcome.platform_edits}")


def _all_fired(rules: list[Rule]) -> None:
    assert all(r.fired for r in rules), [r.name for r in rules if not r.fired]


# --- the tests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("versionless", [False, True], ids=["versioned", "platform-without-versions"])
def test_a_sync_of_2000_changes_cut_at_every_stage_ends_exactly_as_intended(versionless: bool, fresh_sandbox: Callable[..., Sandbox], tmp_path: Path,
                                                                             record_property: Callable[[str, object], None]) -> None:
    sandbox = fresh_sandbox(users=BIG.users, seed=BIG.seed)
    rates: dict[FaultKind, float] = {"drop_before": 0.003, "drop_after": 0.003, "cut_response": 0.002, "status_after": 0.002}
    outcome = run_scenario(BIG, sandbox, tmp_path, _big_cut_points, rates, versionless=versionless, platform_edits=40)
    _all_fired(outcome.rules)
    assert {"drop_before", "drop_after", "cut_response", "status_after 502", "status 502", "status 503", "status 429", "status 401", "delay"} <= set(outcome.faults)
    assert sum(outcome.faults.values()) >= 50, outcome.faults
    stops = [r.stopped for r in outcome.runs if r.stopped is not None]
    assert any("(401) on POST /Bulk" in s for s in stops), stops
    assert outcome.audit.failed >= 2 and outcome.audit.failed_applied >= 2  # the five-times cuts: failed honestly, and unknown-but-applied
    line = _summary(f"fault-injection sync (Bulk{', platform without versions' if versionless else ''})", BIG, outcome)
    record_property("rosterbook_summary", line)
    print(line)


@pytest.mark.parametrize("updates", [False, True], ids=["snapshot-written-whole", "snapshot-updates-sheet"])
def test_single_requests_cut_at_every_stage_end_exactly_as_intended(updates: bool, fresh_sandbox: Callable[..., Sandbox], tmp_path: Path,
                                                                     record_property: Callable[[str, object], None],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    if updates:  # every run's entries, re-based ones of an interrupted run included, go to the updates sheet
        monkeypatch.setattr(wbk, "UPDATES_FROM", 1)
        monkeypatch.setattr(wbk, "UPDATES_SHARE", 1)
    sandbox = fresh_sandbox(users=SMALL.users, seed=SMALL.seed)
    rates: dict[FaultKind, float] = {"drop_before": 0.01, "drop_after": 0.01, "cut_response": 0.01, "status_after": 0.01}
    outcome = run_scenario(SMALL, sandbox, tmp_path, _small_cut_points, rates, bulk=False)
    _all_fired(outcome.rules)
    assert not any(r.path == "/Bulk" for r in sandbox.request_log)
    assert any("(401) on PATCH" in (r.stopped or "") for r in outcome.runs)
    assert bool(wbk.read_snapshot_sheet(app.open_book(tmp_path / "faults.xlsx", read_only=True)).updates) == updates
    line = _summary(f"fault-injection sync (single requests{', snapshot updates sheet' if updates else ''})", SMALL, outcome)
    record_property("rosterbook_summary", line)
    print(line)


# --- the audit catches known bugs (a client with the bug injected; the HTTP is real) ----------------------


class _LostCreateAssumedApplied(scim.ScimClient):
    def _create(self, op: scim.Operation) -> scim.OperationResult:
        try:
            response = self._request(op.method, op.path, body=op.body, safe=False)
        except scim._UnknownOutcome:
            return scim._result(op, "ok", message="assumed created")  # the bug: no look-up
        return self._from_response(op, response)


_FROM_RESPONSE = scim.ScimClient._from_response


class _AppliedCreateLoggedFailed(scim.ScimClient):
    def _from_response(self, op: scim.Operation, response: requests.Response) -> scim.OperationResult:
        result = _FROM_RESPONSE(self, op, response)  # the real class's own, before the bug is injected into it
        if op.is_create and response.status_code == 201:
            return replace(result, status="failed", message="the platform refused the values")  # the bug
        return result


@pytest.fixture
def bug(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[type[scim.ScimClient]], None]]:
    """Inject a buggy method into the real client class for one test (the sync's requests stay real)."""

    def inject(buggy: type[scim.ScimClient]) -> None:
        for name in ("_create", "_from_response"):
            if name in vars(buggy):
                monkeypatch.setattr(scim.ScimClient, name, vars(buggy)[name])

    yield inject


@pytest.mark.parametrize(
    ("buggy", "caught"),
    [(_LostCreateAssumedApplied, r"create 'new\.person0001@lumen\.example' \(ok, .*\): logged ok, but the platform does not hold the change"),
     (_AppliedCreateLoggedFailed, r"create 'new\.person\d+@lumen\.example' \(failed, .*\): logged failed, but the platform holds the change")],
    ids=["lost-create-assumed-applied", "applied-create-logged-failed"],
)
def test_the_audit_fails_on_a_client_with_a_known_bug(buggy: type[scim.ScimClient], caught: str, bug: Callable[[type[scim.ScimClient]], None],
                                                       fresh_sandbox: Callable[..., Sandbox], tmp_path: Path) -> None:
    bug(buggy)
    sandbox = fresh_sandbox(users=SMALL.users, seed=SMALL.seed)
    with pytest.raises(AssertionError, match=caught):
        run_scenario(SMALL, sandbox, tmp_path, _small_cut_points, {}, bulk=False)


@pytest.fixture(autouse=True)
def _no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROSTERBOOK_TOKEN", raising=False)
