"""The workbook round trip at 50,000 users: export, check, preview, sync of one changed row.

Starts its own sandbox (SQLite in a temporary folder) seeded with the demo organisation, then
runs each step as a separate process (the CLI's library calls, as ``rosterbook`` would) and
reports its wall time and that process's peak memory (its own VmHWM, read by the step itself: the
max RSS ``wait4`` reports also counts the parent's pages a child holds between fork and exec); the
writing steps also as a ratio against openpyxl loading and saving the same workbook (issue 17: at
least 5x). Also (issue 9, item 2):
rosterbook's reader (``fastread``, python-calamine) against openpyxl's default load of the same
50,000-row workbook, with identical values, and the ratio.

Run: ``.venv/bin/python bench/bench_workbook.py [--users 50000]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STEP = r"""
import json, sys, time
from rosterbook import app
step, book, arg = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter()
if step == "export":
    out = app.export_workbook(book, platform=arg)
    extra = {"rows": out["rows"]}
elif step == "check":
    report = app.check_workbook(book)
    extra = {"errors": report.errors, "warnings": report.warnings}
elif step == "check-no-write":
    report = app.check_workbook(book, write=False)
    extra = {"errors": report.errors, "warnings": report.warnings}
elif step == "openpyxl-load-save":
    import openpyxl, shutil
    shutil.copy(book, book + ".peer.xlsx")
    openpyxl.load_workbook(book + ".peer.xlsx").save(book + ".peer.xlsx")
    extra = {}
elif step == "edit":
    from rosterbook.xlsxpatch import PatchBook
    wb = PatchBook(book)
    col = wb.values("Users")[0].index("Job title") + 1
    wb.write_values("Users", int(arg), col, [["Edited for the benchmark"]])
    wb.save()
    extra = {}
elif step == "preview":
    plan = app.preview_workbook(book)
    extra = {k: v for k, v in plan.counts.items() if v}
elif step == "sync":
    out = app.sync_workbook(book)
    extra = {"sent": out["sent"], "confirmed": out["confirmed"], "failed": out["failed"]}
seconds = time.perf_counter() - t
# The step's own peak (VmHWM of this process image). wait4's ru_maxrss would also count the parent's
# pages the child held between fork and exec: the parent holds the sandbox, hundreds of MB.
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
peak = int(status["VmHWM"].split()[0]) / 1024 if "VmHWM" in status else None
print(json.dumps({"seconds": seconds, "peak_mb": peak, **extra}))
"""


def run_step(step: str, book: Path, arg: str) -> tuple[float, float, dict[str, Any]]:
    """Run one step in a child process: (seconds inside the step, peak RSS in MB, what it returned)."""
    proc = subprocess.Popen([sys.executable, "-c", STEP, step, str(book), arg], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    out = proc.stdout.read() if proc.stdout else ""
    err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{step} failed ({proc.returncode}):\n{err}")
    data = json.loads(out.strip().splitlines()[-1])
    peak = data.pop("peak_mb")
    # ru_maxrss (KiB on Linux) only where /proc is missing: it includes the parent's pages held before exec.
    return data.pop("seconds"), peak if peak is not None else usage.ru_maxrss / 1024, data


def best_of(runs: int, fn: Any) -> float:
    times = []
    for _ in range(runs):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    """Seed a sandbox, run the steps, print one line per figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    args = parser.parse_args(argv)

    from rosterbook.sandbox import start_sandbox

    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        with start_sandbox(folder / "sandbox.sqlite3", users=args.users) as sandbox:
            print(f"sandbox seeded with {args.users} users: {time.perf_counter() - t:.1f} s")
            book = folder / "users.xlsx"
            figures: list[tuple[str, float, float, dict[str, Any]]] = []
            for step, arg in (("export", sandbox.url), ("openpyxl-load-save", ""), ("check", ""), ("check-no-write", ""), ("edit", "1234"),
                              ("preview", ""), ("sync", "")):
                seconds, peak, extra = run_step(step, book, arg)
                figures.append((step, seconds, peak, extra))
                print(f"{step:<15} {seconds:7.2f} s   peak {peak:6.0f} MB   {extra}")
            size = book.stat().st_size / 1e6
            print(f"workbook: {size:.1f} MB on disk")
            sent = figures[-1][3]
            if sent.get("sent") != 1 or sent.get("confirmed") != 1:
                raise SystemExit(f"the sync should have sent exactly the one changed row: {sent}")
            peer = next(s for name, s, _, _ in figures if name == "openpyxl-load-save")
            for name, seconds, _, _ in figures:
                if name in ("check", "preview", "sync", "edit"):
                    print(f"{name:<15} {peer / seconds:5.1f}x faster than openpyxl's load+save of the same workbook ({peer:.1f} s)"
                          f"{'' if name == 'edit' else ' (target >= 5x: ' + ('ok' if peer / seconds >= 5 else 'MISSED') + ')'}")
            round_trip = sum(s for name, s, _, _ in figures if name in ("export", "check", "preview", "sync"))
            steps_peak = max(p for name, _, p, _ in figures if name in ("export", "check", "preview", "sync"))
            print(f"round trip (export + check + preview + sync): {round_trip:.1f} s, peak {steps_peak:.0f} MB")

        # Issue 9 item 2: rosterbook's reader against openpyxl's default load, same workbook, same run.
        import openpyxl

        from rosterbook.fastread import FastBook

        def openpyxl_default() -> list[list[Any]]:
            # openpyxl's default load (no read-only mode, no patches), then the Users values, trailing blanks trimmed
            ws = openpyxl.load_workbook(book)["Users"]
            rows = [list(r) for r in ws.iter_rows(values_only=True)]
            while rows and all(v is None for v in rows[-1]):
                rows.pop()
            width = max((max((i + 1 for i, v in enumerate(r) if v is not None), default=0) for r in rows), default=0)
            return [r[:width] + [None] * (width - len(r)) for r in rows]

        slow_values = openpyxl_default()
        fast_values = FastBook(book).values("Users")
        if slow_values != fast_values:
            diffs = sum(1 for a, b in zip(slow_values, fast_values, strict=False) if a != b)
            raise SystemExit(f"fastread differs from openpyxl on {diffs} rows")
        cells = sum(len(r) for r in fast_values)
        slow = best_of(2, openpyxl_default)
        fast = best_of(3, lambda: FastBook(book).values("Users"))
        print(f"read Users ({len(fast_values) - 1} rows, {cells} cells): openpyxl load {slow:.2f} s, "
              f"rosterbook fastread {fast:.2f} s, identical values, {slow / fast:.1f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
