"""Writing a VBA project (``vbaProject.bin``) on any OS: MS-OVBA compression and the OLE container.

The OLE container, the ``dir`` record layout and the ``PROJECT`` stream come from the pinned
``ms-ovba`` package. Its compressor (``ms-ovba-compression`` 1.0.1) is not used: its
``copytoken_help`` computes the maximum match length as ``0xFFFF << bit_count + 3`` instead of
``(0xFFFF >> bit_count) + 3`` (MS-OVBA 2.4.1.3.19.1), so long matches overflow into the offset
bits and longer modules decompress to garbage. ``compress`` below is a correct MS-OVBA
compressor (2.4.1.3.6); every stream this module compresses goes through it.
"""

from __future__ import annotations

import gc
import os
import tempfile
import uuid
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

_CHUNK = 4096
_MAX_CANDIDATES = 256  # how far back along a hash chain to look; plenty for source text


def _bit_count(position: int) -> int:
    """MS-OVBA 2.4.1.3.19.1: max(ceil(log2(position)), 4) for a position inside a chunk."""
    bits = 4
    while (1 << bits) < position:
        bits += 1
    return bits


def _compress_chunk(chunk: bytes) -> bytes:
    """One compressed chunk's token sequences (without the 2-byte header)."""
    out = bytearray()
    heads: dict[bytes, list[int]] = {}
    size = len(chunk)
    pos = 0

    def remember(start: int, stop: int) -> None:
        for i in range(start, min(stop, size - 2)):
            heads.setdefault(chunk[i : i + 3], []).append(i)

    while pos < size:
        flag_at = len(out)
        out.append(0)
        flags = 0
        for bit in range(8):
            if pos >= size:
                break
            bits = _bit_count(pos)
            max_length = (0xFFFF >> bits) + 3
            best_length, best_offset = 0, 0
            limit = min(max_length, size - pos)
            if limit >= 3:
                candidates = heads.get(chunk[pos : pos + 3], ())
                for start in reversed(candidates[-_MAX_CANDIDATES:]):
                    length = 3
                    while length < limit and chunk[start + length] == chunk[pos + length]:
                        length += 1
                    if length > best_length:
                        best_length, best_offset = length, pos - start
                        if length == limit:
                            break
            if best_length >= 3:
                token = ((best_offset - 1) << (16 - bits)) | (best_length - 3)
                out += token.to_bytes(2, "little")
                flags |= 1 << bit
                remember(pos, pos + best_length)
                pos += best_length
            else:
                out.append(chunk[pos])
                remember(pos, pos + 1)
                pos += 1
        out[flag_at] = flags
    return bytes(out)


def compress(data: bytes) -> bytes:
    """MS-OVBA 2.4.1.3.6: a CompressedContainer for ``data`` (raw chunks where compression does not pay)."""
    out = bytearray(b"\x01")
    for start in range(0, len(data), _CHUNK):
        chunk = data[start : start + _CHUNK]
        body = _compress_chunk(chunk)
        if len(body) > _CHUNK:
            # A raw chunk holds exactly 4096 bytes, so only a full chunk may be stored raw.
            if len(chunk) != _CHUNK:
                raise ValueError("the last chunk does not compress below 4096 bytes and cannot be stored raw")
            out += (0x3000 | (_CHUNK - 1)).to_bytes(2, "little") + chunk
        else:
            out += (0xB000 | (len(body) + 2 - 3)).to_bytes(2, "little") + body
    return bytes(out)


def decompress(container: bytes) -> bytes:
    """MS-OVBA 2.4.1.3.1: the inverse of ``compress`` (used by the build's self-check)."""
    if not container or container[0] != 1:
        raise ValueError("not an MS-OVBA compressed container (signature byte must be 0x01)")
    out = bytearray()
    pos = 1
    while pos < len(container):
        header = int.from_bytes(container[pos : pos + 2], "little")
        size = (header & 0x0FFF) + 3
        if (header >> 12) & 0x7 != 0b011:
            raise ValueError(f"bad chunk signature at byte {pos}")
        end = pos + size
        pos += 2
        if not header & 0x8000:
            out += container[pos : pos + _CHUNK]
            pos += _CHUNK
            continue
        chunk_start = len(out)
        while pos < end:
            flags = container[pos]
            pos += 1
            for bit in range(8):
                if pos >= end:
                    break
                if flags & (1 << bit):
                    token = int.from_bytes(container[pos : pos + 2], "little")
                    pos += 2
                    bits = _bit_count(len(out) - chunk_start)
                    length = (token & (0xFFFF >> bits)) + 3
                    offset = (token >> (16 - bits)) + 1
                    for _ in range(length):
                        out.append(out[-offset])
                else:
                    out.append(container[pos])
                    pos += 1
    return bytes(out)


# --- the VBA project -----------------------------------------------------------------------------

# The type libraries every Excel VBA project references (ms-ovba's own defaults): IRibbonControl
# lives in the Office library.
_STDOLE = (uuid.UUID("00020430-0000-0000-C000-000000000046"), r"C:\Windows\System32\stdole2.tlb", "OLE Automation", "stdole")
_OFFICE = (
    uuid.UUID("2DF8D04C-5BFA-101B-BDE5-00AA0044DE52"),
    r"C:\Program Files\Common Files\Microsoft Shared\OFFICE16\MSO.DLL",
    "Microsoft Office 16.0 Object Library",
    "Office",
)
_WORKBOOK_GUID = uuid.UUID("00020819-0000-0000-C000-000000000046")
_WORKSHEET_GUID = uuid.UUID("00020820-0000-0000-C000-000000000046")
_DOCUMENT_HEADER = "VERSION 1.0 CLASS\nBEGIN\n  MultiUse = -1  'True\nEND\n"
_DOCUMENT_ATTRIBUTES = (
    'Attribute VB_Name = "{name}"\n'
    "Attribute VB_GlobalNameSpace = False\n"
    "Attribute VB_Creatable = False\n"
    "Attribute VB_PredeclaredId = True\n"
    "Attribute VB_Exposed = True\n"
)


@contextmanager
def _inside(directory: Path) -> Iterator[None]:
    """ms-ovba and ms-cfb write their intermediate files into the current directory."""
    before = Path.cwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(before)


def crlf(text: str) -> str:
    """VBA stores module source with CRLF line ends and a final line break."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return "\r\n".join(lines) + "\r\n"


def vba_project(
    modules: Mapping[str, str],
    *,
    documents: Mapping[str, str] | None = None,
    project_id: str = "{5A6D0B8E-3C1F-4E52-9B7A-2D4C6E8F0A13}",
) -> bytes:
    """A ``vbaProject.bin`` holding ``ThisWorkbook``, ``Sheet1`` and the given standard modules (name -> source).

    ``documents`` gives code for the document modules (``ThisWorkbook``: workbook and application
    events), written after their attribute lines. No p-code or performance cache is written: Office
    compiles the modules from source on load. Each standard module's source must start with its
    ``Attribute VB_Name`` line; all of it must be cp1252 text.
    """
    code = dict(documents or {})
    unknown = set(code) - {"ThisWorkbook", "Sheet1"}
    if unknown:
        raise ValueError(f"no such document module: {', '.join(sorted(unknown))}")
    from ms_ovba.Models.Entities.doc_module import DocModule
    from ms_ovba.Models.Entities.reference import Reference
    from ms_ovba.Models.Entities.reference_registered import ReferenceRegistered
    from ms_ovba.Models.Entities.std_module import StdModule
    from ms_ovba.Models.Fields.libid_reference import LibidReference
    from ms_ovba.vbaProject import VbaProject
    from ms_ovba.Views.dirStream import DirStream
    from ms_ovba.Views.project_ole_file import ProjectOleFile

    class _Module(StdModule):
        def __init__(self, name: str, source: bytes) -> None:
            super().__init__(name)
            self._source = source
            self._file_path = name

        def write_file(self) -> None:
            Path(self.bin_path).write_bytes(self.cache + compress(self._source))

    class _Document(DocModule):
        def __init__(self, name: str, guid: uuid.UUID, body: str = "") -> None:
            super().__init__(name)
            self.add_guid(guid)
            text = _DOCUMENT_ATTRIBUTES.format(name=name).replace(
                "Attribute VB_GlobalNameSpace", f'Attribute VB_Base = "0{{{str(guid).upper()}}}"\nAttribute VB_GlobalNameSpace'
            )
            text += "Attribute VB_TemplateDerived = False\nAttribute VB_Customizable = True\n"
            self._source = crlf(text + body).encode("cp1252")
            self._file_path = name

        def write_file(self) -> None:
            Path(self.bin_path).write_bytes(self.cache + compress(self._source))

    class _Dir(DirStream):
        def write_file(self) -> None:
            Path("dir.bin").write_bytes(compress(self.to_bytes()))

    project = VbaProject()
    project.project_id = project_id
    project.add_module(_Document("ThisWorkbook", _WORKBOOK_GUID, code.get("ThisWorkbook", "")))
    project.add_module(_Document("Sheet1", _WORKSHEET_GUID, code.get("Sheet1", "")))
    for name, source in modules.items():
        project.add_module(_Module(name, crlf(source).encode("cp1252")))
    for guid, path, description, name in (_STDOLE, _OFFICE):
        libid = LibidReference(guid, "2.0", "0", path, description)
        project.add_reference(Reference(ReferenceRegistered(libid), name))

    import ms_ovba.Views.project_ole_file as ole_view

    with tempfile.TemporaryDirectory(prefix="rosterbook-vba-") as work, _inside(Path(work)):
        # The dir stream class is looked up in the view's module namespace: use ours, then restore.
        original = ole_view.DirStream
        ole_view.DirStream = _Dir
        # ms-cfb leaves some of its intermediate files unclosed: close them here, quietly.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            try:
                ProjectOleFile.write_file(project)
            finally:
                ole_view.DirStream = original
                gc.collect()
        return Path("vbaProject.bin").read_bytes()
