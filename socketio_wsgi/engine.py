"""The session lifecycle: create, connect, deliver, close — transport-agnostic.

Transports call the engine; the engine runs handlers (one at a time per
session, in arrival order) and keeps every registry consistent, so that when
a session ends nothing refers to it any more.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, Iterable, Optional

import gevent

from .backends import resolve_backend
from .commands import HEARTBEAT, MESSAGE, SUBSCRIBE, UNSUBSCRIBE, plan_batch
from .config import POLLING_TRANSPORTS, Options
from .errors import ConnectionRefused, MessageTooLarge
from .events import HandlerRegistry, current_registry
from .protocol import ProtocolError, decode_frames, parse_message
from .ratelimit import HandshakeLimiter
from .request import WSGIRequest
from .session import CLOSED, NEW, OPEN, Reason, Session, new_session_id
from .socket import Socket
from .threadsafe import HubBridge

__all__ = ["Engine", "TooManySessions", "TooManyHandshakes", "Stats"]

log = logging.getLogger("socketio_wsgi")
handler_log = logging.getLogger("socketio_wsgi.handlers")


class TooManySessions(Exception):
    """No new session now: ``max_sessions`` are open, or the server is shutting down."""


class TooManyHandshakes(TooManySessions):
    """This address opened more than ``max_handshakes_per_minute`` sessions."""


class Stats:
    """Counters for the status endpoint; plain ints, cheap on the hot path."""

    def __init__(self) -> None:
        self.messages_in = 0
        self.chars_in = 0
        self.messages_out = 0
        self.bytes_out = 0
        self.sessions_opened = 0
        self.handler_errors = 0
        self.protocol_errors = 0
        self.disconnects: Dict[str, int] = {reason: 0 for reason in Reason.ALL}


MessageLog = Callable[[Any, str, Any], None]


class Engine:
    def __init__(self, options: Options):
        self.options = options
        self.backend = resolve_backend(options.backend)
        self.sessions: Dict[str, Session] = {}
        self.bridge = HubBridge()
        self.stats = Stats()
        self.request_adapter = options.request_adapter or WSGIRequest
        self.message_log: Optional[MessageLog] = None
        self.accepting = True
        rate = options.max_handshakes_per_minute
        self.handshake_limiter = HandshakeLimiter(rate) if rate else None
        #: Closed polling sessions whose queued messages a last poll may still collect.
        self.draining: Dict[str, Session] = {}
        self.started = time.time()

    @property
    def handlers(self) -> HandlerRegistry:
        return self.options.handlers if self.options.handlers is not None else current_registry()

    # -- creation ---------------------------------------------------------
    def new_session(self, transport: str, environ: dict) -> Session:
        if not self.accepting:
            raise TooManySessions("the server is shutting down")
        limiter = self.handshake_limiter
        if limiter is not None and not limiter.allow(environ.get("REMOTE_ADDR", "")):
            raise TooManyHandshakes(f"more than {self.options.max_handshakes_per_minute} "
                                    "new sessions a minute from this address")
        if len(self.sessions) >= self.options.max_sessions:
            raise TooManySessions(f"{len(self.sessions)} sessions are open (max_sessions)")
        self.bridge.bind_current()
        session_id = new_session_id()
        while session_id in self.sessions:  # pragma: no cover - 66 random bits
            session_id = new_session_id()
        session = Session(self, transport, session_id, environ.get("HTTP_ORIGIN"))
        session.socket = Socket(session)
        session.request = self.request_adapter(environ)
        self.sessions[session_id] = session
        self.backend.add_session(session)
        self.stats.sessions_opened += 1
        return session

    def get(self, session_id: str) -> Optional[Session]:
        session = self.sessions.get(session_id)
        return session if session is not None else self.draining.get(session_id)

    def connect(self, session: Session) -> bool:
        """Fire ``on_connect``.  Returns False if a handler failed (session closed).

        :class:`ConnectionRefused` propagates after the session is discarded
        without any further event.
        """
        with session.lock:
            try:
                self.handlers.fire("on_connect", session.channel_key, session.request,
                                   session.socket, session.context)
            except ConnectionRefused as refused:
                log.info("session %s refused by on_connect: %s", session.session_id, refused.reason)
                self._forget(session)
                session.state = CLOSED
                raise
            except Exception as exc:
                self._handler_failed(session, exc)
                return False
            if session.state is NEW:
                session.state = OPEN
                log.info("session %s connected over %s", session.session_id, session.transport)
        return session.state is OPEN

    # -- inbound ----------------------------------------------------------
    def receive_payload(self, session: Session, payload: str) -> None:
        """Decode and deliver one payload; :class:`ProtocolError` closes the session."""
        stats = self.stats
        stats.chars_in += len(payload)
        try:
            frames = decode_frames(payload)
            self._check_sizes(frames)
            plan = plan_batch([parse_message(data) for data in frames])
        except ProtocolError as exc:
            stats.protocol_errors += 1
            log.warning("session %s: bad payload (%s); closing it", session.session_id, exc)
            too_large = isinstance(exc, MessageTooLarge)
            self.close(session, Reason.LIMIT_EXCEEDED if too_large else Reason.PROTOCOL_ERROR)
            raise
        self.deliver(session, plan)

    def _check_sizes(self, frames: list) -> None:
        limit = self.options.max_message_size
        for data in frames:
            if len(data) > limit // 4:
                size = len(data.encode("utf-8", "surrogatepass"))
                if size > limit:
                    raise MessageTooLarge(size, limit)

    def deliver(self, session: Session, plan: Iterable) -> None:
        with session.lock:
            handlers = self.handlers
            for kind, arg in plan:
                if session.state is CLOSED:
                    return
                if kind is HEARTBEAT:
                    session.heartbeat_echo(arg)
                    continue
                self.stats.messages_in += 1
                try:
                    if kind is MESSAGE:
                        handlers.fire("on_message", session.channel_key, session.request,
                                      session.socket, session.context, arg)
                    elif kind is SUBSCRIBE:
                        self.subscribe(session, arg)
                    elif kind is UNSUBSCRIBE:
                        self.unsubscribe(session, arg)
                    if self.message_log is not None:
                        self.message_log(session.request, kind, arg)
                except Exception as exc:
                    self._handler_failed(session, exc)
                    return

    def subscribe(self, session: Session, channel: str) -> bool:
        with session.lock:
            if session.state is CLOSED:
                return False
            added = self.backend.subscribe(session.session_id, channel)
            if added:
                session.channel_list.append(channel)
                session.channel_key = frozenset(session.channel_list)
            self.handlers.fire("on_subscribe", session.channel_key, session.request,
                               session.socket, session.context, channel)
            return added

    def unsubscribe(self, session: Session, channel: str) -> bool:
        with session.lock:
            removed = self.backend.unsubscribe(session.session_id, channel)
            if removed:
                session.channel_list.remove(channel)
                session.channel_key = frozenset(session.channel_list)
            if session.state is not CLOSED:
                self.handlers.fire("on_unsubscribe", session.channel_key, session.request,
                                   session.socket, session.context, channel)
            return removed

    # -- closing ----------------------------------------------------------
    def _handler_failed(self, session: Session, exc: BaseException) -> None:
        self.stats.handler_errors += 1
        handler_log.error("handler error in session %s", session.session_id, exc_info=exc)
        try:
            self.handlers.fire("on_error", session.channel_key, session.request,
                               session.socket, session.context, exc)
        except Exception:
            handler_log.exception("on_error handler failed in session %s", session.session_id)
        self.close(session, Reason.HANDLER_ERROR)

    def close_later(self, session: Session, reason: str) -> None:
        """Close from a place that must not run handlers (a push, a hub callback)."""
        if session.state is not CLOSED and session.close_reason is None:
            session.close_reason = reason
            gevent.spawn(self.close, session, reason)

    def close(self, session: Session, reason: str) -> None:
        """End ``session`` once: disconnect (unless an error ended it), then
        unsubscribe from each channel still held, then finish; then forget it."""
        with session.lock:
            if session.state is CLOSED:
                return
            session.state = CLOSED
            session.close_reason = reason
            session.cancel_close_timer()
            self.stats.disconnects[reason] = self.stats.disconnects.get(reason, 0) + 1
            log.info("session %s closed: %s", session.session_id, reason)
            try:
                if reason != Reason.HANDLER_ERROR:
                    self._fire_closing(session, "on_disconnect", reason=reason)
                for channel in list(session.channel_list):
                    self._fire_closing(session, "on_unsubscribe", channel)
                self._fire_closing(session, "on_finish")
            finally:
                self._forget(session)
                session.wake()

    def _fire_closing(self, session: Session, event: str, *arg: Any, reason: Optional[str] = None) -> None:
        try:
            self.handlers.fire(event, session.channel_key, session.request, session.socket,
                               session.context, *arg, reason=reason)
        except Exception as exc:
            self.stats.handler_errors += 1
            handler_log.error("%s handler failed in session %s", event, session.session_id, exc_info=exc)
            if event == "on_disconnect":
                try:
                    self.handlers.fire("on_error", session.channel_key, session.request,
                                       session.socket, session.context, exc)
                except Exception:
                    handler_log.exception("on_error handler failed in session %s", session.session_id)

    def _forget(self, session: Session) -> None:
        backend = self.backend
        for channel in session.channel_list:
            backend.unsubscribe(session.session_id, channel)
        session.channel_list = []
        session.channel_key = frozenset()
        backend.remove_session(session.session_id)
        self.sessions.pop(session.session_id, None)

    def close_all(self, reason: str = Reason.SERVER_SHUTDOWN) -> None:
        for session in list(self.sessions.values()):
            self.close(session, reason)

    def shutdown(self, grace: float = 5.0) -> None:
        """Refuse new sessions, close every session (with the proper events), and
        give polling clients up to ``grace`` seconds to collect what is queued."""
        self.accepting = False
        for session in list(self.sessions.values()):
            self.close(session, Reason.SERVER_SHUTDOWN)
            if session.transport in POLLING_TRANSPORTS and session.has_queued():
                self.draining[session.session_id] = session
        deadline = time.monotonic() + grace
        while self.draining and time.monotonic() < deadline:
            gevent.sleep(0.05)
        if self.draining:
            log.info("shutdown: %d polling clients did not collect their messages", len(self.draining))
        self.draining.clear()

    def collected(self, session: Session) -> None:
        """A poll took a closed session's last messages (see :meth:`shutdown`)."""
        self.draining.pop(session.session_id, None)

