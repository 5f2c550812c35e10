"""The ribbon: one ``dispatch(tag)`` entry for every button of the rosterbook tab.

Each button's VBA callback runs ``import addin.ribbon as r; r.dispatch('<tag>')``. ``dispatch``
runs the same library function as the CLI (``rosterbook.app``) on the workbook that called it,
shows progress in the status bar, turns off screen updating and automatic calculation while it
writes, and reports the outcome or an error in a dialog, never a traceback.

The workbook adapter and the UI are injected: Excel uses ``XlwingsBook(xw.Book.caller())`` and
``ExcelUI``; tests pass an ``OpenpyxlBook`` over a real .xlsx file and a recording UI.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

from rosterbook import workbook as wbk
from rosterbook.core.settings import Settings
from rosterbook.errors import RosterbookError, UnsyncedEditsError
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
            options = {"platform": settings.platform_url}
    if wbk.USERS not in book.sheet_names():
        options["force"] = True  # a workbook with no Users sheet yet has no edits to lose
    try:
        result = app.export_workbook(book, progress=_progress(book), **options)
    except UnsyncedEditsError as exc:
        # The library refuses to overwrite edits that were never synced: offer to keep them (refresh, edits on top),
        # and only then to discard them.
        if ui.confirm(f"{exc}\n\nRefresh from the platform and keep those edits on top?"):
            result = app.export_workbook(book, progress=_progress(book), **{**options, "keep_edits": True})
        elif ui.confirm(f"{exc}\n\nExport anyway and discard those edits?"):
            result = app.export_workbook(book, progress=_progress(book), **{**options, "force": True})
        else:
            raise
    message = f"Exported {result.rows:,} users ({result.dialect}, {len(result.columns)} columns) from {result.source or 'the platform'}."
    return Outcome("export", True, message, result.to_dict())


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

    plan = app.preview_workbook(book, progress=_progress(book)).to_dict()
    ui.show_sheet(book, wbk.PREVIEW)
    return Outcome("preview", True, f"Preview: {_plan_line(plan)}. See the {wbk.PREVIEW} sheet.", plan)


def do_sync(book: SheetBook, ui: RibbonUI) -> Outcome:
    """Send only what changed, after the user confirms the plan (one question, the deletion guard included)."""
    from rosterbook import app

    asked: list[Mapping[str, Any]] = []

    def confirm(plan: Any) -> bool:
        summary = plan.to_dict()
        asked.append(summary)
        return ui.confirm(_question(summary))

    try:
        result = app.sync_workbook(book, confirm=confirm, confirm_deletions="ask", progress=_progress(book))
    except app.SyncCancelled as exc:
        return Outcome("sync", False, str(exc)[:1].upper() + str(exc)[1:], asked[-1] if asked else None)
    return Outcome("sync", result.ok, _sync_message(result), result.to_dict(), {"confirmed": len(asked)})


def _question(plan: Mapping[str, Any]) -> str:
    """The one confirmation of a sync: what it sends, and whether it archives more users than the threshold."""
    text = f"Sync: {_plan_line(plan)}."
    guard = plan.get("guard") or {}
    if guard.get("tripped") and not guard.get("confirmed"):
        text += (
            f"\n\nThis sync would take access away from {guard.get('deactivations')} users (archive, deactivate, or a status that "
            "cannot log in), more than the threshold of "
            f"{guard.get('threshold')}. Is that intended?"
        )
    return text + "\n\nSend these changes now?"


def _sync_message(result: Any) -> str:
    text = str(result.summary_excel)
    if result.failed:
        text += f" {result.failed} failed: see the Sync status column and the Sync log, then press Sync again."
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
        "run `rosterbook login URL` once."
    )
    return Outcome("settings", True, text, settings.__dict__)


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
    "settings": do_settings,
}
"""Button tag -> action, in ribbon order (``addin/customUI.xml`` carries the same tags)."""


# --- dispatch -----------------------------------------------------------------------------------------


@contextmanager
def _batch(book: SheetBook) -> Iterator[None]:
    """Excel's bulk-write mode (screen updating off, manual calculation) when the adapter has one."""
    batch = getattr(book, "batch", None)
    with batch() if callable(batch) else nullcontext():
        yield


def dispatch(tag: str, book: SheetBook | None = None, ui: RibbonUI | None = None) -> Outcome:
    """Run the ribbon action named by ``tag`` and show its outcome; errors become a dialog, never a traceback."""
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
    try:
        with _batch(book):
            outcome = action(book, ui)
    except RosterbookError as exc:
        outcome = Outcome(tag, False, f"{tag.capitalize()} failed: {exc}")
    except Exception as exc:
        if os.environ.get("ROSTERBOOK_DEBUG"):
            raise
        outcome = Outcome(tag, False, f"{tag.capitalize()} failed: internal error ({type(exc).__name__}: {exc}). Set ROSTERBOOK_DEBUG=1 for details.")
    ui.alert(outcome.message, error=not outcome.ok)
    return outcome
