"""Real loopback proxies that make the sandbox look like SCIM servers the project never wrote for.

- ``VersionlessProxy``: a platform without versions (RFC 7644 §3.14 makes them optional). Every
  ``meta.version`` is removed from the JSON it returns (Bulk ``version`` fields too), every ``ETag``
  header is dropped, and ``/ServiceProviderConfig`` announces ``etag.supported=false``. Requests
  carrying ``If-Match`` (or a Bulk ``version``) are counted, and the precondition is removed before
  forwarding, as a server that ignores them would.
- ``ExpressProxy``: a platform behind Express (or a caching proxy): ``meta.version`` stays in the
  bodies, but every response gets a weak ``ETag`` header of its own, a hash of the response body
  (``W/"<length>-<hash>"``), unrelated to the resource's version; ``/ServiceProviderConfig``
  announces ``etag.supported=false`` unless ``announce_etag=True``.

- ``HeaderVersionProxy``: a platform announcing ETags that gives versions only as ``ETag`` headers: ``meta.version``
  is removed from the JSON it returns (of every resource, or of the users in ``only``); the headers stay.

Each is a threaded HTTP/1.1 server on 127.0.0.1 (port 0) forwarding to ``upstream`` with
``http.client``; use it as a context manager. Proxies chain: ``FaultProxy(VersionlessProxy(...).url)``.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host",
                         "content-length"})


class RewritingProxy:
    """A forwarding proxy whose subclasses rewrite requests and responses."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream must be http://host:port/..., got {upstream!r}")
        self.upstream_host, self.upstream_port = parts.hostname, parts.port
        self.prefix = parts.path.rstrip("/")
        self.lock = threading.Lock()
        self.requests = 0
        self.preconditions = 0
        """Requests that arrived with ``If-Match`` or a Bulk operation ``version``."""
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                proxy.handle(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        """The proxy's base URL with the upstream's path (``http://127.0.0.1:PORT/v2``)."""
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.prefix}"

    def __enter__(self) -> RewritingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- what subclasses change ------------------------------------------------------------------

    def request(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        return headers, body

    def response(self, method: str, path: str, status: int, headers: list[tuple[str, str]], body: bytes) -> tuple[list[tuple[str, str]], bytes]:
        return headers, body

    # --- forwarding ------------------------------------------------------------------------------

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        with self.lock:
            self.requests += 1
        headers, body = self.request(handler.command, handler.path, headers, body)
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
        try:
            conn.request(handler.command, handler.path, body=body, headers={**headers, "Content-Length": str(len(body))})
            answer = conn.getresponse()
            data = answer.read()
            out = [(k, v) for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP]
            status, reason = answer.status, answer.reason
        finally:
            conn.close()
        out, data = self.response(handler.command, handler.path, status, out, data)
        try:
            handler.send_response(status, reason)
            for name, value in out:
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            handler.close_connection = True  # the client went away (killed): nothing to answer


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _strip_versions(data: Any) -> Any:
    if isinstance(data, dict):
        out = {k: _strip_versions(v) for k, v in data.items() if k != "version"}
        meta = out.get("meta")
        if isinstance(meta, dict):
            meta.pop("version", None)
        return out
    if isinstance(data, list):
        return [_strip_versions(v) for v in data]
    return data


def _announce_etag(body: bytes, supported: bool) -> bytes:
    data = _json(body)
    if not isinstance(data, dict):
        return body
    data["etag"] = {"supported": supported}
    return json.dumps(data).encode()


class VersionlessProxy(RewritingProxy):
    """A SCIM platform without versions: no ``meta.version``, no ``ETag``, ``etag.supported=false``."""

    def request(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        kept = {k: v for k, v in headers.items() if k.lower() not in ("if-match", "if-none-match")}
        data = _json(body)
        bulk_versions = isinstance(data, dict) and any(isinstance(op, dict) and "version" in op for op in data.get("Operations") or ())
        if len(kept) != len(headers) or bulk_versions:
            with self.lock:
                self.preconditions += 1
        if bulk_versions:
            assert isinstance(data, dict)
            data["Operations"] = [{k: v for k, v in op.items() if k != "version"} for op in data["Operations"]]
            body = json.dumps(data).encode()
        return kept, body

    def response(self, method: str, path: str, status: int, headers: list[tuple[str, str]], body: bytes) -> tuple[list[tuple[str, str]], bytes]:
        headers = [(k, v) for k, v in headers if k.lower() != "etag"]
        if path.split("?", maxsplit=1)[0].endswith("/ServiceProviderConfig"):
            return headers, _announce_etag(body, False)
        data = _json(body)
        if data is None:
            return headers, body
        return headers, json.dumps(_strip_versions(data), ensure_ascii=False).encode()


class ExpressProxy(RewritingProxy):
    """A SCIM platform behind Express: a weak body-hash ``ETag`` on every response, unrelated to ``meta.version``."""

    def __init__(self, upstream: str, *, announce_etag: bool = False) -> None:
        super().__init__(upstream)
        self.announce_etag = announce_etag

    def request(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        if any(k.lower() == "if-match" for k in headers):
            with self.lock:
                self.preconditions += 1
        return headers, body

    def response(self, method: str, path: str, status: int, headers: list[tuple[str, str]], body: bytes) -> tuple[list[tuple[str, str]], bytes]:
        if path.split("?", maxsplit=1)[0].endswith("/ServiceProviderConfig"):
            body = _announce_etag(body, self.announce_etag)
        headers = [(k, v) for k, v in headers if k.lower() != "etag"]
        # Express's etag module: W/"<length in hex>-<first 27 characters of the base64 SHA-1>".
        digest = base64.b64encode(hashlib.sha1(body).digest()).decode()[:27]
        headers.append(("ETag", f'W/"{len(body):x}-{digest}"'))
        return headers, body


class HeaderVersionProxy(RewritingProxy):
    """A SCIM platform announcing ETags whose bodies carry no ``meta.version`` (of the resources with an id in ``only``, or of all)."""

    def __init__(self, upstream: str, *, only: set[str] | None = None) -> None:
        super().__init__(upstream)
        self.only = only

    def response(self, method: str, path: str, status: int, headers: list[tuple[str, str]], body: bytes) -> tuple[list[tuple[str, str]], bytes]:
        data = _json(body)
        if path.split("?", maxsplit=1)[0].endswith("/ServiceProviderConfig") or not isinstance(data, dict):
            return headers, body
        for resource in data.get("Resources") if isinstance(data.get("Resources"), list) else [data]:
            meta = resource.get("meta") if isinstance(resource, dict) else None
            if isinstance(meta, dict) and (self.only is None or resource.get("id") in self.only):
                meta.pop("version", None)
        return headers, json.dumps(data, ensure_ascii=False).encode()


class ReplacingProxy(RewritingProxy):
    """A platform whose JSON holds what the sandbox cannot store: each ``replacements`` key in a response body is
    replaced by its value (e.g. a marker by ``\\udc80``, a lone surrogate in JSON's own escape)."""

    def __init__(self, upstream: str, replacements: dict[bytes, bytes]) -> None:
        super().__init__(upstream)
        self.replacements = replacements

    def response(self, method: str, path: str, status: int, headers: list[tuple[str, str]], body: bytes) -> tuple[list[tuple[str, str]], bytes]:
        for old, new in self.replacements.items():
            body = body.replace(old, new)
        return headers, body


class HoldingProxy(RewritingProxy):
    """Forwards everything; the ``nth`` request matching ``method`` and the ``path`` regex is applied by the server,
    then its answer is held back (``held`` is set) until ``release()``: the moment to kill the client that sent it."""

    def __init__(self, upstream: str, method: str, path: str, nth: int) -> None:
        super().__init__(upstream)
        self.method, self.pattern, self.nth = method, re.compile(path), nth
        self.seen = 0
        self.held = threading.Event()
        self._release = threading.Event()

    def release(self) -> None:
        self._release.set()

    def response(self, method: str, path: str, status: int, headers: list[tuple[str, str]], body: bytes) -> tuple[list[tuple[str, str]], bytes]:
        if method == self.method and self.pattern.search(path):
            with self.lock:
                self.seen += 1
                hold = self.seen == self.nth
            if hold:
                self.held.set()
                self._release.wait(120)
        return headers, body

    def __exit__(self, *exc: object) -> None:
        self.release()
        super().__exit__(*exc)
