"""Any worker answers any polling request: forwarding to the owning process.

A polling client's requests may land on any process behind a round-robin
proxy (or on any worker of ``gunicorn -w N``); its session lives in the one
that accepted its handshake.  With the Redis backend, a process that gets a
request for a session it does not hold forwards the whole HTTP request to the
owner over Redis pub/sub; the owner serves it exactly as if it had arrived
there (the same routing, checks, limits and handlers) and sends the HTTP
answer back, which the forwarding process writes to its client.  So every
session's order, queue and close rules stay in one place, and a message is
taken from the queue only by the poll that answers the client.

The wire format (one pub/sub message each) is a tag byte, a JSON header, a
newline and the raw body::

    Q{"v":1,"id":..,"r":<reply process>,"e":{environ subset}}\\n<request body>
    A{"v":1,"id":..,"s":"200 OK","h":[[name, value], ...]}\\n<response body>
    C{"v":1,"id":..}\\n                      (the client hung up: cancel)

Only the environ keys in :data:`FORWARDED_ENVIRON` cross, as strings.  A
request the owner serves carries :data:`FORWARDED_KEY`, so it is never
forwarded again.  Redis is trusted as the backend's pub/sub is: whoever can
write to it can make requests as a client could, never run code.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import time
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Tuple

import gevent
import gevent.event

from .http import FORWARDED_KEY, HANGUP_KEY, UNSENT_KEY, text_response
from .transports.base import DeadlineBody, read_in_slices, socket_abort
from .transports.polling import stop_watch, watch_hangup

__all__ = [
    "Forwarder",
    "Request",
    "Response",
    "encode_request",
    "encode_response",
    "encode_cancel",
    "decode",
    "FORWARDED_ENVIRON",
]

log = logging.getLogger("socketio_wsgi.forwarding")

VERSION = 1
#: The request environ that crosses to the owner: what routing, the origin
#: policy, CORS, the transports and the access log read.
FORWARDED_ENVIRON = (
    "REQUEST_METHOD",
    "PATH_INFO",
    "QUERY_STRING",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "REMOTE_ADDR",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "HTTP_HOST",
    "HTTP_ORIGIN",
    "HTTP_ACCESS_CONTROL_REQUEST_HEADERS",
    "wsgi.url_scheme",
)
#: How long "no process owns this id" is remembered, and for how many ids.
UNKNOWN_TTL = 2.0
UNKNOWN_MAX = 10_000
#: Bytes of request bodies this process may have in flight to owners at once
#: (one body alone may be larger: up to the POST limit).  Below Redis's
#: default soft limit for a subscriber's buffer (8 MB), so a flood of large
#: POSTs waits here instead of making Redis drop an owner's subscription.
BODY_BUDGET = 8 * 1024 * 1024
_STATUS_500 = "500 Internal Server Error"


class Request(NamedTuple):
    id: str
    reply_to: str
    environ: Dict[str, str]
    body: bytes


class Response(NamedTuple):
    id: str
    status: str
    headers: List[Tuple[str, str]]
    body: bytes


class Cancel(NamedTuple):
    id: str


def _pack(tag: bytes, header: Dict[str, Any], body: bytes = b"") -> bytes:
    return tag + json.dumps(header, separators=(",", ":")).encode("utf-8") + b"\n" + body


def encode_request(request_id: str, reply_to: str, environ: dict, body: bytes) -> bytes:
    """A forwarded request: the :data:`FORWARDED_ENVIRON` part of ``environ``
    (string values only) and the body already read from the client."""
    subset = {key: environ[key] for key in FORWARDED_ENVIRON if isinstance(environ.get(key), str)}
    return _pack(b"Q", {"v": VERSION, "id": request_id, "r": reply_to, "e": subset}, body)


def encode_response(request_id: str, status: str, headers: Iterable[Tuple[str, str]], body: bytes) -> bytes:
    return _pack(b"A", {"v": VERSION, "id": request_id, "s": status, "h": [list(h) for h in headers]}, body)


def encode_cancel(request_id: str) -> bytes:
    return _pack(b"C", {"v": VERSION, "id": request_id})


def _is_pair(item: Any) -> bool:
    return isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)


def decode(data: bytes) -> Any:
    """A :class:`Request`, :class:`Response` or :class:`Cancel`; ValueError
    for anything else (a stranger's bytes are dropped, never acted on)."""
    tag, cut = data[:1], data.find(b"\n")
    if tag not in (b"Q", b"A", b"C") or cut < 0:
        raise ValueError("not a forwarding message")
    try:
        header = json.loads(data[1:cut].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("the header is not JSON") from None
    if not isinstance(header, dict) or header.get("v") != VERSION or not isinstance(header.get("id"), str):
        raise ValueError("unsupported header")
    body = data[cut + 1 :]
    if tag == b"C":
        return Cancel(header["id"])
    if tag == b"Q":
        environ, reply_to = header.get("e"), header.get("r")
        if not isinstance(reply_to, str) or not isinstance(environ, dict):
            raise ValueError("a request needs a reply process and an environ")
        if any(key not in FORWARDED_ENVIRON or not isinstance(value, str) for key, value in environ.items()):
            raise ValueError("unexpected environ entries")
        return Request(header["id"], reply_to, environ, body)
    status, headers = header.get("s"), header.get("h")
    if not isinstance(status, str) or not isinstance(headers, list) or not all(map(_is_pair, headers)):
        raise ValueError("a response needs a status and a list of headers")
    return Response(header["id"], status, [(k, v) for k, v in headers], body)


class ByteBudget:
    """Bytes in flight, at most ``limit`` together (any one alone may pass)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self._freed = gevent.event.Event()

    def take(self, size: int, deadline: float) -> bool:
        """Wait until ``size`` more bytes fit; False at ``deadline`` (monotonic)."""
        while self.used and self.used + size > self.limit:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._freed.clear()
            self._freed.wait(remaining)
        self.used += size
        return True

    def give(self, size: int) -> None:
        self.used -= size
        self._freed.set()


class Forwarder:
    """Forwards this process's requests for others' sessions, and serves the
    requests others forward here, through a backend that routes them (the
    Redis backend's ``forward``, ``reply`` and ``serve_forwarded``).

    ``app`` is the middleware that serves a forwarded request on the owner;
    ``stats`` the :class:`~socketio_wsgi.engine.Stats` that count both ways.
    """

    def __init__(
        self, backend: Any, app: Callable[[dict, Callable], Iterable[bytes]], options: Any, stats: Any
    ):
        self.backend = backend
        self.app = app
        self.timeout: float = options.forward_timeout
        self.write_timeout: float = options.write_timeout
        self.max_body: int = options.max_post_size
        self.pending: Dict[str, gevent.event.AsyncResult] = {}
        self.serving: Dict[str, gevent.event.Event] = {}
        self.unknown: Dict[Tuple[str, str], float] = {}
        self.budget = ByteBudget(BODY_BUDGET)
        self.stats = stats  # the engine's: ``forwarded`` and ``served_for_others`` count here
        self._ids = itertools.count(1)
        backend.serve_forwarded(self.on_message)

    # -- routes ------------------------------------------------------------------------
    def claim(self, link_id: str) -> None:
        """Make requests for an Engine.IO 4 polling connection of this
        process reach it from any process (0.6 sessions need nothing: the
        backend registers every session)."""
        self.backend.add_link(link_id)

    def release(self, link_id: str) -> None:
        self.backend.remove_link(link_id)

    # -- the forwarding side ---------------------------------------------------------
    def forward(
        self,
        environ: dict,
        start_response: Callable,
        kind: str,
        route_id: str,
        hold: float,
        unknown: Callable[[], Iterable[bytes]],
    ) -> Iterable[bytes]:
        """Serve this request through the process that owns ``route_id``
        (``kind``: ``"session"`` or ``"link"``).  ``hold``: how long the owner
        may hold it (a poll).  ``unknown()`` answers when no live process owns
        it, or its owner died without answering within ``hold`` +
        ``forward_timeout``; an owner still alive by then gets a 503 (busy)."""
        key = (kind, route_id)
        now = time.monotonic()
        expiry = self.unknown.get(key)
        if expiry is not None:
            if expiry > now:
                return unknown()
            del self.unknown[key]
        body = self._body(environ)
        size = len(body)
        if not self.budget.take(size, now + self.timeout):
            log.warning("%s %s: forwarded bodies exceed their budget; answered 503", kind, route_id[:40])
            return text_response(start_response, 503, "busy: too many large requests in flight, try again")
        request_id = str(next(self._ids))
        result = gevent.event.AsyncResult()
        self.pending[request_id] = result
        watcher = None
        try:
            self.backend.listen()  # the answer comes back on our channel
            message = encode_request(request_id, self.backend.process_id, environ, body)
            del body
            owner = self.backend.forward(kind, route_id, message)
            if owner is None:
                self._remember_unknown(key, now)
                return unknown()
            self.stats.forwarded += 1
            if hold:
                watcher = watch_hangup(environ, lambda: self.backend.reply(owner, encode_cancel(request_id)))
            try:
                response = result.get(timeout=hold + self.timeout)
            except gevent.Timeout:
                self.backend.reply(owner, encode_cancel(request_id))
                if self.backend.is_alive(owner):  # alive but overloaded: try again later
                    log.warning(
                        "%s %s: the owning process did not answer within %.1f s; answered 503",
                        kind,
                        route_id[:40],
                        hold + self.timeout,
                    )
                    return text_response(
                        start_response, 503, "busy: the session's worker did not answer in time"
                    )
                log.warning(
                    "%s %s: the owning process is gone (no answer within %.1f s); answered as unknown",
                    kind,
                    route_id[:40],
                    hold + self.timeout,
                )
                return unknown()
        finally:
            stop_watch(watcher)
            self.pending.pop(request_id, None)
            self.budget.give(size)
        start_response(response.status, response.headers)
        return DeadlineBody([response.body], socket_abort(environ), self.write_timeout)

    def _body(self, environ: dict) -> bytes:
        """The request body, read here under the POST limit.  A declared
        length past it is not read: the owner refuses it on that header."""
        if environ.get("REQUEST_METHOD") != "POST":
            return b""
        raw = environ.get("CONTENT_LENGTH") or ""
        stream = environ["wsgi.input"]
        if not raw:
            return read_in_slices(stream, self.max_body + 1)
        try:
            length = int(raw)
        except ValueError:
            return b""  # the owner answers the bad header
        if length < 0 or length > self.max_body:
            return b""
        return read_in_slices(stream, length)

    def _remember_unknown(self, key: Tuple[str, str], now: float) -> None:
        unknown = self.unknown
        if len(unknown) >= UNKNOWN_MAX:
            stale = [k for k, expiry in unknown.items() if expiry <= now]
            for old in stale or list(unknown)[: UNKNOWN_MAX // 10]:  # else the oldest tenth
                del unknown[old]
        unknown[key] = now + UNKNOWN_TTL

    # -- messages from the backend ---------------------------------------------------
    def on_message(self, data: bytes) -> None:
        """One message on this process's forwarding channel (from the
        backend's listener: never blocks)."""
        try:
            message = decode(data)
        except ValueError as exc:
            log.warning("dropped a forwarding message (%d bytes): %s", len(data), exc)
            return
        if type(message) is Request:
            gevent.spawn(self.serve, message)
        elif type(message) is Response:
            result = self.pending.get(message.id)
            if result is not None and not result.ready():
                result.set(message)
        else:
            hangup = self.serving.get(message.id)
            if hangup is not None:
                hangup.set()

    # -- the owning side ---------------------------------------------------------------
    def serve(self, request: Request) -> None:
        """Serve a request another process forwarded, and send it the answer."""
        environ: Dict[str, Any] = dict(request.environ)
        hangup = gevent.event.Event()
        unsent: List[Callable[[], None]] = []
        environ.update(
            {
                "wsgi.input": io.BytesIO(request.body),
                "wsgi.errors": io.StringIO(),
                "wsgi.version": (1, 0),
                "wsgi.multithread": False,
                "wsgi.multiprocess": True,
                "wsgi.run_once": False,
                FORWARDED_KEY: True,
                HANGUP_KEY: hangup,
                UNSENT_KEY: unsent,
            }
        )
        environ.setdefault("wsgi.url_scheme", "http")
        captured: List[Any] = [_STATUS_500, []]

        def start_response(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
            captured[0], captured[1] = status, headers
            return lambda chunk: None

        self.serving[request.id] = hangup
        self.stats.served_for_others += 1
        try:
            result = self.app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:
            log.exception("serving a forwarded request failed")
            captured = [_STATUS_500, [("Content-Type", "text/plain; charset=UTF-8")]]
            body = b"internal error"
        finally:
            self.serving.pop(request.id, None)
        answer = encode_response(request.id, captured[0], captured[1], body)
        if not self.backend.reply(request.reply_to, answer):
            for put_back in unsent:
                put_back()
