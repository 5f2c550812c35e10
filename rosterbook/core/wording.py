"""How a front end names what the user can do next: the command line's commands and flags, or the ribbon's buttons.

A message that tells the user what to do is written once, as a ``Phrase``: a function of the
front end's ``Words``. ``CLI`` (here) says ", or skip those rows with --skip-rows 7"; the Excel ribbon's
words (``addin.words.EXCEL``) say what to press instead. An error raised with a phrase
(``DataError(lambda w: ...)``) reads in the command line's words as ``str(exc)`` and in another
front end's as ``exc.render(words)``; ``Plan.blockers()`` render the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


def rows_spec(rows: Sequence[int]) -> str:
    """Sorted row numbers as a ``--skip-rows`` value: ``[7, 9, 10, 11]`` -> ``7,9-11``."""
    ordered = sorted(set(rows))
    if not ordered:
        return ""
    parts: list[str] = []
    start = prev = ordered[0]
    for r in [*ordered[1:], None]:
        if r is not None and r == prev + 1:
            prev = r
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if r is not None:
            start = prev = r
    return ",".join(parts)


def rows_text(rows: Sequence[int]) -> str:
    """``row 7`` / ``rows 7, 9, 10 ...`` (at most ten shown)."""
    return ("row " if len(rows) == 1 else "rows ") + ", ".join(str(r) for r in rows[:10]) + (" ..." if len(rows) > 10 else "")


class Words:
    """The command line's words; a front end with other words subclasses this and overrides what differs."""

    def name(self, action: str, *, quoted: bool = False) -> str:
        """What the front end calls an action (``check``, ``preview``, ``sync``, ``revert``, ``export``): ``rosterbook check``
        (in backquotes when ``quoted``)."""
        return f"`rosterbook {action}`" if quoted else f"rosterbook {action}"

    def run(self, action: str) -> str:
        """The instruction to do an action: ``run `rosterbook export```."""
        return f"run `rosterbook {action}`"

    def or_skip(self, them: str, rows: Sequence[int]) -> str:
        """How to send the other rows without ``rows``, as a clause appended to a sentence (``them`` names those rows):
        ``, or skip them with --skip-rows 7``; ``""`` where a front end leaves such rows out by itself."""
        return f", or skip {them} with --skip-rows {rows_spec(rows)}"

    def confirm_deletions(self) -> str:
        """How to confirm that a sync may archive more users than the deletion guard allows."""
        return "run again with --confirm-deletions"

    def force_export(self, to: str) -> str:
        """How to export anyway, over what the export would otherwise refuse to replace (``to`` says what that does)."""
        return f"export with --force to {to}"

    def keep_edits(self) -> str:
        """How to refresh the workbook from the platform while keeping its unsynced edits."""
        return "export with --keep-edits to refresh the workbook and keep them"

    def sign_in(self, url: str) -> str:
        """How to give rosterbook the token for the platform at ``url`` (a sentence)."""
        return f"To sign in for {url}, run 'rosterbook login {url}', or set ROSTERBOOK_PLATFORM={url} together with its token in ROSTERBOOK_TOKEN."

    def token_env(self) -> str:
        """Where ``ROSTERBOOK_TOKEN`` may go, as this front end lets the user name it."""
        return "the URL named by ROSTERBOOK_PLATFORM or --platform"

    def check_without_writing(self) -> str:
        """How to check without writing into the workbook (``""`` where a front end has no such way), after a clause."""
        return " or use --no-write"

    def check_file(self, name: str) -> str:
        """How to check a workbook file by its name."""
        return f"rosterbook check {name}"


CLI = Words()
"""The command line's words (what ``str()`` of an error or a blocker says)."""

Phrase = Callable[[Words], str]
"""A message written once, rendered in a front end's words."""


def render(message: str | Phrase, words: Words = CLI) -> str:
    """A message in ``words``: a phrase is rendered, plain text is returned as it is."""
    return message if isinstance(message, str) else message(words)
