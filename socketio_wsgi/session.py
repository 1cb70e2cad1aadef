"""The gevent driver of one :class:`~socketio_wsgi.core.SessionCore`.

:class:`Session` is what the engine, the transports, the channel backends and
:class:`~socketio_wsgi.testing.TestClient` hold.  It adds to the core only
what waits: the per-session lock that runs handlers one at a time, the *one*
way a transport waits for output (a :class:`Receiver` attached to the
session, woken when something is queued or the session ends), the one libev
timer armed at the core's next deadline, and the hook that shuts the
client's connection when the core says so.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, FrozenSet, Optional, Tuple

import gevent
import gevent.event
import gevent.lock

from .core import Reason, SessionCore, State

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine
    from .outbound import Frame
    from .socket import Socket

__all__ = ["Session", "Receiver", "Waiter", "new_session_id", "pause", "Reason", "State"]

#: How long :func:`pause` sleeps: any positive time makes it a timer, which
#: fires only after the loop has polled the sockets.
_PAUSE = 1e-6


def pause() -> None:
    """Let every other session run, their socket input included, before going
    on (between slices of a long batch).

    ``gevent.sleep(0)`` is not enough: greenlets that yield that way run again
    in the same pass over the loop's callbacks, before it polls the sockets,
    so two busy sessions yielding to each other kept a third one's input
    waiting for up to 90 ms.  A timer that is due fires only after the poll.
    """
    gevent.sleep(_PAUSE)


def new_session_id() -> str:
    """20 decimal digits from the OS CSPRNG (66 bits): URL-safe and unguessable."""
    return str(secrets.randbelow(9 * 10**19) + 10**19)


class Receiver:
    """Something that takes a session's output: told by :meth:`wake` that
    there is output, that the session ended, or that another receiver took
    its place."""

    __slots__ = ()

    def wake(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class Waiter(Receiver):
    """A receiver a greenlet blocks on (a held poll, a stream, a test client)."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = gevent.event.Event()

    def wake(self) -> None:
        self._event.set()

    def wait(self, timeout: Optional[float]) -> None:
        self._event.wait(timeout)
        self._event.clear()


class Session:
    """One client session: a core, its handler-facing objects, and its waits."""

    __slots__ = (
        "core",
        "engine",
        "transport",
        "origin",
        "request",
        "context",
        "socket",
        "lock",
        "_receiver",
        "_timer",
        "_timer_at",
        "_close_spawned",
        "_aborts",
        "abort",
        "auth",
        "__weakref__",
    )

    #: The Socket.IO protocol generation of the client ("0.6"; "4" for
    #: :class:`~socketio_wsgi.v4session.V4Session`).
    protocol = "0.6"
    #: The namespace (0.6 clients have only "/").
    namespace = "/"
    #: Whether connection state recovery restored this session (Socket.IO 4).
    recovered = False

    def __init__(self, engine: "Engine", transport: str, core: SessionCore, origin: Optional[str] = None):
        self.core = core
        self.engine = engine
        self.transport = transport
        self.origin = origin
        self.request: Any = None
        self.context: dict = {}
        self.socket: Optional["Socket"] = None
        self.lock = gevent.lock.RLock()
        self._receiver: Optional[Receiver] = None
        self._timer: Any = None  # a libev timer of the hub's loop
        self._timer_at: Optional[float] = None
        self._close_spawned = False
        self._aborts: Optional[Dict[int, Callable[[], None]]] = None
        #: Set by a transport that owns the client's connection for the whole
        #: session (a websocket): shuts it at once, so a blocked write fails
        #: and frees what it held.
        self.abort: Optional[Callable[[], None]] = None
        #: A Socket.IO 4 client's CONNECT payload (None for 0.6 clients).
        self.auth: Any = None

    def __repr__(self) -> str:
        return f"<Session {self.session_id} {self.transport} {self.core.state.value}>"

    # -- what the core knows ------------------------------------------------------
    @property
    def session_id(self) -> str:
        return self.core.session_id

    @property
    def state(self) -> State:
        return self.core.state

    @property
    def close_reason(self) -> Optional[str]:
        return self.core.close_reason

    @property
    def connected(self) -> bool:
        """Open (or still connecting): neither closing nor closed."""
        state = self.core.state
        return state is State.OPEN or state is State.CONNECTING

    @property
    def channel_list(self) -> Tuple[str, ...]:
        return self.core.channels

    @property
    def channel_key(self) -> FrozenSet[str]:
        return self.core.channel_key

    # -- outbound -------------------------------------------------------------------
    def push(self, frame: "Frame") -> bool:
        """Queue one encoded payload (or an :class:`~socketio_wsgi.outbound.Emission`,
        encoded here once for all 0.6 recipients); False if the session can
        no longer receive.

        A frame that breaks a queue limit closes the session ("limit
        exceeded"): its closing events run in their own greenlet, since the
        caller may be another session's handler."""
        if type(frame) is not bytes:
            frame = frame.v06()  # type: ignore[union-attr]
        core = self.core
        if core.send(frame):
            receiver = self._receiver
            if receiver is not None:
                receiver.wake()
            return True
        if core.state is State.CLOSING:
            self.closing()
        return False

    def has_queued(self) -> bool:
        return self.core.has_data()

    def take(self, limit: Optional[int] = None) -> bytes:
        """Everything queued, as one payload (``b""`` if nothing); with
        ``limit``, the oldest part that fits in ``limit`` bytes (at least one
        message), the rest staying queued."""
        core = self.core
        count = core.queued_messages
        if not count:
            return b""
        stats = self.engine.stats
        if limit is not None and core.queued_bytes > limit:
            data = core.data_to_send(limit)
            stats.messages_out += count - core.queued_messages
            stats.bytes_out += len(data)
            return data
        stats.messages_out += count
        stats.bytes_out += core.queued_bytes
        return core.data_to_send()

    def put_back(self, payload: bytes, takes: int) -> None:
        """Queue again, first, a payload :meth:`take` returned that never
        reached the client (a forwarded poll whose process died), unless
        something was taken since (``takes``: ``core.takes`` after that take)."""
        if self.core.put_back(payload, takes):
            receiver = self._receiver
            if receiver is not None:
                receiver.wake()

    # -- the one way to wait for output -------------------------------------------
    def attach(self, receiver: Receiver) -> None:
        """Make ``receiver`` the one that gets this session's output; the one
        it replaces is woken (a newer poll answers the older one)."""
        old, self._receiver = self._receiver, receiver
        self.core.attach(time.monotonic())
        self._rearm()
        if old is not None and old is not receiver:
            old.wake()
        if self.core.has_data() or self.core.state is not State.OPEN:
            receiver.wake()

    def detach(self, receiver: Optional[Receiver]) -> bool:
        """``receiver`` no longer listens (``None``: nobody listened, as after
        a polling handshake); a polling client must now come back within
        ``close_timeout``.  False if another receiver took its place."""
        if self._receiver is not receiver:
            return False
        self._receiver = None
        self.core.detach(time.monotonic())
        self._rearm()
        return True

    def is_attached(self, receiver: Receiver) -> bool:
        return self._receiver is receiver

    def wait(self, waiter: Waiter, until: float, stop: Optional[Callable[[], bool]] = None) -> None:
        """Block until output is queued, the session is no longer open, another
        receiver took ``waiter``'s place, ``stop()`` holds, or ``until``
        (a ``time.monotonic()`` value) passes."""
        core = self.core
        while (
            not core.has_data()
            and core.state is State.OPEN
            and self._receiver is waiter
            and not (stop is not None and stop())
        ):
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            waiter.wait(remaining)

    # -- writes with a deadline ------------------------------------------------------
    def write_started(self, abort: Optional[Callable[[], None]]) -> int:
        """A transport hands bytes to the client's socket; ``abort`` shuts that
        socket.  Unless :meth:`write_finished` follows within
        ``write_timeout``, the socket is shut and the session closed
        ("write timeout").  Returns the token for :meth:`write_finished`."""
        token = self.core.write_started(time.monotonic())
        if abort is not None:
            if self._aborts is None:
                self._aborts = {}
            self._aborts[token] = abort
        self._rearm()
        return token

    def write_finished(self, token: int) -> None:
        self.core.write_finished(token)
        aborts = self._aborts
        if aborts is not None:
            aborts.pop(token, None)
        self._rearm()

    def abort_connections(self, tokens: Optional[Tuple[int, ...]] = None) -> None:
        """Shut the connections of the given pending writes (all by default)
        and of the transport's own connection: whatever they were writing is
        dropped and its memory freed."""
        aborts = self._aborts
        if aborts:
            for token in tuple(aborts) if tokens is None else tokens:
                abort = aborts.pop(token, None)
                if abort is not None:
                    abort()
        if tokens is None and self.abort is not None:
            abort, self.abort = self.abort, None
            abort()

    # -- the timer ------------------------------------------------------------------------
    def _rearm(self) -> None:
        deadline = self.core.next_deadline()
        if deadline == self._timer_at:
            return
        timer = self._timer
        if timer is not None:
            timer.stop()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            delay = max(0.0, deadline - time.monotonic())
            timer = self._timer = self.engine.loop.timer(delay)
            timer.start(self._on_timer)

    def _on_timer(self) -> None:
        """A hub callback: applies the core's timed rules; never blocks."""
        self._timer = None
        self._timer_at = None
        core = self.core
        expired = core.tick(time.monotonic())
        if expired:
            self.abort_connections(expired)
        if core.state is State.CLOSING:
            self.closing()
        elif core.has_data():
            receiver = self._receiver
            if receiver is not None:
                receiver.wake()
        self._rearm()

    def stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        self._timer_at = None
        if timer is not None:
            timer.stop()

    # -- the end --------------------------------------------------------------------------------
    def closing(self) -> None:
        """The core decided to close: run the closing events in a greenlet
        of their own (once), and shut the connection if the reason aborts."""
        if self.core.close_reason in Reason.ABORTING:
            self.abort_connections()
        receiver = self._receiver
        if receiver is not None:
            receiver.wake()
        if not self._close_spawned:
            self._close_spawned = True
            gevent.spawn(self.engine.finish_close, self)

    def ended(self) -> None:
        """Called by the engine once the session is CLOSED and forgotten; the
        timer stays only for writes still pending (their deadline holds)."""
        self._rearm()
        receiver = self._receiver
        if receiver is not None:
            receiver.wake()
