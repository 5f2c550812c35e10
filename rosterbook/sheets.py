"""The sheet adapter protocol: what the workbook layer needs from a spreadsheet.

Adapters: ``rosterbook.xlsxpatch.PatchBook`` over an existing .xlsx file (the CLI's check, preview,
sync, revert), ``rosterbook.xlsx.OpenpyxlBook`` for a new one (export, templates) and
``addin.sheet.XlwingsBook`` over the workbook open in Excel (the ribbon). Everything above this
protocol (``rosterbook.workbook``, ``rosterbook.app``) runs identically on all of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from rosterbook.core.codecs import Cell
from rosterbook.core.problems import cell_address
from rosterbook.errors import UsageError

if TYPE_CHECKING:
    from rosterbook.workbook import SheetDress

Visibility = Literal["visible", "hidden", "veryHidden"]
Mark = Literal["error", "warning"]


class SheetBook(Protocol):
    """A workbook as rosterbook sees it: sheets of values, addressed 1-based."""

    def sheet_names(self) -> list[str]:
        """Names of all sheets, hidden ones included, in workbook order."""
        ...

    def values(self, sheet: str) -> list[list[Cell]]:
        """The sheet's used range from A1 as rows of raw cells (ragged rows padded with None)."""
        ...

    def write_values(self, sheet: str, row: int, column: int, values: Sequence[Sequence[Cell]]) -> None:
        """Write a block with its top-left cell at (row, column). Strings are always written as
        literal text: a value starting with ``=``, ``+``, ``-`` or ``@`` never becomes a formula."""
        ...

    def clear(self, sheet: str, first_row: int, last_column: int | None = None) -> None:
        """Clear values (and marks) from ``first_row`` down, over the first ``last_column`` columns (all when None)."""
        ...

    def ensure_sheet(self, sheet: str, visibility: Visibility = "visible") -> None:
        """Create the sheet if missing and set its visibility."""
        ...

    def visibility(self, sheet: str) -> Visibility:
        ...

    def hide_columns(self, sheet: str, columns: Sequence[int]) -> None:
        """Hide these 1-based columns (the hidden ``_row_id`` column)."""
        ...

    def mark(self, sheet: str, marks: Mapping[str, tuple[Mark, str] | None]) -> None:
        """Mark cells (address -> (kind, note)) or clear a mark (address -> None): fill colour plus a note."""
        ...

    def fit_table(self, sheet: str, last_row: int, last_column: int) -> None:
        """Make the sheet's Excel Table (if any) span A1 to (last_row, last_column)."""
        ...

    def set_text_columns(self, sheet: str, columns: Sequence[int]) -> None:
        """Format these 1-based columns as Text (``@``) so Excel keeps leading zeros and dates as typed."""
        ...

    def progress(self, message: str) -> None:
        """Show a short progress message (Excel's status bar; nothing in files)."""
        ...

    def save(self) -> None:
        """Persist the workbook (to its file; in Excel, nothing is saved without the user).

        An adapter whose ``save()`` does not write the file (Excel) sets ``persists = False``: a sync then
        keeps no journal beside the file, which would otherwise be replayed over what the user saves."""
        ...


@runtime_checkable
class DressableBook(SheetBook, Protocol):
    """An adapter that can show the layout's dress (``rosterbook.workbook.SheetDress``): a file, or Excel."""

    def dress(self, spec: SheetDress) -> None:
        """Apply one sheet's dress."""
        ...

    def remove_sheet(self, sheet: str) -> None:
        """Delete a sheet."""
        ...

    def arrange(self) -> None:
        """Sheets in layout order (where the adapter can move them), the Users sheet in front."""
        ...


# --- notes: rosterbook's part and someone's own -----------------------------------------------------------

NOTE_AUTHOR = "rosterbook"
"""The author of the notes rosterbook writes into files (kept when Excel opens them)."""
NOTE_MARKER = "--- rosterbook ---"
"""The line between someone's own note and what rosterbook added below it, on the same cell."""
_PROBLEM_NOTE = re.compile(r"^(?:\(warning\) )?[A-Z]{1,3}[0-9]+ ")


def their_note(text: str | None, author: str | None = None) -> str | None:
    """The part of a cell's note that someone wrote (None when it is all rosterbook's).

    rosterbook's part is everything below ``NOTE_MARKER``, or the whole note when it has no marker and
    rosterbook wrote it: its author is ``rosterbook``, it reads as a problem mark (``E7 Status: ...``), or it
    starts with a line ``rosterbook:`` (a header note written in Excel, where the user is every note's author).
    """
    if not text:
        return None
    if NOTE_MARKER in text:
        head = text.split(NOTE_MARKER, 1)[0].rstrip("\n")
        return head or None
    if (author or "") == NOTE_AUTHOR or _PROBLEM_NOTE.match(text) or text.startswith(f"{NOTE_AUTHOR}:\n"):
        return None
    return text


def marked_note(text: str | None, author: str | None, mark: str | None) -> str | None:
    """The note a cell gets when rosterbook marks it with ``mark`` (or clears its mark: None): someone's own
    note stays, rosterbook's text goes below ``NOTE_MARKER``. None: no note at all."""
    theirs = their_note(text, author)
    if mark is None:
        return theirs
    return f"{theirs}\n{NOTE_MARKER}\n{mark}" if theirs else mark


def trim_grid(rows: list[list[Cell]]) -> list[list[Cell]]:
    """Drop trailing blank rows and columns (a used range often reaches past the data); rows padded to one width."""
    while rows and all(v is None or v == "" for v in rows[-1]):
        rows.pop()
    width = 0
    for row in rows:
        for index in range(len(row) - 1, -1, -1):
            if row[index] is not None and row[index] != "":
                width = max(width, index + 1)
                break
    return [row if len(row) == width else row[:width] + [None] * (width - len(row)) for row in rows]


NO_VISIBLE_SHEET = "every sheet of the workbook would be hidden (Excel needs one visible sheet): nothing was saved. Show a sheet and run again."
"""Why a save is refused when no sheet is left visible (Excel would repair such a file)."""

MAX_CELLS = 25_000_000
"""The largest used range (rows x columns) a sheet may have: a million users over 23 columns fits."""


def check_extent(sheet: str, last_row: int, last_column: int) -> None:
    """Refuse a sheet whose used range is absurdly large (one stray value in a far corner of a small file),
    before a reader builds a grid of billions of blank cells."""
    if last_row * last_column > MAX_CELLS:
        raise UsageError(
            f"{sheet}!{cell_address(last_column, last_row)}: the sheet's used range reaches this cell "
            f"({last_row:,} rows x {last_column:,} columns), too large to read. Delete the stray cells far below or right of the data, then save."
        )
