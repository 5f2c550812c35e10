"""The package's exceptions: one root, subclasses mostly just a docstring (re-exported by ``rosterbook.errors``)."""

from __future__ import annotations


class RosterbookError(Exception):
    """Root of every error rosterbook raises on purpose; the CLI turns it into a message."""

    exit_code = 1


class UsageError(RosterbookError):
    """The command was used wrongly (unknown dialect, unreadable file, bad option): exit 2."""

    exit_code = 2


class DialectError(UsageError):
    """A dialect file is invalid or unknown."""


class DataError(RosterbookError):
    """The data is invalid (failed checks, refused plan): exit 1."""


class UnsyncedEditsError(DataError):
    """Exporting would overwrite edits the platform does not have (export again with force to discard them)."""
