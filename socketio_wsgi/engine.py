"""The dispatcher of one middleware: sessions, handlers, backend and hooks.

An :class:`Engine` owns, for one :class:`~socketio_wsgi.SocketIOMiddleware`
(or one :class:`~socketio_wsgi.testing.TestServer`), the handler registry it
was built with, its channel backend, its open sessions and their counters.
Nothing here is read from a module global: a second middleware never rewires
the first, and swapping the current registry in a test never changes a live
server.

Transports call :meth:`Engine.receive` with client payloads; the engine runs
the events the session core returns, one session's handlers one at a time
and in arrival order, yielding to other sessions between bounded slices.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Callable, ContextManager, Dict, Optional, Type

import gevent

from .backends import resolve_backend
from .commands import _channel_name
from .config import POLLING_TRANSPORTS, STREAMING_TRANSPORTS, Options
from .core import (
    CLOSING,
    OPEN,
    Disconnect,
    Limits,
    Message,
    Reason,
    SessionCore,
    State,
    Subscribe,
    Unsubscribe,
    Unsubscribed,
)
from .errors import ConnectionRefused, LimitExceeded, ProtocolError, ServiceUnavailable, TooManyHandshakes
from .events import HandlerRegistry, current_registry
from .outbound import records
from .ratelimit import HandshakeLimiter
from .request import WSGIRequest
from .session import Session, new_session_id, pause
from .sio5 import Ack, Event
from .socket import Socket
from .threadsafe import HubBridge
from .v4session import Translations, V4Session, ack_args

__all__ = ["Engine", "Stats", "SLICE"]

log = logging.getLogger("socketio_wsgi")
handler_log = logging.getLogger("socketio_wsgi.handlers")

#: Events of one batch run back to back before other sessions get a turn.
SLICE = 64


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
        #: Requests sent to the process owning their session, and served for another.
        self.forwarded = 0
        self.served_for_others = 0
        self.disconnects: Dict[str, int] = {reason: 0 for reason in Reason.ALL}


MessageLog = Callable[[Any, str, Any], None]


class Engine:
    """Sessions, handlers, backend and hooks of one middleware.

    ``handlers``: the registry given in ``options.handlers``, else the one
    current when the engine is built (the module-level decorators' registry).
    """

    def __init__(self, options: Options, handlers: Optional[HandlerRegistry] = None):
        self.options = options
        self.handlers: HandlerRegistry = handlers or options.handlers or current_registry()
        self.limits = Limits.from_options(options)
        self.backend = resolve_backend(options.backend)
        self.sessions: Dict[str, Session] = {}
        self.bridge = HubBridge()
        self.stats = Stats()
        self.request_adapter = options.request_adapter or WSGIRequest
        self.around_handlers: Optional[Callable[[Any], ContextManager[Any]]] = options.around_handlers
        self.message_log: Optional[MessageLog] = None
        self.accepting = True
        rate = options.max_handshakes_per_minute
        self.handshake_limiter = HandshakeLimiter(rate) if rate else None
        #: Closed polling sessions whose queued messages a last poll may still collect.
        self.draining: Dict[str, Session] = {}
        self.started = time.time()
        #: 0.6 payloads turned into Socket.IO 4 records, once per broadcast.
        self.translations = Translations()
        #: The Engine.IO 4 endpoint serving Socket.IO 4 clients (set by the middleware).
        self.v4_endpoint: Any = None

    @property
    def loop(self) -> Any:
        """The event loop of the calling thread's hub (timers are armed there)."""
        return gevent.get_hub().loop

    # -- creation -----------------------------------------------------------------
    def admit(self, environ: dict, extra: int = 0) -> None:
        """Raise :class:`ServiceUnavailable` unless a new client may start
        (``extra``: connections not yet counted as sessions)."""
        if not self.accepting:
            raise ServiceUnavailable("the server is shutting down")
        limiter = self.handshake_limiter
        if limiter is not None and not limiter.allow(environ.get("REMOTE_ADDR", "")):
            raise TooManyHandshakes(
                f"more than {self.options.max_handshakes_per_minute} new sessions a minute from this address"
            )
        if len(self.sessions) + extra >= self.options.max_sessions:
            raise ServiceUnavailable(f"{len(self.sessions) + extra} sessions are open (max_sessions)")

    def new_session(
        self,
        transport: str,
        environ: dict,
        session_class: Type[Session] = Session,
        admitted: bool = False,
        **extra: Any,
    ) -> Session:
        """A new session (CONNECTING); raises :class:`ServiceUnavailable`
        (unless ``admitted``: :meth:`admit` already let its client in)."""
        if not admitted:
            self.admit(environ)
        elif len(self.sessions) >= self.options.max_sessions:
            raise ServiceUnavailable(f"{len(self.sessions)} sessions are open (max_sessions)")
        self.bridge.bind_current()
        session_id = new_session_id()
        while session_id in self.sessions:  # pragma: no cover - 66 random bits
            session_id = new_session_id()
        core = SessionCore(
            session_id,
            self.limits,
            heartbeats=transport in STREAMING_TRANSPORTS,
            polling=transport in POLLING_TRANSPORTS,
        )
        session = session_class(self, transport, core, environ.get("HTTP_ORIGIN"), **extra)
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
                self._fire("on_connect", session, auth=session.auth)
            except ConnectionRefused as refused:
                log.info("session %s refused by on_connect: %s", session.session_id, refused.reason)
                session.core.refuse()
                self._forget(session, ())
                session.ended()
                raise
            except Exception as exc:
                self._handler_failed(session, exc)
                self.finish_close(session)
                return False
            core = session.core
            if core.state is State.CONNECTING:
                core.open(time.monotonic())
                log.info("session %s connected over %s", session.session_id, session.transport)
            elif core.state is CLOSING:
                self.finish_close(session)  # on_connect closed it, or a limit did
        return session.state is State.OPEN

    # -- handlers ---------------------------------------------------------------------
    def _fire(
        self, event: str, session: Session, *arg: Any, reason: Optional[str] = None, auth: Any = None
    ) -> None:
        # ``auth`` only when there is one: a registry wrapper written for 0.6
        # (``fire(..., reason=None)``) keeps working for 0.6 clients.
        extra = {"reason": reason} if auth is None else {"reason": reason, "auth": auth}
        hook = self.around_handlers
        if hook is None:
            self.handlers.fire(
                event,
                session.core.channel_key,
                session.request,
                session.socket,
                session.context,
                *arg,
                **extra,
            )
            return
        with hook(session.request):
            self.handlers.fire(
                event,
                session.core.channel_key,
                session.request,
                session.socket,
                session.context,
                *arg,
                **extra,
            )

    def _fire_named(self, session: Session, name: str, args: Any) -> Any:
        hook = self.around_handlers
        with hook(session.request) if hook is not None else contextlib.nullcontext():
            return self.handlers.fire_named(
                session.namespace,
                name,
                session.core.channel_key,
                session.request,
                session.socket,
                session.context,
                args,
            )

    # -- Socket.IO 4 events ---------------------------------------------------------
    def run_event(self, session: V4Session, packet: Event) -> None:
        """Run one Socket.IO 4 event of ``session``: ``"message"`` reaches
        ``on_message`` (one argument as is, several as a list), the channel
        markers subscribe and unsubscribe, any other name its ``on_event``
        handlers; then the ack, if the client asked for one (a handler's
        return value).  A limit the client broke raises its ProtocolError
        once the session is closed."""
        core = session.core
        broke: Optional[ProtocolError] = None
        with session.lock:
            if core.state is not OPEN:
                return
            name, args = packet.name, packet.args
            result: Any = None
            if name == "message":
                broke = self._run(session, Message(args[0] if len(args) == 1 else (list(args) or None)))
            elif name == "__subscribe__" or name == "__unsubscribe__":
                try:
                    channel = _channel_name(args[0] if args else None)
                except ProtocolError as exc:
                    broke = exc
                    self.stats.protocol_errors += 1
                    log.warning("session %s: %s; closing it", session.session_id, str(exc))
                    core.close(Reason.PROTOCOL_ERROR)
                else:
                    event = Subscribe(channel) if name == "__subscribe__" else Unsubscribe(channel)
                    broke = self._run(session, event)
            else:
                self.stats.messages_in += 1
                try:
                    result = self._fire_named(session, str(name), args)
                    if self.message_log is not None:
                        self.message_log(session.request, "event", [name, *args])
                except Exception as exc:
                    self._handler_failed(session, exc)
            if packet.id is not None and broke is None and core.state is OPEN:
                try:
                    session.push_records(records(Ack(packet.id, ack_args(result), session.namespace)))
                except Exception as exc:  # a return value JSON cannot carry
                    self._handler_failed(session, exc)
        if core.state is CLOSING:
            self.finish_close(session)
        if broke is not None:
            raise broke

    def run_ack(self, session: V4Session, packet: Ack) -> None:
        """A Socket.IO 4 client's ack of a server emit: run its callback."""
        callback = session.take_ack(packet.id)
        if callback is None:
            if not session.stray_acks:  # one line per session, however many follow
                log.warning(
                    "session %s: an ack for id %d, which was never sent; ignored (and any more)",
                    session.session_id,
                    packet.id,
                )
            session.stray_acks += 1
            return
        with session.lock:
            if session.core.state is not OPEN:
                return
            try:
                callback(*packet.args)
            except Exception as exc:
                self._handler_failed(session, exc)
        if session.core.state is CLOSING:
            self.finish_close(session)

    # -- inbound --------------------------------------------------------------------
    def receive(self, session: Session, payload: str) -> None:
        """Decode one client payload and run its events.

        Bad input raises :class:`~socketio_wsgi.errors.ProtocolError` (after
        the session is closed with the matching reason); nothing of it runs.
        """
        stats = self.stats
        stats.chars_in += len(payload)
        try:
            session.core.receive(payload, time.monotonic())
        except ProtocolError as exc:
            stats.protocol_errors += 1
            log.warning("session %s: bad payload (%s); closing it", session.session_id, str(exc))
            self.finish_close(session)
            raise
        self.deliver(session)

    def deliver(self, session: Session) -> None:
        """Run the session's pending events, a :data:`SLICE` at a time; other
        sessions run between slices, and nothing more runs once a close is
        decided.  A limit the client broke on the way (too many channels)
        raises its :class:`~socketio_wsgi.errors.ProtocolError` once the
        session is closed."""
        core = session.core
        broke: Optional[ProtocolError] = None
        with session.lock:
            while True:
                events = core.events_received(SLICE)
                for event in events:
                    if core.state is not OPEN:
                        break
                    broke = self._run(session, event)
                    if broke is not None:
                        break
                # A short slice emptied the inbox: what arrives meanwhile is
                # delivered by the receive() that queued it, once we let go.
                if broke is not None or len(events) < SLICE or not core.has_events():
                    break
                pause()
        if core.state is CLOSING:
            self.finish_close(session)
        if broke is not None:
            raise broke

    def _run(self, session: Session, event: Any) -> Optional[ProtocolError]:
        """Run one event; returns the client's broken limit, if it broke one."""
        self.stats.messages_in += 1
        try:
            if type(event) is Message:
                kind, arg = "message", event.value
                if self.around_handlers is None:  # the hot path: one call, no hook
                    self.handlers.fire(
                        "on_message",
                        session.core.channel_key,
                        session.request,
                        session.socket,
                        session.context,
                        arg,
                    )
                else:
                    self._fire("on_message", session, arg)
            elif type(event) is Subscribe:
                kind, arg = "subscribe", event.channel
                self.subscribe(session, arg)
            else:
                kind, arg = "unsubscribe", event.channel
                self.unsubscribe(session, arg)
            if self.message_log is not None:
                self.message_log(session.request, kind, arg)
        except ProtocolError as exc:  # a limit the client broke (too many channels)
            self.stats.protocol_errors += 1
            log.warning("session %s: %s; closing it", session.session_id, str(exc))
            session.core.close(
                Reason.LIMIT_EXCEEDED if isinstance(exc, LimitExceeded) else Reason.PROTOCOL_ERROR
            )
            return exc
        except Exception as exc:
            self._handler_failed(session, exc)
        return None

    def subscribe(self, session: Session, channel: str) -> bool:
        """Join ``channel`` and fire ``on_subscribe``; False if already held.
        Past ``max_channels_per_session`` raises :class:`LimitExceeded`."""
        with session.lock:
            core = session.core
            if not session.connected:
                return False
            added = core.add_channel(channel)
            if added:
                self.backend.subscribe(session.session_id, channel)
            self._fire("on_subscribe", session, channel)
            return added

    def unsubscribe(self, session: Session, channel: str) -> bool:
        """Leave ``channel``; ``on_unsubscribe`` fires while the session is open."""
        with session.lock:
            removed = session.core.remove_channel(channel)
            if removed:
                self.backend.unsubscribe(session.session_id, channel)
            if session.connected:
                self._fire("on_unsubscribe", session, channel)
            return removed

    # -- closing ------------------------------------------------------------------------
    def _handler_failed(self, session: Session, exc: BaseException) -> None:
        self.stats.handler_errors += 1
        handler_log.error("handler error in session %s", session.session_id, exc_info=exc)
        try:
            self._fire("on_error", session, exc)
        except Exception:
            handler_log.exception("on_error handler failed in session %s", session.session_id)
        session.core.close(Reason.HANDLER_ERROR)

    def close_later(self, session: Session, reason: str) -> None:
        """Decide the close now; run its events in a greenlet of their own
        (for places that must not run handlers: hub callbacks, pushes)."""
        session.core.close(reason)
        if session.state is State.CLOSING:
            session.closing()

    def close(self, session: Session, reason: str) -> None:
        """End ``session`` once, here and now (see :meth:`finish_close`)."""
        session.core.close(reason)
        self.finish_close(session)

    def finish_close(self, session: Session) -> None:
        """Run the closing events of a CLOSING session — disconnect (unless an
        error ended it), unsubscribe from each channel still held, finish —
        then forget it.  Does nothing for a session that is not closing."""
        core = session.core
        if core.state is not State.CLOSING:
            return
        if core.close_reason in Reason.ABORTING:
            session.abort_connections()  # nothing more is written to this client
        with session.lock:
            if core.state is not State.CLOSING:
                return  # another greenlet ended it while we waited
            reason = core.close_reason or Reason.SERVER_CLOSED
            stats = self.stats
            stats.disconnects[reason] = stats.disconnects.get(reason, 0) + 1
            log.info("session %s closed: %s", session.session_id, reason)
            try:
                for step in core.closing_events():
                    if type(step) is Disconnect:
                        self._fire_closing(session, "on_disconnect", reason=step.reason)
                    elif type(step) is Unsubscribed:
                        self._fire_closing(session, "on_unsubscribe", step.channel)
                    else:
                        self._fire_closing(session, "on_finish")
            finally:
                self._forget(session, core.finish())
                session.ended()

    def _fire_closing(self, session: Session, event: str, *arg: Any, reason: Optional[str] = None) -> None:
        try:
            self._fire(event, session, *arg, reason=reason)
        except Exception as exc:
            self.stats.handler_errors += 1
            handler_log.error("%s handler failed in session %s", event, session.session_id, exc_info=exc)
            if event == "on_disconnect":
                try:
                    self._fire("on_error", session, exc)
                except Exception:
                    handler_log.exception("on_error handler failed in session %s", session.session_id)

    def _forget(self, session: Session, channels: Any) -> None:
        # The session goes first: once its last channel is seen empty, sends
        # to it already find nobody (the Redis backend mirrors in this order).
        backend = self.backend
        self.sessions.pop(session.session_id, None)
        backend.remove_session(session.session_id)
        for channel in channels:
            backend.unsubscribe(session.session_id, channel)

    def close_all(self, reason: str = Reason.SERVER_SHUTDOWN) -> None:
        for session in list(self.sessions.values()):
            self.close(session, reason)
        if self.v4_endpoint is not None:
            self.v4_endpoint.close_all()

    def shutdown(self, grace: float = 5.0) -> None:
        """Refuse new sessions, close every session (with the proper events), and
        give polling clients up to ``grace`` seconds to collect what is queued."""
        self.accepting = False
        for session in list(self.sessions.values()):
            self.close(session, Reason.SERVER_SHUTDOWN)
            if session.transport in POLLING_TRANSPORTS and session.has_queued():
                self.draining[session.session_id] = session
        if self.v4_endpoint is not None:
            self.v4_endpoint.close_all()
        deadline = time.monotonic() + grace
        while self.draining and time.monotonic() < deadline:
            gevent.sleep(0.05)
        if self.draining:
            log.info("shutdown: %d polling clients did not collect their messages", len(self.draining))
        self.draining.clear()

    def collected(self, session: Session) -> None:
        """A poll took a closed session's last messages (see :meth:`shutdown`)."""
        self.draining.pop(session.session_id, None)
