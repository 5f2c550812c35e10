"""Checks that look beyond one cell: at the export snapshot, at other rows, and at the upload file.

Each is a separate, cheap pass over the columns it needs (never a Row per row), run after the
cell checks of ``core.checks`` by the workbook session and by ``check FILE.csv``:

- ``cleared_keeps``: a cleared cell in a column where blank keeps the current value changes
  nothing on the platform: a warning says so, and how to clear it, or that a file cannot;
- ``references``: a column naming another user (Progression's manager email, Jostle's manager
  Username) must name a user of the export or a new row of the sheet; nobody manages
  themselves, directly or in a circle (errors);
- ``special_use_emails``: addresses on special-use domains (``.test``, ``.local``, ``.internal`` ...)
  are valid, but get no mail on the internet: one warning per file, never one per cell;
- ``csv_escapes``: on a CSV platform, text the upload file must write with a leading ``'`` (so
  that a spreadsheet cannot run it) reaches the platform changed: a warning with a suggestion.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from rosterbook.core.codecs import Cell, looks_like_formula, neutralise_csv_cell, special_use_domain, special_use_names, to_text
from rosterbook.core.dialects import Column, Dialect
from rosterbook.core.problems import Problem, cell_address, quote
from rosterbook.core.table import SnapshotRow, Table

__all__ = ["Columns", "columns_of_rows", "columns_of_table", "cross_checks", "escape_problem"]

HIDDEN = "(hidden)"


@dataclass(frozen=True)
class Columns:
    """Rows as columns of raw cells: what the passes below read."""

    dialect: Dialect
    sheet: str
    positions: Mapping[str, int]
    """Dialect column or custom-field header -> 1-based sheet column."""
    numbers: Sequence[int]
    """Sheet row number of each row."""
    cells: Mapping[str, Sequence[Cell]]
    """Column -> one raw cell per row (only the columns present)."""
    row_ids: Sequence[str | None] | None = None
    """Each row's hidden row id (a workbook); None for a file."""

    def texts(self, name: str) -> list[str | None]:
        """A column's cell texts (None for blank)."""
        return [to_text(c) for c in self.cells.get(name, ())]

    def address(self, name: str, index: int) -> str:
        return cell_address(self.positions[name], self.numbers[index])


def columns_of_table(table: Table) -> Columns:
    """A table's rows as columns (dialect columns and custom fields)."""
    rows = table.rows
    cells: dict[str, list[Cell]] = {name: [r.values.get(name) for r in rows] for name in table.positions}
    positions: dict[str, int] = dict(table.positions)
    for index, header in enumerate(table.headers, start=1):
        if header and header not in positions and header in table.dialect.extra_headers([header]):
            positions[header] = index
            cells[header] = [r.extra.get(header) for r in rows]
    return Columns(table.dialect, table.sheet, positions, [r.number for r in rows], cells, [r.row_id for r in rows])


def columns_of_rows(dialect: Dialect, sheet: str, headers: Sequence[Cell], rows: Sequence[Sequence[Cell]],
                    positions: Mapping[str, int], first_row: int = 2) -> Columns:
    """Raw rows of a file as columns (``positions`` from ``map_headers``; custom fields added); blank rows dropped."""
    wanted = dict(positions)
    for index, raw in enumerate(headers, start=1):
        header = to_text(raw)
        if header and header not in wanted and dialect.extra_headers([header]):
            wanted[header] = index
    kept = [(first_row + offset, cells) for offset, cells in enumerate(rows) if any(to_text(c) is not None for c in cells)]
    cells = {name: [r[i - 1] if i - 1 < len(r) else None for _, r in kept] for name, i in wanted.items()}
    return Columns(dialect, sheet, wanted, [n for n, _ in kept], cells)


def cross_checks(columns: Columns, snapshot: Mapping[str, SnapshotRow] | None = None) -> Iterator[Problem]:
    """Every pass of this module (``snapshot``: the export's, for a workbook)."""
    if snapshot is not None and columns.row_ids is not None:
        yield from cleared_keeps(columns, snapshot)
    yield from references(columns, snapshot)
    yield from special_use_emails(columns)
    if columns.dialect.kind == "csv":
        yield from csv_escapes(columns)


# --- blank keeps the current value ------------------------------------------------------------------


def cleared_keeps(columns: Columns, snapshot: Mapping[str, SnapshotRow]) -> Iterator[Problem]:
    """Cells of exported users cleared in a column where blank keeps the current value: nothing will be cleared."""
    dialect = columns.dialect
    assert columns.row_ids is not None
    keeps = [c for c in dialect.columns if c.blank == "keep" and not c.write_only and c.name != dialect.key and c.name in columns.cells]
    for column in keeps:
        texts = columns.texts(column.name)
        for i, text in enumerate(texts):
            rid = columns.row_ids[i]
            snap = snapshot.get(rid) if rid is not None else None
            if text is not None or snap is None:
                continue
            before = snap.values.get(column.name)
            if before is None:
                continue
            how = (f"write {column.clear_word!r} to clear it." if column.clear_word
                   else f"a file cannot clear it; clear it on {dialect.title} itself, or type the value back.")
            message = f"blank keeps the current value on {dialect.title}: {quote(before)} will not be cleared - {how}"
            yield Problem("warning", columns.sheet, columns.address(column.name, i), columns.numbers[i], column.name, None,
                          "blank-keeps", message, before)


# --- a column naming another user --------------------------------------------------------------------


def references(columns: Columns, snapshot: Mapping[str, SnapshotRow] | None) -> Iterator[Problem]:
    """Managers: a user of the export or a new row; nobody managing themselves, directly or in a circle."""
    dialect = columns.dialect
    for column in dialect.columns:
        if column.references is None or column.name not in columns.cells or column.references not in columns.cells:
            continue
        yield from _references(columns, column, column.references, snapshot)


def _references(columns: Columns, column: Column, target: str, snapshot: Mapping[str, SnapshotRow] | None) -> Iterator[Problem]:
    dialect = columns.dialect
    fold = str.casefold if dialect.key_case_insensitive or dialect.column(target).type == "email" else (lambda s: s)
    keys = columns.texts(target)
    values = columns.texts(column.name)
    row_ids = columns.row_ids or [None] * len(keys)
    exported: dict[str, str | None] = {}  # user -> exported value, by the target column's folded value
    if snapshot is not None:
        for entry in snapshot.values():
            ident = entry.values.get(target) or (entry.key if target == dialect.key else None)
            if ident is not None:
                exported[fold(ident)] = entry.values.get(column.name)
    # Who each user's value names once the file is applied: the sheet's value, or (blank keeps) the exported one.
    names: dict[str, str] = {}
    for ident, value in exported.items():
        if value is not None:
            names[ident] = fold(value)
    edited: dict[str, int] = {}  # folded user -> row index whose cell differs from the export
    rows_seen: set[str] = set()
    for i, (key, value) in enumerate(zip(keys, values, strict=True)):
        if key is None or fold(key) in rows_seen:
            continue  # a repeated key is the duplicate check's error: its first row speaks for the user
        me = fold(key)
        rows_seen.add(me)
        rid = row_ids[i]
        snap = snapshot.get(rid) if snapshot is not None and rid is not None else None
        before = snap.values.get(column.name) if snap is not None else None
        if value is None:
            continue
        names[me] = fold(value)
        if snap is None or before is None or fold(before) != fold(value):
            edited[me] = i
    known = set(exported) | {fold(k) for k in keys if k is not None}
    for me, i in edited.items():
        value = values[i]
        assert value is not None
        where = columns.address(column.name, i)
        if names[me] == me:
            message = f"{quote(value)} is this user's own {target}: nobody can be their own {column.name}."
            yield Problem("error", columns.sheet, where, columns.numbers[i], column.name, value, "self-reference", message)
        elif snapshot is not None and names[me] not in known:
            message = (f"{quote(value)} is not the {target} of any user: neither in the export nor a new row of this sheet. "
                       f"{dialect.title} needs the {column.name} to be one of its users.")
            yield Problem("error", columns.sheet, where, columns.numbers[i], column.name, value, "unknown-reference", message)
        else:
            circle = _circle(me, names)
            if circle:
                shown = " -> ".join(quote(c) for c in [*circle, circle[0]])
                message = f"{quote(value)} makes a circle of {column.name}s ({shown}): someone must be at the top."
                yield Problem("error", columns.sheet, where, columns.numbers[i], column.name, value, "reference-cycle", message)


def _circle(start: str, names: Mapping[str, str]) -> list[str]:
    """The users of a circle that ``start`` belongs to, following ``names`` (empty when there is none)."""
    seen: list[str] = [start]
    current = names.get(start)
    while current is not None and current not in seen:
        seen.append(current)
        current = names.get(current)
    return seen if current == start and len(seen) > 1 else []


# --- special-use email domains ----------------------------------------------------------------------


def special_use_emails(columns: Columns) -> Iterator[Problem]:
    """One warning per file for addresses on special-use domains, at the first one."""
    first: tuple[str, int, str] | None = None
    count = 0
    domains: dict[str, None] = {}
    for column in columns.dialect.columns:
        if column.type != "email" or column.name not in columns.cells:
            continue
        texts = columns.texts(column.name)
        joined = "\x00".join([t for t in texts if t is not None]).casefold()
        if not any(f".{n}" in joined or f"@{n}" in joined for n in special_use_names()):
            continue  # one C-speed scan: a production tenant has none
        for i, text in enumerate(texts):
            if text is None or "@" not in text:
                continue
            name = special_use_domain(text)
            if name is None:
                continue
            count += 1
            domains[f".{name}"] = None
            if first is None or (columns.numbers[i], column.name) < (columns.numbers[first[1]], first[0]):
                first = (column.name, i, text)
    if first is None:
        return
    name, i, text = first
    others = f" and {count - 1} other address{'es' if count > 2 else ''}" if count > 1 else ""
    message = (f"{quote(text)}{others} use{'s' if count == 1 else ''} a special-use domain ({', '.join(domains)}): valid, but such addresses "
               "cannot receive mail on the internet, so invitations and emails to them will not arrive (fine for a test tenant).")
    yield Problem("warning", columns.sheet, columns.address(name, i), columns.numbers[i], name, text, "special-use-domain", message)


# --- text the upload file escapes -------------------------------------------------------------------


_ESCAPED_STARTS = ("\x00+", "\x00-", "\x00@", "\x00 ", "\x00\t")


def csv_escapes(columns: Columns) -> Iterator[Problem]:
    """Cells the upload file writes with a leading ``'``: the platform would store them changed.

    Text typed starting with ``=`` is the formula check's error; plain numbers and phone numbers are never escaped.
    """
    dialect = columns.dialect
    secret = {c.name for c in dialect.columns if c.write_only}
    for name, cells in columns.cells.items():
        joined = "\x00" + "\x00".join([c for c in cells if isinstance(c, str)])
        if not any(start in joined for start in _ESCAPED_STARTS):
            continue  # one C-speed scan: almost every column has no such cell
        for i, raw in enumerate(cells):
            text = raw.strip() if isinstance(raw, str) else ""
            if not text or not looks_like_formula(text) or text.startswith("="):
                continue
            problem = escape_problem(dialect, columns.sheet, columns.address(name, i), columns.numbers[i], name, text, write_only=name in secret)
            if problem is not None:
                yield problem


def escape_problem(dialect: Dialect, sheet: str, cell: str, row: int, column: str, text: str, *, write_only: bool = False) -> Problem | None:
    """The warning for one cell the upload file would escape (None when it is written as it is)."""
    written = neutralise_csv_cell(text)
    if written == text:
        return None
    first = text[0]
    shown = {"\t": "a tab", "\r": "a line break"}.get(first, quote(first))
    if write_only:
        message = (f"this value starts with {shown}: the upload file writes it with a leading ' (so that a spreadsheet cannot run it), "
                   f"which {dialect.title} would take as part of it. Choose one that starts with another character.")
        return Problem("warning", sheet, cell, row, column, HIDDEN, "csv-escaped", message)
    fix = text.lstrip("=+-@\t\r ").strip() or None
    message = (f"{quote(text)} starts with {shown}, so the upload file writes it as {quote(written)} (a spreadsheet would run it as a formula) "
               f"and {dialect.title} will store it so." + (f" If the {shown} is not needed, write {quote(fix)}." if fix else ""))
    return Problem("warning", sheet, cell, row, column, text, "csv-escaped", message, fix)
