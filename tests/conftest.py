"""Shared fixtures, the shared-sandbox guard, and what the run prints about its randomness."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import settings as hypothesis_settings
from support.shared import changed, released, shared

if TYPE_CHECKING:
    from rosterbook.sandbox import Sandbox

SAMPLES = Path(__file__).resolve().parent / "samples"

# CI draws the same hypothesis examples every run (each property test's seed comes from its name),
# and keeps no example database between runs: a failure there is reproducible as printed.
hypothesis_settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
HYPOTHESIS_PROFILE = "ci" if os.environ.get("CI") else "default"
hypothesis_settings.load_profile(HYPOTHESIS_PROFILE)


@pytest.fixture(scope="session")
def samples() -> Path:
    """The folder of realistic sample exports of the seed platforms (``tests/samples``)."""
    return SAMPLES


SANDBOX_USERS = 60
"""Users in the demo organisation of the ``sandbox`` fixture (seed 1, in-memory database)."""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    """A running sandbox shared by the module's tests: 127.0.0.1, a free port, in-memory SQLite, 60 seeded users, no token.

    Shared, so read-only: a test after which it holds anything else fails (see ``pytest_runtest_call``);
    a test that writes uses ``fresh_sandbox``.
    """
    from rosterbook.sandbox import start_sandbox

    with start_sandbox(users=SANDBOX_USERS) as running:
        yield shared(running)
        released(running)


@pytest.fixture
def fresh_sandbox() -> Iterator[Callable[..., Sandbox]]:
    """A factory starting sandboxes for one test (``fresh_sandbox(users=0, token="t", db_path=...)``); all stop after it."""
    from rosterbook.sandbox import start_sandbox

    started: list[Sandbox] = []

    def start(**options: Any) -> Sandbox:
        options.setdefault("users", SANDBOX_USERS)
        running = start_sandbox(**options)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Fail a test that changed a sandbox shared by its module (later tests, in any order, rely on its data)."""
    result = yield
    dirty = changed(getattr(item, "funcargs", {}).values())
    assert not dirty, f"{item.nodeid} changed a sandbox other tests share; write to a fresh_sandbox instead: {dirty}"
    return result


SUMMARY_PROPERTY = "rosterbook_summary"
"""A test that records ``record_property(SUMMARY_PROPERTY, line)`` gets the line printed in the terminal summary."""


HOSTILE_PROPERTY = "rosterbook_hostile"
"""Each hostile-platform case that passed records ``name:seconds``; the summary counts them on one line."""


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print how the run was randomised and the summary lines tests recorded (fault-injection counts), with or without -s or -n."""
    seed = config.getoption("randomly_seed", None) if config.pluginmanager.hasplugin("randomly") else None
    order = f"random, --randomly-seed={seed} (rerun this order with --randomly-seed={seed})" if seed is not None else "as collected (-p no:randomly)"
    derandomized = hypothesis_settings.default.derandomize
    terminalreporter.section("randomness")
    terminalreporter.write_line(f"test order: {order}")
    terminalreporter.write_line(f"hypothesis: profile {HYPOTHESIS_PROFILE!r}, " + (
        "derandomize=True (each property test's seed is fixed by its name)" if derandomized else "random seeds (CI=true fixes them)"))
    recorded = [
        (name, str(value), report)
        for reports in terminalreporter.stats.values()
        for report in reports
        for name, value in getattr(report, "user_properties", ())
        if getattr(report, "when", "call") == "call"
    ]
    lines = [value for name, value, _ in recorded if name == SUMMARY_PROPERTY]
    hostile = sorted(value.rpartition(":") for name, value, report in recorded if name == HOSTILE_PROPERTY and report.passed)
    if hostile:
        slowest = max(float(seconds) for _, _, seconds in hostile)
        lines.append(f"hostile platform: {len(hostile)} misbehaviours, each a clear message, the right exit code, no traceback, "
                     f"no token in any output or file; slowest {slowest:.1f} s ({', '.join(case for case, _, _ in hostile)})")
    if lines:
        terminalreporter.section("rosterbook summaries")
        for line in lines:
            terminalreporter.write_line(line)
