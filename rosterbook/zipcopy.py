"""A zip writer for patching a package: members that do not change are copied as their compressed bytes.

``zipfile`` can only re-compress what it copies; a 50,000-user workbook's untouched snapshot would
be inflated and deflated again (seconds) for nothing. ``ZipCopier.copy`` moves a member's stored
bytes across unchanged (same data, same CRC), ``write`` deflates new content, streamed. Only plain
zip (no zip64: an .xlsx over 4 GB is refused) and stored or deflated members are handled.
"""

from __future__ import annotations

import struct
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_LOCAL_SIG, _CENTRAL_SIG, _END_SIG = 0x04034B50, 0x02014B50, 0x06054B50
_LIMIT = 0xFFFFFFFF
_UTF8 = 0x800


class ZipTooLarge(ValueError):
    """The package would need zip64 (a member or the whole file over 4 GB, or 65,535 members)."""


@dataclass(frozen=True)
class Deflated:
    """A member's content already compressed (raw deflate), with what its headers need."""

    data: bytes
    crc: int
    size: int


class Deflater:
    """Raw deflate of content fed in pieces, for a member written later with ``ZipCopier.put``."""

    def __init__(self, level: int = 6) -> None:
        self._z = zlib.compressobj(level, zlib.DEFLATED, -15)
        self._parts: list[bytes] = []
        self._crc = 0
        self._size = 0

    def write(self, data: bytes) -> None:
        if data:
            self._crc = zlib.crc32(data, self._crc)
            self._size += len(data)
            out = self._z.compress(data)
            if out:
                self._parts.append(out)

    def finish(self) -> Deflated:
        self._parts.append(self._z.flush())
        return Deflated(b"".join(self._parts), self._crc, self._size)


class ParallelDeflater:
    """Raw deflate of content fed in pieces of about a megabyte, the pieces compressed on ``workers`` threads at once
    (zlib lets go of Python's lock), as pigz does: each piece is primed with the 32 KB before it and ends on a byte
    boundary (a sync flush), so the pieces joined in order, and an empty final block, are one deflate stream that
    any inflater reads as a whole, nearly as small as one compressor's. The CRC is taken in order on a thread too."""

    def __init__(self, level: int = 6, workers: int = 2) -> None:
        self.level = level
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rosterbook-deflate")
        self._crc_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rosterbook-crc")
        self._pending: deque[Future[bytes]] = deque()
        self._parts: list[bytes] = []
        self._crc: Future[int] | None = None
        self._size = 0
        self._tail = b""
        self._limit = 2 * workers  # pieces in flight at most: memory stays a few megabytes

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._size += len(data)
        previous, self._tail = self._tail, data[-_WINDOW:]
        self._pending.append(self._pool.submit(_deflate_piece, data, previous, self.level))
        crc = self._crc
        self._crc = self._crc_pool.submit(lambda: zlib.crc32(data, crc.result() if crc is not None else 0))
        while len(self._pending) > self._limit:
            self._parts.append(self._pending.popleft().result())

    def finish(self) -> Deflated:
        while self._pending:
            self._parts.append(self._pending.popleft().result())
        self._parts.append(_FINAL_BLOCK)
        crc = self._crc.result() if self._crc is not None else 0
        self.close()
        return Deflated(b"".join(self._parts), crc, self._size)

    def close(self) -> None:
        """Stop the threads (a pass abandoned half-way drops what is in flight)."""
        for future in self._pending:
            future.cancel()
        self._pool.shutdown()
        self._crc_pool.shutdown()


_WINDOW = 32 * 1024
_FINAL_BLOCK = zlib.compressobj(6, zlib.DEFLATED, -15).flush()
"""An empty final block: what ends a stream of sync-flushed pieces."""


def _deflate_piece(data: bytes, previous: bytes, level: int) -> bytes:
    z = zlib.compressobj(level, zlib.DEFLATED, -15, zdict=previous) if previous else zlib.compressobj(level, zlib.DEFLATED, -15)
    return z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)


def deflate(data: bytes, level: int = 6) -> Deflated:
    """``data`` compressed as one piece."""
    deflater = Deflater(level)
    deflater.write(data)
    return deflater.finish()


def _dos_time(stamp: tuple[int, int, int, int, int, int]) -> tuple[int, int]:
    year, month, day, hour, minute, second = stamp
    year = max(1980, min(2107, year))
    return (hour << 11) | (minute << 5) | (second // 2), ((year - 1980) << 9) | (month << 5) | day


class ZipCopier:
    """Writes a zip file member by member: ``copy`` (stored bytes as they are), ``put`` and ``write``; ``close`` ends it."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._central: list[bytes] = []
        self._names: set[str] = set()
        self._now = time.localtime()[:6]

    def _header(self, name: str, flags: int, method: int, stamp: tuple[int, int, int, int, int, int], crc: int,
                csize: int, usize: int, external: int) -> None:
        if name in self._names:
            raise ValueError(f"zip member {name!r} written twice")
        self._names.add(name)
        if csize > _LIMIT or usize > _LIMIT or len(self._names) >= 0xFFFF:
            raise ZipTooLarge(name)
        encoded = name.encode("utf-8")
        if not encoded.isascii():
            flags |= _UTF8
        offset = self._out.tell()
        if offset > _LIMIT:
            raise ZipTooLarge(name)
        dostime, dosdate = _dos_time(stamp)
        version = 20
        self._out.write(_LOCAL.pack(_LOCAL_SIG, version, flags, method, dostime, dosdate, crc, csize, usize, len(encoded), 0))
        self._out.write(encoded)
        self._central.append(
            _CENTRAL.pack(_CENTRAL_SIG, version, version, flags, method, dostime, dosdate, crc, csize, usize,
                          len(encoded), 0, 0, 0, 0, external, offset) + encoded
        )

    def copy(self, source: BinaryIO, info: zipfile.ZipInfo) -> None:
        """Copy one member of the zip file open as ``source`` without decompressing it."""
        if info.flag_bits & 0x1:
            raise ValueError(f"{info.filename!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ValueError(f"{info.filename!r} uses compression method {info.compress_type}, which is not copied")
        source.seek(info.header_offset)
        fixed = source.read(_LOCAL.size)
        if len(fixed) != _LOCAL.size or struct.unpack("<I", fixed[:4])[0] != _LOCAL_SIG:
            raise zipfile.BadZipFile(f"bad local header for {info.filename!r}")
        name_length, extra_length = struct.unpack("<HH", fixed[26:30])
        source.seek(info.header_offset + _LOCAL.size + name_length + extra_length)
        # Sizes and CRC come from the central directory: a data descriptor is not needed after the copy.
        flags = info.flag_bits & ~(0x8 | _UTF8)
        self._header(info.filename, flags, info.compress_type, info.date_time, info.CRC, info.compress_size, info.file_size,
                     info.external_attr)
        left = info.compress_size
        while left:
            chunk = source.read(min(left, 1 << 20))
            if not chunk:
                raise zipfile.BadZipFile(f"{info.filename!r} is truncated")
            self._out.write(chunk)
            left -= len(chunk)

    def put(self, name: str, content: Deflated, external: int = 0o600 << 16) -> None:
        """Write a member from already deflated content."""
        self._header(name, 0, zipfile.ZIP_DEFLATED, self._now, content.crc, len(content.data), content.size, external)
        self._out.write(content.data)

    def write(self, name: str, data: bytes | Iterable[bytes], level: int = 6) -> None:
        """Write a member from its content (bytes, or pieces of it)."""
        deflater = Deflater(level)
        for piece in [data] if isinstance(data, bytes) else data:
            deflater.write(piece)
        self.put(name, deflater.finish())

    def close(self) -> None:
        """Write the central directory and the end record."""
        start = self._out.tell()
        for record in self._central:
            self._out.write(record)
        size = self._out.tell() - start
        if start > _LIMIT or size > _LIMIT:
            raise ZipTooLarge("central directory")
        count = len(self._central)
        self._out.write(_END.pack(_END_SIG, 0, 0, count, count, size, start, 0))
