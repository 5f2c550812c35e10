"""Saving a workbook without ever leaving half of one, nor a copy of its data lying around.

A save writes a temporary file beside the workbook (``.~<name>.<random>.xlsx``, owner-only, locked
while it is written), flushes it to disk and renames it over the workbook. A save that was killed
leaves its temporary file behind; the next run that opens the workbook removes it (its lock died
with the process that held it, so a save running right now in another process is never disturbed).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # Windows: an open file cannot be deleted there, which protects a running save just as well
    fcntl = None  # type: ignore[assignment]

_RANDOM = r"[a-z0-9_]{8}"


def _temp_pattern(path: Path) -> re.Pattern[str]:
    """Names of this workbook's temporary files: today's, and the ``.~<stem><random>.xlsx`` of earlier versions."""
    return re.compile(rf"^\.~(?:{re.escape(path.name)}\.{_RANDOM}|{re.escape(path.stem)}{_RANDOM})\.xlsx$")


def remove_leftovers(path: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files that a killed save of this workbook left beside it; returns what was removed."""
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        return []
    pattern = _temp_pattern(target)
    removed: list[Path] = []
    try:
        names = [entry.name for entry in os.scandir(folder) if entry.name.startswith(".~")]
    except OSError:
        return []
    for name in names:
        if not pattern.match(name):
            continue
        candidate = folder / name
        try:
            if fcntl is not None:
                with candidate.open("rb") as handle:
                    try:
                        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:
                        continue  # a save in progress holds it
                    candidate.unlink()
            else:
                candidate.unlink()
        except OSError:
            continue
        removed.append(candidate)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file that becomes ``path`` when the block ends without an error (and is deleted when it fails).

    The file is created owner-only (0600) and keeps that mode while it holds data; just before the
    rename it takes the mode the workbook had (or the default one for a new file).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".~{target.name}.", suffix=".xlsx", dir=target.parent)
    temp = Path(name)
    handle = os.fdopen(fd, "w+b")
    try:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o666 & ~_umask()
        os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        handle.close()
        temp.unlink(missing_ok=True)
        raise
    handle.close()
    _sync_folder(target.parent)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; Windows has no directory handles to flush)."""
    if os.name != "posix":
        return
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
