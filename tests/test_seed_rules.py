"""Every rule of the seed help pages that a fresh file once broke (issue 15, "Why"), each case reproduced as a new user
would meet it: the platform's export -> workbook -> edit -> check / preview / sync, then what the seed says."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import openpyxl
import pytest
from support.books import edit_rows

from rosterbook import app
from rosterbook.cli import run
from rosterbook.core.dialects import recognise
from rosterbook.csvfile import read_csv

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def _export(tmp_path: Path, sample: Path) -> Path:
    book = tmp_path / "team.xlsx"
    app.export_workbook(book, from_csv=sample)
    return book



def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _problems(book: Path) -> list[tuple[str, str, str, str | None]]:
    return [(p.cell, p.code, p.severity, p.fix) for p in app.check_workbook(book, write=False).problems]


# --- EdApp deletes columns (002: "Update fields without deleting any columns") -------------------------


def test_edapp_upload_keeps_custom_fields_and_password_though_the_changed_row_leaves_them_blank(tmp_path: Path, samples: Path) -> None:
    book = _export(tmp_path, samples / "edapp_export.csv")
    edit_rows(book, {(7, "First Name"): "William"})  # Liam: no groups, no Job Title, no Department
    upload = read_csv(app.sync_workbook(book).upload_file)
    assert upload.headers == ["Email", "Username", "First Name", "Last Name", "User groups", "Roles", "Password", "External ID", "Job Title", "Department"]
    assert upload.rows == [["liam.walsh@example.org", "lwalsh", "William", "Walsh", "", "Learner; Prizing User", "", "000440", "", ""]]


# --- upload headers follow the platform's export ------------------------------------------------------


def test_progression_export_spelling_order_and_delimiter_come_back(tmp_path: Path, samples: Path) -> None:
    book = _export(tmp_path, samples / "progression_export_reordered.csv")
    edit_rows(book, {(2, "Last Name"): "Okafor-Eze"})
    data = Path(app.sync_workbook(book).upload_file).read_bytes()
    assert data.startswith("\ufeffemail;first_name;last_name;account_active;team;position;manager\r\n".encode())


def test_a_workbook_from_the_template_writes_the_dialects_canonical_header(tmp_path: Path) -> None:
    book = tmp_path / "team.xlsx"
    shutil.copy(TEMPLATES / "UserTemplate-edapp.xlsx", book)
    edit_rows(book, {(2, "Email"): "nia.hire@example.org", (2, "First Name"): "Nia"})
    data = Path(app.sync_workbook(book).upload_file).read_bytes()
    assert data == b"Email,Username,First Name,Last Name,User groups,Roles,Password,External ID\r\nnia.hire@example.org,,Nia,,,Learner; Prizing User,,\r\n"


def test_edapp_lower_case_names_are_recognised_as_edapp_and_the_choice_explained(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    headers = ["email", "username", "firstname", "lastname"]  # 002's own field names: once recognised as Progression
    found = recognise(headers)
    assert found.dialect is not None and found.dialect.name == "edapp"
    assert found.reason == ("recognised as EdApp (SafetyCulture Training) ('edapp'), not Progression ('progression'): "
                            "4 headers are spelled as EdApp (SafetyCulture Training) documents them, 1 as Progression does")
    path = tmp_path / "users.csv"
    path.write_text("email,username,firstname,lastname\nada@example.org,ada,Ada,Lovelace\n", encoding="utf-8")
    code, _out, err = _cli(capsys, "check", str(path))
    assert code == 0 and err.startswith("users.csv: recognised as EdApp (SafetyCulture Training) ('edapp'), not Progression")
    code, _out, err = _cli(capsys, "export", str(tmp_path / "u.xlsx"), "--from-csv", str(path))
    assert code == 0 and "(dialect edapp" in _out and "not Progression ('progression')" in err


def test_two_dialects_fitting_equally_are_named_in_the_refusal(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text("Username,First Name\nann,Ann\n", encoding="utf-8")  # EdApp's and Jostle's own spellings alike
    with pytest.raises(app.UsageError, match=r"cannot tell which platform this header row is for \(the header row fits .* and .* equally"):
        app.export_workbook(tmp_path / "u.xlsx", from_csv=path)


# --- Jostle partial files (004) ------------------------------------------------------------------------


def test_jostle_rows_changing_different_columns_each_carry_their_exported_value(tmp_path: Path, samples: Path) -> None:
    # Once: 'kwame,,,,,,they/them' - blanks in the other row's column, trusting Jostle to read blank as "keep".
    book = _export(tmp_path, samples / "jostle_extract.csv")
    edit_rows(book, {(2, "Job Title"): "CEO", (3, "Work Phone"): "+1 416 555 0999"})
    upload = read_csv(app.sync_workbook(book).upload_file)
    assert upload.headers == ["Username", "Job Title", "Work Phone"]
    assert upload.rows == [["sarah.lee", "CEO", "+1 416 555 0100"], ["david.cohen", "VP Operations", "+1 416 555 0999"]]


# --- upload-time choices are stated ---------------------------------------------------------------------


def test_incenteev_preview_and_sync_say_simulation_mode_and_whether_to_tick_deactivate(tmp_path: Path, samples: Path,
                                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    book = _export(tmp_path, samples / "incenteev_users.csv")
    edit_rows(book, {(3, "Job title"): "Head of Sales North"})
    code, out, _err = _cli(capsys, "preview", str(book), "--json")
    guidance = json.loads(out)["upload_guidance"]
    assert [g["choice"] for g in guidance] == ["Simulation mode", "Deactivate users not present in the file"]
    assert guidance[1]["advice"].startswith("Do NOT tick 'Deactivate users not present in the file': this file holds only the changed users")
    preview = [r for r in openpyxl.load_workbook(book)["Preview"].iter_rows(values_only=True)]
    at = preview.index(("When you upload the file", "(choose this on the platform's upload screen)", None, None, None, None, None))
    assert [r[0] for r in preview[at + 1 : at + 3]] == ["Simulation mode", "Deactivate users not present in the file"]
    code, out, _err = _cli(capsys, "sync", str(book), "--yes")
    assert code == 0
    assert "  - Simulation mode: Upload in simulation mode first (it is on by default)" in out
    assert "  - Deactivate users not present in the file: Do NOT tick" in out


def test_edapp_sync_restates_the_invitation_toggle_and_add_or_replace(tmp_path: Path, samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = _export(tmp_path, samples / "edapp_export.csv")
    edit_rows(book, {(3, "Roles"): "Learner; Prizing User; Reviewer"}, new={"Email": "nia.hire@example.org"},
          settings={"invite_new_users": "TRUE", "list_mode": "add"})
    code, out, _err = _cli(capsys, "sync", str(book), "--yes", "--json")
    assert code == 0
    assert [g["advice"] for g in json.loads(out)["upload_guidance"]] == [
        "Turn ON 'send invitations to new users' (Settings: invite_new_users is TRUE): the 1 new user(s) in this file get an invitation.",
        "Choose 'Add' for existing users' User groups and Roles (Settings: list_mode is add): the items in this file are added to what each user has.",
    ]


def test_settings_show_only_the_platforms_own_options(tmp_path: Path, samples: Path) -> None:
    shown = {}
    for sample in ("progression_export.csv", "edapp_export.csv", "incenteev_users.csv", "jostle_extract.csv"):
        book = tmp_path / sample.replace(".csv", ".xlsx")
        app.export_workbook(book, from_csv=samples / sample)
        names = [r[0] for r in openpyxl.load_workbook(book)["Settings"].iter_rows(min_row=2, values_only=True)]
        shown[sample] = [n for n in names if n in ("invite_new_users", "list_mode", "deactivate_missing")]
    assert shown == {"progression_export.csv": [], "edapp_export.csv": ["invite_new_users", "list_mode"],
                     "incenteev_users.csv": ["deactivate_missing"], "jostle_extract.csv": []}


def test_dialects_command_lists_the_upload_time_choices(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = _cli(capsys, "dialects", "incenteev")
    assert code == 0
    assert "upload-time choices (the preview and the sync say what to choose for each file):\n  Simulation mode:\n    always: Upload in simulation mode first" in out
    assert "  Deactivate users not present in the file (follows the deactivate_missing setting):\n    on: Tick" in out
    assert "the N user(s) missing from it will be deactivated" in out
    code, out, _err = _cli(capsys, "dialects", "edapp")
    assert "  Send invitations to new users (follows the invite_new_users setting):" in out
    assert "    replace: Choose 'Replace'" in out
    code, out, _err = _cli(capsys, "dialects", "edapp", "--json")
    assert [c["choice"] for c in json.loads(out)["upload_choices"]] == [
        "Send invitations to new users", "Existing users import settings (User groups and Roles: Add or Replace)"]


# --- Jostle's unescaped | against known locations (004) ------------------------------------------------


def test_jostle_unescaped_pipe_splitting_a_known_location_is_an_error_escaping_only_it(tmp_path: Path, samples: Path) -> None:
    book = _export(tmp_path, samples / "jostle_extract.csv")
    assert _problems(book) == []  # the clean export's real multi-value cells ('Toronto | Remote') are never flagged
    edit_rows(book, {(2, "Location"): "Remote|Main|HQ"})
    assert _problems(book) == [("F2", "splits-known-value", "error", "Remote|Main\\|HQ")]
    with pytest.raises(app.DataError, match="row 2"):
        app.sync_workbook(book)


# --- EdApp group spelling (002: "written exactly how the user group is named") ------------------------


def test_edapp_group_spelled_in_another_case_is_an_error_with_the_exact_name(tmp_path: Path, samples: Path) -> None:
    book = _export(tmp_path, samples / "edapp_export.csv")
    edit_rows(book, {(3, "User groups"): "Operations;  safety   committee"})
    assert _problems(book) == [("E3", "inexact-value", "error", "operations; safety committee")]
    assert app.preview_workbook(book).counts["error"] == 1


# --- edits that do nothing are explained ---------------------------------------------------------------


def test_a_cleared_blank_keeps_cell_is_a_warning_saying_it_will_not_be_cleared(tmp_path: Path, samples: Path) -> None:
    book = _export(tmp_path, samples / "progression_export.csv")
    edit_rows(book, {(3, "manager"): None, (3, "position"): None})  # 000: blank manager/position "any existing values will remain"
    found = app.check_workbook(book, write=False).problems
    assert [(p.cell, p.code, p.severity) for p in found] == [("D3", "blank-keeps", "warning"), ("F3", "blank-keeps", "warning")]
    assert found[1].message == ("blank keeps the current value on Progression: 'amara.okafor@example.com' will not be cleared - "
                                "a file cannot clear it; clear it on Progression itself, or type the value back.")
    assert app.preview_workbook(book).counts["update"] == 0


def test_a_deleted_row_that_changes_nothing_is_listed_in_the_preview_with_why(tmp_path: Path, samples: Path,
                                                                             capsys: pytest.CaptureFixture[str]) -> None:
    book = _export(tmp_path, samples / "edapp_export.csv")
    edit_rows(book, {}, delete=5)  # marco: 002 "it WILL NOT remove their learner profile"
    code, out, _err = _cli(capsys, "preview", str(book))
    assert code == 0
    assert ("unchanged not in the sheet marco.bianchi@example.org\n  note: deleted from the sheet, but EdApp (SafetyCulture Training) keeps users "
            "missing from the file: nothing changes.") in out
    rows = list(openpyxl.load_workbook(book)["Preview"].iter_rows(values_only=True))
    assert any(r[1] == "marco.bianchi@example.org" and r[2] == "unchanged" and "nothing changes" in (r[6] or "") for r in rows)


# --- invitations (000/001) --------------------------------------------------------------------------------


def test_a_pending_user_made_active_is_counted_as_an_invitation(tmp_path: Path, samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = _export(tmp_path, samples / "progression_export.csv")
    edit_rows(book, {(6, "account_active"): "Active"})  # Rahul, Pending: "not yet been sent an invite"
    code, out, _err = _cli(capsys, "preview", str(book), "--json")
    plan = json.loads(out)
    assert code == 0
    assert plan["invitations"] == {"count": 1, "keys": ["rahul.menon@example.com"]}
    assert plan["seats"]["after"] == plan["seats"]["before"] + 1


# --- passwords (002) -------------------------------------------------------------------------------------


def test_a_password_is_written_once_cleared_from_the_workbook_and_never_in_the_snapshot(tmp_path: Path, samples: Path) -> None:
    book = _export(tmp_path, samples / "edapp_export.csv")
    edit_rows(book, {(3, "Password"): "Tr0ub4dor&3"})
    first = app.sync_workbook(book)
    assert "Tr0ub4dor&3" in Path(first.upload_file).read_text(encoding="utf-8")
    wb = openpyxl.load_workbook(book)
    assert all("Tr0ub4dor&3" not in str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row)
    assert [r[8] for r in wb["Sync log"].iter_rows(min_row=2, values_only=True)][-1].endswith("Password set (cell cleared)")
    again = app.sync_workbook(book)  # the password is not sent again
    assert again.upload_file is None and again.summary.startswith("Nothing to upload")


# --- nothing altered silently (CSV injection guard) ------------------------------------------------------


def test_a_cell_the_upload_file_escapes_is_warned_previewed_and_reported(tmp_path: Path, samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = _export(tmp_path, samples / "incenteev_users.csv")
    edit_rows(book, {(3, "Job title"): "-Head of Ops"})
    assert _problems(book) == [("G3", "csv-escaped", "warning", "Head of Ops")]
    code, out, _err = _cli(capsys, "preview", str(book), "--json")
    assert code == 0
    assert json.loads(out)["escaped_cells"] == [{"row": 3, "key": "hugo.bernard@example.com", "column": "Job title", "value": "'-Head of Ops"}]
    code, out, _err = _cli(capsys, "sync", str(book), "--yes")
    assert "row 3 (hugo.bernard@example.com) Job title: written as \"'-Head of Ops\"" in out
    # Phone numbers (Samuel's has an extension) and plain numbers are written as they are.
    assert _problems(book) == [("G3", "csv-escaped", "warning", "Head of Ops")]


# --- Progression managers ----------------------------------------------------------------------------------


def test_a_manager_must_be_a_user_not_oneself_and_not_in_a_circle(tmp_path: Path, samples: Path) -> None:
    book = _export(tmp_path, samples / "progression_export.csv")
    edit_rows(book, {(3, "manager"): "nobody@example.com", (4, "manager"): "zoe.lefevre@example.com", (2, "manager"): "ben.carter@example.com",
                 (14, "manager"): "kwame.mensah@example.com", (5, "manager"): "nia.hire@example.com"},
          new={"First Name": "Nia", "Last Name": "Hire", "email": "nia.hire@example.com", "account_active": "Pending"})
    found = {(p.cell, p.code) for p in app.check_workbook(book, write=False).problems if p.severity == "error"}
    # Row 2 Amara -> Ben (row 14) -> Kwame (row 16, managed by Ben): no circle; Ben -> Kwame -> Ben is one.
    assert found == {("F3", "unknown-reference"), ("F4", "self-reference"), ("F14", "reference-cycle")}


# --- valid addresses on special-use domains -----------------------------------------------------------------


def test_a_staging_tenant_with_test_local_and_internal_addresses_checks_clean_with_one_note(tmp_path: Path, samples: Path,
                                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = _cli(capsys, "check", str(samples / "progression_export_staging.csv"))
    assert code == 0
    assert out == ("progression_export_staging.csv!C2 email: 'ada@acme.test' and 5 other addresses use a special-use domain "
                   "(.test, .local, .internal): valid, but such addresses cannot receive mail on the internet, so invitations "
                   "and emails to them will not arrive (fine for a test tenant). (warning)\n")
    book = _export(tmp_path, samples / "progression_export_staging.csv")
    edit_rows(book, {}, new={"First Name": "Nia", "Last Name": "Hire", "email": "nia@acme.test", "account_active": "Active"})
    assert [p.code for p in app.check_workbook(book, write=False).problems] == ["special-use-domain"]
    assert app.preview_workbook(book).invitations == ("nia@acme.test",)


# --- smaller ones ---------------------------------------------------------------------------------------------


def test_nothing_changed_writes_no_upload_file_and_says_so(tmp_path: Path, samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = _export(tmp_path, samples / "progression_export.csv")
    code, out, _err = _cli(capsys, "sync", str(book), "--yes")
    assert (code, out) == (0, "Nothing to upload: no user changes, so no upload file was written.\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["team.xlsx"]
    edit_rows(book, {(2, "Last Name"): "Okafor-Eze"})
    app.sync_workbook(book)
    edit_rows(book, {(2, "Last Name"): "Okafor"})
    code, out, _err = _cli(capsys, "sync", str(book), "--yes", "--json")
    result = json.loads(out)
    assert (result["upload_file"], result["upload_rows"], result["upload_guidance"]) == (None, 0, [])
    code, out, _err = _cli(capsys, "sync", str(book), "--yes")
    assert code == 0
    assert "team-upload.csv beside the workbook is from an earlier sync: do not upload it again." in out


def test_the_readme_dialect_table_mentions_every_upload_time_choice() -> None:
    from rosterbook.core.dialects import all_dialects

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `"): line for line in readme.split("## Dialects", 1)[1].splitlines() if line.startswith("| `")}
    for dialect in all_dialects():
        for choice in dialect.upload_choices:
            wanted = choice.option or choice.choice.casefold()
            assert wanted in rows[dialect.name].casefold(), (dialect.name, wanted)


def test_platform_text_starting_with_equals_is_not_a_typed_formula_but_its_escape_is_said(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text("First Name,Last Name,email,position,team,manager,account_active\r\n"
                      'Bo,"=HYPERLINK(""http://x"",""y"")",bo@example.com,,Core,,Active\r\n', encoding="utf-8")
    book = _export(tmp_path, export)
    assert _problems(book) == [("B2", "csv-escaped", "warning", 'HYPERLINK("http://x","y")')]
    edit_rows(book, {(2, "team"): "Platform"})
    plan = app.preview_workbook(book)
    assert [(e.column, e.value) for e in plan.escaped_cells] == [("Last Name", '\'=HYPERLINK("http://x","y")')]
