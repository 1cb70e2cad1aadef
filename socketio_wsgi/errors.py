"""Exceptions that are part of the public API."""
from __future__ import annotations

from .protocol import ProtocolError

__all__ = ["NoSocket", "EventError", "ConnectionRefused", "ProtocolError", "ConfigurationError", "MessageTooLarge"]


class NoSocket(Exception):
    """An out-of-band send found nobody to receive it.

    Raised by :func:`socketio_wsgi.send` for an unknown session id, by
    :func:`socketio_wsgi.broadcast` when no client is connected and by
    :func:`socketio_wsgi.broadcast_channel` for a channel nobody holds.
    """


class EventError(Exception):
    """An event handler was registered in a way the event does not allow."""


class ConnectionRefused(Exception):
    """Raise from an ``on_connect`` handler to refuse the connection.

    The client gets ``403`` with the reason (polling transports) or a
    websocket close with code 4403 and the reason; no other handler runs for
    the refused connection and no session is kept.
    """

    def __init__(self, reason: str = "connection refused"):
        super().__init__(reason)
        self.reason = reason


class ConfigurationError(ValueError):
    """An option has a value the library cannot work with."""


class MessageTooLarge(ProtocolError):
    """An incoming message is larger than ``max_message_size``."""

    def __init__(self, size: int, limit: int):
        super().__init__(f"a message of {size} bytes exceeds max_message_size ({limit})")
        self.size = size
        self.limit = limit
