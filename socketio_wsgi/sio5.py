"""Socket.IO protocol revision 5: packets, their text form and binary attachments.

Pure code (no gevent, no sockets, no clock).  Each Socket.IO packet travels
as the data of one Engine.IO message (see :mod:`socketio_wsgi.eio4`); a
packet with binary data travels as a text header followed by one binary
message per attachment::

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON>]

``2["hey","Jude"]`` is an event on ``/``; ``3/admin,13["bar"]`` acknowledges
event 13 on ``/admin``; ``51-["baz",{"_placeholder":true,"num":0}]`` is an
event whose second argument is the first attachment that follows.

:func:`encode` turns a packet into ``[text, attachment, ...]``; a
:class:`Decoder` (one per connection) turns text and binary messages back
into packets.  What the decoder accepts, the encoder can send back, and the
other way round: JSON without ``NaN``/``Infinity`` (nor numbers too large
for a float), text without lone surrogates, the reserved event names
refused both ways as the reference parser refuses them.

Peer input that is not valid raises :class:`~socketio_wsgi.errors.ProtocolError`
(:class:`~socketio_wsgi.errors.LimitExceeded` /
:class:`~socketio_wsgi.errors.MessageTooLarge` over a limit); a packet the
application cannot send raises :class:`~socketio_wsgi.errors.UsageError`.

Limits (keyword arguments of :class:`Decoder`):

``max_attachments``
    attachments one binary packet may announce; default 10 (the reference
    parser's default).
``max_attachment_bytes``
    bytes of all attachments of one packet together; default 1,000,000.
``max_namespace_length``
    characters of a namespace; default 256.

Fixed bounds: an ack id is a decimal integer of at most 16 digits and at
most :data:`MAX_ACK_ID` (2**53 - 1, the largest integer a JavaScript number
holds exactly); a JSON integer has at most :data:`MAX_INT_DIGITS` digits;
one binary packet at a time may wait for its attachments (the official
client always sends a header and its attachments back to back), so any
text packet arriving while attachments are missing is refused.  The decoder
has no clock: :attr:`Decoder.waiting` tells the session core to start a
deadline for attachments that never arrive.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

from . import jsontext
from .errors import LimitExceeded, MessageTooLarge, ProtocolError, UsageError
from .jsontext import MAX_INT_DIGITS

__all__ = [
    "PROTOCOL",
    "PacketType",
    "RESERVED_EVENTS",
    "MAX_ACK_ID",
    "MAX_INT_DIGITS",
    "DEFAULT_MAX_ATTACHMENTS",
    "DEFAULT_MAX_ATTACHMENT_BYTES",
    "DEFAULT_MAX_NAMESPACE_LENGTH",
    "Connect",
    "Disconnect",
    "Event",
    "Ack",
    "ConnectError",
    "Packet",
    "encode",
    "decode",
    "Decoder",
]

#: The Socket.IO protocol revision of this module.
PROTOCOL = 5
#: The largest ack id (JavaScript's ``Number.MAX_SAFE_INTEGER``).
MAX_ACK_ID = 2**53 - 1
#: Digits of the longest JSON integer accepted (longer ones are not numbers
#: a JavaScript peer could have meant, and converting them costs quadratic time).
DEFAULT_MAX_ATTACHMENTS = 10
DEFAULT_MAX_ATTACHMENT_BYTES = 1_000_000
DEFAULT_MAX_NAMESPACE_LENGTH = 256
#: Event names the reference implementation refuses on the wire.
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)

_BYTES_LIKE = (bytes, bytearray, memoryview)
_ACK_DIGITS = 16
_ID = re.compile(r"[0-9]{1,%d}" % (_ACK_DIGITS + 1))


class PacketType(enum.IntEnum):
    """The seven Socket.IO packet types; the value is the wire digit."""

    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


EventName = Union[str, int, float]


def _check_namespace(namespace: Any) -> None:
    if not isinstance(namespace, str) or not namespace.startswith("/") or "," in namespace:
        raise UsageError(f"a namespace is a str starting with '/' without ',': {namespace!r}")


def _check_id(id: Any, required: bool) -> None:
    if id is None and not required:
        return
    if isinstance(id, bool) or not isinstance(id, int) or not 0 <= id <= MAX_ACK_ID:
        raise UsageError(f"an ack id is an int from 0 to {MAX_ACK_ID}, got {id!r}")


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


@dataclass(frozen=True)
class Connect:
    """CONNECT: the client asks to join ``namespace`` (``data``: its ``auth``
    object, or ``None``); the server grants it (``data``: ``{"sid": ...}``)."""

    __slots__ = ("namespace", "data")
    namespace: str
    data: Optional[Dict[str, Any]]

    def __init__(self, namespace: str = "/", data: Optional[Dict[str, Any]] = None):
        _check_namespace(namespace)
        if data is not None and not isinstance(data, dict):
            raise UsageError("CONNECT data is an object (dict) or None")
        object.__setattr__(self, "namespace", namespace)
        object.__setattr__(self, "data", data)

    @property
    def auth(self) -> Optional[Dict[str, Any]]:
        """The client's auth payload (the same as ``data``)."""
        return self.data


@dataclass(frozen=True)
class Disconnect:
    """DISCONNECT: one side leaves ``namespace``; no data."""

    __slots__ = ("namespace",)
    namespace: str

    def __init__(self, namespace: str = "/"):
        _check_namespace(namespace)
        object.__setattr__(self, "namespace", namespace)


@dataclass(frozen=True)
class Event:
    """EVENT (or BINARY_EVENT when ``args`` hold bytes): ``name`` with ``args``;
    ``id`` set when the sender wants an :class:`Ack`."""

    __slots__ = ("name", "args", "namespace", "id")
    name: EventName
    args: Tuple[Any, ...]
    namespace: str
    id: Optional[int]

    def __init__(self, name: EventName, args: Any = (), namespace: str = "/", id: Optional[int] = None):
        if isinstance(name, str):
            if name in RESERVED_EVENTS:
                raise UsageError(f"{name!r} is a reserved event name")
        elif not _is_number(name) or (isinstance(name, float) and not math.isfinite(name)):
            raise UsageError(f"an event name is a str (or a number), got {name!r}")
        if not isinstance(args, (list, tuple)):
            raise UsageError("event args are a list or tuple")
        _check_namespace(namespace)
        _check_id(id, required=False)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "args", tuple(args))
        object.__setattr__(self, "namespace", namespace)
        object.__setattr__(self, "id", id)


@dataclass(frozen=True)
class Ack:
    """ACK (or BINARY_ACK when ``args`` hold bytes): the answer to event ``id``."""

    __slots__ = ("id", "args", "namespace")
    id: int
    args: Tuple[Any, ...]
    namespace: str

    def __init__(self, id: int, args: Any = (), namespace: str = "/"):
        _check_id(id, required=True)
        if not isinstance(args, (list, tuple)):
            raise UsageError("ack args are a list or tuple")
        _check_namespace(namespace)
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "args", tuple(args))
        object.__setattr__(self, "namespace", namespace)


@dataclass(frozen=True)
class ConnectError:
    """CONNECT_ERROR: the server refuses ``namespace``; ``data`` is usually
    ``{"message": ...}`` (a plain str is allowed by the protocol)."""

    __slots__ = ("namespace", "data")
    namespace: str
    data: Union[str, Dict[str, Any]]

    def __init__(self, namespace: str = "/", data: Union[str, Dict[str, Any], None] = None):
        _check_namespace(namespace)
        if data is None:
            data = {"message": "connection refused"}
        if not isinstance(data, (str, dict)):
            raise UsageError("CONNECT_ERROR data is an object (dict) or a str")
        object.__setattr__(self, "namespace", namespace)
        object.__setattr__(self, "data", data)

    @property
    def message(self) -> str:
        """The refusal's message (``data`` itself when it is a str)."""
        if isinstance(self.data, str):
            return self.data
        return str(self.data.get("message", ""))


Packet = Union[Connect, Disconnect, Event, Ack, ConnectError]


# -- encoding ---------------------------------------------------------------------


def _dumps(value: Any, attachments: Optional[List[bytes]]) -> str:
    """Compact JSON; with ``attachments`` a list, bytes-like values become
    placeholders numbered in document order and are appended to it."""
    if attachments is None:
        return jsontext.dumps(value)

    def placeholder(obj: Any) -> Any:
        if isinstance(obj, _BYTES_LIKE):
            attachments.append(bytes(obj))
            return {"_placeholder": True, "num": len(attachments) - 1}
        raise TypeError(f"a value of type {obj.__class__.__name__} cannot be sent")

    return jsontext.dumps(value, default=placeholder)


def _header(kind: int, namespace: str, id: Optional[int], attachments: int = 0) -> str:
    head = str(int(kind))  # str() of an IntEnum member is its name before Python 3.11
    if attachments:
        head += f"{attachments}-"
    if namespace != "/":
        head += namespace + ","
    if id is not None:
        head += str(id)
    return head


def _encode_args(
    kind: PacketType, binary_kind: PacketType, namespace: str, id: Optional[int], data: List[Any]
) -> List[Union[str, bytes]]:
    try:
        return [_header(kind, namespace, id) + _dumps(data, None)]
    except UsageError:
        # Maybe bytes among the args (or a value nobody can send: then the
        # second pass raises the same error).
        pass
    attachments: List[bytes] = []
    text = _dumps(data, attachments)
    if not attachments:
        return [_header(kind, namespace, id) + text]
    out: List[Union[str, bytes]] = [_header(binary_kind, namespace, id, len(attachments)) + text]
    out.extend(attachments)
    return out


def encode(packet: Packet) -> List[Union[str, bytes]]:
    """Encode ``packet`` as ``[text, attachment, ...]``: the text of the first
    Engine.IO message, then one binary message per attachment (send them in
    this order with nothing in between).  An event or ack whose args hold
    ``bytes``/``bytearray``/``memoryview`` becomes BINARY_EVENT/BINARY_ACK.

    Raises :class:`UsageError` for a value JSON cannot carry (``NaN``, a
    set, a lone surrogate, ...).  As in the reference parser, an application
    object shaped like a placeholder (``{"_placeholder": true, "num": 0}``)
    inside a binary packet is read back as the attachment it names.
    """
    if isinstance(packet, Event):
        return _encode_args(
            PacketType.EVENT,
            PacketType.BINARY_EVENT,
            packet.namespace,
            packet.id,
            [packet.name, *packet.args],
        )
    if isinstance(packet, Ack):
        return _encode_args(
            PacketType.ACK, PacketType.BINARY_ACK, packet.namespace, packet.id, list(packet.args)
        )
    if isinstance(packet, Connect):
        head = _header(PacketType.CONNECT, packet.namespace, None)
        return [head if packet.data is None else head + _dumps(packet.data, None)]
    if isinstance(packet, Disconnect):
        return [_header(PacketType.DISCONNECT, packet.namespace, None)]
    if isinstance(packet, ConnectError):
        return [_header(PacketType.CONNECT_ERROR, packet.namespace, None) + _dumps(packet.data, None)]
    raise UsageError(f"not a Socket.IO packet: {packet!r}")


# -- decoding ---------------------------------------------------------------------


@dataclass
class _Header:
    """A parsed text packet, before it is typed (and before its attachments)."""

    type: PacketType
    namespace: str
    id: Optional[int]
    data: Any
    attachments: int = 0
    #: (container, key, num) of each placeholder.
    slots: List[Tuple[Any, Any, int]] = field(default_factory=list)


def _parse(text: str, max_attachments: int, max_namespace_length: int) -> _Header:
    if not isinstance(text, str):
        raise ProtocolError(f"a Socket.IO packet is text, not {text.__class__.__name__}")
    if not text:
        raise ProtocolError("empty Socket.IO packet")
    digit = text[0]
    if not ("0" <= digit <= "6"):
        raise ProtocolError(f"unknown Socket.IO packet type {digit!r}")
    kind = PacketType(ord(digit) - 48)
    pos = 1
    attachments = 0
    if kind in (PacketType.BINARY_EVENT, PacketType.BINARY_ACK):
        match = _ID.match(text, pos)
        end = match.end() if match else pos
        if not match or end >= len(text) or text[end] != "-":
            raise ProtocolError("a binary packet must start with its attachment count and '-'")
        attachments = int(match.group())
        if attachments < 1:
            raise ProtocolError("a binary packet announces at least one attachment")
        if attachments > max_attachments:
            raise LimitExceeded(
                f"a packet of {attachments} attachments exceeds max_attachments ({max_attachments})"
            )
        pos = end + 1
    namespace = "/"
    if text.startswith("/", pos):
        # The namespace runs to the next ',' or to the end of the packet.
        comma = text.find(",", pos, pos + max_namespace_length + 1)
        end = comma if comma >= 0 else len(text)
        if end - pos > max_namespace_length:
            raise LimitExceeded(f"a namespace longer than max_namespace_length ({max_namespace_length})")
        namespace = text[pos:end]
        pos = end + 1 if comma >= 0 else end
    id = None
    match = _ID.match(text, pos)
    if match:
        digits = match.group()
        if len(digits) > _ACK_DIGITS or int(digits) > MAX_ACK_ID:
            raise ProtocolError(f"ack id {digits}... is larger than {MAX_ACK_ID}")
        id = int(digits)
        pos = match.end()
    data = jsontext.loads(text[pos:]) if pos < len(text) else None
    header = _Header(kind, namespace, id, data, attachments)
    if attachments and isinstance(data, (list, dict)):
        _find_placeholders(header)
    return header


def _find_placeholders(header: _Header) -> None:
    """Record where each placeholder sits; refuse one that points past the
    announced attachments (or that is not a non-negative int)."""
    stack: List[Any] = [header.data]
    found = header.slots
    while stack:
        container = stack.pop()
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, value in items:
            if isinstance(value, dict):
                if value.get("_placeholder") is True:
                    num = value.get("num")
                    if type(num) is not int or not 0 <= num < header.attachments:
                        raise ProtocolError(
                            f"placeholder {num!r} points past the {header.attachments} attachment(s)"
                        )
                    found.append((container, key, num))
                else:
                    stack.append(value)
            elif isinstance(value, list):
                stack.append(value)


def _typed(header: _Header) -> Packet:
    """Build the packet object, turning any refusal into a ProtocolError."""
    kind, data, id, ns = header.type, header.data, header.id, header.namespace
    try:
        if kind in (PacketType.EVENT, PacketType.BINARY_EVENT):
            if not isinstance(data, list) or not data:
                raise ProtocolError("an EVENT carries a non-empty array")
            return Event(data[0], data[1:], ns, id)
        if kind in (PacketType.ACK, PacketType.BINARY_ACK):
            if not isinstance(data, list):
                raise ProtocolError("an ACK carries an array")
            if id is None:
                raise ProtocolError("an ACK without an ack id")
            return Ack(id, data, ns)
        if id is not None:
            raise ProtocolError(f"a {kind.name} packet carries no ack id")
        if kind is PacketType.CONNECT:
            return Connect(ns, data)
        if kind is PacketType.DISCONNECT:
            if data is not None:
                raise ProtocolError("a DISCONNECT carries no data")
            return Disconnect(ns)
        if data is None:
            raise ProtocolError("a CONNECT_ERROR carries a message")
        return ConnectError(ns, data)
    except UsageError as exc:
        raise ProtocolError(f"invalid {kind.name} packet: {exc}") from None


def decode(text: str, *, max_namespace_length: int = DEFAULT_MAX_NAMESPACE_LENGTH) -> Packet:
    """Decode one packet without attachments (a convenience for tests and
    for peers known to send no binary); raises :class:`ProtocolError` for
    anything invalid, including a binary packet header."""
    if isinstance(text, str) and text[:1] in ("5", "6"):
        raise ProtocolError("a binary packet header: attachments follow (use a Decoder)")
    return _typed(_parse(text, 0, max_namespace_length))


class Decoder:
    """Turns one connection's Socket.IO messages back into packets.

    Feed it the data of every Engine.IO message in order:
    :meth:`receive_text` for text, :meth:`receive_binary` for bytes.  Each
    returns the packets it completed (zero or one).  A binary packet waits
    until its announced attachments have arrived; while one waits,
    :attr:`waiting` is true and nothing but its attachments is accepted.
    After any error the decoder is empty again (the session ends anyway).
    """

    __slots__ = (
        "max_attachments",
        "max_attachment_bytes",
        "max_namespace_length",
        "_pending",
        "_buffers",
        "_size",
    )

    def __init__(
        self,
        *,
        max_attachments: int = DEFAULT_MAX_ATTACHMENTS,
        max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
        max_namespace_length: int = DEFAULT_MAX_NAMESPACE_LENGTH,
    ):
        for name, value in (
            ("max_attachments", max_attachments),
            ("max_attachment_bytes", max_attachment_bytes),
            ("max_namespace_length", max_namespace_length),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be a positive int, got {value!r}")
        self.max_attachments = max_attachments
        self.max_attachment_bytes = max_attachment_bytes
        self.max_namespace_length = max_namespace_length
        self._pending: Optional[_Header] = None
        self._buffers: List[bytes] = []
        self._size = 0

    @property
    def waiting(self) -> bool:
        """Whether a binary packet is waiting for attachments."""
        return self._pending is not None

    @property
    def missing(self) -> int:
        """How many attachments the waiting packet still lacks (0 if none waits)."""
        if self._pending is None:
            return 0
        return self._pending.attachments - len(self._buffers)

    def reset(self) -> None:
        """Drop a waiting packet (its attachments will not come)."""
        self._pending = None
        self._buffers = []
        self._size = 0

    def receive_text(self, text: str) -> List[Packet]:
        """Decode a text message; raises :class:`ProtocolError` if it is
        invalid or if attachments of an earlier packet are still missing."""
        if self._pending is not None:
            missing = self.missing
            self.reset()
            raise ProtocolError(f"a text packet while {missing} attachment(s) are missing")
        header = _parse(text, self.max_attachments, self.max_namespace_length)
        if header.attachments:
            # Type it now so that a bad header is refused before its attachments.
            _typed(header)
            self._pending = header
            return []
        return [_typed(header)]

    def receive_binary(self, data: Union[bytes, bytearray, memoryview]) -> List[Packet]:
        """Take one attachment; raises :class:`ProtocolError` when no packet
        waits for one and :class:`MessageTooLarge` when the attachments of
        one packet exceed ``max_attachment_bytes``."""
        pending = self._pending
        if pending is None:
            raise ProtocolError("binary data without a binary packet waiting for it")
        if not isinstance(data, _BYTES_LIKE):
            self.reset()
            raise ProtocolError(f"an attachment is bytes, not {data.__class__.__name__}")
        size = self._size + len(data)
        if size > self.max_attachment_bytes:
            self.reset()
            raise MessageTooLarge(size, self.max_attachment_bytes, "max_attachment_bytes")
        self._size = size
        self._buffers.append(bytes(data))
        if len(self._buffers) < pending.attachments:
            return []
        buffers = self._buffers
        self.reset()
        for container, key, num in pending.slots:
            container[key] = buffers[num]
        return [_typed(pending)]
