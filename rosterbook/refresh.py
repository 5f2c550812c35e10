"""``export --keep-edits``: refresh a workbook from its platform and re-apply the sheet's unsynced edits on top.

The platform is read again and replaces the snapshot; every row keeps its place and its row id,
and each cell the sheet had edited (against the old snapshot) is written back over the platform's
fresh value. A field edited both in the sheet and on the platform since the export (to another
value) is a conflict: its snapshot entry keeps the value exported then, and records what the
platform holds now (``SnapshotRow.seen``), so the preview shows it field by field (exported ->
now on the platform -> in the sheet) and sync refuses it, on SCIM and CSV platforms alike; it is
never silently resolved. Users added on the platform since come in at the bottom. Rows typed in
and never synced stay new rows, unless the platform holds them already (an interrupted sync
created them): then they become its users, their later edits kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from rosterbook import workbook as wbk
from rosterbook.connectors import ExportData
from rosterbook.core.codecs import canonical_or_text, to_text
from rosterbook.core.dialects import Dialect
from rosterbook.core.plan import holds_values, rows_text, same_key
from rosterbook.core.settings import Settings
from rosterbook.core.table import Row, SnapshotRow
from rosterbook.errors import DataError
from rosterbook.journal import Intent
from rosterbook.session import Session


@dataclass
class Refreshed:
    """The workbook's new content: rows in the sheet's order (then users new on the platform) and the new snapshot."""

    rows: list[list[str | None]] = field(default_factory=list)
    row_ids: list[str | None] = field(default_factory=list)
    snapshot: list[SnapshotRow] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    """Rows of the refreshed sheet whose unsynced edits were re-applied (new rows included)."""
    conflicts: list[int] = field(default_factory=list)
    """Rows of the refreshed sheet with a field edited both in the sheet and on the platform."""
    gone: list[str] = field(default_factory=list)
    """Users with edits in the sheet whom the platform no longer has (their rows are not kept)."""
    refreshed: list[int] = field(default_factory=list)
    """Rows of the refreshed sheet whose snapshot entry was damaged: refreshed from the platform by key (only with force)."""

    @property
    def next_row(self) -> int:
        """The sheet row the next row written goes to."""
        return len(self.rows) + 2

    def summary(self) -> dict[str, object]:
        """The JSON form (``keep_edits`` of the export result)."""
        return {"rows": self.kept, "conflicts": self.conflicts, "gone": self.gone, "refreshed": self.refreshed}


class _Fresh:
    """The platform's users as just exported, found by id or by key; each taken once."""

    def __init__(self, dialect: Dialect, data: ExportData) -> None:
        self.dialect = dialect
        self.data = data
        self.by_id = {rid: i for i, (_, rid, _, _) in enumerate(data.snapshots) if rid}
        self.by_key: dict[str, int] = {}
        for i, (key, _, _, _) in enumerate(data.snapshots):
            self.by_key.setdefault(self.fold(key), i)
        self.taken: set[int] = set()

    def fold(self, key: str) -> str:
        return key.casefold() if self.dialect.key_case_insensitive else key

    def find(self, resource_id: str | None, key: str | None) -> int | None:
        found = self.by_id.get(resource_id) if resource_id else None
        if found is None and key is not None and not (resource_id and self.by_id):
            found = self.by_key.get(self.fold(key))
        return None if found is None or found in self.taken else found

    def values(self, index: int) -> dict[str, str | None]:
        return dict(self.data.snapshots[index][3])


@dataclass(frozen=True, slots=True)
class SheetRow:
    """What ``keep_edits`` needs of one row of the sheet."""

    number: int
    row_id: str | None
    key: str | None
    """The row's user key as the sheet has it (``Dialect.user_key``)."""
    entry: tuple[str | None, str] | None
    """Its snapshot entry's (resource id, key); None for a row typed in, or one whose entry is missing or damaged."""
    edited: dict[str, str | None] | None
    """Its unsynced edits (``Session.edited_rows``); None when it has none."""
    exported: dict[str, str | None] | None
    """Its entry's values, for an edited row with an entry."""
    typed: Mapping[str, str | None]
    """Its cells as typed (text): the edited ones, or every one for a row without an entry."""


_NONE: Mapping[str, str | None] = MappingProxyType({})


@dataclass(frozen=True)
class SheetEdits:
    """A workbook's rows as ``keep_edits`` re-applies them, read before the export (``edits_of``): the session is
    then let go, so the workbook and the export are not in memory together."""

    settings: Settings
    dialect: Dialect
    rows: list[SheetRow]
    unknown: list[int]
    """Rows with a row id the snapshot has no entry for (missing or damaged)."""
    deleted: list[tuple[str, str | None, str]]
    """(row id, resource id, key) of the entries whose row is gone from the sheet."""
    ids_in_use: frozenset[str]
    """The row ids of the sheet and of the snapshot (new ones must not collide)."""
    by_id: Mapping[str, Intent]
    """What an interrupted sync sent for existing users, by row id (``Session.intent_baselines``)."""
    by_key: Mapping[str, Intent]
    """... and for rows typed in, by folded key."""

    @property
    def edited(self) -> list[int]:
        """The rows with unsynced edits."""
        return [row.number for row in self.rows if row.edited is not None]


def edits_of(session: Session) -> SheetEdits:
    """What ``keep_edits`` needs of the session's workbook."""
    dialect, snapshot = session.dialect, session.snapshot
    edits = session.edited_rows()
    by_id, by_key = session.intent_baselines()
    rows: list[SheetRow] = []
    for row in session.table.rows:
        snap = snapshot.get(row.row_id) if row.row_id else None
        edited = edits.get(row.number)
        if snap is None:
            typed: Mapping[str, str | None] = {**{n: to_text(v) for n, v in row.extra.items()}, **{n: to_text(v) for n, v in row.values.items()}}
        else:
            typed = {name: _typed(row, name) for name in edited} if edited else _NONE
        rows.append(SheetRow(row.number, row.row_id, dialect.user_key(row.text), (snap.resource_id, snap.key) if snap is not None else None,
                             edited, dict(snap.values) if snap is not None and edited is not None else None, typed))
    used = {r.row_id for r in rows if r.row_id}
    unknown = [r.number for r in rows if r.row_id and r.entry is None]
    deleted = [(rid, snap.resource_id, snap.key) for rid, snap in snapshot.items() if rid not in used]
    return SheetEdits(session.settings, dialect, rows, unknown, deleted, frozenset(used | set(snapshot)), by_id, by_key)


def keep_edits(sheet: SheetEdits, data: ExportData, *, force: bool) -> Refreshed:
    """The refreshed rows and snapshot, with the sheet's unsynced edits re-applied.

    ``sheet.by_id``/``sheet.by_key``: what an interrupted sync sent for rows (by row id) and for rows typed in (by folded
    key): when the platform holds it, that is the row's baseline, and only what differs from it is an edit.
    """
    dialect = sheet.dialect
    fresh = _Fresh(dialect, data)
    unknown = sheet.unknown
    if unknown and not force:
        raise DataError(
            f"{rows_text(unknown).capitalize()} of the {wbk.USERS} sheet cannot be matched to the export snapshot (their entry is missing "
            "or damaged), so their edits cannot be told apart; nothing was written. Revert them, or export with --keep-edits --force "
            "to refresh those rows from the platform and keep every other edit."
        )
    out = Refreshed()
    new_ids = iter(wbk.next_row_ids(sheet.ids_in_use, len(data.rows) + len(sheet.rows)))
    headers = data.headers
    for row in sheet.rows:
        if row.entry is not None:
            resource_id, exported_key = row.entry
            index = fresh.find(resource_id, exported_key)
            if index is None:
                if row.edited is not None:
                    out.gone.append(exported_key)
                continue
            exported, edited = dict(row.exported or {}), row.edited or {}
            sent = sheet.by_id.get(row.row_id or "")
            if sent is not None and holds_values(dialect, fresh.values(index), sent.sent):
                # An interrupted sync sent this row and the platform holds it: that is the baseline, not the old export.
                exported = sent.entry_values(exported)
                edited = {n: v for n, v in edited.items() if _canon(dialect, n, exported.get(n)) != _canon(dialect, n, v)}
            _place(out, fresh, index, row.typed, exported, exported_key, edited, headers, row.row_id or next(new_ids))
        elif row.row_id is not None:  # damaged or unknown entry (force): the platform's values, found by key
            index = fresh.find(None, row.key)
            if index is not None:
                out.refreshed.append(out.next_row)
                _place(out, fresh, index, row.typed, fresh.values(index), row.key or "", {}, headers, next(new_ids))
        else:
            sent = sheet.by_key.get((row.key or "").casefold())
            _new_row(out, fresh, row.typed, row.key, row.edited or {}, headers, sent.values if sent is not None else None, new_ids)
    for rid, resource_id, exported_key in sheet.deleted:
        index = fresh.find(resource_id, exported_key)
        if index is not None:  # a user whose row was deleted from the sheet: still an exported user (the diff sees the removal)
            fresh.taken.add(index)
            key_, fresh_id, version, values = data.snapshots[index]
            out.snapshot.append(SnapshotRow(rid, key_, fresh_id, version, values))
    for index, cells in enumerate(data.rows):
        if index not in fresh.taken:  # on the platform since the export
            rid = next(new_ids)
            key_, resource_id, version, values = data.snapshots[index]
            out.rows.append(list(cells))
            out.row_ids.append(rid)
            out.snapshot.append(SnapshotRow(rid, key_, resource_id, version, values))
    return out


def _place(out: Refreshed, fresh: _Fresh, index: int, typed: Mapping[str, str | None], exported: Mapping[str, str | None], exported_key: str,
           edited: Mapping[str, str | None], headers: Sequence[str], rid: str) -> None:
    """A row of an exported user: the platform's fresh cells, the sheet's edited cells on top, conflicts recorded."""
    fresh.taken.add(index)
    dialect = fresh.dialect
    key, resource_id, version, now = fresh.data.snapshots[index]
    cells = list(fresh.data.rows[index])
    values = dict(now)
    seen: dict[str, str | None] = {}
    for name, after in edited.items():
        if name in headers:
            cells[headers.index(name)] = typed.get(name)
        column = dialect.find_column(name)
        if column is not None and column.write_only:
            continue
        before = exported.get(name) if name != dialect.key else exported.get(name) or exported_key
        platform = now.get(name) if name != dialect.key else now.get(name) or key
        if name == dialect.key:
            moved = not same_key(dialect, platform, before) and not same_key(dialect, platform, after)
        else:
            canon = _canon(dialect, name, platform)
            moved = canon != _canon(dialect, name, before) and canon != _canon(dialect, name, after)
        if moved:  # edited on both sides: the snapshot keeps the export's value, and what the platform holds now
            values[name] = before
            seen[name] = platform
    if edited:
        out.kept.append(out.next_row)
    if seen:
        out.conflicts.append(out.next_row)
        version = None  # never skip the comparison of values for this user
    out.rows.append(cells)
    out.row_ids.append(rid)
    out.snapshot.append(SnapshotRow(rid, key, resource_id, version, values, seen))


def _new_row(out: Refreshed, fresh: _Fresh, typed_cells: Mapping[str, str | None], key: str | None, edited: Mapping[str, str | None], headers: Sequence[str],
             baseline: Mapping[str, str | None] | None, new_ids: Iterator[str]) -> None:
    """A row typed in and never synced: the platform's user when it holds what was sent for it (or what the row says), else a new row."""
    dialect = fresh.dialect
    index = fresh.find(None, key) if key is not None else None
    typed = {name: value for name, value in edited.items()}
    if index is not None:
        now = fresh.values(index)
        base = dict(baseline) if baseline is not None and holds_values(dialect, now, baseline) else None
        if base is None and holds_values(dialect, now, typed):
            base = now
        if base is not None:
            differing = {name: value for name, value in typed.items() if _canon(dialect, name, base.get(name)) != _canon(dialect, name, value)}
            _place(out, fresh, index, typed_cells, {**now, **base}, key or "", differing, headers, next(new_ids))
            return
    out.kept.append(out.next_row)
    out.rows.append([typed_cells.get(name) for name in headers])
    out.row_ids.append(None)


def _typed(row: Row, name: str) -> str | None:
    """The text of a row's cell as typed (a dialect column or a custom one)."""
    raw = row.values.get(name) if name in row.values else row.extra.get(name)
    return to_text(raw)


def _canon(dialect: Dialect, name: str, text: str | None) -> str | None:
    column = dialect.find_column(name)
    if column is None:
        return text
    return canonical_or_text(text, column.type, separator=column.separator, escape=column.escape)
