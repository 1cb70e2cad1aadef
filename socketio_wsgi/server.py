"""Running the middleware on gevent's pywsgi server.

:class:`SocketIOHandler` is pywsgi's handler plus three things: it hands the
client socket and its buffered reader to the app, so that
:func:`socketio_wsgi.websocket.accept` does the upgrade on any path (the
Socket.IO websocket transport uses it too); it ends the HTTP exchange after a
101 (closing a websocket the app left open); and an upgrade request that the
middleware would refuse (bad origin, unknown session, disabled transport, a
transport that is not a websocket) gets its HTTP status *before* any 101.
"""

from __future__ import annotations

import ctypes
import gc
import io
import logging
import platform
import re
import signal
import socket
import sys
from typing import Any, Callable, Optional

import gevent
import gevent.event
from gevent.pywsgi import WSGIHandler, WSGIServer

from .flashpolicy import FlashPolicyServer, PolicyRequestMixin, policy_xml
from .http import SOCKET_KEY, text_response
from .httphead import read_headers
from .middleware import SocketIOMiddleware
from .websocket import CONNECTION_KEY, PARK_KEY, RFILE_KEY
from .ws.handshake import is_upgrade_request

__all__ = ["SocketIOHandler", "make_server", "serve", "find_middleware", "prepare_heap"]

log = logging.getLogger("socketio_wsgi.server")
_M_MMAP_THRESHOLD = -3  # glibc malloc.h
_MMAP_THRESHOLD = 128 * 1024
#: ``wsgi.input`` of a request whose socket was parked: nothing more to read.
_NO_INPUT = io.BytesIO(b"")


class SocketIOHandler(PolicyRequestMixin, WSGIHandler):
    def MessageClass(self, rfile, *_args):  # noqa: N802 (pywsgi's name)
        # The header fields, read without the e-mail parser (see httphead).
        return read_headers(rfile)

    def handle(self):
        # pywsgi writes a response's headers and body with two sends; with
        # Nagle on, the body waits for the client's delayed ACK (~40 ms) on
        # every keep-alive poll, and a websocket's first frame waits behind
        # the 101 response.  Our writes are whole frames: send them at once.
        try:
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass  # not a TCP socket (a unix socket)
        return super().handle()

    def get_environ(self):
        environ = super().get_environ()
        # Our transports shut this socket when a session ends while a write
        # is pending, and put a deadline on every write (``write_timeout``);
        # ``accept`` reads the websocket through the request's reader.
        environ[SOCKET_KEY] = self.socket
        environ[RFILE_KEY] = self.rfile
        environ[PARK_KEY] = self._park
        return environ

    def _park(self) -> int:
        """Let go of this request's socket for good (after a 101): its
        descriptor is the caller's now.  The request's own references go, so
        that an environ kept by a session pins no reader, socket or handler;
        the handler ends without touching the connection."""
        environ = self.environ
        for key in (SOCKET_KEY, RFILE_KEY, PARK_KEY):
            environ.pop(key, None)
        environ["wsgi.input"] = _NO_INPUT
        self.close_connection = True
        sock: Any = self.socket
        return sock.detach()

    def run_application(self):
        environ = self.environ
        if is_upgrade_request(environ):
            middleware = getattr(self.server, "socketio_middleware", None)
            refused = middleware.refusal(environ) if middleware is not None else None
            if refused is not None:
                self.close_connection = True
                status, reason = refused
                self.result = text_response(self.start_response, status, reason)
                self.process_result()
                self.result = None
                return None
        failed = True
        try:
            result = super().run_application()
            failed = False
            return result
        finally:
            # A session may keep this environ (its request): let it pin no
            # socket, reader or handler once the response is written.
            for key in (PARK_KEY, SOCKET_KEY, RFILE_KEY):
                environ.pop(key, None)
            conn = environ.pop(CONNECTION_KEY, None)
            if conn is not None and not conn.parked:
                # The app returned (or raised): its websocket ends with it, and
                # nothing after the 101 may be parsed as another HTTP request.
                self.close_connection = True
                if not conn.closed:
                    conn.close(1011 if failed else 1000)

    def format_request(self):
        # The status endpoint accepts its token as ?token=...: never log it.
        return _SECRET_QUERY.sub(r"\1[redacted]", super().format_request())

    def log_request(self):
        # Upgrades are not logged: they never "end" as a request.
        if getattr(self.server, "access_log", True) and "101" not in str(self.status):
            super().log_request()


#: Query parameters whose values are secrets (the status token).
_SECRET_QUERY = re.compile(r"([?&](?:token|access_token)=)[^&\s\"]*")


def find_middleware(app: Any) -> Optional[SocketIOMiddleware]:
    """The SocketIOMiddleware ``app`` is, or wraps through ``.app`` attributes."""
    seen = 0
    while app is not None and seen < 20:
        if isinstance(app, SocketIOMiddleware):
            return app
        app = getattr(app, "app", None) or getattr(app, "application", None)
        seen += 1
    return None


def make_server(
    app: Callable, host: str = "127.0.0.1", port: int = 8000, access_log: bool = True, **options: Any
) -> WSGIServer:
    """A pywsgi server for ``app``; a plain WSGI app is wrapped in the middleware."""
    middleware = find_middleware(app)
    if middleware is None:
        app = middleware = SocketIOMiddleware(app, **options)
    elif options:
        raise TypeError("options were given but the app is already a SocketIOMiddleware")
    server = WSGIServer(
        (host, port), app, handler_class=SocketIOHandler, log=sys.stderr if access_log else None
    )
    server.socketio_middleware = middleware
    server.access_log = access_log
    opts = middleware.options
    ports = str(port) if port else "*"
    server.flash_policy = policy_xml(opts.origins, ports) if opts.flash_policy_inline else None
    server.flash_policy_server = (
        FlashPolicyServer(opts.origins, port=opts.flash_policy_port, host=host, to_ports=ports)
        if opts.flash_policy_port is not None
        else None
    )
    return server


def prepare_heap() -> None:
    """Tune the process heap for a long-running server; called by
    :func:`serve` and the gunicorn worker once the app is loaded.

    * What start-up built (modules, the app, its settings) is collected once
      and frozen (:func:`gc.freeze`): a full collection walks every tracked
      object, and with a framework loaded that is tens of thousands of them,
      so each pass stalled every session for tens of milliseconds.
    * On glibc, buffers of 128 KiB and more are always given their own
      mapping (``mallopt(M_MMAP_THRESHOLD)``), so the memory of a large
      message goes back to the system when it is freed.  Left to itself
      glibc raises that threshold after the first large free and keeps such
      buffers in the heap, where a burst of large messages (a client that
      stopped reading, say) stays in the RSS long after it was dropped.
    """
    gc.collect()
    gc.freeze()
    if platform.libc_ver()[0] == "glibc":
        try:
            ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        except (OSError, AttributeError):  # a libc without mallopt: keep its defaults
            pass


def serve(
    app: Callable,
    host: str = "127.0.0.1",
    port: int = 8000,
    shutdown_grace: float = 5.0,
    access_log: bool = True,
    **options: Any,
) -> None:
    """Serve ``app`` until Ctrl-C or SIGTERM, then shut down gracefully.

    Shutting down refuses new sessions (503), closes every session — firing
    ``on_disconnect`` (reason "server shutdown"), the ``on_unsubscribe`` of each
    held channel and ``on_finish`` — lets polling clients collect what was
    queued for them for up to ``shutdown_grace`` seconds, and returns.
    """
    server = make_server(app, host, port, access_log=access_log, **options)
    middleware: SocketIOMiddleware = server.socketio_middleware
    prepare_heap()
    server.start()
    if server.flash_policy_server is not None:
        server.flash_policy_server.start()  # logs and carries on if it cannot bind
    bound_host, bound_port = server.address[:2]
    print(
        f"socketio_wsgi: serving on http://{bound_host}:{bound_port}/ "
        f"(Socket.IO at /{middleware.options.resource}/)",
        flush=True,
    )
    stopping = gevent.event.Event()

    def request_stop(*_: Any) -> None:
        stopping.set()

    handlers = [gevent.signal_handler(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)]
    try:
        stopping.wait()
    finally:
        for handler in handlers:
            handler.cancel()
        print("socketio_wsgi: shutting down", flush=True)
        middleware.engine.shutdown(shutdown_grace)
        server.close()
        server.stop(timeout=1.0)
        middleware.engine.backend.close()
        if server.flash_policy_server is not None:
            server.flash_policy_server.stop()
