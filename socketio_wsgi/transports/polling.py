"""Long-polling transports: xhr-polling and jsonp-polling.

A GET returns *everything* queued, at once if anything is, otherwise when the
first message arrives or after ``polling_duration`` (empty body).  Between
GETs the session is detached and the close timer covers the gap.  A second
GET for the same session answers the older one (empty) and takes its place.
"""
from __future__ import annotations

import json
import re
import time

import gevent.event

from ..errors import ConnectionRefused
from ..http import Headers, respond, text_response
from ..protocol import ProtocolError, decode_frames
from ..session import CLOSED, Session
from .base import HttpTransport, refuse

__all__ = ["XhrPolling", "JsonpPolling", "jsonp_literal"]

_TRAILING_INDEX = re.compile(r"(\d+)/?$")


class XhrPolling(HttpTransport):
    name = "xhr-polling"
    content_type = "text/plain; charset=UTF-8"

    def open(self, environ: dict, start_response, cors: Headers):
        try:
            session = self.start_session(environ)
        except ConnectionRefused as refused:
            return refuse(start_response, refused, cors)
        body = self.handshake_payload(session)
        if session.state is not CLOSED:
            session.start_close_timer(self.engine.options.close_timeout)
        return self.answer(environ, start_response, body, cors)

    def resume(self, environ: dict, start_response, session: Session, cors: Headers):
        body = self.wait_for_payload(session)
        return self.answer(environ, start_response, body, cors)

    def wait_for_payload(self, session: Session) -> bytes:
        session.cancel_close_timer()
        waiter = gevent.event.Event()
        session.set_waiter(waiter)  # wakes an older pending GET, which then answers empty
        deadline = time.monotonic() + self.engine.options.polling_duration
        try:
            while (not session.has_queued() and session.state is not CLOSED
                   and session.is_waiter(waiter)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                waiter.clear()
                waiter.wait(remaining)
        finally:
            current = session.is_waiter(waiter)
            if current:
                session.set_waiter(None)
        if not current:
            return b""
        body = session.drain()
        if session.state is not CLOSED:
            session.start_close_timer(self.engine.options.close_timeout)
        return body

    def answer(self, environ: dict, start_response, body: bytes, cors: Headers):
        return respond(start_response, 200, body, self.content_type, cors)


def jsonp_literal(payload: str) -> str:
    """A JavaScript string literal safe inside a script: ASCII only, no ``</``,
    U+2028/U+2029 escaped (``ensure_ascii`` does both of those)."""
    return json.dumps(payload, ensure_ascii=True).replace("</", "<\\/")


class JsonpPolling(XhrPolling):
    name = "jsonp-polling"
    content_type = "text/javascript; charset=UTF-8"
    extra_headers = (("X-Content-Type-Options", "nosniff"),)

    def callback_index(self, environ: dict):
        match = _TRAILING_INDEX.search(environ.get("PATH_INFO", ""))
        return int(match.group(1)) if match else None

    def open(self, environ: dict, start_response, cors: Headers):
        if self.callback_index(environ) is None:
            return _missing_index(start_response, cors)
        return super().open(environ, start_response, cors)

    def resume(self, environ: dict, start_response, session: Session, cors: Headers):
        if self.callback_index(environ) is None:
            return _missing_index(start_response, cors)
        return super().resume(environ, start_response, session, cors)

    def answer(self, environ: dict, start_response, body: bytes, cors: Headers):
        index = self.callback_index(environ)
        script = f"io.JSONP[{index}]._({jsonp_literal(body.decode('utf-8'))});"
        return respond(start_response, 200, script.encode("ascii"), self.content_type,
                       list(cors) + list(self.extra_headers))

    def normalise_post(self, data: str) -> str:
        # Browsers submit textarea newlines as CRLF, which breaks frame lengths.
        if "\r\n" in data:
            try:
                decode_frames(data)
            except ProtocolError:
                return data.replace("\r\n", "\n")
        return data


def _missing_index(start_response, cors: Headers):
    return text_response(start_response, 400, "missing JSONP callback index (a trailing number)", cors)
