"""Patching: a command writing into an existing workbook (PatchBook) copies every part it does not change
byte for byte (the snapshot, the Lists, ...) and rewrites only what changed. Its output must equal what the
full openpyxl load and save give, read back with openpyxl and with calamine: values, formats, marks, notes,
the Users Table, drop-downs and conditional formats."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from rosterbook import app
from rosterbook import workbook as wbk
from rosterbook.core.table import SnapshotRow
from rosterbook.errors import DataError
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


# --- the patch writer's own cases -------------------------------------------------------------------------


def _plain(path: Path, *, prefixed: bool = False) -> Path:
    """A small workbook of two plain sheets (no notes, no Preview or Sync log); ``prefixed``: its sheets written
    with an ``x:`` namespace prefix, as some generators do."""
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Data"
    ws.append(["Name", "Code", "Team"])
    ws.append(["Ann", "007", "Core"])
    ws.append(["Bo", "008", "Data"])
    ws["D5"] = "far"
    ws.merge_cells("A7:C7")
    ws["A7"] = "merged"
    wb.create_sheet("Other").append(["x", 1, True])
    wb.save(path)
    if prefixed:
        with zipfile.ZipFile(path) as archive:
            parts = {i.filename: archive.read(i.filename) for i in archive.infolist()}
        for name in [n for n in parts if n.startswith("xl/worksheets/sheet")]:
            xml = parts[name].decode()
            xml = xml.replace('<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"',
                              '<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"')
            xml = re.sub(r"<(/?)(?!x:)([A-Za-z]+)([\s>/])", r"<\1x:\2\3", xml).replace("</worksheet>", "</x:worksheet>")
            parts[name] = xml.encode()
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in parts.items():
                archive.writestr(name, data)
    return path


@pytest.mark.parametrize("prefixed", [False, True])
def test_writes_marks_and_new_sheets_on_a_plain_workbook(tmp_path: Path, prefixed: bool) -> None:
    path = _plain(tmp_path / "plain.xlsx", prefixed=prefixed)
    book = PatchBook(path)
    book.write_values("Data", 2, 2, [["=SUM(1)", 12], [None, 3.5]])
    book.write_values("Data", 9, 1, [["row nine", True]])
    book.mark("Data", {"A2": ("error", "A2 Name: wrong"), "C3": ("warning", "C3 Team: check\nthis"), "B7": ("error", "inside merged cells")})
    book.ensure_sheet(wbk.PREVIEW)
    book.write_values(wbk.PREVIEW, 1, 1, [["Preview"], [], ["create", 2]])
    book.ensure_sheet("_hidden_one", "veryHidden")
    book.write_values("_hidden_one", 1, 1, [["secret"]])
    book.hide_columns("Data", [2])
    book.save()
    assert support_problems(path) == []
    wb = openpyxl.load_workbook(path)
    ws = wb["Data"]
    assert (ws["B2"].value, ws["B2"].data_type, ws["C2"].value, ws["B3"].value, ws["C3"].value) == ("=SUM(1)", "s", 12, None, 3.5)
    assert (ws["A9"].value, ws["B9"].value, ws["D5"].value) == ("row nine", True, "far")
    assert ws["A2"].comment is not None and ws["A2"].comment.text == "A2 Name: wrong" and ws["A2"].fill.fgColor.rgb.endswith("FFC7CE")
    assert ws["C3"].comment is not None and ws["C3"].comment.text == "C3 Team: check\nthis" and ws["C3"].fill.fgColor.rgb.endswith("FFEB9C")
    assert ws["B7"].comment is None  # a merged range's other cells take no mark
    assert ws.column_dimensions["B"].hidden
    assert [(s.title, s.sheet_state) for s in wb.worksheets] == [("Data", "visible"), ("Other", "visible"), (wbk.PREVIEW, "visible"),
                                                                ("_hidden_one", "veryHidden")]
    assert FastBook(path).values(wbk.PREVIEW) == [["Preview", None], [None, None], ["create", 2]]
    assert FastBook(path).values("Other") == [["x", 1, True]]
    with pytest.raises(DataError, match=r"Data!B7 is inside merged cells"):
        PatchBook(path).write_values("Data", 7, 2, [["x"]])
    # Clearing the area of a merged range unmerges it; marks and notes go with the values.
    again = PatchBook(path)
    again.clear("Data", 2, 3)
    again.save()
    assert support_problems(path) == []
    ws = openpyxl.load_workbook(path)["Data"]
    assert not ws.merged_cells.ranges and ws["A2"].comment is None and ws["A2"].fill.fill_type is None
    assert FastBook(path).values("Data") == [["Name", "Code", "Team", None], [None, None, None, None], [None, None, None, None],
                                             [None, None, None, None], [None, None, None, "far"]]


def support_problems(path: Path) -> list[str]:
    from support.xlsxcheck import package_problems

    return package_problems(path)


def test_a_save_that_changes_nothing_leaves_the_file_alone(tmp_path: Path) -> None:
    path = _plain(tmp_path / "plain.xlsx")
    before = (path.stat().st_ino, path.read_bytes())
    book = PatchBook(path)
    book.write_values("Data", 2, 1, [["Ann", "007"]])  # what is there already
    book.ensure_sheet("Other")
    book.save()
    assert book.last_saved_parts == frozenset()
    assert (path.stat().st_ino, path.read_bytes()) == before


def test_overwriting_a_shared_formula_keeps_the_others_and_drops_the_calculation_chain(tmp_path: Path) -> None:
    path = _plain(tmp_path / "formulas.xlsx")
    with zipfile.ZipFile(path) as archive:
        parts = {i.filename: archive.read(i.filename) for i in archive.infolist()}
    sheet = parts["xl/worksheets/sheet2.xml"].decode()
    cells = ('<row r="2"><c r="A2"><v>1</v></c><c r="B2"><f t="shared" ref="B2:B4" si="0">A2*10</f><v>10</v></c></row>'
             '<row r="3"><c r="A3"><v>2</v></c><c r="B3"><f t="shared" si="0"/><v>20</v></c></row>'
             '<row r="4"><c r="A4"><v>3</v></c><c r="B4"><f t="shared" si="0"/><v>30</v></c></row>')
    sheet = re.sub(r'<dimension ref="[^"]*"/>', '<dimension ref="A1:C4"/>', sheet)
    parts["xl/worksheets/sheet2.xml"] = sheet.replace("</row></sheetData>", "</row>" + cells + "</sheetData>").encode()
    parts["xl/calcChain.xml"] = (b'<calcChain xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                                 b'<c r="B2" i="2"/><c r="B3"/><c r="B4"/></calcChain>')
    parts["xl/_rels/workbook.xml.rels"] = parts["xl/_rels/workbook.xml.rels"].replace(
        b"</Relationships>", b'<Relationship Id="rId99" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/calcChain" '
                             b'Target="/xl/calcChain.xml"/></Relationships>')
    parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(
        b"</Types>", b'<Override PartName="/xl/calcChain.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.calcChain+xml"/></Types>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    book = PatchBook(path)
    assert [row[1] for row in book.values("Other")[1:]] == ["=A2*10", "=A3*10", "=A4*10"]
    book.write_values("Other", 2, 2, [["=A2*10"]])  # the same text, as text: the formula goes
    book.save()
    assert support_problems(path) == []
    ws = openpyxl.load_workbook(path)["Other"]
    assert (ws["B2"].value, ws["B2"].data_type) == ("=A2*10", "s")
    assert (ws["B3"].value, ws["B4"].value) == ("=A3*10", "=A4*10")  # each keeps its own formula now
    with zipfile.ZipFile(path) as archive:
        assert "xl/calcChain.xml" not in archive.namelist()
        assert b"calcChain" not in archive.read("[Content_Types].xml") and b"calcChain" not in archive.read("xl/_rels/workbook.xml.rels")


def test_temporary_files_are_owner_only_and_a_killed_saves_leftovers_go(tmp_path: Path) -> None:
    import os
    import stat

    from rosterbook import safesave

    path = _plain(tmp_path / "book.xlsx")
    os.chmod(path, 0o644)
    seen: list[int] = []
    with safesave.atomic_write(path) as out:
        out.write(path.read_bytes())
        temps = [p for p in tmp_path.iterdir() if p.name.startswith(".~")]
        assert len(temps) == 1 and temps[0].name.startswith(".~book.xlsx.")
        seen.append(stat.S_IMODE(temps[0].stat().st_mode))
        # a save running in another process right now: its locked temporary file is left alone
        assert safesave.remove_leftovers(path) == []
    assert seen == [0o600]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # the workbook keeps its own mode
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".~")]
    # A save killed half-way (today's names and the older .~<stem><random>.xlsx) leaves these behind:
    leftovers = [tmp_path / ".~book.xlsx.k2j4h6g8.xlsx", tmp_path / ".~bookab12cd34.xlsx"]
    others = [tmp_path / ".~book2.xlsx.k2j4h6g8.xlsx", tmp_path / ".~other.xlsx.k2j4h6g8.xlsx"]
    for leftover in [*leftovers, *others]:
        leftover.write_bytes(b"user data")
    PatchBook(path)
    assert not any(p.exists() for p in leftovers) and all(p.exists() for p in others)
    book = PatchBook(path)
    book.write_values("Data", 2, 1, [["Changed"]])
    book.save()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".~")) == sorted(p.name for p in others)


def test_the_very_hidden_sheets_are_the_sessions() -> None:
    from rosterbook import session, xlsxpatch

    assert xlsxpatch.DIALECT_SHEET == session.DIALECT_SHEET


def test_rows_read_before_a_write_keep_what_they_held(tmp_path: Path) -> None:
    path = _plain(tmp_path / "plain.xlsx")
    book = PatchBook(path)
    before = book.values("Data")
    kept = [list(row) for row in before]
    book.write_values("Data", 2, 1, [["Changed", "009"]])
    book.clear("Data", 3)
    book.write_values("Data", 12, 6, [["grown"]])
    assert before == kept
    after = book.values("Data")
    assert after[1][:2] == ["Changed", "009"] and after[11][5] == "grown" and len(after[0]) == 6
    assert before[1][0] == "Ann" and after[2] == [None] * 6


def test_a_save_killed_half_way_leaves_a_temporary_file_the_next_run_removes(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    path = _plain(tmp_path / "book.xlsx")
    before = path.read_bytes()
    # A real process, killed while its save is writing (it holds the temporary file, half written).
    child = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from rosterbook.safesave import atomic_write\n"
        "with atomic_write(sys.argv[1]) as out:\n"
        "    out.write(b'PK half a workbook of user data'); out.flush()\n"
        "    print('writing', flush=True); time.sleep(60)\n"), str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "writing"
        leftover = [p for p in tmp_path.iterdir() if p.name.startswith(".~")]
        assert len(leftover) == 1 and (leftover[0].stat().st_mode & 0o777) == 0o600
        assert PatchBook(path) and leftover[0].exists()  # still being written: not touched
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    time.sleep(0.05)
    assert leftover[0].exists() and path.read_bytes() == before  # the workbook itself never half-written
    PatchBook(path)
    assert not leftover[0].exists()


def test_every_save_makes_the_layouts_hidden_sheets_very_hidden_again(tmp_path: Path) -> None:
    path = _plain(tmp_path / "plain.xlsx")
    wb = openpyxl.load_workbook(path)
    for name in (wbk.SNAPSHOT, "_dialect", wbk.FILE_FORMAT):
        wb.create_sheet(name).sheet_state = "hidden"  # what LibreOffice makes of very hidden sheets
    wb.active = 3  # the snapshot was the active sheet when the file was saved
    wb.save(path)
    book = PatchBook(path)
    book.write_values("Data", 2, 1, [["Changed"]])
    book.save()
    wb = openpyxl.load_workbook(path)
    assert [(ws.title, ws.sheet_state) for ws in wb.worksheets][2:] == [(wbk.SNAPSHOT, "veryHidden"), ("_dialect", "veryHidden"),
                                                                       (wbk.FILE_FORMAT, "veryHidden")]
    assert wb.active is not None and wb.active.sheet_state == "visible"
    assert support_problems(path) == []


def _streamed_edits(book: PatchBook, sheet: str) -> None:
    """What a sync does to the snapshot it streamed: rows rewritten (one with fewer cells than before), one cleared,
    one appended past the end, and the header cell of the digest."""
    book.write_values(sheet, 2, 1, [["Ann", "009", None]])  # the same name again, a new code, a cell cleared
    book.write_values(sheet, 3, 1, [[None, None, None]])
    book.write_values(sheet, 9, 1, [["Cy", "010", "New"]])
    book.write_values(sheet, 1, 5, [["digest"]])


@pytest.mark.parametrize("prefetched", [False, True])
def test_a_streamed_sheet_takes_writes_without_being_read_whole(tmp_path: Path, prefetched: bool) -> None:
    """PatchBook.iter_values streams a sheet; writes into it then keep only what they write (the snapshot's 50,000
    entries are never held), and the file, the values read back before and after the save, and what openpyxl and
    calamine see are those of the same writes into the sheet read whole."""
    streamed, whole = _plain(tmp_path / "streamed.xlsx"), tmp_path / "whole.xlsx"
    shutil.copy(streamed, whole)
    reference = PatchBook(whole)
    reference.values("Data")
    _streamed_edits(reference, "Data")
    book = PatchBook(streamed)
    if prefetched:
        book.prefetch("Other", formulas=("Data",))
    rows = list(book.iter_values("Data"))
    assert [r[:3] for r in rows[:3]] == [["Name", "Code", "Team"], ["Ann", "007", "Core"], ["Bo", "008", "Data"]]
    _streamed_edits(book, "Data")
    assert book._sheets["Data"].sparse  # the sheet was never read whole
    assert len(book._sheets["Data"].grid or []) <= 9
    book.save()
    reference.save()
    assert _dump(streamed) == _dump(whole)
    assert support_problems(streamed) == []
    assert PatchBook(streamed).values("Data") == PatchBook(whole).values("Data")
    # Reading it whole after streamed writes, before the save, gives the file with the writes on top.
    again, read_whole = PatchBook(streamed), PatchBook(whole)
    list(again.iter_values("Data"))
    read_whole.values("Data")
    for target in (again, read_whole):
        target.write_values("Data", 4, 2, [["written"]])
        target.write_values("Data", 2, 1, [[None]])
    assert again._sheets["Data"].sparse
    assert again.values("Data") == read_whole.values("Data")
    assert again.values("Data")[3][1] == "written" and again.values("Data")[1][0] is None
    assert not again._sheets["Data"].sparse


def test_a_streamed_sheet_with_formulas_or_merged_cells_is_written_as_a_sheet_read_whole(tmp_path: Path) -> None:
    """A formula in a streamed sheet: writes read the sheet whole first (a formula's cells must be taken apart), so
    the file is the one the usual path writes; a write into merged cells is refused as it is there."""
    path = _plain(tmp_path / "formulas.xlsx")
    wb = openpyxl.load_workbook(path)
    wb["Data"]["E2"] = "=B2&B3"
    wb.save(path)
    whole = tmp_path / "whole.xlsx"
    shutil.copy(path, whole)
    book = PatchBook(path)
    list(book.iter_values("Data"))
    book.write_values("Data", 2, 5, [["text now"]])
    assert not book._sheets["Data"].sparse and book._sheets["Data"].grid is not None
    book.save()
    reference = PatchBook(whole)
    reference.write_values("Data", 2, 5, [["text now"]])
    reference.save()
    assert _dump(path) == _dump(whole)
    merged = PatchBook(_plain(tmp_path / "merged.xlsx"))
    list(merged.iter_values("Data"))
    with pytest.raises(DataError, match="inside merged cells"):
        merged.write_values("Data", 7, 2, [["x"]])


def test_a_prefetch_finds_formulas_of_the_sheets_it_is_given(tmp_path: Path) -> None:
    """The prefetching thread answers has_formulas for the sheets named (a writing step asks it next), with the answer
    a scan in turn gives."""
    path = _plain(tmp_path / "formulas.xlsx")
    wb = openpyxl.load_workbook(path)
    wb["Other"]["B2"] = "=1+1"
    wb.save(path)
    book = FastBook(path)
    book.prefetch("Data", formulas=("Data", "Other", "No such sheet"))
    book.values("Data")  # waits for the parse only: the thread scans on
    assert (book.has_formulas("Data"), book.has_formulas("Other")) == (False, True)  # waits for its scan
    threads = list(book._threads)
    book.close()  # waits for the thread: its reader holds the file too
    assert threads and not any(thread.is_alive() for thread in threads)
    assert book._formulas == {"Data": False, "Other": True}
    plain = FastBook(path)
    assert (plain.has_formulas("Data"), plain.has_formulas("Other")) == (False, True)


def _big_sheet(path: Path, rows: int) -> Path:
    """A workbook whose one sheet spans several of the writer's 1 MB buffers: rows 2.. with gaps every 7th row."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    ws.append(["Name", "Note", "Code"])
    for n in range(2, rows + 2):
        if n % 7:
            ws.cell(n, 1, f"user {n}")
            ws.cell(n, 2, f"{n} " + "x" * 400)
            ws.cell(n, 3, f"{n:06d}")
    wb.save(path)
    return path


def _rewrite_sheet_xml(path: Path, edit: Any) -> None:
    """Replace the Data sheet's XML by ``edit(xml)`` (every other part copied as it is)."""
    part = _sheet_part(zipfile.ZipFile(path), "Data")
    assert part is not None
    with zipfile.ZipFile(path) as old:
        members = {info.filename: old.read(info) for info in old.infolist()}
    members[part] = edit(members[part])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
        for name, data in members.items():
            new.writestr(name, data)


def _data_xml(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(_sheet_part(archive, "Data") or "")


def _row_tags(path: Path) -> dict[int, int]:
    """Row number -> how many row elements the Data sheet's XML has with it (a row without its r counts as the one
    after the row before it)."""
    xml = _data_xml(path)
    counts: dict[int, int] = {}
    last = 0
    for tag in re.finditer(rb"<row\b[^>]*>", xml):
        found = re.search(rb'\sr="(\d+)"', tag.group())
        last = int(found.group(1)) if found else last + 1
        counts[last] = counts.get(last, 0) + 1
    return counts


def _wide_edits(book: PatchBook) -> dict[tuple[int, int], str]:
    """Writes spread over the sheet: rows that exist, rows in its gaps, and rows after its end."""
    written: dict[tuple[int, int], str] = {}
    for row in (2, 3, 700, 1400, 1401, 2100, 4444, 6001, 6003, 7500):
        book.write_values("Data", row, 2, [[f"written {row}"]])
        written[(row, 2)] = f"written {row}"
    return written


@pytest.mark.parametrize("variant", ["as written", "r not first", "some rows without r", "rows out of order"])
def test_rows_passed_over_a_buffer_at_a_time_are_the_rows_read_one_by_one(tmp_path: Path, variant: str) -> None:
    """The writer passes over untouched rows a buffer at a time where every row has its number and the numbers rise;
    otherwise it goes row by row. Either way the file holds every write where it belongs and every other cell as it
    was, as openpyxl and calamine read it, and matches a sheet read whole and written row by row."""
    path = _big_sheet(tmp_path / "big.xlsx", 7000)

    def edit(xml: bytes) -> bytes:
        if variant == "r not first":
            return re.sub(rb'<row r="(\d+)"', rb'<row spans="1:3" r="\1"', xml)
        if variant == "some rows without r":  # a row's number is then the one after the row before it
            return re.sub(rb'<row r="(\d*[05])"', b"<row", xml)
        if variant == "rows out of order":  # rows 4443 and 4444 (written) swapped: not allowed, but read as written
            first = re.search(rb'<row r="4443".*?</row>', xml)
            second = re.search(rb'<row r="4444".*?</row>', xml)
            assert first is not None and second is not None and first.end() == second.start()
            return xml[: first.start()] + second.group() + first.group() + xml[second.end() :]
        return xml

    _rewrite_sheet_xml(path, edit)
    assert len(_data_xml(path)) > 3 << 20
    rows_before = _row_tags(path)
    before = FastBook(path).values("Data")
    whole = tmp_path / "whole.xlsx"
    shutil.copy(path, whole)
    book = PatchBook(path)
    list(book.iter_values("Data"))  # streamed: the sparse writes go through the row scan
    written = _wide_edits(book)
    book.save()
    reference = PatchBook(whole)
    reference.values("Data")
    _wide_edits(reference)
    reference.save()
    after = FastBook(path).values("Data")
    assert after == FastBook(whole).values("Data")
    # Each row once: a written row passed over as it was and then added again would read as written, twice over.
    new_rows = {r for r, _ in written if r > len(before) or all(v is None for v in before[r - 1])}
    assert _row_tags(path) == _row_tags(whole) == {**rows_before, **dict.fromkeys(new_rows, 1)}
    for r, cells in enumerate(after, start=1):
        for c, value in enumerate(cells, start=1):
            old = before[r - 1][c - 1] if r <= len(before) and c <= len(before[r - 1]) else None
            assert value == written.get((r, c), old), (r, c)
    ws = openpyxl.load_workbook(path)["Data"]
    assert {cell: ws.cell(*cell).value for cell in written} == written
    assert ws.cell(699, 3).value == before[698][2] and ws.max_row == 7500
