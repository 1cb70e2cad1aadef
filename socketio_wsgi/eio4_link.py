"""One Engine.IO 4 connection as an I/O-free state machine.

An :class:`EngineIOLink` holds the rules of one Engine.IO session (one
``sid``): which transport carries it (polling, then maybe websocket), the
upgrade (probe, ``5``, the paused poll answered with a noop), the server's
pings and the client's pongs, and the Engine.IO-level output (pings,
noops).  Its driver (:mod:`socketio_wsgi.v4server`) feeds it packets and
the time, and does what it answers; the Socket.IO packets it lets through
go to the namespace sessions, which are ordinary
:class:`~socketio_wsgi.session.Session` objects of the engine.

Output is kept as *records*: ``\\x1e`` followed by one packet (see
:mod:`socketio_wsgi.outbound`).
"""

from __future__ import annotations

import enum
from typing import List, Optional

from .eio4 import Handshake, Packet, PacketType
from .errors import ProtocolError, UsageError

__all__ = ["LinkState", "EngineIOLink", "POLLING", "WEBSOCKET", "PING_TIMEOUT", "TRANSPORT_CLOSE"]

POLLING = "polling"
WEBSOCKET = "websocket"
#: Why a link ended, as the reasons Socket.IO 4 itself uses.
PING_TIMEOUT = "ping timeout"
TRANSPORT_CLOSE = "transport close"
CLIENT_CLOSE = "client close"
SERVER_CLOSE = "server close"
PARSE_ERROR = "parse error"
WRITE_TIMEOUT = "write timeout"


class LinkState(enum.Enum):
    OPEN = "open"  #: carried by its transport
    UPGRADING = "upgrading"  #: polling, with a websocket probed and not yet upgraded
    CLOSED = "closed"  #: over


class EngineIOLink:
    """The transport, upgrade, ping and Engine.IO output of one ``sid``.

    Times are ``time.monotonic()`` seconds; ``ping_interval`` and
    ``ping_timeout`` are seconds too.
    """

    __slots__ = (
        "sid",
        "ping_interval",
        "ping_timeout",
        "max_payload",
        "transport",
        "state",
        "close_reason",
        "outbox",
        "ping_due",
        "pong_due",
    )

    def __init__(
        self,
        sid: str,
        ping_interval: float,
        ping_timeout: float,
        max_payload: int,
        now: float,
        transport: str,
    ):
        if transport not in (POLLING, WEBSOCKET):
            raise UsageError(f"unknown Engine.IO transport {transport!r}")
        self.sid = sid
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_payload = max_payload
        self.transport = transport
        self.state = LinkState.OPEN
        self.close_reason: Optional[str] = None
        self.outbox: List[bytes] = []
        self.ping_due: Optional[float] = now + ping_interval
        self.pong_due: Optional[float] = None

    def __repr__(self) -> str:
        return f"<EngineIOLink {self.sid} {self.transport} {self.state.value}>"

    @property
    def open(self) -> bool:
        return self.state is not LinkState.CLOSED

    def handshake(self) -> Handshake:
        """The open packet's data."""
        upgrades = ("websocket",) if self.transport == POLLING else ()
        return Handshake(
            self.sid,
            upgrades,
            max(1, int(self.ping_interval * 1000)),
            max(1, int(self.ping_timeout * 1000)),
            self.max_payload,
        )

    def handshake_record(self) -> bytes:
        return b"\x1e0" + self.handshake().to_json().encode("ascii")

    # -- output ------------------------------------------------------------------
    def take(self) -> bytes:
        """The Engine.IO records queued (pings, noops)."""
        if not self.outbox:
            return b""
        data = b"".join(self.outbox)
        self.outbox.clear()
        return data

    # -- input ---------------------------------------------------------------------
    def receive(self, packet: Packet, now: float) -> Optional[Packet]:
        """Act on one packet from the client on the current transport; returns
        it when it is a message for the Socket.IO layer.  Raises
        :class:`ProtocolError` for a packet a client may not send here
        (the driver then closes the link)."""
        kind = packet.type
        if kind is PacketType.MESSAGE:
            return packet
        if kind is PacketType.PONG:
            if self.pong_due is None:
                raise ProtocolError("a pong without a ping")
            self.pong_due = None
            self.ping_due = now + self.ping_interval
            return None
        if kind is PacketType.CLOSE:
            self.close(CLIENT_CLOSE)
            return None
        if kind is PacketType.NOOP:
            return None
        raise ProtocolError(f"a client does not send {kind.name} packets on {self.transport}")

    # -- upgrade ----------------------------------------------------------------------
    def probe(self) -> bytes:
        """A websocket sent ``2probe``: the answer to write on it.  Raises
        :class:`ProtocolError` unless the link is polling and not upgrading."""
        if self.transport != POLLING or self.state is not LinkState.OPEN:
            raise ProtocolError(f"no upgrade from {self.transport} ({self.state.value})")
        self.state = LinkState.UPGRADING
        self.outbox.append(b"\x1e6")  # answers the paused poll
        return b"3probe"

    def upgraded(self, now: float) -> None:
        """The websocket sent ``5``: it carries the link from now on."""
        if self.state is not LinkState.UPGRADING:
            raise ProtocolError("an upgrade packet without a probe")
        self.state = LinkState.OPEN
        self.transport = WEBSOCKET
        # The noop was for the paused poll, which the client no longer makes.
        self.outbox = [r for r in self.outbox if r != b"\x1e6"]

    def upgrade_failed(self) -> None:
        """The probing websocket went away before ``5``: polling goes on."""
        if self.state is LinkState.UPGRADING:
            self.state = LinkState.OPEN

    # -- time ---------------------------------------------------------------------------
    def next_deadline(self) -> Optional[float]:
        if self.state is LinkState.CLOSED:
            return None
        return self.pong_due if self.pong_due is not None else self.ping_due

    def tick(self, now: float) -> bool:
        """Apply the ping rules; True if something was queued (a ping).  An
        unanswered ping closes the link ("ping timeout")."""
        if self.state is LinkState.CLOSED:
            return False
        if self.pong_due is not None:
            if now >= self.pong_due:
                self.close(PING_TIMEOUT)
            return False
        if self.ping_due is not None and now >= self.ping_due:
            self.outbox.append(b"\x1e2")
            self.ping_due = None
            self.pong_due = now + self.ping_timeout
            return True
        return False

    def close(self, reason: str) -> bool:
        """Decide the end (the first reason stands); False if already closed."""
        if self.state is LinkState.CLOSED:
            return False
        self.state = LinkState.CLOSED
        self.close_reason = reason
        self.ping_due = self.pong_due = None
        return True
