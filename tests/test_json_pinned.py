"""The ``--json`` outputs of export, check, preview, sync and revert are promises to scripts: pinned here.

Each scenario runs the real CLI on real workbooks (a seeded sandbox for SCIM, the sample exports
for the CSV platforms) and compares every ``--json`` output with the golden file in
``tests/golden/``. Only what differs between runs is normalised: the temporary folder, the
sandbox's port, time stamps and sync ids. Set ``ROSTERBOOK_UPDATE_GOLDEN=1`` to rewrite the files (then
review the diff: a changed golden file is a changed promise).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from rosterbook.cli import run
from rosterbook.sandbox import start_sandbox

GOLDEN = Path(__file__).resolve().parent / "golden"
_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
_PORT = re.compile(r"127\.0\.0\.1:\d+")
_SYNC_ID = re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{6}\b")


def _normalise(text: str, tmp_path: Path) -> str:
    text = text.replace(str(tmp_path), "<tmp>")
    text = _PORT.sub("127.0.0.1:<port>", text)
    text = _SYNC_ID.sub("<sync-id>", text)  # a sync id is its start time and a random part
    return _TIME.sub("<time>", text)


class _Recorder:
    """Runs CLI commands with --json and collects (command, exit code, normalised JSON)."""

    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp_path = tmp_path
        self.capsys = capsys
        self.steps: list[dict[str, Any]] = []

    def __call__(self, name: str, *args: str) -> Any:
        self.capsys.readouterr()
        code = run([*args, "--json"])
        out = self.capsys.readouterr()
        assert "Traceback" not in out.err
        data = json.loads(_normalise(out.out, self.tmp_path)) if out.out.strip() else None
        step: dict[str, Any] = {"step": name, "exit": code, "json": data}
        if data is None:
            step["stderr"] = _normalise(out.err, self.tmp_path)  # a refusal: its message is pinned too
        self.steps.append(step)
        return data

    def compare(self, golden: str) -> None:
        path = GOLDEN / f"{golden}.json"
        text = json.dumps(self.steps, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
        if os.environ.get("ROSTERBOOK_UPDATE_GOLDEN"):
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
        expected = json.loads(path.read_text(encoding="utf-8"))
        for want, got in zip(expected, self.steps, strict=True):
            assert got == want, f"--json of {want['step']!r} differs from {path.name}"


def _edit(book: Path, edits: dict[tuple[int, str], Any], *, delete: int | None = None) -> None:
    wb = openpyxl.load_workbook(book)
    ws = wb["Users"]
    cols = {str(c.value): c.column for c in ws[1] if c.value}
    for (row, header), value in edits.items():
        ws.cell(row, cols[header]).value = value
    if delete is not None:
        ws.delete_rows(delete)
    wb.save(book)


def test_scim_outputs_are_pinned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = _Recorder(tmp_path, capsys)
    with start_sandbox(tmp_path / "sandbox.sqlite3", users=24) as sandbox:
        book = tmp_path / "users.xlsx"
        rec("export", "export", str(book), "--platform", sandbox.url)
        wb = openpyxl.load_workbook(book)
        ws = wb["Users"]
        cols = {str(c.value): c.column for c in ws[1] if c.value}
        actives = [r for r in range(2, ws.max_row + 1) if ws.cell(r, cols["Status"]).value == "Active"]
        last = ws.max_row + 1
        wb.close()
        new = {(last, "Username"): "new.hire", (last, "First name"): "Nia", (last, "Last name"): "Hire",
               (last, "Email"): "new.hire@example.org", (last, "Status"): "actve"}
        _edit(book, {(actives[0], "Status"): "Archived", (actives[1], "Job title"): "Head of Tests",
                     (actives[2], "Roles"): "Author; Reviewer", (actives[3], "Email"): "changed@example.org",
                     (actives[4], "Username"): "renamed.user", **new})
        rec("check --no-write", "check", str(book), "--no-write")
        rec("check", "check", str(book))
        rec("preview (error row)", "preview", str(book))
        rec("sync refused", "sync", str(book), "--yes")
        rec("preview --skip-rows", "preview", str(book), "--skip-rows", str(last))
        rec("sync --skip-rows", "sync", str(book), "--yes", "--skip-rows", str(last))
        _edit(book, {(last, "Status"): "Active"})
        rec("sync new row", "sync", str(book), "--yes")
        rec("sync again", "sync", str(book), "--yes")
        # Another admin changes a user after the export: a conflict, never overwritten.
        wb = openpyxl.load_workbook(book)
        ws = wb["Users"]
        moved = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, cols["Username"]).value and r not in actives[:7])
        user_name = ws.cell(moved, cols["Username"]).value
        wb.close()
        import requests

        found = requests.get(f"{sandbox.url}/Users", params={"filter": f'userName eq "{user_name}"'}, timeout=10).json()["Resources"][0]
        patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "title", "value": "Set by another admin"}]}
        assert requests.patch(f"{sandbox.url}/Users/{found['id']}", json=patch, timeout=10).status_code in (200, 204)
        _edit(book, {(moved, "Job title"): "Set in the sheet"})
        rec("preview conflict", "preview", str(book))
        rec("sync conflict refused", "sync", str(book), "--yes")
        rec("sync --skip-rows conflict", "sync", str(book), "--yes", "--skip-rows", str(moved))
        _edit(book, {(actives[5], "Job title"): "Never sent", (actives[6], "Team"): "(clear)"})
        rec("revert --rows", "revert", str(book), "--rows", str(actives[5]))
        rec("revert", "revert", str(book))
        rec("export again", "export", str(book), "--platform", sandbox.url)
    rec.compare("scim")


@pytest.mark.parametrize(
    ("dialect", "sample", "edits"),
    [
        ("progression", "progression_export.csv", {(3, "account_active"): "Archived", (5, "team"): "Sales", (6, "email"): "not-an-email"}),
        ("edapp", "edapp_export.csv", {(2, "User groups"): "Marketing; Operations", (4, "Roles"): "Admin", (5, "Username"): "someone.else"}),
        ("incenteev", "incenteev_users.csv", {(3, "Job title"): "Lead", (4, "Email"): "x@"}),
        ("jostle", "jostle_extract.csv", {(2, "Location"): "Remote|Main\\|HQ", (3, "Username"): "renamed"}),
    ],
)
def test_csv_outputs_are_pinned(tmp_path: Path, capsys: pytest.CaptureFixture[str], samples: Path, dialect: str, sample: str,
                                edits: dict[tuple[int, str], Any]) -> None:
    rec = _Recorder(tmp_path, capsys)
    book = tmp_path / "team.xlsx"
    rec("export", "export", str(book), "--from-csv", str(samples / sample))
    wb = openpyxl.load_workbook(book)
    headers = {str(c.value) for c in wb["Users"][1] if c.value}
    wb.close()
    _edit(book, {k: v for k, v in edits.items() if k[1] in headers}, delete=7)
    rec("check --no-write", "check", str(book), "--no-write")
    rec("check", "check", str(book))
    rec("preview", "preview", str(book))
    rec("sync refused", "sync", str(book), "--yes")
    rows = sorted({c["row"] for c in rec.steps[-2]["json"]["changes"] if c["action"] == "error"})
    skip = ",".join(str(r) for r in rows)
    rec("sync --skip-rows", "sync", str(book), "--yes", "--skip-rows", skip)
    rec("revert", "revert", str(book))
    rec.compare(dialect)
