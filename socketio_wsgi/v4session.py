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

from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from .core import SessionCore
from .outbound import Emission, Frame, records, v06_as_emissions
from .recovery import Recovery
from .session import Session
from .sio5 import Event

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine

__all__ = ["V4Session", "Translations", "MAX_PENDING_ACKS"]

#: Acks a session waits for at once; past it the oldest callback is dropped.
MAX_PENDING_ACKS = 256


class Translations:
    """0.6 payloads pushed as bytes (by code that predates :class:`Emission`,
    or by another process), turned into emissions once per payload: a
    broadcast hands the same bytes object to every recipient, and each
    emission encodes itself once per namespace."""

    __slots__ = ("_frame", "_emissions", "_offsets")

    def __init__(self) -> None:
        self._frame: Optional[bytes] = None
        self._emissions: List[Emission] = []
        self._offsets = 0

    def get(self, frame: bytes) -> List[Emission]:
        if frame is not self._frame:
            self._emissions = v06_as_emissions(frame)
            self._frame = frame
        return self._emissions

    def next_offset(self) -> str:
        """A new packet offset (connection state recovery), unique in this process."""
        self._offsets += 1
        return format(self._offsets, "x")


class V4Session(Session):
    """One namespace of one Socket.IO 4 client."""

    __slots__ = ("namespace", "link", "acks", "_next_ack", "recovered", "recovery", "stray_acks")

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
        #: Acks the client sent for ids the server never used (logged once).
        self.stray_acks = 0
        self.recovered = False
        #: Kept packets, when the server offers connection state recovery.
        self.recovery: Optional[Recovery] = None

    def push(self, frame: Frame) -> bool:
        """Queue a payload for this client, as Socket.IO 4 records."""
        if type(frame) is bytes:
            pushed = True
            for emission in self.engine.translations.get(frame):
                pushed = self._push_emission(emission)
            return pushed
        return self._push_emission(frame)  # type: ignore[arg-type]

    def _push_emission(self, emission: Emission) -> bool:
        recovery = self.recovery
        if recovery is None:
            return Session.push(self, emission.v4(self.namespace))
        if emission.offset is None:
            emission.offset = self.engine.translations.next_offset()
        data = emission.v4(self.namespace)
        if self.connected:
            recovery.record(emission.offset, data)
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
