"""Row checks: every problem of a sheet or CSV file, yielded as values (never raised).

The checks a dialect implies are compiled once per dialect into one small validator per column
(set look-ups, precompiled patterns, a cached email validator), so checking 50,000 rows or
re-checking 10,000 rows from an Excel array formula stays fast.

Three entry points share the same rules:

- ``check_table``: a whole table (header, every row, duplicates across rows);
- ``check_matrix``: headers plus rows of raw cells -> one list of problems per input row
  (the Excel array function);
- ``check_value``: one value of one column (the Excel cell functions).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from itertools import chain, compress, repeat
from operator import and_, iadd, is_, is_not, itemgetter, ne, not_
from typing import TypeVar, cast

from rosterbook.core.codecs import (
    SHAPES,
    Cell,
    CodecError,
    is_valid_email,
    join_list,
    parse_bool,
    parse_date,
    parse_email,
    parse_id,
    parse_phone,
    parse_status,
    special_use_domain,
    split_list,
    suggest,
    survey_emails,
    to_text,
)
from rosterbook.core.crosschecks import Columns, columns_of_rows, columns_read
from rosterbook.core.dialects import Column, Dialect
from rosterbook.core.problems import Problem, Severity, cell_address, quote, quote_choices, sort_key
from rosterbook.core.report import CheckReport
from rosterbook.core.table import HEADER_ROW, Row, Table, is_blank_row, map_headers
from rosterbook.core.textsafety import invisible_findings, skeleton, skeletons, why_alike, without_invisible

__all__ = ["check_cells", "check_cells_and_columns", "check_matrix", "check_table", "check_value"]

Finding = tuple[Severity, str, str, str | None]
"""What a validator reports about one cell: severity, code, message, fix."""

Validator = Callable[[Cell, str], list[Finding] | None]
"""Checks one non-blank cell (raw value, canonical text); None when it is fine."""

HIDDEN = "(hidden)"
"""Shown instead of a write-only value (a password) in a problem."""

_KNOWN_SHOWN = 8  # how many known platform values a message lists before "..."
_CHUNK = 1000  # rows checked column by column at a time (and the progress step)
_MEMO = 20_000  # texts a column's memo of check results holds at most (``_TableChecker._memo``)
_T = TypeVar("_T")
_FREE_TEXT = frozenset({"text", "list", "id"})  # column types whose own check would accept an invisible character


# --- entry points --------------------------------------------------------------------------------


def check_table(
    table: Table,
    *,
    has_snapshot: bool = False,
    platform_choices: Mapping[str, Collection[str]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[Problem]:
    """Every problem of a table: header problems, then each row's, with cross-row duplicates.

    With ``has_snapshot`` rows without a ``row_id`` are new users (a blank ``required = "new"``
    cell is an error) and rows with one are existing users; without a snapshot nobody knows
    which rows are new, so such a blank is a warning. ``platform_choices`` gives the values the
    platform knows for ``choices_from_platform`` columns (unknown ones are warnings).
    ``progress(done, total)`` is called every 1,000 rows and at the end.
    """
    checker = _TableChecker.of(table, platform_choices)
    yield from table.header_problems
    rows = table.rows
    yield from checker.missing_new_columns(has_snapshot, [r.number for r in rows if r.row_id is None] if has_snapshot else [])
    total = len(rows)
    for start in range(0, total, _CHUNK):
        if progress is not None:
            progress(start, total)
        chunk = rows[start : start + _CHUNK]
        news = [row.row_id is None for row in chunk] if has_snapshot else None
        found = checker.check(checker.frame(chunk), news, cross_row=True)
        for i in sorted(found):
            yield from found[i]
    if progress is not None:
        progress(total, total)


def check_cells(
    dialect: Dialect,
    headers: Sequence[Cell],
    rows: Sequence[Sequence[Cell]],
    *,
    sheet: str = "Users",
    first_row: int = HEADER_ROW + 1,
    platform_choices: Mapping[str, Collection[str]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CheckReport:
    """``check_table(build_table(...))`` for rows of raw cells without a snapshot, as a report,
    without building a Row per row (checking a 50,000-row CSV file spends most of its time there)."""
    return _check_cells(dialect, headers, rows, sheet, first_row, platform_choices, progress, None, False)


def check_cells_and_columns(
    dialect: Dialect,
    headers: Sequence[Cell],
    rows: Sequence[Sequence[Cell]],
    *,
    sheet: str = "Users",
    first_row: int = HEADER_ROW + 1,
    progress: Callable[[int, int], None] | None = None,
    plain: bool = False,
) -> tuple[CheckReport, Columns]:
    """``check_cells``, and the same rows as ``columns_of_rows`` gives them to ``cross_checks``, holding the columns,
    texts and folded keys the cell checks computed (so the cross checks do not compute them again).

    ``plain``: the caller knows that every cell is plain text (``textsafety.plain_cells``): no cell is stripped, nor
    looked at for invisible characters, formula text or what an upload escapes (and the columns hold None for blank cells).
    """
    positions, _, _ = map_headers(headers, dialect, sheet)
    columns = columns_of_rows(dialect, sheet, headers, rows, positions, first_row, plain=plain)
    return _check_cells(dialect, headers, rows, sheet, first_row, None, progress, columns, plain), columns


def _check_cells(dialect: Dialect, headers: Sequence[Cell], rows: Sequence[Sequence[Cell]], sheet: str, first_row: int,
                 platform_choices: Mapping[str, Collection[str]] | None, progress: Callable[[int, int], None] | None,
                 columns: Columns | None, plain: bool) -> CheckReport:
    """The rows are made into columns a part at a time (``_CHUNK`` rows), each part checked while its cells are fresh in
    the processor's caches (transposing all 50,000 rows first, then checking them, reads every cell from memory again:
    slower). Parts of 1,000 rows beat parts of 10,000 (50,000-row file, 25 runs of each alternating in one process:
    median 0.213-0.268 s against 0.299-0.353 s on a busy machine, best 0.166 s against 0.181-0.211 s)."""
    positions, _, header_problems = map_headers(headers, dialect, sheet)
    checker = _TableChecker(dialect, sheet, positions, [to_text(h) or "" for h in headers], platform_choices)
    problems = [*header_problems, *checker.missing_new_columns(False, [])]
    make_texts = _plain_texts if plain else _texts
    own = plain and _SPLIT_SHARES_EMPTY  # each plain column is its own texts (``_plain_texts``)
    # The columns the cross checks read (``columns_read``); a part's other cells are let go once it is checked, and the
    # memory they held serves the next part.
    wanted = columns_read(dialect, plain=plain) if columns is not None else frozenset()
    gathered: dict[str, tuple[list[Cell], list[str | None], bool]] = {
        name: ([], [], True) for name in checker.names if wanted is None or name in wanted}
    """Column -> (raw cells, texts unless ``own``, every cell text) of the parts checked so far."""
    folded: list[list[str]] | None = [] if checker.key in gathered and checker.key_folds else None
    total = 0
    step = _CHUNK
    for start in range(0, len(rows), step):
        if progress is not None:
            progress(start, len(rows))
        chunk = _frame_of_cells(checker, rows[start : start + step], first_row + start, plain)
        total += len(chunk)
        if columns is not None:
            columns.widths.update(chunk.widths)
        part = {name: make_texts(chunk.raws[name]) for name in checker.names}
        found = checker.check(chunk, None, cross_row=True, given=part, plain=plain)
        if folded is not None:
            keyed = checker.last_keyed
            folded = folded if keyed is not None and keyed.rows is None else None
            if folded is not None and keyed is not None:
                folded.append(keyed.folded)
        for i in sorted(found):
            problems.extend(found[i])
        for name, (column_texts, all_text) in part.items():
            if name in gathered:
                raws, texts, so_far = gathered[name]
                raws.extend(chunk.raws[name])
                if not own:
                    texts.extend(column_texts)
                gathered[name] = (raws, texts, so_far and all_text)
    if progress is not None:
        progress(len(rows), len(rows))
    if columns is not None and total == len(rows):  # no blank row left out: the gathered columns are the file's
        for name, addresses in checker.unsettled.items():
            if len(addresses) <= _CHUNK and not any(special_use_domain(a) for a in addresses if "@" in a):
                columns.ordinary_emails.add(name)
        for name, (raws, texts, all_text) in gathered.items():
            if all_text:
                keys: list[str | None] | None = list(chain.from_iterable(folded)) if name == checker.key and folded is not None else None
                columns.remember(name, raws, cast(list[str | None], raws) if own else texts, keys)
    return CheckReport.from_problems(total, problems)


def check_matrix(
    dialect: Dialect,
    headers: Sequence[Cell],
    rows: Sequence[Sequence[Cell]],
    *,
    sheet: str = "Users",
    first_row: int = HEADER_ROW + 1,
) -> list[list[Problem]]:
    """One list of problems per input row (blank rows get an empty list), duplicates across rows included.

    For the Excel array function: one call checks a whole range. Header problems have no row of
    their own and are left out; whether a row is new is unknown (as without a snapshot).
    """
    positions, _, _ = map_headers(headers, dialect, sheet)
    checker = _TableChecker(dialect, sheet, positions, [to_text(h) or "" for h in headers], None)
    frame = _frame_of_cells(checker, rows, first_row)
    out: list[list[Problem]] = [[] for _ in rows]
    for i, problems in checker.check(frame, None, cross_row=True).items():
        out[frame.numbers[i] - first_row] = problems
    return out


def check_value(
    dialect: Dialect,
    column: str,
    value: Cell,
    *,
    sheet: str = "Users",
    cell: str = "",
    platform_choices: Mapping[str, Collection[str]] | None = None,
) -> list[Problem]:
    """The problems of one value of one column (name or alias), as the Excel cell functions show them.

    Whether the user is new is unknown, so a blank in a column required for new users is a warning.
    ``platform_choices`` as for ``check_table`` (the workbook's known values).
    """
    row = _row_of(cell)
    found = dialect.find_column(column)
    if found is None:
        message = f"{column!r} is not a {dialect.title} column; expected one of {quote_choices(dialect.column_names)}."
        return [Problem("error", sheet, cell, row, column, column, "unknown-column", message, suggest(column, dialect.column_names))]
    rule = _rules(dialect)[found.name]
    text = to_text(value)
    if text is None:
        if found.name == dialect.key and dialect.key_fallback is not None:
            return []
        finding = rule.blank(None)
        return [] if finding is None else [_problem(finding, sheet, cell, row, found, None)]
    known = (platform_choices or {}).get(found.name)
    problems = [_problem(f, sheet, cell, row, found, value) for f in rule.findings(value, text, frozenset(known) if known is not None else None)]
    if not found.write_only:
        key = found.name in (dialect.key, dialect.key_fallback)
        problems += [_invisible_problem(sheet, cell, row, found.name, value, text, chars, cleaned, key)
                     for _, chars, cleaned in invisible_findings([text], key=key)]
    return problems


def _invisible_problem(sheet: str, cell: str, row: int, name: str, raw: Cell, text: str, chars: str, cleaned: str, key: bool) -> Problem:
    """``invisible-character``: an error in a key, a warning elsewhere; the fix is the text without them."""
    if key:
        message = f"{quote(text)} contains {chars}, invisible in the sheet: the platform would store a different {name} than the one shown. Remove it."
    else:
        message = f"{quote(text)} contains {chars}, invisible in the sheet; remove it unless it is meant to be there."
    return Problem("error" if key else "warning", sheet, cell, row, name, raw, "invisible-character", message, cleaned)


# --- per-column rules ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    """The compiled checks of one column."""

    column: Column
    validate: Validator
    allowed: str
    """``; expected one of ...`` for required-value messages, or empty."""
    dialect_title: str
    suspects: Callable[[list[str | None]], list[int]] | None = None
    """Indexes of the texts that may fail ``validate`` (a cheap column-wide pre-filter); None: every filled cell."""
    emails: Callable[[list[str | None], set[str]], list[int]] | None = None
    """For an email column, ``suspects`` instead: it also notes the addresses whose domain may be special-use."""
    shaped: bool = False
    """``suspects`` reads texts only (``_shape_suspects``): cells that are not text get a look as well."""

    def blank(self, is_new: bool | None) -> Finding | None:
        """The finding for a blank cell: required always, or for new users (unknown -> warning)."""
        required = self.column.required
        if required == "always":
            return ("error", "required", f"a value is required{self.allowed}.", None)
        if required == "new":
            if is_new is None:
                message = f"blank keeps an existing user's value, but a new user needs a value{self.allowed}."
                return ("warning", "required-if-new", message, None)
            if is_new:
                return ("error", "required", f"a value is required for a new user{self.allowed}.", None)
        return None

    def findings(self, raw: Cell, text: str, known: frozenset[str] | None) -> list[Finding]:
        """Every finding of a non-blank cell."""
        if isinstance(raw, str) and text.startswith("="):
            shown = HIDDEN if self.column.write_only else quote(text)
            message = f"{shown} is a formula's text, not a value: it would be sent as that text. Type the value itself."
            return [("error", "formula", message, None)]
        found = self.validate(raw, text)
        out = list(found) if found else []
        if known is not None:
            column = self.column
            if column.escape is not None and out:
                # Every part is a value the platform has: 'Toronto|Remote' is two known locations, not one name.
                items = split_list(text, column.separator or "|", column.escape)
                if all(item in known for item in items):
                    out = [f for f in out if f[1] != "unescaped-separator"]
            if column.escape is not None:
                split = _splits_known(column, self.dialect_title, text, known)
                if split is not None:
                    out = [f for f in out if f[1] != "unescaped-separator"] + [split]
            if column.choices_from_platform:
                out.extend(_unknown_values(column, text, known, self.dialect_title))
        return out


_RULES_CACHE: dict[int, tuple[Dialect, dict[str, _Rule]]] = {}


def _rules(dialect: Dialect) -> dict[str, _Rule]:
    """The compiled rules of a dialect's columns (cached per dialect object)."""
    entry = _RULES_CACHE.get(id(dialect))
    if entry is not None and entry[0] is dialect:
        return entry[1]
    rules = {c.name: _compile(dialect, c) for c in dialect.columns}
    if len(_RULES_CACHE) > 64:
        _RULES_CACHE.clear()
    _RULES_CACHE[id(dialect)] = (dialect, rules)
    return rules


def _compile(dialect: Dialect, column: Column) -> _Rule:
    allowed = ""
    if column.type == "status":
        allowed = f"; expected one of {quote_choices(w.word for w in dialect.status_words)}"
    elif column.choices:
        allowed = f"; expected one of {quote_choices(column.choices)}"
    checks: list[Validator] = [_type_validator(dialect, column)]
    if column.choices and column.type not in ("list", "choice"):
        checks.append(_choice_validator(column.choices))
    if column.pattern is not None:
        checks.append(_pattern_validator(column.pattern))
    validate = checks[0] if len(checks) == 1 else _chain(checks)
    if column.type == "email" and len(checks) == 1:
        emails = _distinct_email_suspects if column.unique or column.name == dialect.key else _email_suspects
        return _Rule(column, validate, allowed, dialect.title, None, emails)
    suspects = _suspects(dialect, column) if len(checks) == 1 else None
    return _Rule(column, validate, allowed, dialect.title, suspects, shaped=suspects is not None and column.type in SHAPES and not column.choices)


def _suspects(dialect: Dialect, column: Column) -> Callable[[list[str | None]], list[int]] | None:
    """A column-wide pre-filter for the common types: most cells are fine, so test them in one comprehension."""
    allowed: frozenset[str] | None = None
    if column.type == "status":
        allowed = frozenset(w.word for w in dialect.status_words)
    elif column.type == "choice" and column.choices:
        allowed = frozenset(column.choices)
    elif column.type == "list" and column.choices and column.escape is None:
        allowed = frozenset(column.choices)  # single-item cells in the choices are fine
    if allowed is not None:
        words = allowed | {None}

        def outside(texts: list[str | None]) -> list[int]:
            if set(texts) <= words:  # few distinct values: one C-speed pass says all are fine
                return []
            return list(compress(range(len(texts)), map(not_, map(words.__contains__, texts))))

        return outside
    if column.type == "text" and not column.choices:
        return _nothing
    if column.type in SHAPES and not column.choices:
        return _shape_suspects(*SHAPES[column.type])
    return None


def _shape_suspects(passes: re.Pattern[str] | None, refused: re.Pattern[str] | None) -> Callable[[list[str | None]], list[int]]:
    """The texts a column type's parser may refuse (``codecs.SHAPES``), found with one regular-expression pass over
    the column's texts joined with NULs (as ``survey_emails`` does for addresses): a parser call each only for those.

    Texts only: a cell that is not text (a number or date Excel made) is the check loop's to look at.
    """
    taken = re.compile(f"\x00(?:{passes.pattern})(?=\x00)", passes.flags) if passes is not None else None
    refusing = re.compile(f"\x00({refused.pattern})(?=\x00)", refused.flags) if refused is not None else None

    def suspects(texts: list[str | None]) -> list[int]:
        filled = cast(list[str], texts if None not in texts else [t for t in texts if t is not None])
        joined = "\x00" + "\x00".join(filled) + "\x00"
        if joined.count("\x00") != len(filled) + 1:  # a text holding a NUL: the joined texts cannot be split back
            return [i for i, t in enumerate(texts) if t is not None]
        flagged: set[str | None] = set()
        if taken is not None:
            flagged.update(taken.sub("", joined).split("\x00"))
            flagged.discard("")
        if refusing is not None:
            flagged.update(m.group(1) for m in refusing.finditer(joined))
        return list(compress(range(len(texts)), map(flagged.__contains__, texts))) if flagged else []

    return suspects


def _email_suspects(texts: list[str | None], unsettled: set[str]) -> list[int]:
    """The filled cells whose address is not certainly valid: each distinct text tested once (manager columns repeat a few).
    Notes in ``unsettled`` the addresses whose domain may be special-use (``survey_emails``)."""
    distinct = set(texts)
    distinct.discard(None)
    bad, maybe_special = survey_emails(distinct)  # type: ignore[arg-type]
    unsettled.update(maybe_special)
    return list(compress(range(len(texts)), map(bad.__contains__, texts))) if bad else []


def _distinct_email_suspects(texts: list[str | None], unsettled: set[str]) -> list[int]:
    """``_email_suspects`` for a column of (mostly) distinct addresses (a key, a unique column): no set first."""
    bad, maybe_special = survey_emails(texts if None not in texts else filter(None, texts))  # type: ignore[arg-type]
    unsettled.update(maybe_special)
    return list(compress(range(len(texts)), map(bad.__contains__, texts))) if bad else []


def _nothing(texts: list[str | None]) -> list[int]:
    return []


def _chain(checks: list[Validator]) -> Validator:
    def validate(raw: Cell, text: str) -> list[Finding] | None:
        out: list[Finding] = []
        for check in checks:
            found = check(raw, text)
            if found:
                out.extend(found)
        return out or None

    return validate


def _type_validator(dialect: Dialect, column: Column) -> Validator:
    kind = column.type
    if kind == "status":
        return _status_validator(tuple(w.word for w in dialect.status_words))
    if kind == "email":
        return _email_validator
    if kind == "list":
        return _list_validator(column)
    if kind == "choice":
        return _choice_validator(column.choices) if column.choices else _ok
    if kind == "bool":
        return _codec_validator(parse_bool)
    if kind == "date":
        return _date_validator
    if kind == "id":
        return _number_validator("ID", parse_id, "leading zeros may have been lost")
    if kind == "phone":
        return _number_validator("phone number", parse_phone, "a leading '+' or zeros may have been lost")
    if kind == "password":
        return _password_validator
    if kind == "text":
        return _text_validator
    return _ok


def _ok(raw: Cell, text: str) -> list[Finding] | None:
    return None


_DATES = (dt.datetime, dt.date, dt.time)


def _text_validator(raw: Cell, text: str) -> list[Finding] | None:
    if isinstance(raw, _DATES):
        # Excel turned what was typed ('1/3', 'Mar-1') into a date: its ISO text would be sent, not what was typed.
        message = f"{quote(text)} is a date, but this column holds text: Excel converted what was typed. Format the cell as Text and type the value again."
        return [("error", "date-not-text", message, None)]
    return None


def _codec_validator(parse: Callable[[str], object]) -> Validator:
    def validate(raw: Cell, text: str) -> list[Finding] | None:
        try:
            parse(text)
        except CodecError as exc:
            return [("error", exc.code, exc.message, exc.fix)]
        return None

    return validate


def _email_validator(raw: Cell, text: str) -> list[Finding] | None:
    if is_valid_email(text):
        return None
    try:
        parse_email(text)
    except CodecError as exc:
        return [("error", exc.code, exc.message, exc.fix)]
    return None  # pragma: no cover - parse_email refuses what is_valid_email refuses


def _status_validator(words: tuple[str, ...]) -> Validator:
    allowed = frozenset(words)

    def validate(raw: Cell, text: str) -> list[Finding] | None:
        if text in allowed:
            return None
        try:
            parse_status(text, words)
        except CodecError as exc:
            return [("error", exc.code, exc.message, exc.fix)]
        return None  # pragma: no cover - parse_status accepts exactly the words in `allowed`

    return validate


def _choice_validator(choices: Sequence[str]) -> Validator:
    allowed = frozenset(choices)

    def validate(raw: Cell, text: str) -> list[Finding] | None:
        if text in allowed:
            return None
        return [("error", "not-allowed", f"{quote(text)} is not one of {quote_choices(choices)}.", suggest(text, choices))]

    return validate


def _pattern_validator(pattern: str) -> Validator:
    compiled = re.compile(pattern)

    def validate(raw: Cell, text: str) -> list[Finding] | None:
        if compiled.fullmatch(text):
            return None
        return [("error", "pattern-mismatch", f"{quote(text)} does not have the expected form ({pattern}).", None)]

    return validate


def _password_validator(raw: Cell, text: str) -> list[Finding] | None:
    message = "a value here sets the user's password; leave the cell blank to keep the current password."
    return [("warning", "sets-password", message, None)]


_EXCEL_EPOCH = dt.date(1899, 12, 30)


def _date_validator(raw: Cell, text: str) -> list[Finding] | None:
    if isinstance(raw, dt.datetime):
        if raw.time() == dt.time(0, 0):
            return None
        message = f"{quote(text)} has a time of day; a date is expected (YYYY-MM-DD)."
        return [("error", "invalid-date", message, raw.date().isoformat())]
    if isinstance(raw, dt.date):
        return None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        # A date Excel shows as its serial number (a cell formatted as a number).
        fix = None
        if 1 <= raw < 2958466 and float(raw).is_integer():
            fix = (_EXCEL_EPOCH + dt.timedelta(days=int(raw))).isoformat()
        return [("error", "invalid-date", f"{quote(text)} is a number, not a date written YYYY-MM-DD.", fix)]
    try:
        parse_date(text)
    except CodecError as exc:
        return [("error", exc.code, exc.message, exc.fix)]
    return None


def _number_validator(what: str, parse: Callable[[str], str], lost: str) -> Validator:
    def validate(raw: Cell, text: str) -> list[Finding] | None:
        if isinstance(raw, str):
            try:
                parse(text)
            except CodecError as exc:
                return [("error", exc.code, exc.message, exc.fix)]
            return None
        if isinstance(raw, float) and (not raw.is_integer() or abs(raw) >= 1e15):
            message = (
                f"{quote(text)} is a number Excel rewrote (in scientific notation, or past 15 digits): the original {what} is lost. "
                "Format the column as Text and type it again."
            )
            return [("error", "mangled-number", message, None)]
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            message = f"{quote(text)} was stored as a number, so {lost}. Format the column as Text and check the {what}."
            return [("warning", "number-not-text", message, None)]
        return None

    return validate


# --- lists --------------------------------------------------------------------------------------------

_NEWLINES = ("\n", "\r")


def _list_validator(column: Column) -> Validator:
    separator = column.separator or "; "
    escape = column.escape
    sep = separator.strip() or separator
    choices = column.choices
    allowed = frozenset(choices) if choices else None
    # Separators people type by habit instead of this column's. Commas are common inside
    # location and org names, so a '|' list only questions ';' and line breaks.
    others = tuple(o for o in ((",", "|", "\n") if escape is None else (";", "\n")) if o != sep)
    name = column.name

    def validate(raw: Cell, text: str) -> list[Finding] | None:
        if escape is None and allowed is not None and sep not in text and text in allowed:
            return None  # the common single-item cell
        items = split_list(text, separator, escape)
        out: list[Finding] = []
        if escape is not None:
            out.extend(_escape_findings(text, items, separator, escape))
        fixed: list[str] = []
        bad: list[str] = []
        for item in items:
            other = next((o for o in others if o in item), None)
            if other is not None:
                parts = [p.strip() for p in re.split("|".join(re.escape(o) for o in (other, *_NEWLINES)), item) if p.strip()]
                if allowed is None or item not in allowed:
                    mapped = [p if allowed is None or p in allowed else suggest(p, choices or ()) for p in parts]
                    if allowed is not None and any(m is None for m in mapped):
                        bad.append(item)
                        fixed.append(item)
                        continue
                    shown = "a line break" if other == "\n" else quote(other)
                    good = [m for m in mapped if m is not None]
                    suggestion = _join_or_none(good, separator, escape)
                    if allowed is not None:
                        message = f"{quote(item)} uses {shown} between items; separate {name} with {quote(separator)}."
                        out.append(("error", "wrong-separator", message, None))
                    else:
                        message = (
                            f"{quote(item)} contains {shown}, but {name} items are separated by {quote(separator)}; "
                            f"if these are separate items, write {quote(suggestion)}."
                        )
                        out.append(("warning", "wrong-separator", message, None))
                    fixed.extend(good)
                    continue
            if allowed is not None and item not in allowed:
                bad.append(item)
                guess = suggest(item, choices or ())
                fixed.append(guess if guess is not None else item)
                continue
            fixed.append(item)
        fixed = list(dict.fromkeys(fixed))  # a fix never repeats an item ('admin; Admin' -> 'Admin')
        if bad:
            if len(bad) == 1:
                message = f"{quote(bad[0])} is not one of {quote_choices(choices or ())}."
            else:
                message = f"{quote_choices(bad)} are not among {quote_choices(choices or ())}."
            fix = _join_or_none(fixed, separator, escape) if all(f in (allowed or ()) for f in fixed) else None
            out.append(("error", "not-allowed", message, fix))
        elif any(code == "wrong-separator" for _, code, _, _ in out):
            suggestion = _join_or_none(fixed, separator, escape)
            out = [(s, c, m, suggestion if c == "wrong-separator" else f) for s, c, m, f in out]
        seen: set[str] = set()
        twice = [i for i in items if i in seen or seen.add(i)]  # type: ignore[func-returns-value]
        if twice:
            message = f"{quote(twice[0])} is listed more than once."
            out.append(("warning", "duplicate-item", message, _join_or_none(list(dict.fromkeys(items)), separator, escape)))
        return out or None

    return validate


def _join_or_none(items: list[str], separator: str, escape: str | None) -> str | None:
    try:
        return join_list(items, separator, escape)
    except CodecError:
        return None


def _escape_findings(text: str, items: list[str], separator: str, escape: str) -> list[Finding]:
    """``|`` lists: an item ending with the escape character, and an unescaped ``|`` that looks literal."""
    sep = separator.strip() or separator
    out: list[Finding] = []
    for item in items:
        if item.endswith(escape):
            message = (
                f"{quote(item)} ends with {quote(escape)}, which the platform reads as escaping the next {quote(sep)}; "
                f"remove the trailing {quote(escape)}."
            )
            out.append(("error", "escape-at-end", message, _join_or_none([i.rstrip(escape) or i for i in items], separator, escape)))
    tight = _tight_separators(text, sep, escape)
    if tight and not out:
        escaped = text
        for index in reversed(tight):
            escaped = escaped[:index] + escape + escaped[index:]
        message = f"{quote(text)} will be split into {quote_choices(items)}; if it is meant as one name, write {quote(escaped)}."
        out.append(("warning", "unescaped-separator", message, escaped))
    return out


def _tight_separators(text: str, sep: str, escape: str) -> list[int]:
    """Positions of unescaped separators with no space on either side (``Main|HQ``)."""
    found = []
    start = text.find(sep)
    while start != -1:
        escaped = start > 0 and text[start - 1] == escape
        before = text[start - 1] if start > 0 else " "
        end = start + len(sep)
        after = text[end] if end < len(text) else " "
        if not escaped and not before.isspace() and not after.isspace():
            found.append(start)
        start = text.find(sep, end)
    return found


def _splits_known(column: Column, title: str, text: str, known: frozenset[str]) -> Finding | None:
    """An unescaped separator inside a name the platform knows (``Remote|Main|HQ`` with ``Main|HQ`` known): an error
    whose fix escapes only that name. Runs of parts that are each known themselves are left alone (two real values)."""
    separator = column.separator or "|"
    sep = separator.strip() or separator
    if sep not in text:
        return None
    items = split_list(text, separator, column.escape)
    folded = {k.casefold(): k for k in known if sep in k}
    if len(items) < 2 or not folded:
        return None
    merged: list[str] = []
    names: list[str] = []
    i = 0
    while i < len(items):
        for j in range(len(items), i + 1, -1):
            name = folded.get(sep.join(items[i:j]).casefold())
            if name is not None and not all(part in known for part in items[i:j]):
                merged.append(name)
                names.append(name)
                i = j
                break
        else:
            merged.append(items[i])
            i += 1
    if not names:
        return None
    try:
        fix: str | None = join_list(list(dict.fromkeys(merged)), separator, column.escape)
    except CodecError:
        fix = None
    shown = quote_choices(names)
    message = (f"{quote(text)} splits the known {column.name} {shown} at its {quote(sep)}, so {title} would create separate values; "
               f"write a {quote(sep)} inside a name as {quote((column.escape or '') + sep)}" + (f": {quote(fix)}." if fix else "."))
    return ("error", "splits-known-value", message, fix)


def _spacing_fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def _unknown_values(column: Column, text: str, known: frozenset[str], title: str = "") -> list[Finding]:
    """Values the platform does not know (teams, groups): warnings, with the exact spelling when it is a case slip.

    Where the platform needs the exact spelling (``exact_choices``: EdApp's groups), a value differing from a known
    one only in case or spacing is an error whose fix is the exact name."""
    if column.type == "list":
        items = split_list(text, column.separator or "; ", column.escape)
    else:
        items = [text]
    unknown = [item for item in items if item not in known]
    if not unknown:
        return []
    out: list[Finding] = []
    if column.exact_choices:
        exact = {_spacing_fold(k): k for k in sorted(known)}
        slips = {item: exact[_spacing_fold(item)] for item in unknown if _spacing_fold(item) in exact}
        if slips:
            fixed = list(dict.fromkeys(slips.get(item, item) for item in items))
            fix = _join_or_none(fixed, column.separator, column.escape) if column.type == "list" and column.separator else fixed[0]
            pairs = " and ".join(f"{quote(item)} as {quote(name)}" for item, name in slips.items())
            message = f"{title or 'The platform'} spells {pairs}: write {'it' if len(slips) == 1 else 'them'} exactly. {column.unknown_choice}".rstrip()
            out.append(("error", "inexact-value", message, fix))
            unknown = [item for item in unknown if item not in slips]
            if not unknown:
                return out
    ordered = sorted(known)
    shown = quote_choices(ordered[:_KNOWN_SHOWN]) + (", ..." if len(ordered) > _KNOWN_SHOWN else "")
    label = column.name
    if len(unknown) == 1:
        message = f"{quote(unknown[0])} is not a known {label} (known: {shown})."
    else:
        message = f"{quote_choices(unknown)} are not known {label} values (known: {shown})."
    if column.unknown_choice:
        message += f" {column.unknown_choice}"
    fix = None
    guesses = {item: suggest(item, ordered) for item in unknown}
    if all(guesses.values()):
        fixed = list(dict.fromkeys(guesses.get(item) or item for item in items))  # a fix never repeats an item
        fix = _join_or_none(fixed, column.separator, column.escape) if column.type == "list" and column.separator else fixed[0]
    return [*out, ("warning", "unknown-value", message, fix)]


# --- a table's rows ---------------------------------------------------------------------------------------


def _problem(finding: Finding, sheet: str, cell: str, row: int, column: Column, value: Cell) -> Problem:
    severity, code, message, fix = finding
    if column.write_only and value is not None:
        value = HIDDEN
    return Problem(severity, sheet, cell, row, column.name, value, code, message, fix)


def _row_of(cell: str) -> int:
    digits = "".join(ch for ch in cell if ch.isdigit())
    return int(digits) if digits else 0


def _columns(rows: Sequence[Row], names: list[str]) -> list[list[Cell]]:
    """The cells of each named column across the rows (None where a row lacks it)."""
    if not names:
        return []
    if len(names) > 1:
        pick = itemgetter(*names)
        try:
            return [list(cells) for cells in zip(*[pick(row.values) for row in rows], strict=True)] if rows else [[] for _ in names]
        except KeyError:
            pass  # rows made elsewhere may lack a column: the slower way below
    return [[row.values.get(name) for row in rows] for name in names]


def _texts(raws: list[Cell]) -> tuple[list[str | None], bool]:
    """Canonical text of each cell (``to_text``), and whether every cell is text (a CSV file's always are)."""
    try:
        stripped: list[str | None] = list(map(str.strip, raws))  # type: ignore[arg-type]
    except TypeError:  # cells that are not text
        return [(raw.strip() or None) if raw.__class__ is str else (None if raw is None else to_text(raw)) for raw in raws], False
    if "" in stripped:  # blank cells are None: only those are visited
        for i in compress(range(len(stripped)), map(not_, stripped)):
            stripped[i] = None
    return stripped, True


_EMPTY = ""


def _plain_texts(raws: list[Cell]) -> tuple[list[str | None], bool]:
    """``_texts`` of a frame's own column of plain text cells (nothing to strip, ``plain_cells``), made in place: the
    column's blank cells become None, and it is its own texts (a blank raw cell of a file reads as None anyway).

    A file's blank cell is the empty string, which CPython keeps as one object (``str.split`` returns it): pointer
    comparisons find them without reading each cell's memory (which, for 50,000 rows, costs more than the comparison).
    """
    if _SPLIT_SHARES_EMPTY:
        if _EMPTY in raws:  # one C-speed scan; the positions only where there are blanks
            for i in list(compress(range(len(raws)), map(is_, raws, repeat(_EMPTY)))):
                raws[i] = None
        return cast(list[str | None], raws), True
    return _texts(raws)


_SPLIT_SHARES_EMPTY = is_(str.split(",", ",")[0], _EMPTY)
"""Whether ``str.split`` returns the one empty string object for an empty field (CPython does)."""


def _formulas(raws: list[Cell], texts: list[str | None], all_text: bool = False) -> list[int]:
    """Indexes of text cells starting with '=' (rare: one C-speed scan decides whether to look)."""
    if all_text and "=" not in "".join(raws):  # type: ignore[arg-type]
        return []
    joined = "\x00".join([t for t in texts if t is not None])
    if not joined.startswith("=") and "\x00=" not in joined:
        return []
    return [i for i, t in enumerate(texts) if t is not None and t[0] == "=" and raws[i].__class__ is str]


@dataclass(frozen=True, slots=True)
class _Frame:
    """Rows to check, as columns: what the column-wise checks read."""

    numbers: list[int]
    """Sheet row number of each row."""
    raws: dict[str, list[Cell]]
    """Dialect column -> raw cells (every present column)."""
    extras: dict[str, list[Cell]]
    """Custom-field header -> raw cells."""
    widths: frozenset[int] = frozenset()
    """How many cells the rows had, blank ones included (``_frame_of_cells``)."""

    def __len__(self) -> int:
        return len(self.numbers)


def _not_text(raws: list[Cell]) -> list[int]:
    """Indexes of the filled cells that are not text (rare: one C-speed pass over the cells' types decides whether to look)."""
    if set(map(type, raws)) <= _TEXT_OR_BLANK:
        return []
    return [i for i, r in enumerate(raws) if r is not None and r.__class__ is not str]


_TEXT_OR_BLANK = frozenset({str, type(None)})


def _dated(raws: list[Cell]) -> list[int]:
    """Indexes of the cells Excel made dates (rare: one C-speed pass over the cells' types decides whether to look)."""
    if not any(issubclass(kind, _DATES) for kind in set(map(type, raws))):
        return []
    return [i for i, r in enumerate(raws) if isinstance(r, _DATES)]


def _frame_of_cells(checker: _TableChecker, rows: Sequence[Sequence[Cell]], first_row: int, plain: bool = False) -> _Frame:
    """Raw rows (the header excluded) as a frame: columns transposed in one go, blank rows dropped (``plain``: a blank
    cell is empty, never spaces).

    Rows that can give their cells in one marked list (``csvfile.SplitLines.marked_cells``: a file's lines, not yet
    split) are split that way when each has as many cells as the header; else as records.
    """
    width = max(len(checker.headers_at), 1)
    body = rows
    columns: list[Sequence[Cell]]
    marked_cells = getattr(rows, "marked_cells", None)
    marked: list[Cell] | None = marked_cells(width) if marked_cells is not None else None
    if marked is not None:  # each row as wide as the header, a marker cell after each: a column is every width + 1th cell
        widths = frozenset((width,))
        columns = [marked[i :: width + 1] for i in range(width)]
    else:
        widths = frozenset(map(len, rows))
        even = widths == {width}
        if rows and not even and min(widths) < width:  # short rows (a blank line is []) are padded
            body = [cells if len(cells) >= width else [*cells, *([None] * (width - len(cells)))] for cells in rows]
        if even or (body and max(map(len, body)) == width):
            # Every row as wide as the header (a well-formed file): one flat list, each column a strided slice of it,
            # several times faster than zip(*rows), which steps 50,000 iterators once per column. The rows are appended
            # to the flat list a row at a time (``+=``, a block copy each): faster than stepping a chain cell by cell.
            flat: list[Cell] = reduce(iadd, body, [])
            columns = [flat[i::width] for i in range(width)]
        else:
            columns = list(zip(*body, strict=False)) if body else [() for _ in range(width)]
    # A blank row starts with a blank cell: only rows whose first cell may be blank get the full look (usually none).
    first = columns[0] if body else ()
    if plain and _SPLIT_SHARES_EMPTY:  # a blank cell is the empty string object (``_plain_texts``), or a short row's None
        candidates = sorted({*compress(range(len(first)), map(is_, first, repeat(_EMPTY))), *compress(range(len(first)), map(is_, first, repeat(None)))})
    else:
        candidates = _blank_candidates(first)
    blank = {i for i in candidates if is_blank_row(rows[i])}
    keep = [i for i in range(len(body)) if i not in blank] if blank else None

    def column(position: int) -> list[Cell]:
        cells = columns[position - 1]
        if keep is None:
            return cells if isinstance(cells, list) else list(cells)  # a slice is a list of its own already
        return [cells[i] for i in keep]

    numbers = list(range(first_row, first_row + len(body))) if keep is None else [first_row + i for i in keep]
    raws = {name: column(checker.positions[name]) for name in checker.names}
    extras = {h: column(i) for h, i in checker.extra_positions.items()}
    return _Frame(numbers, raws, extras, widths)


def _blank_candidates(cells: Sequence[Cell]) -> list[int]:
    """Indexes of the cells that may be blank (a superset: ``is_blank_row`` decides), at C speed for text."""
    try:
        return list(compress(range(len(cells)), map(not_, map(str.strip, cells))))  # type: ignore[arg-type]
    except TypeError:  # cells that are not text (numbers, dates from a workbook)
        return [i for i, cell in enumerate(cells) if cell is None or cell.__class__ is not str or not cell.strip()]


class _TableChecker:
    """Checks the rows of one table, remembering keys and unique values for the cross-row checks."""

    def __init__(
        self,
        dialect: Dialect,
        sheet: str,
        positions: Mapping[str, int],
        headers: Sequence[str],
        platform_choices: Mapping[str, Collection[str]] | None,
    ) -> None:
        self.dialect = dialect
        self.sheet = sheet
        self.positions = positions
        rules = _rules(dialect)
        choices = platform_choices or {}
        self.plan: list[tuple[str, str, _Rule, frozenset[str] | None]] = []
        for name in (c.name for c in dialect.columns if c.name in positions):
            letters = cell_address(positions[name], 1)[:-1]
            known = choices.get(name)
            self.plan.append((name, letters, rules[name], frozenset(known) if known is not None else None))
        self.letters = {name: letters for name, letters, _, _ in self.plan}
        self.names = [name for name, _, _, _ in self.plan]
        self.plan_of = {entry[0]: entry for entry in self.plan}
        self.requires = [(name, rules[name].column.requires) for name, _, _, _ in self.plan if rules[name].column.requires]
        self.headers_at = list(headers)
        self.extra_letters: dict[str, str] = {}
        self.extra_positions: dict[str, int] = {}
        # Only custom-field columns carry data; other unknown headers are header errors and are not read.
        for index, header in enumerate(headers if dialect.extra_columns == "custom" else (), start=1):
            if header and header not in self.extra_letters and dialect.find_column(header) is None:
                self.extra_letters[header] = cell_address(index, 1)[:-1]
                self.extra_positions[header] = index
        key = dialect.key
        self.key = key
        self.fallback = dialect.key_fallback
        key_column = dialect.column(key)
        self.key_folds = dialect.key_case_insensitive or key_column.type == "email"
        self.unique = [
            (c.name, c.type == "email" or (c.name == self.fallback and self.key_folds))
            for c in dialect.columns
            if c.unique and c.name != key and c.name in positions
        ]
        self.seen_keys: dict[str, int] = {}
        """Folded key -> row number of the first row that had it (its column: see ``fallback_rows``)."""
        self.fallback_rows: set[int] = set()
        """Numbers of the rows whose key was taken from the fallback column."""
        self.seen_unique: dict[str, dict[str, int]] = {name: {} for name, _ in self.unique}
        """Unique column -> folded value -> row number of the first row that had it."""
        self.seen_skeletons: dict[str, tuple[int, str, str | None]] = {}
        """Key as a person sees it (``textsafety.skeleton``) -> (row number, column letters, key) of the first row that had it.

        With case-insensitive keys, rows of a chunk with non-ASCII keys whose plain ASCII key nothing else resembles are
        left out: ``seen_keys`` and ``slow_chunks`` stand for them (``_recorded_plain``)."""
        self.unsettled: dict[str, set[str]] = {}
        """Email column -> the addresses whose domain may be special-use (the others are ordinary: ``survey_emails``)."""
        self.last_keyed: _Keyed | None = None
        """The keyed rows of the chunk checked last (their folded keys serve the cross checks)."""
        self.checked: dict[str, dict[str, list[Finding] | None]] = {}
        """Column -> text -> what ``validate`` found (None: nothing), kept from chunk to chunk (``_memo``)."""
        self.found: dict[str, dict[str, list[Finding]]] = {}
        """Column -> text -> its ``findings`` against the platform's values, kept from chunk to chunk (``_memo``)."""
        self.slow_starts: list[int] = []
        self.slow_chunks: list[tuple[list[int], list[str]]] = []
        """(row numbers, keys) of the keyed rows of each chunk the lookalike check looked at row by row; ``slow_starts``
        holds the first row number of each, for a bisection."""

    @staticmethod
    def _memo(memos: dict[str, dict[str, _T]], name: str) -> dict[str, _T]:
        """A column's memo of results by text (``checked`` or ``found``), emptied when it holds more than ``_MEMO`` texts
        (a column of distinct values gains nothing from it)."""
        memo = memos.setdefault(name, {})
        if len(memo) > _MEMO:
            memo.clear()
        return memo

    @classmethod
    def of(cls, table: Table, platform_choices: Mapping[str, Collection[str]] | None) -> _TableChecker:
        """The checker for a table's header row."""
        return cls(table.dialect, table.sheet, table.positions, table.headers, platform_choices)

    def missing_new_columns(self, has_snapshot: bool, new_rows: Sequence[int]) -> Iterator[Problem]:
        """Columns required for new users that the header row lacks (an error once new rows exist)."""
        dialect = self.dialect
        for column in dialect.columns:
            if column.required != "new" or column.name in self.positions:
                continue
            if has_snapshot and new_rows:
                message = f"the header row has no {column.name!r} column, which new users need (first new user in row {new_rows[0]})."
                yield Problem("error", self.sheet, "", HEADER_ROW, column.name, None, "missing-column", message)
            elif not has_snapshot and not dialect.partial_columns:
                message = f"the header row has no {column.name!r} column: new users in this file would lack it ({dialect.title} requires it for new users)."
                yield Problem("warning", self.sheet, "", HEADER_ROW, column.name, None, "missing-column", message)

    def frame(self, rows: Sequence[Row]) -> _Frame:
        """Rows as columns of raw cells."""
        extras = {h: [row.extra.get(h) for row in rows] for h in self.extra_letters} if self.extra_letters else {}
        return _Frame([row.number for row in rows], dict(zip(self.names, _columns(rows, self.names), strict=True)), extras)

    def check(self, frame: _Frame, news: Sequence[bool] | None, *, cross_row: bool,
              given: Mapping[str, tuple[list[str | None], bool]] | None = None, plain: bool = False) -> dict[int, list[Problem]]:
        """The problems of the rows that have any (frame index -> sorted problems), checked column by column.

        Column-wise is what makes this fast: one comprehension per column finds the few cells
        worth a closer look. ``news``: whether each row is a new user (None: unknown). ``given``: each
        column's ``_texts``, when the caller has them already. ``plain``: every cell is plain text (no invisible
        character, no formula text: ``check_cells_and_columns``).
        """
        found: dict[int, list[Problem]] = {}
        sheet = self.sheet
        numbers = frame.numbers
        texts_of: dict[str, list[str | None]] = {}
        for name in self.names:
            raws = frame.raws[name]
            _, letters, rule, known = self.plan_of[name]
            texts, all_text = given[name] if given is not None else _texts(raws)
            texts_of[name] = texts
            column = rule.column
            if column.required != "never" and not (name == self.key and self.fallback is not None) and None in texts:
                for i in list(compress(range(len(texts)), map(is_, texts, repeat(None)))):
                    finding = rule.blank(news[i] if news is not None else None)
                    if finding is not None:
                        found.setdefault(i, []).append(_problem(finding, sheet, f"{letters}{numbers[i]}", numbers[i], column, None))
            formulas = [] if plain else _formulas(raws, texts, all_text)
            if known is not None or formulas:
                closer = [i for i, t in enumerate(texts) if t is not None] if known is not None else formulas
                seen_findings = self._memo(self.found, name)  # a text cell's findings depend on its text only
                for i in closer:
                    raw = raws[i]
                    if isinstance(raw, str):
                        results = seen_findings.get(raw)
                        if results is None:
                            results = seen_findings[raw] = rule.findings(raw, texts[i], known)  # type: ignore[arg-type]
                    else:
                        results = rule.findings(raw, texts[i], known)  # type: ignore[arg-type]
                    if results:
                        found.setdefault(i, []).extend(_problem(f, sheet, f"{letters}{numbers[i]}", numbers[i], column, raws[i]) for f in results)
                if known is not None:
                    continue
            if rule.emails is not None:
                suspects = rule.emails(texts, self.unsettled.setdefault(name, set()))
            else:
                suspects = rule.suspects(texts) if rule.suspects is not None else [i for i, t in enumerate(texts) if t is not None]
            if rule.suspects is _nothing:  # plain text: only a cell Excel made a date needs a look
                suspects = [] if all_text else _dated(raws)
            elif rule.shaped and not all_text:
                suspects = sorted({*suspects, *_not_text(raws)})
            skip = set(formulas)
            seen_checks = self._memo(self.checked, name)  # repeated texts (departments, groups, dates) are validated once
            for i in suspects:
                if i in skip:
                    continue
                raw = raws[i]
                if isinstance(raw, str):
                    if raw in seen_checks:
                        checked = seen_checks[raw]
                    else:
                        checked = seen_checks[raw] = rule.validate(raw, texts[i])  # type: ignore[arg-type]
                else:
                    checked = rule.validate(raw, texts[i])  # type: ignore[arg-type]
                if checked:
                    found.setdefault(i, []).extend(_problem(f, sheet, f"{letters}{numbers[i]}", numbers[i], column, raws[i]) for f in checked)
        self._requires(frame, texts_of, found)
        self._keys_and_extras(frame, texts_of, found, plain)
        clean = {self.key, self.fallback or self.key} if plain else self._invisible(frame, texts_of, found)
        self.last_keyed = None
        if cross_row:
            keyed = self.last_keyed = self._duplicates(frame, texts_of, found)
            keyed.printable = self.key in clean and (self.fallback is None or self.fallback in clean or self.fallback not in texts_of)
            self._lookalikes(frame, texts_of, found, keyed)
        for problems in found.values():
            if len(problems) > 1:
                problems.sort(key=sort_key)
        return found

    def _requires(self, frame: _Frame, texts_of: dict[str, list[str | None]], found: dict[int, list[Problem]]) -> None:
        """A filled column whose change needs another one filled too (Progression: position needs team)."""
        numbers = frame.numbers
        blank: list[str | None] = [None] * len(numbers)
        for name, needs in self.requires:
            texts = texts_of[name]
            for other in needs:
                others = texts_of.get(other, blank)
                if None not in others:
                    continue  # the other column is filled everywhere
                gaps = list(compress(range(len(others)), map(is_, others, repeat(None))))
                for i in compress(gaps, map(is_not, map(texts.__getitem__, gaps), repeat(None))):
                    message = f"{quote(texts[i])} is only applied together with {other!r}, which is blank: fill in {other!r} too."
                    cell = f"{self.letters[name]}{numbers[i]}"
                    found.setdefault(i, []).append(Problem("error", self.sheet, cell, numbers[i], name, frame.raws[name][i], "requires-column", message))

    def _keys_and_extras(self, frame: _Frame, texts_of: dict[str, list[str | None]], found: dict[int, list[Problem]], plain: bool = False) -> None:
        """Rows with neither key nor fallback; formulas in custom-field cells."""
        numbers = frame.numbers
        blank: list[str | None] = [None] * len(numbers)
        keys = texts_of.get(self.key, blank)
        fallbacks = texts_of.get(self.fallback, blank) if self.fallback is not None else blank
        for i in [i for i, k in enumerate(keys) if k is None and fallbacks[i] is None] if None in keys else ():
            problems = self._missing_key(numbers[i])
            if problems:
                found.setdefault(i, []).extend(problems)
        for header, letters in {} if plain else self.extra_letters.items():
            raws = frame.extras.get(header) or [None] * len(numbers)
            for i in _formulas(raws, *_texts(raws)):
                raw = raws[i]
                if isinstance(raw, str):
                    message = f"{quote(raw.strip())} is a formula's text, not a value: it would be sent as that text. Type the value itself."
                    found.setdefault(i, []).append(Problem("error", self.sheet, f"{letters}{numbers[i]}", numbers[i], header, raw, "formula", message))

    def _missing_key(self, number: int) -> list[Problem]:
        """A row with neither key nor fallback, when no required-value error already says so."""
        dialect = self.dialect
        if dialect.column(self.key).required == "always" and self.key in self.letters:
            return []
        if self.fallback is not None and self.fallback in self.letters and dialect.column(self.fallback).required == "always":
            return []
        where = self.key if self.key in self.letters else self.fallback
        if where is None or where not in self.letters:
            return []  # the header row lacks the key: a header problem says so
        via = f" (or {self.fallback!r}, which it is taken from)" if self.fallback is not None else ""
        message = f"a value is required: {self.key!r}{via} identifies the user on {dialect.title}."
        return [Problem("error", self.sheet, f"{self.letters[where]}{number}", number, where, None, "missing-key", message)]

    def _keyed(self, frame: _Frame, texts_of: dict[str, list[str | None]]) -> _Keyed:
        """The rows with a key, or else a fallback, in a column of the sheet (every row, usually)."""
        numbers = frame.numbers
        keys = texts_of.get(self.key)
        key_letters = self.letters.get(self.key)
        if keys is not None and key_letters is not None and None not in keys:
            return _Keyed(None, cast(list[str], keys), numbers, frozenset())
        blank: list[str | None] = [None] * len(numbers)
        keys = keys or blank
        fallbacks = texts_of.get(self.fallback, blank) if self.fallback is not None else blank
        fallback_letters = self.letters.get(self.fallback) if self.fallback is not None else None
        rows: list[int] = []
        texts: list[str] = []
        nums: list[int] = []
        via: set[int] = set()
        for i, text in enumerate(keys):
            if text is None:
                text = fallbacks[i]
                if text is None or fallback_letters is None:
                    continue
                via.add(len(rows))
            elif key_letters is None:
                continue
            rows.append(i)
            texts.append(text)
            nums.append(numbers[i])
        return _Keyed(rows, texts, nums, frozenset(via))

    def _letters_of(self, number: int) -> str | None:
        """The column letters of the key a recorded row was identified by."""
        return self.letters.get(self.fallback) if number in self.fallback_rows and self.fallback is not None else self.letters.get(self.key)

    def _duplicates(self, frame: _Frame, texts_of: dict[str, list[str | None]], found: dict[int, list[Problem]]) -> _Keyed:
        """Duplicate keys and unique values: each repeat points at the row that had it first.

        One C-speed pass records every row's folded key in order (``dict.setdefault``, as a loop would); only the
        repeats get a look. Returns the keyed rows, their folded keys and repeats, for the lookalike check."""
        keyed = self._keyed(frame, texts_of)
        texts, nums = keyed.texts, keyed.numbers
        if keyed.via:
            self.fallback_rows.update(nums[j] for j in keyed.via)
        keyed.joined = "".join(texts)
        keyed.odd = [] if keyed.joined.isascii() else list(compress(range(len(texts)), map(not_, map(str.isascii, texts))))
        if not self.key_folds:
            keyed.folded = texts
        elif _no_ascii_capitals(keyed.joined):  # an ASCII key is its own case fold (no new string to hash)
            keyed.folded = list(texts)
            for j in keyed.odd:
                keyed.folded[j] = texts[j].casefold()
        else:
            keyed.folded = list(map(str.casefold, texts))
        keyed.repeats = _repeats(self.seen_keys, keyed.folded, nums)
        flagged: dict[int, str] = {}
        for j, first in keyed.repeats:
            i = j if keyed.rows is None else keyed.rows[j]
            column = self.fallback if j in keyed.via and self.fallback is not None else self.key
            number = nums[j]
            via = f" (the {self.key}, taken from {column})" if column != self.key else ""
            message = (f"{quote(texts[j])}{via} is already the {self.key} of row {first} ({self._letters_of(first)}{first}); "
                       "each user can appear only once.")
            cell = f"{self.letters[column]}{number}"
            found.setdefault(i, []).append(Problem("error", self.sheet, cell, number, column, frame.raws[column][i], "duplicate-key", message))
            flagged[i] = column
        numbers = frame.numbers
        for name, folds in self.unique:
            values = texts_of[name]
            index = list(compress(range(len(values)), map(is_not, values, repeat(None)))) if None in values else None
            present = cast(list[str], values) if index is None else [cast(str, values[i]) for i in index]
            at = numbers if index is None else [numbers[i] for i in index]
            letters = self.letters[name]
            for j, earlier in _repeats(self.seen_unique[name], list(map(str.casefold, present)) if folds else present, at):
                i = j if index is None else index[j]
                if flagged.get(i) == name:
                    continue
                message = f"{quote(present[j])} is already the {name} of row {earlier} ({letters}{earlier}); {name} must be unique."
                found.setdefault(i, []).append(Problem("error", self.sheet, f"{letters}{at[j]}", at[j], name, frame.raws[name][i], "duplicate-value", message))
        return keyed

    # Lookalike and invisible characters: separate cheap steps (a C-speed pass per column finds the rare cells).

    def _invisible(self, frame: _Frame, texts_of: dict[str, list[str | None]], found: dict[int, list[Problem]]) -> set[str]:
        """Invisible characters: an error in a key (the platform would store another key), a warning in free text.

        Typed columns (status, choice, email, bool, date, phone) are left to their own check, which refuses such text.
        Returns the key columns without any (their ASCII texts are printable: the lookalike check needs not ask).
        """
        numbers = frame.numbers
        keys = {self.key, self.fallback}
        clean: set[str] = set()
        for name, letters, rule, _ in self.plan:
            column = rule.column
            key = name in keys
            if column.write_only or not (key or column.type in _FREE_TEXT):
                continue
            texts = texts_of[name]
            findings = invisible_findings(texts, key=key)
            if key and not findings:
                clean.add(name)
            for i, chars, cleaned in findings:
                problem = _invisible_problem(self.sheet, f"{letters}{numbers[i]}", numbers[i], name, frame.raws[name][i], texts[i] or "", chars, cleaned, key)
                found.setdefault(i, []).append(problem)
        return clean

    def _lookalikes(self, frame: _Frame, texts_of: dict[str, list[str | None]], found: dict[int, list[Problem]], keyed: _Keyed) -> None:
        """Keys equal once letter case, NFC normalisation and invisible characters are set aside (exact repeats are duplicate-key)."""
        numbers = frame.numbers
        keys = texts_of.get(self.key)
        seen = self.seen_skeletons
        folds = self.key_folds
        if keys is not None and None not in keys and self.key in self.letters:
            present = cast(list[str], keys)
            if not keyed.odd and (keyed.printable or keyed.joined.isprintable()):
                # The usual chunk: plain ASCII keys, whose skeleton is their lower case. Case-insensitive keys: that is
                # what duplicate-key compares (and seen_keys remembers), so nothing here can look alike.
                if folds:
                    return
                skeletons = "\x00".join(present).lower().split("\x00")  # no key holds "\x00": it is not printable
                if len(set(skeletons)) == len(skeletons) and seen.keys().isdisjoint(skeletons):
                    seen.update(zip(skeletons, zip(numbers, repeat(self.letters[self.key]), present, strict=False), strict=True))
                    return
        if folds and self.vectorised:
            self._lookalikes_folded(frame, found, keyed)
            return
        blank: list[str | None] = [None] * len(numbers)
        keys = keys or blank
        fallbacks = texts_of.get(self.fallback, blank) if self.fallback is not None else blank
        first_here = numbers[0] if numbers else 0
        for i, key_text in enumerate(keys):
            column = self.key
            if key_text is None:
                key_text, column = fallbacks[i], self.fallback or self.key
                if key_text is None:
                    continue
            letters = self.letters.get(column)
            if letters is None:
                continue
            number = numbers[i]
            shape = skeleton(key_text)
            first: tuple[int, str, str | None] | None = seen.get(shape)
            if first is None and folds:
                earlier = self.seen_keys.get(shape)  # an ASCII key of an earlier chunk (not recorded here: see above)
                if earlier is not None and earlier < first_here:
                    first = (earlier, self._letters_of(earlier) or letters, None)
            if first is None:
                seen[shape] = (number, letters, key_text)
                continue
            self._lookalike(frame, found, i, column, number, key_text, shape, first)

    vectorised = True
    """Whether case-insensitive keys take ``_lookalikes_folded`` (the row-by-row loop above is its reference)."""

    def _lookalikes_folded(self, frame: _Frame, found: dict[int, list[Problem]], keyed: _Keyed) -> None:
        """``_lookalikes`` for case-insensitive keys, looking only at the rows that can matter.

        A plain ASCII key's skeleton is its folded key. Such a row that is the first with its folded key (not a repeat)
        and whose skeleton no other key of this chunk has, nor an earlier looked-at row, is simply the first of its kind:
        it is not even recorded, ``seen_keys`` and ``slow_chunks`` answer for it later (``_recorded_plain``). Every other
        row (non-ASCII keys, repeats, plain keys that other keys resemble) takes the row-by-row logic, in row order.
        """
        texts, nums = keyed.texts, keyed.numbers
        if not texts:
            return
        seen = self.seen_skeletons
        seen_keys = self.seen_keys
        first_here = frame.numbers[0]
        self.slow_starts.append(nums[0])
        self.slow_chunks.append((nums, texts))
        count = len(texts)
        odd = keyed.odd
        if not (keyed.printable or keyed.joined.isprintable()):  # control characters in ASCII keys: those are not plain either
            odd = list(compress(range(count), map(not_, map(and_, map(str.isascii, texts), map(str.isprintable, texts)))))
        odd_shapes = skeletons([texts[j] for j in odd])
        shape_of = dict(zip(odd, odd_shapes, strict=True))
        hot = set(odd_shapes)
        # Plain keys that a looked-at row resembles: through the cheaper of the two (a Python pass over the looked-at
        # shapes costs about eight C-speed membership tests of this chunk's keys, which may add an earlier key's repeat).
        if len(seen) * 8 < count:
            hot.update(shape for shape, number in zip(seen, map(seen_keys.get, seen), strict=True) if number is not None and number >= first_here)
        else:
            hot.update(filter(seen.__contains__, keyed.folded))
        repeats = {j for j, _ in keyed.repeats}
        closer = set(odd)
        closer.update(repeats)
        if odd:
            # Usually a non-ASCII key is the first with its skeleton, which is its folded key ('zoë'): recorded, nothing
            # else (no earlier row, nor another here, has that skeleton: no row before it with that folded key either).
            counts = Counter(odd_shapes) if len(set(odd_shapes)) < len(odd_shapes) else None
            quiet = [j for j, shape in zip(odd, odd_shapes, strict=True)
                     if shape == keyed.folded[j] and j not in repeats and shape not in seen and (counts is None or counts[shape] == 1)]
            for j in quiet:
                column = self.fallback if j in keyed.via and self.fallback is not None else self.key
                seen[shape_of[j]] = (nums[j], self.letters[column], texts[j])
            closer.difference_update(quiet)
        for shape in hot:  # the first plain key with a skeleton another key has
            number = seen_keys.get(shape)
            if number is not None and number >= first_here:
                j = bisect_left(nums, number)
                if j < count and nums[j] == number and j not in shape_of:
                    closer.add(j)
        for j in sorted(closer):
            key_text, number = texts[j], nums[j]
            i = j if keyed.rows is None else keyed.rows[j]
            column = self.fallback if j in keyed.via and self.fallback is not None else self.key
            letters = self.letters[column]
            shape = shape_of[j] if j in shape_of else keyed.folded[j]
            first = seen.get(shape) or self._recorded_plain(shape, number)
            if first is None:
                earlier = seen_keys.get(shape)  # a key of a chunk of plain ASCII keys (never recorded)
                if earlier is not None and earlier < first_here:
                    first = (earlier, self._letters_of(earlier) or letters, None)
            if first is None:
                seen[shape] = (number, letters, key_text)
                continue
            self._lookalike(frame, found, i, column, number, key_text, shape, first)

    def _recorded_plain(self, shape: str, number: int) -> tuple[int, str, str | None] | None:
        """What the row-by-row check would have recorded for ``shape`` before row ``number``, when ``seen_skeletons``
        does not hold it: the first row with that folded key, if its key is plain ASCII (its skeleton is its folded key)
        in a chunk looked at row by row (an all-ASCII chunk records nothing)."""
        first = self.seen_keys.get(shape)
        if first is None or first >= number:
            return None
        chunk = bisect_right(self.slow_starts, first) - 1
        if chunk < 0:
            return None
        nums, texts = self.slow_chunks[chunk]
        j = bisect_left(nums, first)
        if j == len(nums) or nums[j] != first:
            return None
        text = texts[j]
        if not (text.isascii() and text.isprintable()):
            return None
        return (first, self._letters_of(first) or "", text)

    def _lookalike(self, frame: _Frame, found: dict[int, list[Problem]], i: int, column: str, number: int, key_text: str, shape: str,
                   first: tuple[int, str, str | None]) -> None:
        """The lookalike-key error of row ``i`` against the first row with its skeleton, unless it is that row or the same key."""
        first_row, first_letters, other = first
        same = key_text.casefold() == (other or shape).casefold() if self.key_folds else key_text == other
        if first_row == number or same:
            return  # the first of its kind, or the same key (duplicate-key says so)
        shown = f"{quote(other)}, the {self.key} of row" if other is not None else f"the {self.key} of row"
        why = why_alike(key_text, other if other is not None else unicodedata.normalize("NFC", without_invisible(key_text, key=True)))
        message = (f"{quote(key_text)} looks the same as {shown} {first_row} ({first_letters}{first_row}): they differ only in {why}. "
                   "The platform may refuse it or create a second account; each user can appear only once.")
        found.setdefault(i, []).append(Problem("error", self.sheet, f"{self.letters[column]}{number}", number, column, frame.raws[column][i], "lookalike-key", message))


@dataclass(slots=True)
class _Keyed:
    """The rows of a chunk that have a key (or a fallback), as the cross-row checks read them."""

    rows: list[int] | None
    """Frame index of each (None: every row, by the key column)."""
    texts: list[str]
    numbers: list[int]
    via: frozenset[int]
    """Positions whose key was taken from the fallback column."""
    folded: list[str] = field(default_factory=list)
    """Each key as duplicate-key compares it (case folded for case-insensitive keys)."""
    joined: str = ""
    """The keys, joined (one C-speed scan answers for all)."""
    odd: list[int] = field(default_factory=list)
    """Positions of the keys that are not ASCII."""
    printable: bool = False
    """Whether every key is known to be printable (no invisible character was found in the key columns)."""
    repeats: list[tuple[int, int]] = field(default_factory=list)
    """(position, first row) of the keys an earlier row already had."""


def _no_ascii_capitals(text: str) -> bool:
    """Whether ``text`` holds no letter A-Z: lower-casing its UTF-8 bytes changes only those (faster than a regex)."""
    data = text.encode("utf-8", "surrogatepass")
    return data.lower() == data


def _repeats(seen: dict[str, int], texts: list[str], numbers: list[int]) -> list[tuple[int, int]]:
    """Record each text's first row in ``seen`` (in order, as a loop of ``setdefault`` would) and return
    (position, first row) of those an earlier row already had."""
    firsts = list(map(seen.setdefault, texts, numbers))
    return [(j, firsts[j]) for j in compress(range(len(firsts)), map(ne, firsts, numbers))]
