"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from rosterbook.sandbox import Sandbox

SAMPLES = Path(__file__).resolve().parent / "samples"


@pytest.fixture(scope="session")
def samples() -> Path:
    """The folder of realistic sample exports of the seed platforms (``tests/samples``)."""
    return SAMPLES


SANDBOX_USERS = 60
"""Users in the demo organisation of the ``sandbox`` fixture (seed 1, in-memory database)."""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    """A running sandbox for the module: 127.0.0.1, a free port, in-memory SQLite, 60 seeded users, no token."""
    from rosterbook.sandbox import start_sandbox

    with start_sandbox(users=SANDBOX_USERS) as running:
        yield running


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


SUMMARY_PROPERTY = "rosterbook_summary"
"""A test that records ``record_property(SUMMARY_PROPERTY, line)`` gets the line printed in the terminal summary."""


HOSTILE_PROPERTY = "rosterbook_hostile"
"""Each hostile-platform case that passed records ``name:seconds``; the summary counts them on one line."""


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the summary lines tests recorded (the fault-injection sync's counts), with or without -s or -n."""
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
