"""LibreOffice headless for tests: open and save .xlsx files as LibreOffice Calc does (several per call: each
start of soffice costs seconds)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest


def soffice() -> str:
    """The soffice executable (CI must have it: ``.ci/run`` installs libreoffice-calc-nogui)."""
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("LibreOffice (soffice) is missing on CI: .ci/run installs libreoffice-calc-nogui")
        pytest.skip("LibreOffice (soffice) is not installed; apt-get install -y libreoffice-calc-nogui")
    return found


def resave(files: Sequence[Path], folder: Path) -> dict[Path, Path]:
    """Open each file in LibreOffice Calc and save it as .xlsx into ``folder`` (one soffice run for all of them).

    Returns input -> output. Fails the test when LibreOffice reports an error or writes nothing.
    """
    folder.mkdir(parents=True, exist_ok=True)
    names = [f.name for f in files]
    assert len(set(names)) == len(names), "LibreOffice writes each output under its input's name"
    command = [
        soffice(),
        f"-env:UserInstallation={(folder / '.profile').as_uri()}",
        "--headless",
        "--norestore",
        "--convert-to",
        "xlsx:Calc MS Excel 2007 XML",
        "--outdir",
        str(folder),
        *[str(f) for f in files],
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower() and "javaldx" not in line]
    assert not errors, done.stderr
    out = {f: folder / f.name for f in files}
    for source, target in out.items():
        assert target.exists() and target.stat().st_size > 0, f"LibreOffice did not save {source.name}: {done.stdout} {done.stderr}"
    return out
