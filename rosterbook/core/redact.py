"""Secrets scrubbed out of text that came from a platform, before it is stored or printed.

A platform may echo what it received: its error detail can quote the request's
``Authorization`` header, a cookie, or the token itself. ``scrub`` removes those from a message;
the SCIM client applies it where server text enters (with the token it holds), and the workbook
writers apply it again to what they store (patterns only: they never hold the token).

Only messages are scrubbed with the patterns: user data ("Bearer of the flag") is left alone, and
the token itself is removed from every response body by the client, byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"
"""What a secret is replaced with."""

_MIN_SECRET = 6
"""Shorter 'secrets' are not replaced verbatim: an empty or 2-letter token would blank out whole messages."""

_PATTERN = re.compile(
    r"""
    (?P<header>\b(?:proxy-)?authorization|\bset-cookie|\bcookie|\bx-api-key|\bapi-key)   # a header name echoed
        (?P<sep>["']?\s*[:=]\s*["']?)                                             # ': ' or '": "' or '='
        (?P<hvalue>[^"'\r\n,}\]]+)                                                # its value, up to a quote or line end
    | (?P<scheme>\b(?:bearer|basic)\s+)                                            # 'Bearer eyJ...', 'Basic dXNl...':
        (?=[A-Za-z]*[0-9\-._~+/=]|[A-Za-z0-9\-._~+/]{16})                        # token-like (a digit or symbol, or long),
        (?P<credential>[A-Za-z0-9\-._~+/]{8,}=*)                                 # so 'Basic authentication' stays
    | (?P<param>[?&;\s](?:access_|id_|refresh_)?token=|[?&;\s]api[_-]?key=|[?&;\s]password=|[?&;\s]secret=)
        (?P<pvalue>[^&\s"'#]+)                                                    # a credential in a query string
    """,
    re.IGNORECASE | re.VERBOSE,
)


def _replace(match: re.Match[str]) -> str:
    if match.group("header"):
        return f"{match.group('header')}{match.group('sep')}{REDACTED}"
    if match.group("scheme"):
        return f"{match.group('scheme')}{REDACTED}"
    return f"{match.group('param')}{REDACTED}"


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` without the given secrets, echoed ``Authorization``/``Cookie`` headers, ``Bearer ...``
    credentials or ``token=...`` query parameters (each replaced by ``[redacted]``)."""
    if _PATTERN.search(text):
        text = _PATTERN.sub(_replace, text)
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def scrub_all(texts: Iterable[str | None]) -> list[str | None]:
    """``scrub`` of each text (None stays None)."""
    return [None if t is None else scrub(t) for t in texts]
