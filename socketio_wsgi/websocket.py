"""Websockets for plain WSGI apps: ``accept(environ, start_response)``.

.. code-block:: python

    from socketio_wsgi.websocket import accept

    def app(environ, start_response):
        ws = accept(environ, start_response)   # None after answering 400/426 itself
        if ws is None:
            return []
        for message in ws:                     # str for text, bytes for binary
            ws.send(message)
        return []

Served by :func:`socketio_wsgi.serve`, ``python -m socketio_wsgi`` and the
gunicorn worker (their handler hands the socket over); the layer itself is
:mod:`socketio_wsgi.ws` (a pure protocol object and its gevent driver).
"""

from __future__ import annotations

import logging
from typing import Callable, Optional, Sequence, Union

import gevent

from .http import SOCKET_KEY
from .ws.connection import Connection, ConnectionClosed, PreparedMessage
from .ws.deflate import Compression, negotiate
from .ws.handshake import HandshakeError, check_request, is_upgrade_request, response_headers
from .ws.protocol import Protocol, State

__all__ = [
    "accept",
    "Connection",
    "ConnectionClosed",
    "PreparedMessage",
    "Compression",
    "State",
    "is_upgrade_request",
    "RFILE_KEY",
    "CONNECTION_KEY",
    "PARK_KEY",
    "DEFAULT_MAX_SIZE",
]

log = logging.getLogger("socketio_wsgi.websocket")

#: environ key of the request's buffered reader (set by our server's handler:
#: bytes a client sent right after its handshake may already be in it).
RFILE_KEY = "socketio_wsgi.rfile"
#: environ key under which :func:`accept` leaves the connection, so that the
#: handler closes it if the app returns without doing so.
CONNECTION_KEY = "socketio_wsgi.websocket"
#: Our server's handler offers, under this key, a callable that lets go of the
#: request's socket for good and returns its descriptor: a connection then
#: reads through an event-loop watcher and the request's greenlet, reader
#: and environ references end (see :meth:`Connection.serve`).
PARK_KEY = "socketio_wsgi.park"
DEFAULT_MAX_SIZE = 1024 * 1024


def refuse(environ: dict, start_response: Callable, error: HandshakeError) -> None:
    """Answer a bad handshake with its 400/426 and log one line."""
    log.warning(
        "refused a websocket handshake from %s for %s: %d %s",
        environ.get("REMOTE_ADDR", "?"),
        environ.get("PATH_INFO", "")[:200],
        error.status,
        error.reason,
    )
    body = error.reason.encode("utf-8")
    status = "426 Upgrade Required" if error.status == 426 else "400 Bad Request"
    write = start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=UTF-8"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ]
        + error.headers,
    )
    write(body)


def accept(
    environ: dict,
    start_response: Callable,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    compression: Union[bool, Compression, None] = True,
    write_timeout: float = 10.0,
    close_timeout: float = 5.0,
    write_limit: int = 64 * 1024,
    subprotocols: Sequence[str] = (),
) -> Optional[Connection]:
    """Upgrade this request to a websocket and return the open connection.

    Returns None after answering a request that is not a valid handshake
    itself (400, or 426 with ``Sec-WebSocket-Version: 13``; one log line).

    ``max_size``: largest message accepted in bytes (after inflation; a larger
    one closes with 1009).  ``compression``: True for permessage-deflate with
    the default :class:`Compression`, a :class:`Compression` to tune it, or
    False/None.  ``write_timeout``: seconds within which each queued frame
    must be written, else the connection is dropped.  ``close_timeout``:
    seconds to wait for the peer's close frame.  ``write_limit``: bytes
    buffered before ``send`` waits (and before pongs are coalesced).
    ``subprotocols``: ones we speak, in order of preference.

    Raises RuntimeError if the server did not hand over its socket (only our
    server, ``python -m socketio_wsgi`` and our gunicorn worker do).
    """
    upgraded = environ.get("wsgi.websocket")
    if upgraded is not None:
        return _adopt(
            environ,
            upgraded,
            max_size=max_size,
            write_timeout=write_timeout,
            close_timeout=close_timeout,
            write_limit=write_limit,
        )
    try:
        key = check_request(environ)
    except HandshakeError as error:
        refuse(environ, start_response, error)
        return None
    sock = environ.get(SOCKET_KEY)
    rfile = environ.get(RFILE_KEY)
    if sock is None or rfile is None:
        raise RuntimeError(
            "websocket upgrades need socketio_wsgi's server (serve(), "
            "python -m socketio_wsgi or socketio_wsgi.workers.GeventSocketIOWorker)"
        )
    deflate = None
    extensions = None
    if compression:
        options = compression if isinstance(compression, Compression) else Compression()
        offer = environ.get("HTTP_SEC_WEBSOCKET_EXTENSIONS")
        if offer:
            agreed = negotiate(offer, options)
            if agreed is not None:
                extensions, deflate = agreed
    headers = response_headers(key, extensions)
    chosen = None
    if subprotocols:
        offered = [p.strip() for p in environ.get("HTTP_SEC_WEBSOCKET_PROTOCOL", "").split(",")]
        chosen = next((p for p in subprotocols if p in offered), None)
        if chosen is not None:
            headers.append(("Sec-WebSocket-Protocol", chosen))
    write = start_response("101 Switching Protocols", headers)
    timer = gevent.Timeout(write_timeout)
    timer.start()
    try:
        write(b"")  # the server sends the 101 head now; nothing follows it
    except (gevent.Timeout, OSError) as exc:
        if isinstance(exc, gevent.Timeout) and exc is not timer:
            raise
        log.info(
            "websocket %s: the 101 answer could not be written: %s", environ.get("REMOTE_ADDR", "?"), exc
        )
        try:
            sock.shutdown(2)
        except OSError:
            pass
        return None
    finally:
        timer.close()
    proto = Protocol(max_size=max_size, deflate=deflate, state=State.OPEN)
    conn = Connection(
        sock,
        rfile,
        proto,
        write_timeout=write_timeout,
        close_timeout=close_timeout,
        write_limit=write_limit,
        peer=str(environ.get("REMOTE_ADDR", "?")),
        subprotocol=chosen,
    )
    environ[CONNECTION_KEY] = conn
    return conn


def _adopt(
    environ: dict,
    upgraded: object,
    *,
    max_size: int,
    write_timeout: float,
    close_timeout: float,
    write_limit: int,
) -> Connection:
    """A connection that gevent-websocket's own handler (its stock gunicorn
    worker) has already upgraded: take over its socket and reader, which that
    handler exposes as public attributes.  It negotiated no extension, so
    there is no compression.  Once we have shut the socket, its own close
    attempt after the app returns fails quietly."""
    handler = getattr(upgraded, "handler", None)
    sock = getattr(handler, "socket", None)
    rfile = getattr(handler, "rfile", None)
    if sock is None or rfile is None:
        raise RuntimeError("cannot take over this server's websocket: no socket")
    proto = Protocol(max_size=max_size, state=State.OPEN)
    conn = Connection(
        sock,
        rfile,
        proto,
        write_timeout=write_timeout,
        close_timeout=close_timeout,
        write_limit=write_limit,
        peer=str(environ.get("REMOTE_ADDR", "?")),
    )
    environ[CONNECTION_KEY] = conn
    return conn
