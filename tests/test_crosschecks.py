"""The cross-row passes' C-speed shortcuts (``core.crosschecks``) find what their plain definitions find."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from rosterbook.core.codecs import special_use_domain
from rosterbook.core.crosschecks import columns_of_rows, references, special_use_emails
from rosterbook.core.dialects import load_dialect
from rosterbook.core.table import map_headers

PROGRESSION = load_dialect("progression")
HEADERS = ["First Name", "Last Name", "email", "account_active", "manager"]
_USERS = ["ann@x.io", "Ann@X.io", "bo@x.io", "cy@x.io", "di@x.io"]


def _columns(rows: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    cells = [["A", "B", email, "Active", manager] for email, manager in rows]
    positions, _, _ = map_headers(HEADERS, PROGRESSION, "users.csv")
    return columns_of_rows(PROGRESSION, "users.csv", HEADERS, cells, positions)


def _plainly_wrong_managers(rows: list[tuple[str, str]]) -> set[tuple[int, str]]:
    """(row, code) by the definition: each user's first row names a manager; oneself, or a circle back to oneself."""
    first: dict[str, int] = {}
    names: dict[str, str] = {}
    for number, (email, manager) in enumerate(rows, start=2):
        key = email.strip().casefold()
        if key and key not in first:
            first[key] = number
            if manager.strip():
                names[key] = manager.strip().casefold()
    out = set()
    for key, number in first.items():
        if names.get(key) == key:
            out.add((number, "self-reference"))
            continue
        node, steps = names.get(key), 0
        while node is not None and node != key and steps <= len(names):
            node, steps = names.get(node), steps + 1
        if node == key:
            out.add((number, "reference-cycle"))
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_USERS), st.sampled_from(["", " ", "boss@x.io", *_USERS, "ANN@x.io "])), max_size=8))
@example([("ann@x.io", "boss@x.io"), ("bo@x.io", "")])  # nobody in the file names a user of the file: ruled out at once
@example([("ann@x.io", "bo@x.io"), ("bo@x.io", "ANN@x.io "), ("cy@x.io", "cy@x.io")])
def test_manager_references_in_a_file_are_their_definition(rows: list[tuple[str, str]]) -> None:
    found = {(p.row, p.code) for p in references(_columns(rows), None)}
    assert found == _plainly_wrong_managers(rows)


_DOMAIN_PART = st.sampled_from(["example.com", "acme.test", "acme.TEST.", "x.Local", "localhost", "corp.internal", "te\u017ft.io",
                                "x.te\u017ft", "\u212aelvin.org", "h\u00e9.invalid", "arpa", "x.onion.", "x.testing", "notest"])


@given(st.lists(st.tuples(st.sampled_from(["ann", "b\u00f6", " cy", ""]), _DOMAIN_PART), max_size=6))
@example([("ann", "x.te\u017ft")])  # a long s folds to 's': special_use_domain says 'test'
def test_special_use_domains_are_found_whenever_an_address_has_one(parts: list[tuple[str, str]]) -> None:
    rows = [(f"{local}@{domain}" if local else domain, "") for local, domain in parts]
    warned = list(special_use_emails(_columns(rows)))
    assert bool(warned) == any(special_use_domain(email.strip()) for email, _ in rows if "@" in email)
