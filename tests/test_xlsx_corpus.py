"""The patch writer against a corpus of real workbooks: a fresh export, the template, files saved by
LibreOffice, and a workbook a user made their own (added sheets, a chart, formulas, a calculation
chain, defined names, their own notes, merged cells and a protected sheet elsewhere, a row typed
below the Table).

Each is put through what the writing steps do (check, a preview, a sync's log and snapshot) once with
PatchBook and once with openpyxl loading and saving the whole file (the reference). The patched file:

- holds exactly the reference's values (read with calamine) and marks (fills, notes; read with openpyxl);
- has every part rosterbook did not touch byte for byte as it was, and touches only the parts it must;
- passes the package checks Excel makes on opening (``support.xlsxcheck``);
- opens and saves in LibreOffice headless with the same values and notes;
- has the layout's protections back, whoever saved it last (issue 19): very hidden snapshot,
  drop-downs over whole columns, frozen header, Table style and range.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.chart import BarChart, Reference
from openpyxl.comments import Comment
from openpyxl.workbook.defined_name import DefinedName
from support.libreoffice import resave
from support.xlsxcheck import package_problems

from rosterbook import app
from rosterbook import workbook as wbk
from rosterbook.core.table import SnapshotRow
from rosterbook.fastread import FastBook, _sheet_part
from rosterbook.sandbox import Sandbox
from rosterbook.xlsx import OpenpyxlBook
from rosterbook.xlsxpatch import PatchBook

TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "UserTemplate.xlsx"
LAYOUT_SHEETS = (wbk.USERS, wbk.PREVIEW, wbk.SYNC_LOG, wbk.SNAPSHOT, wbk.SNAPSHOT_UPDATES)


def _user_made_it_their_own(source: Path, target: Path) -> None:
    """What a user does to an exported workbook in Excel: sheets of their own, a chart, formulas, names, notes."""
    wb = openpyxl.load_workbook(source)
    users = wb[wbk.USERS]
    cols = {str(c.value): c.column for c in users[1] if c.value}
    users.cell(3, cols["First name"]).comment = Comment("Check the spelling with HR", "Ann")
    below = users.max_row + 1
    # Typed just below the Table: Excel would grow the Table, LibreOffice and openpyxl do not.
    users.cell(below, cols["Username"]).value = "typed.below@example.org"
    users.cell(below, cols["Email"]).value = "typed.below@example.org"
    users.cell(below, cols["Status"]).value = "Active"
    notes = wb.create_sheet("Team notes")
    notes.append(["Team", "Head count", "Double"])
    for team, count in (("Core", 3), ("Data", 5), ("Mobile", 2), ("Sales", 7)):
        notes.append([team, count, None])
    for row in range(2, 6):
        notes.cell(row, 3).value = f"=B{row}*2"
    notes["A7"] = "Merged note across three cells"
    notes.merge_cells("A7:C7")
    notes["A2"].comment = Comment("Core moves to Data in May", "Ann")
    notes.protection.sheet = True  # protected without a password
    chart = BarChart()
    chart.add_data(Reference(notes, min_col=2, min_row=1, max_row=5), titles_from_data=True)
    chart.set_categories(Reference(notes, min_col=1, min_row=2, max_row=5))
    notes.add_chart(chart, "E2")
    archive = wb.create_sheet("Archive")
    archive.append(["Left in 2024", "ann@example.com"])
    wb.defined_names["Staff"] = DefinedName("Staff", attr_text=f"{wbk.USERS}!$A$2:$A${below}")
    wb.save(target)
    _shared_formulas_and_calc_chain(target)


def _shared_formulas_and_calc_chain(path: Path) -> None:
    """Turn the user's formulas into one shared formula and add a calculation chain, as Excel writes them."""
    with zipfile.ZipFile(path) as archive:
        parts = {info.filename: archive.read(info.filename) for info in archive.infolist()}
        member = _sheet_part(archive, "Team notes")
    assert member is not None
    xml = parts[member].decode()
    for row in range(2, 6):
        old = f'<c r="C{row}"><f>B{row}*2</f><v></v></c>'
        assert old in xml, xml[:2000]
        shared = '<f t="shared" ref="C2:C5" si="0">B2*2</f>' if row == 2 else '<f t="shared" si="0"/>'
        xml = xml.replace(old, f'<c r="C{row}">{shared}<v>{2 * (3, 5, 2, 7)[row - 2]}</v></c>')
    parts[member] = xml.encode()
    sheet_index = [n for n in openpyxl.load_workbook(path, read_only=True).sheetnames].index("Team notes") + 1
    parts["xl/calcChain.xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<calcChain xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        + "".join(f'<c r="C{row}" i="{sheet_index}"/>' for row in range(2, 6)) + "</calcChain>"
    ).encode()
    rels = parts["xl/_rels/workbook.xml.rels"].decode()
    parts["xl/_rels/workbook.xml.rels"] = rels.replace(
        "</Relationships>",
        '<Relationship Id="rIdCalc" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/calcChain" Target="calcChain.xml"/>'
        "</Relationships>").encode()
    types = parts["[Content_Types].xml"].decode()
    parts["[Content_Types].xml"] = types.replace(
        "</Types>", '<Override PartName="/xl/calcChain.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.calcChain+xml"/></Types>'
    ).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, sandbox: Sandbox) -> dict[str, Path]:
    """name -> workbook, made once for the module (two of them saved by LibreOffice in one run of it)."""
    folder = tmp_path_factory.mktemp("corpus")
    export = folder / "export.xlsx"
    app.export_workbook(export, platform=sandbox.url)
    own = folder / "own.xlsx"
    _user_made_it_their_own(export, own)
    template = folder / "template.xlsx"
    shutil.copy(TEMPLATE, template)
    saved = resave([export, own], folder / "libreoffice")
    return {"export": export, "template": template, "own": own, "libreoffice-export": saved[export], "libreoffice-own": saved[own]}


CASES = ["export", "template", "own", "libreoffice-export", "libreoffice-own"]


def _program(book: Any, saves: Callable[[], None]) -> None:
    """What check, preview and sync write, through the SheetBook protocol (``saves`` runs after each save)."""
    grid = book.values(wbk.USERS)
    cols = {str(h): i + 1 for i, h in enumerate(grid[0]) if h is not None}
    last = len(grid)
    if last >= 2:
        book.write_values(wbk.USERS, 2, cols["Job title"], [["Edited in the corpus"]])
    book.write_values(wbk.USERS, last + 1, 1, [["new.person", "New", "Person", "not an email", "actve"]])
    app.check_workbook(book)
    saves()
    wbk.write_preview(book, {"counts": {"create": 1, "update": 1}, "changes": [
        {"action": "update", "row": 2, "key": "x", "fields": {"Job title": {"from": "a", "to": "Edited in the corpus"}}},
        {"action": "create", "row": last + 1, "key": "new.person", "fields": {"Email": {"from": None, "to": "=cmd|' /C calc'!A0"}}},
    ]})
    wbk.append_sync_log(book, [wbk.LogEntry("2026-01-01 10:00:00", 2, "x", "update", "ok", "id-1", 'W/"2"', 200, "")])
    if wbk.SNAPSHOT in book.sheet_names():
        snapshot = wbk.read_snapshot(book)
        if snapshot:
            rid, snap = next(iter(snapshot.items()))
            wbk.update_snapshot(book, {rid: SnapshotRow(rid, snap.key, snap.resource_id, 'W/"9"', {**snap.values, "Job title": "Edited"})})
    book.save()
    saves()


def _marks(path: Path) -> list[tuple[str, str | None, str | None]]:
    ws = openpyxl.load_workbook(path)[wbk.USERS]
    return sorted(
        (c.coordinate, str(c.fill.fgColor.rgb)[-6:] if c.fill.fill_type else None, c.comment.text if c.comment else None)
        for row in ws.iter_rows(min_row=2) for c in row if c.comment is not None or c.fill.fill_type is not None
    )


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info.filename) for info in archive.infolist()}


def _layout_parts(path: Path) -> set[str]:
    """The parts a writing step may rewrite: the layout's sheets, their notes and Table, and the package's indexes."""
    allowed = {"[Content_Types].xml", "xl/workbook.xml", "xl/_rels/workbook.xml.rels", "xl/styles.xml"}
    with zipfile.ZipFile(path) as archive:
        for sheet in LAYOUT_SHEETS:
            part = _sheet_part(archive, sheet)
            if part is not None:
                allowed.add(part)
        users = _sheet_part(archive, wbk.USERS)
    assert users is not None
    folder, name = users.rsplit("/", 1)
    rels = f"{folder}/_rels/{name}.rels"
    allowed.add(rels)
    from rosterbook.ooxml import parse_xml, resolve

    with zipfile.ZipFile(path) as archive:
        for node in parse_xml(archive.read(rels)):
            allowed.add(resolve(users, node.get("Target") or ""))
    return allowed


@pytest.fixture(scope="module")
def patched(corpus: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path, set[str]]]:
    """name -> (patched file, openpyxl's reference file, the parts PatchBook rewrote)."""
    folder = tmp_path_factory.mktemp("patched")
    out = {}
    for name in CASES:
        source = corpus[name]
        patch, reference = folder / f"{name}.xlsx", folder / f"{name}-reference.xlsx"
        shutil.copy(source, patch)
        shutil.copy(source, reference)
        book = PatchBook(patch)
        rewritten: set[str] = set()
        _program(book, lambda book=book, rewritten=rewritten: rewritten.update(book.last_saved_parts))
        _program(OpenpyxlBook(reference, openpyxl.load_workbook(reference)), lambda: None)
        out[name] = (patch, reference, rewritten)
    return out


@pytest.mark.parametrize("name", CASES)
def test_patched_values_and_marks_are_the_references(name: str, patched: dict[str, tuple[Path, Path, set[str]]]) -> None:
    patch, reference, _ = patched[name]
    # Read with calamine, formulas as their text (openpyxl's save drops the results Excel cached: calamine alone would differ).
    fast, slow = PatchBook(patch), PatchBook(reference)
    assert fast.sheet_names() == slow.sheet_names()
    for sheet in fast.sheet_names():
        assert fast.values(sheet) == slow.values(sheet), sheet
    marks = _marks(patch)
    assert marks == _marks(reference)
    assert any(note and "not a valid email" in note and fill == "FFC7CE" for _, fill, note in marks)
    wb = openpyxl.load_workbook(patch)
    preview = wb[wbk.PREVIEW]
    dangerous = [c for row in preview.iter_rows() for c in row if c.value == "=cmd|' /C calc'!A0"]
    assert dangerous and all(c.data_type == "s" for c in dangerous)  # text from outside stays text
    if name in ("own", "libreoffice-own"):
        notes = wb["Team notes"]
        assert notes["C3"].value == "=B3*2" and "A7:C7" in {str(r) for r in notes.merged_cells.ranges}
        assert notes.protection.sheet and notes["A2"].comment is not None
        assert wb[wbk.USERS]["B3"].comment is not None  # the user's own note on another cell is kept
        assert "Staff" in wb.defined_names


@pytest.mark.parametrize("name", CASES)
def test_untouched_parts_are_byte_identical(name: str, corpus: dict[str, Path], patched: dict[str, tuple[Path, Path, set[str]]]) -> None:
    patch, _, rewritten = patched[name]
    before, after = _members(corpus[name]), _members(patch)
    assert set(before) <= set(after)
    for member, data in before.items():
        if member not in rewritten:
            assert after[member] == data, member
    assert rewritten <= _layout_parts(patch), sorted(rewritten - _layout_parts(patch))
    with zipfile.ZipFile(corpus[name]) as a, zipfile.ZipFile(patch) as b:
        for info in a.infolist():
            if info.filename not in rewritten:
                # copied as compressed bytes, not inflated and deflated again
                assert (b.getinfo(info.filename).CRC, b.getinfo(info.filename).compress_size) == (info.CRC, info.compress_size)
    assert package_problems(patch) == []


def test_libreoffice_opens_every_patched_file(patched: dict[str, tuple[Path, Path, set[str]]], tmp_path: Path) -> None:
    files = [patched[name][0] for name in CASES]
    again = resave(files, tmp_path / "again")
    for source, target in again.items():
        fast, other = FastBook(source), FastBook(target)
        for sheet in (wbk.USERS, wbk.PREVIEW, wbk.SYNC_LOG):
            assert other.values(sheet) == fast.values(sheet), (source.name, sheet)
        assert _marks(target) == [(c, f, n) for c, f, n in _marks(source)], source.name


@pytest.mark.parametrize("name", ["libreoffice-export", "libreoffice-own"])
def test_libreoffice_wears_the_protections_off_and_a_write_puts_them_back(name: str, corpus: dict[str, Path],
                                                                         patched: dict[str, tuple[Path, Path, set[str]]]) -> None:
    saved, patch = corpus[name], patched[name][0]
    worn = _protections(saved)
    # What LibreOffice did (issue 19), reproduced: so the test below can fail.
    assert worn["states"][wbk.SNAPSHOT] == "hidden" and worn["freeze"] is None and worn["style"] is None
    assert all(not ref.endswith("1048576") for ref in worn["validations"])
    back = _protections(patch)
    assert back["states"][wbk.SNAPSHOT] == "veryHidden" and back["states"]["_dialect"] == "veryHidden"
    assert back["freeze"] == "B2" and back["style"] == "TableStyleMedium2"
    assert back["validations"] and all(ref.endswith("1048576") and ref[1:3] == "2:" for ref in back["validations"])
    assert all(ref.endswith("1048576") for ref in back["conditional"])
    # Employee ID, Phone, Start date, External ID and the hidden row id are Text columns.
    assert back["hidden"] == {"W"} and {"N", "O", "P", "Q", "W"} <= back["text"]
    last = len(FastBook(patch).values(wbk.USERS))
    assert back["table"] == f"A1:W{last}"
    if name == "libreoffice-own":
        assert worn["table"] != back["table"]  # the row typed below the Table is in it now


def _protections(path: Path) -> dict[str, Any]:
    wb = openpyxl.load_workbook(path)
    ws = wb[wbk.USERS]
    table = ws.tables["Users"]
    return {
        "states": {s.title: s.sheet_state for s in wb.worksheets},
        "freeze": ws.freeze_panes,
        "style": table.tableStyleInfo.name if table.tableStyleInfo is not None else None,
        "table": table.ref,
        "validations": [str(dv.sqref) for dv in ws.data_validations.dataValidation],
        "conditional": [str(cf.sqref) for cf in ws.conditional_formatting],
        "hidden": {k for k, d in ws.column_dimensions.items() if d.hidden},
        "text": {k for k, d in ws.column_dimensions.items() if d.number_format == "@"},
    }

