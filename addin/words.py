"""The ribbon's words: what to press where the command line says what to type (``rosterbook.core.wording``).

Every message the ribbon shows goes through ``EXCEL``: a blocker's or an error's phrase names the
rosterbook tab's buttons and the questions Sync and Export ask, never a command or a flag.
"""

from __future__ import annotations

from collections.abc import Sequence

from rosterbook.core.wording import Words

BUTTONS = {
    "export": "Export",
    "check": "Check",
    "checkcolumn": "Add check column",
    "preview": "Preview",
    "sync": "Sync",
    "revert": "Revert selected rows",
    "undo": "Undo last sync",
    "settings": "Settings",
    "signin": "Sign in",
    "login": "Sign in",
}
"""Action (a ribbon tag, or a command's name) -> the button's label on the rosterbook tab."""


class ExcelWords(Words):
    """The rosterbook tab's buttons and questions."""

    def name(self, action: str, *, quoted: bool = False) -> str:
        return BUTTONS.get(action.split(maxsplit=1)[0], action)

    def run(self, action: str) -> str:
        return f"press {self.name(action)} on the rosterbook tab"

    def or_skip(self, them: str, rows: Sequence[int]) -> str:
        return ""  # Sync leaves such rows out by itself, in its one question, whenever other rows can be sent

    def confirm_deletions(self) -> str:
        return "press Sync again and answer Yes to its question"

    def force_export(self, to: str) -> str:
        return f"press Export again and answer Yes to {to}"

    def keep_edits(self) -> str:
        return "press Export and answer Yes to keep them while it refreshes the workbook"

    def sign_in(self, url: str) -> str:
        return f"To sign in for {url}, press Sign in on the rosterbook tab (it stores the token for the URL in this workbook's Settings)."

    def token_env(self) -> str:
        return "the URL named by ROSTERBOOK_PLATFORM"

    def check_without_writing(self) -> str:
        return ""

    def check_file(self, name: str) -> str:
        return f"open {name} in Excel and press Check"


EXCEL = ExcelWords()
"""The words of every dialog the ribbon shows."""
