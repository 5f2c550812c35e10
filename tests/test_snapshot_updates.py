"""A sync of a few users in a large workbook copies the snapshot as it is and writes the entries it changed to the
very hidden ``_snapshot_updates`` sheet; the snapshot is written whole again (updates merged) once they pass a tenth
of it. Whatever path the entries took, reading gives the same snapshot; an updates sheet edited, cut short,
re-ordered or meant for another snapshot is caught like an edited snapshot; an older rosterbook refuses the format."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.books import as_format_2, edit, platform_users, sheet_rows
from support.fakexl import from_openpyxl
from support.ribbonui import RecordingUI

from addin import ribbon
from addin.sheet import XlwingsBook
from rosterbook import app
from rosterbook import workbook as wbk
from rosterbook.core.dialects import load_dialect
from rosterbook.core.table import SnapshotRow
from rosterbook.errors import DataError
from rosterbook.fastread import FastBook, _sheet_part
from rosterbook.undo import undo_sync
from rosterbook.xlsx import OpenpyxlBook, build_template
from rosterbook.xlsxpatch import PatchBook

PROGRESSION = load_dialect("progression")
BASE = 40
"""Entries in the test snapshot: the thresholds are lowered to match (``_small_thresholds``)."""


@pytest.fixture(autouse=True)
def _small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    # A 40-entry snapshot behaves as a 2,000-entry one does: updates up to 4 entries, then a whole rewrite.
    monkeypatch.setattr(wbk, "UPDATES_FROM", BASE)


def _entry(number: int, version: int = 1, team: str = "Core") -> SnapshotRow:
    email = f"user{number}@example.com"
    return SnapshotRow(f"r{number}", email, f"id-{number}", f'W/"{version}"', {"Email": email, "Team": team, "First name": f"Ann {number}"})


def _book(tmp_path: Path, entries: int = BASE, name: str = "book.xlsx") -> Path:
    book = build_template(tmp_path / name, PROGRESSION)
    wbk.write_snapshot(book, [_entry(n) for n in range(1, entries + 1)])
    book.save()
    return book.path


def _part_bytes(path: Path, sheet: str) -> bytes:
    """A sheet's part as stored in the zip (compressed): equal bytes mean the part was copied, not rewritten."""
    with zipfile.ZipFile(path) as archive:
        member = _sheet_part(archive, sheet)
        assert member is not None
        info = archive.getinfo(member)
        with open(path, "rb") as raw:
            raw.seek(info.header_offset + 26)
            name_len, extra_len = int.from_bytes(raw.read(2), "little"), int.from_bytes(raw.read(2), "little")
            raw.seek(info.header_offset + 30 + name_len + extra_len)
            return raw.read(info.compress_size)


def _expected(changes: list[tuple[dict[str, SnapshotRow], list[str]]]) -> dict[str, SnapshotRow]:
    rows = {f"r{n}": _entry(n) for n in range(1, BASE + 1)}
    for changed, removed in changes:
        for rid in removed:
            if rid not in changed:
                rows.pop(rid, None)
        rows.update(changed)
    return rows


def test_a_few_changes_go_to_the_updates_sheet_and_the_snapshot_part_is_copied(tmp_path: Path) -> None:
    path = _book(tmp_path)
    before = _part_bytes(path, wbk.SNAPSHOT)
    book = PatchBook(path)
    sheet = wbk.read_snapshot_sheet(book)
    base_digest = sheet.digest
    changed = {"r2": _entry(2, 2, "Sales"), "r99": _entry(99)}
    wbk.update_snapshot(book, changed, ["r3"], sheet=sheet)
    book.save()
    assert _part_bytes(path, wbk.SNAPSHOT) == before  # not even re-compressed
    with zipfile.ZipFile(path) as archive:
        assert _sheet_part(archive, wbk.SNAPSHOT) not in book.last_saved_parts
    # Read back by both readers, and by openpyxl as raw cells: three lines, the removal a null entry.
    expected = _expected([(changed, ["r3"])])
    for reader in (FastBook, OpenpyxlBook, PatchBook):
        again = wbk.read_snapshot_sheet(reader(path))
        assert again.rows == expected and list(again.rows) == list(expected)
        assert again.digest == sheet.digest != base_digest and again.base_digest == base_digest
    wb = openpyxl.load_workbook(path)
    assert wb[wbk.SNAPSHOT_UPDATES].sheet_state == "veryHidden"
    lines = [row for row in wb[wbk.SNAPSHOT_UPDATES].iter_rows(min_row=2, values_only=True)]
    assert [(line[0], line[2] == "null") for line in lines] == [("r3", True), ("r2", False), ("r99", False)]
    assert [row[0] for row in wb[wbk.SNAPSHOT].iter_rows(min_row=2, values_only=True)] == [f"r{n}" for n in range(1, BASE + 1)]


def test_the_updates_grow_then_the_snapshot_is_written_whole_with_them_merged(tmp_path: Path) -> None:
    path = _book(tmp_path)
    steps = [({"r1": _entry(1, 2)}, []), ({"r1": _entry(1, 3), "r50": _entry(50)}, ["r4"]), ({}, ["r50"]),  # 2 lines: r1, r4
             ({"r5": _entry(5, 2), "r6": _entry(6, 2)}, []),  # 4 lines: still a tenth
             ({"r7": _entry(7, 2)}, [])]  # 5 lines: past a tenth, the snapshot written whole
    shapes = []
    for number, (changed, removed) in enumerate(steps, start=1):
        book = PatchBook(path)
        wbk.update_snapshot(book, changed, removed)
        book.save()
        sheet = wbk.read_snapshot_sheet(FastBook(path))
        assert sheet.rows == _expected(steps[:number])
        shapes.append((len(sheet.updates), len(sheet.checks)))
    assert shapes == [(1, 40), (3, 40), (2, 40), (4, 40), (0, 39)]  # r50 came and went; r4 is gone when merged
    assert FastBook(path).values(wbk.SNAPSHOT_UPDATES) == []  # cleared when merged
    assert wbk.read_snapshot_sheet(FastBook(path)).format == wbk.SNAPSHOT_FORMAT


def test_a_small_snapshot_is_rewritten_in_place_without_updates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wbk, "UPDATES_FROM", 2000)  # the shipped threshold: 40 entries are rewritten in a moment
    path = _book(tmp_path)
    book = PatchBook(path)
    wbk.update_snapshot(book, {"r2": _entry(2, 2)})
    book.save()
    assert wbk.SNAPSHOT_UPDATES not in FastBook(path).sheet_names()
    assert wbk.read_snapshot(FastBook(path)) == _expected([({"r2": _entry(2, 2)}, [])])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.dictionaries(st.integers(1, 48), st.integers(2, 9), max_size=3), st.lists(st.integers(1, 48), max_size=2)),
                min_size=1, max_size=6))
def test_any_sequence_of_updates_reads_back_as_applied_in_place(tmp_path_factory: pytest.TempPathFactory, steps: list[Any]) -> None:
    folder = tmp_path_factory.mktemp("seq")
    path = _book(folder)
    changes = [({f"r{n}": _entry(n, v, f"Team {v}") for n, v in changed.items()}, [f"r{n}" for n in removed]) for changed, removed in steps]
    for changed, removed in changes:
        book = PatchBook(path)
        wbk.update_snapshot(book, changed, removed)
        book.save()
    sheet = wbk.read_snapshot_sheet(FastBook(path))
    expected = _expected(changes)
    assert sheet.rows == expected
    assert len(sheet.updates) * wbk.UPDATES_SHARE <= len(sheet.checks)


def _with_updates(tmp_path: Path) -> Path:
    path = _book(tmp_path)
    book = PatchBook(path)
    wbk.update_snapshot(book, {"r2": _entry(2, 2), "r3": _entry(3, 2)}, ["r4"])
    book.save()
    return path


def _edit_updates(path: Path, edit: Any) -> None:
    wb = openpyxl.load_workbook(path)
    edit(wb[wbk.SNAPSHOT_UPDATES])
    wb.save(path)


@pytest.mark.parametrize(("edit", "found"), [
    (lambda ws: setattr(ws["C3"], "value", ws["C3"].value.replace("W/", "X/")), "1 update does not match its check (_snapshot_updates!A3)"),
    (lambda ws: ws.delete_rows(3), "are not the ones rosterbook wrote there"),
    (lambda ws: ws.move_range("A2:C3", rows=2), "are not the ones rosterbook wrote there"),
    (lambda ws: setattr(ws["A1"], "value", "id"), "the header of '_snapshot_updates' was changed"),
])
def test_an_edited_updates_sheet_is_refused_like_an_edited_snapshot(tmp_path: Path, edit: Any, found: str) -> None:
    path = _with_updates(tmp_path)
    _edit_updates(path, edit)
    with pytest.raises(wbk.SnapshotDamaged, match="nothing was sent") as caught:
        wbk.read_snapshot_sheet(FastBook(path))
    assert found in str(caught.value)
    lenient = wbk.read_snapshot_sheet(FastBook(path), lenient=True)
    assert lenient.problem is not None and found in lenient.problem and lenient.stale


def test_read_leniently_a_damaged_update_leaves_its_user_out(tmp_path: Path) -> None:
    path = _with_updates(tmp_path)
    _edit_updates(path, lambda ws: setattr(ws["C3"], "value", ws["C3"].value.replace("W/", "X/")))  # r2's line
    sheet = wbk.read_snapshot_sheet(FastBook(path), lenient=True)
    assert "r2" not in sheet.rows  # not the snapshot's older entry either
    assert sheet.rows["r3"] == _entry(3, 2) and "r4" not in sheet.rows
    # The next write puts the snapshot whole, without the damaged line, and clears the updates.
    book = PatchBook(path)
    wbk.update_snapshot(book, {"r5": _entry(5, 2)}, sheet=sheet)
    book.save()
    again = wbk.read_snapshot_sheet(FastBook(path))
    assert not again.updates and "r2" not in again.rows and again.rows["r5"] == _entry(5, 2)


def _put_back_old_updates(path: Path, fresh: list[SnapshotRow], *, header: str | None = None) -> None:
    """What an older rosterbook's export leaves: a fresh snapshot (format 2 when ``header`` says so), the updates sheet
    of the snapshot before it."""
    old_lines = [[c.value for c in row] for row in openpyxl.load_workbook(path)[wbk.SNAPSHOT_UPDATES].iter_rows()]
    book = OpenpyxlBook(path)
    wbk.write_snapshot(book, fresh)  # (this one clears the updates sheet: its old lines go back below)
    for number, line in enumerate(old_lines, start=1):
        for column, value in enumerate(line, start=1):
            book.wb[wbk.SNAPSHOT_UPDATES].cell(number, column).value = value
    if header is not None:
        as_format_2(book.wb[wbk.SNAPSHOT])
    book.save()


@pytest.mark.parametrize("header", [None, "rosterbook-snapshot-2"])
def test_updates_meant_for_another_snapshot_are_never_applied(tmp_path: Path, header: str | None) -> None:
    path = _with_updates(tmp_path)
    fresh = [_entry(n, 7) for n in range(1, BASE + 1)]
    _put_back_old_updates(path, fresh, header=header)
    sheet = wbk.read_snapshot_sheet(FastBook(path))
    assert sheet.problem is None and not sheet.updates and list(sheet.rows.values()) == fresh
    assert sheet.format == (header or wbk.SNAPSHOT_FORMAT) and sheet.stale == (header is None)
    # The next write leaves them out for good.
    book = PatchBook(path)
    wbk.update_snapshot(book, {"r1": _entry(1, 8)}, sheet=sheet)
    book.save()
    again = wbk.read_snapshot_sheet(FastBook(path))
    assert list(again.rows.values()) == [_entry(1, 8), *fresh[1:]] and not again.updates


def test_a_format_2_snapshot_is_read_and_updated_in_place(tmp_path: Path) -> None:
    path = _book(tmp_path)
    wb = openpyxl.load_workbook(path)
    as_format_2(wb[wbk.SNAPSHOT])  # as rosterbook wrote it before the updates sheet
    wb.save(path)
    book = PatchBook(path)
    wbk.update_snapshot(book, {"r2": _entry(2, 2)})
    book.save()
    sheet = wbk.read_snapshot_sheet(FastBook(path))
    assert sheet.format == "rosterbook-snapshot-2" and sheet.rows == _expected([({"r2": _entry(2, 2)}, [])])
    assert wbk.SNAPSHOT_UPDATES not in FastBook(path).sheet_names()


def test_a_newer_format_is_refused_by_name(tmp_path: Path) -> None:
    path = _book(tmp_path)
    wb = openpyxl.load_workbook(path)
    wb[wbk.SNAPSHOT]["D1"] = "rosterbook-snapshot-4"
    wb.save(path)
    with pytest.raises(DataError, match=r"_snapshot!D1: the export snapshot was written by a newer rosterbook \(rosterbook-snapshot-4;"):
        wbk.read_snapshot_sheet(FastBook(path))


def test_syncs_undo_and_export_through_the_updates_sheet_on_the_sandbox(fresh_sandbox: Any, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wbk, "UPDATES_FROM", 10)  # 24 users: up to 2 updates, then the snapshot written whole
    monkeypatch.delenv("ROSTERBOOK_TOKEN", raising=False)
    sandbox = fresh_sandbox(users=24, seed=11)
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    exported = _part_bytes(book, wbk.SNAPSHOT)
    rows = sheet_rows(book)
    first, second, third = sorted(n for n, r in rows.items() if r["Status"] == "Active")[:3]
    was = {n: rows[n]["Job title"] for n in (first, second, third)}

    edit(book, {(first, "Job title"): "Title one", (second, "Job title"): "Title two"})
    assert app.sync_workbook(book).ok
    assert _part_bytes(book, wbk.SNAPSHOT) == exported  # the sync wrote its two entries beside it
    sheet = wbk.read_snapshot_sheet(FastBook(book))
    assert sorted(s.key for s in sheet.updates.values() if s) == sorted([first, second])
    assert app.preview_workbook(book).sendable() == []  # the updated entries are what the platform holds
    users = platform_users(sandbox.url)
    assert (users[first]["title"], users[second]["title"]) == ("Title one", "Title two")

    edit(book, {(third, "Job title"): "Title three"})
    synced = app.sync_workbook(book)
    assert synced.ok and _part_bytes(book, wbk.SNAPSHOT) != exported  # three updates: written whole, merged
    assert not wbk.read_snapshot_sheet(FastBook(book)).updates
    assert app.preview_workbook(book).sendable() == []

    assert undo_sync(book).ok  # the last sync: the third title goes back, through an update again
    users = platform_users(sandbox.url)
    assert (users[first]["title"], users[third]["title"]) == ("Title one", was[third])
    assert [s.key for s in wbk.read_snapshot_sheet(FastBook(book)).updates.values() if s] == [third]
    assert app.preview_workbook(book).sendable() == []

    edit(book, {(second, "Department"): "Kept edit"})
    app.export_workbook(book, keep_edits=True)  # a fresh snapshot: no updates, the unsynced edit kept
    assert not wbk.read_snapshot_sheet(FastBook(book)).updates
    assert [c["key"] for c in app.preview_workbook(book).to_dict()["changes"] if c["action"] == "update"] == [second]


def test_libreoffice_keeps_the_updates_and_the_next_write_hides_them_again(tmp_path: Path) -> None:
    soffice = shutil.which("soffice")
    if soffice is None:
        if os.environ.get("CI"):
            pytest.fail("LibreOffice (soffice) is missing on CI: .ci/run installs libreoffice-calc-nogui")
        pytest.skip("LibreOffice (soffice) is not installed; apt-get install -y libreoffice-calc-nogui")
    path = _with_updates(tmp_path)
    expected = wbk.read_snapshot_sheet(FastBook(path))
    subprocess.run([soffice, f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}", "--headless", "--convert-to", "xlsx:Calc MS Excel 2007 XML",
                    "--outdir", str(tmp_path / "lo"), str(path)], check=True, capture_output=True, timeout=120)
    saved = tmp_path / "lo" / path.name
    states = {ws.title: ws.sheet_state for ws in openpyxl.load_workbook(saved).worksheets}
    assert states[wbk.SNAPSHOT_UPDATES] != "visible"  # LibreOffice keeps it hidden, if not very hidden
    again = wbk.read_snapshot_sheet(FastBook(saved))
    assert (again.rows, again.updates, again.digest) == (expected.rows, expected.updates, expected.digest)
    book = PatchBook(saved)
    book.write_values(wbk.PREVIEW, 1, 1, [["a later preview"]])
    book.save()
    assert openpyxl.load_workbook(saved)[wbk.SNAPSHOT_UPDATES].sheet_state == "veryHidden"
    assert wbk.read_snapshot_sheet(FastBook(saved)).rows == expected.rows


def test_the_ribbon_in_excel_syncs_through_the_updates_sheet(fresh_sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wbk, "UPDATES_FROM", 10)
    monkeypatch.setenv("ROSTERBOOK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ROSTERBOOK_TOKEN", raising=False)
    sandbox = fresh_sandbox(users=24, seed=12)
    path = tmp_path / "book.xlsx"
    app.export_workbook(path, platform=sandbox.url)
    ribbon.remember_platform(sandbox.url)
    fake = from_openpyxl(path, fullname=str(path))  # the workbook open in Excel
    users = fake.sheets["Users"]
    header = {value: column for (row, column), value in users.values.items() if row == 1}
    name = users.values[(2, header["Username"])]
    users.values[(2, header["Job title"])] = "Excel title"
    snapshot = dict(fake.sheets[wbk.SNAPSHOT].values)
    outcome = ribbon.dispatch("sync", XlwingsBook(fake), RecordingUI(answers=[True]))
    assert outcome.ok, outcome.message
    assert platform_users(sandbox.url)[name]["title"] == "Excel title"
    assert fake.sheets[wbk.SNAPSHOT].values == snapshot  # Excel's snapshot sheet untouched: one line beside it
    assert fake.sheets[wbk.SNAPSHOT_UPDATES].visibility == 2  # very hidden
    assert [s.key for s in wbk.read_snapshot_sheet(XlwingsBook(fake)).updates.values() if s] == [name]
    assert app.preview_workbook(XlwingsBook(fake)).sendable() == []
