"""A blocking Socket.IO 0.6 client for tests, benchmarks and scripts.

It uses only the standard library's ``socket`` module for I/O, so it runs in a
plain OS thread and, under gevent monkey-patching, cooperatively in a greenlet.
Transports: ``websocket`` (RFC 6455), ``xhr-polling`` and ``jsonp-polling``.

Every wait is bounded: ``receive`` and ``connect`` take deadlines, and each
socket operation gets the time that is left.  A ``Client`` is meant to be used
by one thread (or greenlet) at a time; only frame writes are serialised.

Polling note: a long-poll GET that is still outstanding when ``receive`` times
out is *kept* (its socket and the bytes read so far) and the next ``receive``
goes on waiting for it.  Abandoning it would lose any message the server writes
into it after the client gave up, because the server cannot tell.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import threading
import time
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote, urlsplit

from .errors import ConnectionClosed, MessageTooLarge
from .protocol import Heartbeat, ProtocolError, decode_frames, encode, encode_frame, parse_message
from .wsframes import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameError,
    MessageReader,
    build_frame,
    close_payload,
)

__all__ = ["Client", "ConnectionClosedError", "TRANSPORTS"]

TRANSPORTS = ("websocket", "flashsocket", "xhr-polling", "jsonp-polling")
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_HEAD = 64 * 1024
_RECV_SIZE = 256 * 1024
_MIN_WAIT = 0.001
_CLOSE_WAIT = 2.0


#: The name this module has always used for :class:`~socketio_wsgi.errors.ConnectionClosed`
#: (the same class: the server closed the connection, refused it, or answered
#: something other than 200/101).
ConnectionClosedError = ConnectionClosed


# --------------------------------------------------------------------------
# HTTP/1.1 response parsing over a growing buffer (resumable after timeouts)
# --------------------------------------------------------------------------


def _parse_head(buf: bytearray) -> Optional[Tuple[int, str, Dict[str, str], int]]:
    """``(status, reason, headers, body_start)`` once the head is complete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > _MAX_HEAD:
            raise ProtocolError("HTTP response head is too large")
        return None
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ProtocolError(f"bad HTTP status line {lines[0]!r}")
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"bad HTTP header line {line!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers, end + 4


def _truncated() -> ConnectionClosedError:
    return ConnectionClosedError("the server closed the connection in the middle of a response")


def _parse_body(
    buf: bytearray, start: int, status: int, headers: Dict[str, str], eof: bool, limit: int
) -> Optional[bytes]:
    """The body once complete (``None`` while more bytes are needed)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        pos, total = start, 0
        parts: List[bytes] = []
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                if eof:
                    raise _truncated()
                return None
            size_text = bytes(buf[pos:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size {size_text!r}") from None
            if size == 0:
                pos = line_end + 2
                while True:  # optional trailers, then an empty line
                    trailer_end = buf.find(b"\r\n", pos)
                    if trailer_end < 0:
                        if eof:
                            raise _truncated()
                        return None
                    if trailer_end == pos:
                        return b"".join(parts)
                    pos = trailer_end + 2
            total += size
            if total > limit:
                raise ProtocolError(f"response body exceeds {limit} bytes")
            data_start = line_end + 2
            if len(buf) < data_start + size + 2:
                if eof:
                    raise _truncated()
                return None
            if buf[data_start + size : data_start + size + 2] != b"\r\n":
                raise ProtocolError("chunk is not followed by CRLF")
            parts.append(bytes(buf[data_start : data_start + size]))
            pos = data_start + size + 2
    if 100 <= status < 200 or status in (204, 304):
        return b""
    if "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise ProtocolError(f"bad Content-Length {headers['content-length']!r}") from None
        if length < 0 or length > limit:
            raise ProtocolError(f"response body of {length} bytes exceeds {limit}")
        if len(buf) - start >= length:
            return bytes(buf[start : start + length])
        if eof:
            raise _truncated()
        return None
    if len(buf) - start > limit:
        raise ProtocolError(f"response body exceeds {limit} bytes")
    return bytes(buf[start:]) if eof else None


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError("payload holds a lone surrogate; it cannot be sent as UTF-8") from None


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    return max(left, _MIN_WAIT)


class _Exchange:
    """One HTTP request on its own connection, whose response can be awaited in
    several bounded steps (a client-side timeout does not lose it)."""

    def __init__(self, sock: socket.socket, limit: int):
        self.sock = sock
        self.limit = limit
        self.buf = bytearray()
        self.eof = False

    def _parse(self) -> Optional[Tuple[int, Dict[str, str], bytes]]:
        while True:
            if not self.buf and self.eof:
                raise ConnectionClosedError("the server closed the connection without a response")
            head = _parse_head(self.buf)
            if head is None:
                if self.eof:
                    raise _truncated()
                return None
            status, _reason, headers, start = head
            if 100 <= status < 200:  # an interim answer: drop it and read on
                del self.buf[:start]
                continue
            body = _parse_body(self.buf, start, status, headers, self.eof, self.limit)
            if body is None:
                return None
            return status, headers, body

    def wait(self, deadline: float) -> Tuple[int, Dict[str, str], bytes]:
        try:
            while True:
                result = self._parse()
                if result is not None:
                    self.close()
                    return result
                self.sock.settimeout(_remaining(deadline))
                try:
                    data = self.sock.recv(_RECV_SIZE)
                except socket.timeout:
                    raise TimeoutError("timed out waiting for the HTTP response") from None
                except OSError as exc:
                    raise ConnectionClosedError(f"connection error: {exc}") from exc
                if data:
                    self.buf += data
                else:
                    self.eof = True
        except (ConnectionClosedError, ProtocolError):
            self.close()
            raise

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------
# A websocket byte stream with commit/rollback, so a timeout mid-frame is safe
# --------------------------------------------------------------------------


class _WSStream:
    def __init__(self, sock: socket.socket, leftover: bytes):
        self.sock = sock
        self.buf = bytearray(leftover)
        self.pos = 0
        self.eof = False
        self.deadline = 0.0

    def read(self, n: int) -> bytes:
        if self.pos >= len(self.buf) and not self.eof:
            self.sock.settimeout(_remaining(self.deadline))
            try:
                data = self.sock.recv(_RECV_SIZE)
            except socket.timeout:
                raise TimeoutError("timed out") from None
            if data:
                self.buf += data
            else:
                self.eof = True
        chunk = bytes(self.buf[self.pos : self.pos + n])
        self.pos += len(chunk)
        return chunk

    def commit(self) -> int:
        consumed = self.pos
        del self.buf[:consumed]
        self.pos = 0
        return consumed

    def rollback(self) -> None:
        self.pos = 0


# --------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------


class Client:
    """A Socket.IO 0.6 client over one transport.

    ``url`` is the server's base URL, e.g. ``"http://127.0.0.1:8000"`` (``https``,
    ``ws`` and ``wss`` work too; a path in it is used as a prefix).
    ``origin`` is sent as the ``Origin`` header; the default is the url's own
    ``scheme://host:port``, and ``""`` sends none.  ``headers`` are added to
    every request (they override the defaults of the same name).
    ``timeout`` bounds ``connect``, ``send`` and, by default, ``receive``.

    Decoded heartbeats are echoed when ``auto_heartbeat`` is true and are
    never returned by ``receive``; their counters are kept in ``heartbeats``.
    """

    session_id: Optional[str]
    connected: bool

    def __init__(
        self,
        url: str,
        transport: str = "websocket",
        resource: str = "socket.io",
        origin: Optional[str] = None,
        headers: Optional[dict] = None,
        timeout: float = 10.0,
        auto_heartbeat: bool = True,
        max_message_size: int = 16 * 1024 * 1024,
    ):
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}; expected one of {TRANSPORTS}")
        parts = urlsplit(url)
        scheme = (parts.scheme or "http").lower()
        if scheme not in ("http", "https", "ws", "wss"):
            raise ValueError(f"unsupported URL scheme {scheme!r}")
        self.secure = scheme in ("https", "wss")
        if not parts.hostname:
            raise ValueError(f"no host in {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if self.secure else 80)
        host_text = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = f"{host_text}:{self.port}"
        self.transport = transport
        self.resource = resource.strip("/")
        self.prefix = f"{parts.path.rstrip('/')}/{self.resource}/{transport}"
        if origin is None:
            origin = f"{'https' if self.secure else 'http'}://{self.host_header}"
        self.origin = origin
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.auto_heartbeat = auto_heartbeat
        self.max_message_size = max_message_size
        self.jsonp_index = 0

        self.session_id = None
        self.connected = False
        self.heartbeats: List[str] = []
        self._inbox: List[Any] = []
        self._closed: Optional[ConnectionClosedError] = None
        self._write_lock = threading.Lock()
        self._last_ts = 0
        # websocket state
        self._sock: Optional[socket.socket] = None
        self._stream: Optional[_WSStream] = None
        self._reader: Optional[MessageReader] = None
        self._control_mark = 0
        # polling state
        self._poll: Optional[_Exchange] = None
        self._ts0 = 0

    # ---------------------------------------------------------------- public

    @property
    def is_websocket(self) -> bool:
        return self.transport in ("websocket", "flashsocket")

    def connect(self) -> str:
        """Handshake and wait for the session id (the first frame), which is
        returned; messages that arrive with it are kept for :meth:`receive`."""
        if self.session_id is not None or self._sock is not None:
            raise RuntimeError("connect() was already called")
        deadline = time.monotonic() + self.timeout
        try:
            if self.is_websocket:
                self._ws_open(deadline)
                while self.session_id is None:
                    try:
                        self._ws_read(deadline)
                    except TimeoutError:
                        raise TimeoutError("timed out waiting for the session id") from None
            else:
                self._ts0 = self._timestamp()
                path = f"{self.prefix}//{self._ts0}"
                if self.transport == "jsonp-polling":
                    path += f"/{self.jsonp_index}"
                self._handle_payload(self._poll_once(path, deadline))
                if self.session_id is None:
                    raise ProtocolError("the first poll answer holds no session id")
        except BaseException:
            self._abort()
            raise
        self.connected = True
        return self.session_id

    def send(self, value: Any) -> None:
        """Send ``value`` as ``protocol.encode`` frames it (one payload)."""
        self.send_payload(encode(value))

    def send_payload(self, payload: str) -> None:
        """Send raw payload text, e.g. ``"~m~5~m~hello"``: one websocket text
        frame, or one POST whose ``data`` field is the payload."""
        self._check_open()
        deadline = time.monotonic() + self.timeout
        if self.is_websocket:
            self._ws_write(OP_TEXT, _utf8(payload), deadline)
            return
        path = f"{self.prefix}/{self.session_id}/send"
        if self.transport == "jsonp-polling":
            path = f"{self.prefix}/{self.session_id}/{self._ts0}/{self.jsonp_index}"
        body = "data=" + quote(_utf8(payload), safe="~!*()'")
        exchange = self._http(
            "POST",
            path,
            body.encode("ascii"),
            deadline,
            {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            limit=_MAX_HEAD,
        )
        try:
            status, _headers, answer = exchange.wait(deadline)
        finally:
            exchange.close()
        if status != 200:
            raise ConnectionClosedError(answer.decode("utf-8", "replace"), status=status)

    def send_frame(self, opcode: int, data: bytes) -> None:
        """websocket only: send one raw (masked, final) frame, for tests that
        need binary frames, invalid UTF-8 or odd control frames."""
        if not self.is_websocket:
            raise RuntimeError("send_frame() needs the websocket transport")
        self._check_open()
        self._ws_write(opcode, data, time.monotonic() + self.timeout)

    def receive(self, timeout: Optional[float] = None) -> Any:
        """The next application message: ``str`` for text, the parsed value
        for ``~j~`` JSON.  Waits at most ``timeout`` seconds (default: the
        client's ``timeout``) and then raises ``TimeoutError``.  Raises
        :class:`ConnectionClosedError` once the server closed the connection
        and every message received before that has been returned;
        :class:`ProtocolError` (or ``wsframes.FrameError``) if the server sent
        malformed data."""
        if self.session_id is None:
            raise RuntimeError("connect() first")
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self._inbox:
            if self._closed is not None:
                raise self._closed
            self._pump(deadline)
        return self._inbox.pop(0)

    def receive_many(self, n: int, timeout: Optional[float] = None) -> List[Any]:
        """``n`` messages, all within ``timeout``; on a timeout or close the
        messages already taken are put back and the exception propagates."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        out: List[Any] = []
        try:
            while len(out) < n:
                out.append(self.receive(max(0.0, deadline - time.monotonic())))
        except BaseException:
            self._inbox[:0] = out
            raise
        return out

    def disconnect(self) -> None:
        """websocket: send a close frame (1000), wait briefly for the answer and
        close the socket.  Polling: drop any outstanding GET; the server notices
        through its close timeout (Socket.IO 0.6 has no leave message)."""
        was_closed = self._closed is not None
        self.connected = False
        if self._closed is None:
            self._closed = ConnectionClosedError("disconnected by the client")
        if self._poll is not None:
            self._poll.close()
            self._poll = None
        sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            if not was_closed:
                deadline = time.monotonic() + min(self.timeout, _CLOSE_WAIT)
                try:
                    self._raw_write(sock, build_frame(OP_CLOSE, close_payload(1000), masked=True), deadline)
                    stream, reader = self._ws_parts()
                    stream.deadline = deadline
                    while True:  # read until the server's close frame or EOF
                        reader.read_message()
                        stream.commit()
                except (ConnectionClosed, FrameError, MessageTooLarge, TimeoutError, OSError):
                    pass
        finally:
            try:
                sock.close()
            except OSError:
                pass

    close = disconnect

    def __enter__(self) -> "Client":
        if self.session_id is None:
            self.connect()
        return self

    def __exit__(self, *exc_info) -> None:
        self.disconnect()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closed" if self._closed else "new"
        return f"<Client {self.transport} {self.host_header} sid={self.session_id} {state}>"

    # ------------------------------------------------------------ messages

    def _handle_payload(self, text: str) -> None:
        frames = decode_frames(text)
        if self.session_id is None and frames:
            sid = frames.pop(0)
            if not sid:
                raise ProtocolError("the server sent an empty session id")
            self.session_id = sid
        for data in frames:
            value = parse_message(data)
            if isinstance(value, Heartbeat):
                self.heartbeats.append(str(value))
                if self.auto_heartbeat and self._closed is None:
                    self.send_payload(encode_frame(value.wire))
            else:
                self._inbox.append(value)

    def _pump(self, deadline: float) -> None:
        """Read one transport unit (a websocket message or a poll answer)."""
        if self.is_websocket:
            self._ws_read(deadline)
        else:
            self._poll_read(deadline)

    def _check_open(self) -> None:
        if self.session_id is None:
            raise RuntimeError("connect() first")
        if self._closed is not None:
            raise self._closed

    def _abort(self) -> None:
        for closer in (self._sock, self._poll):
            if closer is not None:
                try:
                    closer.close()
                except OSError:
                    pass
        self._sock = self._poll = None

    def _set_closed(self, error: ConnectionClosedError) -> ConnectionClosedError:
        if self._closed is None:
            self._closed = error
        self.connected = False
        self._abort()
        return self._closed

    # ------------------------------------------------------------ sockets

    def _open_socket(self, deadline: float) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=_remaining(deadline))
        except socket.timeout:
            raise TimeoutError(f"timed out connecting to {self.host_header}") from None
        except OSError as exc:
            raise ConnectionClosedError(f"cannot connect to {self.host_header}: {exc}") from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        if self.secure:
            import ssl

            try:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
            except OSError:
                sock.close()
                raise
        return sock

    def _raw_write(self, sock: socket.socket, data: bytes, deadline: float) -> None:
        with self._write_lock:
            sock.settimeout(_remaining(deadline))
            try:
                sock.sendall(data)
            except socket.timeout:
                raise TimeoutError("timed out sending") from None

    def _request_bytes(self, method: str, path: str, extra: Dict[str, str], body: bytes = b"") -> bytes:
        headers: Dict[str, str] = {"Host": self.host_header}
        if self.origin:
            headers["Origin"] = self.origin
        headers.update(extra)
        lower = {k.lower(): k for k in headers}
        for name, value in self.headers.items():
            headers.pop(lower.get(name.lower()) or name, None)
            headers[name] = value
        lines = [f"{method} {path} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def _timestamp(self) -> int:
        self._last_ts = max(self._last_ts + 1, int(time.time() * 1000))
        return self._last_ts

    # ------------------------------------------------------------ polling

    def _http(
        self,
        method: str,
        path: str,
        body: bytes,
        deadline: float,
        extra: Optional[Dict[str, str]] = None,
        limit: Optional[int] = None,
    ) -> _Exchange:
        headers = {"Accept": "*/*", "Connection": "close"}
        if method == "POST":
            headers["Content-Length"] = str(len(body))
        headers.update(extra or {})
        sock = self._open_socket(deadline)
        if limit is None:
            limit = self.max_message_size * 4  # UTF-8 bytes of UTF-16 units
            if self.transport == "jsonp-polling":
                limit = self.max_message_size * 6 + 256  # \uXXXX escapes
        exchange = _Exchange(sock, limit)
        try:
            self._raw_write(sock, self._request_bytes(method, path, headers, body), deadline)
        except TimeoutError:
            exchange.close()
            raise
        except OSError as exc:
            exchange.close()
            raise ConnectionClosedError(f"connection error: {exc}") from exc
        return exchange

    def _poll_once(self, path: str, deadline: float) -> str:
        exchange = self._http("GET", path, b"", deadline)
        try:
            return self._poll_body(*exchange.wait(deadline))
        except TimeoutError:
            exchange.close()
            raise

    def _poll_read(self, deadline: float) -> None:
        if self._poll is None:
            path = f"{self.prefix}/{self.session_id}/{self._timestamp()}"
            if self.transport == "jsonp-polling":
                path += f"/{self.jsonp_index}"
            try:
                self._poll = self._http("GET", path, b"", deadline)
            except ConnectionClosedError as exc:
                raise self._set_closed(exc) from None
        try:
            status, headers, body = self._poll.wait(deadline)
        except ConnectionClosedError as exc:
            raise self._set_closed(exc) from None
        except ProtocolError:
            self._set_closed(ConnectionClosedError("the server sent a malformed response"))
            raise
        self._poll = None  # complete: the next call starts a fresh GET
        try:
            text = self._poll_body(status, headers, body)
        except ConnectionClosedError as exc:
            raise self._set_closed(exc) from None
        self._handle_payload(text)

    def _poll_body(self, status: int, headers: Dict[str, str], body: bytes) -> str:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("the response body is not valid UTF-8") from None
        if status != 200:
            raise ConnectionClosedError(text, status=status)
        if self.transport != "jsonp-polling":
            return text
        head = f"io.JSONP[{self.jsonp_index}]._("
        stripped = text.strip()
        if not (stripped.startswith(head) and stripped.endswith(");")):
            if stripped.startswith("alert("):  # the reference's origin refusal
                raise ConnectionClosedError(stripped, status=status)
            raise ProtocolError(f"not a JSONP answer for index {self.jsonp_index}: {stripped[:80]!r}")
        try:
            payload = json.loads(stripped[len(head) : -2])
        except ValueError as exc:
            raise ProtocolError(f"bad JSONP string literal: {exc}") from None
        if not isinstance(payload, str):
            raise ProtocolError("the JSONP callback argument is not a string")
        return payload

    # ------------------------------------------------------------ websocket

    def _ws_open(self, deadline: float) -> None:
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        request = self._request_bytes(
            "GET",
            self.prefix,
            {
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": key,
                "Sec-WebSocket-Version": "13",
            },
        )
        sock = self._open_socket(deadline)
        self._sock = sock
        try:
            self._raw_write(sock, request, deadline)
            exchange = _Exchange(sock, self.max_message_size)
            while True:
                head = _parse_head(exchange.buf)
                if head is not None and not (100 <= head[0] < 200 and head[0] != 101):
                    break
                if head is not None:  # interim 1xx: drop it
                    del exchange.buf[: head[3]]
                    continue
                if exchange.eof:
                    if not exchange.buf:
                        raise ConnectionClosedError("the server closed the connection without a response")
                    raise _truncated()
                sock.settimeout(_remaining(deadline))
                try:
                    data = sock.recv(_RECV_SIZE)
                except socket.timeout:
                    raise TimeoutError("timed out waiting for the websocket handshake") from None
                except OSError as exc:
                    raise ConnectionClosedError(f"connection error: {exc}") from exc
                if data:
                    exchange.buf += data
                else:
                    exchange.eof = True
            status, _reason, headers, start = head
            if status != 101:
                try:
                    status, _headers, body = exchange.wait(deadline)
                except (ConnectionClosedError, ProtocolError, TimeoutError):
                    body = bytes(exchange.buf[start:])
                raise ConnectionClosedError(body.decode("utf-8", "replace"), status=status)
            expected = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode("ascii")).digest()).decode(
                "ascii"
            )
            if headers.get("sec-websocket-accept") != expected:
                raise ProtocolError("wrong or missing Sec-WebSocket-Accept in the 101 answer")
            if "websocket" not in headers.get("upgrade", "").lower():
                raise ProtocolError("the 101 answer does not upgrade to websocket")
        except BaseException:
            self._sock = None
            try:
                sock.close()
            except OSError:
                pass
            raise
        self._stream = _WSStream(sock, bytes(exchange.buf[start:]))
        self._reader = MessageReader(
            self._stream.read, self.max_message_size, expect_masked=False, on_control=self._on_control
        )

    def _on_control(self, opcode: int, payload: bytes) -> None:
        # After a rollback the same bytes are parsed again: answer each ping once.
        stream, _ = self._ws_parts()
        if stream.pos <= self._control_mark:
            return
        self._control_mark = stream.pos
        if opcode == OP_PING and self._sock is not None:
            try:
                self._raw_write(
                    self._sock, build_frame(OP_PONG, payload, masked=True), time.monotonic() + self.timeout
                )
            except (OSError, TimeoutError):
                pass  # the read side will notice a dead connection

    def _ws_parts(self) -> Tuple["_WSStream", MessageReader]:
        """The open websocket's buffered stream and frame reader."""
        stream, reader = self._stream, self._reader
        if stream is None or reader is None:
            raise self._closed or ConnectionClosedError("not connected")
        return stream, reader

    def _ws_write(self, opcode: int, data: bytes, deadline: float) -> None:
        if self._sock is None:
            raise self._closed or ConnectionClosedError("not connected")
        try:
            self._raw_write(self._sock, build_frame(opcode, data, masked=True), deadline)
        except OSError as exc:
            if isinstance(exc, TimeoutError):
                raise
            raise self._set_closed(ConnectionClosedError(f"connection error: {exc}")) from exc

    def _ws_read(self, deadline: float) -> None:
        if self._sock is None:
            raise self._closed or ConnectionClosedError("not connected")
        stream, reader = self._ws_parts()
        stream.deadline = deadline
        try:
            opcode, data = reader.read_message()
        except TimeoutError:
            stream.rollback()
            raise
        except ConnectionClosed as exc:
            if exc.code != 1006:  # a real close frame: answer it
                self._close_quietly(exc.code if exc.code not in (None, 1005, 1015) else 1000)
            raise self._set_closed(ConnectionClosedError(exc.reason, code=exc.code)) from None
        except (FrameError, MessageTooLarge) as exc:
            self._close_quietly(exc.close_code)
            self._set_closed(ConnectionClosedError(f"protocol error: {exc}", code=exc.close_code))
            raise
        except OSError as exc:
            raise self._set_closed(ConnectionClosedError(f"connection error: {exc}", code=1006)) from exc
        self._control_mark = max(0, self._control_mark - stream.commit())
        if opcode == OP_BINARY:
            raise ProtocolError("binary frames are not part of Socket.IO 0.6")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("text frame is not valid UTF-8") from None
        self._handle_payload(text)

    def _close_quietly(self, code: int) -> None:
        if self._sock is None:
            return
        try:
            self._raw_write(
                self._sock,
                build_frame(OP_CLOSE, close_payload(code), masked=True),
                time.monotonic() + min(self.timeout, _CLOSE_WAIT),
            )
        except (OSError, TimeoutError):
            pass
