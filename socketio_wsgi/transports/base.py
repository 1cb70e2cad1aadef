"""What every transport shares: the interface, the streaming pump, POST sends."""

from __future__ import annotations

import logging
import socket as _socket
import time
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, List, Optional
from urllib.parse import parse_qs

import gevent
from gevent import monkey

from ..errors import ConnectionRefused, ProtocolError
from ..http import SOCKET_KEY, Headers, text_response
from ..protocol import encode_frame
from ..session import Reason, Session, Waiter, pause

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

__all__ = [
    "Transport",
    "HttpTransport",
    "stream_payloads",
    "read_post_payload",
    "PostError",
    "GuardedBody",
    "DeadlineBody",
    "socket_abort",
]

log = logging.getLogger("socketio_wsgi.transport")


class PostError(Exception):
    """A POST body that cannot be used; ``status`` is the HTTP answer."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Transport:
    """A way for the 0.6 client to reach a session.

    ``open`` serves the first request of a new session; ``resume`` a later
    receive request (GET with a session id).  Sends from the client arrive
    through :meth:`HttpTransport.post` or the transport's own socket.
    """

    name = ""
    streaming = False  # streaming transports carry heartbeats

    def __init__(self, engine: "Engine", name: Optional[str] = None):
        self.engine = engine
        if name:
            self.name = name

    def open(self, environ: dict, start_response, cors: Headers):  # pragma: no cover
        raise NotImplementedError

    def resume(self, environ: dict, start_response, session: Session, cors: Headers):
        return text_response(start_response, 400, f"{self.name} cannot resume a session", cors)

    def start_session(self, environ: dict) -> Session:
        """Create a session and run ``on_connect``; may raise ConnectionRefused."""
        session = self.engine.new_session(self.name, environ)
        self.engine.connect(session)
        return session

    @staticmethod
    def id_frame(session: Session) -> bytes:
        """The session-id frame: always the first thing a session sends."""
        return encode_frame(session.session_id).encode()

    def handshake_payload(self, session: Session) -> bytes:
        """The session-id frame, then whatever on_connect queued (polling)."""
        return self.id_frame(session) + session.take()


_os_fromfd = monkey.get_original("socket", "fromfd")


def socket_abort(environ: dict) -> Optional[Callable[[], None]]:
    """A function that shuts this request's client socket (``None`` under a
    server that does not hand it over, see :data:`~socketio_wsgi.http.SOCKET_KEY`).

    It shuts the connection through a duplicate descriptor, so a greenlet
    blocked writing to it fails as for a peer that went away (a broken pipe,
    which the server handles quietly) instead of being cancelled.
    """
    sock = environ.get(SOCKET_KEY)
    if sock is None:
        return None

    def abort() -> None:
        try:
            duplicate = _os_fromfd(sock.fileno(), _socket.AF_INET, _socket.SOCK_STREAM)
        except (OSError, ValueError):
            return  # already closed
        try:
            duplicate.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass  # already gone
        finally:
            duplicate.close()

    return abort


class GuardedBody:
    """A WSGI response body whose every chunk must be written within
    ``write_timeout``: the server writes a chunk between two steps of this
    iterator, so each step opens and closes a write of the session; a chunk
    not taken in time shuts the socket and closes the session."""

    __slots__ = ("session", "chunks", "abort", "_token")

    def __init__(self, session: Session, chunks: Iterable[bytes], abort: Optional[Callable[[], None]]):
        self.session = session
        self.chunks = chunks
        self.abort = abort
        self._token: Optional[int] = None

    def __iter__(self) -> Iterator[bytes]:
        session = self.session
        for chunk in self.chunks:
            self._token = session.write_started(self.abort)
            yield chunk
            self._done()

    def _done(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            self.session.write_finished(token)

    def close(self) -> None:
        self._done()
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()


class DeadlineBody:
    """A complete response body that must be written within ``timeout``: the
    server writes it between the two steps of this iterator; if that takes
    longer, ``abort`` shuts the client's socket (a client that does not read
    pins nothing) and then ``on_expired`` runs, from the event loop.  Under a
    server that hands over no socket (``abort`` None) nothing is timed."""

    __slots__ = ("body", "timer", "abort", "on_expired")

    def __init__(
        self,
        body: List[bytes],
        abort: Optional[Callable[[], None]],
        timeout: float,
        on_expired: Optional[Callable[[], None]] = None,
    ):
        self.body = body
        self.abort = abort
        self.on_expired = on_expired
        self.timer = gevent.get_hub().loop.timer(timeout) if abort is not None else None

    def __iter__(self) -> Iterator[bytes]:
        if self.timer is not None:
            self.timer.start(self._expired)
        yield from self.body
        self.close()

    def _expired(self) -> None:
        self.close()
        if self.abort is not None:
            self.abort()
        if self.on_expired is not None:
            self.on_expired()

    def close(self) -> None:
        timer, self.timer = self.timer, None
        if timer is not None:
            timer.stop()


def stream_payloads(session: Session, waiter: Waiter) -> Iterator[bytes]:
    """Payloads to write on a streaming connection until the session ends.

    ``waiter`` must be attached; heartbeats are queued by the session's timer
    like any other output, so this only waits and takes.
    """
    while True:
        data = session.take()
        if data:
            yield data
        if not session.connected:
            return
        session.wait(waiter, time.monotonic() + 3600.0)


READ_SLICE = 256 * 1024


def read_in_slices(stream, length: int) -> bytes:
    """Read up to ``length`` bytes (fewer at the end of the body), letting
    other sessions run between slices of :data:`READ_SLICE`: a body that has
    already arrived is copied without blocking, and a multi-MiB one copied in
    one go held every other session for tens of milliseconds."""
    if length <= READ_SLICE:
        return stream.read(length) if length else b""
    parts: List[bytes] = []
    left = length
    while left > 0:
        part = stream.read(min(left, READ_SLICE))
        if not part:
            break
        parts.append(part)
        left -= len(part)
        pause()
    return b"".join(parts)


def read_post_payload(environ: dict, max_body: int, max_payload: int) -> str:
    """The ``data`` field of a form-encoded POST, as text; raises PostError."""
    raw_length = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    if raw_length:
        try:
            length = int(raw_length)
        except ValueError:
            raise PostError(400, "Content-Length is not a number") from None
        if length < 0:
            raise PostError(400, "Content-Length is negative")
        if length > max_body:
            raise PostError(413, f"POST body of {length} bytes exceeds the limit of {max_body}")
        body = read_in_slices(stream, length)
    else:
        body = read_in_slices(stream, max_body + 1)
        if len(body) > max_body:
            raise PostError(413, f"POST body exceeds the limit of {max_body} bytes")
    try:
        text = body.decode("utf-8")
        fields = parse_qs(text, keep_blank_values=True, errors="strict", max_num_fields=16)
    except UnicodeDecodeError:
        raise PostError(400, "POST body is not valid UTF-8") from None
    except ValueError as exc:
        raise PostError(400, f"POST body is not a form: {exc}") from None
    values: List[str] = fields.get("data", [])
    if not values:
        raise PostError(400, "POST body has no data field")
    data = values[0]
    if len(data) > max_payload:
        raise PostError(413, f"payload of {len(data)} characters exceeds the limit of {max_payload}")
    return data


class HttpTransport(Transport):
    """Transports whose client sends with ``POST /<resource>/<name>/<sid>/send``."""

    def normalise_post(self, data: str) -> str:
        return data

    def post(self, environ: dict, start_response, session: Session, cors: Headers):
        options = self.engine.options
        try:
            data = read_post_payload(environ, options.max_post_size, options.max_payload_size)
        except PostError as exc:
            log.warning("session %s: POST refused (%d %s)", session.session_id, exc.status, exc.reason)
            if exc.status == 413:
                self.engine.close(session, Reason.LIMIT_EXCEEDED)
            return text_response(start_response, exc.status, exc.reason, cors)
        if len(data) > READ_SLICE:
            pause()  # a large body: others run between its parse and its decode
        try:
            self.engine.receive(session, self.normalise_post(data))
        except ProtocolError as exc:
            text = str(exc) if exc.http_status == 413 else f"malformed payload: {exc}"
            return text_response(start_response, exc.http_status, text, cors)
        return text_response(start_response, 200, "ok", cors)


def refuse(start_response, refused: ConnectionRefused, cors: Headers):
    return text_response(start_response, 403, refused.reason, cors)
