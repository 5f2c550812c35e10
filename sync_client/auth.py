"""Where the platform token comes from: ``ROSTERBOOK_TOKEN`` or the OS keyring, never a workbook or a log."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from rosterbook.errors import UsageError
from sync_client.errors import NoKeyring

ENV_VAR = "ROSTERBOOK_TOKEN"
SERVICE = "rosterbook"
"""The keyring service name; the keyring username is the platform URL."""


def normalise_url(url: str) -> str:
    """One spelling per platform: ``https://x/scim/v2/`` and ``https://x/scim/v2`` share a token."""
    text = url.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{url!r} is not the URL of a SCIM platform; expected e.g. 'https://example.com/scim/v2'.")
    return text


def get_token(url: str) -> str | None:
    """The token for a platform: the environment variable first, then the OS keyring; None if neither has one."""
    env = os.environ.get(ENV_VAR)
    if env:
        return env.strip()
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:  # pragma: no cover - keyring is a pinned dependency
        return None
    try:
        return keyring.get_password(SERVICE, normalise_url(url))
    except KeyringError:
        # No backend (headless Linux, CI): the env var is the way; not an error until a token is needed.
        return None


def store_token(url: str, token: str) -> str:
    """Store a token in the OS keyring for ``url``; returns a description of where it went (never the token)."""
    import keyring
    from keyring.errors import KeyringError, NoKeyringError

    token = token.strip()
    key = normalise_url(url)
    if not token:
        raise UsageError("no token given; nothing stored.")
    try:
        keyring.set_password(SERVICE, key, token)
    except NoKeyringError:
        raise NoKeyring(
            f"no OS keyring is available on this machine to store the token; set the {ENV_VAR} environment variable instead."
        ) from None
    except KeyringError as exc:
        raise NoKeyring(f"the OS keyring refused to store the token ({type(exc).__name__}); set the {ENV_VAR} environment variable instead.") from None
    backend = type(keyring.get_keyring()).__name__
    return f"the OS keyring ({backend}), service {SERVICE!r}, user {key!r}"


def forget_token(url: str) -> bool:
    """Remove a stored token; True when one was removed."""
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    try:
        keyring.delete_password(SERVICE, normalise_url(url))
    except PasswordDeleteError:
        return False
    except KeyringError:
        return False
    return True
