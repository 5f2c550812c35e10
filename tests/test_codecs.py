"""Cell codecs: canonical text, round trips (hypothesis) and the exact error messages."""

from __future__ import annotations

import datetime as dt

import pytest
from email_validator import validate_email
from hypothesis import example, given
from hypothesis import strategies as st

from rosterbook.core import codecs
from rosterbook.core.codecs import (
    CodecError,
    canonical,
    canonical_list,
    format_bool,
    format_date,
    format_id,
    format_list,
    format_status,
    is_valid_email,
    join_list,
    parse_bool,
    parse_date,
    parse_email,
    parse_id,
    parse_list,
    parse_phone,
    parse_status,
    split_list,
    suggest,
    to_text,
)

WORDS = ("Active", "Pending", "Archived")

# Items as a list cell holds them: stripped, non-empty.
_item = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=20).map(str.strip).filter(bool)
semicolon_items = st.lists(_item.filter(lambda s: ";" not in s), max_size=6)
pipe_items = st.lists(_item.filter(lambda s: not s.endswith("\\")), max_size=6)


# --- round trips -----------------------------------------------------------------------------------


@given(st.sampled_from(WORDS))
def test_status_round_trips(word: str) -> None:
    assert format_status(parse_status(word, WORDS)) == word


@given(st.text(max_size=12).filter(lambda s: s not in WORDS))
def test_anything_else_is_not_a_status(text: str) -> None:
    with pytest.raises(CodecError) as info:
        parse_status(text, WORDS)
    assert info.value.code == "unknown-status"
    assert info.value.fix is None or info.value.fix in WORDS


@given(semicolon_items)
def test_semicolon_list_parse_of_format_is_identity(items: list[str]) -> None:
    text = format_list(items, "; ")
    assert parse_list(text, "; ") == items
    assert format_list(parse_list(text, "; "), "; ") == text


@given(pipe_items)
def test_pipe_list_with_escapes_round_trips(items: list[str]) -> None:
    text = format_list(items, "|", "\\")
    assert parse_list(text, "|", "\\") == items
    assert format_list(parse_list(text, "|", "\\"), "|", "\\") == text


@given(st.booleans())
def test_bool_round_trips(value: bool) -> None:
    assert parse_bool(format_bool(value)) is value
    assert format_bool(parse_bool(format_bool(value))) == format_bool(value)


@given(st.dates())
def test_date_round_trips(value: dt.date) -> None:
    text = format_date(value)
    assert parse_date(text) == value
    assert format_date(parse_date(text)) == text


@given(st.from_regex(r"0[0-9]{1,14}", fullmatch=True))
def test_ids_keep_leading_zeros(text: str) -> None:
    assert to_text(text) == text
    assert format_id(parse_id(text)) == text


@given(st.integers(min_value=-(10**14), max_value=10**14))
def test_whole_floats_from_excel_lose_their_point_zero(value: int) -> None:
    assert to_text(float(value)) == str(value)


_atext = st.one_of(st.sampled_from("abXZ09_+'-"), st.characters(categories=("L", "M", "N", "P", "S")))
_local = st.lists(st.text(alphabet=_atext, min_size=1, max_size=12), min_size=1, max_size=7).map(".".join)
_label = st.text(alphabet="aZ09-", min_size=1, max_size=66)
_tld = st.one_of(st.sampled_from(["com", "test", "Local", "LOCALHOST", "onion", "arpa", "invalid", "io"]), st.text(alphabet="abXy", min_size=1, max_size=66))
_emailish = st.builds(lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}", _local, st.lists(_label, min_size=1, max_size=4), _tld)


@given(st.one_of(_emailish, st.text(alphabet="aZ0.-_+'@é", max_size=24).map(lambda t: t + ".com")))
def test_email_fast_path_accepts_only_what_email_validator_accepts(text: str) -> None:
    if codecs._fast_valid_email(text):
        validate_email(text, check_deliverability=False)  # raises if the fast path was too lenient


@given(st.lists(st.one_of(_emailish, st.text(alphabet="aZ0.-_+'@é", max_size=24).map(lambda t: t + ".com")), max_size=8))
@example(["a" * 65 + "@example.com", "a@" + "b" * 64 + ".com", "a@" + "b" * 60 + ".c" + "o" * 10, "ok@example.com"])
def test_valid_emails_in_bulk_is_the_fast_path_on_each(texts: list[str]) -> None:
    assert codecs.valid_emails(texts) == {text for text in texts if codecs._fast_valid_email(text)}


@pytest.mark.parametrize("tld", ["test", "LOCAL", "localhost", "onion", "arpa", "invalid"])
def test_email_fast_path_leaves_special_use_domains_to_email_validator(tld: str) -> None:
    # Syntax decides: a staging tenant's 'ada@corp.test' is a valid address (the check notes once that it gets no mail).
    assert not codecs._fast_valid_email(f"a@corp.{tld}")
    assert is_valid_email(f"a@corp.{tld}")
    assert codecs.special_use_domain(f"a@corp.{tld}") == tld.casefold()


@pytest.mark.parametrize(
    ("text", "special"),
    [("ada@acme.test", "test"), ("ada@printer.local", "local"), ("ada@x.invalid", "invalid"), ("ada@host.localhost", "localhost"),
     ("ada@srv.internal", "internal"), ("ada@localhost", "localhost"), ("ada@example.com", None), ("ada@contest.io", None)],
)
def test_special_use_domains_are_valid_and_told(text: str, special: str | None) -> None:
    assert is_valid_email(text) and parse_email(text) == text
    assert codecs.special_use_domain(text) == special


@pytest.mark.parametrize("text", ["a b@corp.test", "a@-corp.local", "a@@x.internal", "jane.doe@example"])
def test_special_use_domains_still_need_a_valid_syntax(text: str) -> None:
    assert not is_valid_email(text)


# --- canonical text of raw cells ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "text"),
    [
        (None, None),
        ("", None),
        ("  Ann  ", "Ann"),
        (True, "TRUE"),
        (42, "42"),
        (42.0, "42"),
        (1.5, "1.5"),
        (float("nan"), None),
        (dt.datetime(2024, 3, 12), "2024-03-12"),
        (dt.datetime(2024, 3, 12, 9, 30), "2024-03-12 09:30:00"),
        (dt.date(2024, 3, 12), "2024-03-12"),
        (dt.time(9, 30), "09:30:00"),
    ],
)
def test_to_text(cell: codecs.Cell, text: str | None) -> None:
    assert to_text(cell) == text


@pytest.mark.parametrize(
    ("text", "separator", "escape", "items"),
    [
        ("marketing; operations;", "; ", None, ["marketing", "operations"]),  # the seed's own example
        ("marketing;operations", "; ", None, ["marketing", "operations"]),
        (" ; a ;; b ", "; ", None, ["a", "b"]),
        ("Main\\|HQ", "|", "\\", ["Main|HQ"]),
        ("Main|HQ", "|", "\\", ["Main", "HQ"]),
        ("Toronto | Remote", "|", "\\", ["Toronto", "Remote"]),
        ("a\\b|c", "|", "\\", ["a\\b", "c"]),
    ],
)
def test_split_list(text: str, separator: str, escape: str | None, items: list[str]) -> None:
    assert split_list(text, separator, escape) == items


def test_canonical_spelling_of_cells() -> None:
    assert canonical_list("marketing;operations;", "; ") == "marketing; operations"
    assert canonical("yes", "bool") == "TRUE"
    assert canonical("Main | HQ", "list", separator="|", escape="\\") == "Main|HQ"
    assert canonical("  as is", "text") == "  as is"


# --- messages ------------------------------------------------------------------------------------------


def _error(call: object, *args: object) -> tuple[str, str, str | None]:
    with pytest.raises(CodecError) as info:
        call(*args)  # type: ignore[operator]
    return info.value.code, info.value.message, info.value.fix


@pytest.mark.parametrize(
    ("text", "message", "fix"),
    [
        ("actve", "'actve' is not one of 'Active', 'Pending', 'Archived'.", "Active"),
        ("active", "'active' is not one of 'Active', 'Pending', 'Archived': write the word exactly, without symbols or additions.", "Active"),
        ("*Archived*", "'*Archived*' is not one of 'Active', 'Pending', 'Archived': write the word exactly, without symbols or additions.", "Archived"),
        ("Gone", "'Gone' is not one of 'Active', 'Pending', 'Archived'.", None),
    ],
)
def test_status_messages(text: str, message: str, fix: str | None) -> None:
    assert _error(parse_status, text, WORDS) == ("unknown-status", message, fix)


@pytest.mark.parametrize(
    ("text", "code", "message", "fix"),
    [
        ("03/12/2024", "ambiguous-date", "'03/12/2024' could be 2024-12-03 or 2024-03-12 (day and month are ambiguous); write dates as YYYY-MM-DD.", None),
        ("13/12/2024", "invalid-date", "'13/12/2024' is not a date written YYYY-MM-DD.", "2024-12-13"),
        ("12/13/2024", "invalid-date", "'12/13/2024' is not a date written YYYY-MM-DD.", "2024-12-13"),
        ("2024-3-5", "invalid-date", "'2024-3-5' is not a date written YYYY-MM-DD.", "2024-03-05"),
        ("2024-03-05 00:00:00", "invalid-date", "'2024-03-05 00:00:00' is not a date written YYYY-MM-DD.", "2024-03-05"),
        ("2024-02-30", "invalid-date", "'2024-02-30' is not a real date (YYYY-MM-DD).", None),
        ("soon", "invalid-date", "'soon' is not a date written YYYY-MM-DD.", None),
    ],
)
def test_date_messages(text: str, code: str, message: str, fix: str | None) -> None:
    assert _error(parse_date, text) == (code, message, fix)


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        ("Jane Doe <jane.doe@example.com>", "jane.doe@example.com"),
        ("mailto:jane.doe@example.com", "jane.doe@example.com"),
        ("jane..doe@example.com", "jane.doe@example.com"),
        ("jane.doe@example.com.", "jane.doe@example.com"),
        ("jane.doe@example", None),
        ("jane.doe", None),
    ],
)
def test_invalid_emails_get_the_obvious_fix(text: str, fix: str | None) -> None:
    code, message, found = _error(parse_email, text)
    assert code == "invalid-email"
    assert message.startswith(f"{text!r} is not a valid email address: ")
    assert found == fix


@pytest.mark.parametrize("text", ["jane.doe@example.com", "o'brien@example.co.uk", "jürgen@müller.de", "a+tag@sub.example.org"])
def test_valid_emails(text: str) -> None:
    assert parse_email(text) == text
    assert is_valid_email(text)


@pytest.mark.parametrize("text", ["jane.doe@example.com", "josé.garcía@example.com", "o'brien+hr@mail.example.co.uk"])
def test_common_addresses_take_the_fast_path(text: str) -> None:
    assert codecs._fast_valid_email(text)


@pytest.mark.parametrize("text", ["a@@example.com", "a b@example.com", "a@-example.com", "a@example"])
def test_invalid_emails(text: str) -> None:
    assert not is_valid_email(text)


def test_ids_and_phones() -> None:
    assert _error(parse_id, "1.23457E+11")[:2] == (
        "mangled-number",
        "'1.23457E+11' looks like a number Excel rewrote in scientific notation; the original ID is lost. Format the column as Text and type it again.",
    )
    assert parse_id("000123") == "000123"
    for phone in ("+44 20 7946 0000", "(416) 555-0100", "+44 20 7946 0000 ext. 12", "06.11.22.33.44"):
        assert parse_phone(phone) == phone
    assert _error(parse_phone, "call me") == ("invalid-phone", "'call me' is not a phone number (digits, spaces, '+', '-', '(', ')').", None)


def test_items_that_cannot_be_written() -> None:
    assert _error(join_list, ["Main\\", "HQ"], "|", "\\")[:2] == (
        "unrepresentable-item",
        "'Main\\\\' ends with '\\\\', which would escape the separator '|'.",
    )
    assert _error(join_list, ["a;b"], "; ")[:2] == ("separator-in-item", "'a;b' contains the list separator ';', which cannot be escaped.")


@pytest.mark.parametrize(
    ("value", "choices", "fix"),
    [
        ("actve", WORDS, "Active"),
        ("PENDING", WORDS, "Pending"),
        ("'Active'", WORDS, "Active"),
        ("xyz", WORDS, None),
        ("Admn", ("Admin", "Learner"), "Admin"),
    ],
)
def test_suggest(value: str, choices: tuple[str, ...], fix: str | None) -> None:
    assert suggest(value, choices) == fix


@pytest.mark.parametrize(
    ("text", "out"),
    [("=1+1", "'=1+1"), ("@SUM(A1)", "'@SUM(A1)"), ("+44 20 7946 0000", "+44 20 7946 0000"), ("-5", "-5"), ("Ann", "Ann")],
)
def test_csv_injection_is_neutralised(text: str, out: str) -> None:
    assert codecs.neutralise_csv_cell(text) == out
