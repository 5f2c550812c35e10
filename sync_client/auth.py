"""Where the platform token comes from, and where it may go: a token is always bound to one platform URL.

- A token stored with ``rosterbook login URL`` (OS keyring, one per URL) is only ever sent to that URL.
- ``ROSTERBOOK_TOKEN`` is only sent to the URL named by ``ROSTERBOOK_PLATFORM`` or by the
  ``--platform`` given on the same command line (``named_platform``).
- Nothing read from a workbook chooses where a secret goes: a workbook naming any other URL gets
  no token, and is refused before anything is sent when ``ROSTERBOOK_TOKEN`` is set but bound
  elsewhere (the message says how to sign in for that URL).

URLs are compared normalised (scheme and host in lower case, default port and trailing ``/`` dropped).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from rosterbook.core.wording import CLI, Words
from rosterbook.errors import UsageError
from sync_client.errors import NoKeyring, TokenNotBound

ENV_VAR = "ROSTERBOOK_TOKEN"
PLATFORM_VAR = "ROSTERBOOK_PLATFORM"
"""The platform URL ``ROSTERBOOK_TOKEN`` belongs to."""
SERVICE = "rosterbook"
"""The keyring service name; the keyring username is the platform URL (normalised)."""

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_url(url: str) -> str:
    """One spelling per platform: ``HTTPS://HR.example.com:443/scim/v2/`` -> ``https://hr.example.com/scim/v2``.

    Scheme and host are compared in lower case, the default port and trailing ``/`` are dropped;
    the path keeps its case. A URL with a user name, password, query or fragment is refused.
    """
    text = url.strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise UsageError(f"{url!r} is not the URL of a SCIM platform; expected e.g. 'https://example.com/scim/v2'.")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise UsageError(f"{_shown(url)!r}: a platform URL carries no user name, password, query or fragment; expected e.g. 'https://example.com/scim/v2'.")
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"{url!r}: the port is not a number between 0 and 65535.") from None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def _shown(url: str) -> str:
    """A URL as quoted in a message: without a password."""
    parts = urlsplit(url.strip())
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def named_platforms(named_platform: str | None = None) -> set[str]:
    """The normalised URLs ``ROSTERBOOK_TOKEN`` is bound to: ``ROSTERBOOK_PLATFORM`` and the command line's ``--platform``."""
    out: set[str] = set()
    env = os.environ.get(PLATFORM_VAR, "").strip()
    if env:
        try:
            out.add(normalise_url(env))
        except UsageError as exc:
            raise UsageError(f"{PLATFORM_VAR}: {exc}") from None
    if named_platform:
        out.add(normalise_url(named_platform))
    return out


def sign_in_hint(url: str) -> str:
    """How to sign in for ``url``, in the command line's words (a sentence for error messages; ``Words.sign_in``)."""
    return CLI.sign_in(url)


def token_for(url: str, *, named_platform: str | None = None) -> str | None:
    """The token bound to ``url``, or None when no token is bound to it.

    ``ROSTERBOOK_TOKEN`` when ``url`` is the named platform (``ROSTERBOOK_PLATFORM``, or
    ``named_platform``: the ``--platform`` given on the same command line), else the token stored
    in the OS keyring for ``url``. ``named_platform`` must come from the person running the
    command, never from a workbook.

    :raises TokenNotBound: ``ROSTERBOOK_TOKEN`` is set but bound to another URL, and no token is
        stored for ``url``: refused before anything is sent.
    """
    key = normalise_url(url)
    env = os.environ.get(ENV_VAR, "").strip()
    named = named_platforms(named_platform)
    if env and key in named:
        return env
    stored = _stored(key, url)
    if stored:
        return stored
    if env:
        elsewhere = f"is bound to {' and '.join(sorted(named))}, not to {key}" if named else None

        def refusal(words: Words) -> str:
            bound = elsewhere or f"is bound to no platform: it is only sent to {words.token_env()}"
            return f"{ENV_VAR} {bound}. Nothing was sent to {key}. {words.sign_in(key)}"

        raise TokenNotBound(refusal)
    return None


def is_bound(url: str, *, named_platform: str | None = None) -> bool:
    """True when a token is bound to ``url`` (stored for it, or it is the named platform and ``ROSTERBOOK_TOKEN`` is set).

    The Excel add-in asks before connecting to a URL a workbook names when this is False.
    """
    try:
        return token_for(url, named_platform=named_platform) is not None
    except TokenNotBound:
        return False


def get_token(url: str) -> str | None:
    """The token bound to ``url`` with no ``--platform`` named: ``token_for(url)``, None instead of refusing."""
    try:
        return token_for(url)
    except TokenNotBound:
        return None


def _stored(key: str, url: str) -> str | None:
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:  # pragma: no cover - keyring is a pinned dependency
        return None
    legacy = url.strip().rstrip("/")  # how 0.1 spelled the keyring user: same URL, same token
    try:
        return keyring.get_password(SERVICE, key) or (keyring.get_password(SERVICE, legacy) if legacy != key else None)
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
            f"no OS keyring is available on this machine to store the token; set the {ENV_VAR} environment variable "
            f"(with {PLATFORM_VAR}={key}) instead."
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
