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

import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, compress
from operator import itemgetter, not_

from rosterbook.core.codecs import Cell, looks_like_formula, neutralise_csv_cell, special_use_domain, special_use_names, to_text
from rosterbook.core.dialects import Column, Dialect
from rosterbook.core.problems import Problem, cell_address, quote
from rosterbook.core.table import SnapshotRow, Table

__all__ = ["Columns", "columns_of_rows", "columns_of_table", "cross_checks", "escape_problem"]

HIDDEN = "(hidden)"


class _LazyColumns(Mapping[str, Sequence[Cell]]):
    """Column name -> raw cells, each column gathered only when a pass first asks for it (most passes need two)."""

    def __init__(self, names: Sequence[str], gather: Callable[[str], list[Cell]]) -> None:
        self._names = list(dict.fromkeys(names))
        self._known = frozenset(self._names)
        self._gather = gather
        self._done: dict[str, list[Cell]] = {}

    def __getitem__(self, name: str) -> list[Cell]:
        if name not in self._done:
            if name not in self._known:
                raise KeyError(name)
            self._done[name] = self._gather(name)
        return self._done[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._known

    def remember(self, name: str, cells: list[Cell]) -> None:
        """Take a column gathered elsewhere (the cell checks' own), instead of gathering it again."""
        if name in self._known:
            self._done[name] = cells


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
    rows: Sequence[Sequence[Cell]] | None = None
    """The raw rows, when the cells come from a file: one C-speed scan of them all can rule a pass out."""
    row_values: Sequence[Mapping[str, Cell]] | None = None
    """Each row's raw cells by column, when the cells come from a table (a whole row compares with its snapshot at C speed)."""
    plain: bool = False
    """Every cell is plain text (``textsafety.plain_cells``): none starts with a character an upload file escapes."""
    ordinary_emails: set[str] = field(default_factory=set, repr=False, compare=False)
    """Email columns the cell checks found to hold no special-use domain."""
    widths: set[int] = field(default_factory=set, repr=False, compare=False)
    """How many cells the rows have, when the cell checks counted them all (a file's rows): the widest tells whether a
    row overflows its header without counting again."""
    _text_cache: dict[str, list[str | None]] = field(default_factory=dict, init=False, repr=False, compare=False)
    _fold_cache: dict[str, list[str | None]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def texts(self, name: str) -> list[str | None]:
        """A column's cell texts (None for blank), computed once (two passes read the email columns)."""
        if name not in self._text_cache:
            self._text_cache[name] = _texts(self.cells.get(name, ()))
        return self._text_cache[name]

    def known_texts(self, name: str) -> list[str | None] | None:
        """A column's cell texts if they were computed already (else None)."""
        return self._text_cache.get(name)

    def folded(self, name: str) -> list[str | None]:
        """A column's cell texts case folded (None for blank), computed once."""
        if name not in self._fold_cache:
            self._fold_cache[name] = [t.casefold() if t is not None else None for t in self.texts(name)]
        return self._fold_cache[name]

    def remember(self, name: str, cells: list[Cell], texts: list[str | None], folded: list[str | None] | None = None) -> None:
        """Take a column, its texts (``texts``' values) and optionally its folded texts (``folded``'s) computed by the
        cell checks, instead of computing them again."""
        if name in self.cells and isinstance(self.cells, _LazyColumns):
            self.cells.remember(name, cells)
            self._text_cache[name] = texts
            if folded is not None:
                self._fold_cache[name] = folded

    def address(self, name: str, index: int) -> str:
        return cell_address(self.positions[name], self.numbers[index])

    def joined(self, names: Sequence[str] | None = None) -> str | None:
        """Every text cell (of ``names``, default all) after a NUL, in one string, for one C-speed scan that rules
        a pass out (the rare cells worth a look are almost always absent); None when there is no cheap way."""
        if names is not None:
            parts = [self.cells[n] for n in names if n in self.cells]
        elif self.rows is not None:
            parts = list(self.rows)
        else:
            return None
        try:
            return "\x00" + "\x00".join(chain.from_iterable(parts)) + "\x00"  # type: ignore[arg-type]
        except TypeError:  # numbers or dates among the cells: only the text ones
            return "\x00" + "\x00".join(c for c in chain.from_iterable(parts) if isinstance(c, str)) + "\x00"


def columns_of_table(table: Table) -> Columns:
    """A table's rows as columns (dialect columns and custom fields)."""
    rows = table.rows
    positions: dict[str, int] = dict(table.positions)
    extras: set[str] = set()
    for index, header in enumerate(table.headers, start=1):
        if header and header not in positions and header in table.dialect.extra_headers([header]):
            positions[header] = index
            extras.add(header)

    values = [r.values for r in rows]

    def gather(name: str) -> list[Cell]:
        if name in extras:
            return [r.extra.get(name) for r in rows]
        try:
            return list(map(itemgetter(name), values))  # every row holds every present column: one C-speed pass
        except KeyError:
            return [v.get(name) for v in values]

    return Columns(table.dialect, table.sheet, positions, [r.number for r in rows], _LazyColumns(list(positions), gather),
                   [r.row_id for r in rows], row_values=values)


def columns_of_rows(dialect: Dialect, sheet: str, headers: Sequence[Cell], rows: Sequence[Sequence[Cell]],
                    positions: Mapping[str, int], first_row: int = 2, *, plain: bool = False) -> Columns:
    """Raw rows of a file as columns (``positions`` from ``map_headers``; custom fields added), blank rows included
    (``plain``: as ``Columns.plain``)."""
    wanted = dict(positions)
    for index, raw in enumerate(headers, start=1):
        header = to_text(raw)
        if header and header not in wanted and dialect.extra_headers([header]):
            wanted[header] = index
    # Blank rows stay: their cells read as blank, which no pass reports, and row numbers stay the file's.

    def gather(name: str) -> list[Cell]:
        i = wanted[name] - 1
        try:
            return list(map(itemgetter(i), rows))
        except IndexError:  # short rows (a blank line is an empty one)
            return [r[i] if i < len(r) else None for r in rows]

    return Columns(dialect, sheet, wanted, range(first_row, first_row + len(rows)), _LazyColumns(list(wanted), gather), rows=rows, plain=plain)


def _texts(raws: Sequence[Cell]) -> list[str | None]:
    """Canonical text of each cell, with a fast path for all-text columns (CSV files)."""
    try:
        stripped: list[str | None] = list(map(str.strip, raws))  # type: ignore[arg-type]
    except TypeError:
        return [(raw.strip() or None) if isinstance(raw, str) else to_text(raw) for raw in raws]
    if "" in stripped:  # blank cells are None: only those are visited
        for i in compress(range(len(stripped)), map(not_, stripped)):
            stripped[i] = None
    return stripped


def columns_read(dialect: Dialect, *, plain: bool) -> frozenset[str] | None:
    """The dialect columns ``cross_checks`` reads of a file's rows (no snapshot), or None for any of them: a file that is
    not all plain text has every column looked at for what its upload escapes (``csv_escapes``).

    What the cell checks keep for the cross checks: a column they do not keep is gathered again from the rows if a pass
    does ask for it (correct, only slower), so a pass added below that reads another column belongs here too.
    """
    if not plain:
        return None
    names = {c.name for c in dialect.columns if c.type == "email"}  # special_use_emails
    names.update(name for c in dialect.columns if c.references is not None for name in (c.name, c.references))  # references
    return frozenset(names)


def cross_checks(columns: Columns, snapshot: Mapping[str, SnapshotRow] | None = None, *, as_is: Collection[int] | None = None) -> Iterator[Problem]:
    """Every pass of this module (``snapshot``: the export's, for a workbook; ``as_is`` as for ``cleared_keeps``)."""
    if snapshot is not None and columns.row_ids is not None:
        yield from cleared_keeps(columns, snapshot, as_is)
    yield from references(columns, snapshot)
    yield from special_use_emails(columns)
    if columns.dialect.kind == "csv":
        yield from csv_escapes(columns)


# --- blank keeps the current value ------------------------------------------------------------------


def cleared_keeps(columns: Columns, snapshot: Mapping[str, SnapshotRow], as_is: Collection[int] | None = None) -> Iterator[Problem]:
    """Cells of exported users cleared in a column where blank keeps the current value: nothing will be cleared.

    ``as_is``: the sheet rows known to hold every dialect column as exported (``table.exported_as_is``, which the diff
    asks too): they are not looked at again."""
    dialect = columns.dialect
    assert columns.row_ids is not None
    keeps = [c for c in dialect.columns if c.blank == "keep" and not c.write_only and c.name != dialect.key and c.name in columns.cells]
    if not keeps:
        return
    names = [c.name for c in keeps]
    snaps = list(map(snapshot.get, columns.row_ids))  # type: ignore[arg-type]  # a new row's None id finds nothing
    if as_is is not None:
        candidates = [i for i, (snap, number) in enumerate(zip(snaps, columns.numbers, strict=True)) if snap is not None and number not in as_is]
    else:
        candidates = [i for i, snap in enumerate(snaps) if snap is not None]
    if columns.row_values is not None:
        # The usual row holds every such cell as exported: one C-speed comparison of whole rows rules it out.
        cells = _pick(names, [columns.row_values[i] for i in candidates])
        exported = _pick(names, [snaps[i].values for i in candidates])  # type: ignore[union-attr]
        candidates = [i for i, now, before in zip(candidates, cells, exported, strict=True) if now != before]
    # The few edited rows' cells, read from their rows where there are rows: gathering every such column whole (sixteen
    # on a SCIM sheet, 50,000 cells each) for them cost more than the rest of this pass.
    row_values = columns.row_values
    for i in candidates:
        snap = snaps[i]
        assert snap is not None
        for column in keeps:
            before = snap.values.get(column.name)
            if before is None:
                continue
            cell = row_values[i].get(column.name) if row_values is not None else columns.cells[column.name][i]
            if to_text(cell) is not None:
                continue
            how = (f"write {column.clear_word!r} to clear it." if column.clear_word
                   else f"a file cannot clear it; clear it on {dialect.title} itself, or type the value back.")
            message = f"blank keeps the current value on {dialect.title}: {quote(before)} will not be cleared - {how}"
            yield Problem("warning", columns.sheet, columns.address(column.name, i), columns.numbers[i], column.name, None,
                          "blank-keeps", message, before)


def _pick(names: Sequence[str], rows: Sequence[Mapping[str, Cell]]) -> list[tuple[Cell, ...]]:
    """The named cells of each row as a tuple (None where a row lacks one)."""
    getter = itemgetter(*names)
    try:
        picked = list(map(getter, rows))
    except KeyError:
        return [tuple(map(row.get, names)) for row in rows]
    return picked if len(names) > 1 else [(cell,) for cell in picked]


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
    folds = dialect.key_case_insensitive or dialect.column(target).type == "email"
    values = columns.texts(column.name)
    fkeys = columns.folded(target) if folds else columns.texts(target)
    if snapshot is None:
        named = {v.casefold() if folds else v for v in set(values) if v is not None}  # a few distinct managers: fold those
        if named.isdisjoint(fkeys):
            return  # a file naming none of its own users: nobody is their own or on a circle (unknown is the export's to say)
    fvalues = columns.folded(column.name) if folds else values
    exported: dict[str, str | None] = {}  # user -> exported value (folded), by the target column's folded value
    if snapshot is not None:
        for entry in snapshot.values():
            ident = entry.values.get(target) or (entry.key if target == dialect.key else None)
            if ident is not None:
                before = entry.values.get(column.name)
                exported[ident.casefold() if folds else ident] = before.casefold() if before is not None and folds else before
    # Each user's first row (a repeated key is the duplicate check's error: its first row speaks for the user).
    first: dict[str | None, int] = dict(zip(reversed(fkeys), range(len(fkeys) - 1, -1, -1), strict=True))
    first.pop(None, None)
    in_sheet = {k: v for k, i in first.items() if k is not None and (v := fvalues[i]) is not None}
    # Whom each user names once the file is applied: the sheet's value, or (blank keeps) the exported one.
    names: dict[str, str] = {k: v for k, v in exported.items() if v is not None}
    names.update(in_sheet)
    edited = in_sheet.keys() if snapshot is None else {k for k, v in in_sheet.items() if exported.get(k) != v}
    if not edited:
        return
    selves = {k for k in edited if names[k] == k}
    unknown: set[str] = set()
    if snapshot is not None:  # without the export, a name not in the file may still be a user of the platform
        known = exported.keys() | in_sheet.keys() | {k for k in first if k is not None}
        unknown = {k for k in edited if names[k] not in known} - selves
    circled = _circles_through(edited, names)
    for me in sorted(selves | unknown | circled, key=first.__getitem__):
        i = first[me]
        value = values[i]
        where = columns.address(column.name, i)
        if me in selves:
            message = f"{quote(value)} is this user's own {target}: nobody can be their own {column.name}."
            yield Problem("error", columns.sheet, where, columns.numbers[i], column.name, value, "self-reference", message)
        elif me in unknown:
            message = (f"{quote(value)} is not the {target} of any user: neither in the export nor a new row of this sheet. "
                       f"{dialect.title} needs the {column.name} to be one of its users.")
            yield Problem("error", columns.sheet, where, columns.numbers[i], column.name, value, "unknown-reference", message)
        else:
            circle = [me]
            while names[circle[-1]] != me:
                circle.append(names[circle[-1]])
            shown = " -> ".join(quote(c) for c in [*circle, me])
            message = f"{quote(value)} makes a circle of {column.name}s ({shown}): someone must be at the top."
            yield Problem("error", columns.sheet, where, columns.numbers[i], column.name, value, "reference-cycle", message)


def _circles_through(starts: Collection[str], names: Mapping[str, str]) -> set[str]:
    """Those of ``starts`` that are on a circle of ``names``: a walk from each when they are few (a workbook's edits),
    else one pass over everyone (a file, where every row counts)."""
    if len(starts) * 32 >= len(names):
        return _in_circles({k: v for k, v in names.items() if v in names}) & set(starts)  # only users naming a user can be on one
    out: set[str] = set()
    for start in starts:
        seen = {start}
        node = names.get(start)
        while node is not None and node not in seen:
            seen.add(node)
            node = names.get(node)
        if node == start:
            out.add(start)
    return out


def _in_circles(names: Mapping[str, str]) -> set[str]:
    """Everyone on a circle of ``names`` (each user names at most one other): one walk per user, never twice."""
    walk_of: dict[str, int] = {}
    out: set[str] = set()
    for walk, start in enumerate(names):
        node: str | None = start
        path: list[str] = []
        while node is not None and node not in walk_of:
            walk_of[node] = walk
            path.append(node)
            node = names.get(node)
        if node is not None and walk_of[node] == walk:  # back on this walk's own path: a circle from there on
            circle = path[path.index(node):]
            if len(circle) > 1:
                out.update(circle)
    return out


# --- special-use email domains ----------------------------------------------------------------------


_FOLDS_TO_ASCII = tuple("\u00df\u0130\u0149\u017f\u01f0\u1e96\u1e97\u1e98\u1e99\u1e9a\u1e9e\u212a\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06")
"""The characters above ASCII whose case fold holds an ASCII letter (ſ -> s, the Kelvin sign -> k, ß -> ss)."""


def _may_be_special_use(emails: Sequence[str], columns: Columns) -> bool:
    """Whether an address may end in a special-use name: False for a production tenant, at C speed (first a count of
    the top-level names a sample of them ends in; else the addresses joined, as UTF-8 bytes lower-cased: only their
    ASCII letters change, as ``special_use_domain``'s case fold changes them; two scans with a literal first byte)."""
    if all(_all_ordinary(_joined_texts(columns.texts(name))) for name in emails):
        return False
    text = "\x00".join(filter(None, chain.from_iterable(columns.texts(name) for name in emails))) + "\x00"
    if not text.isascii() and any(ch in text for ch in _FOLDS_TO_ASCII):
        return True  # a letter that folds into ASCII: let the per-address test decide
    joined = text.encode("utf-8", "surrogatepass").lower()
    names = "|".join(map(re.escape, special_use_names())).encode()
    return re.search(rb"\.(?:" + names + rb")\.?\x00", joined) is not None or re.search(rb"@(?:" + names + rb")\.?\x00", joined) is not None


def _joined_texts(texts: list[str | None]) -> str:
    """The texts of a column, each followed by a NUL (blanks left out)."""
    return "\x00".join(texts if None not in texts else filter(None, texts)) + "\x00"  # type: ignore[arg-type]


def _all_ordinary(text: str) -> bool:
    """Whether each address of ``text`` (each followed by a NUL) ends in a top-level name of a sample of them that is not
    a special-use one: an address ending '.com' has no special-use domain. A few C-speed counts for a whole column."""
    count = text.count("\x00")
    ends = {address.rpartition(".")[2] for address in text[:4096].split("\x00")[:-1][:16]}
    last_parts = {name.rpartition(".")[2] for name in special_use_names()}
    # A label without '.', '@' or NUL, whose fold is no special-use name's last label, ends only ordinary domains.
    ordinary = [f".{label}\x00" for label in ends
                if label and not {".", "@", "\x00"} & set(label + label.casefold()) and label.casefold() not in last_parts]
    return sum(map(text.count, ordinary)) == count


def special_use_emails(columns: Columns) -> Iterator[Problem]:
    """One warning per file for addresses on special-use domains, at the first one."""
    emails = [c.name for c in columns.dialect.columns if c.type == "email" and c.name in columns.cells and c.name not in columns.ordinary_emails]
    if not emails:
        return
    if not _may_be_special_use(emails, columns):
        return
    first: tuple[str, int, str] | None = None
    count = 0
    domains: dict[str, None] = {}
    for column in columns.dialect.columns:
        if column.name not in emails:
            continue
        for i, text in enumerate(columns.texts(column.name)):
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


_ESCAPED_START = re.compile(r"\x00[-+@\s]")


def csv_escapes(columns: Columns) -> Iterator[Problem]:
    """Cells the upload file writes with a leading ``'``: the platform would store them changed.

    Text typed starting with ``=`` is the formula check's error; plain numbers and phone numbers are never escaped.
    """
    dialect = columns.dialect
    if columns.plain:
        return
    # Columns whose texts are at hand (the cell checks'): one C-speed min() each rules most out.
    ruled_out = {name for name in columns.cells if _start_past_at(columns.known_texts(name))}
    if len(ruled_out) == len(columns.cells):
        return
    if not ruled_out:
        everything = columns.joined()
        if everything is not None and _ESCAPED_START.search(everything) is None:
            return
    secret = {c.name for c in dialect.columns if c.write_only}
    for name in columns.cells:
        if name in ruled_out:
            continue
        column_text = columns.joined([name])
        if column_text is not None and _ESCAPED_START.search(column_text) is None:
            continue  # almost every column has no such cell
        for i, raw in enumerate(columns.cells[name]):
            text = raw.strip() if isinstance(raw, str) else ""
            if not text or not looks_like_formula(text) or text.startswith("="):
                continue
            problem = escape_problem(dialect, columns.sheet, columns.address(name, i), columns.numbers[i], name, text, write_only=name in secret)
            if problem is not None:
                yield problem


def _start_past_at(texts: list[str | None] | None) -> bool:
    """Whether every text starts with a character after '@' (letters, mostly): none starts with '+', '-' or '@'."""
    if texts is None:
        return False
    least = min(filter(None, texts), default=None)
    return least is None or least[0] > "@"


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
