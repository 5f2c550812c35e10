"""Run every benchmark once, one after the other, and print their figures (the run bench/RESULTS.md records).

Each script is also runnable on its own with one command (see bench/README.md). They are run
one at a time because they measure wall time on a machine whose cores they would share.
Run: ``.venv/bin/python bench/run_all.py [--only sync,export]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    ("check", "bench_check.py", "items 1 and 6: checks vs frictionless-py; the array check over 10,000 rows"),
    ("udfs", "bench_udfs.py", "the cell functions as Excel recalculates them: 10,000 rows in one call, one row"),
    ("workbook", "bench_workbook.py", "item 2 and issue 6: fastread vs openpyxl; 50,000-user workbook steps"),
    ("plan", "bench_plan.py", "diff and make_plan on 50,000 rows"),
    ("sandbox", "bench_sandbox.py", "the sandbox: seeding and listing 50,000 users"),
    ("sync", "bench_sync.py", "item 3: 5,000 changed users over 50 ms vs one PATCH per user"),
    ("export", "bench_export.py", "item 4: 50,000 users over 50 ms into a workbook vs pages of 100 + openpyxl"),
    ("roundtrip", "bench_roundtrip.py", "item 5: export, check, preview, sync of 1% on 50,000 users: time and memory"),
]


def main(argv: list[str] | None = None) -> int:
    """Run the scripts; the exit code is the number of scripts that missed a target or failed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", help="comma-separated names: " + ", ".join(name for name, _, _ in SCRIPTS))
    args = parser.parse_args(argv)
    chosen = set(args.only.split(",")) if args.only else {name for name, _, _ in SCRIPTS}
    print(f"{dt.date.today().isoformat()}, {os.cpu_count()} cores (nproc), python {sys.version.split()[0]}", flush=True)
    missed = 0
    for name, script, what in SCRIPTS:
        if name not in chosen:
            continue
        path = HERE / script
        print(f"\n== {script}: {what}", flush=True)
        if not path.exists():
            print("   (not there yet)", flush=True)
            missed += 1
            continue
        t = time.perf_counter()
        code = subprocess.call([sys.executable, str(path)], cwd=HERE.parent)
        print(f"== {script}: exit {code} after {time.perf_counter() - t:.0f} s", flush=True)
        missed += code != 0
    return missed


if __name__ == "__main__":
    sys.exit(main())
