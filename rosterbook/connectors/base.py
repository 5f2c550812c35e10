"""What every platform connector does, and the plain data it exchanges with the session.

A connector is chosen once per command from the dialect (``connector_for``): it exports every
user, reads the current state of the users a plan changes, and sends a plan, yielding one
outcome per row. It never touches the workbook: the session reads and writes that, and hands
the connector plain data (``rosterbook.core`` values). No other module asks "SCIM or CSV?".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from rosterbook.core.dialects import Dialect
from rosterbook.core.plan import Advice, Change, Current, Plan
from rosterbook.core.problems import Problem
from rosterbook.core.settings import Settings
from rosterbook.core.table import SnapshotRow, Table
from rosterbook.core.upload import EscapedCell, FileFormat
from rosterbook.errors import Cancelled, UsageError

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: what the CLI draws as a bar and the ribbon as a status line."""

Exported = tuple[str, str | None, str | None, dict[str, str | None]]
"""One exported user: key, platform id, version, canonical values (the snapshot entry without its row id)."""

Outcome = Literal["ok", "partial", "failed", "written"]
"""``ok``: the platform confirmed it; ``partial``: it confirmed part of it (``RowOutcome.applied``); ``failed``:
it did not; ``written``: it is in the upload file."""


@dataclass
class ExportData:
    """What a platform gave: columns, cell texts, snapshot entries, lists of allowed values."""

    dialect: Dialect
    headers: list[str]
    rows: list[list[str | None]]
    snapshots: list[Exported]
    """Per row: key, platform id, version, canonical values."""
    lists: dict[str, list[str]] = field(default_factory=dict)
    source: str = "scim"
    platform_url: str | None = None
    announced: Dialect | None = None
    """A SCIM platform's dialect as its schemas announce it (stored in the workbook)."""
    warnings: list[str] = field(default_factory=list)
    """What the platform got wrong but could be worked around (missing /Schemas, text that is not valid Unicode...)."""
    cell_problems: list[Problem] = field(default_factory=list)
    """Warnings on cells of the Users sheet (written into its Problems column)."""
    file_format: FileFormat | None = None
    """How a CSV platform's export was written (stored in the workbook): its upload file is written the same way."""
    note: str | None = None
    """Why the dialect was chosen when another one also fitted the export's header row."""


@dataclass(frozen=True)
class SendData:
    """Everything a connector needs to send a plan, as plain data (read by the session)."""

    plan: Plan
    table: Table
    snapshot: Mapping[str, SnapshotRow]
    settings: Settings


@dataclass(frozen=True)
class RowOutcome:
    """What happened to one row's change."""

    change: Change
    """The change as sent (a new row's change carries the row id it gets)."""
    outcome: Outcome
    resource_id: str | None = None
    """The user's id on the platform (SCIM), when known."""
    version: str | None = None
    """The user's version after the change, as the platform reported it."""
    http_status: int | None = None
    message: str = ""
    cleared: tuple[str, ...] = ()
    """Write-only columns (passwords) the platform, or the written upload file, has taken: their cells are cleared
    and the Sync log says only that they were set."""
    applied: Change | None = None
    """For a ``partial`` outcome: the change restricted to what the platform confirmed (the snapshot records exactly that)."""


class Connector(Protocol):
    """One platform kind: export, read current state, send."""

    name: str
    """``scim`` or ``csv``: the ``platform`` of a sync result."""
    export_needs_file: bool
    """Export reads the platform's own export file (the ribbon asks for one) instead of calling the platform."""
    cancelled: str
    """What a sync the user cancelled says (nothing was sent / written)."""
    upload_file: Path | None
    """The upload file the last ``send`` wrote (CSV platforms); None when it sends to the platform itself."""
    upload_rows: int | None
    """Rows in that upload file."""
    upload_guidance: tuple[Advice, ...]
    """What to choose on the platform's upload screen for that file (none when no file was written)."""
    escaped_cells: tuple[EscapedCell, ...]
    """Cells of that file written with a leading ' so that a spreadsheet cannot run them."""
    confirms: bool
    """The platform answers each row as it is sent: a send cut short may have applied rows nobody recorded (journal them)."""
    contacts: str | None
    """The platform URL this connector sends requests to; None when it sends none to another machine
    (a CSV platform, or the embedded sandbox on this computer)."""

    def export(self, progress: Progress | None) -> ExportData:
        """Every user the platform has, mapped to the dialect's columns."""
        ...

    def connect(self) -> None:
        """Get ready to ask the platform, on the calling thread, sending nothing: the client's modules loaded, the
        token found (refused here when it is bound to another platform), the embedded sandbox started."""
        ...

    def current(self, dialect: Dialect, changes: Sequence[Change], snapshot: Mapping[str, SnapshotRow], present: set[str],
                progress: Progress | None, keys: Sequence[str] = ()) -> Mapping[str, Current] | None:
        """The platform's current state of the users ``changes`` touch (and of exported users whose row
        left the sheet, ``present`` being the row ids still there, and of the users named by ``keys``),
        by platform id; None when the platform cannot be asked (a CSV platform)."""
        ...

    def writes(self, dialect: Dialect) -> list[Path]:
        """Files a sync writes besides the workbook (checked writable before anything is sent)."""
        ...

    def send(self, data: SendData, changes: Sequence[Change], progress: Progress | None, batch: int) -> Iterator[list[RowOutcome]]:
        """Send ``changes`` (the plan's sendable changes, new rows already given their row ids),
        yielding the outcomes of each batch as it completes (one per change, in order)."""
        ...

    def summary(self, result: Any, *, excel: bool = False) -> str:
        """One sentence telling what the sync did (command-line or Excel wording)."""
        ...


SaveAs = Callable[[str], "str | None"]
"""``save_as(file_name)``: where to write a file when the workbook has no folder (an unsaved workbook in
Excel asks with a save dialog); the chosen path, or None when the user cancels."""


def upload_path(dialect: Dialect, workbook: Path | None, save_as: SaveAs | None = None, *, name: str = "Book1") -> Path:
    """Where a CSV platform's upload file goes: next to the workbook (``BOOK-upload.csv``); for a workbook
    never saved, where ``save_as`` says (``name``: the workbook's name in Excel). Never the working folder.

    :raises Cancelled: the user cancelled the save dialog.
    :raises UsageError: the workbook has no folder and nothing can ask for one.
    """
    if workbook is not None:
        return workbook.parent / dialect.upload_file_name.format(stem=workbook.stem)
    suggested = dialect.upload_file_name.format(stem=Path(name).stem or "Book1")
    if save_as is None:
        raise UsageError(f"the workbook has not been saved, so there is no folder to write {suggested} next to: save the workbook first.")
    chosen = save_as(suggested)
    if not chosen:
        raise Cancelled("sync cancelled: no place was chosen for the upload file; nothing was written.")
    return Path(chosen)
