"""One workbook session per command: read once, one diff, one final save, one confirmation (CLI and ribbon alike)."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from rosterbook import app, session
from rosterbook import workbook as wbk
from rosterbook.cli import run
from rosterbook.core.settings import Settings
from rosterbook.errors import DataError
from rosterbook.sandbox import Sandbox
from rosterbook.xlsx import OpenpyxlBook

ROOT = Path(__file__).resolve().parents[1]


class Counts:
    """Diffs, workbook reads and saves made during one command (counted on the real functions, wrapped)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.diffs = self.saves = self.opens = 0
        real_diff, real_save, real_open = session.diff, session.Session.save, session.Session.open

        def diff(*args: Any, **kwargs: Any) -> Any:
            self.diffs += 1
            return real_diff(*args, **kwargs)

        def save(this: session.Session) -> None:
            self.saves += 1
            real_save(this)

        def open_(cls: type[session.Session], *args: Any, **kwargs: Any) -> session.Session:
            self.opens += 1
            return real_open.__func__(cls, *args, **kwargs)  # type: ignore[attr-defined]

        monkeypatch.setattr(session, "diff", diff)
        monkeypatch.setattr(session.Session, "save", save)
        monkeypatch.setattr(session.Session, "open", classmethod(open_))


@pytest.fixture
def platform(fresh_sandbox: Callable[..., Sandbox]) -> Sandbox:
    return fresh_sandbox(users=40, seed=3)


def _export_and_edit(tmp_path: Path, sandbox: Sandbox, *, archive: int = 0, titles: int = 3) -> Path:
    book = tmp_path / "users.xlsx"
    app.export_workbook(book, platform=sandbox.url)
    wb = openpyxl.load_workbook(book)
    ws = wb["Users"]
    cols = {str(c.value): c.column for c in ws[1] if c.value}
    actives = [r for r in range(2, ws.max_row + 1) if ws.cell(r, cols["Status"]).value == "Active"]
    for row in actives[:titles]:
        ws.cell(row, cols["Job title"]).value = f"Title {row}"
    for row in actives[titles : titles + archive]:
        ws.cell(row, cols["Status"]).value = "Archived"
    wb.save(book)
    return book


def _reads(sandbox: Sandbox, since: int) -> list[str]:
    return [f"{r.method} {r.path}" for r in sandbox.request_log[since:] if r.method == "GET"]


def _writes(sandbox: Sandbox, since: int) -> list[str]:
    return [f"{r.method} {r.path}" for r in sandbox.request_log[since:] if r.method != "GET"]


def test_cli_sync_reads_diffs_and_saves_once(tmp_path: Path, platform: Sandbox, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    book = _export_and_edit(tmp_path, platform)
    counts = Counts(monkeypatch)
    before = len(platform.request_log)
    assert run(["sync", str(book), "--yes"]) == 0
    assert "Synced 3 rows: 3 confirmed, 0 failed." in capsys.readouterr().out
    assert (counts.opens, counts.diffs, counts.saves) == (1, 1, 1)
    reads = _reads(platform, before)
    # Discovery once, then the three users' current state in one id filter (the sandbox announces filtering): nothing read twice.
    assert len(reads) == len(set(reads)), reads
    filters = [r.query for r in platform.request_log[before:] if r.method == "GET" and r.path == "/Users"]
    assert len(filters) == 1 and filters[0].startswith("filter=id+eq+") and filters[0].count("+or+id+eq+") == 2, filters
    assert [r for r in reads if r.startswith("GET /Users/")] == []
    assert len(_writes(platform, before)) >= 1


class _UI:
    """The ribbon's UI, recorded: answers every confirmation with ``answer``."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.questions: list[str] = []
        self.alerts: list[tuple[str, bool]] = []

    def alert(self, message: str, *, error: bool = False) -> None:
        self.alerts.append((message, error))

    def confirm(self, message: str) -> bool:
        self.questions.append(message)
        return self.answer

    def choose_file(self, title: str) -> str | None:
        return None

    def selected_rows(self, book: Any, sheet: str) -> list[int]:
        return []

    def show_sheet(self, book: Any, sheet: str) -> None:
        return None


def test_ribbon_sync_reads_diffs_saves_and_asks_once(tmp_path: Path, platform: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from addin import ribbon

    monkeypatch.setenv("ROSTERBOOK_HOME", str(tmp_path / "home"))
    ribbon.remember_platform(platform.url)  # the user agreed to this platform before
    book = _export_and_edit(tmp_path, platform)
    counts = Counts(monkeypatch)
    ui = _UI(True)
    before = len(platform.request_log)
    outcome = ribbon.dispatch("sync", OpenpyxlBook(book), ui)
    assert outcome.ok, outcome.message
    assert (counts.opens, counts.diffs, counts.saves) == (1, 1, 1)
    assert len(ui.questions) == 1 and ui.questions[0].startswith("Sync: 3 update.")
    reads = _reads(platform, before)
    assert len(reads) == len(set(reads)), reads


def test_ribbon_asks_about_the_deletion_guard_in_its_one_confirmation(tmp_path: Path, platform: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from addin import ribbon

    monkeypatch.setenv("ROSTERBOOK_HOME", str(tmp_path / "home"))
    ribbon.remember_platform(platform.url)
    book = _export_and_edit(tmp_path, platform, archive=26, titles=0)  # more than the guard's minimum of 25
    before = len(platform.request_log)
    no = _UI(False)
    outcome = ribbon.dispatch("sync", OpenpyxlBook(book), no)
    assert not outcome.ok and outcome.message == "Sync cancelled: nothing was sent."
    assert len(no.questions) == 1
    assert "would take access away from 26 users (archive, deactivate, or a status that cannot log in), more than the threshold of 25. Is that intended?" in no.questions[0]
    assert _writes(platform, before) == []

    yes = _UI(True)
    outcome = ribbon.dispatch("sync", OpenpyxlBook(book), yes)
    assert outcome.ok, outcome.message
    assert len(yes.questions) == 1 and outcome.result["confirmed"] == 26
    assert app.preview_workbook(book).counts["archive"] == 0


def test_cli_refuses_the_deletion_guard_without_confirmation_and_sends_nothing(tmp_path: Path, platform: Sandbox,
                                                                                capsys: pytest.CaptureFixture[str]) -> None:
    book = _export_and_edit(tmp_path, platform, archive=26, titles=0)
    before = len(platform.request_log)
    assert run(["sync", str(book), "--yes"]) == 1
    assert "more than the deletion guard's threshold of 25; nothing was sent. If that is intended, run again with --confirm-deletions." in capsys.readouterr().err
    assert _writes(platform, before) == []
    assert run(["preview", str(book)]) == 1  # preview's exit code asks the same blockers
    assert run(["sync", str(book), "--yes", "--confirm-deletions"]) == 0


def test_what_the_sheet_alone_refuses_is_refused_before_any_request(tmp_path: Path, platform: Sandbox) -> None:
    book = _export_and_edit(tmp_path, platform)
    wb = openpyxl.load_workbook(book)
    wb["Users"]["E2"] = "actve"
    wb.save(book)
    before = len(platform.request_log)
    with pytest.raises(DataError, match=r"1 row has errors \(row 2\); nothing was sent"):
        app.sync_workbook(book)
    assert platform.request_log[before:] == []


def _functions(path: Path) -> Iterator[tuple[str, int]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node.name, (node.end_lineno or node.lineno) - node.lineno + 1


@pytest.mark.parametrize("module", ["rosterbook/session.py", "rosterbook/engine.py", "rosterbook/undo.py", "rosterbook/history.py", *sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "rosterbook" / "connectors").glob("*.py"))])
def test_session_and_connector_functions_stay_short(module: str) -> None:
    long = {name: lines for name, lines in _functions(ROOT / module) if lines > 80}
    assert long == {}


def test_the_use_cases_module_stays_small() -> None:
    assert len((ROOT / "rosterbook" / "app.py").read_text(encoding="utf-8").splitlines()) < 600


def test_the_stored_dialect_keeps_spaces_at_its_chunk_edges(tmp_path: Path) -> None:
    """The platform's dialect is stored in 30,000-character cells: a space at a cell's edge belongs to the JSON text."""
    from rosterbook.core.dialects import load_dialect

    base = load_dialect("scim")
    first = base.columns[0]

    def with_help(text: str) -> Any:
        return base.model_copy(update={"columns": (first.model_copy(update={"help": text}), *base.columns[1:])})

    at = with_help("MARK").model_dump_json().index("MARK")
    help_text = "x" * (30000 - at - 1) + "  " + "y" * 10  # one space ends the first cell, one starts the second
    dialect = with_help(help_text)
    book = OpenpyxlBook.new(tmp_path / "d.xlsx")
    book.ensure_sheet("Users")
    session.write_dialect(book, dialect)
    book.save()
    again = session.workbook_dialect(OpenpyxlBook(tmp_path / "d.xlsx"), Settings(dialect="scim"))
    assert again.columns[0].help == help_text


def test_commands_pause_the_garbage_collector_and_leave_it_as_they_found_it(tmp_path: Path, platform: Sandbox,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A command on a big workbook builds a million small objects and no cycles: the collector is paused for the whole
    command, reading, checking, asking the platform and saving (it cost 0.6 s of a 4 s preview on 50,000 users), and
    is as it was afterwards."""
    import gc

    import rosterbook.xlsxpatch

    book = _export_and_edit(tmp_path, platform)
    seen: list[tuple[str, bool]] = []

    def watch(owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def watched(*args: Any, **kwargs: Any) -> Any:
            seen.append((name, gc.isenabled()))
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, watched)

    watch(session, "_read")
    watch(app, "_read_plan")
    watch(rosterbook.xlsxpatch.PatchBook, "save")
    watch(wbk, "write_users")
    commands = {"check": lambda: app.check_workbook(book), "preview": lambda: app.preview_workbook(book),
                "sync": lambda: app.sync_workbook(book), "revert": lambda: app.revert_rows(book, [2]),
                "export": lambda: app.export_workbook(tmp_path / "again.xlsx", platform=platform.url)}
    for name, command in commands.items():
        seen.clear()
        assert gc.isenabled()
        command()
        assert gc.isenabled(), name
        assert seen and all(not enabled for _, enabled in seen), (name, seen)
    gc.disable()
    try:
        app.check_workbook(book)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_writing_command_has_the_users_sheet_scanned_for_formulas_meanwhile_and_the_snapshot_when_asked(
        tmp_path: Path, platform: Sandbox) -> None:
    """The prefetch thread scans the Users sheet for formulas where the command writes (its values are read whole next);
    not the snapshot, which is asked only when a sync writes it whole (a sync's changed entries go to the updates sheet):
    scanning it meanwhile kept the reading thread waiting 0.3 s and raised a 50,000-user step's peak by 40 MB. A
    read-only check scans nothing meanwhile (it has asked about the Users sheet already)."""
    from rosterbook.fastread import FastBook
    from rosterbook.xlsxpatch import PatchBook

    book = _export_and_edit(tmp_path, platform)
    reading = session.Session.open(book, read_only=True)
    assert isinstance(reading.book, FastBook) and reading.book._scans == {}
    assert reading.book._formulas[wbk.USERS] is False  # asked before the read, to choose this reader
    writing = session.Session.open(book)
    assert isinstance(writing.book, PatchBook)
    assert set(writing.book._fast._scans) == {wbk.USERS}
    assert writing.book._fast._formulas[wbk.USERS] is False
    assert wbk.SNAPSHOT not in writing.book._fast._formulas
    assert writing.book._fast.has_formulas(wbk.SNAPSHOT) is False  # scanned when asked
    assert writing.book._fast._formulas[wbk.SNAPSHOT] is False


def test_work_meanwhile_runs_while_the_other_core_parses_the_snapshot_and_changes_nothing_read(
        tmp_path: Path, platform: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Session.open(meanwhile=...)``: the prefetch thread is given the snapshot first, then the Users sheet; the work
    runs once, with the workbook's dialect, after the thread started and before the snapshot is read; what is read is
    what a session opened without it reads. Without work meanwhile, this thread parses the snapshot itself."""
    from rosterbook.fastread import FastBook

    book = _export_and_edit(tmp_path, platform)
    events: list[tuple[str, Any]] = []
    prefetch, read_snapshot = FastBook.prefetch, wbk.read_snapshot_sheet

    def spy_prefetch(self: FastBook, *sheets: str, **kwargs: Any) -> None:
        events.append(("prefetch", sheets))
        prefetch(self, *sheets, **kwargs)

    def spy_read(*args: Any, **kwargs: Any) -> wbk.SnapshotSheet:
        events.append(("read snapshot", None))
        return read_snapshot(*args, **kwargs)

    monkeypatch.setattr(FastBook, "prefetch", spy_prefetch)
    monkeypatch.setattr(wbk, "read_snapshot_sheet", spy_read)
    plain = session.Session.open(book)
    assert events == [("prefetch", ("Users",)), ("read snapshot", None)]
    events.clear()
    busy = session.Session.open(book, meanwhile=lambda dialect: events.append(("meanwhile", dialect.name)))
    assert events == [("prefetch", (wbk.SNAPSHOT, "Users")), ("meanwhile", "scim"), ("read snapshot", None)]
    assert busy.snapshot == plain.snapshot and busy.grid == plain.grid and busy.problems() == plain.problems()
    assert busy.changes() == plain.changes() and len([c for c in busy.changes() if c.action == "update"]) == 3


def test_loading_a_connectors_modules_loads_only_what_it_sends_with_and_asks_for_no_token(tmp_path: Path) -> None:
    """``connectors.load_modules``: the SCIM client's modules for a SCIM dialect, nothing for a CSV platform's; no token
    is looked up (none is set, and no keyring backend would answer), so it may run before the sheet's checks."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from rosterbook.connectors import load_modules\n"
        "from rosterbook.core.dialects import load_dialect\n"
        "load_modules(load_dialect('progression'))\n"
        "assert 'sync_client.scim' not in sys.modules and 'scim2_models' not in sys.modules, 'a CSV platform loads no SCIM client'\n"
        "load_modules(load_dialect('scim'))\n"
        "assert 'sync_client.scim' in sys.modules and 'scim2_models' in sys.modules\n"
        "assert 'keyring' not in sys.modules, 'no token was looked up'\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("ROSTERBOOK_")}
    env["HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr
