"""The workbook survives LibreOffice Calc: edited, extended, sorted and saved through LibreOffice's own UNO API.

Check, preview and sync then give exactly the intended changes on a real sandbox, and the layout's
protections LibreOffice wore off (very hidden sheets, the Table's range, whole-column drop-downs,
the frozen header) are back after the first rosterbook write.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import requests

from rosterbook import app
from rosterbook.sandbox import start_sandbox

DRIVER = Path(__file__).resolve().parent / "support" / "lo_driver.py"
SYSTEM_PYTHON = "/usr/bin/python3"


def _require_uno() -> None:
    ok = shutil.which("soffice") and Path(SYSTEM_PYTHON).exists() and subprocess.run(
        [SYSTEM_PYTHON, "-c", "import uno"], capture_output=True, check=False).returncode == 0
    if not ok:
        if os.environ.get("CI"):
            pytest.fail("LibreOffice with python3-uno is missing on CI: .ci/run installs libreoffice-calc-nogui and python3-uno")
        pytest.skip("LibreOffice's UNO bridge is not installed; apt-get install -y libreoffice-calc-nogui python3-uno")


def _libreoffice(book: Path, steps: list[dict[str, Any]], tmp_path: Path) -> None:
    """Open ``book`` in LibreOffice, apply the steps as a user would, save it over itself as .xlsx."""
    script = tmp_path / f"lo-{len(list(tmp_path.glob('lo-*.json')))}.json"
    script.write_text(json.dumps({"in": str(book), "out": str(book), "profile": str(tmp_path / "lo-profile"), "steps": steps}), encoding="utf-8")
    subprocess.run([SYSTEM_PYTHON, str(DRIVER), str(script)], check=True, timeout=180, capture_output=True)


def _layout(book: Path) -> dict[str, Any]:
    wb = openpyxl.load_workbook(book)
    ws = wb["Users"]
    table = ws.tables.get("Users")
    return {
        "states": {s.title: s.sheet_state for s in wb.worksheets if s.title.startswith("_")},
        "table": table.ref if table is not None else None,
        "style": table.tableStyleInfo.name if table is not None and table.tableStyleInfo is not None else None,
        "validations": sorted(str(dv.sqref) for dv in ws.data_validations.dataValidation),
        "freeze": ws.freeze_panes,
    }


def test_a_workbook_edited_sorted_and_saved_by_libreoffice_syncs_exactly_the_edits(tmp_path: Path) -> None:
    _require_uno()
    with start_sandbox(tmp_path / "db.sqlite3", users=20) as sandbox:
        book = tmp_path / "team.xlsx"
        app.export_workbook(book, platform=sandbox.url)
        exported = _layout(book)
        wb = openpyxl.load_workbook(book)
        ws = wb["Users"]
        cols = {str(c.value): c.column for c in ws[1] if c.value}
        letter = {name: openpyxl.utils.get_column_letter(i) for name, i in cols.items()}
        actives = [r for r in range(2, ws.max_row + 1) if ws.cell(r, cols["Status"]).value == "Active"]
        titled, archived = (str(ws.cell(r, cols["Username"]).value) for r in actives[:2])
        last = ws.max_row
        width = len(cols)
        wb.close()
        new = last + 1
        steps: list[dict[str, Any]] = [
            {"type": ["Users", f"{letter['Job title']}{actives[0]}", "Typed in LibreOffice"]},
            {"type": ["Users", f"{letter['Status']}{actives[1]}", "Archived"]},
            {"type": ["Users", f"{letter['Employee ID']}{actives[0]}", "000777"]},  # a Text cell keeps its zeros
        ]
        for name, value in {"Username": "lo.new", "First name": "Libre", "Last name": "Office", "Email": "lo.new@example.org",
                            "Status": "Active"}.items():
            steps.append({"type": ["Users", f"{letter[name]}{new}", value]})
        # Sort whole rows (the hidden row ids travel with them) by last name, the new row included.
        steps.append({"sort": ["Users", f"A2:{openpyxl.utils.get_column_letter(width)}{new}", cols["Last name"] - 1]})
        _libreoffice(book, steps, tmp_path)
        _libreoffice(book, [], tmp_path)  # opened and saved again, untouched

        worn = _layout(book)
        assert worn["states"] == {"_snapshot": "hidden", "_dialect": "hidden"} or worn["states"]["_snapshot"] != "veryHidden"

        report = app.check_workbook(book)
        assert report.errors == 0, report.render_text()
        restored = _layout(book)
        assert restored["states"] == exported["states"]
        assert restored["freeze"] == exported["freeze"]
        assert restored["style"] == exported["style"]
        assert restored["table"] == f"A1:{openpyxl.utils.get_column_letter(width)}{new}"  # fits the data, the new row included
        assert restored["validations"] == exported["validations"]  # whole columns again

        plan = app.preview_workbook(book)
        assert {a: n for a, n in plan.counts.items() if n and a != "unchanged"} == {"create": 1, "update": 1, "archive": 1}
        fields = {c.key: {k: v.after for k, v in c.fields.items()} for c in plan.changes if c.action != "unchanged"}
        assert fields[titled] == {"Job title": "Typed in LibreOffice", "Employee ID": "000777"}
        assert fields[archived] == {"Status": "Archived"}
        result = app.sync_workbook(book)
        assert result.ok and result.confirmed == 3

        def raw(user_name: str) -> dict[str, Any]:
            return requests.get(f"{sandbox.url}/Users", params={"filter": f'userName eq "{user_name}"'}, timeout=10).json()["Resources"][0]

        hr = "urn:rosterbook:params:scim:schemas:extension:hr:2.0:User"
        enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        assert raw(titled)["title"] == "Typed in LibreOffice" and raw(titled)[enterprise]["employeeNumber"] == "000777"
        assert raw(archived)[hr]["accountStatus"] == "Archived" and raw(archived)["active"] is False
        assert raw("lo.new")["name"] == {"givenName": "Libre", "familyName": "Office"} or raw("lo.new")["name"]["givenName"] == "Libre"
        assert app.preview_workbook(book).sendable() == []
        assert _layout(book) == {**restored, "states": {**restored["states"], "_history": "veryHidden"}}  # the sync's history, for undo
