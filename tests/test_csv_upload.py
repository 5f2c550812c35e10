"""The upload-file writer: the dialect's encoding, delimiter and line ends; injection-safe; atomic."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from rosterbook.core.dialects import Dialect, load_dialect
from rosterbook.errors import UsageError
from sync_client.csv_upload import render_upload, write_upload

PROGRESSION = load_dialect("progression")


def variant(**changes: object) -> Dialect:
    return Dialect.model_validate({**PROGRESSION.model_dump(), **changes})


def test_writes_exact_bytes_in_the_dialects_format(tmp_path: Path) -> None:
    dialect = variant(encoding="utf-8-sig", delimiter=";", line_terminator="\r\n")
    path = write_upload(tmp_path / "up.csv", ["email", "first_name"], [["zoë@example.org", "Zoë; Ann"], ["b@example.org", None]], dialect)
    assert path == tmp_path / "up.csv"
    assert path.read_bytes() == "\ufeffemail;first_name\r\nzoë@example.org;\"Zoë; Ann\"\r\nb@example.org;\r\n".encode()


def test_plain_utf8_has_no_bom_and_round_trips(tmp_path: Path) -> None:
    rows = [["a@example.org", 'He said "hi"\nbye'], ["b@example.org", "Main|HQ"]]
    path = write_upload(tmp_path / "up.csv", ["email", "note"], rows, PROGRESSION)
    data = path.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    assert list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""))) == [["email", "note"], *rows]


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTab", "'\tTab"),
        ("+44 20 7946 0000", "+44 20 7946 0000"),  # a phone number stays as it is
        ("+44 20 7946 0000 ext. 12", "+44 20 7946 0000 ext. 12"),  # with its extension too
        ("+1 (416) 555-0100 x42", "+1 (416) 555-0100 x42"),
        ("-Head of Ops", "'-Head of Ops"),
        ("-12", "-12"),
        ("plain", "plain"),
    ],
)
def test_every_cell_is_neutralised(tmp_path: Path, cell: str, written: str) -> None:
    path = write_upload(tmp_path / "up.csv", ["email", "=title"], [["a@example.org", cell]], PROGRESSION)
    header, row = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    assert header == ["email", "'=title"]
    assert row == ["a@example.org", written]


def test_replaces_an_existing_file_atomically(tmp_path: Path) -> None:
    target = tmp_path / "up.csv"
    target.write_text("old contents", encoding="utf-8")
    write_upload(target, ["email"], [["new@example.org"]], PROGRESSION)
    assert target.read_bytes() == b"email\r\nnew@example.org\r\n"
    assert sorted(os.listdir(tmp_path)) == ["up.csv"]  # no temporary file left behind


def test_a_failed_write_leaves_the_old_file_and_no_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "up.csv"
    target.write_text("old contents", encoding="utf-8")
    with pytest.raises(ValueError, match="upload row 3 has 1 cells for 2 headers"):
        write_upload(target, ["email", "name"], [["a@example.org", "A"], ["short"]], PROGRESSION)
    assert target.read_text(encoding="utf-8") == "old contents"
    assert sorted(os.listdir(tmp_path)) == ["up.csv"]


def test_text_the_encoding_cannot_hold_is_a_clear_error() -> None:
    dialect = variant(encoding="cp1252")
    with pytest.raises(UsageError, match=r"^upload row 2, column 'name': '张伟' cannot be written in cp1252, the encoding Progression expects.$"):
        render_upload(["email", "name"], [["a@example.org", "张伟"]], dialect)


def test_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"the folder .* does not exist"):
        write_upload(tmp_path / "nope" / "up.csv", ["email"], [], PROGRESSION)
