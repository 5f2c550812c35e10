"""Platform connectors: one per platform kind, chosen once per command from the dialect.

``connector_for`` picks the connector a workbook's dialect needs (sync, preview);
``export_connector`` the one an export needs (``--platform`` or ``--from-csv``).
"""

from __future__ import annotations

import os
from pathlib import Path

from rosterbook.connectors.base import Connector, ExportData, RowOutcome, SaveAs, SendData, upload_path
from rosterbook.connectors.csvfile import CsvConnector
from rosterbook.connectors.scim import ScimConnector
from rosterbook.core.dialects import Dialect, load_dialect
from rosterbook.core.settings import Settings
from rosterbook.errors import UsageError

__all__ = [
    "Connector",
    "CsvConnector",
    "ExportData",
    "RowOutcome",
    "SaveAs",
    "ScimConnector",
    "SendData",
    "connector_for",
    "export_connector",
    "export_needs_file",
    "load_modules",
    "platform_contacted",
    "upload_path",
]


def connector_for(dialect: Dialect, settings: Settings, *, workbook: Path | None = None, home: str | os.PathLike[str] | None = None,
                  save_as: SaveAs | None = None, name: str = "Book1") -> ScimConnector | CsvConnector:
    """The connector for a workbook's platform: its dialect's kind decides, once.

    Files it writes (a CSV platform's upload file) go next to ``workbook``; a workbook never saved
    (None; ``name`` is what Excel calls it) asks ``save_as`` where, and never writes into the working folder.
    """
    if dialect.kind == "scim":
        return ScimConnector(settings.platform_url, home=home)
    return CsvConnector(dialect=dialect.name, workbook=workbook, save_as=save_as, name=name)


def load_modules(dialect: Dialect) -> None:
    """Import what the connector for ``dialect`` sends with, and nothing more: no token is looked up, no request made.

    The SCIM client's modules (scim2-models builds its pydantic models and its filter grammar) take about 0.5 s of
    this core, which ``Session.open(meanwhile=load_modules)`` spends while another core parses the workbook.
    """
    if dialect.kind == "scim":
        import sync_client.scim  # noqa: F401


def export_connector(*, platform: str | None = None, dialect: str | None = None, from_csv: str | os.PathLike[str] | None = None,
                     home: str | os.PathLike[str] | None = None, named_platform: str | None = None) -> ScimConnector | CsvConnector:
    """The connector an export reads from: a platform's own CSV export (``from_csv``), else a SCIM platform.

    ``named_platform``: the URL the person running the command named (the CLI's ``--platform``),
    which ``ROSTERBOOK_TOKEN`` may go to; never a workbook's URL.
    """
    if from_csv is not None:
        if platform is not None:
            raise UsageError("give either --platform or --from-csv, not both.")
        return CsvConnector(dialect=dialect, source=from_csv)
    if dialect is not None and load_dialect(dialect).kind != "scim":
        raise UsageError(f"{dialect!r} is a CSV platform: export it with --from-csv EXPORT.csv (its own export file).")
    return ScimConnector(platform, home=home, named_platform=named_platform)


def export_needs_file(dialect: str) -> bool:
    """True when a platform is exported from its own export file (the ribbon then asks for one)."""
    return connector_for(load_dialect(dialect), Settings.for_dialect(dialect)).export_needs_file


def platform_contacted(dialect: str, settings: Settings) -> str | None:
    """The URL a command over a workbook with these settings sends requests to (None: none leaves this computer)."""
    return connector_for(load_dialect(dialect), settings).contacts
