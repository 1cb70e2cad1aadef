"""The websocket (and flashsocket) transport over RFC 6455.

gevent-websocket performs the upgrade; from then on this module owns the
socket: :mod:`socketio_wsgi.wsframes` reads frames with size limits checked
from their headers, and one writer greenlet per connection drains the
session queue (several queued messages go out as one payload, one frame)
and sends heartbeats.
"""
from __future__ import annotations

import logging
import socket as _socket
from typing import Optional

import gevent
import gevent.event
import gevent.lock

from ..errors import ConnectionRefused, MessageTooLarge
from ..http import Headers, text_response
from ..protocol import ProtocolError
from ..session import CLOSED, Reason, Session
from ..wsframes import (OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, ConnectionClosed, FrameError,
                        MessageReader, MessageTooBig, build_frame, close_payload)
from .base import Transport, stream_payloads

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
_WRITER_GRACE = 5.0


class WSConnection:
    """Thread-of-control-safe writes and one-time close on an upgraded socket."""

    __slots__ = ("_ws", "_write", "read", "_lock", "closed", "close_code")

    def __init__(self, ws):
        self._ws = ws
        self._write = ws.raw_write
        self.read = ws.raw_read
        self._lock = gevent.lock.Semaphore()
        self.closed = False
        self.close_code: Optional[int] = None

    def write_text(self, payload: bytes) -> None:
        frame = build_frame(OP_TEXT, payload)
        with self._lock:
            self._write(frame)

    def on_control(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_PING and not self.closed:
            with self._lock:
                self._write(build_frame(OP_PONG, payload))

    def close(self, code: int, reason: str = "") -> None:
        """Send a close frame once and shut the socket so a blocked read returns."""
        if self.closed:
            return
        self.closed = True
        try:
            with self._lock:
                self._write(build_frame(OP_CLOSE, close_payload(code, reason)))
        except OSError:
            pass
        self._ws.closed = True  # gevent-websocket must not write a second close frame
        sock = getattr(getattr(self._ws, "handler", None), "socket", None)
        if sock is not None:
            try:
                sock.shutdown(_socket.SHUT_RDWR)
            except OSError:
                pass


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
            conn.write_text(self.id_frame(session))
        except OSError:
            self.engine.close(session, Reason.CLIENT_CLOSED)
            return []
        self.serve(session, conn)
        return []

    def serve(self, session: Session, conn: WSConnection) -> None:
        waiter = gevent.event.Event()
        session.set_waiter(waiter)
        writer = gevent.spawn(self._write_loop, session, conn, waiter)
        reason = Reason.CLIENT_CLOSED
        try:
            self._read_loop(session, conn)
        except ConnectionClosed:
            pass
        except MessageTooBig as exc:
            log.warning("session %s: %s", session.session_id, exc)
            conn.close_code, reason = exc.code, Reason.LIMIT_EXCEEDED
        except FrameError as exc:
            log.warning("session %s: websocket protocol error: %s", session.session_id, exc)
            conn.close_code, reason = exc.code, Reason.PROTOCOL_ERROR
        except MessageTooLarge:
            conn.close_code = 1009
        except ProtocolError:
            conn.close_code = 1007
        except OSError:
            pass
        finally:
            self.engine.close(session, reason)
            writer.join(timeout=_WRITER_GRACE)
            if not writer.dead:
                writer.kill(block=False)
            conn.close(conn.close_code or CLOSE_CODES.get(session.close_reason or "", 1000),
                       session.close_reason or "")

    def _read_loop(self, session: Session, conn: WSConnection) -> None:
        options = self.engine.options
        reader = MessageReader(conn.read, options.max_payload_size, expect_masked=True,
                               on_control=conn.on_control)
        receive = self.engine.receive_payload
        while session.state is not CLOSED:
            opcode, data = reader.read_message()
            if opcode != OP_TEXT:
                raise FrameError("binary frames are not part of Socket.IO 0.6", 1003)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise FrameError("text frame is not valid UTF-8", 1007) from None
            receive(session, text)

    def _write_loop(self, session: Session, conn: WSConnection, waiter: gevent.event.Event) -> None:
        try:
            for payload in stream_payloads(session, waiter):
                conn.write_text(payload)
        except OSError:
            self.engine.close(session, Reason.CLIENT_CLOSED)
        finally:
            session.set_waiter(None)
            conn.close(conn.close_code or CLOSE_CODES.get(session.close_reason or "", 1000),
                       session.close_reason or "")

