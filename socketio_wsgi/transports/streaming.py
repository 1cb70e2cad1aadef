"""Streaming HTTP transports: htmlfile (IE's forever iframe) and xhr-multipart.

One long GET carries every payload from the server, each wrapped in the
transport's envelope, with heartbeats keeping it alive; the client sends by
POST.  When the GET ends (or its client hangs up), the session ends: these
transports do not resume.
"""

from __future__ import annotations

import secrets
from typing import Iterator, Optional, Tuple

from ..errors import ConnectionRefused
from ..http import Headers
from ..session import Reason, Session, Waiter
from .base import GuardedBody, HttpTransport, log, refuse, socket_abort, stream_payloads
from .polling import jsonp_literal, stop_watch, watch_hangup

__all__ = ["HtmlFile", "XhrMultipart"]


class _Streaming(HttpTransport):
    streaming = True
    content_type = ""
    extra_headers: Tuple[Tuple[str, str], ...] = ()

    def envelope(self) -> "_Envelope":  # pragma: no cover - abstract
        raise NotImplementedError

    def open(self, environ: dict, start_response, cors: Headers):
        try:
            session = self.start_session(environ)
        except ConnectionRefused as refused:
            return refuse(start_response, refused, cors)
        envelope = self.envelope()
        headers = [
            ("Content-Type", envelope.content_type),
            ("Cache-Control", "no-store"),
            ("Connection", "keep-alive"),
        ]
        headers.extend(cors)
        headers.extend(self.extra_headers)
        start_response("200 OK", headers)
        return GuardedBody(session, self._body(session, environ, envelope), socket_abort(environ))

    def _body(self, session: Session, environ: dict, envelope: "_Envelope") -> Iterator[bytes]:
        waiter = Waiter()
        session.attach(waiter)
        # A client that goes away is noticed at once, not at the next failed write.
        watcher = watch_hangup(environ, lambda: self.engine.close_later(session, Reason.CLIENT_CLOSED))
        try:
            first = envelope.wrap(self.id_frame(session))
            if first is None:  # pragma: no cover - an id never holds a 32-hex-digit boundary
                return
            yield envelope.prelude + first
            for payload in stream_payloads(session, waiter):
                chunk = envelope.wrap(payload)
                if chunk is None:
                    log.warning(
                        "session %s: a message holds the multipart boundary; closing the stream",
                        session.session_id,
                    )
                    break
                yield chunk
        finally:
            stop_watch(watcher)
            session.detach(waiter)
            self.engine.close(session, Reason.CLIENT_CLOSED)


class _Envelope:
    """How one stream wraps each payload."""

    __slots__ = ("content_type", "prelude")

    def __init__(self, content_type: str, prelude: bytes):
        self.content_type = content_type
        self.prelude = prelude

    def wrap(self, payload: bytes) -> Optional[bytes]:  # pragma: no cover - abstract
        raise NotImplementedError


class _ScriptEnvelope(_Envelope):
    __slots__ = ()

    def wrap(self, payload: bytes) -> bytes:
        literal = jsonp_literal(payload.decode("utf-8"))
        return f"<script>parent.s._({literal}, document);</script>".encode("ascii")


class _MultipartEnvelope(_Envelope):
    """Parts separated by a boundary drawn at random per stream: nobody who
    writes messages can know it, and a payload that holds it anyway is
    refused (``wrap`` returns None) rather than let it forge a part."""

    __slots__ = ("boundary",)

    def __init__(self) -> None:
        token = secrets.token_hex(16)
        self.boundary = f"--socketio-{token}\n".encode("ascii")
        super().__init__(f'multipart/x-mixed-replace;boundary="socketio-{token}"', self.boundary)

    def wrap(self, payload: bytes) -> Optional[bytes]:
        if self.boundary[:-1] in payload:
            return None
        return b"Content-Type: text/plain\n\n" + payload + b"\n" + self.boundary


class HtmlFile(_Streaming):
    name = "htmlfile"
    extra_headers = (("X-Content-Type-Options", "nosniff"),)
    #: IE runs scripts of a streamed document only after 256 bytes arrived.
    PRELUDE = b"<html><body>" + b" " * 244

    def envelope(self) -> _Envelope:
        return _ScriptEnvelope("text/html; charset=UTF-8", self.PRELUDE)


class XhrMultipart(_Streaming):
    name = "xhr-multipart"

    def envelope(self) -> _Envelope:
        return _MultipartEnvelope()
