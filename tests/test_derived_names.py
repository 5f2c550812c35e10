"""Derived names stay consistent: displayName and name.formatted follow a changed first or last name, when they were its usual form."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import requests

from rosterbook import app
from rosterbook.sandbox import start_sandbox

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _raw(url: str, user_name: str) -> dict:
    found = requests.get(f"{url}/Users", params={"filter": f'userName eq "{user_name}"'}, timeout=10).json()["Resources"]
    return found[0]


def test_display_and_formatted_names_follow_the_name_only_when_they_were_its_usual_form(tmp_path: Path) -> None:
    with start_sandbox(tmp_path / "db.sqlite3", users=12) as sandbox:
        book = tmp_path / "users.xlsx"
        app.export_workbook(book, platform=sandbox.url)
        wb = openpyxl.load_workbook(book)
        ws = wb["Users"]
        cols = {str(c.value): c.column for c in ws[1] if c.value}
        assert "Display name" not in cols and "Formatted name" not in cols  # kept in the snapshot, not shown
        usual, chosen = (str(ws.cell(r, cols["Username"]).value) for r in (2, 3))
        before_usual, before_chosen = _raw(sandbox.url, usual), _raw(sandbox.url, chosen)
        assert before_usual["displayName"] == f"{before_usual['name']['givenName']} {before_usual['name']['familyName']}"
        # Another admin set a display name of the user's choosing before the export: it is not the usual form.
        requests.patch(f"{sandbox.url}/Users/{before_chosen['id']}", timeout=10,
                       json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": "Bobbie"}]})
        wb.close()
        app.export_workbook(book, platform=sandbox.url)
        wb = openpyxl.load_workbook(book)
        ws = wb["Users"]
        ws.cell(2, cols["First name"]).value = "Jake"
        ws.cell(3, cols["Last name"]).value = "Newname"
        wb.save(book)

        plan = app.preview_workbook(book).to_dict()
        by_key = {c["key"]: c for c in plan["changes"]}
        family = before_usual["name"]["familyName"]
        old = before_usual["displayName"]
        assert by_key[usual]["fields"]["Display name"] == {"from": old, "to": f"Jake {family}"}
        assert by_key[usual]["fields"]["Formatted name"] == {"from": old, "to": f"Jake {family}"}
        assert f"Display name follows the name: {old!r} -> 'Jake {family}'" in by_key[usual]["notes"]
        assert "Display name" not in by_key[chosen]["fields"]
        assert any(n.startswith("Display name 'Bobbie' is not the name") and n.endswith("left as it is") for n in by_key[chosen]["notes"])

        result = app.sync_workbook(book)
        assert result.ok and result.confirmed == 2
        after_usual, after_chosen = _raw(sandbox.url, usual), _raw(sandbox.url, chosen)
        assert after_usual["displayName"] == f"Jake {family}" == after_usual["name"]["formatted"]
        assert after_usual["name"]["givenName"] == "Jake"
        assert after_chosen["displayName"] == "Bobbie" and after_chosen["name"]["familyName"] == "Newname"
        assert after_chosen["name"]["formatted"] == f"{before_chosen['name']['givenName']} Newname"  # it was the usual form
        assert app.preview_workbook(book).sendable() == []  # the snapshot holds what the platform confirmed
