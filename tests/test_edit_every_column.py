"""One edit of every column of every dialect on an existing user, end to end, against hand-written expectations.

SCIM: a workbook exported from a sandbox gets one edit per column, each on a different user, and is
synced through a loopback proxy that keeps request bodies; each column's PATCH operations (as sent
on the wire) and the attribute the platform then stores (its raw JSON) are compared with what is
written here by hand. CSV platforms: a workbook exported from a sample export gets one edit per
column, each on a different user; the upload file (read with Python's csv module) must carry the
edited cell as written here. Editing a CSV platform's immutable key is refused, naming the cell.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from support.faultproxy import FaultProxy

from rosterbook import app
from rosterbook.errors import DataError
from rosterbook.sandbox import Sandbox, start_sandbox

SAMPLES = Path(__file__).resolve().parent / "samples"
HR = "urn:rosterbook:params:scim:schemas:extension:hr:2.0:User"
ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
Doc = dict[str, Any]


def _replace(path: str, value: Any) -> dict[str, Any]:
    return {"op": "replace", "path": path, "value": value}


@dataclass(frozen=True)
class ScimEdit:
    """One column's edit: the cell typed, the PATCH operations expected on the wire, and what the platform then stores."""

    column: str
    cell: str
    ops: list[dict[str, Any]]
    """``{old}`` stands for the cell's exported text, ``{given}`` / ``{family}`` for the user's names, ``{manager_id}`` / ``{user_id}`` for platform ids."""
    held: list[tuple[tuple[str, ...], Any]]
    """(path into the stored user, value) pairs."""


# Written by hand from the dialect (rosterbook/dialects/scim.toml) and RFC 7644 §3.5.2.
SCIM_EDITS = [
    ScimEdit("Username", "renamed.user@lumen.example", [_replace("userName", "renamed.user@lumen.example")],
             [(("userName",), "renamed.user@lumen.example")]),
    # The display name and formatted name were "First Last": they follow the edited name (the dialect's derived_from).
    ScimEdit("First name", "Ada", [_replace("name.givenName", "Ada"), _replace("displayName", "Ada {family}"), _replace("name.formatted", "Ada {family}")],
             [(("name", "givenName"), "Ada"), (("displayName",), "Ada {family}"), (("name", "formatted"), "Ada {family}")]),
    ScimEdit("Last name", "Lovelace", [_replace("name.familyName", "Lovelace"), _replace("displayName", "{given} Lovelace"),
                                       _replace("name.formatted", "{given} Lovelace")],
             [(("name", "familyName"), "Lovelace"), (("displayName",), "{given} Lovelace"), (("name", "formatted"), "{given} Lovelace")]),
    # The work email is found by its current value (a user may hold several emails).
    ScimEdit("Email", "ada.work@lumen.example", [_replace('emails[value eq "{old}"].value', "ada.work@lumen.example")],
             [(("emails",), [{"value": "ada.work@lumen.example", "type": "work", "primary": True}])]),
    # The sandbox's users are active only while Active: the status carries ``active`` with it.
    ScimEdit("Status", "Pending", [_replace(f"{HR}:accountStatus", "Pending"), _replace("active", False)],
             [((HR, "accountStatus"), "Pending"), (("active",), False)]),
    ScimEdit("Job title", "Principal Engineer", [_replace("title", "Principal Engineer")], [(("title",), "Principal Engineer")]),
    ScimEdit("Department", "Research", [_replace(f"{ENT}:department", "Research")], [((ENT, "department"), "Research")]),
    ScimEdit("Team", "Compilers", [_replace(f"{HR}:team", "Compilers")], [((HR, "team"), "Compilers")]),
    ScimEdit("Position", "Principal", [_replace(f"{HR}:position", "Principal")], [((HR, "position"), "Principal")]),
    # A '|' list; '\|' is a '|' inside one location's name.
    ScimEdit("Locations", "Lagos|Main\\|HQ", [_replace(f"{HR}:locations", ["Lagos", "Main|HQ"])], [((HR, "locations"), ["Lagos", "Main|HQ"])]),
    # The sheet names the manager by Username; the platform holds the manager's id.
    ScimEdit("Manager", "{manager}", [_replace(f"{ENT}:manager", {"value": "{manager_id}"})], [((ENT, "manager", "value"), "{manager_id}")]),
    # Joining a group is a change to the group (users' ``groups`` is read-only): checked on the group below.
    ScimEdit("Groups", "{old}; Product", [{"op": "add", "path": "members", "value": [{"value": "{user_id}"}]}], []),
    ScimEdit("Roles", "Admin; Learner", [_replace("roles", [{"value": "Admin"}, {"value": "Learner"}])],
             [(("roles",), [{"value": "Admin"}, {"value": "Learner"}])]),
    ScimEdit("Employee ID", "000777", [_replace(f"{ENT}:employeeNumber", "000777")], [((ENT, "employeeNumber"), "000777")]),
    # Like the email: the existing work phone is found by its current value.
    ScimEdit("Phone", "+44 20 7946 0018", [_replace('phoneNumbers[value eq "{old}"].value', "+44 20 7946 0018")],
             [(("phoneNumbers",), [{"value": "+44 20 7946 0018", "type": "work"}])]),
    ScimEdit("Start date", "2020-02-29", [_replace(f"{HR}:startDate", "2020-02-29")], [((HR, "startDate"), "2020-02-29")]),
    ScimEdit("External ID", "EXT-0042", [_replace("externalId", "EXT-0042")], [(("externalId",), "EXT-0042")]),
    # Attributes of the enterprise extension no dialect column names: columns the schema announces.
    ScimEdit("Cost center", "CC-12", [_replace(f"{ENT}:costCenter", "CC-12")], [((ENT, "costCenter"), "CC-12")]),
    ScimEdit("Organization", "Lumen Labs", [_replace(f"{ENT}:organization", "Lumen Labs")], [((ENT, "organization"), "Lumen Labs")]),
    ScimEdit("Division", "R&D", [_replace(f"{ENT}:division", "R&D")], [((ENT, "division"), "R&D")]),
]


@dataclass
class ScimSynced:
    """The sync of every SCIM edit: who was edited, what went on the wire, what the platform stores."""

    edited: dict[str, dict[str, Any]]
    """Column -> {"key", "old", "user_id", "manager", "manager_id"}."""
    ops: dict[str, list[dict[str, Any]]]
    """Request path (/Users/<id>, /Groups/<id>) -> the PATCH operations sent for it (in Bulk or single requests)."""
    users: dict[str, Doc]
    groups: dict[str, Doc]
    outcomes: dict[str, str]


def _stored(sandbox: Sandbox, type_name: str) -> list[Doc]:
    resource_type = next(rt for rt in sandbox.storage.provider.resource_types if rt.name == type_name)
    return [json.loads(text) for text in sandbox.storage.documents(resource_type, 0, None)[1]]


def _set_url(book: Path, url: str) -> None:
    wb = load_workbook(book)
    for row in wb["Settings"].iter_rows(min_row=2):
        if row[0].value == "platform_url":
            row[1].value = url
    wb.save(book)


def _operations(seen: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """The PATCH operations the client sent, by resource path, whether in Bulk requests or single ones."""
    ops: dict[str, list[dict[str, Any]]] = {}
    for request in seen:
        if request.method == "POST" and request.target.endswith("/Bulk"):
            for entry in json.loads(request.body)["Operations"]:
                if entry["method"] == "PATCH":
                    ops.setdefault(entry["path"], []).extend(entry["data"]["Operations"])
        elif request.method == "PATCH":
            ops.setdefault("/" + request.target.split("/v2/", 1)[1], []).extend(json.loads(request.body)["Operations"])
    return ops


@pytest.fixture(scope="module")
def scim_synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScimSynced]:
    """Export 30 users, edit every column once (each on another user), sync through a body-keeping proxy."""
    with start_sandbox(users=30, seed=4) as sandbox:
        book = tmp_path_factory.mktemp("scim") / "users.xlsx"
        app.export_workbook(book, platform=sandbox.url)
        ids = {u["userName"]: u["id"] for u in _stored(sandbox, "User")}
        wb = load_workbook(book)
        ws = wb["Users"]
        col = {str(c.value): c.column for c in ws[1] if c.value}
        assert [e.column for e in SCIM_EDITS if e.column not in col] == [], "a column of the dialect is missing from the workbook"
        names = [str(ws.cell(r, col["Username"]).value) for r in range(2, ws.max_row + 1)]
        used: set[int] = set()
        edited: dict[str, dict[str, Any]] = {}
        for edit in SCIM_EDITS:
            for row in range(2, ws.max_row + 1):
                old = ws.cell(row, col[edit.column]).value
                fill_in = edit.column in ("Cost center", "Organization", "Division")  # nobody has one yet
                if row in used or (old is None) != fill_in or (edit.column == "Groups" and "Product" in str(old)):
                    continue
                key = str(ws.cell(row, col["Username"]).value)
                manager = next(n for n in reversed(names) if n not in (key, old)) if edit.column == "Manager" else None
                cell = edit.cell.replace("{old}", str(old)).replace("{manager}", manager or "")
                ws.cell(row, col[edit.column]).value = cell
                edited[edit.column] = {"key": key, "old": old, "user_id": ids[key], "manager": manager, "manager_id": ids.get(manager or ""),
                                       "given": ws.cell(row, col["First name"]).value, "family": ws.cell(row, col["Last name"]).value}
                used.add(row)
                break
        wb.save(book)
        with FaultProxy(sandbox.url, keep_bodies=True) as proxy:
            _set_url(book, proxy.url)
            result = app.sync_workbook(book)
            ops = _operations(proxy.seen)
        outcomes = {str(r["key"]): str(r["outcome"]) for r in result["rows"]}
        users = {u["id"]: u for u in _stored(sandbox, "User")}
        groups = {g["displayName"]: g for g in _stored(sandbox, "Group")}
        yield ScimSynced(edited, ops, users, groups, outcomes)


def _fill(value: Any, facts: dict[str, Any]) -> Any:
    """The hand-written expectation with the edited user's facts put in."""
    if isinstance(value, str):
        for name in ("old", "given", "family", "user_id", "manager_id"):
            value = value.replace("{" + name + "}", str(facts[name]))
        return value
    if isinstance(value, list):
        return [_fill(v, facts) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, facts) for k, v in value.items()}
    return value


def _at(doc: Doc, path: tuple[str, ...]) -> Any:
    for step in path:
        doc = doc.get(step) if isinstance(doc, dict) else None  # type: ignore[assignment]
    return doc


@pytest.mark.parametrize("edit", SCIM_EDITS, ids=[e.column for e in SCIM_EDITS])
def test_one_scim_edit_sends_the_patch_written_here_and_the_platform_holds_it(scim_synced: ScimSynced, edit: ScimEdit) -> None:
    facts = scim_synced.edited.get(edit.column)
    assert facts is not None, f"no user to edit {edit.column!r} on"
    user_id = facts["user_id"]
    key = edit.cell if edit.column == "Username" else facts["key"]
    assert scim_synced.outcomes.get(key) == "ok", scim_synced.outcomes.get(key)
    if edit.column == "Groups":
        product = scim_synced.groups["Product"]
        assert scim_synced.ops.get(f"/Groups/{product['id']}") == _fill(edit.ops, facts)
        assert f"/Users/{user_id}" not in scim_synced.ops  # nothing else of the user changed
        assert user_id in [m["value"] for m in product.get("members") or ()]
        return
    assert scim_synced.ops.get(f"/Users/{user_id}") == _fill(edit.ops, facts)
    stored = scim_synced.users[user_id]
    for path, value in edit.held:
        assert _at(stored, path) == _fill(value, facts), (path, _at(stored, path))


def test_every_scim_column_is_edited_once_and_nothing_else_is_sent(scim_synced: ScimSynced) -> None:
    paths = {f"/Users/{f['user_id']}" for c, f in scim_synced.edited.items() if c != "Groups"}
    product = scim_synced.groups["Product"]["id"]
    assert set(scim_synced.ops) == paths | {f"/Groups/{product}"}
    assert len(scim_synced.edited) == len(SCIM_EDITS)


# --- CSV platforms ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvEdit:
    dialect: str
    column: str
    cell: str
    upload: str
    """The upload file's cell for that user, written by hand."""


CSV_SAMPLES = {"progression": "progression_export.csv", "edapp": "edapp_export.csv", "incenteev": "incenteev_users.csv", "jostle": "jostle_extract.csv"}
CSV_KEYS = {"progression": "email", "edapp": "Username", "incenteev": "Email", "jostle": "Username"}
CSV_EDITS = [
    CsvEdit("progression", "First Name", "Amy", "Amy"),
    CsvEdit("progression", "Last Name", "Okafor-Bell", "Okafor-Bell"),
    CsvEdit("progression", "position", "CTO", "CTO"),
    CsvEdit("progression", "team", "Platform", "Platform"),
    CsvEdit("progression", "manager", "tomasz.nowak@example.com", "tomasz.nowak@example.com"),
    CsvEdit("progression", "account_active", "Pending", "Pending"),
    CsvEdit("edapp", "Email", "olivia.h@example.org", "olivia.h@example.org"),
    CsvEdit("edapp", "First Name", "Liv", "Liv"),
    CsvEdit("edapp", "Last Name", "Hart-Ng", "Hart-Ng"),
    CsvEdit("edapp", "User groups", "sales", "sales"),  # list mode replace (the default): the file says the whole list
    # Learner and Prizing User are kept by EdApp whatever the file says (see the dialect's notes): the file says so too.
    CsvEdit("edapp", "Roles", "Admin", "Admin; Learner; Prizing User"),
    CsvEdit("edapp", "Password", "S3cret-pass!", "S3cret-pass!"),
    CsvEdit("edapp", "External ID", "000999", "000999"),
    CsvEdit("edapp", "Job Title", "Lead", "Lead"),  # a custom column of the export
    CsvEdit("edapp", "Department", "People", "People"),
    CsvEdit("incenteev", "First name", "Clara", "Clara"),
    CsvEdit("incenteev", "Last name", "Moreau-Roy", "Moreau-Roy"),
    CsvEdit("incenteev", "Role(s)", "Sales Manager; Team Lead", "Sales Manager; Team Lead"),
    CsvEdit("incenteev", "Permission profile", "Manager", "Manager"),
    CsvEdit("incenteev", "Employee ID", "00099", "00099"),
    CsvEdit("incenteev", "Job title", "VP Sales", "VP Sales"),
    CsvEdit("incenteev", "Phone number", "+33 1 00 00 00 00", "+33 1 00 00 00 00"),
    CsvEdit("incenteev", "Role ID", "R-999", "R-999"),
    CsvEdit("jostle", "First Name", "Sara", "Sara"),
    CsvEdit("jostle", "Last Name", "Lee-Park", "Lee-Park"),
    CsvEdit("jostle", "Work Email", "s.lee@example.net", "s.lee@example.net"),
    CsvEdit("jostle", "Job Title", "CEO", "CEO"),
    CsvEdit("jostle", "Location", "Remote|Main\\|HQ", "Remote|Main\\|HQ"),
    CsvEdit("jostle", "Org", "Board", "Board"),
    CsvEdit("jostle", "Manager", "david.cohen", "david.cohen"),
    CsvEdit("jostle", "Work Phone", "+1 416 555 0199", "+1 416 555 0199"),
    CsvEdit("jostle", "Employee ID", "000999", "000999"),
    CsvEdit("jostle", "Start Date", "2015-04-01", "2015-04-01"),
]


@dataclass
class CsvSynced:
    headers: list[str]
    rows: dict[str, dict[str, str]]
    """The upload file's rows by key."""
    keys: dict[str, str]
    """Column -> the key of the user whose cell was edited."""


def _sync_csv_edits(dialect: str, folder: Path) -> CsvSynced:
    book = folder / f"{dialect}.xlsx"
    app.export_workbook(book, from_csv=SAMPLES / CSV_SAMPLES[dialect])
    wb = load_workbook(book)
    ws = wb["Users"]
    col = {str(c.value): c.column for c in ws[1] if c.value}
    key_col = col[CSV_KEYS[dialect]] if dialect != "edapp" else col["Email"]  # EdApp: the Username may be blank (then the Email)
    keys: dict[str, str] = {}
    row = 1
    for edit in (e for e in CSV_EDITS if e.dialect == dialect):
        row += 1
        while ws.cell(row, col[edit.column]).value == edit.cell:
            row += 1
        ws.cell(row, col[edit.column]).value = edit.cell
        keys[edit.column] = str(ws.cell(row, key_col).value)  # after the edit: the Email edit is found under its new address
    wb.save(book)
    result = app.sync_workbook(book)
    upload = Path(str(result["upload_file"]))
    grid = list(csv.reader(io.StringIO(upload.read_bytes().decode("utf-8"), newline="")))
    headers = grid[0]
    by_key = headers.index("Email") if dialect == "edapp" else headers.index(CSV_KEYS[dialect])
    return CsvSynced(headers, {r[by_key]: dict(zip(headers, r, strict=True)) for r in grid[1:]}, keys)


def _sample_rows(dialect: str) -> dict[str, dict[str, str]]:
    """The sample export's rows by key, as the platform wrote them (Python's csv module)."""
    rows = list(csv.DictReader(io.StringIO((SAMPLES / CSV_SAMPLES[dialect]).read_text(encoding="utf-8"))))
    return {r[CSV_KEYS[dialect]]: r for r in rows}


@pytest.fixture(scope="module")
def csv_synced(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], CsvSynced]:
    """Each CSV dialect's sample exported, every column edited once (each on another user), synced once (cached)."""
    done: dict[str, CsvSynced] = {}

    def get(dialect: str) -> CsvSynced:
        if dialect not in done:
            done[dialect] = _sync_csv_edits(dialect, tmp_path_factory.mktemp(dialect))
        return done[dialect]

    return get


@pytest.mark.parametrize("edit", CSV_EDITS, ids=[f"{e.dialect}-{e.column}" for e in CSV_EDITS])
def test_one_csv_edit_is_the_upload_cell_written_here(csv_synced: Callable[[str], CsvSynced], edit: CsvEdit) -> None:
    synced = csv_synced(edit.dialect)
    key = synced.keys[edit.column]
    row = synced.rows.get(key)
    assert row is not None, f"{key!r} is not in the upload file"
    assert row[edit.column] == edit.upload
    if edit.dialect == "jostle":
        # A partial file: the Username and the columns some user changed; this user's other cells are as exported.
        exported = _sample_rows("jostle")[key]
        assert {h: _items(v) for h, v in row.items() if h != edit.column} == {h: _items(exported[h]) for h in row if h != edit.column}


def _items(cell: str) -> str:
    """A '|' list cell without the spaces around its separators ('Toronto | Remote' is written 'Toronto|Remote')."""
    return re.sub(r"\s*(?<!\\)\|\s*", "|", cell)


@pytest.mark.parametrize("dialect", sorted(CSV_SAMPLES))
def test_the_upload_holds_exactly_the_edited_users(csv_synced: Callable[[str], CsvSynced], dialect: str) -> None:
    synced = csv_synced(dialect)
    assert sorted(synced.rows) == sorted(synced.keys.values())
    edited = [e.column for e in CSV_EDITS if e.dialect == dialect]
    assert set(edited) <= set(synced.headers)


@pytest.mark.parametrize(
    ("dialect", "cell", "message"),
    [("progression", "amara.o@example.com", r"Users!C2 email: the key 'email' was 'amara\.okafor@example\.com' at export and is now 'amara\.o@example\.com'"),
     ("edapp", "olivia.h", r"Users!B2 Username: the key 'Username' was 'olivia\.hart@example\.org' at export and is now 'olivia\.h'"),
     ("incenteev", "claire.m@example.com", r"Users!C2 Email: the key 'Email' was 'claire\.moreau@example\.com' at export and is now 'claire\.m@example\.com'"),
     ("jostle", "sarah.lee2", r"Users!A2 Username: the key 'Username' was 'sarah\.lee' at export and is now 'sarah\.lee2'")],
)
def test_editing_an_immutable_key_is_refused_naming_the_cell(tmp_path: Path, dialect: str, cell: str, message: str) -> None:
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, from_csv=SAMPLES / CSV_SAMPLES[dialect])
    wb = load_workbook(book)
    ws = wb["Users"]
    col = {str(c.value): c.column for c in ws[1] if c.value}
    ws.cell(2, col[CSV_KEYS[dialect]]).value = cell
    wb.save(book)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(DataError, match=r"1 row has errors \(row 2\); nothing was sent\..*" + message):
        app.sync_workbook(book)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no upload file


def test_the_samples_are_what_the_edits_start_from() -> None:
    """Each CSV edit changes a cell the sample really has (a column renamed in a sample would make the edit a no-op)."""
    for dialect, sample in CSV_SAMPLES.items():
        headers = next(csv.reader(io.StringIO((SAMPLES / sample).read_text(encoding="utf-8"))))
        assert {e.column for e in CSV_EDITS if e.dialect == dialect} <= set(headers), dialect
