"""The round trip for each CSV-only seed platform: its export -> workbook -> edits -> check -> preview ->
sync (the upload file) -> the platform applies the upload -> its new export -> export again matches."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from rosterbook import app
from rosterbook.core.dialects import load_dialect
from rosterbook.csvfile import read_csv
from rosterbook.errors import DataError

# dialect, sample export, {sheet row: {column: new value}}, deleted sheet row, new user, expected counts
CASES: list[tuple[str, str, dict[int, dict[str, str]], int, dict[str, str], dict[str, int]]] = [
    ("progression", "progression_export.csv",
     {2: {"account_active": "Archived"}, 5: {"team": "Engineering"}}, 7,
     {"First Name": "Nia", "Last Name": "Hire", "email": "nia.hire@example.com", "account_active": "Pending"},
     {"archive": 1, "update": 1, "create": 1}),
    ("edapp", "edapp_export.csv",
     {2: {"Roles": "Admin; Learner; Prizing User; Reviewer"}, 4: {"Email": "priya.s@example.org"}}, 5,
     {"Email": "nia.hire@example.org", "First Name": "Nia", "Last Name": "Hire"},
     {"update": 2, "create": 1}),
    ("incenteev", "incenteev_users.csv",
     {2: {"Job title": "Directrice des ventes"}, 3: {"Role(s)": "Sales Director"}}, 5,
     {"First name": "Nia", "Last name": "Hire", "Email": "nia.hire@example.com", "Role(s)": "Sales Rep", "Permission profile": "Participant"},
     {"update": 2, "create": 1}),
    ("jostle", "jostle_extract.csv",
     {4: {"Location": "Toronto"}, 5: {"Work Email": "mobrien@example.net"}}, 6,
     {"Username": "nia.hire", "First Name": "Nia", "Last Name": "Hire"},
     {"update": 2, "create": 1}),
]


def _apply_upload(export: Path, upload: Path, dialect_name: str, out: Path) -> None:
    """What the platform does with the upload file: match by key, fill the given non-blank cells, add new users."""
    dialect = load_dialect(dialect_name)
    base = read_csv(export)
    sent = read_csv(upload)
    heads = [h.lstrip("\ufeff") for h in base.headers]
    key_of = {h: i for i, h in enumerate(heads)}

    def key(values: dict[str, str]) -> str:
        found = values.get(dialect.key) or (values.get(dialect.key_fallback or "") if dialect.key_fallback else "")
        return (found or "").casefold()

    rows = [dict(zip(heads, r + [""] * (len(heads) - len(r)), strict=True)) for r in base.rows if r]
    index = {key(r): r for r in rows}
    for raw in sent.rows:
        if not raw:
            continue
        values = dict(zip([h.lstrip("\ufeff") for h in sent.headers], raw, strict=True))
        if dialect.key_fallback and not values.get(dialect.key):
            values[dialect.key] = values[dialect.key_fallback]
        target = index.get(key(values))
        if target is None:
            target = dict.fromkeys(heads, "")
            rows.append(target)
            index[key(values)] = target
        for name, value in values.items():
            if name in key_of and value != "" and dialect.find_column(name) is not None and not dialect.column(dialect.find_column(name).name).write_only:  # type: ignore[union-attr]
                target[name] = value
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(heads)
        writer.writerows([[r[h] for h in heads] for r in rows])


def _sheet_rows(book: Path) -> tuple[list[str], list[dict[str, Any]]]:
    ws = openpyxl.load_workbook(book)["Users"]
    heads = [str(c.value) for c in ws[1]]
    rows = [dict(zip(heads, r, strict=False)) for r in ws.iter_rows(min_row=2, values_only=True) if any(v is not None for v in r[: heads.index("Problems")])]
    return heads, rows


@pytest.mark.parametrize(("dialect", "sample", "edits", "deleted", "new_user", "counts"), CASES, ids=[c[0] for c in CASES])
def test_csv_platform_round_trip(
    tmp_path: Path, samples: Path, dialect: str, sample: str, edits: dict[int, dict[str, str]], deleted: int,
    new_user: dict[str, str], counts: dict[str, int],
) -> None:
    book = tmp_path / "team.xlsx"
    exported = app.export_workbook(book, from_csv=samples / sample)
    assert exported["dialect"] == dialect and exported["source"] == "csv"
    original_rows = len(_sheet_rows(book)[1])
    assert exported["rows"] == original_rows

    wb = openpyxl.load_workbook(book)
    ws = wb["Users"]
    cols = {str(c.value): c.column for c in ws[1] if c.value}
    key_col = cols[load_dialect(dialect).key]
    edited_keys = {row: ws.cell(row, key_col).value for row in edits}
    deleted_key = ws.cell(deleted, key_col).value
    for row, change in edits.items():
        for name, value in change.items():
            ws.cell(row, cols[name]).value = value
    new_row = ws.max_row + 1
    for name, value in new_user.items():
        ws.cell(new_row, cols[name]).value = value
    ws.delete_rows(deleted)
    wb.save(book)

    report = app.check_workbook(book)
    assert report.errors == 0, report.render_text()
    plan = app.preview_workbook(book)
    assert {k: v for k, v in plan.counts.items() if v and k != "unchanged"} == counts

    result = app.sync_workbook(book)
    upload = Path(result["upload_file"])
    assert upload.parent == tmp_path and upload.exists()
    assert result["sent"] == sum(counts.values()) and result["upload_rows"] == sum(counts.values())
    sent = read_csv(upload)
    assert len([r for r in sent.rows if r]) == sum(counts.values())
    log = list(openpyxl.load_workbook(book)["Sync log"].iter_rows(min_row=2, values_only=True))
    assert {r[4] for r in log} == {"written"} and len(log) == sum(counts.values())

    # Until the platform has the upload, the edits are unsynced: exporting the old file again is refused.
    with pytest.raises(DataError, match="unsynced edits"):
        app.export_workbook(book, from_csv=samples / sample)
    # The platform applies the upload; its next export carries the edits, so exporting it is not refused.
    after = tmp_path / "after.csv"
    _apply_upload(samples / sample, upload, dialect, after)
    app.export_workbook(book, from_csv=after)
    heads, rows = _sheet_rows(book)
    by_key = {str(r[heads[key_col - 1]]).casefold(): r for r in rows}
    assert len(rows) == original_rows + 1
    assert str(deleted_key).casefold() in by_key  # removing a row removes nobody on these platforms
    for row, change in edits.items():
        for name, value in change.items():
            assert by_key[str(edited_keys[row]).casefold()][name] == value
    new_key = new_user.get(load_dialect(dialect).key) or new_user["Email"]
    assert all(by_key[new_key.casefold()][k] == v for k, v in new_user.items())
    assert app.preview_workbook(book).sendable() == []


def test_changing_an_immutable_key_is_an_error_not_a_new_user(tmp_path: Path, samples: Path) -> None:
    book = tmp_path / "progression.xlsx"
    app.export_workbook(book, from_csv=samples / "progression_export.csv")
    wb = openpyxl.load_workbook(book)
    ws = wb["Users"]
    cols = {str(c.value): c.column for c in ws[1] if c.value}
    ws.cell(3, cols["email"]).value = "tomasz.n@example.com"
    wb.save(book)
    plan = app.preview_workbook(book)
    assert plan.counts["create"] == 0 and plan.counts["error"] == 1
    with pytest.raises(DataError, match=r"row 3"):
        app.sync_workbook(book)
    result = app.sync_workbook(book, skip_rows=[3])
    assert result["sent"] == 0


def test_from_csv_needs_a_recognisable_header(tmp_path: Path) -> None:
    odd = tmp_path / "odd.csv"
    odd.write_text("Name,Favourite colour\nAnn,blue\n", encoding="utf-8")
    with pytest.raises(app.UsageError, match="give --dialect"):
        app.export_workbook(tmp_path / "x.xlsx", from_csv=odd)
    assert not (tmp_path / "x.xlsx").exists()


def test_export_into_an_open_book_keeps_the_sync_log(tmp_path: Path, samples: Path) -> None:
    from rosterbook.xlsx import OpenpyxlBook

    book = tmp_path / "team.xlsx"
    app.export_workbook(book, from_csv=samples / "jostle_extract.csv")
    wb = openpyxl.load_workbook(book)
    wb["Users"]["E2"] = "Chief Everything Officer"
    wb.save(book)
    app.sync_workbook(book)
    # The ribbon exports into the workbook open in Excel: the same function on a SheetBook.
    rows = len(app.load(app.open_book(book)).table.rows)
    result = app.export_workbook(OpenpyxlBook(book), from_csv=samples / "jostle_extract.csv", force=True)
    assert result["rows"] == rows
    log = list(openpyxl.load_workbook(book)["Sync log"].iter_rows(min_row=2, values_only=True))
    assert [(r[1], r[4]) for r in log] == [("2", "written")]
    assert openpyxl.load_workbook(book)["Users"]["E2"].value != "Chief Everything Officer"
