"""Run a real server on 127.0.0.1 in a background thread with its own gevent hub.

The test thread stays a plain OS thread (no monkey-patching), so clients in
tests use ordinary blocking sockets, and out-of-band calls from the test are
calls from "a plain OS thread", as in production.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, List, Optional

import gevent
import gevent.event
import gevent.pool

from socketio_wsgi import SocketIOMiddleware, make_server
from socketio_wsgi.events import HandlerRegistry


def plain_app(environ, start_response):
    body = b"hello from the wrapped app " + environ.get("PATH_INFO", "").encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class ServerThread:
    """A started server; ``url`` is its base URL, ``events`` what handlers recorded."""

    def __init__(self, app: Optional[Callable] = plain_app, handlers: Optional[HandlerRegistry] = None,
                 port: int = 0, **options: Any):
        self.handlers = handlers if handlers is not None else HandlerRegistry()
        options.setdefault("origins", "*")
        self.middleware = SocketIOMiddleware(app, handlers=self.handlers, **options)
        self.engine = self.middleware.engine
        self.events: List[tuple] = []
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._error: Optional[BaseException] = None
        self.hub = None
        self.port = port
        self._thread = threading.Thread(target=self._run, name="socketio-test-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("test server did not start")
        if self._error:
            raise self._error

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        try:
            self.hub = gevent.get_hub()
            self.engine.bridge.bind_current()
            self.server = make_server(self.middleware, "127.0.0.1", self.port, access_log=False)
            # A pool lets stop() end the connections still open (long polls, websockets).
            self.server.set_spawn(gevent.pool.Pool())
            self.server.start()
            self.port = self.server.server_port
            self._stop_event = gevent.event.Event()
        except BaseException as exc:  # reported to the test thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._stop_event.wait()
        self.server.close()
        self.engine.close_all()
        self.server.stop(timeout=self._stop_timeout)
        self._stopped.set()

    def call(self, func: Callable, *args: Any) -> Any:
        """Run ``func(*args)`` inside the server's hub and return its result."""
        return self.engine.bridge.call(func, *args)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop_timeout = timeout
        if self.hub is not None and not self._stopped.is_set():
            self.hub.loop.run_callback_threadsafe(self._stop_event.set)
            self._stopped.wait(10)
            self._thread.join(10)

    # -- recording handlers -------------------------------------------------
    def on(self, event: str, func: Optional[Callable] = None, channel: Optional[str] = None):
        def register(f: Callable) -> Callable:
            self.handlers.add(event, f, channel)
            return f
        return register(func) if func is not None else register

    def record(self, *events: str) -> None:
        """Record every call of ``events`` as ``(event, session_id, arg...)``."""
        for event in events:
            def recorder(request, socket, context, *arg, _event=event, **kw):
                self.events.append((_event, socket.session.session_id, *arg, *kw.values()))
            self.handlers.add(event, recorder)

    def echo(self) -> None:
        self.on("on_message", lambda request, socket, context, message: socket.send(message))

    def names(self, session_id: Optional[str] = None) -> List[str]:
        return [e[0] for e in self.events if session_id is None or e[1] == session_id]


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it is truthy or ``timeout`` passes (then AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
