"""Streaming HTTP transports: htmlfile (IE's forever iframe) and xhr-multipart.

One long GET carries every payload from the server, each wrapped in the
transport's envelope, with heartbeats keeping it alive; the client sends by
POST.  When the GET ends (or its client hangs up), the session ends: these
transports do not resume.
"""
from __future__ import annotations

from typing import Iterator

import gevent.event

from ..errors import ConnectionRefused
from ..http import Headers
from ..session import Reason, Session
from .base import HttpTransport, refuse, stream_payloads
from .polling import jsonp_literal, stop_watch, watch_hangup

__all__ = ["HtmlFile", "XhrMultipart"]


class _Streaming(HttpTransport):
    streaming = True
    content_type = ""
    extra_headers: tuple = ()

    def prelude(self) -> bytes:
        return b""

    def wrap(self, payload: bytes) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def open(self, environ: dict, start_response, cors: Headers):
        try:
            session = self.start_session(environ)
        except ConnectionRefused as refused:
            return refuse(start_response, refused, cors)
        headers = [("Content-Type", self.content_type), ("Cache-Control", "no-store"),
                   ("Connection", "keep-alive")]
        headers.extend(cors)
        headers.extend(self.extra_headers)
        start_response("200 OK", headers)
        return self._body(session, environ)

    def _body(self, session: Session, environ: dict) -> Iterator[bytes]:
        waiter = gevent.event.Event()
        session.set_waiter(waiter)
        # A client that goes away is noticed at once, not at the next failed write.
        watcher = watch_hangup(environ, lambda: self.engine.close_later(session, Reason.CLIENT_CLOSED))
        try:
            yield self.prelude() + self.wrap(self.id_frame(session))
            for payload in stream_payloads(session, waiter):
                yield self.wrap(payload)
        finally:
            stop_watch(watcher)
            session.set_waiter(None)
            self.engine.close(session, Reason.CLIENT_CLOSED)


class HtmlFile(_Streaming):
    name = "htmlfile"
    content_type = "text/html; charset=UTF-8"
    extra_headers = (("X-Content-Type-Options", "nosniff"),)
    #: IE runs scripts of a streamed document only after 256 bytes arrived.
    PRELUDE = b"<html><body>" + b" " * 244

    def prelude(self) -> bytes:
        return self.PRELUDE

    def wrap(self, payload: bytes) -> bytes:
        literal = jsonp_literal(payload.decode("utf-8"))
        return f"<script>parent.s._({literal}, document);</script>".encode("ascii")


class XhrMultipart(_Streaming):
    name = "xhr-multipart"
    content_type = 'multipart/x-mixed-replace;boundary="socketio"'
    BOUNDARY = b"--socketio\n"

    def prelude(self) -> bytes:
        return self.BOUNDARY

    def wrap(self, payload: bytes) -> bytes:
        return b"Content-Type: text/plain\n\n" + payload + b"\n" + self.BOUNDARY
