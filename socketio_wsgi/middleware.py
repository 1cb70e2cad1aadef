"""``SocketIOMiddleware``: routes ``/<resource>/...`` to the transports.

Everything else goes to the wrapped WSGI application untouched.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from . import api, static
from .config import ALL_TRANSPORTS, Options
from .engine import Engine
from .errors import ServiceUnavailable
from .forwarding import Forwarder
from .http import FORWARDED_KEY, Headers, text_response
from .origins import OriginPolicy
from .session import Session
from .status import StatusEndpoint
from .transports import build_transports
from .transports.base import HttpTransport, Transport
from .v4server import V4Endpoint, is_v4_request

__all__ = ["SocketIOMiddleware"]

log = logging.getLogger("socketio_wsgi")
WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


class _Route:
    """What a request under the resource resolves to, before anything runs."""

    __slots__ = ("transport", "session", "status", "reason", "static", "v4", "missing")

    def __init__(
        self,
        transport: Optional[Transport] = None,
        session: Optional[Session] = None,
        status: int = 0,
        reason: str = "",
        static: Optional[str] = None,
        v4: bool = False,
        missing: str = "",
    ):
        self.transport = transport
        self.session = session
        self.status = status
        self.reason = reason
        self.static = static
        self.v4 = v4
        #: The session id this process does not hold (another may: forwarding).
        self.missing = missing


class SocketIOMiddleware:
    """Serve Socket.IO 0.6 and Socket.IO 4 clients (``EIO=4`` requests) under
    ``/<resource>/`` and pass every other request to ``app``.

    ``options`` are those of :class:`socketio_wsgi.config.Options`.
    """

    def __init__(self, app: Optional[WSGIApp] = None, resource: str = "socket.io", **options: Any):
        self.app = app
        self.options = Options(resource=resource, **options)
        self.engine = Engine(self.options)
        self.origin_policy = OriginPolicy(self.options.origins)
        self.transports: Dict[str, Transport] = build_transports(self.engine, self.options.transports)
        self.prefix = "/" + self.options.resource + "/"
        self.status_endpoint = StatusEndpoint(
            self.engine, self.options.status_token, self.options.status_addresses
        )
        backend = self.engine.backend
        #: Serves requests for sessions of other processes through them (the
        #: Redis backend), and theirs for ours.
        self.forwarder: Optional[Forwarder] = (
            Forwarder(backend, self, self.options, self.engine.stats)
            if callable(getattr(backend, "forward", None))
            else None
        )
        self.v4 = V4Endpoint(self.engine, self._origin_allowed, self.forwarder)
        self.engine.v4_endpoint = self.v4
        api.register_engine(self.engine)

    def _origin_allowed(self, environ: dict) -> bool:
        return self.origin_policy.allows(
            environ.get("HTTP_ORIGIN"), environ.get("HTTP_HOST"), environ.get("wsgi.url_scheme", "http")
        )

    # -- routing ----------------------------------------------------------
    def handles(self, environ: dict) -> bool:
        return environ.get("PATH_INFO", "").startswith(self.prefix)

    def route(self, environ: dict) -> _Route:
        parts = environ.get("PATH_INFO", "")[len(self.prefix) :].split("/")
        name = parts[0]
        if not name and len(parts) == 1 and is_v4_request(environ):
            return _Route(v4=True)
        if name in static.FILES and len(parts) == 1:
            return _Route(static=name)
        if name == "status" and self.status_endpoint.enabled and len(parts) <= 2:
            return _Route(static="status/" + (parts[1] if len(parts) == 2 else ""))
        if name not in ALL_TRANSPORTS:
            return _Route(status=404, reason=f"unknown transport {name[:40]!r}")
        transport = self.transports.get(name)
        if transport is None:
            return _Route(status=403, reason=f"transport {name} is disabled on this server")
        if (
            name not in ("websocket", "flashsocket")
            and "websocket" in environ.get("HTTP_UPGRADE", "").lower()
        ):
            return _Route(status=400, reason=f"no websocket upgrade on the {name} transport")
        origin = environ.get("HTTP_ORIGIN")
        if not self.origin_policy.allows(
            origin, environ.get("HTTP_HOST"), environ.get("wsgi.url_scheme", "http")
        ):
            return _Route(status=403, reason=f"origin {(origin or '')[:100]!r} is not allowed")
        session_id = parts[1] if len(parts) > 1 else ""
        if not session_id:
            return _Route(transport)
        session = self.engine.get(session_id)
        if session is None:
            return _Route(status=404, reason="unknown session", missing=session_id)
        if session.transport != name:
            return _Route(status=400, reason=f"session belongs to {session.transport}, not {name}")
        if origin is not None and session.origin is not None and origin != session.origin:
            return _Route(status=403, reason="origin differs from the one that opened the session")
        return _Route(transport, session)

    def refusal(self, environ: dict) -> Optional[Tuple[int, str]]:
        """For an upgrade request: ``(status, reason)`` if it must be refused
        before the handshake, else None (used by our websocket handler)."""
        if not self.handles(environ):
            return None
        route = self.route(environ)
        if route.v4:
            return self.v4.refusal(environ)
        if route.status:
            self._log_refusal(environ, route)
            return route.status, route.reason
        return None

    # -- WSGI -------------------------------------------------------------
    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if self.options.trust_proxy_headers:
            apply_proxy_headers(environ)
        if not self.handles(environ):
            if self.app is None:
                return text_response(start_response, 404, "not found")
            return self.app(environ, start_response)
        route = self.route(environ)
        cors = self._cors(environ)
        if route.v4:
            return self.v4(environ, start_response, cors)
        if route.static is not None:
            if route.static.startswith("status/"):
                return self.status_endpoint.serve(route.static[7:], environ, start_response)
            return static.serve(route.static, environ, start_response)
        if route.status:
            forwarder = self.forwarder
            if (
                route.missing
                and forwarder is not None
                and FORWARDED_KEY not in environ
                and environ.get("wsgi.websocket") is None
            ):
                hold = self.options.polling_duration if environ.get("REQUEST_METHOD") == "GET" else 0.0
                return forwarder.forward(
                    environ,
                    start_response,
                    "session",
                    route.missing,
                    hold,
                    lambda: self._refuse(environ, start_response, route, cors),
                )
            return self._refuse(environ, start_response, route, cors)
        method = environ.get("REQUEST_METHOD", "GET")
        transport, session = route.transport, route.session
        assert transport is not None  # a route without a status names its transport
        if method == "OPTIONS":
            return self._preflight(environ, start_response, cors)
        try:
            if method == "GET":
                if session is None:
                    return transport.open(environ, start_response, cors)
                return transport.resume(environ, start_response, session, cors)
            if method == "POST" and isinstance(transport, HttpTransport):
                if session is None:
                    return text_response(start_response, 400, "POST needs a session id", cors)
                return transport.post(environ, start_response, session, cors)
        except ServiceUnavailable as exc:
            log.warning("refused a new session from %s: %s", environ.get("REMOTE_ADDR"), str(exc))
            return text_response(start_response, exc.http_status, f"no new sessions: {exc}", cors)
        return text_response(
            start_response, 405, f"{method} is not allowed here", cors + [("Allow", "GET, POST, OPTIONS")]
        )

    def _refuse(
        self, environ: dict, start_response: Callable, route: _Route, cors: Headers
    ) -> Iterable[bytes]:
        self._log_refusal(environ, route)
        if environ.get("wsgi.websocket") is not None:  # upgraded by gevent-websocket's handler
            from .websocket import accept

            conn = accept(environ, start_response)
            if conn is not None:
                conn.close(4000 + route.status, route.reason)
            return []
        return text_response(start_response, route.status, route.reason, cors)

    def _log_refusal(self, environ: dict, route: _Route) -> None:
        log.warning(
            "%s %s from %s: %d %s",
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO", "")[:200],
            environ.get("REMOTE_ADDR"),
            route.status,
            route.reason,
        )

    def _cors(self, environ: dict) -> Headers:
        """CORS headers for an allowed origin, on every answer; none at all
        (whatever the answer) for an origin the policy refuses."""
        origin = environ.get("HTTP_ORIGIN")
        if origin is None or not self.origin_policy.allows(
            origin, environ.get("HTTP_HOST"), environ.get("wsgi.url_scheme", "http")
        ):
            return []
        return [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Credentials", "true"),
            ("Vary", "Origin"),
        ]

    def _preflight(self, environ: dict, start_response: Callable, cors: Headers) -> List[bytes]:
        headers = cors + [
            ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
            (
                "Access-Control-Allow-Headers",
                environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "Content-Type")[:500],
            ),
            ("Access-Control-Max-Age", "600"),
        ]
        return text_response(start_response, 200, "ok", headers)

    # -- out-of-band sends to this middleware's clients ----------------------
    def send(self, session_id: str, message: Any) -> None:
        """Send to one session of this middleware; :class:`NoSocket` if unknown."""
        api.send_via((self.engine.backend, self.engine.bridge), session_id, message)

    def broadcast(self, message: Any) -> int:
        """Send to every client; :class:`NoSocket` if there is none."""
        return api.broadcast_via((self.engine.backend, self.engine.bridge), message)

    def broadcast_channel(self, message: Any, channel: str) -> int:
        """Send to every holder of ``channel``; :class:`NoSocket` if none."""
        return api.broadcast_via((self.engine.backend, self.engine.bridge), message, channel)

    def emit(self, session_id: str, event: str, *args: Any) -> None:
        """Emit the named event to one session of this middleware; :class:`NoSocket` if unknown."""
        api.deliver_via((self.engine.backend, self.engine.bridge), session_id, api.emission(event, args))

    def emit_broadcast(self, event: str, *args: Any) -> int:
        """Emit the named event to every client; :class:`NoSocket` if there is none."""
        return api.publish_via((self.engine.backend, self.engine.bridge), api.emission(event, args))

    def emit_channel(self, event: str, *args: Any, channel: str) -> int:
        """Emit the named event to every holder of ``channel``; :class:`NoSocket` if none."""
        return api.publish_via((self.engine.backend, self.engine.bridge), api.emission(event, args), channel)

    # -- conveniences -----------------------------------------------------
    def close_all(self) -> None:
        """Close every session (fires the closing events); used on shutdown."""
        self.engine.bridge.call(self.engine.close_all)


def apply_proxy_headers(environ: dict) -> None:
    """Take the client address and scheme from the headers our own proxy set.

    Only the right-most ``X-Forwarded-For`` entry is used: it is the one the
    trusted proxy appended; entries left of it come from the client.
    """
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    if forwarded:
        environ["REMOTE_ADDR"] = forwarded.split(",")[-1].strip()
    proto = environ.get("HTTP_X_FORWARDED_PROTO", "").strip().lower()
    if proto in ("http", "https"):
        environ["wsgi.url_scheme"] = proto
