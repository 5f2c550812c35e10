"""A misbehaving SCIM platform on 127.0.0.1: a small threaded HTTP server in front of a real sandbox.

It forwards each request to the upstream sandbox and sends back its answer, unless the chosen
``behaviour`` says otherwise: answer on its own (an HTML login page, 401 after a few writes, a 307
to another origin, a byte at a time), or rewrite what the sandbox answered (ignore startIndex,
repeat pages, claim 10**12 users, put a lone surrogate or 10 MB into one user, drop /Schemas...).

Every request is recorded with its headers (``seen``), so a test can prove which server got a
token. Pages are made small (``page`` users, announced as ServiceProviderConfig's maxResults) so
that paging misbehaviour shows with a dozen users. Bounded and self-stopping like the fault proxy:
HTTP/1.0 (one request per connection), dripping answers stop when the server stops, and the
whole server stops after ``lifetime`` seconds.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

BEHAVIOURS = (
    "pass",  # forward everything unchanged
    "ignore-start-index",  # every page is the first page (and says startIndex=1)
    "repeat-page",  # each page after the first repeats the one before, claiming the startIndex asked for
    "huge-total",  # totalResults: 10**12
    "html-login",  # every request answered 200 with an HTML sign-in page
    "not-json",  # 200 application/scim+json whose body is not JSON
    "truncated-json",  # JSON cut in the middle (honest Content-Length)
    "cut-connection",  # Content-Length promises more than is sent, then the connection closes
    "drip",  # headers, then the body one byte every 50 ms
    "slow-headers",  # the status line and headers one byte every 50 ms
    "lone-surrogate",  # one user's title holds a lone surrogate (\ud800) and a control character
    "invalid-utf8",  # one user's family name holds bytes that are not UTF-8
    "no-schemas",  # /Schemas and /ResourceTypes answer 404
    "bad-config",  # /ServiceProviderConfig is not a ServiceProviderConfig
    "unauthorized-mid-sync",  # writes answered 401 after the first ``writes_allowed``
    "duplicate-ids",  # every page after the first also lists the first user again
    "unknown-members",  # a group lists members that are not users
    "huge-user",  # one user's title is 10 MB
    "redirect-writes",  # POST/PATCH/PUT/DELETE answered 307 to another origin (``elsewhere``)
    "redirect-reads",  # GET /Users answered 302 to another origin (``elsewhere``)
    "redirect-same-origin",  # GET /Users answered 301 to the same listing under /v2/moved/Users (served): followed
    "echo-authorization",  # writes answered 400 quoting the request's Authorization and Cookie headers
    "echo-token-in-data",  # listed users carry the request's Authorization header in their title
    "html-on-writes",  # writes answered 200 with an HTML page (a proxy's sign-in page)
    "unavailable",  # 503 to everything, with Retry-After: 0
    "resource-without-id",  # one listed user has no id
    "wrong-shape",  # a listing answers a JSON array instead of a ListResponse
)

_PAGE = 5
_SCIM = "application/scim+json"


@dataclass(frozen=True)
class Seen:
    """One request the hostile server read."""

    method: str
    target: str
    headers: dict[str, str]


class HostileServer:
    """A threaded HTTP/1.0 server on 127.0.0.1 (port 0) in front of ``upstream`` (a sandbox's ``http://host:port/v2``)."""

    def __init__(self, upstream: str, behaviour: str = "pass", *, page: int = _PAGE, writes_allowed: int = 1,
                 elsewhere: str | None = None, no_bulk: bool = False, lifetime: float = 120.0) -> None:
        parts = urlsplit(upstream)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream must be http://host:port/..., got {upstream!r}")
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}")
        self.upstream_host, self.upstream_port, self.prefix = parts.hostname, parts.port, parts.path.rstrip("/")
        self.behaviour = behaviour
        self.page = page
        self.writes_allowed = writes_allowed
        self.no_bulk = no_bulk
        """Announce no Bulk support (writes go one request per change)."""
        self.elsewhere = elsewhere or "http://127.0.0.2:9/v2"
        self.seen: list[Seen] = []
        self.writes = 0
        self._lock = threading.Lock()
        self.stopped = threading.Event()
        owner = self

        class Handler(_Handler):
            hostile = owner

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.prefix}"

    def start(self) -> HostileServer:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        if self.stopped.is_set():
            return
        self.stopped.set()
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def tokens_seen(self) -> list[str]:
        """The Authorization headers requests carried."""
        with self._lock:
            return [s.headers[k] for s in self.seen for k in s.headers if k.lower() == "authorization"]

    def record(self, method: str, target: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.seen.append(Seen(method, target, headers))

    def forward(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send the request to the sandbox; its status, headers and body."""
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
        try:
            keep = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection", "content-length", "accept-encoding")}
            conn.request(method, target, body=body or None, headers=keep)
            response = conn.getresponse()
            data = response.read()
            out = {k: v for k, v in response.getheaders() if k.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server")}
            return response.status, out, data
        finally:
            conn.close()


class _Handler(BaseHTTPRequestHandler):
    hostile: HostileServer
    protocol_version = "HTTP/1.0"
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    # --- answering -----------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str = _SCIM, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers=headers)  # ensure_ascii: a lone surrogate travels as \ud800

    def _error(self, status: int, detail: str) -> None:
        self._json(status, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(status), "detail": detail})

    def _drip(self, data: bytes) -> None:
        for i in range(len(data)):
            if self.hostile.stopped.is_set():
                return
            self.wfile.write(data[i : i + 1])
            self.wfile.flush()
            time.sleep(0.05)

    def _handle(self) -> None:
        owner = self.hostile
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = dict(self.headers.items())
        method, target = self.command, self.path
        owner.record(method, target, headers)
        parts = urlsplit(target)
        path = parts.path[len(owner.prefix):] if parts.path.startswith(owner.prefix) else parts.path
        query = dict(parse_qsl(parts.query))
        write = method != "GET"
        b = owner.behaviour
        with suppress(OSError):
            if write and b in ("unauthorized-mid-sync", "redirect-writes", "echo-authorization", "html-on-writes"):
                with owner._lock:
                    owner.writes += 1
                    count = owner.writes
                if b == "unauthorized-mid-sync" and count > owner.writes_allowed:
                    self._error(401, "the session expired")
                    return
                if b == "redirect-writes":
                    self._send(307, b"", headers={"Location": owner.elsewhere + path})
                    return
                if b == "echo-authorization":
                    echoed = f"Authorization: {headers.get('Authorization', '')}; Cookie: session=abc123def456"
                    self._error(400, f"invalid request; the request headers were {echoed}; 'Authorization': '{headers.get('Authorization', '')}'")
                    return
                if b == "html-on-writes":
                    self._send(200, b"<html><head><title>Sign in</title></head><body>Sign in to continue</body></html>", "text/html; charset=utf-8")
                    return
            if b == "html-login":
                self._send(200, b"<!DOCTYPE html><html><head><title>Sign in - Example SSO</title></head><body><form>...</form></body></html>",
                           "text/html; charset=utf-8")
                return
            if b == "unavailable":
                self._send(503, b'{"detail": "down for maintenance"}', headers={"Retry-After": "0"})
                return
            if b == "slow-headers":
                self._drip(b"HTTP/1.0 200 OK\r\nContent-Type: application/scim+json\r\nX-Padding: " + b"x" * 4000 + b"\r\n\r\n{}")
                return
            if b == "no-schemas" and path in ("/Schemas", "/ResourceTypes"):
                self._error(404, "not found")
                return
            if b == "bad-config" and path == "/ServiceProviderConfig":
                self._json(200, {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"], "bulk": "yes", "filter": 7, "etag": [1]})
                return
            if b == "redirect-reads" and not write and path == "/Users":
                self._send(302, b"", headers={"Location": owner.elsewhere + "/Users?" + parts.query})
                return
            if b == "redirect-same-origin" and not write and path == "/Users":
                self._send(301, b"", headers={"Location": f"{owner.prefix}/moved/Users?{parts.query}"})  # a relative Location
                return
            if path.startswith("/moved/"):
                path = path[len("/moved"):]
            listing = not write and path in ("/Users", "/Groups") and "filter" not in query
            start = int(query.get("startIndex", "1") or 1)
            count = int(query.get("count", str(owner.page)) or owner.page)
            if listing and b == "ignore-start-index":
                query["startIndex"] = "1"
            if listing and b == "repeat-page" and start > 1:
                query["startIndex"] = str(max(1, start - count))
            if listing:
                query["count"] = str(min(count, owner.page))
            upstream_target = f"{owner.prefix}{path}" + (f"?{urlencode(query)}" if query else "")
            status, out_headers, data = owner.forward(method, upstream_target, headers, body)
            data = self._rewrite(b, path, query, start, status, data, headers)
            if b == "drip":
                self.send_response(status)
                self.send_header("Content-Type", _SCIM)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self._drip(data)
                return
            if b == "cut-connection":
                self.send_response(status)
                self.send_header("Content-Type", _SCIM)
                self.send_header("Content-Length", str(len(data) + 1000))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                return
            if b == "not-json" and status == 200:
                data = b"<<< this is not JSON >>>"
            if b == "truncated-json" and status == 200 and len(data) > 2:
                data = data[: len(data) // 2]
            content_type = out_headers.pop("Content-Type", _SCIM)
            self._send(status, data, content_type, {k: v for k, v in out_headers.items() if k.lower() in ("etag", "location", "retry-after")})

    def _rewrite(self, b: str, path: str, query: dict[str, str], start: int, status: int, data: bytes, headers: dict[str, str]) -> bytes:
        """What the misbehaving platform says instead of what the sandbox said."""
        owner = self.hostile
        if status != 200 or not data:
            return data
        doc = json.loads(data)
        if path == "/ServiceProviderConfig" and isinstance(doc, dict):
            doc.setdefault("filter", {})["maxResults"] = owner.page  # small pages: paging shows with a dozen users
            if owner.no_bulk:
                doc["bulk"] = {"supported": False, "maxOperations": 0, "maxPayloadSize": 0}
        if isinstance(doc, dict) and isinstance(doc.get("Resources"), list):
            resources = doc["Resources"]
            if b in ("ignore-start-index",):
                doc["startIndex"] = 1
            if b == "repeat-page":
                doc["startIndex"] = start
            if b == "huge-total":
                doc["totalResults"] = 10**12
            if path == "/Users" and resources:
                first = resources[0]
                if b == "duplicate-ids" and start > 1:
                    resources.insert(0, _first_user(owner, headers))
                if b == "resource-without-id" and start == 1:
                    first.pop("id", None)
                if b == "lone-surrogate" and start == 1:
                    first["title"] = "Head \ud800 of \x01Sales"
                if b == "huge-user" and start == 1:
                    first["title"] = "x" * 10_000_000
                if b == "echo-token-in-data":
                    first["title"] = f"Seen: {headers.get('Authorization', '')}"
                if b == "invalid-utf8" and start == 1:
                    first.setdefault("name", {})["familyName"] = "@@BAD@@"
            if path == "/Groups" and resources and b == "unknown-members":
                resources[0].setdefault("members", []).extend([{"value": "no-such-user-1", "display": "Ghost"}, {"value": "no-such-user-2"}])
            if b == "wrong-shape" and path == "/Users":
                return json.dumps(resources).encode()
        out = json.dumps(doc).encode()
        if b == "invalid-utf8":
            out = out.replace(b"@@BAD@@", b"Gr\xfc\xdfe \xff")  # Latin-1 bytes where UTF-8 was promised
        return out


def _first_user(owner: HostileServer, headers: dict[str, str]) -> dict[str, Any]:
    _, _, data = owner.forward("GET", f"{owner.prefix}/Users?startIndex=1&count=1", headers, b"")
    return dict(json.loads(data)["Resources"][0])


class Recorder:
    """A loopback HTTP server that answers 404 to everything and records every request's headers (another origin)."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                owner.seen.append(Seen(self.command, self.path, dict(self.headers.items())))
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v2"

    def tokens_seen(self) -> list[str]:
        return [s.headers[k] for s in self.seen for k in s.headers if k.lower() == "authorization"]

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
