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


# --- layering: who may import whom ------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def _all_imports(path: Path, root: Path = ROOT) -> list[str]:
    """Absolute module names a file imports (function-level imports included; relative ones resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names)
    return names


def _files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _offending(paths: list[Path], banned: tuple[str, ...], allowed: tuple[str, ...] = (), root: Path = ROOT) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in paths:
        bad = sorted({n for n in _all_imports(path, root) if n.startswith(banned) and not n.startswith(allowed)})
        if bad:
            found[str(path.relative_to(root))] = bad
    return found


def test_core_imports_nothing_outside_core() -> None:
    assert _offending(_files("rosterbook/core"), ("rosterbook", "sync_client", "addin"), ("rosterbook.core",)) == {}


def test_connectors_never_import_the_workbook_layer() -> None:
    workbook_layer = ("rosterbook.workbook", "rosterbook.session", "rosterbook.xlsx", "rosterbook.fastread", "rosterbook.sheets",
                      "rosterbook.app", "rosterbook.engine", "addin", "openpyxl", "xlwings", "python_calamine")
    assert _offending(_files("rosterbook/connectors"), workbook_layer) == {}


def test_sync_client_never_imports_the_use_cases() -> None:
    assert _offending(_files("sync_client"), ("rosterbook.app", "rosterbook.session", "rosterbook.engine", "rosterbook.workbook",
                                              "rosterbook.connectors", "addin", "xlwings", "openpyxl")) == {}


def test_the_import_checker_sees_what_it_must(tmp_path: Path) -> None:
    """The checker itself: a deliberately bad import (function-level and relative) is found."""
    probe = tmp_path / "rosterbook" / "connectors" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("def f():\n    from rosterbook import workbook\n    from ..session import Session\n", encoding="utf-8")
    found = _offending([probe], ("rosterbook.workbook", "rosterbook.session"), root=tmp_path)
    assert found == {"rosterbook/connectors/probe.py": ["rosterbook.session", "rosterbook.session.Session", "rosterbook.workbook"]}
