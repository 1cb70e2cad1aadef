"""One Socket.IO session: its state, outbound queue, timers and heartbeats.

States: ``NEW`` (created, ``on_connect`` not yet done) -> ``OPEN`` -> ``CLOSED``.
Outbound frames are UTF-8 ``bytes`` encoded once by the sender, so one
broadcast puts the same object into every recipient's queue.  A transport
waits on the session's *waiter* (a gevent Event) and drains the queue whole.
"""
from __future__ import annotations

import collections
import secrets
import time
from typing import TYPE_CHECKING, Any, Callable, Deque, FrozenSet, List, Optional, Tuple

import gevent
import gevent.event
import gevent.lock

from .protocol import encode_heartbeat

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine
    from .socket import Socket

__all__ = ["Session", "new_session_id", "NEW", "OPEN", "CLOSED", "Reason"]

NEW, OPEN, CLOSED = "new", "open", "closed"


class Reason:
    """Why a session ended; passed to ``on_disconnect`` handlers that take ``reason``."""

    CLIENT_CLOSED = "client closed"
    HEARTBEAT_TIMEOUT = "heartbeat timeout"
    CLOSE_TIMEOUT = "close timeout"
    SERVER_SHUTDOWN = "server shutdown"
    SERVER_CLOSED = "server closed"
    HANDLER_ERROR = "handler error"
    LIMIT_EXCEEDED = "limit exceeded"
    PROTOCOL_ERROR = "protocol error"

    ALL = (CLIENT_CLOSED, HEARTBEAT_TIMEOUT, CLOSE_TIMEOUT, SERVER_SHUTDOWN,
           SERVER_CLOSED, HANDLER_ERROR, LIMIT_EXCEEDED, PROTOCOL_ERROR)


def new_session_id() -> str:
    """20 decimal digits from the OS CSPRNG (66 bits): URL-safe and unguessable."""
    return str(secrets.randbelow(9 * 10**19) + 10**19)


class Session:
    __slots__ = (
        "session_id", "transport", "engine", "state", "origin", "request", "context",
        "socket", "channel_list", "channel_key", "lock", "close_reason",
        "_queue", "queued_bytes", "_waiter", "_notify", "_close_timer",
        "hb_sent", "hb_acked", "hb_sent_at", "hb_next", "__weakref__",
    )

    def __init__(self, engine: "Engine", transport: str, session_id: str,
                 origin: Optional[str] = None):
        self.session_id = session_id
        self.transport = transport
        self.engine = engine
        self.state = NEW
        self.origin = origin
        self.request: Any = None
        self.context: dict = {}
        self.socket: Optional["Socket"] = None
        self.channel_list: List[str] = []
        self.channel_key: FrozenSet[str] = frozenset()
        self.lock = gevent.lock.RLock()
        self.close_reason: Optional[str] = None
        self._queue: Deque[bytes] = collections.deque()
        self.queued_bytes = 0
        self._waiter: Optional[gevent.event.Event] = None
        self._notify: Optional[Callable[[], None]] = None
        self._close_timer: Any = None  # a gevent loop timer
        self.hb_sent = 0
        self.hb_acked = 0
        self.hb_sent_at = 0.0
        self.hb_next = 0.0

    def __repr__(self) -> str:
        return f"<Session {self.session_id} {self.transport} {self.state}>"

    @property
    def connected(self) -> bool:
        return self.state != CLOSED

    # -- outbound ---------------------------------------------------------
    def push(self, frame: bytes) -> bool:
        """Queue one encoded payload; False if the session can no longer receive."""
        if self.state is CLOSED:
            return False
        queue = self._queue
        queue.append(frame)
        self.queued_bytes += len(frame)
        options = self.engine.options
        if len(queue) > options.max_queue_messages or self.queued_bytes > options.max_queue_bytes:
            self.engine.close_later(self, Reason.LIMIT_EXCEEDED)
            return False
        notify = self._notify
        if notify is not None:
            notify()
            return True
        waiter = self._waiter
        if waiter is not None:
            waiter.set()
        return True

    def set_notify(self, notify: Optional[Callable[[], None]]) -> None:
        """Call ``notify()`` instead of setting the waiter when a frame is queued
        (the websocket transport flushes from the event loop instead)."""
        self._notify = notify

    def has_queued(self) -> bool:
        return bool(self._queue)

    def drain(self) -> bytes:
        """Take everything queued, joined into one payload (``b""`` if none)."""
        queue = self._queue
        if not queue:
            return b""
        self._queue = collections.deque()
        stats = self.engine.stats
        stats.messages_out += len(queue)
        stats.bytes_out += self.queued_bytes
        self.queued_bytes = 0
        return queue[0] if len(queue) == 1 else b"".join(queue)

    def drop_queue(self) -> None:
        self._queue.clear()
        self.queued_bytes = 0

    def set_waiter(self, waiter: Optional[gevent.event.Event]) -> Optional[gevent.event.Event]:
        """Install the event to set on new frames; returns (and wakes) the old one."""
        old, self._waiter = self._waiter, waiter
        if old is not None and old is not waiter:
            old.set()
        return old

    def is_waiter(self, waiter: gevent.event.Event) -> bool:
        return self._waiter is waiter

    def wake(self) -> None:
        if self._notify is not None:
            self._notify()
        elif self._waiter is not None:
            self._waiter.set()

    # -- polling gap --------------------------------------------------------
    def start_close_timer(self, seconds: float) -> None:
        """Between polling requests: close unless a request comes within ``seconds``.

        A libev timer, not a greenlet: it is armed and stopped on every poll,
        and only when it fires does ``close_later`` spawn the close."""
        self.cancel_close_timer()
        if self.state is not CLOSED:
            timer = self._close_timer = gevent.get_hub().loop.timer(seconds)
            timer.start(self.engine.close_later, self, Reason.CLOSE_TIMEOUT)

    def cancel_close_timer(self) -> None:
        timer = self._close_timer
        if timer is not None:
            self._close_timer = None
            timer.stop()

    # -- heartbeats (streaming transports) ----------------------------------
    def heartbeat_frame(self, now: Optional[float] = None) -> bytes:
        """The next heartbeat payload; remembers when it was sent."""
        self.hb_sent += 1
        self.hb_sent_at = time.monotonic() if now is None else now
        return encode_heartbeat(self.hb_sent).encode()

    def heartbeat_echo(self, counter: str) -> None:
        try:
            value = int(counter)
        except ValueError:
            return
        if self.hb_acked < value <= self.hb_sent:
            self.hb_acked = value

    def awaiting_echo(self) -> bool:
        return self.hb_acked < self.hb_sent

    def start_heartbeats(self, now: float) -> None:
        """The first heartbeat is due one ``heartbeat_interval`` after ``now``."""
        self.hb_next = now + self.engine.options.heartbeat_interval

    def heartbeat_step(self, now: float) -> Tuple[Optional[bytes], Optional[float]]:
        """The heartbeat rule, for every streaming transport.

        Returns ``(frame, wake_at)``: a heartbeat to send now (or None) and when
        to step again; ``wake_at`` is None when the echo is overdue (the caller
        closes the session).  No new heartbeat goes out while one is unanswered.
        """
        options = self.engine.options
        if self.awaiting_echo():
            deadline = self.hb_sent_at + options.heartbeat_timeout
            return None, (None if now >= deadline else deadline)
        if now >= self.hb_next:
            frame = self.heartbeat_frame(now)
            self.hb_next = now + options.heartbeat_interval
            return frame, min(now + options.heartbeat_timeout, self.hb_next)
        return None, self.hb_next
