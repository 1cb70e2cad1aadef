"""What the server sends, encoded once per protocol generation.

Pure code.  An :class:`Emission` is one message (``send(x)``: the
``"message"`` event of a Socket.IO 4 client) or one named event
(``emit("name", *args)``).  Handed to many sessions (a broadcast), it is
encoded once for the 0.6 clients (:meth:`Emission.v06`) and once per
namespace for the Socket.IO 4 clients (:meth:`Emission.v4`), whoever
receives it.

What a 0.6 client receives
    a message as ``send`` has always encoded it; a named event as one
    ``~j~`` message ``{"$event": name, "args": [...]}`` (bytes among the
    args as base64 text), which our browser client fires as the event
    ``name`` (see README "Socket.IO 4 clients").

What a Socket.IO 4 client receives
    Engine.IO *records*: each ``\\x1e`` followed by one Engine.IO packet
    (``4`` + a Socket.IO packet, or ``b`` + base64 for an attachment).
    Queued records join into a polling payload by dropping the first
    separator; a websocket sends each record as its own frame
    (:func:`split_records`).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from . import jsontext, sio5
from .errors import UsageError
from .protocol import Heartbeat, decode_frames, encode, encode_json, parse_message

__all__ = [
    "Emission",
    "Frame",
    "EVENT_KEY",
    "records",
    "split_records",
    "record_payloads",
    "v06_as_v4",
    "v06_as_emissions",
    "to_json_args",
    "from_json_args",
]

#: The key of the ``~j~`` object that carries a named event to a 0.6 client.
EVENT_KEY = "$event"
_SEP = b"\x1e"
_BYTES_LIKE = (bytes, bytearray, memoryview)


def records(packet: sio5.Packet) -> bytes:
    """The Engine.IO records (``\\x1e``-prefixed) carrying one Socket.IO packet."""
    out = bytearray()
    for part in sio5.encode(packet):
        if isinstance(part, bytes):
            out += b"\x1eb" + base64.b64encode(part)
        else:
            out += b"\x1e4" + part.encode("utf-8")
    return bytes(out)


def record_payloads(data: bytes) -> Iterator[Tuple[bool, bytes]]:
    """The websocket messages of queued records as ``(is_text, payload)``:
    a text packet's UTF-8 as it is, an attachment's bytes decoded."""
    for record in data.split(_SEP):
        if not record:
            continue
        if record[:1] == b"b":
            yield False, binascii.a2b_base64(record[1:])
        else:
            yield True, record


def split_records(data: bytes) -> Iterator[Union[str, bytes]]:
    """The websocket frames of queued records: ``str`` for a text packet,
    ``bytes`` for an attachment."""
    for text, payload in record_payloads(data):
        yield payload.decode("utf-8") if text else payload


def _base64_bytes(value: Any) -> Any:
    if isinstance(value, _BYTES_LIKE):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (list, tuple)):
        return [_base64_bytes(v) for v in value]
    if isinstance(value, dict):
        return {k: _base64_bytes(v) for k, v in value.items()}
    return value


class Emission:
    """One message or named event, encoded lazily and at most once per protocol.

    ``event`` is ``None`` for a message (then ``args`` is ``(value,)``).
    """

    __slots__ = ("event", "args", "offset", "_v06", "_v4")

    def __init__(self, event: Optional[str], args: Tuple[Any, ...]):
        if event is not None and (not isinstance(event, str) or event in sio5.RESERVED_EVENTS):
            raise UsageError(f"cannot emit the event {event!r}")
        self.event = event
        self.args = args
        #: Set once, before the first Socket.IO 4 encoding, when the server
        #: keeps packets for connection state recovery: appended as the last
        #: argument (the client reports the last one it saw when it recovers).
        self.offset: Optional[str] = None
        self._v06: Optional[bytes] = None
        self._v4: Dict[str, bytes] = {}

    @classmethod
    def message(cls, value: Any) -> "Emission":
        return cls(None, (value,))

    def __repr__(self) -> str:
        return f"<Emission {self.event or 'message'} {len(self.args)} arg(s)>"

    def v06(self) -> bytes:
        """The payload a 0.6 client receives (see the module's rule)."""
        data = self._v06
        if data is None:
            if self.event is None:
                data = encode(self.args[0]).encode("utf-8")
            else:
                data = encode_json({EVENT_KEY: self.event, "args": _base64_bytes(list(self.args))}).encode(
                    "utf-8"
                )
            self._v06 = data
        return data

    def v4(self, namespace: str = "/") -> bytes:
        """The records a Socket.IO 4 client on ``namespace`` receives."""
        data = self._v4.get(namespace)
        if data is None:
            name = "message" if self.event is None else self.event
            args = self.args if self.offset is None else self.args + (self.offset,)
            try:
                # The common case, without binary: one text packet, built
                # directly (the name was checked when the emission was made).
                text = jsontext.dumps([name, *args])
            except UsageError:  # bytes among the args (or a value nobody can send)
                data = records(sio5.Event(name, args, namespace))
            else:
                head = b"\x1e42" if namespace == "/" else b"\x1e42" + namespace.encode("utf-8") + b","
                data = head + text.encode("utf-8")
            self._v4[namespace] = data
        return data

    def preset_v06(self, data: bytes) -> "Emission":
        """Use ``data`` as the 0.6 encoding (already made by the publisher)."""
        self._v06 = data
        return self


Frame = Union[bytes, Emission]


def v06_as_emissions(frame: bytes) -> List[Emission]:
    """A 0.6 payload as what it means: one message (or named event) per
    message in it (values as the 0.6 wire has them: scalars are text)."""
    out: List[Emission] = []
    for data in decode_frames(frame.decode("utf-8", "surrogatepass")):
        value = parse_message(data)
        if type(value) is Heartbeat:
            continue
        if isinstance(value, dict) and set(value) == {EVENT_KEY, "args"} and isinstance(value["args"], list):
            event = value[EVENT_KEY]
            if isinstance(event, str) and event not in sio5.RESERVED_EVENTS:
                out.append(Emission(event, tuple(value["args"])))
                continue
        out.append(Emission.message(value))
    return out


def v06_as_v4(frame: bytes, namespace: str = "/") -> bytes:
    """A 0.6 payload as Socket.IO 4 records (see :func:`v06_as_emissions`)."""
    return b"".join(emission.v4(namespace) for emission in v06_as_emissions(frame))


def to_json_args(args: Tuple[Any, ...]) -> List[Any]:
    """``args`` as JSON-ready values, bytes as ``{"$b64": ...}`` (for Redis)."""

    def mark(value: Any) -> Any:
        if isinstance(value, _BYTES_LIKE):
            return {"$b64": base64.b64encode(bytes(value)).decode("ascii")}
        if isinstance(value, (list, tuple)):
            return [mark(v) for v in value]
        if isinstance(value, dict):
            return {k: mark(v) for k, v in value.items()}
        return value

    return [mark(a) for a in args]


def from_json_args(values: List[Any]) -> Tuple[Any, ...]:
    """The inverse of :func:`to_json_args`; ValueError for bad base64."""

    def unmark(value: Any) -> Any:
        if isinstance(value, list):
            return [unmark(v) for v in value]
        if isinstance(value, dict):
            if len(value) == 1 and isinstance(value.get("$b64"), str):
                try:
                    return base64.b64decode(value["$b64"], validate=True)
                except binascii.Error:
                    raise ValueError("bad base64 in a binary argument") from None
            return {k: unmark(v) for k, v in value.items()}
        return value

    return tuple(unmark(v) for v in values)
