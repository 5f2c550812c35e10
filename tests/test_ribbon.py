"""Every ribbon button end to end: dispatch(tag) on a real .xlsx (OpenpyxlBook) against a real sandbox."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import openpyxl
import pytest
import requests
from support.ribbonui import RecordingUI

from addin import ribbon
from rosterbook import app
from rosterbook import workbook as wbk
from rosterbook.core.settings import Settings
from rosterbook.sandbox import Sandbox, start_sandbox
from rosterbook.xlsx import OpenpyxlBook

USERS = 12


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A fresh sandbox with a small demo organisation, on 127.0.0.1 and a free port, that the user agreed to connect to."""
    monkeypatch.setenv("ROSTERBOOK_HOME", str(tmp_path / "home"))
    with start_sandbox(tmp_path / "sandbox.sqlite3", users=USERS) as running:
        ribbon.remember_platform(running.url)
        yield running


class BatchingBook(OpenpyxlBook):
    """An OpenpyxlBook that records Excel's bulk-write mode the way XlwingsBook.batch() is used."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batched: list[str] = []
        self.writes_in_batch = 0
        self._in_batch = False

    @contextmanager
    def batch(self) -> Iterator[None]:
        self.batched.append("enter")
        self._in_batch = True
        try:
            yield
        finally:
            self._in_batch = False
            self.batched.append("exit")

    def write_values(self, sheet: str, row: int, column: int, values: Sequence[Sequence[Any]]) -> None:
        if self._in_batch:
            self.writes_in_batch += 1
        super().write_values(sheet, row, column, values)


def fresh_book(path: Path, sandbox: Sandbox) -> OpenpyxlBook:
    """A new workbook whose Settings point at the sandbox: what a user has before the first Export."""
    book = OpenpyxlBook.new(path)
    wbk.write_settings(book, Settings(dialect="scim", platform_url=sandbox.url))
    book.save()
    return OpenpyxlBook(path)


def exported(tmp_path: Path, sandbox: Sandbox) -> Path:
    path = tmp_path / "users.xlsx"
    app.export_workbook(path, platform=sandbox.url)
    return path


def columns(path: Path) -> tuple[Any, Any, dict[str, int]]:
    wb = openpyxl.load_workbook(path)
    ws = wb[wbk.USERS]
    return wb, ws, {str(c.value): c.column for c in ws[1] if c.value}


def row_of(ws: Any, cols: dict[str, int], status: str) -> int:
    return next(r for r in range(2, ws.max_row + 1) if ws.cell(r, cols["Status"]).value == status)


def user(sandbox: Sandbox, username: str) -> dict[str, Any]:
    found = requests.get(f"{sandbox.url}/Users", params={"filter": f'userName eq "{username}"'}, timeout=10).json()
    assert found["totalResults"] == 1
    return found["Resources"][0]  # type: ignore[no-any-return]


# --- the buttons ------------------------------------------------------------------------------------


def test_export_fills_a_new_workbook_from_the_platform_in_its_settings(tmp_path: Path, sandbox: Sandbox) -> None:
    book = BatchingBook(fresh_book(tmp_path / "users.xlsx", sandbox).path)
    ui = RecordingUI()
    outcome = ribbon.dispatch("export", book, ui)
    assert outcome.ok, outcome.message
    assert outcome.message.startswith(f"Exported {USERS} users (scim, ")
    assert ui.alerts == [(outcome.message, False)]
    # Bulk writes happened inside Excel's batch mode (screen updating off, manual calculation).
    assert book.batched == ["enter", "exit"] and book.writes_in_batch > 0
    assert any(message.startswith("rosterbook: ") for message in book._progress)
    _, ws, cols = columns(book.path)
    assert ws.max_row == USERS + 1
    assert {"Username", "Status", "Team"} <= set(cols)


def test_check_marks_problems_and_says_so(tmp_path: Path, sandbox: Sandbox) -> None:
    path = exported(tmp_path, sandbox)
    wb, ws, cols = columns(path)
    bad = row_of(ws, cols, "Active")
    ws.cell(bad, cols["Status"]).value = "actve"
    wb.save(path)
    ui = RecordingUI()
    outcome = ribbon.dispatch("check", OpenpyxlBook(path), ui)
    assert not outcome.ok
    address = f"{openpyxl.utils.get_column_letter(cols['Status'])}{bad}"
    assert outcome.message.startswith(f"{USERS} rows checked: 1 error, ")
    assert f"\n\nUsers!{address} Status: 'actve' is not one of 'Active', 'Pending', 'Archived'. Did you mean 'Active'?" in outcome.message
    assert ui.alerts == [(outcome.message, True)]
    _, ws, cols = columns(path)
    assert "actve" in str(ws.cell(bad, cols["Problems"]).value)
    assert ws.cell(bad, cols["Status"]).comment is not None


def test_preview_then_sync_sends_only_the_edit_after_confirmation(tmp_path: Path, sandbox: Sandbox) -> None:
    path = exported(tmp_path, sandbox)
    wb, ws, cols = columns(path)
    edited = row_of(ws, cols, "Active")
    username = ws.cell(edited, cols["Username"]).value
    ws.cell(edited, cols["Status"]).value = "Archived"
    wb.save(path)

    ui = RecordingUI()
    preview = ribbon.dispatch("preview", OpenpyxlBook(path), ui)
    assert preview.ok and preview.message == "Preview: 1 archive. See the Preview sheet."
    assert ui.shown == ["Preview"]
    assert "Preview" in openpyxl.load_workbook(path).sheetnames

    # Answer "no": nothing is sent.
    seen = len(sandbox.request_log)
    no = RecordingUI(answers=[False])
    cancelled = ribbon.dispatch("sync", OpenpyxlBook(path), no)
    assert not cancelled.ok and cancelled.message == "Sync cancelled: nothing was sent."
    assert no.questions == ["Sync: 1 archive.\n\nSend these changes now?"]
    assert [r.method for r in sandbox.request_log[seen:] if r.method != "GET"] == []
    assert user(sandbox, username)["active"] is True

    yes = RecordingUI(answers=[True])
    synced = ribbon.dispatch("sync", OpenpyxlBook(path), yes)
    assert synced.ok, synced.message
    assert synced.message == "Sync finished: 1 of 1 change(s) confirmed by the platform."
    assert synced.details == {"confirmed": 1, "left_out": {}}
    assert user(sandbox, username)["active"] is False
    log = list(openpyxl.load_workbook(path)[wbk.SYNC_LOG].iter_rows(min_row=2, values_only=True))
    assert [(r[2], r[3], r[4]) for r in log] == [(username, "archive", "ok")]


def test_revert_selected_rows_puts_back_the_exported_values(tmp_path: Path, sandbox: Sandbox) -> None:
    path = exported(tmp_path, sandbox)
    wb, ws, cols = columns(path)
    row = row_of(ws, cols, "Active")
    original = ws.cell(row, cols["Email"]).value
    ws.cell(row, cols["Email"]).value = "changed@example.org"
    wb.save(path)

    nothing = RecordingUI(rows=[])
    refused = ribbon.dispatch("revert", OpenpyxlBook(path), nothing)
    assert not refused.ok and refused.message == "Select the rows to revert on the Users sheet first (header excluded)."

    ui = RecordingUI(rows=[1, row])  # the header row in the selection is ignored
    outcome = ribbon.dispatch("revert", OpenpyxlBook(path), ui)
    assert outcome.ok and outcome.message == "Revert: reverted 1 row(s)."
    assert outcome.result["reverted"] == [row]
    _, ws, cols = columns(path)
    assert ws.cell(row, cols["Email"]).value == original


def test_settings_shows_the_sheet_and_what_it_says(tmp_path: Path, sandbox: Sandbox) -> None:
    path = exported(tmp_path, sandbox)
    ui = RecordingUI()
    outcome = ribbon.dispatch("settings", OpenpyxlBook(path), ui)
    assert outcome.ok
    assert outcome.message.startswith(f"Dialect: scim. Platform: {sandbox.url}.\n")
    assert ui.shown == ["Settings"]


def test_export_refused_over_unsynced_edits_asks_before_discarding(tmp_path: Path, sandbox: Sandbox) -> None:
    path = exported(tmp_path, sandbox)
    wb, ws, cols = columns(path)
    row = row_of(ws, cols, "Active")
    ws.cell(row, cols["Email"]).value = "unsynced@example.org"
    wb.save(path)

    keep = RecordingUI(answers=[False, False])
    kept = ribbon.dispatch("export", OpenpyxlBook(path), keep)
    assert not kept.ok and "unsynced edits in 1 row" in kept.message
    assert keep.questions[0].endswith("Refresh from the platform and keep those edits on top?")
    assert keep.questions[1].endswith("Export anyway and discard those edits?")
    assert columns(path)[1].cell(row, cols["Email"]).value == "unsynced@example.org"

    refresh = RecordingUI(answers=[True])
    refreshed = ribbon.dispatch("export", OpenpyxlBook(path), refresh)
    assert refreshed.ok and len(refresh.questions) == 1
    assert "unsynced@example.org" in [c.value for c in columns(path)[1][openpyxl.utils.get_column_letter(cols["Email"])]]

    discard = RecordingUI(answers=[False, True])
    again = ribbon.dispatch("export", OpenpyxlBook(path), discard)
    assert again.ok
    assert "unsynced@example.org" not in [c.value for c in columns(path)[1][openpyxl.utils.get_column_letter(cols["Email"])]]


# --- errors are dialogs, never tracebacks -------------------------------------------------------------------


def test_library_errors_become_a_dialog(tmp_path: Path) -> None:
    path = tmp_path / "plain.xlsx"
    openpyxl.Workbook().save(path)
    ui = RecordingUI()
    outcome = ribbon.dispatch("check", OpenpyxlBook(path), ui)
    assert not outcome.ok
    assert outcome.message.startswith("Check failed: the workbook has no 'Settings' sheet")
    assert ui.alerts == [(outcome.message, True)]


def test_unknown_tag_is_a_dialog(tmp_path: Path) -> None:
    path = tmp_path / "plain.xlsx"
    openpyxl.Workbook().save(path)
    ui = RecordingUI()
    outcome = ribbon.dispatch("explode", OpenpyxlBook(path), ui)
    assert ui.alerts == [("Unknown ribbon button 'explode'; expected one of 'export', 'check', 'checkcolumn', 'preview', 'sync', 'revert', 'undo', 'settings', 'signin'.", True)]
    assert not outcome.ok


class BrokenBook(OpenpyxlBook):
    def sheet_names(self) -> list[str]:
        raise RuntimeError("the workbook went away")


def test_unexpected_errors_become_a_dialog_without_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROSTERBOOK_DEBUG", raising=False)
    path = tmp_path / "plain.xlsx"
    openpyxl.Workbook().save(path)
    ui = RecordingUI()
    outcome = ribbon.dispatch("settings", BrokenBook(path), ui)
    assert ui.alerts == [
        ("Settings failed: internal error (RuntimeError: the workbook went away). Set ROSTERBOOK_DEBUG=1 for details.", True)
    ]
    assert "Traceback" not in outcome.message


def test_every_button_has_an_action() -> None:
    assert list(ribbon.ACTIONS) == ["export", "check", "checkcolumn", "preview", "sync", "revert", "undo", "settings", "signin"]


# --- the Excel adapter's pure parts (Excel itself is not available here) ---------------------------------


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("Main", "Main"),
        ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
        ("+SUM(1)", "'+SUM(1)"),
        ("-5", "'-5"),
        ("@user", "'@user"),
        ("00123", "'00123"),
        ("2024-01-02", "'2024-01-02"),
        ("TRUE", "'TRUE"),
        ("'quoted", "''quoted"),
        ("\tx", "'\tx"),
        ("", ""),
        (3.0, 3.0),
        (None, None),
    ],
)
def test_excel_text_keeps_strings_literal(value: Any, written: Any) -> None:
    from addin.sheet import excel_text

    assert excel_text(value) == written


def test_blocks_are_rectangular_and_reads_trimmed() -> None:
    from addin.sheet import rectangular, trim

    assert rectangular([["a"], ["b", "=c"], []]) == [["a", None], ["b", "'=c"], [None, None]]
    assert trim([["a", None, None], [None, "b", None], [None, None, None]]) == [["a", None], [None, "b"]]
    assert trim([[None, None]]) == []


@pytest.mark.parametrize(
    ("address", "rows"),
    [("$A$2:$C$4,$A$7", [2, 3, 4, 7]), ("$5:$6", [5, 6]), ("B3", [3]), ("$B:$B", []), ("Users!$A$9:$A$8", [8, 9])],
)
def test_rows_of_a_selection_address(address: str, rows: list[int]) -> None:
    from addin.sheet import rows_of_address

    assert rows_of_address(address) == rows


class _MergedGrid:
    """Excel's MergeCells/MergeArea answers for a sheet with the given merged areas; counts the calls."""

    def __init__(self, areas: list[tuple[int, int, int, int]]) -> None:
        self.areas = areas
        self.calls = 0

    def _area(self, row: int, column: int) -> tuple[int, int, int, int] | None:
        return next((a for a in self.areas if a[0] <= row <= a[2] and a[1] <= column <= a[3]), None)

    def merged(self, block: tuple[int, int, int, int]) -> bool | None:
        self.calls += 1
        cells = [(r, c) for r in range(block[0], block[2] + 1) for c in range(block[1], block[3] + 1)]
        inside = [self._area(r, c) is not None for r, c in cells]
        return True if all(inside) else None if any(inside) else False

    def area_of(self, row: int, column: int) -> tuple[int, int, int, int]:
        self.calls += 1
        return self._area(row, column) or (row, column, row, column)


@pytest.mark.parametrize(
    "areas",
    [
        [],
        [(1, 1, 1, 3)],
        [(5, 2, 6, 2)],
        [(2, 1, 2, 2), (2, 3, 4, 5), (40, 7, 40, 8)],
        [(1, 1, 60, 8)],
        [(r, 1, r, 2) for r in range(10, 20)],
    ],
)
def test_merge_areas_finds_every_merged_area(areas: list[tuple[int, int, int, int]]) -> None:
    from addin.sheet import merge_areas

    grid = _MergedGrid(areas)
    assert merge_areas(grid.merged, grid.area_of, 60, 8) == sorted(areas)
    # Halving, not a call per cell (60 x 8 = 480 cells).
    assert grid.calls <= 1 + 40 * len(areas)


def test_merge_areas_of_an_empty_sheet_asks_nothing() -> None:
    from addin.sheet import merge_areas

    grid = _MergedGrid([(1, 1, 1, 2)])
    assert merge_areas(grid.merged, grid.area_of, 0, 0) == []
    assert grid.calls == 0


class _FakeRange:
    """The few xlwings Range properties XlwingsBook.merged_ranges reads."""

    def __init__(self, grid: _MergedGrid, first: tuple[int, int], last: tuple[int, int]) -> None:
        self.grid, self.row, self.column, self.last = grid, first[0], first[1], last

    @property
    def last_cell(self) -> Any:
        return SimpleNamespace(row=self.last[0], column=self.last[1])

    @property
    def merge_cells(self) -> bool | None:
        return self.grid.merged((self.row, self.column, *self.last))

    @property
    def merge_area(self) -> _FakeRange:
        area = self.grid.area_of(self.row, self.column)
        return _FakeRange(self.grid, area[:2], area[2:])


class _FakeSheet:
    def __init__(self, grid: _MergedGrid, last: tuple[int, int]) -> None:
        self.grid = grid
        self.used_range = _FakeRange(grid, (1, 1), last)

    def range(self, first: tuple[int, int], last: tuple[int, int] | None = None) -> _FakeRange:
        return _FakeRange(self.grid, first, last or first)


def test_xlwings_book_reports_merged_ranges_for_the_structure_check() -> None:
    from addin.sheet import XlwingsBook

    sheet = _FakeSheet(_MergedGrid([(3, 2, 3, 4)]), (12, 6))
    book = XlwingsBook(SimpleNamespace(app=None, sheets={"Users": sheet}))
    assert book.merged_ranges("Users") == [(3, 2, 3, 4)]
    # rosterbook.workbook looks the method up by name (it is optional in the SheetBook protocol).
    assert callable(getattr(book, "merged_ranges", None))


# --- Sync in Excel's words: the rows left out, in its one question ------------------------------------------


def _edit(path: Path, edits: dict[tuple[int, str], str]) -> None:
    wb, ws, cols = columns(path)
    for (row, column), value in edits.items():
        ws.cell(row, cols[column]).value = value
    wb.save(path)


def test_sync_leaves_out_the_rows_with_errors_in_its_one_question(tmp_path: Path, sandbox: Sandbox) -> None:
    path = exported(tmp_path, sandbox)
    _, ws, cols = columns(path)
    actives = [r for r in range(2, ws.max_row + 1) if ws.cell(r, cols["Status"]).value == "Active"]
    bad, good = actives[0], actives[1]
    good_name = ws.cell(good, cols["Username"]).value
    bad_name = ws.cell(bad, cols["Username"]).value
    _edit(path, {(bad, "Status"): "actve", (good, "Job title"): "Chief of Staff"})

    no = RecordingUI(answers=[False])
    declined = ribbon.dispatch("sync", OpenpyxlBook(path), no)
    assert not declined.ok and declined.message == "Sync cancelled: nothing was sent."
    assert no.questions == [
        f"Sync: 1 update.\n\nRow {bad} has errors and is left out: fix them (Check lists them), then press Sync again.\n\nSend the other changes now?"
    ]
    assert user(sandbox, good_name).get("title") != "Chief of Staff"

    yes = RecordingUI(answers=[True])
    synced = ribbon.dispatch("sync", OpenpyxlBook(path), yes)
    assert synced.ok, synced.message
    assert synced.message == (f"Sync finished: 1 of 1 change(s) confirmed by the platform. Row {bad} has errors and is left out: "
                              "fix them (Check lists them), then press Sync again.")
    assert synced.details == {"confirmed": 1, "left_out": {"errors": [bad]}}
    assert user(sandbox, good_name)["title"] == "Chief of Staff"
    assert user(sandbox, bad_name)["active"] is True  # the row with the error was not sent


def test_sync_leaves_out_conflicts_too(tmp_path: Path, sandbox: Sandbox) -> None:
    path = exported(tmp_path, sandbox)
    _, ws, cols = columns(path)
    actives = [r for r in range(2, ws.max_row + 1) if ws.cell(r, cols["Status"]).value == "Active"]
    clash, good = actives[0], actives[1]
    clash_user = user(sandbox, ws.cell(clash, cols["Username"]).value)
    _edit(path, {(clash, "Job title"): "Ours", (good, "Job title"): "Also ours"})
    # Someone changes the same user on the platform after the export.
    patched = requests.patch(f"{sandbox.url}/Users/{clash_user['id']}", timeout=10, json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "title", "value": "Theirs"}]})
    assert patched.status_code in (200, 204), patched.text

    ui = RecordingUI(answers=[True])
    synced = ribbon.dispatch("sync", OpenpyxlBook(path), ui)
    assert synced.ok, synced.message
    [question] = ui.questions
    assert (f"Row {clash} was changed on the platform since the export and is left out: Export to take the platform's version, then edit again."
            in question)
    assert question.startswith("Sync: 1 update.") and question.endswith("Send the other changes now?")
    assert user(sandbox, clash_user["userName"])["title"] == "Theirs"  # never overwritten
    assert synced.details["left_out"] == {"conflicts": [clash]}


def test_sync_refuses_in_excel_words_when_only_rows_with_errors_changed(tmp_path: Path, sandbox: Sandbox) -> None:
    path = exported(tmp_path, sandbox)
    _, ws, cols = columns(path)
    bad = row_of(ws, cols, "Active")
    _edit(path, {(bad, "Status"): "actve"})
    seen = len(sandbox.request_log)
    ui = RecordingUI()
    outcome = ribbon.dispatch("sync", OpenpyxlBook(path), ui)
    assert not outcome.ok and ui.questions == []
    assert outcome.message.startswith(f"Sync failed: 1 row has errors (row {bad}); nothing was sent. Fix them (Check lists them). First: Users!")
    assert sandbox.request_log[seen:] == []  # what the sheet alone refuses is refused before any request


# --- Sign in -------------------------------------------------------------------------------------------------


@pytest.fixture
def keyring_in_memory(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from support.memkeyring import memory_keyring

    monkeypatch.delenv("ROSTERBOOK_TOKEN", raising=False)
    monkeypatch.delenv("ROSTERBOOK_PLATFORM", raising=False)
    with memory_keyring() as backend:
        yield backend


def _settings_book(path: Path, settings: Settings) -> OpenpyxlBook:
    book = OpenpyxlBook.new(path)
    wbk.write_settings(book, settings)
    book.save()
    return OpenpyxlBook(path)


def test_sign_in_stores_the_token_for_the_url_the_settings_name(tmp_path: Path, keyring_in_memory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from sync_client.auth import SERVICE, is_bound

    monkeypatch.setenv("ROSTERBOOK_HOME", str(tmp_path / "home"))
    book = _settings_book(tmp_path / "users.xlsx", Settings(dialect="scim", platform_url="https://HR.example.com:443/scim/v2/"))
    url = "https://hr.example.com/scim/v2"
    ui = RecordingUI(secret="  s3cret-token-4711 ")
    outcome = ribbon.dispatch("signin", book, ui)
    assert outcome.ok, outcome.message
    [(title, prompt)] = ui.secrets
    assert title == f"Sign in to {url}"  # the dialog names where the token will go
    assert prompt.startswith(f"Paste the API token for {url}.") and "never in the workbook" in prompt
    assert keyring_in_memory.store == {(SERVICE, url): "s3cret-token-4711"}
    assert outcome.message.startswith(f"Signed in: the token for {url} is kept in the OS keyring")
    assert "s3cret" not in outcome.message and all("s3cret" not in text for text, _ in ui.alerts)
    # Signed in: the add-in connects to that platform without asking first.
    assert is_bound(url)
    ribbon.approve_platform(wbk.read_settings(book), RecordingUI())  # RecordingUI() has no answer: asking would fail


def test_sign_in_cancelled_stores_nothing(tmp_path: Path, keyring_in_memory: Any) -> None:
    book = _settings_book(tmp_path / "users.xlsx", Settings(dialect="scim", platform_url="https://hr.example.com/scim/v2"))
    outcome = ribbon.dispatch("signin", book, RecordingUI(secret=None))
    assert not outcome.ok and outcome.message == "Sign in cancelled: no token was stored."
    assert keyring_in_memory.store == {}


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        (Settings(dialect="scim"), "This workbook uses the embedded sandbox on this computer, which needs no token."),
        (Settings.for_dialect("jostle"), "jostle is reached through its export and upload files: there is no token to store."),
    ],
)
def test_sign_in_where_there_is_no_token_to_give(tmp_path: Path, keyring_in_memory: Any, settings: Settings, said: str) -> None:
    ui = RecordingUI()
    outcome = ribbon.dispatch("signin", _settings_book(tmp_path / "users.xlsx", settings), ui)
    assert outcome.ok and outcome.message.startswith(said)
    assert ui.secrets == [] and keyring_in_memory.store == {}


# --- a platform the workbook names, with no token: ask first ------------------------------------------------


def test_the_first_connection_to_a_platform_without_a_token_is_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keyring_in_memory: Any) -> None:
    monkeypatch.setenv("ROSTERBOOK_HOME", str(tmp_path / "home"))
    with start_sandbox(tmp_path / "other.sqlite3", users=USERS) as other:  # a server the workbook names; nobody agreed to it
        path = tmp_path / "users.xlsx"
        book = fresh_book(path, other)
        no = RecordingUI(answers=[False])
        refused = ribbon.dispatch("export", book, no)
        assert not refused.ok
        assert refused.message == (f"Nothing was sent: rosterbook did not connect to {other.url}. If the platform needs a token, press Sign in; "
                                   "if you do not know this server, correct platform_url on the Settings sheet.")
        [question] = no.questions
        assert question.startswith(f"This workbook's Settings send rosterbook to {other.url}, a platform this computer has no token for")
        assert other.request_count == 0  # not one request
        for tag in ("preview", "sync"):
            assert not ribbon.dispatch(tag, OpenpyxlBook(path), RecordingUI(answers=[False])).ok
        assert other.request_count == 0

        yes = RecordingUI(answers=[True])
        assert ribbon.dispatch("export", OpenpyxlBook(path), yes).ok
        assert other.request_count > 0 and len(yes.questions) == 1
        # Asked once: the next button press connects without a question.
        again = RecordingUI()
        assert ribbon.dispatch("preview", OpenpyxlBook(path), again).ok and again.questions == []
        assert ribbon.known_platforms() == {other.url}


# --- the sheets the ribbon shows speak Excel too ------------------------------------------------------------


def _sheet_texts(path: Path, sheet: str) -> list[str]:
    return [str(v) for row in openpyxl.load_workbook(path)[sheet].iter_rows(values_only=True) for v in row if isinstance(v, str)]


def test_the_settings_and_preview_sheets_name_no_command_line_flag(tmp_path: Path, sandbox: Sandbox) -> None:
    from support.ribbonui import assert_excel_words

    path = exported(tmp_path, sandbox)
    wb, ws, cols = columns(path)
    settings = wb[wbk.SETTINGS]
    for row in settings.iter_rows(min_row=2):
        if row[0].value == "deletion_threshold_min":
            row[1].value = "1"
        if row[0].value == "deletion_threshold_ratio":
            row[1].value = "0.01"
    for row in [r for r in range(2, ws.max_row + 1) if ws.cell(r, cols["Status"]).value == "Active"][:2]:
        ws.cell(row, cols["Status"]).value = "Archived"
    wb.save(path)
    assert ribbon.dispatch("preview", OpenpyxlBook(path), RecordingUI()).ok
    preview = _sheet_texts(path, wbk.PREVIEW)
    assert any("NOT confirmed: Sync sends nothing until the deletions are confirmed" in t for t in preview)  # the guard tripped
    for text in [*preview, *_sheet_texts(path, wbk.SETTINGS)]:
        assert_excel_words(text)


def test_export_asks_before_taking_a_cut_short_csv_export(tmp_path: Path, samples: Path) -> None:
    path = tmp_path / "jostle.xlsx"
    full = samples / "jostle_extract.csv"
    app.export_workbook(path, from_csv=full)
    lines = full.read_text(encoding="utf-8").splitlines()
    wb = openpyxl.load_workbook(path)
    for row in wb[wbk.SETTINGS].iter_rows(min_row=2):
        if row[0].value == "deletion_threshold_min":
            row[1].value = "1"
    wb.save(path)
    users = wb[wbk.USERS].max_row - 1
    short = tmp_path / "short.csv"
    short.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")  # the download stopped after two users

    no = RecordingUI(answers=[False], file=str(short))
    refused = ribbon.dispatch("export", OpenpyxlBook(path), no)
    assert not refused.ok
    [question] = [q for q in no.questions if q.endswith("?")]
    assert question.startswith(f"The export holds 2 users, but this workbook's last export had {users}:")
    assert question.endswith("Export anyway and take this export as the workbook's users (they really left the platform)?")
    assert refused.message.startswith("Export failed: the export holds 2 users") and "press Export again and answer Yes" in refused.message
    assert openpyxl.load_workbook(path)[wbk.USERS].max_row == users + 1  # nothing was written

    yes = RecordingUI(answers=[True], file=str(short))
    assert ribbon.dispatch("export", OpenpyxlBook(path), yes).ok
    assert [c.value for c in openpyxl.load_workbook(path)[wbk.USERS]["A"] if c.value][1:] == [line.split(",")[0] for line in lines[1:3]]
