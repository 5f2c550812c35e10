"""What export, sync and revert return: typed results whose ``to_dict()`` is their ``--json`` form.

``result["rows"]`` reads a key of the JSON form too, so scripts written against the dict form keep working.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class _Result:
    """``to_dict()`` plus ``result["key"]`` and ``result.get("key")`` on the JSON form."""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def __getitem__(self, name: str) -> Any:
        return self.to_dict()[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.to_dict().get(name, default)


@dataclass(frozen=True)
class ExportResult(_Result):
    """What an export wrote."""

    workbook: str
    dialect: str
    source: str
    """``scim`` or ``csv``."""
    platform_url: str | None
    rows: int
    columns: tuple[str, ...]
    lists: Mapping[str, int]
    """List name -> how many allowed values."""
    warnings: tuple[str, ...] = ()
    """What the platform got wrong but could be worked around (the CLI prints them on stderr)."""
    dialect_note: str | None = None
    """Why the dialect was chosen when another one also fitted the export's header row."""
    keep_edits: Mapping[str, Any] | None = None
    """``export --keep-edits``: the sheet rows whose edits were kept, rows with conflicts, users gone from the platform."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (stable; ``dialect_note`` only when another dialect also fitted; ``keep_edits`` only for ``export --keep-edits``)."""
        out: dict[str, Any] = {
            "workbook": self.workbook,
            "dialect": self.dialect,
            "source": self.source,
            "platform_url": self.platform_url,
            "rows": self.rows,
            "columns": list(self.columns),
            "lists": dict(sorted(self.lists.items())),
            "warnings": list(self.warnings),
        }
        if self.dialect_note is not None:
            out["dialect_note"] = self.dialect_note
        if self.keep_edits is not None:
            out["keep_edits"] = dict(self.keep_edits)
        return out


@dataclass(frozen=True)
class RowResult(_Result):
    """One row's outcome in a sync."""

    row: int | None
    key: str
    action: str
    outcome: str
    """``ok``, ``partial`` (part of the row went through: the message says which), ``failed`` or ``written`` (CSV upload file)."""
    http_status: int | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "key": self.key, "action": self.action, "outcome": self.outcome,
                "http_status": self.http_status, "message": self.message}


@dataclass(frozen=True)
class SyncResult(_Result):
    """What a sync sent (SCIM) or wrote (CSV upload file), row by row."""

    platform: str
    counts: Mapping[str, int]
    rows: tuple[RowResult, ...]
    upload_file: str | None = None
    upload_rows: int | None = None
    """Rows in the upload file (CSV platforms)."""
    upload_guidance: tuple[Any, ...] = ()
    """What to choose on the platform's upload screen for that file (``Advice``; CSV platforms)."""
    escaped_cells: tuple[Any, ...] = ()
    """Cells of that file written with a leading ' so that a spreadsheet cannot run them (``EscapedCell``)."""
    summary: str = field(default="", compare=False)
    """One sentence for the command line."""
    summary_excel: str = field(default="", compare=False)
    """The same in Excel's words."""
    sync_id: str | None = None
    """This sync's id (``20261123-101502-3f9a0c``: when it started, and a short random part), as the Sync log shows it."""
    undo_of: str | None = None
    """An undo: the sync it undid."""
    kept: tuple[Mapping[str, Any], ...] = ()
    """An undo: the fields left as the platform has them (changed there since that sync): row, key, column, and the values."""
    cannot_undo: tuple[str, ...] = ()
    """An undo: what it could not put back, and why."""

    @property
    def sent(self) -> int:
        return len(self.rows)

    @property
    def failed(self) -> int:
        """Rows not (or only partly) applied."""
        return sum(1 for r in self.rows if r.outcome in ("failed", "partial"))

    @property
    def confirmed(self) -> int:
        return sum(1 for r in self.rows if r.outcome == "ok")

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (stable; ``upload_rows``, ``upload_guidance`` and ``escaped_cells`` only for CSV platforms; ``undo_of``,
        ``kept`` and ``cannot_undo`` only for an undo)."""
        out: dict[str, Any] = {
            "ok": self.ok,
            "platform": self.platform,
            "counts": dict(self.counts),
            "sent": self.sent,
            "confirmed": self.confirmed,
            "failed": self.failed,
            "upload_file": self.upload_file,
            "rows": [r.to_dict() for r in self.rows],
            "sync_id": self.sync_id,
        }
        if self.undo_of is not None:
            out.update(undo_of=self.undo_of, kept=[dict(k) for k in self.kept], cannot_undo=list(self.cannot_undo))
        if self.upload_rows is not None:
            out["upload_rows"] = self.upload_rows
            out["upload_guidance"] = [a.to_dict() for a in self.upload_guidance]
            out["escaped_cells"] = [e.to_dict() for e in self.escaped_cells]
        return out


@dataclass(frozen=True)
class RevertResult(_Result):
    """What a revert did: rows put back, new rows cleared, deleted users restored (by key)."""

    reverted: tuple[int, ...]
    cleared: tuple[int, ...]
    restored: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"reverted": list(self.reverted), "cleared": list(self.cleared), "restored": list(self.restored)}
