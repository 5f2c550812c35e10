"""For each seed platform: its export CSV -> workbook -> edits -> the upload file, compared byte for byte with a file
written by hand from the seed's rules (``tests/samples/expected_uploads/``, see its README).

What the expected files hold, and why: the header cells spelled as the export spelled them, in its order; the
export's delimiter, encoding, BOM and line ends; only the rows that change (every row when Incenteev's
"Deactivate users not present in the file" is on); every column kept (EdApp 002: "Update fields without
deleting any columns"), Password blank unless set; Jostle (004): Username plus the changed columns, each row
carrying its exported value where it changed nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import pytest
from support.books import edit_rows

from rosterbook import app
from rosterbook.workbook import FILE_FORMAT

EXPECTED = Path(__file__).resolve().parent / "samples" / "expected_uploads"



def _round_trip(tmp_path: Path, export: Path, edits: dict[tuple[int, str], Any], **kwargs: Any) -> tuple[Path, Any, Any]:
    book = tmp_path / "team.xlsx"
    app.export_workbook(book, from_csv=export)
    edit_rows(book, edits, **kwargs)
    report = app.check_workbook(book)
    assert report.ok, report.render_text()
    plan = app.preview_workbook(book)
    result = app.sync_workbook(book)
    return book, plan, result


def test_progression_upload_mirrors_a_reordered_semicolon_export_with_a_bom(tmp_path: Path, samples: Path) -> None:
    # 000: "Once amended, you can then import and sync the users from the same page": the file Progression gave back.
    book, plan, result = _round_trip(
        tmp_path, samples / "progression_export_reordered.csv",
        {(4, "team"): "Platform", (5, "account_active"): "Active"},
        new={"First Name": "Nia", "Last Name": "Hire", "email": "nia.hire@example.com", "account_active": "Active",
             "team": "Data", "position": "Data Analyst", "manager": "mei.tanaka@example.com"},
        delete=7,
    )
    assert Path(result.upload_file).read_bytes() == (EXPECTED / "progression_reordered-upload.csv").read_bytes()
    # Rahul moves Pending -> Active (000: Pending users have not been sent an invite), Nia is created Active (001).
    assert plan.invitations == ("nia.hire@example.com", "rahul.menon@example.com")
    # Mei's deleted row changes nothing (000: "If an existing employee is not included we won't remove them").
    mei = next(c for c in plan.changes if c.key == "mei.tanaka@example.com")
    assert mei.action == "unchanged" and mei.row is None and "set account_active to 'Archived'" in mei.notes[0]
    # The export's format is remembered out of sight, in a very hidden sheet (never an editable Settings value).
    wb = openpyxl.load_workbook(book)
    assert wb[FILE_FORMAT].sheet_state == "veryHidden"
    assert not any("first_name" in str(c.value) for row in wb["Settings"].iter_rows() for c in row)


def test_edapp_upload_keeps_every_column_and_the_password_is_cleared_once_written(tmp_path: Path, samples: Path) -> None:
    book, plan, result = _round_trip(
        tmp_path, samples / "edapp_export.csv",
        {(2, "Roles"): "Admin; Learner; Prizing User; Reviewer", (4, "Password"): "N3w-Passw0rd!", (6, "Job Title"): "Senior Sales Associate"},
        new={"Email": "nia.hire@example.org", "First Name": "Nia", "Last Name": "Hire", "User groups": "sales"},
        delete=7,
    )
    assert Path(result.upload_file).read_bytes() == (EXPECTED / "edapp-upload.csv").read_bytes()
    assert [a.choice for a in plan.guidance] == ["Send invitations to new users", "Existing users import settings (User groups and Roles: Add or Replace)"]
    wb = openpyxl.load_workbook(book)
    ws = wb["Users"]
    cols = {str(c.value): c.column for c in ws[1] if c.value}
    assert ws.cell(4, cols["Password"]).value is None  # the upload file took it: gone from the workbook
    log = [r for r in wb["Sync log"].iter_rows(min_row=2, values_only=True) if r[0]]
    assert [r[8] for r in log if r[2] == "pshah"] == ["written to team-upload.csv; upload it to EdApp (SafetyCulture Training), then export again; "
                                                      "Password set (cell cleared)"]
    assert not any("N3w-Passw0rd!" in str(c) for r in log for c in r)
    assert app.preview_workbook(book).counts["update"] == 2  # the password is not sent again


def test_edapp_upload_keeps_the_seeds_lower_case_names_and_the_bom(tmp_path: Path, samples: Path) -> None:
    # 002 names its fields email, username, firstname, lastname, externalid; Excel's "CSV UTF-8" has a BOM, so accents survive.
    exported = app.export_workbook(tmp_path / "team.xlsx", from_csv=samples / "edapp_export_lowercase.csv")
    assert exported.dialect == "edapp"
    _book, _plan, result = _round_trip(tmp_path, samples / "edapp_export_lowercase.csv", {(2, "Last Name"): "Nováková"})
    assert Path(result.upload_file).read_bytes() == (EXPECTED / "edapp_lowercase-upload.csv").read_bytes()


def test_incenteev_upload_in_windows_1252_with_semicolons(tmp_path: Path, samples: Path) -> None:
    _book, plan, result = _round_trip(
        tmp_path, samples / "incenteev_users_semicolon_cp1252.csv",
        {(2, "Job title"): "Directrice générale", (4, "Role(s)"): "Sales Rep; Team Lead"},
        new={"First name": "Nia", "Last name": "Hire", "Email": "nia.hire@example.com", "Role(s)": "Sales Rep", "Permission profile": "Participant"},
        delete=5,
    )
    assert Path(result.upload_file).read_bytes() == (EXPECTED / "incenteev_cp1252-upload.csv").read_bytes()
    assert [a.advice for a in plan.guidance] == [
        "Upload in simulation mode first (it is on by default); check the email of changes Incenteev sends, then upload the same file again without simulation mode.",
        "Do NOT tick 'Deactivate users not present in the file': this file holds only the changed users, so ticking it would deactivate everyone else.",
    ]


def test_incenteev_full_file_when_deactivate_missing_is_on(tmp_path: Path, samples: Path) -> None:
    # 003: "Tick the 'Deactivate users not present in the file' box if you want to keep ... only the employees listed".
    _book, plan, result = _round_trip(
        tmp_path, samples / "incenteev_users_semicolon_cp1252.csv",
        {(2, "Job title"): "Directrice générale", (4, "Role(s)"): "Sales Rep; Team Lead"},
        new={"First name": "Nia", "Last name": "Hire", "Email": "nia.hire@example.com", "Role(s)": "Sales Rep", "Permission profile": "Participant"},
        delete=5, settings={"deactivate_missing": "TRUE"},
    )
    assert Path(result.upload_file).read_bytes() == (EXPECTED / "incenteev_full-upload.csv").read_bytes()
    assert plan.counts["deactivate"] == 1
    assert plan.guidance[1].advice == (
        "Tick 'Deactivate users not present in the file': this is the full list of users, and the 1 user(s) missing from it will be deactivated."
    )


def test_jostle_partial_upload_with_a_bom_and_lf_line_ends(tmp_path: Path, samples: Path) -> None:
    _book, _plan, result = _round_trip(
        tmp_path, samples / "jostle_extract_bom_lf.csv",
        {(4, "Location"): "Main\\|HQ|Remote", (7, "Job Title"): "Chef de service"},
        new={"Username": "nia.hire", "First Name": "Nia", "Last Name": "Hire", "Work Email": "nia.hire@example.net"},
        delete=12,
    )
    assert Path(result.upload_file).read_bytes() == (EXPECTED / "jostle_bom_lf-upload.csv").read_bytes()


@pytest.mark.parametrize("name", sorted(p.name for p in EXPECTED.glob("*.csv")))
def test_every_expected_upload_is_checked_clean_as_the_platform_would_read_it(samples: Path, name: str) -> None:
    """The hand-written files are valid upload files for their platform (rosterbook's own check, recognised from the header)."""
    from rosterbook.csvfile import check_csv, read_csv

    dialect = {"progression": "progression", "edapp": "edapp", "incenteev": "incenteev", "jostle": "jostle"}[name.partition("-")[0].partition("_")[0]]
    assert read_csv(EXPECTED / name).rows
    report = check_csv(EXPECTED / name, dialect)
    assert report.errors == 0, report.render_text()


def test_the_export_format_survives_a_workbook_saved_by_libreoffice(tmp_path: Path, samples: Path) -> None:
    """The remembered format lives in a very hidden sheet: a spreadsheet program saving the workbook keeps it."""
    import shutil
    import subprocess

    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.fail("LibreOffice (soffice) is missing: apt-get install -y libreoffice-calc-nogui")
    edited = tmp_path / "edited" / "team.xlsx"
    edited.parent.mkdir()
    app.export_workbook(edited, from_csv=samples / "progression_export_reordered.csv")
    edit_rows(edited, {(4, "team"): "Platform", (5, "account_active"): "Active"},
          new={"First Name": "Nia", "Last Name": "Hire", "email": "nia.hire@example.com", "account_active": "Active",
               "team": "Data", "position": "Data Analyst", "manager": "mei.tanaka@example.com"},
          delete=7)
    saved = tmp_path / "saved"
    command = [soffice, f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}", "--headless", "--convert-to", "xlsx:Calc MS Excel 2007 XML",
               "--outdir", str(saved), str(edited)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0 and (saved / "team.xlsx").exists(), done.stdout + done.stderr
    # LibreOffice has no "very hidden": it saves the sheet hidden, as it does the snapshot.
    assert openpyxl.load_workbook(saved / "team.xlsx")[FILE_FORMAT].sheet_state == "hidden"
    result = app.sync_workbook(saved / "team.xlsx")
    assert Path(result.upload_file).read_bytes() == (EXPECTED / "progression_reordered-upload.csv").read_bytes()
