"""Install, remove and inspect the Excel add-in for the current user (``rosterbook addin ...``).

``install`` puts ``rosterbook.xlam`` where Excel loads add-ins at start-up and writes the add-in's
user conf file, which fixes the Python interpreter to the one running this command. The add-in's
VBA reads its settings from that file only (see ``addin/build.py``): an opened workbook's
``rosterbook.conf`` sheet or a ``rosterbook.conf`` file beside it is never read, so a workbook
cannot point the add-in at another interpreter, PYTHONPATH or conda environment.

- Windows: ``%APPDATA%\\Microsoft\\Excel\\XLSTART\\rosterbook.xlam`` and
  ``%USERPROFILE%\\.rosterbook\\rosterbook.conf``.
- macOS: ``~/Library/Group Containers/UBF8T346G9.Office/User Content/Startup/Excel/rosterbook.xlam``,
  ``~/Library/Containers/com.microsoft.Excel/Data/rosterbook.conf`` and xlwings' AppleScript
  (``~/Library/Application Scripts/com.microsoft.Excel/``) that RunPython needs there.
- ``--target DIR`` (any OS, used by tests): both files go into ``DIR``.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rosterbook.errors import UsageError

ADDIN_FILE = "rosterbook.xlam"
CONF_FILE = "rosterbook.conf"
XLWINGS_VERSION = "0.37.8"
Platform = Literal["windows", "macos", "target"]

# Keys the add-in's VBA reads from the conf file; everything else in it is ignored.
_FIXED_SETTINGS = (("ADD_WORKBOOK_TO_PYTHONPATH", "false"),)


@dataclass(frozen=True)
class Locations:
    """Where the add-in's files go for one user."""

    platform: Platform
    addin_dir: Path
    """Excel's start-up folder (XLSTART) or the --target folder."""
    conf_path: Path
    """The user-level conf file the add-in reads its interpreter from."""
    script_dir: Path | None = None
    """macOS only: where RunPython's AppleScript must be."""

    @property
    def addin_path(self) -> Path:
        return self.addin_dir / ADDIN_FILE

    @property
    def script_path(self) -> Path | None:
        return None if self.script_dir is None else self.script_dir / f"xlwings-{XLWINGS_VERSION}.applescript"


@dataclass
class Report:
    """What install/uninstall/status did or found; ``to_dict()`` is the --json output."""

    platform: str
    addin_path: str
    conf_path: str
    installed: bool
    interpreter: str | None = None
    interpreter_exists: bool | None = None
    actions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def locations(target: str | os.PathLike[str] | None = None, *, system: str | None = None, environ: dict[str, str] | None = None) -> Locations:
    """The add-in's paths for this OS (``system`` defaults to ``sys.platform``), or all in ``target``."""
    env = dict(os.environ) if environ is None else environ
    if target is not None:
        folder = Path(target).expanduser().resolve()
        return Locations("target", folder, folder / CONF_FILE)
    system = sys.platform if system is None else system
    if system.startswith("win"):
        appdata = env.get("APPDATA")
        profile = env.get("USERPROFILE")
        if not appdata or not profile:
            raise UsageError("APPDATA or USERPROFILE is not set: cannot find Excel's XLSTART folder; use --target DIR.")
        return Locations(
            "windows",
            Path(appdata) / "Microsoft" / "Excel" / "XLSTART",
            Path(profile) / ".rosterbook" / CONF_FILE,
        )
    if system == "darwin":
        home = Path(env.get("HOME") or Path.home())
        return Locations(
            "macos",
            home / "Library" / "Group Containers" / "UBF8T346G9.Office" / "User Content" / "Startup" / "Excel",
            home / "Library" / "Containers" / "com.microsoft.Excel" / "Data" / CONF_FILE,
            home / "Library" / "Application Scripts" / "com.microsoft.Excel",
        )
    raise UsageError(
        f"Excel is not available on this system ({system}): the add-in runs in Excel on Windows or macOS. "
        "Use --target DIR to write the add-in and its conf file into a folder instead."
    )


def conf_text(interpreter: str) -> str:
    """The conf file, in the quoted ``"KEY","value"`` lines VBA's ``Input #`` reads."""
    if '"' in interpreter or "\n" in interpreter:
        raise UsageError(f"the interpreter path {interpreter!r} contains a quote or line break, which the add-in's conf file cannot hold.")
    lines = [("INTERPRETER_WIN", interpreter), ("INTERPRETER_MAC", interpreter), *_FIXED_SETTINGS]
    return "".join(f'"{key}","{value}"\n' for key, value in lines)


def read_conf(path: Path) -> dict[str, str]:
    """The conf file's keys (upper case) and values."""
    found: dict[str, str] = {}
    for line in _read_text(path).splitlines():
        parts = [p.strip().strip('"') for p in line.split('","', 1)] if '","' in line else []
        if len(parts) == 2:
            found[parts[0].strip('"').upper()] = parts[1]
    return found


def install(
    target: str | os.PathLike[str] | None = None,
    *,
    xlam: str | os.PathLike[str] | None = None,
    interpreter: str | None = None,
    system: str | None = None,
    environ: dict[str, str] | None = None,
) -> Report:
    """Copy (or build) the add-in into the start-up folder and write the user conf file."""
    where = locations(target, system=system, environ=environ)
    python = interpreter or sys.executable
    text = conf_text(python)
    actions: list[str] = []
    try:
        where.addin_dir.mkdir(parents=True, exist_ok=True)
        if xlam is not None:
            source = Path(xlam)
            if not source.is_file():
                raise UsageError(f"--xlam {str(source)!r}: no such file.")
            shutil.copyfile(source, where.addin_path)
        else:
            _build(where.addin_path)
        actions.append(f"wrote {where.addin_path}")
        where.conf_path.parent.mkdir(parents=True, exist_ok=True)
        _write_text(where.conf_path, text, where.platform)
        actions.append(f"wrote {where.conf_path} (interpreter {python})")
        script = where.script_path
        if script is not None:
            script.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_xlwings_dir() / script.name, script)
            actions.append(f"wrote {script} (lets the add-in run Python on macOS)")
    except PermissionError as exc:
        raise UsageError(f"cannot write {exc.filename!r}: if Excel is running with the add-in loaded, close Excel and try again.") from None
    report = status(target, system=system, environ=environ)
    report.actions = actions
    return report


def uninstall(target: str | os.PathLike[str] | None = None, *, system: str | None = None, environ: dict[str, str] | None = None) -> Report:
    """Remove the add-in and the conf file (the AppleScript stays: other xlwings add-ins may use it)."""
    where = locations(target, system=system, environ=environ)
    actions: list[str] = []
    try:
        for path in (where.addin_path, where.conf_path):
            if path.exists():
                path.unlink()
                actions.append(f"removed {path}")
        if where.platform == "windows" and where.conf_path.parent.is_dir() and not any(where.conf_path.parent.iterdir()):
            where.conf_path.parent.rmdir()
    except PermissionError as exc:
        raise UsageError(f"cannot remove {exc.filename!r}: close Excel and try again.") from None
    report = status(target, system=system, environ=environ)
    report.actions = actions or ["nothing to remove"]
    return report


def status(target: str | os.PathLike[str] | None = None, *, system: str | None = None, environ: dict[str, str] | None = None) -> Report:
    """What is installed where, and which interpreter the add-in will run."""
    where = locations(target, system=system, environ=environ)
    report = Report(where.platform, str(where.addin_path), str(where.conf_path), installed=where.addin_path.is_file())
    if where.conf_path.is_file():
        conf = read_conf(where.conf_path)
        key = "INTERPRETER_MAC" if where.platform == "macos" else "INTERPRETER_WIN"
        report.interpreter = conf.get(key)
        report.interpreter_exists = report.interpreter is not None and Path(report.interpreter).exists()
        if report.interpreter and report.interpreter_exists is False:
            report.notes.append(f"the interpreter {report.interpreter!r} no longer exists: run `rosterbook addin install` again.")
    elif report.installed:
        report.notes.append(f"{where.conf_path} is missing: the add-in has no interpreter; run `rosterbook addin install` again.")
    script = where.script_path
    if script is not None and report.installed and not script.is_file():
        report.notes.append(f"{script} is missing: the ribbon cannot run Python; run `rosterbook addin install` again.")
    return report


def _build(path: Path) -> None:
    try:
        from addin.build import build_xlam
    except ImportError as exc:  # ms-ovba is a dev dependency
        raise UsageError(f"building the add-in needs {exc.name!r}: install with ./rb (or pip install -e '.[dev]'), or pass --xlam FILE.") from None
    build_xlam(path)


def _xlwings_dir() -> Path:
    from addin.build import xlwings_vba_dir

    return xlwings_vba_dir()


def _write_text(path: Path, text: str, platform: Platform) -> None:
    # VBA's Input # reads the file in the system's ANSI code page on Windows.
    encoding = "mbcs" if platform == "windows" and sys.platform.startswith("win") else "utf-8"
    path.write_text(text, encoding=encoding, newline="\r\n" if platform == "windows" else "\n")


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")
