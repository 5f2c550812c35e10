"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parent / "samples"


@pytest.fixture(scope="session")
def samples() -> Path:
    """The folder of realistic sample exports of the seed platforms (``tests/samples``)."""
    return SAMPLES
