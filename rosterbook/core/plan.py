"""The sync plan: every change the diff found, checked against problems, conflicts and the deletion guard.

A plan is what the preview shows and what Sync sends. It never sends a row with an error, never
overwrites a field the platform changed since export (a ``conflict``, decided by values), and
refuses outright when a sync would take access away from more users than the deletion guard
allows, unless confirmed: every archive, every deactivation and every status change from a word
that can log in (or holds a seat) to one that cannot, counted together.

Seats (dialects that bill by seat): ``before`` counts snapshot users in a ``seat`` status;
``after`` is ``before`` adjusted by every change the plan would send once confirmed (rows with
errors or conflicts and skipped rows change nothing). With a known subscription size,
``over_subscription = max(0, after - subscription)`` is how many seats are beyond the
subscription once the sync is done, and ``extra_billed = max(0, after - max(before,
subscription))`` is how many of those this sync adds (seats already beyond the subscription
before the sync are billed already). Both are None when the subscription size is unknown.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

from rosterbook.core.codecs import canonical_or_text
from rosterbook.core.dialects import Column, Dialect
from rosterbook.core.diff import ACTIONS, SET_MARK, Action, Change, Conflict, FieldChange, apply_change, diff, paused_gc
from rosterbook.core.problems import Problem, quote, sorted_problems
from rosterbook.core.settings import Settings
from rosterbook.core.table import SnapshotRow, Table
from rosterbook.core.upload import EscapedCell, FileFormat, UploadFile, build_upload
from rosterbook.core.wording import CLI, Phrase, Words, rows_spec, rows_text

__all__ = [
    "ACTIONS",
    "SENDABLE",
    "SHEET_BLOCKERS",
    "Action",
    "Advice",
    "Blocker",
    "Change",
    "Conflict",
    "Current",
    "FieldChange",
    "Guard",
    "Plan",
    "Seats",
    "Settings",
    "apply_change",
    "deletion_threshold",
    "diff",
    "holds_values",
    "loses_access",
    "make_plan",
    "moved_fields",
    "rows_spec",
    "rows_text",
    "same_key",
]

SENDABLE: frozenset[str] = frozenset(("create", "update", "archive", "rename", "deactivate"))
"""The actions Sync sends."""



@dataclass(frozen=True, slots=True)
class Current:
    """The platform's current state of one user, as the connector read it before Sync."""

    version: str | None
    values: Mapping[str, str | None]


class _Record:
    """Attribute access plus ``record["name"]``, and ``to_dict()``: for the plan's small summaries."""

    __slots__ = ()

    def __getitem__(self, name: str) -> Any:
        if name not in self.to_dict():
            raise KeyError(name)
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Guard(_Record):
    """The deletion guard: archives plus deactivations against the threshold."""

    tripped: bool
    deactivations: int
    """Users the plan would take access away from: archives, deactivations, and status changes from a
    login (or seat) word to a word that cannot log in."""
    threshold: int
    """The most it may do without confirmation: max(ratio x active users, minimum)."""
    confirmed: bool
    active: int
    """Active users in the snapshot (in a seat or login status; every user when there is no status)."""
    losing: tuple[str, ...] = ()
    """The keys of the users losing access, in plan order."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"tripped": self.tripped, "deactivations": self.deactivations, "threshold": self.threshold,
                "confirmed": self.confirmed, "active": self.active, "losing_access": list(self.losing)}


@dataclass(frozen=True, slots=True)
class Seats(_Record):
    """Seat-holding users before and after the sync, against the subscription (see the module docstring)."""

    before: int | None
    """None when the workbook holds no exported users (a template): the platform's count is unknown until an export."""
    after: int | None
    subscription: int | None
    extra_billed: int | None
    over_subscription: int | None
    change: int = 0
    """Seats this sync adds (negative: frees), known even when ``before`` is not."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"before": self.before, "after": self.after, "subscription": self.subscription,
                "extra_billed": self.extra_billed, "over_subscription": self.over_subscription, "change": self.change}


@dataclass(frozen=True, slots=True)
class Advice(_Record):
    """What to choose on the platform's upload screen for this plan's file (a dialect's ``upload_choices``)."""

    choice: str
    """The choice as the platform names it."""
    advice: str
    """What to do, for this file."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"choice": self.choice, "advice": self.advice}


BlockerKind = Literal["header", "errors", "unknown-rows", "conflicts", "deletions", "refused"]
SHEET_BLOCKERS: frozenset[str] = frozenset(("header", "errors", "unknown-rows"))
"""Blockers the sheet alone decides: a sync refuses them before anything, even a read, goes to the platform."""


def sheet_may_refuse(problems: Iterable[Problem], changes: Iterable[Change]) -> bool:
    """Whether a plan of these problems and changes can hold one of ``SHEET_BLOCKERS``: each of them comes from an error
    (of the header, of a row, an unknown row id) or from a change the diff found in error. False: no plan needs making
    to know the sheet alone refuses nothing (a sync then reads the platform at once)."""
    return any(p.severity == "error" for p in problems) or any(c.action == "error" for c in changes)


@dataclass(frozen=True, slots=True)
class Blocker:
    """One reason a plan may not be sent as it is (``Plan.blockers()``)."""

    kind: BlockerKind
    phrase: Phrase
    """What to tell the user, in a front end's words (``render``)."""
    rows: tuple[int, ...] = ()
    """The sheet rows concerned (to fix, or to skip)."""
    confirmable: bool = False
    """The user may go ahead by confirming (the deletion guard) instead of changing the sheet."""

    @property
    def message(self) -> str:
        """What to tell the user, in the command line's words."""
        return self.phrase(CLI)

    def render(self, words: Words) -> str:
        """What to tell the user, in ``words`` (the ribbon's buttons instead of the command line's flags)."""
        return self.phrase(words)


@dataclass(frozen=True)
class Plan:
    """What a sync would do: sorted changes, counts, invitations, seats, the guard and the problems."""

    dialect: Dialect
    settings: Settings
    changes: tuple[Change, ...]
    """Sorted by action (ACTIONS order), then row, then key; unchanged rows included."""
    counts: Mapping[str, int]
    """Every action, zero counts included."""
    invitations: tuple[str, ...]
    """Keys of new users who get an invitation email."""
    seats: Seats | None
    """None when the platform does not bill by seat."""
    guard: Guard
    problems: tuple[Problem, ...]
    skipped: tuple[Change, ...] = ()
    """Changes left out because their row is in ``skip_rows`` (not counted, not sent)."""
    refusal: str | None = None
    """Why the whole plan is refused (nothing is sent), or None."""
    adopted: tuple[SnapshotRow, ...] = ()
    """Snapshot entries re-based on what the platform already holds (an earlier sync sent them, then died)."""
    skip_rows: frozenset[int] = frozenset()
    """The sheet rows the user chose to leave out."""
    upload: UploadFile | None = None
    """A CSV platform's upload file for this plan (None for platforms reached through an API); no rows: no file."""
    guidance: tuple[Advice, ...] = ()
    """What to choose on the platform's upload screen for that file (none when there is no file)."""
    left_out: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    """Rows among ``skip_rows`` that a blocker named (``errors``, ``conflicts``): left out instead of refusing the sync."""
    undo_of: str | None = None
    """The sync this plan undoes (``rosterbook.core.undo``): its changes put back what that sync changed."""
    cannot_undo: tuple[str, ...] = ()
    """What this undo cannot put back, and why (an invitation already e-mailed, a password...)."""

    @cached_property
    def escaped_cells(self) -> list[EscapedCell]:
        """Upload-file cells the writer changes so that a spreadsheet cannot run them (never altered silently)."""
        return self.upload.escaped_cells() if self.upload is not None else []

    @property
    def refused(self) -> bool:
        """True when nothing may be sent (deletion guard not confirmed, or the sheet itself is unusable)."""
        return self.refusal is not None

    def blockers(self) -> tuple[Blocker, ...]:
        """The single answer to "may this be sent, and what must the user confirm": every reason, in the
        order a user fixes them. Empty: send (after the usual confirmation). A ``confirmable`` blocker
        (the deletion guard) goes away when the user confirms; the others need the sheet fixed or rows skipped."""
        out: list[Blocker] = []
        header = [p for p in self.problems if p.severity == "error" and p.row < 2]
        if header:
            shown = " ".join(p.render() for p in header[:3])
            out.append(Blocker("header", lambda w: f"the sheet's header has errors, nothing was sent: {shown}"))
        errors = [c for c in self.changes if c.action == "error" and c.row is not None]
        if errors:
            rows = sorted({c.row for c in errors if c.row is not None})
            first = next((p for c in errors for p in c.problems if p.severity == "error"), None)
            example = f" First: {first.render()}" if first is not None else ""
            have = f"{len(rows)} row{'s have' if len(rows) != 1 else ' has'} errors ({rows_text(rows)}); nothing was sent."
            out.append(Blocker("errors", lambda w: f"{have} Fix them ({w.name('check')} lists them){w.or_skip('those rows', rows)}.{example}",
                               tuple(rows)))
        unknown = sorted({p.row for p in self.problems if p.code == "unknown-row-id" and p.row not in self.skip_rows})
        if unknown:
            # A row whose identity is unknown cannot be matched to a user: never guess which one it is.
            them = "them" if len(unknown) != 1 else "it"
            lost = (f"{rows_text(unknown).capitalize()}: the hidden row id is not in the export snapshot, so the row cannot be matched to a user; "
                    "nothing was sent.")
            out.append(Blocker("unknown-rows", lambda w: f"{lost} Revert {them} ({w.name('revert')}), or export again.", tuple(unknown)))
        conflicts = sorted({c.row for c in self.changes if c.action == "conflict" and c.row is not None})
        if conflicts:
            changed = (f"{len(conflicts)} row{'s were' if len(conflicts) != 1 else ' was'} changed on the platform since the export "
                       f"({rows_text(conflicts)}); nothing was sent.")
            out.append(Blocker("conflicts", lambda w: f"{changed} See them with {w.name('preview', quoted=True)}, then export again{w.or_skip('them', conflicts)}.",
                               tuple(conflicts)))
        if self.guard.tripped and not self.guard.confirmed:
            many = (f"this sync would take access away from {self.guard.deactivations} users ({_named(self.guard.losing)}: archived, deactivated "
                    f"or set to a status that cannot log in), more than the deletion guard's threshold of {self.guard.threshold}; nothing was sent.")
            out.append(Blocker("deletions", lambda w: f"{many} If that is intended, {w.confirm_deletions()}.", confirmable=True))
        elif self.refusal is not None and not header:
            refusal = self.refusal
            out.append(Blocker("refused", lambda w: f"the plan was refused, nothing was sent: {refusal}"))
        return tuple(out)

    def sendable(self) -> list[Change]:
        """The changes Sync sends (create, update, archive, rename, deactivate); none when refused."""
        return [] if self.refused else [c for c in self.changes if c.action in SENDABLE]

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON form (unchanged rows are counted, and listed only when they carry notes)."""
        return {
            "dialect": self.dialect.name,
            "counts": dict(self.counts),
            "invitations": {"count": len(self.invitations), "keys": list(self.invitations)},
            "seats": self.seats.to_dict() if self.seats is not None else None,
            "guard": self.guard.to_dict(),
            "refused": self.refused,
            "refusal": self.refusal,
            "changes": [_change_dict(c) for c in self.changes if c.action != "unchanged" or c.notes],
            "skipped": [{"row": c.row, "key": c.key, "action": c.action} for c in self.skipped],
            "problems": [p.to_dict() for p in self.problems],
            "upload_guidance": [a.to_dict() for a in self.guidance],
            "escaped_cells": [e.to_dict() for e in self.escaped_cells],
        } | ({"undo_of": self.undo_of, "cannot_undo": list(self.cannot_undo)} if self.undo_of is not None else {})

    def render_text(self) -> str:
        """The human preview: counts, invitations, seats, the guard, then one block per change."""
        lines = [f"Plan for {self.dialect.title}: " + ", ".join(f"{n} {a}" for a, n in self.counts.items())]
        if self.undo_of is not None:
            lines[0] = f"Undo of sync {self.undo_of} on {self.dialect.title}: " + ", ".join(f"{n} {a}" for a, n in self.counts.items() if a != "unchanged")
            lines.extend(f"Cannot be undone: {note}" for note in self.cannot_undo)
        if self.dialect.invitations != "none":
            if self.invitations:
                lines.append(f"Invitation emails: {len(self.invitations)} ({', '.join(self.invitations)})")
            else:
                lines.append("Invitation emails: none")
        if self.seats is not None:
            lines.append(_seats_line(self.seats))
        if self.guard.tripped:
            lines.append(_guard_line(self.guard, self.settings))
        elif self.guard.losing:
            lines.append(f"Losing access: {len(self.guard.losing)} ({_named(self.guard.losing)}), within the deletion guard's threshold of {self.guard.threshold}.")
        if self.skipped:
            lines.append("Skipped rows: " + ", ".join(str(c.row) for c in self.skipped))
        if self.refusal is not None:
            lines.append(f"Refused: {self.refusal}")
        lines.extend(upload_notes(self.guidance, self.escaped_cells))
        for change in self.changes:
            if change.action == "unchanged" and not change.notes:
                continue
            lines.append("")
            lines.extend(_change_lines(change))
        return "\n".join(lines)


def make_plan(
    table: Table,
    snapshot: Sequence[SnapshotRow],
    settings: Settings,
    *,
    problems: Iterable[Problem] = (),
    current: Mapping[str, Current] | None = None,
    confirm_deletions: bool = False,
    skip_rows: Collection[int] = (),
    changes: Sequence[Change] | None = None,
    baseline: bool = True,
    file_format: FileFormat | None = None,
) -> Plan:
    """The plan for a sheet against its snapshot.

    ``problems`` are the checks' findings: a row with an error is not sent (action ``error``)
    unless it is in ``skip_rows``, which leaves it out entirely (listed in ``plan.skipped``).
    ``current`` (by resource id) is the platform's state read just before Sync: a row whose
    version moved since export is a ``conflict``, unless the platform already holds what the
    sheet wants (a sync that died after sending): that row is adopted (``plan.adopted``) and
    unchanged. The deletion guard refuses the plan when it would archive or deactivate more
    users than allowed, unless ``confirm_deletions``. ``changes`` is ``diff(table, snapshot,
    settings)`` when the caller has it already (one diff per command). On a CSV platform the plan
    carries its upload file, written as ``file_format`` says (the export's; None: the dialect's
    canonical one), and what to choose when uploading it.
    """
    with paused_gc():
        if changes is None:
            changes = diff(table, snapshot, settings)
        plan = _make_plan(table.dialect, snapshot, settings, changes, (*table.header_problems, *problems), current,
                          confirm_deletions, frozenset(skip_rows))
        if table.dialect.kind == "csv":
            upload = build_upload(table.dialect, plan.changes, plan.skipped, snapshot, settings, table.dialect.extra_headers(table.headers),
                                  file_format)
            plan = replace(plan, upload=upload, guidance=_guidance(plan, upload))
    if not baseline and plan.seats is not None:
        plan = replace(plan, seats=replace(plan.seats, before=None, after=None, extra_billed=None, over_subscription=None))
    return plan


def _make_plan(
    dialect: Dialect,
    snapshot: Sequence[SnapshotRow],
    settings: Settings,
    changes: Sequence[Change],
    problems: Iterable[Problem],
    current: Mapping[str, Current] | None,
    confirm_deletions: bool,
    skip: frozenset[int],
) -> Plan:
    found = list(dict.fromkeys(problems))
    row_errors: dict[int, list[Problem]] = {}
    for problem in found:
        if problem.severity == "error" and problem.row > 1:
            row_errors.setdefault(problem.row, []).append(problem)
    # diff() gives changes in row order (removed users last, by key): bucketing by action keeps
    # that order inside each action, which is the plan's sort (action, row, key) without a sort.
    buckets: dict[str, list[Change]] = {action: [] for action in ACTIONS}
    skipped: list[Change] = []
    adopted: dict[str, SnapshotRow] = {}
    seen = any(s.seen for s in snapshot)
    if not skip and not row_errors and not current and not seen:
        for change in changes:
            buckets[change.action].append(change)
            if change.problems:
                found.extend(change.problems)
    else:
        by_id = {s.row_id: s for s in snapshot} if current or seen else {}
        for change in changes:
            change = _settle(dialect, change, skip, row_errors, current, by_id, adopted)
            if change.row is not None and change.row in skip:
                skipped.append(change)
                continue
            if change.problems:
                found.extend(change.problems)
            buckets[change.action].append(change)
    if adopted:
        snapshot = [adopted.get(s.row_id, s) for s in snapshot]
    buckets["unchanged"].extend(_left_alone(dialect, settings, changes, snapshot))
    kept = [change for action in ACTIONS for change in buckets[action]]
    counts: dict[str, int] = {action: len(buckets[action]) for action in ACTIONS}
    sendable = [change for action in ACTIONS if action in SENDABLE for change in buckets[action]]
    statuses = _statuses(dialect, snapshot)
    losing = tuple(c.key for c in sendable if loses_access(dialect, c))
    guard = _guard(dialect, statuses, len(snapshot), settings, losing, confirm_deletions)
    return Plan(
        dialect=dialect,
        settings=settings,
        changes=tuple(kept),
        counts=counts,
        invitations=tuple(c.key for c in sendable if c.invite),
        seats=_seats(dialect, statuses, settings, sendable),
        guard=guard,
        problems=tuple(sorted_problems(dict.fromkeys(found))),
        skipped=tuple(skipped),
        refusal=_refusal(found, guard),
        adopted=tuple(adopted.values()),
        skip_rows=skip,
    )


def _left_alone(dialect: Dialect, settings: Settings, changes: Sequence[Change], snapshot: Sequence[SnapshotRow]) -> list[Change]:
    """Users whose row was deleted from the sheet although the platform keeps users missing from the file:
    nothing changes for them, and the preview says so and why (sorted by key)."""
    claimed = {c.row_id for c in changes}
    gone = sorted((s for s in snapshot if s.row_id not in claimed), key=lambda s: s.key.casefold())
    if not gone:
        return []
    note = _left_alone_note(dialect, settings)
    return [Change("unchanged", None, s.row_id, s.key, None, s.resource_id, s.version, {}, s.values, (note,)) for s in gone]


def _left_alone_note(dialect: Dialect, settings: Settings) -> str:
    if dialect.missing_users == "option" and not settings.deactivate_missing:
        return (f"deleted from the sheet, but deactivate_missing is off (Settings), so {dialect.title} keeps users missing from the file: "
                "nothing changes. Turn it on to deactivate them (the upload file is then the full list of users).")
    note = f"deleted from the sheet, but {dialect.title} keeps users missing from the file: nothing changes."
    if dialect.status_column is not None and dialect.archive_word is not None:
        return note + f" To archive them, put the row back (rosterbook revert) and set {dialect.status_column} to {dialect.archive_word!r}."
    return note + f" {dialect.title} cannot remove users through the file: remove them on the platform itself."


def _guidance(plan: Plan, upload: UploadFile) -> tuple[Advice, ...]:
    """What to choose on the upload screen, for this file (nothing when no file is written)."""
    if not upload.rows:
        return ()
    numbers = {name: plan.counts.get(name, 0) for name in ("create", "update", "archive", "deactivate")}
    numbers["invitations"] = len(plan.invitations)
    out = []
    for choice in plan.dialect.upload_choices:
        value = getattr(plan.settings, choice.option) if choice.option is not None else None
        out.append(Advice(choice.choice, choice.advice_for(value).format_map(numbers)))
    return tuple(out)


def upload_notes(guidance: Sequence[Advice], escaped: Sequence[EscapedCell]) -> list[str]:
    """The lines a preview or a sync prints about the upload file: what to choose, and the cells escaped."""
    lines = []
    if guidance:
        lines.append("When you upload the file:")
        lines.extend(f"  - {a.choice}: {a.advice}" for a in guidance)
    if escaped:
        lines.append(f"Cells the upload file writes with a leading ' (so that a spreadsheet cannot run them as formulas; "
                     f"the platform will store them so): {len(escaped)}")
        lines.extend(f"  - {e.render()}" for e in escaped[:20])
        if len(escaped) > 20:
            lines.append(f"  - ... {len(escaped) - 20} more (see the Preview sheet)")
    return lines


def _settle(
    dialect: Dialect,
    change: Change,
    skip: frozenset[int],
    row_errors: Mapping[int, list[Problem]],
    current: Mapping[str, Current] | None,
    snapshot: Mapping[str, SnapshotRow],
    adopted: dict[str, SnapshotRow],
) -> Change:
    """A change as the plan sends it: skipped rows as they are, rows with errors as ``error``, and
    users the platform changed since export as ``conflict`` (or adopted when it holds the edit)."""
    row = change.row
    if row is not None and row in skip:
        return change
    if row is not None and row in row_errors:
        if change.action != "unchanged" or change.problems:
            return replace(change, action="error", problems=(*change.problems, *row_errors[row]))
        return change
    if change.action not in SENDABLE:
        return change
    now = current.get(change.resource_id) if current and change.resource_id is not None else None
    if now is None and change.row_id is not None and snapshot.get(change.row_id) is not None and snapshot[change.row_id].seen:
        # Not read now (a CSV platform): what export --keep-edits found on the platform for fields edited on both sides.
        before = snapshot[change.row_id]
        now = Current(None, {**before.values, **before.seen})
    if now is not None:
        return _check_version(dialect, change, now, snapshot, adopted)
    return change


def _check_version(dialect: Dialect, change: Change, now: Current, snapshot: Mapping[str, SnapshotRow],
                   adopted: dict[str, SnapshotRow]) -> Change:
    """Conflicts are decided by values: a field the row sends (or the key) that the platform changed since
    the export, to anything but what the sheet wants, is a conflict. An unchanged version skips the
    comparison; a row that passes is sent with the version just read (its If-Match)."""
    if change.version is not None and now.version == change.version:
        return change  # the same version: nothing moved since the export
    before = snapshot.get(change.row_id) if change.row_id is not None else None
    if before is None:
        return change
    if _holds_change(dialect, change, now):
        # The platform already holds the edit (an earlier sync died before recording it): adopt, don't send.
        snap = apply_change(before, replace(change, action="update"), version=now.version)
        adopted[snap.row_id] = snap
        return Change("unchanged", change.row, snap.row_id, snap.key, None, snap.resource_id, snap.version, {}, snap.values, change.notes)
    conflicts = moved_fields(dialect, change, before, now.values)
    if not conflicts:
        return replace(change, version=now.version)
    note = f"changed on the platform since the export ({', '.join(conflicts)}): not overwritten"
    return replace(change, action="conflict", current=dict(now.values), conflicts=conflicts, notes=(*change.notes, note))


def _holds_change(dialect: Dialect, change: Change, now: Current) -> bool:
    """The platform holds every value the change sends, under the key the sheet gives (a password is never read back, so never held)."""
    if not change.fields or change.secrets:
        return False
    if not same_key(dialect, dialect.user_key(now.values.get), change.key):
        return False
    return holds_values(dialect, now.values, {name: f.after for name, f in change.fields.items()})


def same_key(dialect: Dialect, a: str | None, b: str | None) -> bool:
    """Two keys name the same user (letter case aside where the dialect's key ignores it)."""
    if a is None or b is None:
        return a is b
    return a == b or (dialect.key_case_insensitive and a.casefold() == b.casefold())


def moved_fields(dialect: Dialect, change: Change, before: SnapshotRow, now: Mapping[str, str | None]) -> dict[str, Conflict]:
    """The fields ``change`` sends (and the key) that the platform holds with another value than at export,
    and than the sheet wants: exported -> now on the platform -> in the sheet."""
    out: dict[str, Conflict] = {}
    key = dialect.key
    platform_key = dialect.user_key(now.get)  # the key, else its fallback (EdApp: username <- email)
    if key not in change.fields and platform_key is not None and not same_key(dialect, platform_key, before.key):
        out[key] = Conflict(before.key, platform_key, change.key)
    for name, field_change in change.fields.items():
        column = dialect.find_column(name)
        if (column is not None and column.write_only) or name not in now:
            continue  # never read back (a password), or a column the platform's answer does not carry
        exported = before.values.get(name) if name != key else before.values.get(key) or before.key
        platform = now.get(name)
        if name == key:
            moved = not same_key(dialect, platform, exported) and not same_key(dialect, platform, field_change.after)
        else:
            canon = _canon(column, platform)
            moved = canon != _canon(column, exported) and canon != _canon(column, field_change.after)
        if moved:
            out[name] = Conflict(exported, platform, field_change.after)
    return out


def _refusal(found: Sequence[Problem], guard: Guard) -> str | None:
    file_errors = [p for p in found if p.severity == "error" and p.row <= 1]
    if file_errors:
        return f"the sheet itself has {len(file_errors)} error(s) (e.g. {file_errors[0].render()}); fix them first."
    if guard.tripped and not guard.confirmed:
        return (
            f"{guard.deactivations} users would lose access (archived, deactivated or set to a status that cannot log in), more than "
            f"the deletion guard allows ({guard.threshold}); confirm the deletions to go ahead."
        )
    return None


def _statuses(dialect: Dialect, snapshot: Sequence[SnapshotRow]) -> Counter[str | None]:
    """How many snapshot users are in each status (empty when the dialect has no status)."""
    if dialect.status_column is None:
        return Counter()
    column = dialect.status_column
    return Counter([s.values.get(column) for s in snapshot])


def holds_values(dialect: Dialect, now: Mapping[str, str | None], wanted: Mapping[str, str | None]) -> bool:
    """True when a platform's values ``now`` already equal the ``wanted`` ones, column by column, as canonical text.

    Write-only columns (passwords) are skipped: the platform never gives them back. A column the
    dialect does not know (a custom field) is compared as text.
    """
    for name, value in wanted.items():
        column = dialect.find_column(name)
        if column is not None and column.write_only:
            continue
        if _canon(column, now.get(name)) != _canon(column, value):
            return False
    return True


def _canon(column: Column | None, text: str | None) -> str | None:
    if column is None:
        return text
    return canonical_or_text(text, column.type, separator=column.separator, escape=column.escape)


def deletion_threshold(users: int, ratio: float, minimum: int) -> int:
    """The most users a sync (or an export) may lose before the deletion guard trips: the larger of ``ratio`` of them and ``minimum``."""
    # floor: "more than 10% of 255" means 26 or more, exactly as comparing with 25.5 would.
    return max(math.floor(ratio * users), minimum)


def loses_access(dialect: Dialect, change: Change) -> bool:
    """An archive, a deactivation, or a status change from a word that can log in (or holds a seat) to one that cannot."""
    if change.action in ("archive", "deactivate"):
        return True
    if dialect.status_column is None or change.action not in SENDABLE:
        return False
    status = change.fields.get(dialect.status_column)
    if status is None or status.before is None:
        return False
    before = dialect.status_word(status.before)
    after = dialect.status_word(status.after) if status.after is not None else None
    return before is not None and (before.login or before.seat) and not (after is not None and after.login)


def _guard(dialect: Dialect, statuses: Counter[str | None], users: int, settings: Settings, losing: tuple[str, ...], confirmed: bool) -> Guard:
    if dialect.status_column is None:
        active = users
    else:
        active = sum(statuses[w.word] for w in dialect.status_words if w.seat or w.login)
    threshold = deletion_threshold(active, settings.deletion_threshold_ratio, settings.deletion_threshold_min)
    return Guard(tripped=len(losing) > threshold, deactivations=len(losing), threshold=threshold, confirmed=confirmed, active=active, losing=losing)


def _named(keys: Sequence[str]) -> str:
    """``'ann', 'bob', 'cy' and 4 more``."""
    shown = ", ".join(quote(k) for k in keys[:5])
    return shown + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


def _seats(dialect: Dialect, statuses: Counter[str | None], settings: Settings, sendable: Sequence[Change]) -> Seats | None:
    if dialect.billing == "none" or dialect.status_column is None:
        return None
    column = dialect.status_column
    seat_words = frozenset(w.word for w in dialect.status_words if w.seat)
    before = sum(statuses[w] for w in seat_words)
    after = before
    for change in sendable:
        if change.action == "create":
            after += change.values.get(column) in seat_words
        elif change.action == "deactivate":
            after -= change.values.get(column) in seat_words
        else:
            status = change.fields.get(column)
            if status is not None:
                after += (status.after in seat_words) - (status.before in seat_words)
    subscription = settings.subscription_seats
    extra = over = None
    if subscription is not None:
        over = max(0, after - subscription)
        extra = max(0, after - max(before, subscription))
    return Seats(before=before, after=after, subscription=subscription, extra_billed=extra, over_subscription=over, change=after - before)


# --- rendering -------------------------------------------------------------------------------


def _change_dict(change: Change) -> dict[str, Any]:
    out = {
        "action": change.action,
        "row": change.row,
        "key": change.key,
        "old_key": change.old_key,
        "fields": {name: {"from": fc.before, "to": fc.after} for name, fc in change.fields.items()},
        "notes": list(change.notes),
        "invite": change.invite,
        "current": dict(change.current) if change.current is not None else None,
        "problems": [p.to_dict() for p in change.problems],
    }
    if change.action == "conflict" or change.conflicts:  # an undo's update may leave some fields as the platform has them now
        out["conflicts"] = {name: {"exported": c.exported, "platform": c.platform, "sheet": c.sheet} for name, c in change.conflicts.items()}
    return out


def _show(value: str | None) -> str:
    return "(blank)" if value is None else quote(value)


def _change_lines(change: Change) -> list[str]:
    where = f"row {change.row}" if change.row is not None else "not in the sheet"
    head = f"{change.action} {where} {change.key}"
    if change.old_key is not None:
        head += f" (was {change.old_key})"
    if change.invite:
        head += " (invitation email)"
    lines = [head]
    for name, both in change.conflicts.items():
        lines.append(f"  {name}: exported {_show(both.exported)} -> now on the platform {_show(both.platform)} -> in the sheet {_show(both.sheet)}")
    for name, fc in change.fields.items():
        if name in change.conflicts:
            continue
        line = f"  {name}: {_show(fc.before)} -> {fc.after if fc.after == SET_MARK else _show(fc.after)}"
        if change.current is not None and name in change.current:
            line += f" (platform now: {_show(change.current[name])})"
        lines.append(line)
    lines.extend(f"  {p.render()}" for p in change.problems)
    lines.extend(f"  note: {note}" for note in change.notes)
    return lines


def _seats_line(seats: Seats) -> str:
    if seats.before is None:
        return f"Seats: unknown, the workbook holds no exported users (started from the template?): export first ({seats.change:+d} with this sync)"
    line = f"Seats: {seats.before} -> {seats.after}"
    if seats.subscription is None:
        return line + " (subscription size unknown)"
    line += f" (subscription {seats.subscription}"
    if seats.extra_billed:
        plural = "seat" if seats.extra_billed == 1 else "seats"
        line += f"; {seats.extra_billed} extra {plural} billed pro rata"
    elif seats.over_subscription:
        line += f"; {seats.over_subscription} beyond the subscription already"
    return line + ")"


def _guard_line(guard: Guard, settings: Settings) -> str:
    rule = f"{settings.deletion_threshold_ratio:.0%} of {guard.active} active users, at least {settings.deletion_threshold_min}"
    state = "confirmed" if guard.confirmed else "refused unless confirmed"
    return (f"Deletion guard: {guard.deactivations} lose access ({_named(guard.losing)}: archived, deactivated or set to a status that "
            f"cannot log in), more than {guard.threshold} ({rule}): {state}.")
