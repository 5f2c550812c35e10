"""Serving the sandbox over HTTP: a threaded WSGI server in a background thread, bearer token, loopback guard, fault hook."""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from socketserver import TCPServer, ThreadingMixIn
from types import TracebackType
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from scim2_models import BulkOperation, Context, ResourceType, Returned, ScimProvider, UnauthorizedException
from scim2_models import Path as ScimPath
from scim2_server.applications.wsgi import WSGIApplication, send_response
from scim2_server.bulk import BulkPlan
from scim2_server.conditions import Conditions
from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.routing import Operation, Target, match
from scim2_server.service import ScimService, is_json_media_type
from scim2_server.utils import parametrize

from rosterbook.errors import UsageError
from rosterbook.sandbox.patch import NotSimple, PatchCompiler, SimpleOperation, apply_simple
from rosterbook.sandbox.schema import build_provider
from rosterbook.sandbox.seed import DEFAULT_USERS, demo_organisation
from rosterbook.sandbox.storage import SqliteStorage

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

SCIM_ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
DB_NAME = "sandbox.sqlite3"


# --- fault hook ---------------------------------------------------------------------------------


@dataclass
class Fault:
    """A canned response the sandbox sends instead of (or after) serving matching requests."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    method: str | None = None
    path: str | None = None
    times: int = 1
    delay: float = 0.0
    after_serving: bool = False

    def matches(self, method: str, path: str) -> bool:
        """Whether a request (method, path relative to /v2) is one this fault answers."""
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.path is None:
            return True
        prefix = _scim_path(self.path).rstrip("/")
        return path == prefix or path.startswith(prefix + "/") or (prefix == "" and path.startswith("/"))

    def payload(self) -> tuple[bytes, dict[str, str]]:
        """The body bytes and headers of the canned response."""
        headers = dict(self.headers)
        body = self.body
        if body is None and self.status >= 400:
            body = {"schemas": [SCIM_ERROR_SCHEMA], "status": str(self.status), "detail": "Fault injected by the sandbox"}
        if body is None:
            return b"", headers
        if isinstance(body, bytes):
            return body, headers
        if isinstance(body, str):
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            return body.encode(), headers
        headers.setdefault("Content-Type", "application/scim+json")
        return json.dumps(body).encode(), headers


class Faults:
    """The queue of faults a test arms on a running sandbox (a real server-side hook, answered over HTTP).

    ``sandbox.faults.add(429, {"Retry-After": "1"}, method="POST", path="/Users", times=2)`` makes the
    next two ``POST /v2/Users`` answer 429 without reaching the storage. Faults are checked in the
    order they were added, before authentication, and each is used up after ``times`` matches.
    ``after_serving=True`` serves the request first (its change is stored) and then answers the
    fault instead of the real response: the case of a response lost after the platform applied it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Fault] = []

    def add(
        self,
        status: int,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
        delay: float = 0.0,
        after_serving: bool = False,
    ) -> Fault:
        """Arm a fault for the next ``times`` requests matching ``method`` and ``path`` (None = any)."""
        if times < 1:
            raise ValueError(f"times must be at least 1, not {times!r}")
        fault = Fault(status, dict(headers or {}), body, method, path, times, delay, after_serving)
        with self._lock:
            self._queue.append(fault)
        return fault

    def clear(self) -> None:
        """Disarm every pending fault."""
        with self._lock:
            self._queue.clear()

    @property
    def pending(self) -> int:
        """How many responses the armed faults will still replace."""
        with self._lock:
            return sum(fault.times for fault in self._queue)

    def take(self, method: str, path: str) -> Fault | None:
        """Use up one match of the first fault matching a request, if any."""
        with self._lock:
            for fault in self._queue:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times == 0:
                        self._queue.remove(fault)
                    return fault
        return None


def _scim_path(path: str) -> str:
    """A request path relative to the SCIM root (``/v2/Users/1`` -> ``/Users/1``)."""
    if path == "/v2" or path.startswith("/v2/"):
        path = path[3:]
    return path or "/"


@dataclass(frozen=True)
class RequestRecord:
    """One request the sandbox received: method, path (relative to /v2), query string, status answered."""

    method: str
    path: str
    query: str
    status: int


# --- the WSGI application ---------------------------------------------------------------------

LIST_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
BULK_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
_PLAIN_LISTING_PARAMETERS = frozenset({"startIndex", "count"})
_BULK_KEYS = frozenset({"schemas", "Operations", "failOnErrors"})
_BULK_OPERATION_KEYS = frozenset({"method", "path", "data", "version", "bulkId"})


def _patched_response(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """The body ``ScimService.bulk_response`` gives for PATCHes that all succeeded, without validating models."""
    operations: list[dict[str, Any]] = []
    for outcome in outcomes:
        entry: dict[str, Any] = {"method": "PATCH"}
        if outcome["bulk_id"] is not None:
            entry["bulkId"] = outcome["bulk_id"]
        if outcome.get("version") is not None:
            entry["version"] = outcome["version"]
        entry["location"] = outcome["location"]
        entry["status"] = str(int(outcome["status"]))
        operations.append(entry)
    return {"schemas": [BULK_RESPONSE_SCHEMA], "Operations": operations}


class _Outcomes:
    """What ``ScimService.bulk_response`` reads from a bulk plan: the outcomes, in the order of the request."""

    def __init__(self, outcomes: list[dict[str, Any]]) -> None:
        self._outcomes = outcomes

    def outcomes(self) -> list[dict[str, Any]]:
        return self._outcomes


class _SandboxHandler(ScimHandler):
    """scim2-server's handler with a fast path for plain listings (GET /Users?startIndex=&count=).

    scim2-server validates every listed resource into a model, copies it, dumps it, then validates
    and dumps the whole list again: about 1.5 ms per user, 75 s for a 50,000-user export. The
    stored documents are already the canonical JSON of their resources, so a plain page is sent
    as stored plus ``meta.location``. A document holding anything the response would change
    (an attribute never returned by default, such as password, or a ``$ref`` to rewrite as a URL)
    goes through scim2-server's own path. A filter naming ids only (``id eq "a" or id eq "b"``, how a client
    reads the users it changes) is served the same way from the documents of those ids; other filters, sorting,
    cursors and attribute selection go through scim2-server. tests/test_sandbox_http.py checks both paths give the same JSON.
    """

    fast_listing = True

    def __init__(self, service: ScimService, storage: SqliteStorage) -> None:
        super().__init__(service, storage)
        self.sqlite = storage
        self._markers: dict[str, tuple[str, ...]] = {}
        self._compilers: dict[str, PatchCompiler] = {}

    def _slow_markers(self, resource_type: ResourceType) -> tuple[str, ...]:
        """Texts whose presence in a stored document sends it through scim2-server's response path."""
        name = str(resource_type.name)
        if name not in self._markers:
            model = self.service.get_model(resource_type)
            hidden = {
                str(path).rsplit(":", 1)[-1].rsplit(".", 1)[-1]
                for path in parametrize(ScimPath, model).iter_paths(returned=[Returned.never, Returned.request])
            }
            self._markers[name] = ('"$ref"', *sorted(f'"{attribute}"' for attribute in hidden))
        return self._markers[name]

    def search(self, request: ScimRequest) -> ScimResponse:
        """Serve a search; a plain listing of one resource type takes the fast path, and so does a filter naming users
        by id (``id eq "a" or id eq "b" ...``: what a client reading the users it changes sends)."""
        if not self.fast_listing or request.method.upper() != "GET" or set(request.query) - _PLAIN_LISTING_PARAMETERS - {"filter"}:
            return super().search(request)
        with self.service.provider:
            target = self.service.route(request, Operation.search)
            if target.endpoint is None or not self.service.etag_supported:
                return super().search(request)
            resource_types = self.service.searched_types(target.endpoint)
            self.service.authorized_types(request, target, resource_types)
            search_request, _ = self.service.read_search_query(resource_types, request.query)
            if search_request.cursor is not None:
                return super().search(request)
            resource_type = resource_types[0]
            named = self.sqlite.named_ids(resource_type, search_request.filter) if search_request.filter is not None else None
            if search_request.filter is not None and (named is None or len(resource_types) != 1):
                return super().search(request)
            markers = self._slow_markers(resource_type)
            model = self.service.get_model(resource_type)
            start = search_request.start_index_0 or 0
            with self.storage.operation():
                if named is not None:
                    total, documents = self.sqlite.documents_named(resource_type, named, start, search_request.count)
                else:
                    total, documents = self.sqlite.documents(resource_type, start, search_request.count)
            listed: list[dict[str, Any]] = []
            for text in documents:
                if any(marker in text for marker in markers):
                    published = self.service.publish(request.base_url, model.model_validate_json(text))
                    listed.append(published.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=search_request))
                    continue
                document = json.loads(text)
                document["meta"]["location"] = self.service.resource_location(request.base_url, resource_type, document["id"])
                listed.append(document)
            body: dict[str, Any] = {
                "schemas": [LIST_RESPONSE_SCHEMA],
                "totalResults": total,
                "itemsPerPage": len(listed),
                "startIndex": search_request.start_index,
                "Resources": listed,
            }
            return ScimResponse(HTTPStatus.OK, body)

    # --- Bulk ------------------------------------------------------------------------------------

    fast_bulk = True

    def bulk(self, request: ScimRequest) -> ScimResponse:
        """Run a bulk request; simple PATCH operations take the fast path (see rosterbook.sandbox.patch).

        A request whose envelope is unusual (an unknown key, a POST, PUT or DELETE, a bulkId
        reference, a limit exceeded, anything but plain JSON) goes whole through scim2-server's own
        code, so bulkId references and request-level errors stay the reference ones. Otherwise each
        operation runs in the order of the request: a simple PATCH here, any other one through
        scim2-server's code for that operation alone (validated before anything runs, as the whole
        request would be), and ``failOnErrors`` stops the run where scim2-server stops it.
        """
        if not self.fast_bulk:
            return super().bulk(request)
        with self.service.provider:
            self.service.route(request, Operation.bulk)
            envelope = self._plain_bulk(request)
            if envelope is None:
                return super().bulk(request)
            operations, fail_on_errors = envelope
            prepared: list[tuple[dict[str, Any], _SimplePatch | None, BulkPlan | None]] = []
            for entry in operations:
                simple = self._simple_patch(request, entry)
                if simple is not None:
                    prepared.append((entry, simple, None))
                    continue
                try:
                    prepared.append((entry, None, self._single_plan(entry)))
                except Exception:  # the operation breaks the request itself: the reference path says how
                    return super().bulk(request)
            outcomes: list[dict[str, Any]] = []
            errors = 0
            all_simple = True
            with self.sqlite.batch():  # one commit for the request; each operation still stands or falls alone
                for entry, simple, plan in prepared:
                    if errors and fail_on_errors is not None and errors >= fail_on_errors:
                        break
                    outcome = self._run_simple(request, simple) if simple is not None else None
                    if outcome is None:
                        outcome = self._run_single(request, plan or self._single_plan(entry))
                        all_simple = False
                    outcomes.append(outcome)
                    if int(outcome["status"]) >= 400:
                        errors += 1
            if all_simple and not errors:
                return ScimResponse(HTTPStatus.OK, _patched_response(outcomes))
            return self.service.bulk_response(_Outcomes(outcomes))  # type: ignore[arg-type]

    def _plain_bulk(self, request: ScimRequest) -> tuple[list[dict[str, Any]], int | None] | None:
        """The operations and failOnErrors of a bulk request made only of PATCHes, or None (the reference path serves it)."""
        config = self.service.config.bulk
        body = request.body
        if config is None or not config.supported or b"bulkId:" in body:
            return None
        limit = self.service.bulk_max_payload_size()
        content_type = request.header("Content-Type")
        if (limit is not None and len(body) > limit) or (content_type and not is_json_media_type(content_type)):
            return None
        try:
            data = json.loads(body)
        except ValueError:
            return None
        if not isinstance(data, dict) or not set(data) <= _BULK_KEYS or data.get("schemas") != [BULK_REQUEST_SCHEMA]:
            return None
        operations = data.get("Operations")
        fail_on_errors = data.get("failOnErrors")
        if not isinstance(operations, list) or not operations:
            return None
        if config.max_operations is not None and len(operations) > config.max_operations:
            return None
        if fail_on_errors is not None and (type(fail_on_errors) is not int or fail_on_errors < 1):
            return None
        for entry in operations:
            if not isinstance(entry, dict) or not set(entry) <= _BULK_OPERATION_KEYS or entry.get("method") != "PATCH":
                return None
            if not isinstance(entry.get("path"), str) or not isinstance(entry.get("data"), dict):
                return None
            if not all(isinstance(entry.get(key), str) for key in ("version", "bulkId") if key in entry):
                return None
        return operations, fail_on_errors

    def _compiler(self, resource_type: ResourceType) -> PatchCompiler:
        name = str(resource_type.name)
        if name not in self._compilers:
            self._compilers[name] = PatchCompiler(self.service.get_model(resource_type))
        return self._compilers[name]

    def _simple_patch(self, request: ScimRequest, entry: dict[str, Any]) -> _SimplePatch | None:
        """A bulk PATCH resolved for the fast path, or None when it is not simple."""
        try:
            target = match("PATCH", entry["path"])
            resource_type = self.service.get_resource_type_by_endpoint(str(target.endpoint)) if target.endpoint else None
        except Exception:  # routing errors are reported by the reference path
            return None
        if target.me or target.operation is not Operation.patch or target.resource_id is None or resource_type is None:
            return None
        operations = self._compiler(resource_type).compile(entry["data"])
        if operations is None:
            return None
        return _SimplePatch(resource_type, target, operations, entry.get("version"), entry.get("bulkId"))

    def _run_simple(self, request: ScimRequest, simple: _SimplePatch) -> dict[str, Any] | None:
        """The outcome of a simple PATCH applied to the stored document, or None when this document needs the reference path."""
        resource_id = str(simple.target.resource_id)
        location = self.service.resource_location(request.base_url, simple.resource_type, resource_id)
        outcome: dict[str, Any] = {"method": BulkOperation.Method.patch, "bulk_id": simple.bulk_id, "location": location}
        conditions = Conditions(if_match=simple.version)
        etag = self.service.etag_supported

        def change(document: dict[str, Any], version: str) -> bool:
            conditions.check(version if etag else None, "PATCH")  # 412 before the PATCH is applied, as scim2-server
            return apply_simple(document, simple.operations)

        try:
            self.service.authorize(request, simple.target, simple.resource_type)
            self.service.ensure_patch_supported()
            with self.storage.operation():
                version = self.sqlite.edit(simple.resource_type, resource_id, change)
        except NotSimple:
            return None
        except Exception as exception:
            return self.service.bulk_failure(outcome, exception)
        outcome["status"] = HTTPStatus.OK
        outcome["version"] = version if etag else None
        return outcome

    def _single_plan(self, entry: dict[str, Any]) -> BulkPlan:
        """scim2-server's plan of a bulk request holding this one operation (validated as in the whole request)."""
        return self.service.read_bulk(json.dumps({"schemas": [BULK_REQUEST_SCHEMA], "Operations": [entry]}).encode(), "application/scim+json")

    def _run_single(self, request: ScimRequest, plan: BulkPlan) -> dict[str, Any]:
        """The outcome of one operation run by scim2-server's own bulk code."""
        result, _ = self.run_bulk_step(request, plan, plan.steps[0])
        return result


@dataclass(frozen=True)
class _SimplePatch:
    """A bulk PATCH the fast path can apply: where, what, and the operation's version and bulkId."""

    resource_type: ResourceType
    target: Target
    operations: list[SimpleOperation]
    version: str | None
    bulk_id: str | None


class _SandboxApplication(WSGIApplication):
    """scim2-server's WSGI application with a bearer token, request counting and the fault hook."""

    def __init__(self, storage: SqliteStorage, provider: ScimProvider, token: str | None, faults: Faults) -> None:
        super().__init__(storage, provider, ScimService(provider))
        self.handler: _SandboxHandler = _SandboxHandler(self.service, storage)
        self.token = token
        self.faults = faults
        self.count_lock = threading.Lock()
        self.request_count = 0
        self.records: deque[RequestRecord] = deque(maxlen=10_000)

    def check_auth(self, request: ScimRequest) -> None:
        """Refuse a request without the bearer token (when one is set)."""
        if self.token is None:
            return
        scheme, _, given = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            raise UnauthorizedException(detail="A valid bearer token is required")

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request: count it, answer an armed fault or serve it with scim2-server."""
        method = environ.get("REQUEST_METHOD", "GET")
        path = _scim_path(environ.get("PATH_INFO", ""))
        with self.count_lock:
            self.request_count += 1
        fault = self.faults.take(method, path)
        if fault is not None and not fault.after_serving:
            return self._answer_fault(fault, environ, method, path, start_response)
        response = self.serve(self.read_request(environ))
        if fault is not None:
            return self._answer_fault(fault, environ, method, path, start_response)
        self.records.append(RequestRecord(method, path, environ.get("QUERY_STRING", ""), int(response.status)))
        return send_response(response, start_response)

    def _answer_fault(self, fault: Fault, environ: WSGIEnvironment, method: str, path: str, start_response: StartResponse) -> list[bytes]:
        if fault.delay:
            time.sleep(fault.delay)
        body, headers = fault.payload()
        self.records.append(RequestRecord(method, path, environ.get("QUERY_STRING", ""), fault.status))
        phrase = _reason(fault.status)
        start_response(f"{fault.status} {phrase}", [*headers.items(), ("Content-Length", str(len(body)))])
        return [body]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Fault"


# --- the HTTP server ----------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    """wsgiref's handler without the access log on stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can stall for seconds.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)
        self.setup_environ()


class _Server6(_Server):
    address_family = socket.AF_INET6


def is_loopback(host: str) -> bool:
    """Whether a host name or address only reaches this machine."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --- the sandbox --------------------------------------------------------------------------------


class Sandbox:
    """A running sandbox: a SCIM 2.0 server on ``url`` over a SQLite storage, served from a background thread."""

    def __init__(
        self,
        *,
        server: WSGIServer,
        application: _SandboxApplication,
        storage: SqliteStorage,
        token: str | None,
        db_path: Path | None,
    ) -> None:
        self._server = server
        self._application = application
        self.storage = storage
        self.token = token
        self.db_path = db_path
        host, port = server.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        self.faults = application.faults
        self.seeded = 0
        """How many demo users were seeded when this sandbox started (0: the database already held data)."""
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"rosterbook-sandbox-{self.port}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            self._server.serve_forever(poll_interval=0.05)
        finally:
            self._stopped.set()

    @property
    def url(self) -> str:
        """The SCIM base URL, e.g. ``http://127.0.0.1:7643/v2``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v2"

    @property
    def request_count(self) -> int:
        """How many HTTP requests the sandbox has received (faulted and refused ones included)."""
        with self._application.count_lock:
            return self._application.request_count

    @property
    def request_log(self) -> list[RequestRecord]:
        """The last requests received (up to 10,000), oldest first."""
        return list(self._application.records)

    @property
    def running(self) -> bool:
        """Whether the server still serves."""
        return not self._stopped.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the sandbox stops (or ``timeout`` seconds pass); True when it stopped."""
        return self._stopped.wait(timeout)

    def stop(self) -> None:
        """Stop serving and close the database (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
        self.storage.close()
        self._stopped.set()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        auth = "token set" if self.token else "no token"  # never the token itself
        return f"<Sandbox {self.url} db={self.db_path or ':memory:'} {auth}>"


def start_sandbox(
    db_path: Path | str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    users: int | None = None,
    token: str | None = None,
    seed: int = 1,
    allow_remote: bool = False,
) -> Sandbox:
    """Start a sandbox in a background thread and return it once it accepts connections.

    ``db_path`` None keeps the data in memory. A database holding no resources is seeded with the
    demo organisation (``users`` users, default 300; 0 leaves it empty); a database with data is
    served as it is. Non-loopback hosts are refused unless ``allow_remote``.
    """
    if not allow_remote and not is_loopback(host):
        raise UsageError(
            f"refusing to serve on {host!r}: it is not a loopback address, so other machines could reach the sandbox. "
            "Use 127.0.0.1, or pass --allow-remote (and set a --token)."
        )
    if users is not None and users < 0:
        raise UsageError(f"users must be 0 or more, not {users!r}")
    if token is not None and not token.strip():
        raise UsageError("the token is empty")
    path = Path(db_path) if db_path is not None else None
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the folder of the sandbox database {str(path.parent)!r}: {exc.strerror or exc}") from None
    provider = build_provider(bearer_token=token is not None)
    try:
        storage = SqliteStorage(path if path is not None else ":memory:", provider)
    except Exception as exc:  # sqlite3.DatabaseError: not a database, locked, unreadable
        raise UsageError(f"cannot open the sandbox database {str(path)!r}: {exc}") from None
    try:
        seeded = seed_if_empty(storage, DEFAULT_USERS if users is None else users, seed=seed)
        application = _SandboxApplication(storage, provider, token, Faults())
        server_class = _Server6 if ":" in host.strip("[]") else _Server
        try:
            server = server_class((host.strip("[]"), port), _QuietHandler)
        except OSError as exc:
            raise UsageError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
        server.set_app(application)
    except BaseException:
        storage.close()
        raise
    running = Sandbox(server=server, application=application, storage=storage, token=token, db_path=path)
    running.seeded = seeded
    return running


def seed_if_empty(storage: SqliteStorage, users: int, *, seed: int = 1) -> int:
    """Seed the demo organisation into a storage that holds no resources; return how many users were seeded."""
    if users == 0 or storage.count() > 0:
        return 0
    user_docs, group_docs = demo_organisation(users, seed)
    user_type = next(rt for rt in storage.provider.resource_types if rt.name == "User")
    group_type = next(rt for rt in storage.provider.resource_types if rt.name == "Group")
    written = storage.load([(user_type, user_docs), (group_type, group_docs)], only_if_empty=True)
    return len(user_docs) if written else 0


def default_home() -> Path:
    """Where rosterbook keeps its data: $ROSTERBOOK_HOME, else ~/.local/share/rosterbook."""
    configured = os.environ.get("ROSTERBOOK_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".local" / "share" / "rosterbook"


@contextmanager
def embedded(home: Path | None = None) -> Iterator[Sandbox]:
    """Run the embedded sandbox for the duration of a command: 127.0.0.1, a free port, ``<home>/sandbox.sqlite3``.

    The first use seeds the default demo organisation; later uses see the same data.
    """
    directory = Path(home) if home is not None else default_home()
    with start_sandbox(directory / DB_NAME) as sandbox:
        yield sandbox
