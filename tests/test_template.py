"""The committed templates are what scripts/make_template.py generates from the dialects today."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import openpyxl
import pytest

from rosterbook.core.dialects import dialect_names, load_dialect
from rosterbook.fastread import FastBook
from rosterbook.xlsx import build_template, template_structure

ROOT = Path(__file__).resolve().parents[1]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_template", ROOT / "scripts" / "make_template.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", dialect_names())
def test_committed_template_matches_a_fresh_generation(tmp_path: Path, name: str) -> None:
    script = _script()
    committed = script.template_path(name)
    assert committed.exists(), f"{committed.name} is not committed: run python scripts/make_template.py"
    fresh = build_template(tmp_path / committed.name, load_dialect(name))
    fresh.save()
    assert template_structure(committed) == template_structure(fresh.path)


def test_check_mode_flags_a_drifted_template(tmp_path: Path) -> None:
    script = _script()
    folder = tmp_path / "templates"
    script.generate(folder)
    assert {p.name for p in folder.iterdir()} == {script.template_path(n, folder).name for n in dialect_names()}
    wb = openpyxl.load_workbook(folder / "UserTemplate.xlsx")
    wb["Users"]["A1"] = "Login"
    wb.save(folder / "UserTemplate.xlsx")
    assert template_structure(folder / "UserTemplate.xlsx") != template_structure(script.template_path("scim"))


def test_scim_template_layout() -> None:
    path = ROOT / "templates" / "UserTemplate.xlsx"
    wb = openpyxl.load_workbook(path)
    assert [(ws.title, ws.sheet_state) for ws in wb.worksheets] == [
        ("Users", "visible"), ("Preview", "visible"), ("Sync log", "visible"),
        ("Settings", "visible"), ("Lists", "visible"), ("_snapshot", "veryHidden"),
    ]
    ws = wb["Users"]
    dialect = load_dialect("scim")
    headers = [c.value for c in ws[1]]
    assert headers == [*(c.name for c in dialect.sheet_columns), "Problems", "Sync status", "_row_id"]
    assert ws.freeze_panes == "B2"
    table = ws.tables["Users"]
    assert table.ref.startswith("A1:") and [c.name for c in table.tableColumns] == headers
    letters = {h: openpyxl.utils.get_column_letter(i) for i, h in enumerate(headers, start=1)}
    # IDs, phones and dates are Text so Excel keeps '00123' and '2024-03-01' as typed
    for name in ("Employee ID", "Phone", "Start date", "External ID", "_row_id"):
        assert ws.column_dimensions[letters[name]].number_format == "@", name
    assert ws.column_dimensions[letters["_row_id"]].hidden
    validations = {str(dv.sqref).split(":")[0]: dv for dv in ws.data_validations.dataValidation}
    status = validations[f"{letters['Status']}2"]
    assert status.formula1 == "'Lists'!$A$2:$A$4" and status.showErrorMessage
    roles = validations[f"{letters['Roles']}2"]
    assert not roles.showErrorMessage  # 'Admin; Learner' must be typeable
    lists = wb["Lists"]
    assert [c.value for c in lists["A"] if c.value] == ["Status", "Active", "Pending", "Archived"]
    rules = [(str(r.sqref), rule.formula[0]) for r in ws.conditional_formatting for rule in r.rules]
    # Red cells: the Problems cell of the row, found by its header wherever it is, names the cell's address.
    assert rules == [("A2:XFD1048576", 'ISNUMBER(SEARCH(CHAR(10)&ADDRESS(ROW(),COLUMN(),4)&" ",'
                                       'CHAR(10)&INDEX($1:$1048576,ROW(),MATCH("Problems",$1:$1,0))))')]
    assert ws[f"{letters['Username']}1"].comment is not None
    settings = {r[0]: r[1] for r in wb["Settings"].iter_rows(min_row=2, values_only=True)}
    assert settings["dialect"] == "scim" and settings["platform_url"] is None
    assert not any("token" in str(k).lower() for k in settings)


@pytest.mark.parametrize("name", dialect_names())
def test_every_template_reads_back_with_calamine(name: str) -> None:
    path = _script().template_path(name)
    book = FastBook(path)
    assert book.values("Users")[0][:1] == [load_dialect(name).columns[0].name]
    assert book.visibility("_snapshot") == "veryHidden"
