"""The websocket protocol (RFC 6455, with RFC 7692 compression) without I/O.

:class:`Protocol` is a state machine fed with the bytes that arrived
(:meth:`Protocol.receive_data`, :meth:`Protocol.receive_eof`); it hands back
what the peer said (:meth:`Protocol.events_received`) and the bytes to write
(:meth:`Protocol.data_to_send`).  It owns no socket, starts no timer and
imports nothing from gevent, so every rule of the RFC is unit-tested with
plain calls; :mod:`socketio_wsgi.ws.connection` drives it on a socket.

Incoming payload is processed as it arrives, even inside one frame: text is
checked as UTF-8 incrementally (a bad byte fails the connection at once),
compressed payload is inflated with a bounded output, and a message is
assembled in one ``bytearray``.  Its cost against ``max_size`` is its payload
plus :data:`~socketio_wsgi.wsframes.FRAME_COST` per continuation frame, both
on the wire and after inflation, so memory per message stays below
``max_size`` plus a constant whatever the fragmentation.
"""

from __future__ import annotations

import codecs
import enum
from typing import Any, List, Optional, Union

from ..errors import UsageError
from ..wsframes import (
    FRAME_COST,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameError,
    build_frame,
    check_close,
    close_payload,
    frame_header,
    unmask,
    valid_close_code,
)
from .deflate import Deflate

__all__ = ["State", "Protocol", "Ping", "Pong", "Close", "InvalidState", "Message"]

Message = Union[str, bytes]

_utf8_decoder = codecs.getincrementaldecoder("utf-8")


class State(enum.IntEnum):
    """Where a connection is in its life (RFC 6455 section 4 and 7)."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


class InvalidState(UsageError):
    """A send on a connection that is closing or closed."""


class Ping:
    """The peer pinged; the driver answers with :meth:`Protocol.send_pong`."""

    __slots__ = ("payload",)

    def __init__(self, payload: bytes):
        self.payload = payload

    def __repr__(self) -> str:
        return f"Ping({self.payload!r})"


class Pong:
    """The peer answered a ping (or sent an unsolicited pong)."""

    __slots__ = ("payload",)

    def __init__(self, payload: bytes):
        self.payload = payload

    def __repr__(self) -> str:
        return f"Pong({self.payload!r})"


class Close:
    """The peer's close frame (code 1005 when it carried none)."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str):
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"Close({self.code}, {self.reason!r})"


_HEADER, _PAYLOAD, _DISCARD = 0, 1, 2


class Protocol:
    """One websocket connection's framing, fragments, limits and close handshake.

    ``client``: True for the client side (masks what it sends, requires
    unmasked frames).  ``max_size``: the largest message accepted, in bytes
    (larger ones fail the connection with 1009).  ``deflate``: the negotiated
    permessage-deflate parameters, or None.

    Events are data messages (``str`` for text, ``bytes`` for binary) and
    :class:`Ping`, :class:`Pong`, :class:`Close` objects.  A violation of the
    RFC does not raise: it queues a close frame with the right code (1002,
    1007, 1009), moves to CLOSING and ignores the rest of the input except the
    peer's close frame; ``failure`` then says what went wrong.
    """

    __slots__ = (
        "_buf",
        "_control",
        "_events",
        "_fin",
        "_inflating",
        "_mask",
        "_mask_bit",
        "_msg",
        "_msg_op",
        "_msg_size",
        "_msg_wire",
        "_opcode",
        "_out",
        "_phase",
        "_remaining",
        "_stop",
        "_utf8",
        "client",
        "close_code",
        "close_reason",
        "deflate",
        "failure",
        "input_pending",
        "max_size",
        "sent_close_code",
        "state",
    )  # one per open websocket

    def __init__(
        self,
        *,
        client: bool = False,
        max_size: int = 1024 * 1024,
        deflate: Optional[Deflate] = None,
        state: State = State.OPEN,
    ):
        self.client = client
        self.max_size = max_size
        self.deflate = deflate
        self.state = state
        #: The close code the peer sent (1005 if none, 1006 if the TCP
        #: connection ended without one), else None.
        self.close_code: Optional[int] = None
        self.close_reason = ""
        #: The code of the close frame we sent, else None.
        self.sent_close_code: Optional[int] = None
        #: Why we failed the connection (a protocol violation), else None.
        self.failure: Optional[FrameError] = None
        self._mask_bit = 0 if client else 0x80  # what incoming frames must carry
        self._events: List[Any] = []
        self._out: List[bytes] = []
        self._buf = bytearray()
        #: True when bytes after a complete message wait to be parsed.
        self.input_pending = False
        self._stop = False
        self._phase = _HEADER
        # the frame being read
        self._fin = False
        self._opcode = 0
        self._remaining = 0
        self._mask: Optional[bytes] = None
        self._control = bytearray()
        # the message being assembled
        self._msg_op = 0  # OP_TEXT / OP_BINARY while a message is open
        self._msg = bytearray()
        self._msg_wire = 0  # payload (+ FRAME_COST per extra frame) on the wire
        self._msg_size = 0  # payload after inflation
        self._inflating = False
        self._utf8: Optional[Any] = None

    # ------------------------------------------------------------------ input
    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the peer and parse them, stopping after each
        complete data message: what follows it (another message, a violation)
        is parsed on the next call, once the driver has acted on the message
        (call with ``b""`` while :attr:`input_pending` is True)."""
        if self.state is State.CLOSED or self._phase == _DISCARD:
            return
        buf = self._buf
        if not buf and self._phase == _HEADER and not self._msg_op and self._whole_text_frame(data):
            return
        if data:
            buf += data
        pos = 0
        end = len(buf)
        self._stop = False
        while pos < end and self._phase != _DISCARD and not self._stop:
            if self._phase == _HEADER:
                used = self._parse_header(buf, pos, end)
                if not used:
                    break
                pos += used
                if self._remaining == 0:
                    self._frame_data(b"", True)
            else:
                take = min(self._remaining, end - pos)
                chunk = bytes(buf[pos : pos + take])
                pos += take
                mask = self._mask
                if mask is not None:
                    chunk = unmask(chunk, mask)
                    if take % 4:
                        shift = take % 4
                        self._mask = mask[shift:] + mask[:shift]
                self._remaining -= take
                self._frame_data(chunk, self._remaining == 0)
        if self._phase == _DISCARD:
            buf.clear()
        elif pos:
            del buf[:pos]
        self.input_pending = self._stop and bool(buf)

    def _whole_text_frame(self, data: bytes) -> bool:
        """The common case in one step: ``data`` is exactly one final,
        masked, uncompressed text frame of under 64 KiB from a client, and
        nothing is pending.  Returns False (nothing done) for anything else,
        which the general parser then handles."""
        if len(data) < 6 or data[0] != 0x81 or self._mask_bit != 0x80:
            return False
        length = data[1] ^ 0x80  # the mask bit must be set
        if length < 126:
            start = 6
        elif length == 126 and len(data) >= 8:
            length = (data[2] << 8) | data[3]
            start = 8
        else:
            return False
        if len(data) != start + length or length > self.max_size:
            return False
        try:
            text = unmask(data[start:], data[start - 4 : start]).decode("utf-8")
        except UnicodeDecodeError:
            return False  # the general parser fails the connection with 1007
        self.input_pending = False
        self._message(text)
        return True

    def receive_eof(self) -> None:
        """The peer's TCP stream ended: the connection is closed (1006 unless
        its close frame came first)."""
        if self.state is not State.CLOSED:
            if self.close_code is None:
                self.close_code = 1006
            self.state = State.CLOSED
        self._phase = _DISCARD
        self._buf.clear()
        self.input_pending = False
        self._msg = bytearray()

    def events_received(self) -> List[Any]:
        """Messages and control events parsed since the last call."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> bytes:
        """Bytes to write to the peer since the last call (b"" if none)."""
        if not self._out:
            return b""
        out, self._out = self._out, []
        return out[0] if len(out) == 1 else b"".join(out)

    @property
    def close_expected(self) -> bool:
        """True once both close frames passed (or the connection failed and
        our close frame is queued): the driver should end the TCP connection."""
        return self.state is State.CLOSED

    # ------------------------------------------------------------ parsing
    def _parse_header(self, buf: bytearray, pos: int, end: int) -> int:
        """Parse the frame header at ``pos``; 0 if incomplete, else its length."""
        if end - pos < 2:
            return 0
        b0 = buf[pos]
        b1 = buf[pos + 1]
        length = b1 & 0x7F
        size = 2
        if length == 126:
            if end - pos < 4:
                return 0
            length = (buf[pos + 2] << 8) | buf[pos + 3]
            size = 4
        elif length == 127:
            if end - pos < 10:
                return 0
            length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
            size = 10
        masked = b1 & 0x80
        if masked:
            size += 4
        if end - pos < size:
            return 0
        if self._check_header(b0, masked, length):
            return 0
        if masked:
            self._mask = bytes(buf[pos + size - 4 : pos + size])
        else:
            self._mask = None
        self._remaining = length
        self._phase = _PAYLOAD
        return size

    def _check_header(self, b0: int, masked: int, length: int) -> bool:
        """Validate a header; True if it failed the connection."""
        fin = b0 & 0x80
        opcode = b0 & 0x0F
        rsv = b0 & 0x70
        if masked != self._mask_bit:
            return self._fail("frame masking is wrong for this side")
        if length >> 63:
            return self._fail("frame length has its most significant bit set")
        if opcode >= 8:
            if opcode > OP_PONG:
                return self._fail(f"unknown opcode {opcode}")
            if rsv:
                return self._fail("reserved bits set on a control frame")
            if not fin or length > 125:
                return self._fail("control frames must be final and at most 125 bytes")
            self._fin = True
            self._opcode = opcode
            self._control.clear()
            return False
        if opcode > OP_BINARY:
            return self._fail(f"unknown opcode {opcode}")
        if opcode == OP_CONT:
            if not self._msg_op:
                return self._fail("continuation frame without a message to continue")
            if rsv:
                return self._fail("reserved bits set on a continuation frame")
            self._msg_wire += FRAME_COST
        else:
            if self._msg_op:
                return self._fail("new message started before the last one ended")
            if rsv:
                if rsv != 0x40 or self.deflate is None:
                    return self._fail("reserved bits set (no extension uses them)")
                self._inflating = True
            else:
                self._inflating = False
            self._msg_op = opcode
            self._msg_wire = 0
            self._msg_size = 0
            self._utf8 = None
        self._msg_wire += length
        if self._msg_wire > self.max_size:
            return self._fail(f"message exceeds the limit of {self.max_size} bytes", 1009)
        self._fin = bool(fin)
        self._opcode = opcode
        return False

    def _frame_data(self, chunk: bytes, last: bool) -> None:
        """Payload bytes of the current frame (``last``: the frame is complete)."""
        if self._opcode >= 8:
            self._control += chunk
            if last:
                self._phase = _HEADER
                self._control_frame(self._opcode, bytes(self._control))
            return
        if last:
            self._phase = _HEADER
        if self._inflating:
            inflated = self._inflate(chunk, last and self._fin)
            if inflated is None:
                return
            chunk = inflated
        else:
            self._msg_size += len(chunk)
        if self._msg_op == OP_TEXT:
            if last and self._fin and self._utf8 is None and not self._msg:
                # The common case: a whole text message in hand.
                self._msg_op = 0
                try:
                    text = chunk.decode("utf-8")
                except UnicodeDecodeError:
                    self._fail("text message is not valid UTF-8", 1007)
                    return
                self._message(text)
                return
            if self._utf8 is None:
                self._utf8 = _utf8_decoder()
            try:
                self._utf8.decode(chunk, last and self._fin)
            except UnicodeDecodeError:
                self._fail("text message is not valid UTF-8", 1007)
                return
        if last and self._fin:
            op, self._msg_op = self._msg_op, 0
            if self._msg:
                self._msg += chunk
                data, self._msg = bytes(self._msg), bytearray()
            else:
                data = chunk
            self._utf8 = None
            self._message(data.decode("utf-8") if op == OP_TEXT else data)
        elif chunk:
            self._msg += chunk

    def _inflate(self, chunk: bytes, final: bool) -> Optional[bytes]:
        """Inflate compressed payload, never producing more than the limit allows."""
        budget = self.max_size - self._msg_size
        deflate = self.deflate
        assert deflate is not None  # RSV1 is refused without it
        try:
            out = deflate.decompress(chunk, final, budget + 1)
        except Exception:  # zlib.error: the peer's deflate stream is corrupt
            self._fail("invalid compressed data", 1007)
            return None
        self._msg_size += len(out)
        if self._msg_size > self.max_size:
            self._fail(f"message exceeds the limit of {self.max_size} bytes once inflated", 1009)
            return None
        return out

    def _message(self, data: Message) -> None:
        self._stop = True
        if self.state is State.OPEN or (self.state is State.CLOSING and self.failure is None):
            self._events.append(data)

    def _control_frame(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_PING:
            self._events.append(Ping(payload))
        elif opcode == OP_PONG:
            self._events.append(Pong(payload))
        else:
            try:
                code, reason = check_close(payload)
            except FrameError as exc:
                if self.failure is None:
                    self._fail(str(exc), exc.code)
                return
            self.close_code, self.close_reason = code, reason
            if self.sent_close_code is None:
                # Echo the peer's code (none for none), then the handshake is done.
                self._queue_close(code if code != 1005 else None, "")
            self.state = State.CLOSED
            self._phase = _DISCARD
            self._events.append(Close(code, reason))

    def _fail(self, reason: str, code: int = 1002) -> bool:
        """Fail the connection: queue a close frame with ``code`` and ignore
        everything but the peer's close frame.  Returns True (for callers)."""
        if self.failure is None and self.state is not State.CLOSED:
            self.failure = FrameError(reason, code)
            if self.sent_close_code is None:
                self._queue_close(code, "")
            self.state = State.CLOSING
        # After a violation the byte stream cannot be trusted to find the
        # peer's close frame: the driver waits for EOF (bounded) instead.
        self._phase = _DISCARD
        self._msg = bytearray()
        self._msg_op = 0
        return True

    # ----------------------------------------------------------------- output
    def send_text(self, data: Union[str, bytes]) -> None:
        """Queue a text message (``bytes`` must already be UTF-8)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        self._send_message(OP_TEXT, data)

    def send_binary(self, data: bytes) -> None:
        """Queue a binary message."""
        self._send_message(OP_BINARY, bytes(data))

    def send(self, message: Message) -> None:
        """Queue ``message``: text for ``str``, binary for ``bytes``."""
        if isinstance(message, str):
            self._send_message(OP_TEXT, message.encode("utf-8"))
        else:
            self._send_message(OP_BINARY, bytes(message))

    def _send_message(self, opcode: int, payload: bytes) -> None:
        if self.state is not State.OPEN:
            raise InvalidState(f"cannot send in state {self.state.name}")
        self._out.append(self.encode(opcode, payload))

    def encode(self, opcode: int, payload: bytes) -> bytes:
        """The frame this side would send for a message (compressed when
        negotiated and the payload reaches the deflate threshold).  With
        context takeover this advances the compressor: the frame must be sent."""
        deflate = self.deflate
        rsv1 = 0
        if deflate is not None and len(payload) >= deflate.threshold:
            payload = deflate.compress(payload)
            rsv1 = 0x40
        return self._frame(0x80 | rsv1 | opcode, payload)

    def send_frame(self, frame: bytes) -> None:
        """Queue a frame built in advance (a broadcast's shared frame)."""
        if self.state is not State.OPEN:
            raise InvalidState(f"cannot send in state {self.state.name}")
        self._out.append(frame)

    def send_ping(self, payload: bytes = b"") -> None:
        """Queue a ping (payload at most 125 bytes)."""
        self._send_control(OP_PING, bytes(payload))

    def send_pong(self, payload: bytes = b"") -> None:
        """Queue a pong; ignored once our close frame has been sent."""
        if self.sent_close_code is None and self.state is not State.CLOSED:
            self._send_control(OP_PONG, bytes(payload))

    def _send_control(self, opcode: int, payload: bytes) -> None:
        if len(payload) > 125:
            raise ValueError("control frame payloads are limited to 125 bytes")
        if self.sent_close_code is not None or self.state is State.CLOSED:
            raise InvalidState(f"cannot send in state {self.state.name}")
        self._out.append(self._frame(0x80 | opcode, payload))

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (once; later calls do nothing).

        Raises ValueError for a code that may not be sent."""
        if not valid_close_code(code):
            raise ValueError(f"{code} is not a close code that may be sent")
        if self.sent_close_code is not None or self.state is State.CLOSED:
            return
        self._queue_close(code, reason)
        self.state = State.CLOSING

    def _queue_close(self, code: Optional[int], reason: str) -> None:
        self.sent_close_code = code if code is not None else 1005
        payload = close_payload(code, reason) if code is not None else b""
        self._out.append(self._frame(0x80 | OP_CLOSE, payload))

    def _frame(self, first: int, payload: bytes) -> bytes:
        if self.client:
            return build_frame(
                first & 0x0F, payload, masked=True, fin=bool(first & 0x80), rsv1=bool(first & 0x40)
            )
        return frame_header(first, len(payload)) + payload
