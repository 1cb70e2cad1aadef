"""Socket.IO 4 clients (Engine.IO 4, ``EIO=4``): the gevent drivers.

:class:`V4Endpoint` answers the requests under the resource that carry
``EIO=4`` (long-polling GET/POST, websocket, the upgrade between them) and
keeps the sessions held for connection state recovery;
:class:`~socketio_wsgi.v4link.LinkDriver` drives one Engine.IO connection and
the namespace sessions it carries, each an ordinary
:class:`~socketio_wsgi.v4session.V4Session` of the engine.  Everything a
client controls is decoded by the pure codecs (:mod:`socketio_wsgi.eio4`,
:mod:`socketio_wsgi.sio5`) under their limits; any bad input ends that
client's link with one log line and a clear answer (400, CONNECT_ERROR or a
close), never anything else.
"""

from __future__ import annotations

import json
import logging
import time
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Tuple
from urllib.parse import parse_qs

import gevent
import gevent.event

from . import eio4
from .core import Reason
from .eio4_link import (
    PARSE_ERROR,
    POLLING,
    TRANSPORT_CLOSE,
    WEBSOCKET,
    WRITE_TIMEOUT,
    EngineIOLink,
    LinkState,
)
from .errors import ConnectionClosed, LimitExceeded, ProtocolError, ServiceUnavailable
from .http import FORWARDED_KEY, Headers, respond, text_response
from .outbound import record_payloads
from .session import new_session_id, pause
from .transports.base import READ_SLICE, DeadlineBody, read_in_slices, socket_abort
from .v4link import LinkDriver
from .v4session import V4Session
from .websocket import PARK_KEY, accept, is_upgrade_request
from .ws.connection import PreparedMessage

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine
    from .forwarding import Forwarder

__all__ = ["V4Endpoint", "ERRORS", "is_v4_request"]

log = logging.getLogger("socketio_wsgi")

#: Engine.IO's error answers: code -> message (JSON body of a 400/403).
ERRORS = {
    0: "Transport unknown",
    1: "Session ID unknown",
    2: "Bad handshake method",
    3: "Bad request",
    4: "Forbidden",
    5: "Unsupported protocol version",
}
_TEXT = "text/plain; charset=UTF-8"


def is_v4_request(environ: dict) -> bool:
    """Whether a request under the resource is Engine.IO's (has ``EIO=``)."""
    return "EIO=" in environ.get("QUERY_STRING", "")


def _query(environ: dict) -> Dict[str, str]:
    try:
        fields = parse_qs(environ.get("QUERY_STRING", ""), max_num_fields=32, errors="strict")
    except (ValueError, UnicodeDecodeError):
        return {}
    return {key: values[0] for key, values in fields.items()}


def _answer_not_taken(driver: "LinkDriver") -> None:
    """A poll's answer was not written within ``write_timeout`` (its socket
    is shut by now): the link ends ("write timeout")."""
    link = driver.link
    log.warning("eio %s: a poll's answer was not taken within write_timeout; closing it", link.sid)
    if link.close(WRITE_TIMEOUT):
        gevent.spawn(driver.end)


class Refusal(Exception):
    """A request answered with an Engine.IO error (status, code)."""

    def __init__(self, status: int, code: int, detail: str = ""):
        super().__init__(detail or ERRORS[code])
        self.status = status
        self.code = code
        self.detail = detail or ERRORS[code]


class V4Endpoint:
    """The Engine.IO 4 side of one middleware."""

    def __init__(
        self,
        engine: "Engine",
        origin_allowed: Callable[[dict], bool],
        forwarder: Optional["Forwarder"] = None,
    ):
        self.engine = engine
        self.origin_allowed = origin_allowed
        #: Serves polling requests for other processes' connections through them.
        self.forwarder = forwarder
        self.links: Dict[str, LinkDriver] = {}
        #: Sessions waiting for their client to recover them, by private id.
        self.held: Dict[str, V4Session] = {}
        self._last_frames: tuple = (b"", [])
        # (is_text, payload) -> its message, for one loop iteration: the same
        # record queued for many connections (a broadcast) is framed once,
        # whatever else each connection's queue holds.
        self._record_frames: Dict[Tuple[bool, bytes], PreparedMessage] = {}
        self._expiries: Dict[str, Any] = {}
        options = engine.options
        self.recovery_window: Optional[float] = options.recovery_window
        self.ping_interval = options.heartbeat_interval
        self.ping_timeout = options.heartbeat_timeout
        self.max_payload = options.max_payload_size
        self.max_packets = options.max_messages_per_payload
        self.transports = tuple(
            name
            for name, old in ((POLLING, "xhr-polling"), (WEBSOCKET, "websocket"))
            if old in options.transports
        )

    def frames(self, data: bytes) -> List[PreparedMessage]:
        """The websocket messages of queued records, built once for a payload
        handed to many connections in one loop iteration (a broadcast)."""
        if not data:
            return []
        last_data, last_frames = self._last_frames
        if data is last_data:
            return last_frames
        cache = self._record_frames
        if not cache and not last_data:
            self.engine.loop.run_callback(self._forget_frames)
        frames = []
        for key in record_payloads(data):
            message = cache.get(key)
            if message is None:
                message = cache[key] = PreparedMessage(key[1], text=key[0])
            frames.append(message)
        self._last_frames = (data, frames)
        return frames

    def _forget_frames(self) -> None:
        self._last_frames = (b"", [])
        self._record_frames = {}

    # -- routing ------------------------------------------------------------------------
    def check(self, environ: dict) -> Optional[LinkDriver]:
        """The link a request resumes (None for a handshake); raises :class:`Refusal`."""
        query = _query(environ)
        if query.get("EIO") != "4":
            raise Refusal(400, 5)
        transport = query.get("transport")
        if transport not in (POLLING, WEBSOCKET) or transport not in self.transports:
            raise Refusal(400, 0)
        if not self.origin_allowed(environ):
            raise Refusal(403, 4, "origin not allowed")
        upgrade = is_upgrade_request(environ) or environ.get("wsgi.websocket") is not None
        if (transport == WEBSOCKET) != upgrade:
            raise Refusal(400, 3, "websocket transport needs an upgrade, polling must not have one")
        method = environ.get("REQUEST_METHOD", "GET")
        sid = query.get("sid")
        if sid is None:
            if method != "GET":
                raise Refusal(400, 2)
            return None
        driver = self.links.get(sid)
        if driver is None:
            raise Refusal(400, 1)
        origin = environ.get("HTTP_ORIGIN")
        first = driver.environ.get("HTTP_ORIGIN")
        if origin is not None and first is not None and origin != first:
            raise Refusal(403, 4, "origin differs from the one that opened the session")
        link = driver.link
        if transport == WEBSOCKET:
            if link.transport != POLLING or link.state is not LinkState.OPEN or driver.conn is not None:
                raise Refusal(400, 3, "this session has upgraded (or is upgrading) already")
        elif link.transport != POLLING:
            raise Refusal(400, 3, "this session has upgraded to websocket")
        if method not in ("GET", "POST"):
            raise Refusal(400, 3, f"{method[:20]} is not allowed")
        return driver

    def refusal(self, environ: dict) -> Optional[tuple]:
        try:
            self.check(environ)
        except Refusal as refused:
            self._log(environ, refused)
            return refused.status, refused.detail
        return None

    def _log(self, environ: dict, refused: Refusal) -> None:
        log.warning(
            "EIO=4 %s from %s: %d %s",
            environ.get("REQUEST_METHOD"),
            environ.get("REMOTE_ADDR"),
            refused.status,
            refused.detail,
        )

    def _end_with(
        self, environ: dict, start_response: Callable, driver: LinkDriver, cors: Headers, refused: Refusal
    ) -> List[bytes]:
        """Refuse a request of an open connection, and end that connection."""
        self._log(environ, refused)
        driver.link.close(PARSE_ERROR)
        driver.end()
        return self._error(start_response, refused, cors)

    def _refuse(
        self, environ: dict, start_response: Callable, refused: Refusal, cors: Headers
    ) -> List[bytes]:
        self._log(environ, refused)
        if environ.get("wsgi.websocket") is not None:
            conn = accept(environ, start_response)
            if conn is not None:
                conn.close(4000 + refused.status, refused.detail)
            return []
        return self._error(start_response, refused, cors)

    def _error(self, start_response: Callable, refused: Refusal, cors: Headers) -> List[bytes]:
        body = json.dumps({"code": refused.code, "message": refused.detail}).encode()
        return respond(start_response, refused.status, body, "application/json", cors)

    # -- WSGI -----------------------------------------------------------------------------
    def __call__(self, environ: dict, start_response: Callable, cors: Headers) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "OPTIONS":
            headers = cors + [
                ("Access-Control-Allow-Methods", "GET, POST, OPTIONS"),
                (
                    "Access-Control-Allow-Headers",
                    environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "")[:500],
                ),
            ]
            return text_response(start_response, 200, "ok", headers)
        try:
            driver = self.check(environ)
        except Refusal as refused:
            query = _query(environ)
            # A polling request for a connection of another process: served there.
            if (
                refused.code == 1
                and self.forwarder is not None
                and query.get("transport") == POLLING
                and FORWARDED_KEY not in environ
            ):
                hold = self.ping_interval + self.ping_timeout if method == "GET" else 0.0
                return self.forwarder.forward(
                    environ,
                    start_response,
                    "link",
                    query["sid"],
                    hold,
                    partial(self._refuse, environ, start_response, refused, cors),
                )
            return self._refuse(environ, start_response, refused, cors)
        query = _query(environ)
        if driver is None:
            try:
                return self.handshake(environ, start_response, cors, query["transport"])
            except ServiceUnavailable as exc:
                log.warning("refused a new EIO=4 session from %s: %s", environ.get("REMOTE_ADDR"), str(exc))
                return text_response(start_response, exc.http_status, f"no new sessions: {exc}", cors)
        if query["transport"] == WEBSOCKET:
            return self.upgrade(environ, start_response, driver)
        if method == "POST":
            return self.post(environ, start_response, driver, cors)
        return self.poll(environ, start_response, driver, cors)

    # -- handshake ------------------------------------------------------------------------
    def _new_link(self, environ: dict, transport: str, admitted: bool = False) -> LinkDriver:
        if not admitted:
            self.engine.admit(environ, extra=len(self.links))
        self.engine.bridge.bind_current()
        sid = new_session_id()
        while sid in self.links:  # pragma: no cover - 66 random bits
            sid = new_session_id()
        link = EngineIOLink(
            sid, self.ping_interval, self.ping_timeout, self.max_payload, time.monotonic(), transport
        )
        driver = LinkDriver(self, link, environ)
        self.links[sid] = driver
        if transport == POLLING and self.forwarder is not None:
            self.forwarder.claim(sid)  # its next requests may reach other processes
        driver.rearm()
        return driver

    def handshake(
        self, environ: dict, start_response: Callable, cors: Headers, transport: str
    ) -> Iterable[bytes]:
        if transport == WEBSOCKET:
            self.engine.admit(environ, extra=len(self.links))  # a refusal is answered before the 101
            conn = self._accept(environ, start_response)
            if conn is None:
                return []
            driver = self._new_link(environ, WEBSOCKET, admitted=True)
            log.info("eio %s opened over websocket", driver.link.sid)
            try:
                conn.send(driver.link.handshake_record()[1:].decode("ascii"))
            except ConnectionClosed:
                driver.link.close(TRANSPORT_CLOSE)
                driver.end()
                return []
            self.serve_websocket(driver, conn, environ.pop(PARK_KEY, None))
            return []
        driver = self._new_link(environ, POLLING)
        handshake = driver.link.handshake()
        if WEBSOCKET not in self.transports:
            handshake = eio4.Handshake(
                handshake.sid, (), handshake.ping_interval, handshake.ping_timeout, handshake.max_payload
            )
        log.info("eio %s opened over polling", driver.link.sid)
        body = ("0" + handshake.to_json()).encode("ascii")
        return respond(start_response, 200, body, _TEXT, cors)

    # -- polling ------------------------------------------------------------------------------
    def poll(
        self, environ: dict, start_response: Callable, driver: LinkDriver, cors: Headers
    ) -> Iterable[bytes]:
        link = driver.link
        if driver.polling:
            refused = Refusal(400, 3, "a second poll while one is pending")
            return self._end_with(environ, start_response, driver, cors, refused)
        driver.polling = True
        try:
            until = time.monotonic() + link.ping_interval + link.ping_timeout
            while True:
                driver.waiter.clear()
                data = driver.collect()
                if data or not link.open or link.transport != POLLING:
                    break
                remaining = until - time.monotonic()
                if remaining <= 0:
                    break
                driver.waiter.wait(remaining)
        finally:
            driver.polling = False
        if not link.open and not data.endswith(b"\x1e1"):
            data += b"\x1e1"
        if not data:
            data = b"\x1e6"
        body = respond(start_response, 200, data[1:], _TEXT, cors)
        return DeadlineBody(
            body, socket_abort(environ), self.engine.options.write_timeout, partial(_answer_not_taken, driver)
        )

    def post(self, environ: dict, start_response: Callable, driver: LinkDriver, cors: Headers) -> List[bytes]:
        link = driver.link
        refused: Optional[Refusal] = None
        if driver.posting:
            refused = Refusal(400, 3, "a second POST while one is running")
            return self._end_with(environ, start_response, driver, cors, refused)
        raw_length = environ.get("CONTENT_LENGTH") or ""
        try:
            length = int(raw_length) if raw_length else -1
        except ValueError:
            length = -2
        if length < -1:
            refused = Refusal(400, 3, "bad Content-Length")
        elif length > self.max_payload:
            refused = Refusal(413, 3, f"a body of {length} bytes exceeds maxPayload ({self.max_payload})")
        if refused is not None:
            return self._end_with(environ, start_response, driver, cors, refused)
        driver.posting = True
        try:
            body = read_in_slices(environ["wsgi.input"], length if length >= 0 else self.max_payload + 1)
            if len(body) > READ_SLICE:
                pause()  # a large body: others run between its read and its decode
            packets = eio4.decode_payload(body, max_payload=self.max_payload, max_packets=self.max_packets)
            driver.receive(packets)
        except ProtocolError as exc:
            status = 413 if isinstance(exc, LimitExceeded) else 400
            if link.open:
                self.engine.stats.protocol_errors += 1
                log.warning("eio %s: bad POST (%s); closing it", link.sid, str(exc))
                link.close(PARSE_ERROR)
                driver.end()
            return self._error(start_response, Refusal(status, 3, str(exc)[:200]), cors)
        finally:
            driver.posting = False
        return respond(start_response, 200, b"ok", "text/html", cors)

    # -- websocket ---------------------------------------------------------------------------
    def _accept(self, environ: dict, start_response: Callable) -> Any:
        """The websocket handshake, under maxPayload and ``write_timeout``."""
        return accept(
            environ,
            start_response,
            max_size=self.max_payload,
            write_timeout=self.engine.options.write_timeout,
        )

    def upgrade(self, environ: dict, start_response: Callable, driver: LinkDriver) -> List[bytes]:
        conn = self._accept(environ, start_response)
        if conn is None:
            return []
        link = driver.link
        try:
            first = conn.receive(timeout=link.ping_timeout)
            if first != "2probe":
                raise ProtocolError("an upgrade starts with 2probe")
            if link.state is not LinkState.OPEN or link.transport != POLLING or driver.conn is not None:
                raise ProtocolError("a second websocket for this session")
            conn.send(link.probe().decode("ascii"))
            driver.waiter.set()  # the paused poll answers with the noop
            second = conn.receive(timeout=link.ping_timeout)
            if second != "5":
                raise ProtocolError("the upgrade did not end with 5")
        except (ConnectionClosed, TimeoutError, ProtocolError) as exc:
            if isinstance(exc, ProtocolError):
                log.warning("eio %s: upgrade failed: %s", link.sid, str(exc))
            link.upgrade_failed()
            conn.close(1002 if isinstance(exc, ProtocolError) else 1000, "upgrade failed")
            return []
        link.upgraded(time.monotonic())
        driver.waiter.set()  # a poll still held (it should not be) answers now
        log.info("eio %s upgraded to websocket", link.sid)
        for session in driver.sessions.values():
            session.transport = "eio4-websocket"
        self.serve_websocket(driver, conn, environ.pop(PARK_KEY, None))
        return []

    def serve_websocket(
        self, driver: LinkDriver, conn: Any, park: Optional[Callable[[], int]] = None
    ) -> None:
        """Serve the link on ``conn`` until either side ends it; with ``park``
        (see :data:`~socketio_wsgi.websocket.PARK_KEY`) this returns at once
        and a quiet connection holds no greenlet."""
        driver.conn = conn
        conn.on_drained = driver.wake
        driver.wake()
        conn.serve(driver.on_frame, driver.on_websocket_end, park)

    # -- connection state recovery ----------------------------------------------------------
    def hold(self, session: V4Session, reason: str) -> None:
        """Keep ``session`` open, without a client, for ``recovery_window``
        seconds; then close it with ``reason`` (what ended its link)."""
        assert session.recovery is not None and self.recovery_window is not None
        pid = session.recovery.pid
        self.held[pid] = session
        session.link = None
        timer = self.engine.loop.timer(self.recovery_window)
        self._expiries[pid] = timer
        timer.start(lambda: self._expire(pid, reason))
        log.info("session %s held %.0f s for recovery (%s)", session.session_id, self.recovery_window, reason)

    def release(self, pid: str) -> Optional[V4Session]:
        timer = self._expiries.pop(pid, None)
        if timer is not None:
            timer.stop()
        return self.held.pop(pid, None)

    def _expire(self, pid: str, reason: str) -> None:
        session = self.release(pid)
        if session is not None:
            self.engine.close_later(session, reason)

    # -- shutdown -----------------------------------------------------------------------------
    def close_all(self) -> None:
        for driver in list(self.links.values()):
            driver.close()
        for pid in list(self.held):
            session = self.release(pid)
            if session is not None:
                self.engine.close(session, Reason.SERVER_SHUTDOWN)
