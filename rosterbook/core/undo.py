"""The reverse plan of a sync: put back what it changed, never over what changed on the platform since.

For every row a sync recorded (``core.history.Step``), each field it changed goes back to its value before
the sync, decided by values against the platform's current state:

- the platform holds what the sync set: the field goes back (sent);
- it already holds the value from before (an earlier undo, or someone else): nothing to send, the
  snapshot records it (settled);
- it holds anything else (another admin, a later sync): a conflict, kept as the platform has it now.

Created users are archived (the status's archive word), or deactivated where the platform deactivates the
users missing from a full user file; never deleted. Archives and deactivations are restored, renames renamed
back, memberships restored. Where the platform's state cannot be read (a CSV platform not exported since the
sync, so its snapshot still shows what was there before the upload), every field goes back: an upload file
only sets values, so putting back a value the platform already holds changes nothing there. What a file cannot
put back (a value a blank in the file would keep, a learner a file cannot remove) is said, never skipped silently.

The result is plain data: the changes for ``make_plan`` (the reverse plan, shown as any preview), the snapshot
entries settled without sending, and the Users sheet cells that change with them (only cells that still show
what the sync set: an edit typed since stays an edit).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from rosterbook.core.codecs import CodecError, canonical_or_text, split_list
from rosterbook.core.dialects import Column, Dialect
from rosterbook.core.diff import Action, Change, Conflict, FieldChange
from rosterbook.core.history import Step, SyncRecord
from rosterbook.core.plan import Current, same_key
from rosterbook.core.problems import quote
from rosterbook.core.settings import Settings
from rosterbook.core.table import Row, SnapshotRow

__all__ = ["Reverse", "UndoInput", "full_file", "missing_from_sheet", "plan_changes", "quoted", "reverse"]


@dataclass(frozen=True)
class UndoInput:
    """What an undo knows: the sync, the workbook, and the platform's state when it could be read."""

    dialect: Dialect
    settings: Settings
    record: SyncRecord
    snapshot: Mapping[str, SnapshotRow]
    """By row id."""
    rows: Sequence[Row]
    """The Users sheet's rows."""
    current: Mapping[str, Current] | None
    """The platform's state by platform id (read just now); None when the platform cannot be read."""
    exported_since: bool = False
    """Without ``current``: the snapshot comes from an export taken after the sync, so it is the platform's state then."""
    done: frozenset[str] = frozenset()
    """Without ``current`` or a later export: keys (folded) an earlier undo of this sync already wrote into an upload file."""
    only_rows: Collection[int] | None = None
    """Undo only the users on these sheet rows."""
    next_row: int = 2
    """The first free row of the Users sheet (restored users are put back there)."""


@dataclass
class Reverse:
    """The reverse of a sync, as plain data."""

    changes: list[Change] = field(default_factory=list)
    """What to send (update, archive, rename, create, deactivate) and the conflicts, in sheet order."""
    settled: list[SnapshotRow] = field(default_factory=list)
    """Snapshot entries re-based without sending: the platform holds the value from before already, or a conflict's value."""
    cells: dict[int, dict[str, str | None]] = field(default_factory=dict)
    """Users sheet cells to write (row -> column -> value): the cells that still show what the sync set."""
    row_ids: dict[int, str] = field(default_factory=dict)
    """Row ids of the rows put back (users a deactivation removed)."""
    cleared: list[int] = field(default_factory=list)
    """Sheet rows emptied: created users whom a full user file deactivates."""
    notes: list[str] = field(default_factory=list)
    """What cannot be undone, and why."""
    out_of_reach: int = 0
    """Changes of that sync no undo can reach (users gone, a file that cannot clear or remove); an e-mail sent or a password set
    are notes, not counted: nothing is left to do about them."""


def full_file(dialect: Dialect, settings: Settings) -> bool:
    """The upload file is the full list of users (the platform deactivates everyone missing from it)."""
    return dialect.missing_users == "option" and settings.deactivate_missing


def reverse(given: UndoInput) -> Reverse:
    """The reverse of ``given.record``: see the module docstring."""
    return _Undoer(given).run()


class _Undoer:
    def __init__(self, given: UndoInput) -> None:
        self.given = given
        self.dialect = given.dialect
        self.out = Reverse()
        self.sync_id = given.record.sync_id
        self.next_row = given.next_row
        snapshot = given.snapshot
        self.by_resource = {s.resource_id: s for s in snapshot.values() if s.resource_id}
        self.by_key = {self._fold(s.key): s for s in snapshot.values()}
        self.rows_by_id = {r.row_id: r for r in given.rows if r.row_id}
        self.rows_by_key: dict[str, Row] = {}
        for row in given.rows:
            key = self.dialect.user_key(row.text)
            if key is not None:
                self.rows_by_key.setdefault(self._fold(key), row)

    def _fold(self, key: str) -> str:
        return key.casefold() if self.dialect.key_case_insensitive else key

    def run(self) -> Reverse:
        for step in self.given.record.steps:
            snap, row = self._locate(step)
            if self.given.only_rows is not None and (row is None or row.number not in self.given.only_rows):
                continue
            self._notes(step)
            if step.action == "deactivate":
                self._restore(step, snap, row)
            elif step.action == "create":
                self._uncreate(step, snap, row)
            else:
                self._put_back(step, snap, row)
        self.out.changes.sort(key=lambda c: (c.row is None, c.row or 0, c.key.casefold()))
        if self.given.current is None and not self.given.exported_since and self.out.changes:
            self.out.notes.append(
                f"Nothing was exported from {self.dialect.title} since sync {self.sync_id}, so what it holds now is not known: the file puts back "
                "every field that sync changed (a value it already holds changes nothing) and cannot keep what someone changed there since. "
                "Upload it only if that sync's file was uploaded (otherwise there is nothing to undo); to keep changes made since, export the "
                "platform's current users first, then undo again.")
        return self.out

    # --- finding the user ------------------------------------------------------------------------

    def _locate(self, step: Step) -> tuple[SnapshotRow | None, Row | None]:
        """The user's snapshot entry (by platform id, row id, then key) and sheet row (by row id, then key)."""
        snap = self.by_resource.get(step.resource_id) if step.resource_id else None
        if snap is None and step.row_id is not None:
            snap = self.given.snapshot.get(step.row_id)
        if snap is None:
            snap = self.by_key.get(self._fold(step.key))
        row = self.rows_by_id.get(snap.row_id) if snap is not None else None
        if row is None:
            found = self.rows_by_key.get(self._fold(step.key))
            row = found if found is not None and (found.row_id is None or snap is None or found.row_id == snap.row_id) else None
        return snap, row

    def _now(self, step: Step, snap: SnapshotRow | None) -> tuple[Current | None, bool]:
        """The platform's values for the user now (None: not known), and False when the user is gone from it."""
        given = self.given
        if given.current is not None:
            rid = (snap.resource_id if snap is not None else None) or step.resource_id
            now = given.current.get(rid) if rid else None
            return now, now is not None
        if given.exported_since:
            if snap is None:
                return None, False
            return Current(snap.version, {**snap.values, **snap.seen}), True
        return None, True

    # --- fields ----------------------------------------------------------------------------------

    def _same(self, name: str, a: str | None, b: str | None) -> bool:
        if name == self.dialect.key:
            return same_key(self.dialect, a, b)
        column = self.dialect.find_column(name)
        if column is None:
            return a == b
        return _canon(column, a) == _canon(column, b)

    def _fileable(self, step: Step, name: str, value: str | None) -> bool:
        """Whether the platform can be given ``value`` for ``name``; a note when a file's blank would keep the current value."""
        if value is not None or self.dialect.kind != "csv":
            return True
        column = self.dialect.find_column(name)
        if column is not None and column.blank != "keep":
            return True
        self.out.notes.append(f"{step.key}: {name} was blank before sync {self.sync_id}, and a blank in {self.dialect.title}'s upload file keeps "
                              "the current value, so the file cannot clear it: clear it on the platform itself.")
        self.out.out_of_reach += 1
        return False

    def _put_back(self, step: Step, snap: SnapshotRow | None, row: Row | None) -> None:
        """An update, archive or rename: each field back to its value before the sync (decided by values)."""
        now, present = self._now(step, snap)
        if not present:
            self.out.notes.append(f"{step.key}: no longer on {self.dialect.title}, so what sync {self.sync_id} changed cannot be put back.")
            self.out.out_of_reach += 1
            return
        if now is None and self._fold(step.key) in self.given.done:
            return  # an earlier undo of this sync wrote it into an upload file, and nothing was exported since
        send: dict[str, FieldChange] = {}
        settle: dict[str, str | None] = {}
        kept: dict[str, Conflict] = {}
        for name, (before, after) in step.fields.items():
            if now is not None and name in now.values:
                held = self.dialect.user_key(now.values.get) if name == self.dialect.key else now.values[name]
                if self._same(name, held, before):
                    settle[name] = before
                    continue
                if not self._same(name, held, after):
                    kept[name] = Conflict(after, held, before)
                    settle[name] = held
                    continue
            if self._fileable(step, name, before):
                send[name] = FieldChange(after, before)
        self._emit(step, snap, row, now, send, settle, kept)

    def _emit(self, step: Step, snap: SnapshotRow | None, row: Row | None, now: Current | None, send: dict[str, FieldChange],
              settle: dict[str, str | None], kept: dict[str, Conflict]) -> None:
        dialect = self.dialect
        base = dict(snap.values) if snap is not None else dict(step.values)
        values = {**base, **{n: f.after for n, f in send.items()}, **settle}
        key = dialect.user_key(values.get) or (snap.key if snap is not None else step.key)
        number = row.number if row is not None else None
        self._cells(row, step, {n: values.get(n) for n in (*send, *settle)})
        if not send:
            if kept:
                fields = {n: FieldChange(c.exported, c.sheet) for n, c in kept.items()}
                self.out.changes.append(Change("conflict", number, snap.row_id if snap else None, key, None, snap.resource_id if snap else step.resource_id,
                                               now.version if now else None, fields, values, (self._kept_note(kept),),
                                               current=dict(now.values) if now else None, conflicts=kept))
            if snap is not None and (values != dict(snap.values) or key != snap.key):
                self.out.settled.append(SnapshotRow(snap.row_id, key, snap.resource_id, now.version if now else snap.version, values))
            return
        old_key = step.key if dialect.key in send and not same_key(dialect, key, step.key) else None
        status = send.get(dialect.status_column) if dialect.status_column else None
        action: Action = "update"
        if status is not None and status.after is not None and status.after == dialect.archive_word:
            action = "archive"
        elif old_key is not None:
            action = "rename"
        notes = [f"undoes sync {self.sync_id}"] + ([self._kept_note(kept)] if kept else [])
        invite = self._invites(status)
        if invite and status is not None:
            notes.append(f"{status.before} -> {status.after}: {dialect.title} may send an invitation e-mail")
        resource_id = (snap.resource_id if snap is not None else None) or step.resource_id
        version = now.version if now is not None else (snap.version if snap is not None else None)
        self.out.changes.append(Change(action, number, snap.row_id if snap else None, key, old_key, resource_id, version, send, values,
                                       tuple(notes), invite, dict(now.values) if kept and now else None, conflicts=kept))

    def _kept_note(self, kept: Mapping[str, Conflict]) -> str:
        return f"changed on the platform since sync {self.sync_id} ({', '.join(kept)}): kept as the platform has it, not undone"

    def _invites(self, status: FieldChange | None) -> bool:
        """A status put back from a not-yet-invited word to an invite word may send an invitation (Progression's Pending -> Active)."""
        if status is None or status.before is None or status.after is None or self.dialect.invitations != "status":
            return False
        before, after = self.dialect.status_word(status.before), self.dialect.status_word(status.after)
        return before is not None and after is not None and before.uninvited and after.invite

    def _cells(self, row: Row | None, step: Step, targets: Mapping[str, str | None]) -> None:
        """Write a field back into the sheet where its cell still shows what the sync set (an edit typed since stays)."""
        if row is None:
            return
        for name, value in targets.items():
            if name not in self._sheet_columns(row):
                continue
            shown = row.text(name) if name in row.values else (str(row.extra.get(name)) if row.extra.get(name) is not None else None)
            set_by_sync = step.fields[name][1] if name in step.fields else step.values.get(name)
            if self._shows(name, shown, set_by_sync) and not self._same(name, shown, value):
                self.out.cells.setdefault(row.number, {})[name] = value

    def _shows(self, name: str, shown: str | None, value: str | None) -> bool:
        """A cell shows ``value``: the same value, or for a blank value a blank cell or the column's clear word (``(clear)``)."""
        if value is None:
            column = self.dialect.find_column(name)
            return shown is None or (column is not None and column.clear_word is not None and shown.strip() == column.clear_word)
        return self._same(name, shown, value)

    def _sheet_columns(self, row: Row) -> set[str]:
        return {*row.values, *row.extra}

    # --- creates and deactivations -----------------------------------------------------------------

    def _uncreate(self, step: Step, snap: SnapshotRow | None, row: Row | None) -> None:
        """A user the sync created: archived (its status), or deactivated by a full user file; never deleted."""
        dialect = self.dialect
        status, archive = dialect.status_column, dialect.archive_word
        if status is not None and archive is not None:
            # Put back as if the sync had taken the user from the archive word to the status it created them with.
            fields: dict[str, tuple[str | None, str | None]] = {status: (archive, step.values.get(status))}
            groups = next((c.name for c in dialect.columns if c.scim == "groups"), None)  # memberships live on the Group resources
            if groups is not None and step.values.get(groups):
                fields[groups] = (None, step.values.get(groups))
            self._put_back(Step(step.sync_id, step.row, step.row_id, step.key, "update", step.outcome, step.resource_id, None, fields,
                                step.values), snap, row)
            return
        if full_file(dialect, self.given.settings):
            now, present = self._now(step, snap)
            if not present and self.given.current is not None:
                self.out.notes.append(f"{step.key}: no longer on {self.dialect.title}: nothing to deactivate.")
                return
            values = dict(snap.values) if snap is not None else dict(step.values)
            self.out.changes.append(Change("deactivate", None, snap.row_id if snap else None, step.key, None, step.resource_id,
                                           now.version if now else None, {}, values, (f"created by sync {self.sync_id}: left out of the "
                                           "full user file, so the platform deactivates them",)))
            if row is not None:
                self.out.cleared.append(row.number)
            return
        how = ("deactivates users only through a full user file: turn on deactivate_missing (Settings) and undo again, or deactivate them "
               "on the platform itself") if dialect.missing_users == "option" else "cannot archive or remove users through the upload file: " \
              "remove or deactivate them on the platform itself"
        self.out.notes.append(f"{step.key}: created by sync {self.sync_id}; {dialect.title} {how}.")
        self.out.out_of_reach += 1

    def _restore(self, step: Step, snap: SnapshotRow | None, row: Row | None) -> None:
        """A user a full user file deactivated: back in the sheet and in the file (a user listed in it is kept)."""
        if row is not None:
            return  # already back in the sheet: the next full file lists them
        number = self.next_row
        self.next_row += 1
        values = dict(snap.values) if snap is not None else dict(step.values)
        self.out.cells[number] = {n: v for n, v in values.items() if v is not None}
        note = f"deactivated by sync {self.sync_id}: put back in the sheet and listed in the upload file"
        if snap is not None:
            self.out.row_ids[number] = snap.row_id
            self.out.changes.append(Change("update", number, snap.row_id, snap.key, None, snap.resource_id, snap.version, {}, values, (note,)))
        else:
            fields = {n: FieldChange(None, v) for n, v in values.items() if v is not None}
            self.out.changes.append(Change("create", number, None, step.key, None, None, None, fields, values, (note,)))

    def _notes(self, step: Step) -> None:
        """What no undo can put back for this row."""
        if step.secrets:
            self.out.notes.append(f"{step.key}: the {', '.join(step.secrets)} sync {self.sync_id} set cannot be put back (it is never read back).")
        if step.invite:
            self.out.notes.append(f"{step.key}: {self.dialect.title} may already have sent an invitation e-mail after sync {self.sync_id}; "
                                  "an undo cannot unsend it.")


def _canon(column: Column, text: str | None) -> str | frozenset[str] | None:
    """A value as compared: canonical text; a list as the set of its items (order and repeats do not count, as in the diff)."""
    canon = canonical_or_text(text, column.type, separator=column.separator, escape=column.escape)
    if canon is None or column.type != "list" or column.separator is None:
        return canon
    try:
        return frozenset(split_list(canon, column.separator, column.escape))
    except CodecError:
        return canon


def plan_changes(reversed_: Reverse, snapshot: Mapping[str, SnapshotRow], rows: Sequence[Row]) -> list[Change]:
    """Every change of the reverse plan: the reverse changes, and every other exported user unchanged (as a preview counts them)."""
    claimed = {c.row_id for c in reversed_.changes if c.row_id}
    number_of = {r.row_id: r.number for r in rows if r.row_id}
    out = list(reversed_.changes)
    for rid, snap in snapshot.items():
        if rid not in claimed:
            out.append(Change("unchanged", number_of.get(rid), rid, snap.key, None, snap.resource_id, snap.version, {}, snap.values))
    return out


def missing_from_sheet(reversed_: Reverse, snapshot: Mapping[str, SnapshotRow], rows: Sequence[Row]) -> list[str]:
    """Exported users whose row is gone from the sheet and whom the reverse neither deactivates nor puts back (a full file would
    deactivate them unasked)."""
    present = {r.row_id for r in rows if r.row_id} | set(reversed_.row_ids.values())
    handled = {c.row_id for c in reversed_.changes if c.action == "deactivate" and c.row_id}
    return sorted((s.key for rid, s in snapshot.items() if rid not in present and rid not in handled), key=str.casefold)


def quoted(keys: Sequence[str]) -> str:
    """``'ann', 'bob' and 3 more``."""
    return ", ".join(quote(k) for k in keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
