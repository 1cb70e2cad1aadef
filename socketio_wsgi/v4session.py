"""A Socket.IO 4 namespace connection as an ordinary engine session.

A :class:`V4Session` is a :class:`~socketio_wsgi.session.Session` of the
same :class:`~socketio_wsgi.engine.Engine` as the 0.6 sessions: the same
core (state, limits, output queue, channels, close lifecycle), handlers,
backend and counters.  It differs only in how output is encoded (Socket.IO
5 packets in Engine.IO 4 records, for its namespace) and in the acks it
waits for.  Its receiver is the Engine.IO connection that carries it (see
:mod:`socketio_wsgi.v4server`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple

from .core import SessionCore
from .outbound import Emission, Frame, records, v06_as_v4
from .session import Session
from .sio5 import Event

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine

__all__ = ["V4Session", "Translations", "MAX_PENDING_ACKS"]

#: Acks a session waits for at once; past it the oldest callback is dropped.
MAX_PENDING_ACKS = 256


class Translations:
    """0.6 payloads pushed as bytes (by code that predates :class:`Emission`,
    or by another process), turned into Socket.IO 4 records once per payload
    and namespace: a broadcast hands the same bytes object to every recipient."""

    __slots__ = ("_frame", "_namespace", "_records")

    def __init__(self) -> None:
        self._frame: Optional[bytes] = None
        self._namespace = ""
        self._records = b""

    def get(self, frame: bytes, namespace: str) -> bytes:
        if frame is self._frame and namespace == self._namespace:
            return self._records
        data = v06_as_v4(frame, namespace)
        self._frame, self._namespace, self._records = frame, namespace, data
        return data


class V4Session(Session):
    """One namespace of one Socket.IO 4 client."""

    __slots__ = ("namespace", "link", "acks", "_next_ack", "recovered")

    protocol = "4"

    def __init__(
        self,
        engine: "Engine",
        transport: str,
        core: SessionCore,
        origin: Optional[str] = None,
        namespace: str = "/",
    ):
        super().__init__(engine, transport, core, origin)
        self.namespace = namespace
        #: The Engine.IO connection carrying this session (set by its driver).
        self.link: Any = None
        #: Callbacks of server emits waiting for the client's ack, by id.
        self.acks: Dict[int, Callable[..., Any]] = {}
        self._next_ack = 0
        self.recovered = False

    def push(self, frame: Frame) -> bool:
        """Queue a payload for this client, as Socket.IO 4 records."""
        if type(frame) is bytes:
            data = self.engine.translations.get(frame, self.namespace)
            if not data:
                return True  # nothing but heartbeats
        else:
            data = frame.v4(self.namespace)  # type: ignore[union-attr]
        return Session.push(self, data)

    def push_records(self, data: bytes) -> bool:
        """Queue Socket.IO 4 records as they are (an ack, a CONNECT answer)."""
        return Session.push(self, data)

    def emit_with_ack(self, emission: Emission, callback: Callable[..., Any]) -> bool:
        """Send a named event asking the client for an ack; ``callback(*args)``
        runs (under this session's lock) when it comes."""
        acks = self.acks
        if len(acks) >= MAX_PENDING_ACKS:
            del acks[next(iter(acks))]
        ack_id = self._next_ack
        self._next_ack += 1
        acks[ack_id] = callback
        packet = Event(emission.event or "message", emission.args, self.namespace, ack_id)
        return Session.push(self, records(packet))

    def take_ack(self, ack_id: int) -> Optional[Callable[..., Any]]:
        return self.acks.pop(ack_id, None)


def ack_args(result: Any) -> Tuple[Any, ...]:
    """A handler's return value as ack arguments (a tuple gives several)."""
    if result is None:
        return ()
    if isinstance(result, tuple):
        return result
    return (result,)
