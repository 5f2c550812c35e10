"""The workbook layout over real .xlsx files: Users, snapshot, Settings, Lists, Preview, Sync log."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.books import as_format_2

from rosterbook import workbook as wbk
from rosterbook.core.dialects import load_dialect
from rosterbook.core.problems import Problem
from rosterbook.core.settings import Settings
from rosterbook.core.table import SnapshotRow
from rosterbook.errors import DataError, UsageError
from rosterbook.fastread import FastBook, read_values
from rosterbook.sheets import trim_grid
from rosterbook.xlsx import OpenpyxlBook, build_template
from rosterbook.xlsxpatch import PatchBook

PROGRESSION = load_dialect("progression")
HEADERS = [c.name for c in PROGRESSION.columns]


def _book(tmp_path: Path) -> OpenpyxlBook:
    book = build_template(tmp_path / "book.xlsx", PROGRESSION)
    rows = [
        ["Ann", "Lee", "ann@example.com", "Engineer", "Core", None, "Active"],
        ["Bo", "=HYPERLINK(\"http://evil\",\"x\")", "bo@example.com", None, "Core", "ann@example.com", "Pending"],
        ["Cy", "Ng", "cy@example.com", None, None, None, "Archived"],
    ]
    wbk.write_users(book, PROGRESSION, HEADERS, rows, ["r1", "r2", "r3"])
    snaps = [SnapshotRow(f"r{i}", r[2], None, None, dict(zip(HEADERS, r, strict=True))) for i, r in enumerate(rows, start=1)]
    wbk.write_snapshot(book, snaps)
    book.save()
    return OpenpyxlBook(book.path)


def test_users_round_trip_keeps_row_ids_and_layout_columns(tmp_path: Path) -> None:
    book = _book(tmp_path)
    snapshot = wbk.read_snapshot(book)
    users = wbk.read_users(book, PROGRESSION, snapshot)
    assert users.headers[-3:] == ("Problems", "Sync status", "_row_id")
    assert [r.row_id for r in users.table.rows] == ["r1", "r2", "r3"]
    assert users.table.rows[0].text("email") == "ann@example.com"
    assert users.table.positions["account_active"] == 7
    assert users.problems_col == 8 and users.row_id_col == 10
    assert users.problems == ()


def test_platform_text_that_looks_like_a_formula_stays_inert(tmp_path: Path) -> None:
    book = _book(tmp_path)
    cell = openpyxl.load_workbook(book.path)["Users"]["B3"]
    assert cell.data_type == "s"
    assert cell.value == '=HYPERLINK("http://evil","x")'
    # calamine sees text too (a formula would give its cached result instead)
    assert read_values(book.path, "Users")[2][1] == '=HYPERLINK("http://evil","x")'


def test_row_id_column_is_hidden_and_snapshot_very_hidden(tmp_path: Path) -> None:
    book = _book(tmp_path)
    wb = openpyxl.load_workbook(book.path)
    assert wb["Users"].column_dimensions["J"].hidden is True
    assert wb["_snapshot"].sheet_state == "veryHidden"
    assert wb["Users"].tables["Users"].ref == "A1:J4"
    assert FastBook(book.path).visibility("_snapshot") == "veryHidden"


def test_copied_row_becomes_new_user_and_unknown_id_is_an_error(tmp_path: Path) -> None:
    book = _book(tmp_path)
    book.write_values("Users", 5, 1, [["Di", "Ro", "di@example.com", None, None, None, "Active", None, None, "r1"]])
    book.write_values("Users", 6, 1, [["Ed", "Fu", "ed@example.com", None, None, None, "Active", None, None, "r99"]])
    users = wbk.read_users(book, PROGRESSION, wbk.read_snapshot(book))
    by_number = {r.number: r.row_id for r in users.table.rows}
    assert by_number[5] is None
    assert [(p.cell, p.code, p.severity) for p in users.problems] == [("J5", "copied-row", "warning"), ("J6", "unknown-row-id", "error")]


def test_missing_row_id_column_with_a_snapshot_is_refused(tmp_path: Path) -> None:
    book = _book(tmp_path)
    book.write_values("Users", 1, 10, [["something"]])
    with pytest.raises(DataError, match="hidden '_row_id' column is missing"):
        wbk.read_users(book, PROGRESSION, wbk.read_snapshot(book))


def test_blank_row_with_only_a_row_id_is_a_removed_user(tmp_path: Path) -> None:
    book = _book(tmp_path)
    book.write_values("Users", 3, 1, [[None] * 7])
    users = wbk.read_users(book, PROGRESSION, wbk.read_snapshot(book))
    assert [r.row_id for r in users.table.rows] == ["r1", "r3"]


@pytest.mark.parametrize(
    ("dialect", "cell", "value", "message"),
    [
        ("progression", "B4", "lots", "Settings!B4 subscription_seats: 'lots' is not a whole number."),
        ("edapp", "B5", "yes please", "Settings!B5 invite_new_users: 'yes please' is not one of 'TRUE', 'FALSE'."),
        ("edapp", "B6", "merge", "Settings!B6 list_mode: 'merge' is not one of 'add', 'replace'."),
        ("progression", "B3", "https://hr.example/scim?access_token=abc", "Settings!B3 platform_url: looks like it carries a credential"),
        ("progression", "B3", "ftp://x", "Settings!B3 platform_url: 'ftp://x' is not an http(s) URL."),
        ("progression", "B5", "2", "Settings!B5 deletion_threshold_ratio: '2' is not a number between 0 and 1."),
        ("progression", "A12", "token", "Settings!A12: 'token' is not a setting"),
    ],
)
def test_bad_settings_name_their_cell(tmp_path: Path, dialect: str, cell: str, value: str, message: str) -> None:
    book = _book(tmp_path)
    wbk.write_settings(book, Settings.for_dialect(dialect))
    rows = {r[0]: n for n, r in enumerate(book.values("Settings"), start=1)}
    assert rows["dialect"] == 2  # the layout the parametrized cells rely on
    book.wb["Settings"][cell] = value
    with pytest.raises(DataError) as info:
        wbk.read_settings(book)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("dialect", "shown"),
    [("progression", []), ("scim", []), ("edapp", ["invite_new_users", "list_mode"]), ("incenteev", ["deactivate_missing"]), ("jostle", [])],
)
def test_settings_show_only_the_options_the_dialect_has(tmp_path: Path, dialect: str, shown: list[str]) -> None:
    book = _book(tmp_path)
    wbk.write_settings(book, Settings.for_dialect(dialect))
    names = [r[0] for r in book.values("Settings")[1:]]
    assert [n for n in names if n in ("invite_new_users", "list_mode", "deactivate_missing")] == shown
    assert {"dialect", "platform_url", "subscription_seats", "deletion_threshold_ratio", "deletion_threshold_min"} <= set(names)


def test_an_older_workbook_listing_every_option_is_read_as_before(tmp_path: Path) -> None:
    book = _book(tmp_path)
    old = [["Setting", "Value", "What it means"], ["dialect", "progression"], ["platform_url", None], ["subscription_seats", "40"],
           ["invite_new_users", "FALSE"], ["list_mode", "replace"], ["deactivate_missing", "FALSE"], ["deletion_threshold_ratio", "0.2"],
           ["deletion_threshold_min", "5"], ["layout", "rosterbook-1"]]
    book.clear("Settings", 1)
    book.write_values("Settings", 1, 1, old)
    assert wbk.read_settings(book) == Settings("progression", subscription_seats=40, deletion_threshold_ratio=0.2, deletion_threshold_min=5)


def test_settings_round_trip(tmp_path: Path) -> None:
    book = _book(tmp_path)
    settings = Settings.for_dialect(load_dialect("edapp"), subscription_seats=40, list_mode="add", platform_url=None)
    wbk.write_settings(book, settings)
    assert wbk.read_settings(book) == settings
    assert settings.invite_new_users is False and settings.dialect == "edapp"
    assert not any("token" in str(v).lower() for row in book.values("Settings") for v in row[:2] if v)


DAMAGED = r"_snapshot: the export snapshot was edited, truncated or re-ordered outside rosterbook: "


@pytest.mark.parametrize(
    ("cell", "value", "message"),
    [
        ("C3", "{not json", DAMAGED + r"1 entry does not match its check \(_snapshot!A3\)"),
        ("C2", "[1, 2]", DAMAGED + r"1 entry does not match its check \(_snapshot!A2\)"),
        ("A3", "r1", DAMAGED + r"1 entry does not match its check \(_snapshot!A3\)"),
        ("A1", "id", r"_snapshot!A1: the snapshot sheet's header was changed"),
        ("B4", None, DAMAGED + r"1 entry does not match its check \(_snapshot!A4\)"),
        ("E1", "3:0", DAMAGED + r"its entries are not the ones rosterbook wrote there"),
        ("B3", "0123456789abcdef", DAMAGED + r"1 entry does not match its check \(_snapshot!A3\)"),
        ("A5", "r4", DAMAGED + r"1 entry does not match its check \(_snapshot!A5\)"),  # a line added
    ],
)
@pytest.mark.parametrize("old_format", [False, True])
def test_edited_snapshot_is_a_clear_error(tmp_path: Path, cell: str, value: str | None, message: str, old_format: bool) -> None:
    book = _book(tmp_path)
    if old_format:
        as_format_2(book.wb["_snapshot"])
    book.wb["_snapshot"][cell] = value
    with pytest.raises(DataError, match=message):
        wbk.read_snapshot(book)


@pytest.mark.parametrize("old_format", [False, True])
def test_snapshot_lines_moved_intact_are_a_clear_error(tmp_path: Path, old_format: bool) -> None:
    book = _book(tmp_path)
    ws = book.wb["_snapshot"]
    if old_format:
        as_format_2(ws)
    assert wbk.read_snapshot_sheet(book).problem is None
    second, third = [c.value for c in ws[2]], [c.value for c in ws[3]]
    for column, (a, b) in enumerate(zip(second, third, strict=True), start=1):
        ws.cell(2, column).value, ws.cell(3, column).value = b, a  # each line still matches its own check
    with pytest.raises(DataError, match=DAMAGED + "its entries are not the ones rosterbook wrote there"):
        wbk.read_snapshot(book)
    lenient = wbk.read_snapshot_sheet(book, lenient=True)
    assert lenient.damaged == () and set(lenient.rows) == {"r1", "r2", "r3"}


def test_a_legacy_snapshot_is_read_and_rewritten_with_checks(tmp_path: Path) -> None:
    book = _book(tmp_path)
    snaps = wbk.read_snapshot(book)
    ws = book.wb["_snapshot"]
    ws.delete_rows(1, ws.max_row)
    ws.append(list(wbk.SNAPSHOT_HEADERS))
    for snap in snaps.values():
        ws.append([snap.row_id, snap.key, snap.resource_id, snap.version, json.dumps(dict(snap.values))])
    legacy = wbk.read_snapshot_sheet(book)
    assert legacy.legacy and legacy.rows == snaps
    moved = {"r2": SnapshotRow("r2", "bo@example.com", None, None, {**snaps["r2"].values, "team": "Moved"})}
    wbk.update_snapshot(book, moved, sheet=legacy)
    again = wbk.read_snapshot_sheet(book)
    assert not again.legacy and again.rows == {**snaps, **moved}


def test_snapshot_entries_of_any_size_and_text_round_trip(tmp_path: Path) -> None:
    odd = "Ctrl\x01\x02 \ud800 lone, \U0001F600 astral, \x85 C1, \r\n CRLF " + "long " * 20_000
    snaps = [SnapshotRow(f"r{i}", f"user{i}\x07", f"id{i}", 'W/"1"', {"First Name": odd, "team": None, "email": f"u{i}@x"}) for i in range(1, 4)]
    book = _book(tmp_path)
    wbk.write_snapshot(book, snaps)
    book.save()
    fresh = OpenpyxlBook(book.path)
    assert list(wbk.read_snapshot(fresh).values()) == snaps
    grid = fresh.values("_snapshot")
    assert all(isinstance(c, str) and len(c) <= 32767 and c.isascii() for row in grid[1:] for c in row if c is not None)
    # A changed entry shrinks: its trailing cells are cleared, the digest follows.
    short = SnapshotRow("r2", "user2", "id2", 'W/"2"', {"email": "u2@x"})
    wbk.update_snapshot(fresh, {"r2": short}, ["r3"])
    fresh.save()
    assert list(wbk.read_snapshot(OpenpyxlBook(book.path)).values()) == [snaps[0], short]


def test_problems_written_marked_and_cleared(tmp_path: Path) -> None:
    book = _book(tmp_path)
    users = wbk.read_users(book, PROGRESSION, wbk.read_snapshot(book))
    first = [
        Problem("error", "Users", "G2", 2, "account_active", "actve", "unknown-status", "'actve' is not one of 'Active', 'Pending', 'Archived'.", "Active"),
        Problem("warning", "Users", "E3", 3, "team", "Core", "unknown-team", "'Core' is not a team on the platform."),
    ]
    wbk.write_problems(book, users, first)
    book.save()
    wb = openpyxl.load_workbook(book.path)
    ws = wb["Users"]
    assert ws["H2"].value == "G2 account_active: 'actve' is not one of 'Active', 'Pending', 'Archived'. Did you mean 'Active'?"
    assert ws["H3"].value == "(warning) E3 team: 'Core' is not a team on the platform."
    assert ws["G2"].fill.start_color.rgb.endswith("FFC7CE") and ws["G2"].comment is not None
    assert ws["E3"].fill.start_color.rgb.endswith("FFEB9C")
    # a second check with only the warning left clears G2's mark and H2's text
    book = OpenpyxlBook(book.path)
    wbk.write_problems(book, wbk.read_users(book, PROGRESSION), first[1:])
    ws = book.wb["Users"]
    assert ws["H2"].value is None
    assert ws["G2"].comment is None and ws["G2"].fill.fill_type is None
    assert ws["E3"].comment is not None


def test_sync_status_and_row_ids_written(tmp_path: Path) -> None:
    book = _book(tmp_path)
    users = wbk.read_users(book, PROGRESSION)
    wbk.write_sync_status(book, users, {3: "updated", 5: "created"})
    wbk.set_row_ids(book, users, {5: "r4"})
    grid = book.values("Users")
    assert [row[8] for row in grid[1:]] == [None, "updated", None, "created"]
    assert grid[4][9] == "r4"


def test_lists_round_trip_and_ranges(tmp_path: Path) -> None:
    book = _book(tmp_path)
    lists = {"account_active": ["Active", "Pending", "Archived"], "team": ["Core", "Sales"]}
    wbk.write_lists(book, lists)
    assert wbk.read_lists(book) == lists
    assert wbk.list_range(lists, "team") == "'Lists'!$B$2:$B$3"
    assert wbk.list_range(lists, "nothing") is None


def test_sync_log_appends(tmp_path: Path) -> None:
    book = _book(tmp_path)
    wbk.append_sync_log(book, [wbk.LogEntry("t1", 2, "ann@example.com", "update", "ok", "id1", 'W/"2"', 200)])
    wbk.append_sync_log(book, [wbk.LogEntry("t2", 3, "bo@example.com", "create", "failed", http_status=409, message="taken",
                                            sync_id="20261123-101502-3f9a0c")])
    grid = book.values("Sync log")
    assert grid[0] == list(wbk.SYNC_LOG_HEADERS)
    assert [r[0] for r in grid[1:]] == ["t1", "t2"]
    assert grid[2][4:] == ["failed", None, None, "409", "taken", "20261123-101502-3f9a0c"]


def test_preview_sheet_lists_changed_fields(tmp_path: Path) -> None:
    book = _book(tmp_path)
    plan = {
        "counts": {"create": 1, "update": 1, "unchanged": 1},
        "changes": [
            {"action": "update", "row": 2, "key": "ann@example.com", "fields": {"team": {"from": "Core", "to": "Sales"}}},
            {"action": "unchanged", "row": 3, "key": "bo@example.com", "fields": {}},
            {"action": "create", "row": 5, "key": "di@example.com", "fields": {"email": {"from": None, "to": "di@example.com"}}},
        ],
    }
    wbk.write_preview(book, plan)
    grid = book.values("Preview")
    assert ["create", 1] in [r[:2] for r in grid] and ["update", 1] in [r[:2] for r in grid]
    assert [2, "ann@example.com", "update", "team", "Core", "Sales", None] in grid
    assert not any(r and r[0] == 3 for r in grid)


def test_fastread_gives_openpyxl_values(tmp_path: Path) -> None:
    path = tmp_path / "types.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Users"
    ws.append(["text", "int", "float", "bool", "date", "blank", "zeros"])
    ws.append(["Zoë 李", 42, 1.5, True, dt.datetime(2024, 2, 29), None, "00123"])
    ws.append([None, -7, 1e20, False, dt.datetime(1999, 12, 31, 13, 45), None, "+44 20"])
    ws["J9"] = None  # formatted-but-empty cells do not widen the range
    ws["J9"].number_format = "@"
    wb.create_sheet("Hidden").sheet_state = "hidden"
    wb.save(path)
    fast = FastBook(path)
    slow = OpenpyxlBook(path)
    assert fast.sheet_names() == slow.sheet_names()
    for sheet in fast.sheet_names():
        assert fast.values(sheet) == slow.values(sheet)
    assert fast.visibility("Hidden") == "hidden"
    assert fast.has_formulas("Users") is False


def test_fastread_streams_the_rows_it_gives_and_shares_equal_texts(tmp_path: Path) -> None:
    path = tmp_path / "offset.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Data"
    ws["C3"], ws["D4"], ws["E5"], ws["C6"] = "Core", "Core", 2, "Core"  # calamine's used range starts at C3
    wb.create_sheet("Empty")
    wb.save(path)
    fast, slow = FastBook(path), OpenpyxlBook(path)
    for sheet in ("Data", "Empty"):
        assert fast.values(sheet) == slow.values(sheet)
        assert trim_grid(list(fast.iter_values(sheet))) == slow.values(sheet)
    grid = fast.values("Data")
    assert grid[2][2] is grid[3][3] is grid[5][2] is fast.strings["Core"]  # one object per distinct text


@pytest.mark.parametrize("damage", ["none", "moved", "stray", "edited"])
def test_the_snapshot_streamed_is_the_snapshot_read_whole(tmp_path: Path, damage: str) -> None:
    book = _book(tmp_path)
    ws = book.wb["_snapshot"]
    if damage == "moved":  # row 2 moved below the last entry: a blank row in the middle
        ws.move_range("A2:E2", rows=ws.max_row)
    elif damage == "stray":  # a value right of the entries, below the last one
        ws["G9"] = "stray"
    elif damage == "edited":
        ws["C3"] = str(ws["C3"].value).replace("Bo", "Bob")
    book.save()
    streamed = wbk.read_snapshot_sheet(FastBook(book.path), lenient=True)
    whole = wbk.read_snapshot_sheet(PatchBook(book.path), lenient=True)  # PatchBook reads the sheet whole
    assert streamed == whole
    assert (streamed.problem is None) == (damage in ("none", "stray"))
    assert streamed.last == {"none": 4, "moved": 6, "stray": 9, "edited": 4}[damage]


def test_snapshot_entries_share_column_names_and_values_with_the_users_cells(tmp_path: Path) -> None:
    fast = FastBook(_book(tmp_path).path)
    snapshot = wbk.read_snapshot_sheet(fast).rows
    users = fast.values("Users")
    ann, bo = snapshot["r1"].values, snapshot["r2"].values
    assert all(a is b for a, b in zip(ann, bo, strict=True))  # column names: one object each, not one per entry
    assert ann["team"] is bo["team"] is users[1][4] is users[2][4]  # "Core": one object in both entries and both cells
    assert snapshot["r1"].key is ann["email"] is users[1][2]


def test_fastread_is_read_only_and_refuses_non_workbooks(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xlsx"
    bad.write_text("not a zip")
    with pytest.raises(UsageError, match=r"cannot be read as an \.xlsx workbook"):
        FastBook(bad)
    with pytest.raises(UsageError, match=r"cannot be read as an \.xlsx workbook"):
        OpenpyxlBook(bad)
    (tmp_path / "x.csv").write_text("a")
    with pytest.raises(UsageError, match=r"not an \.xlsx workbook"):
        OpenpyxlBook(tmp_path / "x.csv")
    good = build_template(tmp_path / "good.xlsx", PROGRESSION)
    good.save()
    with pytest.raises(UsageError, match="read-only"):
        FastBook(good.path).write_values("Users", 1, 1, [["x"]])


def test_next_row_ids_never_collide() -> None:
    assert wbk.next_row_ids(["r1", "r7", "x", "r"], 2) == ["r8", "r9"]
    assert wbk.next_row_ids([], 1) == ["r1"]


def test_the_patching_book_reads_strings_and_formulas_as_openpyxl_does(tmp_path: Path) -> None:
    from openpyxl.cell.rich_text import CellRichText, TextBlock
    from openpyxl.cell.text import InlineFont

    from rosterbook.xlsxpatch import PatchBook

    path = tmp_path / "strings.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Users"
    ws.append(["  padded  ", "Zoë 李", "", "=not a formula", 12, "line\nbreak"])
    ws["C1"].value = CellRichText("plain ", TextBlock(InlineFont(b=True), "bold"), " tail")
    ws["D1"].data_type = "s"
    ws["A2"] = "=1+2"  # a real formula reads as its text, as openpyxl gives it (calamine alone gives its cached result)
    wb.save(path)
    plain = openpyxl.load_workbook(path, rich_text=False)["Users"]
    grid = PatchBook(path).values("Users")
    for row in plain.iter_rows():
        for cell in row:
            assert grid[cell.row - 1][cell.column - 1] == (cell.value if cell.value != "" else None), cell.coordinate
    assert grid[0][2] == "plain bold tail" and grid[1][0] == "=1+2"


def test_reads_before_a_write_do_not_load_openpyxl(tmp_path: Path) -> None:
    book = _book(tmp_path)
    fresh = OpenpyxlBook(book.path)
    users = wbk.read_users(fresh, PROGRESSION, wbk.read_snapshot(fresh))
    assert len(users.table.rows) == 3 and not fresh.loaded
    wbk.write_sync_status(fresh, users, {2: "updated"})
    assert fresh.loaded and fresh.values("Users")[1][8] == "updated"


def test_update_snapshot_rewrites_only_changed_rows_of_a_format_2_sheet(tmp_path: Path) -> None:
    book = _book(tmp_path)
    as_format_2(book.wb[wbk.SNAPSHOT])  # as written before the updates sheet: its digest is a sum over the lines
    before = wbk.read_snapshot(book)
    changed = {
        "r2": SnapshotRow("r2", "bo@example.com", "id-2", 'W/"5"', {**before["r2"].values, "team": "Sales"}),
        "r9": SnapshotRow("r9", "new@example.com", "id-9", 'W/"1"', {"email": "new@example.com"}),
    }
    wbk.update_snapshot(book, changed, removed=["r3"])
    after = wbk.read_snapshot(book)
    assert after["r1"] == before["r1"]
    assert after["r2"] == changed["r2"] and after["r9"] == changed["r9"]
    assert "r3" not in after
    assert [row[0] for row in book.values("_snapshot")] == ["row_id", "r1", "r2", None, "r9"]
    assert wbk.read_snapshot_sheet(book).format == "rosterbook-snapshot-2"


def test_update_snapshot_writes_a_small_format_3_sheet_whole(tmp_path: Path) -> None:
    book = _book(tmp_path)
    before = wbk.read_snapshot(book)
    changed = {"r9": SnapshotRow("r9", "new@example.com", "id-9", 'W/"1"', {"email": "new@example.com"})}
    wbk.update_snapshot(book, changed, removed=["r2"])
    assert [row[0] for row in book.values("_snapshot")] == ["row_id", "r1", "r3", "r9"]  # no blank line left behind
    assert wbk.read_snapshot(book) == {"r1": before["r1"], "r3": before["r3"], "r9": changed["r9"]}


def test_exported_id_cells_are_text_formatted(tmp_path: Path) -> None:
    jostle = load_dialect("jostle")
    book = build_template(tmp_path / "j.xlsx", jostle)
    headers = [c.name for c in jostle.columns]
    row = [None] * len(headers)
    row[headers.index("Username")] = "ann"
    row[headers.index("Employee ID")] = "00123"
    wbk.write_users(book, jostle, headers, [row], ["r1"])
    book.save()
    ws = openpyxl.load_workbook(book.path)["Users"]
    letter = openpyxl.utils.get_column_letter(headers.index("Employee ID") + 1)
    cell = ws[f"{letter}2"]
    # Excel keeps what a user types into this cell as text: '00124' stays '00124'.
    assert (cell.value, cell.number_format) == ("00123", "@")
    assert ws["A2"].number_format == "General"


def test_big_new_sheets_written_into_the_file_read_back_the_same(tmp_path: Path) -> None:
    from rosterbook import xlsx

    scim = load_dialect("scim")
    headers = [c.name for c in scim.columns]
    rows: list[list[str | None]] = []
    for i in range(xlsx._BULK_MIN + 10):
        row: list[str | None] = [None] * len(headers)
        row[headers.index("Username")] = f"user{i}"
        row[headers.index("First name")] = " Zoë & <Ann> " if i % 7 == 0 else f"Name{i}"
        row[headers.index("Employee ID")] = f"{i:06d}" if i % 3 else None
        row[headers.index("Job title")] = '=HYPERLINK("x")' if i == 5 else "line\nbreak" if i == 6 else None
        rows.append(row)
    ids = [f"r{i}" for i in range(1, len(rows) + 1)]
    fast = build_template(tmp_path / "fast.xlsx", scim)
    wbk.write_users(fast, scim, headers, rows, ids)
    assert wbk.USERS in fast._bulk  # the big block went straight into the file
    fast.save()
    slow = build_template(tmp_path / "slow.xlsx", scim)
    slow._new = False  # the plain openpyxl path
    wbk.write_users(slow, scim, headers, rows, ids)
    assert not slow._bulk
    slow.save()
    for reader in (lambda p: openpyxl.load_workbook(p)["Users"], lambda p: OpenpyxlBook(p).wb["Users"]):
        a, b = reader(fast.path), reader(slow.path)
        assert [[(c.value, c.data_type, c.number_format) for c in r] for r in a.iter_rows()] == \
               [[(c.value, c.data_type, c.number_format) for c in r] for r in b.iter_rows()]
    assert FastBook(fast.path).values("Users") == FastBook(slow.path).values("Users")
    assert openpyxl.load_workbook(fast.path)["Users"].tables["Users"].ref == openpyxl.load_workbook(slow.path)["Users"].tables["Users"].ref


def test_a_prefetched_sheet_reads_as_the_sheet_read_in_turn(tmp_path: Path) -> None:
    """FastBook.prefetch parses a sheet on another thread (with a reader of its own): the values, merged cells and shared
    texts are the ones a plain read gives, and the PatchBook over the file prefetches through it."""
    path = tmp_path / "merged.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Users"
    for n in range(1, 400):
        ws.append([f"user{n}", "Sales" if n % 2 else "Ops", n, dt.datetime(2024, 1, 1 + n % 28)])
    ws.merge_cells("F2:G3")
    wb.create_sheet("Other")["A1"] = "Sales"
    wb.save(path)
    plain = FastBook(path)
    fast = FastBook(path)
    fast.prefetch("Users")
    fast.prefetch("Users")  # a second call is a no-op
    fast.prefetch("No such sheet")  # nothing to parse: a read of it still says KeyError
    assert fast.values("Other") == [["Sales"]]
    assert fast.values("Users") == plain.values("Users")
    assert fast.merged_ranges("Users") == plain.merged_ranges("Users") == [(2, 6, 3, 7)]
    assert fast.values("Users")[0][1] is fast.strings["Sales"]
    with pytest.raises(KeyError):
        fast.values("No such sheet")
    fast.close()
    patched = PatchBook(path)
    patched.prefetch("Users")
    assert patched.values("Users") == plain.values("Users")


def test_a_prefetched_sheet_that_cannot_be_read_fails_as_a_plain_read_does(tmp_path: Path) -> None:
    """An error met on the prefetching thread (a sheet too large to read, a damaged sheet) is raised by the read that
    wanted the sheet, with the message a plain read gives."""
    far = tmp_path / "far.xlsx"
    _far_book("Users").save(far)
    messages = _read_errors(far)
    assert messages[0] == messages[1] and "too large to read" in messages[0]
    damaged = tmp_path / "damaged.xlsx"
    import zipfile

    with zipfile.ZipFile(far) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"XFD1048576", b"B1")[: len(data) // 2]  # cut half-way through the XML
            target.writestr(item, data)
    messages = _read_errors(damaged)
    assert messages[0] == messages[1] and "cannot be read as an .xlsx workbook (sheet 'Users')" in messages[0]


def test_sheets_prefetched_together_are_parsed_in_turn_and_fail_one_by_one(tmp_path: Path) -> None:
    """``FastBook.prefetch(*sheets)``: one thread parses them in the order given, each readable once parsed; a sheet
    that cannot be read fails its own read with a plain read's message, and the sheets after it are still read."""
    path = tmp_path / "three.xlsx"
    wb = _far_book("Far")
    for name in ("Users", "Other"):
        sheet = wb.create_sheet(name)
        for n in range(1, 300):
            sheet.append([f"{name}{n}", "Sales" if n % 2 else "Ops", n])
    wb.save(path)
    plain = FastBook(path)
    fast = FastBook(path)
    fast.prefetch("Far", "Users", "Far", "No such sheet", "Other")
    assert [t.name for t in fast._threads] == ["prefetch Far, Users, Other"]
    assert fast.values("Other") == plain.values("Other")  # read before the one parsed ahead of it: still its own values
    assert fast.values("Users") == plain.values("Users")
    with pytest.raises(UsageError, match="too large to read"):
        fast.values("Far")
    fast.close()


def _far_book(title: str) -> openpyxl.Workbook:
    """A workbook whose one sheet, ``title``, holds a stray value at XFD1048576: a used range too large to read."""
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title
    ws["A1"], ws["XFD1048576"] = "Username", "x"
    return wb


def _read_errors(path: Path) -> list[str]:
    """The error of reading the Users sheet in turn, then of reading it prefetched."""
    messages = []
    for prefetch in (False, True):
        book = FastBook(path)
        if prefetch:
            book.prefetch("Users")
        with pytest.raises(UsageError) as caught:
            book.values("Users")
        messages.append(str(caught.value))
    return messages


_ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)  # lone surrogates and controls too


@settings(max_examples=150, deadline=None)
@given(
    key=_ANY_TEXT,
    resource_id=st.none() | _ANY_TEXT,
    version=st.none() | _ANY_TEXT,
    values=st.dictionaries(_ANY_TEXT, st.none() | _ANY_TEXT, max_size=5),
    seen=st.dictionaries(_ANY_TEXT, st.none() | _ANY_TEXT, max_size=2),
)
def test_a_snapshot_entry_reads_back_exactly_whatever_its_text(key: str, resource_id: str | None, version: str | None,
                                                               values: dict[str, str | None], seen: dict[str, str | None]) -> None:
    """The entry text (orjson reads it; json what orjson refuses, such as a lone surrogate's escape) gives back the very
    entry written, and with a memo each value is the memo's one object."""
    snap = SnapshotRow("r1", key, resource_id, version, values, seen)
    text = wbk.encode_entry(snap)
    assert json.loads(text) == json.loads(json.dumps(json.loads(text)))  # plain JSON any reader takes
    assert wbk.decode_entry("r1", text) == snap
    memo: dict[str, str] = {}
    shared = wbk.decode_entry("r1", text, memo)
    assert shared == snap
    assert all(v is None or memo[v] is v for v in shared.values.values())


@pytest.mark.parametrize("text", [
    '{"key":"a","id":null,"version":null,"values":{"Name":NaN}}',
    '{"key":"a","id":null,"version":null,"values":{"Name":1}}',
    '{"key":"a","id":null,"version":null,"values":{"Name":["x"]}}',
    '{"key":"a","id":null,"version":null,"values":{"Name":"x"},"seen":{"Name":true}}',
    '{"key":"a","id":7,"version":null,"values":{}}',
    '{"key":null,"id":null,"version":null,"values":{}}',
    '{"key":"a","id":null,"version":null,"values":[]}',
    '["key"]',
    '{"key":"a","id":null,"version":null,"values":{}',
    '{"key":"a","id":null,"version":null,"values":{"Name":"\\ud800"}} trailing',
])
def test_a_snapshot_entry_that_is_not_one_is_refused(text: str) -> None:
    """What is not an entry of texts (a number, NaN, a list, a cut or padded text) raises ValueError, read by either parser."""
    with pytest.raises(ValueError):
        wbk.decode_entry("r1", text)
