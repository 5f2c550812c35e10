"""Ribbon Export gives the workbook the CLI gives, on any starting point, through the Excel adapter.

"Excel" is the recording stand-in of xlwings (``support.fakexl``): a blank workbook with its empty
``Sheet1``, the template New workbook opens, an earlier export, with and without a platform's extra
columns. After the ribbon's Export, what the stand-in holds is written out with openpyxl and compared
with the CLI's file for the same data: sheets, values, the Users Table, frozen panes, column widths,
Text formats and hidden columns, drop-downs, conditional formats and header notes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import pytest
from support.fakexl import FakeApp, FakeBook, from_openpyxl, to_openpyxl
from support.ribbonui import RecordingUI

from addin import ribbon
from addin.sheet import HEADER_NOTE_START, XlwingsBook
from rosterbook import app
from rosterbook import workbook as wbk
from rosterbook.sandbox import Sandbox
from rosterbook.xlsx import template_structure

ROOT = Path(__file__).resolve().parents[1]


def structure(path: Path) -> dict[str, Any]:
    """``template_structure``, with what Excel shows differently from a file and nothing else set aside:
    a hidden column's width (Excel hides a column by making it 0 wide), and the first line ``rosterbook:``
    of a header note written in Excel (where the user is every note's author)."""
    found = template_structure(path)
    for sheet, data in found.items():
        if sheet == "sheets":
            continue
        data["columns"] = {key: ((0.0, True, fmt) if hidden else (width, hidden, fmt)) for key, (width, hidden, fmt) in data["columns"].items()}
        data["comments"] = [(cell, text.removeprefix(HEADER_NOTE_START)) for cell, text in data["comments"]]
    return found


def saved(book: FakeBook, path: Path) -> Path:
    to_openpyxl(book).save(path)
    return path


def ribbon_export(book: FakeBook, ui: RecordingUI | None = None) -> ribbon.Outcome:
    outcome = ribbon.dispatch("export", XlwingsBook(book, system="win32"), ui or RecordingUI())
    assert outcome.ok, outcome.message
    return outcome


def assert_same_workbook(excel: Path, cli: Path) -> None:
    got, want = structure(excel), structure(cli)
    assert got["sheets"] == want["sheets"]
    for sheet, _ in want["sheets"]:
        for part in ("values", "freeze", "columns", "tables", "validations", "conditional", "comments"):
            assert got[sheet][part] == want[sheet][part], f"{sheet} {part}"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ROSTERBOOK_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _settings_row(book: FakeBook, key: str) -> int:
    sheet = book.sheets[wbk.SETTINGS]
    return next(r for (r, c), v in sheet.values.items() if c == 1 and v == key)


def test_export_into_a_blank_workbook_is_the_clis_workbook(tmp_path: Path, home: Path) -> None:
    blank = FakeBook(FakeApp(), name="Book1")
    blank.sheet("Sheet1")  # what File > New gives
    ribbon_export(blank)  # no Settings yet: the embedded sandbox in ROSTERBOOK_HOME, as the CLI's export without --platform
    assert "Sheet1" not in [s.name for s in blank.sheets]  # the stray empty sheet is gone
    assert [e for e in blank.app.log if e[0] == "activate"][-1] == ("activate", "Users")
    cli = tmp_path / "cli.xlsx"
    app.export_workbook(cli)
    assert_same_workbook(saved(blank, tmp_path / "excel.xlsx"), cli)
    # The header row is styled as in the file (Excel applies the Table style too; LibreOffice only direct formats).
    users = blank.sheets["Users"]
    assert users.fonts[(1, 1)] == {"bold": True, "color": (255, 255, 255)} and users.colors[(1, 1)] == (31, 78, 120)
    assert users.freeze == (1, 1)
    assert [t.table_style for t in users.tables] == ["TableStyleMedium2"]


def test_export_into_the_template_and_into_an_earlier_export(tmp_path: Path, home: Path, sandbox: Sandbox) -> None:
    cli = tmp_path / "cli.xlsx"
    app.export_workbook(cli, platform=sandbox.url)
    ribbon.remember_platform(sandbox.url)
    template = from_openpyxl(ROOT / "templates" / "UserTemplate.xlsx")  # New workbook: the template, unsaved
    template.sheets[wbk.SETTINGS].set((_settings_row(template, "platform_url"), 2), sandbox.url)
    ribbon_export(template)
    assert_same_workbook(saved(template, tmp_path / "from-template.xlsx"), cli)

    again = from_openpyxl(cli, fullname=str(cli))  # the CLI's export opened in Excel, exported again from the ribbon
    ribbon_export(again)
    assert_same_workbook(saved(again, tmp_path / "again.xlsx"), cli)


def _with_extra_column(source: Path, target: Path) -> Path:
    lines = source.read_text(encoding="utf-8").splitlines()
    out = [lines[0].replace("Username,", "Username,Shirt size,", 1)]
    out += [line.replace(",", ",M,", 1) for line in lines[1:]]
    target.write_text("\n".join(out) + "\n", encoding="utf-8")
    return target


@pytest.mark.parametrize("extra", [False, True], ids=["dialect columns", "an extra platform column"])
def test_export_into_a_csv_platforms_template(tmp_path: Path, samples: Path, home: Path, extra: bool) -> None:
    csv = samples / "jostle_extract.csv"
    if extra:
        csv = _with_extra_column(csv, tmp_path / "jostle-extra.csv")
    cli = tmp_path / "cli.xlsx"
    app.export_workbook(cli, from_csv=csv)
    template = from_openpyxl(ROOT / "templates" / "UserTemplate-jostle.xlsx")
    ribbon_export(template, RecordingUI(file=str(csv)))
    assert_same_workbook(saved(template, tmp_path / "excel.xlsx"), cli)
    users = openpyxl.load_workbook(cli)["Users"]
    headers = [c.value for c in users[1]]
    assert ("Shirt size" in headers) is extra
    # The highlighting finds the Problems column wherever the extra column put it.
    [condition] = template.sheets["Users"].conditions
    assert 'MATCH("Problems",$1:$1,0)' in condition.formula and condition.area == (2, 1, wbk.MAX_ROW, wbk.MAX_COLUMN)


def test_export_keeps_the_check_column(tmp_path: Path, home: Path, sandbox: Sandbox) -> None:
    cli = tmp_path / "cli.xlsx"
    app.export_workbook(cli, platform=sandbox.url)
    ribbon.remember_platform(sandbox.url)
    book = from_openpyxl(cli, fullname=str(cli))
    assert ribbon.dispatch("checkcolumn", XlwingsBook(book), RecordingUI()).ok
    users = book.sheets["Users"]
    check = next(c for (r, c), v in users.values.items() if r == 1 and v == wbk.CHECK)
    book.app.log.clear()
    ribbon_export(book)
    assert users.values[(1, check)] == wbk.CHECK
    last = max(r for r, _ in users.values)
    assert users.formulas[(last, check)] == '=INDEX(Check!$A:$A,ROW())&""'
    assert users.tables[0].area == (1, 1, last, check)
    assert any(e[0] == "formula2" and e[1] == "Check" for e in book.app.log)


def test_libreoffice_paints_the_cells_the_problems_column_names_wherever_it_is(tmp_path: Path, samples: Path) -> None:
    """The highlighting formula, evaluated by a real spreadsheet: a platform's extra column moved Problems right,
    and no cell has a fill of its own (rosterbook's marks are taken off), so only the conditional format paints."""
    import re
    import shutil
    import subprocess

    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    assert soffice is not None, "LibreOffice (soffice) is needed: apt-get install -y libreoffice-calc-nogui"
    book = tmp_path / "moved.xlsx"
    app.export_workbook(book, from_csv=_with_extra_column(samples / "jostle_extract.csv", tmp_path / "extra.csv"))
    wb = openpyxl.load_workbook(book)
    ws = wb["Users"]
    problems = [c.value for c in ws[1]].index("Problems") + 1
    assert problems == 13  # one column further right than in the jostle template
    ws.cell(3, problems).value = "B3 Shirt size: planted\n(warning) D3 Last Name: only a warning"
    ws.cell(5, problems).value = "K5 Employee ID: planted"
    wb.save(book)
    subprocess.run([soffice, f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}", "--headless", "--convert-to", "html",
                    "--outdir", str(tmp_path), str(book)], check=True, capture_output=True, timeout=120)
    html = (tmp_path / "moved.html").read_text(encoding="utf-8", errors="replace")
    first_table = html.split("</table>", 1)[0]
    red = {(r, c) for r, row in enumerate(re.findall(r"<tr.*?</tr>", first_table, re.S), start=1)
           for c, cell in enumerate(re.findall(r"<td([^>]*)>", row), start=1) if wbk.ERROR_FILL in cell.upper()}
    assert red == {(3, 2), (5, 11)}  # B3 and K5; not D3 (a warning), not the Problems cells


@pytest.fixture
def appscript_keywords(monkeypatch: pytest.MonkeyPatch) -> None:
    """appscript's ``k`` (installed with xlwings on macOS only): keywords are names here."""
    import sys
    from types import SimpleNamespace

    monkeypatch.setitem(sys.modules, "appscript", SimpleNamespace(k=SimpleNamespace(validate_list="validate list")))


def test_on_macos_the_template_gives_the_clis_workbook(tmp_path: Path, home: Path, sandbox: Sandbox, appscript_keywords: None) -> None:
    """macOS: drop-downs and the frozen header through AppleScript; the highlighting is the template's, which
    finds Problems by its header, so the platform's own columns (more than the template's) change nothing."""
    cli = tmp_path / "cli.xlsx"
    app.export_workbook(cli, platform=sandbox.url)
    ribbon.remember_platform(sandbox.url)
    template = from_openpyxl(ROOT / "templates" / "UserTemplate.xlsx")
    template.sheets[wbk.SETTINGS].set((_settings_row(template, "platform_url"), 2), sandbox.url)
    before = [c.value for c in openpyxl.load_workbook(ROOT / "templates" / "UserTemplate.xlsx")["Users"][1]]
    outcome = ribbon.dispatch("export", XlwingsBook(template, system="darwin"), RecordingUI())
    assert outcome.ok, outcome.message
    assert_same_workbook(saved(template, tmp_path / "excel.xlsx"), cli)
    after = [c.value for c in openpyxl.load_workbook(cli)["Users"][1]]
    assert after.index("Problems") != before.index("Problems")  # the platform's columns moved it
    log = template.app.log
    added = [e for e in log if e[0] == "validation.add_data_validation"]
    assert added and all(e[1] == "Users" and e[3] == "validate list" and e[4].startswith("='Lists'!") for e in added)
    assert ("validation.show_error.set", True) in log and ("validation.show_error.set", False) in log  # Status strict; Roles typeable
    assert ("active_window.freeze_panes.set", True) in log
    assert not any(e[0].startswith(("FormatConditions", "Validation.", "window.", "Move")) for e in log)  # no Windows COM calls


def test_on_macos_a_blank_workbook_has_everything_but_the_highlighting(tmp_path: Path, home: Path, appscript_keywords: None) -> None:
    blank = FakeBook(FakeApp(), name="Book1")
    blank.sheet("Sheet1")
    outcome = ribbon.dispatch("export", XlwingsBook(blank, system="darwin"), RecordingUI())
    assert outcome.ok, outcome.message
    cli = tmp_path / "cli.xlsx"
    app.export_workbook(cli)
    got, want = structure(saved(blank, tmp_path / "excel.xlsx")), structure(cli)
    assert got["Users"]["conditional"] == [] and want["Users"]["conditional"] != []  # README: start from New workbook on a Mac
    got["Users"]["conditional"] = want["Users"]["conditional"]
    assert got == want


def test_a_patched_save_puts_back_the_dress_the_export_applies(tmp_path: Path, samples: Path) -> None:
    """One description of the Users sheet: what the CLI's export writes, PatchBook re-asserts on every save of a
    workbook another application stripped (frozen header, Text and hidden columns, the Table's style)."""
    from rosterbook.core.dialects import load_dialect

    book = tmp_path / "stripped.xlsx"
    app.export_workbook(book, from_csv=_with_extra_column(samples / "jostle_extract.csv", tmp_path / "extra.csv"))
    wb = openpyxl.load_workbook(book)
    ws = wb["Users"]
    headers = [c.value for c in ws[1]]
    ws.freeze_panes = None
    for dim in list(ws.column_dimensions.values()):
        dim.number_format, dim.hidden = "General", False
    next(iter(ws.tables.values())).tableStyleInfo = None
    wb.save(book)
    app.check_workbook(book)  # a write through PatchBook
    dress = wbk.users_dress(load_dialect("jostle"), headers, {}, ws.max_row)
    ws = openpyxl.load_workbook(book)["Users"]
    letter = openpyxl.utils.get_column_letter
    assert ws.freeze_panes == dress.freeze
    assert sorted(c for c in range(1, len(headers) + 1) if ws.column_dimensions[letter(c)].number_format == "@") == sorted(dress.text_columns)
    assert [c for c in range(1, len(headers) + 1) if ws.column_dimensions[letter(c)].hidden] == list(dress.hidden_columns)
    assert next(iter(ws.tables.values())).tableStyleInfo.name == dress.table_style
