"""Sandboxes shared by the tests of a module (module-scoped fixtures): no test may change what they hold.

A fixture that serves several tests registers its sandbox with ``shared(...)``; conftest.py then
fails any test after which a shared sandbox's data (its version counter or its number of
resources) or its armed faults differ from when it started. A test that writes starts its own
(``fresh_sandbox``), so the suite passes in any order.
"""

from __future__ import annotations

from collections.abc import Iterable

from rosterbook.sandbox import Sandbox

_SHARED: dict[int, tuple[Sandbox, tuple[int, int, int]]] = {}


def fingerprint(sandbox: Sandbox) -> tuple[int, int, int]:
    """(highest version handed out, resources stored, faults armed): any write or leftover fault changes it."""
    return sandbox.storage.last_version, sandbox.storage.count(), sandbox.faults.pending


def shared(sandbox: Sandbox) -> Sandbox:
    """Register ``sandbox`` as shared by several tests and return it."""
    _SHARED[id(sandbox)] = (sandbox, fingerprint(sandbox))
    return sandbox


def released(sandbox: Sandbox) -> None:
    """Forget a shared sandbox (its fixture is tearing it down)."""
    _SHARED.pop(id(sandbox), None)


def changed(candidates: Iterable[object]) -> list[str]:
    """The shared sandboxes among ``candidates`` (fixture values) whose data or faults changed since they started."""
    out = []
    for value in candidates:
        entry = _SHARED.get(id(value))
        if entry is not None and entry[0] is value and isinstance(value, Sandbox) and fingerprint(value) != entry[1]:
            out.append(f"{value!r}: {entry[1]} -> {fingerprint(value)} (version counter, resources, armed faults)")
            _SHARED[id(value)] = (value, fingerprint(value))  # reported once: the next test is judged on its own
    return out
