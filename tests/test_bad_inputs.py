"""The hostile and broken input corpus (tests/samples/bad/): every command that applies to a file (a CSV
file: check, export --from-csv and a check of the exported workbook; a workbook: check, preview, sync)
gives the expected messages (matched as whole tokens: "row 7" is not found in "row 70"), the documented
exit code (1 data, 2 usage), no traceback; it writes exactly the files it should (the folder is listed
and hashed before and after) and asks the platform only what it should (the sandbox's request log).

The corpus and EXPECTED.json are written by scripts/make_bad_samples.py and committed. A SCIM
workbook's Settings point at a placeholder URL; each run points a copy at a live sandbox seeded like
the one the workbook was exported from (same platform ids), so a command that wrongly went ahead
would really send, and the sandbox's request log would show it.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from support.shared import released, shared

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
        yield shared(sandbox)
        released(sandbox)


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


def _contains(output: str, text: str) -> bool:
    """``text`` occurs in ``output`` as whole tokens: not glued to a letter or digit at either end."""
    before = r"(?<!\w)" if re.match(r"\w", text) else ""
    after = r"(?!\w)" if re.search(r"\w$", text) else ""
    return re.search(before + re.escape(text) + after, output) is not None


@pytest.mark.parametrize(
    ("output", "text", "found"),
    [("2 rows have errors (rows 8, 9)", "rows 8, 9", True), ("in row 70 and row 7.", "row 7", True), ("in row 70", "row 7", False),
     ("Users!E80 Status", "Users!E8", False), ("Users!E8 Status", "Users!E8", True), ("112 rows checked", "12 rows checked", False),
     ("'/tmp/x/book.xlsx': cannot", "book.xlsx': cannot", True), ("rebook.xlsx': cannot", "book.xlsx': cannot", False)],
)
def test_expected_messages_match_whole_tokens(output: str, text: str, found: bool) -> None:
    assert _contains(output, text) is found


def _listing(folder: Path) -> dict[str, str]:
    """Every file in the folder and a hash of its bytes (a file written, even with the same name, shows)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


def _held(sandbox: Sandbox, user_name: str, path: list[str]) -> Any:
    """An attribute of a user as the sandbox stores it (its raw JSON)."""
    user_type = next(rt for rt in sandbox.storage.provider.resource_types if rt.name == "User")
    users = [json.loads(doc) for doc in sandbox.storage.documents(user_type, 0, None)[1]]
    value: Any = next(u for u in users if u["userName"] == user_name)
    for step in path:
        value = value[step]
    return value


def test_the_corpus_is_big_enough_and_every_file_has_an_expectation() -> None:
    files = sorted(p.name for p in BAD.iterdir() if p.suffix in (".csv", ".xlsx"))
    assert len(files) >= 40
    assert files == sorted(EXPECTED)
    kinds = {p.suffix for p in BAD.iterdir()}
    assert {".csv", ".xlsx"} <= kinds
    for name, entry in EXPECTED.items():
        assert entry["why"], name
        # Every command that applies to the file, in the order a user would run them.
        commands = [spec["command"][0] for spec in entry["runs"]]
        assert commands == (["check", "export"] if name.endswith(".csv") else ["check", "preview", "sync"]), name
        for spec in entry["runs"]:
            assert spec["exit_code"] in (0, 1, 2), name
            assert spec["message"] and all(len(text) >= 8 for text in spec["message"]), name  # no bare "row 7"
            assert spec.get("requests", "none") in ("none", "reads", "sends"), name
            assert ("then" in spec) == (spec["command"][0] == "export" and spec["exit_code"] == 0), name


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
    assert script.expectations(BAD) == EXPECTED


@pytest.mark.parametrize(("name", "index", "spec"), CASES)
def test_bad_input(name: str, index: int, spec: dict[str, Any], tmp_path: Path, platform: Sandbox, fresh_sandbox: Callable[..., Sandbox],
                   capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("ROSTERBOOK_HOME", str(home))  # an embedded sandbox, if one were started, would land here
    monkeypatch.delenv("ROSTERBOOK_TOKEN", raising=False)
    requests = spec.get("requests", "none")
    # A run that is expected to change the platform gets a sandbox of its own (seeded alike: same ids).
    server = fresh_sandbox(users=SANDBOX_USERS, seed=1) if requests == "sends" else platform
    work = tmp_path / "work"
    work.mkdir()
    target = work / name
    shutil.copyfile(BAD / name, target)
    placeholder = EXPECTED[name].get("platform_url")
    if placeholder:
        _point_at(target, placeholder, server.url)
    before_files = _listing(work)
    before = server.request_count

    command, *options = spec["command"]
    book = work / "book.xlsx"
    args = [command, str(book), "--from-csv", str(target), *options[1:]] if command == "export" else [command, str(target), *options]
    code, output = _run(args, capsys)

    assert "Traceback" not in output
    assert "internal error" not in output, output
    for text in spec["message"]:
        assert _contains(output, text), f"{name}: {text!r} not in:\n{output}"
    assert code == spec["exit_code"], output
    after_files = _listing(work)
    written = sorted(n for n in before_files.keys() | after_files.keys() if before_files.get(n) != after_files.get(n))
    assert written == sorted(spec.get("writes", [])), f"{name}: {command} wrote {written}"
    asked = server.request_log[-(server.request_count - before):] if server.request_count > before else []
    if requests == "none":
        assert asked == [], f"{name}: {command} sent {[(r.method, r.path) for r in asked]}"
    elif requests == "reads":
        assert asked and {r.method for r in asked} == {"GET"}, [(r.method, r.path) for r in asked]
    else:
        assert {r.method for r in asked} - {"GET"}, [(r.method, r.path) for r in asked]
        for held in spec["platform_after"]:
            assert _held(server, held["userName"], held["path"]) == held["value"], held
    assert not home.exists(), "the embedded sandbox was started"

    then = spec.get("then")
    if then is not None:
        # The exported workbook, checked: the same cells are named on its Users sheet, and it is not written.
        code, output = _run(["check", str(book), *then["command"][1:]], capsys)
        for text in then["message"]:
            assert _contains(output, text), f"{name} exported: {text!r} not in:\n{output}"
        assert code == then["exit_code"], output
        assert _listing(work) == after_files


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
