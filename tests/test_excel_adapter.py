"""The Excel adapter (``addin.sheet``) and the Check column, against a recording stand-in of xlwings' objects.

Excel is not available here: ``support.fakexl`` keeps cells, formulas, notes and Tables as xlwings
shows them and logs every call, so these tests assert what the adapter asks of Excel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import pytest
from support.fakexl import FakeApp, FakeBook, FakeTable
from support.ribbonui import RecordingUI

from addin import ribbon, udfs
from addin.check_column import ROW_FORMULA, structured_column
from addin.sheet import CallerContext, ExcelUI, XlwingsBook
from rosterbook import app, cellcheck
from rosterbook import workbook as wbk
from rosterbook.core.problems import column_letter
from rosterbook.sandbox import Sandbox
from rosterbook.xlsx import OpenpyxlBook

# --- the open workbook's path (upload files go next to it) ------------------------------------------------


@pytest.mark.parametrize(
    ("fullname", "path"),
    [
        (r"C:\Users\ann\Documents\users.xlsx", r"C:\Users\ann\Documents\users.xlsx"),
        ("/Users/ann/Documents/users.xlsx", "/Users/ann/Documents/users.xlsx"),
        ("Book1", None),  # never saved
        ("https://contoso-my.sharepoint.com/personal/ann/Documents/users.xlsx", None),  # no folder on this machine
    ],
)
def test_path_is_the_saved_workbooks_full_path(fullname: str, path: str | None) -> None:
    book = XlwingsBook(FakeBook(name=fullname.replace("\\", "/").rsplit("/", 1)[-1], fullname=fullname))
    assert book.path == path
    assert book.name == fullname.replace("\\", "/").rsplit("/", 1)[-1]


def test_path_is_none_when_excel_cannot_say() -> None:
    class Unmapped(FakeBook):
        @property  # type: ignore[override]
        def fullname(self) -> str:
            raise RuntimeError("could not map the OneDrive address to a local folder")

        @fullname.setter
        def fullname(self, value: str) -> None:
            pass

    assert XlwingsBook(Unmapped(name="users.xlsx")).path is None


# --- dialogs: Windows' Excel, macOS' AppleScript ---------------------------------------------------------------


def test_windows_file_dialogs_are_excels() -> None:
    fake = FakeBook()
    fake.app.answers = [r"C:\exports\jostle.csv", False, r"C:\Users\ann\users-upload.csv", False]
    ui = ExcelUI(XlwingsBook(fake), system="win32")
    assert ui.choose_file("Choose the jostle export (CSV) to load") == r"C:\exports\jostle.csv"
    assert ui.choose_file("again") is None  # Cancel: Excel answers False
    assert ui.choose_save_path("Where should the upload file go?", r"C:\Users\ann\users-upload.csv") == r"C:\Users\ann\users-upload.csv"
    assert ui.choose_save_path("again", "users-upload.csv") is None
    assert fake.app.log == [
        ("GetOpenFilename", "CSV files (*.csv),*.csv", 1, "Choose the jostle export (CSV) to load"),
        ("GetOpenFilename", "CSV files (*.csv),*.csv", 1, "again"),
        ("GetSaveAsFilename", r"C:\Users\ann\users-upload.csv", "CSV files (*.csv),*.csv", 1, "Where should the upload file go?"),
        ("GetSaveAsFilename", "users-upload.csv", "CSV files (*.csv),*.csv", 1, "again"),
    ]


class CommandError(Exception):
    """appscript's CommandError, as far as the adapter reads it."""

    def __init__(self, number: int, message: str) -> None:
        super().__init__(f"Command failed: {message} ({number})")
        self.errornumber = number


class StandardAdditions:
    """osax.OSAX as xlwings uses it on macOS (``display_alert``); records the dialogs, answers from a script."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.log: list[tuple[Any, ...]] = []

    def activate(self) -> None:
        self.log.append(("activate",))

    def _answer(self) -> Any:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def choose_file(self, **options: Any) -> Any:
        self.log.append(("choose_file", options))
        return self._answer()

    def choose_file_name(self, **options: Any) -> Any:
        self.log.append(("choose_file_name", options))
        return self._answer()

    def display_dialog(self, *args: Any, **options: Any) -> Any:
        self.log.append(("display_dialog", args, options))
        return self._answer()


class Alias:
    """mactypes.Alias/File: a file reference whose ``path`` is POSIX."""

    def __init__(self, path: str) -> None:
        self.path = path


def test_macos_file_dialogs_are_applescripts_run_by_excel() -> None:
    additions = StandardAdditions([Alias("/Users/ann/Downloads/jostle.csv"), CommandError(-128, "User canceled."), Alias("/Users/ann/users-upload.csv")])
    fake = FakeBook()
    ui = ExcelUI(XlwingsBook(fake), system="darwin", additions=additions)
    assert ui.choose_file("Choose the jostle export (CSV) to load") == "/Users/ann/Downloads/jostle.csv"
    assert ui.choose_file("again") is None
    assert ui.choose_save_path("Where should the upload file go?", "/Users/ann/users-upload.csv") == "/Users/ann/users-upload.csv"
    assert additions.log == [
        ("activate",),
        ("choose_file", {"with_prompt": "Choose the jostle export (CSV) to load", "of_type": ["public.comma-separated-values-text", "csv"]}),
        ("activate",),
        ("choose_file", {"with_prompt": "again", "of_type": ["public.comma-separated-values-text", "csv"]}),
        ("activate",),
        ("choose_file_name", {"with_prompt": "Where should the upload file go?", "default_name": "users-upload.csv"}),
    ]
    assert fake.app.log == []  # no GetOpenFilename through AppleScript: it does not exist there


def test_macos_dialog_errors_other_than_cancel_are_not_swallowed() -> None:
    ui = ExcelUI(XlwingsBook(FakeBook()), system="darwin", additions=StandardAdditions([CommandError(-1743, "Not authorized to send Apple events")]))
    with pytest.raises(CommandError, match="Not authorized"):
        ui.choose_file("Choose")


# --- Sign in: a masked dialog -------------------------------------------------------------------------------


def test_macos_sign_in_asks_in_applescripts_hidden_answer_dialog() -> None:
    additions = StandardAdditions([{"button_returned": "Sign in", "text_returned": "tok-123"}, CommandError(-128, "User canceled.")])
    ui = ExcelUI(XlwingsBook(FakeBook()), system="darwin", additions=additions)
    assert ui.ask_secret("Sign in to https://hr.example.com/scim/v2", "Paste the API token.") == "tok-123"
    assert ui.ask_secret("again", "Paste") is None  # Cancel
    assert additions.log[:2] == [
        ("activate",),
        ("display_dialog", ("Paste the API token.",), {"default_answer": "", "hidden_answer": True, "buttons": ["Cancel", "Sign in"],
                                                      "default_button": "Sign in", "cancel_button": "Cancel",
                                                      "with_title": "Sign in to https://hr.example.com/scim/v2"}),
    ]


def test_windows_sign_in_asks_in_a_masked_form() -> None:
    asked: list[tuple[str, str]] = []

    def masked(title: str, prompt: str) -> str | None:
        asked.append((title, prompt))
        return "tok-456"

    fake = FakeBook()
    ui = ExcelUI(XlwingsBook(fake), system="win32", masked_prompt=masked)
    assert ui.ask_secret("Sign in to https://hr.example.com/scim/v2", "Paste the API token.") == "tok-456"
    assert asked == [("Sign in to https://hr.example.com/scim/v2", "Paste the API token.")]
    assert fake.app.log == []  # not Excel's InputBox, which shows what is typed


def test_the_windows_form_masks_the_token_and_stays_above_excel(monkeypatch: pytest.MonkeyPatch) -> None:
    import tkinter
    from tkinter import simpledialog

    from addin.sheet import tk_masked_prompt

    calls: list[tuple[Any, ...]] = []

    class Root:
        def withdraw(self) -> None:
            calls.append(("withdraw",))

        def attributes(self, *args: Any) -> None:
            calls.append(("attributes", *args))

        def destroy(self) -> None:
            calls.append(("destroy",))

    def askstring(title: str, prompt: str, **options: Any) -> str:
        calls.append(("askstring", title, prompt, options["show"]))
        return "tok-789"

    monkeypatch.setattr(tkinter, "Tk", Root)
    monkeypatch.setattr(simpledialog, "askstring", askstring)
    assert tk_masked_prompt("Sign in to https://hr.example.com/scim/v2", "Paste the API token.") == "tok-789"
    assert calls == [("withdraw",), ("attributes", "-topmost", True),
                     ("askstring", "Sign in to https://hr.example.com/scim/v2", "Paste the API token.", "\u2022"), ("destroy",)]


# --- upload files go next to the open workbook; an unsaved one asks where ------------------------------------------


@pytest.fixture(scope="module")
def jostle_book(samples: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jostle") / "users.xlsx"
    app.export_workbook(path, from_csv=samples / "jostle_extract.csv")
    return path


def _edited_copy(path: Path, fake_app: FakeApp, fullname: str) -> FakeBook:
    fake, _, _ = excel_copy(path, fake_app)
    fake.fullname = fullname
    fake.name = fullname.replace("\\", "/").rsplit("/", 1)[-1]
    users = fake.sheets["Users"]
    cols = {users.values[(1, c)]: c for c in range(1, 30) if (1, c) in users.values}
    users.set((2, cols["Job Title"]), "Chief Happiness Officer")
    return fake


def test_the_upload_file_goes_next_to_the_saved_workbook(jostle_book: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "Documents"
    folder.mkdir()
    fake = _edited_copy(jostle_book, FakeApp(answers=["yes"]), str(folder / "staff.xlsx"))
    outcome = ribbon.dispatch("sync", XlwingsBook(fake), ExcelUI(XlwingsBook(fake), system="win32"))
    assert outcome.ok, outcome.message
    assert outcome.result["upload_file"] == str(folder / "staff-upload.csv")
    assert "Chief Happiness Officer" in (folder / "staff-upload.csv").read_text(encoding="utf-8-sig")
    assert not any(e[0] == "GetSaveAsFilename" for e in fake.app.log)  # no question: the workbook has a folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Documents"]  # nothing in the working folder


def test_an_unsaved_workbook_asks_where_the_upload_file_goes(jostle_book: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    chosen = tmp_path / "chosen" / "for-jostle.csv"
    chosen.parent.mkdir()
    fake = _edited_copy(jostle_book, FakeApp(answers=["yes", str(chosen)]), "Book1")
    outcome = ribbon.dispatch("sync", XlwingsBook(fake), ExcelUI(XlwingsBook(fake), system="win32"))
    assert outcome.ok, outcome.message
    [asked] = [e for e in fake.app.log if e[0] == "GetSaveAsFilename"]
    assert asked[1] == "Book1-upload.csv"
    assert "this workbook has not been saved yet" in asked[4]
    assert "Chief Happiness Officer" in chosen.read_text(encoding="utf-8-sig")
    assert list(cwd.iterdir()) == []  # never the working folder

    # Cancelled: nothing is written anywhere, and the dialog says so.
    again = _edited_copy(jostle_book, FakeApp(answers=["yes", False]), "Book1")
    chosen.unlink()
    cancelled = ribbon.dispatch("sync", XlwingsBook(again), ExcelUI(XlwingsBook(again), system="win32"))
    assert not cancelled.ok
    assert cancelled.message == "Sync cancelled: no place was chosen for the upload file; nothing was written."
    assert not chosen.exists() and list(cwd.iterdir()) == []


def test_the_command_line_never_writes_the_upload_file_into_the_working_folder(jostle_book: Path, tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from rosterbook.connectors import upload_path
    from rosterbook.core.dialects import load_dialect
    from rosterbook.errors import UsageError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=r"^the workbook has not been saved, so there is no folder to write Book1-upload\.csv next to"):
        upload_path(load_dialect("jostle"), None)


# --- clearing leaves the notes people wrote ---------------------------------------------------------------------


def test_clear_removes_only_rosterbooks_notes_in_the_block() -> None:
    fake = FakeBook()
    users = fake.sheet("Users", [["Username", "Status"], ["ann", "actve"], ["bob", "Active"]])
    book = XlwingsBook(fake)
    book.mark("Users", {"B2": ("error", "B2 Status: 'actve' is not one of 'Active', 'Pending', 'Archived'.")})
    users.range("A3").add_note("Bob moves to Lagos in May")  # someone's own note
    users.range("A1").add_note("Username: the user's login")
    users.notes_by_cell[(1, 1)].author = "rosterbook"  # a header note rosterbook wrote (row 1: outside the block)
    users.range("B3").add_note("(warning) B3 Status: something rosterbook said")
    fake.app.log.clear()
    book.clear("Users", 2)
    assert sorted(users.notes_by_cell) == [(1, 1), (3, 1)]
    assert users.notes_by_cell[(3, 1)].text == "Bob moves to Lagos in May"
    assert ("note.delete", "Users", (2, 2)) in fake.app.log and ("note.delete", "Users", (3, 2)) in fake.app.log
    assert users.grid() == [["Username", "Status"]]
    # A whole-sheet clear (an export rewriting it) takes rosterbook's header note too, never the person's.
    book.clear("Users", 1)
    assert sorted(users.notes_by_cell) == [(3, 1)]


def test_marking_a_cell_keeps_the_note_someone_wrote_on_it(exported: Path) -> None:
    fake, _, _ = excel_copy(exported)
    users = fake.sheets["Users"]
    col = {users.values[(1, c)]: c for c in range(1, 30) if (1, c) in users.values}
    status = (3, col["Status"])
    users.range(status).add_note("Ann: on leave until May, ask before changing")
    users.set(status, "actve")
    book = XlwingsBook(fake)
    app.check_workbook(book)
    note = users.notes_by_cell[status].text
    mine, marker, theirs = note.partition("\n--- rosterbook ---\n")
    assert mine == "Ann: on leave until May, ask before changing"
    assert marker and theirs.startswith(f"{column_letter(col['Status'])}3 Status: 'actve' is not one of")
    # Checked again after the fix: rosterbook's part goes, the person's note stays as it was.
    users.set(status, "Active")
    app.check_workbook(book)
    assert users.notes_by_cell[status].text == "Ann: on leave until May, ask before changing"
    assert status not in users.colors
    # A mark rosterbook alone wrote is removed whole.
    users.set(status, "actve")
    app.check_workbook(book)
    users.notes_by_cell[status].text = users.notes_by_cell[status].text.partition("\n--- rosterbook ---\n")[2]
    users.set(status, "Active")
    app.check_workbook(book)
    assert status not in users.notes_by_cell


def test_a_file_keeps_the_note_someone_wrote_on_a_marked_cell(exported: Path, tmp_path: Path) -> None:
    path = tmp_path / "noted.xlsx"
    path.write_bytes(exported.read_bytes())
    wb = openpyxl.load_workbook(path)
    ws = wb["Users"]
    col = {c.value: c.column for c in ws[1]}
    cell = ws.cell(3, col["Status"])
    cell.value = "actve"
    cell.comment = openpyxl.comments.Comment("Ann: on leave until May", "Ann Admin")
    wb.save(path)
    app.check_workbook(path)
    comment = openpyxl.load_workbook(path)["Users"].cell(3, col["Status"]).comment
    assert comment is not None and comment.author == "Ann Admin"
    assert comment.text.startswith("Ann: on leave until May\n--- rosterbook ---\n") and "'actve' is not one of" in comment.text
    wb = openpyxl.load_workbook(path)
    wb["Users"].cell(3, col["Status"]).value = "Active"
    wb.save(path)
    app.check_workbook(path)
    comment = openpyxl.load_workbook(path)["Users"].cell(3, col["Status"]).comment
    assert comment is not None and (comment.text, comment.author) == ("Ann: on leave until May", "Ann Admin")


# --- the Check column ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("column") / "users.xlsx"
    app.export_workbook(path, platform=sandbox.url)
    return path


def excel_copy(path: Path, app_: FakeApp | None = None) -> tuple[FakeBook, int, int]:
    """The exported workbook as it looks open in Excel: every sheet's values, the Users Table."""
    source = OpenpyxlBook(path)
    fake = FakeBook(app_, name=path.name, fullname=str(path))
    for name in source.sheet_names():
        sheet = fake.sheet(name, source.values(name))
        if source.visibility(name) == "veryHidden":
            sheet.visibility = 2
    users = fake.sheets["Users"]
    last = users.used_range.last_cell
    users.tables.append(FakeTable(users, "Users", (1, 1, last.row, last.column)))
    return fake, last.row, last.column


def test_add_check_column_writes_one_table_formula_and_a_calculated_column(exported: Path) -> None:
    fake, last_row, width = excel_copy(exported)
    ui = RecordingUI()
    outcome = ribbon.dispatch("checkcolumn", XlwingsBook(fake), ui)
    assert outcome.ok, outcome.message
    check = width + 1  # right of the hidden _row_id
    users = fake.sheets["Users"]
    assert users.values[(1, check)] == "Check"
    assert users.tables[0].area == (1, 1, last_row, check)
    formula = "=ROSTERBOOK_CHECK_TABLE(Users[[#All],[Username]:[_row_id]])"
    assert outcome.result["formula"] == formula
    log = fake.app.log
    assert ("formula2", "Check", "$A$2", formula) in log  # one dynamic-array formula, spilling down
    letter = outcome.result["column"]
    assert ("formula", "Users", f"${letter}$2:${letter}${last_row}", ROW_FORMULA) in log
    # The cells are General first (a Text cell would keep a formula as text), and calculation waits for the writes.
    assert log.index(("number_format", "Users", f"${letter}$2:${letter}${last_row}", "General")) < log.index(("formula", "Users", f"${letter}$2:${letter}${last_row}", ROW_FORMULA))
    assert fake.app.calculation == "automatic" and fake.app.screen_updating is True
    assert fake.sheets["Check"].values[(1, 1)] == "Check"
    assert ui.alerts == [(outcome.message, False)]

    # Pressed again (after rows were added, say): the same column, no second header.
    fake.app.log.clear()
    again = ribbon.dispatch("checkcolumn", XlwingsBook(fake), ui)
    assert again.ok and again.result["column"] == letter
    assert [c for c in range(1, check + 2) if users.values.get((1, c)) == "Check"] == [check]


def test_add_check_column_without_dynamic_arrays_writes_a_legacy_array_formula(exported: Path) -> None:
    fake, last_row, _ = excel_copy(exported, FakeApp(dynamic_arrays=False))
    outcome = ribbon.dispatch("checkcolumn", XlwingsBook(fake), RecordingUI())
    assert outcome.ok
    assert ("formula_array", "Check", f"$A$2:$A${last_row}", outcome.result["formula"]) in fake.app.log


def test_add_check_column_leaves_someone_elses_check_sheet_alone(exported: Path) -> None:
    fake, _, _ = excel_copy(exported)
    fake.sheet("Check", [["Checked by", "Date"], ["Ann", "2026-01-05"]])
    outcome = ribbon.dispatch("checkcolumn", XlwingsBook(fake), RecordingUI())
    assert outcome.message == "Add check column failed: this workbook already has a sheet called 'Check' that is not rosterbook's: rename it, then press the button again."
    assert fake.sheets["Check"].grid() == [["Checked by", "Date"], ["Ann", "2026-01-05"]]


def test_add_check_column_needs_an_exported_users_sheet() -> None:
    fake = FakeBook()
    fake.sheet("Settings", [["Setting", "Value"], ["dialect", "jostle"]])
    ui = RecordingUI()
    outcome = ribbon.dispatch("checkcolumn", XlwingsBook(fake), ui)
    assert not outcome.ok
    assert outcome.message == "Add check column failed: this workbook has no Users sheet yet: press Export first."


def test_the_check_sheets_formula_says_what_check_says_and_check_ignores_the_column(exported: Path) -> None:
    fake, _, _ = excel_copy(exported)
    users = fake.sheets["Users"]
    col = {users.values[(1, c)]: c for c in range(1, 30) if (1, c) in users.values}
    users.set((3, col["Status"]), "actve")
    users.set((5, col["Email"]), "not-an-email")
    book = XlwingsBook(fake)
    assert ribbon.dispatch("checkcolumn", book, RecordingUI()).ok
    before = app.check_workbook(book, write=False)
    # Excel evaluates Check!A2: the table formula over Users!A1:<_row_id>, read through the adapter.
    cellcheck.forget()
    width = col[wbk.ROW_ID]
    table = [[users.values.get((r, c)) for c in range(1, width + 1)] for r in range(1, users.used_range.last_cell.row + 1)]
    said = udfs.ROSTERBOOK_CHECK_TABLE(table, None, CallerContext(book, "Check", 2), f"1,1,{len(table)},{width},Users")
    by_row: dict[int, list[str]] = {}
    for problem in before.problems:
        by_row.setdefault(problem.row, []).append(problem.render())
    assert [r[0] for r in said] == ["\n".join(by_row[n]) if n in by_row else "OK" for n in range(2, len(table) + 1)]
    assert {n for n in by_row} == {3, 5}
    # The Check column's header and formulas are no data: Check reads the same problems with it as without it.
    assert all(p.column != "Check" and "Check" not in p.message for p in before.problems)
    users.tables[0].area = (1, 1, len(table), width)
    for r in range(1, len(table) + 1):
        users.values.pop((r, width + 1), None)
        users.formulas.pop((r, width + 1), None)
    assert app.check_workbook(book, write=False).problems == before.problems


def test_check_preview_and_sync_ignore_a_check_column_in_the_file(exported: Path, tmp_path: Path) -> None:
    path = tmp_path / "with-check.xlsx"
    path.write_bytes(exported.read_bytes())
    plan_before = app.preview_workbook(path).to_dict()
    wb = openpyxl.load_workbook(path)
    ws = wb[wbk.USERS]
    width = ws.max_column
    ws.cell(1, width + 1).value = "Check"
    for r in range(2, ws.max_row + 1):
        ws.cell(r, width + 1).value = ROW_FORMULA
    sheet = wb.create_sheet("Check")
    sheet["A1"] = "Check"
    sheet["A2"] = "=ROSTERBOOK_CHECK_TABLE(Users[[#All],[Username]:[_row_id]])"
    wb.save(path)
    report = app.check_workbook(path)
    assert report.problems == []
    plan = app.preview_workbook(path).to_dict()
    assert plan["counts"] == plan_before["counts"] and plan["changes"] == plan_before["changes"]
    assert not any(c["action"] != "unchanged" for c in plan["changes"])
    # Check wrote its Problems column and left the Check column's formulas alone.
    wb = openpyxl.load_workbook(path)
    assert wb[wbk.USERS].cell(2, width + 1).value == ROW_FORMULA


@pytest.mark.parametrize(("name", "written"), [("Username", "[Username]"), ("Role(s)", "[Role(s)]"), ("a#b", "[a'#b]"), ("[x]", "['[x']]"), ("it's", "[it''s]")])
def test_structured_references_escape_what_excel_needs(name: str, written: str) -> None:
    assert structured_column(name) == written
