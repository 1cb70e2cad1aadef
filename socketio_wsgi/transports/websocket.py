"""The websocket (and flashsocket) transport: a thin driver of
:mod:`socketio_wsgi.websocket`.

The connection (:class:`socketio_wsgi.websocket.Connection`) does the
handshake, the framing, the limits, the one writer and the one close path;
this module only feeds the text it receives to the session and sends what
the session queues.  Output needs no greenlet per connection: the session's
receiver asks the hub's :class:`_Flusher` to run :meth:`_Output.flush` once
per loop iteration, which hands everything queued to the connection as one
message.  A broadcast's payload is the same bytes object in every session's
queue, so its frame is built (and compressed) once for all recipients that
use the same parameters (:class:`~socketio_wsgi.websocket.PreparedMessage`).
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from typing import Callable, List, Optional, Tuple

import gevent

from ..errors import ConnectionRefused, ProtocolError
from ..http import Headers, text_response
from ..session import Reason, Receiver, Session
from ..websocket import PARK_KEY, Connection, ConnectionClosed, PreparedMessage, accept, is_upgrade_request
from ..ws.protocol import Message
from .base import Transport

__all__ = ["WebSocketTransport", "CLOSE_CODES", "REFUSED_CODE"]

log = logging.getLogger("socketio_wsgi.transport")

#: The close code sent for each reason a session ends.
CLOSE_CODES = {
    Reason.CLIENT_CLOSED: 1000,
    Reason.SERVER_CLOSED: 1000,
    Reason.CLOSE_TIMEOUT: 1000,
    Reason.HEARTBEAT_TIMEOUT: 1001,
    Reason.SERVER_SHUTDOWN: 1001,
    Reason.WRITE_TIMEOUT: 1001,
    Reason.PROTOCOL_ERROR: 1007,
    Reason.LIMIT_EXCEEDED: 1009,
    Reason.HANDLER_ERROR: 1011,
}
REFUSED_CODE = 4403


class _Output(Receiver):
    """What one websocket session sends, without a greenlet of its own.

    Woken by the session (output queued, session ended) and by the
    connection (its buffer drained); :meth:`flush` runs as a hub callback and
    never blocks.  While the connection holds more than its ``write_limit``
    the output stays in the session's queue, where its limits apply.
    """

    __slots__ = ("session", "conn", "flusher", "scheduled", "closing", "close_code", "reason", "__weakref__")

    def __init__(self, session: Session, conn: Connection):
        self.session = session
        self.conn = conn
        self.flusher = _Flusher.current()
        self.scheduled = False
        self.closing = False
        self.close_code: Optional[int] = None
        self.reason = Reason.CLIENT_CLOSED  # why the session ends, once reading stops

    def wake(self) -> None:
        if not self.scheduled:
            self.scheduled = True
            self.flusher.add(self)

    def flush(self) -> None:
        self.scheduled = False
        session, conn = self.session, self.conn
        if conn.closed:
            return
        if conn.buffered > conn.write_limit:
            return  # the connection wakes us once it has drained
        data = session.take()
        if data:
            try:
                conn.send(self.flusher.prepared(data))
            except ConnectionClosed:
                return
        if not session.connected and not self.closing:
            self.closing = True
            # The close frame goes out now; the reader (the request's
            # greenlet) sees the peer's answer, the connection's timer bounds
            # the wait for it.
            conn.close(*self.close_args(), wait=False)

    # -- input: the connection hands over each message, then the end ----------------
    def on_message(self, message: Message) -> bool:
        """Feed one message to the session; False once reading must stop."""
        session = self.session
        if not isinstance(message, str):
            log.warning(
                "session %s: binary websocket message (not part of Socket.IO 0.6)", session.session_id
            )
            self.close_code = 1003
            self.reason = Reason.PROTOCOL_ERROR
            return False
        try:
            session.engine.receive(session, message)
        except ProtocolError as exc:  # the session core closed the session already
            self.close_code = exc.close_code
            return False
        return session.connected

    def on_end(self) -> None:
        """Reading stopped: end the session with its reason, send what is
        left, and close the connection."""
        session, conn = self.session, self.conn
        failure = conn.protocol.failure
        if failure is not None and self.close_code is None:
            log.warning("session %s: websocket protocol error: %s", session.session_id, failure)
            self.close_code = failure.code
            self.reason = Reason.LIMIT_EXCEEDED if failure.code == 1009 else Reason.PROTOCOL_ERROR
        if conn.aborted == "write timeout":
            self.reason = Reason.WRITE_TIMEOUT
        session.engine.close(session, self.reason)
        session.detach(self)
        conn.on_drained = None
        if not conn.closed and self.close_code is None:
            try:
                data = session.take()
                if data:
                    conn.send(PreparedMessage(data, text=True))
            except ConnectionClosed:
                pass
        conn.close(*self.close_args())
        session.abort = None

    def close_args(self) -> Tuple[int, str]:
        reason = self.session.close_reason or ""
        return self.close_code or CLOSE_CODES.get(reason, 1000), reason


class _Flusher:
    """Hands what sessions queued to their connections, once per loop iteration.

    Pushes made while a greenlet runs (a broadcast's thousand pushes, a
    handler's several sends) go out when the hub next runs its callbacks:
    several queued messages join into one message, and the frame of a
    payload pushed to many sessions is built once.
    """

    _local = threading.local()

    def __init__(self) -> None:
        self.loop = gevent.get_hub().loop
        self.pending: List[_Output] = []
        self._last: Tuple[bytes, Optional[PreparedMessage]] = (b"", None)

    def prepared(self, payload: bytes) -> PreparedMessage:
        """The prepared text message for ``payload``; the same object again
        (a broadcast) reuses it and the frames it has built."""
        last_payload, last = self._last
        if payload is last_payload and last is not None:
            return last
        message = PreparedMessage(payload, text=True)
        self._last = (payload, message)
        return message

    @classmethod
    def current(cls) -> "_Flusher":
        flusher = getattr(cls._local, "flusher", None)
        if flusher is None:
            flusher = cls._local.flusher = cls()
        return flusher

    def add(self, output: _Output) -> None:
        if not self.pending:
            self.loop.run_callback(self.flush)
        self.pending.append(output)

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        for output in pending:
            try:
                output.flush()
            except Exception:  # one broken connection must not stall the others
                output.scheduled = False
                log.exception("session %s: write failed", output.session.session_id)
        self._last = (b"", None)  # let the payload go


class WebSocketTransport(Transport):
    name = "websocket"
    streaming = True

    def open(self, environ: dict, start_response, cors: Headers):
        if environ.get("wsgi.websocket") is None and not is_upgrade_request(environ):
            return text_response(start_response, 426, "websocket upgrade required", cors)
        options = self.engine.options
        conn = accept(
            environ, start_response, max_size=options.max_payload_size, write_timeout=options.write_timeout
        )
        if conn is None:
            return []  # a malformed handshake, answered with 400/426
        try:
            session = self.start_session(environ)
        except ConnectionRefused as refused:
            conn.close(REFUSED_CODE, refused.reason)
            return []
        try:
            conn.send(PreparedMessage(self.id_frame(session), text=True))
        except ConnectionClosed:
            self.engine.close(session, Reason.CLIENT_CLOSED)
            return []
        self.serve(session, conn, environ.pop(PARK_KEY, None))
        return []

    def serve(self, session: Session, conn: Connection, park: Optional[Callable[[], int]] = None) -> None:
        """Serve the session on ``conn`` until either side ends it; with
        ``park`` (see :data:`~socketio_wsgi.websocket.PARK_KEY`) this returns
        at once and a quiet connection holds no greenlet."""
        out = _Output(session, conn)
        session.abort = partial(_abort, conn, out)
        conn.on_drained = out.wake
        session.attach(out)  # what on_connect queued (or its failure) goes out first
        out.wake()
        conn.serve(out.on_message, out.on_end, park)


def _abort(conn: Connection, out: _Output) -> None:
    conn.abort(*out.close_args())
