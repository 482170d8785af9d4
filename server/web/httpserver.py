"""gevent's WSGI server with the limits a public LAN needs: a header timeout, an idle timeout, a send timeout and
a connection cap that sheds the connections still waiting for their headers first.

Without them, a client that opens connections and never finishes a request (a "slowloris", or a thousand
half-open sockets) holds a greenlet and a file descriptor each, for ever: at the process's file limit the server
stops accepting, and `/healthz` times out. Here:

- a request's line and headers must all arrive within `header_timeout_s` of the connection opening (or, on a
  kept-alive connection, within `idle_timeout_s` of the previous response); otherwise the connection is closed
  (with a JSON 408 if part of a request had arrived);
- while a response is sent, a client that reads nothing for `send_timeout_s` is dropped (a stalled SSE viewer);
- at most `max_connections` connections are open. A new connection over the cap closes the oldest connection
  that is still waiting for its headers; when every connection is busy with a real request, the new one gets an
  immediate 503 instead of waiting in the kernel's queue.

This module imports gevent at the top: only the web process (after monkey-patching, see serve.py) imports it.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import socket
from typing import Any

import gevent
from gevent.pywsgi import WSGIHandler, WSGIServer

from footfall.site import ServerSettings

logger = logging.getLogger(__name__)

HEADER_TIMEOUT_S = 10
IDLE_TIMEOUT_S = 60
SEND_TIMEOUT_S = 60
MAX_CONNECTIONS = 4000  # the units' LimitNOFILE (16384) leaves room for the store, the broker link and logs


def _raw_response(status: str, error: str, detail: str) -> bytes:
    body = json.dumps({"error": error, "detail": detail}).encode()
    head = (
        f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


TIMEOUT_RESPONSE = _raw_response(
    "408 Request Timeout", "request_timeout", "the request headers came too slowly"
)
BUSY_RESPONSE = _raw_response("503 Service Unavailable", "busy", "too many open connections; try again")


class HeaderTimeout(socket.timeout):
    """The request line and headers did not all arrive in time (or the connection was shed for a newer one)."""


class GuardedHandler(WSGIHandler):
    """Puts a deadline on reading each request's headers and a socket timeout on sending its response."""

    _deadline: gevent.Timeout | None = None
    _served = False

    def read_requestline(self) -> str:
        server: GuardedWSGIServer = self.server  # type: ignore[assignment]
        limit = server.idle_timeout if self._served else server.header_timeout
        self._deadline = gevent.Timeout(limit, HeaderTimeout("no complete request in time"))
        self._deadline.start()
        server.waiting[self] = gevent.getcurrent()
        return super().read_requestline()

    def handle_one_request(self) -> Any:
        try:
            return super().handle_one_request()
        finally:
            self._stop_waiting()

    def handle_one_response(self) -> None:
        self._stop_waiting()
        self.socket.settimeout(self.server.send_timeout)  # type: ignore[attr-defined]
        try:
            super().handle_one_response()
        finally:
            self._served = True

    def _stop_waiting(self) -> None:
        if self._deadline is not None:
            self._deadline.close()
            self._deadline = None
        self.server.waiting.pop(self, None)  # type: ignore[attr-defined]

    def _handle_client_error(self, ex: BaseException) -> Any:
        if isinstance(ex, socket.timeout):  # part of a request came, the rest did not: no traceback for that
            logger.info(
                "closed a connection from %s: its request headers came too slowly", self.client_address
            )
            return ("408", TIMEOUT_RESPONSE)
        return super()._handle_client_error(ex)


class GuardedWSGIServer(WSGIServer):
    """WSGIServer with GuardedHandler and a connection cap (see the module docstring)."""

    handler_class = GuardedHandler
    # The kernel's queue of connections not yet accepted (gevent's default is 128): when the header timeout closes
    # a thousand half-open connections at once and they reconnect, /healthz must not be dropped behind them.
    backlog = 1024

    def __init__(
        self,
        listener: Any,
        application: Any,
        *,
        header_timeout: float = HEADER_TIMEOUT_S,
        idle_timeout: float = IDLE_TIMEOUT_S,
        send_timeout: float = SEND_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
        **kwargs: Any,
    ):
        super().__init__(listener, application, **kwargs)
        self.header_timeout, self.idle_timeout, self.send_timeout = header_timeout, idle_timeout, send_timeout
        self.max_connections = max_connections
        self.open_connections = 0
        self.shed = 0  # connections closed to make room, and refused with 503: visible in the log
        # Connections waiting for a request's headers, oldest first: the first to go when the cap is reached.
        self.waiting: collections.OrderedDict[GuardedHandler, gevent.Greenlet] = collections.OrderedDict()

    def handle(self, sock: socket.socket, address: Any) -> None:
        if self.open_connections >= self.max_connections and not self._shed_one():
            self.shed += 1
            logger.warning("%d connections are busy: refused %s with 503", self.open_connections, address)
            with contextlib.suppress(OSError):
                sock.sendall(BUSY_RESPONSE)
            sock.close()
            return
        self.open_connections += 1
        try:
            super().handle(sock, address)
        finally:
            self.open_connections -= 1

    def _shed_one(self) -> bool:
        """Close the oldest connection still waiting for its headers; False when there is none."""
        while self.waiting:
            handler, greenlet = self.waiting.popitem(last=False)
            if not greenlet.dead:
                self.shed += 1
                if self.shed == 1 or self.shed % 1000 == 0:
                    logger.warning(
                        "connection cap %d reached: closing idle connections", self.max_connections
                    )
                greenlet.kill(HeaderTimeout("shed for a newer connection"), block=False)
                return True
        return False


def guarded_server(
    listener: Any, application: Any, server_settings: ServerSettings | None = None, **kwargs: Any
):
    """The server with the limits of the site file's `[server]` section (docs/config.md); without one (the
    district web has no site file), the defaults."""
    if server_settings is None:
        limits = dict(
            header_timeout=HEADER_TIMEOUT_S,
            idle_timeout=IDLE_TIMEOUT_S,
            send_timeout=SEND_TIMEOUT_S,
            max_connections=MAX_CONNECTIONS,
        )
    else:
        limits = dict(
            header_timeout=server_settings.header_timeout_s,
            idle_timeout=server_settings.idle_timeout_s,
            send_timeout=server_settings.send_timeout_s,
            max_connections=server_settings.max_connections,
        )
    return GuardedWSGIServer(listener, application, **limits, **kwargs)
