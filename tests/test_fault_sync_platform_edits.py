"""A sync of 2,000 changes through a loopback fault proxy: connections dropped before and after the
server applied a request, stalls, 502/503/429 answers. Sync is run again until it reports nothing
left; then the platform holds exactly the intended state, nobody was created twice, every outcome
the Sync log claims is true, and every edit is still in the workbook.

It runs twice, in full: against the sandbox as it is (versions and ETags), and with a second real
proxy between the fault proxy and the sandbox that makes it a platform without versions (no
``meta.version``, no ETag, ``etag.supported=false``), where conflicts and re-runs are decided by values.

The summary line (changes, cut points, re-runs, duplicates, lost edits) is printed in pytest's
terminal summary by the ``pytest_terminal_summary`` hook in conftest.py, with or without ``-s``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from support.books import patch_user, platform_users, sheet_rows
from support.faultproxy import FaultKind, FaultProxy, Rule
from support.scimproxies import VersionlessProxy

from rosterbook import app
from rosterbook import workbook as wbk
from rosterbook.errors import RosterbookError
from rosterbook.sandbox import Sandbox

USERS = 1_500
UPDATES, CREATES, ARCHIVES, RENAMES = 1_100, 500, 250, 150
CHANGES = UPDATES + CREATES + ARCHIVES + RENAMES
MAX_RUNS = 12
BATCH = 200
"""Changes per batch (a Bulk request, then the workbook is saved): ten in the first run."""

Rows = dict[str, dict[str, Any]]
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def _cut_points() -> list[Rule]:
    """Faults at chosen places of the request stream, each firing once.

    A rule counts the matching requests that reach it (those an earlier rule took are not seen), so
    ``skip`` places it: the sixth Bulk request, the 150th single PATCH, and so on.
    """
    bulk = r"/Bulk$"
    single_post, single_patch = r"/Users$", r"/Users/[0-9a-f]+$"
    lookup, listing = r"filter=userName", r"/Users\?(?!filter)"
    rules = [
        # Bulk requests (a batch of 200 changes each): lost after the server applied them, never forwarded,
        # answered by a gateway, refused for now (Retry-After), stalled.
        Rule("drop_after", "POST", bulk, skip=0), Rule("drop_before", "POST", bulk, skip=1),
        Rule("status", "POST", bulk, status=502, skip=2), Rule("status", "POST", bulk, status=503, retry_after="1", skip=3),
        Rule("status", "POST", bulk, status=429, retry_after="1", skip=4), Rule("delay", "POST", bulk, delay=1.0, skip=5),
        # Single creates and patches: the replays of the Bulk requests whose outcome was lost.
        Rule("drop_after", "POST", single_post, skip=3), Rule("drop_before", "POST", single_post, skip=40),
        Rule("status", "POST", single_post, status=502, skip=100), Rule("drop_after", "POST", single_post, skip=160),
        Rule("status", "POST", single_post, status=503, retry_after="0", skip=220), Rule("drop_before", "POST", single_post, skip=60),
        Rule("delay", "POST", single_post, delay=0.5, skip=130), Rule("status", "POST", single_post, status=429, retry_after="1", skip=190),
        Rule("drop_after", "PATCH", single_patch, skip=5), Rule("drop_before", "PATCH", single_patch, skip=30),
        Rule("status", "PATCH", single_patch, status=502, skip=60), Rule("drop_after", "PATCH", single_patch, skip=90),
        Rule("status", "PATCH", single_patch, status=503, retry_after="1", skip=120),
        Rule("status", "PATCH", single_patch, status=429, retry_after="1", skip=150), Rule("delay", "PATCH", single_patch, delay=1.0, skip=180),
        Rule("drop_after", "PATCH", single_patch, skip=210), Rule("drop_before", "PATCH", single_patch, skip=240),
        Rule("status", "PATCH", single_patch, status=502, skip=40), Rule("drop_after", "PATCH", single_patch, skip=75),
        # Look-ups after an unknown outcome, and the listing of current versions before the plan.
        Rule("status", "GET", lookup, status=503, retry_after="0", skip=2), Rule("drop_after", "GET", lookup, skip=6),
        Rule("status", "GET", lookup, status=502, skip=50), Rule("status", "GET", lookup, status=429, retry_after="1", skip=100),
        Rule("delay", "GET", lookup, delay=0.5, skip=150), Rule("drop_before", "GET", lookup, skip=120),
        Rule("drop_before", "GET", listing, skip=0), Rule("status", "GET", listing, status=502, skip=1),
        # Discovery, at the start of a later run.
        Rule("status", "GET", r"/ServiceProviderConfig", status=503, retry_after="0", skip=1), Rule("drop_before", "GET", r"/Schemas", skip=1),
    ]
    return rules


def _users(path: Path) -> tuple[list[str], Rows]:
    """The Users sheet's data headers and rows by Username, as cell texts."""
    wb = load_workbook(path, read_only=True)
    ws = wb[wbk.USERS]
    grid = [list(r) for r in ws.iter_rows(values_only=True)]
    wb.close()
    headers = [str(h) for h in grid[0]]
    width = headers.index(wbk.PROBLEMS)
    rows: Rows = {}
    for cells in grid[1:]:
        values = {h: (None if c is None or c == "" else str(c)) for h, c in zip(headers[:width], cells[:width], strict=False)}
        name = values.get("Username")
        if name is not None:
            rows[name] = values
    return headers[:width], rows


def _edit(path: Path, rng: random.Random, platform_url: str) -> tuple[Rows, dict[str, str], dict[str, tuple[str, ...]]]:
    """Make the 2,000 edits a user would and point the workbook at ``platform_url``.

    Returns the intended rows, old -> new names, and which user got which change.
    """
    wb = load_workbook(path)
    for setting in wb[wbk.SETTINGS].iter_rows(min_row=2):
        if setting[0].value == "platform_url":
            setting[1].value = platform_url
    ws = wb[wbk.USERS]
    col = {str(c.value): c.column for c in ws[1] if c.value is not None}
    rows = list(range(2, ws.max_row + 1))
    active = [r for r in rows if ws.cell(r, col["Status"]).value == "Active"]
    archived = set(rng.sample(active, ARCHIVES))
    rest = [r for r in rows if r not in archived]
    renamed = set(rng.sample(rest, RENAMES))
    updated = set(rng.sample([r for r in rest if r not in renamed], UPDATES))
    kinds: dict[str, tuple[str, ...]] = {}
    renames: dict[str, str] = {}
    for r in sorted(archived):
        ws.cell(r, col["Status"]).value = "Archived"
        kinds[str(ws.cell(r, col["Username"]).value)] = ("archive",)
    for r in sorted(updated):
        ws.cell(r, col["Job title"]).value = f"Fault-tolerant role {r}"
        kinds[str(ws.cell(r, col["Username"]).value)] = ("update",)
    for r in sorted(renamed):
        old = str(ws.cell(r, col["Username"]).value)
        new = f"renamed.{r}@lumen.example"
        ws.cell(r, col["Username"]).value = new
        renames[old] = new
        kinds[new] = ("rename",)
    last = ws.max_row
    for i in range(CREATES):
        row = last + 1 + i
        name = f"new.person{i:04d}@lumen.example"
        for header, value in (("Username", name), ("First name", "New"), ("Last name", f"Person {i:04d}"), ("Email", name),
                              ("Status", "Pending"), ("Job title", "Joiner")):
            ws.cell(row, col[header]).value = value
        kinds[name] = ("create",)
    wb.save(path)
    _, intended = _users(path)
    # The platform keeps managers by id: a renamed manager shows under the new name for their reports.
    for values in intended.values():
        if values.get("Manager") in renames:
            values["Manager"] = renames[values["Manager"]]
    return intended, renames, kinds


def _sync_until_done(path: Path, proxy: FaultProxy, conflicts: list[int]) -> tuple[int, list[str], dict[str, Any]]:
    """Run sync until a run has nothing left to send; returns (runs, errors of runs that stopped early, the first result)."""
    stopped: list[str] = []
    first: dict[str, Any] = {}
    for run in range(1, MAX_RUNS + 1):
        if run == 3:
            proxy.clear()  # the faults still armed (rules that never matched) go; the random ones too
        try:
            result = app.sync_workbook(path, confirm_deletions=True, batch=BATCH, skip_rows=conflicts)
        except RosterbookError as exc:
            stopped.append(str(exc))  # e.g. the platform unreachable for a whole run: nothing is lost, run again
            continue
        first = first or result
        if result["sent"] == 0:
            return run, stopped, first
    raise AssertionError(f"sync still had work after {MAX_RUNS} runs; early stops: {stopped}")


def _log(path: Path) -> list[dict[str, Any]]:
    wb = load_workbook(path, read_only=True)
    grid = [list(r) for r in wb[wbk.SYNC_LOG].iter_rows(values_only=True)]
    wb.close()
    headers = [str(h) for h in grid[0]]
    return [dict(zip(headers, r, strict=False)) for r in grid[1:] if any(c is not None for c in r)]


@pytest.mark.parametrize("versions", [True, False], ids=["versioned", "versionless"])
def test_a_sync_of_2000_changes_survives_30_cut_points(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path,
                                                       record_property: Callable[[str, object], None], versions: bool) -> None:
    sandbox = fresh_sandbox(users=USERS, seed=5)
    with ExitStack() as stack:
        url = sandbox.url if versions else stack.enter_context(VersionlessProxy(sandbox.url)).url
        _sync_through_faults(sandbox, url, tmp_path, record_property, versions)


CONCURRENT = 20
"""Users another admin changes on the platform after the export: that many in the field the sheet sends (conflicts,
skipped), and as many in another field (sent: the other admin's field must survive)."""


def _platform_edits(url: str, kinds: dict[str, tuple[str, ...]], intended: Rows, book: Path) -> list[int]:
    """Another admin's edits, straight on the platform; the intended state follows them. Returns the conflicting rows."""
    updated = sorted(n for n, k in kinds.items() if k == ("update",))
    users = platform_users(url)
    rows = {name: int(values["_row"]) for name, values in sheet_rows(book).items()}
    for name in updated[:CONCURRENT]:
        patch_user(url, users[name]["id"], [{"op": "replace", "path": "title", "value": f"Another admin's title for {name}"}])
        intended[name] = {**intended[name], "Job title": f"Another admin's title for {name}"}
    for name in updated[CONCURRENT : 2 * CONCURRENT]:
        patch_user(url, users[name]["id"], [{"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Another admin's department"}])
        intended[name] = {**intended[name], "Department": "Another admin's department"}
    return sorted(rows[n] for n in updated[:CONCURRENT])


def _conflicted(kinds: dict[str, tuple[str, ...]]) -> set[str]:
    return set(sorted(n for n, k in kinds.items() if k == ("update",))[:CONCURRENT])


def _sync_through_faults(sandbox: Sandbox, url: str, tmp_path: Path, record_property: Callable[[str, object], None], versions: bool) -> None:
    book = tmp_path / "faults.xlsx"
    app.export_workbook(book, platform=url)
    original_headers, original = _users(book)
    assert len(original) == USERS
    # Besides the chosen cut points, a few random ones on single requests (a random Bulk fault would only add replays).
    random_rates: dict[FaultKind, float] = {"drop_after": 0.005, "drop_before": 0.005}
    with FaultProxy(url, seed=11, random_rates=random_rates, random_methods=("GET", "PATCH")) as proxy:
        intended, renames, kinds = _edit(book, random.Random(8), proxy.url)
        assert Counter(k[0] for k in kinds.values()) == {"update": UPDATES, "create": CREATES, "archive": ARCHIVES, "rename": RENAMES}
        in_sheet = {name: dict(values) for name, values in intended.items()}
        conflicts = _platform_edits(sandbox.url, kinds, intended, book)
        rules = _cut_points()
        for rule in rules:
            proxy.add(rule)
        runs, stopped, first = _sync_until_done(book, proxy, conflicts)
        faults = list(proxy.faults)
    assert sum(first["counts"][a] for a in ("create", "update", "archive", "rename")) == CHANGES - CONCURRENT

    cut_points = len(faults)
    kinds_seen = Counter(f.kind if f.kind != "status" else f"status {f.status}" for f in faults)
    assert cut_points >= 30, (kinds_seen, [(r.kind, r.method, r.path, r.skip) for r in rules if not r.fired])
    assert {"drop_before", "drop_after", "delay", "status 502", "status 503", "status 429"} <= set(kinds_seen), kinds_seen

    # The platform now holds exactly the intended state: export it again, directly (no proxy).
    again = tmp_path / "again.xlsx"
    app.export_workbook(again, platform=sandbox.url)
    headers, platform = _users(again)
    assert headers == original_headers
    names = [n.casefold() for n in platform]
    duplicates = len(names) - len(set(names))
    people = Counter((v["First name"], v["Last name"], v["Email"]) for v in platform.values())
    duplicates += sum(n - 1 for n in people.values() if n > 1)
    assert duplicates == 0
    assert len(platform) == USERS + CREATES
    assert set(platform) == set(intended)
    created = [n for n, k in kinds.items() if k == ("create",)]
    for name, want in intended.items():
        got = platform[name]
        if name in created:
            # A new user: the cells the sheet gave, the rest is the platform's (blank here).
            assert {h: got[h] for h in want if want[h] is not None} == {h: v for h, v in want.items() if v is not None}, name
        else:
            assert got == want, name

    # Every outcome the Sync log claims is true, and each change has a confirmed entry.
    log = _log(book)
    confirmed: dict[str, set[str]] = {}
    for entry in log:
        assert entry["Outcome"] in ("ok", "failed"), entry
        if entry["Outcome"] != "ok":
            continue
        key, action = str(entry["Key"]), str(entry["Action"])
        confirmed.setdefault(key, set()).add(action)
        assert key in platform, entry  # the user the entry speaks of exists under that name
        if action == "archive":
            assert platform[key]["Status"] == "Archived", entry
        elif action in ("update", "create"):
            assert platform[key] == intended[key] or key in created, entry
        elif action == "rename":
            assert key in renames.values(), entry
    skipped = _conflicted(kinds)
    for name, (kind,) in kinds.items():
        assert kind in confirmed.get(name, set()) or name in skipped, (name, kind)
    assert not skipped & set(confirmed)  # the conflicts were never sent

    # No edit in the workbook was lost: the sheet still shows every value it was given, and nothing but the conflicts is left to send.
    _, sheet = _users(book)
    lost = sum(1 for name, want in in_sheet.items() if sheet.get(name) != want and not _same_but_manager(sheet.get(name), want, renames))
    assert lost == 0
    loaded = app.load(app.open_book(book))
    assert sorted(app.edited_rows(loaded)) == conflicts

    line = (f"fault-injection sync ({'versioned' if versions else 'platform without versions'}): {CHANGES} changes, "
            f"{cut_points} cut points ({_kinds(kinds_seen)}), "
            f"{runs - 1} re-runs needed, {len(stopped)} runs stopped early, duplicates {duplicates}, lost edits {lost}, "
            f"platform edits overwritten 0 of {2 * CONCURRENT}")
    record_property("rosterbook_summary", line)
    print(line)


def _same_but_manager(row: dict[str, Any] | None, want: dict[str, Any], renames: dict[str, str]) -> bool:
    """The sheet still shows a renamed manager's old name in reports' rows (only the platform follows the id)."""
    if row is None:
        return False
    if row.get("Manager") in renames:
        row = {**row, "Manager": renames[row["Manager"]]}
    return row == want


def _kinds(counts: Counter[str]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))


@pytest.fixture(autouse=True)
def _no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROSTERBOOK_TOKEN", raising=False)
