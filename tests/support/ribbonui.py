"""The ribbon's dialogs in tests: a recording RibbonUI whose every message must be in Excel's words.

``RecordingUI`` answers questions and dialogs from a script and fails the test when a message,
question or dialog title names a command-line flag or command (``--skip-rows``, ``rosterbook login``...):
the ribbon speaks of its buttons and asks questions instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rosterbook.sheets import SheetBook

CLI_WORDS = re.compile(r"(?<![\w-])--[a-z]|`rosterbook|\brosterbook (?:login|check|sync|preview|export|revert|undo|demo|sandbox|dialects)\b")
"""What only the command line says: a flag, or a rosterbook command to run."""


def assert_excel_words(text: str) -> None:
    """Fail when ``text`` speaks command line."""
    found = CLI_WORDS.search(text)
    assert found is None, f"command-line words {found.group(0)!r} in a ribbon message: {text!r}"


@dataclass
class RecordingUI:
    """Records every dialog and answers from a script; every text shown must be in Excel's words."""

    answers: list[bool] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    file: str | None = None
    save_path: str | None = None
    secret: str | None = None
    alerts: list[tuple[str, bool]] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    saves: list[tuple[str, str]] = field(default_factory=list)
    secrets: list[tuple[str, str]] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)

    def alert(self, message: str, *, error: bool = False) -> None:
        assert_excel_words(message)
        self.alerts.append((message, error))

    def confirm(self, message: str) -> bool:
        assert_excel_words(message)
        self.questions.append(message)
        if not self.answers:
            raise AssertionError(f"unexpected question: {message}")
        return self.answers.pop(0)

    def choose_file(self, title: str) -> str | None:
        assert_excel_words(title)
        self.questions.append(title)
        return self.file

    def choose_save_path(self, title: str, suggested: str) -> str | None:
        assert_excel_words(title)
        self.saves.append((title, suggested))
        return self.save_path

    def ask_secret(self, title: str, prompt: str) -> str | None:
        assert_excel_words(title + "\n" + prompt)
        self.secrets.append((title, prompt))
        return self.secret

    def selected_rows(self, book: SheetBook, sheet: str) -> list[int]:
        return list(self.rows)

    def show_sheet(self, book: SheetBook, sheet: str) -> None:
        self.shown.append(sheet)
