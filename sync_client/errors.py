"""Errors of the SCIM client: all RosterbookError subclasses, and none ever carries a token."""

from __future__ import annotations

from rosterbook.errors import RosterbookError, UsageError


class ScimError(RosterbookError):
    """A SCIM request failed as a whole (not one row's failure): carries the HTTP status and SCIM detail."""

    def __init__(self, message: str, *, status: int | None = None, scim_type: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.scim_type = scim_type
        self.detail = detail


class ScimAuthError(ScimError):
    """The platform refused the token (401/403): every row would fail, so the run stops."""


class ScimUnavailable(ScimError):
    """The platform could not be reached, or kept answering 429/503 beyond the retry budget."""


class InsecureTransport(UsageError):
    """TLS verification turned off, or a token about to travel over plain HTTP to another host."""


class NoKeyring(UsageError):
    """No OS keyring backend is available to store or read a token."""
