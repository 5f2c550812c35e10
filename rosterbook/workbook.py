"""The workbook layout, on top of any SheetBook (openpyxl file or the workbook open in Excel).

Sheets, in order:

``Users``
    Row 1 holds the headers: the dialect's columns (plus custom columns), then ``Problems`` and
    ``Sync status``, then the hidden ``_row_id`` column that ties each exported row to its
    snapshot entry (so sorting, filtering and inserted rows never lose a user's identity).
``Preview``
    The last preview: counts, invitations, seats, the deletion guard, then one line per changed field.
``Sync log``
    One line per row outcome of every sync, appended.
``Settings``
    Key/value pairs: platform URL, dialect, subscription seats, upload options, deletion thresholds.
    Never a token.
``Lists``
    Allowed values per column (status words, roles; teams and groups from the platform).
``_snapshot`` (very hidden)
    What was exported, losslessly: per user a row id, a check, and one JSON entry (key, platform
    id, version, canonical values) in text a cell always keeps, continued over the next cells
    when long; the header row carries a digest of the whole sheet, so an edited, truncated or
    re-ordered snapshot is detected instead of trusted.
``_snapshot_updates`` (very hidden, large snapshots only)
    The entries syncs changed since the snapshot was last written whole, in the same lines (an
    entry of ``null``: removed); its header carries its own digest and the snapshot's, so updates
    meant for another snapshot are never applied. A sync of 500 users in a 50,000-user workbook
    rewrites this small sheet and copies the snapshot as it is; once the updates pass a tenth of
    the snapshot, the snapshot is written whole again with them merged in.
``_file_format`` (very hidden, CSV platforms)
    How the platform's export file was written (header spellings and order, delimiter, encoding,
    line ends): the upload file is written the same way. Never a Settings value anyone edits.

Everything here goes through the ``SheetBook`` protocol only, so the ribbon runs it unchanged.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from operator import attrgetter, methodcaller
from typing import Any

import orjson

from rosterbook.core.cellform import any_not_shown, cell_form, cell_text, shown_exactly, unshown_note, why_not_shown
from rosterbook.core.codecs import Cell, CodecError, parse_bool, to_text
from rosterbook.core.dialects import Column, Dialect, load_dialect
from rosterbook.core.problems import Problem, cell_address, column_letter, quote, quote_choices
from rosterbook.core.redact import scrub
from rosterbook.core.settings import DELETION_THRESHOLD_MIN, DELETION_THRESHOLD_RATIO, SETTING_NAMES, Settings
from rosterbook.core.table import HEADER_ROW, SnapshotRow, Table, build_table, new_snapshot_row
from rosterbook.core.upload import FileFormat
from rosterbook.errors import DataError
from rosterbook.sheets import Mark, SheetBook, trim_grid

USERS = "Users"
PREVIEW = "Preview"
SYNC_LOG = "Sync log"
SETTINGS = "Settings"
LISTS = "Lists"
SNAPSHOT = "_snapshot"
FILE_FORMAT = "_file_format"
HISTORY = "_history"
"""Very hidden: what every sync changed, row by row (``rosterbook.history``), for undo."""
SHEET_ORDER = (USERS, PREVIEW, SYNC_LOG, SETTINGS, LISTS, SNAPSHOT)

PROBLEMS = "Problems"
SYNC_STATUS = "Sync status"
ROW_ID = "_row_id"
LAYOUT_HEADERS = (PROBLEMS, SYNC_STATUS, ROW_ID)
CHECK = "Check"
"""The optional helper column of cell-function results (the ribbon's "Add check column"): a ``Check``
header right of ``Problems`` is never data, so Check, Preview and Sync ignore its formulas."""

SNAPSHOT_HEADERS = ("row_id", "key", "resource_id", "version", "values")
"""The snapshot's header in workbooks written before snapshot checks (still read; rewritten as below at the next write)."""
SNAPSHOT_HEAD = ("row_id", "check", "entry (JSON; a long entry continues in the next cells)")
SNAPSHOT_FORMAT = "rosterbook-snapshot-3"
"""Written since syncs keep the entries they change in ``SNAPSHOT_UPDATES``: a version that does not know that sheet
refuses the snapshot rather than read it without its updates."""
SNAPSHOT_FORMATS = ("rosterbook-snapshot-2", SNAPSHOT_FORMAT)
"""Read. Format 2 never has updates: it is rewritten as format 3 the next time it is written whole."""
SNAPSHOT_UPDATES = "_snapshot_updates"
UPDATES_HEAD = ("row_id", "check", "entry (JSON, null when removed; it replaces the snapshot's)")
UPDATES_FORMAT = "rosterbook-snapshot-updates-1"
UPDATES_FROM = 2000
"""A sync keeps the entries it changes in the updates sheet (and copies the snapshot as it is) only in a snapshot of
at least this many entries: a smaller one is rewritten in a moment."""
UPDATES_SHARE = 10
"""... and only while the updates are at most 1/UPDATES_SHARE of the snapshot's entries; past that the snapshot is
written whole again, the updates merged into it."""
SNAPSHOT_CHUNK = 30000
"""Characters of an entry per cell (a cell holds 32,767; entries are ASCII-safe escaped, one unit each)."""
SETTINGS_HEADERS = ("Setting", "Value", "What it means")
SYNC_LOG_HEADERS = ("Time", "Row", "Key", "Action", "Outcome", "Platform id", "Version", "HTTP status", "Message", "Sync id")
"""The Sync log's columns; ``Sync id`` came last so that logs written before it keep their columns."""
LAYOUT_VERSION = "rosterbook-1"

# Column types whose cells are formatted as Text so Excel keeps leading zeros and typed dates.
TEXT_TYPES = frozenset({"id", "phone", "date"})


# --- column look-ups ------------------------------------------------------------------------------

_LOOKUPS: dict[int, tuple[Dialect, dict[str, Column | None]]] = {}


def find_column(dialect: Dialect, header: str) -> Column | None:
    """``dialect.find_column(header)``, memoised per dialect object: called per cell on 50,000-row sheets."""
    entry = _LOOKUPS.get(id(dialect))
    if entry is None or entry[0] is not dialect:
        entry = (dialect, {})
        _LOOKUPS[id(dialect)] = entry
    cache = entry[1]
    if header not in cache:
        cache[header] = dialect.find_column(header)
    return cache[header]


# --- settings ---------------------------------------------------------------------------------


_SETTING_HELP = {
    "dialect": "Platform dialect: {dialects}.",
    "platform_url": "SCIM base URL of the platform; blank = the embedded sandbox. Never put a token here: signing in for this URL keeps it in the OS keyring.",
    "subscription_seats": "Seats in your subscription (blank if unknown): the preview shows extra seats that would be billed.",
    "invite_new_users": "TRUE sends invitations to new users (platforms with an invitation toggle).",
    "list_mode": "'replace' or 'add': existing users' groups and roles are replaced by the cell, or added to.",
    "deactivate_missing": "TRUE deactivates users whose row was removed (platforms with that option).",
    "deletion_threshold_ratio": "A sync archiving more than this share of active users must be confirmed before anything is sent.",
    "deletion_threshold_min": "...or more than this many users, whichever is larger.",
    "layout": "Workbook layout version (do not edit).",
}


_OPTION_SETTINGS = ("invite_new_users", "list_mode", "deactivate_missing")
"""Settings that are a platform's upload options: shown only for a dialect that offers them."""


def write_settings(book: SheetBook, settings: Settings) -> None:
    """Write the Settings sheet (replacing what is there): the general settings, and only the upload options the dialect offers."""
    book.ensure_sheet(SETTINGS)
    from rosterbook.core.dialects import dialect_names

    rows: list[list[Cell]] = [list(SETTINGS_HEADERS)]
    for f in _shown_settings(settings):
        value = getattr(settings, f.name)
        if isinstance(value, bool):
            cell: Cell = "TRUE" if value else "FALSE"
        elif value is None:
            cell = None
        else:
            cell = str(value)
        rows.append([f.name, cell, _SETTING_HELP[f.name].format(dialects=", ".join(dialect_names()))])
    rows.append(["layout", LAYOUT_VERSION, _SETTING_HELP["layout"]])
    book.clear(SETTINGS, 1)
    book.write_values(SETTINGS, 1, 1, rows)


def _shown_settings(settings: Settings) -> list[Any]:
    """The settings the Settings sheet lists: the general ones, and the upload options the dialect offers."""
    options = load_dialect(settings.dialect).options
    return [f for f in fields(settings) if f.name not in _OPTION_SETTINGS or getattr(options, f.name).available]


def settings_rows(settings: Settings) -> int:
    """How many rows ``write_settings`` writes: the header, one per setting shown, the layout version."""
    return 1 + len(_shown_settings(settings)) + 1


def read_settings(book: SheetBook) -> Settings:
    """Parse the Settings sheet's cells into Settings; a bad value is a DataError naming its cell.

    A setting without a row takes its default: the options a dialect does not offer have no row
    (older workbooks list every option; their rows are read as before).
    """
    if SETTINGS not in book.sheet_names():
        raise DataError(lambda w: f"the workbook has no {SETTINGS!r} sheet: is it a rosterbook workbook? {w.run('export').capitalize()} to make one.")
    known = set(SETTING_NAMES)
    found: dict[str, Any] = {}
    for number, row in enumerate(book.values(SETTINGS), start=1):
        if number == 1 or not row:
            continue
        key = to_text(row[0])
        if key is None:
            continue
        raw = to_text(row[1]) if len(row) > 1 else None
        where = f"{SETTINGS}!B{number}"
        if key == "layout":
            continue
        if key not in known:
            raise DataError(f"{SETTINGS}!A{number}: {key!r} is not a setting; expected one of {quote_choices(SETTING_NAMES)}.")
        found[key] = _parse_setting(key, raw, where)
    settings = Settings(**found)
    load_dialect(settings.dialect)  # unknown dialect: a clear error now, not later
    return settings


def _parse_setting(key: str, raw: str | None, where: str) -> Any:
    if key == "dialect":
        if raw is None:
            raise DataError(f"{where} dialect: blank; write the platform's dialect name.")
        return raw
    if key == "platform_url":
        if raw is None:
            return None
        if re.search(r"(?i)bearer\s|token=|access_token|//[^/@]*:[^/@]*@", raw):
            raise DataError(lambda w: f"{where} platform_url: looks like it carries a credential; a workbook must never hold a token. "
                                      f"Write the URL alone, then {w.run('login URL')} (the token is kept in the OS keyring).")
        if not re.match(r"https?://", raw):
            raise DataError(f"{where} platform_url: {raw!r} is not an http(s) URL.")
        return raw.rstrip("/")
    if key in ("invite_new_users", "deactivate_missing"):
        if raw is None:
            return False
        try:
            return parse_bool(raw)
        except CodecError as exc:
            raise DataError(f"{where} {key}: {exc.message}") from None
    if key == "list_mode":
        value = (raw or "replace").strip().lower()
        if value not in ("add", "replace"):
            raise DataError(f"{where} list_mode: {raw!r} is not one of 'add', 'replace'.")
        return value
    if key in ("subscription_seats", "deletion_threshold_min"):
        if raw is None:
            return None if key == "subscription_seats" else DELETION_THRESHOLD_MIN
        if not re.fullmatch(r"\d+", raw):
            raise DataError(f"{where} {key}: {raw!r} is not a whole number.")
        return int(raw)
    if key == "deletion_threshold_ratio":
        if raw is None:
            return DELETION_THRESHOLD_RATIO
        try:
            ratio = float(raw.rstrip("%")) / (100 if raw.endswith("%") else 1)
        except ValueError:
            raise DataError(f"{where} deletion_threshold_ratio: {raw!r} is not a number between 0 and 1.") from None
        if not 0 <= ratio <= 1:
            raise DataError(f"{where} deletion_threshold_ratio: {raw!r} is not a number between 0 and 1.")
        return ratio
    raise AssertionError(key)  # pragma: no cover - every known key is handled above


# --- the Users sheet ---------------------------------------------------------------------------


def users_headers(dialect: Dialect, columns: Sequence[str] | None = None, custom: Sequence[str] = ()) -> list[str]:
    """The Users header row: data columns (dialect order, or ``columns``), custom columns, layout columns."""
    names = list(columns) if columns is not None else [c.name for c in dialect.sheet_columns]
    return [*names, *custom, *LAYOUT_HEADERS]


def text_columns(dialect: Dialect, headers: Sequence[str]) -> list[int]:
    """1-based positions of the columns formatted as Text: IDs, phones, dates, and ``_row_id``."""
    out = []
    for index, header in enumerate(headers, start=1):
        column = find_column(dialect, header) if header not in LAYOUT_HEADERS else None
        if (column is not None and column.type in TEXT_TYPES) or header == ROW_ID:
            out.append(index)
    return out


@dataclass(frozen=True)
class UsersSheet:
    """The Users sheet as read: the table for the core, plus where the layout columns are."""

    table: Table
    headers: tuple[str, ...]
    """Header cells as found (layout columns included)."""
    problems_col: int | None
    status_col: int | None
    row_id_col: int | None
    last_row: int
    """Last used sheet row (1 when there is no data)."""
    problems: tuple[Problem, ...] = ()
    """Layout problems: copied rows, row ids unknown to the snapshot."""
    row_ids: Mapping[int, str] = field(default_factory=dict)
    """Sheet row number -> row id, for rows that have one."""
    marked: frozenset[str] = frozenset()
    """Cells the Problems column says are marked (the last check's marks, cleared by the next)."""

    @property
    def data_width(self) -> int:
        """Number of columns before the layout columns."""
        firsts = [c for c in (self.problems_col, self.status_col, self.row_id_col) if c is not None]
        return (min(firsts) - 1) if firsts else len(self.headers)


def read_users(book: SheetBook, dialect: Dialect, snapshot: Mapping[str, SnapshotRow] | None = None) -> UsersSheet:
    """Read the Users sheet into a Table (layout columns set aside) with row ids resolved."""
    if USERS not in book.sheet_names():
        raise DataError(f"the workbook has no {USERS!r} sheet.")
    # Only adapters over a file know merged cells (openpyxl, calamine); Excel's adapter may not offer it.
    merged = getattr(book, "merged_ranges", None)
    return users_from_grid(book.values(USERS), dialect, snapshot, merged(USERS) if merged is not None else ())


def users_from_grid(
    grid: Sequence[Sequence[Cell]],
    dialect: Dialect,
    snapshot: Mapping[str, SnapshotRow] | None = None,
    merged: Iterable[tuple[int, int, int, int]] = (),
    *,
    first_row: int = HEADER_ROW + 1,
) -> UsersSheet:
    """The Users sheet from its cells as read (``read_users`` without the reading).

    ``first_row``: the sheet row of the grid's second row (the cell functions check a few rows of a
    big sheet: the header row, then rows from ``first_row`` on).
    """
    header_cells: list[Cell] = list(grid[0]) if grid else []
    headers = tuple(to_text(h) or "" for h in header_cells)
    positions = {name: headers.index(name) + 1 for name in LAYOUT_HEADERS if name in headers}
    problems_col, status_col, row_id_col = (positions.get(n) for n in LAYOUT_HEADERS)
    if snapshot and row_id_col is None:
        raise DataError(
            f"{USERS}: the hidden {ROW_ID!r} column is missing, so rows cannot be matched to the exported users. "
            "Undo the column deletion, or export again."
        )
    helpers = [i for i, h in enumerate(headers) if h == CHECK and problems_col is not None and i >= problems_col]
    skip = sorted([*(i - 1 for i in positions.values()), *helpers])
    data_headers: list[Cell] = [None if i in skip else h for i, h in enumerate(header_cells)]
    rid_index = row_id_col - 1 if row_id_col is not None else None
    problems_index = problems_col - 1 if problems_col is not None else None
    body = grid[1:]
    raw_ids: list[str | None] = [_cell_at(cells, rid_index) for cells in body] if rid_index is not None else [None] * len(body)
    marked: set[str] = set()
    if problems_index is not None:
        for text in filter(None, (_cell_at(cells, problems_index) for cells in body)):
            marked.update(_MARKED.findall(text))
    data_rows = _without_columns(body, skip)
    ids, problems = _resolve_row_ids(raw_ids, snapshot, row_id_col, first_row)
    problems.extend(_structure_problems(merged, header_cells, data_rows, set(skip), first_row))
    table = build_table(USERS, dialect, data_headers, data_rows, ids, first_row)
    if snapshot:
        problems.extend(_lost_zeros(table, snapshot))
    # build_table skips blank rows; a blank row that only had a row id is a deleted user, not a row.
    row_ids = {r.number: r.row_id for r in table.rows if r.row_id}
    last_row = first_row - 2 + len(grid) if len(grid) > 1 else 1
    return UsersSheet(table, headers, problems_col, status_col, row_id_col, last_row, tuple(problems), row_ids, frozenset(marked))


def _cell_at(cells: Sequence[Cell], index: int) -> str | None:
    return to_text(cells[index]) if index < len(cells) else None


def _without_columns(rows: Sequence[Sequence[Cell]], skip: Sequence[int]) -> list[list[Cell]]:
    """The rows as new lists with the cells at ``skip`` blanked (the layout's own columns are not data)."""
    out = []
    for cells in rows:
        row = list(cells)
        for i in skip:
            if i < len(row):
                row[i] = None
        out.append(row)
    return out


def _lost_zeros(table: Table, snapshot: Mapping[str, SnapshotRow]) -> list[Problem]:
    """ID and phone cells Excel turned into numbers, losing the exported value's leading zeros or '+'.

    ``000017`` read back as the number 17 would otherwise be sent as a change to ``17``.
    """
    rows = table.rows
    columns = [c.name for c in table.dialect.columns if c.type in ("id", "phone") and c.name in table.positions]
    if columns:  # only a cell that is not text can have lost them: one C-speed pass over each column's types rules most out
        values = list(map(attrgetter("values"), rows))
        columns = [name for name in columns if not set(map(type, map(methodcaller("get", name), values))) <= _TEXT_TYPES]
    out: list[Problem] = []
    for row in rows if columns else ():
        snap = snapshot.get(row.row_id) if row.row_id else None
        if snap is None:
            continue
        for name in columns:
            raw = row.values.get(name)
            if raw is None or isinstance(raw, str):
                continue
            text, before = to_text(raw), snap.values.get(name)
            if text is None or not before or before == text or before.lstrip("+0") != text:
                continue
            out.append(
                Problem("error", USERS, table.address(row.number, name), row.number, name, raw, "lost-leading-zeros",
                        f"{text!r} is the exported {before!r} after Excel turned it into a number and dropped its leading "
                        f"characters. Format the column as Text and type {before!r} again.", before)
            )
    return out


def _structure_problems(
    merged: Iterable[tuple[int, int, int, int]],
    header_cells: Sequence[Cell],
    rows: Sequence[Sequence[Cell]],
    layout: set[int],
    data_row: int = HEADER_ROW + 1,
) -> list[Problem]:
    """Merged cells, and columns holding values under no header (an erased or merged-away header): both
    make cells read as blank, which would silently keep (or clear) values the sheet seems to show."""
    out: list[Problem] = []
    for first_row, first_col, last_row, last_col in merged:
        first = cell_address(first_col, first_row)
        span = f"{first}:{cell_address(last_col, last_row)}"
        header = to_text(header_cells[first_col - 1]) if first_col - 1 < len(header_cells) else None
        out.append(
            Problem("error", USERS, first, first_row, header or "", None, "merged-cells",
                    f"{span} are merged cells: only {first} holds a value, the others read as blank. Unmerge them and fill in each cell.")
        )
    width = max((len(r) for r in rows), default=0)
    for index in range(width):
        if index in layout or (index < len(header_cells) and to_text(header_cells[index]) is not None):
            continue
        filled = next((n for n, r in enumerate(rows, start=data_row) if index < len(r) and to_text(r[index]) is not None), None)
        if filled is not None:
            letter = column_letter(index + 1)
            out.append(
                Problem("error", USERS, f"{letter}{HEADER_ROW}", HEADER_ROW, "", None, "headerless-column",
                        f"column {letter} has no header but holds values (first {letter}{filled}): was its header erased or merged away? "
                        "Type the column's header back.")
            )
    return out


def _resolve_row_ids(
    raw_ids: Sequence[str | None], snapshot: Mapping[str, SnapshotRow] | None, row_id_col: int | None, first_row: int = HEADER_ROW + 1
) -> tuple[list[str | None], list[Problem]]:
    distinct = set(raw_ids)
    if snapshot is not None and len(distinct) == len(raw_ids) and distinct <= snapshot.keys():
        return list(raw_ids), []  # the usual sheet: every id once, each in the snapshot (one C-speed test)
    seen: dict[str, int] = {}
    out: list[str | None] = []
    problems: list[Problem] = []
    for offset, rid in enumerate(raw_ids):
        number = first_row + offset
        if rid is None:
            out.append(None)
            continue
        address = cell_address(row_id_col or 1, number)
        if rid in seen:
            # A copied row carries its original's hidden id: it is a new user, not a second copy of the original.
            problems.append(
                Problem("warning", USERS, address, number, ROW_ID, rid, "copied-row",
                        f"row {number} is a copy of row {seen[rid]} (same hidden row id): it is treated as a new user.")
            )
            out.append(None)
            continue
        if snapshot is not None and rid not in snapshot:
            problems.append(
                Problem("error", USERS, address, number, ROW_ID, rid, "unknown-row-id",
                        f"hidden row id {rid!r} is not in the export snapshot (edited, or pasted from another workbook). Revert the row or export again.")
            )
        seen[rid] = number
        out.append(rid)
    return out, problems


def write_users(
    book: SheetBook,
    dialect: Dialect,
    headers: Sequence[str],
    rows: Sequence[Sequence[str | None]],
    row_ids: Sequence[str | None],
) -> list[Problem]:
    """Replace the Users sheet's content: ``headers`` are the data headers; rows are cell texts.

    A value no cell can show exactly is written as its cell form; the notes on those cells are returned."""
    full = [*headers, *LAYOUT_HEADERS]
    book.ensure_sheet(USERS)
    book.clear(USERS, 1)
    # Text format first, so the values written next land in Text cells (Excel keeps them as typed).
    texts = text_columns(dialect, full)
    book.set_text_columns(USERS, texts)
    block: list[list[Cell]] = [list(full)]
    unshown: list[Problem] = []
    for number, (values, rid) in enumerate(zip(rows, row_ids, strict=True), start=2):
        line: list[Cell] = [*values, None, None, rid]
        if any_not_shown(values):
            # A value no cell can hold exactly: shown in its cell form, marked, with a note; never sent untouched.
            for index, value in enumerate(values):
                if value is not None and not shown_exactly(value):
                    line[index] = cell_form(value)
                    unshown.append(unshown_problem(cell_address(index + 1, number), number, headers[index], value, line[index]))
        block.append(line)
    book.write_values(USERS, 1, 1, block)
    # Again after writing: a file adapter formats the cells it just created (a user editing '00123' keeps it).
    book.set_text_columns(USERS, texts)
    book.hide_columns(USERS, [len(full)])
    book.fit_table(USERS, max(2, len(rows) + 1), len(full))
    return unshown


def unshown_problem(address: str, row: int, column: str, value: str, cell: Cell, *, blank_clears: bool = False) -> Problem:
    """The note of a cell whose platform value a cell cannot show exactly: untouched (its cell form), or replaced by an edit."""
    text = to_text(cell)
    if text == (cell_form(value).strip() or None):
        code, message = unshown_note(value)
        return Problem("warning", USERS, address, row, column, None, code, message)
    shown = text or ""
    preview = quote(shown[:80] + ("..." if len(shown) > 80 else ""))
    return Problem("warning", USERS, address, row, column, None, REPLACED,
                   f"replaces the platform's value, which the sheet could not show exactly (it {why_not_shown(value)}): sync sends exactly "
                   f"this cell's text instead, {len(shown):,} characters: {preview}." if text is not None else
                   f"is blank, which {'clears' if blank_clears else 'keeps'} the platform's value (a value the sheet could not show "
                   f"exactly: it {why_not_shown(value)}).")


REPLACED = "replaces-unshown-value"


def next_row_ids(existing: Iterable[str], count: int) -> list[str]:
    """``count`` fresh row ids (``r<n>``) that do not collide with ``existing``."""
    top = 0
    for rid in existing:
        if rid.startswith("r") and rid[1:].isdigit():
            top = max(top, int(rid[1:]))
    return [f"r{top + i}" for i in range(1, count + 1)]


# --- problems in the sheet ------------------------------------------------------------------

_MARKED = re.compile(r"^(?:\(warning\) )?([A-Z]{1,3}[0-9]+) ", re.MULTILINE)


def problem_line(problem: Problem) -> str:
    """One line of the Problems column: ``E7 account_active: message``; warnings start ``(warning)``.

    The template's conditional formatting finds an error's cell by the address at the start of a line.
    """
    head = f"{problem.cell} {problem.column}:" if problem.cell else f"{problem.column}:"
    text = f"{head} {problem.message}"
    if problem.fix is not None and "did you mean" not in problem.message.lower():
        text += f" Did you mean {quote(problem.fix)}?"
    return f"(warning) {text}" if problem.severity == "warning" else text


def write_problems(book: SheetBook, users: UsersSheet, problems: Iterable[Problem]) -> None:
    """Write each row's problems into the Problems column and mark the cells (old marks cleared)."""
    if users.problems_col is None:
        raise DataError(lambda w: f"{USERS}: no {PROBLEMS!r} column to write problems into; add it after the data columns{w.check_without_writing()}.")
    col = users.problems_col
    by_row: dict[int, list[Problem]] = {}
    marks: dict[str, tuple[Mark, str] | None] = {}
    for problem in problems:
        if problem.sheet != USERS or problem.row < 1:
            continue
        if problem.row > HEADER_ROW:
            by_row.setdefault(problem.row, []).append(problem)
        if problem.cell:
            kind: Mark = "error" if problem.severity == "error" else "warning"
            current = marks.get(problem.cell)
            note = problem_line(problem)
            if current is not None:
                kind = "error" if "error" in (kind, current[0]) else "warning"
                note = f"{current[1]}\n{note}"
            marks[problem.cell] = (kind, note)
    for address in users.marked - set(marks):
        marks[address] = None
    last = max(users.last_row, max(by_row, default=1))
    column: list[list[Cell]] = [["\n".join(problem_line(p) for p in by_row[n])] if n in by_row else [None] for n in range(2, last + 1)]
    if column:
        book.write_values(USERS, 2, col, column)
    if marks:
        book.mark(USERS, marks)


def write_sync_status(book: SheetBook, users: UsersSheet, statuses: Mapping[int, str | None]) -> None:
    """Set the Sync status cell of the given sheet rows (others untouched), one block per run of rows."""
    if users.status_col is None or not statuses:
        return
    statuses = {n: scrub(t) if t else t for n, t in statuses.items()}  # second line: a platform's message may echo a credential
    for first, texts in _runs(statuses):
        book.write_values(USERS, first, users.status_col, [[cell_text(t)] for t in texts])


def _runs(cells: Mapping[int, Cell]) -> list[tuple[int, list[Cell]]]:
    """Consecutive row numbers grouped: ``{2: a, 3: b, 7: c}`` -> ``[(2, [a, b]), (7, [c])]``."""
    runs: list[tuple[int, list[Cell]]] = []
    for number in sorted(cells):
        if runs and runs[-1][0] + len(runs[-1][1]) == number:
            runs[-1][1].append(cells[number])
        else:
            runs.append((number, [cells[number]]))
    return runs


def clear_cells(book: SheetBook, users: UsersSheet, cells: Mapping[int, Sequence[str]]) -> None:
    """Blank the named columns' cells of the given sheet rows (a password the platform or the upload file has taken)."""
    positions = users.table.positions
    for number, names in sorted(cells.items()):
        for name in names:
            if name in positions:
                book.write_values(USERS, number, positions[name], [[None]])


def set_row_ids(book: SheetBook, users: UsersSheet, ids: Mapping[int, str]) -> None:
    """Give rows (new users just created) their row ids."""
    if users.row_id_col is None or not ids:
        return
    for number, rid in sorted(ids.items()):
        book.write_values(USERS, number, users.row_id_col, [[rid]])


# --- the snapshot ------------------------------------------------------------------------------


class SnapshotDamaged(DataError):
    """The snapshot sheet does not match its checks: edited, truncated or re-ordered outside rosterbook."""

    def __init__(self, message: str, rows: Sequence[int]) -> None:
        super().__init__(message)
        self.rows = tuple(rows)


@dataclass
class SnapshotSheet:
    """The snapshot as read, and where each entry sits on its sheet (so a sync rewrites only the rows it changes)."""

    rows: dict[str, SnapshotRow] = field(default_factory=dict)
    """Entries by row id."""
    at: dict[str, int] = field(default_factory=dict)
    """Row id -> sheet row number."""
    last: int = 1
    """The last sheet row in use (1: only the header)."""
    checks: dict[int, str] = field(default_factory=dict)
    """Sheet row number -> that entry's check."""
    width: dict[int, int] = field(default_factory=dict)
    """Sheet row number -> cells the entry uses (row id and check included)."""
    total: int = 0
    """The sum the header's digest is made of."""
    legacy: bool = False
    """Written before snapshot checks: rewritten whole at the next write."""
    damaged: tuple[int, ...] = ()
    """Sheet rows whose entry does not match its check (read leniently; their entries are left out)."""
    problem: str | None = None
    """What is wrong with the sheet, when read leniently."""
    texts: Collection[str | None] | None = None
    """Texts among which every value of ``rows`` is, as read (the reader's memo, which holds other texts too: a quick
    look over them rules out odd values); None when not known."""
    format: str = SNAPSHOT_FORMAT
    """The snapshot sheet's format as read (format 2 has no updates)."""
    updates: dict[str, SnapshotRow | None] = field(default_factory=dict)
    """The updates sheet's entries by row id (None: removed); ``rows`` has them applied already."""
    updates_digest: str | None = None
    """The updates sheet's digest; None when there are no updates."""
    stale: bool = False
    """The updates sheet holds lines that do not apply (another snapshot's, or damaged ones read leniently): cleared at
    the next write."""
    hashed: str | None = None
    """Format 3: the digest of the snapshot sheet's content (``_content``), as found when read or written."""

    @property
    def base_digest(self) -> str:
        """The snapshot sheet's own digest: how many entries, and (format 3) a hash of every line with its row number,
        or (format 2) a sum over (row, check); any move or edit changes it."""
        if self.format == SNAPSHOT_FORMAT and self.hashed is not None:
            return self.hashed
        return _digest(len(self.checks), self.total)

    @property
    def digest(self) -> str:
        """The digest of what the snapshot holds: the sheet's own, and the updates' when there are any."""
        return self.base_digest if self.updates_digest is None else f"{self.base_digest}+{self.updates_digest}"


def _digest(count: int, total: int) -> str:
    return f"{count}:{total % (1 << 128):032x}"


def _content(number: int, row_id: str | None, check: str | None, text: str) -> bytes:
    """One snapshot line as the format 3 digest hashes it: its row number, row id, check and entry."""
    return f"{number}\x1f{row_id}\x1f{check}\x1f{text}\x1e".encode("utf-8", "surrogatepass")


def _content_digest(count: int, content: Any) -> str:
    """The format 3 digest: how many entries, and the hash of their lines (an empty sheet's is format 2's)."""
    return f"{count}:{content.hexdigest()[:32]}" if count else _digest(0, 0)


_ESCAPED = re.compile("[\x7f-\x9f\ud800-\udfff\ufffe\uffff\U00010000-\U0010ffff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code > 0xFFFF:  # a JSON surrogate pair: every character of the entry is then one UTF-16 unit
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def cell_json(data: Mapping[str, Any]) -> str:
    """JSON text any cell keeps exactly: control characters, lone surrogates and characters outside the Basic
    Multilingual Plane are escaped (json.loads gives back the very same values)."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return _ESCAPED.sub(_escape, text) if not text.isascii() else text


def encode_entry(snap: SnapshotRow) -> str:
    """One snapshot entry as JSON text any cell keeps exactly (``cell_json``)."""
    data: dict[str, Any] = {"key": snap.key, "id": snap.resource_id, "version": snap.version, "values": dict(snap.values)}
    if snap.seen:
        data["seen"] = dict(snap.seen)
    return cell_json(data)


def decode_entry(row_id: str, text: str, strings: dict[str, str] | None = None) -> SnapshotRow:
    """The entry ``encode_entry`` wrote; ValueError when it is not one.

    ``strings``: a memo shared by every entry read (and the cells read with them): each repeated value is then
    one object, not one per entry (orjson shares the column names itself).
    """
    data = _loads(text)
    if data.__class__ is not dict:
        raise ValueError("not a snapshot entry")
    key, resource_id, version = data.get("key"), data.get("id"), data.get("version")
    if key.__class__ is not str or resource_id.__class__ not in _TEXT_TYPES or version.__class__ not in _TEXT_TYPES:
        raise ValueError("not a snapshot entry")
    values, seen = data.get("values"), data.get("seen", {})
    if values.__class__ is not dict or seen.__class__ is not dict:
        raise ValueError("values must be a JSON object of texts")
    # The parser makes exact str objects: one C-speed pass over the types checks every value is text (or null).
    if not _TEXT_TYPES.issuperset(map(type, values.values())) or (seen and not _TEXT_TYPES.issuperset(map(type, seen.values()))):
        raise ValueError("values must be a JSON object of texts")
    if strings is not None:
        share = strings.setdefault
        texts = list(values.values())
        values = dict(zip(values, map(share, texts, texts), strict=True))
        key = share(key, key)
    return new_snapshot_row(row_id, key, resource_id, version, values, seen)


_TEXT_TYPES = frozenset({str, type(None)})


def _loads(text: str) -> Any:
    """JSON text parsed by orjson (three times json's speed on 50,000 entries); what orjson refuses but json reads
    (a lone surrogate's escape, which ``cell_json`` writes) goes to json, which raises ValueError if it cannot."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _row_check(row_id: str, text: str) -> str:
    return hashlib.sha256(f"{row_id}\x00{text}".encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _place(number: int, check: str) -> int:
    return int(hashlib.sha256(f"{number}:{check}".encode()).hexdigest()[:32], 16)


def _line_cells(row_id: str, text: str) -> list[Cell]:
    """A snapshot or updates line: the row id, its check, and the entry's text over as many cells as it needs."""
    return [row_id, _row_check(row_id, text), *(text[i : i + SNAPSHOT_CHUNK] for i in range(0, len(text), SNAPSHOT_CHUNK))]


def _entry_cells(snap: SnapshotRow) -> list[Cell]:
    return _line_cells(snap.row_id, encode_entry(snap))


_REMOVED = "null"
"""An updates line's entry for a user removed from the snapshot."""


def _update_cells(row_id: str, snap: SnapshotRow | None) -> list[Cell]:
    return _entry_cells(snap) if snap is not None else _line_cells(row_id, _REMOVED)


def read_snapshot(book: SheetBook) -> dict[str, SnapshotRow]:
    """The very hidden snapshot, by row id; empty for a workbook never exported."""
    return read_snapshot_sheet(book).rows


def _line(cells: Sequence[Cell]) -> tuple[str | None, str | None, list[str]]:
    """A snapshot or updates line's row id (column A), check and pieces of its entry (``line_chunks``)."""
    rid = cells[0] if cells and isinstance(cells[0], str) else to_text(cells[0]) if cells else None
    return (rid, *line_chunks(cells))


def line_chunks(cells: Sequence[Cell]) -> tuple[str | None, list[str]]:
    """A snapshot or history line's check (column B) and the pieces of its JSON text (C, D, ... up to the first blank)."""
    check = to_text(cells[1]) if len(cells) > 1 else None
    chunks: list[str] = []
    for cell in cells[2:]:
        if cell is None or cell == "":
            break
        chunks.append(cell if isinstance(cell, str) else str(cell))
    return check, chunks

def read_snapshot_sheet(book: SheetBook, *, lenient: bool = False) -> SnapshotSheet:
    """The very hidden snapshot with its row positions; empty for a workbook never exported.

    Each entry is checked, and the whole sheet against the header's digest: an entry edited,
    cut short, moved or deleted outside rosterbook raises ``SnapshotDamaged`` (naming the sheet
    and what to do), unless ``lenient``, which keeps the intact entries and says what is wrong.
    """
    if SNAPSHOT not in book.sheet_names():
        return SnapshotSheet()
    rows = iter(_rows_of(book, SNAPSHOT))
    first = next(rows, [])
    if _blank(first) and all(_blank(cells) for cells in rows):
        return SnapshotSheet()
    if tuple(to_text(c) for c in first[: len(SNAPSHOT_HEADERS)]) == SNAPSHOT_HEADERS:
        return _read_legacy_snapshot(trim_grid([list(first), *(list(cells) for cells in rows)]))
    head = [to_text(c) for c in first[:5]] + [None] * 5
    if tuple(head[:2]) == SNAPSHOT_HEAD[:2] and head[3] not in SNAPSHOT_FORMATS and _NEWER.fullmatch(head[3] or ""):
        raise DataError(f"{SNAPSHOT}!D1: the export snapshot was written by a newer rosterbook ({head[3]}; this one reads "
                        f"{' and '.join(SNAPSHOT_FORMATS)}), so it cannot be read here; nothing was sent. Update rosterbook.")
    if tuple(head[:2]) != SNAPSHOT_HEAD[:2] or head[3] not in SNAPSHOT_FORMATS:
        raise SnapshotDamaged(f"{SNAPSHOT}!A1: the snapshot sheet's header was changed, so it cannot be trusted; nothing was sent. " + _REMEDY, [1])
    strings = getattr(book, "strings", None)  # the reader's memo: the Users sheet, read next, repeats these values
    strings = strings if isinstance(strings, dict) else {}
    sheet = SnapshotSheet(format=str(head[3]))
    damaged: list[int] = []
    # Format 3: one hash over every line, checked against the header, vouches for the whole sheet (a tenth of the cost
    # of checking 50,000 lines one by one). Only when it does not match are the lines checked one by one, to say which.
    if sheet.format != SNAPSHOT_FORMAT or _entries(rows, sheet, strings, None) is None or head[4] != sheet.base_digest:
        if sheet.format == SNAPSHOT_FORMAT:
            rows = iter(_rows_of(book, SNAPSHOT))
            next(rows, None)
            sheet = SnapshotSheet(format=sheet.format)
        _entries(rows, sheet, strings, damaged)
    problem = None
    if damaged:
        problem = _unmatched(SNAPSHOT, damaged, "entry", "entries")
    elif head[4] != sheet.base_digest:
        problem = "its entries are not the ones rosterbook wrote there (rows deleted, added or moved)"
    if sheet.format == SNAPSHOT_FORMAT:  # (after a damaged entry, the digest the updates were written for no longer matches)
        found = _read_updates(book, sheet, strings, lenient or problem is not None)
        problem = problem or found
    if problem is not None and not lenient:
        raise SnapshotDamaged(f"{SNAPSHOT}: the export snapshot was edited, truncated or re-ordered outside rosterbook: {problem}. "
                              f"It can no longer tell your edits from what was exported, so nothing was sent. {_REMEDY}", damaged)
    sheet.damaged, sheet.problem, sheet.texts = tuple(damaged), problem, strings
    return sheet


_NEWER = re.compile(r"rosterbook-snapshot-\d+")


def _unmatched(sheet: str, numbers: Sequence[int], one: str, many: str) -> str:
    """What is wrong with lines that do not match their check (the first five named)."""
    shown = ", ".join(f"{sheet}!A{n}" for n in numbers[:5]) + (" ..." if len(numbers) > 5 else "")
    if len(numbers) == 1:
        return f"1 {one} does not match its check ({shown})"
    return f"{len(numbers)} {many} do not match their check ({shown})"


def _entries(rows: Iterable[Sequence[Cell]], sheet: SnapshotSheet, strings: dict[str, str], damaged: list[int] | None) -> SnapshotSheet | None:
    """Read the snapshot's lines into ``sheet``. ``damaged`` None: every line must read as an entry (None returned
    at the first that does not; nothing is said of the checks, which the digest covers); else each line's check is
    checked, and the numbers of the lines that fail go to ``damaged``."""
    hashed = hashlib.sha256() if sheet.format == SNAPSHOT_FORMAT else None
    for number, cells in enumerate(rows, start=2):
        rid, check, chunks = _line(cells)
        if rid is None and check is None and not chunks:
            if not _blank(cells):
                sheet.last = number
            continue
        sheet.last = number
        text = "".join(chunks)
        if hashed is not None:
            hashed.update(_content(number, rid, check, text))
        try:
            if rid is None or rid in sheet.rows or (damaged is not None and check != _row_check(rid, text)):
                raise ValueError(rid)
            snap = decode_entry(rid, text, strings)
        except ValueError:
            if damaged is None:
                return None
            damaged.append(number)
            continue
        sheet.rows[rid] = snap
        sheet.at[rid] = number
        sheet.checks[number] = str(check)
        sheet.width[number] = 2 + len(chunks)
        if hashed is None:
            sheet.total += _place(number, str(check))
    if hashed is not None:
        sheet.hashed = _content_digest(len(sheet.checks), hashed)
    return sheet


def _read_updates(book: SheetBook, sheet: SnapshotSheet, strings: dict[str, str], lenient: bool) -> str | None:
    """Apply the updates sheet to ``sheet`` (its rows, updates and digest); what is wrong with it, or None.

    Updates written for another snapshot (its digest in F1 is not this one's: an older rosterbook exported again over
    the workbook) are left out and cleared at the next write. Read leniently, a damaged line's user is left out of the
    snapshot altogether (the snapshot's own entry for it may be older), like a damaged entry of the snapshot's.
    """
    if SNAPSHOT_UPDATES not in book.sheet_names():
        return None
    lines = iter(_rows_of(book, SNAPSHOT_UPDATES))
    first = next(lines, [])
    if _blank(first) and all(_blank(cells) for cells in lines):
        return None
    head = [to_text(c) for c in first[:6]] + [None] * 6
    if tuple(head[:2]) != UPDATES_HEAD[:2] or head[3] != UPDATES_FORMAT:
        sheet.stale = True
        return f"the header of {SNAPSHOT_UPDATES!r} was changed"
    if head[5] != sheet.base_digest:
        sheet.stale = True
        return None
    updates: dict[str, SnapshotRow | None] = {}
    damaged: list[int] = []
    left_out: set[str] = set()
    total = count = 0
    for number, cells in enumerate(lines, start=2):
        rid, check, chunks = _line(cells)
        if rid is None and check is None and not chunks:
            continue
        text = "".join(chunks)
        try:
            if rid is None or check != _row_check(rid, text) or rid in updates:
                raise ValueError(rid)
            updates[rid] = None if text == _REMOVED else decode_entry(rid, text, strings)
        except ValueError:
            damaged.append(number)
            if rid is not None:
                left_out.add(rid)
            continue
        count += 1
        total += _place(number, str(check))
    problem = None
    if damaged:
        problem = _unmatched(SNAPSHOT_UPDATES, damaged, "update", "updates")
    elif head[4] != _digest(count, total):
        problem = f"the lines of {SNAPSHOT_UPDATES!r} are not the ones rosterbook wrote there (rows deleted, added or moved)"
    if problem is not None and not lenient:
        return problem
    rows = sheet.rows
    for rid, snap in updates.items():
        if snap is None:
            rows.pop(rid, None)
        else:
            rows[rid] = snap
    for rid in left_out:
        rows.pop(rid, None)
    sheet.updates, sheet.updates_digest = updates, head[4]
    sheet.stale = problem is not None  # read leniently: the next write puts the snapshot whole, without the damaged lines
    return problem


def _rows_of(book: SheetBook, sheet: str) -> Iterable[Sequence[Cell]]:
    """A sheet's rows, one at a time where the adapter can (``FastBook.iter_values``): the snapshot's entries are parsed
    as they are read, so its cells (long JSON texts) and the parsed entries are never all held at once."""
    stream = getattr(book, "iter_values", None)
    return stream(sheet) if stream is not None else book.values(sheet)


def _blank(cells: Sequence[Cell]) -> bool:
    return all(c is None or c == "" for c in cells)


_REMEDY = ("Export again: `rosterbook export BOOK --keep-edits` refreshes the snapshot from the platform and keeps the sheet's "
           "unsynced edits (those of rows whose entry is damaged only with --force); `--force` alone discards them.")


def _read_legacy_snapshot(grid: Sequence[Sequence[Cell]]) -> SnapshotSheet:
    """A snapshot written before checks: one JSON cell of values per user."""
    sheet = SnapshotSheet(last=max(len(grid), 1), legacy=True)
    out = sheet.rows
    for number, cells in enumerate(grid[1:], start=2):
        cells = list(cells) + [None] * (5 - len(cells))
        rid, key, resource_id, version, raw = (to_text(c) for c in cells[:5])
        if rid is None and key is None and raw is None:
            continue
        if rid is None or key is None:
            raise DataError(f"{SNAPSHOT}!A{number}: snapshot row without a row id or key: the snapshot was edited. Export again.")
        try:
            values = json.loads(raw or "{}")
        except json.JSONDecodeError as exc:
            raise DataError(f"{SNAPSHOT}!E{number}: snapshot values are not valid JSON ({exc.msg}): the snapshot was edited. Export again.") from None
        if not isinstance(values, dict) or not all(isinstance(v, str | None) for v in values.values()):
            raise DataError(f"{SNAPSHOT}!E{number}: snapshot values must be a JSON object of texts: the snapshot was edited. Export again.")
        if rid in out:
            raise DataError(f"{SNAPSHOT}!A{number}: row id {rid!r} appears twice in the snapshot: the snapshot was edited. Export again.")
        out[rid] = SnapshotRow(rid, key, resource_id, version, values)
        sheet.at[rid] = number
    return sheet


def write_snapshot(book: SheetBook, rows: Iterable[SnapshotRow]) -> SnapshotSheet:
    """Replace the snapshot (sheet created very hidden when missing); returns it as a SnapshotSheet."""
    book.ensure_sheet(SNAPSHOT, "veryHidden")
    sheet = SnapshotSheet()
    block: list[list[Cell]] = [[*SNAPSHOT_HEAD, SNAPSHOT_FORMAT, None]]
    hashed = hashlib.sha256()
    for number, snap in enumerate(rows, start=2):
        text = encode_entry(snap)
        cells = _line_cells(snap.row_id, text)
        block.append(cells)
        check = str(cells[1])
        hashed.update(_content(number, snap.row_id, check, text))
        sheet.rows[snap.row_id] = snap
        sheet.at[snap.row_id] = sheet.last = number
        sheet.checks[number] = check
        sheet.width[number] = len(cells)
    sheet.hashed = _content_digest(len(sheet.checks), hashed)
    block[0][4] = sheet.base_digest
    book.clear(SNAPSHOT, 1)
    book.write_values(SNAPSHOT, 1, 1, block)
    if SNAPSHOT_UPDATES in book.sheet_names():  # merged into the entries above
        book.clear(SNAPSHOT_UPDATES, 1)
    return sheet


def _write_updates(book: SheetBook, sheet: SnapshotSheet) -> None:
    """Write the updates sheet whole from ``sheet.updates`` (sheet created very hidden when missing)."""
    book.ensure_sheet(SNAPSHOT_UPDATES, "veryHidden")
    block: list[list[Cell]] = [[*UPDATES_HEAD, UPDATES_FORMAT, None, sheet.base_digest]]
    total = 0
    for number, (rid, snap) in enumerate(sheet.updates.items(), start=2):
        cells = _update_cells(rid, snap)
        block.append(cells)
        total += _place(number, str(cells[1]))
    sheet.updates_digest = block[0][4] = _digest(len(sheet.updates), total)
    book.clear(SNAPSHOT_UPDATES, 1)
    book.write_values(SNAPSHOT_UPDATES, 1, 1, block)
    sheet.stale = False


def update_snapshot(book: SheetBook, changed: Mapping[str, SnapshotRow], removed: Iterable[str] = (), *, sheet: SnapshotSheet | None = None) -> None:
    """Record the entries that changed (and those removed) without rewriting what did not change, where that pays.

    A sync of a few users in a 50,000-user workbook must not rewrite 50,000 snapshot lines: they go to the updates
    sheet (``UPDATES_FROM``, ``UPDATES_SHARE``). A small snapshot, or one whose updates have grown, is written whole
    (updates merged in); a format 2 sheet has only its changed lines rewritten in place, and its digest. ``sheet``
    is the snapshot as read (kept up to date here); without it the sheet is read again.
    """
    gone = set(removed).difference(changed)  # a user removed and changed again (re-based) is changed
    if not changed and not gone:
        return
    if sheet is None:
        sheet = read_snapshot_sheet(book)
    sheet.texts = None  # entries not read from the sheet join it
    whole = SNAPSHOT not in book.sheet_names() or sheet.legacy or sheet.stale
    updates = dict(sheet.updates)
    for rid in gone:
        if rid in sheet.at:
            updates[rid] = None
        else:
            updates.pop(rid, None)  # added by an update, never on the snapshot sheet
    updates.update(changed)
    base = len(sheet.checks)
    if not whole and sheet.format == SNAPSHOT_FORMAT and base >= UPDATES_FROM and len(updates) * UPDATES_SHARE <= base:
        # The snapshot sheet is copied as it is; only the small updates sheet is written.
        for rid in gone:
            sheet.rows.pop(rid, None)
        sheet.rows.update(changed)
        sheet.updates = updates
        _write_updates(book, sheet)
        return
    if whole or sheet.updates or sheet.format == SNAPSHOT_FORMAT:
        # No sheet yet, a legacy or stale one, grown updates, or a small snapshot: written whole, updates merged in.
        # (Only format 2 sheets, written before the updates sheet, are rewritten in place: their digest is a sum.)
        rows = {rid: snap for rid, snap in sheet.rows.items() if rid not in gone}
        rows.update(changed)
        fresh = write_snapshot(book, rows.values())
        sheet.__dict__.update(fresh.__dict__)
        return
    block: dict[int, list[Cell]] = {}
    for rid, snap in changed.items():
        number = sheet.at.get(rid)
        if number is None:
            sheet.last += 1
            number = sheet.at[rid] = sheet.last
        cells = _entry_cells(snap)
        _unplace(sheet, number)
        block[number] = cells + [None] * max(0, sheet.width.get(number, 0) - len(cells))
        sheet.checks[number], sheet.width[number] = str(cells[1]), len(cells)
        sheet.total += _place(number, str(cells[1]))
        sheet.rows[rid] = snap
    for rid in gone:
        if rid in sheet.at:
            number = sheet.at.pop(rid)
            block[number] = [None] * max(2, sheet.width.pop(number, 2))
            _unplace(sheet, number)
            sheet.rows.pop(rid, None)
    for number, cells in sorted(block.items()):
        book.write_values(SNAPSHOT, number, 1, [cells])
    book.write_values(SNAPSHOT, 1, 5, [[sheet.base_digest]])


def _unplace(sheet: SnapshotSheet, number: int) -> None:
    check = sheet.checks.pop(number, None)
    if check is not None:
        sheet.total -= _place(number, check)


# --- the export's file format ---------------------------------------------------------------------

_FORMAT_HEADER = "file format of the platform's export (JSON, do not edit)"


def write_json_sheet(book: SheetBook, sheet: str, header: str, text: str | None) -> None:
    """Keep a JSON text in a very hidden sheet, in cells of 30,000 characters (a cell holds 32,767); None clears it."""
    if text is None:
        if sheet in book.sheet_names():
            book.clear(sheet, 1)
        return
    book.ensure_sheet(sheet, "veryHidden")
    chunks: list[list[Cell]] = [[header]]
    chunks += [[text[i : i + 30000]] for i in range(0, len(text), 30000)]
    book.clear(sheet, 1)
    book.write_values(sheet, 1, 1, chunks)


def read_json_sheet(book: SheetBook, sheet: str) -> str | None:
    """The JSON text ``write_json_sheet`` kept, joined as stored (a chunk may begin or end with a space); None when there is none."""
    if sheet not in book.sheet_names():
        return None
    text = "".join(row[0] for row in book.values(sheet)[1:] if row and isinstance(row[0], str))
    return text if text.strip() else None


def write_file_format(book: SheetBook, fmt: FileFormat | None) -> None:
    """Remember how the platform's export was written (None: forget it, e.g. a SCIM export)."""
    write_json_sheet(book, FILE_FORMAT, _FORMAT_HEADER, fmt.to_json() if fmt is not None else None)


def read_file_format(book: SheetBook) -> FileFormat | None:
    """How the platform's export was written; None for a workbook that saw no CSV export (made from the template)."""
    text = read_json_sheet(book, FILE_FORMAT)
    if text is None:
        return None
    try:
        return FileFormat.from_json(text)
    except ValueError:
        raise DataError(f"{FILE_FORMAT}: the remembered format of the platform's export was edited and is no longer valid. Export again.") from None


# --- Lists ---------------------------------------------------------------------------------------


def dialect_lists(dialect: Dialect, headers: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Allowed values the dialect itself knows: status words and fixed choices, per present column."""
    present = None if headers is None else {c.name for h in headers if (c := find_column(dialect, h))}
    out: dict[str, list[str]] = {}
    for column in dialect.columns:
        if present is not None and column.name not in present:
            continue
        if column.type == "status":
            out[column.name] = [w.word for w in dialect.status_words]
        elif column.choices:
            out[column.name] = list(column.choices)
    return out


def write_lists(book: SheetBook, lists: Mapping[str, Sequence[str]]) -> None:
    """Replace the Lists sheet: one column per list, the column name in row 1."""
    book.ensure_sheet(LISTS)
    book.clear(LISTS, 1)
    names = list(lists)
    if not names:
        return
    depth = max((len(v) for v in lists.values()), default=0)
    block: list[list[Cell]] = [list(names)]
    for i in range(depth):
        block.append([cell_form(lists[n][i]) if i < len(lists[n]) else None for n in names])
    book.write_values(LISTS, 1, 1, block)


def read_lists(book: SheetBook) -> dict[str, list[str]]:
    """The Lists sheet: column name -> allowed values (blank cells skipped)."""
    if LISTS not in book.sheet_names():
        return {}
    grid = book.values(LISTS)
    if not grid:
        return {}
    out: dict[str, list[str]] = {}
    for index, head in enumerate(grid[0]):
        name = to_text(head)
        if name is None:
            continue
        items = [t for row in grid[1:] if index < len(row) and (t := to_text(row[index])) is not None]
        out[name] = items
    return out


def list_range(lists: Mapping[str, Sequence[str]], name: str) -> str | None:
    """The absolute range of a list on the Lists sheet (``Lists!$B$2:$B$9``), for drop-downs."""
    names = list(lists)
    if name not in names or not lists[name]:
        return None
    letter = column_letter(names.index(name) + 1)
    return f"'{LISTS}'!${letter}$2:${letter}${len(lists[name]) + 1}"


# --- Preview and Sync log ----------------------------------------------------------------------


def write_preview(book: SheetBook, plan: Mapping[str, Any]) -> None:
    """Write a plan's JSON form (``Plan.to_dict()``) to the Preview sheet, replacing the last one."""
    book.ensure_sheet(PREVIEW)
    block: list[list[Cell]] = [["Preview", "(what Sync would change; nothing has been sent)"], []]
    if plan.get("undo_of"):
        # The reverse plan of an undo: the same sheet, saying which sync it puts back.
        block[0] = ["Preview", f"(what undoing sync {plan['undo_of']} would change; nothing has been sent)"]
        notes = [str(n) for n in plan.get("cannot_undo") or ()]
        block.append(["Undo of sync", str(plan["undo_of"])])
        block.extend([["Cannot be undone", note[:32000]] for note in notes])
        block.append([])
    counts = plan.get("counts", {})
    block.append(["Action", "Rows"])
    for name in ("create", "update", "rename", "archive", "deactivate", "conflict", "error", "unchanged"):
        if name in counts:
            block.append([name, int(counts[name])])
    invitations = plan.get("invitations") or {}
    if invitations:
        block.append([])
        block.append(["Invitation emails", str(invitations.get("count", 0))])
    seats = plan.get("seats") or {}
    if seats and seats.get("before") is None:
        block.append(["Seats", f"unknown: no exported users in this workbook; export first ({int(seats.get('change') or 0):+d} with this sync)"])
    elif seats:
        block.append(["Seats", f"{seats.get('before')} -> {seats.get('after')}"])
        if seats.get("subscription") is not None:
            block.append(["Subscription seats", str(seats["subscription"])])
            block.append(["Extra seats billed", str(seats.get("extra_billed", 0))])
    guard = plan.get("guard") or {}
    if guard.get("tripped"):
        block.append([])
        confirmed = "confirmed" if guard.get("confirmed") else "NOT confirmed: Sync sends nothing until the deletions are confirmed"
        block.append(["Deletion guard", f"{guard.get('deactivations')} users lose access, over the threshold {guard.get('threshold')}: {confirmed}"])
    losing = list(guard.get("losing_access") or ())
    if losing:
        # Archived, deactivated or set to a status that cannot log in: named, so nobody loses access unseen.
        names = "; ".join(str(k) for k in losing[:500]) + (f"; ... and {len(losing) - 500} more" if len(losing) > 500 else "")
        block.append(["Losing access", len(losing), names[:32000]])
    guidance = plan.get("upload_guidance") or []
    if guidance:
        block.append([])
        block.append(["When you upload the file", "(choose this on the platform's upload screen)"])
        block.extend([[a.get("choice"), a.get("advice")] for a in guidance])
    escaped = plan.get("escaped_cells") or []
    if escaped:
        block.append([])
        block.append(["Cells written with a leading '", f"{len(escaped)} (so that a spreadsheet cannot run them; the platform stores them so)"])
        block.append(["Row", "Key", "Column", "Written as"])
        block.extend([[_cell(e.get("row")), _cell(e.get("key")), _cell(e.get("column")), _cell(e.get("value"))] for e in escaped])
    block.append([])
    block.append(["Row", "Key", "Action", "Column", "From", "To", "Note"])
    for change in plan.get("changes", []):
        if change.get("action") == "unchanged" and not change.get("notes"):
            continue
        row = change.get("row")
        key = change.get("key")
        note = _change_note(change)
        fields_ = change.get("fields") or {}
        if not fields_:
            block.append([_cell(row), _cell(key), change.get("action"), None, None, None, note])
        both = change.get("conflicts") or {}
        for name, diff in sorted(fields_.items()):
            field_note = note
            if name in both:
                # A conflict reads exported (From) -> now on the platform -> in the sheet (To).
                platform = both[name].get("platform")
                field_note = f"now on the platform: {'(blank)' if platform is None else quote(platform)}; " + (note or "")
            block.append([_cell(row), _cell(key), change.get("action"), name, _cell(diff.get("from")), _cell(diff.get("to")), field_note])
        for name, conflict in sorted(both.items()):
            if name not in fields_:  # the key, renamed on the platform only
                block.append([_cell(row), _cell(key), change.get("action"), name, _cell(conflict.get("exported")), _cell(conflict.get("sheet")),
                              f"now on the platform: {quote(conflict.get('platform') or '')}; " + (note or "")])
    book.clear(PREVIEW, 1)
    book.write_values(PREVIEW, 1, 1, block)


def _change_note(change: Mapping[str, Any]) -> str | None:
    """What the preview says beside a change: its notes, the renamed key, an invitation, its problems."""
    parts = [str(n) for n in change.get("notes") or ()]
    if change.get("old_key"):
        parts.append(f"renamed from {change['old_key']}")
    if change.get("invite"):
        parts.append("gets an invitation email")
    for problem in change.get("problems") or ():
        where = f"{problem.get('cell')} " if problem.get("cell") else ""
        parts.append(f"{where}{problem.get('message')}")
    parts += [str(change[k]) for k in ("message", "reason") if change.get(k)]
    return scrub("; ".join(parts))[:32000] or None


def _cell(value: Any) -> Cell:
    if isinstance(value, str):
        return cell_form(value)
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class LogEntry:
    """One row outcome of a sync, as the Sync log records it."""

    time: str
    row: int | None
    key: str
    action: str
    outcome: str
    """``ok``, ``failed``, ``skipped`` or ``written`` (CSV upload file)."""
    resource_id: str | None = None
    version: str | None = None
    http_status: int | None = None
    message: str = ""
    sync_id: str | None = None
    """The sync this line belongs to (``rosterbook undo --sync ID`` names it)."""

    def cells(self) -> list[Cell]:
        # Key, id, version and message come from the platform: in the form a cell keeps (a message scrubbed of credentials).
        message = scrub(self.message) if self.message else None
        return [self.time, str(self.row) if self.row else None, cell_form(self.key), self.action, self.outcome,
                cell_text(self.resource_id), cell_text(self.version), str(self.http_status) if self.http_status else None,
                cell_form(message) if message else None, self.sync_id]


@dataclass
class LogCursor:
    """Where the next Sync log entries go (read once per command, then kept up to date)."""

    next_row: int


def sync_log_cursor(book: SheetBook) -> LogCursor:
    """The Sync log's first free row below its last entry (header written when missing)."""
    book.ensure_sheet(SYNC_LOG)
    grid = book.values(SYNC_LOG)
    if not grid or tuple(to_text(c) for c in grid[0][: len(SYNC_LOG_HEADERS)]) != SYNC_LOG_HEADERS:
        book.write_values(SYNC_LOG, 1, 1, [list(SYNC_LOG_HEADERS)])
        grid = grid or [list(SYNC_LOG_HEADERS)]
    last = len(grid)
    while last > 1 and all(to_text(c) is None for c in grid[last - 1]):
        last -= 1
    return LogCursor(last + 1)


def append_sync_log(book: SheetBook, entries: Sequence[LogEntry], *, cursor: LogCursor | None = None) -> None:
    """Append entries below the last line of the Sync log (header written when missing).

    ``cursor`` (from ``sync_log_cursor``) saves reading the log again on every batch of a long sync.
    """
    if cursor is None:
        cursor = sync_log_cursor(book)
    if entries:
        book.write_values(SYNC_LOG, cursor.next_row, 1, [e.cells() for e in entries])
        cursor.next_row += len(entries)


# --- the whole layout ---------------------------------------------------------------------------


def ensure_layout(book: SheetBook) -> None:
    """Create any missing sheet of the layout (the snapshot and its updates very hidden)."""
    names = set(book.sheet_names())
    for sheet in SHEET_ORDER:
        if sheet not in names:
            book.ensure_sheet(sheet, "veryHidden" if sheet == SNAPSHOT else "visible")
    for sheet in (SNAPSHOT, SNAPSHOT_UPDATES):
        if sheet in book.sheet_names() and book.visibility(sheet) != "veryHidden":
            book.ensure_sheet(sheet, "veryHidden")
    grid = book.values(SYNC_LOG)
    if not grid:
        book.write_values(SYNC_LOG, 1, 1, [list(SYNC_LOG_HEADERS)])


# --- the dress: what a sheet looks like besides its values ---------------------------------------------
#
# One adapter-neutral description, built from the dialect and the header row, that every adapter
# applies: ``rosterbook.xlsx.OpenpyxlBook.dress`` writes it into a file, ``addin.sheet.XlwingsBook.dress``
# into the workbook open in Excel. Export and the templates use it, so the ribbon's Export and the
# CLI's give the same workbook.

MAX_ROW = 1048576
"""Excel's last row: drop-downs and highlights cover a column's cells from row 2 down to it."""
HEADER_FILL = "1F4E78"
HEADER_FONT = "FFFFFF"
ERROR_FILL = "FFC7CE"
ERROR_FONT = "9C0006"
WARNING_FILL = "FFEB9C"
TABLE_STYLE = "TableStyleMedium2"
MAX_COLUMN = 16384
PROBLEM_HIGHLIGHT = f'ISNUMBER(SEARCH(CHAR(10)&ADDRESS(ROW(),COLUMN(),4)&" ",CHAR(10)&INDEX($1:${MAX_ROW},ROW(),MATCH("{PROBLEMS}",$1:$1,0))))'
"""A cell is red when an error line of its row's Problems cell starts with its address. The Problems cell is
found by its header, so the highlighting follows it wherever it is (a platform's extra columns move it; a
template made for fewer columns still finds it), and the formula has no relative reference (Excel reads
those relative to the active cell when a conditional format is added through its object model)."""
FREEZE = "B2"
"""The Users sheet's first scrolling cell: the header row and the key column stay in view."""


@dataclass(frozen=True)
class DropDown:
    """A list drop-down on one column's cells, row 2 down."""

    column: int
    source: str
    """The allowed values' range on the Lists sheet (``'Lists'!$A$2:$A$4``)."""
    strict: bool
    """Other values are refused (status words, fixed choices); a list of several values (``Admin; Learner``) is not."""
    title: str
    prompt: str | None
    error: str


@dataclass(frozen=True)
class Highlight:
    """A conditional format on columns ``first_column`` to ``last_column``, row 2 down: ``formula`` (relative
    to the area's top-left cell, without ``=``) true fills the cell."""

    first_column: int
    last_column: int
    formula: str
    fill: str
    font: str


@dataclass(frozen=True)
class SheetDress:
    """How one sheet is dressed: header row style, frozen panes, widths, notes, Table, formats, drop-downs, highlights."""

    sheet: str
    header_columns: int = 0
    """Header cells (row 1, columns 1..n) styled: bold; filled when ``header_fill``."""
    header_fill: str | None = None
    header_font: str | None = None
    freeze: str | None = None
    """The first cell that scrolls (``B2``: row 1 and column A stay in view)."""
    widths: Mapping[int, float] = field(default_factory=dict)
    printable: bool = False
    """Landscape, one page wide, gridlines, the header row repeated on every page."""
    print_area: str | None = None
    table: str | None = None
    """The Excel Table over A1 to (``last_row``, ``last_column``) and its style."""
    table_style: str = TABLE_STYLE
    last_row: int = 2
    last_column: int = 0
    notes: Mapping[int, str] = field(default_factory=dict)
    """Header notes by column: what the column holds and how it is checked."""
    text_columns: tuple[int, ...] = ()
    """Columns formatted as Text; on a sheet with a Table, every other column is General."""
    hidden_columns: tuple[int, ...] = ()
    drop_downs: tuple[DropDown, ...] = ()
    highlights: tuple[Highlight, ...] = ()


def header_help(dialect: Dialect, header: str) -> str:
    """The note on a Users header cell."""
    if header == PROBLEMS:
        return "Written by Check: one line per problem in this row (cell address first). Do not type here."
    if header == SYNC_STATUS:
        return "Written by Sync: what happened to this row last time."
    if header == ROW_ID:
        return "Hidden: ties the row to the exported user. Do not edit."
    column = find_column(dialect, header)
    if column is None:
        return "Custom column: passed through as text."
    parts = [column.help] if column.help else []
    if column.name == dialect.key:
        parts.append(f"Key: identifies the user on {dialect.title}.")
    if column.required == "always":
        parts.append("Required.")
    elif column.required == "new":
        parts.append("Required for new users.")
    if column.clear_word:
        parts.append(f"Blank keeps the current value; write {column.clear_word} to clear it.")
    return " ".join(dict.fromkeys(parts))


def _width(dialect: Dialect, header: str) -> float:
    if header == ROW_ID:
        return 10
    if header == PROBLEMS:
        return 60  # not wrapped: the first line shows, the cell (and the cells' notes) hold them all
    if header == SYNC_STATUS:
        return 28
    column = find_column(dialect, header)
    if column is None:
        return max(12, min(30, len(header) + 4))
    by_type = {"email": 30, "list": 28, "status": 14, "date": 12, "id": 14, "phone": 18, "bool": 10, "choice": 18, "password": 14}
    return max(len(header) + 4, by_type.get(column.type, 18))


def users_dress(dialect: Dialect, headers: Sequence[str], lists: Mapping[str, Sequence[str]], last_row: int) -> SheetDress:
    """The Users sheet's dress for this header row (layout columns included) and these Lists.

    Positions come from the headers as they are: a platform's extra columns move Problems, and the
    highlighting follows it.
    """
    full = list(headers)
    drop_downs: list[DropDown] = []
    for index, header in enumerate(full, start=1):
        column = find_column(dialect, header) if header not in LAYOUT_HEADERS else None
        source = list_range(lists, column.name) if column is not None else None
        if column is None or source is None:
            continue
        drop_downs.append(DropDown(
            index, source, strict=column.type in ("status", "choice") and not column.choices_from_platform, title=column.name[:32],
            prompt=(column.help or "")[:255] or None, error=f"Pick one of the allowed values (see the {LISTS} sheet).",
        ))
    highlights: tuple[Highlight, ...] = ()
    if PROBLEMS in full:
        highlights = (Highlight(1, MAX_COLUMN, PROBLEM_HIGHLIGHT, ERROR_FILL, ERROR_FONT),)
    return SheetDress(
        USERS, header_columns=len(full), header_fill=HEADER_FILL, header_font=HEADER_FONT, freeze=FREEZE,
        widths={i: _width(dialect, h) for i, h in enumerate(full, start=1)}, printable=True,
        table=USERS, last_row=max(2, last_row), last_column=len(full),
        notes={i: text for i, h in enumerate(full, start=1) if (text := header_help(dialect, h))},
        text_columns=tuple(text_columns(dialect, full)),
        hidden_columns=tuple(i for i, h in enumerate(full, start=1) if h == ROW_ID),
        drop_downs=tuple(drop_downs), highlights=highlights,
    )


_SIDE_WIDTHS = {
    SETTINGS: (26, 40, 125),
    SYNC_LOG: (20, 6, 28, 10, 10, 38, 12, 11, 70, 24),
    PREVIEW: (18, 28, 12, 18, 28, 28, 50),
}


def side_dresses(lists: Mapping[str, Sequence[str]], settings_rows: int) -> tuple[SheetDress, ...]:
    """The dress of Preview, Sync log, Settings (``settings_rows`` rows, printed whole) and Lists."""
    out = []
    for sheet, widths in _SIDE_WIDTHS.items():
        growing = sheet != SETTINGS  # the others grow: they print their used range
        frozen = sheet != PREVIEW
        out.append(SheetDress(
            sheet, header_columns=len(widths) if frozen else 0, header_fill=HEADER_FILL if frozen else None,
            header_font=HEADER_FONT if frozen else None, freeze="A2" if frozen else None,
            widths=dict(enumerate(widths, start=1)), printable=True,
            print_area=None if growing else f"A1:{column_letter(len(widths))}{max(1, settings_rows)}",
        ))
    out.append(SheetDress(LISTS, header_columns=len(lists), freeze="A2", widths=dict.fromkeys(range(1, len(lists) + 1), 24.0)))
    return tuple(out)


def workbook_dress(dialect: Dialect, headers: Sequence[str], lists: Mapping[str, Sequence[str]], last_row: int,
                   settings: Settings) -> tuple[SheetDress, ...]:
    """Every sheet's dress after an export (or in a template): Users first, then the side sheets."""
    return (users_dress(dialect, headers, lists, last_row), *side_dresses(lists, settings_rows(settings)))


_DEFAULT_FIRST_SHEET = re.compile(r"^\w+ ?1$")


def stray_sheets(book: SheetBook) -> list[str]:
    """Empty sheets a new workbook comes with (``Sheet1``, ``Feuil1``, ``Tabelle1``...) that an export leaves behind."""
    layout = {*SHEET_ORDER, CHECK}
    return [name for name in book.sheet_names() if name not in layout and _DEFAULT_FIRST_SHEET.match(name) and not book.values(name)]
