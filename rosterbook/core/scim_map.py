"""SCIM resources <-> row values, and plan changes -> SCIM operations (plain dicts, no HTTP).

Every business rule of the SCIM connector lives here, so the HTTP client in ``sync_client``
only moves bytes: which attribute a column maps to, how a list cell becomes a SCIM list,
how a status word becomes ``accountStatus`` and ``active``, that a blank never erases and
``(clear)`` removes, that group memberships are written on Group resources, how a manager's
userName becomes an id, and whether a resource already holds what an operation wanted
(so a re-run, a lost response or a stale ETag is resolved without a duplicate).

Column paths (``scim`` in a dialect) take the forms ``attr``, ``attr.sub``,
``attr[type eq "work"].sub`` and ``urn:...:attr[.sub]`` for extension attributes; the path
``groups`` means the user's Group memberships.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from rosterbook.core.codecs import CodecError, format_bool, join_list, parse_bool, split_list
from rosterbook.core.dialects import Column, Dialect

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_REF = "bulkId:"
GROUPS_PATH = "groups"
MANAGER_ATTR = "manager"

Method = Literal["POST", "PATCH"]


# --- the plan's change, as this module reads it ---------------------------------------------


class FieldChangeLike(Protocol):
    """One column's change (``core.plan.FieldChange``)."""

    @property
    def before(self) -> str | None: ...

    @property
    def after(self) -> str | None: ...


class ChangeLike(Protocol):
    """What this module reads of ``core.plan.Change``."""

    @property
    def action(self) -> str: ...

    @property
    def row(self) -> int | None: ...

    @property
    def row_id(self) -> str | None: ...

    @property
    def key(self) -> str: ...

    @property
    def resource_id(self) -> str | None: ...

    @property
    def version(self) -> str | None: ...

    @property
    def fields(self) -> Mapping[str, Any]: ...

    @property
    def values(self) -> Mapping[str, str | None]: ...


@dataclass(frozen=True, slots=True)
class Operation:
    """One SCIM request to make for one row: plain data the HTTP client sends as is."""

    method: Method
    path: str
    """Relative to the base URL: ``/Users``, ``/Users/{id}``, ``/Groups/{gid}``."""
    body: dict[str, Any]
    if_match: str | None = None
    """The version the row was exported at; the platform refuses the PATCH (412) if it moved."""
    bulk_id: str | None = None
    """Creates: the id other operations of the batch use to reference the new user (``bulkId:<id>``)."""
    row_id: str | None = None
    key: str = ""
    """The row's key (userName), for messages and for finding a user after a lost response."""
    row: int | None = None
    """Sheet row number the operation belongs to (None for a user not in the sheet)."""
    group: str | None = None
    """A membership operation: the group's display name, as the sheet writes it."""
    adds: bool = False
    """A membership operation that adds the member (else it removes them)."""

    @property
    def resource_type(self) -> str:
        """``Users`` or ``Groups``: the endpoint the operation acts on."""
        return self.path.strip("/").split("/")[0]

    @property
    def is_create(self) -> bool:
        return self.method == "POST"

    def references(self) -> set[str]:
        """The bulkIds this operation refers to (users created earlier in the same batch)."""
        found: set[str] = set()
        _walk_refs(self.body, found)
        return found


@dataclass(frozen=True, slots=True)
class MappingFailure:
    """A change that cannot be turned into SCIM operations (unknown group, unknown manager)."""

    row: int | None
    row_id: str | None
    key: str
    column: str
    message: str


class ScimMapError(ValueError):
    """A change cannot be expressed in SCIM; carries the column and a message for the row."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


# --- attribute paths --------------------------------------------------------------------------

_PATH = re.compile(
    r"""^(?:(?P<urn>urn:.+):)?(?P<attr>[A-Za-z$][\w$-]*)
        (?:\[(?P<fattr>\w+)\s+eq\s+"(?P<fval>[^"]*)"\])?
        (?:\.(?P<sub>[A-Za-z$][\w$]*))?$""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class ScimPath:
    """A column's attribute path, parsed."""

    urn: str | None
    attr: str
    filter: tuple[str, str] | None = None
    sub: str | None = None

    @property
    def schema(self) -> str:
        return self.urn or CORE_USER

    def attr_path(self) -> str:
        """The path of the whole attribute (``urn:...:manager``, ``emails``)."""
        return f"{self.urn}:{self.attr}" if self.urn else self.attr

    def text(self) -> str:
        base = self.attr_path()
        if self.filter:
            base += f"[{self.filter[0]} eq {json.dumps(self.filter[1])}]"
        return base + (f".{self.sub}" if self.sub else "")


@functools.lru_cache(maxsize=1024)
def parse_path(path: str) -> ScimPath:
    """Parse a dialect's ``scim`` path; a path outside the supported forms is a dialect bug."""
    # Cached: an export maps every column of every user (800,000 parses for 50,000 users), and ScimPath is frozen.
    match = _PATH.match(path.strip())
    if match is None:
        raise ValueError(f"unsupported SCIM attribute path {path!r}")
    fattr, fval = match.group("fattr"), match.group("fval")
    return ScimPath(match.group("urn"), match.group("attr"), (fattr, fval) if fattr else None, match.group("sub"))


def _ci_get(data: Mapping[str, Any] | None, name: str) -> Any:
    """SCIM attribute names are case-insensitive."""
    # ``type(...) is dict`` first: JSON gives dicts, and the Mapping ABC check is slow per cell.
    if type(data) is not dict and not isinstance(data, Mapping):
        return None
    if name in data:
        return data[name]
    folded = name.casefold()
    for key, value in data.items():
        if key.casefold() == folded:
            return value
    return None


def _pick(items: Sequence[Any], filter_: tuple[str, str] | None) -> Mapping[str, Any] | None:
    """The item of a multi-valued attribute a filtered column shows.

    The filtered item first (``type eq "work"``); failing that the primary one, then the first,
    so a platform that leaves ``type`` out still shows its users' email. Writes then target the
    item by the value shown (``emails[value eq "..."]``), so they hit the same item.
    """
    dicts = [item for item in items if type(item) is dict or isinstance(item, Mapping)]
    if not dicts:
        return None
    if filter_ is not None:
        name, wanted = filter_
        for item in dicts:
            value = _ci_get(item, name)
            if isinstance(value, str) and value.casefold() == wanted.casefold():
                return item
    for item in dicts:
        if _ci_get(item, "primary") is True:
            return item
    return dicts[0]


def read_path(resource: Mapping[str, Any], path: ScimPath, *, many: bool = False) -> Any:
    """The raw JSON value at a column's path (a list for multi-valued attributes read whole)."""
    return _read_in(_ci_get(resource, path.urn) if path.urn else resource, path)


def _read_in(holder: Any, path: ScimPath) -> Any:
    """``read_path`` once the schema's part of the resource (``holder``) is found."""
    value = _ci_get(holder, path.attr)
    if value is None:
        return None
    if path.filter is not None:
        if not isinstance(value, list):
            return None
        item = _pick(value, path.filter)
        return _ci_get(item, path.sub or "value") if item is not None else None
    if path.sub is None:
        return value
    if isinstance(value, list):
        # ``roles.value``: the sub-attribute of every item.
        return [_ci_get(item, path.sub) for item in value if _ci_get(item, path.sub) is not None]
    return _ci_get(value, path.sub)


# --- resource -> row values ---------------------------------------------------------------


def _text_of(raw: Any, column: Column) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, list):
        items = [_scalar_text(item) for item in raw]
        present = [item for item in items if item]
        if not present:
            return None
        if column.type == "list" and column.separator:
            try:
                return join_list(present, column.separator, column.escape)
            except CodecError:
                # An item holding an unescapable separator: show it as is; the checks flag it.
                return column.separator.join(present)
        return present[0]
    return _scalar_text(raw)


def _scalar_text(raw: Any) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        return format_bool(raw)
    if isinstance(raw, (dict, list)):
        return None  # a complex value no column can show
    text = str(raw).strip()
    return text or None


@dataclass(frozen=True, slots=True)
class _Step:
    """One column of a dialect, prepared once for mapping many resources."""

    name: str
    column: Column
    path: ScimPath | None
    """None: a column with no attribute (status or blank) or the Groups column."""
    groups: bool
    manager: bool
    status: bool


@dataclass(frozen=True, slots=True)
class _Plan:
    steps: tuple[_Step, ...]
    active_word: str | None
    archive_word: str | None


_PLANS: dict[int, tuple[Dialect, _Plan]] = {}


def _plan(dialect: Dialect) -> _Plan:
    """The dialect's columns, parsed once: an export maps every column of 50,000 users."""
    entry = _PLANS.get(id(dialect))
    if entry is None or entry[0] is not dialect:
        steps = []
        for column in dialect.columns:
            path = parse_path(column.scim) if column.scim is not None and column.scim != GROUPS_PATH else None
            steps.append(_Step(
                column.name,
                column,
                path,
                column.scim == GROUPS_PATH,
                path is not None and path.attr.casefold() == MANAGER_ATTR and path.sub == "value",
                column.name == dialect.status_column,
            ))
        active = next((w.word for w in dialect.status_words if w.login), None)
        if len(_PLANS) > 64:  # dialects are few; never let a long-lived process grow this without bound
            _PLANS.clear()
        entry = (dialect, _Plan(tuple(steps), active, dialect.archive_word))
        _PLANS[id(dialect)] = entry
    return entry[1]


def resource_to_values(
    resource: Mapping[str, Any],
    dialect: Dialect,
    *,
    user_names_by_id: Mapping[str, str],
    groups_of_user: Mapping[str, Sequence[str]],
) -> dict[str, str | None]:
    """Canonical cell text per dialect column for one SCIM User resource.

    Lists are joined with the column's separator and escape; the manager's id becomes the
    manager's userName; the Groups column comes from Group memberships (servers often leave
    ``User.groups`` empty); a status column whose attribute is absent follows ``active``.
    """
    plan = _plan(dialect)
    values: dict[str, str | None] = {}
    user_id = str(resource.get("id") or "")
    holders: dict[str, Any] = {}  # urn -> the resource's part for that schema, looked up once per resource
    for step in plan.steps:
        path = step.path
        if path is None:
            if step.groups:
                names = sorted(set(groups_of_user.get(user_id, ())), key=lambda n: (n.casefold(), n))
                values[step.name] = _text_of(names, step.column) if names else None
            elif step.status:
                values[step.name] = _active_word(_ci_get(resource, "active"), plan)
            else:
                values[step.name] = None
            continue
        urn = path.urn
        if urn:
            if urn not in holders:
                holders[urn] = _ci_get(resource, urn)
            raw = _read_in(holders[urn], path)
        else:
            raw = _read_in(resource, path)
        if step.manager and raw is not None:
            # An id no exported user has (a dangling reference) shows blank, which keeps it.
            raw = user_names_by_id.get(str(raw))
        # Plain strings are most cells: the same text _text_of gives, without its calls.
        text = (raw.strip() or None) if type(raw) is str else _text_of(raw, step.column)
        if text is None and step.status:
            text = _active_word(_ci_get(resource, "active"), plan)
        values[step.name] = text
    return values


_LATE = "\x00late user "


def late_name(user_id: str) -> str:
    """A stand-in for the userName of a user not listed yet, for a mapping of names to give ``resource_to_values``
    (an export maps each page of users as it arrives; a manager may be on a later one): ``with_late_names`` names them."""
    return f"{_LATE}{user_id}\x00"


def with_late_names(values: Mapping[str, str | None], dialect: Dialect, user_names_by_id: Mapping[str, str]) -> dict[str, str | None]:
    """``values`` from ``resource_to_values`` with each ``late_name`` stand-in replaced by what that function gives for
    the manager's id with every user known (blank when no user has it)."""
    out = dict(values)
    for step in _plan(dialect).steps:
        text = out.get(step.name)
        if step.manager and text is not None and text.startswith(_LATE) and text.endswith("\x00"):
            raw = user_names_by_id.get(text[len(_LATE) : -1])
            out[step.name] = (raw.strip() or None) if type(raw) is str else _text_of(raw, step.column)
    return out


def _active_word(active: Any, plan: _Plan) -> str | None:
    """The status word ``active`` means: the first login word, or the archive word (None if not a bool)."""
    if not isinstance(active, bool):
        return None
    return plan.active_word if active else plan.archive_word


def memberships(groups: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """User id -> display names of the groups listing them as a member."""
    result: dict[str, list[str]] = {}
    for group in groups:
        name = _ci_get(group, "displayName")
        if not isinstance(name, str):
            continue
        for member in _ci_get(group, "members") or ():
            value = _ci_get(member, "value")
            if isinstance(value, str):
                result.setdefault(value, []).append(name)
    return result


# --- discovery: columns from the platform's schemas ----------------------------------------------


def _schema_index(schemas: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Mapping[str, Any]]]:
    index: dict[str, dict[str, Mapping[str, Any]]] = {}
    for schema in schemas:
        sid = schema.get("id")
        if not isinstance(sid, str):
            continue
        index[sid.casefold()] = {str(a.get("name", "")).casefold(): a for a in schema.get("attributes") or () if isinstance(a, Mapping)}
    return index


def _user_schema_ids(resource_types: Sequence[Mapping[str, Any]] | None) -> set[str] | None:
    if resource_types is None:
        return None
    for rtype in resource_types:
        if rtype.get("name") == "User" or rtype.get("endpoint") == "/Users":
            ids = {str(rtype.get("schema", CORE_USER)).casefold()}
            ids.update(str(ext.get("schema", "")).casefold() for ext in rtype.get("schemaExtensions") or ())
            return ids
    return set()


COMMON_ATTRIBUTES = frozenset({"externalid"})
"""RFC 7643 §3.1: every resource has ``externalId`` (as ``id`` and ``meta``), and /Schemas does not list it."""


def _announced(path: ScimPath, index: Mapping[str, Mapping[str, Mapping[str, Any]]], user_schemas: set[str] | None) -> bool:
    schema = path.schema.casefold()
    if user_schemas is not None and schema not in user_schemas:
        return False
    if path.urn is None and path.attr.casefold() in COMMON_ATTRIBUTES and path.sub is None and path.filter is None:
        return True
    attrs = index.get(schema)
    if attrs is None:
        return False
    attr = attrs.get(path.attr.casefold())
    if attr is None:
        return False
    if path.sub is None:
        return True
    subs = attr.get("subAttributes")
    if not subs:
        return True
    return any(str(s.get("name", "")).casefold() == path.sub.casefold() for s in subs)


def _humanise(name: str) -> str:
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").split()
    text = " ".join(words).lower()
    return text[:1].upper() + text[1:]


def dialect_from_schemas(
    dialect: Dialect,
    schemas: Sequence[Mapping[str, Any]],
    resource_types: Sequence[Mapping[str, Any]] | None = None,
) -> Dialect:
    """The dialect's columns as a live SCIM platform announces them in ``/Schemas``.

    Columns whose attribute the platform does not announce are dropped (a status column falls
    back to ``active`` when the status attribute is missing); writable extension attributes no
    column maps yet become text or list columns (bool for booleans). With ``resource_types``,
    only the User resource type's schema and extensions count.
    """
    index = _schema_index(schemas)
    user_schemas = _user_schema_ids(resource_types)
    has_groups = CORE_GROUP.casefold() in index
    mapped: set[tuple[str, str]] = set()
    columns: list[dict[str, Any]] = []
    status_column = dialect.status_column
    status_fallback = False
    for column in dialect.columns:
        data = column.model_dump(exclude_defaults=True)
        if column.scim is None:
            columns.append(data)
            continue
        if column.scim == GROUPS_PATH:
            mapped.add((CORE_USER.casefold(), "groups"))
            if has_groups:
                columns.append(data)
            continue
        path = parse_path(column.scim)
        mapped.add((path.schema.casefold(), path.attr.casefold()))
        if _announced(path, index, user_schemas) or column.name == dialect.key:
            columns.append(data)
        elif column.name == dialect.status_column:
            if _announced(ScimPath(None, "active"), index, user_schemas):
                status_fallback = True
                data.pop("scim", None)
                columns.append(data)
            else:
                status_column = None
    existing = {c["name"] for c in columns}
    for sid, attrs in sorted(index.items()):
        if sid.startswith("urn:ietf:params:scim:schemas:core:") or sid.startswith("urn:ietf:params:scim:api:"):
            continue
        if user_schemas is not None and sid not in user_schemas:
            continue
        original_id = next((s["id"] for s in schemas if str(s.get("id", "")).casefold() == sid), sid)
        for name_cf, attr in attrs.items():
            if (sid, name_cf) in mapped or attr.get("type") == "complex":
                # Complex attributes (a manager, an address) need id look-ups or several cells:
                # they are offered only when a dialect maps their sub-attributes explicitly.
                continue
            if attr.get("mutability") in ("readOnly", "immutable"):
                continue
            attr_name = str(attr.get("name"))
            title = _humanise(attr_name)
            if title in existing or dialect.find_column(title) is not None or dialect.find_column(attr_name) is not None:
                title = f"{title} ({original_id.rsplit(':', 2)[-2] if original_id.count(':') >= 2 else original_id})"
            new: dict[str, Any] = {"name": title, "scim": f"{original_id}:{attr_name}", "blank": "keep", "clear_word": "(clear)"}
            if attr.get("multiValued"):
                new.update(type="list", separator="; ")
            elif attr.get("type") == "boolean":
                new["type"] = "bool"
            if attr.get("description"):
                new["help"] = str(attr["description"])
            columns.append(new)
            existing.add(title)
    data = dialect.model_dump(exclude_defaults=True)
    data["columns"] = columns
    if status_column is None and dialect.status_column is not None:
        for name in ("status_column", "status_words"):
            data.pop(name, None)
        data["billing"] = "none"
        if dialect.invitations == "status":
            data["invitations"] = "none"
        data["scim_active_from_status"] = False
    elif status_fallback:
        data["scim_active_from_status"] = True
    return Dialect.model_validate(data)


# --- change -> operations -------------------------------------------------------------------


def _is_clear(column: Column, text: str | None) -> bool:
    return text is None or (column.clear_word is not None and text.strip() == column.clear_word)


def _items(column: Column, text: str) -> list[str]:
    if column.type == "list" and column.separator:
        return split_list(text, column.separator, column.escape)
    return [text]


def _json_value(column: Column, text: str) -> Any:
    if column.type == "list" and column.separator:
        return split_list(text, column.separator, column.escape)
    if column.type == "bool":
        return parse_bool(text)
    return text


def _lookup(mapping: Mapping[str, str], name: str) -> str | None:
    found = mapping.get(name)
    if found is not None:
        return found
    folded = name.casefold()
    for key, value in mapping.items():
        if key.casefold() == folded:
            return value
    return None


def bulk_id_for(change: ChangeLike) -> str:
    """The bulkId of a create: stable per row, so a manager or group can reference it."""
    return f"row-{change.row_id or change.row}"


def _manager_id(column: Column, name: str, user_ids_by_name: Mapping[str, str]) -> str:
    found = _lookup(user_ids_by_name, name)
    if found is None:
        raise ScimMapError(column.name, f"{name!r} is not a user on the platform (nor created in this sync), so cannot be the manager.")
    return found


def _status_attrs(dialect: Dialect, word: str) -> dict[str, Any]:
    """Attribute path -> value for a status word (the status attribute and/or ``active``)."""
    out: dict[str, Any] = {}
    if dialect.status_column is None:
        return out
    column = dialect.column(dialect.status_column)
    if column.scim is not None:
        out[column.scim] = word
    status = dialect.status_word(word)
    if dialect.scim_active_from_status and status is not None:
        out["active"] = status.login
    return out


def _set_create(resource: dict[str, Any], path: ScimPath, column: Column, value: Any) -> None:
    holder = resource.setdefault(path.urn, {}) if path.urn else resource
    if path.filter is not None:
        item = {path.filter[0]: path.filter[1], path.sub or "value": value, "primary": True}
        holder[path.attr] = [item]
    elif path.sub is not None and column.type == "list":
        holder[path.attr] = [{path.sub: v} for v in value]
    elif path.sub is not None:
        holder.setdefault(path.attr, {})[path.sub] = value
    else:
        holder[path.attr] = value


def _create_operations(
    change: ChangeLike, dialect: Dialect, user_ids_by_name: Mapping[str, str], group_ids_by_name: Mapping[str, str]
) -> list[Operation]:
    resource: dict[str, Any] = {"schemas": [CORE_USER]}
    groups: list[str] = []
    status_word: str | None = None
    for column in dialect.columns:
        text = change.values.get(column.name)
        if column.name == dialect.status_column:
            status_word = None if _is_clear(column, text) else text
            continue
        if column.scim is None or _is_clear(column, text):
            continue
        assert text is not None
        if column.scim == GROUPS_PATH:
            groups = _items(column, text)
            continue
        path = parse_path(column.scim)
        value: Any = _json_value(column, text)
        if path.attr.casefold() == MANAGER_ATTR:
            value = _manager_id(column, text, user_ids_by_name)
        _set_create(resource, path, column, value)
    if status_word is not None:
        for attr, value in _status_attrs(dialect, status_word).items():
            sp = parse_path(attr)
            _set_create(resource, sp, dialect.column(dialect.status_column or ""), value)
    resource.setdefault("userName", change.key)
    for key in resource:
        if key.startswith("urn:") and key not in resource["schemas"]:
            resource["schemas"].append(key)
    bulk_id = bulk_id_for(change)
    ops = [Operation("POST", "/Users", resource, None, bulk_id, change.row_id, change.key, change.row)]
    ops += _group_operations(change, dialect, groups, [], BULK_REF + bulk_id, group_ids_by_name)
    return ops


def _group_operations(
    change: ChangeLike, dialect: Dialect, added: Sequence[str], removed: Sequence[str], member: str, group_ids_by_name: Mapping[str, str]
) -> list[Operation]:
    column = next((c for c in dialect.columns if c.scim == GROUPS_PATH), None)
    name = column.name if column is not None else "Groups"
    ops: list[Operation] = []
    for group in added:
        gid = _lookup(group_ids_by_name, group)
        if gid is None:
            raise ScimMapError(name, f"{group!r} is not a group on the platform; create it there first.")
        body = {"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": [{"value": member}]}]}
        ops.append(Operation("PATCH", f"/Groups/{gid}", body, None, None, change.row_id, change.key, change.row, group, True))
    for group in removed:
        gid = _lookup(group_ids_by_name, group)
        if gid is None:
            continue  # a group that no longer exists holds nobody
        body = {"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": f"members[value eq {json.dumps(member)}]"}]}
        ops.append(Operation("PATCH", f"/Groups/{gid}", body, None, None, change.row_id, change.key, change.row, group, False))
    return ops


def _patch_ops_for(column: Column, path: ScimPath, before: str | None, after: str | None, user_ids_by_name: Mapping[str, str]) -> list[dict[str, Any]]:
    clear = _is_clear(column, after)
    if path.filter is not None:
        # Target the item the sheet showed (by its value), not ``type eq "work"``: a platform
        # that leaves ``type`` out still gets the right item changed, and a missing one added.
        sub = path.sub or "value"
        if before is None:
            if clear:
                return []
            item = {path.filter[0]: path.filter[1], sub: after}
            return [{"op": "add", "path": path.attr_path(), "value": [item]}]
        selector = f"{path.attr_path()}[{sub} eq {json.dumps(before)}]"
        if clear:
            return [{"op": "remove", "path": selector}]
        return [{"op": "replace", "path": f"{selector}.{sub}", "value": after}]
    if clear:
        if path.sub is not None and path.attr.casefold() == MANAGER_ATTR:
            return [{"op": "remove", "path": path.attr_path()}]
        if path.sub is not None and column.type == "list":
            return [{"op": "remove", "path": path.attr_path()}]
        return [{"op": "remove", "path": path.text()}]
    assert after is not None
    if path.attr.casefold() == MANAGER_ATTR:
        return [{"op": "replace", "path": path.attr_path(), "value": {path.sub or "value": _manager_id(column, after, user_ids_by_name)}}]
    value = _json_value(column, after)
    if path.sub is not None and column.type == "list":
        return [{"op": "replace", "path": path.attr_path(), "value": [{path.sub: v} for v in value]}]
    return [{"op": "replace", "path": path.text(), "value": value}]


def _update_operations(
    change: ChangeLike, dialect: Dialect, user_ids_by_name: Mapping[str, str], group_ids_by_name: Mapping[str, str]
) -> list[Operation]:
    if change.resource_id is None:
        raise ScimMapError(dialect.key, f"{change.key!r} has no platform id in the snapshot; export again.")
    patch: list[dict[str, Any]] = []
    added: list[str] = []
    removed: list[str] = []
    status_after: str | None = None
    touched: set[str] = set()
    for name, field_change in change.fields.items():
        try:
            column = dialect.column(name)
        except KeyError:
            continue
        before, after = field_change.before, field_change.after
        touched.add(name)
        if name == dialect.status_column:
            if not _is_clear(column, after):
                status_after = after
            continue
        if column.scim is None:
            continue
        if column.scim == GROUPS_PATH:
            old = _items(column, before) if before else []
            new = [] if _is_clear(column, after) else _items(column, after or "")
            old_cf = {g.casefold() for g in old}
            new_cf = {g.casefold() for g in new}
            added += [g for g in new if g.casefold() not in old_cf]
            removed += [g for g in old if g.casefold() not in new_cf]
            continue
        patch += _patch_ops_for(column, parse_path(column.scim), before, after, user_ids_by_name)
    if change.action in ("archive", "deactivate"):
        if dialect.archive_word is not None:
            status_after = dialect.archive_word
        elif dialect.status_column is None:
            patch.append({"op": "replace", "path": "active", "value": False})
    if change.action == "rename" and dialect.key not in touched:
        patch.append({"op": "replace", "path": "userName", "value": change.key})
    if status_after is not None:
        for attr, value in _status_attrs(dialect, status_after).items():
            patch.append({"op": "replace", "path": attr, "value": value})
    ops: list[Operation] = []
    if patch:
        body = {"schemas": [PATCH_OP], "Operations": patch}
        ops.append(Operation("PATCH", f"/Users/{change.resource_id}", body, change.version, None, change.row_id, change.key, change.row))
    ops += _group_operations(change, dialect, added, removed, change.resource_id, group_ids_by_name)
    return ops


def change_to_operations(
    change: ChangeLike,
    dialect: Dialect,
    *,
    user_ids_by_name: Mapping[str, str],
    group_ids_by_name: Mapping[str, str],
) -> list[Operation]:
    """The SCIM operations one plan change needs (none for unchanged, conflict and error rows).

    A create is a POST of the whole resource plus Group PATCHes adding ``bulkId:<id>``;
    updates, archives and renames PATCH only the changed attributes with ``If-Match``; a
    blank never reaches here (it keeps the value) and ``(clear)`` becomes a ``remove``.

    :raises ScimMapError: a manager or group the platform does not have.
    """
    if change.action == "create":
        return _create_operations(change, dialect, user_ids_by_name, group_ids_by_name)
    if change.action in ("update", "archive", "rename", "deactivate"):
        return _update_operations(change, dialect, user_ids_by_name, group_ids_by_name)
    return []


def changes_to_operations(
    changes: Iterable[ChangeLike],
    dialect: Dialect,
    *,
    user_ids_by_name: Mapping[str, str],
    group_ids_by_name: Mapping[str, str],
) -> tuple[list[Operation], list[MappingFailure]]:
    """Operations for a whole plan, and the rows that cannot be expressed in SCIM.

    Users created or renamed in the same plan can be managers: a new user is referenced by
    ``bulkId`` and a renamed one by the id it keeps.
    """
    changes = list(changes)
    names: dict[str, str] = dict(user_ids_by_name)
    for change in changes:
        if change.action == "create":
            names[change.key] = BULK_REF + bulk_id_for(change)
        elif change.action == "rename" and change.resource_id is not None:
            names[change.key] = change.resource_id
    operations: list[Operation] = []
    failures: list[MappingFailure] = []
    for change in changes:
        try:
            operations += change_to_operations(change, dialect, user_ids_by_name=names, group_ids_by_name=group_ids_by_name)
        except ScimMapError as exc:
            failures.append(MappingFailure(change.row, change.row_id, change.key, exc.column, exc.message))
    return operations, failures


def confirmed_memberships(change: ChangeLike, dialect: Dialect, added: Iterable[str], removed: Iterable[str]) -> str | None:
    """The Groups cell after only some of a change's membership operations went through: the groups at
    export, plus those ``added``, minus those ``removed`` (for the snapshot of a partly applied row)."""
    column = next((c for c in dialect.columns if c.scim == GROUPS_PATH), None)
    if column is None or column.name not in change.fields:
        return None
    field_change = change.fields[column.name]
    before = _items(column, field_change.before) if field_change.before else []
    after = [] if _is_clear(column, field_change.after) else _items(column, field_change.after or "")
    gone = {g.casefold() for g in removed}
    came = {g.casefold() for g in added}
    kept = [g for g in after if g.casefold() in came or any(g.casefold() == b.casefold() for b in before)]
    kept += [g for g in before if g.casefold() not in gone and g.casefold() not in {k.casefold() for k in kept}]
    if not kept:
        return None
    if column.separator is None:
        return kept[0]
    try:
        return join_list(kept, column.separator, column.escape)
    except CodecError:
        return column.separator.join(kept)


# --- has an operation already happened? -------------------------------------------------------


def _walk_refs(value: Any, found: set[str]) -> None:
    if isinstance(value, str) and value.startswith(BULK_REF):
        found.add(value.removeprefix(BULK_REF))
    elif isinstance(value, list):
        for item in value:
            _walk_refs(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _walk_refs(item, found)


def resolve_refs(value: Any, ids: Mapping[str, str]) -> Any:
    """A copy of a body with ``bulkId:<id>`` references replaced by the created resources' ids."""
    if isinstance(value, str) and value.startswith(BULK_REF):
        return ids.get(value.removeprefix(BULK_REF), value)
    if isinstance(value, list):
        return [resolve_refs(item, ids) for item in value]
    if isinstance(value, dict):
        return {key: resolve_refs(item, ids) for key, item in value.items()}
    return value


def _same(expected: Any, actual: Any) -> bool:
    """Does ``actual`` hold ``expected``? Dicts: every expected key; lists: every expected item."""
    if isinstance(expected, dict):
        if not isinstance(actual, Mapping):
            return False
        return all(_same(value, _ci_get(actual, key)) for key, value in expected.items() if key != "primary")
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return not expected and actual is None
        return len(expected) == len(actual) and all(any(_same(item, other) for other in actual) for item in expected)
    return bool(expected == actual)


def _filtered_items(resource: Mapping[str, Any], path: str) -> tuple[Any, str | None, str | None, str | None]:
    """For ``attr[sub eq "x"].leaf``: (the attribute's list, sub, x, leaf)."""
    match = re.match(r'^(?P<attr>.+?)\[(?P<sub>\w+)\s+eq\s+(?P<val>"(?:[^"\\]|\\.)*")\](?:\.(?P<leaf>[\w$]+))?$', path)
    if match is None:
        return None, None, None, None
    attr = parse_path(match.group("attr"))
    holder = _ci_get(resource, attr.urn) if attr.urn else resource
    return _ci_get(holder, attr.attr), match.group("sub"), json.loads(match.group("val")), match.group("leaf")


def _patch_satisfied(resource: Mapping[str, Any], op: Mapping[str, Any]) -> bool:
    kind = str(op.get("op", "")).lower()
    path = op.get("path")
    value = op.get("value")
    if not isinstance(path, str):
        return isinstance(value, dict) and _same(value, resource)
    if "[" in path:
        items, sub, wanted, leaf = _filtered_items(resource, path)
        if sub is None:
            return False
        items = items if isinstance(items, list) else []
        matching = [i for i in items if isinstance(_ci_get(i, sub), str) and str(_ci_get(i, sub)).casefold() == str(wanted).casefold()]
        if kind == "remove":
            return not matching
        # A replaced value no longer matches the filter: look for an item holding the new value.
        return any(_same(value, _ci_get(i, leaf or sub)) for i in items)
    current = read_path(resource, parse_path(path))
    if kind == "remove":
        return current in (None, [], "")
    if kind == "add" and isinstance(value, list) and isinstance(current, list):
        return all(any(_same(item, other) for other in current) for item in value)
    return _same(value, current)


def already_applied(operation: Operation, resource: Mapping[str, Any]) -> bool:
    """True when ``resource`` (fetched now) already holds what ``operation`` asks for.

    Resolves the cases where the client cannot know whether its request took effect: a
    stale ``If-Match`` (412) after a retried PATCH, a 409 or a lost response for a create.
    A 412 for a change someone else made is *not* already applied, and stays a conflict.
    """
    if operation.method == "POST":
        body = {k: v for k, v in operation.body.items() if k != "schemas"}
        return _same(body, resource)
    return all(_patch_satisfied(resource, op) for op in operation.body.get("Operations") or ())
