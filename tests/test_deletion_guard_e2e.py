"""The deletion guard end to end through the CLI: a truncated sheet and a truncated CSV export never
deactivate anyone. Each attempt exits 1 with a message and sends (or writes) nothing.

Incenteev is the seed platform that deactivates users missing from the upload file when its
'Deactivate users not present in the file' option is on: the dangerous case.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import load_workbook
from support.books import platform_users

from rosterbook import workbook as wbk
from rosterbook.cli import run
from rosterbook.sandbox import Sandbox

HEADERS = ["First name", "Last name", "Email", "Role(s)", "Permission profile", "Employee ID", "Job title", "Phone number", "Role ID"]
USERS = 300
KEPT = 120


def _export_text() -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADERS)
    for i in range(USERS):
        writer.writerow([f"Given{i}", f"Family{i}", f"user{i:03d}@example.com", "Sales Rep", "Participant", f"{i:05d}", "Account Executive", "", "R-310"])
    return buffer.getvalue()


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run(args)
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text and "internal error" not in text, text
    return code, text


def _set(book: Path, key: str, value: str) -> None:
    wb = load_workbook(book)
    for row in wb[wbk.SETTINGS].iter_rows(min_row=2):
        if row[0].value == key:
            row[1].value = value
    wb.save(book)


def _snapshot_keys(book: Path) -> int:
    wb = load_workbook(book, read_only=True)
    count = sum(1 for row in wb[wbk.SNAPSHOT].iter_rows(min_row=2, values_only=True) if row and row[0])
    wb.close()
    return count


@pytest.fixture
def incenteev(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    """An Incenteev workbook exported from a 300-user export, with 'deactivate users not present' on."""
    export = tmp_path / "incenteev_export.csv"
    export.write_text(_export_text(), encoding="utf-8")
    book = tmp_path / "book.xlsx"
    assert _cli(["export", str(book), "--from-csv", str(export)], capsys)[0] == 0
    _set(book, "deactivate_missing", "TRUE")
    return book, export


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".~"))


def test_a_truncated_sheet_trips_the_guard_and_writes_no_upload_file(incenteev: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    book, _ = incenteev
    wb = load_workbook(book)
    ws = wb[wbk.USERS]
    ws.delete_rows(KEPT + 2, USERS - KEPT)  # the sheet lost its last 180 rows (a bad paste, a filter-and-delete)
    wb.save(book)
    before = _files(book.parent)

    code, text = _cli(["sync", str(book), "--yes"], capsys)
    assert code == 1
    assert f"this sync would take access away from {USERS - KEPT} users (" in text
    assert "archived, deactivated or set to a status that cannot log in), more than the deletion guard's threshold of 30; nothing was sent." in text
    assert _files(book.parent) == before  # no upload file

    code, text = _cli(["preview", str(book)], capsys)
    assert code == 1
    assert f"{USERS - KEPT}" in text

    # The guard is what stopped it: confirmed, the full upload file (the 120 users left) is written.
    code, text = _cli(["sync", str(book), "--yes", "--confirm-deletions"], capsys)
    assert code == 0, text
    upload = next(p for p in book.parent.iterdir() if p.name.endswith(".csv") and p.name.startswith("book"))
    assert len(upload.read_text(encoding="utf-8").splitlines()) == KEPT + 1


def test_a_csv_export_cut_mid_row_is_refused(incenteev: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book, export = incenteev
    text = export.read_text(encoding="utf-8")
    cut = tmp_path / "cut.csv"
    cut.write_text(text[: int(len(text) * 0.4)], encoding="utf-8")  # an interrupted download
    saved = book.read_bytes()

    code, output = _cli(["export", str(book), "--from-csv", str(cut)], capsys)
    assert code == 1
    assert "cut.csv!" in output and "it looks cut short" in output and "Nothing was written." in output
    assert book.read_bytes() == saved
    assert _snapshot_keys(book) == USERS

    code, output = _cli(["check", str(cut)], capsys)
    assert code == 1 and "it looks cut short" in output

    fresh = tmp_path / "fresh.xlsx"
    code, output = _cli(["export", str(fresh), "--from-csv", str(cut)], capsys)
    assert code == 1 and "it looks cut short" in output
    assert not fresh.exists()


def test_a_csv_export_cut_at_a_line_end_trips_the_guard_at_export(incenteev: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book, export = incenteev
    lines = export.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = tmp_path / "cut.csv"
    cut.write_text("".join(lines[: KEPT + 1]), encoding="utf-8")  # whole rows only: nothing in the file says it is short
    saved = book.read_bytes()

    code, output = _cli(["export", str(book), "--from-csv", str(cut)], capsys)
    assert code == 1
    assert f"the export holds {KEPT} users, but this workbook's last export had {USERS}: {USERS - KEPT} of them are missing" in output
    assert "more than the deletion guard's threshold of 30" in output
    assert book.read_bytes() == saved
    before = _files(book.parent)
    code, output = _cli(["sync", str(book), "--yes"], capsys)
    assert code == 0  # the workbook still holds all 300 and nothing changed: no upload file, nobody deactivated
    assert "Nothing to upload: no user changes, so no upload file was written." in output
    assert _files(book.parent) == before

    # If they really left, --force takes the shorter export as the new baseline.
    code, output = _cli(["export", str(book), "--from-csv", str(cut), "--force"], capsys)
    assert code == 0, output
    assert _snapshot_keys(book) == KEPT


def test_a_truncated_sheet_on_a_scim_platform_sends_nothing(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """SCIM platforms ignore users missing from the sheet: the deleted rows archive nobody."""
    monkeypatch.delenv("ROSTERBOOK_TOKEN", raising=False)
    sandbox = fresh_sandbox(users=200, seed=6)
    book = tmp_path / "scim.xlsx"
    assert _cli(["export", str(book), "--platform", sandbox.url], capsys)[0] == 0
    wb = load_workbook(book)
    wb[wbk.USERS].delete_rows(50, 200)
    wb.save(book)
    writes = [r for r in sandbox.request_log if r.method != "GET"]

    code, output = _cli(["sync", str(book), "--yes", "--json"], capsys)
    assert code == 0, output
    assert '"sent": 0' in output
    assert [r for r in sandbox.request_log if r.method != "GET"] == writes


def test_every_loss_of_access_counts_against_the_guard(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # Every Active user set to Pending (none of them can log in afterwards): no archive at all, and still the guard trips.
    monkeypatch.delenv("ROSTERBOOK_TOKEN", raising=False)
    sandbox = fresh_sandbox(users=250, seed=6)
    book = tmp_path / "book.xlsx"
    assert _cli(["export", str(book), "--platform", sandbox.url], capsys)[0] == 0
    wb = load_workbook(book)
    ws = wb[wbk.USERS]
    col = {str(c.value): c.column for c in ws[1] if c.value is not None}
    losing = []
    for row in range(2, ws.max_row + 1):
        if ws.cell(row, col["Status"]).value == "Active":
            ws.cell(row, col["Status"]).value = "Pending"
            losing.append(str(ws.cell(row, col["Username"]).value))
    wb.save(book)
    assert len(losing) > 150
    writes = [r for r in sandbox.request_log if r.method != "GET"]

    code, text = _cli(["preview", str(book)], capsys)
    assert code == 1 and f"Deletion guard: {len(losing)} lose access ('{losing[0]}'" in text
    preview = {str(r[0]): r for r in load_workbook(book)[wbk.PREVIEW].iter_rows(values_only=True) if r and r[0]}
    assert preview["Losing access"][1] == len(losing) and losing[0] in str(preview["Losing access"][2])

    code, text = _cli(["sync", str(book), "--yes"], capsys)
    assert code == 1 and f"this sync would take access away from {len(losing)} users" in text and "nothing was sent" in text
    assert [r for r in sandbox.request_log if r.method != "GET"] == writes
    assert sum(1 for u in platform_users(sandbox.url).values() if u.get("active")) == len(losing)
