"""Socket.IO 0.6 and Socket.IO 4 clients for any WSGI application, on gevent.

Wrap an app with :class:`SocketIOMiddleware`, register handlers with the
events in :mod:`socketio_wsgi.events`, and run it with :func:`serve` or
``python -m socketio_wsgi module:app``.
"""

from __future__ import annotations

from .api import broadcast, broadcast_channel, emit, emit_broadcast, emit_channel, send, set_backend
from .config import Options
from .core import Reason, State
from .errors import (
    ConfigurationError,
    ConnectionClosed,
    ConnectionRefused,
    EventError,
    LimitExceeded,
    MessageTooLarge,
    NoSocket,
    ProtocolError,
    ServiceUnavailable,
    SocketIOError,
    TooManyHandshakes,
    UsageError,
)
from .events import (
    HandlerRegistry,
    on_connect,
    on_disconnect,
    on_error,
    on_event,
    on_finish,
    on_message,
    on_subscribe,
    on_unsubscribe,
    use_registry,
)
from .middleware import SocketIOMiddleware
from .server import make_server, serve
from .socket import Socket

__version__ = "0.1.0"

__all__ = [
    "SocketIOMiddleware",
    "serve",
    "make_server",
    "Options",
    "broadcast",
    "broadcast_channel",
    "send",
    "emit",
    "emit_broadcast",
    "emit_channel",
    "set_backend",
    "SocketIOError",
    "ProtocolError",
    "LimitExceeded",
    "MessageTooLarge",
    "ConnectionClosed",
    "NoSocket",
    "ConnectionRefused",
    "ServiceUnavailable",
    "TooManyHandshakes",
    "UsageError",
    "EventError",
    "ConfigurationError",
    "Reason",
    "State",
    "Socket",
    "HandlerRegistry",
    "use_registry",
    "on_connect",
    "on_message",
    "on_subscribe",
    "on_unsubscribe",
    "on_error",
    "on_disconnect",
    "on_finish",
    "on_event",
    "__version__",
]
