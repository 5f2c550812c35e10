"""The sheet as plain data: a header row mapped to a dialect's columns, and rows of raw cells.

Row identity: every exported row carries a hidden ``row_id`` (stable across sorting, filtering
and inserted rows) that links it to its snapshot entry, which holds the platform's resource id
and version (ETag). Rows typed in by the user have no ``row_id``: they are new users.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from rosterbook.core.codecs import Cell, canonical_or_text, split_list, to_text
from rosterbook.core.dialects import Column, Dialect, clean_header
from rosterbook.core.problems import Problem, cell_address, quote_choices

HEADER_ROW = 1


@dataclass(frozen=True, slots=True)
class Row:
    """One data row of the sheet, as read."""

    number: int
    """Sheet row number (the header is row 1, so the first data row is 2)."""
    values: Mapping[str, Cell]
    """Raw cells by dialect column name (columns absent from the sheet are absent here)."""
    row_id: str | None = None
    """Hidden stable id given at export; None for a row typed in by the user."""
    extra: Mapping[str, Cell] = field(default_factory=dict)
    """Cells of headers that are not dialect columns (custom fields), by header text."""

    def text(self, column: str) -> str | None:
        """Canonical text of a column's cell (None when blank or absent)."""
        return to_text(self.values.get(column))


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """What was exported for one user: the baseline a sheet row is compared against."""

    row_id: str
    key: str
    """The key column's value at export."""
    resource_id: str | None
    """The platform's id for the user (SCIM ``id``); None on CSV platforms."""
    version: str | None
    """The platform's version (SCIM ``meta.version`` / ETag) at export; None when not versioned."""
    values: Mapping[str, str | None]
    """Canonical text per dialect column at export."""
    seen: Mapping[str, str | None] = field(default_factory=dict)
    """Fields edited both in the sheet and on the platform, as ``export --keep-edits`` found them on the
    platform (``values`` keeps what was exported for them): a conflict until the sheet settles it."""


@dataclass(frozen=True, slots=True)
class Table:
    """A sheet (or CSV file) read against a dialect."""

    sheet: str
    dialect: Dialect
    headers: tuple[str, ...]
    """Header cells as found, in sheet order."""
    positions: Mapping[str, int]
    """Dialect column name -> 1-based sheet column index, for the columns present."""
    rows: tuple[Row, ...]
    header_problems: tuple[Problem, ...] = ()

    @property
    def present(self) -> tuple[str, ...]:
        """Dialect columns present in the sheet, in dialect order."""
        return tuple(c for c in self.dialect.column_names if c in self.positions)

    def address(self, row: int, column: str) -> str:
        """``E7`` for a row number and a dialect column name present in the sheet."""
        return cell_address(self.positions[column], row)


def map_headers(headers: Sequence[Cell], dialect: Dialect, sheet: str) -> tuple[dict[str, int], dict[str, int], list[Problem]]:
    """Match a header row to the dialect's columns.

    Returns (dialect column -> 1-based index, extra header -> index, problems). Problems:
    duplicated headers, unknown headers (unless the dialect passes custom fields through),
    missing key column, missing always-required columns.
    """
    positions: dict[str, int] = {}
    extras: dict[str, int] = {}
    problems: list[Problem] = []
    for index, raw in enumerate(headers, start=1):
        header = to_text(raw)
        address = cell_address(index, HEADER_ROW)
        if header is None:
            continue
        header = clean_header(header) or ""
        column = dialect.find_column(header)
        if column is None:
            if dialect.extra_columns == "custom":
                if header in extras:
                    problems.append(_header_problem(sheet, address, header, "duplicate-header", f"{header!r} appears twice in the header row (first in {cell_address(extras[header], HEADER_ROW)}).", header))
                else:
                    extras[header] = index
                continue
            problems.append(
                _header_problem(
                    sheet, address, header, "unknown-header",
                    f"{header!r} is not a {dialect.title} column; expected one of {quote_choices(dialect.column_names)}.",
                    header,
                    _suggest_header(header, dialect),
                )
            )
            continue
        if column.name in positions:
            first = cell_address(positions[column.name], HEADER_ROW)
            problems.append(_header_problem(sheet, address, header, "duplicate-header", f"{header!r} names column {column.name!r} again (first in {first}).", column.name))
            continue
        positions[column.name] = index
    for header, index in extras.items():
        # A custom field whose name is a near miss of a missing column is most likely that column misspelled.
        meant = _resembles(header, dialect)
        if meant is not None and meant not in positions:
            problems.append(
                Problem("warning", sheet, cell_address(index, HEADER_ROW), HEADER_ROW, header, header, "misspelled-header",
                        f"{header!r} is not a {dialect.title} column, so it would be sent as a custom field; did you mean {meant!r}?", meant)
            )
    key_present = dialect.key in positions or (dialect.key_fallback is not None and dialect.key_fallback in positions)
    if not key_present:
        problems.append(
            Problem("error", sheet, "", HEADER_ROW, dialect.key, None, "missing-key-column",
                    f"the header row has no {dialect.key!r} column, which identifies users on {dialect.title}.")
        )
    if not dialect.partial_columns:
        for column in dialect.columns:
            if column.required == "always" and column.name not in positions and column.name != dialect.key:
                problems.append(
                    Problem("error", sheet, "", HEADER_ROW, column.name, None, "missing-column",
                            f"the header row has no {column.name!r} column, which {dialect.title} requires.")
                )
    return positions, extras, problems


def _suggest_header(header: str, dialect: Dialect) -> str | None:
    from rosterbook.core.codecs import suggest

    return suggest(header, dialect.column_names)


def _resembles(header: str, dialect: Dialect) -> str | None:
    """The dialect column a header is a near miss of (``Work Emial``, ``Usrname``), by a stricter measure than
    ``suggest``: a custom field called ``Title`` or ``Phone`` is plausible, ``Work Emial`` is not."""
    from difflib import SequenceMatcher

    folded = header.casefold()
    best, score = None, 0.0
    for name in dialect.column_names:
        ratio = SequenceMatcher(None, folded, name.casefold()).ratio()
        if ratio > score:
            best, score = name, ratio
    return best if score >= 0.85 else None


def _header_problem(sheet: str, address: str, header: str, code: str, message: str, column: str, fix: str | None = None) -> Problem:
    return Problem("error", sheet, address, HEADER_ROW, column, header, code, message, fix)


def build_table(
    sheet: str,
    dialect: Dialect,
    headers: Sequence[Cell],
    data: Iterable[Sequence[Cell]],
    row_ids: Sequence[str | None] | None = None,
    first_row: int = HEADER_ROW + 1,
) -> Table:
    """A Table from a header row and data rows of raw cells. Entirely blank rows are skipped
    (their numbers are still counted, so addresses match the sheet)."""
    positions, extras, problems = map_headers(headers, dialect, sheet)
    names, indexes = list(positions), [i - 1 for i in positions.values()]
    extra_names, extra_indexes = list(extras), [i - 1 for i in extras.values()]
    width = max([*indexes, *extra_indexes], default=-1) + 1
    pick = _picker(indexes)
    pick_extra = _picker(extra_indexes)
    rows: list[Row] = []
    for offset, cells in enumerate(data):
        if is_blank_row(cells):
            continue
        if len(cells) >= width:  # the usual full row: no bounds checks
            values = dict(zip(names, pick(cells), strict=True))
            extra = dict(zip(extra_names, pick_extra(cells), strict=True)) if extra_names else {}
        else:
            size = len(cells)
            values = {name: cells[i] if i < size else None for name, i in zip(names, indexes, strict=True)}
            extra = {name: cells[i] if i < size else None for name, i in zip(extra_names, extra_indexes, strict=True)}
        row_id = row_ids[offset] if row_ids is not None and offset < len(row_ids) else None
        rows.append(_new_row(first_row + offset, values, row_id or None, extra))
    return Table(sheet, dialect, tuple(to_text(h) or "" for h in headers), positions, tuple(rows), tuple(problems))


def _picker(indexes: list[int]) -> Callable[[Sequence[Cell]], Sequence[Cell]]:
    """The cells at these indexes, always as a tuple (itemgetter returns a bare cell for one index)."""
    if len(indexes) == 1:
        only = indexes[0]
        return lambda cells: (cells[only],)
    if not indexes:
        return lambda cells: ()
    return itemgetter(*indexes)


_ROW_SLOTS = tuple(vars(Row)[name].__set__ for name in ("number", "values", "row_id", "extra"))  # the slot descriptors


def _new_row(number: int, values: Mapping[str, Cell], row_id: str | None, extra: Mapping[str, Cell]) -> Row:
    """``Row(number, values, row_id, extra)`` without the frozen dataclass's per-field ``__setattr__``
    detour (5x faster; building a 50,000-row table spends a good part of its time here)."""
    row = object.__new__(Row)
    set_number, set_values, set_row_id, set_extra = _ROW_SLOTS
    set_number(row, number)
    set_values(row, values)
    set_row_id(row, row_id)
    set_extra(row, extra)
    return row


_SNAPSHOT_ROW_SLOTS = tuple(vars(SnapshotRow)[name].__set__ for name in ("row_id", "key", "resource_id", "version", "values", "seen"))


def new_snapshot_row(row_id: str, key: str, resource_id: str | None, version: str | None, values: Mapping[str, str | None],
                     seen: Mapping[str, str | None]) -> SnapshotRow:
    """``SnapshotRow(...)`` the way ``_new_row`` builds a Row (50,000 entries of a snapshot read: about 45 ms against 70 ms)."""
    snap = object.__new__(SnapshotRow)
    set_row_id, set_key, set_resource_id, set_version, set_values, set_seen = _SNAPSHOT_ROW_SLOTS
    set_row_id(snap, row_id)
    set_key(snap, key)
    set_resource_id(snap, resource_id)
    set_version(snap, version)
    set_values(snap, values)
    set_seen(snap, seen)
    return snap


def exported_columns(table: Table) -> tuple[str, ...]:
    """The columns a row is compared in with its snapshot entry to be as exported: every dialect column of the sheet
    (key and passwords included), in the dialect's order."""
    return tuple(c.name for c in table.dialect.columns if c.name in table.positions)


def exported_as_is(table: Table, snapshot: Mapping[str, SnapshotRow]) -> frozenset[int]:
    """Sheet row numbers of the rows whose cell in every dialect column of the sheet is exactly the value exported for
    their row id (custom fields not compared): nothing about them changes, and no cell of theirs was cleared.

    One C-speed comparison of two tuples per row; the diff and the cleared-cell check ask it once between them (a
    50,000-user sheet, almost all of it as exported, costs about 0.2 s per pass). The diff makes the same comparison
    itself when not given the answer.
    """
    names = exported_columns(table)
    if not names or not snapshot:
        return frozenset()
    out: list[int] = []
    get = snapshot.get
    pick = itemgetter(*names)  # twice the speed of tuple(map(values.get, names)); a missing column: the slow way
    for row in table.rows:
        row_id = row.row_id
        snap = get(row_id) if row_id is not None else None
        if snap is not None and same_cells(pick, names, row.values, snap.values):
            out.append(row.number)
    return frozenset(out)


def same_cells(pick: Callable[[Mapping[str, Any]], Any], names: Sequence[str], now: Mapping[str, Any], before: Mapping[str, Any]) -> bool:
    """Whether two rows' values are equal in every one of ``names`` (``pick``: ``itemgetter(*names)``), a value
    missing from either counting as None."""
    try:
        return bool(pick(now) == pick(before))
    except KeyError:
        return tuple(map(now.get, names)) == tuple(map(before.get, names))


def is_blank_row(cells: Sequence[Cell]) -> bool:
    """True when every cell is blank (None, empty or whitespace text, NaN); stops at the first filled one."""
    for cell in cells:
        if cell is None:
            continue
        if cell.__class__ is str:
            if cell.strip():
                return False
            continue
        if to_text(cell) is not None:
            return False
    return True


# --- exported values -----------------------------------------------------------------------------


def snapshot_values(dialect: Dialect, values: Mapping[str, str | None]) -> dict[str, str | None]:
    """Canonical text per column, as the snapshot keeps it (lists re-joined, booleans spelled out)."""
    out = dict(values)
    respelled = _respelled_columns(dialect)
    for name, text in values.items():
        if text is None:
            continue
        column = respelled.get(name, _UNSEEN)
        if column is _UNSEEN:
            found = dialect.find_column(name)
            column = respelled[name] = found if found is not None and _respells(found) else None
        if column is None:
            continue
        out[name] = canonical_or_text(text, column.type, separator=column.separator, escape=column.escape)
    return out


_UNSEEN: Any = object()
_RESPELLED: dict[int, tuple[Dialect, dict[str, Column | None]]] = {}


def _respells(column: Column) -> bool:
    """Whether ``canonical`` can change this column's text (lists and booleans; keep in step with codecs.canonical)."""
    return column.type == "bool" or (column.type == "list" and column.separator is not None)


def _respelled_columns(dialect: Dialect) -> dict[str, Column | None]:
    """Per header: its column when ``canonical`` may respell it, else None (snapshot_values runs per exported user)."""
    entry = _RESPELLED.get(id(dialect))
    if entry is None or entry[0] is not dialect:
        entry = (dialect, {})
        _RESPELLED[id(dialect)] = entry
    return entry[1]


def distinct_items(column: Column, texts: Iterable[str | None]) -> list[str]:
    """The distinct values (list items, for a list column) of a column's cells, case-insensitively, sorted."""
    seen: dict[str, str] = {}
    for text in texts:
        if text is None:
            continue
        items = split_list(text, column.separator, column.escape) if column.type == "list" and column.separator else [text]
        for item in items:
            seen.setdefault(item.casefold(), item)
    return sorted(seen.values(), key=lambda s: (s.casefold(), s))
