"""A raw websocket test client over a blocking socket, using our pure
protocol object (client side) to parse what the server sends.  Used by
tests/test_websocket_*.py; every wait is bounded."""
from __future__ import annotations

import base64
import os
import socket
import time
from typing import Dict, List, Optional, Tuple

from socketio_wsgi.ws.deflate import Deflate
from socketio_wsgi.ws.protocol import Close, Protocol, State
from socketio_wsgi.wsframes import build_frame

MASK = b"\x0f\xf0\x55\xaa"


def masked_frame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0) -> bytes:
    """A client frame built by hand (valid or not), with a fixed mask."""
    n = len(payload)
    first = (0x80 if fin else 0) | rsv | opcode
    if n < 126:
        head = bytes([first, 0x80 | n])
    elif n < 65536:
        head = bytes([first, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([first, 0x80 | 127]) + n.to_bytes(8, "big")
    key = int.from_bytes(MASK * (n // 4 + 1), "little") & ((1 << (8 * n)) - 1) if n else 0
    body = (int.from_bytes(payload, "little") ^ key).to_bytes(n, "little") if n else b""
    return head + MASK + body


def http_exchange(port: int, request: bytes, timeout: float = 5.0) -> Tuple[int, Dict[str, str], bytes]:
    """Send a raw request; return (status, headers, body so far) of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                status, headers = parse_head(head)
                length = int(headers.get("content-length", "-1"))
                if status == 101 or 0 <= length <= len(body):
                    return status, headers, body
    head, _, body = data.partition(b"\r\n\r\n")
    status, headers = parse_head(head)
    return status, headers, body


def parse_head(head: bytes) -> Tuple[int, Dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


def handshake(path: str = "/echo", extra: Optional[Dict[str, str]] = None, host: str = "127.0.0.1",
              key: Optional[str] = None) -> bytes:
    headers = {"Host": host, "Upgrade": "websocket", "Connection": "Upgrade",
               "Sec-WebSocket-Key": key or base64.b64encode(os.urandom(16)).decode(),
               "Sec-WebSocket-Version": "13"}
    headers.update(extra or {})
    lines = [f"GET {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items() if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class WSClient:
    """One websocket connection to the test server."""

    def __init__(self, port: int, path: str = "/echo", timeout: float = 5.0,
                 extensions: Optional[str] = None, rcvbuf: Optional[int] = None,
                 max_size: int = 64 << 20):
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        extra = {"Sec-WebSocket-Extensions": extensions} if extensions else None
        self.sock.sendall(handshake(path, extra))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"no handshake answer: {data!r}")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        self.status, self.headers = parse_head(head)
        if self.status != 101:
            raise ConnectionError(f"handshake answered {self.status}")
        deflate = None
        agreed = self.headers.get("sec-websocket-extensions", "")
        if "permessage-deflate" in agreed:
            deflate = Deflate(local_no_takeover="client_no_context_takeover" in agreed,
                              remote_no_takeover="server_no_context_takeover" in agreed,
                              threshold=0)
        self.protocol = Protocol(client=True, max_size=max_size, deflate=deflate)
        self.events: List[object] = []
        self.eof = False
        if rest:
            self._feed(rest)

    def _feed(self, data: bytes) -> None:
        proto = self.protocol
        proto.receive_data(data)
        self.events += proto.events_received()
        while proto.input_pending:
            proto.receive_data(b"")
            self.events += proto.events_received()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, message) -> None:
        if isinstance(message, str):
            self.protocol.send_text(message)
        else:
            self.protocol.send_binary(message)
        self.sock.sendall(self.protocol.data_to_send())

    def pump(self, timeout: Optional[float] = None) -> bool:
        """Read once; False on EOF or connection reset."""
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            data = self.sock.recv(262144)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            self.protocol.receive_eof()
            return False
        self._feed(data)
        return True

    def receive(self, timeout: Optional[float] = None):
        """The next data message (raises TimeoutError, ConnectionError on close)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            for i, event in enumerate(self.events):
                if isinstance(event, (str, bytes)):
                    del self.events[i]
                    return event
            if self.eof or self.protocol.state is State.CLOSED:
                raise ConnectionError(f"closed: {self.close_frame()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no message")
            try:
                self.pump(remaining)
            except socket.timeout:
                raise TimeoutError("no message") from None

    def echo(self, message, timeout: Optional[float] = None):
        self.send(message)
        return self.receive(timeout)

    def close_frame(self) -> Optional[Close]:
        return next((e for e in self.events if isinstance(e, Close)), None)

    def wait_closed(self, timeout: float = 5.0) -> Tuple[Optional[Close], bool]:
        """Read until the server's close frame and EOF: (its close, saw EOF)."""
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline:
            try:
                self.pump(max(0.01, deadline - time.monotonic()))
            except socket.timeout:
                break
        return self.close_frame(), self.eof

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def client_frame(opcode: int, payload: bytes = b"", **kw) -> bytes:
    """A valid masked client frame (random mask)."""
    return build_frame(opcode, payload, masked=True, **kw)
