"""What Excel checks when it opens an .xlsx, as far as a test can check it without Excel.

Excel "repairs" (drops parts of) a package whose pieces disagree: a content type missing, a
relationship pointing nowhere, a worksheet's elements out of the schema's order, rows or cells out
of order, a style index past the list of formats, a note without its VML shape, a Table whose column
names are not its header cells. ``package_problems`` lists every such disagreement it finds.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from pathlib import Path

from lxml import etree

from rosterbook.ooxml import WORKSHEET_ORDER, column_index, parse_area, parse_ref, resolve

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
M = f"{{{MAIN}}}"
_RANK = {name: i for i, name in enumerate(WORKSHEET_ORDER)}
_PARSER = etree.XMLParser(huge_tree=True, resolve_entities=False)


def package_problems(path: str | Path) -> list[str]:
    """Every inconsistency found in the package at ``path`` (empty: nothing Excel would repair, as far as checked)."""
    out: list[str] = []
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if len(names) != len(set(names)):
            out.append("duplicate zip members")
        lower = {n.lower(): n for n in names}

        def read(name: str) -> bytes:
            return archive.read(lower[name.lower()])

        def has(name: str) -> bool:
            return name.lower() in lower

        types = etree.fromstring(read("[Content_Types].xml"), _PARSER)
        defaults = {(n.get("Extension") or "").lower() for n in types if etree.QName(n).localname == "Default"}
        overrides = {(n.get("PartName") or "").lower(): n.get("ContentType") for n in types if etree.QName(n).localname == "Override"}
        for part in overrides:
            if not has(part.lstrip("/")):
                out.append(f"content type for a missing part {part}")
        for name in names:
            if name.endswith("/") or name == "[Content_Types].xml":
                continue
            if "/" + name.lower() not in overrides and name.rsplit(".", 1)[-1].lower() not in defaults:
                out.append(f"no content type for {name}")

        rels: dict[str, dict[str, tuple[str, str]]] = {}
        for name in names:
            if not name.endswith(".rels"):
                continue
            folder = posixpath.dirname(posixpath.dirname(name))
            source = posixpath.join(folder, posixpath.basename(name)[: -len(".rels")])
            entries: dict[str, tuple[str, str]] = {}
            for node in etree.fromstring(read(name), _PARSER):
                rid = node.get("Id") or ""
                if rid in entries:
                    out.append(f"{name}: relationship id {rid} twice")
                if node.get("TargetMode") == "External":
                    continue
                target = resolve(source if posixpath.basename(name) != ".rels" else "", node.get("Target") or "")
                entries[rid] = (node.get("Type") or "", target)
                if not has(target):
                    out.append(f"{name}: {rid} points to a missing part {target}")
            rels[source] = entries

        workbook = next((t for ty, t in rels.get("", {}).values() if ty.endswith("/officeDocument")), "xl/workbook.xml")
        book = etree.fromstring(read(workbook), _PARSER)
        sheet_nodes = book.findall(f"{M}sheets/{M}sheet")
        seen_names: set[str] = set()
        seen_ids: set[str] = set()
        sheets: list[tuple[str, str]] = []
        for node in sheet_nodes:
            name, sheet_id = node.get("name") or "", node.get("sheetId") or ""
            if name.casefold() in seen_names:
                out.append(f"sheet name {name!r} twice")
            if sheet_id in seen_ids:
                out.append(f"sheetId {sheet_id} twice")
            seen_names.add(name.casefold())
            seen_ids.add(sheet_id)
            rel = rels.get(workbook, {}).get(node.get(f"{{{REL}}}id") or "")
            if rel is None:
                out.append(f"sheet {name!r}: its relationship is missing")
                continue
            if rel[0].endswith("/worksheet"):
                sheets.append((name, rel[1]))
        view = book.find(f"{M}bookViews/{M}workbookView")
        if view is not None and sheet_nodes:
            active = int(view.get("activeTab") or 0)
            if active >= len(sheet_nodes) or (sheet_nodes[active].get("state") or "visible") != "visible":
                out.append("the active tab is not a visible sheet")

        styles_part = next((t for ty, t in rels.get(workbook, {}).values() if ty.endswith("/styles")), None)
        xf_count = fill_count = 0
        if styles_part is not None:
            styles = etree.fromstring(read(styles_part), _PARSER)
            xfs = styles.find(f"{M}cellXfs")
            fills = styles.find(f"{M}fills")
            xf_count = len(xfs) if xfs is not None else 0
            fill_count = len(fills) if fills is not None else 0
            for element, count in ((xfs, xf_count), (fills, fill_count)):
                if element is not None and element.get("count") is not None and int(element.get("count") or 0) != count:
                    out.append(f"styles: {etree.QName(element).localname} count {element.get('count')} but {count} entries")
            for index, xf in enumerate(xfs if xfs is not None else ()):
                if int(xf.get("fillId") or 0) >= fill_count:
                    out.append(f"styles: format {index} names fill {xf.get('fillId')} of {fill_count}")
        shared = 0
        sst_part = next((t for ty, t in rels.get(workbook, {}).values() if ty.endswith("/sharedStrings")), None)
        if sst_part is not None:
            shared = len(etree.fromstring(read(sst_part), _PARSER).findall(f"{M}si"))

        shape_ids: dict[str, str] = {}
        for name, part in sheets:
            where = f"{name!r}"
            root = etree.fromstring(read(part), _PARSER)
            ranks = [_RANK.get(etree.QName(child).localname, _RANK["oleObjects"]) for child in root if isinstance(child.tag, str)]
            if ranks != sorted(ranks):
                out.append(f"{where}: elements out of the schema's order: {[etree.QName(c).localname for c in root if isinstance(c.tag, str)]}")
            last_row = 0
            header: dict[int, str] = {}
            for row in root.iterfind(f"{M}sheetData/{M}row"):
                number = int(row.get("r") or last_row + 1)
                if number <= last_row:
                    out.append(f"{where}: row {number} after row {last_row}")
                last_row = number
                last_col = 0
                for cell in row.iterfind(f"{M}c"):
                    ref = cell.get("r")
                    r, c = parse_ref(ref) if ref else (number, last_col + 1)
                    if r != number:
                        out.append(f"{where}: cell {ref} in row {number}")
                    if c <= last_col:
                        out.append(f"{where}: cell {ref} out of order")
                    last_col = c
                    style = int(cell.get("s") or 0)
                    if style and style >= xf_count:
                        out.append(f"{where}: cell {ref} has format {style} of {xf_count}")
                    value = cell.find(f"{M}v")
                    if cell.get("t") == "s" and value is not None and int(value.text or 0) >= shared:
                        out.append(f"{where}: cell {ref} names shared string {value.text} of {shared}")
                    if number == 1:
                        text = "".join(cell.itertext()) if cell.get("t") == "inlineStr" else (value.text if value is not None else "")
                        if cell.get("t") == "s" and value is not None:
                            text = "".join(etree.fromstring(read(sst_part or ""), _PARSER).findall(f"{M}si")[int(value.text or 0)].itertext())
                        header[c] = text or ""
            sheet_rels = rels.get(part, {})
            legacy = root.find(f"{M}legacyDrawing")
            comments = [t for ty, t in sheet_rels.values() if ty.endswith("/comments")]
            if comments and legacy is None:
                out.append(f"{where}: notes without a legacyDrawing")
            if legacy is not None:
                vml_rel = sheet_rels.get(legacy.get(f"{{{REL}}}id") or "")
                if vml_rel is None:
                    out.append(f"{where}: legacyDrawing names a missing relationship")
                elif comments:
                    vml = read(vml_rel[1])
                    shapes = set()
                    # Within one drawing (openpyxl itself numbers each sheet's drawing from the same first id, and Excel copes).
                    shape_ids.clear()
                    for shape in re.finditer(rb"<([\w.-]+):shape\b.*?</\1:shape>", vml, re.S):
                        body = shape.group(0)
                        # Excel numbers its shapes _x0000_s<n>; LibreOffice names every shape "shape_0" (and Excel copes).
                        sid = re.search(rb'\sid="(_x0000_s\d+)"', body)
                        if sid is not None:
                            key = sid.group(1).decode()
                            if key in shape_ids:
                                out.append(f"{where}: VML shape id {key} also in {shape_ids[key]}")
                            shape_ids[key] = where
                        place = re.search(rb"<(?:[\w.-]+:)?Row>(\d+)</(?:[\w.-]+:)?Row>\s*<(?:[\w.-]+:)?Column>(\d+)<", body)
                        if b'ObjectType="Note"' in body and place is not None:
                            shapes.add((int(place.group(1)) + 1, int(place.group(2)) + 1))
                    notes = etree.fromstring(read(comments[0]), _PARSER)
                    authors = len(notes.findall(f"{M}authors/{M}author"))
                    for comment in notes.iterfind(f"{M}commentList/{M}comment"):
                        ref = comment.get("ref") or ""
                        if parse_ref(ref) not in shapes:
                            out.append(f"{where}: note {ref} has no VML shape")
                        if int(comment.get("authorId") or 0) >= authors:
                            out.append(f"{where}: note {ref} names a missing author")
            for ty, target in sheet_rels.values():
                if not ty.endswith("/table"):
                    continue
                table = etree.fromstring(read(target), _PARSER)
                ref = table.get("ref") or ""
                r1, c1, _, c2 = parse_area(ref)
                columns = table.findall(f"{M}tableColumns/{M}tableColumn")
                if len(columns) != c2 - c1 + 1:
                    out.append(f"{where}: table {ref} has {len(columns)} columns")
                holder = table.find(f"{M}tableColumns")
                if holder is not None and int(holder.get("count") or len(columns)) != len(columns):
                    out.append(f"{where}: tableColumns count is wrong")
                names = [c.get("name") or "" for c in columns]
                if len({n.casefold() for n in names}) != len(names):
                    out.append(f"{where}: table column names repeat")
                if r1 == 1:
                    for offset, name in enumerate(names):
                        if header.get(c1 + offset, "") != name:
                            out.append(f"{where}: table column {name!r} is not its header cell {header.get(c1 + offset, '')!r}")
                autofilter = table.find(f"{M}autoFilter")
                if autofilter is not None and autofilter.get("ref") != ref:
                    out.append(f"{where}: table autoFilter {autofilter.get('ref')} is not its range {ref}")
            dimension = root.find(f"{M}dimension")
            if dimension is not None and last_row:
                area = parse_area(dimension.get("ref") or "A1")
                if area[2] < last_row:
                    out.append(f"{where}: dimension {dimension.get('ref')} ends before row {last_row}")
            for merge in root.iterfind(f"{M}mergeCells/{M}mergeCell"):
                parse_area(merge.get("ref") or "")
    return out


__all__ = ["column_index", "package_problems"]
