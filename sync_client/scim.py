"""A thin SCIM 2.0 client on ``requests`` + scim2-models: discovery, export, apply, Bulk, retries.

It only moves bytes. What to send comes from ``rosterbook.core.scim_map`` (operations as plain
dicts); what came back is mapped to one :class:`OperationResult` per operation, so each row
learns its own fate and one row's failure never stops the others.

Safety rules, in one place:
- TLS verification is always on (a CA bundle path may replace the default store; ``False`` is refused),
  and a token never travels over plain HTTP to anything but this machine.
- Redirects are never followed for writes; for reads only within the platform's own origin.
- Time and size are bounded (``sync_client.limits``): a connect timeout, a time limit for each whole
  response (a server dripping bytes is cut off), an overall deadline, and a largest response.
- The token is removed from every response body before it is parsed, and echoed credentials from
  every message (``rosterbook.core.redact``); text that is not valid Unicode becomes U+FFFD.
- A request is repeated only when it cannot have taken effect (connection not opened, 429, 503)
  or when repeating it is harmless (GET; PATCH with ``If-Match``; member add/remove).
- A create whose outcome is unknown (dropped connection, timeout, 502/504) is resolved by looking
  the user up by userName before creating again; a 409 or a stale ``If-Match`` is resolved by
  fetching the resource and asking the core whether it already holds what was wanted.
- A platform that is not SCIM (an HTML login page, broken JSON, paging that repeats or never
  ends) is a :class:`ScimProtocolError` naming the URL and what was wrong.
- A resource's version is its body's ``meta.version``. The HTTP ``ETag`` header stands in only when
  the body has none and the ServiceProviderConfig announces ETag support (a web framework's own
  weak body-hash ETag is not a version), and ``If-Match`` is sent only to a platform announcing it.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode, urljoin, urlsplit

import pydantic
import requests
import urllib3
import urllib3.connection
from requests.adapters import HTTPAdapter
from scim2_models import EnterpriseUser, Error, Group, ServiceProviderConfig, User

from rosterbook.core.redact import scrub
from rosterbook.core.scim_map import BULK_REF, CORE_GROUP, CORE_USER, ENTERPRISE_USER, Operation, already_applied, resolve_refs
from rosterbook.core.wording import Phrase
from sync_client.errors import InsecureTransport, ScimAuthError, ScimError, ScimProtocolError, ScimTimeout, ScimUnavailable
from sync_client.limits import DEADLINE_VAR, MAX_RESPONSE_VAR, READ_VAR, Limits
from sync_client.retry import RETRY_STATUSES, UNKNOWN_OUTCOME_STATUSES, RetryPolicy

Status = Literal["ok", "conflict", "duplicate", "invalid", "not-found", "failed"]
Progress = Callable[[int, int], None]
UsersPage = Callable[[list[dict[str, Any]], list[dict[str, Any]]], None]
"""``(page of users, every group)``: what ``export_users`` hands over per page when asked."""

SCIM_JSON = "application/scim+json"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
DEFAULT_PAGE = 1000
"""Page size asked for when the server announces no maxResults (it may answer with fewer)."""
BULK_CONCURRENCY = 4
"""Bulk requests in flight at once at most (each within maxOperations and maxPayloadSize): a far platform's
latency is paid once per round of requests, while a few requests at a time stay polite to its servers."""
LISTING_SHARE = 10
"""current_versions reads every page once the ids are at least 1 in this many users: a page of
1000 costs the platform about what 10-20 single GETs cost, and takes one round trip instead of 1000."""
FILTER_CHUNK = 50
"""Users read by one ``id eq "a" or id eq "b" ...`` filter (at most the announced filter.maxResults): about 2.5 KB of
URL with UUID ids, and one round trip instead of 50 GETs."""
FILTER_URL_TEXT = 4000
"""Most characters of filter text in one request (long ids make smaller chunks): URLs stay well under the 8 KB
many servers and proxies accept."""
FILTER_CONCURRENCY = 4
"""Filter requests in flight at once at most (each costs the platform about what its ids' GETs would)."""
MAX_REDIRECTS = 5
"""Same-origin redirects followed for one read."""
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 65536


# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Discovery:
    """What the platform announces about itself."""

    config: ServiceProviderConfig
    schemas: list[dict[str, Any]]
    resource_types: list[dict[str, Any]]

    @property
    def bulk(self) -> bool:
        return bool(self.config.bulk and self.config.bulk.supported)

    @property
    def bulk_max_operations(self) -> int:
        return max(1, (self.config.bulk.max_operations if self.config.bulk else None) or 1000)

    @property
    def bulk_max_payload(self) -> int:
        return max(1, (self.config.bulk.max_payload_size if self.config.bulk else None) or 1_048_576)

    @property
    def max_results(self) -> int | None:
        found = self.config.filter.max_results if self.config.filter and self.config.filter.supported else None
        return found if found is None or found >= 1 else None

    @property
    def etag(self) -> bool:
        return bool(self.config.etag and self.config.etag.supported)

    @property
    def filter(self) -> bool:
        return bool(self.config.filter and self.config.filter.supported)


@dataclass(frozen=True)
class ExportResult:
    """Every user and group on the platform (raw SCIM JSON), and how many users there are."""

    users: list[dict[str, Any]]
    """Empty when the pages of users were handed to ``export_users``'s ``on_users`` as they came."""
    groups: list[dict[str, Any]]
    total: int


@dataclass(frozen=True)
class CurrentResource:
    """A resource as the platform holds it now (its version is ``meta.version`` / the ETag)."""

    version: str | None
    resource: dict[str, Any]


@dataclass(frozen=True)
class OperationResult:
    """What happened to one operation, mapped back to its row."""

    row_id: str | None
    key: str
    status: Status
    resource_id: str | None = None
    """The user's (or group's, for membership operations) id on the platform."""
    version: str | None = None
    """The resource's version after the operation (keep it: the next sync's If-Match)."""
    message: str = ""
    """Scrubbed of echoed credentials (it may quote the platform's error detail)."""
    http_status: int | None = None
    current: dict[str, Any] | None = None
    """For a conflict or a duplicate: the resource as the platform holds it now."""
    row: int | None = None
    method: str = ""
    path: str = ""
    """``/Users/<id>`` or ``/Groups/<id>``: tells a user's own result from a membership one."""

    def __post_init__(self) -> None:
        if self.message:
            object.__setattr__(self, "message", scrub(self.message))

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class Reply:
    """One HTTP answer, read in full (bounded in size and time), the token removed from its body."""

    method: str
    url: str
    status_code: int
    reason: str
    headers: Mapping[str, str]
    content: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "") or ""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class _UnknownOutcome(Exception):
    """The request may have reached the server, and no usable answer came back."""


class _Cut(Exception):
    """The watchdog closed the connection: the whole answer did not arrive in time."""

    def __init__(self, seconds: float, *, by_deadline: bool) -> None:
        super().__init__(seconds)
        self.seconds = seconds
        self.by_deadline = by_deadline
        """The time left before the overall deadline was shorter than the read timeout."""


def _result(op: Operation, status: Status, **kw: Any) -> OperationResult:
    return OperationResult(op.row_id, op.key, status, row=op.row, method=op.method, path=op.path, **kw)


def _id_from(location: object) -> str | None:
    if not location or not isinstance(location, str):
        return None
    return location.rstrip("/").rsplit("/", 1)[-1] or None


def _quote(value: str) -> str:
    """A SCIM filter string literal (JSON string rules)."""
    return json.dumps(value, ensure_ascii=False)


def _encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_transport(url: str) -> None:
    """The https/loopback rule: plain HTTP only to this machine; no credentials in the URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InsecureTransport(f"{url!r} is not an http(s) URL of a SCIM platform (e.g. 'https://example.com/scim/v2').")
    if parts.username is not None or parts.password is not None:
        raise InsecureTransport(f"{_origin_text(url)}: a platform URL carries no user name or password (the token is kept in the OS keyring, stored by signing in).")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise InsecureTransport(f"{url!r} uses plain HTTP: the token and the users' data would cross the network unencrypted. Use https://.")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def _origin_text(url: str) -> str:
    scheme, host, port = _origin(url)
    return f"{scheme}://{host}" + (f":{port}" if port not in (80, 443, None) else "")


def _never_sent(exc: requests.exceptions.RequestException) -> bool:
    """True when the connection was never opened, so the server cannot have seen the request."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


# --- bounded exchanges: a watchdog per request -------------------------------------------------

_LOCAL = threading.local()


class _Watchdog:
    """Shuts the connection of a request that outlives its time: a server dripping one byte at a
    time never trips a socket timeout, so the whole answer gets a wall-clock limit."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def attach(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
            fired = self.fired
        if fired and sock is not None:
            _shut(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sock = self._sock
        if sock is not None:
            _shut(sock)

    def cancel(self) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _attach_watchdog(sock: socket.socket | None) -> None:
    watchdog = getattr(_LOCAL, "watchdog", None)
    if watchdog is not None:
        watchdog.attach(sock)


class _WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    def getresponse(self) -> Any:
        _attach_watchdog(self.sock)
        return super().getresponse()


class _WatchedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def getresponse(self) -> Any:
        _attach_watchdog(self.sock)
        return super().getresponse()


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _Adapter(HTTPAdapter):
    """requests' adapter whose connections tell the request's watchdog their socket."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is urllib3.ProxyManager:  # a SOCKS manager keeps its own pools
            manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
        return manager


# --- text from the platform ---------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_JSON = re.compile(r"^(?:text/html|application/xhtml\+xml|text/xml|application/xml|[a-z]+/[a-z0-9.+-]*\+xml)$")


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _decode(content: bytes) -> tuple[str, bool]:
    """UTF-8 text of a body, and whether something had to be replaced (invalid UTF-8 -> U+FFFD)."""
    try:
        return content.decode("utf-8-sig"), False
    except UnicodeDecodeError:
        return content.decode("utf-8", errors="replace"), True


def _clean(value: Any, replaced_bytes: bool) -> tuple[Any, bool]:
    """``value`` as the platform sent it, and True when any text was not valid Unicode (a lone surrogate, or bytes
    that were not UTF-8 and became U+FFFD). Lone surrogates are kept: the snapshot stores them exactly, the sheet
    shows them replaced and marked (``rosterbook.core.cellform``), and nothing sends them back unless the cell is edited."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            return value, True  # kept as the platform holds it: the workbook shows it marked, the snapshot keeps it exactly
        return value, replaced_bytes and "\ufffd" in value
    if isinstance(value, dict):
        changed = False
        out: dict[str, Any] = {}
        for k, v in value.items():
            new_k, k_changed = _clean(k, replaced_bytes)
            new_v, v_changed = _clean(v, replaced_bytes)
            out[new_k] = new_v
            changed = changed or k_changed or v_changed
        return (out, True) if changed else (value, False)
    if isinstance(value, list):
        items = [_clean(v, replaced_bytes) for v in value]
        if any(c for _, c in items):
            return [v for v, _ in items], True
        return value, False
    return value, False


def _json_or_none(reply: Reply) -> Any:
    """The body as JSON when it is JSON (error answers), else None."""
    if not reply.content.strip() or _NOT_JSON.match(_media(reply.content_type)):
        return None
    text, replaced = _decode(reply.content)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if replaced or "\\ud" in text or "\\uD" in text:
        data, _ = _clean(data, replaced)
    return data


def _count(value: Any) -> int | None:
    """A non-negative integer from a ListResponse field (a number or its digits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 19:
        return int(value)
    return None


def _ci(data: Mapping[str, Any], name: str) -> Any:
    if name in data:
        return data[name]
    folded = name.casefold()
    return next((v for k, v in data.items() if isinstance(k, str) and k.casefold() == folded), None)


def _rfc_discovery() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """RFC 7643's core User, enterprise extension and Group schemas, and a User resource type using them."""
    schemas = [model.to_schema().model_dump(by_alias=True, exclude_none=True) for model in (User, EnterpriseUser, Group)]
    user_type = {"id": "User", "name": "User", "endpoint": "/Users", "schema": CORE_USER,
                 "schemaExtensions": [{"schema": ENTERPRISE_USER, "required": False}]}
    return schemas, [user_type]


# --- the client --------------------------------------------------------------------------------


class ScimClient:
    """A SCIM 2.0 platform reached over HTTPS (or HTTP on this machine), with one pooled session."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: tuple[float, float] | None = None,
        verify: bool | str = True,
        session: requests.Session | None = None,
        max_workers: int = 8,
        retry: RetryPolicy | None = None,
        use_bulk: bool = True,
        limits: Limits | None = None,
    ) -> None:
        _check_transport(base_url)
        parts = urlsplit(base_url)
        if parts.query or parts.fragment:
            raise InsecureTransport(f"{base_url!r}: the platform URL must not carry a query or fragment (e.g. 'https://example.com/scim/v2').")
        # requests turns verification off for any falsy value ('' and 0 too, with only a warning): accept
        # True or a CA bundle's path, nothing else.
        if verify is not True and not (isinstance(verify, str) and verify.strip()):
            raise InsecureTransport("TLS verification cannot be turned off; pass the path of the platform's CA bundle instead.")
        if isinstance(verify, str) and not Path(verify).exists():
            raise InsecureTransport(f"CA bundle {verify!r} does not exist.")
        if max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        limits = limits or Limits.from_env()
        if timeout is not None:
            limits = replace(limits, connect_timeout=timeout[0], read_timeout=timeout[1])
        self.limits = limits
        self.base_url = base_url.rstrip("/")
        self.verify: bool | str = verify
        self.max_workers = max_workers
        self.retry = retry or RetryPolicy()
        self.use_bulk = use_bulk
        self._token = token
        self._token_bytes = tuple(dict.fromkeys(t.encode() for t in (token, token.replace("/", "\\/")) if t)) if token else ()
        self.session = session or requests.Session()
        if session is None:
            # Retries are ours (they know what is safe to repeat); the pool matches the workers.
            adapter = _Adapter(pool_connections=2, pool_maxsize=max_workers + 2, max_retries=0)
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)
        self._discovery: Discovery | None = None
        self._lock = threading.Lock()
        self.breaker = 3 * max_workers
        """Connections in a row that could not be opened before the client stops trying."""
        self._unreachable = 0
        self._started = time.monotonic()
        self.requests_sent = 0
        """HTTP requests sent, retries included (for tests and benchmarks)."""
        self.warnings: list[str] = []
        """What the platform got wrong but could be worked around (missing /Schemas, users listed twice...)."""
        self.invalid_text: set[str] = set()
        """Ids of resources whose text was not valid Unicode (shown with U+FFFD)."""
        self._id_filter_failed = False
        """An ``id eq`` filter failed: current_versions reads by GET from then on."""

    @property
    def timeout(self) -> tuple[float, float]:
        """(connect, read) seconds."""
        return self.limits.connect_timeout, self.limits.read_timeout

    def __repr__(self) -> str:  # never the token
        return f"ScimClient({self.base_url!r})"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ScimClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _warn(self, message: str) -> None:
        with self._lock:
            if message not in self.warnings:
                self.warnings.append(scrub(message))

    # --- HTTP ------------------------------------------------------------------------------

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": SCIM_JSON, "Content-Type": SCIM_JSON}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if extra:
            headers.update(extra)
        return headers

    def _remaining(self) -> float:
        return self.limits.deadline - (time.monotonic() - self._started)

    def _deadline_passed(self, problem: str) -> ScimTimeout:
        last = f"; last problem: {problem}" if problem else ""
        return ScimTimeout(f"gave up on {self.base_url}: the {self.limits.deadline:g} s allowed for talking to the platform "
                           f"({DEADLINE_VAR}) passed{last}.")

    def _refused(self, status: int, method: str, path: str) -> Phrase:
        what = "the token" if self._token else "the request (no token is bound to this URL)"
        base = self.base_url
        return lambda words: f"the platform refused {what} ({status}) on {method} {path}. {words.sign_in(base)}"

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, _Cut):
            if exc.by_deadline:
                return f"no complete answer before the deadline ({DEADLINE_VAR})"
            return f"no complete answer within {exc.seconds:g} s ({READ_VAR})"
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return f"no connection within {self.limits.connect_timeout:g} s (ConnectTimeout)"
        if isinstance(exc, requests.exceptions.ReadTimeout):
            return f"no answer within {self.limits.read_timeout:g} s (ReadTimeout)"
        if isinstance(exc, requests.exceptions.ChunkedEncodingError):
            return "the answer was cut short (ChunkedEncodingError)"
        return type(exc).__name__

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        safe: bool,
    ) -> Reply:
        """Send one request, retrying only what cannot have applied or is harmless to repeat.

        :param safe: repeating the request can do no harm (GET, PATCH with If-Match, membership changes).
        :raises _UnknownOutcome: an unsafe request may have reached the server, without an answer.
        :raises ScimUnavailable: the platform could not be reached within the retry budget.
        :raises ScimTimeout: the overall deadline passed.
        :raises ScimAuthError: 401/403.
        :raises ScimProtocolError: a read redirected to another origin, or an answer over the size limit.
        """
        url = self.base_url + path
        data = _encode(body) if body is not None else None
        waited = 0.0
        attempt = 0
        problem = ""
        while True:
            attempt += 1
            if self._unreachable >= self.breaker:
                # Many connections in a row could not even be opened: fail the rest fast
                # instead of spending every row's retry budget on a platform that is down.
                raise ScimUnavailable(f"{self.base_url} cannot be reached; nothing more is sent in this run.")
            if self._remaining() <= 0:
                raise self._deadline_passed(problem)
            retry_after: str | None = None
            reply: Reply | None = None
            try:
                reply = self._send(method, url, data, params, headers)
            except requests.exceptions.SSLError:
                raise ScimError(f"TLS verification failed for {self.base_url}: SSLError. Check the certificate or the CA bundle.") from None
            except (requests.exceptions.RequestException, _Cut) as exc:
                if not (isinstance(exc, _Cut) and exc.by_deadline and problem):  # cut short by the deadline: the last real problem says more
                    problem = f"{self._describe(exc)} on {method} {path}"
                never_sent = isinstance(exc, requests.exceptions.RequestException) and _never_sent(exc)
                if never_sent:
                    with self._lock:
                        self._unreachable += 1
                if not (never_sent or safe):
                    raise _UnknownOutcome(problem) from None
            else:
                self._unreachable = 0
                status = reply.status_code
                if status in (401, 403):
                    raise ScimAuthError(self._refused(status, method, path), status=status)
                if status in RETRY_STATUSES:
                    retry_after = reply.headers.get("Retry-After")
                    problem = f"{status} on {method} {path}"
                elif status in UNKNOWN_OUTCOME_STATUSES:
                    problem = f"{status} on {method} {path}"
                    if not safe:
                        raise _UnknownOutcome(problem)
                else:
                    return reply
            wait = self.retry.delay(attempt, retry_after, waited)
            remaining = self._remaining()
            if wait is not None and wait >= remaining:
                raise self._deadline_passed(problem)
            if wait is None:
                if reply is not None and reply.status_code in RETRY_STATUSES:
                    return reply  # the caller reports the final 429/503 for the row
                if remaining <= 0:
                    raise self._deadline_passed(problem)
                raise ScimUnavailable(f"{self.base_url} did not answer usefully after {attempt} attempts ({problem}).")
            time.sleep(wait)
            waited += wait

    def _send(self, method: str, url: str, data: bytes | None, params: Mapping[str, str | int] | None,
              headers: Mapping[str, str] | None) -> Reply:
        """One request; a read follows redirects within the platform's origin, a write never."""
        for _ in range(MAX_REDIRECTS + 1):
            reply = self._exchange(method, url, data, params, headers)
            location = reply.headers.get("Location")
            if reply.status_code not in _REDIRECTS or method != "GET" or not location:
                return reply  # a write's redirect goes back to the caller unfollowed: it reports it
            target = urljoin(reply.url, location.strip())
            if _origin(target) != _origin(self.base_url):
                raise ScimProtocolError(
                    f"GET {reply.url} was redirected ({reply.status_code}) to another origin, {_origin_text(target)}; "
                    f"rosterbook follows redirects only within {_origin_text(self.base_url)}. Check the platform URL.",
                    status=reply.status_code,
                )
            _check_transport(target)
            url, params = target, None
        raise ScimProtocolError(f"GET {url} was redirected more than {MAX_REDIRECTS} times; check the platform URL.")

    def _exchange(self, method: str, url: str, data: bytes | None, params: Mapping[str, str | int] | None,
                  headers: Mapping[str, str] | None) -> Reply:
        """One HTTP exchange, the whole answer within ``read_timeout`` (and the deadline), at most ``max_response_bytes``."""
        remaining = self._remaining()
        limit = max(0.001, min(self.limits.read_timeout, remaining))
        watchdog = _Watchdog(limit)
        _LOCAL.watchdog = watchdog
        try:
            with self._lock:
                self.requests_sent += 1
            response = self.session.request(
                method, url, data=data, params=params, headers=self._headers(headers), timeout=(self.limits.connect_timeout, limit),
                verify=self.verify, allow_redirects=False, stream=True,
            )
            try:
                content = self._read(response, method)
            finally:
                response.close()
        except (requests.exceptions.RequestException, OSError) as exc:
            if watchdog.fired and not isinstance(exc, requests.exceptions.SSLError):
                raise _Cut(limit, by_deadline=remaining < self.limits.read_timeout) from None
            raise
        finally:
            watchdog.cancel()
            _LOCAL.watchdog = None
        for secret in self._token_bytes:
            if secret in content:  # a platform echoing the token: gone before anything reads the body
                content = content.replace(secret, b"[redacted]")
        headers_in = response.headers
        return Reply(method, response.url or url, response.status_code, scrub(response.reason or ""), headers_in, content)

    def _read(self, response: requests.Response, method: str) -> bytes:
        most = self.limits.max_response_bytes
        declared = (response.headers.get("Content-Length") or "").strip()
        shown = f"{method} {_shown_url(response.url)}"
        if declared.isdigit() and int(declared) > most:
            raise ScimProtocolError(f"{shown} answered {response.status_code} with {int(declared):,} bytes, more than the "
                                    f"{most / 1048576:g} MB allowed ({MAX_RESPONSE_VAR}); refused.", status=response.status_code)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if size > most:
                raise ScimProtocolError(f"{shown} answered {response.status_code} with more than the {most / 1048576:g} MB allowed "
                                        f"({MAX_RESPONSE_VAR}); refused.", status=response.status_code)
            chunks.append(chunk)
        return b"".join(chunks)

    def _parse(self, reply: Reply) -> Any:
        """A success answer's JSON, or a ScimProtocolError naming the URL, status and content type."""
        shown = f"{reply.method} {_shown_url(reply.url)}"
        ctype = reply.content_type
        if _NOT_JSON.match(_media(ctype)):
            raise ScimProtocolError(f"{shown} answered {reply.status_code} with content type {ctype!r}, not SCIM JSON: is a login page "
                                    f"or a proxy in the way? Check the platform URL.", status=reply.status_code)
        if not reply.content.strip():
            raise ScimProtocolError(f"{shown} answered {reply.status_code} with an empty body (content type {ctype!r}), not SCIM JSON.",
                                    status=reply.status_code)
        text, replaced = _decode(reply.content)
        try:
            data = json.loads(text)
        except ValueError as exc:
            what = f"{exc.msg} at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)[:80]
            raise ScimProtocolError(f"{shown} answered {reply.status_code} with a body that is not valid JSON (content type {ctype!r}, "
                                    f"{len(reply.content):,} bytes: {what}).", status=reply.status_code) from None
        except RecursionError:
            raise ScimProtocolError(f"{shown} answered {reply.status_code} with JSON nested too deeply to read.", status=reply.status_code) from None
        if replaced or "\\ud" in text or "\\uD" in text:
            data = self._mark_invalid_text(data, replaced)
        return data

    def _mark_invalid_text(self, data: Any, replaced: bool) -> Any:
        """Remember which resources had text that was not valid Unicode (their cells get a warning at export)."""
        if isinstance(data, dict) and isinstance(_ci(data, "Resources"), list):
            resources = []
            for resource in _ci(data, "Resources"):
                cleaned, changed = _clean(resource, replaced)
                if changed and isinstance(cleaned, dict):
                    with self._lock:
                        self.invalid_text.add(str(cleaned.get("id")))
                resources.append(cleaned)
            rest, _ = _clean({k: v for k, v in data.items() if k != "Resources"}, replaced)
            return {**rest, "Resources": resources}
        cleaned, changed = _clean(data, replaced)
        if changed and isinstance(cleaned, dict) and cleaned.get("id") is not None:
            with self._lock:
                self.invalid_text.add(str(cleaned.get("id")))
        return cleaned

    def _version_of(self, response: Reply, body: Any) -> str | None:
        """A resource's version: ``meta.version`` of its body; the ``ETag`` header only when the body has
        none and the platform announces ETag support (Express and many proxies add a body-hash ETag of their own)."""
        version = body_version(body)
        if version is None and self.discover().etag:
            return response.headers.get("ETag") or None
        return version

    def _get_json(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        reply = self._request("GET", path, params=params, safe=True)
        if reply.status_code != 200:
            raise _error(reply, f"GET {self.base_url}{path}")
        return self._parse(reply)

    # --- discovery -------------------------------------------------------------------------

    def discover(self, *, refresh: bool = False) -> Discovery:
        """Read /ServiceProviderConfig, /Schemas and /ResourceTypes (once; ``refresh`` reads again).

        A missing or broken ServiceProviderConfig means "nothing announced"; missing /Schemas or
        /ResourceTypes fall back to RFC 7643's core User and enterprise schemas, with a warning.
        The three are asked at once (one round trip of a far platform instead of three); an error is
        raised in that order, as if they had been asked one after the other.
        """
        if self._discovery is not None and not refresh:
            return self._discovery
        with ThreadPoolExecutor(max_workers=2) as pool:
            listed = pool.submit(self._list_discovery, "/Schemas"), pool.submit(self._list_discovery, "/ResourceTypes")
            config = self._read_config()
            (schemas, schemas_why), (resource_types, types_why) = (future.result() for future in listed)
        return self._discovered(config, schemas, schemas_why, resource_types, types_why)

    def _read_config(self) -> ServiceProviderConfig:
        """/ServiceProviderConfig; an empty one (nothing announced) when missing or not valid (with a warning)."""
        try:
            config = ServiceProviderConfig.model_validate(self._get_json("/ServiceProviderConfig"))
        except ScimError as exc:
            if exc.status not in (404, 501):
                raise
            config = ServiceProviderConfig()  # announces nothing: no Bulk, no ETag, default pages
        except (pydantic.ValidationError, TypeError, ValueError) as exc:
            first = exc.errors()[0]["msg"] if isinstance(exc, pydantic.ValidationError) and exc.errors() else type(exc).__name__
            self._warn(f"{self.base_url}/ServiceProviderConfig is not a valid SCIM ServiceProviderConfig ({first}); "
                       "assumed no Bulk, no ETags and default page sizes.")
            config = ServiceProviderConfig()
        return config

    def _discovered(self, config: ServiceProviderConfig, schemas: list[dict[str, Any]], schemas_why: str, resource_types: list[dict[str, Any]],
                    types_why: str) -> Discovery:
        """The discovery from what the three endpoints answered: RFC 7643's User and enterprise schemas where the platform
        describes none (with a warning)."""
        rfc_schemas, rfc_types = _rfc_discovery()
        ids = {str(s.get("id", "")).casefold() for s in schemas}
        if CORE_USER.casefold() not in ids:
            have = {str(s.get("id", "")).casefold() for s in schemas}
            schemas = [*[s for s in rfc_schemas if str(s["id"]).casefold() not in have], *schemas]
            self._warn(f"{self.base_url}/Schemas {schemas_why or 'does not describe the User resource'}: assumed the RFC 7643 core User "
                       "and enterprise extension schemas, so columns of the platform's own attributes may be missing.")
        if not any(t.get("name") == "User" or t.get("endpoint") == "/Users" for t in resource_types):
            extensions = [str(s.get("id")) for s in schemas if str(s.get("id", "")).casefold() not in (CORE_USER.casefold(), CORE_GROUP.casefold())
                          and ":extension:" in str(s.get("id", "")) and str(s.get("id", "")).endswith(":User")]
            user_type = dict(rfc_types[0], schemaExtensions=[{"schema": e, "required": False} for e in dict.fromkeys([ENTERPRISE_USER, *extensions])])
            resource_types = [*resource_types, user_type]
            if not types_why:
                types_why = "does not list the User resource type"
            self._warn(f"{self.base_url}/ResourceTypes {types_why}: assumed Users at /Users with the schemas above.")
        self._discovery = Discovery(config, schemas, resource_types)
        return self._discovery

    def _list_discovery(self, path: str) -> tuple[list[dict[str, Any]], str]:
        """The resources of a discovery endpoint, and why there are none (empty when it answered)."""
        try:
            data = self._get_json(path)
        except ScimProtocolError:
            raise
        except ScimError as exc:
            if exc.status in (404, 501):
                return [], f"is missing ({exc.status})"
            raise
        if isinstance(data, list):
            found = [d for d in data if isinstance(d, dict)]
        elif isinstance(data, dict):
            listed = _ci(data, "Resources")
            found = [d for d in listed if isinstance(d, dict)] if isinstance(listed, list) else []
        else:
            found = []
        return found, "" if found else "lists nothing"

    # --- export ----------------------------------------------------------------------------

    def export_users(self, progress: Progress | None = None, on_users: UsersPage | None = None) -> ExportResult:
        """Every user and every group (for memberships), paged as large as the server allows.

        The first page tells the total; the next pages are then fetched concurrently (a few at a
        time). ``progress(done, total)`` counts users, then groups. With ``on_users`` the groups are
        read first and ``on_users(page, groups)`` gets each page of users (in order, no user
        twice) as it arrives, so the caller can work on it while later pages are on the way; the
        result then holds no users (only their number): the caller has them.
        """
        counter = _Counter(progress)
        if on_users is not None:
            # A plain listing (no attributes=): servers answer it fastest, and groups are few. The pages go to
            # on_users and are not kept here (50,000 users' JSON would double an export's memory): their ids are.
            groups = self._list_all("/Groups", counter, {})
            ids: set[str] = set()

            def hand_over(page: list[dict[str, Any]]) -> None:
                ids.update(str(u.get("id")) for u in page)
                on_users(page, groups)

            self._list_all("/Users", counter, {}, on_page=hand_over)
            self._unknown_members(ids, groups)
            return ExportResult([], groups, len(ids))
        users = self._list_all("/Users", counter, {})
        groups = self._list_all("/Groups", counter, {})
        self._unknown_members({str(u.get("id")) for u in users}, groups)
        return ExportResult(users, groups, len(users))

    def _unknown_members(self, ids: set[str], groups: list[dict[str, Any]]) -> None:
        """Warn about groups listing members that are not users on the platform (their membership is ignored)."""
        group_ids = {str(g.get("id")) for g in groups}
        unknown: dict[str, int] = {}
        for group in groups:
            members = _ci(group, "members")
            for member in members if isinstance(members, list) else ():
                value = _ci(member, "value") if isinstance(member, dict) else None
                if isinstance(value, str) and value not in ids and value not in group_ids:
                    name = str(_ci(group, "displayName") or group.get("id"))
                    unknown[name] = unknown.get(name, 0) + 1
        if unknown:
            shown = ", ".join(f"{name!r} ({n})" for name, n in sorted(unknown.items())[:5]) + (" ..." if len(unknown) > 5 else "")
            self._warn(f"{self.base_url}/Groups: {len(unknown)} group(s) list members that are not users on the platform, ignored: {shown}.")

    def list_resources(self, path: str, *, attributes: str | None = None, progress: Progress | None = None) -> list[dict[str, Any]]:
        """Every resource at an endpoint (``/Users``, ``/Groups``), pages fetched concurrently."""
        return self._list_all(path, _Counter(progress), {"attributes": attributes} if attributes else {})

    def group_ids_by_name(self) -> dict[str, str]:
        """Group displayName -> id (what ``scim_map.change_to_operations`` needs for membership changes)."""
        groups = self.list_resources("/Groups")
        return {str(g["displayName"]): str(g["id"]) for g in groups if g.get("displayName") and g.get("id")}

    def _page(self, path: str, params: Mapping[str, str | int]) -> tuple[list[dict[str, Any]], int | None, int | None]:
        """One page of a listing: (resources, totalResults, startIndex), each resource a JSON object with an id."""
        data = self._get_json(path, params)
        shown = f"GET {self.base_url}{path}?{urlencode(params)}"
        if not isinstance(data, dict):
            raise ScimProtocolError(f"{shown} answered a JSON {type(data).__name__}, not a SCIM ListResponse object.")
        resources = _ci(data, "Resources")
        if resources is None:
            resources = []
        if not isinstance(resources, list):
            raise ScimProtocolError(f"{shown}: 'Resources' is a JSON {type(resources).__name__}, not a list of resources.")
        for resource in resources:
            rid = resource.get("id") if isinstance(resource, dict) else None
            if not isinstance(resource, dict) or isinstance(rid, bool) or not isinstance(rid, str | int) or rid == "":
                raise ScimProtocolError(f"{shown} listed {'a resource without an id' if isinstance(resource, dict) else 'something that is not a resource'}"
                                        f" ({len(resources)} listed); every SCIM resource has one.")
        raw_total = _ci(data, "totalResults")
        total = _count(raw_total)
        if raw_total is not None and total is None:
            raise ScimProtocolError(f"{shown}: totalResults {str(raw_total)[:40]!r} is not a count.")
        raw_start = _ci(data, "startIndex")
        return resources, total, _count(raw_start)

    def _list_all(
        self, path: str, counter: _Counter, extra: Mapping[str, str], *, on_page: Callable[[list[dict[str, Any]]], None] | None = None
    ) -> list[dict[str, Any]]:
        """Every resource of a listing, each once, in index order, pages read a few at a time (with ``on_page``: each
        page handed to it instead, and nothing returned).

        Bounded whatever the server says: a page that repeats users already listed (a server
        ignoring startIndex) or a startIndex answered with another one stops the listing with a
        ScimProtocolError, and a totalResults far beyond what the pages hold (10**12) costs one
        look-up once the pages run out, not 10**9 requests or a list of 10**9 page numbers.
        """
        where = f"{self.base_url}{path}"
        kind = path.strip("/").lower() or "resources"
        want = self.discover().max_results or DEFAULT_PAGE
        first, announced, _ = self._page(path, {**extra, "startIndex": 1, "count": want})
        size = len(first)
        total = announced if announced is not None else size
        counter.grow(min(total, max(size, 1) * 1000))  # a lying total must not stretch the progress bar forever
        seen: set[str] = set()
        result: list[dict[str, Any]] = []
        repeated = 0

        def take(start: int, got: list[dict[str, Any]]) -> None:
            nonlocal repeated
            fresh = []
            for resource in got:
                rid = str(resource["id"])
                if rid in seen:
                    repeated += 1
                    continue
                seen.add(rid)
                fresh.append(resource)
            if got and not fresh and start > 1:
                raise ScimProtocolError(
                    f"GET {where}?startIndex={start} listed only {kind} already listed on earlier pages ({len(got)} of them): the platform "
                    f"repeats pages or ignores startIndex, so the listing would never end. Stopped after {len(seen):,} {kind}."
                )
            counter.add(len(got))
            if on_page is not None:
                on_page(fresh)  # handed over, not kept
            else:
                result.extend(fresh)

        def fetch(start: int) -> list[dict[str, Any]]:
            got, _, echoed = self._page(path, {**extra, "startIndex": start, "count": size})
            if echoed is not None and echoed != start and got:
                raise ScimProtocolError(
                    f"GET {where}?startIndex={start} answered with startIndex={echoed}: the platform ignores startIndex, "
                    f"so the listing would never end. Stopped after {len(seen):,} {kind}."
                )
            return got

        take(1, first)
        if size == 0:
            if total > 0:
                raise ScimProtocolError(f"GET {where} said totalResults={total:,} but listed no {kind} on its first page.")
            return result
        full = total > size  # the last page read was full and more may follow
        next_start = 1 + size
        last_start = 1
        pending: deque[tuple[int, Future[list[dict[str, Any]]]]] = deque()
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            try:
                while True:
                    # Up to max_workers pages in flight while below totalResults; past it (users added
                    # while paging), one page at a time until a short one.
                    while full and len(pending) < self.max_workers and (next_start <= total or not pending):
                        pending.append((next_start, pool.submit(fetch, next_start)))
                        next_start += size
                    if not pending:
                        break
                    last_start, future = pending.popleft()
                    got = future.result()
                    take(last_start, got)
                    if len(got) < size:
                        full = False  # a short page: the end (pages already in flight are still read, in order)
            except BaseException:
                for _, future in pending:
                    future.cancel()
                raise
        if repeated:
            self._warn(f"{where}: the platform listed {repeated} {kind} more than once across pages; each was kept once.")
        if total - len(seen) > size:
            # The pages ran out well before totalResults: ask again (users may have been deleted meanwhile).
            _, now, _ = self._page(path, {**extra, "startIndex": 1, "count": 1})
            if now is not None and now - len(seen) > size:
                raise ScimProtocolError(
                    f"GET {where} said totalResults={now:,}, but its pages ended after {len(seen):,} {kind} "
                    f"(startIndex={last_start} was the last page with any): the platform's paging is broken, so the listing was stopped."
                )
        return result

    def get(self, path: str) -> CurrentResource | None:
        """One resource by path (``/Users/<id>``), or None when the platform has no such resource."""
        reply = self._request("GET", path, safe=True)
        if reply.status_code == 404:
            return None
        if reply.status_code != 200:
            raise _error(reply, f"GET {self.base_url}{path}")
        resource = self._parse(reply)
        if not isinstance(resource, dict):
            raise ScimProtocolError(f"GET {self.base_url}{path} answered a JSON {type(resource).__name__}, not a SCIM resource.")
        return CurrentResource(self._version_of(reply, resource), resource)

    def current_versions(self, ids: Iterable[str], *, total: int | None = None) -> dict[str, CurrentResource]:
        """The platform's current version and resource for each user id (absent ids are left out).

        ``total`` is how many users the platform is thought to hold: when the ids are a large share
        of it, every page is read. Otherwise, on a platform announcing filtering, the users are read
        in chunks through ``filter=id eq "a" or id eq "b" ...`` (a few requests at a time). Whatever
        is read that way, an id it did not yield (absent, not listed, the filter refused) is read by
        one GET, as on a platform that does not filter; a 404 there means absent. A listed resource
        counts only if its id was asked for, with its body's ``meta.version``; on a platform announcing
        ETags, one without ``meta.version`` is read by GET (the ETag header may be its version), so
        what a row is sent with (If-Match) is what the GET path gives.
        """
        unique = list(dict.fromkeys(ids))
        found: dict[str, CurrentResource] = {}
        if total is not None and len(unique) > 1 and len(unique) * LISTING_SHARE >= total:
            wanted = set(unique)
            rest = []  # listed without a version only a GET can give
            for resource in self._list_all("/Users", _Counter(None), {}):
                rid = str(resource.get("id"))
                if rid in wanted:
                    current = self._listed_current(resource)
                    if current is None:
                        rest.append(rid)
                    else:
                        found[rid] = current
        else:
            refused = self._read_by_filter(unique, found)
            rest = [rid for rid in unique if rid not in found]
            if refused is not None and rest:
                # The filter was refused the token: one GET says whether reading users is refused too (with today's
                # message) before the others are sent; a platform forbidding only searches is read by GETs.
                first = self.get(f"/Users/{rest[0]}")
                if first is not None:
                    found[rest[0]] = first
                rest = rest[1:]
        if rest:
            with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
                for rid, current in pool.map(lambda rid: (rid, self.get(f"/Users/{rid}")), rest):
                    if current is not None:
                        found[rid] = current
        return {rid: found[rid] for rid in unique if rid in found}

    def _listed_current(self, resource: dict[str, Any]) -> CurrentResource | None:
        """A listed user as its GET would give it, or None when only a GET can say its version (ETags announced, no meta.version)."""
        version = body_version(resource)
        if version is None and self.discover().etag:
            return None
        return CurrentResource(version, resource)

    def _read_by_filter(self, ids: Sequence[str], found: dict[str, CurrentResource]) -> ScimAuthError | None:
        """Read what an ``id eq`` filter yields of ``ids`` into ``found`` (nothing when the platform does not filter,
        or its filter failed before); the auth error when the platform refused the filter the token."""
        chunks = self._id_chunks(ids)
        if not chunks:
            return None
        try:
            # The first chunk alone: a platform that cannot filter on id says so once, not once per chunk in flight.
            found.update(self._filtered(chunks[0]))
            if len(chunks) > 1 and not self._id_filter_failed:
                with ThreadPoolExecutor(max_workers=min(self.max_workers, FILTER_CONCURRENCY)) as pool:
                    for got in pool.map(self._filtered, chunks[1:]):
                        found.update(got)
        except ScimAuthError as exc:
            self._id_filter_failed = True
            return exc
        return None

    def _id_chunks(self, ids: Sequence[str]) -> list[list[str]]:
        """The ids in chunks for ``id eq`` filters (none when the platform does not announce filtering, or its filter
        failed in this client); a chunk of one is left to GET."""
        disc = self.discover()
        if len(ids) < 2 or not disc.filter or self._id_filter_failed:
            return []
        most = min(FILTER_CHUNK, disc.max_results or FILTER_CHUNK)
        chunks: list[list[str]] = []
        chunk: list[str] = []
        size = 0
        for rid in ids:
            term = len(_quote(rid)) + 10  # 'id eq ' and ' or '
            if chunk and (len(chunk) >= most or size + term > FILTER_URL_TEXT):
                chunks.append(chunk)
                chunk, size = [], 0
            chunk.append(rid)
            size += term
        chunks.append(chunk)
        return [c for c in chunks if len(c) > 1]

    def _filtered(self, chunk: list[str]) -> dict[str, CurrentResource]:
        """What one ``id eq ... or ...`` filter yields of ``chunk``: only resources asked for (a platform ignoring the
        filter lists others). Any failure but the token's or the deadline's leaves the chunk to GETs, and the
        filter unused for the rest of this client's life."""
        if self._id_filter_failed:
            return {}
        expression = " or ".join(f"id eq {_quote(rid)}" for rid in chunk)
        try:
            listed, _, _ = self._page("/Users", {"filter": expression, "count": len(chunk)})
        except (ScimAuthError, ScimTimeout):
            raise
        except ScimError:
            self._id_filter_failed = True  # 400/501 (no filtering on id), a broken answer...: GETs say what they say
            return {}
        wanted = set(chunk)
        got: dict[str, CurrentResource] = {}
        for resource in listed:
            rid = str(resource["id"])
            current = self._listed_current(resource) if rid in wanted and rid not in got else None
            if current is not None:
                got[rid] = current
        return got

    def find_user(self, user_name: str) -> dict[str, Any] | None:
        """The user with this userName (case-insensitive, as SCIM says), or None."""
        resources, _, _ = self._page("/Users", {"filter": f"userName eq {_quote(user_name)}"})
        return resources[0] if resources else None

    # --- apply -----------------------------------------------------------------------------

    def apply(self, operations: Sequence[Operation], progress: Progress | None = None) -> list[OperationResult]:
        """Send the operations; one result per operation, in the same order.

        Uses /Bulk when announced (chunked at maxOperations and maxPayloadSize; creates first so
        later chunks can reference them; independent chunks sent a few at a time), else a bounded
        pool of single requests (requests on the same resource stay in order).
        """
        ops = list(operations)
        if not ops:
            return []
        if any(op.if_match for op in ops) and not self.discover().etag:
            # A platform that does not announce ETags may answer If-Match with 412 (or ignore it): never send it.
            ops = [replace(op, if_match=None) if op.if_match else op for op in ops]
        run = _Run(ops, _Counter(progress))
        run.counter.grow(len(run.ops))
        order = _order(run.ops)
        if self.use_bulk and len(run.ops) > 1 and self.discover().bulk:
            self._apply_bulk(run, order)
        else:
            self._apply_each(run, order)
        missing = [i for i, r in enumerate(run.results) if r is None]
        for i in missing:  # defensive: every path above records a result
            run.record(i, _result(run.ops[i], "failed", message="no result recorded"))
        return [r for r in run.results if r is not None]

    # single requests

    def _apply_each(self, run: _Run, indices: Sequence[int]) -> None:
        """Single requests, in waves: an operation waits for the creates it references.

        Within a wave, requests on different resources run concurrently (bounded pool) and
        requests on the same resource keep their order.
        """
        remaining = list(indices)
        while remaining:
            creating = {run.ops[i].bulk_id for i in remaining if run.ops[i].is_create and run.ops[i].bulk_id}
            ready = [i for i in remaining if not (run.ops[i].references() - {run.ops[i].bulk_id}) & creating]
            if not ready:
                ready = remaining  # a cycle of references: each is reported as not sent
            waiting = set(ready)
            remaining = [i for i in remaining if i not in waiting]
            by_target: dict[str, list[int]] = {}
            for i in ready:
                by_target.setdefault(f"#{i}" if run.ops[i].is_create else run.ops[i].path, []).append(i)

            def work(batch: list[int]) -> None:
                for i in batch:
                    run.record(i, self._run_one(run, i))

            if len(by_target) == 1:
                work(next(iter(by_target.values())))
                continue
            with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
                for future in [pool.submit(work, batch) for batch in by_target.values()]:
                    future.result()

    def _run_one(self, run: _Run, index: int) -> OperationResult:
        op = run.ops[index]
        body, blocked = run.resolve(op)
        if blocked is not None:
            return _result(op, "failed", message=blocked)
        try:
            if op.is_create:
                result = self._create(replace(op, body=body))
                if result.ok and op.bulk_id and result.resource_id:
                    run.created_ok(op.bulk_id, result.resource_id)
                elif op.bulk_id:
                    run.created_failed(op.bulk_id, op)
                return result
            return self._patch(replace(op, body=body))
        except ScimAuthError:
            raise
        except ScimError as exc:
            if op.bulk_id:
                run.created_failed(op.bulk_id, op)
            return _result(op, "failed", message=str(exc), http_status=exc.status)

    def _create(self, op: Operation) -> OperationResult:
        for _ in range(self.retry.max_attempts):
            try:
                response = self._request(op.method, op.path, body=op.body, safe=False)
            except _UnknownOutcome:
                # The POST may have created the user: look before creating again (no duplicates).
                try:
                    found = self.find_user(op.key)
                except ScimAuthError:
                    raise
                except ScimError as exc:
                    # The row fails, but the Sync log must not read as "not created": nobody knows yet.
                    return _result(op, "failed", http_status=exc.status,
                                   message=f"the platform's answer was lost and looking {op.key!r} up failed ({exc}); the user may have been "
                                           "created: run the sync again, it looks before creating.")
                if found is not None:
                    return self._existing(op, found, "the platform's answer was lost, but the user was created")
                continue
            return self._from_response(op, response)
        return _result(op, "failed", message=f"could not create {op.key!r}: the platform's answers kept getting lost; run the sync again.")

    def _patch(self, op: Operation) -> OperationResult:
        headers = {"If-Match": op.if_match} if op.if_match else None
        for _ in range(self.retry.max_attempts):
            response = self._request(op.method, op.path, body=op.body, headers=headers, safe=True)
            if response.status_code == 412 and not op.if_match:
                continue  # a concurrent write to the same group: the membership change is safe to repeat
            return self._from_response(op, response)
        return _result(op, "failed", message=f"{op.path} kept changing under concurrent writes; run the sync again.")

    def _from_response(self, op: Operation, reply: Reply) -> OperationResult:
        status = reply.status_code
        if 200 <= status < 300:
            body = _json_or_none(reply)
            if reply.content.strip() and not isinstance(body, dict):
                # A login page or a proxy answering 200: nothing says the platform applied the change.
                return _result(op, "failed", http_status=status, message=(
                    f"{op.key!r}: {op.method} {op.path} answered {status} with content type {reply.content_type!r}, not SCIM JSON; "
                    "whether the change was applied is unknown. Check the platform URL, then run preview and sync again."))
            body = body or {}
            version = self._version_of(reply, body)
            rid = body.get("id") or _id_from(reply.headers.get("Location")) or _id_from(op.path if not op.is_create else None)
            return _result(op, "ok", resource_id=str(rid) if rid is not None else None, version=version, http_status=status)
        if status in _REDIRECTS:
            target = reply.headers.get("Location")
            where = f" to {_origin_text(urljoin(reply.url, target))}" if target else ""
            return _result(op, "failed", http_status=status, message=(
                f"{op.key!r}: {op.method} {op.path} was redirected ({status}){where}; rosterbook never follows a redirect with a change, "
                "so nothing was sent there. Check the platform URL."))
        return self._from_error(op, status, _error_of(reply))

    def _from_error(self, op: Operation, status: int, error: Error) -> OperationResult:
        detail = error.detail or ""
        if status == 412:
            current = self.get(op.path)
            if current is None:
                return _result(op, "not-found", message=f"{op.key!r} no longer exists on the platform.", http_status=404)
            if already_applied(op, current.resource):
                return _result(op, "ok", resource_id=_id_from(op.path), version=current.version, http_status=status,
                               message="already applied (the platform already holds these values)")
            return _result(op, "conflict", resource_id=_id_from(op.path), version=current.version, http_status=status, current=current.resource,
                           message=f"{op.key!r} was changed on the platform since the export; refresh and decide which values to keep.")
        if status == 409:
            if op.is_create:
                found = self.find_user(op.key)
                if found is not None:
                    return self._existing(op, found, "already created")
            return _result(op, "duplicate", http_status=status, message=f"{op.key!r}: {detail or 'a unique value is already taken on the platform'}")
        if status == 404:
            return _result(op, "not-found", resource_id=_id_from(op.path), http_status=status,
                           message=f"{op.key!r} no longer exists on the platform (deleted there?); export again. {detail}".strip())
        if status in (400, 413, 422):
            return _result(op, "invalid", http_status=status, message=f"{op.key!r}: the platform refused the values: {detail or status}")
        return _result(op, "failed", http_status=status, message=f"{op.key!r}: {op.method} {op.path} answered {status}. {detail}".strip())

    def _existing(self, op: Operation, resource: dict[str, Any], how: str) -> OperationResult:
        """A create whose userName already exists: ours (same values) is ok, anyone else's is a duplicate."""
        rid = str(resource.get("id"))
        version = body_version(resource)
        if already_applied(op, resource):
            return _result(op, "ok", resource_id=rid, version=version, message=how)
        return _result(op, "duplicate", resource_id=rid, version=version, current=resource, http_status=409,
                       message=f"userName {op.key!r} already belongs to another user on the platform (id {rid}).")

    # Bulk

    def _apply_bulk(self, run: _Run, order: Sequence[int]) -> None:
        """Send the chunks, up to BULK_CONCURRENCY at once: a chunk starts once the chunks it depends on are done.

        A chunk depends on an earlier one that creates a user it references (``bulkId:``; new
        managers before their reports, new users before their memberships) or that acts on a
        resource it acts on too (requests on one group stay in order). Chunks start in order as
        slots free up, so a failure's effect on later chunks is the same as one at a time.
        """
        disc = self.discover()
        chunks = list(_chunks(run, order, disc.bulk_max_operations, disc.bulk_max_payload))
        after = _chunk_dependencies(run, chunks)
        workers = min(self.max_workers, BULK_CONCURRENCY)
        if len(chunks) == 1 or workers == 1:
            for chunk in chunks:
                self._send_chunk(run, chunk)
            return
        waiting = list(range(len(chunks)))
        done: set[int] = set()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            running: dict[Future[None], int] = {}
            try:
                while waiting or running:
                    for j in [j for j in waiting if after[j] <= done][: workers - len(running)]:
                        waiting.remove(j)
                        running[pool.submit(self._send_chunk, run, chunks[j])] = j
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        done.add(running.pop(future))
                        future.result()  # ScimAuthError and bugs surface here
            except BaseException:
                for future in running:
                    future.cancel()
                raise

    def _send_chunk(self, run: _Run, chunk: list[int]) -> None:
        entries: list[dict[str, Any]] = []
        sent: list[int] = []
        for i in chunk:
            op = run.ops[i]
            body, blocked = run.resolve(op, allow_pending=True)
            if blocked is not None:
                run.record(i, _result(op, "failed", message=blocked))
                if op.bulk_id:
                    run.created_failed(op.bulk_id, op)
                continue
            entries.append(_bulk_entry(op, body))
            sent.append(i)
        if not sent:
            return
        if len(sent) == 1:
            self._apply_each(run, sent)
            return
        try:
            response = self._request("POST", "/Bulk", body={"schemas": [BULK_REQUEST], "Operations": entries}, safe=False)
        except _UnknownOutcome:
            # Which operations ran is unknown: replay one by one. Creates look the user up
            # first, PATCHes carry If-Match (a repeat gets 412, then "already applied").
            self._apply_each(run, sent)
            return
        except ScimUnavailable as exc:
            for i in sent:  # never reached the platform: nothing applied
                run.record(i, _result(run.ops[i], "failed", message=str(exc)))
                if run.ops[i].bulk_id:
                    run.created_failed(str(run.ops[i].bulk_id), run.ops[i])
            return
        if response.status_code == 413:
            half = len(sent) // 2
            self._send_chunk(run, sent[:half])
            self._send_chunk(run, sent[half:])
            return
        if response.status_code != 200:
            self._apply_each(run, sent)
            return
        answer = _json_or_none(response)
        listed = _ci(answer, "Operations") if isinstance(answer, dict) else None
        outcomes = [o for o in listed if isinstance(o, dict)] if isinstance(listed, list) else []
        self._record_bulk(run, sent, outcomes)

    def _record_bulk(self, run: _Run, sent: list[int], outcomes: list[dict[str, Any]]) -> None:
        matched = _match_outcomes(run, sent, outcomes)
        failed_here: set[str] = set()
        settle: list[tuple[int, int, Error]] = []
        replay: list[int] = []
        creates = [i for i in sent if run.ops[i].is_create]
        others = [i for i in sent if not run.ops[i].is_create]
        for i in creates + others:  # creates first: their fate explains their dependants' errors
            op = run.ops[i]
            outcome = matched.get(i)
            if outcome is None or (op.references() & failed_here):
                # Not reported, or failed because a create it needed failed: replay singly.
                replay.append(i)
                if op.bulk_id:
                    failed_here.add(op.bulk_id)
                continue
            status = _count(outcome.get("status")) or 0
            if 200 <= status < 300:
                rid = _id_from(outcome.get("location"))
                if op.bulk_id and rid:
                    run.created_ok(op.bulk_id, rid)
                run.record(i, _result(op, "ok", resource_id=rid, version=outcome.get("version"), http_status=status))
                continue
            if op.bulk_id:
                failed_here.add(op.bulk_id)
            if status in RETRY_STATUSES:
                replay.append(i)  # not processed: safe to send again
            elif status in (409, 412):
                settle.append((i, status, _parse_error(outcome.get("response"), status)))
            else:
                run.record(i, self._from_error(op, status, _parse_error(outcome.get("response"), status)))
                if op.bulk_id:
                    run.created_failed(op.bulk_id, op)

        def settle_one(item: tuple[int, int, Error]) -> None:
            i, status, error = item
            op = run.ops[i]
            try:
                result = self._from_error(op, status, error)
            except ScimAuthError:
                raise
            except ScimError as exc:
                result = _result(op, "failed", message=str(exc), http_status=exc.status)
            if op.bulk_id:
                if result.ok and result.resource_id:
                    run.created_ok(op.bulk_id, result.resource_id)
                else:
                    run.created_failed(op.bulk_id, op)
            run.record(i, result)

        # 409 and 412 are settled by a look-up, not a resend: "already applied" (a re-run) is ok.
        if settle:
            with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
                list(pool.map(settle_one, settle))
        self._apply_each(run, replay)


# --- per-run bookkeeping ------------------------------------------------------------------------


class _Counter:
    """Progress as (done, total), thread-safe; total can grow (users, then groups)."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.done = 0
        self.total = 0
        self.lock = threading.Lock()

    def grow(self, n: int) -> None:
        with self.lock:
            self.total += n

    def add(self, n: int) -> None:
        with self.lock:
            self.done += n
            done, total = self.done, self.total
        if self.progress is not None:
            self.progress(done, total)


@dataclass
class _Run:
    ops: list[Operation]
    counter: _Counter
    results: list[OperationResult | None] = field(default_factory=list)
    created: dict[str, str] = field(default_factory=dict)
    failed: dict[str, Operation] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.results = [None] * len(self.ops)
        self.pending = {op.bulk_id for op in self.ops if op.is_create and op.bulk_id}

    def record(self, index: int, result: OperationResult) -> None:
        with self.lock:
            first = self.results[index] is None
            self.results[index] = result
        if first:
            self.counter.add(1)

    def created_ok(self, bulk_id: str, resource_id: str) -> None:
        with self.lock:
            self.created[bulk_id] = resource_id
            self.failed.pop(bulk_id, None)

    def created_failed(self, bulk_id: str, op: Operation) -> None:
        with self.lock:
            if bulk_id not in self.created:
                self.failed[bulk_id] = op

    def depends_on_failed(self, op: Operation) -> bool:
        with self.lock:
            return any(ref in self.failed or ref not in self.created for ref in op.references())

    def resolve(self, op: Operation, *, allow_pending: bool = False) -> tuple[dict[str, Any], str | None]:
        """The body with created ids filled in, or why it cannot be sent."""
        refs = op.references()
        with self.lock:
            for ref in refs:
                if ref in self.created:
                    continue
                if ref in self.failed:
                    other = self.failed[ref]
                    where = f" (row {other.row})" if other.row else ""
                    return op.body, f"not sent: it needs {other.key!r}{where}, who was not created."
                if ref not in self.pending:
                    return op.body, f"not sent: it refers to {BULK_REF}{ref}, which no create of this sync defines."
                if not allow_pending:
                    return op.body, f"not sent: it needs the user created as {BULK_REF}{ref}, who was not created."
            ids = dict(self.created)
        return (resolve_refs(op.body, ids) if refs else op.body), None


def _order(ops: Sequence[Operation]) -> list[int]:
    """Creates first, each after the creates it references (a new manager before their reports), then the rest."""
    creates = [i for i, op in enumerate(ops) if op.is_create]
    by_bulk = {ops[i].bulk_id: i for i in creates if ops[i].bulk_id}
    order: list[int] = []
    placed: set[int] = set()
    for root in creates:
        stack = [root]
        while stack:  # depth-first without recursion; a cycle is placed as found (the server reports it)
            i = stack[-1]
            deps = [by_bulk[r] for r in sorted(ops[i].references()) if r in by_bulk and by_bulk[r] not in placed and by_bulk[r] not in stack]
            if deps:
                stack.append(deps[0])
                continue
            stack.pop()
            if i not in placed:
                placed.add(i)
                order.append(i)
    return order + [i for i, op in enumerate(ops) if not op.is_create]


def _bulk_entry(op: Operation, body: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"method": op.method, "path": op.path, "data": body}
    if op.bulk_id:
        entry["bulkId"] = op.bulk_id
    if op.if_match:
        entry["version"] = op.if_match
    return entry


def _chunks(run: _Run, order: Sequence[int], max_ops: int, max_bytes: int) -> Iterable[list[int]]:
    """Consecutive chunks within maxOperations and maxPayloadSize (sizes measured on the exact encoding)."""
    envelope = len(_encode({"schemas": [BULK_REQUEST], "Operations": []}))
    chunk: list[int] = []
    size = envelope
    for i in order:
        op = run.ops[i]
        # Size with the bulkId references still in: resolved ids are about as long (uuid hex) and a
        # 413 splits the chunk anyway.
        entry = len(_encode(_bulk_entry(op, op.body))) + 1
        if chunk and (len(chunk) >= max_ops or size + entry > max_bytes):
            yield chunk
            chunk, size = [], envelope
        chunk.append(i)
        size += entry
    if chunk:
        yield chunk


def _chunk_dependencies(run: _Run, chunks: Sequence[list[int]]) -> list[set[int]]:
    """For each chunk, the earlier chunks it must wait for: the creators of users it references, and the chunks acting on the same resources."""
    creator: dict[str, int] = {}
    last_on: dict[str, int] = {}
    needs: list[set[int]] = []
    for j, chunk in enumerate(chunks):
        mine: set[int] = set()
        for i in chunk:
            op = run.ops[i]
            mine.update(creator[ref] for ref in op.references() if ref in creator)
            if not op.is_create and op.path in last_on:
                mine.add(last_on[op.path])
        for i in chunk:
            op = run.ops[i]
            if op.is_create and op.bulk_id:
                creator.setdefault(op.bulk_id, j)
            elif not op.is_create:
                last_on[op.path] = j
        mine.discard(j)
        needs.append(mine)
    return needs


def _match_outcomes(run: _Run, sent: list[int], outcomes: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Each sent operation's outcome: by position when the server reported all, else by bulkId."""
    if len(outcomes) == len(sent):
        return dict(zip(sent, outcomes, strict=True))
    by_bulk = {o.get("bulkId"): o for o in outcomes if o.get("bulkId")}
    return {i: by_bulk[run.ops[i].bulk_id] for i in sent if run.ops[i].bulk_id in by_bulk}


def _shown_url(url: str | None) -> str:
    """A URL as a message shows it: without a query string's credentials."""
    return scrub(url or "")


def body_version(body: Any) -> str | None:
    """``meta.version`` of a resource's JSON body (None when absent or not text)."""
    meta = body.get("meta") if isinstance(body, dict) else None
    version = meta.get("version") if isinstance(meta, dict) else None
    return version if isinstance(version, str) and version else None


def _parse_error(data: Any, status: int) -> Error:
    if isinstance(data, dict):
        try:
            error = Error.model_validate(data)
        except (ValueError, TypeError):
            error = Error(status=status, detail=str(_ci(data, "detail") or "")[:500] or None)
        if error.detail:
            error.detail = scrub(str(error.detail))[:500]
        return error
    return Error(status=status)


def _error_of(reply: Reply) -> Error:
    data = _json_or_none(reply)
    if data is None and reply.content.strip():
        media = _media(reply.content_type)
        if _NOT_JSON.match(media):
            return Error(status=reply.status_code, detail=f"(a {media} page, not a SCIM error)")
        return Error(status=reply.status_code, detail=scrub(_SURROGATE.sub("\ufffd", reply.text[:300])))
    return _parse_error(data, reply.status_code)


def _error(reply: Reply, what: str) -> ScimError:
    error = _error_of(reply)
    return ScimError(f"{what} answered {reply.status_code}: {error.detail or reply.reason}", status=reply.status_code,
                     scim_type=error.scim_type, detail=error.detail)
