"""Long-polling transports: xhr-polling and jsonp-polling.

A GET returns *everything* queued, at once if anything is, otherwise when the
first message arrives or after ``polling_duration`` (empty body).  Between
GETs the session is detached and the close timer covers the gap.  A second
GET for the same session answers the older one (empty) and takes its place.
A GET whose client hangs up while it is held takes nothing from the queue:
the messages wait for the next GET, or the close timer ends the session.
"""

from __future__ import annotations

import json
import re
import socket as _socket
import time
from functools import partial
from typing import Any, Callable, List, Optional

import gevent
from gevent import monkey

from ..errors import ConnectionRefused, ProtocolError
from ..http import (
    FORWARDED_ANSWER_MAX,
    FORWARDED_KEY,
    HANGUP_KEY,
    SOCKET_KEY,
    UNSENT_KEY,
    Headers,
    respond,
    text_response,
)
from ..protocol import decode_frames
from ..session import Session, Waiter
from .base import GuardedBody, HttpTransport, log, refuse, socket_abort

__all__ = ["XhrPolling", "JsonpPolling", "jsonp_literal", "HangupWatch", "watch_hangup", "stop_watch"]

#: The unpatched socket class: a peek from the hub must never wait.
_PlainSocket = monkey.get_original("socket", "socket")

#: The callback index: the trailing digits of the path (one trailing slash allowed).
#: At most 9 digits, so a hostile path cannot make ``int()`` expensive.
_TRAILING_INDEX = re.compile(r"(?<![0-9])([0-9]{1,9})/?$")


class HangupWatch:
    """Calls ``on_hangup()`` (in a new greenlet) once the client closes the
    connection of a request we hold open, or once ``event`` is set (the
    cancel of a request another process forwarded here).

    Driven by the event loop: an fd watcher, or a link on the event, so a
    held poll costs no greenlet (spawning one, and killing it at the end,
    was a seventh of the CPU of a polling echo).  The socket is only peeked
    at: a byte that does arrive (a pipelined request) stays for the server,
    and the watch ends there.  :meth:`stop` before the response ends."""

    __slots__ = ("_fd", "_watcher", "_event", "_on_hangup")

    def __init__(self, on_hangup: Callable[[], None], fd: int = -1, event: Optional[Any] = None):
        self._on_hangup: Optional[Callable[[], None]] = on_hangup
        self._fd = fd
        self._event = event
        self._watcher: Any = None
        if event is not None:
            event.rawlink(self._fired)
        else:
            self._watcher = gevent.get_hub().loop.io(fd, 1)  # 1: readable
            self._watcher.start(self._readable)

    def _readable(self) -> None:
        """In the hub: end of file (or a reset) is a hang-up; bytes are not."""
        peek = _PlainSocket(fileno=self._fd)
        try:
            gone = not peek.recv(1, _socket.MSG_PEEK | _socket.MSG_DONTWAIT)
        except BlockingIOError:
            return  # nothing after all: keep watching
        except OSError:
            gone = True
        finally:
            peek.detach()  # the server's socket keeps its descriptor
        if gone:
            self._fired(None)
        else:
            self.stop()

    def _fired(self, _event: Any) -> None:
        on_hangup = self._on_hangup
        self.stop()
        if on_hangup is not None:
            gevent.spawn(on_hangup)

    def stop(self) -> None:
        self._on_hangup = None
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
            watcher.close()
        event, self._event = self._event, None
        if event is not None:
            event.unlink(self._fired)


def watch_hangup(environ: dict, on_hangup: Callable[[], None]) -> Optional[HangupWatch]:
    """Watch this held request for the client hanging up (see :class:`HangupWatch`).

    Only for requests without a body that we hold open (a long poll, a
    stream): nothing else reads the connection meanwhile.  A request another
    process forwarded here is watched through the event that process's
    cancel sets (:data:`~socketio_wsgi.http.HANGUP_KEY`); one under a server
    that does not hand over its socket (:data:`~socketio_wsgi.http.SOCKET_KEY`)
    is not watched.  End it with :func:`stop_watch` before the response ends.
    """
    hangup = environ.get(HANGUP_KEY)
    if hangup is not None:
        return HangupWatch(on_hangup, event=hangup)
    sock = environ.get(SOCKET_KEY)
    if sock is None:
        return None
    try:
        fd = sock.fileno()
    except (OSError, ValueError):
        return None
    return HangupWatch(on_hangup, fd=fd) if fd >= 0 else None


def stop_watch(watch: Optional[HangupWatch]) -> None:
    """End a :func:`watch_hangup` watch (``None`` is fine)."""
    if watch is not None:
        watch.stop()


class XhrPolling(HttpTransport):
    name = "xhr-polling"
    content_type = "text/plain; charset=UTF-8"

    def open(self, environ: dict, start_response, cors: Headers):
        try:
            session = self.start_session(environ)
        except ConnectionRefused as refused:
            return refuse(start_response, refused, cors)
        body = self.handshake_payload(session)
        session.detach(None)  # the client must poll within close_timeout
        return GuardedBody(session, self.answer(environ, start_response, body, cors), socket_abort(environ))

    def resume(self, environ: dict, start_response, session: Session, cors: Headers):
        body = self.wait_for_payload(session, environ)
        return GuardedBody(session, self.answer(environ, start_response, body, cors), socket_abort(environ))

    def wait_for_payload(self, session: Session, environ: Optional[dict] = None) -> bytes:
        """Hold until something is queued, the session ends, a newer GET takes
        over, the client hangs up or ``polling_duration`` passes; then take
        the whole queue (unless superseded or hung up)."""
        waiter = Waiter()
        hung_up: List[bool] = []

        def on_hangup() -> None:
            hung_up.append(True)
            waiter.wake()

        session.attach(waiter)  # wakes an older pending GET, which then answers empty
        watcher: Optional[HangupWatch] = None
        try:
            if not session.has_queued() and session.connected:
                if environ is not None:
                    watcher = watch_hangup(environ, on_hangup)
                session.wait(
                    waiter,
                    time.monotonic() + self.engine.options.polling_duration,
                    stop=lambda: bool(hung_up),
                )
        finally:
            stop_watch(watcher)
            current = session.detach(waiter)
        if not current or hung_up:
            return b""  # a newer GET holds the session, or the queue waits for the next one
        forwarded = environ is not None and FORWARDED_KEY in environ
        body = session.take(FORWARDED_ANSWER_MAX if forwarded else None)
        if body and not session.connected:
            self.engine.collected(session)  # a last poll during a graceful shutdown
        unsent = environ.get(UNSENT_KEY) if environ is not None else None
        if body and unsent is not None:
            unsent.append(partial(session.put_back, body, session.core.takes))  # if its process is gone
        return body

    def answer(self, environ: dict, start_response, body: bytes, cors: Headers):
        return respond(start_response, 200, body, self.content_type, cors)


def jsonp_literal(payload: str) -> str:
    """A JavaScript string literal safe inside an HTML ``<script>`` element.

    ASCII only, so U+2028/U+2029 and every non-ASCII character are ``\\u``
    escapes; and no ``<`` at all, so neither ``</script>`` nor ``<!--``
    (which can make the parser skip the element's real end) can occur.
    """
    return json.dumps(payload, ensure_ascii=True).replace("<", "\\u003c")


class JsonpPolling(XhrPolling):
    name = "jsonp-polling"
    content_type = "text/javascript; charset=UTF-8"
    extra_headers = (("X-Content-Type-Options", "nosniff"),)

    def callback_index(self, environ: dict) -> Optional[int]:
        """The ``io.JSONP`` index: trailing digits *after* the session-id
        segment (``/<name>/<sid>/<ts>/<i>``), so a bare ``/<name>/<sid>``
        never mistakes the session id for an index."""
        prefix = "/" + self.engine.options.resource + "/"
        rest = environ.get("PATH_INFO", "")[len(prefix) :].split("/", 2)
        if len(rest) < 3:
            return None
        match = _TRAILING_INDEX.search(rest[2])
        return int(match.group(1)) if match else None

    def open(self, environ: dict, start_response, cors: Headers):
        if self.callback_index(environ) is None:
            return _missing_index(environ, start_response, cors)
        return super().open(environ, start_response, cors)

    def resume(self, environ: dict, start_response, session: Session, cors: Headers):
        if self.callback_index(environ) is None:
            return _missing_index(environ, start_response, cors)
        return super().resume(environ, start_response, session, cors)

    def answer(self, environ: dict, start_response, body: bytes, cors: Headers):
        index = self.callback_index(environ)
        script = f"io.JSONP[{index}]._({jsonp_literal(body.decode('utf-8'))});"
        return respond(
            start_response,
            200,
            script.encode("ascii"),
            self.content_type,
            list(cors) + list(self.extra_headers),
        )

    def normalise_post(self, data: str) -> str:
        # Browsers submit textarea newlines as CRLF, which breaks frame lengths.
        if "\r\n" in data:
            try:
                decode_frames(data)
            except ProtocolError:
                return data.replace("\r\n", "\n")
        return data


def _missing_index(environ: dict, start_response, cors: Headers):
    log.warning(
        "%s %s: 400 missing JSONP callback index",
        environ.get("REQUEST_METHOD"),
        environ.get("PATH_INFO", "")[:200],
    )
    return text_response(
        start_response,
        400,
        "missing JSONP callback index (a number of at most 9 digits ending the path)",
        cors,
    )
