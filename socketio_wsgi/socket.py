"""The ``socket`` object handlers receive: send, broadcast, channels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Tuple

from .protocol import encode

if TYPE_CHECKING:  # pragma: no cover
    from .session import Session

__all__ = ["Socket", "encode_frame_bytes"]


def encode_frame_bytes(message: Any) -> bytes:
    """Encode what ``send(message)`` means, once, as the bytes put on the wire."""
    return encode(message).encode("utf-8")


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
    def channels(self) -> Tuple[str, ...]:
        """The channels this socket holds, in subscription order (read-only)."""
        return tuple(self.session.channel_list)

    def send(self, message: Any) -> bool:
        """Send to this client; False if it is already gone."""
        return self.session.push(encode_frame_bytes(message))

    def broadcast(self, message: Any) -> int:
        """Send to every other connected client; returns how many it reached."""
        return self._to_others(encode_frame_bytes(message), None, everyone=True)

    def broadcast_channel(self, message: Any, channel: Optional[str] = None) -> int:
        """Send to the other holders of ``channel`` (or of any channel this socket
        holds), each at most once.  ``channel`` need not be one this socket holds."""
        return self._to_others(encode_frame_bytes(message), channel)

    def send_and_broadcast(self, message: Any) -> int:
        frame = encode_frame_bytes(message)
        self.session.push(frame)
        return 1 + self._to_others(frame, None, everyone=True)

    def send_and_broadcast_channel(self, message: Any, channel: Optional[str] = None) -> int:
        frame = encode_frame_bytes(message)
        self.session.push(frame)
        return 1 + self._to_others(frame, channel)

    def _to_others(self, frame: bytes, channel: Optional[str], everyone: bool = False) -> int:
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
