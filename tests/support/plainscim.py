"""A plain scim2-server (in-memory storage) on 127.0.0.1 announcing a given ServiceProviderConfig: the foreign server
the client must read its limits from (Bulk size, filter results), served on a thread for the length of a test."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from scim2_models import ScimProvider, ServiceProviderConfig
from scim2_server.applications.wsgi import WSGIApplication
from scim2_server.memory import InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.utils import load_default_resource_types, load_default_schemas


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Threaded(ThreadingMixIn, WSGIServer):
    daemon_threads = True


@contextmanager
def plain_scim2_server(config: Mapping[str, Any], wrap: Callable[[Any], Any] = lambda app: app) -> Iterator[tuple[str, Any]]:
    """Serve scim2-server announcing ``config`` (a ServiceProviderConfig as JSON); ``wrap`` may put a recorder around the
    WSGI application. Yields (base URL ending in ``/v2``, the application served)."""
    provider = ScimProvider.from_discovery(load_default_schemas().values(), load_default_resource_types().values(),
                                           config=ServiceProviderConfig.model_validate(dict(config)))
    app = wrap(WSGIApplication(InMemoryStorage(), provider, ScimService(provider, secret="test")))
    server = make_server("127.0.0.1", 0, app, server_class=_Threaded, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v2", app
    finally:
        server.shutdown()
        server.server_close()
