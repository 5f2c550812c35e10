"""SQLite storage for scim2-server: resources as JSON documents, with indexes for uniqueness and equality filters.

Each resource is one row holding its JSON document (``model_dump(mode="json")``). Two side tables
hold what queries need without parsing documents: ``uniques`` (the values of attributes whose
uniqueness is server/global, one owner per value, so SQLite refuses a duplicate) and ``lookups``
(the comparable values of a few string attributes that clients filter on with ``eq``: userName,
externalId, displayName, emails.value, employeeNumber; ``id`` uses the primary key). ``eq`` on
another single-valued string attribute is pre-selected in SQL (json_extract + the SCIM comparison
as an SQL function). Candidates are then always checked with scim2-models' own filter evaluation,
and every other search evaluates the filter on all resources of the type; pages are cut exactly
as scim2-server's in-memory storage cuts them, so the semantics stay the reference ones.

Versions come from a counter stored in the database and bumped in the same transaction as the
write, so an ETag never repeats, across restarts and across processes sharing the file.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path as FsPath
from typing import Any, Union, cast

from scim2_models import (
    AttributeBinding,
    Extension,
    NotFoundException,
    Path,
    PreconditionFailedException,
    Resource,
    ResourceType,
    ResponseParameters,
    ScimFilter,
    ScimProvider,
    SearchRequest,
    Uniqueness,
    UniquenessException,
)
from scim2_models.path import CompareOperator, Comparison, LogicalExpr, LogicalOperator
from scim2_server.memory import _page  # the reference paging (sort, startIndex, cursors): reused, not re-derived
from scim2_server.storage import ScimStorage, SearchPage
from scim2_server.utils import parametrize

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

# Attributes whose `eq` filters are answered from the lookups table instead of a scan
# (resolved per resource type; those a type does not declare are skipped). `id eq` uses the primary key.
INDEXED_ATTRIBUTES = ("userName", "externalId", "displayName", "emails.value", f"{ENTERPRISE}:employeeNumber")

_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
    rid INTEGER PRIMARY KEY, rtype TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL,
    UNIQUE (rtype, id)
);
CREATE TABLE IF NOT EXISTS attributes (code INTEGER PRIMARY KEY, rtype TEXT NOT NULL, urn TEXT NOT NULL, UNIQUE (rtype, urn));
CREATE TABLE IF NOT EXISTS uniques (code INTEGER NOT NULL, key TEXT NOT NULL, rid INTEGER NOT NULL, PRIMARY KEY (code, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS uniques_owner ON uniques (rid);
CREATE TABLE IF NOT EXISTS lookups (code INTEGER NOT NULL, key TEXT NOT NULL, rid INTEGER NOT NULL);
INSERT OR IGNORE INTO settings (name, value) VALUES ('version', 0);
"""

_LOOKUP_INDEXES = (
    "CREATE INDEX IF NOT EXISTS lookups_value ON lookups (code, key)",
    "CREATE INDEX IF NOT EXISTS lookups_owner ON lookups (rid)",
)


def utcnow() -> datetime.datetime:
    """The current time in UTC (meta.created / meta.lastModified)."""
    return datetime.datetime.now(datetime.UTC)


def _version(number: int) -> str:
    return f'W/"{number}"'


def _document_text(doc: dict[str, Any]) -> str:
    """A document as stored: compact JSON, non-ASCII text as is."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def _key_text(value: Any) -> str:
    """A comparable value as the text the index tables hold."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _child(node: dict[str, Any], name: str) -> Any:
    """A key of a JSON object, matched case-insensitively as SCIM attribute names are."""
    if name in node:
        return node[name]
    folded = name.casefold()
    return next((value for key, value in node.items() if key.casefold() == folded), None)


@dataclass(frozen=True)
class _Attribute:
    """One indexed attribute: how to compare it and where its values sit in a JSON document."""

    binding: AttributeBinding
    container: str | None  # the extension URN the attribute lives under, None for the resource's own schema
    parts: tuple[str, ...]
    code: int = 0  # the attribute's number in the index tables (attributes.code)

    @property
    def urn(self) -> str:
        return self.binding.urn.casefold()

    def values(self, doc: dict[str, Any]) -> list[Any]:
        """The attribute's values in a document (one per entry of a multi-valued attribute)."""
        node = _child(doc, self.container) if self.container else doc
        found: list[Any] = [node]
        for part in self.parts:
            following: list[Any] = []
            for item in found:
                value = _child(item, part) if isinstance(item, dict) else None
                following.extend(value if isinstance(value, list) else [value])
            found = following
        return [value for value in found if value is not None]


@dataclass
class _TypeSpec:
    """What the storage indexes for one resource type."""

    model: type[Resource[Any]]
    unique: list[_Attribute] = field(default_factory=list)
    lookups: dict[str, _Attribute] = field(default_factory=dict)
    scanned: dict[str, tuple[int, str] | None] = field(default_factory=dict)  # urn -> (registry index, JSON path)


def _attribute(model: type[Resource[Any]], path: str) -> _Attribute | None:
    try:
        binding = parametrize(Path, model)(path).resolve()
    except Exception:  # an attribute the model does not declare (e.g. userName on Group)
        return None
    if binding is None:
        return None
    holder = binding.model
    is_extension = isinstance(holder, type) and issubclass(holder, Extension)
    schema = str(getattr(holder, "__schema__", "") or "")
    local = binding.urn[len(schema) + 1 :] if schema and binding.urn.lower().startswith(schema.lower() + ":") else binding.urn
    return _Attribute(binding, schema if is_extension else None, tuple(local.split(".")))


class SqliteStorage(ScimStorage):
    """A scim2-server storage keeping resources in SQLite (a file, or ``":memory:"``).

    One connection serves every thread of the server, behind a lock: SQLite serialises writes
    anyway, and the sandbox favours simple correctness over parallel reads.
    """

    supports_cursors = True

    def __init__(
        self,
        path: str | FsPath = ":memory:",
        provider: ScimProvider | None = None,
        *,
        clock: Callable[[], datetime.datetime] = utcnow,
    ) -> None:
        if provider is None:
            from rosterbook.sandbox.schema import build_provider

            provider = build_provider()
        self.provider = provider
        self.path = str(path)
        self.clock = clock
        self.lock = threading.RLock()
        self._batched = False  # inside batch(): writes use savepoints of its transaction
        self._specs: dict[str, _TypeSpec] = {}
        self._scan_registry: list[_Attribute] = []
        # isolation_level=None: transactions are opened explicitly (BEGIN IMMEDIATE) around each write.
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: seeding 50,000 users builds large indexes
        # SQL's own lower() folds ASCII only: comparisons in SQL go through the SCIM policy instead.
        self._conn.create_function("scim_key", 2, self._scan_key, deterministic=True)
        self._conn.executescript(_SCHEMA_SQL)
        for statement in _LOOKUP_INDEXES:
            self._conn.execute(statement)
        with self._transaction() as conn:
            # Versions restart above anything stored, even if the counter row was lost or the file copied.
            conn.execute(
                "UPDATE settings SET value = max(value, coalesce((SELECT max(version) FROM resources), 0)) WHERE name = 'version'"
            )

    # --- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database connection."""
        with self.lock:
            self._conn.close()

    def count(self, resource_type_name: str | None = None) -> int:
        """How many resources are stored (of one resource type, by name, or of all)."""
        with self.lock:
            if resource_type_name is None:
                row = self._conn.execute("SELECT count(*) FROM resources").fetchone()
            else:
                row = self._conn.execute("SELECT count(*) FROM resources WHERE rtype = ?", (resource_type_name,)).fetchone()
            return int(row[0])

    @property
    def last_version(self) -> int:
        """The highest version number handed out so far."""
        with self.lock:
            return int(self._conn.execute("SELECT value FROM settings WHERE name = 'version'").fetchone()[0])

    def generate_id(self, resource_type: ResourceType, resource: Resource[Any]) -> str:
        """The id of a new resource."""
        return uuid.uuid4().hex

    @contextmanager
    def operation(self) -> Generator[None]:
        """Hold the lock for a whole SCIM operation (e.g. PATCH's read-modify-write)."""
        with self.lock:
            yield

    @contextmanager
    def batch(self) -> Generator[None]:
        """Hold the lock and one transaction for several writes (a Bulk request): one commit instead of one per write.

        Each write inside still stands or falls alone (a savepoint), so a refused operation leaves
        the others of the batch applied, as separate transactions would. Nothing is visible to
        other connections before the batch ends.
        """
        with self.lock:
            if self._batched:
                yield
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._batched = True
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            finally:
                self._batched = False
            self._conn.execute("COMMIT")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            begin, commit = "BEGIN IMMEDIATE", "COMMIT"
            rollback: tuple[str, ...] = ("ROLLBACK",)
            if self._batched:
                begin, commit, rollback = "SAVEPOINT write", "RELEASE write", ("ROLLBACK TO write", "RELEASE write")
            self._conn.execute(begin)
            try:
                yield self._conn
            except BaseException:
                for statement in rollback:
                    self._conn.execute(statement)
                raise
            self._conn.execute(commit)

    # --- the storage interface ------------------------------------------------------------------

    def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        """Return a stored resource (whole; the server applies response parameters itself)."""
        with self.lock:
            row = self._conn.execute(
                "SELECT doc FROM resources WHERE rtype = ? AND id = ?", (resource_type.name, resource_id)
            ).fetchone()
        if row is None:
            raise NotFoundException(detail=f"{resource_type.name} {resource_id!r} not found")
        return self._spec(resource_type).model.model_validate_json(row[0])

    def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        """Return one page of matching resources and their number."""
        types = list({rt.name: rt for rt in resource_types}.values())
        scim_filter = search_request.filter
        plain = len(types) == 1 and search_request.sort_by is None and search_request.cursor is None
        with self.lock:
            if plain and scim_filter is None:
                return self._plain_page(types[0], search_request)
            ids = None
            if len(types) == 1 and scim_filter is not None:
                ids = self._candidate_ids(types[0], scim_filter, scim_filter.ast)
            if ids is None:
                candidates = [r for rt in types for r in self._load_all(rt)]
            else:
                candidates = self._load_ids(types[0], sorted(ids))
        if scim_filter is not None and not scim_filter.models and candidates:
            models = tuple(dict.fromkeys(type(r) for r in candidates))
            scim_filter = parametrize(ScimFilter, Union[models])(str(scim_filter))  # noqa: UP007
        found = [r for r in candidates if scim_filter is None or scim_filter.match(r)]
        return _page(search_request, position, found)

    def named_ids(self, resource_type: ResourceType, scim_filter: ScimFilter[Any]) -> list[str] | None:
        """The ids an ``id eq "a" or id eq "b" ...`` filter names (sorted, once each); None for any other filter."""
        if not self._ids_only(resource_type, scim_filter, scim_filter.ast):
            return None
        named: set[str] = set()
        stack = [scim_filter.ast]
        while stack:
            node = stack.pop()
            if isinstance(node, LogicalExpr):
                stack.extend(node.terms)
            elif isinstance(node, Comparison):
                named.add(str(node.value))
        return sorted(named)

    def documents_named(self, resource_type: ResourceType, ids: list[str], start: int, count: int | None) -> tuple[int, list[str]]:
        """The stored JSON of the resources among ``ids`` (in id order): how many there are, and one page of them (0-based
        ``start``), as scim2-server pages the matches of a filter."""
        with self.lock:
            found = [row[0] for rid in ids
                     if (row := self._conn.execute("SELECT doc FROM resources WHERE rtype = ? AND id = ?", (resource_type.name, rid)).fetchone())]
        return len(found), found[start:] if count is None else found[start : start + count]

    def _ids_only(self, resource_type: ResourceType, scim_filter: ScimFilter[Any], node: Any) -> bool:
        """Whether the filter is ``id eq "..."`` terms joined by ``or`` (what a client reading users it knows sends): the
        resources its ids name, read by primary key, are then exactly its matches (ids are case-exact), with no evaluation."""
        if isinstance(node, LogicalExpr):
            return node.op == LogicalOperator.or_ and all(self._ids_only(resource_type, scim_filter, term) for term in node.terms)
        if not isinstance(node, Comparison) or node.op != CompareOperator.eq or not isinstance(node.value, str):
            return False
        try:
            binding = scim_filter.resolve_comparison(node.attr_path, strict=False)
        except Exception:
            return False
        return binding is not None and binding.field_name == "id" and binding.sub_field_name is None and bool(binding.case_exact)

    def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        """Store a new resource with a fresh id and version."""
        spec = self._spec(resource_type)
        doc = resource.model_dump(mode="json")
        doc["id"] = self.generate_id(resource_type, resource)
        now = self.clock().isoformat().replace("+00:00", "Z")
        with self._transaction() as conn:
            version = self._next_versions(conn, 1)
            doc["meta"] = {"resourceType": resource_type.name, "created": now, "lastModified": now, "version": _version(version)}
            self._insert(conn, str(resource_type.name), spec, [(doc, version)])
        return spec.model.model_validate(doc)

    def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        """Replace a stored resource, checking the expected version and uniqueness."""
        spec = self._spec(resource_type)
        doc = resource.model_dump(mode="json")
        with self._transaction() as conn:
            rid, stored = self._stored_meta(conn, resource_type, resource.id)
            if expected_version is not None and stored.get("version") != expected_version:
                raise PreconditionFailedException
            version = self._next_versions(conn, 1)
            meta = {key: value for key, value in stored.items() if key != "location"}
            meta["lastModified"] = self.clock().isoformat().replace("+00:00", "Z")
            meta["version"] = _version(version)
            doc["meta"] = meta
            doc["id"] = resource.id
            self._delete_index_rows(conn, rid)
            self._insert(conn, str(resource_type.name), spec, [(doc, version)], rid=rid)
        return spec.model.model_validate(doc)

    def edit(self, resource_type: ResourceType, resource_id: str, change: Callable[[dict[str, Any], str], bool]) -> str:
        """Change a stored document in place, without a model; return the resource's version afterwards.

        ``change(document, version)`` edits the stored JSON document and returns whether it changed
        anything (it may raise, e.g. PreconditionFailedException). Reading, changing and writing
        happen in one transaction, so an exception leaves nothing stored. As in :meth:`update`, a
        change gets a new version and ``meta.lastModified``, and a taken unique value a 409.
        """
        spec = self._spec(resource_type)
        with self._transaction() as conn:
            row = conn.execute("SELECT rid, doc FROM resources WHERE rtype = ? AND id = ?", (resource_type.name, resource_id)).fetchone()
            if row is None:
                raise NotFoundException(detail=f"{resource_type.name} {resource_id!r} not found")
            rid, doc = int(row[0]), json.loads(row[1])
            meta = doc["meta"]
            indexed = self._index_rows(spec, doc, rid)
            if not change(doc, str(meta.get("version"))):
                return str(meta.get("version"))
            version = self._next_versions(conn, 1)
            meta.pop("location", None)
            meta["lastModified"] = self.clock().isoformat().replace("+00:00", "Z")
            meta["version"] = _version(version)
            if self._index_rows(spec, doc, rid) == indexed:  # a title or a department: the index rows stay as they are
                conn.execute("UPDATE resources SET version = ?, doc = ? WHERE rid = ?", (version, _document_text(doc), rid))
            else:
                self._delete_index_rows(conn, rid)
                self._insert(conn, str(resource_type.name), spec, [(doc, version)], rid=rid)
        return _version(version)

    def delete(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        expected_version: str | None = None,
    ) -> None:
        """Delete a stored resource, checking the expected version."""
        with self._transaction() as conn:
            rid, stored = self._stored_meta(conn, resource_type, resource_id)
            if expected_version is not None and stored.get("version") != expected_version:
                raise PreconditionFailedException
            self._delete_index_rows(conn, rid)
            conn.execute("DELETE FROM resources WHERE rid = ?", (rid,))

    # --- bulk loading (seeding) -----------------------------------------------------------------

    def load(
        self, batches: Iterable[tuple[ResourceType, Iterable[dict[str, Any]]]], *, only_if_empty: bool = False
    ) -> int:
        """Insert JSON documents that carry their own ids, in one transaction; give them meta and versions.

        ``batches`` pairs a resource type with its documents. With ``only_if_empty``, nothing is
        written when the database already holds resources (checked inside the transaction, so two
        processes seeding the same file at once seed it once). Returns how many documents were
        written. Documents are not validated here: the code producing them (the demo organisation)
        is tested to produce valid resources.
        """
        prepared = [(rt, self._spec(rt), list(docs)) for rt, docs in batches]
        total = sum(len(docs) for _, _, docs in prepared)
        now = self.clock().isoformat().replace("+00:00", "Z")
        with self._transaction() as conn:
            empty = conn.execute("SELECT 1 FROM resources LIMIT 1").fetchone() is None
            if only_if_empty and not empty:
                return 0
            if empty:  # building the lookup indexes once at the end is faster than row by row
                conn.execute("DROP INDEX IF EXISTS lookups_value")
                conn.execute("DROP INDEX IF EXISTS lookups_owner")
            version = self._next_versions(conn, total) - total
            for resource_type, spec, docs in prepared:
                rows = []
                for doc in docs:
                    version += 1
                    doc["meta"] = {"resourceType": resource_type.name, "created": now, "lastModified": now, "version": _version(version)}
                    rows.append((doc, version))
                self._insert(conn, str(resource_type.name), spec, rows)
            if empty:
                for statement in _LOOKUP_INDEXES:
                    conn.execute(statement)
        return total

    # --- internals ------------------------------------------------------------------------------

    def _spec(self, resource_type: ResourceType) -> _TypeSpec:
        name = str(resource_type.name)
        spec = self._specs.get(name)
        if spec is None:
            model = cast(type[Resource[Any]], self.provider.model_for(resource_type))
            if model is None:
                raise NotFoundException(detail=f"No resource type named {name!r}")
            spec = _TypeSpec(model)
            for path in parametrize(Path, model).iter_paths(
                include_subattributes=False, uniqueness=[Uniqueness.server, Uniqueness.global_]
            ):
                attribute = _attribute(model, str(path))
                if attribute is not None:
                    # Uniqueness spans resource types sharing the schema (RFC 7643 erratum 8279): coded by URN alone.
                    spec.unique.append(replace(attribute, code=self._code("", attribute.urn)))
            for name_or_path in INDEXED_ATTRIBUTES:
                attribute = _attribute(model, name_or_path)
                if attribute is not None and attribute.binding.target_type is str:
                    spec.lookups[attribute.urn] = replace(attribute, code=self._code(name, attribute.urn))
            self._specs[name] = spec
        return spec

    def _code(self, rtype: str, urn: str) -> int:
        """The number standing for an indexed attribute in the index tables (kept short: they hold a row per value)."""
        with self.lock:
            self._conn.execute("INSERT OR IGNORE INTO attributes (rtype, urn) VALUES (?, ?)", (rtype, urn))
            row = self._conn.execute("SELECT code FROM attributes WHERE rtype = ? AND urn = ?", (rtype, urn)).fetchone()
        return int(row[0])

    def _comparable(self, attribute: _Attribute, value: Any) -> str | None:
        try:
            return _key_text(attribute.binding.comparable(value, self.provider.policy))
        except ValueError:  # a string the policy cannot compare equals nothing (as in the memory storage)
            return None

    def _next_versions(self, conn: sqlite3.Connection, how_many: int) -> int:
        """Reserve ``how_many`` version numbers; return the last one."""
        row = conn.execute(
            "UPDATE settings SET value = value + ? WHERE name = 'version' RETURNING value", (how_many,)
        ).fetchone()
        return int(row[0])

    def _stored_meta(self, conn: sqlite3.Connection, resource_type: ResourceType, resource_id: str | None) -> tuple[int, dict[str, Any]]:
        """The row number and the meta of a stored resource."""
        row = conn.execute(
            "SELECT rid, json_extract(doc, '$.meta') FROM resources WHERE rtype = ? AND id = ?", (resource_type.name, resource_id)
        ).fetchone()
        if row is None:
            raise NotFoundException(detail=f"{resource_type.name} {resource_id!r} not found")
        return int(row[0]), cast(dict[str, Any], json.loads(row[1]))

    def _insert(
        self, conn: sqlite3.Connection, rtype: str, spec: _TypeSpec, rows: list[tuple[dict[str, Any], int]], rid: int | None = None
    ) -> None:
        """Write documents and their index rows; ``rid`` rewrites one existing resource in place."""
        resources: list[tuple[int, str, str, int, str]] = []
        uniques: list[tuple[int, str, int]] = []
        lookups: list[tuple[int, str, int]] = []
        # Row numbers are assigned here (the write lock is held) so index rows can point at them.
        next_rid = int(conn.execute("SELECT coalesce(max(rid), 0) FROM resources").fetchone()[0]) if rid is None else rid
        for doc, version in rows:
            if rid is None:
                next_rid += 1
            row_id = next_rid if rid is None else rid
            resources.append((row_id, rtype, str(doc["id"]), version, _document_text(doc)))
            doc_uniques, doc_lookups = self._index_rows(spec, doc, row_id)
            uniques.extend(doc_uniques)
            lookups.extend(doc_lookups)
        try:
            if rid is None:
                conn.executemany("INSERT INTO resources (rid, rtype, id, version, doc) VALUES (?, ?, ?, ?, ?)", resources)
            else:
                conn.execute("UPDATE resources SET version = ?, doc = ? WHERE rid = ?", (resources[0][3], resources[0][4], rid))
            conn.executemany("INSERT INTO uniques (code, key, rid) VALUES (?, ?, ?)", uniques)
        except sqlite3.IntegrityError as exc:
            if "uniques" in str(exc):
                raise UniquenessException(detail="A unique attribute's value is already taken") from None
            raise UniquenessException(detail="The id is already taken") from None
        conn.executemany("INSERT INTO lookups (code, key, rid) VALUES (?, ?, ?)", lookups)

    def _index_rows(self, spec: _TypeSpec, doc: dict[str, Any], row_id: int) -> tuple[list[tuple[int, str, int]], list[tuple[int, str, int]]]:
        """The uniques and lookups rows of a document."""
        uniques: list[tuple[int, str, int]] = []
        lookups: list[tuple[int, str, int]] = []
        for attribute in spec.unique:
            for value in attribute.values(doc):
                key = self._comparable(attribute, value)
                if key is not None:
                    uniques.append((attribute.code, key, row_id))
        for attribute in spec.lookups.values():
            keys = {self._comparable(attribute, value) for value in attribute.values(doc)}
            lookups.extend((attribute.code, key, row_id) for key in sorted(k for k in keys if k is not None))
        return uniques, lookups

    def _delete_index_rows(self, conn: sqlite3.Connection, rid: int) -> None:
        conn.execute("DELETE FROM uniques WHERE rid = ?", (rid,))
        conn.execute("DELETE FROM lookups WHERE rid = ?", (rid,))

    def _plain_page(self, resource_type: ResourceType, search_request: SearchRequest[Any]) -> SearchPage:
        """An unfiltered, unsorted page by index: ordered by id, as the memory storage orders it."""
        total, docs = self.documents(resource_type, search_request.start_index_0 or 0, search_request.count)
        model = self._spec(resource_type).model
        return SearchPage(total, [model.model_validate_json(doc) for doc in docs])

    def documents(self, resource_type: ResourceType, start: int, count: int | None) -> tuple[int, list[str]]:
        """The number of resources of a type and the stored JSON of one page of them (0-based ``start``), ordered by id."""
        with self.lock:
            name = resource_type.name
            total = int(self._conn.execute("SELECT count(*) FROM resources WHERE rtype = ?", (name,)).fetchone()[0])
            if count == 0:
                return total, []
            rows = self._conn.execute(
                "SELECT doc FROM resources WHERE rtype = ? ORDER BY id LIMIT ? OFFSET ?",
                (name, -1 if count is None else count, start),
            ).fetchall()
        return total, [row[0] for row in rows]

    def _load_all(self, resource_type: ResourceType) -> list[Resource[Any]]:
        model = self._spec(resource_type).model
        rows = self._conn.execute("SELECT doc FROM resources WHERE rtype = ?", (resource_type.name,)).fetchall()
        return [model.model_validate_json(row[0]) for row in rows]

    def _load_ids(self, resource_type: ResourceType, ids: list[str]) -> list[Resource[Any]]:
        model = self._spec(resource_type).model
        found = []
        for resource_id in ids:
            row = self._conn.execute(
                "SELECT doc FROM resources WHERE rtype = ? AND id = ?", (resource_type.name, resource_id)
            ).fetchone()
            if row is not None:
                found.append(model.model_validate_json(row[0]))
        return found

    def _scan_key(self, index: int, value: Any) -> str | None:
        """SQL function scim_key(attribute, value): a stored value in the form filters compare it in."""
        return None if value is None else self._comparable(self._scan_registry[index], value)

    def _scanned_ids(self, resource_type: ResourceType, spec: _TypeSpec, binding: AttributeBinding, value: str) -> set[str] | None:
        """Ids whose single-valued string attribute equals ``value``, read by SQLite's json_extract.

        Comparing in SQL avoids validating every document into a model just to test one attribute
        (about 30 times faster for a 50,000-user scan). None when the attribute is not a
        single-valued string (the caller then evaluates the filter on every resource).
        """
        urn = binding.urn.casefold()
        if urn not in spec.scanned:
            attribute = _attribute(spec.model, binding.urn)
            if attribute is None or binding.is_multivalued or binding.target_type is not str:
                spec.scanned[urn] = None
            else:
                self._scan_registry.append(attribute)
                steps = ([attribute.container] if attribute.container else []) + list(attribute.parts)
                path = "$" + "".join(f'."{step}"' for step in steps)
                spec.scanned[urn] = (len(self._scan_registry) - 1, path)
        scan = spec.scanned[urn]
        if scan is None:
            return None
        key = self._comparable(self._scan_registry[scan[0]], value)
        if key is None:
            return set()
        rows = self._conn.execute(
            "SELECT id FROM resources WHERE rtype = ? AND scim_key(?, json_extract(doc, ?)) = ?", (resource_type.name, scan[0], scan[1], key)
        ).fetchall()
        return {row[0] for row in rows}

    def _candidate_ids(self, resource_type: ResourceType, scim_filter: ScimFilter[Any], node: Any) -> set[str] | None:
        """The ids a filter can match, from the lookups table; None when the filter needs a scan.

        Always a superset of the matches: the filter is still evaluated on the candidates.
        """
        if isinstance(node, Comparison):
            if node.op != CompareOperator.eq or not isinstance(node.value, str):
                return None
            try:
                binding = scim_filter.resolve_comparison(node.attr_path, strict=False)
            except Exception:
                return None
            if binding is None:
                return None
            if binding.field_name == "id" and binding.sub_field_name is None and binding.case_exact:
                found = self._conn.execute(
                    "SELECT id FROM resources WHERE rtype = ? AND id = ?", (resource_type.name, node.value)
                ).fetchall()
                return {row[0] for row in found}
            spec = self._spec(resource_type)
            attribute = spec.lookups.get(binding.urn.casefold())
            if attribute is None:
                return self._scanned_ids(resource_type, spec, binding, node.value)
            key = self._comparable(attribute, node.value)
            if key is None:
                return set()
            rows = self._conn.execute(
                "SELECT r.id FROM lookups l JOIN resources r ON r.rid = l.rid WHERE l.code = ? AND l.key = ?", (attribute.code, key)
            ).fetchall()
            return {row[0] for row in rows}
        if isinstance(node, LogicalExpr):
            parts = [self._candidate_ids(resource_type, scim_filter, term) for term in node.terms]
            if node.op == LogicalOperator.and_:
                known = [part for part in parts if part is not None]
                return set.intersection(*known) if known else None
            if any(part is None for part in parts):
                return None
            return set().union(*cast(list[set[str]], parts))
        return None
