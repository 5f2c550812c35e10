"""Undo on the CSV platforms: for each seed platform, export -> edits -> sync (the upload file) -> undo, and the reverse
upload file compared byte for byte with a file written by hand from the seed's rules (``tests/samples/expected_undo/``,
see its README), with what to choose when uploading it and what a file cannot put back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import pytest
from support.books import edit_rows

from rosterbook import app
from rosterbook import workbook as wbk
from rosterbook.cli import run
from rosterbook.errors import DataError
from rosterbook.undo import preview_undo, undo_sync

EXPECTED = Path(__file__).resolve().parent / "samples" / "expected_undo"



def _synced(tmp_path: Path, export: Path, edits: dict[tuple[int, str], Any], **kwargs: Any) -> tuple[Path, Any]:
    book = tmp_path / "team.xlsx"
    app.export_workbook(book, from_csv=export)
    edit_rows(book, edits, **kwargs)
    result = app.sync_workbook(book)
    assert result.ok and result.upload_file is not None
    return book, result


def _cells(book: Path, key: str, column: str, key_column: str) -> Any:
    wb = openpyxl.load_workbook(book, read_only=True)
    rows = list(wb[wbk.USERS].iter_rows(values_only=True))
    wb.close()
    head = [str(h) for h in rows[0]]
    return next(r[head.index(column)] for r in rows[1:] if r[head.index(key_column)] == key)


NIA = {"First Name": "Nia", "Last Name": "Hire", "email": "nia.hire@example.com", "account_active": "Active", "team": "Data",
       "position": "Data Analyst", "manager": "mei.tanaka@example.com"}


def test_progression_undo_right_after_the_sync(tmp_path: Path, samples: Path) -> None:
    book, synced = _synced(tmp_path, samples / "progression_export_reordered.csv",
                           {(4, "team"): "Platform", (5, "account_active"): "Active", (6, "position"): "Engineer III"}, new=NIA)
    upload = Path(synced.upload_file)
    plan = preview_undo(book)
    assert plan.undo_of == synced.sync_id
    assert {a: n for a, n in plan.counts.items() if n and a != "unchanged"} == {"update": 3, "archive": 1}
    assert plan.guard.losing == ("rahul.menon@example.com", "nia.hire@example.com")  # Active -> Pending, and the new user archived
    result = undo_sync(book)
    # Not exported since the sync: the platform's state is unknown, so every field goes back (setting a value it holds changes nothing).
    assert Path(result.upload_file) == upload  # the same place as any upload file, replacing the sync's
    assert upload.read_bytes() == (EXPECTED / "progression_reordered-undo.csv").read_bytes()
    assert result.undo_of == synced.sync_id and result.sync_id != synced.sync_id
    assert [n for n in result.cannot_undo if "invitation e-mail after" in n] == [
        f"{key}: Progression may already have sent an invitation e-mail after sync {synced.sync_id}; an undo cannot unsend it."
        for key in ("nia.hire@example.com", "rahul.menon@example.com")  # created Active; Pending -> Active (000/001)
    ]
    assert any("A changed email address is a new user to Progression" in n for n in result.cannot_undo)
    # The sheet shows what the reverse file sets, so the next preview has nothing the sync sent left in it.
    assert _cells(book, "nia.hire@example.com", "account_active", "email") == "Archived"
    assert _cells(book, "zoe.lefevre@example.com", "team", "email") == "Engineering"
    # A second undo of the same sync: that undo's file holds it all, and nothing was exported since.
    again = undo_sync(book)
    assert again.sent == 0 and again.upload_file is None and again.summary.startswith("Nothing left to undo of sync")


def test_progression_undo_after_the_upload_and_a_fresh_export_keeps_another_admins_change(tmp_path: Path, samples: Path) -> None:
    book, _synced_result = _synced(tmp_path, samples / "progression_export_reordered.csv",
                           {(4, "team"): "Platform", (5, "account_active"): "Active", (6, "position"): "Engineer III"}, new=NIA)
    # The file was uploaded; then another admin moved Zoë to Design on the People page; the platform's new export says so.
    fresh = tmp_path / "after-upload.csv"
    fresh.write_bytes(b"\xef\xbb\xbf" + "\r\n".join([
        "email;first_name;last_name;account_active;team;position;manager",
        "amara.okafor@example.com;Amara;Okafor;Active;Engineering;Head of Engineering;",
        "tomasz.nowak@example.com;Tomasz;Nowak;Active;Engineering;Senior Engineer;amara.okafor@example.com",
        "zoe.lefevre@example.com;Zoë;Lefèvre;Active;Design;Engineer II;tomasz.nowak@example.com",
        "rahul.menon@example.com;Rahul;Menon;Active;Engineering;Engineer I;tomasz.nowak@example.com",
        "jose.garcia@example.com;José;García;Archived;Engineering;Engineer III;tomasz.nowak@example.com",
        "mei.tanaka@example.com;Mei;Tanaka;Active;Data;Data Analyst;amara.okafor@example.com",
        "nia.hire@example.com;Nia;Hire;Active;Data;Data Analyst;mei.tanaka@example.com",
    ]).encode() + b"\r\n")
    assert run(["export", str(book), "--from-csv", str(fresh), "--force"]) == 0  # a new workbook file: the history comes along
    result = undo_sync(book)
    assert Path(result.upload_file).read_bytes() == (EXPECTED / "progression_reordered-undo-after-export.csv").read_bytes()
    assert [dict(k) for k in result.kept] == [{"row": 4, "key": "zoe.lefevre@example.com", "column": "team", "set_by_sync": "Platform",
                                                 "platform": "Design", "before": "Engineering"}]
    assert _cells(book, "zoe.lefevre@example.com", "team", "email") == "Design"  # the other admin's value, never overwritten


def test_edapp_undo_puts_lists_back_whole_and_says_what_a_file_cannot(tmp_path: Path, samples: Path) -> None:
    book, synced = _synced(
        tmp_path, samples / "edapp_export.csv",
        {(2, "Roles"): "Admin; Learner; Prizing User; Reviewer", (3, "User groups"): "operations; sales", (4, "Password"): "N3w-Passw0rd!",
         (6, "Job Title"): "Senior Sales Associate"},
        new={"Email": "nia.hire@example.org", "First Name": "Nia", "Last Name": "Hire", "User groups": "sales"},
        settings={"list_mode": "add", "invite_new_users": "TRUE"},
    )
    result = undo_sync(book)
    assert Path(result.upload_file).read_bytes() == (EXPECTED / "edapp-undo.csv").read_bytes()
    # Settings say Add for ordinary syncs; the reverse file holds each user's whole lists, so it is uploaded with Replace.
    assert [a.advice for a in result.upload_guidance][1] == (
        "Choose 'Replace' for existing users' User groups and Roles (not what Settings say: an undo puts each user's lists back whole): "
        "this file holds each changed user's full lists.")
    assert "pshah: the Password sync " + synced.sync_id + " set cannot be put back (it is never read back)." in result.cannot_undo
    assert any(n.startswith("nia.hire@example.org: created by sync") and "cannot archive or remove users through the upload file" in n
               for n in result.cannot_undo)
    assert any("invitation e-mail" in n and n.startswith("nia.hire@example.org") for n in result.cannot_undo)


def test_incenteev_undo_with_deactivate_missing_is_the_full_list_back(tmp_path: Path, samples: Path) -> None:
    # 003: with "Deactivate users not present in the file" ticked the file is the full list: the reverse file lists Thomas again
    # (the sync's file left him out) and leaves out Nia, whom the sync created, so the platform deactivates her (never deletes).
    book, synced = _synced(tmp_path, samples / "incenteev_users.csv", {(2, "Job title"): "Directrice générale"},
                           new={"First name": "Nia", "Last name": "Hire", "Email": "nia.hire@example.com", "Role(s)": "Sales Rep",
                                "Permission profile": "Participant"},
                           delete=5, settings={"deactivate_missing": "TRUE"})
    assert synced.counts["deactivate"] == 1 and synced.counts["create"] == 1
    plan = preview_undo(book)
    assert {a: n for a, n in plan.counts.items() if n and a != "unchanged"} == {"update": 2, "deactivate": 1}
    result = undo_sync(book)
    assert Path(result.upload_file).read_bytes() == (EXPECTED / "incenteev_full-undo.csv").read_bytes()
    assert [a.advice for a in result.upload_guidance] == [
        "Upload in simulation mode first (it is on by default); check the email of changes Incenteev sends, then upload the same file again "
        "without simulation mode.",
        "Tick 'Deactivate users not present in the file': this is the full list of users, and the 1 user(s) missing from it will be deactivated.",
    ]
    assert _cells(book, "thomas.girard@example.com", "Job title", "Email") == "Account Executive"  # his row is back in the sheet
    wb = openpyxl.load_workbook(book, read_only=True)
    assert not any("nia.hire@example.com" in str(c) for r in wb[wbk.USERS].iter_rows(values_only=True) for c in r)  # her row emptied
    wb.close()


def test_a_full_file_undo_refuses_while_rows_are_deleted_and_not_synced(tmp_path: Path, samples: Path) -> None:
    book, _result = _synced(tmp_path, samples / "incenteev_users.csv", {(2, "Job title"): "Directrice générale"},
                            settings={"deactivate_missing": "TRUE"})
    edit_rows(book, {}, delete=3)  # Hugo's row, deleted after the sync: the full reverse file would deactivate him unasked
    upload = tmp_path / "team-upload.csv"
    written = upload.read_bytes()
    with pytest.raises(DataError, match=r"lacks 1 exported users \('hugo.bernard@example.com'\) .* Put their rows back \(rosterbook revert\)"):
        undo_sync(book)
    assert upload.read_bytes() == written  # nothing written


def test_jostle_undo_carries_the_username_and_the_columns_it_puts_back(tmp_path: Path, samples: Path) -> None:
    book, _result = _synced(tmp_path, samples / "jostle_extract.csv", {(5, "Location"): "Vancouver|Remote", (7, "Job Title"): "Chef de service"},
                           new={"Username": "nia.hire", "First Name": "Nia", "Last Name": "Hire", "Work Email": "nia.hire@example.net"})
    result = undo_sync(book)
    assert Path(result.upload_file).read_bytes() == (EXPECTED / "jostle-undo.csv").read_bytes()
    assert any(n.startswith("nia.hire: created by sync") and "Jostle cannot archive or remove users" in n for n in result.cannot_undo)


def test_a_field_the_file_cannot_clear_is_said_not_written(tmp_path: Path, samples: Path) -> None:
    # Jostle: a blank cell keeps the current value, so a phone number the sync gave someone who had none cannot go back by file.
    book, synced = _synced(tmp_path, samples / "jostle_extract.csv", {(5, "Work Phone"): "+1 604 555 0188"})
    result = undo_sync(book)
    assert result.upload_file is None and result.sent == 0
    assert result.cannot_undo[0] == (f"michael.obrien: Work Phone was blank before sync {synced.sync_id}, and a blank in Jostle's "
                                     "upload file keeps the current value, so the file cannot clear it: clear it on the platform itself.")


def test_the_history_survives_a_save_by_libreoffice(tmp_path: Path, samples: Path) -> None:
    """LibreOffice saves very hidden sheets as hidden: the history is still read, checked and made very hidden again."""
    import shutil
    import subprocess

    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        pytest.fail("LibreOffice (soffice) is missing: apt-get install -y libreoffice-calc-nogui")
    book, synced = _synced(tmp_path, samples / "progression_export_reordered.csv",
                           {(4, "team"): "Platform", (5, "account_active"): "Active", (6, "position"): "Engineer III"}, new=NIA)
    saved = tmp_path / "saved"
    command = [soffice, f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}", "--headless", "--convert-to", "xlsx:Calc MS Excel 2007 XML",
               "--outdir", str(saved), str(book)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0 and (saved / "team.xlsx").exists(), done.stdout + done.stderr
    assert openpyxl.load_workbook(saved / "team.xlsx")[wbk.HISTORY].sheet_state == "hidden"
    result = undo_sync(saved / "team.xlsx")
    assert result.undo_of == synced.sync_id
    assert Path(result.upload_file).read_bytes() == (EXPECTED / "progression_reordered-undo.csv").read_bytes()
    assert openpyxl.load_workbook(saved / "team.xlsx")[wbk.HISTORY].sheet_state == "veryHidden"


@pytest.mark.parametrize("name", sorted(p.name for p in EXPECTED.glob("*.csv")))
def test_every_expected_reverse_file_is_checked_clean_as_the_platform_would_read_it(name: str) -> None:
    from rosterbook.csvfile import check_csv

    dialect = name.partition("-")[0].partition("_")[0]
    report = check_csv(EXPECTED / name, dialect)
    assert report.errors == 0, report.render_text()
