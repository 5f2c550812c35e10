"""The package's exceptions (defined in ``rosterbook.core.errors``, so the pure core needs nothing outside it)."""

from __future__ import annotations

from rosterbook.core.errors import (
    Cancelled,
    DataError,
    DialectError,
    ExportRefused,
    ExportShrinkError,
    NotRosterbookError,
    RosterbookError,
    UnsyncedEditsError,
    UsageError,
)

__all__ = [
    "Cancelled",
    "DataError",
    "DialectError",
    "ExportRefused",
    "ExportShrinkError",
    "NotRosterbookError",
    "RosterbookError",
    "UnsyncedEditsError",
    "UsageError",
]
