"""The CSV-file connector: a platform reached only through its own export file and an upload file.

Export reads the platform's export (``rosterbook.csvfile`` survives real-life files) and remembers
how it was written (header spellings and order, delimiter, encoding, line ends); nothing can be
read back before a sync, so ``current`` is None; ``send`` writes the plan's upload file
(``core.upload`` decides its header, rows and columns, ``sync_client.csv_upload`` writes it) next
to the workbook, and every row's outcome is ``written``: the platform confirms nothing until the
admin uploads the file and exports again. Nothing to change: no file. The summary says what to
choose on the platform's upload screen and which cells the file escapes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rosterbook.connectors.base import ExportData, Exported, Progress, RowOutcome, SaveAs, SendData, upload_path
from rosterbook.core.codecs import to_text
from rosterbook.core.dialects import Dialect
from rosterbook.core.plan import Advice, Change, Current, upload_notes
from rosterbook.core.table import SnapshotRow, build_table, distinct_items, snapshot_values
from rosterbook.core.upload import EscapedCell, FileFormat
from rosterbook.errors import DataError, UsageError


class CsvConnector:
    """A CSV-only platform: ``source`` is its export file (export), ``workbook`` where the upload file goes (sync;
    ``save_as`` asks where when the workbook was never saved)."""

    name = "csv"
    cancelled = "sync cancelled: nothing was written."
    export_needs_file = True
    confirms = False

    contacts: str | None = None

    def __init__(self, *, dialect: str | None = None, source: str | os.PathLike[str] | None = None, workbook: Path | None = None,
                 save_as: SaveAs | None = None, name: str = "Book1") -> None:
        self.dialect_name = dialect
        self.source = Path(source) if source is not None else None
        self.workbook = workbook
        self.save_as = save_as
        self.book_name = name
        self.upload_file: Path | None = None
        self.upload_rows: int | None = None
        self.upload_guidance: tuple[Advice, ...] = ()
        self.escaped_cells: tuple[EscapedCell, ...] = ()
        self._stale: Path | None = None

    def __enter__(self) -> CsvConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    # --- export --------------------------------------------------------------------------------

    def export(self, progress: Progress | None) -> ExportData:
        """The users of the platform's own export file, columns as its header row names them."""
        from rosterbook.csvfile import cut_short_problem, dialect_and_reason, read_csv

        if self.source is None:
            raise UsageError("a CSV platform is exported from its own export file: give --from-csv EXPORT.csv.")
        data = read_csv(self.source)
        if data.cut_short:
            raise DataError(f"{cut_short_problem(data).render()} Nothing was written.")
        dialect, reason = dialect_and_reason(data, self.dialect_name, "csv")
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
        file_format = FileFormat(tuple(data.headers), data.delimiter, data.encoding, data.newline)
        return ExportData(dialect, headers, rows, snapshots, lists, source="csv", file_format=file_format, note=reason)

    # --- sync ----------------------------------------------------------------------------------

    def connect(self) -> None:
        """Nothing to get ready: no platform is asked."""

    def current(self, dialect: Dialect, changes: Sequence[Change], snapshot: Mapping[str, SnapshotRow], present: set[str],
                progress: Progress | None, keys: Sequence[str] = ()) -> Mapping[str, Current] | None:
        """Nothing to read: a CSV platform is only known through its export."""
        return None

    def writes(self, dialect: Dialect) -> list[Path]:
        """The upload file a sync writes next to the workbook."""
        return [upload_path(dialect, self.workbook)]

    def send(self, data: SendData, changes: Sequence[Change], progress: Progress | None, batch: int) -> Iterator[list[RowOutcome]]:
        """Write the plan's upload file (none when nothing changes); every change sent is ``written`` (one batch)."""
        from rosterbook.core.upload import build_upload
        from sync_client.csv_upload import write_upload

        plan = data.plan
        dialect = plan.dialect
        upload = plan.upload
        if upload is None:  # a plan made without its upload file: the dialect's canonical format
            upload = build_upload(dialect, plan.changes, plan.skipped, list(data.snapshot.values()), data.settings,
                                  dialect.extra_headers(data.table.headers))
        if not upload.rows:
            self.upload_rows = 0
            earlier = upload_path(dialect, self.workbook) if self.workbook is not None else None
            self._stale = earlier if earlier is not None and earlier.exists() else None
            return
        path = upload_path(dialect, self.workbook, self.save_as, name=self.book_name)
        write_upload(path, upload.headers, [r.cells for r in upload.rows], dialect, upload.format)
        self.upload_file, self.upload_rows = path, len(upload.rows)
        self.upload_guidance, self.escaped_cells = plan.guidance, tuple(upload.escaped_cells())
        message = f"written to {path.name}; upload it to {dialect.title}, then export again"
        yield [RowOutcome(change, "written", message=message, cleared=tuple(change.secrets)) for change in changes]

    def summary(self, result: Any, *, excel: bool = False) -> str:
        """What the sync did, in the command line's or Excel's words, with what to choose when uploading."""
        if self.upload_file is None:
            text = "Nothing to upload: no user changes, so no upload file was written."
            if self._stale is not None:
                text += f" {self._stale.name} beside the workbook is from an earlier sync: do not upload it again."
            return text
        if excel:
            text = f"Sync: {result['sent']} change(s) written to the upload file {result['upload_file']}. Upload it to the platform, then Export again."
        else:
            text = f"Upload file written: {result['upload_file']} ({result['upload_rows']} rows). Upload it to the platform, then export again."
        return "\n".join([text, *upload_notes(self.upload_guidance, self.escaped_cells)])
