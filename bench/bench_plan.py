"""How fast are diff() and make_plan()? 50,000 rows with 1% edited, against a floor measured in the same run.

For the Progression dialect (7 columns) and the SCIM dialect (17 columns, lists, clear words),
builds a 50,000-user snapshot and a sheet of the same users in shuffled order where 1% of rows
are edited (a changed name, an archived status, a list item added, a blank that keeps), 0.2% are
new and 0.2% are removed; then times:

1. ``diff(table, snapshot, settings)``;
2. ``make_plan(...)`` (diff + errors + conflicts + guard + seats + sorting), with a ``current``
   map for the SCIM platform so the conflict check runs on every changed row;
3. the floor: the least any diff must do — every cell to canonical text and one dict comparison
   per row matched by row id (no blank rules, lists, keys, actions or plan).

Target: make_plan well under a second. Prints wall-clock and CPU seconds (best of 5; CPU time
is steadier when other work shares the machine) and the ratio to the floor.
Run: ``.venv/bin/python bench/bench_plan.py``.
"""

from __future__ import annotations

import gc
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from rosterbook.core.codecs import to_text
from rosterbook.core.dialects import load_dialect
from rosterbook.core.diff import diff
from rosterbook.core.plan import Current, Settings, make_plan
from rosterbook.core.table import SnapshotRow, Table, build_table

ROWS = 50_000
EDITED = 0.01
NEW = 0.002
REMOVED = 0.002
REPEATS = 5
FIRST = ["Amara", "Tomasz", "Zoë", "Siobhán", "Rahul", "Grace", "Lukas", "Mei", "José", "Hannah"]
LAST = ["Okafor", "Nowak", "Lefèvre", "O'Neill", "Menon", "Adeyemi", "Schmidt", "Tanaka"]
TEAMS = ["Engineering", "Design", "People", "Data", "Sales"]


def _user(name: str, index: int, rng: random.Random) -> dict[str, str | None]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    status = rng.choice(["Active", "Active", "Active", "Pending", "Archived"])
    team = rng.choice(TEAMS)
    if name == "progression":
        return {"First Name": first, "Last Name": last, "email": f"user{index}@example.com", "position": f"{team} lead" if index % 3 else None,
                "team": team, "manager": f"user{index // 10}@example.com" if index else None, "account_active": status}
    return {"Username": f"user{index}", "First name": first, "Last name": last, "Email": f"user{index}@example.com", "Status": status,
            "Job title": f"{team} specialist", "Department": team, "Team": team, "Position": None, "Locations": "Paris|Main\\|HQ" if index % 2 else "Remote",
            "Manager": f"user{index // 10}" if index else None, "Groups": "staff; " + team.casefold(), "Roles": "Learner", "Employee ID": f"{index:06d}",
            "Phone": None, "Start date": "2020-01-06", "External ID": f"E{index}"}


def _edit(name: str, cells: dict[str, Any], rng: random.Random) -> None:
    kind = rng.randrange(4)
    if name == "progression":
        column = ("Last Name", "account_active", "team", "manager")[kind]
        cells[column] = {"Last Name": "Edited", "account_active": "Archived", "team": None, "manager": "user1@example.com"}[column]
    else:
        column = ("Last name", "Status", "Groups", "Job title")[kind]
        cells[column] = {"Last name": "Edited", "Status": "Archived", "Groups": f"{cells['Groups']}; new group", "Job title": "(clear)"}[column]


def build(name: str) -> tuple[Table, list[SnapshotRow], dict[str, Current]]:
    """The snapshot of ROWS users and the edited, shuffled sheet."""
    rng = random.Random(7)
    dialect = load_dialect(name)
    scim = dialect.kind == "scim"
    users = [_user(name, i, rng) for i in range(ROWS)]
    snapshot = [
        SnapshotRow(f"r{i}", str(u[dialect.key]), f"id-{i}" if scim else None, 'W/"1"' if scim else None, u) for i, u in enumerate(users)
    ]
    rows: list[tuple[str | None, dict[str, Any]]] = []
    for index, user in enumerate(users):
        if rng.random() < REMOVED:
            continue
        cells: dict[str, Any] = dict(user)
        if rng.random() < EDITED:
            _edit(name, cells, rng)
        rows.append((f"r{index}", cells))
    for index in range(int(ROWS * NEW)):
        rows.append((None, _user(name, ROWS + index, rng)))
    rng.shuffle(rows)
    headers = list(dialect.column_names)
    table = build_table("Users", dialect, headers, [[c.get(h) for h in headers] for _, c in rows], [r for r, _ in rows])
    current = {s.resource_id: Current(s.version, s.values) for s in snapshot if s.resource_id is not None}
    return table, snapshot, current


def floor(table: Table, snapshot: Sequence[SnapshotRow], settings: Settings) -> list[str]:
    """The least work of any diff: canonical text of every cell, one comparison per matched row."""
    by_id = {s.row_id: s for s in snapshot}
    names = table.present
    changed = []
    for row in table.rows:
        snap = by_id.get(row.row_id) if row.row_id is not None else None
        values = {n: to_text(row.values.get(n)) for n in names}
        if snap is None or any(values[n] != snap.values.get(n) for n in names):
            changed.append(row.row_id or "")
    return changed


def best(fn: Callable[[], Any]) -> tuple[float, float]:
    """Best wall-clock and best CPU seconds of REPEATS runs (CPU time is steadier on a busy machine)."""
    walls, cpus = [], []
    for _ in range(REPEATS):
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return min(walls), min(cpus)


def measure(name: str) -> bool:
    """Time floor, diff and make_plan for one dialect; print them; True when the target is met."""
    table, snapshot, current = build(name)
    settings = Settings.for_dialect(name, subscription_seats=ROWS)
    versions = current if name == "scim" else None
    plan = make_plan(table, snapshot, settings, current=versions, confirm_deletions=True)
    counts = ", ".join(f"{n} {a}" for a, n in plan.counts.items() if n)
    t_floor = best(lambda: floor(table, snapshot, settings))
    t_diff = best(lambda: diff(table, snapshot, settings))
    t_plan = best(lambda: make_plan(table, snapshot, settings, current=versions, confirm_deletions=True))
    print(f"{name}: {len(table.rows):,} rows x {len(table.present)} columns ({counts})")
    print("                            wall      cpu   cpu vs floor")
    for label, (wall, cpu) in (("floor (text + compare)", t_floor), ("diff", t_diff), ("make_plan", t_plan)):
        print(f"  {label:22s}  {wall:6.3f} s {cpu:6.3f} s  {cpu / t_floor[1]:5.2f}x")
    met = t_plan[1] < 1
    print(f"  make_plan target < 1 s of CPU: {'met' if met else 'MISSED'}")
    return met


def main() -> int:
    results = [measure(name) for name in ("progression", "scim")]
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores while measuring)")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
