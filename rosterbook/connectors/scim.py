"""The SCIM 2.0 connector: a live platform reached through ``sync_client.ScimClient``'s public API.

Export maps every user (pages mapped as they arrive) to the dialect the platform's schemas
announce; ``current`` reads the users a plan touches; ``send`` turns each batch of changes into
SCIM operations (``core.scim_map``), applies them and maps the results back to one outcome per row.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rosterbook.connectors.base import ExportData, Exported, Progress, RowOutcome, SendData
from rosterbook.core.dialects import Dialect, load_dialect
from rosterbook.core.diff import FieldChange
from rosterbook.core.plan import Advice, Change, Current
from rosterbook.core.problems import Problem, column_letter
from rosterbook.core.scim_map import (
    Operation,
    changes_to_operations,
    confirmed_memberships,
    dialect_from_schemas,
    late_name,
    memberships,
    resolve_refs,
    resource_to_values,
    with_late_names,
)
from rosterbook.core.table import SnapshotRow, distinct_items, snapshot_values
from rosterbook.core.textsafety import cell_notes
from rosterbook.core.upload import EscapedCell

if TYPE_CHECKING:
    from sync_client.scim import OperationResult, ScimClient

HELD = "not sent: the user's own change failed"


class ScimConnector:
    """A SCIM platform at ``url``; with no URL, the embedded sandbox (started on first use, stopped by ``close``).

    The token is the one bound to ``url`` (``sync_client.auth.token_for``): ``named_platform`` is the
    URL the person running the command named (``--platform``), never a workbook's. The embedded
    sandbox needs no token and gets none.
    """

    name = "scim"
    cancelled = "sync cancelled: nothing was sent."
    export_needs_file = False
    confirms = True
    upload_file: Path | None = None
    upload_rows: int | None = None
    upload_guidance: tuple[Advice, ...] = ()
    escaped_cells: tuple[EscapedCell, ...] = ()

    def __init__(self, url: str | None, *, home: str | os.PathLike[str] | None = None, named_platform: str | None = None) -> None:
        self.platform_url = url.rstrip("/") if url else None
        self.contacts: str | None = self.platform_url
        self.home = home
        self.named_platform = named_platform
        self._stack = ExitStack()
        self._client: ScimClient | None = None

    def __enter__(self) -> ScimConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._stack.close()

    @property
    def client(self) -> ScimClient:
        """The SCIM client (the embedded sandbox is started here, only when a request is about to be made)."""
        if self._client is None:
            from sync_client.auth import token_for
            from sync_client.scim import ScimClient

            url = self.platform_url
            token = None
            if url is None:
                from rosterbook.sandbox import embedded

                url = self._stack.enter_context(embedded(home=Path(self.home) if self.home is not None else None)).url
            else:
                token = token_for(url, named_platform=self.named_platform)  # refused here, before any request, if bound elsewhere
            self._client = ScimClient(url, token=token)
        return self._client

    # --- export --------------------------------------------------------------------------------

    def export(self, progress: Progress | None) -> ExportData:
        """Every user, mapped to the columns the platform's schemas announce."""
        client = self.client
        discovery = client.discover()
        base = load_dialect("scim")
        dialect = dialect_from_schemas(base, discovery.schemas, discovery.resource_types)
        mapper = _UserMapper(dialect, client.invalid_text)
        counter = (lambda done, total: progress("Exporting users", done, total)) if progress is not None else None
        result = client.export_users(counter, on_users=mapper.page)
        rows, snapshots = mapper.finish()
        lists = _platform_lists(dialect, mapper.headers, rows, result.groups)
        announced = None if dialect == base else dialect
        cells = mapper.problems()
        warnings = list(client.warnings) + [p.render() for p in cells[:20]]
        if len(cells) > 20:
            warnings.append(f"... and {len(cells) - 20} more cells (see the Problems column).")
        return ExportData(dialect, mapper.headers, rows, snapshots, lists, source="scim", platform_url=self.platform_url, announced=announced,
                          warnings=warnings, cell_problems=cells)

    # --- current state -------------------------------------------------------------------------

    def connect(self) -> None:
        """The client made (its modules loaded, the token found or refused, the embedded sandbox started); no request."""
        self.client  # noqa: B018  # the property makes it

    def current(self, dialect: Dialect, changes: Sequence[Change], snapshot: Mapping[str, SnapshotRow], present: set[str],
                progress: Progress | None, keys: Sequence[str] = ()) -> Mapping[str, Current] | None:
        """The platform's state of every user the changes touch (and of the users named by ``keys``), by platform id
        (None when there is none to read)."""
        ids = [c.resource_id for c in changes if c.row is not None and c.action != "unchanged" and c.resource_id]
        ids += [s.resource_id for rid, s in snapshot.items() if rid not in present and s.resource_id]
        ids = list(dict.fromkeys(ids))  # a row matched by key to a user whose row id left the sheet is both
        if not ids and not keys:
            return None
        if progress is not None:
            progress("Reading current versions", 0, len(ids))
        from sync_client.scim import CurrentResource, body_version

        found = self.client.current_versions(ids, total=len(snapshot)) if ids else {}
        for key in keys:  # users an interrupted sync created: found by userName
            user = self.client.find_user(key)
            if user is not None and user.get("id"):
                found[str(user["id"])] = CurrentResource(body_version(user), user)
        if progress is not None:
            progress("Reading current versions", len(ids), len(ids))
        names = {s.resource_id: s.key for s in snapshot.values() if s.resource_id}
        groups_column = next((c.name for c in dialect.columns if c.scim == "groups"), None)
        groups_of: Mapping[str, Sequence[str]] = {}
        if groups_column is not None and any(groups_column in c.fields for c in changes):
            # Memberships live on the Group resources: read them, so a group change is compared like any field.
            groups_of = memberships(self.client.list_resources("/Groups"))
        values = {rid: resource_to_values(now.resource, dialect, user_names_by_id=names, groups_of_user=groups_of) for rid, now in found.items()}
        if groups_column is not None and not groups_of:
            for mapped in values.values():
                mapped.pop(groups_column, None)  # not read: never compared
        return {rid: Current(now.version, values[rid]) for rid, now in found.items()}

    # --- sending -------------------------------------------------------------------------------

    def writes(self, dialect: Dialect) -> list[Path]:
        """No file besides the workbook: the platform is written to."""
        return []

    def send(self, data: SendData, changes: Sequence[Change], progress: Progress | None, batch: int) -> Iterator[list[RowOutcome]]:
        """Apply the changes in batches of ``batch`` rows; yield each batch's outcomes.

        A row is one unit: its own user operation goes first, and its group memberships only once
        that went through (a rename refused with 409 changes nobody's groups).
        """
        client = self.client
        dialect = data.plan.dialect
        names = {s.key: s.resource_id for s in data.snapshot.values() if s.resource_id}
        groups_column = next((c.name for c in dialect.columns if c.scim == "groups"), None)
        groups = client.group_ids_by_name() if groups_column is not None and any(groups_column in c.fields for c in changes) else {}
        counter = (lambda done, total: progress("Syncing", done, total)) if progress is not None else None
        for start in range(0, len(changes), max(1, batch)):
            chunk = changes[start : start + batch]
            operations, failures = changes_to_operations(chunk, dialect, user_ids_by_name=names, group_ids_by_name=groups)
            users = [op for op in operations if op.resource_type != "Groups"]
            done: list[tuple[Operation, OperationResult | None]] = list(zip(users, client.apply(users, counter) if users else [], strict=True))
            members, held = _members_after(operations, done)
            done += zip(members, client.apply(members, counter) if members else [], strict=True)
            done += [(op, None) for op in held]
            outcomes = _outcomes(chunk, done, {f.row_id or f.key: f.message for f in failures}, dialect)
            for outcome in outcomes:
                if outcome.outcome != "failed" and outcome.change.resource_id is None and outcome.resource_id:
                    names[outcome.change.key] = outcome.resource_id  # a manager created in this batch
            yield outcomes

    def summary(self, result: Any, *, excel: bool = False) -> str:
        """What the sync did, in the command line's or Excel's words."""
        if excel:
            return f"Sync finished: {result['confirmed']} of {result['sent']} change(s) confirmed by the platform."
        return f"Synced {result['sent']} rows: {result['confirmed']} confirmed, {result['failed']} failed. Outcomes are in the Sync log sheet."


def _members_after(operations: Sequence[Operation], done: Sequence[tuple[Operation, OperationResult | None]]) -> tuple[list[Operation], list[Operation]]:
    """The membership operations to send now that the users' own operations are done, and those held back:
    a row whose user operation failed sends none (a row is one unit); new users are referred to by their new id."""
    failed = {op.row_id or op.key for op, result in done if result is None or not result.ok}
    created = {op.bulk_id: result.resource_id for op, result in done if op.bulk_id and result is not None and result.ok and result.resource_id}
    send: list[Operation] = []
    held: list[Operation] = []
    for op in operations:
        if op.resource_type != "Groups":
            continue
        if (op.row_id or op.key) in failed:
            held.append(op)
        else:
            send.append(replace(op, body=resolve_refs(op.body, created)) if op.references() else op)
    return send, held


def _outcomes(chunk: Sequence[Change], done: Sequence[tuple[Operation, OperationResult | None]], failures: Mapping[str, str],
              dialect: Dialect) -> list[RowOutcome]:
    """One outcome per change: ok when every operation of its row was; ``partial`` when the user's own operation
    was but a membership was not (``applied`` says what went through); else failed. A held-back operation is None."""
    by_row: dict[str, list[tuple[Operation, OperationResult | None]]] = {}
    for op, result in done:
        by_row.setdefault(op.row_id or op.key, []).append((op, result))
    out: list[RowOutcome] = []
    for change in chunk:
        mine = by_row.get(change.row_id or change.key, [])
        failure = failures.get(change.row_id or change.key)
        # The user's own result (not a group membership's) carries the user's id and new version.
        own = next((r for op, r in mine if op.resource_type != "Groups"), None)
        results = [r for _, r in mine if r is not None]
        first = own or (results[0] if results else None)
        bad = next((r for r in results if not r.ok), None)
        message = failure if failure is not None else (bad.message if bad is not None else HELD if len(results) < len(mine) else "")
        http = bad.http_status if bad is not None else (first.http_status if first is not None else None)
        if first is None or failure is not None:
            out.append(RowOutcome(change, "failed", change.resource_id, None, http, message))
            continue
        # A row that only changed memberships has no answer of its own: the groups' ids and versions are not the user's.
        user_id = first.resource_id if own is not None else change.resource_id
        version = next((r.version for r in reversed(results) if r.version and r.resource_id == user_id), first.version) \
            if own is not None else change.version
        if bad is None and len(results) == len(mine):
            out.append(RowOutcome(change, "ok", user_id, version, http, message, tuple(change.secrets)))
        elif (own is None or own.ok) and any(r.ok for r in results):
            out.append(_partial(change, mine, own, dialect, http))
        else:
            out.append(RowOutcome(change, "failed", first.resource_id, first.version, http, message))
    return out


def _partial(change: Change, mine: Sequence[tuple[Operation, OperationResult | None]], own: OperationResult | None, dialect: Dialect,
             http: int | None) -> RowOutcome:
    """A row whose user operation went through but not every membership: exactly what went through."""
    went = [op for op, r in mine if r is not None and r.ok and op.group is not None]
    missed = [(op, r) for op, r in mine if op.group is not None and (r is None or not r.ok)]
    added, removed = [op.group or "" for op in went if op.adds], [op.group or "" for op in went if not op.adds]
    column = next((c.name for c in dialect.columns if c.scim == "groups"), None)
    fields = {name: f for name, f in change.fields.items() if name != column}
    values = dict(change.values)
    if column is not None and column in change.fields:
        kept = confirmed_memberships(change, dialect, added, removed)
        fields[column] = FieldChange(change.fields[column].before, kept)
        values[column] = kept
    done = (["the user's own change"] if own is not None else []) + [f"added to {g!r}" for g in added] + [f"removed from {g!r}" for g in removed]
    not_done = "; ".join(f"{'not added to' if op.adds else 'not removed from'} {op.group!r}: {r.message if r is not None else HELD}"
                         for op, r in missed)
    message = f"{', '.join(done)} went through; {not_done}"
    resource_id = own.resource_id if own is not None else change.resource_id
    version = own.version if own is not None else None
    cleared = tuple(change.secrets) if own is not None else ()  # the user's own operation took the passwords
    return RowOutcome(change, "partial", resource_id, version, http, message, cleared, applied=replace(change, fields=fields, values=values))


class _UserMapper:
    """Maps pages of SCIM users to sheet rows and snapshot entries while later pages are still on the way."""

    def __init__(self, dialect: Dialect, invalid_text: set[str] | None = None) -> None:
        self.dialect = dialect
        self.invalid_text = invalid_text if invalid_text is not None else set()
        """Ids of users whose text the client found not valid Unicode (it shows U+FFFD)."""
        self.notes: dict[int, list[tuple[str, str, str]]] = {}
        """Row index -> (column, code, message) for cells whose text was made storable."""
        self.headers = [c.name for c in dialect.sheet_columns]
        self.write_only = [c.name for c in dialect.columns if c.write_only]
        self.rows: list[list[str | None]] = []
        self.snapshots: list[Exported] = []
        self.names_by_id: dict[str, str] = {}
        self.groups_of: dict[str, list[str]] = {}
        self.late: list[tuple[int, dict[str, str | None], tuple[str, str, str | None]]] = []
        """Users whose manager was not listed yet: (row index, values with a stand-in for the manager's name, (userName,
        id, version)), placed once every user is known. Not their JSON: 50,000 users' resources are hundreds of MB."""
        self.indexed = False

    def values(self, user: dict[str, Any], names: Mapping[str, str]) -> dict[str, str | None]:
        """One user's cell texts (write-only columns blank)."""
        values = resource_to_values(user, self.dialect, user_names_by_id=names, groups_of_user=self.groups_of)
        for name in self.write_only:
            values[name] = None
        return values

    def place(self, index: int, values: dict[str, str | None], user: tuple[str, str, str | None]) -> tuple[list[str | None], Exported]:
        """The row and the snapshot entry of one user's values (``user``: its userName, id and version)."""
        dialect = self.dialect
        user_name, rid, version = user
        # The snapshot keeps the platform's text exactly; the sheet shows what a cell holds (its cell form, never sent untouched).
        fitted = cell_notes(values, invalid_unicode=rid in self.invalid_text)
        if fitted:
            self.notes[index] = fitted
        snap = (values.get(dialect.key) or user_name, rid, version, snapshot_values(dialect, values))
        return [values.get(h) for h in self.headers], snap

    def page(self, page: list[dict[str, Any]], groups: list[dict[str, Any]]) -> None:
        # Mapped while later pages are still on the way; a manager on a later page is named at the end.
        if not self.indexed:
            self.groups_of.update(memberships(groups))
            self.indexed = True
        for user in page:
            self.names_by_id[str(user.get("id"))] = str(user.get("userName"))
        for user in page:
            names = _Later(self.names_by_id)
            values = self.values(user, names)
            facts = (str(user.get("userName") or ""), str(user.get("id")), (user.get("meta") or {}).get("version"))
            if names.missed:
                self.late.append((len(self.rows), values, facts))
                self.rows.append([])
                self.snapshots.append((facts[0], facts[1], facts[2], {}))  # placed by finish()
                continue
            row, snap = self.place(len(self.rows), values, facts)
            self.rows.append(row)
            self.snapshots.append(snap)

    def finish(self) -> tuple[list[list[str | None]], list[Exported]]:
        for index, values, facts in self.late:
            self.rows[index], self.snapshots[index] = self.place(index, with_late_names(values, self.dialect, self.names_by_id), facts)
        self.late = []
        return self.rows, self.snapshots

    def problems(self) -> list[Problem]:
        """A warning on each Users cell whose platform text had to change to fit a workbook (row 2 is the first user)."""
        return [Problem("warning", "Users", f"{column_letter(self.headers.index(name) + 1)}{index + 2}", index + 2, name, None, code, message)
                for index, fitted in sorted(self.notes.items()) for name, code, message in fitted if name in self.headers]


class _Later(Mapping[str, str]):
    """A read-only view of a growing mapping of names: a name not listed yet is a stand-in (``scim_map.late_name``) that
    ``with_late_names`` replaces once every user is known; ``missed`` says whether one was given."""

    def __init__(self, data: Mapping[str, str]) -> None:
        self.data = data
        self.missed = False

    def __getitem__(self, key: str) -> str:
        name = self.data.get(key)
        if name is None:
            self.missed = True
            return late_name(key)
        return name

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def _platform_lists(dialect: Dialect, headers: Sequence[str], rows: Sequence[Sequence[str | None]], groups: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Allowed values the platform has: group names from /Groups, else the distinct values exported."""
    lists: dict[str, list[str]] = {}
    for column in dialect.columns:
        if not column.choices_from_platform:
            continue
        if column.scim == "groups":
            lists[column.name] = sorted({str(g.get("displayName")) for g in groups if g.get("displayName")}, key=str.casefold)
        else:
            index = headers.index(column.name)
            lists[column.name] = distinct_items(column, (r[index] for r in rows))
    return lists
