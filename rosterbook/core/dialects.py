"""Platform dialects: declarative data files (``rosterbook/dialects/*.toml``), validated on load.

A dialect says everything rosterbook knows about one platform's user file: its columns and
aliases, the key, status words and what they mean, list separators and escapes, what a blank
cell means, defaults for new users, and the platform's upload options. Adding a platform needs
a data file, not code.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from rosterbook.core.errors import DialectError

ColumnType = Literal["text", "email", "status", "list", "bool", "date", "id", "phone", "choice", "password"]
Required = Literal["always", "new", "never"]
Blank = Literal["keep", "clear"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatusWord(_Model):
    """One account status word and what it means."""

    word: str
    """The exact word the platform expects (``Active``)."""
    seat: bool = False
    """A user in this status holds a paid seat."""
    invite: bool = False
    """A new user created in this status gets an invitation email."""
    archived: bool = False
    """This status means the user is archived / deactivated."""
    login: bool = False
    """A user in this status can log in."""
    uninvited: bool = False
    """Users in this status have not been sent an invitation yet: moving one to an ``invite`` status may send it."""
    help: str = ""
    """One line shown in drop-downs and previews."""


class Column(_Model):
    """One column of the platform's user file."""

    name: str
    """The exact header the platform writes and expects."""
    aliases: tuple[str, ...] = ()
    """Other headers accepted for this column (case- and space-insensitive)."""
    spellings: tuple[str, ...] = ()
    """Other spellings the platform's own help or export uses (``firstname`` for EdApp's First Name): accepted like
    aliases, and counted as the platform's own when a header row is recognised (exact, case-sensitive)."""
    type: ColumnType = "text"
    required: Required = "never"
    """``always``: every row; ``new``: rows that create a user; ``never``: optional."""
    unique: bool = False
    """No two rows may share a value (case-insensitive for emails)."""
    write_only: bool = False
    """Never exported (passwords): a blank cell means 'leave unchanged'."""
    blank: Blank = "clear"
    """What a blank cell means on an existing user: ``keep`` the current value or ``clear`` it."""
    clear_word: str | None = None
    """A word that explicitly clears the field when ``blank = "keep"`` (e.g. ``(clear)``)."""
    default: str | None = None
    """Value applied to new users when the cell is blank (formatted cell text)."""
    separator: str | None = None
    """List columns: the separator as written (``"; "`` or ``"|"``)."""
    escape: str | None = None
    """List columns: the escape character for a literal separator (``"\\\\"``)."""
    choices: tuple[str, ...] | None = None
    """Allowed values (for ``choice`` and the items of a ``list``); None = open."""
    choices_from_platform: bool = False
    """The allowed values come from the platform (teams, groups) and are checked as warnings."""
    unknown_choice: str = ""
    """What the platform does with a value it does not know (``choices_from_platform`` columns)."""
    pattern: str | None = None
    """A regular expression the whole value must match."""
    requires: tuple[str, ...] = ()
    """Columns that must also be filled for a change of this one to apply (Progression: position needs team)."""
    references: str | None = None
    """The column of another user this one names (a manager's email or username): the value must be that
    column's value of a user in the export or of a new row, and nobody may manage themselves, even in a circle."""
    exact_choices: bool = False
    """``choices_from_platform`` values must be spelled exactly as the platform names them (EdApp groups): a value
    that differs from a known one only in case or spacing is an error, with the exact name as its fix."""
    scim: str | None = None
    """SCIM attribute path this column maps to (``name.givenName``, ``emails[type eq "work"].value``)."""
    derived_from: tuple[str, ...] = ()
    """A platform attribute the sheet does not show, which the platform holds as these columns joined by a space
    (SCIM ``displayName`` = first and last name): kept in the snapshot, and changed with them by a sync when it
    was that combination (never when someone chose another spelling)."""
    help: str = ""
    """One line for the template's header comment and the README."""

    @model_validator(mode="after")
    def _check(self) -> Column:
        if self.type == "list" and not self.separator:
            raise ValueError(f"list column {self.name!r} needs a separator")
        if self.type != "list" and (self.separator or self.escape):
            raise ValueError(f"only list columns take a separator or escape ({self.name!r})")
        if self.type == "choice" and not self.choices and not self.choices_from_platform:
            raise ValueError(f"choice column {self.name!r} needs choices")
        if self.clear_word is not None and self.blank != "keep":
            raise ValueError(f"clear_word only makes sense with blank = 'keep' ({self.name!r})")
        if self.write_only and self.required == "always":
            raise ValueError(f"a write-only column cannot be always required ({self.name!r})")
        if self.derived_from and (self.required != "never" or self.write_only or self.type != "text"):
            raise ValueError(f"a derived column is an optional text column ({self.name!r})")
        if self.exact_choices and not self.choices_from_platform:
            raise ValueError(f"exact_choices needs choices_from_platform ({self.name!r})")
        if self.escape is not None and len(self.escape) != 1:
            raise ValueError(f"an escape is one character ({self.name!r})")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern of {self.name!r} is not a valid regular expression: {exc}") from None
        if self.default is not None and self.choices:
            items = [i.strip() for i in self.default.split((self.separator or "").strip() or "\n")] if self.type == "list" else [self.default]
            bad = [i for i in items if i and i not in self.choices]
            if bad:
                raise ValueError(f"default of {self.name!r} holds {bad[0]!r}, which is not one of its choices")
        return self


class Option(_Model):
    """A platform upload option, set per workbook on the Settings sheet."""

    available: bool = True
    default: str | bool = False
    choices: tuple[str, ...] = ()
    help: str = ""


class Options(_Model):
    """The upload options a platform offers (unavailable ones keep ``available = False``)."""

    invite_new_users: Option = Option(available=False)
    """EdApp: a toggle that sends invitations to new users."""
    list_mode: Option = Option(available=False, default="replace", choices=("add", "replace"))
    """EdApp: existing users' groups and roles are added to, or replaced."""
    deactivate_missing: Option = Option(available=False)
    """Incenteev: users not present in the file are deactivated."""
    simulation: Option = Option(available=False)
    """Incenteev: the upload is first run in simulation mode."""


UploadOption = Literal["invite_new_users", "list_mode", "deactivate_missing"]

ADVICE_FIELDS: tuple[str, ...] = ("create", "update", "archive", "deactivate", "invitations")
"""What an upload choice's advice may quote: ``{create}`` new users, ``{deactivate}`` users the file deactivates, ..."""


class UploadChoice(_Model):
    """A choice the admin makes on the platform's upload screen, and what to choose for a given file."""

    choice: str
    """The choice as the platform's upload screen names it (``Deactivate users not present in the file``)."""
    option: UploadOption | None = None
    """The Settings option the advice follows; None when the advice is always the same (simulation mode)."""
    advice: dict[str, str]
    """What to do, by the option's value: ``on``/``off`` for a toggle, the choice (``add``/``replace``) for
    list_mode, ``always`` without an option. ``{create}``, ``{update}``, ``{archive}``, ``{deactivate}`` and
    ``{invitations}`` are replaced by the plan's numbers."""

    @model_validator(mode="after")
    def _check(self) -> UploadChoice:
        for key, text in self.advice.items():
            try:
                names = [field for _, field, _, _ in string.Formatter().parse(text) if field is not None]
            except ValueError as exc:
                raise ValueError(f"advice {key!r} of {self.choice!r} is not a valid template: {exc}") from None
            unknown = [n for n in names if n not in ADVICE_FIELDS]
            if unknown:
                raise ValueError(f"advice {key!r} of {self.choice!r} quotes {{{unknown[0]}}}; expected one of {', '.join(ADVICE_FIELDS)}")
        return self

    def advice_for(self, value: str | bool | None) -> str:
        """The advice text for the option's value (``always`` when there is no option)."""
        if self.option is None:
            return self.advice["always"]
        if isinstance(value, bool):
            return self.advice["on" if value else "off"]
        return self.advice[str(value)]


class Dialect(_Model):
    """Everything rosterbook knows about one platform's user file."""

    name: str
    """Short lower-case name used on the command line (``progression``)."""
    title: str
    """Display name."""
    kind: Literal["csv", "scim"]
    """``csv``: Sync writes an upload file; ``scim``: Sync talks SCIM 2.0."""
    seeds: tuple[str, ...] = ()
    """Which requirement notes under ``shared/seeds`` this dialect encodes."""
    key: str
    """Column that identifies a user on the platform."""
    key_fallback: str | None = None
    """Column whose value the key takes when the key cell is blank (EdApp: username <- email)."""
    key_mutable: bool = False
    """The key can be changed on an existing user through this channel (SCIM: PATCH by id)."""
    key_change_advice: str = ""
    """What the platform's help says to do instead of editing the key."""
    key_case_insensitive: bool = True
    """Keys are compared case-insensitively (emails and SCIM userName are)."""
    status_column: str | None = None
    status_words: tuple[StatusWord, ...] = ()
    status_case_insensitive_fix: bool = True
    """A status typed in the wrong case is an error with the right word suggested."""
    invitations: Literal["status", "toggle", "none"] = "none"
    """Who gets an invitation: new users in an ``invite`` status, new users when the toggle is on, nobody."""
    billing: Literal["seats", "none"] = "none"
    """``seats``: each user in a ``seat`` status is billed (pro rata beyond the subscription)."""
    partial_columns: bool = False
    """An upload file may carry only the key plus the columns being changed (Jostle)."""
    missing_users: Literal["ignored", "option"] = "ignored"
    """Users absent from the file: always ignored, or deactivated when the deactivate_missing option is on."""
    extra_columns: Literal["error", "custom"] = "error"
    """Headers that are not columns: an error, or the platform's custom fields passed through as text."""
    delete_by_removing_row: bool = False
    """The platform's documented way to delete a user is to remove their row (Incenteev)."""
    encoding: str = "utf-8"
    """Encoding of the upload file (``utf-8-sig`` writes a BOM Excel recognises)."""
    delimiter: str = ","
    line_terminator: str = "\r\n"
    upload_file_name: str = "{stem}-upload.csv"
    options: Options = Options()
    upload_choices: tuple[UploadChoice, ...] = ()
    """What the admin chooses on the platform's upload screen: the preview and the sync say what to choose for each file."""
    columns: tuple[Column, ...]
    notes: tuple[str, ...] = ()
    """Where the seeds are silent: what we chose and why (shown by ``rosterbook dialects``)."""
    undo_notes: tuple[str, ...] = ()
    """What an upload file cannot put back on this platform (``rosterbook undo`` says so with every reverse plan)."""
    scim_active_from_status: bool = False
    """SCIM dialects: the core ``active`` attribute follows the status word's ``login`` flag."""
    scim_extension: str | None = None
    """SCIM dialects: the URN of the platform's custom user extension, if any."""

    @model_validator(mode="after")
    def _check(self) -> Dialect:
        names = [c.name for c in self.columns]
        folded: dict[str, str] = {}
        for column in self.columns:
            for header in (column.name, *column.aliases, *column.spellings):
                norm = normalise_header(header)
                if norm in folded and folded[norm] != column.name:
                    raise ValueError(f"header {header!r} names both {folded[norm]!r} and {column.name!r}")
                folded[norm] = column.name
        if len(set(names)) != len(names):
            raise ValueError("column names must be unique")
        if self.key not in names:
            raise ValueError(f"key {self.key!r} is not a column")
        if self.key_fallback is not None and self.key_fallback not in names:
            raise ValueError(f"key_fallback {self.key_fallback!r} is not a column")
        for column in self.columns:
            for other in column.requires:
                if other not in names:
                    raise ValueError(f"{column.name!r} requires unknown column {other!r}")
        if self.column(self.key).write_only:
            raise ValueError(f"key {self.key!r} cannot be write-only")
        for column in self.columns:
            bad = [n for n in column.derived_from if n not in names or self.column(n).derived_from]
            if bad:
                raise ValueError(f"{column.name!r} is derived from {bad[0]!r}, which is not a column shown in the sheet")
            if column.derived_from and column.name in (self.key, self.status_column):
                raise ValueError(f"the key or status column cannot be derived ({column.name!r})")
        words = [w.word for w in self.status_words]
        if len(set(words)) != len(words):
            raise ValueError("status words must be unique")
        if self.status_column is not None:
            if self.status_column not in names:
                raise ValueError(f"status_column {self.status_column!r} is not a column")
            if not self.status_words:
                raise ValueError("a status column needs status_words")
            if self.column(self.status_column).type != "status":
                raise ValueError(f"status column {self.status_column!r} must have type 'status'")
        elif self.status_words:
            raise ValueError("status_words without a status_column")
        if self.billing == "seats" and not any(w.seat for w in self.status_words):
            raise ValueError("billing by seats needs a status word with seat = true")
        if self.invitations == "status" and not any(w.invite for w in self.status_words):
            raise ValueError("invitations by status need a status word with invite = true")
        if self.invitations == "toggle" and not self.options.invite_new_users.available:
            raise ValueError("invitations by toggle need options.invite_new_users")
        if self.missing_users == "option" and not self.options.deactivate_missing.available:
            raise ValueError("missing_users = 'option' needs options.deactivate_missing")
        for column in self.columns:
            if column.references is not None and column.references not in names:
                raise ValueError(f"{column.name!r} references unknown column {column.references!r}")
        for choice in self.upload_choices:
            self._check_choice(choice)
        return self

    def _check_choice(self, choice: UploadChoice) -> None:
        if choice.option is None:
            wanted: set[str] = {"always"}
        else:
            option: Option = getattr(self.options, choice.option)
            if not option.available:
                raise ValueError(f"upload choice {choice.choice!r} follows option {choice.option!r}, which this dialect does not offer")
            wanted = set(option.choices) if option.choices else {"on", "off"}
        if set(choice.advice) != wanted:
            raise ValueError(f"upload choice {choice.choice!r} needs advice for exactly {', '.join(sorted(wanted))}")

    # --- look-ups -------------------------------------------------------------------------

    @property
    def sheet_columns(self) -> tuple[Column, ...]:
        """The columns a sheet (or upload file) shows: every column but the derived ones."""
        return tuple(c for c in self.columns if not c.derived_from)

    @property
    def column_names(self) -> tuple[str, ...]:
        """The column names in file order."""
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        """The column called ``name`` (exact name); KeyError when there is none."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def find_column(self, header: str) -> Column | None:
        """The column a header names, by exact name or alias (case, spaces, ``_`` and ``-`` ignored)."""
        return _header_index(self).get(normalise_header(header))

    def extra_headers(self, headers: Iterable[str | None]) -> list[str]:
        """The headers that are this platform's custom fields (no column of the dialect), cleaned, each once;
        none for a dialect without custom fields."""
        if self.extra_columns != "custom":
            return []
        cleaned = (clean_header(h) for h in headers)
        return list(dict.fromkeys(h for h in cleaned if h and self.find_column(h) is None))

    def user_key(self, text_of: Callable[[str], str | None]) -> str | None:
        """The key a user is identified by: the key column's text, else the fallback column's (EdApp: username <- email)."""
        return text_of(self.key) or (text_of(self.key_fallback) if self.key_fallback is not None else None)

    def status_word(self, word: str) -> StatusWord | None:
        """The status word spelled exactly ``word``, or None."""
        for status in self.status_words:
            if status.word == word:
                return status
        return None

    @property
    def archive_word(self) -> str | None:
        """The status word that archives a user, if the dialect has one."""
        for status in self.status_words:
            if status.archived:
                return status.word
        return None

    @property
    def list_columns(self) -> tuple[Column, ...]:
        """The list columns (``; `` or ``|`` separated)."""
        return tuple(c for c in self.columns if c.type == "list")

    @property
    def documented_spellings(self) -> frozenset[str]:
        """Headers spelled exactly as the platform documents them: column names and their ``spellings``."""
        return frozenset(h for c in self.columns for h in (c.name, *c.spellings))

    def option_default(self, option: str) -> str | bool:
        """The default value of a platform option (``invite_new_users``, ``list_mode``, ...)."""
        opt: Option = getattr(self.options, option)
        return opt.default


def clean_header(header: str | None) -> str | None:
    """A header cell as written, without a BOM and outer spaces; None when blank."""
    if header is None:
        return None
    return header.lstrip("\ufeff").strip() or None


def normalise_header(header: str) -> str:
    """Fold a header for matching: case, spaces, ``_``, ``-`` and a BOM don't matter."""
    return "".join(ch for ch in header.lstrip("\ufeff").casefold() if ch not in " _-\t\r\n")


@cache
def _header_index_cached(dialect_name: str, columns: tuple[Column, ...]) -> dict[str, Column]:
    index: dict[str, Column] = {}
    for column in columns:
        for header in (column.name, *column.aliases, *column.spellings):
            index[normalise_header(header)] = column
    return index


def _header_index(dialect: Dialect) -> dict[str, Column]:
    return _header_index_cached(dialect.name, dialect.columns)


# --- loading -------------------------------------------------------------------------------


def parse_dialect(text: str, source: str = "<string>") -> Dialect:
    """Validate one dialect file's TOML text; unknown keys are rejected."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DialectError(f"{source}: not valid TOML: {exc}") from None
    try:
        return Dialect.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top)"
            lines.append(f"{where}: {err['msg']}")
        raise DialectError(f"{source}: invalid dialect: " + "; ".join(lines)) from None


@cache
def load_dialect(name: str) -> Dialect:
    """The built-in dialect called ``name`` (``progression``, ``edapp``, ``incenteev``, ``jostle``, ``scim``)."""
    if name not in dialect_names():
        raise DialectError(f"unknown dialect {name!r}: expected one of {', '.join(repr(n) for n in dialect_names())}")
    text = resources.files("rosterbook.dialects").joinpath(f"{name}.toml").read_text(encoding="utf-8")
    dialect = parse_dialect(text, f"{name}.toml")
    if dialect.name != name:
        raise DialectError(f"{name}.toml: declares name {dialect.name!r}")
    return dialect


@cache
def dialect_names() -> tuple[str, ...]:
    """Names of the built-in dialects, sorted."""
    files = resources.files("rosterbook.dialects").iterdir()
    return tuple(sorted(f.name.removesuffix(".toml") for f in files if f.name.endswith(".toml")))


def all_dialects() -> tuple[Dialect, ...]:
    """Every built-in dialect, by name."""
    return tuple(load_dialect(n) for n in dialect_names())


@dataclass(frozen=True)
class Recognition:
    """Which dialect a header row is recognised as, and why (``recognise``)."""

    dialect: Dialect | None
    """The dialect chosen; None when none fits or two fit equally."""
    fits: tuple[tuple[Dialect, int, int], ...]
    """Every dialect that fits, best first: (dialect, headers spelled its own way, headers it explains)."""

    @property
    def reason(self) -> str | None:
        """Why this dialect and not another that also fits (None when only one fits or none does)."""
        if len(self.fits) < 2:
            return None
        (best, own, explained), (other, other_own, other_explained) = self.fits[0], self.fits[1]
        if self.dialect is not None:
            # A platform reached through its API takes no files: it never competes with a CSV platform for one.
            rivals = [fit for fit in self.fits[1:] if fit[0].kind == best.kind]
            if not rivals:
                return None
            other, other_own, other_explained = rivals[0]
        if self.dialect is None:
            return (f"the header row fits {best.title} and {other.title} equally "
                    f"({own} header{'s' if own != 1 else ''} spelled as each documents them, {explained} explained)")
        why = (f"{own} header{'s are' if own != 1 else ' is'} spelled as {best.title} documents them, {other_own} as {other.title} does"
               if own != other_own else f"it explains {explained} of the headers, {other.title} {other_explained}")
        return f"recognised as {best.title} ({best.name!r}), not {other.title} ({other.name!r}): {why}"


def recognise(headers: Iterable[str | None], kind: Literal["csv", "scim"] | None = None) -> Recognition:
    """The dialect whose columns best explain a header row, with every other dialect that fits.

    A dialect fits when its key (or key fallback) is among the headers and it explains most of
    them (its columns, aliases or spellings); the rest are its custom fields or, for a dialect
    without custom fields, headers the check reports as unknown. The dialect with the most headers
    spelled exactly as the platform documents them wins (its column names and ``spellings``: generic
    SCIM aliases explain many files), then the one explaining most; a tie chooses none. ``kind``
    limits the candidates (a platform's CSV export is never a SCIM platform's).
    """
    heads = [h for h in map(clean_header, headers) if h]
    if not heads:
        return Recognition(None, ())
    scored: list[tuple[Dialect, int, int]] = []
    for dialect in all_dialects():
        if kind is not None and dialect.kind != kind:
            continue
        found = [dialect.find_column(h) for h in heads]
        names = {c.name for c in found if c is not None}
        if dialect.key not in names and (dialect.key_fallback is None or dialect.key_fallback not in names):
            continue
        explained = sum(1 for c in found if c is not None)
        if explained * 2 <= len(heads):
            continue
        own = dialect.documented_spellings
        scored.append((dialect, sum(1 for h in heads if h in own), explained))
    scored.sort(key=lambda item: (item[1], item[2]), reverse=True)
    fits = tuple(scored)
    if not fits or (len(fits) > 1 and fits[0][1:] == fits[1][1:]):
        return Recognition(None, fits)
    return Recognition(fits[0][0], fits)


def recognise_dialect(headers: Iterable[str | None]) -> Dialect | None:
    """The dialect whose columns best explain a header row, or None when none fits or two fit equally (see ``recognise``)."""
    return recognise(headers).dialect


def describe_dialect(dialect: Dialect) -> str:
    """A dialect as readable text: its rules, its columns and the notes on choices the seeds left open."""
    lines = [f"{dialect.name}: {dialect.title} ({'SCIM 2.0' if dialect.kind == 'scim' else 'CSV upload file'})"]
    key = f"key: {dialect.key!r}"
    if dialect.key_fallback:
        key += f" (taken from {dialect.key_fallback!r} when blank)"
    key += "; can be changed through the sheet" if dialect.key_mutable else "; cannot be changed through the file"
    lines.append(key)
    if dialect.key_change_advice:
        lines.append(f"  {dialect.key_change_advice}")
    if dialect.status_column:
        lines.append(f"status column: {dialect.status_column!r}")
        for word in dialect.status_words:
            flags = [name for name in ("seat", "invite", "login", "archived", "uninvited") if getattr(word, name)]
            lines.append(f"  {word.word}: {word.help}" + (f" [{', '.join(flags)}]" if flags else ""))
    lines.append(f"invitations: {dialect.invitations}; billing: {dialect.billing}; users missing from the file: {dialect.missing_users}")
    if dialect.partial_columns:
        lines.append("an upload file may carry only the key and the columns being changed")
    lines.append("other headers: " + ("custom fields, passed through as text" if dialect.extra_columns == "custom" else "an error"))
    for option_name in ("invite_new_users", "list_mode", "deactivate_missing", "simulation"):
        option: Option = getattr(dialect.options, option_name)
        if option.available:
            lines.append(f"option {option_name} (default {option.default!r}): {option.help}")
    if dialect.upload_choices:
        lines.append("upload-time choices (the preview and the sync say what to choose for each file):")
        for choice in dialect.upload_choices:
            follows = f" (follows the {choice.option} setting)" if choice.option is not None else ""
            lines.append(f"  {choice.choice}{follows}:")
            lines.extend(f"    {value}: {text.format_map(dict.fromkeys(ADVICE_FIELDS, 'N'))}" for value, text in choice.advice.items())
    lines.append("columns:")
    for column in dialect.columns:
        rules = _column_rules(column)
        if column.name == dialect.key and dialect.key_fallback:
            rules = rules.replace("blank clears", f"blank takes {dialect.key_fallback!r}").replace("blank keeps", f"blank takes {dialect.key_fallback!r}")
        lines.append(f"  {column.name} [{rules}]" + (f": {column.help}" if column.help else ""))
    if dialect.notes:
        lines.append("notes:")
        lines.extend(f"  - {note}" for note in dialect.notes)
    if dialect.undo_notes:
        lines.append("what an undo's upload file cannot put back:")
        lines.extend(f"  - {note}" for note in dialect.undo_notes)
    return "\n".join(lines)


def _column_rules(column: Column) -> str:
    rules: list[str] = [column.type]
    if column.required != "never":
        rules.append("required" if column.required == "always" else "required for new users")
    if column.unique:
        rules.append("unique")
    if column.write_only:
        rules.append("write-only")
    rules.append(f"blank {column.blank}s" if column.blank == "keep" else "blank clears")
    if column.clear_word:
        rules.append(f"{column.clear_word!r} clears")
    if column.separator:
        rules.append(f"separator {column.separator!r}" + (f", escape {column.escape!r}" if column.escape else ""))
    if column.choices:
        rules.append("one of " + ", ".join(repr(c) for c in column.choices))
    if column.choices_from_platform:
        rules.append("values from the platform" + (", spelled exactly" if column.exact_choices else ""))
    if column.references:
        rules.append(f"names another user's {column.references!r}")
    if column.default:
        rules.append(f"default {column.default!r}")
    if column.requires:
        rules.append("needs " + ", ".join(repr(r) for r in column.requires))
    if column.derived_from:
        rules.append("not in the sheet; follows " + " + ".join(repr(r) for r in column.derived_from) + " when it was their usual form")
    if column.spellings:
        rules.append("also spelled " + ", ".join(repr(a) for a in column.spellings))
    if column.aliases:
        rules.append("aliases " + ", ".join(repr(a) for a in column.aliases))
    return "; ".join(rules)
