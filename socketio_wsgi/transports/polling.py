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
import time
from functools import partial
from typing import Callable, List, Optional

import gevent

from ..errors import ConnectionRefused, ProtocolError
from ..http import (
    FORWARDED_ANSWER_MAX,
    FORWARDED_KEY,
    HANGUP_KEY,
    UNSENT_KEY,
    Headers,
    respond,
    text_response,
)
from ..protocol import decode_frames
from ..session import Session, Waiter
from .base import GuardedBody, HttpTransport, log, refuse, socket_abort

__all__ = ["XhrPolling", "JsonpPolling", "jsonp_literal", "watch_hangup", "stop_watch"]

#: The callback index: the trailing digits of the path (one trailing slash allowed).
#: At most 9 digits, so a hostile path cannot make ``int()`` expensive.
_TRAILING_INDEX = re.compile(r"(?<![0-9])([0-9]{1,9})/?$")


def watch_hangup(environ: dict, on_hangup: Callable[[], None]) -> Optional[gevent.Greenlet]:
    """Call ``on_hangup()`` if the client closes the connection of this request.

    Only for requests without a body that we hold open (a long poll, a
    stream): nothing else reads the connection meanwhile, so end-of-file
    there means the client is gone.  It peeks through gevent pywsgi's
    buffered reader (``wsgi.input.rfile``), so any byte that does arrive stays
    there for the server; under other servers nothing is watched.  Stop the
    returned greenlet with :func:`stop_watch` before the response ends.
    A request another process forwarded here is watched through the event
    that process's cancel sets (:data:`~socketio_wsgi.http.HANGUP_KEY`).
    """
    hangup = environ.get(HANGUP_KEY)
    if hangup is not None:
        return gevent.spawn(_wait_then, hangup, on_hangup)
    rfile = getattr(environ.get("wsgi.input"), "rfile", None)
    if rfile is None or not hasattr(rfile, "peek"):
        return None
    return gevent.spawn(_watch, rfile, on_hangup)


def _wait_then(event, on_hangup: Callable[[], None]) -> None:
    event.wait()
    on_hangup()


def _watch(rfile, on_hangup: Callable[[], None]) -> None:
    try:
        gone = not rfile.peek(1)
    except (OSError, ValueError):  # reset, or closed under us
        gone = True
    if gone:
        on_hangup()


def stop_watch(watcher: Optional[gevent.Greenlet]) -> None:
    """End a :func:`watch_hangup` greenlet (``None`` is fine)."""
    if watcher is not None and not watcher.dead:
        watcher.kill(block=True, timeout=1)


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
        watcher: Optional[gevent.Greenlet] = None
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
