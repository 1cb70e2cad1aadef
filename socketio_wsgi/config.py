"""Every option of the middleware, its default, and its validation."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ContextManager, Optional, Sequence, Tuple, Union

from .errors import ConfigurationError

__all__ = ["Options", "ALL_TRANSPORTS", "STREAMING_TRANSPORTS", "POLLING_TRANSPORTS"]

STREAMING_TRANSPORTS = ("websocket", "flashsocket", "htmlfile", "xhr-multipart")
POLLING_TRANSPORTS = ("xhr-polling", "jsonp-polling")
ALL_TRANSPORTS = STREAMING_TRANSPORTS + POLLING_TRANSPORTS
MiB = 1024 * 1024
#: Options that are a positive number of seconds, and positive integer limits
#: (validated here; the runner makes a flag of each).
SECONDS_OPTIONS = (
    "heartbeat_interval",
    "heartbeat_timeout",
    "close_timeout",
    "polling_duration",
    "write_timeout",
    "forward_timeout",
)
COUNT_OPTIONS = (
    "max_message_size",
    "max_payload_size",
    "max_queue_messages",
    "max_queue_bytes",
    "max_sessions",
    "max_channels_per_session",
    "max_messages_per_payload",
)


@dataclasses.dataclass
class Options:
    """Middleware options; times are seconds, sizes are bytes.

    ``origins``: ``None`` allows only the request's own host (same origin),
    ``"*"`` allows every origin, otherwise a list of entries such as
    ``"example.com"``, ``"example.com:8000"``, ``"*:8000"``,
    ``"https://example.com"`` (see :mod:`socketio_wsgi.origins`).
    ``trust_proxy_headers``: take the client address and scheme from
    ``X-Forwarded-For`` / ``X-Forwarded-Proto`` (only behind your own proxy).
    ``status_token`` / ``status_addresses``: enable the status endpoint.
    ``flash_policy_port`` (e.g. 843) starts the Flash socket-policy server;
    ``flash_policy_inline`` answers policy requests on the HTTP port too.
    ``write_timeout``: a write that has not finished within this many seconds
    drops its connection (a client that stops reading cannot pin memory).
    ``forward_timeout``: with the Redis backend, how long a request for a
    session of another process waits for that process's answer (beyond a
    poll's own hold) before it is answered as for an unknown session.
    ``max_channels_per_session`` / ``max_messages_per_payload``: a client that
    asks for more is closed ("limit exceeded").
    ``around_handlers(request)``: a context manager entered around every
    handler call for that request (the Django app saves the session there).
    ``recovery_window``: seconds a Socket.IO 4 session survives an unclean
    disconnect for its client to recover it (connection state recovery);
    ``None`` (the default) turns recovery off.
    """

    resource: str = "socket.io"
    origins: Union[None, str, Sequence[str]] = None
    transports: Sequence[str] = ALL_TRANSPORTS
    heartbeat_interval: float = 10.0
    heartbeat_timeout: float = 8.0
    close_timeout: float = 8.0
    polling_duration: float = 20.0
    max_message_size: int = 1 * MiB
    max_payload_size: int = 4 * MiB
    max_queue_messages: int = 10_000
    max_queue_bytes: int = 16 * MiB
    max_sessions: int = 100_000
    max_channels_per_session: int = 100
    max_messages_per_payload: int = 10_000
    write_timeout: float = 10.0
    forward_timeout: float = 5.0
    max_handshakes_per_minute: Optional[int] = None
    recovery_window: Optional[float] = None
    flash_policy_port: Optional[int] = None
    flash_policy_inline: bool = False
    trust_proxy_headers: bool = False
    status_token: Optional[str] = None
    status_addresses: Sequence[str] = ()
    request_adapter: Optional[Callable[[dict], Any]] = None
    backend: Any = None
    handlers: Any = None
    around_handlers: Optional[Callable[[Any], ContextManager[Any]]] = None

    def __post_init__(self) -> None:
        self.resource = self.resource.strip("/")
        if not self.resource:
            raise ConfigurationError("resource may not be empty")
        if isinstance(self.transports, str):
            self.transports = (self.transports,)
        unknown = [t for t in self.transports if t not in ALL_TRANSPORTS]
        if unknown:
            raise ConfigurationError(f"unknown transports {unknown}; choose from {list(ALL_TRANSPORTS)}")
        self.transports = tuple(self.transports)
        for name in SECONDS_OPTIONS:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds, got {value!r}")
        for name in COUNT_OPTIONS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
        port = self.flash_policy_port
        if port is not None and (
            not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535
        ):
            raise ConfigurationError(f"flash_policy_port must be a port number or None, got {port!r}")
        if (port is not None or self.flash_policy_inline) and "flashsocket" not in self.transports:
            raise ConfigurationError("the flash policy options need the flashsocket transport")
        rate = self.max_handshakes_per_minute
        if rate is not None and (not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0):
            raise ConfigurationError(
                f"max_handshakes_per_minute must be a positive integer or None, got {rate!r}"
            )
        window = self.recovery_window
        if window is not None and (
            not isinstance(window, (int, float)) or isinstance(window, bool) or window <= 0
        ):
            raise ConfigurationError(
                f"recovery_window must be a positive number of seconds or None, got {window!r}"
            )
        if isinstance(self.status_addresses, str):
            self.status_addresses = (self.status_addresses,)
        try:
            import ipaddress

            for address in self.status_addresses:
                ipaddress.ip_network(address, strict=False)
        except ValueError as exc:
            raise ConfigurationError(f"status_addresses: {exc}") from None
        if self.max_payload_size < self.max_message_size:
            raise ConfigurationError("max_payload_size may not be smaller than max_message_size")

    @property
    def max_post_size(self) -> int:
        """Largest POST body: percent-encoding can triple a payload."""
        return 3 * self.max_payload_size + 1024

    @classmethod
    def names(cls) -> Tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))
