"""Cell codecs: turn cell values into canonical text and back, per column type.

Cells arrive in the shapes Excel, openpyxl and CSV readers give (``str``, ``float``, ``int``,
``bool``, ``datetime``, ``None``). Everything rosterbook compares or sends is *canonical text*:
``to_text`` gives it, the ``parse_*`` functions check it and ``format_*`` write it back, so that
``format(parse(x)) == x`` for every canonical ``x``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

import email_validator
from email_validator import EmailNotValidError, validate_email

from rosterbook.core.problems import quote_choices

Cell = str | int | float | bool | dt.datetime | dt.date | dt.time | None


class CodecError(ValueError):
    """A cell value does not fit its column; carries the message and an obvious fix, if any."""

    def __init__(self, code: str, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fix = fix


# --- any cell -> text ---------------------------------------------------------------------


def to_text(value: Cell) -> str | None:
    """Canonical text of a raw cell: None for blank, outer whitespace stripped.

    Whole floats lose their ``.0`` (Excel hands every number over as a float), dates become
    ISO text, booleans ``TRUE``/``FALSE`` as Excel shows them.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        return text or None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):  # an empty numeric cell in some readers
            return None
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat()
    return str(value).strip() or None


def is_non_text(value: Cell) -> bool:
    """True when a cell holds a number or date rather than text (Excel converted it)."""
    return value is not None and not isinstance(value, str)


# --- suggestions ----------------------------------------------------------------------------


def _letters(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def suggest(value: str, choices: Sequence[str]) -> str | None:
    """The allowed value a typo most likely meant: the same word in another case or with symbols
    around it (``'*active*'`` -> ``Active``), else a close spelling (``'actve'`` -> ``Active``)."""
    return _suggest(value, tuple(choices))


@lru_cache(maxsize=4096)
def _suggest(value: str, choices: tuple[str, ...]) -> str | None:
    # Cached: the same typo tends to repeat down a column, and difflib is slow.
    folded = value.strip().casefold()
    for choice in choices:
        if choice.casefold() == folded:
            return choice
    letters = _letters(value)
    if letters:
        for choice in choices:
            if _letters(choice) == letters:
                return choice
    by_fold = {c.casefold(): c for c in choices}
    close = difflib.get_close_matches(folded, list(by_fold), n=1, cutoff=0.6)
    return by_fold[close[0]] if close else None


def not_one_of(value: str, choices: Sequence[str]) -> CodecError:
    """The ``not-allowed`` error for a value outside a fixed list, with the likely fix."""
    fix = suggest(value, choices)
    message = f"{value!r} is not one of {quote_choices(choices)}."
    return CodecError("not-allowed", message, fix)


# --- status words ----------------------------------------------------------------------------


def parse_status(text: str, words: Sequence[str]) -> str:
    """The status word exactly as the platform expects it; anything else is an error.

    Progression (000): "add the word, without any symbols or additions". A word in the wrong
    case or wrapped in symbols gets the exact word as its fix.
    """
    if text in words:
        return text
    fix = suggest(text, words)
    message = f"{text!r} is not one of {quote_choices(words)}."
    if fix is not None and _letters(fix) == _letters(text):
        message = f"{text!r} is not one of {quote_choices(words)}: write the word exactly, without symbols or additions."
    raise CodecError("unknown-status", message, fix)


def format_status(word: str) -> str:
    """A status word's cell text (the word itself)."""
    return str(word)


# --- lists ----------------------------------------------------------------------------------


def split_list(text: str, separator: str, escape: str | None = None) -> list[str]:
    """Items of a list cell. ``; `` lists tolerate a missing space and a trailing ``;``;
    ``|`` lists honour ``\\|`` for a literal ``|``. Items are stripped; empty items dropped."""
    sep = separator.strip() or separator
    if escape is None:
        return [item.strip() for item in text.split(sep) if item.strip()]
    items: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == escape and text.startswith(sep, i + 1):
            current.append(sep)
            i += 1 + len(sep)
            continue
        if text.startswith(sep, i):
            items.append("".join(current))
            current = []
            i += len(sep)
            continue
        current.append(ch)
        i += 1
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def join_list(items: Iterable[str], separator: str, escape: str | None = None) -> str:
    """A list cell's canonical text: items joined by the separator, a literal separator escaped."""
    sep = separator.strip() or separator
    parts = []
    for item in items:
        if escape is not None:
            if item.endswith(escape):
                raise CodecError(
                    "unrepresentable-item",
                    f"{item!r} ends with {escape!r}, which would escape the separator {sep!r}.",
                )
            item = item.replace(sep, escape + sep)
        elif sep in item:
            raise CodecError("separator-in-item", f"{item!r} contains the list separator {sep!r}, which cannot be escaped.")
        parts.append(item)
    return separator.join(parts)


parse_list = split_list
format_list = join_list


def canonical_list(text: str, separator: str, escape: str | None = None) -> str:
    """Re-join a list cell in canonical form (normalises ``a;b;`` to ``a; b``)."""
    return join_list(split_list(text, separator, escape), separator, escape)


# Wrong separators people type: a comma-separated ``Admin,Learner`` in a ``; `` list, etc.
_OTHER_SEPARATORS = (",", ";", "|", "/", "\n")


def wrong_separator(text: str, separator: str, escape: str | None = None) -> str | None:
    """The separator a list cell seems to use instead of the right one, if any."""
    sep = separator.strip() or separator
    for other in _OTHER_SEPARATORS:
        if other == sep:
            continue
        if other in text:
            return other
    return None


def unescaped_separator_looks_literal(text: str, separator: str, escape: str | None) -> bool:
    """True when a ``|``-list cell has an unescaped ``|`` with no spaces around it (``Main|HQ``).

    Jostle's own example: ``Main|HQ`` meant as one location must be written ``Main\\|HQ``,
    otherwise it becomes two. A separator with spaces around it (``Main | HQ``) reads as a list.
    """
    if escape is None:
        return False
    sep = separator.strip() or separator
    for match in re.finditer(re.escape(sep), text):
        i = match.start()
        if i > 0 and text[i - 1] == escape:
            continue
        before = text[i - 1] if i > 0 else " "
        after = text[i + len(sep)] if i + len(sep) < len(text) else " "
        if not before.isspace() and not after.isspace():
            return True
    return False


# --- emails -----------------------------------------------------------------------------------


# A strict subset of what email-validator accepts, decided by one regular expression (~0.5 µs
# instead of email-validator's ~35 µs): dot-atoms of ASCII atext or letters (José's address too),
# a domain of ASCII labels with single inner hyphens (no IDNA "--"), a letters-only TLD that is not
# a special-use name (RFC 6761). Possessive quantifiers: no backtracking. Anything else goes to
# email-validator; tests prove every address taken here is one email-validator accepts.
# Letters are spelled out (A-Za-z) rather than matched with re.IGNORECASE, which makes matching about twice
# as slow; only the reserved top-level domains are compared without case.
_DOMAIN = r"@(?:[A-Za-z0-9]++(?:-[A-Za-z0-9]++)*+\.)++(?!(?i:arpa|invalid|local|localhost|onion|test)\Z)[A-Za-z]{2,63}"
_SIMPLE_EMAIL = re.compile(r"[A-Za-z0-9_+'-]++(?:\.[A-Za-z0-9_+'-]++)*+" + _DOMAIN)
_SIMPLE_EMAIL_UNICODE = re.compile(r"(?:[A-Za-z0-9_+'-]|[^\W\d_])++(?:\.(?:[A-Za-z0-9_+'-]|[^\W\d_])++)*+" + _DOMAIN)


def fast_valid_email(text: str) -> bool:
    """True when ``text`` is certainly a valid address (False: ask ``is_valid_email``)."""
    if len(text) > 254 or (_SIMPLE_EMAIL if text.isascii() else _SIMPLE_EMAIL_UNICODE).fullmatch(text) is None:
        return False
    at = text.index("@")
    return at <= 64 and (len(text) - at <= 64 or all(len(label) <= 63 for label in text[at + 1 :].split(".")))


_fast_valid_email = fast_valid_email


def valid_emails(texts: Iterable[str]) -> set[str]:
    """The texts ``fast_valid_email`` accepts, tested in bulk (``doubtful_emails``)."""
    distinct = set(texts)
    return distinct.difference(doubtful_emails(distinct))


_LOCAL = r"[A-Za-z0-9_+'-]++(?:\.[A-Za-z0-9_+'-]++)*+"
_LOCAL_UNICODE = r"(?:[A-Za-z0-9_+'-]|[^\W\d_])++(?:\.(?:[A-Za-z0-9_+'-]|[^\W\d_])++)*+"
_BULK_EMAIL = re.compile("\x00" + _LOCAL + _DOMAIN.replace(r"\Z", "\x00") + "(?=\x00)")
_DOMAIN_SAMPLE = 32


def doubtful_emails(texts: Iterable[str]) -> set[str]:
    """The texts ``fast_valid_email`` refuses (``is_valid_email`` must decide), tested in bulk (each one as often as
    it comes: pass distinct texts where they repeat)."""
    return survey_emails(texts)[0]


def survey_emails(texts: Iterable[str]) -> tuple[set[str], set[str]]:
    """``doubtful_emails``, and the texts whose domain the test did not see to be an ordinary one: a superset of those
    with a special-use domain (``special_use_domain`` decides for these few).

    The texts are joined with NULs and one regular-expression substitution removes every address the fast
    path takes, so no Python call is made per address: what is left is the few to look at one by one.
    Addresses share few domains: those of a sample that the fast path takes (and that are not special-use)
    are matched as literals, about twice as fast as the domain rules; other domains are left over.
    """
    items = texts if isinstance(texts, list) else list(texts)
    joined = "\x00" + "\x00".join(items) + "\x00"
    if joined.count("\x00") != len(items) + 1:  # a text holding a NUL: the joined text cannot be split back
        return {t for t in items if not _fast_valid_email(t)}, set(items)
    domains = sorted({t.rpartition("@")[2] for t in items[:: max(1, len(items) // _DOMAIN_SAMPLE)]})
    known = "|".join(re.escape(d) for d in domains if _SIMPLE_EMAIL.fullmatch("a@" + d) and special_use_domain("a@" + d) is None)
    if known:
        rest = re.sub(f"\x00{_LOCAL}@(?:{known})(?=\x00)", "", joined)
        if not rest.isascii():  # letters beyond ASCII (José's address), at the same domains
            rest = re.sub(f"\x00{_LOCAL_UNICODE}@(?:{known})(?=\x00)", "", rest)
    else:
        rest = joined
    unsettled = set(rest.split("\x00"))
    unsettled.discard("")
    rest = _BULK_EMAIL.sub("", rest)
    out = {t for t in rest.split("\x00") if t and not _fast_valid_email(t)}
    if items and max(map(len, items)) > 64:  # at most 64 characters: within every length limit of fast_valid_email
        out.update(t for t in items if len(t) > 64 and not _fast_valid_email(t))
    if "" in items:
        out.add("")
        unsettled.add("")
    return out, unsettled


PRIVATE_USE_DOMAINS: tuple[str, ...] = ("internal",)
"""Private-use top-level names email-validator 2.4.0 does not list as special-use (ICANN reserved ``.internal`` in 2024)."""


def special_use_names() -> tuple[str, ...]:
    """The special-use and private-use top-level names (email-validator's list, read now, plus ``PRIVATE_USE_DOMAINS``)."""
    return (*email_validator.SPECIAL_USE_DOMAIN_NAMES, *PRIVATE_USE_DOMAINS)


def special_use_domain(text: str) -> str | None:
    """The special-use or private-use name an address's domain is or ends with (``test``, ``local``, ``invalid``,
    ``localhost``, ``internal``, ...: email-validator's list plus ``PRIVATE_USE_DOMAINS``), else None.

    Such an address is valid, but cannot receive mail on the internet (a staging tenant uses them)."""
    domain = text.rpartition("@")[2].rstrip(".").casefold()
    for name in special_use_names():
        if domain == name or domain.endswith("." + name):
            return name
    return None


@lru_cache(maxsize=65536)
def _validate_email(text: str) -> str | None:
    if _fast_valid_email(text):
        return None
    # Syntax decides: email-validator's test_environment accepts '.test' addresses; the other special-use names
    # (.local, .invalid, .localhost, ...) are refused whatever the options, so their syntax is checked as '.test'.
    special = special_use_domain(text)
    candidate = text
    if special is not None and special not in PRIVATE_USE_DOMAINS and special != "test":
        candidate = text.rstrip(".")[: -len(special)] + "test"
    try:
        validate_email(candidate, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def is_valid_email(text: str) -> bool:
    """True when ``text`` is a syntactically valid email address (email-validator, no DNS look-up; special-use
    domains such as ``.test`` or ``.local`` included: ``special_use_domain`` tells them)."""
    return _fast_valid_email(text) or _validate_email(text) is None


def parse_email(text: str) -> str:
    """The address as written, when it is a valid email (checked by email-validator)."""
    if _fast_valid_email(text):
        return text
    reason = _validate_email(text)
    if reason is not None:
        raise CodecError("invalid-email", f"{text!r} is not a valid email address: {reason}", _email_fix(text))
    return text


def _email_fix(text: str) -> str | None:
    """The address a mistyped cell obviously holds (``Jane <jane@x.com>``, ``mailto:``, spaces, ``..``)."""
    cleaned = text.strip()
    angle = re.search(r"<([^<>]+)>", cleaned)
    if angle:
        cleaned = angle.group(1)
    cleaned = cleaned.removeprefix("mailto:").replace(" ", "").strip("<>.,;")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    if cleaned and cleaned != text and _validate_email(cleaned) is None:
        return cleaned
    return None


def email_key(text: str) -> str:
    """Emails compare case-insensitively."""
    return text.casefold()


# --- booleans -----------------------------------------------------------------------------------

_TRUE = ("true", "yes", "y", "1", "on")
_FALSE = ("false", "no", "n", "0", "off")


def parse_bool(text: str) -> bool:
    """``TRUE``/``FALSE`` (and yes/no, 1/0, on/off in any case) as a bool."""
    folded = text.strip().casefold()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise CodecError("invalid-bool", f"{text!r} is not one of 'TRUE', 'FALSE'.", suggest(text, ["TRUE", "FALSE"]))


def format_bool(value: bool) -> str:
    """A bool's canonical cell text, as Excel shows it (``TRUE``/``FALSE``)."""
    return "TRUE" if value else "FALSE"


# --- dates ----------------------------------------------------------------------------------------

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_date(text: str) -> dt.date:
    """An ISO date ``YYYY-MM-DD``. Other spellings are refused: with the ISO form as the fix when
    it is certain, and saying so when day and month could be either way round (``03/12/2024``)."""
    if _ISO_DATE.fullmatch(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise CodecError("invalid-date", f"{text!r} is not a real date (YYYY-MM-DD).") from None
    readings = _date_readings(text)
    if len(readings) > 1:
        raise CodecError(
            "ambiguous-date",
            f"{text!r} could be {readings[0]} or {readings[1]} (day and month are ambiguous); write dates as YYYY-MM-DD.",
        )
    fix = readings[0] if readings else None
    raise CodecError("invalid-date", f"{text!r} is not a date written YYYY-MM-DD.", fix)


def _date_readings(text: str) -> list[str]:
    """The ISO dates a non-ISO date text could mean (none, one, or two when day/month are ambiguous)."""
    stamp = re.fullmatch(r"(\d{4}-\d{2}-\d{2})[ T]00:00(:00)?", text)
    if stamp:
        return [stamp.group(1)]
    loose = re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", text)
    if loose:
        year, month, day = (int(p) for p in loose.groups())
        return _real_dates((year, month, day))
    parts = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", text)
    if not parts:
        return []
    a, b, year = (int(p) for p in parts.groups())
    if a == b:
        return _real_dates((year, a, b))
    return _real_dates((year, b, a), (year, a, b))  # day-first reading first, as most of the world writes it


def _real_dates(*candidates: tuple[int, int, int]) -> list[str]:
    found = []
    for year, month, day in candidates:
        try:
            found.append(dt.date(year, month, day).isoformat())
        except ValueError:
            continue
    return found


def _guess_date(text: str) -> str | None:
    readings = _date_readings(text)
    return readings[0] if len(readings) == 1 else None


def format_date(value: dt.date) -> str:
    """A date's canonical cell text (ISO ``YYYY-MM-DD``)."""
    return value.isoformat()


# --- IDs and phones (text that looks like numbers) --------------------------------------------

_SCIENTIFIC = re.compile(r"[+-]?\d(\.\d+)?[eE][+-]?\d+")
_PHONE = re.compile(r"\+?[0-9 ()./-]{3,}(\s*(x|ext\.?)\s*\d+)?", re.IGNORECASE)


def parse_id(text: str) -> str:
    """IDs are text: ``00123`` keeps its zeros. Excel's scientific form (``1.23E+15``) is refused."""
    if _SCIENTIFIC.fullmatch(text):
        raise CodecError(
            "mangled-number",
            f"{text!r} looks like a number Excel rewrote in scientific notation; the original ID is lost. Format the column as Text and type it again.",
        )
    return text


def format_id(value: str) -> str:
    """An ID's cell text: the ID itself, as text."""
    return str(value)


def parse_phone(text: str) -> str:
    """A phone number as written (digits, spaces, ``+ - ( ) . /`` and an extension)."""
    if _SCIENTIFIC.fullmatch(text):
        raise CodecError("mangled-number", f"{text!r} looks like a phone number Excel rewrote in scientific notation.")
    if not _PHONE.fullmatch(text):
        raise CodecError("invalid-phone", f"{text!r} is not a phone number (digits, spaces, '+', '-', '(', ')').")
    return text


_SURE_DATE = re.compile(r"[1-9]\d{3}-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])")
"""ISO dates every month has (days 1-28, years 1000-9999): ``parse_date`` takes each without a look."""

SHAPES: dict[str, tuple[re.Pattern[str] | None, re.Pattern[str] | None]] = {
    "id": (None, _SCIENTIFIC),
    "phone": (_PHONE, None),
    "date": (_SURE_DATE, None),
}
"""Column type -> (passes, refused): a text that ``passes`` matches whole is one its parser takes; a text ``refused``
matches whole is one it refuses; with ``passes`` None every other text is taken. Lets the checks look at a whole
column with one regular-expression pass and call the parser only for the rest (``checks._shape_suspects``)."""


# --- the whole cell --------------------------------------------------------------------------------


def canonical(text: str, column_type: str, *, separator: str | None = None, escape: str | None = None) -> str:
    """The canonical spelling of already-valid cell text, for comparing a cell with the snapshot."""
    if column_type == "list" and separator is not None:
        return canonical_list(text, separator, escape)
    if column_type == "bool":
        return format_bool(parse_bool(text))
    return text


def canonical_or_text(text: str | None, column_type: str | None, *, separator: str | None = None, escape: str | None = None) -> str | None:
    """``canonical`` of a cell's text, or the text as typed when it is invalid (checks report it; it equals only itself).

    Blank stays None; ``column_type`` None (a custom column the dialect does not know) compares as text.
    """
    if text is None or column_type is None:
        return text
    try:
        return canonical(text, column_type, separator=separator, escape=escape)
    except CodecError:
        return text


# --- CSV injection ---------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def looks_like_formula(text: str) -> bool:
    """Text a spreadsheet would run as a formula when opened (OWASP CSV injection)."""
    return text.startswith(_FORMULA_START)


def neutralise_csv_cell(text: str) -> str:
    """Make a CSV cell inert: text starting with ``= + - @`` (or tab/CR) gets a leading ``'``.

    A phone number such as ``+44 20 7946 0000`` (``ext. 12`` included) or a negative number is left
    alone: only text that is not a plain number is prefixed (OWASP's recommendation, minus false
    alarms on phones).
    """
    if not looks_like_formula(text):
        return text
    if _PLAIN_NUMBER.fullmatch(text):
        return text
    return "'" + text


# A number or a phone number, an extension included ('+44 20 7946 0000 ext. 12'): nothing a spreadsheet could run.
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9][0-9 ()./-]*(?:\s*(?:x|ext\.?)\s*[0-9]+)?", re.IGNORECASE)
