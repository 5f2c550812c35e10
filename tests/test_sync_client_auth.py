"""Tokens (env var or OS keyring, never shown), the login command, and the retry policy's arithmetic."""

from __future__ import annotations

import email.utils
import io
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from click.testing import CliRunner
from keyring.backends import fail
from support.memkeyring import MemoryKeyring
from support.memkeyring import memory_keyring as in_memory

from rosterbook.cli import cli, run
from rosterbook.errors import UsageError
from sync_client.auth import ENV_VAR, PLATFORM_VAR, SERVICE, get_token, is_bound, normalise_url, store_token, token_for
from sync_client.errors import NoKeyring, TokenNotBound
from sync_client.limits import Limits
from sync_client.retry import RetryPolicy, parse_retry_after

URL = "https://hr.example.com/scim/v2"


@pytest.fixture
def memory_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    monkeypatch.delenv(ENV_VAR, raising=False)
    with in_memory() as backend:
        yield backend


@pytest.fixture
def no_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ENV_VAR, raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        yield
    finally:
        keyring.set_keyring(previous)


def test_login_stores_the_typed_token_without_echoing_it(memory_keyring: MemoryKeyring) -> None:
    result = CliRunner().invoke(cli, ["login", URL + "/"], input="s3cret-token\n", standalone_mode=False)
    assert result.exception is None and result.return_value == 0
    assert memory_keyring.store == {(SERVICE, URL): "s3cret-token"}  # trailing '/' does not matter
    assert "s3cret-token" not in result.output
    assert f"user '{URL}'" in result.output
    assert get_token(URL) == "s3cret-token"


def test_login_from_stdin_for_scripts(memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("piped-token\n"))
    assert run(["login", URL, "--token-stdin"]) == 0
    assert memory_keyring.store[(SERVICE, URL)] == "piped-token"
    assert "piped-token" not in capsys.readouterr().out


def test_the_environment_variable_goes_only_to_the_named_platform(memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> None:
    store_token(URL, "from-keyring")
    monkeypatch.setenv(ENV_VAR, "from-env")
    monkeypatch.setenv(PLATFORM_VAR, "HTTPS://HR.example.com:443/scim/v2/")  # compared normalised
    assert token_for(URL) == get_token(URL) == "from-env"  # the named platform: the environment wins
    monkeypatch.delenv(PLATFORM_VAR)
    assert token_for(URL) == "from-keyring"  # not named: the token stored for this URL
    assert token_for(URL, named_platform=URL + "/") == "from-env"  # named by --platform on the command line
    other = "http://127.0.0.1:18001/v2"
    with pytest.raises(TokenNotBound) as refused:
        token_for(other)
    assert str(refused.value) == (
        f"{ENV_VAR} is bound to no platform: it is only sent to the URL named by {PLATFORM_VAR} or --platform. Nothing was sent to {other}. "
        f"To sign in for {other}, run 'rosterbook login {other}', or set {PLATFORM_VAR}={other} together with its token in {ENV_VAR}."
    )
    monkeypatch.setenv(PLATFORM_VAR, URL)
    with pytest.raises(TokenNotBound, match=f"{ENV_VAR} is bound to {URL}, not to {other}. Nothing was sent"):
        token_for(other)
    assert get_token(other) is None and not is_bound(other) and is_bound(URL)
    monkeypatch.delenv(ENV_VAR)
    assert token_for(other) is None  # nothing set for it: no token, and no refusal (a tokenless loopback sandbox works)
    assert token_for("https://other.example.com/v2") is None


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("https://HR.Example.com/scim/v2/", "https://hr.example.com/scim/v2"),
        ("HTTPS://hr.example.com:443/Scim/V2", "https://hr.example.com/Scim/V2"),
        ("http://127.0.0.1:80/v2", "http://127.0.0.1/v2"),
        ("http://[::1]:8080/v2/", "http://[::1]:8080/v2"),
        (" https://hr.example.com ", "https://hr.example.com"),
    ],
)
def test_urls_are_compared_normalised(url: str, normal: str) -> None:
    assert normalise_url(url) == normal


@pytest.mark.parametrize("url", ["https://user:pw@hr.example.com/v2", "https://hr.example.com/v2?token=x", "https://hr.example.com/v2#x", "ftp://x"])
def test_urls_with_credentials_or_queries_are_refused(url: str) -> None:
    with pytest.raises(UsageError) as refused:
        normalise_url(url)
    assert "pw" not in str(refused.value)


def test_without_a_keyring_login_says_to_use_the_env_var(no_keyring: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("tok-xyz\n"))
    assert run(["login", URL, "--token-stdin"]) == 2
    err = capsys.readouterr().err
    assert "no OS keyring is available" in err and ENV_VAR in err and "tok-xyz" not in err
    assert get_token(URL) is None  # reading without a keyring is not an error
    with pytest.raises(NoKeyring):
        store_token(URL, "tok")


@pytest.mark.parametrize(("argv", "message"), [(["login", "ftp://x"], "'ftp://x' is not the URL of a SCIM platform"), (["login", URL, "--token-stdin"], "no token given")])
def test_login_usage_errors(memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert run(argv) == 2
    assert message in capsys.readouterr().err
    assert memory_keyring.store == {}


# --- retry arithmetic ----------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "seconds"), [(None, None), ("3", 3.0), (" 0 ", 0.0), ("soon", None), ("-1", None)])
def test_parse_retry_after_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_parse_retry_after_http_date() -> None:
    assert parse_retry_after(email.utils.formatdate(1_000_030, usegmt=True), now=1_000_000) == pytest.approx(30)
    assert parse_retry_after(email.utils.formatdate(999_000, usegmt=True), now=1_000_000) == 0.0


def test_backoff_is_capped_exponential_with_jitter() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=5, seed=1)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 5), (9, 5)]:
        waits = [policy.backoff(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1  # jittered
    assert [RetryPolicy(seed=3).backoff(2) for _ in range(2)] == [RetryPolicy(seed=3).backoff(2)] * 2


def test_delay_honours_retry_after_and_the_bounds() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=10, max_total=12, seed=1)
    assert policy.delay(1, "7", waited=0) == 7  # the server's hint wins over a shorter backoff
    assert policy.delay(1, "11", waited=0) is None  # longer than max_delay: give up, don't hang
    assert policy.delay(2, "7", waited=6) is None  # past the total budget
    assert policy.delay(3, None, waited=0) is None  # out of attempts
    assert 0.05 <= (policy.delay(1, None, waited=0) or 0) <= 0.1


# --- limits ------------------------------------------------------------------------------------------


def test_limits_come_from_the_environment() -> None:
    assert Limits.from_env({}) == Limits()
    limits = Limits.from_env({"ROSTERBOOK_CONNECT_TIMEOUT": "2", "ROSTERBOOK_READ_TIMEOUT": "0.5", "ROSTERBOOK_DEADLINE": " 90 ",
                              "ROSTERBOOK_MAX_RESPONSE_MB": "1.5"})
    assert limits == Limits(2, 0.5, 90, 1_572_864)


@pytest.mark.parametrize(("name", "value"), [("ROSTERBOOK_DEADLINE", "soon"), ("ROSTERBOOK_READ_TIMEOUT", "0"), ("ROSTERBOOK_CONNECT_TIMEOUT", "-1"),
                                             ("ROSTERBOOK_MAX_RESPONSE_MB", "inf"), ("ROSTERBOOK_DEADLINE", "nan")])
def test_a_bad_limit_is_a_usage_error_naming_the_variable(name: str, value: str, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=f"^{name}={value!r} is not a positive number of"):
        Limits.from_env({name: value})
    monkeypatch.setenv(name, value)
    assert run(["export", str(tmp_path / "x.xlsx"), "--platform", "http://127.0.0.1:9/v2"]) == 2
    assert f"{name}={value!r} is not a positive number" in capsys.readouterr().err


def test_a_bad_named_platform_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "tok-123456")
    monkeypatch.setenv(PLATFORM_VAR, "hr.example.com")
    with pytest.raises(UsageError, match=f"^{PLATFORM_VAR}: 'hr.example.com' is not the URL of a SCIM platform"):
        token_for(URL)
