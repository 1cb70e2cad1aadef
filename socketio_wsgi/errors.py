"""Every exception of the package, in one hierarchy.

``SocketIOError`` is the root.  Below it, as h11 separates them, errors of
the *peer* (``ProtocolError`` and its subclasses: the client sent something
we refuse) are apart from errors of the *local* program (``UsageError``: the
application called the library wrongly), and from plain outcomes
(``ConnectionClosed``, ``NoSocket``, ``ConnectionRefused``).

Each peer error carries the answer it gets, so transports map errors to
HTTP statuses and websocket close codes in one place: ``http_status`` and
``close_code`` below.
"""

from __future__ import annotations

from typing import Optional

__all__ = [
    "SocketIOError",
    "ProtocolError",
    "LimitExceeded",
    "MessageTooLarge",
    "ConnectionClosed",
    "NoSocket",
    "ConnectionRefused",
    "UsageError",
    "EventError",
    "ConfigurationError",
    "ServiceUnavailable",
    "TooManyHandshakes",
]


class SocketIOError(Exception):
    """The root of every exception this package raises on purpose."""


# -- the peer's errors -------------------------------------------------------


class ProtocolError(SocketIOError, ValueError):
    """The peer sent something that is not valid Socket.IO (or websocket) input.

    The session ends ("protocol error"); a polling request is answered with
    ``http_status``, a websocket is closed with ``close_code``.
    """

    http_status = 400
    close_code = 1007


class LimitExceeded(ProtocolError):
    """The peer asked for more than a configured limit allows (messages per
    payload, channels per session); the session ends ("limit exceeded")."""

    http_status = 413
    close_code = 1008


class MessageTooLarge(LimitExceeded):
    """An incoming message (or payload) is larger than its size limit."""

    close_code = 1009

    def __init__(self, size: int, limit: int, what: str = "max_message_size"):
        super().__init__(f"a message of {size} bytes exceeds {what} ({limit})")
        self.size = size
        self.limit = limit


# -- outcomes ------------------------------------------------------------------


class ConnectionClosed(SocketIOError):
    """The connection is closed: by the peer, by a refusal, or by an error.

    ``code``: the websocket close code (``None`` if there was none);
    ``reason``: the close reason or an HTTP response body;
    ``status``: the HTTP status of a refusal (``None`` otherwise).
    """

    def __init__(self, reason: str = "", code: Optional[int] = None, status: Optional[int] = None):
        parts = []
        if status is not None:
            parts.append(f"HTTP {status}")
        if code is not None:
            parts.append(f"close code {code}")
        if reason:
            parts.append(reason)
        super().__init__(": ".join(parts) or "connection closed")
        self.reason = reason
        self.code = code
        self.status = status


class NoSocket(SocketIOError):
    """An out-of-band send found nobody to receive it.

    Raised by :func:`socketio_wsgi.send` for an unknown session id, by
    :func:`socketio_wsgi.broadcast` when no client is connected and by
    :func:`socketio_wsgi.broadcast_channel` for a channel nobody holds.
    """


class ConnectionRefused(SocketIOError):
    """Raise from an ``on_connect`` handler to refuse the connection.

    The client gets ``403`` with the reason (polling transports) or a
    websocket close with code 4403 and the reason; no other handler runs for
    the refused connection and no session is kept.
    """

    def __init__(self, reason: str = "connection refused"):
        super().__init__(reason)
        self.reason = reason


class ServiceUnavailable(SocketIOError):
    """No new session now: ``max_sessions`` are open, or the server is shutting down (503)."""

    http_status = 503


class TooManyHandshakes(ServiceUnavailable):
    """This address opened more than ``max_handshakes_per_minute`` sessions (429)."""

    http_status = 429


# -- local misuse ----------------------------------------------------------------


class UsageError(SocketIOError, RuntimeError):
    """The application used the library wrongly (an illegal state change,
    a value that cannot be sent); never caused by a client."""


class EventError(UsageError):
    """An event handler was registered in a way the event does not allow."""


class ConfigurationError(UsageError, ValueError):
    """An option has a value the library cannot work with."""
