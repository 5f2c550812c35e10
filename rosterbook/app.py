"""The library functions the CLI and the Excel ribbon share: export, check, preview, sync, revert, demo.

Each takes a workbook (a ``SheetBook``, or a path opened with ``OpenpyxlBook``), reads it through
``rosterbook.workbook``, calls the core, writes back through the same protocol and returns plain
data (the CLI prints it; ``--json`` prints exactly this). Errors are ``RosterbookError``s.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rosterbook import workbook as wbk
from rosterbook.core.checks import check_table
from rosterbook.core.codecs import CodecError, canonical, to_text
from rosterbook.core.dialects import Dialect, load_dialect, recognise_dialect
from rosterbook.core.problems import Problem, has_errors
from rosterbook.core.report import CheckReport
from rosterbook.core.table import SnapshotRow, Table, build_table
from rosterbook.errors import DataError, RosterbookError, UnsyncedEditsError, UsageError
from rosterbook.sheets import SheetBook

if TYPE_CHECKING:
    from rosterbook.core.diff import Change
    from rosterbook.core.plan import Plan

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: what the CLI draws as a bar and the ribbon as a status line."""

Book = SheetBook | str | os.PathLike[str]
"""A workbook: an open SheetBook (the ribbon) or the path of an .xlsx file (the CLI)."""

DIALECT_SHEET = "_dialect"
"""Very hidden: the dialect a SCIM platform announced at export (its columns come from /Schemas)."""

BATCH = 500
"""Rows sent between two checkpoints of the workbook during a sync (a failure loses at most one batch's log)."""

CHECKPOINT_SECONDS = 10.0
"""A checkpoint saves the workbook only when this long (and four times the last save) has passed since
the previous save, and the last batch always saves: saving a 50,000-row workbook takes seconds, so
saving after every batch would cost more than sending. A re-run after a crash resends only what the
platform does not hold yet (its If-Match answers say what already landed)."""


class SyncCancelled(RosterbookError):
    """The user answered no to the sync confirmation: nothing was sent."""


# --- opening -----------------------------------------------------------------------------------


def open_book(target: Book, *, read_only: bool = False) -> SheetBook:
    """The SheetBook for ``target``: itself, or the .xlsx file at that path.

    ``read_only`` opens big files with the fast calamine reader unless a data sheet holds
    formulas (whose text openpyxl gives and calamine would not).
    """
    if not isinstance(target, str | os.PathLike):
        return target
    path = Path(target)
    if read_only and path.suffix.lower() == ".xlsx" and path.exists():
        from rosterbook.fastread import FastBook

        fast = FastBook(path)
        if wbk.USERS not in fast.sheet_names() or not fast.has_formulas(wbk.USERS):
            return fast
    from rosterbook.xlsx import OpenpyxlBook

    return OpenpyxlBook(path)


def _path_of(book: SheetBook) -> Path | None:
    path = getattr(book, "path", None)
    return Path(path) if path is not None else None


def _save(book: SheetBook) -> None:
    book.progress("Saving the workbook")
    book.save()


def _stage(progress: Progress | None, book: SheetBook | None, stage: str) -> Callable[[int, int], None] | None:
    """A core-style ``progress(done, total)`` for one stage, also shown on the book's status line."""
    if progress is None and book is None:
        return None

    def report(done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)
        if book is not None and (done == total or done % 5000 == 0):
            book.progress(f"{stage}: {done}/{total}")

    return report


# --- reading a workbook ------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    """A workbook read for the core: settings, dialect, snapshot, Users table, Lists."""

    book: SheetBook
    settings: wbk.BookSettings
    dialect: Dialect
    snapshot: dict[str, SnapshotRow]
    users: wbk.UsersSheet
    lists: dict[str, list[str]]
    exported: bool
    """The workbook has a snapshot sheet: rows without a row id are new users."""
    stored: Mapping[str, SnapshotRow] = field(default_factory=dict)
    """The snapshot as the workbook's sheet holds it (``snapshot`` may have adopted entries on top)."""

    @property
    def table(self) -> Table:
        return self.users.table


def workbook_dialect(book: SheetBook, settings: wbk.BookSettings) -> Dialect:
    """The dialect stored at export (a SCIM platform's announced columns), else the named one."""
    if DIALECT_SHEET in book.sheet_names():
        text = "".join(to_text(row[0]) or "" for row in book.values(DIALECT_SHEET)[1:] if row)
        if text:
            try:
                dialect = Dialect.model_validate_json(text)
            except ValueError:
                raise DataError(f"{DIALECT_SHEET}: the stored platform dialect was edited and is no longer valid. Export again.") from None
            if dialect.name == settings.dialect:
                return dialect
    return load_dialect(settings.dialect)


def write_dialect(book: SheetBook, dialect: Dialect | None) -> None:
    """Store (or, for a built-in dialect, clear) the dialect a platform announced."""
    if dialect is None:
        if DIALECT_SHEET in book.sheet_names():
            book.clear(DIALECT_SHEET, 1)
        return
    book.ensure_sheet(DIALECT_SHEET, "veryHidden")
    text = dialect.model_dump_json()
    # A cell holds at most 32,767 characters.
    chunks: list[list[Any]] = [["dialect (JSON, do not edit)"]] + [[text[i : i + 30000]] for i in range(0, len(text), 30000)]
    book.clear(DIALECT_SHEET, 1)
    book.write_values(DIALECT_SHEET, 1, 1, chunks)


def load(book: SheetBook, *, dialect: str | None = None) -> Loaded:
    """Read everything the core needs from a rosterbook workbook."""
    settings = wbk.read_settings(book)
    if dialect is not None and dialect != settings.dialect:
        raise UsageError(f"this workbook is for the {settings.dialect!r} dialect (Settings!B2), not {dialect!r}.")
    chosen = workbook_dialect(book, settings)
    snapshot = wbk.read_snapshot(book)
    exported = wbk.SNAPSHOT in book.sheet_names()
    users = wbk.read_users(book, chosen, snapshot if exported else None)
    if not exported and users.row_ids:
        # Without the snapshot every exported row would look new: a sync would try to create them all again.
        raise DataError(
            f"the very hidden {wbk.SNAPSHOT!r} sheet is missing, but {len(users.row_ids)} rows of the {wbk.USERS} sheet come from an export "
            "(they carry hidden row ids), so they cannot be compared with what was exported. Export again into a new workbook."
        )
    return Loaded(book, settings, chosen, snapshot, users, wbk.read_lists(book), exported, stored=snapshot)


def platform_choices(loaded: Loaded) -> dict[str, list[str]]:
    """Lists of values the platform has: for the columns whose values come from it, and for
    escaped ``|`` lists the items exported (so the platform's own ``Kraków|Lagos``, two known
    locations, is not taken for one name that lacks its ``\\|``)."""
    from rosterbook.core.codecs import split_list

    out: dict[str, list[str]] = {}
    for column in loaded.dialect.columns:
        if column.choices_from_platform and loaded.lists.get(column.name):
            out[column.name] = loaded.lists[column.name]
        elif column.escape is not None and column.separator is not None:
            known: set[str] = set(loaded.lists.get(column.name) or ())
            for snap in loaded.snapshot.values():
                text = snap.values.get(column.name)
                if text:
                    known.update(split_list(text, column.separator, column.escape))
            if known:
                out[column.name] = sorted(known)
    return out


def _problems(loaded: Loaded, progress: Progress | None) -> list[Problem]:
    found = list(
        check_table(
            loaded.table,
            has_snapshot=loaded.exported,
            platform_choices=platform_choices(loaded) or None,
            progress=_stage(progress, loaded.book, "Checking"),
        )
    )
    found.extend(loaded.users.problems)
    return _without_platform_text(loaded, found)


def _without_platform_text(loaded: Loaded, problems: list[Problem]) -> list[Problem]:
    """Drop 'formula' findings on cells that still hold what the platform gave: a name like
    '=HYPERLINK(...)' was written as inert text at export, so it is data, not a formula someone typed."""
    if not loaded.snapshot or not any(p.code == "formula" for p in problems):
        return problems
    by_number = {r.number: r for r in loaded.table.rows}
    kept = []
    for problem in problems:
        row = by_number.get(problem.row) if problem.code == "formula" else None
        snap = loaded.snapshot.get(row.row_id) if row is not None and row.row_id else None
        if snap is not None and to_text(problem.value) == snap.values.get(problem.column):
            continue
        kept.append(problem)
    return kept


# --- check ------------------------------------------------------------------------------------


def check_workbook(target: Book, *, dialect: str | None = None, write: bool = True, progress: Progress | None = None) -> CheckReport:
    """Check the Users sheet; unless ``write`` is False, write the Problems column and mark cells, then save."""
    book = open_book(target, read_only=not write)
    loaded = load(book, dialect=dialect)
    report = CheckReport.from_problems(len(loaded.table.rows), _problems(loaded, progress))
    if write:
        wbk.write_problems(book, loaded.users, report.problems)
        _save(book)
    return report


# --- export -----------------------------------------------------------------------------------


@dataclass
class ExportData:
    """What a platform gave: columns, cell texts, snapshot entries, lists of allowed values."""

    dialect: Dialect
    headers: list[str]
    rows: list[list[str | None]]
    snapshots: list[tuple[str, str | None, str | None, dict[str, str | None]]]
    """Per row: key, platform id, version, canonical values."""
    lists: dict[str, list[str]] = field(default_factory=dict)
    source: str = "scim"
    platform_url: str | None = None
    announced: Dialect | None = None
    """A SCIM platform's dialect as its schemas announce it (stored in the workbook)."""


def export_workbook(
    target: Book,
    *,
    platform: str | None = None,
    dialect: str | None = None,
    from_csv: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: Progress | None = None,
    home: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Fill a workbook from a SCIM platform (default: the embedded sandbox) or a platform's CSV export.

    An existing workbook with edits that were never synced (and that the platform does not have
    now) is refused unless ``force``.
    """
    if from_csv is not None:
        if platform is not None:
            raise UsageError("give either --platform or --from-csv, not both.")
        data = _csv_export(Path(from_csv), dialect)
    else:
        if dialect is not None and load_dialect(dialect).kind != "scim":
            raise UsageError(f"{dialect!r} is a CSV platform: export it with --from-csv EXPORT.csv (its own export file).")
        with platform_url(platform, home) as url:
            data = _scim_export(url, progress)
        data.platform_url = platform.rstrip("/") if platform else None
    existing: SheetBook | None
    if isinstance(target, str | os.PathLike):
        path = Path(target)
        if path.suffix.lower() != ".xlsx":
            raise UsageError(f"{str(path)!r}: the workbook must be an .xlsx file.")
        existing = open_book(path) if path.exists() else None
    else:
        path = None
        existing = target
    previous = _guard_unsynced(existing, data, force) if existing is not None else None
    if existing is not None:
        _guard_shrink(existing, data, previous, force)
    settings = wbk.BookSettings.for_dialect(data.dialect, platform_url=data.platform_url)
    if previous is not None and previous.dialect == settings.dialect:
        keep = {k: getattr(previous, k) for k in ("subscription_seats", "invite_new_users", "list_mode", "deactivate_missing",
                                                   "deletion_threshold_ratio", "deletion_threshold_min")}
        settings = wbk.BookSettings(**{**settings.__dict__, **keep})
    log = existing.values(wbk.SYNC_LOG)[1:] if existing is not None and wbk.SYNC_LOG in existing.sheet_names() else []
    if path is not None:
        from rosterbook.xlsx import OpenpyxlBook

        book: SheetBook = OpenpyxlBook.new(path)
    else:
        assert existing is not None
        book = existing
    lists = _fill(book, data, settings, progress)
    if path is not None and log:
        book.write_values(wbk.SYNC_LOG, 2, 1, log)
    _dress(book, data.dialect, data.headers, lists, len(data.rows) + 1)
    _save(book)
    return {
        "workbook": str(_path_of(book) or ""),
        "dialect": data.dialect.name,
        "source": data.source,
        "platform_url": data.platform_url,
        "rows": len(data.rows),
        "columns": list(data.headers),
        "lists": {name: len(values) for name, values in sorted(lists.items())},
    }


def _fill(book: SheetBook, data: ExportData, settings: wbk.BookSettings, progress: Progress | None) -> dict[str, list[str]]:
    wbk.ensure_layout(book)
    ids = wbk.next_row_ids([], len(data.rows))
    if progress is not None:
        progress("Writing the workbook", 0, len(data.rows))
    wbk.write_users(book, data.dialect, data.headers, data.rows, ids)
    lists = wbk.dialect_lists(data.dialect, data.headers)
    for name, values in data.lists.items():
        if values:
            lists[name] = values
    wbk.write_lists(book, lists)
    wbk.write_settings(book, settings)
    wbk.write_snapshot(
        book, (SnapshotRow(rid, key, resource_id, version, values) for rid, (key, resource_id, version, values) in zip(ids, data.snapshots, strict=True))
    )
    write_dialect(book, data.announced)
    wbk.write_preview(book, {"counts": {}, "changes": []})
    if progress is not None:
        progress("Writing the workbook", len(data.rows), len(data.rows))
    return lists


def _dress(book: SheetBook, dialect: Dialect, headers: Sequence[str], lists: Mapping[str, Sequence[str]], last_row: int) -> None:
    from rosterbook.xlsx import OpenpyxlBook, dress_sheets, dress_users, order_sheets

    if isinstance(book, OpenpyxlBook):
        dress_users(book, dialect, wbk.users_headers(dialect, headers), lists, last_row)
        dress_sheets(book)
        order_sheets(book)


def _cell_texts(dialect: Dialect, headers: Sequence[str], values: Mapping[str, str | None]) -> list[str | None]:
    return [values.get(h) for h in headers]


def _csv_export(path: Path, dialect_name: str | None) -> ExportData:
    from rosterbook.csvfile import read_csv

    data = read_csv(path)
    if data.cut_short:
        from rosterbook.csvfile import cut_short_problem

        raise DataError(f"{cut_short_problem(data).render()} Nothing was written.")
    if dialect_name is not None:
        dialect = load_dialect(dialect_name)
    else:
        found = recognise_dialect(data.headers)
        if found is None:
            raise UsageError(f"{data.name}: cannot tell which platform this export is from; give --dialect.")
        dialect = found
    if dialect.kind != "csv":
        raise UsageError(f"{dialect.name!r} is a SCIM platform: export it with --platform URL, not --from-csv.")
    table = build_table(data.name, dialect, data.headers, data.rows)
    bad = [p for p in table.header_problems if p.severity == "error"]
    if bad:
        raise DataError(f"{data.name}: the header row does not fit {dialect.title}: " + " ".join(p.render() for p in bad))
    present = list(table.present)
    extras = [h for h in (x.lstrip("\ufeff").strip() for x in data.headers) if h and wbk.find_column(dialect, h) is None]
    headers = present + list(dict.fromkeys(extras))
    rows: list[list[str | None]] = []
    snapshots: list[tuple[str, str | None, str | None, dict[str, str | None]]] = []
    for row in table.rows:
        values: dict[str, str | None] = {}
        for name in present:
            column = dialect.column(name)
            values[name] = None if column.write_only else row.text(name)
        for name in headers[len(present):]:
            values[name] = to_text(row.extra.get(name))
        key = values.get(dialect.key) or (values.get(dialect.key_fallback) if dialect.key_fallback else None) or ""
        rows.append(_cell_texts(dialect, headers, values))
        snapshots.append((key, None, None, wbk.snapshot_values(dialect, values)))
    lists: dict[str, list[str]] = {}
    for column in dialect.columns:
        if column.choices_from_platform and column.name in present:
            lists[column.name] = _distinct(dialect, column.name, (r.text(column.name) for r in table.rows))
    return ExportData(dialect, headers, rows, snapshots, lists, source="csv")


def _distinct(dialect: Dialect, name: str, texts: Iterable[str | None]) -> list[str]:
    column = dialect.column(name)
    from rosterbook.core.codecs import split_list

    seen: dict[str, str] = {}
    for text in texts:
        if text is None:
            continue
        items = split_list(text, column.separator, column.escape) if column.type == "list" and column.separator else [text]
        for item in items:
            seen.setdefault(item.casefold(), item)
    return sorted(seen.values(), key=lambda s: (s.casefold(), s))


@contextmanager
def platform_url(url: str | None, home: str | os.PathLike[str] | None = None) -> Iterator[str]:
    """The platform's base URL: ``url``, or the embedded sandbox started for the duration."""
    if url:
        yield url.rstrip("/")
        return
    from rosterbook.sandbox import embedded

    with embedded(home=Path(home) if home is not None else None) as sandbox:
        yield sandbox.url


def _client(url: str) -> Any:
    from sync_client.auth import get_token
    from sync_client.scim import ScimClient

    return ScimClient(url, token=get_token(url))


class _Misses(Mapping[str, str]):
    """A read-only view of a growing mapping that remembers whether a key was looked up and not found."""

    def __init__(self, data: Mapping[str, str]) -> None:
        self.data = data
        self.missed = False

    def __getitem__(self, key: str) -> str:
        try:
            return self.data[key]
        except KeyError:
            self.missed = True
            raise

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def _scim_export(url: str, progress: Progress | None) -> ExportData:
    from rosterbook.core.scim_map import dialect_from_schemas, memberships, resource_to_values

    client = _client(url)
    discovery = client.discover()
    base = load_dialect("scim")
    dialect = dialect_from_schemas(base, discovery.schemas, discovery.resource_types)
    headers = [c.name for c in dialect.columns]
    write_only = [c.name for c in dialect.columns if c.write_only]
    rows: list[list[str | None]] = []
    snapshots: list[tuple[str, str | None, str | None, dict[str, str | None]]] = []
    names_by_id: dict[str, str] = {}
    groups_of: dict[str, list[str]] = {}
    late: list[tuple[int, dict[str, Any]]] = []
    indexed: list[bool] = []  # groups_of is filled on the first page

    def map_user(user: dict[str, Any], names: Mapping[str, str]) -> tuple[list[str | None], tuple[str, str | None, str | None, dict[str, str | None]]]:
        values = resource_to_values(user, dialect, user_names_by_id=names, groups_of_user=groups_of)
        for name in write_only:
            values[name] = None
        meta = user.get("meta") or {}
        snap = (values.get(dialect.key) or str(user.get("userName") or ""), str(user.get("id")), meta.get("version"), wbk.snapshot_values(dialect, values))
        return _cell_texts(dialect, headers, values), snap

    def on_users(page: list[dict[str, Any]], groups: list[dict[str, Any]]) -> None:
        # Mapped while later pages are still on the way; a manager on a later page is looked up again at the end.
        if not indexed:
            groups_of.update(memberships(groups))
            indexed.append(True)
        for user in page:
            names_by_id[str(user.get("id"))] = str(user.get("userName"))
        for user in page:
            names = _Misses(names_by_id)
            row, snap = map_user(user, names)
            if names.missed:
                late.append((len(rows), user))
            rows.append(row)
            snapshots.append(snap)

    result = client.export_users(_stage(progress, None, "Exporting users"), on_users=on_users)
    for index, user in late:
        rows[index], snapshots[index] = map_user(user, names_by_id)
    lists: dict[str, list[str]] = {}
    for column in dialect.columns:
        if not column.choices_from_platform:
            continue
        if column.scim == "groups":
            lists[column.name] = sorted({str(g.get("displayName")) for g in result.groups if g.get("displayName")}, key=str.casefold)
        else:
            index = headers.index(column.name)
            lists[column.name] = _distinct(dialect, column.name, (r[index] for r in rows))
    announced = None if dialect == base else dialect
    return ExportData(dialect, headers, rows, snapshots, lists, source="scim", announced=announced)


# --- unsynced edits --------------------------------------------------------------------------


def _canon(dialect: Dialect, name: str, text: str | None) -> str | None:
    if text is None:
        return None
    column = wbk.find_column(dialect, name)
    if column is None:
        return text
    try:
        return canonical(text, column.type, separator=column.separator, escape=column.escape)
    except CodecError:
        return text


def pending_changes(loaded: Loaded) -> list[Change]:
    """The core diff of the sheet against its snapshot: every row's Change (``unchanged`` included).

    The one definition of "what changed" (canonical text, blank keep/clear, clear words, list items
    as sets and ``list_mode``, write-only columns, custom columns, rows matched by row id then key).
    """
    from rosterbook.core.diff import diff

    return diff(loaded.table, list(loaded.snapshot.values()), loaded.settings.to_plan_settings())


def edited_rows(loaded: Loaded, changes: Sequence[Change] | None = None) -> dict[int, dict[str, str | None]]:
    """Rows the core diff changes (new rows included): row -> {column: intended canonical value}.

    Built from ``pending_changes`` (pass ``changes`` when already computed). An edit that changes
    nothing on the platform is no edit: a blank or clear word where the value was already blank,
    a list re-ordered or (``list_mode`` add) with an item removed, a change the dialect's
    ``requires`` drops, a custom column the export did not record. A write-only cell (password)
    is an edit when filled; its value shows as ``SET_MARK``, never the secret. A key change that
    the platform refuses (immutable key) is an edit of the key column.
    """
    if changes is None:
        changes = pending_changes(loaded)
    key = loaded.dialect.key
    out: dict[int, dict[str, str | None]] = {}
    for change in changes:
        if change.row is None or change.action == "unchanged":
            continue  # users removed from the sheet have no row to edit
        changed = {name: field_change.after for name, field_change in change.fields.items()}
        if change.old_key is not None and key not in changed:
            changed[key] = change.key
        out[change.row] = changed
    return out


def _guard_unsynced(book: SheetBook, data: ExportData, force: bool) -> wbk.BookSettings | None:
    """Refuse to overwrite edits the platform does not have; return the book's settings to carry over."""
    if wbk.SETTINGS not in book.sheet_names():
        if force or not any(book.values(s) for s in book.sheet_names()):
            return None
        raise DataError("the file is not a rosterbook workbook (no Settings sheet): use --force to overwrite it, or choose another file.")
    try:
        loaded = load(book)
    except RosterbookError:
        if force:
            return None
        raise
    from rosterbook.core.plan import holds_values

    edits = edited_rows(loaded)
    if not edits or force:
        return loaded.settings
    # An edit the platform now has (synced, or uploaded and re-exported) is not lost by re-exporting.
    key_index = data.headers.index(data.dialect.key) if data.dialect.key in data.headers else None
    fresh: dict[str, dict[str, str | None]] = {}
    if key_index is not None:
        for cells, snap in zip(data.rows, data.snapshots, strict=True):
            fresh[(cells[key_index] or snap[0]).casefold()] = snap[3]
    lost: list[int] = []
    by_number = {r.number: r for r in loaded.table.rows}
    for number, changed in sorted(edits.items()):
        row = by_number[number]
        row_key = row.text(loaded.dialect.key) or (row.text(loaded.dialect.key_fallback) if loaded.dialect.key_fallback else None)
        now = fresh.get(row_key.casefold()) if row_key else None
        landed = now is not None and holds_values(loaded.dialect, now, changed)
        if not landed:
            lost.append(number)
    if not lost:
        return loaded.settings
    shown = ", ".join(str(n) for n in lost[:10]) + (" ..." if len(lost) > 10 else "")
    raise UnsyncedEditsError(
        f"the workbook has unsynced edits in {len(lost)} row{'s' if len(lost) != 1 else ''} ({shown}) that exporting would overwrite. "
        "Sync them first (rosterbook sync), revert them (rosterbook revert), or export with --force to discard them."
    )


def _guard_shrink(book: SheetBook, data: ExportData, settings: wbk.BookSettings | None, force: bool) -> None:
    """The deletion guard at export: a CSV export missing more of the workbook's exported users than the
    threshold is refused. A cut-short file would otherwise become the new baseline, and with
    'deactivate users not present in the file' the next upload file would deactivate everyone it lost."""
    if force or data.source != "csv" or wbk.SNAPSHOT not in book.sheet_names():
        return
    from rosterbook.core.plan import deletion_threshold

    try:
        before = wbk.read_snapshot(book)
    except RosterbookError:
        return  # an unreadable snapshot has no users to lose; the export replaces it
    now = {snap[0].casefold() for snap in data.snapshots}
    missing = sorted(s.key for s in before.values() if s.key.casefold() not in now)
    ratio = settings.deletion_threshold_ratio if settings is not None else wbk.BookSettings.deletion_threshold_ratio
    minimum = settings.deletion_threshold_min if settings is not None else wbk.BookSettings.deletion_threshold_min
    threshold = deletion_threshold(len(before), ratio, minimum)
    if len(missing) > threshold:
        shown = ", ".join(repr(k) for k in missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise DataError(
            f"the export holds {len(now)} users, but this workbook's last export had {len(before)}: {len(missing)} of them are missing "
            f"({shown}), more than the deletion guard's threshold of {threshold}. Nothing was written. A cut-short export file would make "
            "them look deleted (and a full upload file would deactivate them). Check the file; if they really left the platform, export again with --force."
        )


# --- preview ----------------------------------------------------------------------------------


def _plan(loaded: Loaded, problems: Sequence[Problem], *, current: Any = None, confirm_deletions: bool = False, skip_rows: Collection[int] = ()) -> Plan:
    from rosterbook.core.plan import make_plan

    return make_plan(
        loaded.table,
        list(loaded.snapshot.values()),
        loaded.settings.to_plan_settings(),
        problems=problems,
        current=current,
        confirm_deletions=confirm_deletions,
        skip_rows=tuple(skip_rows),
    )


def _plan_adopting(loaded: Loaded, problems: Sequence[Problem], *, current: Any, confirm_deletions: bool,
                   skip_rows: Collection[int]) -> tuple[Plan, Loaded]:
    """The plan, after adopting the edits the platform already holds.

    A row whose platform version moved since the snapshot, but whose platform values already equal
    what the sheet wants (a sync that died after sending, before saving), is no conflict: its
    snapshot entry takes the platform's version and the row is unchanged. Returns the plan and the
    workbook as read with those snapshot entries (a sync saves them with its own).
    """
    from dataclasses import replace as dc_replace

    from rosterbook.core.plan import apply_change, holds_values

    plan = _plan(loaded, problems, current=current, confirm_deletions=confirm_deletions, skip_rows=skip_rows)
    adopted: dict[str, SnapshotRow] = {}
    for change in plan.changes:
        if change.action != "conflict" or change.current is None or change.row_id is None or change.row_id not in loaded.snapshot:
            continue
        now = change.current
        if not change.fields or not holds_values(loaded.dialect, now, {name: f.after for name, f in change.fields.items()}):
            continue
        version = current[change.resource_id].version if change.resource_id in current else None
        adopted[change.row_id] = apply_change(loaded.snapshot[change.row_id], dc_replace(change, action="update"), version=version)
    if not adopted:
        return plan, loaded
    snapshot = {**loaded.snapshot, **adopted}
    again = dc_replace(loaded, snapshot=snapshot)
    return _plan(again, problems, current=current, confirm_deletions=confirm_deletions, skip_rows=skip_rows), again


def _current(loaded: Loaded, url: str, progress: Progress | None) -> Any:
    """The platform's current state of the users the sheet changes (conflict detection), by platform id."""
    from rosterbook.core.plan import Current
    from rosterbook.core.scim_map import resource_to_values

    ids = [c.resource_id for c in pending_changes(loaded) if c.row is not None and c.action != "unchanged" and c.resource_id]
    present = {r.row_id for r in loaded.table.rows if r.row_id}
    ids += [s.resource_id for rid, s in loaded.snapshot.items() if rid not in present and s.resource_id]
    ids = list(dict.fromkeys(ids))  # a row matched by key to a user whose row id left the sheet is both
    if not ids:
        return None
    if progress is not None:
        progress("Reading current versions", 0, len(ids))
    found = _client(url).current_versions(ids, total=len(loaded.snapshot))
    if progress is not None:
        progress("Reading current versions", len(ids), len(ids))
    names = {s.resource_id: s.key for s in loaded.snapshot.values() if s.resource_id}
    return {
        rid: Current(now.version, resource_to_values(now.resource, loaded.dialect, user_names_by_id=names, groups_of_user={}))
        for rid, now in found.items()
    }


def preview_workbook(
    target: Book,
    *,
    confirm_deletions: bool = False,
    skip_rows: Collection[int] = (),
    progress: Progress | None = None,
    home: str | os.PathLike[str] | None = None,
) -> Plan:
    """The plan: what a sync would do (``to_dict()`` is its JSON form); also written to the Preview sheet."""
    book = open_book(target)
    loaded = load(book)
    problems = _problems(loaded, progress)
    if loaded.dialect.kind == "scim":
        with platform_url(loaded.settings.platform_url, home) as url:
            current = _current(loaded, url, progress)
        plan, loaded = _plan_adopting(loaded, problems, current=current, confirm_deletions=confirm_deletions, skip_rows=skip_rows)
    else:
        plan = _plan(loaded, problems, confirm_deletions=confirm_deletions, skip_rows=skip_rows)
    wbk.write_problems(book, loaded.users, problems)
    wbk.write_preview(book, plan.to_dict())
    _save(book)
    return plan


# --- sync -----------------------------------------------------------------------------------------


def parse_rows(spec: str | None) -> list[int]:
    """``"7,9-12"`` -> ``[7, 9, 10, 11, 12]`` (sheet row numbers; the header is row 1)."""
    if spec is None or not spec.strip():
        return []
    out: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        first, dash, last = part.partition("-")
        if not first.strip().isdigit() or (dash and not last.strip().isdigit()):
            raise UsageError(f"{part!r} is not a row number or range (e.g. 7,9-12).")
        lo, hi = int(first), int(last or first)
        if lo > hi:
            raise UsageError(f"{part!r}: the range runs backwards.")
        if lo < 2:
            raise UsageError(f"{part!r}: row 1 is the header; data rows start at 2.")
        if hi - lo > 1_000_000:
            raise UsageError(f"{part!r}: the range is too large.")
        out.update(range(lo, hi + 1))
    return sorted(out)


def _now() -> str:
    return dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")


def sync_workbook(
    target: Book,
    *,
    confirm: Callable[[Plan], bool] | None = None,
    skip_rows: Collection[int] = (),
    confirm_deletions: bool = False,
    progress: Progress | None = None,
    home: str | os.PathLike[str] | None = None,
    batch: int = BATCH,
) -> dict[str, Any]:
    """Send what changed (SCIM) or write the upload file (CSV platforms), log each row's outcome.

    Refuses when rows have errors or conflicts that ``skip_rows`` does not skip, or when the
    deletion guard trips without ``confirm_deletions``. ``confirm(plan)`` is asked before
    anything is sent. The snapshot is updated only for rows the platform confirmed, and the
    workbook checkpointed between batches (see CHECKPOINT_SECONDS), so a failed sync can simply be run again.
    """
    book = open_book(target)
    loaded = load(book)
    problems = _problems(loaded, progress)
    skip = set(skip_rows)
    if loaded.dialect.kind == "scim":
        # What the sheet alone shows is refused before anything, even a read, goes to the platform.
        _refuse_errors(_plan(loaded, problems, confirm_deletions=confirm_deletions, skip_rows=skip), problems, skip)
        with platform_url(loaded.settings.platform_url, home) as url:
            current = _current(loaded, url, progress)
            exported = loaded.snapshot
            plan, loaded = _plan_adopting(loaded, problems, current=current, confirm_deletions=confirm_deletions, skip_rows=skip)
            adopted = [rid for rid, snap in loaded.snapshot.items() if exported.get(rid) is not snap]
            _refuse(plan, problems, skip)
            summary = plan.to_dict()
            wbk.write_preview(book, summary)
            if plan.sendable() and confirm is not None and not confirm(plan):
                raise SyncCancelled("sync cancelled: nothing was sent.")
            return _sync_scim(book, loaded, plan, summary, url, progress, batch, adopted)
    plan = _plan(loaded, problems, confirm_deletions=confirm_deletions, skip_rows=skip)
    _refuse(plan, problems, skip)
    summary = plan.to_dict()
    wbk.write_preview(book, summary)
    if plan.sendable() and confirm is not None and not confirm(plan):
        raise SyncCancelled("sync cancelled: nothing was written.")
    return _sync_csv(book, loaded, plan, summary)


def _refuse(plan: Plan, problems: Sequence[Problem], skip: set[int]) -> None:
    """Refuse a plan that would send rows with errors or overwrite conflicts (unless skipped), or trips the guard.

    Rows with errors that the sheet does not change are not sent, so they do not block.
    """
    _refuse_errors(plan, problems, skip)
    conflicts = sorted({c.row for c in plan.changes if c.action == "conflict" and c.row is not None and c.row not in skip})
    if conflicts:
        raise DataError(
            f"{len(conflicts)} row{'s were' if len(conflicts) != 1 else ' was'} changed on the platform since the export ({_rows_text(conflicts)}); "
            f"nothing was sent. See them with `rosterbook preview`, then export again, or skip them with --skip-rows {_rows_spec(conflicts)}."
        )
    if plan.guard.tripped and not plan.guard.confirmed:
        raise DataError(
            f"this sync would archive or deactivate {plan.guard.deactivations} users, more than the deletion guard's threshold of "
            f"{plan.guard.threshold}; nothing was sent. If that is intended, run again with --confirm-deletions."
        )
    if plan.refused:
        raise DataError(f"the plan was refused, nothing was sent: {plan.refusal}")


def _refuse_errors(plan: Plan, problems: Sequence[Problem], skip: set[int]) -> None:
    """The refusals the sheet alone decides (header errors, rows whose change is an error, unknown row ids)."""
    header = [p for p in problems if p.severity == "error" and p.row < 2]
    if header:
        raise DataError("the sheet's header has errors, nothing was sent: " + " ".join(p.render() for p in header[:3]))
    errors = [c for c in plan.changes if c.action == "error" and c.row is not None and c.row not in skip]
    if errors:
        rows = sorted({c.row for c in errors if c.row is not None})
        first = next((p for c in errors for p in c.problems if p.severity == "error"), None)
        example = f" First: {first.render()}" if first is not None else ""
        raise DataError(
            f"{len(rows)} row{'s have' if len(rows) != 1 else ' has'} errors ({_rows_text(rows)}); nothing was sent. "
            f"Fix them (rosterbook check lists them), or skip those rows with --skip-rows {_rows_spec(rows)}.{example}"
        )
    unknown = sorted({p.row for p in problems if p.code == "unknown-row-id" and p.row not in skip})
    if unknown:
        # A row whose identity is unknown cannot be matched to a user: never guess which one it is.
        raise DataError(
            f"{_rows_text(unknown).capitalize()}: the hidden row id is not in the export snapshot, so the row cannot be matched to a user; "
            f"nothing was sent. Revert {'them' if len(unknown) != 1 else 'it'} (rosterbook revert), or export again."
        )


def _rows_text(rows: Sequence[int]) -> str:
    return ("row " if len(rows) == 1 else "rows ") + ", ".join(str(r) for r in rows[:10]) + (" ..." if len(rows) > 10 else "")


def _rows_spec(rows: Sequence[int]) -> str:
    parts: list[str] = []
    start = prev = rows[0]
    for r in [*rows[1:], None]:
        if r is not None and r == prev + 1:
            prev = r
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if r is not None:
            start = prev = r
    return ",".join(parts)


_DONE = {"create": "created", "update": "updated", "archive": "archived", "rename": "renamed", "deactivate": "deactivated"}


def _status_text(action: str, outcome: str, message: str = "") -> str:
    """The Sync status cell: ``updated 2026-11-23 10:15:02``, ``update failed ...: why``."""
    stamp = _now()
    if outcome == "ok":
        return f"{_DONE.get(action, action)} {stamp}"
    if outcome == "written":
        return f"{action}: in the upload file {stamp}"
    return f"{action} failed {stamp}: {message}"[:250]


def _sync_scim(book: SheetBook, loaded: Loaded, plan: Plan, summary: dict[str, Any], url: str, progress: Progress | None, batch: int,
               adopted: Sequence[str] = ()) -> dict[str, Any]:
    from rosterbook.core.plan import apply_change
    from rosterbook.core.scim_map import changes_to_operations

    client = _client(url)
    changes = list(plan.sendable())
    # New rows get their row id now: the platform's answer is matched to the row by it.
    new_ids = iter(wbk.next_row_ids(loaded.snapshot, sum(1 for c in changes if c.row_id is None)))
    ids_for_new: dict[int, str] = {}
    prepared = []
    for change in changes:
        if change.row_id is None and change.row is not None:
            rid = next(new_ids)
            ids_for_new[change.row] = rid
            change = _with_row_id(change, rid)
        prepared.append(change)
    names = {s.key: s.resource_id for s in loaded.snapshot.values() if s.resource_id}
    groups_column = next((c.name for c in loaded.dialect.columns if c.scim == "groups"), None)
    groups = _group_ids(client) if groups_column is not None and any(groups_column in c.fields for c in prepared) else {}
    snapshot = dict(loaded.snapshot)
    outcomes: list[dict[str, Any]] = []
    statuses: dict[int, str] = {}
    confirmed_ids: dict[int, str] = {}
    # Rows an earlier, interrupted sync sent without recording them: logged now, not sent again.
    number_of = {r.row_id: r.number for r in loaded.table.rows if r.row_id}
    first_entries: list[wbk.LogEntry] = []
    for rid in adopted:
        snap = snapshot[rid]
        message = "already on the platform (sent by an earlier sync that stopped before recording it)"
        if rid in number_of:
            statuses[number_of[rid]] = _status_text("update", "ok")
        first_entries.append(wbk.LogEntry(_now(), number_of.get(rid), snap.key, "update", "ok", snap.resource_id, snap.version, None, message))
    total = len(prepared)
    done = 0
    saved_at, save_took, unsaved = time.monotonic(), 0.0, False
    for start in range(0, total, max(1, batch)):
        chunk = prepared[start : start + batch]
        operations, failures = changes_to_operations(chunk, loaded.dialect, user_ids_by_name=names, group_ids_by_name=groups)
        try:
            results = client.apply(operations, _stage(progress, book, "Syncing")) if operations else []
        except BaseException:
            if unsaved:
                _save(book)  # the batches already sent keep their log and snapshot
            raise
        by_row: dict[str, list[Any]] = {}
        for result in results:
            by_row.setdefault(result.row_id or result.key, []).append(result)
        failed_rows = {f.row_id or f.key: f for f in failures}
        entries: list[wbk.LogEntry] = first_entries
        first_entries = []
        for change in chunk:
            ident = change.row_id or change.key
            mine = by_row.get(ident, [])
            failure = failed_rows.get(ident)
            ok = failure is None and bool(mine) and all(r.status == "ok" for r in mine)
            # The user's own result (not a group membership's) carries the user's id and new version.
            first = next((r for r in mine if r.path.startswith("/Users")), mine[0] if mine else None)
            bad = next((r for r in mine if r.status != "ok"), None)
            message = failure.message if failure is not None else (bad.message if bad is not None else "")
            http = bad.http_status if bad is not None else (first.http_status if first is not None else None)
            if ok and first is not None and change.action == "deactivate":
                if change.row_id:
                    snapshot.pop(change.row_id, None)  # the user left the sheet and the platform
            elif ok and first is not None:
                before = snapshot.get(change.row_id) if change.row_id else None
                version = next((r.version for r in reversed(mine) if r.version and r.resource_id == first.resource_id), first.version)
                snap = apply_change(before, change, resource_id=first.resource_id, version=version, row_id=change.row_id)
                snapshot[snap.row_id] = snap
                if change.resource_id is None and first.resource_id:
                    names[change.key] = first.resource_id
                if change.row is not None and change.row in ids_for_new:
                    confirmed_ids[change.row] = ids_for_new[change.row]
            outcome = "ok" if ok else "failed"
            if change.row is not None:
                statuses[change.row] = _status_text(change.action, outcome, message)
            entries.append(wbk.LogEntry(_now(), change.row, change.key, change.action, outcome,
                                        first.resource_id if first else change.resource_id, first.version if first else None, http, message))
            outcomes.append({"row": change.row, "key": change.key, "action": change.action, "outcome": outcome,
                             "http_status": http, "message": message})
        done += len(chunk)
        due = done >= total or time.monotonic() - saved_at >= max(CHECKPOINT_SECONDS, 4 * save_took)
        began = time.monotonic()
        _record(book, loaded, snapshot, statuses, confirmed_ids, entries, save=due)
        unsaved = not due
        if due:
            saved_at = time.monotonic()
            save_took = saved_at - began
        if progress is not None:
            progress("Syncing", done, total)
    if not prepared:
        _record(book, loaded, snapshot, statuses, confirmed_ids, first_entries)
    failed = sum(1 for o in outcomes if o["outcome"] != "ok")
    return {
        "ok": failed == 0,
        "platform": "scim",
        "counts": summary.get("counts", {}),
        "sent": len(outcomes),
        "confirmed": len(outcomes) - failed,
        "failed": failed,
        "upload_file": None,
        "rows": outcomes,
    }


def _group_ids(client: Any) -> dict[str, str]:
    """Group display name -> id, read from the platform (only when a sync changes memberships)."""
    from sync_client.scim import _Counter

    groups = client._list_all("/Groups", _Counter(None), {"attributes": "displayName"})
    return {str(g["displayName"]): str(g["id"]) for g in groups if g.get("displayName") and g.get("id")}


def _with_row_id(change: Any, rid: str) -> Any:
    from dataclasses import replace

    return replace(change, row_id=rid)


def _record(book: SheetBook, loaded: Loaded, snapshot: Mapping[str, SnapshotRow], statuses: Mapping[int, str],
            new_ids: Mapping[int, str], entries: Sequence[wbk.LogEntry], *, save: bool = True) -> None:
    # Only the entries that differ from what the workbook holds are rewritten (a checkpoint may repeat some: harmless).
    changed = {rid: snap for rid, snap in snapshot.items() if loaded.stored.get(rid) is not snap}
    removed = [rid for rid in loaded.stored if rid not in snapshot]
    wbk.update_snapshot(book, changed, removed)
    wbk.set_row_ids(book, loaded.users, new_ids)
    wbk.write_sync_status(book, loaded.users, statuses)
    wbk.append_sync_log(book, entries)
    if save:
        _save(book)


def _sync_csv(book: SheetBook, loaded: Loaded, plan: Plan, summary: dict[str, Any]) -> dict[str, Any]:
    from rosterbook.core.upload import upload_rows
    from sync_client.csv_upload import write_upload

    headers, rows = upload_rows(plan, loaded.table, list(loaded.snapshot.values()), loaded.settings.to_plan_settings())
    where = _path_of(book)
    folder = where.parent if where is not None else Path.cwd()
    stem = where.stem if where is not None else "rosterbook"
    upload = folder / loaded.dialect.upload_file_name.format(stem=stem)
    write_upload(upload, headers, rows, loaded.dialect)
    changes = list(plan.sendable())
    statuses: dict[int, str] = {}
    entries: list[wbk.LogEntry] = []
    outcomes: list[dict[str, Any]] = []
    for change in changes:
        message = f"written to {upload.name}; upload it to {loaded.dialect.title}, then export again"
        if change.row is not None:
            statuses[change.row] = _status_text(change.action, "written")
        entries.append(wbk.LogEntry(_now(), change.row, change.key, change.action, "written", message=message))
        outcomes.append({"row": change.row, "key": change.key, "action": change.action, "outcome": "written", "http_status": None, "message": message})
    # The platform has not confirmed anything yet: the snapshot stays as exported until the next export.
    wbk.write_sync_status(book, loaded.users, statuses)
    wbk.append_sync_log(book, entries)
    _save(book)
    return {
        "ok": True,
        "platform": "csv",
        "counts": summary.get("counts", {}),
        "sent": len(outcomes),
        "confirmed": 0,
        "failed": 0,
        "upload_file": str(upload),
        "upload_rows": len(rows),
        "rows": outcomes,
    }


# --- revert ---------------------------------------------------------------------------------------


def revert_rows(target: Book, rows: Sequence[int] | None = None) -> dict[str, Any]:
    """Put rows back to their exported values (all edited rows when ``rows`` is None).

    A new row (typed in, never synced) is cleared; with no rows given, users whose row was
    deleted come back at the bottom.
    """
    book = open_book(target)
    loaded = load(book)
    users = loaded.users
    present_ids = {r.row_id for r in loaded.table.rows if r.row_id}
    edits = edited_rows(loaded)
    chosen = sorted(edits) if rows is None else sorted(set(rows))
    by_number = {r.number: r for r in loaded.table.rows}
    width = users.data_width
    headers = users.headers[:width]
    reverted: list[int] = []
    cleared: list[int] = []
    for number in chosen:
        row = by_number.get(number)
        if row is None:
            if number > users.last_row:
                raise UsageError(f"row {number} is below the last row of the {wbk.USERS} sheet ({users.last_row}).")
            continue
        snap = loaded.snapshot.get(row.row_id) if row.row_id else None
        if snap is None:
            book.write_values(wbk.USERS, number, 1, [[None] * width])
            cleared.append(number)
            continue
        book.write_values(wbk.USERS, number, 1, [[_exported_cell(loaded.dialect, h, snap) for h in headers]])
        reverted.append(number)
    restored: list[str] = []
    if rows is None:
        missing = [s for rid, s in loaded.snapshot.items() if rid not in present_ids]
        next_row = users.last_row + 1
        for snap in missing:
            cells = [_exported_cell(loaded.dialect, h, snap) for h in headers]
            book.write_values(wbk.USERS, next_row, 1, [cells])
            if users.row_id_col is not None:
                book.write_values(wbk.USERS, next_row, users.row_id_col, [[snap.row_id]])
            restored.append(snap.key)
            next_row += 1
        if missing:
            book.fit_table(wbk.USERS, next_row - 1, len(users.headers))
    touched = set(reverted) | set(cleared)
    if touched:
        wbk.write_sync_status(book, users, dict.fromkeys(touched))
    if (touched or restored) and users.problems_col is not None:
        again = load(book)
        wbk.write_problems(book, again.users, _problems(again, None))
    _save(book)
    return {"reverted": reverted, "cleared": cleared, "restored": restored}


def _exported_cell(dialect: Dialect, header: str, snap: SnapshotRow) -> str | None:
    column = wbk.find_column(dialect, header)
    name = column.name if column is not None else header
    if column is not None and column.write_only:
        return None
    return snap.values.get(name)


# --- problems helpers the CLI uses --------------------------------------------------------------


def blocking_rows(problems: Iterable[Problem]) -> list[int]:
    """Data rows with at least one error."""
    return sorted({p.row for p in problems if p.severity == "error" and p.row >= 2})


__all__ = [
    "Book",
    "Loaded",
    "Progress",
    "SyncCancelled",
    "check_workbook",
    "edited_rows",
    "export_workbook",
    "has_errors",
    "load",
    "open_book",
    "parse_rows",
    "preview_workbook",
    "revert_rows",
    "sync_workbook",
]


# --- demo -------------------------------------------------------------------------------------------


def run_demo(
    *,
    home: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    echo: Callable[[str], Any] = print,
) -> int:
    """The README's first command: the whole round trip against the embedded sandbox, told step by step.

    Export -> simulated edits (archive, activate, team, roles, email, a deleted row, a new user
    with a typo) -> check -> fix -> preview -> sync -> export again, checking the platform now
    holds every edit. Returns the exit code (0 when the round trip held).
    """
    from rosterbook.sandbox import default_home

    folder = Path(home) if home is not None else default_home()
    path = Path(out) if out is not None else folder / "demo" / "demo.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%H%M%S%f")[:9]

    echo(f"1. Export: the embedded sandbox (data in {folder}) -> {path}")
    result = export_workbook(path, force=True, home=folder)
    echo(f"   {result['rows']} users, {len(result['columns'])} columns, lists: " + ", ".join(f"{k} ({v})" for k, v in result["lists"].items()))

    echo("2. Edit the workbook as a user would:")
    book = open_book(path)
    loaded = load(book)
    intended = _demo_edits(book, loaded, stamp, echo)
    book.save()

    echo("3. Check:")
    report = check_workbook(path)
    shown = [p for p in report.problems if p.severity == "error"] + [p for p in report.problems if p.severity == "warning"][:3]
    for problem in shown:
        echo(f"   {problem.render()}")
    if len(report.problems) > len(shown):
        echo(f"   ... and {len(report.problems) - len(shown)} more warnings (the Problems column has them all)")
    echo(f"   {report.summary()}")
    fixes = [p for p in report.problems if p.severity == "error" and p.fix is not None]
    if fixes:
        book = open_book(path)
        for problem in fixes:
            book.write_values(wbk.USERS, problem.row, _column_index(problem.cell), [[problem.fix]])
        book.save()
        echo(f"   fix: {', '.join(f'{p.cell} -> {p.fix!r}' for p in fixes)}")
        report = check_workbook(path)
        echo(f"   check again: {report.summary()}")
    if not report.ok:
        echo("   the sheet still has errors: stopping here.")
        return 1

    echo("4. Preview:")
    plan = preview_workbook(path, home=folder)
    echo("   " + ", ".join(f"{n} {a}" for a, n in plan.counts.items() if n))
    if plan.invitations:
        echo(f"   invitation emails: {len(plan.invitations)} ({', '.join(plan.invitations)})")
    for change in plan.changes:
        if change.action == "unchanged":
            continue
        fields_ = "; ".join(f"{k}: {v.before!r} -> {v.after!r}" for k, v in sorted(change.fields.items()))
        echo(f"   row {change.row} {change.action} {change.key}: {fields_}")

    echo("5. Sync:")
    synced = sync_workbook(path, home=folder)
    echo(f"   sent {synced['sent']} rows: {synced['confirmed']} confirmed, {synced['failed']} failed (see the Sync log sheet)")
    if not synced["ok"]:
        return 1

    echo("6. Export again:")
    again = export_workbook(path, home=folder)
    fresh = load(open_book(path, read_only=True))
    by_key = {r.text(fresh.dialect.key): r for r in fresh.table.rows}
    missing = []
    for key, values in intended.items():
        row = by_key.get(key)
        if row is None or any(_canon(fresh.dialect, name, row.text(name)) != _canon(fresh.dialect, name, text) for name, text in values.items()):
            missing.append(key)
    echo(f"   {again['rows']} users; {len(intended) - len(missing)} of {len(intended)} edited users read back as edited.")
    if missing:
        echo(f"   not as edited: {', '.join(missing)}")
        return 1
    echo(f"Done. Open {path} to see the Users, Preview and Sync log sheets.")
    return 0


def _column_index(cell: str) -> int:
    letters = "".join(ch for ch in cell if ch.isalpha())
    index = 0
    for ch in letters:
        index = index * 26 + ord(ch.upper()) - 64
    return index


def _demo_edits(book: SheetBook, loaded: Loaded, stamp: str, echo: Callable[[str], Any]) -> dict[str, dict[str, str | None]]:
    """Edit the demo workbook; return key -> the values the platform should then hold."""
    table = loaded.table
    dialect = loaded.dialect
    pos = table.positions
    status = dialect.status_column or "Status"
    rows = list(table.rows)
    intended: dict[str, dict[str, str | None]] = {}

    def put(row_number: int, column: str, value: str | None) -> None:
        book.write_values(wbk.USERS, row_number, pos[column], [[value]])

    def key_of(row: Any) -> str:
        return row.text(dialect.key) or ""

    active = [r for r in rows if r.text(status) == "Active"]
    pending = [r for r in rows if r.text(status) == "Pending"]
    used: set[int] = set()

    def pick(candidates: Sequence[Any]) -> Any:
        for row in candidates:
            if row.number not in used:
                used.add(row.number)
                return row
        raise DataError("the demo organisation has too few users for the demo; start from a fresh sandbox home.")

    row = pick(active)
    put(row.number, status, "Archived")
    intended[key_of(row)] = {status: "Archived"}
    echo(f"   row {row.number} {key_of(row)}: {status} Active -> Archived")
    if pending:
        row = pick(pending)
        put(row.number, status, "Active")
        intended[key_of(row)] = {status: "Active"}
        echo(f"   row {row.number} {key_of(row)}: {status} Pending -> Active")
    teams = loaded.lists.get("Team") or []
    if "Team" in pos and len(teams) > 1:
        row = pick(active)
        now = row.text("Team")
        team = next(t for t in teams if t != now)
        put(row.number, "Team", team)
        intended[key_of(row)] = {"Team": team}
        echo(f"   row {row.number} {key_of(row)}: Team {now!r} -> {team!r}")
    if "Roles" in pos:
        row = pick(active)
        roles = "Manager; Reviewer" if row.text("Roles") != "Manager; Reviewer" else "Learner"
        put(row.number, "Roles", roles)
        intended[key_of(row)] = {"Roles": roles}
        echo(f"   row {row.number} {key_of(row)}: Roles {row.text('Roles')!r} -> {roles!r}")
    if "Email" in pos:
        row = pick(active)
        email = f"{key_of(row).split('@')[0]}.{stamp}@example.org"
        put(row.number, "Email", email)
        intended[key_of(row)] = {"Email": email}
        echo(f"   row {row.number} {key_of(row)}: Email -> {email!r}")
    row = pick(rows)
    width = loaded.users.data_width
    book.write_values(wbk.USERS, row.number, 1, [[None] * len(loaded.users.headers)])
    echo(f"   row {row.number} {key_of(row)}: deleted (the scim dialect leaves users missing from the sheet alone)")
    new_row = loaded.users.last_row + 1
    new_key = f"demo.user{stamp}"
    new_values = {dialect.key: new_key, "First name": "Dana", "Last name": "Démo", "Email": f"{new_key}@example.org",
                  status: "actve", "Team": teams[0] if teams else None}
    cells: list[Any] = [None] * width
    for name, value in new_values.items():
        if name in pos and value is not None:
            cells[pos[name] - 1] = value
    book.write_values(wbk.USERS, new_row, 1, [cells])
    book.fit_table(wbk.USERS, new_row, len(loaded.users.headers))
    expected: dict[str, str | None] = {k: v for k, v in new_values.items() if k in pos and v is not None}
    expected[status] = "Active"
    intended[new_key] = expected
    echo(f"   row {new_row} {new_key}: new user, {status} typed 'actve' (a typo)")
    return intended
