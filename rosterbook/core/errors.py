"""The package's exceptions: one root, subclasses mostly just a docstring (re-exported by ``rosterbook.errors``)."""

from __future__ import annotations

from collections.abc import Sequence

from rosterbook.core.wording import CLI, Phrase, Words


class RosterbookError(Exception):
    """Root of every error rosterbook raises on purpose; the CLI turns it into a message.

    The message is plain text, or a ``Phrase`` when it tells the user what to do next: ``str(exc)``
    is then the command line's wording and ``render(words)`` another front end's (the ribbon's).
    """

    exit_code = 1

    def __init__(self, message: str | Phrase = "", *args: object) -> None:
        self.phrase: Phrase | None = None if isinstance(message, str) else message
        super().__init__(message if isinstance(message, str) else message(CLI), *args)

    def render(self, words: Words) -> str:
        """The message in ``words`` (``str(exc)`` is the command line's)."""
        return self.phrase(words) if self.phrase is not None else str(self)


class UsageError(RosterbookError):
    """The command was used wrongly (unknown dialect, unreadable file, bad option): exit 2."""

    exit_code = 2


class DialectError(UsageError):
    """A dialect file is invalid or unknown."""


class DataError(RosterbookError):
    """The data is invalid (failed checks, refused plan): exit 1."""


class ExportRefused(DataError):
    """An export that would replace something the workbook holds: exporting with force goes ahead."""

    def __init__(self, message: str | Phrase, reason: str, rows: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.reason = reason
        """What the export would replace (the message without what to do about it)."""
        self.rows = tuple(rows)
        """The sheet rows concerned."""


class UnsyncedEditsError(ExportRefused):
    """Exporting would overwrite edits the platform does not have (export again with force to discard them)."""


class ExportShrinkError(ExportRefused):
    """A CSV export lacks more of the workbook's exported users than the deletion guard allows (export with force to accept it)."""


class NotRosterbookError(ExportRefused):
    """Exporting into a workbook that has content but is not a rosterbook workbook (export with force to overwrite it)."""


class Cancelled(RosterbookError):
    """The user said no (to a question, or in a file dialog): nothing was done."""
