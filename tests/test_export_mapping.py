"""The export's per-user mapping (resource_to_values, snapshot_values) after its speed-ups: same texts as the plain rules."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from rosterbook.core.codecs import CodecError, canonical
from rosterbook.core.dialects import Dialect, dialect_names, load_dialect
from rosterbook.core.scim_map import ENTERPRISE_USER, resource_to_values
from rosterbook.core.table import snapshot_values

HR = "urn:rosterbook:params:scim:schemas:extension:hr:2.0:User"
TRICKY = ["a;b;", "Main|HQ", "Main\\|HQ | Lagos", "yes", "no", "not a bool", "  padded  ", "x, y", "TRUE"]


def _reference_snapshot(dialect: Dialect, values: dict[str, str | None]) -> dict[str, str | None]:
    """The rule snapshot_values implements, cell by cell: canonical text, or the text itself when unreadable."""
    out: dict[str, str | None] = {}
    for name, text in values.items():
        column = dialect.find_column(name)
        if text is None or column is None:
            out[name] = text
            continue
        try:
            out[name] = canonical(text, column.type, separator=column.separator, escape=column.escape)
        except CodecError:
            out[name] = text
    return out


@pytest.mark.parametrize("name", dialect_names())
def test_snapshot_values_equals_canonical_per_cell(name: str) -> None:
    dialect = load_dialect(name)
    changed = 0
    for i, tricky in enumerate(TRICKY):
        values: dict[str, str | None] = {c.name: TRICKY[(i + j) % len(TRICKY)] for j, c in enumerate(dialect.columns)}
        values["Not a column"] = tricky
        values[dialect.columns[0].name] = None
        got = snapshot_values(dialect, values)
        assert got == _reference_snapshot(dialect, values)
        assert list(got) == list(values)  # same columns, same order
        changed += sum(got[k] != values[k] for k in values)
    if any(c.type in ("list", "bool") for c in dialect.columns):
        assert changed > 0  # the respelling really ran


def test_resource_to_values_reads_any_case_mappings_and_active() -> None:
    dialect = load_dialect("scim")
    resource: dict[str, Any] = {
        "id": "u1",
        "UserName": "  ada  ",  # attribute names are case-insensitive; text is stripped
        "name": MappingProxyType({"givenName": "Ada", "familyName": ""}),  # any Mapping, blank is None
        "emails": ["junk", {"value": "home@example.org", "type": "home"}, {"value": "ada@example.org", "type": "Work"}],
        "active": False,
        "roles": [{"value": "Admin"}, {"value": "Learner"}, {"display": "no value"}],
        ENTERPRISE_USER: {"manager": {"value": "boss"}, "employeeNumber": 123},
        HR.upper(): {"locations": ["Main|HQ", "Lagos"]},
    }
    values = resource_to_values(resource, dialect, user_names_by_id={"boss": "grace"}, groups_of_user={"u1": ["b", "A", "b"]})
    by_scim = {c.scim: values[c.name] for c in dialect.columns}
    assert by_scim["userName"] == "ada"
    assert by_scim["name.givenName"] == "Ada"
    assert by_scim["name.familyName"] is None
    assert by_scim['emails[type eq "work"].value'] == "ada@example.org"
    assert by_scim[f"{HR}:accountStatus"] == "Archived"  # no status attribute: follows active
    assert by_scim["roles.value"] == "Admin; Learner"
    assert by_scim[f"{ENTERPRISE_USER}:manager.value"] == "grace"
    assert by_scim[f"{ENTERPRISE_USER}:employeeNumber"] == "123"
    assert by_scim[f"{HR}:locations"] == "Main\\|HQ|Lagos"
    assert by_scim["groups"] == "A; b"

    resource["active"] = True
    resource[ENTERPRISE_USER] = {"manager": {"value": "gone"}}
    values = resource_to_values(resource, dialect, user_names_by_id={}, groups_of_user={})
    by_scim = {c.scim: values[c.name] for c in dialect.columns}
    assert by_scim[f"{HR}:accountStatus"] == "Active"
    assert by_scim[f"{ENTERPRISE_USER}:manager.value"] is None  # a dangling manager shows blank
    assert by_scim["groups"] is None
