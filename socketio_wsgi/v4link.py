"""The gevent driver of one Engine.IO 4 connection and its namespace sessions.

A :class:`LinkDriver` drives one :class:`~socketio_wsgi.eio4_link.EngineIOLink`
(one Engine.IO ``sid``): its timer, its Socket.IO decoder, the namespace
sessions it carries (each an ordinary :class:`~socketio_wsgi.v4session.V4Session`
of the engine) and how their output reaches the transport (a held poll or a
websocket).  The transports themselves are served by
:class:`~socketio_wsgi.v4server.V4Endpoint`.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional

import gevent
import gevent.event

from . import eio4, sio5
from .core import Reason
from .eio4_link import (
    CLIENT_CLOSE,
    PARSE_ERROR,
    PING_TIMEOUT,
    SERVER_CLOSE,
    TRANSPORT_CLOSE,
    WRITE_TIMEOUT,
    EngineIOLink,
)
from .errors import ConnectionClosed, ConnectionRefused, LimitExceeded, ProtocolError, ServiceUnavailable
from .outbound import records
from .recovery import Recovery
from .session import Receiver, pause
from .v4session import V4Session

if TYPE_CHECKING:  # pragma: no cover
    from .v4server import V4Endpoint

__all__ = ["LinkDriver"]

log = logging.getLogger("socketio_wsgi")

#: Why each link end closes its namespace sessions.
_SESSION_REASONS = {
    PING_TIMEOUT: Reason.HEARTBEAT_TIMEOUT,
    TRANSPORT_CLOSE: Reason.CLIENT_CLOSED,
    CLIENT_CLOSE: Reason.CLIENT_CLOSED,
    SERVER_CLOSE: Reason.SERVER_CLOSED,
    PARSE_ERROR: Reason.PROTOCOL_ERROR,
    WRITE_TIMEOUT: Reason.WRITE_TIMEOUT,
}
_SLICE = 64


class LinkDriver(Receiver):
    """The gevent driver of one Engine.IO link and its namespace sessions.

    It is the receiver of every session it carries: a push wakes the held
    poll, or schedules one flush of the websocket in the hub.
    """

    __slots__ = (
        "endpoint",
        "engine",
        "link",
        "environ",
        "sessions",
        "decoder",
        "waiter",
        "conn",
        "polling",
        "posting",
        "scheduled",
        "_timer",
        "_timer_at",
        "attachments_due",
        "backlog",
        "ignored",
        "__weakref__",
    )

    def __init__(self, endpoint: "V4Endpoint", link: EngineIOLink, environ: dict):
        self.endpoint = endpoint
        self.engine = endpoint.engine
        self.link = link
        self.environ = environ
        self.sessions: Dict[str, V4Session] = {}
        self.decoder = sio5.Decoder(max_attachment_bytes=link.max_payload)
        self.waiter = gevent.event.Event()
        self.conn: Any = None  # the websocket Connection once it carries the link
        self.polling = False
        self.posting = False
        self.scheduled = False
        self._timer: Any = None
        self._timer_at: Optional[float] = None
        self.attachments_due: Optional[float] = None
        #: Websocket frames taken but not yet handed to a full connection.
        self.backlog: List[Any] = []
        #: Packets refused or ignored (unknown namespaces, namespaces not joined).
        self.ignored = 0

    def __repr__(self) -> str:
        return f"<LinkDriver {self.link!r} {sorted(self.sessions)}>"

    # -- output -------------------------------------------------------------------
    def wake(self) -> None:
        if self.conn is not None:
            if not self.scheduled:
                self.scheduled = True
                self.engine.loop.run_callback(self.flush)
        else:
            self.waiter.set()

    def collect(self) -> bytes:
        """Everything to send now: the link's packets, then each session's,
        with a DISCONNECT for a session the server ended."""
        parts = [self.link.take()]
        for namespace, session in list(self.sessions.items()):
            parts.append(session.take())
            if not session.connected:
                del self.sessions[namespace]
                session.detach(self)
                if self.link.open:
                    parts.append(records(sio5.Disconnect(namespace)))
        parts = [part for part in parts if part]
        # One part is returned as it is: a broadcast's records are then the
        # same object for every recipient, and their frames are built once.
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def flush(self) -> None:
        """Write what is queued on the websocket (a hub callback: never blocks)."""
        self.scheduled = False
        conn = self.conn
        if conn is None or conn.closed:
            return
        if conn.buffered > conn.write_limit:
            return  # the connection wakes us once drained
        backlog = self.backlog
        backlog.extend(self.endpoint.frames(self.collect()))
        try:
            if backlog:  # one write for all of it (the session's limits bounded it)
                conn.send_many(backlog)
                backlog.clear()
            if not self.link.open:
                conn.close(1000, self.link.close_reason or "", wait=False)
        except ConnectionClosed:
            backlog.clear()
            return

    # -- the timer ------------------------------------------------------------------
    def rearm(self) -> None:
        deadline = self.link.next_deadline()
        due = self.attachments_due
        if due is not None and (deadline is None or due < deadline):
            deadline = due
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self.engine.loop.timer(max(0.0, deadline - time.monotonic()))
            self._timer.start(self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = time.monotonic()
        link = self.link
        if self.attachments_due is not None and now >= self.attachments_due:
            log.warning("eio %s: binary attachments did not arrive in time; closing it", link.sid)
            self.attachments_due = None
            self.decoder.reset()
            link.close(PARSE_ERROR)
        elif link.tick(now):
            self.wake()
        if not link.open:
            gevent.spawn(self.end)
        else:
            self.rearm()

    # -- input ------------------------------------------------------------------------
    def receive(self, packets: Iterable[eio4.Packet]) -> None:
        """Run the client's packets; raises ProtocolError (the link is then
        closed) for anything invalid."""
        link, decoder = self.link, self.decoder
        count = 0
        try:
            for packet in packets:
                message = link.receive(packet, time.monotonic())
                if message is None:
                    continue
                data = message.data
                decoded = (
                    decoder.receive_binary(data) if isinstance(data, bytes) else decoder.receive_text(data)
                )
                for sio in decoded:
                    self.dispatch(sio)
                    count += 1
                    if count % _SLICE == 0:
                        pause()
                if not link.open:
                    break
        except ProtocolError as exc:
            self.endpoint.engine.stats.protocol_errors += 1
            log.warning("eio %s: %s; closing it", link.sid, str(exc))
            link.close(PARSE_ERROR)
            self.end()
            raise
        if decoder.waiting and self.attachments_due is None:
            self.attachments_due = time.monotonic() + link.ping_timeout
        elif not decoder.waiting:
            self.attachments_due = None
        if not link.open:
            self.end()
        else:
            self.rearm()

    def dispatch(self, packet: sio5.Packet) -> None:
        """One Socket.IO packet from the client."""
        namespace = packet.namespace
        if isinstance(packet, sio5.Connect):
            self.connect(namespace, packet.data)
            return
        session = self.sessions.get(namespace)
        if isinstance(packet, sio5.Disconnect):
            if session is not None:
                del self.sessions[namespace]
                session.detach(self)
                self.engine.close(session, Reason.CLIENT_CLOSED)
            return
        if session is None:
            if not self.ignored:  # one line per connection, however many follow
                log.warning(
                    "eio %s: a packet for %r, which it has not joined; ignored (and any more)",
                    self.link.sid,
                    namespace[:100],
                )
            self.ignored += 1
            return
        if isinstance(packet, sio5.Event):
            try:
                self.engine.run_event(session, packet)
            except ProtocolError:
                pass  # the engine closed that session and logged why
        elif isinstance(packet, sio5.Ack):
            self.engine.run_ack(session, packet)
        else:
            raise ProtocolError("a client does not send CONNECT_ERROR")

    def connect(self, namespace: str, auth: Any) -> None:
        """CONNECT: a new namespace session, refused with CONNECT_ERROR when
        the namespace is unknown or ``on_connect`` raises ConnectionRefused."""
        engine = self.engine
        if namespace in self.sessions:
            raise ProtocolError(f"a second CONNECT to {namespace[:100]!r}")
        if namespace not in engine.handlers.namespaces:
            if not self.ignored:  # one line per connection
                log.warning("eio %s: CONNECT to unknown namespace %r refused", self.link.sid, namespace[:100])
            self.ignored += 1
            self._refuse(namespace, "Invalid namespace")
            return
        window = self.endpoint.recovery_window
        if window is not None and isinstance(auth, dict) and "pid" in auth:
            auth = dict(auth)
            pid, offset = auth.pop("pid"), auth.pop("offset", None)
            if isinstance(pid, str) and (offset is None or isinstance(offset, str)):
                if self.recover(namespace, pid, offset):
                    return
        try:
            session = engine.new_session(
                f"eio4-{self.link.transport}", self.environ, V4Session, admitted=True, namespace=namespace
            )
        except ServiceUnavailable as exc:
            log.warning("eio %s: CONNECT refused: %s", self.link.sid, str(exc))
            self._refuse(namespace, str(exc))
            return
        assert isinstance(session, V4Session)
        session.link = self
        session.auth = auth
        answer = {"sid": session.session_id}
        if window is not None:
            limits = engine.limits
            # One packet and 1 KiB less than the queue takes: a recovery
            # queues the CONNECT answer before every kept packet.
            session.recovery = Recovery(
                secrets.token_urlsafe(18),
                max(1, limits.max_queue_messages - 1),
                max(1, limits.max_queue_bytes - 1024),
            )
            answer["pid"] = session.recovery.pid
        # The CONNECT answer is queued first, so whatever on_connect sends
        # follows it; a refusal drops it with the rest of the queue.
        session.core.send(records(sio5.Connect(namespace, answer)))
        self.sessions[namespace] = session
        try:
            engine.connect(session)
        except ConnectionRefused as refused:
            self.sessions.pop(namespace, None)
            self._refuse(namespace, refused.reason)
            return
        session.attach(self)

    def recover(self, namespace: str, pid: str, offset: Optional[str]) -> bool:
        """Give a held session back to its client (connection state recovery):
        its id, channels and every event packet sent after ``offset``.  False
        (a new session follows) when there is none for ``pid`` or when some
        of the packets it missed are no longer kept."""
        session = self.endpoint.held.get(pid)
        if session is None or session.namespace != namespace or session.recovery is None:
            log.info("eio %s: no session to recover; a new one starts", self.link.sid)
            return False
        missed = session.recovery.after(offset)
        if missed is None or not session.connected:
            log.info(
                "eio %s: session %s cannot be recovered (packets dropped)", self.link.sid, session.session_id
            )
            return False
        self.endpoint.release(pid)
        core = session.core
        core.drop_queue()  # what was queued is in ``missed`` too
        core.send(records(sio5.Connect(namespace, {"sid": session.session_id, "pid": pid})))
        for data in missed:
            core.send(data)
        session.link = self
        session.recovered = True
        session.transport = f"eio4-{self.link.transport}"
        self.sessions[namespace] = session
        log.info("session %s recovered with %d missed packet(s)", session.session_id, len(missed))
        session.attach(self)
        return True

    def _refuse(self, namespace: str, message: str) -> None:
        outbox = self.link.outbox
        if len(outbox) >= self.engine.limits.max_queue_messages:
            # Refusals the client does not collect: as for any queue, a limit.
            raise LimitExceeded(f"more than {len(outbox)} answers wait for this client")
        outbox.append(records(sio5.ConnectError(namespace, {"message": message})))
        self.wake()

    # -- the websocket's input ---------------------------------------------------------
    def on_frame(self, frame: Any) -> bool:
        """One websocket message of the link; False once reading must stop."""
        endpoint, link = self.endpoint, self.link
        try:
            packet = eio4.decode_packet(frame, max_payload=endpoint.max_payload)
            self.receive((packet,))
        except ProtocolError as exc:
            if link.open:
                self.engine.stats.protocol_errors += 1
                log.warning("eio %s: %s; closing it", link.sid, str(exc))
                link.close(PARSE_ERROR)
                self.end()
            code = 1009 if isinstance(exc, LimitExceeded) else 1007
            self.conn.close(code, str(exc)[:100])
            return False
        return link.open

    def on_websocket_end(self) -> None:
        """The websocket stopped being read: end the link, send what is left."""
        conn, link = self.conn, self.link
        failure = conn.protocol.failure
        if failure is not None and link.open:
            log.warning("eio %s: websocket protocol error: %s", link.sid, failure)
            link.close(PARSE_ERROR)
        conn.on_drained = None
        link.close(TRANSPORT_CLOSE)
        if self.endpoint.links.get(link.sid) is self:
            self.end()
        if not conn.closed:
            self.flush()
            conn.close(1000, link.close_reason or "")

    # -- the end ---------------------------------------------------------------------
    def end(self) -> None:
        """The link is closed: close its sessions with the matching reason,
        forget it, and let its transport answer or close."""
        link = self.link
        link.close(SERVER_CLOSE)  # no-op unless nobody decided yet
        endpoint = self.endpoint
        if endpoint.links.pop(link.sid, None) is self and endpoint.forwarder is not None:
            endpoint.forwarder.release(link.sid)
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        reason = _SESSION_REASONS.get(link.close_reason or "", Reason.CLIENT_CLOSED)
        recoverable = link.close_reason in (PING_TIMEOUT, TRANSPORT_CLOSE)
        for namespace, session in list(self.sessions.items()):
            del self.sessions[namespace]
            session.detach(self)
            if recoverable and session.recovery is not None and session.connected:
                self.endpoint.hold(session, reason)
            else:
                self.engine.close(session, reason)
        self.wake()

    def close(self) -> None:
        """End from the server side (``1`` to the client)."""
        if self.link.close(SERVER_CLOSE):
            self.link.outbox.append(b"\x1e1")
            self.end()
