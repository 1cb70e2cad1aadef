"""One Socket.IO session as an I/O-free state machine.

:class:`SessionCore` holds every *rule* of a session's life and nothing that
waits: no socket, no clock, no timer, no greenlet.  Its driver (see
:mod:`socketio_wsgi.session`) feeds it what happened and acts on what it
answers:

- ``receive(payload, now)`` decodes a client payload; the messages and
  channel requests in it come out of ``events_received(limit)``, in order,
  in slices the driver chooses (so one huge batch never monopolises a
  process), and none at all once a close is pending;
- ``send(frame)`` queues an encoded frame and enforces the queue limits;
  ``data_to_send()`` takes everything queued, joined into one payload;
- ``next_deadline()`` says when the driver must call ``tick(now)`` again:
  the next heartbeat, an overdue heartbeat echo, the gap between two polls,
  or a write that must have finished by then;
- ``close(reason)`` decides the end (state CLOSING); ``closing_events()``
  lists what the dispatcher must fire, in order; ``finish()`` ends it (CLOSED).

States move only along :data:`TRANSITIONS`; anything else raises
:class:`~socketio_wsgi.errors.UsageError`.
"""

from __future__ import annotations

import enum
from typing import Any, Callable, Dict, FrozenSet, Iterator, List, Optional, Tuple, Union

from .commands import MARKERS, plan_batch
from .errors import LimitExceeded, MessageTooLarge, ProtocolError, UsageError
from .protocol import Heartbeat, decode_frames, encode_heartbeat, parse_message

__all__ = [
    "State",
    "Reason",
    "Limits",
    "SessionCore",
    "TRANSITIONS",
    "Message",
    "Subscribe",
    "Unsubscribe",
    "Disconnect",
    "Unsubscribed",
    "Finish",
    "Event",
]


class State(enum.Enum):
    """Where a session is in its life."""

    CONNECTING = "connecting"  #: created; ``on_connect`` has not finished
    OPEN = "open"  #: delivering both ways
    CLOSING = "closing"  #: the end is decided; closing events still to fire
    CLOSED = "closed"  #: over; nothing refers to it any more


#: The only state changes there are.  CONNECTING -> CLOSED is a refusal
#: (``ConnectionRefused``): no closing event fires for it.
TRANSITIONS: Dict[State, FrozenSet[State]] = {
    State.CONNECTING: frozenset({State.OPEN, State.CLOSING, State.CLOSED}),
    State.OPEN: frozenset({State.CLOSING}),
    State.CLOSING: frozenset({State.CLOSED}),
    State.CLOSED: frozenset(),
}


CONNECTING, OPEN, CLOSING, CLOSED = State.CONNECTING, State.OPEN, State.CLOSING, State.CLOSED


class Reason:
    """Why a session ended; passed to ``on_disconnect`` handlers that take ``reason``."""

    CLIENT_CLOSED = "client closed"
    HEARTBEAT_TIMEOUT = "heartbeat timeout"
    CLOSE_TIMEOUT = "close timeout"
    WRITE_TIMEOUT = "write timeout"
    SERVER_SHUTDOWN = "server shutdown"
    SERVER_CLOSED = "server closed"
    HANDLER_ERROR = "handler error"
    LIMIT_EXCEEDED = "limit exceeded"
    PROTOCOL_ERROR = "protocol error"

    ALL = (
        CLIENT_CLOSED,
        HEARTBEAT_TIMEOUT,
        CLOSE_TIMEOUT,
        WRITE_TIMEOUT,
        SERVER_SHUTDOWN,
        SERVER_CLOSED,
        HANDLER_ERROR,
        LIMIT_EXCEEDED,
        PROTOCOL_ERROR,
    )

    #: Reasons after which nothing more is written: whatever is queued or being
    #: written is dropped and the connection is shut at once.
    ABORTING = frozenset({WRITE_TIMEOUT, LIMIT_EXCEEDED, PROTOCOL_ERROR})


class Limits:
    """The numbers a session core enforces; one object shared by every session."""

    __slots__ = (
        "heartbeat_interval",
        "heartbeat_timeout",
        "close_timeout",
        "write_timeout",
        "max_message_size",
        "max_messages_per_payload",
        "max_queue_messages",
        "max_queue_bytes",
        "max_channels",
    )

    def __init__(
        self,
        *,
        heartbeat_interval: float = 10.0,
        heartbeat_timeout: float = 8.0,
        close_timeout: float = 8.0,
        write_timeout: float = 10.0,
        max_message_size: int = 1 << 20,
        max_messages_per_payload: int = 10_000,
        max_queue_messages: int = 10_000,
        max_queue_bytes: int = 16 << 20,
        max_channels: int = 100,
    ):
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.close_timeout = close_timeout
        self.write_timeout = write_timeout
        self.max_message_size = max_message_size
        self.max_messages_per_payload = max_messages_per_payload
        self.max_queue_messages = max_queue_messages
        self.max_queue_bytes = max_queue_bytes
        self.max_channels = max_channels

    @classmethod
    def from_options(cls, options: Any) -> "Limits":
        """The limits of a :class:`~socketio_wsgi.config.Options`."""
        return cls(
            heartbeat_interval=options.heartbeat_interval,
            heartbeat_timeout=options.heartbeat_timeout,
            close_timeout=options.close_timeout,
            write_timeout=options.write_timeout,
            max_message_size=options.max_message_size,
            max_messages_per_payload=options.max_messages_per_payload,
            max_queue_messages=options.max_queue_messages,
            max_queue_bytes=options.max_queue_bytes,
            max_channels=options.max_channels_per_session,
        )


# -- events --------------------------------------------------------------------


class _Event:
    __slots__ = ()

    def _fields(self) -> Tuple[Any, ...]:
        names: Tuple[str, ...] = self.__slots__
        return tuple(getattr(self, name) for name in names)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((type(self),) + self._fields())

    def __repr__(self) -> str:
        names: Tuple[str, ...] = self.__slots__
        fields = ", ".join(f"{name}={value!r}" for name, value in zip(names, self._fields(), strict=True))
        return f"{type(self).__name__}({fields})"


class Message(_Event):
    """The client sent a message (``on_message``)."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


class Subscribe(_Event):
    """The client asked to join a channel."""

    __slots__ = ("channel",)

    def __init__(self, channel: str):
        self.channel = channel


class Unsubscribe(_Event):
    """The client asked to leave a channel."""

    __slots__ = ("channel",)

    def __init__(self, channel: str):
        self.channel = channel


class Disconnect(_Event):
    """Closing step: fire ``on_disconnect`` with the reason."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


class Unsubscribed(_Event):
    """Closing step: fire ``on_unsubscribe`` for a channel still held."""

    __slots__ = ("channel",)

    def __init__(self, channel: str):
        self.channel = channel


class Finish(_Event):
    """Closing step: fire ``on_finish``."""

    __slots__ = ()


Event = Union[Message, Subscribe, Unsubscribe]
_CHANNEL_EVENTS: Dict[str, Callable[[str], Event]] = {
    "subscribe": Subscribe,
    "unsubscribe": Unsubscribe,
}
_CHANNEL_EVENT_TYPES = frozenset((Subscribe, Unsubscribe))


#: The channel key of a session holding no channel (one object for all of them:
#: an empty frozenset is 216 bytes).
NO_CHANNELS: FrozenSet[str] = frozenset()


class SessionCore:
    """The state, queues, timers-as-deadlines and limits of one session.

    ``heartbeats``: a streaming transport (websocket, htmlfile, xhr-multipart)
    sends a heartbeat every ``heartbeat_interval`` while a receiver is
    attached, and its echo must come within ``heartbeat_timeout``.
    ``polling``: a polling transport ends a session whose client leaves more
    than ``close_timeout`` between two requests.
    """

    __slots__ = (
        "session_id",
        "limits",
        "heartbeats",
        "polling",
        "state",
        "close_reason",
        "_inbox",
        "_taken",
        "_queue",
        "queued_bytes",
        "takes",
        "_channels",
        "_channel_key",
        "_attached",
        "_gap_deadline",
        "_writes",
        "_write_seq",
        "hb_sent",
        "hb_acked",
        "hb_sent_at",
        "hb_next",
    )

    def __init__(self, session_id: str, limits: Limits, *, heartbeats: bool = False, polling: bool = False):
        self.session_id = session_id
        self.limits = limits
        self.heartbeats = heartbeats
        self.polling = polling
        self.state = CONNECTING
        self.close_reason: Optional[str] = None
        # Lists, not deques: a deque costs 760 bytes even when empty, and an
        # idle connection should cost as little as possible.  The inbox is
        # consumed by position (``_taken``) and emptied once all is taken.
        # A message is queued as its bare value and becomes a Message only when
        # taken: a payload of thousands of messages costs no GC-tracked object
        # per message until its slice is delivered.
        self._inbox: List[Any] = []
        self._taken = 0
        self._queue: List[bytes] = []
        self.queued_bytes = 0
        #: How many takes (:meth:`data_to_send` with data) so far.
        self.takes = 0
        self._channels: Dict[str, None] = {}
        self._channel_key: Optional[FrozenSet[str]] = NO_CHANNELS
        self._attached = False
        self._gap_deadline: Optional[float] = None
        self._writes: Dict[int, float] = {}  # write token -> deadline
        self._write_seq = 0
        self.hb_sent = 0
        self.hb_acked = 0
        self.hb_sent_at = 0.0
        self.hb_next: Optional[float] = None

    def __repr__(self) -> str:
        return f"<SessionCore {self.session_id} {self.state.value}>"

    # -- states ----------------------------------------------------------------
    def _move(self, new: State) -> None:
        if new not in TRANSITIONS[self.state]:
            raise UsageError(
                f"session {self.session_id}: {self.state.value} -> {new.value} "
                "is not a state change a session can make"
            )
        self.state = new

    def open(self, now: float) -> None:
        """``on_connect`` succeeded: start delivering (and the heartbeat clock)."""
        self._move(OPEN)
        if self.heartbeats:
            self.hb_next = now + self.limits.heartbeat_interval

    def refuse(self) -> None:
        """``on_connect`` refused the client: gone, with no closing event."""
        self._move(CLOSED)
        self.close_reason = Reason.SERVER_CLOSED
        self._drop_all()

    def close(self, reason: str) -> bool:
        """Decide the end.  Returns False if it was already decided (the first
        reason stands).  Pending input is dropped at once; for the reasons in
        :attr:`Reason.ABORTING` so is pending output."""
        if self.state is CLOSING or self.state is CLOSED:
            return False
        self._move(CLOSING)
        self.close_reason = reason
        self._inbox = []
        self._taken = 0
        self._gap_deadline = None
        self.hb_next = None
        if reason in Reason.ABORTING:
            self.drop_queue()
        return True

    @property
    def closing(self) -> bool:
        return self.state is CLOSING

    def closing_events(self) -> Iterator[Union[Disconnect, Unsubscribed, Finish]]:
        """What the dispatcher fires, in this order, to end a CLOSING session:
        ``on_disconnect`` (unless a handler error ended it), ``on_unsubscribe``
        for every channel still held *after* it, then ``on_finish``.  A
        generator: the channels are read when the disconnect step is done."""
        if self.state is not CLOSING:
            raise UsageError(f"session {self.session_id} is {self.state.value}, not closing")
        if self.close_reason != Reason.HANDLER_ERROR:
            yield Disconnect(self.close_reason or Reason.SERVER_CLOSED)
        for channel in list(self._channels):
            yield Unsubscribed(channel)
        yield Finish()

    def finish(self) -> Tuple[str, ...]:
        """CLOSING -> CLOSED.  Returns the channels it held (to leave in the
        backend); what is still queued stays for a last collection."""
        self._move(CLOSED)
        channels = tuple(self._channels)
        self._channels = {}
        self._channel_key = NO_CHANNELS
        self._inbox = []
        self._taken = 0
        return channels

    def _drop_all(self) -> None:
        self._inbox = []
        self._taken = 0
        self.drop_queue()
        self._channels = {}
        self._channel_key = NO_CHANNELS

    # -- inbound ---------------------------------------------------------------
    def receive(self, payload: str, now: float) -> None:
        """Decode one client payload; its events come out of :meth:`events_received`.

        Input after the end is decided is ignored.  Bad input raises a
        :class:`~socketio_wsgi.errors.ProtocolError` (``LimitExceeded`` for a
        limit) *after* closing the session with the matching reason; nothing
        of a bad payload is delivered.
        """
        if self.state is not OPEN:
            if self.state is CONNECTING:
                raise UsageError("receive() before open()")
            return
        limits = self.limits
        try:
            frames = decode_frames(payload, limits.max_messages_per_payload)
            limit = limits.max_message_size
            quarter = limit // 4
            values = []
            plain = True  # no heartbeat and no channel marker: every value is a message
            for data in frames:
                if len(data) > quarter:
                    size = len(data.encode("utf-8", "surrogatepass"))
                    if size > limit:
                        raise MessageTooLarge(size, limit)
                value = parse_message(data)
                if plain and isinstance(value, str) and (type(value) is Heartbeat or value in MARKERS):
                    plain = False
                values.append(value)
            plan = None if plain else plan_batch(values)
        except ProtocolError as exc:
            self.close(Reason.LIMIT_EXCEEDED if isinstance(exc, LimitExceeded) else Reason.PROTOCOL_ERROR)
            raise
        inbox = self._inbox
        if plan is None:
            inbox.extend(values)
        else:
            for kind, arg in plan:
                if kind == "heartbeat":
                    self._heartbeat_echo(arg)
                elif kind == "message":
                    inbox.append(arg)
                else:
                    inbox.append(_CHANNEL_EVENTS[kind](arg))
        if len(inbox) - self._taken > limits.max_messages_per_payload:
            # Payloads that raced in faster than they were delivered.
            self.close(Reason.LIMIT_EXCEEDED)
            raise LimitExceeded(
                f"more than {limits.max_messages_per_payload} messages are waiting for delivery"
            )

    def events_received(self, limit: Optional[int] = None) -> List[Event]:
        """Take up to ``limit`` (all by default) pending events, oldest first;
        none once the session is no longer open."""
        inbox = self._inbox
        if self.state is not OPEN or not inbox:
            return []
        start = self._taken
        if limit is None or start + limit >= len(inbox):
            items = inbox[start:] if start else inbox
            self._inbox = []
            self._taken = 0
        else:
            self._taken = start + limit
            items = inbox[start : start + limit]
        return [item if type(item) in _CHANNEL_EVENT_TYPES else Message(item) for item in items]

    def has_events(self) -> bool:
        return len(self._inbox) > self._taken and self.state is OPEN

    # -- channels ----------------------------------------------------------------
    @property
    def channels(self) -> Tuple[str, ...]:
        """Channels held, in subscription order."""
        return tuple(self._channels)

    @property
    def channel_key(self) -> FrozenSet[str]:
        """The held channels as a frozenset (built once per change, on demand)."""
        key = self._channel_key
        if key is None:
            key = self._channel_key = frozenset(self._channels)
        return key

    def holds(self, channel: str) -> bool:
        return channel in self._channels

    def add_channel(self, channel: str) -> bool:
        """Hold ``channel`` (O(1)); False if already held.  Past
        ``max_channels`` the session closes and :class:`LimitExceeded` is raised."""
        if channel in self._channels:
            return False
        if self.state is not OPEN and self.state is not CONNECTING:
            return False
        if len(self._channels) >= self.limits.max_channels:
            self.close(Reason.LIMIT_EXCEEDED)
            raise LimitExceeded(f"a session may hold at most {self.limits.max_channels} channels")
        self._channels[channel] = None
        self._channel_key = None
        return True

    def remove_channel(self, channel: str) -> bool:
        """Leave ``channel`` (O(1)); False if not held."""
        if channel not in self._channels:
            return False
        del self._channels[channel]
        self._channel_key = None
        return True

    # -- outbound ------------------------------------------------------------------
    def send(self, frame: bytes) -> bool:
        """Queue one encoded payload.  False if the session takes no more
        output: it is ending, or this frame broke a queue limit (then the
        session closes with "limit exceeded" and its queue is dropped)."""
        if self.state is not OPEN and self.state is not CONNECTING:
            return False
        queue = self._queue
        queue.append(frame)
        self.queued_bytes += len(frame)
        limits = self.limits
        if len(queue) > limits.max_queue_messages or self.queued_bytes > limits.max_queue_bytes:
            self.close(Reason.LIMIT_EXCEEDED)
            return False
        return True

    def has_data(self) -> bool:
        return bool(self._queue)

    @property
    def queued_messages(self) -> int:
        return len(self._queue)

    def data_to_send(self, limit: Optional[int] = None) -> bytes:
        """Everything queued, joined into one payload (``b""`` if nothing);
        with ``limit``, only the oldest payloads that fit in ``limit`` bytes
        (at least one), the rest staying queued for the next take."""
        queue = self._queue
        if not queue:
            return b""
        self.takes += 1
        if limit is not None and self.queued_bytes > limit:
            count, size = 1, len(queue[0])
            while count < len(queue) and size + len(queue[count]) <= limit:
                size += len(queue[count])
                count += 1
            data = b"".join(queue[:count])
            del queue[:count]
            self.queued_bytes -= size
            return data
        data = queue[0] if len(queue) == 1 else b"".join(queue)
        queue.clear()
        self.queued_bytes = 0
        return data

    def put_back(self, payload: bytes, takes: int) -> bool:
        """Queue a payload :meth:`data_to_send` returned again, first and
        whole: the answer that carried it reached nobody.  ``takes``: the
        :attr:`takes` count right after that take; if anything was taken
        since, putting it back would reorder the client's messages, so it is
        dropped.  False if not put back (that, or the session no longer takes
        output)."""
        if self.takes != takes or (self.state is not OPEN and self.state is not CONNECTING):
            return False
        self._queue.insert(0, payload)
        self.queued_bytes += len(payload)
        return True

    def drop_queue(self) -> None:
        self._queue.clear()
        self.queued_bytes = 0

    # -- receivers, polls and writes -------------------------------------------------
    def attach(self, now: float) -> None:
        """A receiver (a held poll, a stream, a websocket) now listens."""
        self._attached = True
        self._gap_deadline = None
        if self.heartbeats and self.state is OPEN and self.hb_next is None:
            self.hb_next = now + self.limits.heartbeat_interval

    def detach(self, now: float) -> None:
        """The receiver left; a polling client must come back within ``close_timeout``."""
        self._attached = False
        if self.polling and (self.state is OPEN or self.state is CONNECTING):
            self._gap_deadline = now + self.limits.close_timeout

    @property
    def attached(self) -> bool:
        return self._attached

    def write_started(self, now: float) -> int:
        """The driver hands bytes to a socket; returns a token for
        :meth:`write_finished`.  Unless that comes within ``write_timeout``,
        :meth:`tick` lists the token as expired and closes the session."""
        self._write_seq += 1
        self._writes[self._write_seq] = now + self.limits.write_timeout
        return self._write_seq

    def write_finished(self, token: int) -> None:
        self._writes.pop(token, None)

    @property
    def writing(self) -> bool:
        return bool(self._writes)

    def pending_writes(self) -> Tuple[int, ...]:
        return tuple(self._writes)

    # -- heartbeats ----------------------------------------------------------------
    def _heartbeat_echo(self, counter: Heartbeat) -> None:
        try:
            value = int(counter)
        except ValueError:
            return
        if self.hb_acked < value <= self.hb_sent:
            self.hb_acked = value

    def awaiting_echo(self) -> bool:
        return self.hb_acked < self.hb_sent

    # -- time --------------------------------------------------------------------------
    def next_deadline(self) -> Optional[float]:
        """When :meth:`tick` must run next (``None``: nothing is timed)."""
        deadline = min(self._writes.values()) if self._writes else None
        if self.state is OPEN:
            for when in (self._gap_deadline, self._heartbeat_deadline()):
                if when is not None and (deadline is None or when < deadline):
                    deadline = when
        return deadline

    def _heartbeat_deadline(self) -> Optional[float]:
        if not self.heartbeats or not self._attached:
            return None
        if self.awaiting_echo():
            return self.hb_sent_at + self.limits.heartbeat_timeout
        return self.hb_next

    def tick(self, now: float) -> Tuple[int, ...]:
        """Apply every rule whose time has come: an overdue write (closes with
        "write timeout"; its token is returned so the driver shuts that
        connection), an unanswered heartbeat ("heartbeat timeout"), a polling
        gap ("close timeout"), a heartbeat due (queued like any frame)."""
        expired: Tuple[int, ...] = ()
        if self._writes:
            expired = tuple(token for token, when in self._writes.items() if now >= when)
            for token in expired:
                del self._writes[token]
            if expired:
                self.close(Reason.WRITE_TIMEOUT)
        if self.state is not OPEN:
            return expired
        if self._gap_deadline is not None and now >= self._gap_deadline:
            self.close(Reason.CLOSE_TIMEOUT)
            return expired
        if not self.heartbeats or not self._attached or self.hb_next is None:
            return expired
        limits = self.limits
        if self.awaiting_echo():
            if now >= self.hb_sent_at + limits.heartbeat_timeout:
                self.close(Reason.HEARTBEAT_TIMEOUT)
            return expired
        if now >= self.hb_next:
            self.hb_sent += 1
            self.hb_sent_at = now
            self.hb_next = now + limits.heartbeat_interval
            self.send(encode_heartbeat(self.hb_sent).encode())
        return expired
