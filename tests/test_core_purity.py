"""The core imports no xlwings, requests, openpyxl or CLI library: checked on every module's imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "rosterbook" / "core"
FORBIDDEN = ("xlwings", "requests", "openpyxl", "click", "rich", "typer", "argparse", "python_calamine", "keyring", "urllib3", "http")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_nothing_forbidden(path: Path) -> None:
    bad = [n for n in _imports(path) if n.split(".")[0] in FORBIDDEN]
    assert bad == [], f"{path.name} imports {bad}"


def test_core_modules_exist() -> None:
    assert len(list(CORE.rglob("*.py"))) >= 5


def test_importing_core_loads_no_forbidden_module() -> None:
    """Import every core module in a fresh interpreter: none of the forbidden packages gets loaded."""
    modules = sorted(f"rosterbook.core.{p.stem}" for p in CORE.glob("*.py") if p.stem != "__init__")
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
