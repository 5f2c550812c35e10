"""Writes a CSV platform's upload file: the export's (else the dialect's) encoding, BOM, delimiter and line ends,
injection-safe, atomically."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from rosterbook.core.codecs import neutralise_csv_cell
from rosterbook.core.dialects import Dialect
from rosterbook.core.upload import FileFormat
from rosterbook.errors import UsageError


def render_upload(headers: Sequence[str], rows: Iterable[Sequence[str | None]], dialect: Dialect, fmt: FileFormat | None = None) -> bytes:
    """The upload file's bytes: every cell neutralised (CSV injection), blanks as empty cells.

    ``fmt`` is how the platform's export was written (its delimiter, encoding with its BOM, line ends);
    None writes the dialect's own.
    """
    fmt = fmt or FileFormat.canonical(dialect)
    table: list[list[str | None]] = [list(headers), *(list(row) for row in rows)]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=fmt.delimiter, lineterminator=fmt.newline, quoting=csv.QUOTE_MINIMAL)
    width = len(headers)
    for number, row in enumerate(table, start=1):
        if len(row) != width:
            raise ValueError(f"upload row {number} has {len(row)} cells for {width} headers")
        writer.writerow(["" if cell is None else neutralise_csv_cell(cell) for cell in row])
    try:
        return buffer.getvalue().encode(fmt.encoding)
    except UnicodeEncodeError as exc:
        raise UsageError(_unencodable(table, dialect, fmt.encoding, exc)) from None


def _unencodable(table: list[list[str | None]], dialect: Dialect, encoding: str, exc: UnicodeEncodeError) -> str:
    """Name the first cell the platform's encoding cannot hold (file row and header)."""
    for number, row in enumerate(table, start=1):
        for header, cell in zip(table[0], row, strict=True):
            try:
                (cell or "").encode(encoding)
            except UnicodeEncodeError:
                return f"upload row {number}, column {header!r}: {cell!r} cannot be written in {encoding}, the encoding {dialect.title} expects."
    return f"{exc.object[exc.start : exc.end]!r} cannot be written in {encoding}, the encoding {dialect.title} expects."


def write_upload(path: str | os.PathLike[str], headers: Sequence[str], rows: Iterable[Sequence[str | None]], dialect: Dialect,
                 fmt: FileFormat | None = None) -> Path:
    """Write the upload file atomically (a temporary file in the same folder, then a rename).

    A reader never sees half a file, and an existing file is only replaced by a complete one.
    """
    target = Path(path)
    data = render_upload(headers, rows, dialect, fmt)
    if not target.parent.exists():
        raise UsageError(f"cannot write {str(target)!r}: the folder {str(target.parent)!r} does not exist.")
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)  # no half-written leftovers
        raise
    return target
