"""The demo organisation: deterministic, valid SCIM, and carrying what real HR data trips over."""

from __future__ import annotations

import datetime
import functools
import re
import unicodedata
from typing import Any

import pytest

from rosterbook.sandbox import ENTERPRISE_SCHEMA, HR_SCHEMA, build_provider, demo_organisation
from rosterbook.sandbox.seed import DEFAULT_USERS, ROLE_NAMES, ascii_login

_provider = functools.cache(build_provider)


@functools.cache
def _default() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return demo_organisation(DEFAULT_USERS, seed=1)


def _scripts(text: str) -> set[str]:
    """The Unicode scripts of a name's letters, from their character names (LATIN, CJK, CYRILLIC, ARABIC...)."""
    return {unicodedata.name(c).split()[0] for c in text if c.isalpha()}


def test_same_seed_same_organisation_other_seed_other_one() -> None:
    assert demo_organisation(40, seed=7) == demo_organisation(40, seed=7)
    assert demo_organisation(40, seed=7) != demo_organisation(40, seed=8)


@pytest.mark.parametrize("users", [0, 1, 2, 7, 60])
def test_any_size_is_a_consistent_organisation(users: int) -> None:
    people, groups = demo_organisation(users)
    ids = {p["id"] for p in people}
    assert len(people) == len(ids) == users
    for person in people:
        manager = person[ENTERPRISE_SCHEMA].get("manager")
        assert manager is None or manager["value"] in ids - {person["id"]}
    assert all(m["value"] in ids for g in groups for m in g["members"])


def test_documents_are_valid_canonical_scim() -> None:
    """Seeded documents equal their own validated-and-dumped form (the fast listing relies on it)."""
    provider = _provider()
    user_model: Any = provider.model_for("User")
    group_model: Any = provider.model_for("Group")
    people, groups = _default()
    for doc in people:
        assert user_model.model_validate(doc).model_dump(mode="json") == doc
    for doc in groups:
        assert group_model.model_validate(doc).model_dump(mode="json") == doc


def test_names_carry_accents_and_other_scripts() -> None:
    people, _ = _default()
    scripts = set().union(*(_scripts(p["displayName"]) for p in people))
    accented = [p for p in people if not p["displayName"].isascii() and _scripts(p["displayName"]) == {"LATIN"}]

    assert {"LATIN", "CJK", "CYRILLIC", "ARABIC"} <= scripts
    assert len(accented) >= DEFAULT_USERS // 10
    assert any("'" in p["name"]["familyName"] for p in people)  # O'Brien
    assert all(re.fullmatch(r"[a-z0-9.]+@lumen\.example", p["userName"]) for p in people)


def test_logins_and_ids_are_unique_and_keep_leading_zeros() -> None:
    people, groups = _default()
    for values in (
        [p["userName"].casefold() for p in people],
        [p["emails"][0]["value"].casefold() for p in people],
        [p["externalId"] for p in people],
        [p[ENTERPRISE_SCHEMA]["employeeNumber"] for p in people],
        [g["displayName"] for g in groups],
    ):
        assert len(values) == len(set(values))
    assert all(p["externalId"].startswith("0") for p in people)
    assert sum(p[ENTERPRISE_SCHEMA]["employeeNumber"].startswith("000") for p in people) == len(people)
    assert all(p["userName"] == p["emails"][0]["value"] and p["emails"][0]["primary"] for p in people)


def test_statuses_drive_active_and_membership() -> None:
    people, groups = _default()
    statuses = {p[HR_SCHEMA]["accountStatus"] for p in people}
    members = {m["value"] for g in groups for m in g["members"]}

    assert statuses == {"Active", "Pending", "Archived"}
    assert all(p["active"] is (p[HR_SCHEMA]["accountStatus"] == "Active") for p in people)
    assert not any(p["id"] in members for p in people if p[HR_SCHEMA]["accountStatus"] == "Archived")


def test_management_chain_reaches_one_ceo() -> None:
    people, _ = _default()
    by_id = {p["id"]: p for p in people}
    roots = [p for p in people if "manager" not in p[ENTERPRISE_SCHEMA]]
    assert len(roots) == 1
    for person in people:
        seen: set[str] = set()
        while "manager" in person[ENTERPRISE_SCHEMA]:
            assert person["id"] not in seen  # no cycles
            seen.add(person["id"])
            manager = person[ENTERPRISE_SCHEMA]["manager"]
            assert manager["displayName"] == by_id[manager["value"]]["displayName"]
            person = by_id[manager["value"]]
        assert person is roots[0]
    managers = {p[ENTERPRISE_SCHEMA]["manager"]["value"] for p in people if "manager" in p[ENTERPRISE_SCHEMA]}
    assert all("Manager" in {r["value"] for r in by_id[m]["roles"]} for m in managers)


def test_hr_fields_are_well_formed() -> None:
    people, groups = _default()
    locations = [loc for p in people for loc in p[HR_SCHEMA]["locations"]]
    assert any("|" in loc for loc in locations)
    assert any(len(p[HR_SCHEMA]["locations"]) > 1 for p in people)
    for person in people:
        hr = person[HR_SCHEMA]
        datetime.date.fromisoformat(hr["startDate"])
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", hr["startDate"])
        assert hr["position"] == person["title"]
        assert {r["value"] for r in person["roles"]} <= set(ROLE_NAMES)
    teams = {p[HR_SCHEMA]["team"] for p in people}
    assert len(teams) > 10
    assert {"Managers", "Engineering"} <= {g["displayName"] for g in groups}


@pytest.mark.parametrize(
    ("name", "login"),
    [("Zoë", "zoe"), ("Łukasz", "lukasz"), ("Søren", "soren"), ("O'Brien", "obrien"), ("Ó Súilleabháin", "osuilleabhain"),
     ("Groß", "gross"), ("Yılmaz", "yilmaz"), ("İsmail", "ismail"), ("Đặng", "dang"), ("Bækgaard", "baekgaard")],
)
def test_ascii_login(name: str, login: str) -> None:
    assert ascii_login(name) == login
