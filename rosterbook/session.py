"""A workbook session: one workbook, opened and read once per command, checked once, diffed once.

Every use case (export, check, preview, sync, revert) and both front ends (the CLI and the ribbon)
go through a ``Session``: it reads the settings, the dialect, the snapshot, the Users sheet and its
structural problems once; ``problems()`` and ``changes()`` compute the checks and the diff once and
keep them; ``plan()`` builds plans from that one diff; the writes go through the workbook layer
and ``save()`` persists them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rosterbook import journal
from rosterbook import workbook as wbk
from rosterbook.core.cellform import any_not_shown, shown_exactly
from rosterbook.core.checks import check_table
from rosterbook.core.codecs import Cell, split_list, to_text
from rosterbook.core.crosschecks import columns_of_table, cross_checks, escape_problem
from rosterbook.core.dialects import Dialect, load_dialect
from rosterbook.core.diff import Change, diff, paused_gc
from rosterbook.core.history import SyncInfo, step_between
from rosterbook.core.plan import Current, Plan, holds_values, make_plan, same_key
from rosterbook.core.problems import Problem
from rosterbook.core.settings import Settings
from rosterbook.core.table import Row, SnapshotRow, Table, exported_as_is
from rosterbook.core.upload import FileFormat
from rosterbook.errors import DataError, UsageError
from rosterbook.history import HistorySheet, Line, append, info_line, read_history, step_line
from rosterbook.sheets import SheetBook

if TYPE_CHECKING:
    from rosterbook.connectors.base import Connector

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: what the CLI draws as a bar and the ribbon as a status line."""

Book = SheetBook | str | os.PathLike[str]
"""A workbook: an open SheetBook (the ribbon) or the path of an .xlsx file (the CLI)."""

DIALECT_SHEET = "_dialect"
"""Very hidden: the dialect a SCIM platform announced at export (its columns come from /Schemas)."""


# --- opening -----------------------------------------------------------------------------------


def open_book(target: Book, *, read_only: bool = False) -> SheetBook:
    """The SheetBook for ``target``: itself, or the .xlsx file at that path.

    ``read_only`` opens big files with the fast calamine reader unless a data sheet holds
    formulas (whose text calamine does not give). Otherwise the file is patched on save
    (``rosterbook.xlsxpatch.PatchBook``), never loaded and rebuilt whole.
    """
    if not isinstance(target, str | os.PathLike):
        return target
    path = Path(target)
    if path.exists():
        from rosterbook.formats import foreign_workbook

        foreign = foreign_workbook(path)
        if foreign is not None:
            raise UsageError(foreign)
        if path.is_dir():
            raise UsageError(f"{path}: is a folder, not a workbook.")
    if read_only and path.suffix.lower() == ".xlsx" and path.exists():
        from rosterbook.fastread import FastBook

        fast = FastBook(path)
        if wbk.USERS not in fast.sheet_names() or not fast.has_formulas(wbk.USERS):
            return fast
    from rosterbook.xlsxpatch import PatchBook

    return PatchBook(path)


def journal_book(book: SheetBook) -> Path | None:
    """The workbook file a sync journal goes beside: only where ``save()`` writes that file (not in Excel, where the user saves)."""
    return book_path(book) if getattr(book, "persists", True) else None


def book_path(book: SheetBook) -> Path | None:
    """The file a workbook lives in (None for a workbook never saved)."""
    path = getattr(book, "path", None)
    return Path(path) if path is not None else None


def stage(progress: Progress | None, book: SheetBook | None, name: str) -> Callable[[int, int], None] | None:
    """A core-style ``progress(done, total)`` for one stage, also shown on the book's status line."""
    if progress is None and book is None:
        return None

    def report(done: int, total: int) -> None:
        if progress is not None:
            progress(name, done, total)
        if book is not None and (done == total or done % 5000 == 0):
            book.progress(f"{name}: {done}/{total}")

    return report


# --- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    """A workbook read for the core: settings, dialect, snapshot, Users table, Lists."""

    book: SheetBook
    settings: Settings
    dialect: Dialect
    snapshot: dict[str, SnapshotRow]
    users: wbk.UsersSheet
    lists: dict[str, list[str]]
    exported: bool
    """The workbook has a snapshot sheet: rows without a row id are new users."""
    stored: Mapping[str, SnapshotRow] = field(default_factory=dict)
    """The snapshot as the workbook's sheet holds it (``snapshot`` may have adopted entries on top)."""
    file_format: FileFormat | None = None
    """How the platform's export was written (CSV platforms): the upload file is written the same way."""
    texts: Collection[str | None] | None = None
    """Texts among which every value of ``stored`` is (``SnapshotSheet.texts``); None when not known."""

    @property
    def table(self) -> Table:
        return self.users.table


def workbook_dialect(book: SheetBook, settings: Settings) -> Dialect:
    """The dialect stored at export (a SCIM platform's announced columns), else the named one."""
    text = wbk.read_json_sheet(book, DIALECT_SHEET)
    if text is not None:
        try:
            dialect = Dialect.model_validate_json(text)
        except ValueError:
            raise DataError(f"{DIALECT_SHEET}: the stored platform dialect was edited and is no longer valid. Export again.") from None
        if dialect.name == settings.dialect:
            return dialect
    return load_dialect(settings.dialect)


def write_dialect(book: SheetBook, dialect: Dialect | None) -> None:
    """Store (or, for a built-in dialect, clear) the dialect a platform announced."""
    wbk.write_json_sheet(book, DIALECT_SHEET, "dialect (JSON, do not edit)", dialect.model_dump_json() if dialect is not None else None)


def platform_choices(loaded: Loaded) -> dict[str, list[str]]:
    """Lists of values the platform has: for the columns whose values come from it, and for
    escaped ``|`` lists the items exported (so the platform's own ``Kraków|Lagos``, two known
    locations, is not taken for one name that lacks its ``\\|``)."""
    out: dict[str, list[str]] = {}
    for column in loaded.dialect.columns:
        if column.choices_from_platform and loaded.lists.get(column.name):
            out[column.name] = loaded.lists[column.name]
        elif column.escape is not None and column.separator is not None:
            known: set[str] = set(loaded.lists.get(column.name) or ())
            name = column.name
            for text in {snap.values.get(name) for snap in loaded.snapshot.values()}:  # each distinct text split once
                if text:
                    known.update(split_list(text, column.separator, column.escape))
            if known:
                out[column.name] = sorted(known)
    return out


def _read(book: SheetBook, settings: Settings, chosen: Dialect, lenient: bool, writes: bool = True,
          meanwhile: Callable[[Dialect], None] | None = None) -> tuple[Loaded, list[list[Cell]], list[tuple[int, int, int, int]], wbk.SnapshotSheet]:
    """Snapshot, Users sheet and Lists as the core needs them; ``meanwhile`` as for ``Session.open``."""
    prefetch = getattr(book, "prefetch", None)  # the file readers parse the Users sheet on another core meanwhile
    if prefetch is not None and wbk.USERS in book.sheet_names():
        # With work to do meanwhile, the other core parses the snapshot first, then the Users sheet (while this thread
        # decodes the snapshot); else this thread parses the snapshot itself, and the other core the Users sheet.
        first = tuple(name for name in (wbk.SNAPSHOT, wbk.SNAPSHOT_UPDATES) if name in book.sheet_names()) if meanwhile is not None else ()
        # Whether the Users sheet holds formulas is asked right after its values are read: the other core finds it once
        # it has parsed the sheets. Not the snapshot's: that is asked only when a sync writes the snapshot whole (its
        # changes go to the updates sheet), and scanning it meanwhile kept this thread waiting 0.3 s and raised the
        # peak by 40 MB. (Nothing is scanned when nothing is written: check --no-write reads the Users sheet's answer first.)
        prefetch(*first, wbk.USERS, formulas=(wbk.USERS,) if writes else ())
    if meanwhile is not None:
        meanwhile(chosen)
    snapshot_sheet = wbk.read_snapshot_sheet(book, lenient=lenient)
    snapshot = snapshot_sheet.rows
    exported = wbk.SNAPSHOT in book.sheet_names()
    if wbk.USERS not in book.sheet_names():
        raise DataError(f"the workbook has no {wbk.USERS!r} sheet.")
    grid = book.values(wbk.USERS)
    merged_of = getattr(book, "merged_ranges", None)  # only adapters over a file know merged cells
    merged = list(merged_of(wbk.USERS)) if merged_of is not None else []
    users = wbk.users_from_grid(grid, chosen, snapshot if exported else None, merged)
    if not exported and users.row_ids:
        # Without the snapshot every exported row would look new: a sync would try to create them all again.
        raise DataError(
            f"the very hidden {wbk.SNAPSHOT!r} sheet is missing, but {len(users.row_ids)} rows of the {wbk.USERS} sheet come from an export "
            "(they carry hidden row ids), so they cannot be compared with what was exported. Export again into a new workbook."
        )
    loaded = Loaded(book, settings, chosen, dict(snapshot), users, wbk.read_lists(book), exported, stored=dict(snapshot),
                    file_format=wbk.read_file_format(book), texts=snapshot_sheet.texts)
    return loaded, grid, merged, snapshot_sheet


class Session:
    """One workbook for one command: read once, checked once, diffed once, saved at the end."""

    def __init__(self, book: SheetBook, loaded: Loaded, grid: Sequence[Sequence[Cell]], merged: Sequence[tuple[int, int, int, int]],
                 snapshot_sheet: wbk.SnapshotSheet, progress: Progress | None = None) -> None:
        self.book = book
        self.loaded = loaded
        self.grid = grid
        """The Users sheet's cells as read."""
        self.merged = merged
        self.snapshot_sheet = snapshot_sheet
        self.progress = progress
        self._problems: list[Problem] | None = None
        self._changes: list[Change] | None = None
        self._as_is: frozenset[int] | None = None
        self._log: wbk.LogCursor | None = None
        self._history: HistorySheet | None = None
        self._history_read = False
        self.intents: list[journal.Intent] = []
        """What an interrupted sync sent that no recorded outcome settles (only the platform can tell)."""

    @classmethod
    def open(cls, target: Book, *, read_only: bool = False, dialect: str | None = None, progress: Progress | None = None,
             lenient: bool = False, meanwhile: Callable[[Dialect], None] | None = None) -> Session:
        """Open ``target`` and read everything the core needs, once.

        What an interrupted sync recorded in its journal (``rosterbook.journal``) is applied first. ``lenient``
        reads a snapshot that fails its check for the entries that are intact (``export --keep-edits``).
        ``meanwhile(dialect)``: work for this thread while another core parses the snapshot (loading the modules the
        platform's connector sends with: ``connectors.load_modules``); it must not send anything.
        """
        path = Path(target) if isinstance(target, str | os.PathLike) else journal_book(target)
        replaying = journal.exists(path)
        book = open_book(target, read_only=read_only and not replaying)
        settings = wbk.read_settings(book)
        if dialect is not None and dialect != settings.dialect:
            raise UsageError(f"this workbook is for the {settings.dialect!r} dialect (Settings!B2), not {dialect!r}.")
        chosen = workbook_dialect(book, settings)
        intents = journal.replay(book, path, chosen.key, chosen.key_fallback) if replaying and path is not None else []
        with paused_gc():  # a million cells and 50,000 entries read: no cycles among them to collect
            loaded, grid, merged, snapshot_sheet = _read(book, settings, chosen, lenient, writes=not read_only, meanwhile=meanwhile)
        session = cls(book, loaded, grid, merged, snapshot_sheet, progress)
        session.intents = intents
        return session

    # --- what the workbook holds ---------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    @property
    def dialect(self) -> Dialect:
        return self.loaded.dialect

    @property
    def table(self) -> Table:
        return self.loaded.table

    @property
    def snapshot(self) -> dict[str, SnapshotRow]:
        return self.loaded.snapshot

    @property
    def users(self) -> wbk.UsersSheet:
        return self.loaded.users

    @property
    def path(self) -> Path | None:
        return book_path(self.book)

    def present_row_ids(self) -> set[str]:
        """Row ids still on the Users sheet."""
        return {r.row_id for r in self.table.rows if r.row_id}

    # --- the core, once ----------------------------------------------------------------------

    def problems(self) -> list[Problem]:
        """Every problem of the Users sheet: the checks plus its structure (computed once)."""
        if self._problems is None:
            with paused_gc():
                self._problems = problems_of(self.loaded, self.progress, as_is=self.as_is())
        return self._problems

    def changes(self) -> list[Change]:
        """The core diff of the sheet against its snapshot, every row's Change (computed once)."""
        if self._changes is None:
            self._changes = diff(self.table, list(self.snapshot.values()), self.settings, as_is=self.as_is())
        return self._changes

    def as_is(self) -> frozenset[int]:
        """The rows whose every dialect column is as exported (``exported_as_is``): found once, for the checks and the diff."""
        if self._as_is is None:
            self._as_is = exported_as_is(self.table, self.snapshot) if self.loaded.exported else frozenset()
        return self._as_is

    def edited_rows(self) -> dict[int, dict[str, str | None]]:
        """Rows the diff changes (new rows included): row -> {column: intended canonical value}."""
        return edited_rows_of(self.dialect, self.changes())

    def plan(self, *, current: Mapping[str, Current] | None = None, confirm_deletions: bool = False, skip_rows: Sequence[int] = ()) -> Plan:
        """The plan from the one diff (no diff again), against the platform's ``current`` state when read."""
        return make_plan(self.table, list(self.snapshot.values()), self.settings, problems=self.problems(), current=current,
                         confirm_deletions=confirm_deletions, skip_rows=skip_rows, changes=self.changes(), baseline=bool(self.snapshot),
                         file_format=self.loaded.file_format)

    def current_while_checking(self, connector: Connector) -> Mapping[str, Current] | None:
        """The platform's current state (``connector.current``), read on a thread while this one checks the sheet
        (``problems``, kept): for a command that refuses nothing before the read (a preview), the link's waits pass
        while the checks run (about 0.5 s of a 50,000-user preview over 50 ms). A sync checks first: a sheet with errors
        sends nothing, not even a read.

        The connector gets ready here first (``connect``: its modules, the token, a sign-in refused): only the read
        goes to the other thread. Its progress is reported here once it is done: only this thread speaks to the
        front end (Excel's status bar belongs to the thread Excel called)."""
        connector.connect()
        said: list[tuple[str, int, int]] = []
        progress = self.progress
        changes, present, keys = self.changes(), self.present_row_ids(), self.intent_keys()
        answer: list[Mapping[str, Current] | None] = []
        failed: list[BaseException] = []

        def read() -> None:
            try:
                answer.append(connector.current(self.dialect, changes, self.snapshot, present,
                                                (lambda stage, done, total: said.append((stage, done, total))) if progress is not None else None,
                                                keys=keys))
            except BaseException as exc:  # raised on this thread below
                failed.append(exc)

        # A daemon thread: a check that fails (or Ctrl-C) leaves at once instead of waiting for the link.
        reading = threading.Thread(target=read, name="rosterbook-read", daemon=True)
        reading.start()
        self.problems()
        reading.join()
        if failed:
            raise failed[0]
        current = answer[0]
        if progress is not None:
            for stage, done, total in said:
                progress(stage, done, total)
        return current

    # --- writing -----------------------------------------------------------------------------

    def write_problems(self, problems: Sequence[Problem] | None = None, users: wbk.UsersSheet | None = None) -> None:
        """The Problems column and cell marks (old marks cleared)."""
        wbk.write_problems(self.book, users or self.users, self.problems() if problems is None else problems)

    def write_preview(self, plan: Plan) -> None:
        wbk.write_preview(self.book, plan.to_dict())

    def append_log(self, entries: Sequence[wbk.LogEntry]) -> None:
        """Append Sync log entries (the log's end is read once per session)."""
        if not entries:
            return
        if self._log is None:
            self._log = wbk.sync_log_cursor(self.book)
        wbk.append_sync_log(self.book, entries, cursor=self._log)

    def history(self) -> HistorySheet:
        """The sync history (every sync's rows, before and after), read and checked once per command."""
        if not self._history_read:
            self._history = read_history(self.book)
            self._history_read = True
        assert self._history is not None
        return self._history

    def append_history(self, lines: Sequence[Line]) -> None:
        """Append sync history lines (the sheet's end is read once per session)."""
        if lines:
            self._history = append(self.book, lines, self._history)

    def update_snapshot(self, changed: Mapping[str, SnapshotRow], removed: Sequence[str]) -> None:
        """Rewrite only the snapshot entries that changed."""
        wbk.update_snapshot(self.book, changed, removed, sheet=self.snapshot_sheet)

    def save(self) -> None:
        """Save the workbook; what an interrupted sync's journal held is in it now (unresolved intents stay in the journal)."""
        self.book.progress("Saving the workbook")
        self.book.save()
        journal.Journal(journal_book(self.book)).settled(self.intents)

    # --- after an interrupted sync -------------------------------------------------------------

    def intent_keys(self) -> list[str]:
        """Keys of rows an interrupted sync created (the platform is asked for them by key)."""
        return [i.key for i in self.intents if i.resource_id is None]

    def intent_baselines(self) -> tuple[dict[str, journal.Intent], dict[str, journal.Intent]]:
        """Unresolved intents by row id (existing users) and by folded key (rows created)."""
        by_id = {i.row_id: i for i in self.intents if i.resource_id is not None}
        by_key = {i.key.casefold(): i for i in self.intents if i.resource_id is None}
        return by_id, by_key

    def resolve_intents(self, current: Mapping[str, Current]) -> bool:
        """Re-base the rows an interrupted sync sent when the platform holds what they sent: their snapshot entry
        becomes what was sent (a created row gets its row id), so a later edit is an ordinary update. True when any was."""
        if not self.intents:
            return False
        rebased, new_ids = intents_confirmed(self.dialect, self.intents, current, self.table.rows, self.snapshot)
        by_id = {i.row_id: i for i in self.intents}
        self.intents = []
        if not rebased:
            return False
        entries = [wbk.LogEntry(engine_now(), None, snap.key, "update", "ok", snap.resource_id, snap.version, None,
                                "confirmed on the platform after an interrupted sync (re-based)", by_id[rid].sync or None)
                   for rid, snap in rebased.items()]
        self._record_rebased(rebased, by_id)
        self.update_snapshot(rebased, [])
        wbk.set_row_ids(self.book, self.users, new_ids)
        self.append_log(entries)
        self.loaded, self.grid, self.merged, self.snapshot_sheet = _read(self.book, self.settings, self.dialect, False)
        self._problems = self._changes = self._as_is = None
        return True


    def _record_rebased(self, rebased: Mapping[str, SnapshotRow], intents: Mapping[str, journal.Intent]) -> None:
        """The interrupted sync's history gets the rows the platform was found to hold (its undo puts them back too)."""
        known = set(self.history().records)
        lines: list[Line] = []
        for rid, snap in rebased.items():
            intent = intents[rid]
            if not intent.sync:
                continue  # sent by a rosterbook that kept no history
            if intent.sync not in known:
                known.add(intent.sync)
                lines.append(info_line(SyncInfo(intent.sync, "", self.settings.platform_url, self.dialect.name, intent.undo_of)))
            step = step_between(self.snapshot.get(rid), snap, intent.sync, intent.row, action=intent.action if intent.action != "create" else "update")
            if step is not None:
                lines.append(step_line(step))
        self.append_history(lines)


def engine_now() -> str:
    """The time stamp of Sync log lines."""
    import datetime as dt

    return dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")


def intents_confirmed(dialect: Dialect, intents: Sequence[journal.Intent], current: Mapping[str, Current],
                      rows: Sequence[Row], snapshot: Mapping[str, SnapshotRow]) -> tuple[dict[str, SnapshotRow], dict[int, str]]:
    """The snapshot entries (and new rows' row ids) of the intents the platform holds."""
    rebased: dict[str, SnapshotRow] = {}
    new_ids: dict[int, str] = {}
    by_key = {(now.values.get(dialect.key) or "").casefold(): (rid, now) for rid, now in current.items()}
    for intent in intents:
        rid: str | None = intent.resource_id
        found = current.get(intent.resource_id) if intent.resource_id is not None else None
        if intent.resource_id is None and intent.key.casefold() in by_key:
            rid, found = by_key[intent.key.casefold()]
        if found is None or rid is None or not same_key(dialect, found.values.get(dialect.key), intent.key) \
                or not holds_values(dialect, found.values, intent.sent):
            continue  # the platform does not hold it: never sent, or changed since (the plan's conflicts decide)
        if intent.resource_id is None:
            row = next((r for r in rows if r.row_id is None and (dialect.user_key(r.text) or "").casefold() == intent.key.casefold()), None)
            if row is None:
                continue
            new_ids[row.number] = intent.row_id
        before = snapshot.get(intent.row_id)
        rebased[intent.row_id] = SnapshotRow(intent.row_id, intent.key, rid, found.version, intent.entry_values(before.values if before else None))
    return rebased, new_ids


def problems_of(loaded: Loaded, progress: Progress | None = None, *, as_is: Collection[int] | None = None) -> list[Problem]:
    """The checks of a Users sheet plus its structural problems, minus formula findings on platform text (``as_is``:
    ``exported_as_is`` of the sheet, when known)."""
    found = list(
        check_table(
            loaded.table,
            has_snapshot=loaded.exported,
            platform_choices=platform_choices(loaded) or None,
            progress=stage(progress, loaded.book, "Checking"),
        )
    )
    found.extend(loaded.users.problems)
    found.extend(cross_checks(columns_of_table(loaded.table), loaded.snapshot if loaded.exported else None, as_is=as_is))
    return _unshown_values(loaded, _without_platform_text(loaded, found))


def _unshown_values(loaded: Loaded, problems: list[Problem]) -> list[Problem]:
    """Cells of exported values no cell can show exactly: untouched (their cell form), the platform's value stands and no
    check applies to the form; edited, the cell replaces the whole value. Either way a note says so."""
    if not loaded.snapshot:
        return problems
    if loaded.texts is not None:
        # The usual workbook: no text read holds an odd character (one search), nor any entry adopted since.
        adopted = [entry for rid, entry in loaded.snapshot.items() if loaded.stored.get(rid) is not entry]
        if not any_not_shown(loaded.texts) and not any_not_shown([v for entry in adopted for v in entry.values.values()]):
            return problems
    distinct: set[str | None] = set().union(*(entry.values.values() for entry in loaded.snapshot.values()))
    distinct.discard(None)
    if not any_not_shown(distinct):
        return problems
    unshown = {text for text in distinct if text is not None and not shown_exactly(text)}  # the few odd ones, each once
    if not unshown:
        return problems
    table = loaded.table
    notes: list[Problem] = []
    untouched: set[str] = set()
    for row in table.rows:
        snap = loaded.snapshot.get(row.row_id) if row.row_id else None
        if snap is None or unshown.isdisjoint(snap.values.values()):
            continue
        for name, value in snap.values.items():
            if value is None or name not in table.positions or shown_exactly(value):
                continue
            address = table.address(row.number, name)
            column = loaded.dialect.find_column(name)
            clears = column is not None and column.blank == "clear"
            note = wbk.unshown_problem(address, row.number, name, value, row.values.get(name), blank_clears=clears)
            notes.append(note)
            if note.code != wbk.REPLACED:
                untouched.add(address)
    if not notes:
        return problems
    return [p for p in problems if p.cell not in untouched or p.sheet != wbk.USERS] + notes


def _without_platform_text(loaded: Loaded, problems: list[Problem]) -> list[Problem]:
    """Drop 'formula' findings on cells that still hold what the platform gave: a name like
    '=HYPERLINK(...)' was written as inert text at export, so it is data, not a formula someone typed.
    An upload file still writes it with a leading ``'``: on a CSV platform that is said instead."""
    if not loaded.snapshot or not any(p.code == "formula" for p in problems):
        return problems
    by_number = {r.number: r for r in loaded.table.rows}
    kept = []
    for problem in problems:
        row = by_number.get(problem.row) if problem.code == "formula" else None
        snap = loaded.snapshot.get(row.row_id) if row is not None and row.row_id else None
        if snap is not None and to_text(problem.value) == snap.values.get(problem.column):
            if loaded.dialect.kind == "csv":
                escaped = escape_problem(loaded.dialect, problem.sheet, problem.cell, problem.row, problem.column, to_text(problem.value) or "")
                if escaped is not None:
                    kept.append(escaped)
            continue
        kept.append(problem)
    return kept


def edited_rows_of(dialect: Dialect, changes: Sequence[Change]) -> dict[int, dict[str, str | None]]:
    """Rows the core diff changes (new rows included): row -> {column: intended canonical value}.

    An edit that changes nothing on the platform is no edit: a blank or clear word where the value
    was already blank, a list re-ordered or (``list_mode`` add) with an item removed, a change the
    dialect's ``requires`` drops, a custom column the export did not record. A write-only cell
    (password) is an edit when filled; its value shows as ``SET_MARK``, never the secret. A key
    change that the platform refuses (immutable key) is an edit of the key column.
    """
    key = dialect.key
    out: dict[int, dict[str, str | None]] = {}
    for change in changes:
        if change.row is None or change.action == "unchanged":
            continue  # users removed from the sheet have no row to edit
        changed = {name: field_change.after for name, field_change in change.fields.items()}
        if change.old_key is not None and key not in changed:
            changed[key] = change.key
        out[change.row] = changed
    return out
