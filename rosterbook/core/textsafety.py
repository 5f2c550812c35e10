"""Text that looks like something else: invisible characters, lookalike keys, and text a cell cannot hold.

- **Invisible characters** (zero-width, bidi controls, control characters, fillers): in a key
  they make the platform store a different key than the one the sheet shows (an error); in
  other text they are usually pasted by accident (a warning). Either way the fix is the text
  without them. A zero-width joiner or non-joiner between two non-ASCII characters (Persian,
  Indic scripts, emoji sequences) is part of the writing, not an accident, and passes in
  ordinary text.
- **Lookalike keys**: two keys equal once letter case, Unicode normalisation (NFC) and invisible
  characters are set aside are the same person to a human and often to the platform.
- **Cells**: text from a platform that is not valid Unicode (lone surrogates), that holds
  characters a workbook cannot store, or that is longer than a cell holds is made storable and
  reported, so the cell and the snapshot hold the same text (no phantom edit).

Pure functions; every hot path starts with a C-speed test on the whole column.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence

CELL_LIMIT = 32767
"""The most characters an Excel cell holds (and the snapshot's one cell per user)."""

# Characters nobody sees in a cell. Ranges, so the pattern is built without scanning Unicode.
_FORMAT = (
    "\u00ad"  # soft hyphen
    "\u061c"  # Arabic letter mark
    "\u180e"  # Mongolian vowel separator
    "\u200b-\u200f"  # zero width space, non-joiner, joiner; left-to-right and right-to-left marks
    "\u202a-\u202e"  # bidi embeddings and overrides
    "\u2060-\u2064"  # word joiner, invisible operators
    "\u2066-\u206f"  # bidi isolates, deprecated format characters
    "\ufeff"  # zero width no-break space (BOM)
    "\ufff9-\ufffb"  # interlinear annotation
    "\U0001bca0-\U0001bca3"  # shorthand format controls
    "\U0001d173-\U0001d17a"  # musical symbol format controls
    "\U000e0001\U000e0020-\U000e007f"  # tag characters
)
_FILLERS = (
    "\u034f"  # combining grapheme joiner
    "\u115f\u1160\u3164\uffa0"  # Hangul fillers
    "\u17b4\u17b5"  # Khmer inherent vowels
    "\u2028\u2029"  # line and paragraph separators
    "\u2800"  # braille pattern blank
)
_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_SELECTORS = "\ufe00-\ufe0f\U000e0100-\U000e01ef"  # variation selectors: emoji style in text, a trap in a key

VISIBLE_FORMAT = frozenset(
    [*map(chr, range(0x0600, 0x0606)), "\u06dd", "\u070f", "\u0890", "\u0891", "\u08e2", "\U000110bd", "\U000110cd",
     *map(chr, range(0x13430, 0x13440)), *map(chr, range(0x13440, 0x13456))]
)
"""Format characters (category Cf) that are drawn (number signs, hieroglyph layout): not flagged."""

_IN_KEY = re.compile(f"[{_FORMAT}{_FILLERS}{_CONTROLS}\t\n\r{_SELECTORS}]")
_IN_TEXT = re.compile(f"[{_FORMAT}{_FILLERS}{_CONTROLS}]")
_JOINERS = frozenset("\u200c\u200d")
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
"""What a workbook (XML 1.0) cannot store: control characters but tab, LF and CR; lone surrogates; U+FFFE/U+FFFF."""


def _joining(text: str, index: int) -> bool:
    """A ZWJ/ZWNJ between two non-ASCII, non-space characters: writing, not an accident."""
    if index == 0 or index == len(text) - 1:
        return False
    before, after = text[index - 1], text[index + 1]
    return not (before.isascii() or after.isascii() or before.isspace() or after.isspace())


def invisible_characters(text: str, *, key: bool) -> list[int]:
    """Positions of the invisible characters in ``text`` (in a key, also tabs, line breaks and variation selectors)."""
    pattern = _IN_KEY if key else _IN_TEXT
    out = []
    for match in pattern.finditer(text):
        i = match.start()
        if not key and text[i] in _JOINERS and _joining(text, i):
            continue
        out.append(i)
    return out


def without_invisible(text: str, *, key: bool) -> str:
    """``text`` without its invisible characters (the fix a check offers)."""
    found = set(invisible_characters(text, key=key))
    return "".join(ch for i, ch in enumerate(text) if i not in found) if found else text


def describe(chars: Sequence[str]) -> str:
    """``U+200B ZERO WIDTH SPACE, U+202E RIGHT-TO-LEFT OVERRIDE`` (distinct, at most three)."""
    distinct = list(dict.fromkeys(chars))
    names = [f"U+{ord(c):04X} {unicodedata.name(c, 'CONTROL CHARACTER')}" for c in distinct[:3]]
    return ", ".join(names) + (f" and {len(distinct) - 3} more" if len(distinct) > 3 else "")


_PRINTABLE_INVISIBLE = "\u034f\u115f\u1160\u3164\uffa0\u17b4\u17b5\u2800"
"""The invisible characters ``str.isprintable`` accepts (the others are Cc, Cf, Zl or Zp, which it refuses)."""


def column_has_invisible(texts: Sequence[str | None], *, key: bool) -> bool:
    """Whether any text of a column may hold an invisible character: C-speed passes over the joined column."""
    joined = "".join(filter(None, texts))
    if joined.isprintable():
        if joined.isascii() or _latin1(joined):
            return False  # the invisible characters below U+0100 (controls, the soft hyphen) are not printable
        if not key:
            return any(ch in joined for ch in _PRINTABLE_INVISIBLE)  # names in any script: no regex over the column
    return (_IN_KEY if key else _IN_TEXT).search(joined) is not None


def _latin1(text: str) -> bool:
    """Whether every character is below U+0100 (José, Zoë, Siobhán): one C-speed copy, no per-character call."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def invisible_findings(texts: Sequence[str | None], *, key: bool) -> list[tuple[int, str, str]]:
    """``(index, characters described, cleaned text)`` for each text holding invisible characters."""
    if not column_has_invisible(texts, key=key):
        return []
    out = []
    pattern = _IN_KEY if key else _IN_TEXT
    for i, text in enumerate(texts):
        if text is None or not pattern.search(text):
            continue
        positions = invisible_characters(text, key=key)
        if positions:
            out.append((i, describe([text[p] for p in positions]), without_invisible(text, key=key)))
    return out


def skeleton(text: str) -> str:
    """What a key looks like to a person: invisible characters removed, NFC, case folded."""
    if text.isascii() and text.isprintable():
        return text.lower()  # casefold is lower for ASCII, and ASCII is already NFC
    cleaned = without_invisible(text, key=True)
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", cleaned).casefold())


_IN_KEY_BUT_NUL = re.compile(f"[{_FORMAT}{_FILLERS}{_CONTROLS.replace(chr(0), chr(1), 1)}\t\n\r{_SELECTORS}]")
"""``_IN_KEY`` without NUL, the separator of ``skeletons``."""


def skeletons(texts: Sequence[str]) -> list[str]:
    """``skeleton`` of each text: one normalisation of them all when none holds an invisible character (or a NUL)."""
    joined = "\x00".join(texts)
    if texts and joined.count("\x00") == len(texts) - 1 and _IN_KEY_BUT_NUL.search(joined) is None:
        # NUL is a starter nothing composes with, and its own case fold: each text normalises and folds on its own.
        out = unicodedata.normalize("NFC", unicodedata.normalize("NFC", joined).casefold()).split("\x00")
        if len(out) == len(texts):
            return out
    return list(map(skeleton, texts))


# --- a file's text, scanned once for all of its cells ----------------------------------------------


def _classes(delimiter: str) -> bytes:
    """A ``bytes.translate`` table of Latin-1 characters: 0 separates cells (the delimiter, CR, LF); 4 is invisible
    (in a key); 1 must not touch a separator (whitespace, and '=', '+', '-', '@' at a cell's start); 2 is the rest."""
    table = bytearray(b"\x02" * 256)
    for code in range(256):
        char = chr(code)
        if char in (delimiter, "\r", "\n"):
            table[code] = 0
        elif _IN_KEY.match(char):
            table[code] = 4
        elif char.isspace() or char in "=+-@":
            table[code] = 1
    return bytes(table)


_CLASSES = {delimiter: _classes(delimiter) for delimiter in (",", ";", "\t")}


def plain_cells(text: str, delimiter: str, *, piece: int = 1 << 16) -> bool:
    """Whether every cell of ``text``, a file whose cells are exactly the text between delimiters and line ends (no
    quoting), is plain: no whitespace around it, no invisible character, not starting with '=', '+', '-' or '@'.

    Then no cell needs stripping, nor a look for invisible characters, formula text or what a CSV upload escapes.
    C-speed passes answer for all cells of a Latin-1 text (each character one byte; False for any other): each
    character mapped to a class, then searched for an invisible one and for a class-1 character next to a separator.
    A cell ending in '=', '+', '-' or '@' also answers False: fine, the checks then look at each cell as usual.
    The text is mapped ``piece`` characters at a time (the pairs across two pieces looked at too): two 64 KB buffers
    stay in the processor's caches where two copies of a 4 MB file would not (16 ms against 23 ms).
    """
    table = _CLASSES.get(delimiter) or _classes(delimiter)
    last = -1  # the class of the character before this piece (-1: none, the text's start)
    for start in range(0, len(text), piece):
        try:
            classes = text[start : start + piece].encode("latin-1").translate(table)
        except UnicodeEncodeError:
            return False
        if b"\x04" in classes or b"\x00\x01" in classes or b"\x01\x00" in classes:
            return False
        first = classes[0]
        if (first == 1 and last in (-1, 0)) or (first == 0 and last == 1):  # at the text's start or after a separator; before one
            return False
        last = classes[-1]
    return last != 1


def why_alike(first: str, second: str) -> str:
    """Which differences a lookalike key hides (for the message)."""
    reasons = []
    if invisible_characters(first, key=True) or invisible_characters(second, key=True):
        reasons.append("invisible characters")
    a, b = without_invisible(first, key=True), without_invisible(second, key=True)
    na, nb = unicodedata.normalize("NFC", a), unicodedata.normalize("NFC", b)
    if na != a or nb != b:
        reasons.append("Unicode normalisation")
    if na != nb:  # equal once case-folded (they share a skeleton), so the case differs
        reasons.append("letter case")
    return " and ".join(dict.fromkeys(reasons)) or "letter case"


# --- text from a platform, made storable in a cell -------------------------------------------------


def fit_for_cells(values: Mapping[str, str | None], *, invalid_unicode: bool = False) -> tuple[dict[str, str | None], list[tuple[str, str, str]]]:
    """Values a workbook can store, and ``(column, code, message)`` for each one that had to change.

    Unstorable characters and lone surrogates become U+FFFD (``invalid-unicode``); a text longer than
    a cell holds, or a user whose values would not fit the snapshot's one cell, is cut short
    (``cut-short``). ``invalid_unicode``: the platform's text for this user was not valid Unicode
    and already shows U+FFFD (the connector replaced it): those cells are reported too.
    The same values go into the cells and the snapshot, so nothing looks edited.
    """
    joined = "".join([t for t in values.values() if t])
    if (not invalid_unicode and 2 * len(joined) + sum(map(len, values)) + 8 * len(values) <= CELL_LIMIT  # JSON at most doubles text
            and (joined.isprintable() or not _UNSTORABLE.search(joined))):
        return dict(values), []  # the usual user: one pass over their text
    out = dict(values)
    notes: dict[str, tuple[str, str]] = {}
    for name, text in values.items():
        if text is None:
            continue
        if _UNSTORABLE.search(text):
            text = _UNSTORABLE.sub("\ufffd", text)
            notes[name] = ("invalid-unicode", "the platform sent characters a workbook cannot hold (not valid Unicode, or control characters); "
                                              "they show as '\ufffd' (U+FFFD). Editing this cell sends the text as shown.")
        elif invalid_unicode and "\ufffd" in text:
            notes[name] = ("invalid-unicode", "the platform sent text that is not valid Unicode; the invalid part shows as '\ufffd' (U+FFFD). "
                                              "Editing this cell sends the text as shown.")
        if len(text) > CELL_LIMIT:
            notes[name] = ("cut-short", f"the platform's text is {len(text):,} characters, more than a cell holds ({CELL_LIMIT:,}): "
                                        "cut short here. The platform keeps its full text as long as this cell is not edited.")
            text = text[:CELL_LIMIT]
        out[name] = text
    # The snapshot keeps a user's values as JSON in one cell: cut the longest until they fit.
    for _ in range(len(out)):
        size = len(json.dumps(out, ensure_ascii=False, sort_keys=True))
        if size <= CELL_LIMIT:
            break
        name = max((n for n, t in out.items() if t), key=lambda n: len(out[n] or ""))
        text = out[name] or ""
        keep = max(0, len(text) - (size - CELL_LIMIT) - 64)
        out[name] = text[:keep]
        notes[name] = ("cut-short", f"the platform's text is {len(values.get(name) or ''):,} characters; together with this user's other values it is "
                                    f"more than a workbook keeps for one user ({CELL_LIMIT:,}): cut short here to {keep:,}. "
                                    "The platform keeps its full text as long as this cell is not edited.")
    return out, [(name, code, message) for name, (code, message) in notes.items()]


def cell_notes(values: Mapping[str, str | None], *, invalid_unicode: bool = False) -> list[tuple[str, str, str]]:
    """``(column, code, message)`` for each value a cell cannot show exactly (the snapshot keeps it exactly; the
    sheet shows its cell form, never sent untouched), and, with ``invalid_unicode``, for text the client received
    as invalid Unicode (already shown with U+FFFD)."""
    from rosterbook.core.cellform import shown_exactly, unshown_note

    out = []
    for name, text in values.items():
        if text is None:
            continue
        if not shown_exactly(text):
            out.append((name, *unshown_note(text)))
        elif invalid_unicode and "\ufffd" in text:
            out.append((name, "invalid-unicode", "the platform sent text that is not valid Unicode; the invalid part shows as '\ufffd' (U+FFFD). "
                                                 "Editing this cell sends the text as shown."))
    return out
