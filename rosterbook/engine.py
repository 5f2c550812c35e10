"""Sending a plan: the connector sends, this records each row's outcome in the workbook.

For every batch of outcomes the connector yields: the snapshot entries of confirmed rows, the
row ids new users got, each row's Sync status and a Sync log line, and the write-only cells
(passwords) the platform or the upload file has taken, which are cleared (the log says only
that they were set). The workbook is saved at
checkpoints (see ``Checkpoints``) and at the end, and also when sending fails half-way, so a
failed sync can simply be run again: it sends only what the platform does not hold yet.

The sync journal (``rosterbook.journal``) holds, on disk and before anything is sent, what each
batch sends, then what its outcomes are, until the workbook is saved: a sync killed at any moment,
or a workbook that cannot be saved, loses nothing, and the next command applies it.
"""

from __future__ import annotations

import datetime as dt
import gc
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from rosterbook import history
from rosterbook import workbook as wbk
from rosterbook.connectors.base import Connector, Progress, RowOutcome, SendData
from rosterbook.core.history import SyncInfo, new_sync_id, step_between, step_of
from rosterbook.core.plan import Change, Plan, apply_change
from rosterbook.core.table import SnapshotRow
from rosterbook.errors import DataError
from rosterbook.journal import Flush, Journal
from rosterbook.results import RowResult, SyncResult
from rosterbook.session import Session, journal_book

BATCH = 500
"""Rows sent between two checkpoints of the workbook during a sync (a failure loses at most one batch's log)."""

CHECKPOINT_SECONDS = 10.0
"""A checkpoint saves the workbook only when this long (and four times the last save) has passed since
the previous save, and the end of the sync always saves: saving a 50,000-row workbook takes seconds,
so saving after every batch would cost more than sending. A re-run after a crash resends only what
the platform does not hold yet (its answers say what already landed)."""

_DONE = {"create": "created", "update": "updated", "archive": "archived", "rename": "renamed", "deactivate": "deactivated"}
ADOPTED_MESSAGE = "already on the platform (sent by an earlier sync that stopped before recording it)"


@dataclass
class Checkpoints:
    """When a long sync saves the workbook between batches: a clock, not the batch count, decides."""

    every: float = CHECKPOINT_SECONDS
    clock: Callable[[], float] = time.monotonic
    """Seconds, monotonic; tests pass their own."""
    _saved_at: float = field(default=0.0, init=False)
    _took: float = field(default=0.0, init=False)

    def start(self) -> None:
        self._saved_at = self.clock()

    def due(self) -> bool:
        """True when the last save is long enough ago (and four times longer than it took)."""
        return self.clock() - self._saved_at >= max(self.every, 4 * self._took)

    def saving(self) -> Callable[[], None]:
        """Call before a save; call what it returns after it."""
        began = self.clock()

        def done() -> None:
            self._saved_at = self.clock()
            self._took = self._saved_at - began

        return done


def now() -> str:
    """The time stamp of Sync status cells and Sync log lines."""
    return dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")


def status_text(action: str, outcome: str, message: str = "") -> str:
    """The Sync status cell: ``updated 2026-11-23 10:15:02``, ``update failed ...: why``."""
    stamp = now()
    if outcome == "ok":
        return f"{_DONE.get(action, action)} {stamp}"
    if outcome == "written":
        return f"{action}: in the upload file {stamp}"
    if outcome == "partial":
        return f"{action} partly applied {stamp}: {message}"[:250]
    return f"{action} failed {stamp}: {message}"[:250]


class _Recorder:
    """What the sync has learnt and the workbook does not hold yet: written out at each flush.

    Besides the Sync log, every row sent is a line of the sync history (``rosterbook.history``): its fields
    before and after, so that ``rosterbook undo`` can put them back; the sync's own line goes first."""

    def __init__(self, session: Session, ids_for_new: dict[int, str], info: SyncInfo, write_only: Sequence[str] = ()) -> None:
        self.session = session
        self.snapshot: dict[str, SnapshotRow] = dict(session.snapshot)
        self.ids_for_new = ids_for_new
        self.info = info
        self.write_only = tuple(write_only)
        self.history: list[history.Line] = []
        self.first_line = True
        self.note = f"undo of sync {info.undo_of}" if info.undo_of else ""
        self.changed: dict[str, SnapshotRow] = {}
        self.removed: list[str] = []
        self.statuses: dict[int, str | None] = {}
        self.cleared: dict[int, tuple[str, ...]] = {}
        self.new_ids: dict[int, str] = {}
        self.entries: list[wbk.LogEntry] = []
        self.rows: list[RowResult] = []
        self.unsaved = False

    def adopt(self, entries: Iterable[SnapshotRow], message: str = ADOPTED_MESSAGE) -> None:
        """Rows whose values the platform already holds (an earlier, interrupted sync sent them): recorded now, not sent again.
        With another ``message`` (an undo's rows the platform holds as they were), they are not this sync's changes: no history."""
        number_of = {r.row_id: r.number for r in self.session.table.rows if r.row_id}
        for snap in entries:
            step = step_between(self.snapshot.get(snap.row_id), snap, self.info.sync_id, number_of.get(snap.row_id))
            if step is not None and message == ADOPTED_MESSAGE:
                self._line(history.step_line(step))
            self.snapshot[snap.row_id] = self.changed[snap.row_id] = snap
            if snap.row_id in number_of:
                self.statuses[number_of[snap.row_id]] = status_text("update", "ok")
            self.entries.append(wbk.LogEntry(now(), number_of.get(snap.row_id), snap.key, "update", "ok", snap.resource_id, snap.version,
                                             None, message, self.info.sync_id))

    def _line(self, line: history.Line) -> None:
        if self.first_line:
            self.history.append(history.info_line(self.info))
            self.first_line = False
        self.history.append(line)

    def add(self, outcomes: Sequence[RowOutcome]) -> None:
        for item in outcomes:
            change = item.change
            if item.outcome == "ok":
                self._confirmed(item)
            elif item.outcome == "partial" and item.applied is not None:
                self._confirmed(replace(item, change=item.applied))  # the snapshot records exactly what went through
            if change.row is not None:
                self.statuses[change.row] = status_text(change.action, item.outcome, item.message)
                if item.cleared:
                    self.cleared[change.row] = item.cleared
            done = item.applied if item.outcome == "partial" else change if item.outcome in ("ok", "written") else None
            if done is not None:
                self._line(history.step_line(step_of(done, item.outcome, self.info.sync_id, resource_id=item.resource_id, write_only=self.write_only)))
            message = "; ".join(m for m in (self.note, item.message, *(f"{name} set (cell cleared)" for name in item.cleared)) if m)
            self.entries.append(wbk.LogEntry(now(), change.row, change.key, change.action, item.outcome,
                                             item.resource_id or change.resource_id, item.version, item.http_status, message, self.info.sync_id))
            self.rows.append(RowResult(change.row, change.key, change.action, item.outcome, item.http_status, item.message))

    def _confirmed(self, item: RowOutcome) -> None:
        change = item.change
        if change.action == "deactivate":
            if change.row_id and self.snapshot.pop(change.row_id, None) is not None:
                self.removed.append(change.row_id)  # the user left the sheet and the platform
            return
        before = self.snapshot.get(change.row_id) if change.row_id else None
        snap = apply_change(before, change, resource_id=item.resource_id, version=item.version, row_id=change.row_id)
        self.snapshot[snap.row_id] = self.changed[snap.row_id] = snap
        if change.row is not None and change.row in self.ids_for_new:
            self.new_ids[change.row] = self.ids_for_new[change.row]

    def pending(self) -> Flush:
        """What the next flush writes, for the journal (so a lost save loses nothing)."""
        ids = {r.number: r.row_id for r in self.session.table.rows if r.row_id}
        keys = {r.row: r.key for r in self.rows if r.row is not None}
        return Flush(dict(self.changed), list(self.removed), [(n, rid, keys.get(n, "")) for n, rid in self.new_ids.items()],
                     [(n, self.new_ids.get(n) or ids.get(n), text) for n, text in self.statuses.items()], [e.cells() for e in self.entries],
                     list(self.history))

    def flush(self, *, save: bool) -> None:
        """Write what was learnt since the last flush; save when asked."""
        session = self.session
        session.update_snapshot(self.changed, self.removed)
        wbk.set_row_ids(session.book, session.users, self.new_ids)
        wbk.write_sync_status(session.book, session.users, self.statuses)
        wbk.clear_cells(session.book, session.users, self.cleared)
        session.append_log(self.entries)
        session.append_history(self.history)
        self.changed, self.removed, self.new_ids, self.statuses, self.entries, self.cleared, self.history = {}, [], {}, {}, [], {}, []
        self.unsaved = not save
        if save:
            session.save()


def with_row_ids(changes: Sequence[Change], existing: Iterable[str]) -> tuple[list[Change], dict[int, str]]:
    """New rows get their row id before sending: the platform's answer is matched to the row by it."""
    new_ids = iter(wbk.next_row_ids(existing, sum(1 for c in changes if c.row_id is None)))
    ids_for_new: dict[int, str] = {}
    prepared: list[Change] = []
    for change in changes:
        if change.row_id is None and change.row is not None:
            rid = next(new_ids)
            ids_for_new[change.row] = rid
            change = replace(change, row_id=rid)
        prepared.append(change)
    return prepared, ids_for_new


def run_sync(session: Session, connector: Connector, plan: Plan, *, progress: Progress | None = None, batch: int = BATCH,
             checkpoints: Checkpoints | None = None, sync_id: str | None = None, adopted: str = ADOPTED_MESSAGE) -> SyncResult:
    """Send the plan through the connector and record every row's outcome under a new sync id; the workbook ends saved.

    ``adopted``: the Sync log's message for the plan's adopted rows (another than the default: they are not this
    sync's own changes, and its history leaves them out). Raises ``DataError`` (after sending) when the
    workbook cannot be saved: the outcomes are then in the journal.
    """
    checkpoints = checkpoints or Checkpoints()
    changes = plan.sendable()
    prepared, ids_for_new = with_row_ids(changes, session.snapshot)
    hidden = [c.name for c in plan.dialect.columns if c.write_only]
    info = SyncInfo(sync_id or new_sync_id(), connector.name, session.settings.platform_url, plan.dialect.name, plan.undo_of,
                    session.snapshot_sheet.digest)
    recorder = _Recorder(session, ids_for_new, info, hidden)
    recorder.adopt(plan.adopted, adopted)
    data = SendData(plan, session.table, session.snapshot, session.settings)
    journal = Journal(journal_book(session.book))
    step = max(1, batch)
    if connector.confirms:
        journal.intents(prepared[:step], dialect_write_only=hidden, sync=info.sync_id, undo_of=info.undo_of)
    checkpoints.start()
    done = 0
    try:
        for outcomes in connector.send(data, prepared, progress, batch):
            recorder.add(outcomes)
            done += len(outcomes)
            journal.flush(recorder.pending())
            due = done < len(prepared) and checkpoints.due()
            saved = checkpoints.saving() if due else None
            recorder.flush(save=due)
            if saved is not None:
                saved()
            if connector.confirms and done < len(prepared):
                journal.intents(prepared[done : done + step], dialect_write_only=hidden, sync=info.sync_id,
                                undo_of=info.undo_of)  # before the next batch goes
            if journal.broken is not None:
                raise DataError(f"the sync stopped after {done} of {len(prepared)} rows: the sync journal {journal.path} could not be written "
                                f"({journal.broken.strerror or journal.broken}); what was sent is recorded in the workbook. Free disk space "
                                "and run sync again.")
            if progress is not None:
                progress("Syncing", done, len(prepared))
    except BaseException:
        if recorder.unsaved:
            _final_save(recorder, journal)  # the batches already sent keep their log and snapshot
        raise
    _final_save(recorder, journal)
    upload = connector.upload_file
    result = SyncResult(connector.name, dict(plan.counts), tuple(recorder.rows),
                        upload_file=str(upload) if upload is not None else None, upload_rows=connector.upload_rows,
                        upload_guidance=connector.upload_guidance, escaped_cells=connector.escaped_cells, sync_id=info.sync_id)
    return replace(result, summary=connector.summary(result), summary_excel=connector.summary(result, excel=True))


def _final_save(recorder: _Recorder, journal: Journal) -> None:
    """The last save; when the workbook cannot be written, the outcomes wait in the journal for the next command."""
    problem = _try_save(recorder)
    if problem is None:
        return
    where = f" They are kept in {journal.path}, and the next rosterbook command on this workbook applies them" if journal.path else ""
    raise DataError(
        f"the sync was sent, but the workbook could not be saved ({problem}).{where}: make the workbook writable "
        "(free disk space, close it elsewhere, check the folder's permissions) and run `rosterbook sync` again; nothing is sent twice."
    )


def _try_save(recorder: _Recorder) -> str | None:
    """Flush and save; why it failed (PermissionError, a full disk, an XML writer's error), or None. Never a traceback:
    a writer abandoned half-way (openpyxl's lxml stream) complains again when collected, so that is silenced here."""
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        try:
            recorder.flush(save=True)
            return None
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc.strerror or exc}" if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
        gc.collect()
        return problem
    finally:
        sys.unraisablehook = hook
