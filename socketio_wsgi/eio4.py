"""Engine.IO protocol revision 4: packets, polling payloads and the handshake.

Pure functions and small value classes: no gevent, no sockets, no clock, so
the session core can drive them and the tests can call them directly.

Wire format (what the official ``engine.io-client`` 6.x speaks, ``EIO=4``):

* a *packet* is a one-digit type (``0`` open .. ``6`` noop) and optional
  text data: ``4hello`` is a message holding ``hello``;
* on a websocket each packet is one frame; a *binary* frame is a message
  packet holding those bytes as they are (there is no type byte);
* in HTTP long-polling a *payload* holds one or more packets separated by
  the record separator ``\\x1e``; a binary message there is ``b`` followed by
  the base64 of its bytes.

Every malformed input raises :class:`~socketio_wsgi.errors.ProtocolError`;
input over a limit raises :class:`~socketio_wsgi.errors.LimitExceeded` (or
its subclass :class:`~socketio_wsgi.errors.MessageTooLarge` for sizes), and
both are refused before anything proportional to the excess is allocated.
A packet the application cannot send raises
:class:`~socketio_wsgi.errors.UsageError`.

Limits (each a keyword argument of the decoders):

``max_payload``
    bytes of one websocket frame or one polling body; default
    :data:`DEFAULT_MAX_PAYLOAD` (1,000,000, Engine.IO's own default), the
    value announced as ``maxPayload`` in the handshake.
``max_packets``
    packets in one polling payload; default :data:`DEFAULT_MAX_PACKETS`
    (10,000, as the 0.6 side's ``max_messages_per_payload``).
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from dataclasses import dataclass
from typing import List, Sequence, Union

from .errors import LimitExceeded, MessageTooLarge, ProtocolError, UsageError

__all__ = [
    "PROTOCOL",
    "SEPARATOR",
    "DEFAULT_MAX_PAYLOAD",
    "DEFAULT_MAX_PACKETS",
    "DEFAULT_PING_INTERVAL",
    "DEFAULT_PING_TIMEOUT",
    "PacketType",
    "Packet",
    "Handshake",
    "encode_packet",
    "encode_polling_packet",
    "encode_payload",
    "encode_message_frames",
    "encode_message_payload",
    "decode_packet",
    "decode_payload",
    "message",
]

#: The ``EIO`` query value this module speaks.
PROTOCOL = 4
#: Separates the packets of a polling payload (ASCII "record separator").
SEPARATOR = "\x1e"
#: Bytes per websocket frame or polling body (``maxPayload`` in the handshake).
DEFAULT_MAX_PAYLOAD = 1_000_000
#: Packets per polling payload.
DEFAULT_MAX_PACKETS = 10_000
#: Milliseconds between server pings (Engine.IO's default).
DEFAULT_PING_INTERVAL = 25_000
#: Milliseconds the client has to answer a ping (Engine.IO's default).
DEFAULT_PING_TIMEOUT = 20_000

_BINARY_PREFIX = "b"
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_BYTES_LIKE = (bytes, bytearray, memoryview)


class PacketType(enum.IntEnum):
    """The seven Engine.IO packet types; the value is the wire digit."""

    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


_TYPE_BY_CHAR = {str(int(t)): t for t in PacketType}
_CHAR_BY_TYPE = {t: str(int(t)) for t in PacketType}


@dataclass(frozen=True)
class Packet:
    """One Engine.IO packet.

    ``data`` is a ``str`` (text; ``""`` when nothing follows the type
    digit) or ``bytes`` (a binary message; only :attr:`PacketType.MESSAGE`
    packets can be binary).
    """

    __slots__ = ("type", "data")
    type: PacketType
    data: Union[str, bytes]

    def __init__(self, type: PacketType, data: Union[str, bytes, bytearray, memoryview] = ""):
        if not isinstance(type, PacketType):
            raise UsageError(f"not an Engine.IO packet type: {type!r}")
        if isinstance(data, _BYTES_LIKE):
            if type is not PacketType.MESSAGE:
                raise UsageError(f"only message packets can carry binary data, not {type.name}")
            data = bytes(data)
        elif not isinstance(data, str):
            raise UsageError(f"packet data must be str or bytes, not {data.__class__.__name__}")
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "data", data)

    @property
    def binary(self) -> bool:
        """Whether this is a binary message."""
        return isinstance(self.data, bytes)


def message(data: Union[str, bytes, bytearray, memoryview]) -> Packet:
    """A message packet: the envelope of every Socket.IO packet and attachment."""
    return Packet(PacketType.MESSAGE, data)


# -- encoding -------------------------------------------------------------------


def _text(packet: Packet) -> str:
    return _CHAR_BY_TYPE[packet.type] + packet.data  # type: ignore[operator]


def encode_packet(packet: Packet) -> Union[str, bytes]:
    """Encode ``packet`` as one websocket frame: ``str`` for a text frame,
    ``bytes`` for a binary frame (a binary message, sent as is)."""
    if isinstance(packet.data, bytes):
        return packet.data
    return _text(packet)


def encode_polling_packet(packet: Packet) -> str:
    """Encode ``packet`` as one record of a polling payload (binary as ``b``+base64).

    Raises :class:`UsageError` when text data holds the record separator,
    which would split the record in two on the client.
    """
    if isinstance(packet.data, bytes):
        return _BINARY_PREFIX + base64.b64encode(packet.data).decode("ascii")
    text = _text(packet)
    if SEPARATOR in text:
        raise UsageError("a polling packet may not hold the record separator \\x1e")
    return text


def encode_payload(packets: Sequence[Packet]) -> str:
    """Encode ``packets`` (at least one) as the body of one polling response."""
    if not packets:
        raise UsageError("a polling payload holds at least one packet")
    return SEPARATOR.join([encode_polling_packet(p) for p in packets])


def encode_message_frames(parts: Sequence[Union[str, bytes]]) -> List[Union[str, bytes]]:
    """The websocket frames of messages holding ``parts`` (e.g. the output of
    :func:`socketio_wsgi.sio5.encode`): ``"4"+text`` for text, raw bytes for
    binary.  Computed once, they can go to every websocket recipient."""
    return [part if isinstance(part, bytes) else "4" + part for part in parts]


def encode_message_payload(parts: Sequence[Union[str, bytes]]) -> str:
    """The polling payload of messages holding ``parts`` (binary as
    ``b``+base64); raises :class:`UsageError` as :func:`encode_payload`."""
    return encode_payload([message(part) for part in parts])


# -- decoding -------------------------------------------------------------------


def _utf8_size(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def _check_size(data: Union[str, bytes], max_payload: int, what: str) -> None:
    # A str is never shorter in UTF-8 than in characters: refuse a long one
    # before measuring it (measuring a non-ASCII str copies it).
    size = len(data)
    if size > max_payload:
        raise MessageTooLarge(size, max_payload, what)
    if isinstance(data, str):
        size = _utf8_size(data)
        if size > max_payload:
            raise MessageTooLarge(size, max_payload, what)


def _decode_text(text: str) -> Packet:
    if not text:
        raise ProtocolError("empty Engine.IO packet")
    kind = _TYPE_BY_CHAR.get(text[0])
    if kind is None:
        raise ProtocolError(f"unknown Engine.IO packet type {text[0]!r}")
    return Packet(kind, text[1:])


def decode_packet(
    frame: Union[str, bytes, bytearray, memoryview], *, max_payload: int = DEFAULT_MAX_PAYLOAD
) -> Packet:
    """Decode one websocket frame: ``str`` (text frame) or bytes (binary message).

    A text frame ``b<base64>`` is a binary message too (what a client with
    ``forceBase64`` sends).  Raises :class:`MessageTooLarge` over
    ``max_payload`` bytes and :class:`ProtocolError` for an empty frame, an
    unknown type digit or invalid base64.
    """
    if isinstance(frame, _BYTES_LIKE):
        if len(frame) > max_payload:
            raise MessageTooLarge(len(frame), max_payload, "maxPayload")
        return Packet(PacketType.MESSAGE, bytes(frame))
    if not isinstance(frame, str):
        raise ProtocolError(f"an Engine.IO frame is text or bytes, not {frame.__class__.__name__}")
    _check_size(frame, max_payload, "maxPayload")
    # A client started with ``forceBase64`` sends binary as "b"+base64 text
    # frames too (the reference server reads them): accept the same form.
    return _decode_record(frame)


def _decode_record(record: str) -> Packet:
    if record.startswith(_BINARY_PREFIX):
        # Strict: the standard alphabet with its padding, nothing else (the
        # official clients send exactly that; Python's own check lets extra
        # padding through).
        if not _BASE64.fullmatch(record, 1):
            raise ProtocolError("invalid base64 in a binary polling packet")
        try:
            return Packet(PacketType.MESSAGE, binascii.a2b_base64(record[1:]))
        except (binascii.Error, ValueError):  # pragma: no cover - the pattern admits none
            raise ProtocolError("invalid base64 in a binary polling packet") from None
    return _decode_text(record)


def decode_payload(
    body: Union[str, bytes], *, max_payload: int = DEFAULT_MAX_PAYLOAD, max_packets: int = DEFAULT_MAX_PACKETS
) -> List[Packet]:
    """Decode the body of one polling POST into its packets, in order.

    ``body`` is the text, or the raw bytes (decoded here as strict UTF-8).
    The size is checked first, then the number of separators is counted
    (without copying) so that no list longer than ``max_packets`` is built.
    Raises :class:`MessageTooLarge` over ``max_payload`` bytes,
    :class:`LimitExceeded` over ``max_packets`` packets and
    :class:`ProtocolError` for invalid UTF-8, an empty record, an unknown
    type or invalid base64.
    """
    if isinstance(body, _BYTES_LIKE):
        if len(body) > max_payload:
            raise MessageTooLarge(len(body), max_payload, "maxPayload")
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("polling payload is not valid UTF-8") from None
    elif isinstance(body, str):
        _check_size(body, max_payload, "maxPayload")
    else:
        raise ProtocolError(f"a polling payload is text, not {body.__class__.__name__}")
    count = body.count(SEPARATOR) + 1
    if count > max_packets:
        raise LimitExceeded(f"a polling payload of {count} packets exceeds max_packets ({max_packets})")
    return [_decode_record(record) for record in body.split(SEPARATOR)]


# -- handshake --------------------------------------------------------------------


@dataclass(frozen=True)
class Handshake:
    """The data of the server's ``open`` packet.

    Times are milliseconds, ``max_payload`` bytes, as on the wire.
    ``encode()`` gives the open packet; ``decode()`` reads one (for tests
    and clients) and raises :class:`ProtocolError` if it is malformed.
    """

    __slots__ = ("sid", "upgrades", "ping_interval", "ping_timeout", "max_payload")
    sid: str
    upgrades: tuple
    ping_interval: int
    ping_timeout: int
    max_payload: int

    def __init__(
        self,
        sid: str,
        upgrades: Sequence[str] = ("websocket",),
        ping_interval: int = DEFAULT_PING_INTERVAL,
        ping_timeout: int = DEFAULT_PING_TIMEOUT,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ):
        if not isinstance(sid, str) or not sid:
            raise UsageError("the session id must be a non-empty str")
        if isinstance(upgrades, str) or not all(isinstance(u, str) for u in upgrades):
            raise UsageError("upgrades must be a sequence of transport names")
        for name, value in (
            ("ping_interval", ping_interval),
            ("ping_timeout", ping_timeout),
            ("max_payload", max_payload),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise UsageError(f"{name} must be a positive int, got {value!r}")
        object.__setattr__(self, "sid", sid)
        object.__setattr__(self, "upgrades", tuple(upgrades))
        object.__setattr__(self, "ping_interval", ping_interval)
        object.__setattr__(self, "ping_timeout", ping_timeout)
        object.__setattr__(self, "max_payload", max_payload)

    def to_json(self) -> str:
        """The JSON text of the open packet's data."""
        return json.dumps(
            {
                "sid": self.sid,
                "upgrades": list(self.upgrades),
                "pingInterval": self.ping_interval,
                "pingTimeout": self.ping_timeout,
                "maxPayload": self.max_payload,
            },
            separators=(",", ":"),
        )

    def packet(self) -> Packet:
        """The ``open`` packet announcing this handshake."""
        return Packet(PacketType.OPEN, self.to_json())

    @classmethod
    def decode(cls, packet: Packet) -> "Handshake":
        """Read an ``open`` packet; raises :class:`ProtocolError` if it is not one."""
        if packet.type is not PacketType.OPEN or not isinstance(packet.data, str):
            raise ProtocolError("not an Engine.IO open packet")
        try:
            data = json.loads(packet.data)
            return cls(
                data["sid"], data["upgrades"], data["pingInterval"], data["pingTimeout"], data["maxPayload"]
            )
        except (ValueError, KeyError, TypeError, UsageError) as exc:
            raise ProtocolError(f"invalid Engine.IO handshake: {exc}") from None
