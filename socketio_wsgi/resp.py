"""The two Redis commands forwarding needs, spoken directly (RESP2).

Forwarding a request costs two PUBLISHes and two pub/sub messages read, and
through redis-py's client each of those cost about 100 µs of CPU here (its
pool, retries, push handling and per-command bookkeeping), several times the
work they are.  :class:`Reader` is a pure, incremental parser of Redis
replies; :class:`RespConnection` is one plain socket to Redis that sends
``PUBLISH`` and reads replies, or subscribes to one channel and reads its
messages.  Everything else (membership, scripts, broadcasts) stays with
redis-py.  Only plain TCP and unix sockets are spoken here; for TLS
(``rediss://``) the backend keeps using redis-py.
"""

from __future__ import annotations

import socket
from typing import Any, List, Optional, Tuple

__all__ = ["command", "Reader", "ReplyError", "RespConnection", "MAX_BULK"]

#: The largest bulk string accepted (a forwarded request or answer is far
#: smaller: bodies are bounded by the POST limit, answers by 1 MiB).
MAX_BULK = 64 * 1024 * 1024
_RECV = 65536


class ReplyError(Exception):
    """An error reply from Redis (``-ERR ...``)."""


class _Incomplete(Exception):
    pass


def command(*args: bytes) -> bytes:
    """One command as RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out.append(b"$%d\r\n" % len(arg))
        out.append(arg)
        out.append(b"\r\n")
    return b"".join(out)


class Reader:
    """Replies out of bytes fed in any pieces: ``int``, ``bytes`` (simple and
    bulk strings), ``None`` (null), ``list`` (arrays) or :class:`ReplyError`.
    Raises ValueError for bytes that are not RESP2 (the connection is then
    unusable)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def replies(self) -> List[Any]:
        """Every complete reply fed so far, in order (consumed)."""
        out: List[Any] = []
        buf = self._buf
        pos = 0
        while pos < len(buf):
            try:
                value, pos = self._parse(buf, pos)
            except _Incomplete:
                break
            out.append(value)
        if pos:
            del buf[:pos]
        return out

    def _parse(self, buf: bytearray, pos: int) -> Tuple[Any, int]:
        end = buf.find(b"\r\n", pos)
        if end < 0:
            if len(buf) - pos > 1024:
                raise ValueError("a RESP header line longer than 1 KiB")
            raise _Incomplete
        kind, line = buf[pos : pos + 1], bytes(buf[pos + 1 : end])
        pos = end + 2
        if kind == b"$":
            size = int(line)
            if size < 0:
                return None, pos
            if size > MAX_BULK:
                raise ValueError(f"a bulk string of {size} bytes")
            if len(buf) < pos + size + 2:
                raise _Incomplete
            return bytes(buf[pos : pos + size]), pos + size + 2
        if kind == b":":
            return int(line), pos
        if kind == b"+":
            return line, pos
        if kind == b"-":
            return ReplyError(line.decode("utf-8", "replace")), pos
        if kind == b"*":
            count = int(line)
            if count < 0:
                return None, pos
            items = []
            for _ in range(count):
                item, pos = self._parse(buf, pos)
                items.append(item)
            return items, pos
        raise ValueError(f"not a RESP2 reply: {bytes(kind)!r}")


class RespConnection:
    """One socket to Redis (blocking; cooperative under gevent's patching).

    ``address``: what :func:`redis.connection.parse_url` gives for the
    backend's URL (``host``/``port`` or ``path``, ``username``/``password``).
    Raises OSError for a failed connection or read, ReplyError for a refused
    AUTH or command, ValueError for bytes that are not RESP2."""

    def __init__(self, address: dict, timeout: Optional[float] = 5.0):
        self.address = address
        self.timeout = timeout
        self._sock: Optional[socket.socket] = None
        self._reader = Reader()
        self._ready: List[Any] = []

    def open(self) -> None:
        path = self.address.get("path")
        if path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            sock.connect(path)
        else:
            sock = socket.create_connection(
                (self.address.get("host", "localhost"), int(self.address.get("port", 6379))), self.timeout
            )
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        password = self.address.get("password")
        if password:
            username = self.address.get("username")
            args = [b"AUTH"] + ([username.encode()] if username else []) + [password.encode()]
            self.call(*args)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def call(self, *args: bytes) -> Any:
        """Send one command and return its reply (raises its ReplyError)."""
        self.send(*args)
        reply = self.read()
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    def send(self, *args: bytes) -> None:
        if self._sock is None:
            self.open()
        assert self._sock is not None
        self._sock.sendall(command(*args))

    def read(self, timeout: Optional[float] = -1.0) -> Any:
        """The next reply; ``timeout`` (seconds, None: forever) overrides the
        connection's for this read.  Raises OSError (``socket.timeout``
        included) and ValueError."""
        ready = self._ready
        sock = self._sock
        if sock is None:
            raise OSError("not connected")
        if timeout != -1.0:
            sock.settimeout(timeout)
        try:
            while not ready:
                data = sock.recv(_RECV)
                if not data:
                    raise OSError("Redis closed the connection")
                self._reader.feed(data)
                ready.extend(self._reader.replies())
        finally:
            if timeout != -1.0:
                sock.settimeout(self.timeout)
        return ready.pop(0)
