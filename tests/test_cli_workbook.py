"""The workbook commands: help, --json equals the library's result, exit codes and messages."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from rosterbook import app
from rosterbook.cli import run
from rosterbook.sandbox import Sandbox, start_sandbox

COMMANDS = ("export", "check", "preview", "sync", "revert", "demo")
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with start_sandbox(tmp_path / "sandbox.sqlite3", users=12) as running:
        yield running


def _json(capsys: pytest.CaptureFixture[str]) -> object:
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_workbook_command_has_help_and_a_readme_section(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: rosterbook {command}")
    assert f"### `rosterbook {command}" in README.read_text(encoding="utf-8")


def _edited_progression(tmp_path: Path, samples: Path, folder: str) -> Path:
    book = tmp_path / folder / "team.xlsx"
    book.parent.mkdir()
    app.export_workbook(book, from_csv=samples / "progression_export.csv")
    wb = openpyxl.load_workbook(book)
    ws = wb["Users"]
    ws["G3"] = "Archived"
    ws["E5"] = "Sales"
    ws["C6"] = "not-an-email"
    wb.save(book)
    return book


def test_json_output_equals_the_library_result(tmp_path: Path, samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = tmp_path / "a.xlsx"
    assert run(["export", str(book), "--from-csv", str(samples / "jostle_extract.csv"), "--json"]) == 0
    exported = _json(capsys)
    assert exported == app.export_workbook(book, from_csv=samples / "jostle_extract.csv").to_dict()

    edited = _edited_progression(tmp_path, samples, "one")
    assert run(["check", str(edited), "--json", "--no-write"]) == 1
    assert _json(capsys) == app.check_workbook(edited, write=False).to_dict()
    assert run(["preview", str(edited), "--json"]) == 1  # row 6 has an error
    assert _json(capsys) == app.preview_workbook(edited).to_dict()

    twin = tmp_path / "two" / "team.xlsx"
    twin.parent.mkdir()
    shutil.copy(edited, twin)
    assert run(["sync", str(edited), "--yes", "--json", "--skip-rows", "6"]) == 0
    cli_result = _json(capsys)
    lib_result = app.sync_workbook(twin, skip_rows=[6]).to_dict()
    assert cli_result["upload_file"] == str(edited.parent / "team-upload.csv")
    assert {**cli_result, "upload_file": None, "sync_id": None} == {**lib_result, "upload_file": None, "sync_id": None}  # each run its own id
    assert cli_result["counts"]["archive"] == 1 and cli_result["counts"]["update"] == 1

    assert run(["revert", str(edited), "--rows", "3,5", "--json"]) == 0
    assert _json(capsys) == app.revert_rows(twin, [3, 5]).to_dict()


def test_check_writes_problems_unless_no_write(tmp_path: Path, samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = _edited_progression(tmp_path, samples, "w")
    assert run(["check", str(book), "--no-write"]) == 1
    out = capsys.readouterr()
    assert "Users!C6 email: 'not-an-email' is not a valid email address" in out.out
    assert openpyxl.load_workbook(book)["Users"]["H6"].value is None
    assert run(["check", str(book)]) == 1
    ws = openpyxl.load_workbook(book)["Users"]
    assert ws["H6"].value.startswith("C6 email: 'not-an-email' is not a valid email address")
    assert ws["C6"].comment is not None


def test_sync_without_a_terminal_or_yes_refuses_with_exit_2(tmp_path: Path, samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = _edited_progression(tmp_path, samples, "t")
    assert run(["sync", str(book), "--skip-rows", "6"]) == 2
    err = capsys.readouterr().err
    assert "sync needs a confirmation: run it in a terminal, or pass --yes. Nothing was sent." in err
    assert not (book.parent / "team-upload.csv").exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["preview", "{tmp}/missing.xlsx"], 2, "no such file"),
        (["export", "{tmp}/users.csv", "--from-csv", "{samples}/progression_export.csv"], 2, "must be an .xlsx file"),
        (["export", "{tmp}/x.xlsx", "--from-csv", "{samples}/progression_export.csv", "--platform", "http://127.0.0.1:1/v2"], 2, "either --platform or --from-csv"),
        (["export", "{tmp}/x.xlsx", "--dialect", "jostle"], 2, "export it with --from-csv"),
        (["sync", "{tmp}/edited/team.xlsx", "--yes"], 1, "1 row has errors (row 6); nothing was sent."),
        (["sync", "{tmp}/edited/team.xlsx", "--yes", "--skip-rows", "x"], 2, "'x' is not a row number or range"),
        (["revert", "{tmp}/edited/team.xlsx", "--rows", "99"], 2, "row 99 is below the last row"),
    ],
)
def test_cli_errors(tmp_path: Path, samples: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str) -> None:
    _edited_progression(tmp_path, samples, "edited")
    argv = [a.format(tmp=tmp_path, samples=samples) for a in args]
    assert run(argv) == code
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_export_preview_sync_against_a_platform_url(tmp_path: Path, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    book = tmp_path / "users.xlsx"
    assert run(["export", str(book), "--platform", sandbox.url]) == 0
    assert "Exported 12 users from" in capsys.readouterr().out
    wb = openpyxl.load_workbook(book)
    ws = wb["Users"]
    cols = {c.value: c.column for c in ws[1]}
    ws.cell(2, cols["Job title"]).value = "Edited by the CLI test"
    wb.save(book)
    assert run(["preview", str(book)]) == 0
    assert "1 update" in capsys.readouterr().out
    assert run(["sync", str(book), "--yes"]) == 0
    assert "Synced 1 rows: 1 confirmed, 0 failed." in capsys.readouterr().out
    assert run(["export", str(book), "--platform", sandbox.url, "--json"]) == 0
    assert _json(capsys)["rows"] == 12  # type: ignore[index]


def test_demo_runs_the_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["demo", "--home", str(tmp_path / "home")]) == 0
    out = capsys.readouterr().out
    for step in ("1. Export", "2. Edit", "3. Check", "4. Preview", "5. Sync", "6. Export again"):
        assert step in out
    assert "6 of 6 edited users read back as edited." in out
    assert (tmp_path / "home" / "demo" / "demo.xlsx").exists()
