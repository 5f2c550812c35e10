"""The upload file of a CSV platform, from the changes of a plan (no file writing here).

The file mirrors the platform's own export (``FileFormat``, remembered in the workbook at export):
its header cells spelled as the export spelled them, in the export's order, every column kept (a
write-only column such as EdApp's Password present, blank unless a row sets it; a custom field
with the values the export gave), and the export's delimiter, encoding (with its BOM, if any)
and line ends. A workbook made from the template, that has seen no export, uses the dialect's
canonical header (``FileFormat.canonical``).

Which rows: only the users that change (create, update, archive), except where the platform
deactivates users missing from the file and that option is on (Incenteev): then the file is the
full user file, every user still in the sheet, so nobody is deactivated by accident. In a full
file a row that is not sent (error, conflict, skipped) carries the values as exported, and a new
user with an error is left out (it would be created otherwise). Nothing to change: no rows, and
no file is written.

Which columns on a platform that takes partial files (Jostle, 004): the key plus the columns
that change on some row; in those columns every row carries its exported value unless that row
changed it, so the file never relies on what a blank cell means (the seed does not say).

Values are canonical text, which is the platform's own spelling (status words, ``; `` or ``|``
lists with ``\\|`` escapes, ISO dates). The writer (``sync_client.csv_upload``) neutralises text a
spreadsheet would run as a formula; ``escaped_cells`` lists each cell that changes, so nothing is
altered silently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rosterbook.core.codecs import neutralise_csv_cell
from rosterbook.core.dialects import Dialect
from rosterbook.core.diff import Change
from rosterbook.core.errors import DataError
from rosterbook.core.settings import Settings
from rosterbook.core.table import SnapshotRow, Table

if TYPE_CHECKING:
    from rosterbook.core.plan import Plan

__all__ = ["HIDDEN", "EscapedCell", "FileFormat", "UploadFile", "UploadRow", "build_upload", "upload_rows"]

HIDDEN = "(hidden)"
"""Shown instead of a write-only value (a password)."""

_ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1")


@dataclass(frozen=True, slots=True)
class FileFormat:
    """How a platform's export file was written; its upload file is written the same way."""

    headers: tuple[str, ...]
    """The header cells as the export spelled them, in its order (a blank header cell kept as '')."""
    delimiter: str = ","
    encoding: str = "utf-8"
    """``utf-8-sig`` and ``utf-16`` start the file with a BOM, as the export did."""
    newline: str = "\r\n"

    @classmethod
    def canonical(cls, dialect: Dialect) -> FileFormat:
        """The dialect's own header (every column, canonical names) and file settings: for a workbook that saw no export."""
        return cls(dialect.column_names, dialect.delimiter, dialect.encoding, dialect.line_terminator)

    def to_json(self) -> str:
        """The form the workbook stores."""
        return json.dumps({"headers": list(self.headers), "delimiter": self.delimiter, "encoding": self.encoding, "newline": self.newline},
                          ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> FileFormat:
        """The stored form read back; ValueError when it is not one."""
        data = json.loads(text)
        if not isinstance(data, dict) or set(data) != {"headers", "delimiter", "encoding", "newline"}:
            raise ValueError("not a file format")
        headers, delimiter, encoding, newline = data["headers"], data["delimiter"], data["encoding"], data["newline"]
        if not isinstance(headers, list) or not all(isinstance(h, str) for h in headers):
            raise ValueError("headers must be a list of texts")
        if delimiter not in (",", ";", "\t") or encoding not in _ENCODINGS or newline not in ("\r\n", "\n"):
            raise ValueError("unknown delimiter, encoding or line end")
        return cls(tuple(headers), delimiter, encoding, newline)


@dataclass(frozen=True, slots=True)
class UploadRow:
    """One row of the upload file."""

    row: int
    """The sheet row it comes from."""
    key: str
    cells: tuple[str, ...]
    """Cell texts in header order ('' for blank); a write-only value (password) is here and nowhere else."""

    def __repr__(self) -> str:
        return f"UploadRow(row={self.row!r}, key={self.key!r}, cells=...)"  # never a password in a traceback


@dataclass(frozen=True, slots=True)
class EscapedCell:
    """A cell the writer changes so that a spreadsheet cannot run it as a formula (``-Head of Ops`` -> ``'-Head of Ops``)."""

    row: int
    key: str
    column: str
    """The header as the upload file spells it."""
    value: str
    """The value as written (``(hidden)`` for a write-only column)."""

    def to_dict(self) -> dict[str, object]:
        """The JSON form."""
        return {"row": self.row, "key": self.key, "column": self.column, "value": self.value}

    def render(self) -> str:
        """``row 5 (kwame.mensah@example.com) position: written as "'-Head of Ops"``."""
        return f"row {self.row} ({self.key}) {self.column}: written as {self.value!r}"


@dataclass(frozen=True)
class UploadFile:
    """The upload file's content: header cells and rows, and how to write them."""

    headers: tuple[str, ...]
    """Header cells as written."""
    columns: tuple[str | None, ...]
    """Per header: the dialect column or custom field it carries; None for a header the export had that carries nothing."""
    rows: tuple[UploadRow, ...]
    format: FileFormat
    write_only: frozenset[str] = frozenset()
    """Headers of write-only columns (their values are never shown)."""

    def escaped_cells(self) -> list[EscapedCell]:
        """Every cell (header row included, as row 1) that the writer neutralises, with its value as written."""
        out = [EscapedCell(1, "", h, neutralise_csv_cell(h)) for h in self.headers if neutralise_csv_cell(h) != h]
        for row in self.rows:
            for header, cell in zip(self.headers, row.cells, strict=True):
                written = neutralise_csv_cell(cell)
                if written != cell:
                    out.append(EscapedCell(row.row, row.key, header, HIDDEN if header in self.write_only else written))
        return out


@dataclass(frozen=True, slots=True)
class _Entry:
    row: int
    key: str
    values: Mapping[str, str | None]
    secrets: Mapping[str, str]
    changed: frozenset[str]
    """Names of the fields that change (used for partial files)."""


def build_upload(dialect: Dialect, changes: Sequence[Change], skipped: Sequence[Change], snapshot: Sequence[SnapshotRow], settings: Settings,
                 extras: Sequence[str], file_format: FileFormat | None = None) -> UploadFile:
    """The upload file for a plan's ``changes`` (``skipped``: the changes the user left out); see the module docstring.

    ``extras`` are the sheet's custom-field headers; ``file_format`` the export's (None: the dialect's canonical one).
    """
    fmt = file_format or FileFormat.canonical(dialect)
    full = dialect.missing_users == "option" and settings.deactivate_missing
    entries = _full_entries(changes, skipped, snapshot) if full else _changed_entries(changes)
    entries.sort(key=lambda e: e.row)
    needs = {c.name: c.requires for c in dialect.columns if c.requires}
    if needs:
        # A change to a column that requires others is applied only with them filled in the same row.
        entries = [_with_required(e, needs) for e in entries]
    partial = dialect.partial_columns and not full
    headers, columns = _layout(dialect, fmt, entries, extras, partial)
    secret_names = frozenset(c.name for c in dialect.columns if c.write_only)
    key = dialect.key if partial else None  # a partial file's rows always name their user
    rows: list[UploadRow] = []
    for entry in entries:
        values, secrets = entry.values, entry.secrets
        cells: list[str] = []
        for name in columns:
            if name is None:
                value = None
            elif name in secret_names:
                value = secrets.get(name)  # blank keeps the user's password
            else:
                value = values.get(name)  # exported values, overlaid with the row's changes
                if value is None and name == key:
                    value = entry.key
            cells.append(value or "")
        rows.append(UploadRow(entry.row, entry.key, tuple(cells)))
    write_only = frozenset(h for h, name in zip(headers, columns, strict=True) if name in secret_names)
    return UploadFile(headers, columns, tuple(rows), fmt, write_only)


def _layout(dialect: Dialect, fmt: FileFormat, entries: Sequence[_Entry], extras: Sequence[str],
            partial: bool) -> tuple[tuple[str, ...], tuple[str | None, ...]]:
    """The header cells (the format's spelling and order, then any other column some row fills) and what each carries."""
    custom = dialect.extra_columns == "custom"
    heads: list[str] = []
    carried: list[str | None] = []
    for header in fmt.headers:
        column = dialect.find_column(header) if header else None
        name = column.name if column is not None else (header if custom and header else None)
        if name is not None and name in carried:
            name = None  # a header repeated in the export: the first one carries the column
        heads.append(header)
        carried.append(name)
    filled = {name for e in entries for name, value in e.values.items() if value is not None} | {name for e in entries for name in e.secrets}
    for name in (*dialect.column_names, *extras):
        if name not in carried and name in filled:
            heads.append(name)
            carried.append(name)
    if not partial:
        return tuple(heads), tuple(carried)
    changed = {name for e in entries for name in e.changed} | {dialect.key}
    kept = [(h, n) for h, n in zip(heads, carried, strict=True) if n is not None and n in changed]
    if not any(n == dialect.key for _, n in kept):
        kept.insert(0, (dialect.key, dialect.key))  # an export without the key column cannot be: keep the file usable
    return tuple(h for h, _ in kept), tuple(n for _, n in kept)


def upload_rows(plan: Plan, table: Table, snapshot: Sequence[SnapshotRow], settings: Settings,
                file_format: FileFormat | None = None) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the upload file for ``plan`` (see the module docstring); DataError when the plan is refused."""
    if plan.refused:
        raise DataError(f"no upload file: the plan is refused: {plan.refusal}")
    dialect = plan.dialect
    upload = build_upload(dialect, plan.changes, plan.skipped, snapshot, settings, dialect.extra_headers(table.headers), file_format)
    return list(upload.headers), [list(r.cells) for r in upload.rows]


def _with_required(entry: _Entry, needs: Mapping[str, tuple[str, ...]]) -> _Entry:
    extra = {r for name in entry.changed for r in needs.get(name, ())}
    return _Entry(entry.row, entry.key, entry.values, entry.secrets, entry.changed | extra) if extra else entry


def _entry(change: Change) -> _Entry:
    assert change.row is not None
    return _Entry(change.row, change.key, change.values, change.secrets, frozenset(change.fields))


def _changed_entries(changes: Sequence[Change]) -> list[_Entry]:
    return [_entry(c) for c in changes if c.action in ("create", "update", "archive") and c.row is not None]


def _full_entries(changes: Sequence[Change], skipped: Sequence[Change], snapshot: Sequence[SnapshotRow]) -> list[_Entry]:
    if not any(c.action in ("create", "update", "archive", "deactivate") for c in changes):
        return []  # nothing changes on the platform: no file
    by_id = {s.row_id: s for s in snapshot}
    skipped_rows = {c.row for c in skipped}
    entries: list[_Entry] = []
    sent = ("create", "update", "archive", "rename", "unchanged")
    for change in (*changes, *skipped):
        if change.row is None:
            continue  # removed from the sheet: left out, so the platform deactivates them
        if change.action in sent and change.row not in skipped_rows:
            entries.append(_entry(change))
            continue
        snap = by_id.get(change.row_id) if change.row_id is not None else None
        if snap is None:
            continue  # a new user who is not sent is simply not in the file
        values = change.current if change.action == "conflict" and change.current is not None else snap.values
        entries.append(_Entry(change.row, snap.key, values, {}, frozenset()))
    return entries
