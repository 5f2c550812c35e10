"""A thin SCIM 2.0 client on ``requests`` + scim2-models: discovery, export, apply, Bulk, retries.

It only moves bytes. What to send comes from ``rosterbook.core.scim_map`` (operations as plain
dicts); what came back is mapped to one :class:`OperationResult` per operation, so each row
learns its own fate and one row's failure never stops the others.

Safety rules, in one place:
- TLS verification is always on (a CA bundle path may replace the default store; ``False`` is refused),
  and a token never travels over plain HTTP to anything but this machine.
- A request is repeated only when it cannot have taken effect (connection not opened, 429, 503)
  or when repeating it is harmless (GET; PATCH with ``If-Match``; member add/remove).
- A create whose outcome is unknown (dropped connection, timeout, 502/504) is resolved by looking
  the user up by userName before creating again; a 409 or a stale ``If-Match`` is resolved by
  fetching the resource and asking the core whether it already holds what was wanted.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from scim2_models import Error, ServiceProviderConfig

from rosterbook.core.scim_map import BULK_REF, Operation, already_applied, resolve_refs
from sync_client.errors import InsecureTransport, ScimAuthError, ScimError, ScimUnavailable
from sync_client.retry import RETRY_STATUSES, UNKNOWN_OUTCOME_STATUSES, RetryPolicy

Status = Literal["ok", "conflict", "duplicate", "invalid", "not-found", "failed"]
Progress = Callable[[int, int], None]
UsersPage = Callable[[list[dict[str, Any]], list[dict[str, Any]]], None]
"""``(page of users, every group)``: what ``export_users`` hands over per page when asked."""

SCIM_JSON = "application/scim+json"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
DEFAULT_PAGE = 1000
"""Page size asked for when the server announces no maxResults (it may answer with fewer)."""
LISTING_SHARE = 10
"""current_versions reads every page once the ids are at least 1 in this many users: a page of
1000 costs the platform about what 10-20 single GETs cost, and takes one round trip instead of 1000."""


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
        return (self.config.bulk.max_operations if self.config.bulk else None) or 1000

    @property
    def bulk_max_payload(self) -> int:
        return (self.config.bulk.max_payload_size if self.config.bulk else None) or 1_048_576

    @property
    def max_results(self) -> int | None:
        return self.config.filter.max_results if self.config.filter and self.config.filter.supported else None

    @property
    def etag(self) -> bool:
        return bool(self.config.etag and self.config.etag.supported)


@dataclass(frozen=True)
class ExportResult:
    """Every user and group on the platform (raw SCIM JSON), and how many users there are."""

    users: list[dict[str, Any]]
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
    http_status: int | None = None
    current: dict[str, Any] | None = None
    """For a conflict or a duplicate: the resource as the platform holds it now."""
    row: int | None = None
    method: str = ""
    path: str = ""
    """``/Users/<id>`` or ``/Groups/<id>``: tells a user's own result from a membership one."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class _UnknownOutcome(Exception):
    """The request may have reached the server, and no usable answer came back."""


def _result(op: Operation, status: Status, **kw: Any) -> OperationResult:
    return OperationResult(op.row_id, op.key, status, row=op.row, method=op.method, path=op.path, **kw)


def _id_from(location: str | None) -> str | None:
    if not location:
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


def _never_sent(exc: requests.exceptions.RequestException) -> bool:
    """True when the connection was never opened, so the server cannot have seen the request."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


# --- the client --------------------------------------------------------------------------------


class ScimClient:
    """A SCIM 2.0 platform reached over HTTPS (or HTTP on this machine), with one pooled session."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: tuple[float, float] = (5, 60),
        verify: bool | str = True,
        session: requests.Session | None = None,
        max_workers: int = 8,
        retry: RetryPolicy | None = None,
        use_bulk: bool = True,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InsecureTransport(f"{base_url!r} is not an http(s) URL of a SCIM platform (e.g. 'https://example.com/scim/v2').")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise InsecureTransport(f"{base_url!r} uses plain HTTP: the token and the users' data would cross the network unencrypted. Use https://.")
        # requests turns verification off for any falsy value ('' and 0 too, with only a warning): accept
        # True or a CA bundle's path, nothing else.
        if verify is not True and not (isinstance(verify, str) and verify.strip()):
            raise InsecureTransport("TLS verification cannot be turned off; pass the path of the platform's CA bundle instead.")
        if isinstance(verify, str) and not Path(verify).exists():
            raise InsecureTransport(f"CA bundle {verify!r} does not exist.")
        if max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.verify: bool | str = verify
        self.max_workers = max_workers
        self.retry = retry or RetryPolicy()
        self.use_bulk = use_bulk
        self._token = token
        self.session = session or requests.Session()
        if session is None:
            # Retries are ours (they know what is safe to repeat); the pool matches the workers.
            adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max_workers + 2, max_retries=0)
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)
        self._discovery: Discovery | None = None
        self._lock = threading.Lock()
        self.breaker = 3 * max_workers
        """Connections in a row that could not be opened before the client stops trying."""
        self._unreachable = 0
        self.requests_sent = 0
        """HTTP requests sent, retries included (for tests and benchmarks)."""

    def __repr__(self) -> str:  # never the token
        return f"ScimClient({self.base_url!r})"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ScimClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- HTTP ------------------------------------------------------------------------------

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": SCIM_JSON, "Content-Type": SCIM_JSON}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if extra:
            headers.update(extra)
        return headers

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        safe: bool,
    ) -> requests.Response:
        """Send one request, retrying only what cannot have applied or is harmless to repeat.

        :param safe: repeating the request can do no harm (GET, PATCH with If-Match, membership changes).
        :raises _UnknownOutcome: an unsafe request may have reached the server, without an answer.
        :raises ScimUnavailable: the platform could not be reached within the retry budget.
        :raises ScimAuthError: 401/403.
        """
        url = self.base_url + path
        data = _encode(body) if body is not None else None
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            if self._unreachable >= self.breaker:
                # Many connections in a row could not even be opened: fail the rest fast
                # instead of spending every row's retry budget on a platform that is down.
                raise ScimUnavailable(f"{self.base_url} cannot be reached; nothing more is sent in this run.")
            retry_after: str | None = None
            response: requests.Response | None = None
            problem: str
            try:
                with self._lock:
                    self.requests_sent += 1
                response = self.session.request(
                    method, url, data=data, params=params, headers=self._headers(headers), timeout=self.timeout, verify=self.verify
                )
            except requests.exceptions.SSLError as exc:
                raise ScimError(f"TLS verification failed for {self.base_url}: {type(exc).__name__}. Check the certificate or the CA bundle.") from None
            except requests.exceptions.RequestException as exc:
                problem = f"{type(exc).__name__} on {method} {path}"
                never_sent = _never_sent(exc)
                if never_sent:
                    with self._lock:
                        self._unreachable += 1
                if not (never_sent or safe):
                    raise _UnknownOutcome(problem) from None
            else:
                self._unreachable = 0
                status = response.status_code
                if status in (401, 403):
                    raise ScimAuthError(
                        f"the platform refused the token ({status}) on {method} {path}; run 'rosterbook login {self.base_url}' or set ROSTERBOOK_TOKEN.",
                        status=status,
                    )
                if status in RETRY_STATUSES:
                    retry_after = response.headers.get("Retry-After")
                    problem = f"{status} on {method} {path}"
                elif status in UNKNOWN_OUTCOME_STATUSES:
                    problem = f"{status} on {method} {path}"
                    if not safe:
                        raise _UnknownOutcome(problem)
                else:
                    return response
            wait = self.retry.delay(attempt, retry_after, waited)
            if wait is None:
                if response is not None and response.status_code in RETRY_STATUSES:
                    return response  # the caller reports the final 429/503 for the row
                raise ScimUnavailable(f"{self.base_url} did not answer usefully after {attempt} attempts ({problem}).")
            time.sleep(wait)
            waited += wait

    def _get_json(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        response = self._request("GET", path, params=params, safe=True)
        if response.status_code != 200:
            raise _error(response, f"GET {path}")
        return response.json()

    # --- discovery -------------------------------------------------------------------------

    def discover(self, *, refresh: bool = False) -> Discovery:
        """Read /ServiceProviderConfig, /Schemas and /ResourceTypes (once; ``refresh`` reads again)."""
        if self._discovery is not None and not refresh:
            return self._discovery
        try:
            config = ServiceProviderConfig.model_validate(self._get_json("/ServiceProviderConfig"))
        except ScimError as exc:
            if exc.status not in (404, 501):
                raise
            config = ServiceProviderConfig()  # announces nothing: no Bulk, no ETag, default pages
        self._discovery = Discovery(config, self._list_discovery("/Schemas"), self._list_discovery("/ResourceTypes"))
        return self._discovery

    def _list_discovery(self, path: str) -> list[dict[str, Any]]:
        try:
            data = self._get_json(path)
        except ScimError as exc:
            if exc.status in (404, 501):
                return []
            raise
        if isinstance(data, list):
            return [d for d in data if isinstance(d, dict)]
        return [d for d in data.get("Resources") or () if isinstance(d, dict)]

    # --- export ----------------------------------------------------------------------------

    def export_users(self, progress: Progress | None = None, on_users: UsersPage | None = None) -> ExportResult:
        """Every user and every group (for memberships), paged as large as the server allows.

        The first page tells the total; the remaining pages are then fetched concurrently.
        ``progress(done, total)`` counts users, then groups. With ``on_users`` the groups are
        read first and ``on_users(page, groups)`` gets each page of users (in order, no user
        twice) as it arrives, so the caller can work on it while later pages are on the way.
        """
        counter = _Counter(progress)
        if on_users is not None:
            # A plain listing (no attributes=): servers answer it fastest, and groups are few.
            groups = self._list_all("/Groups", counter, {})
            users = self._list_all("/Users", counter, {}, on_page=lambda page: on_users(page, groups))
            return ExportResult(users, groups, len(users))
        users = self._list_all("/Users", counter, {})
        groups = self._list_all("/Groups", counter, {})
        return ExportResult(users, groups, len(users))

    def list_resources(self, path: str, *, attributes: str | None = None, progress: Progress | None = None) -> list[dict[str, Any]]:
        """Every resource at an endpoint (``/Users``, ``/Groups``), pages fetched concurrently."""
        return self._list_all(path, _Counter(progress), {"attributes": attributes} if attributes else {})

    def group_ids_by_name(self) -> dict[str, str]:
        """Group displayName -> id (what ``scim_map.change_to_operations`` needs for membership changes)."""
        groups = self.list_resources("/Groups")
        return {str(g["displayName"]): str(g["id"]) for g in groups if g.get("displayName") and g.get("id")}

    def _list_all(
        self, path: str, counter: _Counter, extra: Mapping[str, str], *, on_page: Callable[[list[dict[str, Any]]], None] | None = None
    ) -> list[dict[str, Any]]:
        passed: set[str] = set()

        def emit(got: list[dict[str, Any]]) -> None:
            # Pages reach on_page in index order, as the result lists them, each resource once.
            if on_page is not None:
                fresh = [r for r in got if str(r.get("id")) not in passed]
                passed.update(str(r.get("id")) for r in fresh)
                on_page(fresh)

        want = self.discover().max_results or DEFAULT_PAGE
        first = self._get_json(path, {**extra, "startIndex": 1, "count": want})
        page = list(first.get("Resources") or [])
        total = int(first.get("totalResults") or len(page))
        counter.grow(total)
        counter.add(len(page))
        emit(page)
        pages: dict[int, list[dict[str, Any]]] = {1: page}
        size = len(page)
        if size and total > size:
            starts = list(range(1 + size, total + 1, size))

            def fetch(start: int) -> tuple[int, list[dict[str, Any]]]:
                data = self._get_json(path, {**extra, "startIndex": start, "count": size})
                got = list(data.get("Resources") or [])
                counter.add(len(got))
                return start, got

            with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
                for start, got in pool.map(fetch, starts):
                    pages[start] = got
                    emit(got)
            # Users added while we paged push the tail further: read on until a short page.
            start = starts[-1] + size
            while len(pages[max(pages)]) >= size:
                data = self._get_json(path, {**extra, "startIndex": start, "count": size})
                pages[start] = list(data.get("Resources") or [])
                counter.add(len(pages[start]))
                emit(pages[start])
                start += size
        seen: set[str] = set()
        result: list[dict[str, Any]] = []
        for start in sorted(pages):
            for resource in pages[start]:
                rid = str(resource.get("id"))
                if rid not in seen:  # index paging shifts under concurrent deletes
                    seen.add(rid)
                    result.append(resource)
        return result

    def get(self, path: str) -> CurrentResource | None:
        """One resource by path (``/Users/<id>``), or None when the platform has no such resource."""
        response = self._request("GET", path, safe=True)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise _error(response, f"GET {path}")
        resource = response.json()
        version = response.headers.get("ETag") or (resource.get("meta") or {}).get("version")
        return CurrentResource(version, resource)

    def current_versions(self, ids: Iterable[str], *, total: int | None = None) -> dict[str, CurrentResource]:
        """The platform's current version and resource for each user id (absent ids are left out).

        ``total`` is how many users the platform is thought to hold: when the ids are a large share
        of it, every page is read instead of one GET per user (far fewer round trips).
        """
        unique = list(dict.fromkeys(ids))
        if total is not None and len(unique) > 1 and len(unique) * LISTING_SHARE >= total:
            wanted = set(unique)
            listed = self._list_all("/Users", _Counter(None), {})
            return {str(u.get("id")): CurrentResource((u.get("meta") or {}).get("version"), u) for u in listed if str(u.get("id")) in wanted}
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            found = list(pool.map(lambda rid: (rid, self.get(f"/Users/{rid}")), unique))
        return {rid: current for rid, current in found if current is not None}

    def find_user(self, user_name: str) -> dict[str, Any] | None:
        """The user with this userName (case-insensitive, as SCIM says), or None."""
        data = self._get_json("/Users", {"filter": f"userName eq {_quote(user_name)}"})
        resources = data.get("Resources") or []
        return resources[0] if resources else None

    # --- apply -----------------------------------------------------------------------------

    def apply(self, operations: Sequence[Operation], progress: Progress | None = None) -> list[OperationResult]:
        """Send the operations; one result per operation, in the same order.

        Uses /Bulk when announced (chunked at maxOperations and maxPayloadSize; creates first so
        later chunks can reference them), else a bounded pool of single requests (requests on the
        same resource stay in order).
        """
        run = _Run(list(operations), _Counter(progress))
        run.counter.grow(len(run.ops))
        if not run.ops:
            return []
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
                found = self.find_user(op.key)
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

    def _from_response(self, op: Operation, response: requests.Response) -> OperationResult:
        status = response.status_code
        if 200 <= status < 300:
            body = _json_or_none(response)
            meta = (body or {}).get("meta") or {}
            version = response.headers.get("ETag") or meta.get("version")
            rid = (body or {}).get("id") or _id_from(response.headers.get("Location")) or _id_from(op.path if not op.is_create else None)
            return _result(op, "ok", resource_id=rid, version=version, http_status=status)
        return self._from_error(op, status, _error_of(response))

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
        version = (resource.get("meta") or {}).get("version")
        if already_applied(op, resource):
            return _result(op, "ok", resource_id=rid, version=version, message=how)
        return _result(op, "duplicate", resource_id=rid, version=version, current=resource, http_status=409,
                       message=f"userName {op.key!r} already belongs to another user on the platform (id {rid}).")

    # Bulk

    def _apply_bulk(self, run: _Run, order: Sequence[int]) -> None:
        disc = self.discover()
        for chunk in _chunks(run, order, disc.bulk_max_operations, disc.bulk_max_payload):
            self._send_chunk(run, chunk)

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
        outcomes = list((_json_or_none(response) or {}).get("Operations") or [])
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
            status = int(outcome.get("status") or 0)
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


def _match_outcomes(run: _Run, sent: list[int], outcomes: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Each sent operation's outcome: by position when the server reported all, else by bulkId."""
    if len(outcomes) == len(sent):
        return dict(zip(sent, outcomes, strict=True))
    by_bulk = {o.get("bulkId"): o for o in outcomes if o.get("bulkId")}
    return {i: by_bulk[run.ops[i].bulk_id] for i in sent if run.ops[i].bulk_id in by_bulk}


def _json_or_none(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _parse_error(data: Any, status: int) -> Error:
    if isinstance(data, dict):
        try:
            return Error.model_validate(data)
        except ValueError:
            pass
        return Error(status=status, detail=str(data.get("detail") or "")[:500] or None)
    return Error(status=status)


def _error_of(response: requests.Response) -> Error:
    data = _json_or_none(response)
    if data is None and response.text:
        return Error(status=response.status_code, detail=response.text[:300])
    return _parse_error(data, response.status_code)


def _error(response: requests.Response, what: str) -> ScimError:
    error = _error_of(response)
    return ScimError(f"{what} answered {response.status_code}: {error.detail or response.reason}", status=response.status_code,
                     scim_type=error.scim_type, detail=error.detail)
