"""The ribbon: one ``dispatch(tag)`` entry for every button of the rosterbook tab.

Each button's VBA callback runs ``import addin.ribbon as r; r.dispatch('<tag>')``. ``dispatch``
runs the same library function as the CLI (``rosterbook.app``) on the workbook that called it,
shows progress in the status bar, turns off screen updating and automatic calculation while it
writes, and reports the outcome or an error in a dialog, never a traceback. Every message is in
Excel's words (``addin.words.EXCEL``): where the command line names a flag, the ribbon asks a
question instead (Sync leaves out the rows with errors or conflicts and says so in its one
confirmation; Export asks before replacing unsynced edits), and a token is given with **Sign in**.

The workbook adapter and the UI are injected: Excel uses ``XlwingsBook(xw.Book.caller())`` and
``ExcelUI``; tests pass an ``OpenpyxlBook`` over a real .xlsx file and a recording UI.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from addin.words import BUTTONS, EXCEL
from rosterbook import workbook as wbk
from rosterbook.core.plan import Plan
from rosterbook.core.settings import Settings
from rosterbook.core.wording import rows_text
from rosterbook.errors import Cancelled, ExportRefused, ExportShrinkError, NotRosterbookError, RosterbookError, UnsyncedEditsError
from rosterbook.sheets import SheetBook

TITLE = "rosterbook"


class RibbonUI(Protocol):
    """What the ribbon needs from Excel's user interface."""

    def alert(self, message: str, *, error: bool = False) -> None:
        """Show a message (a critical one when ``error``)."""
        ...

    def confirm(self, message: str) -> bool:
        """Ask yes/no; True for yes."""
        ...

    def choose_file(self, title: str) -> str | None:
        """Ask for a CSV file to open; None when cancelled."""
        ...

    def choose_save_path(self, title: str, suggested: str) -> str | None:
        """Ask where to save a file (``suggested``: its name); None when cancelled."""
        ...

    def ask_secret(self, title: str, prompt: str) -> str | None:
        """Ask for a secret in a dialog that masks what is typed; None when cancelled."""
        ...

    def selected_rows(self, book: SheetBook, sheet: str) -> list[int]:
        """Row numbers selected on ``sheet``."""
        ...

    def show_sheet(self, book: SheetBook, sheet: str) -> None:
        """Bring ``sheet`` to the front."""
        ...


@dataclass
class Outcome:
    """What one button press did: shown to the user as ``message``; ``result`` is the library's return value."""

    tag: str
    ok: bool
    message: str
    result: Any = None
    details: dict[str, Any] = field(default_factory=dict)


# --- the actions --------------------------------------------------------------------------------------


def _progress(book: SheetBook) -> Callable[[str, int, int], None]:
    def report(stage: str, done: int, total: int) -> None:
        if total <= 0 or done == total or done % 1000 == 0:
            book.progress(f"rosterbook: {stage} {done:,}/{total:,}" if total > 0 else f"rosterbook: {stage}")

    return report


def _settings(book: SheetBook) -> Settings | None:
    return wbk.read_settings(book) if wbk.SETTINGS in book.sheet_names() else None


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _plan_line(plan: Mapping[str, Any]) -> str:
    counts = plan.get("counts", {})
    parts = [f"{counts[k]} {k}" for k in ("create", "update", "rename", "archive", "deactivate", "conflict", "error") if counts.get(k)]
    line = ", ".join(parts) if parts else "nothing to change"
    invitations = plan.get("invitations", {}).get("count")
    if invitations:
        line += f"; {invitations} invitation{'s' if invitations != 1 else ''}"
    seats = plan.get("seats") or {}
    if seats.get("extra_billed"):
        line += f"; {seats['extra_billed']} extra seat(s) billed"
    return line


# --- platforms a workbook names -------------------------------------------------------------------------

KNOWN_PLATFORMS = "known-platforms.txt"
"""In rosterbook's home folder: platform URLs the user agreed to connect to without a token, one per line."""


def _known_file() -> Path:
    from rosterbook.sandbox.server import default_home

    return default_home() / KNOWN_PLATFORMS


def known_platforms() -> set[str]:
    """The (normalised) platform URLs the user agreed to connect to without a token."""
    path = _known_file()
    return set(path.read_text(encoding="utf-8").split()) if path.is_file() else set()


def remember_platform(url: str) -> None:
    """Connect to ``url`` from now on without asking (the user agreed to it once)."""
    from sync_client.auth import normalise_url

    key = normalise_url(url)
    path = _known_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(key + "\n")


def approve_platform(settings: Settings, ui: RibbonUI) -> None:
    """Before the first request to a platform a workbook names with no token stored for it, ask the user.

    A workbook someone sent can name any server in its Settings: rosterbook connects to one that has
    a token bound (signed in) or that the user agreed to before, never silently to another.

    :raises Cancelled: the user said no; nothing was sent.
    """
    from rosterbook.connectors import platform_contacted
    from sync_client.auth import is_bound, normalise_url

    url = platform_contacted(settings.dialect, settings)
    if url is None or is_bound(url):
        return
    key = normalise_url(url)
    if key in known_platforms():
        return
    question = (
        f"This workbook's Settings send rosterbook to {key}, a platform this computer has no token for and has not connected to before. "
        "A workbook someone sent you can name any server: connect only to one you know.\n\n"
        f"Connect to {key} without a token?\n\n(If the platform needs a token, answer No and press Sign in first.)"
    )
    if not ui.confirm(question):
        raise Cancelled(f"nothing was sent: rosterbook did not connect to {key}. If the platform needs a token, press Sign in; "
                        f"if you do not know this server, correct platform_url on the {wbk.SETTINGS} sheet.")
    remember_platform(key)


# --- the buttons ------------------------------------------------------------------------------------


def do_export(book: SheetBook, ui: RibbonUI) -> Outcome:
    """Fill the workbook from the platform in its Settings (CSV platforms: from their export file)."""
    from rosterbook import app
    from rosterbook.connectors import export_needs_file

    settings = _settings(book)
    options: dict[str, Any] = {}
    if settings is not None:
        if export_needs_file(settings.dialect):
            chosen = ui.choose_file(f"Choose the {settings.dialect} export (CSV) to load")
            if not chosen:
                return Outcome("export", False, "Export cancelled: no file chosen.")
            options = {"from_csv": chosen, "dialect": settings.dialect}
        else:
            approve_platform(settings, ui)
            options = {"platform": settings.platform_url}
    if wbk.USERS not in book.sheet_names():
        options["force"] = True  # a workbook with no Users sheet yet has no edits to lose
    try:
        result = app.export_workbook(book, progress=_progress(book), **options)
    except UnsyncedEditsError as exc:
        # Edits that were never synced: offer to keep them (refresh, edits on top), and only then to discard them.
        if ui.confirm(f"{_sentence(exc.reason)}\n\nRefresh from the platform and keep those edits on top?"):
            result = app.export_workbook(book, progress=_progress(book), **{**options, "keep_edits": True})
        elif ui.confirm(f"{_sentence(exc.reason)}\n\n{_EXPORT_ANYWAY[UnsyncedEditsError]}"):
            result = app.export_workbook(book, progress=_progress(book), **{**options, "force": True})
        else:
            raise
    except ExportRefused as exc:
        # Excel's way of exporting with force: say what would be replaced, and ask.
        if not ui.confirm(f"{_sentence(exc.reason)}\n\n{_EXPORT_ANYWAY.get(type(exc), 'Export anyway?')}"):
            raise
        result = app.export_workbook(book, progress=_progress(book), **{**options, "force": True})
    message = f"Exported {result.rows:,} users ({result.dialect}, {len(result.columns)} columns) from {result.source or 'the platform'}."
    return Outcome("export", True, message, result.to_dict())


_EXPORT_ANYWAY = {
    UnsyncedEditsError: "Export anyway and discard those edits?",
    ExportShrinkError: "Export anyway and take this export as the workbook's users (they really left the platform)?",
    NotRosterbookError: "Export into it anyway (rosterbook's sheets are added and its Users sheet replaced)?",
}


def do_check(book: SheetBook, ui: RibbonUI) -> Outcome:
    """Check every cell, fill the Problems column and mark problem cells."""
    from rosterbook import app

    report = app.check_workbook(book, progress=_progress(book))
    data = report.to_dict()
    summary = report.summary()
    if report.problems:
        first = "\n".join(p.render() for p in report.problems[:5])
        more = f"\n... and {len(report.problems) - 5} more (see the Problems column)" if len(report.problems) > 5 else ""
        return Outcome("check", report.ok, f"{summary}\n\n{first}{more}", data)
    return Outcome("check", True, summary, data)


def do_preview(book: SheetBook, ui: RibbonUI) -> Outcome:
    """Write the Preview sheet: exactly what Sync would change."""
    from rosterbook import app

    settings = _settings(book)
    if settings is not None:
        approve_platform(settings, ui)
    plan = app.preview_workbook(book, progress=_progress(book)).to_dict()
    ui.show_sheet(book, wbk.PREVIEW)
    return Outcome("preview", True, f"Preview: {_plan_line(plan)}. See the {wbk.PREVIEW} sheet.", plan)


def _one_question(book: SheetBook, ui: RibbonUI, question: Callable[[Plan], str],
                  upload_file: str) -> tuple[list[Plan], Callable[[Plan], bool], Callable[[str], str | None]]:
    """What a sending button hands the engine: the platform approved first (a first connection asks), then ``confirm``
    (the one question, its plans kept in ``asked``) and ``save_as`` (where ``upload_file`` goes when the book has no folder)."""
    settings = _settings(book)
    if settings is not None:
        approve_platform(settings, ui)
    asked: list[Plan] = []

    def confirm(plan: Plan) -> bool:
        asked.append(plan)
        return ui.confirm(question(plan))

    def save_as(suggested: str) -> str | None:
        return ui.choose_save_path(f"Save {upload_file}: this workbook has not been saved yet, so it has no folder", suggested)

    return asked, confirm, save_as


def do_sync(book: SheetBook, ui: RibbonUI) -> Outcome:
    """Send only what changed, after one question: the plan, the rows left out (errors, conflicts) and the deletion guard."""
    from rosterbook import app

    asked, confirm, save_as = _one_question(book, ui, _question, "the upload file")
    try:
        result = app.sync_workbook(book, confirm=confirm, confirm_deletions="ask", leave_out=True, save_as=save_as, progress=_progress(book))
    except Cancelled as exc:
        return Outcome("sync", False, _sentence(exc.render(EXCEL)), asked[-1].to_dict() if asked else None)
    left = _left_out(asked[-1]) if asked else {}
    return Outcome("sync", result.ok, _sync_message(result, left), result.to_dict(), {"confirmed": len(asked), "left_out": left})


def _left_out(plan: Plan) -> dict[str, list[int]]:
    """The rows a sync leaves out, by why: ``errors``, ``conflicts``."""
    return {kind: list(rows) for kind, rows in plan.left_out.items() if rows}


_LEFT_OUT = {
    "errors": "{rows} {have} errors and {are} left out: fix them (Check lists them), then press Sync again.",
    "conflicts": "{rows} {were} changed on the platform since the export and {are} left out: Export to take the platform's version, then edit again.",
}


def _rows_sentence(reason: str, rows: list[int]) -> str:
    one = len(rows) == 1
    return _LEFT_OUT[reason].format(rows=_sentence(rows_text(rows)), have="has" if one else "have", are="is" if one else "are",
                                    were="was" if one else "were")


def _question(plan: Plan) -> str:
    """The one confirmation of a sync: what it sends, the rows it leaves out, and whether it archives more users than the threshold."""
    summary = plan.to_dict()
    text = f"Sync: {_plan_line(summary)}."
    for reason, rows in _left_out(plan).items():
        text += "\n\n" + _rows_sentence(reason, rows)
    guard = summary.get("guard") or {}
    if guard.get("tripped") and not guard.get("confirmed"):
        text += (
            f"\n\nThis sync would take access away from {guard.get('deactivations')} users (archive, deactivate, or a status that "
            "cannot log in), more than the threshold of "
            f"{guard.get('threshold')}. Is that intended?"
        )
    send = "Send the other changes now?" if plan.skipped else "Send these changes now?"
    return f"{text}\n\n{send}"


def _sync_message(result: Any, left: Mapping[str, list[int]]) -> str:
    text = str(result.summary_excel)
    if result.failed:
        text += f" {result.failed} failed: see the Sync status column and the Sync log, then press Sync again."
    for reason, rows in left.items():
        text += " " + _rows_sentence(reason, rows)
    return text


def do_revert(book: SheetBook, ui: RibbonUI) -> Outcome:
    """Put the selected rows of the Users sheet back to their exported values."""
    from rosterbook import app

    rows = [r for r in ui.selected_rows(book, wbk.USERS) if r >= 2]
    if not rows:
        return Outcome("revert", False, f"Select the rows to revert on the {wbk.USERS} sheet first (header excluded).")
    result = app.revert_rows(book, rows)
    parts = []
    if result.reverted:
        parts.append(f"reverted {len(result.reverted)} row(s)")
    if result.cleared:
        parts.append(f"cleared {len(result.cleared)} new row(s)")
    text = ("Revert: " + ", ".join(parts) + ".") if parts else "Revert: the selected rows had no changes."
    return Outcome("revert", True, text, result.to_dict())


def do_undo(book: SheetBook, ui: RibbonUI) -> Outcome:
    """Undo the last sync after one question: what it puts back, the fields kept (changed on the platform since), what it
    cannot undo, and, when it would archive more users than the deletion threshold, whether that is intended."""
    from rosterbook.undo import UndoCancelled, undo_sync

    asked, confirm, save_as = _one_question(book, ui, _undo_question, "the reverse upload file")
    try:
        result = undo_sync(book, confirm=confirm, confirm_deletions="ask", save_as=save_as, progress=_progress(book))
    except UndoCancelled as exc:
        return Outcome("undo", False, _sentence(exc.render(EXCEL)), asked[-1].to_dict() if asked else None)
    text = str(result.summary_excel)
    if result.failed:
        text += f" {result.failed} failed: see the Sync status column and the Sync log."
    if result.cannot_undo:
        text += "\n\nCannot be undone:\n" + "\n".join(f"- {note}" for note in result.cannot_undo[:6])
    return Outcome("undo", result.ok, text, result.to_dict(), {"confirmed": len(asked)})


def _undo_question(plan: Plan) -> str:
    """The one confirmation of an undo."""
    summary = plan.to_dict()
    text = f"Undo sync {plan.undo_of}: {_plan_line(summary)}."
    kept = sorted({c.row or 0 for c in plan.changes if c.conflicts})
    if kept:
        text += (f"\n\n{_sentence(rows_text(kept)) if all(kept) else 'Some users'} changed on the platform since that sync: those fields are "
                 "kept as they are now (see the Preview sheet).")
    if plan.cannot_undo:
        text += "\n\nCannot be undone:\n" + "\n".join(f"- {note}" for note in plan.cannot_undo[:6])
    guard = summary.get("guard") or {}
    if guard.get("tripped") and not guard.get("confirmed"):
        text += (f"\n\nThis undo would take access away from {guard.get('deactivations')} users (the users that sync created are archived), "
                 f"more than the threshold of {guard.get('threshold')}. Is that intended?")
    return f"{text}\n\nUndo now?"


def do_settings(book: SheetBook, ui: RibbonUI) -> Outcome:
    """Show the Settings sheet and what it says (never a token: tokens live in the OS keyring)."""
    if wbk.SETTINGS not in book.sheet_names():
        return Outcome("settings", False, f"This workbook has no {wbk.SETTINGS} sheet yet: press Export to make it a rosterbook workbook.")
    settings = wbk.read_settings(book)
    ui.show_sheet(book, wbk.SETTINGS)
    where = settings.platform_url or "the embedded sandbox"
    text = (
        f"Dialect: {settings.dialect}. Platform: {where}.\n"
        f"Edit the values in column B of the {wbk.SETTINGS} sheet. Tokens are never stored in the workbook: "
        "press Sign in to keep the platform's token in this computer's keyring."
    )
    return Outcome("settings", True, text, settings.__dict__)


def do_sign_in(book: SheetBook, ui: RibbonUI) -> Outcome:
    """Ask for the platform's token in a masked dialog and store it in the OS keyring for the URL the Settings name."""
    from rosterbook.connectors import platform_contacted
    from sync_client.auth import normalise_url, store_token

    settings = wbk.read_settings(book)
    url = platform_contacted(settings.dialect, settings)
    if url is None:
        if settings.platform_url is None and not _exported_from_file(settings):
            return Outcome("signin", True, "This workbook uses the embedded sandbox on this computer, which needs no token. "
                           f"To use a platform, write its URL as platform_url on the {wbk.SETTINGS} sheet, then press Sign in.")
        return Outcome("signin", True, f"{settings.dialect} is reached through its export and upload files: there is no token to store.")
    key = normalise_url(url)
    token = ui.ask_secret(
        f"Sign in to {key}",
        f"Paste the API token for {key}.\n\nIt is kept in this computer's keyring for {key} only, never in the workbook, "
        "and sent to no other address.",
    )
    if token is None or not token.strip():
        return Outcome("signin", False, "Sign in cancelled: no token was stored.")
    where = store_token(key, token)
    return Outcome("signin", True, f"Signed in: the token for {key} is kept in {where}. rosterbook sends it to {key} only.")


def _exported_from_file(settings: Settings) -> bool:
    from rosterbook.connectors import export_needs_file

    return export_needs_file(settings.dialect)


def do_check_column(book: SheetBook, ui: RibbonUI) -> Outcome:
    """Add (or refresh) the Check column: each Users row's cell-function answer beside it."""
    from addin.check_column import add_check_column

    result = add_check_column(book)
    text = (
        f"Check column {result['column']} added to the {wbk.USERS} sheet: each row shows what Check would say about it, "
        f"recalculated as you type (the {result['sheet']} sheet holds the one formula that checks every row)."
    )
    return Outcome("checkcolumn", True, text, result)


ACTIONS: dict[str, Callable[[SheetBook, RibbonUI], Outcome]] = {
    "export": do_export,
    "check": do_check,
    "checkcolumn": do_check_column,
    "preview": do_preview,
    "sync": do_sync,
    "revert": do_revert,
    "undo": do_undo,
    "settings": do_settings,
    "signin": do_sign_in,
}
"""Button tag -> action, in ribbon order (``addin/customUI.xml`` carries the same tags; ``BUTTONS`` their labels)."""


# --- dispatch -----------------------------------------------------------------------------------------


@contextmanager
def _batch(book: SheetBook) -> Iterator[None]:
    """Excel's bulk-write mode (screen updating off, manual calculation) when the adapter has one."""
    batch = getattr(book, "batch", None)
    with batch() if callable(batch) else nullcontext():
        yield


def dispatch(tag: str, book: SheetBook | None = None, ui: RibbonUI | None = None) -> Outcome:
    """Run the ribbon action named by ``tag`` and show its outcome; errors become a dialog in Excel's words, never a traceback."""
    if book is None or ui is None:
        from addin.sheet import ExcelUI, XlwingsBook

        excel = XlwingsBook.caller()
        book = excel if book is None else book
        ui = ExcelUI(excel) if ui is None else ui
    action = ACTIONS.get(tag)
    if action is None:
        outcome = Outcome(tag, False, f"Unknown ribbon button {tag!r}; expected one of {', '.join(repr(t) for t in ACTIONS)}.")
        ui.alert(outcome.message, error=True)
        return outcome
    title = BUTTONS[tag]
    try:
        with _batch(book):
            outcome = action(book, ui)
    except Cancelled as exc:
        outcome = Outcome(tag, False, _sentence(exc.render(EXCEL)))
    except RosterbookError as exc:
        outcome = Outcome(tag, False, f"{title} failed: {exc.render(EXCEL)}")
    except Exception as exc:
        if os.environ.get("ROSTERBOOK_DEBUG"):
            raise
        outcome = Outcome(tag, False, f"{title} failed: internal error ({type(exc).__name__}: {exc}). Set ROSTERBOOK_DEBUG=1 for details.")
    ui.alert(outcome.message, error=not outcome.ok)
    return outcome
