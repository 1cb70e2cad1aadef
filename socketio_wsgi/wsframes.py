"""RFC 6455 frame codec shared by the server layer and our Python client.

Pure functions (no sockets): building frames, unmasking, close payloads and
their validation.  :class:`MessageReader` is the blocking reader our client
uses (it takes a ``read(n) -> bytes`` callable, so it is testable without
sockets); the server side parses with :class:`socketio_wsgi.ws.protocol.Protocol`.
"""

from __future__ import annotations

import os
import struct
from typing import Callable, Optional, Tuple

from .errors import ConnectionClosed, MessageTooLarge, ProtocolError

__all__ = [
    "OP_CONT",
    "OP_TEXT",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_PING",
    "OP_PONG",
    "FrameError",
    "build_frame",
    "frame_header",
    "close_payload",
    "parse_close",
    "check_close",
    "valid_close_code",
    "unmask",
    "MessageReader",
    "FRAME_COST",
]

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
_CONTROL = (OP_CLOSE, OP_PING, OP_PONG)

#: What each frame after a message's first costs against the size limit, on top
#: of its payload: zero-length fragments must exhaust the limit too.
FRAME_COST = 8

#: Close codes a peer may send (RFC 6455 7.4 and the IANA registry); 1004-1006
#: and 1015 are reserved and never appear on the wire.
_VALID_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))


def valid_close_code(code: int) -> bool:
    """True if ``code`` may appear in a close frame (1000-1014 minus the
    reserved ones, or the 3000-4999 registered/private range)."""
    return code in _VALID_CODES or 3000 <= code <= 4999


class FrameError(ProtocolError):
    """The peer broke RFC 6455; ``code`` (also ``close_code``) is the close
    code to answer with."""

    close_code = 1002

    def __init__(self, reason: str, code: int = 1002):
        super().__init__(reason)
        self.close_code = code

    @property
    def code(self) -> int:
        return self.close_code


def unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``mask`` at C speed."""
    n = len(payload)
    if not n:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def frame_header(first: int, n: int, mask_bit: int = 0) -> bytes:
    """The header of a frame whose first byte is ``first`` (FIN, RSV, opcode)
    carrying ``n`` payload bytes, in the shortest length encoding."""
    if n < 126:
        return struct.pack("!BB", first, mask_bit | n)
    if n <= 0xFFFF:
        return struct.pack("!BBH", first, mask_bit | 126, n)
    return struct.pack("!BBQ", first, mask_bit | 127, n)


def build_frame(
    opcode: int, payload: bytes, masked: bool = False, *, fin: bool = True, rsv1: bool = False
) -> bytes:
    """One frame; clients must mask, servers must not.  ``rsv1`` marks a
    compressed message's first frame (permessage-deflate)."""
    header = frame_header(
        (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode, len(payload), 0x80 if masked else 0
    )
    if masked:
        key = os.urandom(4)
        return header + key + unmask(payload, key)
    return header + payload


def close_payload(code: int, reason: str = "") -> bytes:
    """Code and reason of a close frame; the reason is cut to fit the 125-byte
    control frame limit without splitting a UTF-8 sequence."""
    raw = reason.encode("utf-8")
    if len(raw) > 123:
        raw = raw[:123].decode("utf-8", "ignore").encode("utf-8")
    return struct.pack("!H", code) + raw


def parse_close(payload: bytes) -> Tuple[Optional[int], str]:
    """Lenient parse (our client's view of a server's close frame)."""
    if len(payload) < 2:
        return None, ""
    code = struct.unpack("!H", payload[:2])[0]
    return code, payload[2:].decode("utf-8", "replace")


def check_close(payload: bytes) -> Tuple[int, str]:
    """Strict parse of a received close frame: ``(code, reason)``, with 1005
    for an empty payload.  Raises :class:`FrameError` with 1002 for a 1-byte
    payload or a code that may not be sent, 1007 for a reason that is not UTF-8."""
    if not payload:
        return 1005, ""
    if len(payload) == 1:
        raise FrameError("close frame with a 1-byte payload")
    code = (payload[0] << 8) | payload[1]
    if not valid_close_code(code):
        raise FrameError(f"close frame with the invalid code {code}")
    try:
        reason = bytes(payload[2:]).decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError("close reason is not UTF-8", 1007) from None
    return code, reason


class MessageReader:
    """Reads whole messages from ``read``, refusing oversize ones from headers.

    ``on_control(opcode, payload)`` is called for ping/pong; a close frame
    raises :class:`ConnectionClosed`. ``expect_masked`` is True on a server.
    """

    def __init__(
        self,
        read: Callable[[int], bytes],
        max_size: int,
        expect_masked: bool,
        on_control: Callable[[int, bytes], None],
    ):
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
                raise ConnectionClosed("EOF in the middle of a frame", code=1006)
            data = self._read(n - got)
            chunks.append(data)
            got += len(data)
        return b"".join(chunks)

    def _read_header(self) -> Tuple[bool, int, int, Optional[bytes]]:
        head = self._read(2)
        if len(head) < 2:
            if not head:
                raise ConnectionClosed("EOF", code=1006)
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
        joined: Optional[bytearray] = None
        first = b""
        size = 0
        while True:
            fin, op, length, mask = self._read_header()
            if op in _CONTROL:
                payload = self._payload(length, mask)
                if op == OP_CLOSE:
                    code, reason = check_close(payload)
                    raise ConnectionClosed(reason, code=code)
                self._on_control(op, payload)
                continue
            if op == OP_CONT:
                if opcode is None:
                    raise FrameError("continuation frame without a message to continue")
            elif opcode is not None:
                raise FrameError("new message started before the last one ended")
            else:
                opcode = op
            if op == OP_CONT:
                size += FRAME_COST  # so that empty fragments exhaust the limit too
            size += length
            if size > self.max_size:
                raise MessageTooLarge(size, self.max_size, "max_size")
            payload = self._payload(length, mask)
            if op != OP_CONT:
                if fin:
                    return opcode, payload
                first = payload
            elif joined is None:
                joined = bytearray(first)
                joined += payload
            else:
                joined += payload
            if fin:
                return opcode, bytes(joined if joined is not None else first)
