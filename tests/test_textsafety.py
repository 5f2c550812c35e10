"""Lookalike keys and invisible characters (check), and platform text made storable in a cell (export)."""

from __future__ import annotations

import json
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rosterbook.core import textsafety
from rosterbook.core.checks import check_cells, check_matrix, check_value
from rosterbook.core.dialects import load_dialect
from rosterbook.core.textsafety import CELL_LIMIT, fit_for_cells, invisible_findings, skeleton

SCIM = load_dialect("scim")
PROGRESSION = load_dialect("progression")


def _rows(dialect_name: str, rows: list[dict[str, str]]) -> list[tuple[str, str, str, str | None]]:
    """(cell, severity, code, fix) of every problem with a lookalike/invisible code, checking ``rows`` as a CSV would be."""
    dialect = load_dialect(dialect_name)
    headers = [c.name for c in dialect.columns if c.required == "always" or any(c.name in r for r in rows)]
    cells = [[r.get(h) for h in headers] for r in rows]
    report = check_cells(dialect, headers, cells)
    return [(p.cell, p.severity, p.code, p.fix) for p in report.problems if p.code in ("lookalike-key", "invisible-character", "duplicate-key")]


PERSON = {"First Name": "Ana", "Last Name": "Ng", "account_active": "Active"}


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # NFC: 'Zoe' + combining diaeresis is the same key as the precomposed 'Zoë'.
        ([{"email": "zoë@example.com"}, {"email": "zoe\u0308@example.com"}], [("C3", "error", "lookalike-key", None)]),
        # Case alone is an ordinary duplicate (email keys are case-insensitive): reported once, as duplicate-key.
        ([{"email": "amy@example.com"}, {"email": "AMY@example.com"}], [("C3", "error", "duplicate-key", None)]),
        # A zero-width space in a key: an error with the cleaned key as the fix, and a lookalike of row 2.
        ([{"email": "amy@example.com"}, {"email": "a\u200bmy@example.com"}],
         [("C3", "error", "invisible-character", "amy@example.com"), ("C3", "error", "lookalike-key", None)]),
        # Bidi override in free text: a warning, with the fix.
        ([{"email": "b@example.com", "team": "Sales\u202e"}], [("D2", "warning", "invisible-character", "Sales")]),
        # A zero-width non-joiner inside a Persian name is writing, not an accident.
        ([{"email": "c@example.com", "First Name": "\u0645\u06cc\u200c\u0631\u0648\u062f"}], []),
        # ...but the same character between ASCII letters is flagged.
        ([{"email": "d@example.com", "First Name": "An\u200cna"}], [("A2", "warning", "invisible-character", "Anna")]),
        # A Hangul filler (printable, invisible) and a tab inside a key.
        ([{"email": "e@example.com", "Last Name": "\u3164"}], [("B2", "warning", "invisible-character", "")]),
        ([{"email": "f\t@example.com"}], [("C2", "error", "invisible-character", "f@example.com")]),
    ],
)
def test_lookalikes_and_invisible_characters(rows: list[dict[str, str]], expected: list[tuple[str, str, str, str | None]]) -> None:
    got = _rows("progression", [{**PERSON, **r} for r in rows])
    assert sorted(got) == sorted(expected)


def test_a_lookalike_far_down_the_sheet_points_at_the_first_row() -> None:
    """Across check chunks: an ASCII key in row 2, its lookalike 3,000 rows later (chunks of 1,000 rows go the fast way)."""
    headers = ["Username", "First name", "Last name", "Email", "Status"]
    rows = [[f"user{i}", "A", "B", f"user{i}@example.com", "Active"] for i in range(3000)]
    rows.append(["USER1\u200d", "A", "B", "x@example.com", "Active"])
    problems = [p for p in check_cells(SCIM, headers, rows).problems if p.code in ("lookalike-key", "invisible-character")]
    assert [(p.cell, p.code, p.severity) for p in problems] == [("A3002", "invisible-character", "error"), ("A3002", "lookalike-key", "error")]
    assert "the Username of row 3 (A3)" in problems[1].message and "invisible characters" in problems[1].message


def test_the_message_names_the_characters_and_what_differs() -> None:
    headers = ["Username", "First name", "Last name", "Email", "Status"]
    found = check_matrix(SCIM, headers, [["Zoë", "A", "B", "z@example.com", "Active"], ["zoe\u0308", "A", "B", "y@example.com", "Active"],
                                         ["bob\u200b", "A", "B", "b@example.com", "Active"]])
    lookalike = next(p for p in found[1] if p.code == "lookalike-key")
    assert lookalike.render() == (
        "Users!A3 Username: 'zoe\u0308' looks the same as 'Zoë', the Username of row 2 (A2): they differ only in Unicode normalisation and "
        "letter case. The platform may refuse it or create a second account; each user can appear only once."
    )
    invisible = next(p for p in found[2] if p.code == "invisible-character")
    assert invisible.render() == (
        "Users!A4 Username: 'bob\\u200b' contains U+200B ZERO WIDTH SPACE, invisible in the sheet: the platform would store a different "
        "Username than the one shown. Remove it. Did you mean 'bob'?"
    )
    # The cell functions say the same for one value.
    assert [p.code for p in check_value(SCIM, "Username", "bob\u200b")] == ["invisible-character"]
    assert [(p.code, p.severity) for p in check_value(SCIM, "Job title", "Lead\u2066")] == [("invisible-character", "warning")]


def test_every_invisible_format_character_is_known() -> None:
    """Every format character (Cf) of this Python's Unicode database is flagged, or listed as drawn."""
    missed = [f"U+{c:04X}" for c in range(sys.maxunicode + 1)
              if unicodedata.category(chr(c)) == "Cf" and chr(c) not in textsafety.VISIBLE_FORMAT and not invisible_findings([chr(c)], key=False)]
    assert missed == []


@pytest.mark.parametrize(("text", "shape"), [("Zoë", "zoë"), ("ZOE\u0308", "zoë"), ("z\u200boë", "zoë"), ("Plain", "plain"), ("STRASSE", "strasse"), ("Straße", "strasse")])
def test_skeleton(text: str, shape: str) -> None:
    assert skeleton(text) == shape


def test_fit_for_cells_replaces_what_a_cell_cannot_hold_and_cuts_what_is_too_long() -> None:
    values, notes = fit_for_cells({"Name": "a\ud800b", "Title": "x\x01y", "Bio": "z" * 40_000, "Team": "ok", "Gone": None})
    assert values["Name"] == "a\ufffdb" and values["Title"] == "x\ufffdy" and values["Team"] == "ok" and values["Gone"] is None
    assert len(json.dumps(values, ensure_ascii=False, sort_keys=True)) <= CELL_LIMIT  # the snapshot's one cell holds the user
    assert values["Bio"] == "z" * len(values["Bio"]) and len(values["Bio"]) < CELL_LIMIT
    assert {(c, code) for c, code, _ in notes} == {("Name", "invalid-unicode"), ("Title", "invalid-unicode"), ("Bio", "cut-short")}
    # Text the connector already replaced (U+FFFD) is reported when the platform's text was invalid; otherwise left alone.
    assert fit_for_cells({"Name": "a\ufffd"}, invalid_unicode=True)[1][0][:2] == ("Name", "invalid-unicode")
    assert fit_for_cells({"Name": "a\ufffd"}) == ({"Name": "a\ufffd"}, [])


_SCRIPT_TEXT = st.text(alphabet=st.sampled_from([*"aZ @.-", "\u00e9", "\u00df", "\u00a0", "\u00ad", "\x85", "\t", "\x07", "\u200b", "\u200c",
                                                 "\u034f", "\u3164", "\ufe0f", "\U000e0101", "\u0416", "\u4e2d", "\u0645"]), max_size=6)


@given(st.lists(st.one_of(st.none(), _SCRIPT_TEXT), max_size=6), st.booleans())
def test_the_column_wide_shortcuts_find_what_each_text_holds(texts: list[str | None], key: bool) -> None:
    """``invisible_findings`` rules columns out at C speed (ASCII, Latin-1, printable names): never one with a finding."""
    expected = [(i, t) for i, t in enumerate(texts) if t and textsafety.invisible_characters(t, key=key)]
    assert [(i, texts[i]) for i, _, _ in invisible_findings(texts, key=key)] == expected
    if expected:
        assert textsafety.column_has_invisible(texts, key=key)
