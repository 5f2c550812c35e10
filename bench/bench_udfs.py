"""How fast are the Excel cell functions? Against frictionless-py validating the same rows, in the same run.

The functions now check as the Check button does (``rosterbook.cellcheck``: the workbook's own
dialect, its known platform values, row ids, header problems), so they cost more than the bare
``check_matrix`` they used to call; this measures what a recalculation costs on the Python side:

1. ``=ROSTERBOOK_CHECK_TABLE(Users[[#All],[First Name]:[_row_id]])`` over a 10,000-row Progression
   workbook exported from CSV (the Check column's one formula), warm (rules kept) and cold (first
   call: Settings, Lists and the snapshot read). Target (item 6): well under 0.3 s warm.
2. One ``=ROSTERBOOK_CHECK(A2:G2)`` (a formula per row), warm.

The workbook is read through an adapter with the reads XlwingsBook offers (``rows``, ``extent``), over
grids in memory: Excel's own cost (COM calls) is not here. Peer: frictionless-py validating the same
10,000 rows in memory against an equivalent Table Schema (as bench_check.py does for ``check_matrix``).

Run: ``.venv/bin/python bench/bench_udfs.py`` (frictionless is in the ``bench`` extra).
"""

from __future__ import annotations

import csv
import gc
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_check import HEADERS, SCHEMA, make_rows

from addin import udfs
from addin.sheet import CallerContext
from rosterbook import app, cellcheck
from rosterbook import workbook as wbk
from rosterbook.xlsx import OpenpyxlBook

ROWS = 10_000


class ExcelLikeBook(cellcheck.GridBook):
    """The workbook's sheets in memory, read as XlwingsBook reads them: whole rows, and a sheet's extent."""

    def __init__(self, grids: dict[str, list[list[Any]]]) -> None:
        super().__init__(grids)
        self.path = "bench.xlsx"

    def rows(self, sheet: str, first_row: int, last_row: int) -> list[list[Any]]:
        return [list(r) for r in self.grids[sheet][first_row - 1 : last_row]]

    def extent(self, sheet: str) -> tuple[int, int]:
        grid = self.grids[sheet]
        return (len(grid), max((len(r) for r in grid), default=0))


def best_of(n: int, run: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(n):
        gc.collect()
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> int:
    """Print one line per figure, with its ratio against frictionless-py on the same rows."""
    warnings.simplefilter("ignore")
    rows = make_rows(ROWS, seed=11)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "progression.csv"
        with source.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\r\n")
            writer.writerow(HEADERS)
            writer.writerows(rows)
        path = Path(tmp) / "progression.xlsx"
        app.export_workbook(path, from_csv=source, dialect="progression", force=True)
        saved = OpenpyxlBook(path)
        book = ExcelLikeBook({name: saved.values(name) for name in saved.sheet_names()})
    grid = book.grids[wbk.USERS]
    width = [str(h) for h in grid[0]].index(wbk.ROW_ID) + 1
    table = [(list(r) + [None] * width)[:width] for r in grid]
    context = CallerContext(book, "Check", 2)
    place = f"1,1,{len(table)},{width},{wbk.USERS}"

    def cold() -> Any:
        cellcheck.forget()
        return udfs.ROSTERBOOK_CHECK_TABLE(table, None, context, place)

    first, _ = best_of(3, cold)
    warm, result = best_of(5, lambda: udfs.ROSTERBOOK_CHECK_TABLE(table, None, context, place))
    flagged = sum(1 for r in result if r[0] not in ("OK", ""))
    data = len(HEADERS)

    def one_row() -> Any:
        return udfs.ROSTERBOOK_CHECK(table[500][:data], None, None, CallerContext(book, "Check", 501), f"501,1,1,{data},{wbk.USERS}")

    row, _ = best_of(50, one_row)
    from frictionless import Resource, Schema

    peer, _ = best_of(1, lambda: Resource(data=[HEADERS, *rows], schema=Schema.from_descriptor(SCHEMA)).validate(limit_errors=1_000_000))
    print(f"ROSTERBOOK_CHECK_TABLE {ROWS:,} rows: {warm:.3f} s warm, {first:.3f} s cold ({flagged} rows flagged; target < 0.3 s: {'met' if warm < 0.3 else 'NOT met'})")
    print(f"ROSTERBOOK_CHECK_TABLE ratio: {peer / warm:.1f}x faster than frictionless-py on the same {ROWS:,} rows in memory ({peer:.3f} s)")
    print(f"ROSTERBOOK_CHECK one row: {row * 1000:.2f} ms warm ({ROWS:,} such formulas: {row * ROWS:.1f} s; the Check column's one table formula: {warm:.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
