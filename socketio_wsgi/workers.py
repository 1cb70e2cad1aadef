"""A gunicorn worker for Socket.IO and websocket apps, with a graceful stop.

``gunicorn -k socketio_wsgi.workers.GeventSocketIOWorker module:app``

It is gunicorn's gevent pywsgi worker serving with
:class:`socketio_wsgi.server.SocketIOHandler` (websocket upgrades by
:func:`socketio_wsgi.websocket.accept` on any path, refusals before the
handshake, inline Flash policy) and, on SIGTERM/SIGINT/SIGQUIT,
shuts the middleware down as ``serve()`` does: no new sessions, every session
closed with its events (``on_disconnect`` reason "server shutdown",
``on_finish``), polling clients given part of ``--graceful-timeout`` to
collect what was queued.  gevent-websocket's own worker leaves the sessions to
be killed with the process, so their closing events never run.
"""

from __future__ import annotations

from typing import Any

import gevent
from gunicorn.workers.ggevent import GeventPyWSGIWorker

from .server import SocketIOHandler, find_middleware, prepare_heap

__all__ = ["GeventSocketIOWorker"]


class GeventSocketIOWorker(GeventPyWSGIWorker):
    wsgi_handler = SocketIOHandler

    def _shut_sessions(self) -> None:
        middleware = find_middleware(getattr(self, "wsgi", None))
        if middleware is not None and middleware.engine.accepting:
            grace = max(0.0, min(5.0, float(self.cfg.graceful_timeout) - 1.0))
            gevent.spawn(middleware.engine.shutdown, grace)

    def run(self) -> None:
        prepare_heap()  # the app is loaded by now
        super().run()

    def handle_exit(self, sig: int, frame: Any) -> None:
        self._shut_sessions()
        super().handle_exit(sig, frame)

    def handle_quit(self, sig: int, frame: Any) -> None:
        self._shut_sessions()
        super().handle_quit(sig, frame)
