"""Secrets scrubbed from text a platform sent: echoed headers, bearer credentials, the token itself."""

from __future__ import annotations

import pytest

from rosterbook.core.redact import REDACTED, scrub

TOKEN = "rbtok-5f2c9a01d7e4"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bad header {'Authorization': 'Bearer abcdefgh1234'}", "bad header {'Authorization': '[redacted]'}"),
        ('{"detail": "authorization: Bearer eyJhbGciOi.J9.x"}', '{"detail": "authorization: [redacted]"}'),
        ("Proxy-Authorization: Basic dXNlcjpwYXNzd29yZA==", "Proxy-Authorization: [redacted]"),
        ("Cookie: session=abc123; csrftoken=xyz", "Cookie: [redacted]"),
        ("set-cookie=SID=31d4d96e407aad42", "set-cookie=[redacted]"),
        ("the header was Bearer 9f8e7d6c5b4a3", "the header was Bearer [redacted]"),
        ("see https://hr.example.com/v2?access_token=abc123&x=1", "see https://hr.example.com/v2?access_token=[redacted]&x=1"),
        (f"rejected {TOKEN} as expired", "rejected [redacted] as expired"),
        # Ordinary words stay: a user's title or an ordinary message is not a credential.
        ("Bearer of bad news", "Bearer of bad news"),
        ("Basic authentication is not enabled", "Basic authentication is not enabled"),
        ("the platform refused the token (401)", "the platform refused the token (401)"),
        ("invalid token provided", "invalid token provided"),
        ("", ""),
    ],
)
def test_scrub(text: str, expected: str) -> None:
    assert scrub(text, [TOKEN, None, ""]) == expected


def test_a_short_secret_is_not_replaced_everywhere() -> None:
    """A 2-letter 'token' would blank out ordinary words; only echoed patterns are removed then."""
    assert scrub("a bad request", ["ba"]) == "a bad request"
    assert REDACTED not in scrub("nothing here", [TOKEN])
