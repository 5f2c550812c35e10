"""The result of checking a file or sheet: how many rows, which problems, and whether it may sync."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rosterbook.core.problems import Problem, sorted_problems


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Problems found in ``rows`` data rows, sorted by row then column; ``ok`` when none is an error."""

    ok: bool
    """True when no problem is an error (warnings are allowed)."""
    rows: int
    """Data rows checked (entirely blank rows are not counted)."""
    problems: list[Problem] = field(default_factory=list)
    """Sorted by row, then column, then code."""

    @classmethod
    def from_problems(cls, rows: int, problems: Iterable[Problem]) -> CheckReport:
        """A report over ``rows`` rows: the problems sorted, ``ok`` computed."""
        ordered = sorted_problems(problems)
        return cls(ok=not any(p.severity == "error" for p in ordered), rows=rows, problems=ordered)

    @property
    def errors(self) -> int:
        """How many problems are errors."""
        return sum(1 for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> int:
        """How many problems are warnings."""
        return sum(1 for p in self.problems if p.severity == "warning")

    def to_dict(self) -> dict[str, Any]:
        """``{"ok", "rows", "problems": [{"severity", "sheet", "cell", "row", "column", "value", "code", "message", "fix"}]}``."""
        return {"ok": self.ok, "rows": self.rows, "problems": [p.to_dict() for p in self.problems]}

    def render_text(self) -> str:
        """One line per problem, sorted by row then column (empty when there are none)."""
        return "\n".join(p.render() for p in self.problems)

    def summary(self) -> str:
        """``120 rows checked: 2 errors, 1 warning.``"""
        rows = f"{self.rows} row{'' if self.rows == 1 else 's'} checked"
        if not self.problems:
            return f"{rows}: no problems."
        return f"{rows}: {_count(self.errors, 'error')}, {_count(self.warnings, 'warning')}."


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
