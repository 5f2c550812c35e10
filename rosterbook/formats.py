"""Recognising files rosterbook cannot read (OpenDocument, Excel 97-2003, Apple Numbers), to say what to do instead.

A user who saves the workbook from LibreOffice, an old Excel or Numbers gets a message naming
the format and the fix ("save it as Excel Workbook (.xlsx)"), not a parser's complaint.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from rosterbook.core.wording import Phrase

XLSX_SAVE = "save it as Excel Workbook (.xlsx)"

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ODS_MIME = b"application/vnd.oasis.opendocument.spreadsheet"


def spreadsheet_kind(data: bytes | Path) -> str | None:
    """``ods``, ``xls``, ``numbers`` or ``xlsx`` when a file's bytes (or the file at a path) are one; else None."""
    if isinstance(data, Path):
        with data.open("rb") as handle:
            head = handle.read(8)
    else:
        head = data[:8]
    if head.startswith(_OLE2):
        return "xls"
    if not head.startswith(b"PK\x03\x04"):
        return None
    try:
        with zipfile.ZipFile(data if isinstance(data, Path) else io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "mimetype" in names and archive.read("mimetype").strip().startswith(_ODS_MIME):
                return "ods"
            if any(n.startswith("Index/") and n.endswith(".iwa") for n in names):
                return "numbers"
            if any(n.startswith("xl/") for n in names):
                return "xlsx"
    except (zipfile.BadZipFile, OSError, KeyError, ValueError):
        return None
    return None


def foreign_message(name: str, kind: str) -> Phrase:
    """What to tell a user whose file is a spreadsheet rosterbook cannot read."""
    if kind == "xlsx":
        stem = name.rsplit(".", 1)[0]
        return lambda w: f"{name}: is an Excel workbook (.xlsx), not a CSV file: give it an .xlsx name and check it as a workbook ({w.check_file(stem + '.xlsx')})."
    text = _foreign_text(name, kind)
    return lambda w: text


def _foreign_text(name: str, kind: str) -> str:
    if kind == "ods":
        return (f"{name}: is an OpenDocument spreadsheet (.ods, from LibreOffice or OpenOffice), which rosterbook cannot read: "
                f"open it in LibreOffice and {XLSX_SAVE} (File > Save As, file type 'Excel 2007-365').")
    if kind == "xls":
        return f"{name}: is an Excel 97-2003 workbook (.xls), which rosterbook cannot read: open it in Excel and {XLSX_SAVE}."
    if kind == "numbers":
        return f"{name}: is an Apple Numbers document, which rosterbook cannot read: in Numbers choose File > Export To > Excel (.xlsx)."
    return f"{name}: is not a file rosterbook can read."


def foreign_workbook(path: Path) -> Phrase | None:
    """A message when ``path`` is a spreadsheet in a format rosterbook cannot read (by content, else by name); None otherwise."""
    if path.is_dir():
        return foreign_message(path.name, "numbers") if path.suffix.casefold() == ".numbers" else None
    try:
        kind = spreadsheet_kind(path)
    except OSError:
        kind = None
    if kind is None:
        kind = {".ods": "ods", ".xls": "xls", ".numbers": "numbers"}.get(path.suffix.casefold())
    return foreign_message(path.name, kind) if kind is not None and kind != "xlsx" else None
