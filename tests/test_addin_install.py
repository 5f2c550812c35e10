"""`rosterbook addin install|uninstall|status`: files, conf contents and status checks in temp folders."""

from __future__ import annotations

import json
import shutil
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest

from addin.build import build_xlam, xlwings_vba_dir
from rosterbook import __version__, addin_install
from rosterbook.addin_install import template_names
from rosterbook.cli import run
from rosterbook.errors import UsageError
from rosterbook.xlsx import template_structure

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def prebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_xlam(tmp_path_factory.mktemp("xlam") / "rosterbook.xlam")


def expected_conf(python: str, startup: Path | str, templates: Path | str) -> str:
    return (
        f'"INTERPRETER_WIN","{python}"\n"INTERPRETER_MAC","{python}"\n"ADD_WORKBOOK_TO_PYTHONPATH","false"\n'
        f'"ROSTERBOOK_STARTUP","{startup}"\n"ROSTERBOOK_TEMPLATES","{templates}"\n"ROSTERBOOK_VERSION","{__version__}"\n'
    )


def ok_probe(found: dict[str, Any] | None = None) -> addin_install.Probe:
    """An interpreter that imports everything the add-in needs (or what ``found`` says), for paths not on this machine."""

    def probe(interpreter: str, platform: str) -> dict[str, Any]:
        return {"bits": 64, "version": "3.11.9", "rosterbook": __version__, "xlwings": "0.37.8", "addin.ribbon": "yes", "appscript": "1.5.0", **(found or {})}

    return probe


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
    resolved = target.resolve()
    assert (target / "rosterbook.conf").read_text(encoding="utf-8") == expected_conf(sys.executable, resolved, resolved / "templates")
    # The templates "New workbook" opens: the committed ones, as scripts/make_template.py generated them.
    for name in template_names().values():
        assert (target / "templates" / name).read_bytes() == (ROOT / "templates" / name).read_bytes()
    capsys.readouterr()

    assert run(["addin", "status", "--target", str(target), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["installed"] is True
    assert status["interpreter"] == sys.executable
    assert status["interpreter_exists"] is True
    assert status["addin_path"] == str(resolved / "rosterbook.xlam")
    assert status["notes"] == []
    # The interpreter really ran and imported rosterbook and the pinned xlwings.
    assert [(c["check"], c["ok"]) for c in status["checks"]] == [("addin", True), ("interpreter", True), ("templates", True)]
    assert "imports rosterbook and xlwings 0.37.8" in status["checks"][1]["detail"]

    assert run(["addin", "uninstall", "--target", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"removed {resolved / 'rosterbook.xlam'}" in out
    assert not (target / "rosterbook.xlam").exists()
    assert not (target / "rosterbook.conf").exists()
    assert not (target / "templates").exists()
    assert run(["addin", "status", "--target", str(target)]) == 0
    assert "(not installed)" in capsys.readouterr().out


def test_install_builds_the_addin_when_no_xlam_is_given(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # oletools imports pyparsing's deprecated API
        from oletools.olevba import VBA_Parser

    report = addin_install.install(tmp_path, probe=ok_probe())
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
    templates = tmp_path / "me" / ".rosterbook" / "templates"
    assert (xlstart / "rosterbook.xlam").is_file()
    assert conf.read_bytes() == expected_conf(r"C:\venvs\rb\Scripts\python.exe", xlstart, templates).replace("\n", "\r\n").encode()
    assert sorted(p.name for p in templates.iterdir()) == sorted(template_names().values())
    assert report.platform == "windows"
    assert report.interpreter == r"C:\venvs\rb\Scripts\python.exe"
    assert report.interpreter_exists is False  # not a path on this machine
    assert report.notes == [r"the interpreter C:\venvs\rb\Scripts\python.exe no longer exists: run `rosterbook addin install` again."]
    addin_install.uninstall(system="win32", environ=env)
    assert not (xlstart / "rosterbook.xlam").exists()
    assert not conf.parent.exists()


def test_windows_status_looks_for_the_xlwings_dll_beside_the_interpreter(tmp_path: Path, prebuilt: Path) -> None:
    env = {"APPDATA": str(tmp_path / "AppData"), "USERPROFILE": str(tmp_path / "me")}
    venv = tmp_path / "venv"
    python = venv / "Scripts" / "python.exe"
    python.parent.mkdir(parents=True)
    python.write_bytes(b"")
    report = addin_install.install(xlam=prebuilt, interpreter=str(python), system="win32", environ=env, probe=ok_probe())
    dll = next(c for c in report.checks if c["check"] == "dll")
    assert not dll["ok"]
    assert dll["detail"] == (
        f"neither xlwings64-0.37.8.dll nor xlwings32-0.37.8.dll is in {venv / 'Scripts'} or {venv}: "
        'Excel will say "Could not activate Python COM server"'
    )
    assert report.notes == [f"{dll['detail']}: {dll['fix']}."]
    assert f"`{python} -m pip install --force-reinstall --no-deps xlwings==0.37.8`" in dll["fix"]
    (venv / "xlwings64-0.37.8.dll").write_bytes(b"MZ")  # where the Windows wheel puts it in a virtual environment
    report = addin_install.status(system="win32", environ=env, probe=ok_probe())
    assert report.notes == []
    assert next(c for c in report.checks if c["check"] == "dll")["detail"] == f"found {venv / 'xlwings64-0.37.8.dll'}"


def test_status_runs_the_interpreter_and_says_what_it_lacks(tmp_path: Path, prebuilt: Path) -> None:
    broken = tmp_path / "broken-python"
    broken.write_text("#!/bin/sh\necho 'no such module' >&2\nexit 3\n", encoding="utf-8")
    broken.chmod(0o755)
    report = addin_install.install(tmp_path / "a", xlam=prebuilt, interpreter=str(broken))
    assert report.notes == [
        f"the interpreter {broken} does not run (no such module): reinstall Python or point the add-in at another: "
        f"in the rosterbook folder run `{broken} -m pip install -c constraints.txt -e .`, then `rosterbook addin install` again."
    ]
    system_python = shutil.which("python3", path="/usr/bin:/usr/local/bin")
    assert system_python is not None
    bare = tmp_path / "bare-python"  # a Python without rosterbook or xlwings (isolated from this environment)
    bare.write_text(f'#!/bin/sh\nexec {system_python} -I -S "$@"\n', encoding="utf-8")
    bare.chmod(0o755)
    report = addin_install.install(tmp_path / "b", xlam=prebuilt, interpreter=str(bare))
    (note,) = report.notes
    assert note.startswith(
        f"the interpreter {bare}: it cannot import rosterbook (ModuleNotFoundError: No module named 'rosterbook'); it cannot import xlwings"
    ), note


def test_status_compares_the_addin_and_conf_with_this_rosterbook(tmp_path: Path, prebuilt: Path) -> None:
    old = tmp_path / "old.xlam"
    with zipfile.ZipFile(prebuilt) as source, zipfile.ZipFile(old, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "docProps/custom.xml":
                data = data.replace(f">{__version__}<".encode(), b">0.0.9<")
            target.writestr(item, data)
    folder = tmp_path / "addin"
    addin_install.install(folder, xlam=old, probe=ok_probe())
    conf = folder / "rosterbook.conf"
    conf.write_text(conf.read_text(encoding="utf-8").replace(f'"ROSTERBOOK_VERSION","{__version__}"', '"ROSTERBOOK_VERSION","0.0.8"'), encoding="utf-8")
    (folder / "templates" / "UserTemplate-jostle.xlsx").unlink()
    report = addin_install.status(folder, probe=ok_probe())
    again = "run `rosterbook addin install` again."
    assert report.notes == [
        f"{folder.resolve() / 'rosterbook.xlam'} was built for rosterbook 0.0.9 and xlwings 0.37.8, this is rosterbook {__version__} with xlwings 0.37.8: {again}",
        f"{conf.resolve()} was written by rosterbook 0.0.8, this is {__version__}: {again}",
        f"UserTemplate-jostle.xlsx missing from {folder.resolve() / 'templates'}: New workbook cannot open them: {again}",
    ]


def test_macos_paths_conf_and_applescript(tmp_path: Path, prebuilt: Path) -> None:
    env = {"HOME": str(tmp_path)}
    report = addin_install.install(xlam=prebuilt, system="darwin", environ=env, probe=ok_probe())
    startup = tmp_path / "Library" / "Group Containers" / "UBF8T346G9.Office" / "User Content" / "Startup" / "Excel"
    data = tmp_path / "Library" / "Containers" / "com.microsoft.Excel" / "Data"
    script = tmp_path / "Library" / "Application Scripts" / "com.microsoft.Excel" / "xlwings-0.37.8.applescript"
    assert (startup / "rosterbook.xlam").is_file()
    assert (data / "rosterbook.conf").read_text(encoding="utf-8") == expected_conf(sys.executable, startup, data / "rosterbook-templates")
    assert script.read_bytes() == (xlwings_vba_dir() / "xlwings-0.37.8.applescript").read_bytes()
    assert report.platform == "macos" and report.installed and report.notes == []
    assert len(report.actions) == 4


def test_macos_asks_excel_for_its_startup_folder(tmp_path: Path, prebuilt: Path) -> None:
    env = {"HOME": str(tmp_path)}
    localized = tmp_path / "Library" / "Group Containers" / "UBF8T346G9.Office" / "Contenu utilisateur" / "Démarrage" / "Excel"
    report = addin_install.install(xlam=prebuilt, system="darwin", environ=env, startup=lambda: str(localized), probe=ok_probe())
    assert (localized / "rosterbook.xlam").is_file()
    assert report.addin_path == str(localized / "rosterbook.xlam") and report.notes == []
    # status and uninstall look where install put it (the conf file says).
    assert addin_install.status(system="darwin", environ=env, probe=ok_probe()).installed
    addin_install.uninstall(system="darwin", environ=env)
    assert not (localized / "rosterbook.xlam").exists()


def test_macos_falls_back_to_the_usual_folder_when_excel_cannot_be_asked(tmp_path: Path, prebuilt: Path) -> None:
    env = {"HOME": str(tmp_path)}

    def refused() -> str | None:
        raise PermissionError("Terminal is not allowed to control Microsoft Excel")

    lacking = ok_probe({"appscript": None, "appscript error": "ModuleNotFoundError: No module named 'appscript'"})
    report = addin_install.install(xlam=prebuilt, system="darwin", environ=env, startup=refused, probe=lacking)
    usual = tmp_path / "Library" / "Group Containers" / "UBF8T346G9.Office" / "User Content" / "Startup" / "Excel"
    assert (usual / "rosterbook.xlam").is_file()
    assert report.notes[0] == (
        "Excel did not say where its start-up folder is (PermissionError: Terminal is not allowed to control Microsoft Excel), "
        f"so the add-in went to the usual {usual}. If the rosterbook tab does not appear, copy rosterbook.xlam into the folder "
        "Excel uses (in Excel's VBA editor, Immediate window: ? Application.StartupPath)."
    )
    assert "it cannot import appscript, which xlwings needs on macOS (ModuleNotFoundError: No module named 'appscript')" in report.notes[1]


def test_status_notes_a_missing_conf(tmp_path: Path, prebuilt: Path) -> None:
    addin_install.install(tmp_path, xlam=prebuilt, probe=ok_probe())
    (tmp_path / "rosterbook.conf").unlink()
    report = addin_install.status(tmp_path)
    assert report.installed and report.interpreter is None
    assert report.notes == [f"{tmp_path.resolve() / 'rosterbook.conf'} is missing: the add-in has no interpreter: run `rosterbook addin install` again."]


def test_templates_are_generated_where_no_checkout_has_them(tmp_path: Path) -> None:
    written = addin_install.install_templates(tmp_path / "t", source=tmp_path / "nowhere")
    assert sorted(p.name for p in written) == sorted(template_names().values())
    assert template_structure(tmp_path / "t" / "UserTemplate-jostle.xlsx") == template_structure(ROOT / "templates" / "UserTemplate-jostle.xlsx")


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
    text = addin_install.conf_text(r"D:\Python 3.11\python.exe", startup=Path("D:/XLSTART"), templates=Path("D:/t"))
    path.write_text(text, encoding="utf-8")
    assert addin_install.read_conf(path) == {
        "INTERPRETER_WIN": r"D:\Python 3.11\python.exe",
        "INTERPRETER_MAC": r"D:\Python 3.11\python.exe",
        "ADD_WORKBOOK_TO_PYTHONPATH": "false",
        "ROSTERBOOK_STARTUP": str(Path("D:/XLSTART")),
        "ROSTERBOOK_TEMPLATES": str(Path("D:/t")),
        "ROSTERBOOK_VERSION": __version__,
    }


def test_missing_xlam_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["addin", "install", "--target", str(tmp_path), "--xlam", str(tmp_path / "nope.xlam")]) == 2
    assert "nope.xlam" in capsys.readouterr().err


def test_status_exits_1_when_a_check_fails(tmp_path: Path, prebuilt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    addin_install.install(tmp_path, xlam=prebuilt, probe=ok_probe())
    assert run(["addin", "status", "--target", str(tmp_path)]) == 0
    capsys.readouterr()
    (tmp_path / "rosterbook.conf").unlink()
    assert run(["addin", "status", "--target", str(tmp_path)]) == 1
    assert "is missing: the add-in has no interpreter: run `rosterbook addin install` again." in capsys.readouterr().err
