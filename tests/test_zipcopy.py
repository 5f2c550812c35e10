"""The zip writer of the patching save: pieces deflated on two threads are one stream any inflater reads."""

from __future__ import annotations

import random
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rosterbook.zipcopy import Deflater, ParallelDeflater, ZipCopier


def _xml_like(rng: random.Random, size: int) -> bytes:
    """Sheet-like bytes: repeated tags and values, so back references reach into the piece before."""
    words = [b'<row r="%d">' % i + b'<c t="inlineStr"><is><t>' + rng.choice([b"Sales", b"Ops", b"Zo\xc3\xab"]) + b"</t></is></c></row>"
             for i in range(2000)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words)
    return bytes(out[:size])


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(0, 300_000), max_size=8), seed=st.integers(0, 1000), level=st.sampled_from([1, 3, 6]))
def test_pieces_deflated_in_parallel_inflate_to_the_content(sizes: list[int], seed: int, level: int) -> None:
    """Whatever the pieces (none, empty, small, over the 32 KB window), the joined stream inflates to the content,
    with its CRC and size, and is about as small as one compressor's."""
    rng = random.Random(seed)
    pieces = [_xml_like(rng, size) if rng.random() < 0.8 else rng.randbytes(size) for size in sizes]
    content = b"".join(pieces)
    parallel, single = ParallelDeflater(level), Deflater(level)
    for piece in pieces:
        parallel.write(piece)
        single.write(piece)
    out, reference = parallel.finish(), single.finish()
    assert zlib.decompress(out.data, -15) == content
    assert (out.crc, out.size) == (zlib.crc32(content), len(content)) == (reference.crc, reference.size)
    assert len(out.data) <= len(reference.data) * 1.02 + 64 * (len(pieces) + 1)


def test_a_member_written_from_parallel_pieces_reads_back_in_zipfile(tmp_path: Path) -> None:
    """The stream in a real archive: zipfile checks the CRC as it reads."""
    content = _xml_like(random.Random(1), 3_000_000)
    deflater = ParallelDeflater(3)
    for i in range(0, len(content), 1 << 20):
        deflater.write(content[i : i + (1 << 20)])
    path = tmp_path / "out.zip"
    with path.open("wb") as f:
        copier = ZipCopier(f)
        copier.put("xl/worksheets/sheet1.xml", deflater.finish())
        copier.close()
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert archive.read("xl/worksheets/sheet1.xml") == content


def test_an_abandoned_deflater_stops_its_threads() -> None:
    deflater = ParallelDeflater(3)
    deflater.write(b"x" * 100_000)
    deflater.close()
    with pytest.raises(RuntimeError):
        deflater.write(b"more")  # its threads are gone
