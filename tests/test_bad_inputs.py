"""The hostile and broken input corpus (tests/samples/bad/): every file gets a clear message naming
the place, the documented exit code (1 data, 2 usage), no traceback, and nothing reaches the platform.

The corpus and EXPECTED.json are written by scripts/make_bad_samples.py and committed. A SCIM
workbook's Settings point at a placeholder URL; each run points a copy at a live sandbox seeded like
the one the workbook was exported from (same platform ids), so a command that wrongly went ahead
would really send, and the sandbox's request counter would show it.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from rosterbook.cli import run
from rosterbook.sandbox import Sandbox, start_sandbox

BAD = Path(__file__).resolve().parent / "samples" / "bad"
EXPECTED: dict[str, dict[str, Any]] = json.loads((BAD / "EXPECTED.json").read_text(encoding="utf-8"))
SANDBOX_USERS = 12  # scripts/make_bad_samples.py exported its SCIM workbooks from this many users, seed 1

CASES = [
    pytest.param(name, index, spec, id=f"{name}-{spec['command'][0]}")
    for name, entry in sorted(EXPECTED.items())
    for index, spec in enumerate(entry["runs"])
]


@pytest.fixture(scope="module")
def platform() -> Iterator[Sandbox]:
    """The sandbox the corpus's SCIM workbooks are pointed at (never expected to be asked anything)."""
    with start_sandbox(users=SANDBOX_USERS, seed=1) as sandbox:
        yield sandbox


def _point_at(path: Path, placeholder: str, url: str) -> None:
    wb = load_workbook(path)
    ws = wb["Settings"]
    for row in ws.iter_rows(min_row=2):
        if row[0].value == "platform_url" and row[1].value == placeholder:
            row[1].value = url
            wb.save(path)
            return
    raise AssertionError(f"{path.name}: no platform_url {placeholder!r} to replace")


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_the_corpus_is_big_enough_and_every_file_has_an_expectation() -> None:
    files = sorted(p.name for p in BAD.iterdir() if p.suffix in (".csv", ".xlsx"))
    assert len(files) >= 40
    assert files == sorted(EXPECTED)
    kinds = {p.suffix for p in BAD.iterdir()}
    assert {".csv", ".xlsx"} <= kinds
    for name, entry in EXPECTED.items():
        assert entry["why"], name
        for spec in entry["runs"]:
            assert spec["exit_code"] in (0, 1, 2), name
            assert spec["message"], name


def test_the_committed_corpus_is_what_the_script_writes() -> None:
    """scripts/make_bad_samples.py names every committed file; its CSV files are byte for byte the committed ones."""
    spec = importlib.util.spec_from_file_location("make_bad_samples", BAD.parents[2] / "scripts" / "make_bad_samples.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    csv_cases, book_cases = script.csv_cases(), script.book_cases()
    assert sorted([*csv_cases, *book_cases]) == sorted(EXPECTED)
    for name, (data, why, runs) in csv_cases.items():
        assert (BAD / name).read_bytes() == data, name
        assert EXPECTED[name] == {"why": why, "runs": runs}
    for name, (_, why, _, raw, runs) in book_cases.items():
        assert EXPECTED[name]["why"] == why and EXPECTED[name]["runs"] == runs, name
        if raw is not None and not raw.startswith(b"PK"):  # openpyxl stamps the time into a workbook it saves
            assert (BAD / name).read_bytes() == raw, name


@pytest.mark.parametrize(("name", "index", "spec"), CASES)
def test_bad_input(name: str, index: int, spec: dict[str, Any], tmp_path: Path, platform: Sandbox,
                   capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("ROSTERBOOK_HOME", str(home))  # an embedded sandbox, if one were started, would land here
    monkeypatch.delenv("ROSTERBOOK_TOKEN", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    target = work / name
    shutil.copyfile(BAD / name, target)
    placeholder = EXPECTED[name].get("platform_url")
    if placeholder:
        _point_at(target, placeholder, platform.url)
    before_files = sorted(p.name for p in work.iterdir())
    before = platform.request_count

    command, *options = spec["command"]
    code, output = _run([command, str(target), *options], capsys)

    assert "Traceback" not in output
    assert "internal error" not in output, output
    for text in spec["message"]:
        assert text in output, f"{name}: {text!r} not in:\n{output}"
    assert code == spec["exit_code"], output
    assert platform.request_count == before, f"{name}: the command sent {platform.request_count - before} requests"
    assert not home.exists(), "the embedded sandbox was started"
    if command == "sync":
        # A CSV platform's sync writes an upload file beside the workbook: a refused one writes none.
        assert sorted(p.name for p in work.iterdir() if not p.name.startswith(".~")) == before_files


# --- generated in the test (too big to commit) -------------------------------------------------


def test_a_huge_csv_is_checked_to_its_last_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "huge.csv"
    rows = 100_000
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["First Name", "Last Name", "email", "position", "team", "manager", "account_active"])
    for n in range(rows - 1):
        writer.writerow([f"Given{n}", f"Family{n}", f"user{n}@example.com", "", "", "", "Active"])
    writer.writerow(["Last", "Row", "last.row@example.com", "", "", "", "actve"])
    path.write_bytes(buffer.getvalue().encode("utf-8"))
    code, output = _run(["check", str(path)], capsys)
    assert code == 1
    assert f"huge.csv!G{rows + 1} account_active: 'actve'" in output
    assert f"{rows} rows checked: 1 error" in output


def test_a_cell_beyond_the_field_limit_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "huge_cell.csv"
    path.write_text("First Name,Last Name,email,account_active\r\n" + '"' + "x" * 200_000 + '",Okafor,a@example.com,Active\r\n', encoding="utf-8")
    code, output = _run(["check", str(path)], capsys)
    assert code == 2
    assert "huge_cell.csv: not a readable CSV file" in output
    assert "Traceback" not in output


def test_a_huge_sheet_is_checked_to_its_last_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A workbook whose Users sheet is far longer than any export: read, checked, the last row addressed."""
    path = tmp_path / "huge.xlsx"
    shutil.copyfile(BAD / "book_bad_status_and_email.xlsx", path)
    wb = load_workbook(path)
    ws = wb["Users"]
    for table in list(ws.tables):
        del ws.tables[table]  # a Table's range would not cover the appended rows; Excel users append past it too
    rows = 20_000
    for n in range(rows):
        ws.append([f"new.user{n}@lumen.example", "New", f"User{n}", f"new.user{n}@lumen.example", "Pending"])
    last = ws.max_row
    ws.cell(row=last, column=5, value="Pendng")
    wb.save(path)
    code, output = _run(["check", str(path), "--no-write"], capsys)
    assert code == 1
    assert f"Users!E{last} Status: 'Pendng'" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("options", [["--no-write"], []], ids=["fast-reader", "openpyxl"])
def test_a_tiny_file_with_a_far_away_cell_is_refused_not_exploded(options: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One stray value in the last cell a sheet can have (XFD1048576): a small file with a used range of 17 billion
    cells. calamine aborted the process on it and openpyxl would iterate for hours; both readers refuse it."""
    path = tmp_path / "far.xlsx"
    shutil.copyfile(BAD / "book_bad_status_and_email.xlsx", path)
    wb = load_workbook(path)
    wb["Users"]["XFD1048576"] = "x"
    wb.save(path)
    assert path.stat().st_size < 200_000
    code, output = _run(["check", str(path), *options], capsys)
    assert code == 2, output
    assert "Users!XFD1048576: the sheet's used range reaches this cell (1,048,576 rows x 16,384 columns), too large to read." in output
    assert "Traceback" not in output


def test_an_empty_workbook_is_refused_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.xlsx"
    Workbook().save(path)
    code, output = _run(["check", str(path)], capsys)
    assert code == 1
    assert "no 'Settings' sheet" in output
