"""How long the SCIM client waits and how much it reads: a hostile or broken platform cannot hang it.

Each limit has a default and an environment variable (seconds, or MB):

- ``ROSTERBOOK_CONNECT_TIMEOUT`` (10): opening a connection.
- ``ROSTERBOOK_READ_TIMEOUT`` (120): one response, from sending the request to its last byte
  (a server dripping a byte at a time is cut off at this point, not at every silent gap).
- ``ROSTERBOOK_DEADLINE`` (3600): everything one command says to the platform, retries included.
- ``ROSTERBOOK_MAX_RESPONSE_MB`` (256): the largest response body read.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from rosterbook.errors import UsageError

CONNECT_VAR = "ROSTERBOOK_CONNECT_TIMEOUT"
READ_VAR = "ROSTERBOOK_READ_TIMEOUT"
DEADLINE_VAR = "ROSTERBOOK_DEADLINE"
MAX_RESPONSE_VAR = "ROSTERBOOK_MAX_RESPONSE_MB"


@dataclass(frozen=True)
class Limits:
    """Time and size limits of one SCIM client."""

    connect_timeout: float = 10.0
    """Seconds to open a connection."""
    read_timeout: float = 120.0
    """Seconds for one whole response (first to last byte), per request."""
    deadline: float = 3600.0
    """Seconds for all the requests of one client (one command), retries and waits included."""
    max_response_bytes: int = 256 * 1024 * 1024
    """The largest response body read; a larger one is refused."""

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout", "deadline"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.max_response_bytes < 1:
            raise ValueError("max_response_bytes must be >= 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The defaults, overridden by the environment variables that are set."""
        env = os.environ if environ is None else environ
        default = cls()
        connect = _number(env, CONNECT_VAR, default.connect_timeout, "seconds")
        read = _number(env, READ_VAR, default.read_timeout, "seconds")
        deadline = _number(env, DEADLINE_VAR, default.deadline, "seconds")
        megabytes = _number(env, MAX_RESPONSE_VAR, default.max_response_bytes / 1024 / 1024, "megabytes")
        return cls(connect, read, deadline, max(1, int(megabytes * 1024 * 1024)))


def _number(env: Mapping[str, str], name: str, default: float, unit: str) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{name}={raw!r} is not a positive number of {unit}.")
    return value
