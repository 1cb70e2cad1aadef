"""Small WSGI response helpers shared by the middleware and the transports."""

from __future__ import annotations

from typing import Callable, Iterable, List, Optional, Sequence, Tuple

__all__ = [
    "Headers",
    "respond",
    "text_response",
    "STATUS",
    "SOCKET_KEY",
    "FORWARDED_KEY",
    "HANGUP_KEY",
    "UNSENT_KEY",
    "FORWARDED_ANSWER_MAX",
]

#: The environ key under which our server's handler hands a request's client
#: socket to the transports (to shut it, and to bound writes in time).
SOCKET_KEY = "socketio_wsgi.socket"
#: Set on a request the owning process serves for another one
#: (:mod:`socketio_wsgi.forwarding`): it is never forwarded again.
FORWARDED_KEY = "socketio_wsgi.forwarded"
#: On such a request: an event set when the other process's client hangs up
#: (a held poll then takes nothing, as for a local hang-up).
HANGUP_KEY = "socketio_wsgi.hangup"
#: On such a request: callbacks that put back what a poll took, run when its
#: answer reached nobody (the other process died meanwhile).
UNSENT_KEY = "socketio_wsgi.unsent"
#: A poll served for another process takes at most this many bytes of the
#: queue (at least one message); the client's next poll takes the rest.  It
#: keeps every answer crossing Redis small next to its pub/sub buffer limits.
FORWARDED_ANSWER_MAX = 1024 * 1024

Headers = List[Tuple[str, str]]
StartResponse = Callable[..., object]

STATUS = {
    200: "200 OK",
    204: "204 No Content",
    304: "304 Not Modified",
    400: "400 Bad Request",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    413: "413 Payload Too Large",
    426: "426 Upgrade Required",
    429: "429 Too Many Requests",
    503: "503 Service Unavailable",
}
_NO_CACHE: Sequence[Tuple[str, str]] = (("Cache-Control", "no-store"),)


def respond(
    start_response: StartResponse,
    status: int,
    body: bytes,
    content_type: str,
    headers: Optional[Iterable[Tuple[str, str]]] = None,
) -> List[bytes]:
    """Start a complete response with Content-Length and return its body list."""
    out: Headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    out.extend(_NO_CACHE)
    if headers:
        out.extend(headers)
    start_response(STATUS[status], out)
    return [body]


def text_response(
    start_response: StartResponse, status: int, text: str, headers: Optional[Iterable[Tuple[str, str]]] = None
) -> List[bytes]:
    """A one-line ``text/plain`` answer (errors say what was wrong)."""
    return respond(start_response, status, text.encode("utf-8"), "text/plain; charset=UTF-8", headers)
