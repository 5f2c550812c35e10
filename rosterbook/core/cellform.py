"""Values a cell cannot show exactly, and what the Users sheet shows instead.

A cell holds at most 32,767 characters (counted in UTF-16 units, as Excel counts), and the .xlsx
format (XML 1.0) cannot store control characters other than tab and line feed, lone surrogates or
U+FFFE/U+FFFF; a carriage return does not survive LibreOffice. A platform's value that breaks
either rule is kept exactly in the snapshot and shown in the Users sheet as its *cell form*: the
unstorable characters replaced by U+FFFD (a line break for a carriage return), cut to what a cell
holds. A cell still holding the cell form is the platform's value, untouched: it is never sent.
A cell holding anything else is an edit, and replaces the whole value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeVar, cast

CELL_LIMIT = 32767
"""The most characters (UTF-16 units) an Excel cell holds."""

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ODD = re.compile("[\x00-\x08\x0b-\x1f\ud800-\udfff\ufffe\uffff]")
"""What a cell cannot show exactly: the unstorable characters, and the carriage return."""
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def utf16_length(text: str) -> int:
    """The length Excel counts: characters outside the Basic Multilingual Plane count twice."""
    if text.isascii():
        return len(text)
    return len(text) + len(_ASTRAL.findall(text))


def shown_exactly(text: str) -> bool:
    """True when a cell can hold ``text`` exactly (and keep it through Excel and LibreOffice)."""
    if len(text) > CELL_LIMIT // 2 and utf16_length(text) > CELL_LIMIT:
        return False
    return _ODD.search(text) is None


def any_not_shown(texts: Iterable[str | None]) -> bool:
    """Whether any of these texts cannot be shown exactly (one C-speed pass over them joined)."""
    present = [text for text in texts if text is not None]
    if max(map(len, present), default=0) <= CELL_LIMIT // 2 and _ODD.search("\n".join(present)) is None:
        return False  # a line break is no odd character: the usual texts are cleared in one search
    return not all(map(shown_exactly, present))


def cell_form(text: str) -> str:
    """What the Users sheet shows for ``text``: itself when a cell holds it exactly, else its storable form."""
    if shown_exactly(text):
        return text
    form = _UNSTORABLE.sub(REPLACEMENT, text.replace("\r\n", "\n").replace("\r", "\n"))
    if utf16_length(form) > CELL_LIMIT:
        form = form[:CELL_LIMIT]
        while utf16_length(form) > CELL_LIMIT:
            form = form[: len(form) - (utf16_length(form) - CELL_LIMIT)]
    return form


def unshown_note(text: str) -> tuple[str, str]:
    """``(code, message)`` of the note on a cell showing the cell form of ``text`` (untouched, it is never sent)."""
    size = utf16_length(text)
    odd = sorted({ch for ch in _ODD.findall(text)})
    shown = ", ".join(f"U+{ord(ch):04X}" for ch in odd[:4]) + (" ..." if len(odd) > 4 else "")
    chars = (f"the platform sent characters a workbook cannot hold (not valid Unicode, or control characters: {shown}); "
             f"they show as '{REPLACEMENT}' (U+FFFD)")
    keeps = "The platform keeps its text as long as this cell is not edited; typing over it replaces the whole text."
    if size > CELL_LIMIT:
        also = f"; and {chars[len('the platform sent '):]}" if odd else ""
        return "cut-short", f"the platform's text is {size:,} characters, more than a cell holds ({CELL_LIMIT:,}): cut short here{also}. {keeps}"
    return "invalid-unicode", f"{chars}. {keeps}"


def why_not_shown(text: str) -> str:
    """Why a cell cannot show ``text`` exactly, for a note: its length, and/or the characters it cannot hold."""
    reasons = []
    size = utf16_length(text)
    if size > CELL_LIMIT:
        reasons.append(f"is {size:,} characters long, more than a cell holds ({CELL_LIMIT:,})")
    odd = sorted({ch for ch in _ODD.findall(text)})
    if odd:
        shown = ", ".join(f"U+{ord(ch):04X}" for ch in odd[:4]) + (" ..." if len(odd) > 4 else "")
        reasons.append(f"holds characters a workbook cannot keep ({shown})")
    return " and ".join(reasons) or "cannot be shown exactly"


_T = TypeVar("_T")


def cell_text(value: _T) -> _T:
    """A value about to be written into a cell: text in its cell form, anything else as it is."""
    return cast(_T, cell_form(value)) if isinstance(value, str) else value
