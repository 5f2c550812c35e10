"""Install, remove and inspect the Excel add-in for the current user (``rosterbook addin ...``).

``install`` puts ``rosterbook.xlam`` where Excel loads add-ins at start-up, the workbook templates
where the add-in's "New workbook" button opens them, and writes the add-in's user conf file, which
fixes the Python interpreter to the one running this command. The add-in's VBA reads its settings
from that file only (see ``addin/build.py``): an opened workbook's ``rosterbook.conf`` sheet or a
``rosterbook.conf`` file beside it is never read, so a workbook cannot point the add-in at another
interpreter, PYTHONPATH or conda environment.

- Windows: ``%APPDATA%\\Microsoft\\Excel\\XLSTART\\rosterbook.xlam``,
  ``%USERPROFILE%\\.rosterbook\\rosterbook.conf`` and the templates in ``%USERPROFILE%\\.rosterbook\\templates``.
- macOS: the start-up folder Excel names (``Application.StartupPath``, asked as ``xlwings addin
  install`` asks it: some installs use localized folder names). When Excel cannot be asked (not
  installed, or the Terminal may not control it), the usual
  ``~/Library/Group Containers/UBF8T346G9.Office/User Content/Startup/Excel`` is used and a note
  says so. Then ``~/Library/Containers/com.microsoft.Excel/Data/rosterbook.conf``, the templates in
  ``.../Data/rosterbook-templates`` (inside Excel's sandbox, so Excel may open them) and xlwings'
  AppleScript (``~/Library/Application Scripts/com.microsoft.Excel/``) that RunPython needs there.
- ``--target DIR`` (any OS, used by tests): everything goes into ``DIR``.

The conf file records the folders used (``ROSTERBOOK_STARTUP``, ``ROSTERBOOK_TEMPLATES``) and the
rosterbook version, so ``status`` and ``uninstall`` look where ``install`` put things. ``status``
checks what makes the add-in fail in Excel and says what to do for each failure: the add-in and
conf versions, the interpreter (it runs it: can it import rosterbook and the pinned xlwings, and
on macOS appscript?), on Windows the ``xlwings64-<version>.dll`` that must sit beside it ("Could not
activate Python COM server"), on macOS the AppleScript, and the templates.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rosterbook import __version__
from rosterbook.errors import UsageError

ADDIN_FILE = "rosterbook.xlam"
CONF_FILE = "rosterbook.conf"
XLWINGS_VERSION = "0.37.8"
Platform = Literal["windows", "macos", "target"]

# Keys the add-in's VBA reads from the conf file; everything else in it is ignored.
_FIXED_SETTINGS = (("ADD_WORKBOOK_TO_PYTHONPATH", "false"),)
Probe = Callable[[str, Platform], dict[str, Any]]
"""Runs an interpreter and reports what it can import (``probe_interpreter``; tests pass their own)."""


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
    templates_dir: Path | None = None
    """Where "New workbook" finds the templates (beside the conf file)."""

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
    """One line per failure: what is wrong and what to do."""
    checks: list[dict[str, Any]] = field(default_factory=list)
    """``{"check", "ok", "detail", "fix"}`` for each thing ``status`` looked at."""

    @property
    def ok(self) -> bool:
        """True when every check ``status`` made passed (``addin status`` exits 1 otherwise)."""
        return all(check["ok"] for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def locations(target: str | os.PathLike[str] | None = None, *, system: str | None = None, environ: dict[str, str] | None = None) -> Locations:
    """The add-in's paths for this OS (``system`` defaults to ``sys.platform``), or all in ``target``."""
    env = dict(os.environ) if environ is None else environ
    if target is not None:
        folder = Path(target).expanduser().resolve()
        return Locations("target", folder, folder / CONF_FILE, templates_dir=folder / "templates")
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
            templates_dir=Path(profile) / ".rosterbook" / "templates",
        )
    if system == "darwin":
        home = Path(env.get("HOME") or Path.home())
        data = home / "Library" / "Containers" / "com.microsoft.Excel" / "Data"
        return Locations(
            "macos",
            home / "Library" / "Group Containers" / "UBF8T346G9.Office" / "User Content" / "Startup" / "Excel",
            data / CONF_FILE,
            home / "Library" / "Application Scripts" / "com.microsoft.Excel",
            data / "rosterbook-templates",
        )
    raise UsageError(
        f"Excel is not available on this system ({system}): the add-in runs in Excel on Windows or macOS. "
        "Use --target DIR to write the add-in and its conf file into a folder instead."
    )


def conf_text(interpreter: str, *, startup: Path | None = None, templates: Path | None = None) -> str:
    """The conf file, in the quoted ``"KEY","value"`` lines VBA's ``Input #`` reads."""
    lines = [("INTERPRETER_WIN", interpreter), ("INTERPRETER_MAC", interpreter), *_FIXED_SETTINGS]
    if startup is not None:
        lines.append(("ROSTERBOOK_STARTUP", str(startup)))
    if templates is not None:
        lines.append(("ROSTERBOOK_TEMPLATES", str(templates)))
    if startup is not None or templates is not None:
        lines.append(("ROSTERBOOK_VERSION", __version__))
    for key, value in lines:
        if '"' in value or "\n" in value:
            what = "interpreter path" if key.startswith("INTERPRETER") else "folder"
            raise UsageError(f"the {what} {value!r} contains a quote or line break, which the add-in's conf file cannot hold.")
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
    startup: Callable[[], str | None] | None = None,
    probe: Probe | None = None,
) -> Report:
    """Copy (or build) the add-in into the start-up folder, the templates beside the conf file, and write the conf file.

    ``startup`` asks Excel for its start-up folder (default on macOS: ``excel_startup_path``);
    ``probe`` runs the interpreter for ``status`` (default: ``probe_interpreter``).
    """
    where = locations(target, system=system, environ=environ)
    notes: list[str] = []
    if where.platform == "macos":
        asker = startup if startup is not None else (excel_startup_path if sys.platform == "darwin" else None)
        if asker is not None:
            try:
                told = asker()
            except Exception as exc:  # Excel missing, or the Terminal may not control it
                told, reason = None, f"{type(exc).__name__}: {exc}"
            else:
                reason = "it gave no folder"
            if told:
                where = Locations(where.platform, Path(told), where.conf_path, where.script_dir, where.templates_dir)
            else:
                notes.append(
                    f"Excel did not say where its start-up folder is ({reason}), so the add-in went to the usual {where.addin_dir}. "
                    "If the rosterbook tab does not appear, copy rosterbook.xlam into the folder Excel uses "
                    "(in Excel's VBA editor, Immediate window: ? Application.StartupPath)."
                )
    python = interpreter or sys.executable
    text = conf_text(python, startup=where.addin_dir, templates=where.templates_dir)
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
        if where.templates_dir is not None:
            install_templates(where.templates_dir)
            actions.append(f"wrote the workbook templates into {where.templates_dir} (for New workbook)")
        script = where.script_path
        if script is not None:
            script.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_xlwings_dir() / script.name, script)
            actions.append(f"wrote {script} (lets the add-in run Python on macOS)")
    except PermissionError as exc:
        raise UsageError(f"cannot write {exc.filename!r}: if Excel is running with the add-in loaded, close Excel and try again.") from None
    report = status(target, system=system, environ=environ, probe=probe)
    report.actions = actions
    report.notes = notes + report.notes
    return report


def excel_startup_path() -> str | None:
    """Excel's start-up folder as Excel names it (``Application.StartupPath``), asked as ``xlwings addin install``
    does: from the running Excel, or from one started hidden for the question."""
    import xlwings as xw

    running = xw.apps.active if xw.apps.count else None
    if running is not None:
        return str(running.startup_path)
    with xw.App(visible=False, add_book=False) as app:
        return str(app.startup_path)


def template_names() -> dict[str, str]:
    """Dialect -> its template's file name (``UserTemplate.xlsx`` for SCIM), as ``scripts/make_template.py`` names them
    and the add-in's "New workbook" opens them."""
    from rosterbook.core.dialects import dialect_names

    return {name: "UserTemplate.xlsx" if name == "scim" else f"UserTemplate-{name}.xlsx" for name in dialect_names()}


def install_templates(folder: Path, source: Path | None = None) -> list[Path]:
    """Put every dialect's template into ``folder``: the committed ``templates/`` files when this is a checkout
    (``source``), else generated from the dialects as ``scripts/make_template.py`` does."""
    source = _templates_source() if source is None else source
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, file_name in template_names().items():
        path = folder / file_name
        committed = source / file_name if source is not None else None
        if committed is not None and committed.is_file():
            shutil.copyfile(committed, path)
        else:
            from rosterbook.core.dialects import load_dialect
            from rosterbook.xlsx import build_template

            build_template(path, load_dialect(name)).save()
        out.append(path)
    return out


def _templates_source() -> Path | None:
    folder = Path(__file__).resolve().parent.parent / "templates"
    return folder if folder.is_dir() else None


def uninstall(target: str | os.PathLike[str] | None = None, *, system: str | None = None, environ: dict[str, str] | None = None) -> Report:
    """Remove the add-in, its templates and the conf file (the AppleScript stays: other xlwings add-ins may use it)."""
    where = _installed(locations(target, system=system, environ=environ))
    actions: list[str] = []
    try:
        for path in (where.addin_path, where.conf_path):
            if path.exists():
                path.unlink()
                actions.append(f"removed {path}")
        if where.templates_dir is not None and where.templates_dir.is_dir():
            for path in where.templates_dir.iterdir():
                if path.name in template_names().values():
                    path.unlink()
            if not any(where.templates_dir.iterdir()):
                where.templates_dir.rmdir()
            actions.append(f"removed the templates in {where.templates_dir}")
        if where.platform == "windows" and where.conf_path.parent.is_dir() and not any(where.conf_path.parent.iterdir()):
            where.conf_path.parent.rmdir()
    except PermissionError as exc:
        raise UsageError(f"cannot remove {exc.filename!r}: close Excel and try again.") from None
    report = status(target, system=system, environ=environ)
    report.actions = actions or ["nothing to remove"]
    return report


def _installed(where: Locations) -> Locations:
    """``where`` with the folders ``install`` recorded in the conf file (Excel's start-up folder may differ from the usual)."""
    if not where.conf_path.is_file():
        return where
    conf = read_conf(where.conf_path)
    startup, templates = conf.get("ROSTERBOOK_STARTUP"), conf.get("ROSTERBOOK_TEMPLATES")
    return Locations(
        where.platform,
        Path(startup) if startup else where.addin_dir,
        where.conf_path,
        where.script_dir,
        Path(templates) if templates else where.templates_dir,
    )


def status(
    target: str | os.PathLike[str] | None = None,
    *,
    system: str | None = None,
    environ: dict[str, str] | None = None,
    probe: Probe | None = None,
) -> Report:
    """What is installed where, which interpreter the add-in will run, and whether each part will work."""
    where = _installed(locations(target, system=system, environ=environ))
    report = Report(where.platform, str(where.addin_path), str(where.conf_path), installed=where.addin_path.is_file())
    checks: list[tuple[str, bool, str, str | None]] = []
    again = "run `rosterbook addin install` again"
    if report.installed:
        checks.append(_addin_versions(where.addin_path, again))
    conf: dict[str, str] = {}
    if where.conf_path.is_file():
        conf = read_conf(where.conf_path)
        key = "INTERPRETER_MAC" if where.platform == "macos" else "INTERPRETER_WIN"
        report.interpreter = conf.get(key)
        report.interpreter_exists = report.interpreter is not None and Path(report.interpreter).exists()
        if report.interpreter and report.interpreter_exists is False:
            checks.append(("interpreter", False, f"the interpreter {report.interpreter} no longer exists", again))
        recorded = conf.get("ROSTERBOOK_VERSION")
        if recorded is not None and recorded != __version__:
            checks.append(("conf", False, f"{where.conf_path} was written by rosterbook {recorded}, this is {__version__}", again))
    elif report.installed:
        checks.append(("conf", False, f"{where.conf_path} is missing: the add-in has no interpreter", again))
    if report.interpreter and report.interpreter_exists:
        checks.append(_interpreter(report.interpreter, where.platform, probe or probe_interpreter))
        if where.platform == "windows":
            checks.append(_dll(Path(report.interpreter)))
    script = where.script_path
    if script is not None and report.installed and not script.is_file():
        checks.append(("applescript", False, f"{script} is missing: the ribbon cannot run Python", again))
    if report.installed and where.templates_dir is not None and conf.get("ROSTERBOOK_TEMPLATES"):
        missing = [n for n in template_names().values() if not (where.templates_dir / n).is_file()]
        if missing:
            checks.append(("templates", False, f"{', '.join(missing)} missing from {where.templates_dir}: New workbook cannot open them", again))
        else:
            checks.append(("templates", True, f"templates in {where.templates_dir}", None))
    report.checks = [{"check": name, "ok": ok, "detail": detail, "fix": fix} for name, ok, detail, fix in checks]
    report.notes = [f"{detail}: {fix}." if fix else f"{detail}." for _, ok, detail, fix in checks if not ok]
    return report


def _addin_versions(path: Path, again: str) -> tuple[str, bool, str, str | None]:
    from addin.build import read_versions

    found = read_versions(path)
    built = (found.get("rosterbook version"), found.get("xlwings version"))
    if built == (__version__, XLWINGS_VERSION):
        return ("addin", True, f"{path.name} built for rosterbook {built[0]} and xlwings {built[1]}", None)
    if not found:
        return ("addin", False, f"{path} does not say which rosterbook built it (an older add-in)", again)
    return ("addin", False, f"{path} was built for rosterbook {built[0]} and xlwings {built[1]}, this is rosterbook {__version__} with xlwings {XLWINGS_VERSION}", again)


def probe_interpreter(interpreter: str, platform: Platform) -> dict[str, Any]:
    """What ``interpreter`` can import that the add-in needs: rosterbook, the pinned xlwings, appscript on macOS."""
    code = (
        "import json, struct, sys\n"
        "out = {'bits': struct.calcsize('P') * 8, 'version': sys.version.split()[0]}\n"
        "for name in ('rosterbook', 'xlwings', 'addin.ribbon', 'appscript'):\n"
        "    try:\n"
        "        module = __import__(name, fromlist=['_'])\n"
        "        out[name] = getattr(module, '__version__', 'yes')\n"
        "    except Exception as exc:\n"
        "        out[name] = None\n"
        "        out[name + ' error'] = f'{type(exc).__name__}: {exc}'\n"
        "print(json.dumps(out))\n"
    )
    try:
        done = subprocess.run([interpreter, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]}
    try:
        found = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": f"unexpected output {done.stdout[-200:]!r}"}
    return found if isinstance(found, dict) else {"error": f"unexpected output {done.stdout[-200:]!r}"}


def _interpreter(interpreter: str, platform: Platform, probe: Probe) -> tuple[str, bool, str, str | None]:
    found = probe(interpreter, platform)
    fix = f"in the rosterbook folder run `{interpreter} -m pip install -c constraints.txt -e .`, then `rosterbook addin install` again"
    if found.get("error"):
        return ("interpreter", False, f"the interpreter {interpreter} does not run ({found['error']})", f"reinstall Python or point the add-in at another: {fix}")
    wrong = []
    if found.get("rosterbook") is None or found.get("addin.ribbon") is None:
        wrong.append(f"it cannot import rosterbook ({found.get('rosterbook error') or found.get('addin.ribbon error')})")
    if found.get("xlwings") != XLWINGS_VERSION:
        has = found.get("xlwings")
        wrong.append(f"it has xlwings {has}, the add-in needs {XLWINGS_VERSION}" if has else f"it cannot import xlwings ({found.get('xlwings error')})")
    if platform == "macos" and found.get("appscript") is None:
        wrong.append(f"it cannot import appscript, which xlwings needs on macOS ({found.get('appscript error')})")
    if wrong:
        return ("interpreter", False, f"the interpreter {interpreter}: " + "; ".join(wrong), fix)
    return ("interpreter", True, f"{interpreter} (Python {found.get('version')}, {found.get('bits')}-bit) imports rosterbook and xlwings {XLWINGS_VERSION}", None)


def dll_names() -> tuple[str, str]:
    """The xlwings DLLs the add-in's VBA loads on Windows: 64-bit Excel, then 32-bit Excel."""
    return (f"xlwings64-{XLWINGS_VERSION}.dll", f"xlwings32-{XLWINGS_VERSION}.dll")


def _dll(interpreter: Path) -> tuple[str, bool, str, str | None]:
    """The xlwings VBA loads its DLL from the interpreter's folder or the one above (a virtual environment's)."""
    folders = [interpreter.parent, interpreter.parent.parent]
    found = [str(folder / name) for folder in folders for name in dll_names() if (folder / name).is_file()]
    if found:
        return ("dll", True, f"found {', '.join(found)}", None)
    return (
        "dll",
        False,
        f"neither {' nor '.join(dll_names())} is in {folders[0]} or {folders[1]}: Excel will say \"Could not activate Python COM server\"",
        f"reinstall xlwings so its Windows package puts the DLL there: `{interpreter} -m pip install --force-reinstall --no-deps xlwings=={XLWINGS_VERSION}` "
        "(Excel 64-bit needs a 64-bit Python, Excel 32-bit a 32-bit one)",
    )


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
