"""Errors of the SCIM client: all RosterbookError subclasses, and none ever carries a token.

Server text enters messages here: every message and detail is scrubbed of echoed credentials
(``Authorization``/``Cookie`` headers, ``Bearer ...``) on the way in.
"""

from __future__ import annotations

from rosterbook.core.redact import scrub
from rosterbook.core.wording import Phrase
from rosterbook.errors import RosterbookError, UsageError


class ScimError(RosterbookError):
    """A SCIM request failed as a whole (not one row's failure): carries the HTTP status and SCIM detail."""

    def __init__(self, message: str | Phrase, *, status: int | None = None, scim_type: str | None = None, detail: str | None = None) -> None:
        super().__init__(scrub(message) if isinstance(message, str) else lambda words: scrub(message(words)))
        self.status = status
        self.scim_type = scim_type
        self.detail = scrub(detail) if detail is not None else None


class ScimAuthError(ScimError):
    """The platform refused the token (401/403): every row would fail, so the run stops."""


class ScimUnavailable(ScimError):
    """The platform could not be reached, or kept answering 429/503 beyond the retry budget."""


class ScimTimeout(ScimUnavailable):
    """The overall deadline for talking to the platform passed (``ROSTERBOOK_DEADLINE``)."""


class ScimProtocolError(ScimError):
    """The platform answered something that is not SCIM: wrong content type, not JSON, broken paging, too large."""


class InsecureTransport(UsageError):
    """TLS verification turned off, or a token about to travel over plain HTTP to another host."""


class NoKeyring(UsageError):
    """No OS keyring backend is available to store or read a token."""


class TokenNotBound(UsageError):
    """``ROSTERBOOK_TOKEN`` is bound to another platform than the one a workbook names: nothing is sent."""
