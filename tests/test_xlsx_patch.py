"""Patching: a command writing into an existing workbook (PatchBook) copies every part it does not change
byte for byte (the snapshot, the Lists, ...) and rewrites only what changed. Its output must equal what the
full openpyxl load and save give, read back with openpyxl and with calamine: values, formats, marks, notes,
the Users Table, drop-downs and conditional formats."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from rosterbook import app
from rosterbook import workbook as wbk
from rosterbook.core.table import SnapshotRow
from rosterbook.fastread import FastBook, _sheet_part
from rosterbook.sandbox import Sandbox
from rosterbook.xlsx import OpenpyxlBook
from rosterbook.xlsxpatch import PatchBook


def _full(path: Path) -> OpenpyxlBook:
    """The openpyxl path: every sheet loaded and saved by openpyxl."""
    return OpenpyxlBook(path, openpyxl.load_workbook(path))


def _dump(path: Path) -> dict[str, Any]:
    """Everything a reader sees in the file, sheet by sheet (openpyxl and calamine)."""
    wb = openpyxl.load_workbook(path)
    fast = FastBook(path)
    out: dict[str, Any] = {"sheets": [(ws.title, ws.sheet_state) for ws in wb.worksheets]}
    for ws in wb.worksheets:
        out[ws.title] = {
            "cells": sorted(
                # The colour without its alpha byte: openpyxl writes 00, Excel FF; both show the same colour.
                (c.coordinate, c.value, c.data_type, c.number_format, c.fill.fill_type, str(c.fill.fgColor.rgb)[-6:],
                 c.font.b, c.comment.text if c.comment else None)
                for row in ws.iter_rows() for c in row
            ),
            "columns": sorted((k, d.width, d.hidden, d.number_format) for k, d in ws.column_dimensions.items()),
            "freeze": ws.freeze_panes,
            "titles": ws.print_title_rows,
            "tables": sorted((t.displayName, t.ref, tuple(c.name for c in t.tableColumns)) for t in ws.tables.values()),
            "validations": sorted((dv.type, str(dv.sqref), dv.formula1, dv.showErrorMessage) for dv in ws.data_validations.dataValidation),
            "conditional": sorted((str(cf.sqref), tuple(tuple(x.formula or ()) for x in cf.rules)) for cf in ws.conditional_formatting),
            "calamine": fast.values(ws.title),
        }
    return out


def _part(path: Path, sheet: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        member = _sheet_part(archive, sheet)
        assert member is not None
        return archive.read(member)


@pytest.fixture
def pair(tmp_path: Path, sandbox: Sandbox) -> tuple[Path, Path, Path]:
    """An exported workbook edited as a user would (a bad email, a changed team), in three copies."""
    original = tmp_path / "original.xlsx"
    app.export_workbook(original, platform=sandbox.url)
    wb = openpyxl.load_workbook(original)
    ws = wb["Users"]
    cols = {str(c.value): c.column for c in ws[1] if c.value}
    ws.cell(2, cols["Email"]).value = "not an email"
    ws.cell(3, cols["Team"]).value = "=HYPERLINK(\"x\")"
    wb.save(original)
    fast, full = tmp_path / "fast.xlsx", tmp_path / "full.xlsx"
    shutil.copy(original, fast)
    shutil.copy(original, full)
    return original, fast, full


def test_check_copies_the_snapshot_and_writes_what_openpyxl_writes(pair: tuple[Path, Path, Path]) -> None:
    original, fast, full = pair
    book = PatchBook(fast)
    report = app.check_workbook(book)
    full_report = app.check_workbook(_full(full))
    assert report.problems == full_report.problems and any(p.severity == "error" for p in report.problems)
    with zipfile.ZipFile(fast) as archive:
        assert _sheet_part(archive, wbk.SNAPSHOT) not in book.last_saved_parts
        assert _sheet_part(archive, wbk.USERS) in book.last_saved_parts
    assert _dump(fast) == _dump(full)
    assert _part(fast, wbk.SNAPSHOT) == _part(original, wbk.SNAPSHOT)
    # The marks are there: the bad email's cell is filled and carries a note.
    ws = openpyxl.load_workbook(fast)["Users"]
    marked = [c for row in ws.iter_rows(min_row=2) for c in row if c.comment is not None]
    assert marked and all(c.fill.fill_type == "solid" for c in marked)


def test_preview_output_equals_the_openpyxl_path(pair: tuple[Path, Path, Path]) -> None:
    _, fast, full = pair
    plan = app.preview_workbook(PatchBook(fast))
    full_plan = app.preview_workbook(_full(full))
    assert plan.to_dict() == full_plan.to_dict()
    assert _dump(fast) == _dump(full)
    # Checking again reads the saved file back through both paths alike.
    assert app.check_workbook(fast, write=False).problems == app.check_workbook(full, write=False).problems


def test_writing_into_the_snapshot_and_the_log_rewrites_them(pair: tuple[Path, Path, Path]) -> None:
    _, fast, full = pair
    outcomes: list[Any] = []
    for path in (fast, full):
        book: Any = PatchBook(path) if path == fast else _full(path)
        snapshot = wbk.read_snapshot(book)
        rid, snap = next(iter(snapshot.items()))
        changed = {rid: SnapshotRow(rid, snap.key, snap.resource_id, "W/\"9\"", {**snap.values, "Team": "Moved"})}
        wbk.update_snapshot(book, changed)
        wbk.append_sync_log(book, [wbk.LogEntry("2026-01-01T00:00:00Z", 2, snap.key, "update", "ok", snap.resource_id, "W/\"9\"", 200)])
        book.save()
        outcomes.append(book)
    with zipfile.ZipFile(fast) as archive:
        assert {_sheet_part(archive, wbk.SNAPSHOT), _sheet_part(archive, wbk.SYNC_LOG)} <= outcomes[0].last_saved_parts
        assert _sheet_part(archive, wbk.USERS) not in outcomes[0].last_saved_parts
    assert _dump(fast) == _dump(full)
    assert wbk.read_snapshot(PatchBook(fast))[rid].values["Team"] == "Moved"


def test_formulas_read_as_their_text_and_survive_a_patch(pair: tuple[Path, Path, Path]) -> None:
    _, fast, _ = pair
    wb = openpyxl.load_workbook(fast)
    wb["Lists"]["Z1"] = "=1+1"
    wb.save(fast)
    lists = _part(fast, "Lists")
    book = PatchBook(fast)
    book.write_values(wbk.PREVIEW, 1, 1, [["x"]])
    assert book.values("Lists")[0][-1] == "=1+1"  # as openpyxl reads it: the formula's text, not its cached result
    assert book.values(wbk.SNAPSHOT) == FastBook(fast).values(wbk.SNAPSHOT)
    book.save()
    assert _part(fast, "Lists") == lists
    assert openpyxl.load_workbook(fast)["Lists"]["Z1"].value == "=1+1"
    assert PatchBook(fast).values(wbk.PREVIEW)[0][0] == "x"


def test_the_very_hidden_sheets_are_the_sessions() -> None:
    from rosterbook import session, xlsxpatch

    assert xlsxpatch.DIALECT_SHEET == session.DIALECT_SHEET
