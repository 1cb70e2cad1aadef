"""The websocket (and flashsocket) transport over RFC 6455.

gevent-websocket performs the upgrade; from then on this module owns the
socket: :mod:`socketio_wsgi.wsframes` reads frames with size limits checked
from their headers.  Writes need no greenlet per connection: a loop callback
sends each session's queue as one frame with a non-blocking send, and
heartbeats run on libev timers (see :class:`_Output`).
"""
from __future__ import annotations

import logging
import socket as _socket
import threading
from typing import List, Optional

import gevent
import gevent.lock

from ..errors import ConnectionRefused, ProtocolError
from ..http import Headers, text_response
from ..session import Reason, Receiver, Session
from ..wsframes import (OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, ConnectionClosed, FrameError,
                        MessageReader, MessageTooBig, build_frame, close_payload)
from .base import Transport

__all__ = ["WebSocketTransport", "WSConnection", "CLOSE_CODES"]

log = logging.getLogger("socketio_wsgi.transport")

#: The close code sent for each reason a session ends.
CLOSE_CODES = {
    Reason.CLIENT_CLOSED: 1000,
    Reason.SERVER_CLOSED: 1000,
    Reason.CLOSE_TIMEOUT: 1000,
    Reason.HEARTBEAT_TIMEOUT: 1001,
    Reason.SERVER_SHUTDOWN: 1001,
    Reason.PROTOCOL_ERROR: 1007,
    Reason.LIMIT_EXCEEDED: 1009,
    Reason.HANDLER_ERROR: 1011,
}
REFUSED_CODE = 4403


class WSConnection:
    """Thread-of-control-safe writes and one-time close on an upgraded socket."""

    __slots__ = ("_ws", "_write", "send_now", "read", "_lock", "closed", "close_code")

    def __init__(self, ws):
        self._ws = ws
        self._write = ws.raw_write
        self.read = ws.raw_read
        # gevent sockets wrap a non-blocking OS socket: its send never waits
        # (returns what it took, or raises BlockingIOError).
        sock = getattr(getattr(ws, "handler", None), "socket", None)
        self.send_now = getattr(getattr(sock, "_sock", None), "send", None)
        self._lock = gevent.lock.Semaphore()
        self.closed = False
        self.close_code: Optional[int] = None

    def write_text(self, payload: bytes, session: Optional[Session] = None) -> None:
        self.write_raw(build_frame(OP_TEXT, payload), session)

    def write_raw(self, data, session: Optional[Session] = None) -> None:
        """A blocking write; with a session, under its write deadline (past
        it the socket is shut, so the write fails and frees ``data``)."""
        with self._lock:
            token = session.write_started(self.shutdown) if session is not None else None
            try:
                self._write(data)
            finally:
                if token is not None:
                    session.write_finished(token)

    def busy(self) -> bool:
        """A blocking write holds the socket (a pong, a close frame)."""
        return self._lock.locked()

    def on_control(self, opcode: int, payload: bytes, session: Optional[Session] = None) -> None:
        if opcode == OP_PING and not self.closed:
            self.write_raw(build_frame(OP_PONG, payload), session)

    def close(self, code: int, reason: str = "") -> None:
        """Send a close frame once and shut the socket so a blocked read returns."""
        if self.closed:
            return
        self.closed = True
        try:
            self.write_raw(build_frame(OP_CLOSE, close_payload(code, reason)))
        except OSError:
            pass
        self.shutdown()

    def close_nowait(self, code: int, reason: str = ""):
        """:meth:`close` for a loop callback: returns what of the close frame the
        socket did not take (to be written by a greenlet, then :meth:`shutdown`),
        or None when it is done."""
        if self.closed:
            return None
        self.closed = True
        frame = build_frame(OP_CLOSE, close_payload(code, reason))
        try:
            sent = self.send_now(frame)
        except BlockingIOError:
            sent = 0
        except OSError:
            sent = len(frame)  # a dead socket: nobody to tell
        if sent < len(frame):
            return memoryview(frame)[sent:]
        self.shutdown()
        return None

    def shutdown(self) -> None:
        self._ws.closed = True  # gevent-websocket must not write a second close frame
        sock = getattr(getattr(self._ws, "handler", None), "socket", None)
        if sock is not None:
            try:
                sock.shutdown(_socket.SHUT_RDWR)
            except OSError:
                pass

    def abort_for(self, session: Session) -> None:
        """End the connection now, from anywhere (a hub callback too): a close
        frame if the socket takes it at once and no write is half done, then
        the socket is shut whatever was pending."""
        if not self.closed and not self.busy():
            self.close_nowait(*self.close_args(session))
        self.closed = True
        self.shutdown()

    def close_for(self, session: Session) -> None:
        self.close(*self.close_args(session))

    def close_args(self, session: Session):
        return (self.close_code or CLOSE_CODES.get(session.close_reason or "", 1000),
                session.close_reason or "")


class _Output(Receiver):
    """Everything one websocket session sends, without a greenlet of its own.

    It is the session's receiver: :meth:`wake` asks the hub's
    :class:`_Flusher` to call :meth:`flush` once per loop iteration, which
    writes the whole queue as one frame with a non-blocking send.  Only when
    the socket does not take everything (a slow client) does a helper
    greenlet finish the job, under the session's write deadline; while it
    lives nothing is written around it, so frames never reorder or
    interleave.  Heartbeats come from the session's timer like any output.
    """

    __slots__ = ("session", "conn", "flusher", "scheduled", "helper", "__weakref__")

    def __init__(self, session: Session, conn: WSConnection):
        self.session = session
        self.conn = conn
        self.flusher = _Flusher.current()
        self.scheduled = False
        self.helper: Optional[gevent.Greenlet] = None

    def wake(self) -> None:
        if not self.scheduled:
            self.scheduled = True
            self.flusher.add(self)

    def flush(self) -> None:
        """Runs in the hub (a loop callback): must never block."""
        self.scheduled = False
        session, conn = self.session, self.conn
        if self.helper is not None or conn.closed:
            return  # the helper writes what is queued, in order
        if conn.busy():
            self.helper = gevent.spawn(self._finish, None)
            return
        if session.has_queued():
            frame = self.flusher.text_frame(session.take())
            try:
                sent = conn.send_now(frame)
            except BlockingIOError:
                sent = 0
            except OSError:
                session.engine.close_later(session, Reason.CLIENT_CLOSED)
                return
            if sent < len(frame):
                self.helper = gevent.spawn(self._finish, memoryview(frame)[sent:])
                return
        if not session.connected:
            rest = conn.close_nowait(*conn.close_args(session))
            if rest is not None:
                self.helper = gevent.spawn(self._finish_close, rest)

    def _finish(self, rest) -> None:
        """Helper greenlet: blocking writes until the queue is empty, each
        under the write deadline; closes the socket if the session has ended."""
        session, conn = self.session, self.conn
        try:
            if rest is not None:
                conn.write_raw(rest, session)
            while session.has_queued() and not conn.closed:
                conn.write_raw(self.flusher.text_frame(session.take()), session)
        except OSError:
            session.engine.close(session, Reason.CLIENT_CLOSED)
        finally:
            self.helper = None
        if not session.connected:
            conn.close_for(session)

    def _finish_close(self, rest) -> None:
        try:
            self.conn.write_raw(rest, self.session)
        except OSError:
            pass
        finally:
            self.helper = None
            self.conn.shutdown()


class _Flusher:
    """Writes what sessions queued, once per event-loop iteration.

    Frames pushed while a greenlet runs (a broadcast's thousand pushes, a
    handler's several sends) go out when the hub next runs its callbacks: one
    non-blocking send per connection, no greenlet switch, and several queued
    messages joined into one frame.
    """

    _local = threading.local()

    def __init__(self) -> None:
        self.loop = gevent.get_hub().loop
        self.pending: List[_Output] = []
        self._last_text = (b"", b"")  # (payload, frame): a broadcast's frame is built once

    def text_frame(self, payload: bytes) -> bytes:
        """The text frame for ``payload``; the same object again reuses the last frame."""
        last_payload, last_frame = self._last_text
        if payload is last_payload:
            return last_frame
        frame = build_frame(OP_TEXT, payload)
        self._last_text = (payload, frame)
        return frame

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


class WebSocketTransport(Transport):
    name = "websocket"
    streaming = True

    def open(self, environ: dict, start_response, cors: Headers):
        ws = environ.get("wsgi.websocket")
        if ws is None:
            return text_response(start_response, 426, "websocket upgrade required", cors)
        conn = WSConnection(ws)
        try:
            session = self.start_session(environ)
        except ConnectionRefused as refused:
            conn.close(REFUSED_CODE, refused.reason)
            return []
        try:
            conn.write_text(self.id_frame(session), session)
        except OSError:
            self.engine.close(session, Reason.CLIENT_CLOSED)
            return []
        self.serve(session, conn)
        return []

    def serve(self, session: Session, conn: WSConnection) -> None:
        if conn.send_now is None:
            raise RuntimeError("the websocket transport needs gevent's pywsgi server (a gevent socket)")
        out = _Output(session, conn)
        session.abort = lambda: conn.abort_for(session)
        session.attach(out)  # what on_connect queued (or its failure) goes out first
        out.wake()
        reason = Reason.CLIENT_CLOSED
        try:
            self._read_loop(session, conn)
        except Exception as exc:  # noqa: BLE001 - sorted out by _ended
            reason = self._ended(session, conn, exc, reason)
        finally:
            self.engine.close(session, reason)
            session.detach(out)
            helper = out.helper
            if helper is not None:
                helper.join(timeout=self.engine.options.write_timeout)
                if not helper.dead:
                    helper.kill(block=False)
            if not conn.closed:
                try:
                    data = session.take()
                    if data:
                        conn.write_text(data, session)
                except OSError:
                    pass
            conn.close_for(session)
            session.abort = None

    def _ended(self, session: Session, conn: WSConnection, exc: Exception, reason: str) -> str:
        """Close code and reason for how the read loop ended; re-raises the unexpected."""
        if isinstance(exc, (ConnectionClosed, OSError)):
            return reason
        if isinstance(exc, MessageTooBig):
            log.warning("session %s: %s", session.session_id, str(exc))
            conn.close_code = exc.code
            return Reason.LIMIT_EXCEEDED
        if isinstance(exc, FrameError):
            log.warning("session %s: websocket protocol error: %s", session.session_id, str(exc))
            conn.close_code = exc.code
            return Reason.PROTOCOL_ERROR
        if isinstance(exc, ProtocolError):  # the session core closed the session already
            conn.close_code = exc.close_code
            return reason
        raise exc

    def _read_loop(self, session: Session, conn: WSConnection) -> None:
        options = self.engine.options
        reader = MessageReader(conn.read, options.max_payload_size, expect_masked=True,
                               on_control=lambda op, data: conn.on_control(op, data, session))
        receive = self.engine.receive
        while session.connected:
            opcode, data = reader.read_message()
            if opcode != OP_TEXT:
                raise FrameError("binary frames are not part of Socket.IO 0.6", 1003)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise FrameError("text frame is not valid UTF-8", 1007) from None
            receive(session, text)
