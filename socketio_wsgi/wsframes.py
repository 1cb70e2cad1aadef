"""RFC 6455 framing with size limits checked from the header.

gevent-websocket 0.10 reads whatever length a peer declares, joins fragments
without a cap and unmasks byte by byte in Python; this module replaces its
read and write paths for both our server transport and our Python client.
Reading takes a ``read(n) -> bytes`` callable, so it is testable without
sockets.
"""
from __future__ import annotations

import os
import struct
from typing import Callable, Optional, Tuple

__all__ = [
    "OP_CONT", "OP_TEXT", "OP_BINARY", "OP_CLOSE", "OP_PING", "OP_PONG",
    "FrameError", "MessageTooBig", "ConnectionClosed",
    "build_frame", "close_payload", "parse_close", "unmask", "MessageReader",
]

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
_CONTROL = (OP_CLOSE, OP_PING, OP_PONG)


class FrameError(Exception):
    """The peer broke RFC 6455; ``code`` is the close code to answer with."""

    def __init__(self, reason: str, code: int = 1002):
        super().__init__(reason)
        self.code = code


class MessageTooBig(FrameError):
    def __init__(self, size: int, limit: int):
        super().__init__(f"message of {size} bytes exceeds the limit of {limit}", 1009)
        self.size = size
        self.limit = limit


class ConnectionClosed(Exception):
    """The peer closed (close frame or EOF); ``code`` is what it sent, if any."""

    def __init__(self, code: Optional[int] = None, reason: str = ""):
        super().__init__(f"closed ({code}) {reason}".strip())
        self.code = code
        self.reason = reason


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``mask`` at C speed."""
    n = len(payload)
    if not n:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def build_frame(opcode: int, payload: bytes, masked: bool = False) -> bytes:
    """One final frame; clients must mask, servers must not."""
    n = len(payload)
    first = 0x80 | opcode
    mask_bit = 0x80 if masked else 0
    if n < 126:
        header = struct.pack("!BB", first, mask_bit | n)
    elif n <= 0xFFFF:
        header = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, n)
    if masked:
        key = os.urandom(4)
        return header + key + unmask(payload, key)
    return header + payload


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode("utf-8")[:120]


def parse_close(payload: bytes) -> Tuple[Optional[int], str]:
    if len(payload) < 2:
        return None, ""
    code = struct.unpack("!H", payload[:2])[0]
    return code, payload[2:].decode("utf-8", "replace")


class MessageReader:
    """Reads whole messages from ``read``, refusing oversize ones from headers.

    ``on_control(opcode, payload)`` is called for ping/pong; a close frame
    raises :class:`ConnectionClosed`. ``expect_masked`` is True on a server.
    """

    def __init__(self, read: Callable[[int], bytes], max_size: int,
                 expect_masked: bool, on_control: Callable[[int, bytes], None]):
        self._read = read
        self.max_size = max_size
        self._expect_masked = expect_masked
        self._on_control = on_control

    def _read_exact(self, n: int) -> bytes:
        data = self._read(n)
        if len(data) == n:
            return data
        chunks = [data]
        got = len(data)
        while got < n:
            if not data:
                raise ConnectionClosed(1006, "EOF in the middle of a frame")
            data = self._read(n - got)
            chunks.append(data)
            got += len(data)
        return b"".join(chunks)

    def _read_header(self) -> Tuple[bool, int, int, Optional[bytes]]:
        head = self._read(2)
        if len(head) < 2:
            if not head:
                raise ConnectionClosed(1006, "EOF")
            head += self._read_exact(1)
        b0, b1 = head[0], head[1]
        if b0 & 0x70:
            raise FrameError("reserved bits set (no extension was negotiated)")
        fin, opcode = bool(b0 & 0x80), b0 & 0x0F
        masked, length = bool(b1 & 0x80), b1 & 0x7F
        if masked != self._expect_masked:
            raise FrameError("frame masking is wrong for this side")
        if opcode in _CONTROL:
            if not fin or length > 125:
                raise FrameError("control frames must be final and at most 125 bytes")
        elif opcode not in (OP_CONT, OP_TEXT, OP_BINARY):
            raise FrameError(f"unknown opcode {opcode}")
        if length == 126:
            length = struct.unpack("!H", self._read_exact(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read_exact(8))[0]
        mask = self._read_exact(4) if masked else None
        return fin, opcode, length, mask

    def _payload(self, length: int, mask: Optional[bytes]) -> bytes:
        data = self._read_exact(length) if length else b""
        return unmask(data, mask) if mask else data

    def read_message(self) -> Tuple[int, bytes]:
        """Return ``(OP_TEXT or OP_BINARY, payload)`` of the next data message."""
        opcode = None
        parts = []
        size = 0
        while True:
            fin, op, length, mask = self._read_header()
            if op in _CONTROL:
                payload = self._payload(length, mask)
                if op == OP_CLOSE:
                    raise ConnectionClosed(*parse_close(payload))
                self._on_control(op, payload)
                continue
            if op == OP_CONT:
                if opcode is None:
                    raise FrameError("continuation frame without a message to continue")
            elif opcode is not None:
                raise FrameError("new message started before the last one ended")
            else:
                opcode = op
            size += length
            if size > self.max_size:
                raise MessageTooBig(size, self.max_size)
            parts.append(self._payload(length, mask))
            if fin:
                return opcode, parts[0] if len(parts) == 1 else b"".join(parts)
