"""Problems found in a sheet or file: plain values, never exceptions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]


def column_letter(index: int) -> str:
    """Spreadsheet letters for a 1-based column index (1 -> A, 27 -> AA)."""
    if index < 1:
        raise ValueError(f"column index must be >= 1, got {index!r}")
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def cell_address(column_index: int, row: int) -> str:
    """A1-style address for a 1-based column index and a 1-based row number."""
    return f"{column_letter(column_index)}{row}"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (error) or doubtful (warning) at one place of a sheet."""

    severity: Severity
    """'error' blocks a sync; 'warning' is shown but does not block."""
    sheet: str
    """Sheet name (``Users``) or, for a CSV file, its file name."""
    cell: str
    """A1-style address; the header is row 1 so the first data row is 2. Empty for whole-file problems."""
    row: int
    """Sheet row number (1 = header, 0 = the file as a whole)."""
    column: str
    """The dialect's column name, or the header text as found."""
    value: Any
    """The offending value as read (None for a blank cell)."""
    code: str
    """A short kebab-case slug (``unknown-status``), stable for scripts."""
    message: str
    """What is wrong and what is allowed, quoting the value."""
    fix: str | None = None
    """A suggested replacement value, when one is obvious."""

    @property
    def place(self) -> str:
        """``Users!E7`` (or just the sheet / file name for whole-sheet problems)."""
        return f"{self.sheet}!{self.cell}" if self.cell else self.sheet

    def render(self) -> str:
        """``Users!E7 account_active: 'actve' is not one of 'Active', 'Pending', 'Archived'.``"""
        head = f"{self.place} {self.column}:" if self.column else f"{self.place}:"
        text = f"{head} {self.message}"
        if self.fix is not None and "did you mean" not in self.message.lower():
            text += f" Did you mean {quote(self.fix)}?"
        if self.severity == "warning":
            text = f"{text} (warning)"
        return text

    @property
    def is_error(self) -> bool:
        """True for an error (blocks a sync), False for a warning."""
        return self.severity == "error"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: every field; a value that is not a JSON scalar (a date) as its text."""
        data = asdict(self)
        value = data["value"]
        if value is not None and not isinstance(value, (str, int, float, bool)):
            data["value"] = value.isoformat() if hasattr(value, "isoformat") else str(value)
        return data


def sort_key(problem: Problem) -> tuple[int, int, str, str]:
    """Row, then column position, then code: the order problems are shown in."""
    from_cell = _column_part(problem.cell)
    return (problem.row, len(from_cell), from_cell, problem.code)


def _column_part(cell: str) -> str:
    letters = cell.rstrip("0123456789")  # an address: letters, then the row number
    return letters if not letters or letters.isalpha() else "".join(ch for ch in cell if ch.isalpha())


def sorted_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Problems in the order they are shown: by row, then column, then code."""
    return sorted(problems, key=sort_key)


def has_errors(problems: Iterable[Problem]) -> bool:
    """True when at least one problem is an error."""
    return any(p.severity == "error" for p in problems)


def quote(value: object) -> str:
    """``'text'`` like ``repr``, but a backslash shows as one (``'Main\\|HQ'`` reads as typed)."""
    text = repr(value)
    if isinstance(value, str) and "\\" in value and "'" not in value and value.isprintable():
        text = f"'{value}'"
    return text


def quote_choices(choices: Iterable[str]) -> str:
    """``'a', 'b', 'c'`` as click writes allowed values."""
    return ", ".join(quote(c) for c in choices)
