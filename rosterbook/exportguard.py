"""What an export must not overwrite: a workbook's unsynced edits, another platform's workbook, and (from a CSV
export) users a cut-short file would make look deleted. ``export_workbook`` asks these before it writes anything."""

from __future__ import annotations

from dataclasses import dataclass

from rosterbook import workbook as wbk
from rosterbook.connectors import ExportData
from rosterbook.core.codecs import to_text
from rosterbook.core.dialects import Dialect
from rosterbook.core.plan import deletion_threshold, holds_values, rows_text
from rosterbook.core.settings import Settings
from rosterbook.errors import ExportShrinkError, NotRosterbookError, RosterbookError, UnsyncedEditsError
from rosterbook.refresh import Refreshed, SheetEdits, edits_of, keep_edits
from rosterbook.session import Session
from rosterbook.sheets import SheetBook


@dataclass(frozen=True)
class Edits:
    """An existing workbook's unsynced edits, as the export's guard compares them with the export (``unsynced_edits``)."""

    settings: Settings
    dialect: Dialect
    rows: dict[int, tuple[str | None, dict[str, str | None]]]
    """Row -> (its user key, the values its edits intend): ``Session.edited_rows`` (none read when forced)."""


def unsynced_edits(book: SheetBook, force: bool) -> Edits | None:
    """The workbook's unsynced edits (None: a file with nothing to keep, or one ``force`` overwrites unread), read
    before the export; what is not a rosterbook workbook, or does not read as one, is refused unless ``force``."""
    if wbk.SETTINGS not in book.sheet_names():
        if force or not any(book.values(s) for s in book.sheet_names()):
            return None
        reason = "the file is not a rosterbook workbook (no Settings sheet)"
        raise NotRosterbookError(lambda w: f"{reason}: {w.force_export('overwrite it')}, or choose another file.", reason)
    try:
        session = Session.open(book)
    except RosterbookError:
        if force:
            return None
        raise
    by_number = {r.number: r for r in session.table.rows}
    edited = {} if force else session.edited_rows()
    rows = {number: (session.dialect.user_key(by_number[number].text), changed) for number, changed in sorted(edited.items())}
    _forget_texts(book)
    return Edits(session.settings, session.dialect, rows)


def _forget_texts(book: SheetBook) -> None:
    """Let go of the one object per text a file's reader keeps of what it read (``FastBook.strings``): what was read
    goes with the session."""
    strings = getattr(book, "strings", None)
    if isinstance(strings, dict):
        strings.clear()


def guard_unsynced(book: SheetBook, edits: Edits | None, data: ExportData, force: bool, bound: Settings | None = None) -> Settings | None:
    """Refuse to overwrite edits the platform does not have; return the book's settings to carry over.
    ``bound``: the workbook's settings when the export switches it to another platform."""
    if edits is None:
        return None
    if bound is not None and edits.rows and not force:
        refuse_switch(book, sorted(edits.rows), bound, data)
    if not edits.rows or force:
        return edits.settings
    # An edit the platform now has (synced, or uploaded and re-exported) is not lost by re-exporting.
    dialect = edits.dialect
    key_index = data.headers.index(data.dialect.key) if data.dialect.key in data.headers else None
    fresh: dict[str, dict[str, str | None]] = {}
    if key_index is not None:
        for cells, snap in zip(data.rows, data.snapshots, strict=True):
            fresh[(cells[key_index] or snap[0]).casefold()] = snap[3]
    lost: list[int] = []
    for number, (row_key, changed) in edits.rows.items():
        now = fresh.get(row_key.casefold()) if row_key else None
        if now is None or not holds_values(dialect, now, changed):
            lost.append(number)
    if not lost:
        return edits.settings
    shown = ", ".join(str(n) for n in lost[:10]) + (" ..." if len(lost) > 10 else "")
    unsynced = f"the workbook has unsynced edits in {len(lost)} row{'s' if len(lost) != 1 else ''} ({shown}) that exporting would overwrite."
    raise UnsyncedEditsError(
        lambda w: f"{unsynced} Sync them first ({w.name('sync')}), {w.keep_edits()}, revert them ({w.name('revert')}), "
                  f"or {w.force_export('discard them')}.",
        unsynced, lost,
    )


def refuse_switch(book: SheetBook, rows: list[int], bound: Settings, data: ExportData) -> None:
    """A workbook with unsynced edits (in ``rows``) stays on its platform: its edits are relative to that platform's users."""
    where = bound.platform_url or "the embedded sandbox"
    switched = (f"this workbook is bound to {where} ({wbk.SETTINGS}!B{setting_row(book, 'platform_url')}), and exporting from "
                f"{data.platform_url or 'the embedded sandbox'} would drop its unsynced edits in {rows_text(rows)}; nothing was written.")
    raise UnsyncedEditsError(
        lambda w: f"{switched} Sync or revert them first, or {w.force_export('discard them')}.",
        switched, rows,
    )


def setting_row(book: SheetBook, name: str) -> int:
    """The Settings sheet row holding the setting ``name`` (column A), for a message pointing at its cell; row 2, the
    first setting's row, when the sheet does not hold it (a workbook whose Settings sheet was edited)."""
    for number, row in enumerate(book.values(wbk.SETTINGS), start=1):
        if row and to_text(row[0]) == name:
            return number
    return 2


def sheet_edits(book: SheetBook) -> SheetEdits:
    """The sheet's rows as ``export --keep-edits`` re-applies them, read before the export; a snapshot that fails its
    check is read for what is intact."""
    edits = edits_of(Session.open(book, lenient=True))
    _forget_texts(book)
    return edits


def refresh_keeping_edits(book: SheetBook, edits: SheetEdits, data: ExportData, force: bool, bound: Settings | None) -> tuple[Settings, Refreshed]:
    """Refresh keeping the sheet's unsynced edits (``sheet_edits``)."""
    if bound is not None and edits.edited:
        refuse_switch(book, edits.edited, bound, data)
    return edits.settings, keep_edits(edits, data, force=force)


def guard_shrink(book: SheetBook, data: ExportData, settings: Settings | None, force: bool) -> None:
    """The deletion guard at export: a CSV export missing more of the workbook's exported users than the
    threshold is refused. A cut-short file would otherwise become the new baseline, and with
    'deactivate users not present in the file' the next upload file would deactivate everyone it lost."""
    if force or data.source != "csv" or wbk.SNAPSHOT not in book.sheet_names():
        return
    try:
        before = wbk.read_snapshot(book)
    except RosterbookError:
        return  # an unreadable snapshot has no users to lose; the export replaces it
    now = {snap[0].casefold() for snap in data.snapshots}
    missing = sorted(s.key for s in before.values() if s.key.casefold() not in now)
    rules = settings or Settings()
    threshold = deletion_threshold(len(before), rules.deletion_threshold_ratio, rules.deletion_threshold_min)
    if len(missing) > threshold:
        shown = ", ".join(repr(k) for k in missing[:3]) + (", ..." if len(missing) > 3 else "")
        gone = (f"the export holds {len(now)} users, but this workbook's last export had {len(before)}: {len(missing)} of them are missing "
                f"({shown}), more than the deletion guard's threshold of {threshold}. Nothing was written. A cut-short export file would make "
                "them look deleted (and a full upload file would deactivate them).")
        raise ExportShrinkError(lambda w: f"{gone} Check the file; if they really left the platform, {w.force_export('take this export as it is')}.", gone)
