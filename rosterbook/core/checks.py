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
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from rosterbook.core.codecs import (
    Cell,
    CodecError,
    join_list,
    parse_bool,
    parse_date,
    parse_email,
    parse_id,
    parse_phone,
    parse_status,
    split_list,
    suggest,
    to_text,
)
from rosterbook.core.dialects import Column, Dialect
from rosterbook.core.problems import Problem, Severity, cell_address, quote, quote_choices, sort_key
from rosterbook.core.table import HEADER_ROW, Row, Table, build_table

__all__ = ["check_matrix", "check_rows", "check_table", "check_value"]

Finding = tuple[Severity, str, str, str | None]
"""What a validator reports about one cell: severity, code, message, fix."""

Validator = Callable[[Cell, str], list[Finding] | None]
"""Checks one non-blank cell (raw value, canonical text); None when it is fine."""

HIDDEN = "(hidden)"
"""Shown instead of a write-only value (a password) in a problem."""

_KNOWN_SHOWN = 8  # how many known platform values a message lists before "..."


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
    checker = _TableChecker(table, platform_choices)
    yield from table.header_problems
    yield from checker.missing_new_columns(has_snapshot)
    total = len(table.rows)
    for done, row in enumerate(table.rows):
        if progress is not None and done % 1000 == 0:
            progress(done, total)
        is_new = (row.row_id is None) if has_snapshot else None
        yield from checker.row(row, is_new)
        yield from checker.cross_row(row)
    if progress is not None:
        progress(total, total)


def check_rows(
    table: Table,
    rows: Iterable[Row],
    *,
    has_snapshot: bool = False,
    platform_choices: Mapping[str, Collection[str]] | None = None,
) -> Iterator[Problem]:
    """The per-row problems of some rows of a table (no header or cross-row checks): re-checking edited rows."""
    checker = _TableChecker(table, platform_choices)
    for row in rows:
        yield from checker.row(row, (row.row_id is None) if has_snapshot else None)


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
    table = build_table(sheet, dialect, headers, rows, first_row=first_row)
    out: list[list[Problem]] = [[] for _ in rows]
    checker = _TableChecker(table, None)
    for row in table.rows:
        found = checker.row(row, None)
        found.extend(checker.cross_row(row))
        if len(found) > 1:
            found.sort(key=sort_key)
        out[row.number - first_row] = found
    return out


def check_value(dialect: Dialect, column: str, value: Cell, *, sheet: str = "Users", cell: str = "") -> list[Problem]:
    """The problems of one value of one column (name or alias), as the Excel cell functions show them.

    Whether the user is new is unknown, so a blank in a column required for new users is a warning.
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
    return [_problem(f, sheet, cell, row, found, value) for f in rule.findings(value, text, None)]


# --- per-column rules ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    """The compiled checks of one column."""

    column: Column
    validate: Validator
    allowed: str
    """``; expected one of ...`` for required-value messages, or empty."""
    dialect_title: str

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
            out.extend(_unknown_values(self.column, text, known))
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
    return _Rule(column, validate, allowed, dialect.title)


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
        return _codec_validator(parse_email)
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
    return _ok


def _ok(raw: Cell, text: str) -> list[Finding] | None:
    return None


def _codec_validator(parse: Callable[[str], object]) -> Validator:
    def validate(raw: Cell, text: str) -> list[Finding] | None:
        try:
            parse(text)
        except CodecError as exc:
            return [("error", exc.code, exc.message, exc.fix)]
        return None

    return validate


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


def _unknown_values(column: Column, text: str, known: frozenset[str]) -> list[Finding]:
    """Values the platform does not know (teams, groups): warnings, with the exact spelling when it is a case slip."""
    if column.type == "list":
        items = split_list(text, column.separator or "; ", column.escape)
    else:
        items = [text]
    unknown = [item for item in items if item not in known]
    if not unknown:
        return []
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
        fixed = [guesses.get(item) or item for item in items]
        fix = _join_or_none(fixed, column.separator, column.escape) if column.type == "list" and column.separator else fixed[0]
    return [("warning", "unknown-value", message, fix)]


# --- a table's rows ---------------------------------------------------------------------------------------


def _problem(finding: Finding, sheet: str, cell: str, row: int, column: Column, value: Cell) -> Problem:
    severity, code, message, fix = finding
    if column.write_only and value is not None:
        value = HIDDEN
    return Problem(severity, sheet, cell, row, column.name, value, code, message, fix)


def _row_of(cell: str) -> int:
    digits = "".join(ch for ch in cell if ch.isdigit())
    return int(digits) if digits else 0


class _TableChecker:
    """Checks the rows of one table, remembering keys and unique values for the cross-row checks."""

    def __init__(self, table: Table, platform_choices: Mapping[str, Collection[str]] | None) -> None:
        self.table = table
        self.dialect = dialect = table.dialect
        self.sheet = table.sheet
        rules = _rules(dialect)
        choices = platform_choices or {}
        self.plan: list[tuple[str, str, _Rule, frozenset[str] | None]] = []
        for name in table.present:
            letters = cell_address(table.positions[name], 1)[:-1]
            known = choices.get(name)
            self.plan.append((name, letters, rules[name], frozenset(known) if known is not None else None))
        self.letters = {name: letters for name, letters, _, _ in self.plan}
        self.requires = [(name, rules[name].column.requires) for name, _, _, _ in self.plan if rules[name].column.requires]
        self.extra_letters: dict[str, str] = {}
        for index, header in enumerate(table.headers, start=1):
            if header and header not in self.extra_letters and dialect.find_column(header) is None:
                self.extra_letters[header] = cell_address(index, 1)[:-1]
        key = dialect.key
        self.key = key
        self.fallback = dialect.key_fallback
        key_column = dialect.column(key)
        self.key_folds = dialect.key_case_insensitive or key_column.type == "email"
        self.unique = [
            (c.name, c.type == "email" or (c.name == self.fallback and self.key_folds))
            for c in dialect.columns
            if c.unique and c.name != key and c.name in table.positions
        ]
        self.seen_keys: dict[str, tuple[int, str]] = {}
        self.seen_unique: dict[str, dict[str, tuple[int, str]]] = {name: {} for name, _ in self.unique}

    def missing_new_columns(self, has_snapshot: bool) -> Iterator[Problem]:
        """Columns required for new users that the header row lacks (an error once new rows exist)."""
        dialect, table = self.dialect, self.table
        new_rows = [r for r in table.rows if r.row_id is None] if has_snapshot else []
        for column in dialect.columns:
            if column.required != "new" or column.name in table.positions:
                continue
            if has_snapshot and new_rows:
                message = f"the header row has no {column.name!r} column, which new users need (first new user in row {new_rows[0].number})."
                yield Problem("error", self.sheet, "", HEADER_ROW, column.name, None, "missing-column", message)
            elif not has_snapshot and not dialect.partial_columns:
                message = f"the header row has no {column.name!r} column: new users in this file would lack it ({dialect.title} requires it for new users)."
                yield Problem("warning", self.sheet, "", HEADER_ROW, column.name, None, "missing-column", message)

    def row(self, row: Row, is_new: bool | None) -> list[Problem]:
        """The problems of one row's own cells (no cross-row checks)."""
        out: list[Problem] = []
        number = row.number
        sheet = self.sheet
        values = row.values
        filled: set[str] = set()
        for name, letters, rule, known in self.plan:
            raw = values.get(name)
            text = to_text(raw)
            if text is None:
                if name == self.key and (self.fallback is not None or rule.column.required == "never"):
                    continue  # the key fallback, or missing-key below
                finding = rule.blank(is_new)
                if finding is not None:
                    out.append(_problem(finding, sheet, f"{letters}{number}", number, rule.column, None))
                continue
            filled.add(name)
            found = rule.findings(raw, text, known)
            if found:
                cell = f"{letters}{number}"
                out.extend(_problem(f, sheet, cell, number, rule.column, raw) for f in found)
        for name, needs in self.requires:
            if name not in filled:
                continue
            for other in needs:
                if other not in filled:
                    value = values.get(name)
                    message = f"{quote(to_text(value))} is only applied together with {other!r}, which is blank: fill in {other!r} too."
                    cell = f"{self.letters[name]}{number}"
                    out.append(Problem("error", sheet, cell, number, name, value, "requires-column", message))
        if self.key not in filled and (self.fallback is None or self.fallback not in filled):
            out.extend(self._missing_key(number))
        for header, raw in row.extra.items():
            if isinstance(raw, str) and raw.strip().startswith("="):
                cell = f"{self.extra_letters[header]}{number}" if header in self.extra_letters else ""
                message = f"{quote(raw.strip())} is a formula's text, not a value: it would be sent as that text. Type the value itself."
                out.append(Problem("error", sheet, cell, number, header, raw, "formula", message))
        return out

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

    def cross_row(self, row: Row) -> list[Problem]:
        """Duplicate keys and unique values: each repeat points at the row that had it first."""
        out: list[Problem] = []
        number = row.number
        values = row.values
        key_text = to_text(values.get(self.key))
        key_column = self.key
        if key_text is None and self.fallback is not None:
            key_text = to_text(values.get(self.fallback))
            key_column = self.fallback
        flagged: str | None = None
        if key_text is not None and key_column in self.letters:
            folded = key_text.casefold() if self.key_folds else key_text
            cell = f"{self.letters[key_column]}{number}"
            first = self.seen_keys.get(folded)
            if first is None:
                self.seen_keys[folded] = (number, cell)
            else:
                via = f" (the {self.key}, taken from {key_column})" if key_column != self.key else ""
                message = f"{quote(key_text)}{via} is already the {self.key} of row {first[0]} ({first[1]}); each user can appear only once."
                out.append(Problem("error", self.sheet, cell, number, key_column, values.get(key_column), "duplicate-key", message))
                flagged = key_column
        for name, folds in self.unique:
            text = to_text(values.get(name))
            if text is None or name == flagged:
                continue
            folded = text.casefold() if folds else text
            seen = self.seen_unique[name]
            cell = f"{self.letters[name]}{number}"
            first = seen.get(folded)
            if first is None:
                seen[folded] = (number, cell)
                continue
            message = f"{quote(text)} is already the {name} of row {first[0]} ({first[1]}); {name} must be unique."
            out.append(Problem("error", self.sheet, cell, number, name, values.get(name), "duplicate-value", message))
        return out
