"""The CSV-file connector: a platform reached only through its own export file and an upload file.

Export reads the platform's export (``rosterbook.csvfile`` survives real-life files); nothing can
be read back before a sync, so ``current`` is None; ``send`` writes the upload file of the plan
(``core.upload`` decides its rows and columns, ``sync_client.csv_upload`` writes it) next to the
workbook, and every row's outcome is ``written``: the platform confirms nothing until the admin
uploads the file and exports again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rosterbook.connectors.base import ExportData, Exported, Progress, RowOutcome, SendData, upload_path
from rosterbook.core.codecs import to_text
from rosterbook.core.dialects import Dialect
from rosterbook.core.plan import Change, Current
from rosterbook.core.table import SnapshotRow, build_table, distinct_items, snapshot_values
from rosterbook.errors import DataError, UsageError


class CsvConnector:
    """A CSV-only platform: ``source`` is its export file (export), ``workbook`` where the upload file goes (sync)."""

    name = "csv"
    cancelled = "sync cancelled: nothing was written."
    export_needs_file = True

    def __init__(self, *, dialect: str | None = None, source: str | os.PathLike[str] | None = None, workbook: Path | None = None) -> None:
        self.dialect_name = dialect
        self.source = Path(source) if source is not None else None
        self.workbook = workbook
        self.upload_file: Path | None = None
        self.upload_rows: int | None = None

    def __enter__(self) -> CsvConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    # --- export --------------------------------------------------------------------------------

    def export(self, progress: Progress | None) -> ExportData:
        """The users of the platform's own export file, columns as its header row names them."""
        from rosterbook.csvfile import cut_short_problem, dialect_of, read_csv

        if self.source is None:
            raise UsageError("a CSV platform is exported from its own export file: give --from-csv EXPORT.csv.")
        data = read_csv(self.source)
        if data.cut_short:
            raise DataError(f"{cut_short_problem(data).render()} Nothing was written.")
        dialect = dialect_of(data, self.dialect_name)
        if dialect.kind != "csv":
            raise UsageError(f"{dialect.name!r} is a SCIM platform: export it with --platform URL, not --from-csv.")
        table = build_table(data.name, dialect, data.headers, data.rows)
        bad = [p for p in table.header_problems if p.severity == "error"]
        if bad:
            raise DataError(f"{data.name}: the header row does not fit {dialect.title}: " + " ".join(p.render() for p in bad))
        present = list(table.present)
        headers = present + dialect.extra_headers(data.headers)
        rows: list[list[str | None]] = []
        snapshots: list[Exported] = []
        for row in table.rows:
            values: dict[str, str | None] = {name: None if dialect.column(name).write_only else row.text(name) for name in present}
            for name in headers[len(present):]:
                values[name] = to_text(row.extra.get(name))
            rows.append([values.get(h) for h in headers])
            snapshots.append((dialect.user_key(values.get) or "", None, None, snapshot_values(dialect, values)))
        lists = {
            column.name: distinct_items(column, (r.text(column.name) for r in table.rows))
            for column in dialect.columns
            if column.choices_from_platform and column.name in present
        }
        return ExportData(dialect, headers, rows, snapshots, lists, source="csv")

    # --- sync ----------------------------------------------------------------------------------

    def current(self, dialect: Dialect, changes: Sequence[Change], snapshot: Mapping[str, SnapshotRow], present: set[str],
                progress: Progress | None) -> Mapping[str, Current] | None:
        """Nothing to read: a CSV platform is only known through its export."""
        return None

    def send(self, data: SendData, changes: Sequence[Change], progress: Progress | None, batch: int) -> Iterator[list[RowOutcome]]:
        """Write the upload file; every change sent is ``written`` (one batch)."""
        from rosterbook.core.upload import upload_rows
        from sync_client.csv_upload import write_upload

        dialect = data.plan.dialect
        headers, rows = upload_rows(data.plan, data.table, list(data.snapshot.values()), data.settings)
        upload = upload_path(dialect, self.workbook)
        write_upload(upload, headers, rows, dialect)
        self.upload_file, self.upload_rows = upload, len(rows)
        message = f"written to {upload.name}; upload it to {dialect.title}, then export again"
        yield [RowOutcome(change, "written", message=message) for change in changes]

    def summary(self, result: Any, *, excel: bool = False) -> str:
        """What the sync did, in the command line's or Excel's words."""
        if excel:
            return f"Sync: {result['sent']} change(s) written to the upload file {result['upload_file']}. Upload it to the platform, then Export again."
        return f"Upload file written: {result['upload_file']} ({result['upload_rows']} rows). Upload it to the platform, then export again."
