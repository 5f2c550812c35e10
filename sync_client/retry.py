"""When and how long to wait before trying a SCIM request again.

Only three situations are retried: the server said "not now" (429, 503; their ``Retry-After``
is honoured), the connection could not be opened (nothing reached the server), or the request
is safe to repeat (GET, and PATCH with ``If-Match``, which cannot apply twice). A create whose
outcome is unknown is never re-sent blindly: the client looks the user up first.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from dataclasses import dataclass, field

RETRY_STATUSES = frozenset({429, 503})
"""Statuses saying the request was not processed: safe to repeat whatever the method."""

UNKNOWN_OUTCOME_STATUSES = frozenset({502, 504})
"""A gateway lost the response: the request may or may not have been applied."""


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter, bounded in attempts and in total time."""

    max_attempts: int = 5
    """Attempts per request, the first one included."""
    base_delay: float = 0.25
    max_delay: float = 10.0
    """No single wait is longer (a longer Retry-After gives up instead)."""
    max_total: float = 60.0
    """Total seconds spent waiting for one request before giving up."""
    seed: int | None = None
    """Seed for the jitter (tests); None draws from the OS."""
    _rng: random.Random = field(default_factory=random.Random, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.seed is not None:
            self._rng.seed(self.seed)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), before jitter caps."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        with self._lock:  # random.Random is not documented as thread-safe
            return self._rng.uniform(ceiling / 2, ceiling)

    def delay(self, attempt: int, retry_after: str | None, waited: float) -> float | None:
        """How long to wait before the next attempt, or None to give up.

        ``Retry-After`` wins over the backoff when it is longer; a wait that would pass
        ``max_delay`` or the ``max_total`` budget gives up rather than hang.
        """
        if attempt >= self.max_attempts:
            return None
        wait = self.backoff(attempt)
        hinted = parse_retry_after(retry_after)
        if hinted is not None:
            if hinted > self.max_delay:
                return None
            wait = max(wait, hinted)
        if waited + wait > self.max_total:
            return None
        return wait


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
