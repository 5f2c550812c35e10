"""Files from other applications (.ods, .xls, Numbers, the Users sheet saved as CSV) and workbooks never exported get clear messages.

The .ods, .xls and .csv files are written by LibreOffice itself (headless) from a real exported workbook.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rosterbook import app
from rosterbook.cli import run
from rosterbook.sandbox import start_sandbox


def _soffice() -> str:
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("LibreOffice (soffice) is missing on CI: .ci/run installs libreoffice-calc-nogui")
        pytest.skip("LibreOffice (soffice) is not installed; apt-get install -y libreoffice-calc-nogui")
    return found


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """One exported workbook, and what LibreOffice makes of it as .ods, .xls and (its Users sheet) .csv."""
    soffice = _soffice()
    folder = tmp_path_factory.mktemp("foreign")
    book = folder / "team.xlsx"
    with start_sandbox(users=8) as sandbox:
        app.export_workbook(book, platform=sandbox.url)
    out: dict[str, Path] = {"xlsx": book}
    profile = (folder / "profile").as_uri()
    for ext, target in (("ods", "ods"), ("xls", "xls:MS Excel 97"), ("csv", "csv:Text - txt - csv (StarCalc):44,34,76,1")):
        subprocess.run([soffice, f"-env:UserInstallation={profile}", "--headless", "--convert-to", target, "--outdir", str(folder / ext), str(book)],
                       check=True, capture_output=True, timeout=120)
        out[ext] = folder / ext / f"team.{ext}"
        assert out[ext].exists(), f"LibreOffice wrote no {ext}"
    yield out


@pytest.mark.parametrize("command", [["check"], ["preview"], ["sync", "--yes"], ["revert"]])
def test_an_ods_file_is_named_with_the_fix(converted: dict[str, Path], command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run([command[0], str(converted["ods"]), *command[1:]]) == 2
    err = capsys.readouterr().err
    assert "team.ods: is an OpenDocument spreadsheet (.ods, from LibreOffice or OpenOffice), which rosterbook cannot read" in err
    assert "save it as Excel Workbook (.xlsx)" in err and "Traceback" not in err


@pytest.mark.parametrize("command", [["check"], ["preview"]])
def test_an_xls_file_is_named_with_the_fix(converted: dict[str, Path], command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run([command[0], str(converted["xls"]), *command[1:]]) == 2
    assert "team.xls: is an Excel 97-2003 workbook (.xls), which rosterbook cannot read: open it in Excel and save it as Excel Workbook (.xlsx)." \
        in capsys.readouterr().err


def test_an_xls_renamed_xlsx_is_named_too(converted: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    renamed = tmp_path / "team.xlsx"
    shutil.copy(converted["xls"], renamed)
    assert run(["preview", str(renamed)]) == 2
    assert "team.xlsx: is an Excel 97-2003 workbook (.xls)" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["check"], ["export", "{book}", "--from-csv"]])
def test_the_users_sheet_saved_as_csv_points_to_the_workbook(converted: dict[str, Path], tmp_path: Path, command: list[str],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    argv = [c.format(book=tmp_path / "new.xlsx") for c in command] + [str(converted["csv"])]
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert "team.csv: this is the Users sheet of a rosterbook workbook saved as CSV" in err
    assert "open the .xlsx workbook instead" in err and "not a SCIM 2.0 platform column" not in err
    assert not (tmp_path / "new.xlsx").exists()


def test_a_numbers_document_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A Numbers document is a zip (iCloud, single file) or a folder (a package): both carry Index/*.iwa.
    single = tmp_path / "team.numbers"
    with zipfile.ZipFile(single, "w") as archive:
        archive.writestr("Index/Document.iwa", b"\x00\x01")
        archive.writestr("Metadata/Properties.plist", b"<plist/>")
    package = tmp_path / "package" / "team.numbers"
    (package / "Index").mkdir(parents=True)
    (package / "Index" / "Document.iwa").write_bytes(b"\x00")
    for path in (single, package):
        for command in (["check"], ["preview"]):
            assert run([command[0], str(path)]) == 2
            assert "team.numbers: is an Apple Numbers document, which rosterbook cannot read: in Numbers choose File > Export To > Excel (.xlsx)." \
                in capsys.readouterr().err
    renamed = tmp_path / "numbers.csv"
    shutil.copy(single, renamed)
    assert run(["check", str(renamed)]) == 2
    assert "numbers.csv: is an Apple Numbers document" in capsys.readouterr().err


def test_a_template_never_exported_does_not_guess_the_seats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import openpyxl

    template = Path(__file__).resolve().parents[1] / "templates" / "UserTemplate.xlsx"
    book = tmp_path / "new.xlsx"
    shutil.copy(template, book)
    with start_sandbox(users=30) as sandbox:
        wb = openpyxl.load_workbook(book)
        wb["Settings"]["B3"] = sandbox.url
        ws = wb["Users"]
        for row, name in ((2, "ann.new"), (3, "bo.new")):
            for col, value in enumerate([name, "Ann", "New", f"{name}@example.org", "Active"], start=1):
                ws.cell(row, col).value = value
        wb.save(book)
        assert run(["preview", str(book)]) == 0
        out = capsys.readouterr().out
        assert "Seats: unknown, the workbook holds no exported users (started from the template?): export first (+2 with this sync)" in out
        assert "Seats: 0 -> 2" not in out
        assert run(["preview", str(book), "--json"]) == 0
    import json

    seats = json.loads(capsys.readouterr().out)["seats"]
    assert (seats["before"], seats["after"], seats["change"]) == (None, None, 2)
    preview = {r[0]: r[1] for r in openpyxl.load_workbook(book)["Preview"].iter_rows(values_only=True) if r and r[0]}
    assert preview["Seats"] == "unknown: no exported users in this workbook; export first (+2 with this sync)"
