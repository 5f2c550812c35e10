"""The use cases the CLI and the Excel ribbon share: export, check, preview, sync, revert.

Each opens one workbook session (``rosterbook.session``: read once, checked once, diffed once),
asks the platform's connector (``rosterbook.connectors``, chosen once from the dialect) what it
needs, asks the plan whether it may be sent (``Plan.blockers()``), writes back and saves once.
They return typed results whose ``to_dict()`` is the ``--json`` form. Errors are ``RosterbookError``s.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from rosterbook import exportguard, history, journal
from rosterbook import workbook as wbk
from rosterbook.check_column import add_check_column, has_check_column
from rosterbook.connectors import Connector, ExportData, SaveAs, connector_for, export_connector, load_modules
from rosterbook.core.cellform import cell_form
from rosterbook.core.codecs import Cell
from rosterbook.core.dialects import Dialect, load_dialect
from rosterbook.core.diff import Change, paused_gc
from rosterbook.core.plan import SHEET_BLOCKERS, Blocker, Current, Plan, sheet_may_refuse
from rosterbook.core.problems import Problem
from rosterbook.core.report import CheckReport
from rosterbook.core.settings import Settings
from rosterbook.core.table import SnapshotRow
from rosterbook.engine import BATCH, CHECKPOINT_SECONDS, Checkpoints, run_sync
from rosterbook.errors import Cancelled, DataError, RosterbookError, UsageError
from rosterbook.refresh import Refreshed
from rosterbook.results import ExportResult, RevertResult, SyncResult
from rosterbook.session import (
    DIALECT_SHEET,
    Book,
    Loaded,
    Progress,
    Session,
    book_path,
    edited_rows_of,
    open_book,
    platform_choices,
    problems_of,
    workbook_dialect,
    write_dialect,
)
from rosterbook.sheets import DressableBook, SheetBook

__all__ = [
    "BATCH",
    "CHECKPOINT_SECONDS",
    "DIALECT_SHEET",
    "Book",
    "Checkpoints",
    "Loaded",
    "Progress",
    "SyncCancelled",
    "check_workbook",
    "edited_rows",
    "export_workbook",
    "load",
    "open_book",
    "parse_rows",
    "platform_choices",
    "preview_workbook",
    "revert_rows",
    "sync_workbook",
    "workbook_dialect",
    "write_dialect",
]


class SyncCancelled(Cancelled):
    """The user answered no to the sync confirmation: nothing was sent."""


def load(book: SheetBook, *, dialect: str | None = None) -> Loaded:
    """Read everything the core needs from a rosterbook workbook (a session's ``loaded``)."""
    return Session.open(book, dialect=dialect).loaded


def edited_rows(loaded: Loaded, changes: Sequence[Change] | None = None) -> dict[int, dict[str, str | None]]:
    """Rows the core diff changes (new rows included): row -> {column: intended canonical value}."""
    if changes is None:
        from rosterbook.core.diff import diff

        changes = diff(loaded.table, list(loaded.snapshot.values()), loaded.settings)
    return edited_rows_of(loaded.dialect, changes)


# --- check ------------------------------------------------------------------------------------


@paused_gc()  # a command on a big workbook builds a million objects and no cycles worth a collection
def check_workbook(target: Book, *, dialect: str | None = None, write: bool = True, progress: Progress | None = None) -> CheckReport:
    """Check the Users sheet; unless ``write`` is False, write the Problems column and mark cells, then save."""
    session = Session.open(target, read_only=not write, dialect=dialect, progress=progress)
    report = CheckReport.from_problems(len(session.table.rows), session.problems())
    if write:
        session.write_problems(report.problems)
        session.save()
    return report


# --- export -----------------------------------------------------------------------------------


@paused_gc()
def export_workbook(
    target: Book,
    *,
    platform: str | None = None,
    dialect: str | None = None,
    from_csv: str | os.PathLike[str] | None = None,
    force: bool = False,
    keep_edits: bool = False,
    progress: Progress | None = None,
    home: str | os.PathLike[str] | None = None,
    named_platform: str | None = None,
) -> ExportResult:
    """Fill a workbook from a SCIM platform or a platform's CSV export.

    A workbook stays bound to its platform: without ``platform``, an existing workbook is exported
    from the platform in its Settings (none: the embedded sandbox); another platform is refused while
    the workbook has unsynced edits. Unsynced edits (that the platform does not have now) are refused
    unless ``keep_edits`` (refresh and re-apply them on top, ``rosterbook.refresh``) or ``force`` (discard).
    ``named_platform``: the URL the person running the command named (the CLI's ``--platform``), which
    ``ROSTERBOOK_TOKEN`` may go to; never a workbook's URL.
    """
    path, existing = _target(target)
    bound = _bound(existing)
    if platform is None and from_csv is None and bound is not None and load_dialect(bound.dialect).kind == "scim":
        platform = bound.platform_url  # the workbook's own platform, never silently another one
    switching = bound is not None and from_csv is None and (platform.rstrip("/") if platform else None) != bound.platform_url
    refreshing = existing is not None and keep_edits and bound is not None
    # The workbook's unsynced edits are read before the export, and the rest of what was read let go: the workbook
    # and the export are never in memory together (a 50,000-user export over its workbook peaked at 504 MB, now about
    # 400; with --keep-edits at 565 MB, now about 450).
    edits = exportguard.unsynced_edits(existing, force) if existing is not None and not refreshing else None
    kept = exportguard.sheet_edits(existing) if existing is not None and refreshing else None
    with export_connector(platform=platform, dialect=dialect, from_csv=from_csv, home=home, named_platform=named_platform) as connector:
        data = connector.export(progress)
    previous: Settings | None = None
    refreshed: Refreshed | None = None
    had_check = existing is not None and has_check_column(existing)
    if existing is not None:
        if kept is not None:
            previous, refreshed = exportguard.refresh_keeping_edits(existing, kept, data, force, bound if switching else None)
        else:
            previous = exportguard.guard_unsynced(existing, edits, data, force, bound if switching else None)
        exportguard.guard_shrink(existing, data, previous, force)
    settings = Settings.for_dialect(data.dialect, platform_url=data.platform_url).carried_over(previous)
    log = existing.values(wbk.SYNC_LOG)[1:] if existing is not None and wbk.SYNC_LOG in existing.sheet_names() else []
    if path is not None:
        from rosterbook.xlsx import OpenpyxlBook

        book: SheetBook = OpenpyxlBook.new(path)
    else:
        assert existing is not None
        book = existing
    rows = refreshed.rows if refreshed is not None else data.rows
    unshown = _fill(book, data, settings, progress, refreshed)
    lists = unshown.lists
    # Cells whose platform text a cell cannot hold exactly: the connector's notes (a refresh moves rows: then the sheet's own).
    notes = {p.cell: p for p in unshown.problems}
    if refreshed is None:
        notes.update((p.cell, p) for p in data.cell_problems)
    if notes:
        wbk.write_problems(book, wbk.read_users(book, data.dialect), list(notes.values()))
    if path is not None and log:
        book.write_values(wbk.SYNC_LOG, 2, 1, log)
    if path is not None and existing is not None:
        history.copy(existing, book)  # what earlier syncs changed: undo still works after an export
    _dress(book, data, lists, len(rows), settings)
    if had_check and callable(getattr(book, "write_formula", None)):
        add_check_column(book)  # the Check column the workbook had comes back over the new rows
    book.progress("Saving the workbook")
    book.save()
    if path is not None:
        journal.discard(path)  # a refreshed workbook starts clean: what an interrupted sync left is in the export now
    return ExportResult(str(book_path(book) or ""), data.dialect.name, data.source, data.platform_url, len(rows), tuple(data.headers),
                        {name: len(values) for name, values in lists.items()}, tuple(data.warnings), data.note,
                        refreshed.summary() if refreshed is not None else None)


def _target(target: Book) -> tuple[Path | None, SheetBook | None]:
    """The file an export writes (None for a workbook open in Excel) and the workbook already there, if any."""
    if not isinstance(target, str | os.PathLike):
        return None, target
    path = Path(target)
    if path.suffix.lower() != ".xlsx":
        raise UsageError(f"{str(path)!r}: the workbook must be an .xlsx file.")
    # What an interrupted sync left in the journal is applied to the workbook before anything is compared: it must be writable then.
    return path, open_book(path, read_only=not journal.exists(path)) if path.exists() else None


def _bound(book: SheetBook | None) -> Settings | None:
    """The settings of an existing rosterbook workbook (its platform), None for a new or unreadable one."""
    if book is None or wbk.SETTINGS not in book.sheet_names():
        return None
    try:
        return wbk.read_settings(book)
    except RosterbookError:
        return None


@dataclass(frozen=True)
class _Filled:
    lists: dict[str, list[str]]
    problems: list[Problem]
    """Notes on cells whose value a cell cannot show exactly."""


def _fill(book: SheetBook, data: ExportData, settings: Settings, progress: Progress | None, refreshed: Refreshed | None = None) -> _Filled:
    wbk.ensure_layout(book)
    ids: list[str | None]
    if refreshed is not None:
        rows, ids, entries = refreshed.rows, refreshed.row_ids, refreshed.snapshot
    else:
        fresh = wbk.next_row_ids([], len(data.rows))
        rows, ids = data.rows, list(fresh)
        entries = [SnapshotRow(rid, key, resource_id, version, values) for rid, (key, resource_id, version, values) in zip(fresh, data.snapshots, strict=True)]
    if progress is not None:
        progress("Writing the workbook", 0, len(rows))
    problems = wbk.write_users(book, data.dialect, data.headers, rows, ids)
    lists = wbk.dialect_lists(data.dialect, data.headers)
    lists.update((name, values) for name, values in data.lists.items() if values)
    wbk.write_lists(book, lists)
    wbk.write_settings(book, settings)
    wbk.write_snapshot(book, entries)
    write_dialect(book, data.announced)
    wbk.write_file_format(book, data.file_format)
    wbk.write_preview(book, {"counts": {}, "changes": []})
    if progress is not None:
        progress("Writing the workbook", len(rows), len(rows))
    return _Filled(lists, problems)


def _dress(book: SheetBook, data: ExportData, lists: Mapping[str, Sequence[str]], rows: int, settings: Settings) -> None:
    """The same dress on every adapter that can show one (a file, or the workbook open in Excel); the stray empty ``Sheet1`` goes."""
    if not isinstance(book, DressableBook):
        return
    for spec in wbk.workbook_dress(data.dialect, wbk.users_headers(data.dialect, data.headers), lists, rows + 1, settings):
        book.dress(spec)
    for name in wbk.stray_sheets(book):
        book.remove_sheet(name)
    book.arrange()


# --- preview and sync -------------------------------------------------------------------------


LEAVABLE: frozenset[str] = frozenset(("errors", "conflicts"))
"""Blockers whose rows a sync may leave out instead of refusing (``leave_out``: the ribbon's "send the rows without errors")."""


def _read_plan(session: Session, connector: Connector, *, skip_rows: Collection[int], confirm_deletions: bool, refuse_sheet: bool,
               leave_out: bool = False) -> Plan:
    """The plan against the platform's current state; with ``refuse_sheet``, what the sheet alone refuses is
    refused before anything, even a read, goes to the platform (without, the platform is read while the sheet is
    checked). With ``leave_out``, rows with errors (and then conflicts) join the skipped rows, as long as something
    is left to send."""
    skip = set(skip_rows)
    left: dict[str, tuple[int, ...]] | None = {} if leave_out else None
    if refuse_sheet:
        if sheet_may_refuse(session.problems(), session.changes()):
            plan = _planned(session, skip, None, confirm_deletions, left)
            _refuse([b for b in plan.blockers() if b.kind in SHEET_BLOCKERS])
        current = connector.current(session.dialect, session.changes(), session.snapshot, session.present_row_ids(), session.progress,
                                    keys=session.intent_keys())
    else:
        current = session.current_while_checking(connector)
    if current is None:
        return _planned(session, skip, None, confirm_deletions, left)
    if session.resolve_intents(current):
        # Rows an interrupted sync sent are re-based on what the platform holds: diff again, and read any row that now changes.
        current = {**current, **(connector.current(session.dialect, session.changes(), session.snapshot, session.present_row_ids(),
                                                   session.progress) or {})}
    return _planned(session, skip, current, confirm_deletions, left)


def _planned(session: Session, skip: set[int], current: Mapping[str, Current] | None, confirm_deletions: bool, leave_out: dict[str, tuple[int, ...]] | None) -> Plan:
    """The plan skipping ``skip``; with ``leave_out`` (rows left out so far, by blocker kind), rows with errors or conflicts join them."""
    plan = session.plan(current=current, confirm_deletions=confirm_deletions, skip_rows=sorted(skip))
    if leave_out is None:
        return plan
    blocked = {b.kind: tuple(r for r in b.rows if r not in skip) for b in plan.blockers() if b.kind in LEAVABLE}
    rows = {r for found in blocked.values() for r in found}
    if rows:
        without = session.plan(current=current, confirm_deletions=confirm_deletions, skip_rows=sorted(skip | rows))
        if not without.sendable():
            return replace(plan, left_out=dict(leave_out))  # nothing would be left to send: refuse with the reasons instead
        skip |= rows
        leave_out.update((kind, found) for kind, found in blocked.items() if found)
        plan = without
    return replace(plan, left_out=dict(leave_out))


def preflight(session: Session, connector: Connector) -> None:
    """Before the first request (a sync, an undo): the workbook, its journal and (CSV platforms) the upload file can be written, or exit 2 naming the path."""
    path = session.path
    if path is None:
        return
    folders = {path.parent} | {written.parent for written in connector.writes(session.dialect)}
    size = max(4096, path.stat().st_size if path.exists() else 0)
    for target in [path, *sorted(folders)]:
        problem = _unwritable(target, size)
        if problem is not None:
            raise UsageError(f"{str(target)!r} cannot be written ({problem}), so this sync could not record what it sends; nothing was sent. "
                             "Make it writable (or save the workbook somewhere that is) and run sync again.")


def _unwritable(target: Path, size: int) -> str | None:
    """Why ``target`` (a file that must be replaced, or a folder files are created in) cannot be written, or None.
    A folder is probed with a file as large as the workbook: a full disk or a file-size limit shows here, not after sending."""
    import tempfile

    if target.is_dir():
        try:
            with tempfile.TemporaryFile(dir=target) as probe:
                probe.write(bytes(size))
                probe.flush()
                os.fsync(probe.fileno())
        except OSError as exc:
            return exc.strerror or type(exc).__name__
        return None
    if target.exists() and not os.access(target, os.W_OK):
        return "read-only file"
    return None


def _refuse(blockers: Iterable[Blocker]) -> None:
    """Refuse with the first blocker's message (nothing has been sent)."""
    for blocker in blockers:
        raise DataError(blocker.phrase)


@paused_gc()
def preview_workbook(
    target: Book,
    *,
    confirm_deletions: bool = False,
    skip_rows: Collection[int] = (),
    progress: Progress | None = None,
    home: str | os.PathLike[str] | None = None,
) -> Plan:
    """The plan: what a sync would do (``to_dict()`` is its JSON form); also written to the Preview sheet."""
    session = Session.open(target, progress=progress, meanwhile=load_modules)
    with connector_for(session.dialect, session.settings, workbook=session.path, home=home) as connector:
        plan = _read_plan(session, connector, skip_rows=skip_rows, confirm_deletions=confirm_deletions, refuse_sheet=False)
    session.write_problems()
    session.write_preview(plan)
    session.save()
    return plan


@paused_gc()
def sync_workbook(
    target: Book,
    *,
    confirm: Callable[[Plan], bool] | None = None,
    skip_rows: Collection[int] = (),
    confirm_deletions: bool | Literal["ask"] = False,
    progress: Progress | None = None,
    home: str | os.PathLike[str] | None = None,
    batch: int = BATCH,
    checkpoints: Checkpoints | None = None,
    leave_out: bool = False,
    save_as: SaveAs | None = None,
) -> SyncResult:
    """Send what changed (SCIM) or write the upload file (CSV platforms), log each row's outcome.

    Refuses when ``plan.blockers()`` says so: rows with errors or conflicts that ``skip_rows``
    does not skip, or the deletion guard without ``confirm_deletions``. With ``confirm_deletions
    ="ask"`` the deletion guard is part of the one confirmation: ``confirm(plan)`` sees it tripped,
    and yes confirms the deletions too. ``confirm(plan)`` is asked before anything is sent. The
    snapshot is updated only for rows the platform confirmed, and the workbook checkpointed
    between batches (see ``Checkpoints``), so a failed sync can simply be run again.

    ``leave_out``: rows with errors or conflicts are skipped instead of refusing (the plan's
    ``skipped``, which ``confirm(plan)`` sees), unless that leaves nothing to send. ``save_as``:
    where a file goes when the workbook has no folder (an unsaved workbook in Excel; see ``connector_for``).
    """
    session = Session.open(target, progress=progress, meanwhile=load_modules)
    asked = confirm_deletions == "ask"
    name = str(getattr(session.book, "name", "") or "Book1")  # what Excel calls an unsaved workbook: the upload file's suggested name
    with connector_for(session.dialect, session.settings, workbook=session.path, home=home, save_as=save_as, name=name) as connector:
        preflight(session, connector)
        plan = _read_plan(session, connector, skip_rows=skip_rows, confirm_deletions=confirm_deletions is True, refuse_sheet=True,
                          leave_out=leave_out)
        _refuse(b for b in plan.blockers() if not (asked and b.confirmable))
        if asked and plan.guard.tripped and not plan.guard.confirmed:
            # One question covers the deletions too: yes confirms them.
            if confirm is None or not confirm(plan):
                raise SyncCancelled(connector.cancelled)
            plan = replace(plan, guard=replace(plan.guard, confirmed=True), refusal=None)
        elif plan.sendable() and confirm is not None and not confirm(plan):
            raise SyncCancelled(connector.cancelled)
        session.write_preview(plan)
        return run_sync(session, connector, plan, progress=progress, batch=batch, checkpoints=checkpoints)


# --- revert ---------------------------------------------------------------------------------------


@paused_gc()
def revert_rows(target: Book, rows: Sequence[int] | None = None) -> RevertResult:
    """Put rows back to their exported values (all edited rows when ``rows`` is None).

    A new row (typed in, never synced) is cleared; with no rows given, users whose row was
    deleted come back at the bottom.
    """
    session = Session.open(target)
    users, snapshot, dialect = session.users, session.snapshot, session.dialect
    chosen = sorted(session.edited_rows()) if rows is None else sorted(set(rows))
    by_number = {r.number: r for r in session.table.rows}
    headers = users.headers[: users.data_width]
    grid: list[list[Cell]] = [list(r) for r in session.grid]
    writes: dict[int, list[str | None]] = {}
    reverted: list[int] = []
    cleared: list[int] = []
    for number in chosen:
        row = by_number.get(number)
        if row is None:
            if number > users.last_row:
                raise UsageError(f"row {number} is below the last row of the {wbk.USERS} sheet ({users.last_row}).")
            continue
        snap = snapshot.get(row.row_id) if row.row_id else None
        writes[number] = _exported_cells(dialect, headers, snap) if snap is not None else [None] * len(headers)
        (reverted if snap is not None else cleared).append(number)
    restored: list[SnapshotRow] = []
    if rows is None:
        present = session.present_row_ids()
        restored = [s for rid, s in snapshot.items() if rid not in present]
    for number, cells in writes.items():
        session.book.write_values(wbk.USERS, number, 1, [cells])
        grid[number - 1][: len(cells)] = cells
    _restore(session, grid, restored)
    touched = set(reverted) | set(cleared)
    if touched:
        wbk.write_sync_status(session.book, users, dict.fromkeys(touched))
    if (touched or restored) and users.problems_col is not None:
        again = wbk.users_from_grid(grid, dialect, snapshot, session.merged)
        loaded = Loaded(session.book, session.settings, dialect, snapshot, again, session.loaded.lists, session.loaded.exported, snapshot)
        session.write_problems(problems_of(loaded), again)
    session.save()
    return RevertResult(tuple(reverted), tuple(cleared), tuple(s.key for s in restored))


def _restore(session: Session, grid: list[list[Cell]], missing: Sequence[SnapshotRow]) -> None:
    """Users whose row was deleted come back below the last row, with their row ids."""
    if not missing:
        return
    users = session.users
    headers = users.headers[: users.data_width]
    width = max(len(users.headers), max((len(r) for r in grid), default=0))
    next_row = users.last_row + 1
    for snap in missing:
        cells = _exported_cells(session.dialect, headers, snap)
        session.book.write_values(wbk.USERS, next_row, 1, [cells])
        line: list[Cell] = [*cells, *([None] * (width - len(cells)))]
        if users.row_id_col is not None:
            session.book.write_values(wbk.USERS, next_row, users.row_id_col, [[snap.row_id]])
            line[users.row_id_col - 1] = snap.row_id
        grid.extend([[None] * width for _ in range(next_row - len(grid) - 1)])
        grid.append(line)
        next_row += 1
    session.book.fit_table(wbk.USERS, next_row - 1, len(users.headers))


def _exported_cells(dialect: Dialect, headers: Sequence[str], snap: SnapshotRow) -> list[str | None]:
    # A field edited on both sides (export --keep-edits) goes back to what the platform holds now: the conflict settles.
    values = {**snap.values, **snap.seen} if snap.seen else snap.values
    out: list[str | None] = []
    for header in headers:
        column = wbk.find_column(dialect, header)
        value = None if column is not None and column.write_only else values.get(column.name if column is not None else header)
        out.append(cell_form(value) if value is not None else None)  # a value no cell holds exactly: its cell form (untouched)
    return out


# --- command-line helpers -----------------------------------------------------------------------


def parse_rows(spec: str | None) -> list[int]:
    """``"7,9-12"`` -> ``[7, 9, 10, 11, 12]`` (sheet row numbers; the header is row 1)."""
    if spec is None or not spec.strip():
        return []
    out: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        first, dash, last = part.partition("-")
        if not first.strip().isdigit() or (dash and not last.strip().isdigit()):
            raise UsageError(f"{part!r} is not a row number or range (e.g. 7,9-12).")
        lo, hi = int(first), int(last or first)
        if lo > hi:
            raise UsageError(f"{part!r}: the range runs backwards.")
        if lo < 2:
            raise UsageError(f"{part!r}: row 1 is the header; data rows start at 2.")
        if hi - lo > 1_000_000:
            raise UsageError(f"{part!r}: the range is too large.")
        out.update(range(lo, hi + 1))
    return sorted(out)
