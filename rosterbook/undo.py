"""Undo a sync: put the platform back as it was before it, from the sync history.

``undo_sync`` (``rosterbook undo``, the ribbon's **Undo last sync**) reads the workbook's sync history
(``rosterbook.history``) once, picks the sync (the last one that changed something and was not itself an
undo, or the one named), reads the platform's current state of the users it changed, and builds the reverse
plan (``rosterbook.core.undo``): a ``Plan`` shown as any preview is (the Preview sheet, the same JSON with
``"undo_of"``), checked as any sync is (``Plan.blockers()``: the deletion guard counts the created users it
archives, and asks; a field changed on the platform since is a conflict, kept as the platform has it and
never sent, so conflicts leave their fields out instead of refusing the undo). Once confirmed, the Users
sheet's cells that still show what the sync set take the values from before (so the sheet, the snapshot and
the platform agree), and the plan goes through ``engine.run_sync`` like any sync: its own sync id in the Sync
log and the history (undoing an undo redoes), the journal, checkpoints, resumable. A CSV platform gets the
reverse upload file, written by its connector like any upload file, with what to choose when uploading it
and what a file cannot put back.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from typing import Any, Literal

from rosterbook import workbook as wbk
from rosterbook.app import preflight
from rosterbook.connectors import Connector, SaveAs, connector_for, load_modules
from rosterbook.core import undo as core
from rosterbook.core.cellform import cell_form
from rosterbook.core.diff import Change, FieldChange, paused_gc
from rosterbook.core.history import SyncRecord
from rosterbook.core.plan import Current, Plan, make_plan
from rosterbook.engine import BATCH, Checkpoints, run_sync
from rosterbook.errors import Cancelled, DataError
from rosterbook.results import SyncResult
from rosterbook.session import Book, Progress, Session

__all__ = ["UndoCancelled", "preview_undo", "undo_sync"]


class UndoCancelled(Cancelled):
    """The user answered no to the undo's confirmation: nothing was sent."""


@paused_gc()
def preview_undo(target: Book, *, sync_id: str | None = None, rows: Collection[int] | None = None, confirm_deletions: bool = False,
                 progress: Progress | None = None, home: str | os.PathLike[str] | None = None) -> Plan:
    """The reverse plan of a sync (``undo_of`` names it), written to the Preview sheet; nothing is sent."""
    session = Session.open(target, progress=progress, meanwhile=load_modules)
    with connector_for(session.dialect, session.settings, workbook=session.path, home=home) as connector:
        _record, plan, _reverse = reverse_plan(session, connector, sync_id=sync_id, rows=rows, confirm_deletions=confirm_deletions)
    session.write_preview(plan)
    session.save()
    return plan


@paused_gc()
def undo_sync(
    target: Book,
    *,
    sync_id: str | None = None,
    rows: Collection[int] | None = None,
    confirm: Callable[[Plan], bool] | None = None,
    confirm_deletions: bool | Literal["ask"] = False,
    progress: Progress | None = None,
    home: str | os.PathLike[str] | None = None,
    batch: int = BATCH,
    checkpoints: Checkpoints | None = None,
    save_as: SaveAs | None = None,
) -> SyncResult:
    """Undo a sync (the last one by default; ``rows``: only the users on these sheet rows), as an ordinary sync.

    Refuses as a sync does (``Plan.blockers()``) except for conflicts, whose fields are kept as the platform has them.
    ``confirm(plan)`` is asked once before anything is sent; with ``confirm_deletions="ask"`` that question covers the
    deletion guard too. Returns the undo's ``SyncResult`` with ``undo_of``, the fields ``kept`` and what it ``cannot_undo``.
    """
    session = Session.open(target, progress=progress, meanwhile=load_modules)
    asked = confirm_deletions == "ask"
    name = str(getattr(session.book, "name", "") or "Book1")
    with connector_for(session.dialect, session.settings, workbook=session.path, home=home, save_as=save_as, name=name) as connector:
        preflight(session, connector)
        record, plan, reverse = reverse_plan(session, connector, sync_id=sync_id, rows=rows, confirm_deletions=confirm_deletions is True)
        for blocker in plan.blockers():
            if blocker.kind != "conflicts" and not (asked and blocker.confirmable):
                raise DataError(blocker.phrase)
        if asked and plan.guard.tripped and not plan.guard.confirmed:
            if confirm is None or not confirm(plan):
                raise UndoCancelled("undo cancelled: nothing was sent.")
            plan = replace(plan, guard=replace(plan.guard, confirmed=True), refusal=None)
        elif plan.sendable() and confirm is not None and not confirm(plan):
            raise UndoCancelled("undo cancelled: nothing was sent.")
        session.write_preview(plan)
        _write_cells(session, reverse)
        result = run_sync(session, connector, plan, progress=progress, batch=batch, checkpoints=checkpoints,
                          adopted=f"as the platform holds it now (undo of sync {record.sync_id}: nothing to send)")
    kept = tuple({"row": c.row, "key": c.key, "column": name, "set_by_sync": k.exported, "platform": k.platform, "before": k.sheet}
                 for c in plan.changes for name, k in c.conflicts.items())
    result = replace(result, undo_of=record.sync_id, kept=kept, cannot_undo=plan.cannot_undo)
    left = reverse.out_of_reach > 0
    return replace(result, summary=_summary(result, record, left, excel=False), summary_excel=_summary(result, record, left, excel=True))


def reverse_plan(session: Session, connector: Connector, *, sync_id: str | None, rows: Collection[int] | None,
                 confirm_deletions: bool) -> tuple[SyncRecord, Plan, core.Reverse]:
    """The sync to undo, its reverse plan against the platform's current state, and the cells and entries that go with it."""
    history = session.history()
    record = history.choose(sync_id)
    _same_platform(session, record)
    current = _current(session, connector, record)
    digest = session.snapshot_sheet.digest
    done = frozenset(s.key.casefold() for undo in history.undos_of(record.sync_id) if undo.info.snapshot == digest
                     for s in undo.steps if s.outcome in ("ok", "written"))
    given = core.UndoInput(session.dialect, session.settings, record, session.snapshot, session.table.rows, current,
                           exported_since=record.info.snapshot is not None and record.info.snapshot != digest, done=done,
                           only_rows=set(rows) if rows is not None else None, next_row=session.users.last_row + 1)
    reverse = core.reverse(given)
    # The file puts each user's lists back whole: Replace, whatever Settings say for ordinary syncs.
    settings = replace(session.settings, list_mode="replace")
    snapshot = [replace(s, seen={}) for s in session.snapshot.values()]  # conflicts are decided above, against the sync's values
    changes = core.plan_changes(reverse, session.snapshot, session.table.rows)
    plan = make_plan(session.table, snapshot, settings, changes=changes, confirm_deletions=confirm_deletions, baseline=bool(session.snapshot),
                     file_format=session.loaded.file_format)
    if session.settings.list_mode != "replace":
        whole = "(not what Settings say: an undo puts each user's lists back whole)"
        plan = replace(plan, guidance=tuple(replace(a, advice=a.advice.replace("(Settings: list_mode is replace)", whole)) for a in plan.guidance))
    notes = list(reverse.notes)
    if plan.sendable() and core.full_file(session.dialect, session.settings):
        missing = core.missing_from_sheet(reverse, session.snapshot, session.table.rows)
        if missing:
            lacks = (f"the {wbk.USERS} sheet lacks {len(missing)} exported users ({core.quoted(missing)}) whose rows were deleted and not synced: "
                     "the full user file this undo writes would deactivate them")
            raise DataError(lambda w: f"{lacks}. Put their rows back ({w.name('revert')}) or {w.name('sync')} first; nothing was written.")
    notes.extend(session.dialect.undo_notes)
    plan = replace(plan, undo_of=record.sync_id, cannot_undo=tuple(dict.fromkeys(notes)), adopted=tuple(reverse.settled))
    return record, plan, reverse


def _same_platform(session: Session, record: SyncRecord) -> None:
    """A sync is undone on the platform it went to: never by ids that mean other users on another platform."""
    then, now = (record.info.platform_url or "").rstrip("/"), (session.settings.platform_url or "").rstrip("/")
    if then != now or record.info.dialect != session.dialect.name:
        where = record.info.platform_url or "the embedded sandbox"
        raise DataError(f"sync {record.sync_id} went to {where} ({record.info.dialect}), but this workbook now points at "
                        f"{session.settings.platform_url or 'the embedded sandbox'} ({session.dialect.name}); nothing was sent. Its users are that "
                        f"platform's: set platform_url back to {where} ({wbk.SETTINGS} sheet), or undo it from a workbook bound to it.")


def _current(session: Session, connector: Connector, record: SyncRecord) -> Mapping[str, Current] | None:
    """The platform's state of the users the sync changed (None when it cannot be read); an interrupted sync's rows re-based."""
    by_resource = {s.resource_id: s for s in session.snapshot.values() if s.resource_id}
    probes: list[Change] = []
    for step in record.steps:
        snap = by_resource.get(step.resource_id) if step.resource_id else None
        fields = {n: FieldChange(a, b) for n, (b, a) in step.fields.items()} or {n: FieldChange(v, None) for n, v in step.values.items()}
        # Only what to read: the connector reads the users of changes that have a row.
        probes.append(Change("update", step.row or 0, snap.row_id if snap else step.row_id, step.key, None,
                             (snap.resource_id if snap else None) or step.resource_id, None, fields))
    current = connector.current(session.dialect, probes, session.snapshot, session.present_row_ids(), session.progress,
                                keys=session.intent_keys())
    if current is not None:
        session.resolve_intents(current)
    return current


def _write_cells(session: Session, reverse: core.Reverse) -> None:
    """The Users cells that go back with the undo (only those still showing what the sync set), rows put back, rows emptied."""
    users, book = session.users, session.book
    headers = list(users.headers[: users.data_width])
    column_of = {**{h: i for i, h in enumerate(headers, start=1)}, **users.table.positions}
    for number, cells in sorted(reverse.cells.items()):
        for name, value in cells.items():
            if name in column_of:
                book.write_values(wbk.USERS, number, column_of[name], [[cell_form(value) if value is not None else None]])
    for number in reverse.cleared:
        book.write_values(wbk.USERS, number, 1, [[None] * len(headers)])
    if reverse.row_ids:
        wbk.set_row_ids(book, users, reverse.row_ids)
    last = max([users.last_row, *reverse.cells])
    if last > users.last_row:
        book.fit_table(wbk.USERS, last, len(users.headers))


def _summary(result: SyncResult, record: SyncRecord, left: bool, *, excel: bool) -> str:
    """What the undo did, in the command line's or Excel's words (``left``: some of that sync cannot be undone)."""
    kept = len(result.kept)
    tail = f" {kept} field(s) changed on the platform since that sync are kept as they are now." if kept else ""
    if not result.sent and result.upload_file is None:
        if left:
            return f"Nothing more to undo of sync {record.sync_id} ({record.time}): what is left cannot be undone by a sync (see below).{tail}"
        return f"Nothing left to undo of sync {record.sync_id} ({record.time}): everything it changed is as it was before.{tail}"
    if result.upload_file is not None:
        return f"Undo of sync {record.sync_id} ({record.time}): {result.summary_excel if excel else result.summary}{tail}"
    again = " Press Undo last sync again for the rest." if excel else " Run undo again for the rest."
    return (f"Undo of sync {record.sync_id} ({record.time}): {result.confirmed} of {result.sent} rows put back (this undo is sync "
            f"{result.sync_id}).{again if result.failed else ''}{tail}")


def kept_lines(result: SyncResult | Mapping[str, Any]) -> list[str]:
    """One line per field an undo kept as the platform has it now."""
    out = []
    for item in result["kept"]:
        where = f"row {item['row']} " if item.get("row") else ""
        out.append(f"{where}{item['key']} {item['column']}: set to {_shown(item['set_by_sync'])} by that sync, now {_shown(item['platform'])} "
                   f"on the platform: kept (before the sync: {_shown(item['before'])})")
    return out


def _shown(value: str | None) -> str:
    return "(blank)" if value is None else repr(value)
