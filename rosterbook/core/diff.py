"""The diff between the export snapshot and the edited sheet: what would change, field by field.

Rows are matched to their snapshot entry by the hidden ``row_id`` (stable across sorting,
filtering and inserted rows). Cells are compared as canonical text per column, with the
dialect's blank-cell semantics: ``keep`` columns ignore a blank (their ``clear_word`` clears),
``clear`` columns clear on a blank; write-only columns (passwords) are a change only when filled.
Lists are compared as sets of items, so ``a;b;`` equals ``a; b`` and ``b; a``.

Decisions the seeds leave open, made here and documented once:

- A row whose row id is unknown (or missing) but whose key is the key of an exported user who is
  no longer in the sheet is matched to that user (a CSV platform matches by key anyway; creating
  them again would fail or duplicate). A row copied in Excel carries the original's row id: the
  copy whose key still matches keeps the identity, the other becomes a new user.
- A key change on an immutable-key platform is an ``error`` (``key-changed``), never a silent new user.
  On a case-insensitive immutable key, a change of letter case alone is no change (same user).
- A change of status to the archive word together with a rename counts as an ``archive`` (the
  deletion guard must see it); ``old_key`` still tells the rename.
- On a CSV platform, the items of a list column's ``default`` are kept by the platform for every
  user imported from a file (EdApp 002: "All users imported via CSV will retain the default roles
  of Learner and Prizing User"): they are never reported as removed, and new users get them.
- A column that ``requires`` others (Progression: position needs team) is not changed when a
  required cell is blank: the platform ignores it, and a note says so.
- Custom fields (headers that are not dialect columns, on dialects that pass them through) are
  compared as text when the snapshot holds them; a blank custom cell keeps the value.
- A value no cell can show exactly (too long, or with characters a workbook cannot keep) is in the
  sheet as its cell form (``core.cellform``): a cell still showing that form is the exported value,
  untouched, never a change; anything else typed there replaces the whole value.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from types import MappingProxyType
from typing import Any, Literal

from rosterbook.core.cellform import cell_form, shown_exactly
from rosterbook.core.codecs import CodecError, canonical_or_text, join_list, split_list, to_text
from rosterbook.core.dialects import Column, Dialect
from rosterbook.core.errors import UsageError
from rosterbook.core.problems import Problem, quote
from rosterbook.core.settings import Settings
from rosterbook.core.table import Row, SnapshotRow, Table, exported_columns, same_cells

Action = Literal["create", "update", "archive", "rename", "conflict", "unchanged", "deactivate", "error"]
ACTIONS: tuple[Action, ...] = ("create", "update", "archive", "rename", "conflict", "unchanged", "deactivate", "error")
"""Every action, in the order counts and changes are shown."""

SET_MARK = "(set)"
"""What a preview shows as the new value of a write-only column (a password is never shown)."""


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field's value before and after a change (canonical text; None is blank)."""

    before: str | None
    after: str | None


@dataclass(frozen=True)
class Change:
    """What would happen to one user."""

    action: Action
    row: int | None
    """Sheet row number; None for a user removed from the sheet."""
    row_id: str | None
    """The row's hidden id (None for a new row)."""
    key: str
    """The user's key as the sheet has it (the snapshot's for removed users)."""
    old_key: str | None = None
    """The key at export, when the sheet changed it."""
    resource_id: str | None = None
    version: str | None = None
    """The platform version recorded at export."""
    fields: Mapping[str, FieldChange] = field(default_factory=dict)
    """Only the fields that change; for a create every non-blank field, from None."""
    values: Mapping[str, str | None] = field(default_factory=dict)
    """The full intended canonical values after the change (never a write-only value: see ``secrets``)."""
    notes: tuple[str, ...] = ()
    invite: bool = False
    """A new user who gets an invitation email."""
    current: Mapping[str, str | None] | None = None
    """For a conflict: the platform's current values."""
    problems: tuple[Problem, ...] = ()
    """For an error: why the row is not sent."""
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Write-only values the sheet sets (passwords): sent or written to the upload file, never stored or shown."""
    conflicts: Mapping[str, Conflict] = field(default_factory=dict)
    """For a conflict: each field changed on both sides, as exported, now on the platform, and in the sheet."""


@dataclass(frozen=True, slots=True)
class Conflict:
    """One field edited in the sheet and, differently, on the platform since the export."""

    exported: str | None
    platform: str | None
    sheet: str | None


_new = object.__new__
_set = object.__setattr__
_NO_FIELDS: Mapping[str, FieldChange] = MappingProxyType({})
_NO_SECRETS: Mapping[str, str] = MappingProxyType({})
_NO_CONFLICTS: Mapping[str, Conflict] = MappingProxyType({})


def _unchanged(row: int, snap: SnapshotRow) -> Change:
    """An ``unchanged`` Change, built directly: the frozen dataclass __init__ costs 5x more, and a
    sheet of 50,000 users is almost all unchanged rows."""
    change = _new(Change)
    _set(change, "__dict__", {
        "action": "unchanged", "row": row, "row_id": snap.row_id, "key": snap.key, "old_key": None,
        "resource_id": snap.resource_id, "version": snap.version, "fields": _NO_FIELDS, "values": snap.values,
        "notes": (), "invite": False, "current": None, "problems": (), "secrets": _NO_SECRETS, "conflicts": _NO_CONFLICTS,
    })
    return change


# --- per-column comparators, built once per table ---------------------------------------------

_PLAIN, _LIST, _BOOL = 0, 1, 2


@dataclass(frozen=True, slots=True)
class _Col:
    name: str
    kind: int
    keep: bool
    """A blank cell keeps the current value."""
    clear: str | None
    """The clear word, casefolded."""
    write_only: bool
    separator: str | None
    escape: str | None
    default: str | None
    """Canonical default for new users."""
    retained: tuple[str, ...]
    """List items the platform keeps for every user (never removed)."""
    requires: tuple[str, ...]
    column_type: str


def _retained_items(dialect: Dialect, column: Column) -> tuple[str, ...]:
    if dialect.kind == "csv" and column.type == "list" and column.default and column.separator:
        return tuple(split_list(column.default, column.separator, column.escape))
    return ()


def _make_col(dialect: Dialect, column: Column) -> _Col:
    kind = _LIST if column.type == "list" else _BOOL if column.type == "bool" else _PLAIN
    default = column.default
    if default is not None:
        default = _canonical(default, column) or None
    return _Col(
        name=column.name,
        kind=kind,
        keep=column.blank == "keep" or column.write_only,
        clear=column.clear_word.casefold() if column.clear_word else None,
        write_only=column.write_only,
        separator=column.separator,
        escape=column.escape,
        default=default,
        retained=_retained_items(dialect, column),
        requires=column.requires,
        column_type=column.type,
    )


def _canonical(text: str, column: Column | _Col) -> str:
    """Canonical text of a non-blank cell; invalid text stays as typed (checks report it)."""
    column_type = column.type if isinstance(column, Column) else column.column_type
    return canonical_or_text(text, column_type, separator=column.separator, escape=column.escape) or text


def _cell_text(raw: object) -> str | None:
    # The hot path: most cells are already str; to_text handles numbers, dates and the rest.
    if raw.__class__ is str:
        return raw.strip() or None
    return to_text(raw)  # type: ignore[arg-type]


def untouched(text: str | None, exported: str) -> bool:
    """A cell still showing the cell form of an exported value no cell can show exactly: that value, untouched."""
    return text is not None and not shown_exactly(exported) and text == (cell_form(exported).strip() or None)


def _dedupe(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


class _Differ:
    """Everything about a table that does not change from row to row, computed once."""

    def __init__(self, table: Table, settings: Settings) -> None:
        dialect = table.dialect
        if settings.dialect != dialect.name:
            raise UsageError(f"the settings are for {settings.dialect!r} but the sheet is read as {dialect.name!r}.")
        self.table = table
        self.dialect = dialect
        self.settings = settings
        self.add_mode = settings.list_mode == "add"
        present = table.positions
        self.key = dialect.key
        self.key_present = dialect.key in present
        self.fold_keys = dialect.key_case_insensitive
        # On an immutable key the platform finds the same user whatever the letter case.
        self.rename_folds = dialect.key_case_insensitive and not dialect.key_mutable
        self.all_cols = tuple(_make_col(dialect, c) for c in dialect.columns)
        self.cols = tuple(c for c in self.all_cols if c.name in present and c.name != dialect.key)
        self.present = frozenset(present)
        self.status = dialect.status_column
        self.archive_word = dialect.archive_word
        self.invite_words = frozenset(w.word for w in dialect.status_words if w.invite)
        # An existing user moved from a not-yet-invited status to an invite status may get the invitation (Progression 000/001).
        self.uninvited_words = frozenset(w.word for w in dialect.status_words if w.uninvited) if dialect.invitations == "status" else frozenset()
        self.extras: tuple[str, ...] = tuple(dialect.extra_headers(table.headers))
        # Attributes the platform derives from other columns (SCIM displayName), when the sheet does not show them.
        self.derived = tuple(c for c in dialect.columns if c.derived_from and c.name not in present)

    # --- keys ------------------------------------------------------------------------------

    def row_key(self, row: Row) -> str | None:
        """The key a row identifies its user by: the key cell, else the fallback cell (EdApp)."""
        cells = row.values
        present = self.present
        return self.dialect.user_key(lambda name: _cell_text(cells.get(name)) if name in present else None)

    def extras_unchanged(self, row: Row, snap: SnapshotRow) -> bool:
        """True when no custom field of the row differs from what the export recorded (blank keeps)."""
        before = snap.values
        for header in self.extras:
            if header in before:
                text = _cell_text(row.extra.get(header))
                if text is not None and text != before[header]:
                    return False
        return True

    def deactivates(self) -> bool:
        """True when users missing from the sheet are deactivated (dialect option, and it is on)."""
        return self.dialect.missing_users == "option" and self.settings.deactivate_missing

    def fold(self, key: str) -> str:
        return key.casefold() if self.fold_keys else key

    def same_key(self, a: str, b: str) -> bool:
        """``a`` (the sheet's) names the same user as ``b`` (the snapshot's)."""
        return a == b or (self.rename_folds and a.casefold() == b.casefold()) or untouched(a, b)

    # --- existing users --------------------------------------------------------------------

    def existing(self, row: Row, snap: SnapshotRow, notes: tuple[str, ...] = ()) -> Change:
        cells = row.values
        before_values = snap.values
        fields: dict[str, FieldChange] = {}
        after: dict[str, str | None] = {}
        secrets: dict[str, str] = {}
        extra_notes: list[str] = []
        for col in self.cols:
            text = _cell_text(cells.get(col.name))
            name = col.name
            if col.write_only:
                if text is not None:
                    fields[name] = FieldChange(None, SET_MARK)
                    secrets[name] = text
                continue
            before = before_values.get(name)
            if text == before or (before is not None and untouched(text, before)):
                continue
            value = self._resolve(col, text, before, extra_notes)
            if value != before:
                fields[name] = FieldChange(before, value)
                after[name] = value
        for header in self.extras:
            if header not in before_values:
                continue  # a custom field the export did not record: nothing to compare against
            text = _cell_text(row.extra.get(header))
            before = before_values.get(header)
            if text is not None and text != before and not (before is not None and untouched(text, before)):
                fields[header] = FieldChange(before, text)
                after[header] = text
        if fields:
            self._drop_unsupported(fields, after, before_values, extra_notes)
            if self.derived:
                self._follow_names(fields, after, before_values, extra_notes)

        # Without the key column the sheet cannot change the key (the upload file writes the exported one).
        key = self.row_key(row) if self.key_present else None
        old_key: str | None = None
        action: Action = "unchanged"
        problems: tuple[Problem, ...] = ()
        if key is not None and not self.same_key(key, snap.key):
            old_key = snap.key
            if self.dialect.key_mutable:
                before_key = before_values.get(self.key) or snap.key
                fields[self.key] = FieldChange(before_key, key)
                after[self.key] = key
                action = "rename"
            else:
                action = "error"
                problems = (self._key_problem(row, snap.key, key),)
        if key is None or old_key is None:
            key = snap.key
        invite = False
        if action != "error":
            status_change = fields.get(self.status) if self.status is not None else None
            if status_change is not None and status_change.after == self.archive_word and self.archive_word is not None:
                action = "archive"
            elif action == "unchanged" and fields:
                action = "update"
            if status_change is not None and status_change.before in self.uninvited_words and status_change.after in self.invite_words:
                invite = True
                extra_notes.append(f"{status_change.before} -> {status_change.after}: {self.dialect.title} may send an invitation email "
                                   f"({status_change.before} users have not been sent one yet)")
        values = {**before_values, **after} if after else before_values
        return Change(
            action, row.number, snap.row_id, key, old_key, snap.resource_id, snap.version,
            fields, values, notes + tuple(extra_notes), invite, None, problems, secrets,
        )

    def _resolve(self, col: _Col, text: str | None, before: str | None, notes: list[str]) -> str | None:
        """The intended value of an existing user's cell whose text differs from the snapshot."""
        if text is None:
            if col.keep:
                return before
            if col.kind == _LIST:
                return self._list_value(col, [], None, before, notes)
            return None
        if col.clear is not None and text.casefold() == col.clear:
            if col.kind == _LIST:
                return self._list_value(col, [], None, before, notes)
            return None
        if col.kind == _LIST:
            assert col.separator is not None
            return self._list_value(col, split_list(text, col.separator, col.escape), text, before, notes)
        if col.kind == _BOOL:
            return _canonical(text, col)
        return text

    def _list_value(self, col: _Col, items: list[str], text: str | None, before: str | None, notes: list[str]) -> str | None:
        assert col.separator is not None
        old = split_list(before, col.separator, col.escape) if before else []
        new = _dedupe(items)
        new_set = set(new)
        removed = [i for i in old if i not in new_set]
        if self.add_mode:
            old_set = set(old)
            result = _dedupe(old + [i for i in new if i not in old_set])
            notes.extend(f"{quote(i)} is not removed from {col.name}: list_mode is add" for i in removed)
        else:
            kept = [i for i in removed if i in col.retained]
            result = new + kept
            notes.extend(
                f"{quote(i)} stays in {col.name}: {self.dialect.title} keeps it for every user imported from a file" for i in kept
            )
        if set(result) == set(old):
            return before  # same items: order and repeats don't count
        if not result:
            return None
        try:
            return join_list(result, col.separator, col.escape)
        except CodecError:
            return text  # an item that cannot be written back (checks report it): keep what was typed

    def _drop_unsupported(
        self, fields: dict[str, FieldChange], after: dict[str, str | None], before: Mapping[str, str | None], notes: list[str]
    ) -> None:
        """Drop changes the platform would ignore because a column they require would be blank."""
        for col in self.cols:
            if not col.requires or col.name not in fields:
                continue
            missing = [r for r in col.requires if (after[r] if r in after else before.get(r)) is None]
            if missing:
                del fields[col.name]
                if col.name in before:
                    after[col.name] = before[col.name]
                else:
                    after.pop(col.name, None)
                needs = ", ".join(repr(m) for m in missing)
                notes.append(f"{col.name} is not changed: {self.dialect.title} needs {needs} filled in as well")

    def _follow_names(
        self, fields: dict[str, FieldChange], after: dict[str, str | None], before: Mapping[str, str | None], notes: list[str]
    ) -> None:
        """Derived attributes follow a changed name when they were its usual combination at export; else a note says why not."""
        for column in self.derived:
            sources = column.derived_from
            if not any(s in fields for s in sources) or column.name not in before:
                continue  # the name did not change, or the export did not record this attribute
            now = before[column.name]
            old = _joined(before.get(s) for s in sources)
            new = _joined(after[s] if s in after else before.get(s) for s in sources)
            if now is not None and now == old:
                if new is not None and new != old:
                    fields[column.name] = FieldChange(now, new)
                    after[column.name] = new
                    notes.append(f"{column.name} follows the name: {quote(now)} -> {quote(new)}")
            elif now is not None:
                notes.append(f"{column.name} {quote(now)} is not the name {quote(old or '')} as the platform joins it: left as it is")

    def _key_problem(self, row: Row, old: str, new: str) -> Problem:
        dialect = self.dialect
        column = dialect.key  # only called when the key column is in the sheet
        address = self.table.address(row.number, column)
        message = f"the key {dialect.key!r} was {quote(old)} at export and is now {quote(new)}, which {dialect.title} would treat as a different user."
        if dialect.key_change_advice:
            message += f" {dialect.key_change_advice}"
        value = row.values.get(column)
        return Problem("error", self.table.sheet, address, row.number, column, value, "key-changed", message, old)

    # --- new users -------------------------------------------------------------------------

    def create(self, row: Row, notes: tuple[str, ...] = ()) -> Change:
        cells = row.values
        values: dict[str, str | None] = {}
        fields: dict[str, FieldChange] = {}
        secrets: dict[str, str] = {}
        present = self.present
        for col in self.all_cols:
            text = _cell_text(cells.get(col.name)) if col.name in present else None
            if col.write_only:
                if text is not None:
                    fields[col.name] = FieldChange(None, SET_MARK)
                    secrets[col.name] = text
                continue
            if text is None:
                value = col.default
            elif col.clear is not None and text.casefold() == col.clear:
                value = None
            elif col.kind == _LIST:
                assert col.separator is not None
                items = _dedupe(split_list(text, col.separator, col.escape))
                items += [i for i in col.retained if i not in items]
                try:
                    value = join_list(items, col.separator, col.escape) or None
                except CodecError:
                    value = text
            else:
                value = _canonical(text, col)
            values[col.name] = value
            if value is not None:
                fields[col.name] = FieldChange(None, value)
        for header in self.extras:
            text = _cell_text(row.extra.get(header))
            if text is not None:
                values[header] = text
                fields[header] = FieldChange(None, text)
        extra_notes: list[str] = []
        self._drop_unsupported(fields, values, {}, extra_notes)
        for col in self.all_cols:
            if not col.write_only:
                values.setdefault(col.name, None)
        invite = False
        invitations = self.dialect.invitations
        if invitations == "status" and self.status is not None:
            invite = values.get(self.status) in self.invite_words
        elif invitations == "toggle":
            invite = self.settings.invite_new_users
        key = self.row_key(row) or ""
        return Change("create", row.number, None, key, None, None, None, fields, values, notes + tuple(extra_notes), invite, None, (), secrets)

    # --- users removed from the sheet ------------------------------------------------------

    def removed(self, snap: SnapshotRow) -> Change | None:
        if not self.deactivates():
            return None  # the platform leaves users missing from the file alone
        if self.status is not None and snap.values.get(self.status) == self.archive_word and self.archive_word is not None:
            return None  # already archived: nothing to deactivate
        return Change("deactivate", None, snap.row_id, snap.key, None, snap.resource_id, snap.version, {}, snap.values)


def _joined(parts: Iterable[str | None]) -> str | None:
    """Names joined as platforms show them (``Ada Lovelace``); None when all are blank."""
    return " ".join(p for p in parts if p) or None


_by_row = attrgetter("row")


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic objects (also a decorator).

    A 50,000-row diff allocates over 100,000 small objects and creates no reference cycles, so
    the collector has nothing to find; left running, it would rescan the whole heap (the sheet,
    the snapshot) again and again, which costs about a third of the time. A whole command on a
    50,000-user workbook (a million cells read) paid 0.6 s of collections in a 4 s preview. Where
    it was paused already (a command calling another), this changes nothing.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def diff(table: Table, snapshot: Sequence[SnapshotRow], settings: Settings, *, as_is: Collection[int] | None = None) -> list[Change]:
    """What would change for each row of the sheet (and each user removed from it), in sheet order.

    Unchanged rows are included (action ``unchanged``); users removed from the sheet are listed
    (``deactivate``) only where the dialect and settings deactivate users missing from the file.
    ``as_is``: ``exported_as_is(table, snapshot)``, when the caller has it already.
    """
    with paused_gc():
        return _diff(table, snapshot, settings, as_is)


def _nothing(values: Mapping[str, Any]) -> tuple[()]:
    return ()


def _diff(table: Table, snapshot: Sequence[SnapshotRow], settings: Settings, as_is: Collection[int] | None) -> list[Change]:
    differ = _Differ(table, settings)
    by_id = {s.row_id: s for s in snapshot}
    # The rows exactly as exported (``exported_as_is``): given, or found here in the same pass (no second loop).
    names = exported_columns(table) if as_is is None else ()
    pick: Callable[[Mapping[str, Any]], Any] = itemgetter(*names) if names else _nothing
    changes: list[Change] = []
    claimed: dict[str, int] = {}  # row id -> index in changes (an int: 50,000 tuples would wake the GC)
    pending: list[Row] = []
    copied: dict[int, str] = {}
    by_number: dict[int, Row] = {}
    extras = bool(differ.extras)
    for row in table.rows:
        row_id = row.row_id
        snap = by_id.get(row_id) if row_id is not None else None
        if snap is None:
            pending.append(row)
            continue
        if row_id in claimed:
            index = claimed[row_id]
            if not by_number:  # built on the first copied row only: they are rare
                by_number.update((r.number, r) for r in table.rows)
            first = by_number[changes[index].row or 0]
            key = differ.row_key(row)
            first_key = differ.row_key(first)
            if key is not None and differ.same_key(key, snap.key) and (first_key is None or not differ.same_key(first_key, snap.key)):
                changes[index] = differ.existing(row, snap)
                copied[first.number] = f"row {row.number}"
                pending.append(first)
            else:
                copied[row.number] = f"row {first.number}"
                pending.append(row)
            continue
        claimed[snap.row_id] = len(changes)
        same = row.number in as_is if as_is is not None else same_cells(pick, names, row.values, snap.values)
        if same and (not extras or differ.extras_unchanged(row, snap)):
            changes.append(_unchanged(row.number, snap))
        else:
            changes.append(differ.existing(row, snap))
    if pending:
        free: dict[str, SnapshotRow] = {}
        for snap in snapshot:
            if snap.row_id not in claimed:
                free.setdefault(differ.fold(snap.key), snap)
        for row in sorted(pending, key=lambda r: r.number):
            key = differ.row_key(row)
            snap = free.pop(differ.fold(key), None) if key is not None else None
            if snap is not None:
                note = f"matched to the exported user {quote(snap.key)} by key: the row has no row id of that user"
                claimed[snap.row_id] = len(changes)
                changes.append(differ.existing(row, snap, (note,)))
                continue
            notes: tuple[str, ...] = ()
            if row.number in copied:
                notes = (f"a copy of {copied[row.number]} (same hidden row id) with another key: treated as a new user",)
            elif row.row_id is not None:
                notes = ("the hidden row id is not in this workbook's snapshot: treated as a new user",)
            changes.append(differ.create(row, notes))
    numbers = [c.row for c in changes]
    if pending or any(map(int.__gt__, numbers, numbers[1:])):  # type: ignore[arg-type]
        changes.sort(key=_by_row)
    if differ.deactivates():
        removed = (differ.removed(s) for s in snapshot if s.row_id not in claimed)
        changes.extend(sorted((c for c in removed if c is not None), key=lambda c: differ.fold(c.key)))
    return changes


def apply_change(
    before: SnapshotRow | None,
    change: Change,
    *,
    resource_id: str | None = None,
    version: str | None = None,
    row_id: str | None = None,
) -> SnapshotRow:
    """The snapshot entry after the platform confirmed ``change`` (write-only values are dropped).

    ``resource_id``/``version``/``row_id`` are what the platform (or the workbook) gave back; when
    omitted they are taken from the change, then from ``before``. A deactivated user's entry is
    returned as it was: the caller drops it, since the user is no longer in the sheet.
    """
    if change.action in ("error", "conflict"):
        raise ValueError(f"a change with action {change.action!r} is never sent, so it cannot be applied")
    if change.action in ("unchanged", "deactivate"):
        if before is None:
            raise ValueError(f"a change with action {change.action!r} needs the snapshot entry it applies to")
        return before
    new_row_id = row_id or change.row_id or (before.row_id if before is not None else None)
    if new_row_id is None:
        raise ValueError("a new user's snapshot entry needs a row_id")
    return SnapshotRow(
        row_id=new_row_id,
        key=change.key,
        resource_id=resource_id or change.resource_id or (before.resource_id if before is not None else None),
        version=version if version is not None else change.version if change.version is not None else (before.version if before is not None else None),
        values=dict(change.values),
    )

