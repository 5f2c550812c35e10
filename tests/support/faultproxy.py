"""A real loopback HTTP proxy for fault injection: sits in front of a SCIM server on 127.0.0.1.

The client under test talks to the proxy exactly as to a platform (a plain HTTP/1.1 connection,
kept alive), and the proxy forwards each request to the upstream server, unless a fault says
otherwise. Faults, by rule (method / path pattern / how many times) or at random with a seed:

- ``drop_before``: close the client's connection without forwarding (nothing reached the server);
- ``drop_after``: forward, let the server apply it, then close without answering (response lost);
- ``cut_response``: forward, let the server apply it, then send only part of its answer and close
  (the headers and half the body; of a bodiless answer, half the status line);
- ``status``: answer 429/502/503 (with ``Retry-After``) without forwarding;
- ``status_after``: forward, let the server apply it, then answer ``status`` instead of its answer
  (a gateway that lost the response: 502/504);
- ``delay``: wait, then forward (a stall); plus ``latency`` added to every request (a far platform).

A rule can target one request by its body (``body``, a regex searched in the request body), so
"the Bulk request holding this user's create" or "the second single POST of this user" is a
place in the stream that does not depend on how concurrent requests interleave.

Bounded and self-stopping: at most ``max_connections`` client connections at once, idle
connections are closed after ``idle_timeout``, and the whole proxy stops after ``lifetime``
seconds even if a test forgets to stop it. Use it as a context manager.
"""

from __future__ import annotations

import http.client
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

FaultKind = Literal["drop_before", "drop_after", "cut_response", "status", "status_after", "delay"]
FAULT_KINDS: tuple[FaultKind, ...] = ("drop_before", "drop_after", "cut_response", "status", "status_after", "delay")

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host"})
_REASONS = {429: "Too Many Requests", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass
class Rule:
    """Inject ``kind`` into requests matching ``method``, ``path`` (a regex searched in the path+query) and ``body``."""

    kind: FaultKind
    method: str | None = None
    """A method, or a regex of methods (``"POST|PATCH"``); None: any."""
    path: str | None = None
    times: int | None = 1
    """How many matching requests get the fault (None: all of them)."""
    skip: int = 0
    """Let this many matching requests through first."""
    status: int = 503
    retry_after: str | None = "0"
    delay: float = 0.0
    body: str | None = None
    """A regex searched in the request body (decoded as UTF-8); None: any body."""
    name: str = ""
    """What this cut point stands for (shown when a test reports the rules that never fired)."""
    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def matches(self, method: str, target: str, body: bytes = b"") -> bool:
        if self.method is not None and re.fullmatch(self.method, method, re.IGNORECASE) is None:
            return False
        if self.path is not None and re.search(self.path, target) is None:
            return False
        return self.body is None or re.search(self.body, body.decode("utf-8", "replace")) is not None

    def take(self) -> bool:
        """Count a matching request; True when this one gets the fault."""
        self.seen += 1
        if self.seen <= self.skip:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        self.fired += 1
        return True


@dataclass(frozen=True)
class Seen:
    """One request the proxy read (for assertions on what the client sent)."""

    method: str
    target: str
    size: int
    """Body size in bytes."""
    body: bytes = b""
    """The body itself, when the proxy keeps bodies (``keep_bodies=True``)."""


@dataclass(frozen=True)
class Fault:
    """One fault the proxy injected (for assertions)."""

    kind: FaultKind
    method: str
    target: str
    status: int | None = None
    rule: str = ""
    """The name of the rule that fired ("" for a random fault)."""


class FaultProxy:
    """A threaded HTTP/1.1 proxy on 127.0.0.1 (port 0) in front of ``upstream`` (``http://host:port``)."""

    def __init__(
        self,
        upstream: str,
        *,
        latency: float = 0.0,
        seed: int | None = None,
        random_rates: dict[FaultKind, float] | None = None,
        random_status: int = 503,
        random_status_after: int = 502,
        random_methods: tuple[str, ...] | None = None,
        keep_bodies: bool = False,
        max_connections: int = 64,
        idle_timeout: float = 30.0,
        lifetime: float = 600.0,
        upstream_timeout: float = 60.0,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream must be http://host:port/..., got {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port
        self.upstream_prefix = parts.path.rstrip("/")
        self.latency = latency
        self.random_rates = dict(random_rates or {})
        self.random_status = random_status
        self.random_status_after = random_status_after
        self.random_methods = random_methods
        self._rng = random.Random(seed)
        self.rules: list[Rule] = []
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.keep_bodies = keep_bodies
        self.forwarded = 0
        """Requests that reached the upstream server."""
        self.requests = 0
        """Requests the proxy read from clients."""
        self.connections = 0
        self.idle_timeout = idle_timeout
        self.upstream_timeout = upstream_timeout
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._stopped = threading.Event()
        self._clients: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="faultproxy", daemon=True)
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The proxy's base URL, with the upstream's path (``http://127.0.0.1:PORT/v2``)."""
        return f"http://127.0.0.1:{self.port}{self.upstream_prefix}"

    def start(self) -> FaultProxy:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop listening and close every client connection; idempotent."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._timer.cancel()
        with suppress(OSError):
            self._listener.close()
        with self._lock:
            clients = list(self._clients)
        for sock in clients:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with suppress(OSError):
                sock.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- configuration ------------------------------------------------------------------

    def add(self, rule: Rule) -> Rule:
        """Add a rule (first matching rule that fires wins)."""
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.random_rates.clear()

    def fault_counts(self) -> Counter[str]:
        with self._lock:
            return Counter(f.kind if f.status is None else f"{f.kind} {f.status}" for f in self.faults)

    # --- serving -----------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._slots.acquire(timeout=self.idle_timeout):
                sock.close()  # bounded: refuse rather than pile up threads
                continue
            with self._lock:
                self._clients.add(sock)
                self.connections += 1
            threading.Thread(target=self._client, args=(sock,), daemon=True).start()

    def _client(self, sock: socket.socket) -> None:
        upstream: http.client.HTTPConnection | None = None
        try:
            sock.settimeout(self.idle_timeout)
            reader = sock.makefile("rb")
            for request in _requests(reader):
                if self._stopped.is_set():
                    return
                method, target, headers, body, keep_alive = request
                with self._lock:
                    self.requests += 1
                    if len(self.seen) < 100_000:  # bounded memory in long benchmarks
                        self.seen.append(Seen(method, target, len(body), body if self.keep_bodies else b""))
                fault = self._decide(method, target, body)
                if self.latency:
                    time.sleep(self.latency)
                if fault is not None and fault.kind == "delay":
                    time.sleep(fault.delay)
                if fault is not None and fault.kind == "drop_before":
                    self._record(fault, method, target)
                    return
                if fault is not None and fault.kind == "status":
                    self._record(fault, method, target)
                    extra = [("Retry-After", fault.retry_after)] if fault.retry_after is not None else []
                    payload = b'{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"%d","detail":"injected by the fault proxy"}' % fault.status
                    sock.sendall(_response(fault.status, _REASONS.get(fault.status, "Error"), [("Content-Type", "application/scim+json"), *extra], payload, keep_alive))
                    if not keep_alive:
                        return
                    continue
                upstream, status, reason, out_headers, out_body = self._forward(upstream, method, target, headers, body)
                if fault is not None and fault.kind == "drop_after":
                    self._record(fault, method, target)
                    return
                if fault is not None and fault.kind == "cut_response":
                    self._record(fault, method, target)
                    whole = _response(status, reason, out_headers, out_body, keep_alive)
                    # Half the body arrives; of a bodiless answer (204), half its status line.
                    sock.sendall(whole[: len(whole) - (len(out_body) + 1) // 2] if out_body else whole[:10])
                    return
                if fault is not None and fault.kind == "status_after":
                    self._record(fault, method, target)
                    payload = b'{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"%d","detail":"the gateway lost the answer"}' % fault.status
                    sock.sendall(_response(fault.status, _REASONS.get(fault.status, "Error"), [("Content-Type", "application/scim+json")], payload, keep_alive))
                    if not keep_alive:
                        return
                    continue
                if fault is not None and fault.kind == "delay":
                    self._record(fault, method, target)
                sock.sendall(_response(status, reason, out_headers, out_body, keep_alive))
                if not keep_alive:
                    return
        except (OSError, ValueError, http.client.HTTPException):
            return
        finally:
            if upstream is not None:
                upstream.close()
            with self._lock:
                self._clients.discard(sock)
            with suppress(OSError):
                sock.close()
            self._slots.release()

    def _decide(self, method: str, target: str, body: bytes) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, target, body) and rule.take():
                    return rule
            if self.random_rates and (self.random_methods is None or method in self.random_methods):
                draw = self._rng.random()
                for kind, rate in sorted(self.random_rates.items()):
                    if draw < rate:
                        return Rule(kind, status=self.random_status_after if kind == "status_after" else self.random_status, times=None)
                    draw -= rate
        return None

    def _record(self, rule: Rule, method: str, target: str) -> None:
        with self._lock:
            status = rule.status if rule.kind in ("status", "status_after") else None
            self.faults.append(Fault(rule.kind, method, target, status, rule.name))

    def _forward(
        self, conn: http.client.HTTPConnection | None, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[http.client.HTTPConnection | None, int, str, list[tuple[str, str]], bytes]:
        """Send to upstream on a per-client connection, reconnecting when upstream closed it (HTTP/1.0 servers do)."""
        for attempt in (1, 2):
            if conn is None:
                conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=self.upstream_timeout)
            try:
                conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                conn.putheader("Host", f"{self.upstream_host}:{self.upstream_port}")
                for name, value in headers:
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        conn.putheader(name, value)
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
                with self._lock:
                    self.forwarded += 1
                response = conn.getresponse()
                data = response.read()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                conn.close()
                conn = None
                if attempt == 2:
                    raise
                continue  # a kept-alive upstream connection closed between requests: reconnect once
            out = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"]
            if response.will_close:
                conn.close()
                conn = None
            return conn, response.status, response.reason, out, data
        raise AssertionError("unreachable")


def _requests(reader: object) -> Iterator[tuple[str, str, list[tuple[str, str]], bytes, bool]]:
    """Parse HTTP/1.x requests from a client stream until it closes (Content-Length bodies only)."""
    readline = reader.readline  # type: ignore[attr-defined]
    read = reader.read  # type: ignore[attr-defined]
    while True:
        line = readline(65537)
        if not line:
            return
        if line in (b"\r\n", b"\n"):
            continue
        method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        headers: list[tuple[str, str]] = []
        while True:
            hline = readline(65537)
            if hline in (b"\r\n", b"\n", b""):
                break
            name, _, value = hline.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))
        lowered = {k.lower(): v for k, v in headers}
        if "chunked" in lowered.get("transfer-encoding", "").lower():
            raise ValueError("chunked request bodies are not supported by the fault proxy")
        length = int(lowered.get("content-length", "0") or 0)
        body = read(length) if length else b""
        connection = lowered.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        yield method, target, headers, body, keep_alive


def _response(status: int, reason: str, headers: list[tuple[str, str]], body: bytes, keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
