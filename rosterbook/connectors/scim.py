"""The SCIM 2.0 connector: a live platform reached through ``sync_client.ScimClient``'s public API.

Export maps every user (pages mapped as they arrive) to the dialect the platform's schemas
announce; ``current`` reads the users a plan touches; ``send`` turns each batch of changes into
SCIM operations (``core.scim_map``), applies them and maps the results back to one outcome per row.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rosterbook.connectors.base import ExportData, Exported, Progress, RowOutcome, SendData
from rosterbook.core.dialects import Dialect, load_dialect
from rosterbook.core.plan import Advice, Change, Current
from rosterbook.core.problems import Problem, column_letter
from rosterbook.core.scim_map import changes_to_operations, dialect_from_schemas, memberships, resource_to_values
from rosterbook.core.table import SnapshotRow, distinct_items, snapshot_values
from rosterbook.core.textsafety import fit_for_cells
from rosterbook.core.upload import EscapedCell

if TYPE_CHECKING:
    from sync_client.scim import OperationResult, ScimClient


class ScimConnector:
    """A SCIM platform at ``url``; with no URL, the embedded sandbox (started on first use, stopped by ``close``).

    The token is the one bound to ``url`` (``sync_client.auth.token_for``): ``named_platform`` is the
    URL the person running the command named (``--platform``), never a workbook's. The embedded
    sandbox needs no token and gets none.
    """

    name = "scim"
    cancelled = "sync cancelled: nothing was sent."
    export_needs_file = False
    upload_file: Path | None = None
    upload_rows: int | None = None
    upload_guidance: tuple[Advice, ...] = ()
    escaped_cells: tuple[EscapedCell, ...] = ()

    def __init__(self, url: str | None, *, home: str | os.PathLike[str] | None = None, named_platform: str | None = None) -> None:
        self.platform_url = url.rstrip("/") if url else None
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

    def current(self, dialect: Dialect, changes: Sequence[Change], snapshot: Mapping[str, SnapshotRow], present: set[str],
                progress: Progress | None) -> Mapping[str, Current] | None:
        """The platform's state of every user the changes touch, by platform id (None when there is none to read)."""
        ids = [c.resource_id for c in changes if c.row is not None and c.action != "unchanged" and c.resource_id]
        ids += [s.resource_id for rid, s in snapshot.items() if rid not in present and s.resource_id]
        ids = list(dict.fromkeys(ids))  # a row matched by key to a user whose row id left the sheet is both
        if not ids:
            return None
        if progress is not None:
            progress("Reading current versions", 0, len(ids))
        found = self.client.current_versions(ids, total=len(snapshot))
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

    def send(self, data: SendData, changes: Sequence[Change], progress: Progress | None, batch: int) -> Iterator[list[RowOutcome]]:
        """Apply the changes in batches of ``batch`` rows; yield each batch's outcomes."""
        client = self.client
        dialect = data.plan.dialect
        names = {s.key: s.resource_id for s in data.snapshot.values() if s.resource_id}
        groups_column = next((c.name for c in dialect.columns if c.scim == "groups"), None)
        groups = client.group_ids_by_name() if groups_column is not None and any(groups_column in c.fields for c in changes) else {}
        counter = (lambda done, total: progress("Syncing", done, total)) if progress is not None else None
        for start in range(0, len(changes), max(1, batch)):
            chunk = changes[start : start + batch]
            operations, failures = changes_to_operations(chunk, dialect, user_ids_by_name=names, group_ids_by_name=groups)
            results = client.apply(operations, counter) if operations else []
            outcomes = _outcomes(chunk, results, {f.row_id or f.key: f.message for f in failures})
            for outcome in outcomes:
                if outcome.outcome == "ok" and outcome.change.resource_id is None and outcome.resource_id:
                    names[outcome.change.key] = outcome.resource_id  # a manager created in this batch
            yield outcomes

    def summary(self, result: Any, *, excel: bool = False) -> str:
        """What the sync did, in the command line's or Excel's words."""
        if excel:
            return f"Sync finished: {result['confirmed']} of {result['sent']} change(s) confirmed by the platform."
        return f"Synced {result['sent']} rows: {result['confirmed']} confirmed, {result['failed']} failed. Outcomes are in the Sync log sheet."


def _outcomes(chunk: Sequence[Change], results: Sequence[OperationResult], failures: Mapping[str, str]) -> list[RowOutcome]:
    """One outcome per change: ok when every operation of its row was; the user's own result gives id and version."""
    by_row: dict[str, list[OperationResult]] = {}
    for result in results:
        by_row.setdefault(result.row_id or result.key, []).append(result)
    out: list[RowOutcome] = []
    for change in chunk:
        ident = change.row_id or change.key
        mine = by_row.get(ident, [])
        failure = failures.get(ident)
        ok = failure is None and bool(mine) and all(r.status == "ok" for r in mine)
        # The user's own result (not a group membership's) carries the user's id and new version.
        first = next((r for r in mine if r.path.startswith("/Users")), mine[0] if mine else None)
        bad = next((r for r in mine if r.status != "ok"), None)
        message = failure if failure is not None else (bad.message if bad is not None else "")
        http = bad.http_status if bad is not None else (first.http_status if first is not None else None)
        if first is None:
            out.append(RowOutcome(change, "failed", change.resource_id, None, http, message))
            continue
        version = next((r.version for r in reversed(mine) if r.version and r.resource_id == first.resource_id), first.version)
        out.append(RowOutcome(change, "ok" if ok else "failed", first.resource_id, version if ok else first.version, http, message,
                              tuple(change.secrets) if ok else ()))
    return out


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
        self.late: list[tuple[int, dict[str, Any]]] = []
        self.indexed = False

    def map(self, user: dict[str, Any], names: Mapping[str, str], index: int) -> tuple[list[str | None], Exported]:
        dialect = self.dialect
        values = resource_to_values(user, dialect, user_names_by_id=names, groups_of_user=self.groups_of)
        for name in self.write_only:
            values[name] = None
        # Cells and snapshot get the same storable text, so nothing looks edited.
        values, fitted = fit_for_cells(values, invalid_unicode=str(user.get("id")) in self.invalid_text)
        if fitted:
            self.notes[index] = fitted
        meta = user.get("meta") or {}
        snap = (values.get(dialect.key) or str(user.get("userName") or ""), str(user.get("id")), meta.get("version"), snapshot_values(dialect, values))
        return [values.get(h) for h in self.headers], snap

    def page(self, page: list[dict[str, Any]], groups: list[dict[str, Any]]) -> None:
        # Mapped while later pages are still on the way; a manager on a later page is looked up again at the end.
        if not self.indexed:
            self.groups_of.update(memberships(groups))
            self.indexed = True
        for user in page:
            self.names_by_id[str(user.get("id"))] = str(user.get("userName"))
        for user in page:
            names = _Misses(self.names_by_id)
            row, snap = self.map(user, names, len(self.rows))
            if names.missed:
                self.late.append((len(self.rows), user))
            self.rows.append(row)
            self.snapshots.append(snap)

    def finish(self) -> tuple[list[list[str | None]], list[Exported]]:
        for index, user in self.late:
            self.rows[index], self.snapshots[index] = self.map(user, self.names_by_id, index)
        return self.rows, self.snapshots

    def problems(self) -> list[Problem]:
        """A warning on each Users cell whose platform text had to change to fit a workbook (row 2 is the first user)."""
        return [Problem("warning", "Users", f"{column_letter(self.headers.index(name) + 1)}{index + 2}", index + 2, name, None, code, message)
                for index, fitted in sorted(self.notes.items()) for name, code, message in fitted if name in self.headers]


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
