"""Sync checkpoints: the workbook is not saved after every batch, yet a sync cut short keeps the log of what was sent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
from support.faultproxy import FaultProxy, Rule

from rosterbook import app
from rosterbook import workbook as wbk
from rosterbook.sandbox import Sandbox
from rosterbook.xlsxpatch import PatchBook
from sync_client.errors import ScimAuthError


class CountingBook(PatchBook):
    """A PatchBook (what the CLI's sync writes with) that counts its saves."""

    saves = 0

    def save(self) -> None:
        self.saves += 1
        super().save()


def _edit_titles(path: Path, rows: int) -> list[str]:
    """Give the first ``rows`` users a new job title, as a user would in Excel; return their usernames."""
    wb = openpyxl.load_workbook(path)
    ws = wb["Users"]
    cols = {str(c.value): c.column for c in ws[1] if c.value}
    keys = []
    for row in range(2, 2 + rows):
        ws.cell(row, cols["Job title"]).value = f"Checkpoint title {row}"
        keys.append(str(ws.cell(row, cols["Username"]).value))
    wb.save(path)
    return keys


def _logged_keys(path: Path) -> list[str]:
    return [str(r[2]) for r in openpyxl.load_workbook(path)[wbk.SYNC_LOG].iter_rows(min_row=2, values_only=True) if r[2]]


def test_small_batches_save_once_and_log_every_row(tmp_path: Path, fresh_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = fresh_sandbox(users=20, seed=4)
    path = tmp_path / "users.xlsx"
    app.export_workbook(path, platform=sandbox.url)
    keys = _edit_titles(path, 4)
    book = CountingBook(path)
    frozen = app.Checkpoints(clock=lambda: 0.0)  # no time passes: no checkpoint is ever due
    result = app.sync_workbook(book, batch=1, checkpoints=frozen)
    assert (result["sent"], result["confirmed"]) == (4, 4)
    assert book.saves == 1  # four batches within one checkpoint interval: one save, at the end
    assert sorted(_logged_keys(path)) == sorted(keys)
    assert app.preview_workbook(path).counts["update"] == 0  # the snapshot holds every confirmed row


def test_a_sync_cut_short_saves_the_batches_already_sent(tmp_path: Path, fresh_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = fresh_sandbox(users=20, seed=4)
    with FaultProxy(sandbox.url) as proxy:
        path = tmp_path / "users.xlsx"
        app.export_workbook(path, platform=proxy.url)
        keys = _edit_titles(path, 3)
        # The first PATCH goes through; then the platform starts refusing the token.
        proxy.add(Rule("status", method="PATCH", skip=1, times=None, status=401, retry_after=None))
        book = CountingBook(path)
        with pytest.raises(ScimAuthError):
            app.sync_workbook(book, batch=1)
    assert book.saves == 1
    assert _logged_keys(path) == keys[:1]


def test_a_slow_sync_saves_at_each_checkpoint(tmp_path: Path, fresh_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = fresh_sandbox(users=20, seed=4)
    path = tmp_path / "users.xlsx"
    app.export_workbook(path, platform=sandbox.url)
    keys = _edit_titles(path, 4)
    # Between batches 11 s pass (past the 10 s interval); saving itself takes no time.
    ticks = iter([0, 11, 11, 11, 22, 22, 22, 33, 33, 33])
    book = CountingBook(path)
    result = app.sync_workbook(book, batch=1, checkpoints=app.Checkpoints(clock=lambda: float(next(ticks))))
    assert (result["sent"], result["confirmed"]) == (4, 4)
    assert book.saves == 4  # after batches 1-3 (checkpoints), and at the end
    assert sorted(_logged_keys(path)) == sorted(keys)
