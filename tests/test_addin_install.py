"""`rosterbook addin install|uninstall|status`: files and conf contents in temp folders."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest

from addin.build import build_xlam, xlwings_vba_dir
from rosterbook import addin_install
from rosterbook.cli import run
from rosterbook.errors import UsageError


@pytest.fixture(scope="module")
def prebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_xlam(tmp_path_factory.mktemp("xlam") / "rosterbook.xlam")


def expected_conf(python: str) -> str:
    return f'"INTERPRETER_WIN","{python}"\n"INTERPRETER_MAC","{python}"\n"ADD_WORKBOOK_TO_PYTHONPATH","false"\n'


def test_install_on_linux_without_target_explains_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    if not sys.platform.startswith("linux"):
        pytest.fail("this test describes the Linux behaviour; CI runs on Linux")
    assert run(["addin", "install"]) == 2
    err = capsys.readouterr().err
    assert "Excel is not available on this system (linux)" in err
    assert "--target DIR" in err
    assert run(["addin", "status"]) == 2
    assert "Excel is not available on this system (linux)" in capsys.readouterr().err


def test_install_status_uninstall_into_target(tmp_path: Path, prebuilt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "addin"
    assert run(["addin", "install", "--target", str(target), "--xlam", str(prebuilt)]) == 0
    assert (target / "rosterbook.xlam").read_bytes() == prebuilt.read_bytes()
    assert (target / "rosterbook.conf").read_text(encoding="utf-8") == expected_conf(sys.executable)
    capsys.readouterr()

    assert run(["addin", "status", "--target", str(target), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["installed"] is True
    assert status["interpreter"] == sys.executable
    assert status["interpreter_exists"] is True
    assert status["addin_path"] == str(target.resolve() / "rosterbook.xlam")
    assert status["notes"] == []

    assert run(["addin", "uninstall", "--target", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"removed {target.resolve() / 'rosterbook.xlam'}" in out
    assert not (target / "rosterbook.xlam").exists()
    assert not (target / "rosterbook.conf").exists()
    assert run(["addin", "status", "--target", str(target)]) == 0
    assert "(not installed)" in capsys.readouterr().out


def test_install_builds_the_addin_when_no_xlam_is_given(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # oletools imports pyparsing's deprecated API
        from oletools.olevba import VBA_Parser

    report = addin_install.install(tmp_path)
    parser = VBA_Parser(report.addin_path)
    try:
        names = {stream.split("/")[-1] for _, stream, _, _ in parser.extract_macros()}
    finally:
        parser.close()
    assert {"xlwings", "RosterbookCallbacks", "RosterbookUDFs"} <= names


def test_windows_paths_and_conf(tmp_path: Path, prebuilt: Path) -> None:
    env = {"APPDATA": str(tmp_path / "AppData" / "Roaming"), "USERPROFILE": str(tmp_path / "me")}
    report = addin_install.install(xlam=prebuilt, interpreter=r"C:\venvs\rb\Scripts\python.exe", system="win32", environ=env)
    xlstart = tmp_path / "AppData" / "Roaming" / "Microsoft" / "Excel" / "XLSTART"
    conf = tmp_path / "me" / ".rosterbook" / "rosterbook.conf"
    assert (xlstart / "rosterbook.xlam").is_file()
    assert conf.read_bytes() == expected_conf(r"C:\venvs\rb\Scripts\python.exe").replace("\n", "\r\n").encode()
    assert report.platform == "windows"
    assert report.interpreter == r"C:\venvs\rb\Scripts\python.exe"
    assert report.interpreter_exists is False  # not a path on this machine
    assert any("no longer exists" in note for note in report.notes)
    addin_install.uninstall(system="win32", environ=env)
    assert not (xlstart / "rosterbook.xlam").exists()
    assert not conf.parent.exists()


def test_macos_paths_conf_and_applescript(tmp_path: Path, prebuilt: Path) -> None:
    env = {"HOME": str(tmp_path)}
    report = addin_install.install(xlam=prebuilt, system="darwin", environ=env)
    startup = tmp_path / "Library" / "Group Containers" / "UBF8T346G9.Office" / "User Content" / "Startup" / "Excel"
    conf = tmp_path / "Library" / "Containers" / "com.microsoft.Excel" / "Data" / "rosterbook.conf"
    script = tmp_path / "Library" / "Application Scripts" / "com.microsoft.Excel" / "xlwings-0.37.8.applescript"
    assert (startup / "rosterbook.xlam").is_file()
    assert conf.read_text(encoding="utf-8") == expected_conf(sys.executable)
    assert script.read_bytes() == (xlwings_vba_dir() / "xlwings-0.37.8.applescript").read_bytes()
    assert report.platform == "macos" and report.installed and report.notes == []
    assert len(report.actions) == 3


def test_status_notes_a_missing_conf(tmp_path: Path, prebuilt: Path) -> None:
    addin_install.install(tmp_path, xlam=prebuilt)
    (tmp_path / "rosterbook.conf").unlink()
    report = addin_install.status(tmp_path)
    assert report.installed and report.interpreter is None
    assert report.notes == [f"{tmp_path.resolve() / 'rosterbook.conf'} is missing: the add-in has no interpreter; run `rosterbook addin install` again."]


@pytest.mark.parametrize(
    ("interpreter", "message"),
    [('C:\\odd"name\\python.exe', "contains a quote or line break"), ("/opt/py\nthon", "contains a quote or line break")],
)
def test_conf_refuses_paths_vba_cannot_read(interpreter: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        addin_install.conf_text(interpreter)


def test_windows_without_profile_variables_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="APPDATA or USERPROFILE is not set"):
        addin_install.locations(system="win32", environ={})


def test_conf_round_trips_through_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "rosterbook.conf"
    path.write_text(addin_install.conf_text(r"D:\Python 3.11\python.exe"), encoding="utf-8")
    assert addin_install.read_conf(path) == {
        "INTERPRETER_WIN": r"D:\Python 3.11\python.exe",
        "INTERPRETER_MAC": r"D:\Python 3.11\python.exe",
        "ADD_WORKBOOK_TO_PYTHONPATH": "false",
    }


def test_missing_xlam_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["addin", "install", "--target", str(tmp_path), "--xlam", str(tmp_path / "nope.xlam")]) == 2
    assert "nope.xlam" in capsys.readouterr().err
