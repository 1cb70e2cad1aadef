"""The ``socket`` object handlers receive: send, broadcast, channels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple

from .errors import UsageError
from .outbound import Emission
from .protocol import encode

if TYPE_CHECKING:  # pragma: no cover
    from .session import Session

__all__ = ["Socket", "encode_frame_bytes", "outgoing"]


def encode_frame_bytes(message: Any) -> bytes:
    """Encode what ``send(message)`` means, once, as the bytes put on the wire."""
    return encode(message).encode("utf-8")


def outgoing(message: Any) -> Emission:
    """A message for many recipients of either generation, its 0.6 encoding
    made (and checked) now, once."""
    emission = Emission.message(message)
    emission.v06()
    return emission


class Socket:
    """One client connection as handlers see it.

    Every method encodes the message once; broadcasts hand the same bytes to
    every recipient.  ``broadcast*`` never include the sender.
    """

    __slots__ = ("session",)

    def __init__(self, session: "Session"):
        self.session = session

    def __repr__(self) -> str:
        return f"<Socket {self.session.session_id}>"

    @property
    def session_id(self) -> str:
        return self.session.session_id

    @property
    def connected(self) -> bool:
        return self.session.connected

    @property
    def protocol(self) -> str:
        """The client's Socket.IO generation: ``"0.6"`` or ``"4"``."""
        return self.session.protocol

    @property
    def namespace(self) -> str:
        """The namespace it joined (always ``"/"`` for a 0.6 client)."""
        return self.session.namespace

    @property
    def recovered(self) -> bool:
        """True when connection state recovery restored this session."""
        return self.session.recovered

    @property
    def auth(self) -> Any:
        """A Socket.IO 4 client's CONNECT payload (None for 0.6 clients)."""
        return self.session.auth

    @property
    def channels(self) -> Tuple[str, ...]:
        """The channels this socket holds, in subscription order (read-only)."""
        return tuple(self.session.channel_list)

    def send(self, message: Any) -> bool:
        """Send to this client; False if it is already gone."""
        session = self.session
        if session.protocol == "0.6":
            return session.push(encode_frame_bytes(message))
        return session.push(Emission.message(message))

    def emit(self, event: str, *args: Any, callback: Optional[Callable[..., Any]] = None) -> bool:
        """Send the named event ``event`` with ``args`` to this client; False if
        it is gone.  ``callback(*ack_args)`` runs when a Socket.IO 4 client
        acknowledges it (0.6 clients never do).  A 0.6 client receives
        ``{"$event": event, "args": [...]}`` (see README)."""
        emission = Emission(event, args)
        session = self.session
        if callback is not None:
            emit_with_ack = getattr(session, "emit_with_ack", None)
            if emit_with_ack is not None:
                return bool(emit_with_ack(emission, callback))
        return session.push(emission)

    def emit_broadcast(self, event: str, *args: Any) -> int:
        """Emit ``event`` to every other connected client (both generations)."""
        return self._to_others(Emission(event, args), None, everyone=True)

    def emit_channel(self, event: str, *args: Any, channel: Optional[str] = None) -> int:
        """Emit ``event`` to the other holders of ``channel`` (or of any channel
        this socket holds), 0.6 and Socket.IO 4 clients alike, each at most once."""
        if channel is not None and not isinstance(channel, str):
            raise UsageError("channel must be a str")
        return self._to_others(Emission(event, args), channel)

    def broadcast(self, message: Any) -> int:
        """Send to every other connected client; returns how many it reached."""
        return self._to_others(outgoing(message), None, everyone=True)

    def broadcast_channel(self, message: Any, channel: Optional[str] = None) -> int:
        """Send to the other holders of ``channel`` (or of any channel this socket
        holds), each at most once.  ``channel`` need not be one this socket holds."""
        return self._to_others(outgoing(message), channel)

    def send_and_broadcast(self, message: Any) -> int:
        frame = outgoing(message)
        self.session.push(frame)
        return 1 + self._to_others(frame, None, everyone=True)

    def send_and_broadcast_channel(self, message: Any, channel: Optional[str] = None) -> int:
        frame = outgoing(message)
        self.session.push(frame)
        return 1 + self._to_others(frame, channel)

    def _to_others(self, frame: Any, channel: Optional[str], everyone: bool = False) -> int:
        session = self.session
        if everyone:
            channels = None
        else:
            channels = (channel,) if channel is not None else session.channel_list
            if not channels:
                return 0
        return session.engine.backend.publish(frame, channels, session.session_id)

    def subscribe(self, channel: str) -> bool:
        """Join ``channel`` (fires ``on_subscribe``); False if already held."""
        return self.session.engine.subscribe(self.session, channel)

    def unsubscribe(self, channel: str) -> bool:
        """Leave ``channel`` (fires ``on_unsubscribe``); False if not held."""
        return self.session.engine.unsubscribe(self.session, channel)

    def close(self) -> None:
        """End the session from the server side (fires the closing events)."""
        from .session import Reason

        self.session.engine.close(self.session, Reason.SERVER_CLOSED)

    disconnect = close
