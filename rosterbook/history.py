"""The sync history: the very hidden ``_history`` sheet, what every sync changed (``rosterbook.core.history``).

Row 1 is ``sync | check | entry ... | rosterbook-history-1 | digest``. Every other row is one line: the
sync id, a check (a hash of the sync id and the entry) and one JSON entry in text a cell keeps exactly
(``workbook.cell_json``), continued over the next cells when long, as the snapshot's entries are. A sync
writes one ``sync`` line (where it sent, what it undid, the snapshot it started from), then one ``row``
line per row it sent. Lines are only ever appended; the header's digest (line count and a sum over each
line's place and check) is carried forward at each append, so an edited, deleted, added or moved line
is found when the history is read for an undo. The sheet survives a save by LibreOffice (the layout
makes it very hidden again), an export (the lines are copied into the new workbook, as the Sync log
is) and a crash (a sync's lines wait in its journal until the workbook is saved).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rosterbook import workbook as wbk
from rosterbook.core.codecs import Cell, to_text
from rosterbook.core.history import Step, SyncInfo, SyncRecord, sync_time
from rosterbook.errors import DataError
from rosterbook.sheets import SheetBook

HEAD = ("sync", "check", "entry (JSON; a long entry continues in the next cells)")
FORMAT = "rosterbook-history-1"
CHUNK = wbk.SNAPSHOT_CHUNK

Line = list[Cell]
"""One line of the sheet as written: sync id, check, the entry's chunks."""


def line(sync_id: str, entry: Mapping[str, Any]) -> Line:
    """The cells of one history line (a ``SyncInfo`` or ``Step`` JSON form)."""
    text = wbk.cell_json(entry)
    return [sync_id, _check(sync_id, text), *(text[i : i + CHUNK] for i in range(0, len(text), CHUNK))]


def info_line(info: SyncInfo) -> Line:
    return line(info.sync_id, info.to_json())


def step_line(step: Step) -> Line:
    return line(step.sync_id, step.to_json())


def _check(sync_id: str, text: str) -> str:
    return hashlib.sha256(f"{sync_id}\x00{text}".encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _place(number: int, check: str) -> int:
    return int(hashlib.sha256(f"{number}:{check}".encode()).hexdigest()[:32], 16)


def _digest(count: int, total: int) -> str:
    return f"{count}:{total % (1 << 128):032x}"


def _parse_digest(text: str | None) -> tuple[int, int] | None:
    count, _, total = (text or "").partition(":")
    try:
        return int(count), int(total, 16)
    except ValueError:
        return None


@dataclass
class HistorySheet:
    """The history as read: every sync with its steps, where the next line goes, and what is wrong with it."""

    records: dict[str, SyncRecord] = field(default_factory=dict)
    """By sync id, in the order the syncs were first written."""
    next_row: int = 2
    count: int = 0
    total: int = 0
    problem: str | None = None
    """Why the sheet cannot be trusted (lines edited, deleted or moved outside rosterbook), or None."""

    def undos_of(self, sync_id: str) -> list[SyncRecord]:
        """The syncs that undid ``sync_id``, oldest first."""
        return [r for r in self.records.values() if r.info.undo_of == sync_id]

    def last(self) -> SyncRecord | None:
        """The last sync that changed something and was not itself an undo."""
        return next((r for r in reversed(self.records.values()) if r.steps and r.info.undo_of is None), None)

    def choose(self, sync_id: str | None) -> SyncRecord:
        """The sync to undo: ``sync_id`` (the whole id, or its last part), else the last one; a clear error otherwise."""
        if self.problem is not None:
            raise DataError(f"{wbk.HISTORY}: the sync history was edited outside rosterbook ({self.problem}), so it cannot say exactly what a "
                            "sync changed; nothing was sent. Undo works again for the syncs made after the next export into a new workbook.")
        if sync_id is None:
            found = self.last()
            if found is None:
                raise DataError("this workbook has no sync to undo: its history records no sync that changed anything (a workbook exported "
                                "before undo existed keeps no history of its syncs).")
            return found
        wanted = sync_id.strip()
        matches = [r for sid, r in self.records.items() if sid == wanted or (len(wanted) >= 4 and sid.endswith("-" + wanted))]
        if len(matches) == 1:
            return matches[0]
        known = ", ".join(f"{r.sync_id} ({r.time}, {len(r.steps)} rows)" for r in list(self.records.values())[-5:] if r.steps)
        why = "names more than one sync" if matches else "is not a sync of this workbook"
        raise DataError(f"{sync_id!r} {why}. The last syncs (see the Sync id column of the {wbk.SYNC_LOG} sheet): {known or 'none'}.")


def read_history(book: SheetBook) -> HistorySheet:
    """The history sheet, every line checked (an empty history for a workbook that has none)."""
    if wbk.HISTORY not in book.sheet_names():
        return HistorySheet()
    grid = book.values(wbk.HISTORY)
    if not grid:
        return HistorySheet()
    head = [to_text(c) for c in grid[0][:5]] + [None] * 5
    sheet = HistorySheet(next_row=len(grid) + 1)
    stored = _parse_digest(head[4])
    if tuple(head[:2]) != HEAD[:2] or head[3] != FORMAT or stored is None:
        sheet.problem = "its header row was changed"
        return sheet
    sheet.count, sheet.total = stored
    infos: dict[str, SyncInfo] = {}
    steps: dict[str, list[Step]] = {}
    count = total = 0
    damaged: list[int] = []
    for number, cells in enumerate(grid[1:], start=2):
        parsed = _parse_line(cells)
        if parsed is None:
            continue
        sync_id, check, text = parsed
        count, total = count + 1, total + _place(number, check)
        try:
            if check != _check(sync_id, text):
                raise ValueError(check)
            data = json.loads(text)
            if data.get("kind") == "sync":
                infos.setdefault(sync_id, SyncInfo.from_json(sync_id, data))
                steps.setdefault(sync_id, [])
            else:
                steps.setdefault(sync_id, []).append(Step.from_json(sync_id, data))
        except (ValueError, AttributeError):
            damaged.append(number)
    if damaged:
        sheet.problem = f"{wbk.HISTORY}!A{damaged[0]}" + (f" and {len(damaged) - 1} more lines" if len(damaged) > 1 else "") + " do not match their check"
    elif _digest(count, total) != head[4]:
        sheet.problem = "lines were deleted, added or moved"
    elif any(sid not in infos for sid in steps):
        sheet.problem = "a sync's first line is missing"
    sheet.records = {sid: SyncRecord(infos[sid], tuple(steps[sid])) for sid in steps if sid in infos}
    return sheet


def _parse_line(cells: Sequence[Cell]) -> tuple[str, str, str] | None:
    """(sync id, check, entry text) of a line; None for a blank row."""
    sync_id = to_text(cells[0]) if cells else None
    check, chunks = wbk.line_chunks(cells)
    if sync_id is None and check is None and not chunks:
        return None
    return sync_id or "", check or "", "".join(chunks)


def append(book: SheetBook, lines: Sequence[Line], sheet: HistorySheet | None = None) -> HistorySheet:
    """Append lines below the last one and carry the header's digest forward (``sheet``: the history as read, kept up to date)."""
    if sheet is None:
        sheet = _tail(book)
    if not lines:
        return sheet
    book.ensure_sheet(wbk.HISTORY, "veryHidden")  # again very hidden, whatever saved the file last
    book.write_values(wbk.HISTORY, sheet.next_row, 1, [list(cells) for cells in lines])
    for offset, cells in enumerate(lines):
        sheet.count += 1
        sheet.total += _place(sheet.next_row + offset, str(cells[1]))
    sheet.next_row += len(lines)
    book.write_values(wbk.HISTORY, 1, 1, [[*HEAD, FORMAT, _digest(sheet.count, sheet.total)]])
    return sheet


def _tail(book: SheetBook) -> HistorySheet:
    """Where the next line goes and the digest so far, without reading the entries."""
    if wbk.HISTORY not in book.sheet_names():
        return HistorySheet()
    grid = book.values(wbk.HISTORY)
    last = len(grid)
    while last > 1 and all(to_text(c) is None for c in grid[last - 1]):
        last -= 1
    stored = _parse_digest(to_text(grid[0][4]) if grid and len(grid[0]) > 4 else None)
    count, total = stored if stored is not None else (0, 0)
    return HistorySheet(next_row=max(last, 1) + 1, count=count, total=total)


def copy(source: SheetBook, target: SheetBook) -> None:
    """Carry the history into a new workbook made by an export (its lines as they are: an undo needs them)."""
    if wbk.HISTORY not in source.sheet_names():
        return
    grid = source.values(wbk.HISTORY)
    if grid:
        target.ensure_sheet(wbk.HISTORY, "veryHidden")
        target.write_values(wbk.HISTORY, 1, 1, [list(r) for r in grid])


def describe(records: Iterable[SyncRecord]) -> str:
    """``20261123-101502-3f9a0c (2026-11-23 10:15:02, 12 rows)``, one per sync."""
    return ", ".join(f"{r.sync_id} ({sync_time(r.sync_id)}, {len(r.steps)} rows)" for r in records)
