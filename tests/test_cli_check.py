"""`rosterbook check` and `rosterbook dialects`: exit codes, text and JSON output, one-line usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rosterbook.cli import cli, run
from rosterbook.core.dialects import describe_dialect, load_dialect
from rosterbook.csvfile import check_csv

PLANTED = ["progression_planted.csv", "edapp_planted.csv", "incenteev_planted.csv", "jostle_planted.csv"]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", PLANTED)
def test_check_finds_every_planted_problem(samples: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    expected = json.loads((samples / name.replace(".csv", ".expected.json")).read_text(encoding="utf-8"))
    code, out, _ = _run(capsys, "check", str(samples / name), "--json")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False
    assert sorted((p["cell"], p["code"]) for p in data["problems"]) == sorted((e["cell"], e["code"]) for e in expected["problems"])
    assert data == json.loads(json.dumps(check_csv(samples / name).to_dict()))  # --json prints what the library returns


def test_text_output_is_one_line_per_problem_sorted(samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "check", str(samples / "progression_planted.csv"))
    lines = out.splitlines()
    assert code == 1
    assert lines == check_csv(samples / "progression_planted.csv").render_text().splitlines()
    assert lines[0] == "progression_planted.csv!G4 account_active: 'actve' is not one of 'Active', 'Pending', 'Archived'. Did you mean 'Active'?"
    rows = [int("".join(ch for ch in line.split("!")[1].split()[0] if ch.isdigit())) for line in lines]
    assert rows == sorted(rows)
    assert err == "20 rows checked: 9 errors, 2 warnings.\n"


@pytest.mark.parametrize(
    ("content", "args", "exit_code", "out", "err"),
    [
        (
            "First Name,Last Name,email,account_active\nAnn,Lee,ann@example.com,Active\n",
            [],
            0,
            "",
            # EdApp could read three of these headers too: the check says which dialect it chose and why.
            "u.csv: recognised as Progression ('progression'), not EdApp (SafetyCulture Training) ('edapp'): "
            "4 headers are spelled as Progression documents them, 3 as EdApp (SafetyCulture Training) does.\n"
            "1 row checked: no problems.\n",
        ),
        (
            "First Name,Last Name,email,account_active\nAnn,Lee,ann@example.com,\n",
            ["--dialect", "progression"],
            0,
            "u.csv!D2 account_active: blank keeps an existing user's value, but a new user needs a value; "
            "expected one of 'Active', 'Pending', 'Archived'. (warning)\n",
            "1 row checked: 0 errors, 1 warning.\n",
        ),
        (
            "First Name,Last Name,email,account_active\nAnn,Lee,ann@example.com,actve\n",
            ["--dialect", "progression"],
            1,
            "u.csv!D2 account_active: 'actve' is not one of 'Active', 'Pending', 'Archived'. Did you mean 'Active'?\n",
            "1 row checked: 1 error, 0 warnings.\n",
        ),
        (
            "First Name,Last Name,email,account_active\nAnn,Lee,ann@example.com,Active\n",
            ["--dialect", "workday"],
            2,
            "",
            "Error: unknown dialect 'workday': expected one of 'edapp', 'incenteev', 'jostle', 'progression', 'scim'\n",
        ),
        (
            "Name,Shoe size\nAnn,38\n",
            [],
            2,
            "",
            "Error: u.csv: cannot tell which platform this header row is for; give --dialect (one of 'edapp', 'incenteev', 'jostle', 'progression', 'scim').\n",
        ),
        ("", [], 2, "", "Error: u.csv: the file is empty.\n"),
        (
            "Username,Location\nann,Main|HQ\n",
            ["--dialect", "jostle"],
            0,
            "u.csv!B2 Location: 'Main|HQ' will be split into 'Main', 'HQ'; if it is meant as one name, write 'Main\\|HQ'. Did you mean 'Main\\|HQ'? (warning)\n",
            "1 row checked: 0 errors, 1 warning.\n",
        ),
    ],
)
def test_check_exit_codes_and_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, args: list[str], exit_code: int, out: str, err: str
) -> None:
    path = tmp_path / "u.csv"
    path.write_text(content, encoding="utf-8")
    assert _run(capsys, "check", str(path), *args) == (exit_code, out, err)


def test_missing_file_is_a_one_line_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "check", str(tmp_path / "nope.csv"))
    assert (code, out) == (2, "")
    assert err == f"Error: {tmp_path / 'nope.csv'}: no such file.\n"


def test_json_of_a_clean_file(samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "check", str(samples / "edapp_export_cp1252.csv"), "--json")
    assert code == 0
    assert json.loads(out) == {"ok": True, "rows": 14, "problems": []}


def test_click_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "check")
    assert code == 2 and "Missing argument 'FILE'" in err


def test_dialects_lists_every_dialect(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "dialects")
    assert code == 0
    assert out.splitlines() == [
        "edapp        EdApp (SafetyCulture Training) (key: Username)",
        "incenteev    Incenteev (key: Email)",
        "jostle       Jostle (key: Username)",
        "progression  Progression (key: email)",
        "scim         SCIM 2.0 platform (key: Username)",
    ]
    code, out, _ = _run(capsys, "dialects", "--json")
    assert [d["name"] for d in json.loads(out)] == ["edapp", "incenteev", "jostle", "progression", "scim"]


def test_dialects_shows_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "dialects", "progression")
    assert code == 0 and out == describe_dialect(load_dialect("progression")) + "\n"
    assert "  account_active [status; required for new users; blank keeps;" in out
    code, out, _ = _run(capsys, "dialects", "edapp", "--json")
    assert json.loads(out) == json.loads(load_dialect("edapp").model_dump_json())
    code, _, err = _run(capsys, "dialects", "nope")
    assert code == 2 and err.startswith("Error: unknown dialect 'nope'")


@pytest.mark.parametrize("command", ["check", "dialects", "undo"])
def test_commands_have_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = _run(capsys, command, "--help")
    assert code == 0
    assert cli.commands[command].help
    assert "--json" in out
