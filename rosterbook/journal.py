"""The sync journal: a sidecar file next to the workbook, so a sync that dies or cannot save loses nothing.

``BOOK.xlsx`` gets ``BOOK.rosterbook-journal.jsonl`` while a sync runs, one JSON line per record,
each batch written and flushed to disk before the workbook is touched:

- ``intent``: before a batch is sent, what each of its rows sends (the fields, and the snapshot
  entry it will have once confirmed). A sync killed while the platform applied the batch leaves
  the intents behind: the next preview or sync asks the platform, and a row whose values it holds
  is re-based on them (so a later edit of that row is an ordinary update, not a conflict with our
  own write, and a created user is that row's user, not "another user"); ``export --keep-edits``
  takes them as those rows' baseline.
- ``flush``: after a batch's outcomes are known, exactly what the workbook will record (snapshot
  entries, new rows' ids, Sync status cells, Sync log lines, the sync history's lines). If the workbook cannot be saved (a
  read-only folder, a full disk) or the process dies before it is, the next command that opens the
  workbook applies them first.

A successful save of the workbook settles the journal (the file is removed, or keeps only the intents
still unresolved). Nothing here talks to a platform.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rosterbook import history
from rosterbook import workbook as wbk
from rosterbook.core.cellform import cell_form
from rosterbook.core.diff import Change
from rosterbook.core.table import SnapshotRow
from rosterbook.sheets import SheetBook

SUFFIX = ".rosterbook-journal.jsonl"


def journal_path(book: Path) -> Path:
    """The journal of the workbook at ``book``."""
    return book.with_name(book.stem + SUFFIX)


@dataclass(frozen=True)
class Intent:
    """What one row of an interrupted sync sent: its fields, and its snapshot entry once confirmed."""

    row: int | None
    row_id: str
    key: str
    action: str
    resource_id: str | None
    sent: Mapping[str, str | None]
    values: Mapping[str, str | None]
    """A create's values (an existing user's are its snapshot entry's, with ``sent`` on top)."""
    sync: str = ""
    """The id of the sync that sent it (its history records the row once the platform is found to hold it)."""
    undo_of: str | None = None
    """That sync undid this one."""

    def entry_values(self, exported: Mapping[str, str | None] | None) -> dict[str, str | None]:
        """The snapshot values once the platform confirmed this row."""
        return {**(exported or {}), **self.values, **self.sent} if self.resource_id is not None else dict(self.values)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "intent", "row": self.row, "row_id": self.row_id, "key": self.key, "action": self.action,
                "resource_id": self.resource_id, "sent": dict(self.sent), "values": dict(self.values), "sync": self.sync, "undo_of": self.undo_of}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Intent:
        undo_of = data.get("undo_of")
        return cls(data.get("row"), str(data["row_id"]), str(data["key"]), str(data["action"]), data.get("resource_id"),
                   dict(data.get("sent") or {}), dict(data.get("values") or {}), str(data.get("sync") or ""),
                   undo_of if isinstance(undo_of, str) else None)


@dataclass
class Flush:
    """What the workbook records after one batch (the engine's flush), kept until the workbook is saved."""

    changed: dict[str, SnapshotRow] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    new_ids: list[tuple[int, str, str]] = field(default_factory=list)
    """(sheet row, row id, key) of rows created on the platform."""
    statuses: list[tuple[int, str | None, str | None]] = field(default_factory=list)
    """(sheet row, its row id if known, Sync status text)."""
    log: list[list[Any]] = field(default_factory=list)
    history: list[list[Any]] = field(default_factory=list)
    """Lines of the sync history (``rosterbook.history``): what each row sent changed, for undo."""

    def to_json(self) -> dict[str, Any]:
        return {"kind": "flush", "changed": {rid: wbk.encode_entry(snap) for rid, snap in self.changed.items()}, "removed": self.removed,
                "new_ids": self.new_ids, "statuses": self.statuses, "log": self.log, "history": self.history}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Flush:
        changed = {str(rid): wbk.decode_entry(str(rid), str(text)) for rid, text in (data.get("changed") or {}).items()}
        return cls(changed, [str(r) for r in data.get("removed") or ()], [(int(n), str(r), str(k)) for n, r, k in data.get("new_ids") or ()],
                   [(int(n), r, t) for n, r, t in data.get("statuses") or ()], [list(c) for c in data.get("log") or ()],
                   [list(c) for c in data.get("history") or ()])


class Journal:
    """The journal of one sync run; a journal for a workbook without a file (open in Excel, never saved) does nothing."""

    def __init__(self, book: Path | None) -> None:
        self.path = journal_path(book) if book is not None else None
        self.broken: OSError | None = None
        """Why the journal could not be written (a sync then stops before its next batch)."""

    def write(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append records and push them to disk before anything else happens."""
        if self.path is None or self.broken is not None:
            return
        lines = "".join(json.dumps(r, ensure_ascii=True, separators=(",", ":")) + "\n" for r in records)
        if not lines:
            return
        try:
            with open(self.path, "a", encoding="ascii") as handle:
                handle.write(lines)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            self.broken = exc

    def intents(self, changes: Sequence[Change], *, dialect_write_only: Iterable[str] = (), sync: str = "", undo_of: str | None = None) -> None:
        """Before sending: what each of these rows sends (``sync``: the id of the sync sending them)."""
        hidden = set(dialect_write_only)
        # An existing user's entry is its snapshot entry plus what is sent: only a create needs its values written out.
        self.write(Intent(c.row, c.row_id or "", c.key, c.action, c.resource_id,
                          {n: f.after for n, f in c.fields.items() if n not in hidden}, dict(c.values) if c.resource_id is None else {},
                          sync, undo_of).to_json()
                   for c in changes if c.row_id)

    def flush(self, record: Flush) -> None:
        """After a batch: what the workbook is about to record."""
        self.write([record.to_json()])

    def settled(self, unresolved: Sequence[Intent] = ()) -> None:
        """The workbook was saved with everything recorded: keep only the intents nobody resolved yet."""
        if self.path is None:
            return
        if unresolved:
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text("".join(json.dumps(i.to_json(), ensure_ascii=True) + "\n" for i in unresolved), encoding="ascii")
            os.replace(tmp, self.path)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def discard(book: Path) -> None:
    """Forget a workbook's journal (an export replaced everything it could tell)."""
    with contextlib.suppress(FileNotFoundError):
        journal_path(book).unlink()


def exists(book: Path | None) -> bool:
    """Whether an interrupted sync left a journal next to this workbook."""
    return book is not None and journal_path(book).exists()


def read(book: Path) -> tuple[list[Flush], list[Intent]]:
    """The journal's records (a line cut short by a crash is the end of it)."""
    flushes: list[Flush] = []
    intents: list[Intent] = []
    try:
        text = journal_path(book).read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return flushes, intents
    for line in text.splitlines():
        try:
            data = json.loads(line)
            if data.get("kind") == "flush":
                flushes.append(Flush.from_json(data))
            elif data.get("kind") == "intent":
                intents.append(Intent.from_json(data))
        except (ValueError, KeyError, TypeError):
            break  # the line being written when the process died
    return flushes, intents


def replay(book: SheetBook, path: Path, dialect_key: str, key_fallback: str | None = None) -> list[Intent]:
    """Apply what an interrupted sync recorded but never saved into ``book`` (in memory; the command's save keeps it).

    Returns the intents no recorded outcome settles: rows whose fate only the platform knows.
    """
    flushes, intents = read(path)
    if not flushes:
        return intents
    sheet = wbk.read_snapshot_sheet(book)
    grid = book.values(wbk.USERS)
    head = [str(h) if h is not None else "" for h in (grid[0] if grid else [])]
    rid_col = head.index(wbk.ROW_ID) + 1 if wbk.ROW_ID in head else None
    status_col = head.index(wbk.SYNC_STATUS) + 1 if wbk.SYNC_STATUS in head else None
    key_index = head.index(dialect_key) if dialect_key in head else head.index(key_fallback) if key_fallback in head else None
    ids: dict[int, str | None] = {n: (str(row[rid_col - 1]) if rid_col is not None and rid_col - 1 < len(row) and row[rid_col - 1] else None)
           for n, row in enumerate(grid[1:], start=2)}
    keys = {n: (str(row[key_index]).strip().casefold() if key_index is not None and key_index < len(row) and row[key_index] else None)
            for n, row in enumerate(grid[1:], start=2)}
    cursor = wbk.sync_log_cursor(book)
    lines: history.HistorySheet | None = None
    settled: set[str] = set()
    for record in flushes:
        wbk.update_snapshot(book, record.changed, record.removed, sheet=sheet)
        settled.update(record.changed, record.removed)
        for number, rid, key in record.new_ids:
            target = number if ids.get(number) is None and keys.get(number) == key.casefold() else next(
                (n for n, k in keys.items() if ids.get(n) is None and k == key.casefold()), None)
            if target is not None and rid_col is not None and rid not in ids.values():
                book.write_values(wbk.USERS, target, rid_col, [[rid]])
                ids[target] = rid
        for number, owner, text in record.statuses:
            if status_col is not None and (owner is None or ids.get(number) == owner):
                book.write_values(wbk.USERS, number, status_col, [[cell_form(text) if text else None]])
        if record.log:
            book.write_values(wbk.SYNC_LOG, cursor.next_row, 1, record.log)
            cursor.next_row += len(record.log)
        if record.history:
            lines = history.append(book, record.history, lines)
    return [i for i in intents if i.row_id not in settled]
