"""The column-wide shortcuts of the checks find exactly what a look at each cell, row by row, finds.

Each shortcut of ``check FILE.csv`` (vectorised lookalike and duplicate checks, bulk email tests, the plain-text
scan of a file, columns shared with the cross checks) is compared here with the row-by-row path on random input.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rosterbook.core import checks, codecs, problems, textsafety
from rosterbook.core.checks import _frame_of_cells, _TableChecker, check_cells, check_cells_and_columns
from rosterbook.core.crosschecks import columns_of_rows, cross_checks
from rosterbook.core.dialects import dialect_names, load_dialect
from rosterbook.core.problems import Problem, quote, sort_key
from rosterbook.core.table import map_headers
from rosterbook.csvfile import SplitLines, parse_csv_text

# --- keys: lookalikes and duplicates, chunk by chunk ----------------------------------------------------

# Keys that look alike in every way the check knows: case (ß/SS, the Kelvin sign, long s, title-case digraphs, final
# sigma), NFC/NFD, invisible characters; a few words only, so that they meet; plain ASCII ones too, so that some chunks
# are all-ASCII (the check's fast path) and non-ASCII keys meet plain ones of earlier chunks.
_WORDS = ["ok", "ab", "zoë", "straße", "kelvin", "ǆemal", "όσος"]
_LOOKS = [
    lambda w: w, lambda w: w, lambda w: w.upper(), lambda w: w.title(), lambda w: unicodedata.normalize("NFD", w),
    lambda w: w[:1] + "\u200b" + w[1:], lambda w: w[:1] + "\u00ad" + w[1:], lambda w: w + "\t" + w[:1], lambda w: w.replace("k", "\u212a"),
    lambda w: w.replace("s", "ſ"), lambda w: w.replace("ß", "SS"),
]
_key = st.builds(lambda word, look, at: _LOOKS[look](word) + ("@x.com" if at else ""), st.sampled_from(_WORDS), st.integers(0, len(_LOOKS) - 1), st.booleans())


def _checked(dialect_name: str, headers: list[str], rows: list[list[str]], chunk: int, vectorised: bool) -> list[Problem]:
    dialect = load_dialect(dialect_name)
    positions, _, _ = map_headers(headers, dialect, "Users")
    checker = _TableChecker(dialect, "Users", positions, headers, None)
    checker.vectorised = vectorised
    found: list[Problem] = []
    for start in range(0, len(rows), chunk):  # as ``check FILE.csv`` goes: a frame of each part of the rows
        by_row = checker.check(_frame_of_cells(checker, rows[start : start + chunk], 2 + start), None, cross_row=True)
        for i in sorted(by_row):
            found.extend(by_row[i])
    return found


def _duplicates_row_by_row(dialect_name: str, headers: list[str], rows: list[list[str]]) -> list[Problem]:
    """The duplicate checks as first written: one row after the other, each key and unique value against the first."""
    dialect = load_dialect(dialect_name)
    key, fallback = dialect.key, dialect.key_fallback
    folds = dialect.key_case_insensitive or dialect.column(key).type == "email"
    letters = {h: chr(ord("A") + i) for i, h in enumerate(headers)}
    unique = [(c.name, c.type == "email" or (c.name == fallback and folds)) for c in dialect.columns if c.unique and c.name != key and c.name in headers]
    seen: dict[str, tuple[int, str]] = {}
    seen_unique: dict[str, dict[str, int]] = {name: {} for name, _ in unique}
    out: list[Problem] = []
    for offset, cells in enumerate(rows):
        number = offset + 2
        texts = {h: (c.strip() or None) for h, c in zip(headers, cells, strict=True)}
        flagged = None
        column = key
        text = texts.get(key)
        if text is None and fallback is not None:
            column, text = fallback, texts.get(fallback)
        if text is not None and column in letters:
            first = seen.setdefault(text.casefold() if folds else text, (number, letters[column]))
            if first[0] != number:
                via = f" (the {key}, taken from {column})" if column != key else ""
                message = f"{quote(text)}{via} is already the {key} of row {first[0]} ({first[1]}{first[0]}); each user can appear only once."
                out.append(Problem("error", "Users", f"{letters[column]}{number}", number, column, cells[headers.index(column)], "duplicate-key", message))
                flagged = column
        for name, unique_folds in unique:
            value = texts[name]
            if value is None:
                continue
            earlier = seen_unique[name].setdefault(value.casefold() if unique_folds else value, number)
            if earlier != number and flagged != name:
                message = f"{quote(value)} is already the {name} of row {earlier} ({letters[name]}{earlier}); {name} must be unique."
                out.append(Problem("error", "Users", f"{letters[name]}{number}", number, name, cells[headers.index(name)], "duplicate-value", message))
    return sorted(out, key=sort_key)


_KEY_CASES = {  # dialect -> the header row: the key column, and for EdApp the email it falls back to when blank
    "progression": ["email", "First Name"],
    "jostle": ["Username", "Work Email"],
    "edapp": ["Username", "Email", "External ID"],
}


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(_KEY_CASES)), st.lists(st.tuples(st.one_of(st.just(""), _key), _key, st.sampled_from(["", "7", "07", "x"])), max_size=24),
       st.integers(1, 12))
@example("progression", [("zoë@x.com", "", ""), ("ok@x.com", "", ""), ("ZOË@x.com", "", ""), ("zoe\u0308@x.com", "", ""), ("o\u200bk@x.com", "", "")], 2)
@example("jostle", [("ok", "", ""), ("ab", "", ""), ("o\u200bk", "", ""), ("OK", "", ""), ("a\u00adb", "", "")], 2)
@example("jostle", [("ok", "", ""), ("zoë", "", ""), ("o\u200bk", "", "")], 2)
@example("jostle", [("o\u200bk", "", ""), ("ok", "", "")], 2)  # a plain key resembling an earlier non-ASCII one, same chunk
@example("jostle", [("ab", "", ""), ("o\u200bk", "", ""), ("ok", "", ""), ("zoë", "", "")], 2)  # ... of an earlier chunk
@example("jostle", [("o\u200bk", "", ""), *((f"k{n}", "", "") for n in range(10)), ("ok", "", ""), ("zoë", "", ""),
                   *((f"m{n}", "", "") for n in range(7))], 10)  # a plain key of a later, larger chunk resembling a looked-at one
@example("edapp", [("", "ab@x.com", "7"), ("AB", "ab@x.com", "07"), ("a\u200bb", "x", "7"), ("", "AB@X.COM", "")], 1)
def test_lookalikes_and_duplicates_are_the_row_by_row_ones_across_chunks(dialect_name: str, cells: list[tuple[str, str, str]], chunk: int) -> None:
    headers = _KEY_CASES[dialect_name]
    rows = [list(row[: len(headers)]) for row in cells]
    vectorised = _checked(dialect_name, headers, rows, chunk, vectorised=True)
    assert vectorised == _checked(dialect_name, headers, rows, chunk, vectorised=False)
    duplicates = [p for p in vectorised if p.code in ("duplicate-key", "duplicate-value")]
    assert duplicates == _duplicates_row_by_row(dialect_name, headers, rows)


# --- helpers of the shortcuts ---------------------------------------------------------------------------

_shape_text = st.lists(st.sampled_from([*"aZ ß", "é", "e\u0301", "\u212a", "Σ", "\u200b", "\u00ad", "\x00", "\t", "\ufe0f", "ǅ", "李"]), max_size=6).map("".join)


@given(st.lists(_shape_text, max_size=8))
def test_skeletons_are_the_skeleton_of_each(texts: list[str]) -> None:
    assert textsafety.skeletons(texts) == [textsafety.skeleton(t) for t in texts]


_local = st.text(alphabet=st.sampled_from([*"abXZ09_+'-.", "é", "李", " ", "\x00", "@"]), min_size=0, max_size=10)
_domain = st.one_of(st.sampled_from(["example.com", "EXAMPLE.COM", "corp.test", "x.local", "b.internal", "B.Internal.", "ex-ample.org", "e--x.com",
                                     "localhost", "example.c", "müller.de", "x.onion", "a.b.arpa"]), st.text(alphabet="ab.-", max_size=8))
_address = st.one_of(st.builds(lambda local, domain: f"{local}@{domain}", _local, _domain), _local, st.just("a" * 70 + "@example.com"))


@settings(max_examples=150, deadline=None)
@given(st.lists(_address, max_size=60))
@example(["a@example.com"] * 40 + ["b@example.com", "c@b.internal", "d@corp.test", "e\x00f@example.com", ""])
def test_the_bulk_email_test_is_the_fast_path_on_each_address(texts: list[str]) -> None:
    doubtful, unsettled = codecs.survey_emails(texts)
    assert doubtful == {t for t in texts if not codecs.fast_valid_email(t)}
    assert {t for t in texts if "@" in t and codecs.special_use_domain(t) is not None} <= unsettled <= set(texts)


@given(st.lists(st.sampled_from([*"aZ019-é", "AA"]), max_size=6).map("".join))
def test_the_column_part_of_a_cell_is_its_letters(cell: str) -> None:
    assert problems._column_part(cell) == "".join(ch for ch in cell if ch.isalpha())


# --- a plain file: one scan answers for every cell --------------------------------------------------------

_cell_text = st.text(alphabet=st.sampled_from([*"ab Z.@=+-", "\xa0", "\t", "é", "\u200b", "\xad", "\x07", "\x85", "李", "ſ"]), max_size=5)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_cell_text, min_size=1, max_size=4), min_size=1, max_size=5), st.sampled_from([",", ";", "\t"]), st.sampled_from(["\r\n", "\n"]))
@example([["a", "b"], ["c", ""]], ",", "\r\n")
@example([["a", "b-"], ["c", "d"]], ",", "\n")
@example([["a ", "b"]], ",", "\r\n")
@example([["a", "b"], [" c", "\xa0"]], ";", "\n")
def test_plain_cells_vouch_only_for_plain_cells(rows: list[list[str]], delimiter: str, newline: str) -> None:
    text = newline.join(delimiter.join(cells) for cells in rows)
    if not textsafety.plain_cells(text, delimiter):
        return
    for cell in re.split(f"[{re.escape(delimiter)}\r\n]", text):
        assert cell == cell.strip()
        assert not textsafety.invisible_characters(cell, key=True)
        assert not cell.startswith(("=", "+", "-", "@"))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from([*"ab,;\t\r\n =+-@", "\xa0", "\u200b", "é", "李"]), max_size=40), st.sampled_from([",", ";", "\t"]),
       st.integers(min_value=1, max_value=9))
@example(" a", ",", 1)
@example("a,\n,b", ",", 2)
@example("a, b", ",", 2)
@example("a  b", ",", 2)
@example("a ", ",", 1)
def test_plain_cells_answer_the_same_whatever_the_pieces(text: str, delimiter: str, piece: int) -> None:
    """``plain_cells`` maps the text a piece at a time: the pairs across two pieces, the text's first and last
    character and a character beyond Latin-1 in any piece answer as a look at each cell does (no cell starting or
    ending with whitespace or '=', '+', '-', '@'; no invisible character; Latin-1 only)."""
    classes = textsafety._classes(delimiter)
    cells = re.split(f"[{re.escape(delimiter)}\r\n]", text)
    expected = all(ord(ch) < 256 for ch in text) and not any(classes[ord(ch)] == 4 for ch in text) and not any(
        cell and (classes[ord(cell[0])] == 1 or classes[ord(cell[-1])] == 1) for cell in cells)
    assert textsafety.plain_cells(text, delimiter, piece=piece) == expected
    assert textsafety.plain_cells(text, delimiter) == expected


# --- a whole file: the shared, plain path against the cell checks and cross checks run apart -----------------

_FILES = {
    "progression": (["First Name", "Last Name", "email", "position", "team", "manager", "account_active"],
                    [["Ann", "Zoë", "", "Lee"], ["Lee", "O'Neill", ""], "email", ["Engineer", ""], ["Design", ""], "manager",
                     ["Active", "actve", "", "Pending"]]),
    "edapp": (["Username", "Email", "First Name", "User groups", "External ID"],
              ["email", "email", ["Ann", "=1", " Bo"], ["Staff", "Staff; Admins", ""], ["7", "07", "", "x"]]),
    "jostle": (["Username", "First Name", "Work Email", "Manager", "Location"],
               [["ann", "ANN", "bo", "cy", "dé"], ["Ann", "", "-x"], "email", ["ann", "bo", "cy", "", "zed"], ["HQ", "HQ|Remote", "Main|HQ", ""]]),
}
_EMAILS = ["ann@example.com", "ANN@example.com", "bo@example.com", "cy@corp.test", "dé@example.com", "x@b.internal", "bad(at)example.com",
           "ann.lee@example.com", "", "zoë@example.com"]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(_FILES)), st.data())
def test_the_shared_and_plain_path_finds_what_the_cell_and_cross_checks_find_apart(dialect_name: str, data: st.DataObject) -> None:
    headers, pools = _FILES[dialect_name]
    rows = data.draw(st.lists(st.tuples(*[st.sampled_from(_EMAILS if pool in ("email", "manager") else pool) for pool in pools]), min_size=1, max_size=35))
    blank_line = data.draw(st.booleans())
    if data.draw(st.booleans()):  # a row a cell short or a cell long: its part is split record by record
        k = data.draw(st.integers(0, len(rows) - 1))
        rows[k] = rows[k][:-1] if data.draw(st.booleans()) else (*rows[k], "extra")
    lines = [",".join(headers), *(",".join(row) for row in rows)]
    if blank_line:
        lines.insert(data.draw(st.integers(1, len(lines))), "")
    text = "\r\n".join(lines) + "\r\n"
    parsed = parse_csv_text(text, "users.csv")
    dialect = load_dialect(dialect_name)
    positions, _, _ = map_headers(parsed.headers, dialect, parsed.name)
    apart = check_cells(dialect, parsed.headers, parsed.rows, sheet=parsed.name).problems
    apart = apart + list(cross_checks(columns_of_rows(dialect, parsed.name, parsed.headers, parsed.rows, positions)))
    # As ``check_csv`` reads it: the lines split a part at a time (``SplitLines``), in parts of 1, 3 or 10 rows here.
    lazy = parse_csv_text(text, "users.csv", lazy=True)
    assert isinstance(lazy.rows, SplitLines)
    assert [list(r) for r in lazy.rows[:]] == parsed.rows and [lazy.rows[i] for i in range(len(parsed.rows))] == parsed.rows
    assert lazy.rows.widest() == max(map(len, parsed.rows))
    assert lazy == parsed and lazy.rows[1:] == parsed.rows[1:]
    plain = lazy.source is not None and textsafety.plain_cells(lazy.source, ",")
    saved = checks._CHUNK
    checks._CHUNK = data.draw(st.sampled_from([1, 3, 10]))
    try:
        report, columns = check_cells_and_columns(dialect, lazy.headers, lazy.rows, sheet=lazy.name, plain=plain)
    finally:
        checks._CHUNK = saved
    assert report.problems + list(cross_checks(columns)) == apart


def test_a_plain_file_is_checked_through_its_one_scan(tmp_path: Path) -> None:
    from rosterbook.csvfile import check_csv, read_csv

    path = tmp_path / "users.csv"
    path.write_text("First Name,Last Name,email,manager,account_active\r\nAnn,Lee,ann@example.com,,Active\r\nBo,,ANN@example.com,ann@example.com,actve\r\n",
                    encoding="utf-8", newline="")
    data = read_csv(path)
    assert data.source is not None and textsafety.plain_cells(data.source, data.delimiter)
    assert [(p.cell, p.code) for p in check_csv(path, "progression").problems] == [
        ("B3", "required"), ("C3", "duplicate-key"), ("E3", "unknown-status")]
    assert unicodedata.is_normalized("NFC", data.source)


# --- IDs, phones and dates: one regular expression over a column, the parser for the rest ----------------------

_shapeish = st.one_of(
    st.text(alphabet="0123456789 +-()./eExXt", max_size=14),
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", fullmatch=True),
    st.from_regex(r"[+-]?[0-9](\.[0-9]+)?[eE][+-]?[0-9]+", fullmatch=True),
)


@settings(max_examples=300, deadline=None)
@given(_shapeish)
@example("2024-02-28")
@example("2024-02-29")
@example("2023-02-29")
@example("0000-01-01")
@example("1.23E+15")
@example("555 0100 ext 7")
def test_a_shape_vouches_only_for_what_its_parser_decides(text: str) -> None:
    for kind, parse in (("id", codecs.parse_id), ("phone", codecs.parse_phone), ("date", codecs.parse_date)):
        passes, refused = codecs.SHAPES[kind]
        taken = passes.fullmatch(text) is not None if passes is not None else not (refused is not None and refused.fullmatch(text))
        if taken:
            parse(text)  # raises if the shape vouched for a text its parser refuses
        if refused is not None and refused.fullmatch(text):
            try:
                parse(text)
            except codecs.CodecError:
                continue
            raise AssertionError(f"{kind}: {text!r} matches the refused shape but parses")


_SCIM_HEADERS = ["Username", "Employee ID", "Phone", "Start date"]
_RAW_CELLS = st.one_of(_shapeish, st.just(None), st.integers(0, 10**16), st.floats(1, 1e17, allow_nan=False), st.dates(),
                       st.sampled_from(["=1", " 0042 ", "2024-02-30", "ext 5", "\x00", "a\x00b"]))


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(_RAW_CELLS, _RAW_CELLS, _RAW_CELLS), min_size=1, max_size=45))
def test_id_phone_and_date_columns_find_what_each_cell_on_its_own_finds_across_chunks(cells: list[tuple[object, object, object]]) -> None:
    """The column pre-filter (``codecs.SHAPES``), cells that are not text, and the memo of results kept from chunk to
    chunk (10 rows a chunk here) against ``check_value`` on each cell."""
    dialect = load_dialect("scim")
    rows = [[f"user{i}", *row] for i, row in enumerate(cells)]
    saved = checks._CHUNK
    checks._CHUNK = 1  # chunks of 10 rows: a text met again in a later chunk comes from the memo
    try:
        found = check_cells(dialect, _SCIM_HEADERS, rows).problems  # type: ignore[arg-type]
    finally:
        checks._CHUNK = saved
    # Duplicates are the table's, and invisible characters a pass of their own (``_invisible``): the cell checks are compared.
    other = ("required", "required-if-new", "invisible-character")
    got = sorted((p.cell, p.code, p.message) for p in found if p.column in _SCIM_HEADERS[1:] and not p.code.startswith("duplicate") and p.code not in other)
    expected = sorted(
        (p.cell, p.code, p.message)
        for number, row in enumerate(rows, start=2)
        for letter, header, value in zip("BCD", _SCIM_HEADERS[1:], row[1:], strict=True)
        for p in checks.check_value(dialect, header, value, cell=f"{letter}{number}")  # type: ignore[arg-type]
        if p.code not in other
    )
    assert got == expected


def test_the_columns_a_file_is_checked_in_reach_the_cross_checks_whole(tmp_path: Path) -> None:
    """``check_csv`` checks a part of the file at a time: the columns the cross checks then read hold every part's cells
    (a special-use address in the third part is found, as the cell and cross checks run apart find it)."""
    from rosterbook.csvfile import check_csv

    header = "First Name,Last Name,email,position,team,manager,account_active"
    lines = [header, *(f"A,B,{'x@b.internal' if i == 24 else f'u{i}@example.com'},,,{'u3@example.com' if i == 22 else ''},Active" for i in range(27))]
    path = tmp_path / "users.csv"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8", newline="")
    saved = checks._CHUNK
    checks._CHUNK = 1  # parts of 10 rows
    try:
        found = [(p.cell, p.code) for p in check_csv(path, "progression").problems]
    finally:
        checks._CHUNK = saved
    parsed = parse_csv_text(path.read_text(encoding="utf-8"), "users.csv")
    dialect = load_dialect("progression")
    positions, _, _ = map_headers(parsed.headers, dialect, parsed.name)
    apart = check_cells(dialect, parsed.headers, parsed.rows, sheet=parsed.name).problems
    apart += list(cross_checks(columns_of_rows(dialect, parsed.name, parsed.headers, parsed.rows, positions)))
    assert found == [(p.cell, p.code) for p in apart]
    assert ("C26", "special-use-domain") in found


@pytest.mark.parametrize("dialect_name", dialect_names())
def test_the_cross_checks_of_a_plain_file_read_only_the_columns_the_cell_checks_kept(dialect_name: str) -> None:
    """``columns_read`` names every column the cross checks read of a plain file: none is gathered from the rows again
    (each would mean splitting every line of the file once more)."""
    dialect = load_dialect(dialect_name)
    headers = [c.name for c in dialect.columns]
    target = {c.name: c.references for c in dialect.columns if c.references is not None}
    rows = []
    for i in range(3):
        cells = {c.name: f"u{i}@example.com" if c.type == "email" else f"v{i}" for c in dialect.columns}
        rows.append([cells[target[h]] if h in target and target[h] in cells else cells[h] for h in headers])
    text = "\r\n".join([",".join(headers), *(",".join(r) for r in rows)]) + "\r\n"
    parsed = parse_csv_text(text, "users.csv", lazy=True)
    assert parsed.source is not None and textsafety.plain_cells(parsed.source, ",")
    _, columns = check_cells_and_columns(dialect, parsed.headers, parsed.rows, sheet=parsed.name, plain=True)
    asked: list[str] = []
    columns.cells._gather = lambda name: asked.append(name) or []  # type: ignore[attr-defined]
    list(cross_checks(columns))
    assert asked == []
