"""Small pieces of the Office Open XML package format that ``xlsxpatch`` edits text-wise.

Parts are edited as text, element by element, so that everything rosterbook does not change stays
byte for byte as the application that saved the file last wrote it: a fragment is split into its
top-level elements (``split``), one element is parsed with lxml when it must change (``parse``),
and written back in its place (``serialize``).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from lxml import etree

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
CONTENT_TYPES = "http://schemas.openxmlformats.org/package/2006/content-types"

REL_OFFICE_DOCUMENT = REL + "/officeDocument"
REL_WORKSHEET = REL + "/worksheet"
REL_STYLES = REL + "/styles"
REL_COMMENTS = REL + "/comments"
REL_VML = REL + "/vmlDrawing"
REL_TABLE = REL + "/table"
REL_CALC_CHAIN = REL + "/calcChain"

CT_WORKSHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
CT_COMMENTS = "application/vnd.openxmlformats-officedocument.spreadsheetml.comments+xml"
CT_VML = "application/vnd.openxmlformats-officedocument.vmlDrawing"
CT_STYLES = "application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"
CT_RELS = "application/vnd.openxmlformats-package.relationships+xml"

MAX_ROW = 1048576
MAX_COLUMN = 16384

# CT_Worksheet's children, in the order the schema requires (Excel repairs a sheet whose order is wrong).
WORKSHEET_ORDER = (
    "sheetPr", "dimension", "sheetViews", "sheetFormatPr", "cols", "sheetData", "sheetCalcPr", "sheetProtection",
    "protectedRanges", "scenarios", "autoFilter", "sortState", "dataConsolidate", "customSheetViews", "mergeCells",
    "phoneticPr", "conditionalFormatting", "dataValidations", "hyperlinks", "printOptions", "pageMargins", "pageSetup",
    "headerFooter", "rowBreaks", "colBreaks", "customProperties", "cellWatches", "ignoredErrors", "smartTags", "drawing",
    "legacyDrawing", "legacyDrawingHF", "drawingHF", "picture", "oleObjects", "controls", "webPublishItems", "tableParts",
    "extLst",
)
_RANK = {name: index for index, name in enumerate(WORKSHEET_ORDER)}
# mc:AlternateContent wraps oleObjects and controls in Excel's files.
_RANK["AlternateContent"] = _RANK["oleObjects"]

_TOKEN = re.compile(
    r"<!--.*?-->|<\?.*?\?>|<!\[CDATA\[.*?\]\]>|<(/?)([^\s/>!?]+)((?:[^>\"']|\"[^\"]*\"|'[^']*')*?)(/?)>", re.S
)
_DECLARATION = re.compile(r"\sxmlns(?::([\w.-]+))?=\"([^\"]*)\"")


def local(name: str) -> str:
    """``x:row`` -> ``row``; ``{ns}row`` -> ``row``."""
    return name.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


@dataclass
class Node:
    """A top-level piece of a fragment: an element (``name`` is its local name) or text between elements (None)."""

    name: str | None
    text: str


def split(text: str) -> list[Node]:
    """The top-level elements of an XML fragment, with the text around them; a stray end tag ends the split."""
    out: list[Node] = []
    depth = 0
    start = 0
    name = ""
    for match in _TOKEN.finditer(text):
        tag = match.group(2)
        if tag is None:
            continue
        closing, selfclosing = match.group(1), match.group(4)
        if depth == 0:
            if closing:
                break  # the enclosing element's end tag: the rest is text
            if match.start() > start:
                out.append(Node(None, text[start : match.start()]))
            start = match.start()
            name = local(tag)
            if selfclosing:
                out.append(Node(name, text[start : match.end()]))
                start = match.end()
            else:
                depth = 1
            continue
        if closing:
            depth -= 1
        elif not selfclosing:
            depth += 1
        if depth == 0:
            out.append(Node(name, text[start : match.end()]))
            start = match.end()
    if depth:
        raise ValueError("unbalanced XML fragment")
    if start < len(text):
        out.append(Node(None, text[start:]))
    return out


def insert(nodes: list[Node], node: Node) -> None:
    """Insert a worksheet child where the schema's order puts it."""
    rank = _RANK.get(node.name or "", len(WORKSHEET_ORDER))
    for index, other in enumerate(nodes):
        if other.name is not None and _RANK.get(other.name, -1) > rank:
            nodes.insert(index, node)
            return
    # after the last element (text after it, such as the root's end tag, stays last)
    last = max((i for i, n in enumerate(nodes) if n.name is not None), default=-1)
    nodes.insert(last + 1, node)


def find(nodes: list[Node], name: str) -> Node | None:
    return next((n for n in nodes if n.name == name), None)


@dataclass(frozen=True)
class Root:
    """A part's root start tag: its qualified name, the prefix of its elements, and the namespaces it declares."""

    start: str
    qname: str

    @property
    def prefix(self) -> str:
        """``"x:"`` when the root is ``<x:worksheet>``, else ``""``."""
        return self.qname.rsplit(":", 1)[0] + ":" if ":" in self.qname else ""

    def parse(self, fragment: str) -> etree._Element:
        """Parse one element of the part (its namespaces resolved as in the part)."""
        opening = self.start[:-2] + ">" if self.start.endswith("/>") else self.start
        wrapper = etree.fromstring(f"{opening}{fragment}</{self.qname}>".encode(), _PARSER)
        return wrapper[0]

    def serialize(self, element: etree._Element) -> str:
        """An element as text, without repeating the namespace declarations its part's root already makes."""
        text: str = etree.tostring(element, encoding="unicode")
        declared = {(m.group(1) or "", m.group(2)) for m in _DECLARATION.finditer(self.start)}
        end = text.find(">")
        head = _DECLARATION.sub(lambda m: "" if (m.group(1) or "", m.group(2)) in declared else m.group(0), text[:end])
        return head + text[end:]


_PARSER = etree.XMLParser(huge_tree=True, resolve_entities=False, remove_blank_text=False)
_ROOT = re.compile(r"<([\w.-]+:)?(\w+)\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>")


def root_of(text: str, name: str) -> tuple[Root, int]:
    """The root start tag of a part (its local name must be ``name``) and where its content starts."""
    for match in _ROOT.finditer(text):
        if match.group(2) == name:
            qname = (match.group(1) or "") + name
            return Root(match.group(0), qname), match.end()
        break
    raise ValueError(f"not a {name} part")


def parse_xml(data: bytes) -> etree._Element:
    """A whole part, parsed (entities are not expanded: a workbook is untrusted input)."""
    return etree.fromstring(data, _PARSER)


def resolve(base: str, target: str) -> str:
    """A relationship's target as a zip member name, relative to the part that holds the relationship."""
    if target.startswith("/"):
        return posixpath.normpath(target.lstrip("/"))
    return posixpath.normpath(posixpath.join(posixpath.dirname(base), target))


def rels_path(part: str) -> str:
    """``xl/worksheets/sheet1.xml`` -> ``xl/worksheets/_rels/sheet1.xml.rels``."""
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", name + ".rels")


def relative(base: str, target: str) -> str:
    """A zip member name as a target relative to ``base``'s folder."""
    return posixpath.relpath(target, posixpath.dirname(base) or ".")


def escape_text(text: str) -> str:
    """Text for an element's content (a carriage return survives as a character reference)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def escape_attr(text: str) -> str:
    return escape_text(text).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")


_ATTR_CACHE: dict[str, re.Pattern[str]] = {}


def _attr_pattern(name: str) -> re.Pattern[str]:
    pattern = _ATTR_CACHE.get(name)
    if pattern is None:
        pattern = _ATTR_CACHE[name] = re.compile(rf"(\s){re.escape(name)}\s*=\s*(\"[^\"]*\"|'[^']*')")
    return pattern


def get_attr(tag: str, name: str) -> str | None:
    """An attribute of a start tag (its raw, still escaped, value)."""
    match = _attr_pattern(name).search(tag)
    return match.group(2)[1:-1] if match else None


def set_attr(tag: str, name: str, value: str | None) -> str:
    """A start tag with one attribute set (added before the tag's end), or removed when ``value`` is None."""
    pattern = _attr_pattern(name)
    if value is None:
        return pattern.sub("", tag, count=1)
    if pattern.search(tag):
        return pattern.sub(lambda m: f'{m.group(1)}{name}="{value}"', tag, count=1)
    end = len(tag) - (2 if tag.endswith("/>") else 1)
    return f'{tag[:end]} {name}="{value}"{tag[end:]}'


# --- cell references -----------------------------------------------------------------------------

_REF = re.compile(r"^\$?([A-Za-z]{1,3})\$?([0-9]{1,7})$")


def column_index(letters: str) -> int:
    index = 0
    for letter in letters.upper():
        index = index * 26 + ord(letter) - 64
    return index


def parse_ref(ref: str) -> tuple[int, int]:
    """``E7`` -> (7, 5): row and column, 1-based."""
    match = _REF.match(ref.strip())
    if match is None:
        raise ValueError(f"{ref!r} is not a cell address")
    return int(match.group(2)), column_index(match.group(1))


Area = tuple[int, int, int, int]
"""(first row, first column, last row, last column), 1-based."""


def parse_area(text: str) -> Area:
    """``A2:E9``, ``E7``, ``A:C`` or ``2:5`` as an area."""
    first, _, last = text.strip().partition(":")
    last = last or first
    if first.replace("$", "").isalpha() and last.replace("$", "").isalpha():
        return 1, column_index(first.replace("$", "")), MAX_ROW, column_index(last.replace("$", ""))
    if first.replace("$", "").isdigit() and last.replace("$", "").isdigit():
        return int(first.replace("$", "")), 1, int(last.replace("$", "")), MAX_COLUMN
    r1, c1 = parse_ref(first)
    r2, c2 = parse_ref(last)
    return min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2)


def area_text(area: Area) -> str:
    from rosterbook.core.problems import cell_address

    r1, c1, r2, c2 = area
    first, last = cell_address(c1, r1), cell_address(c2, r2)
    return first if first == last else f"{first}:{last}"
