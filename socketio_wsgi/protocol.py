"""Socket.IO 0.6 message framing: pure functions, no I/O.

A *payload* is what one transport unit carries (a websocket frame, a polling
body, the ``data`` field of a POST): zero or more frames ``~m~<len>~m~<data>``
where ``<len>`` counts UTF-16 code units, exactly as the JavaScript client
counts ``string.length``.  Every malformed input raises :class:`ProtocolError`;
a value that cannot be sent raises :class:`UsageError` (the application's
mistake, never the client's).  What the decoder accepts, the encoder can send:
JSON without ``NaN``/``Infinity`` and text without lone surrogates.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any, Iterable, List, Optional

from . import jsontext
from .errors import LimitExceeded, ProtocolError, UsageError

__all__ = [
    "ProtocolError",
    "UsageError",
    "Heartbeat",
    "utf16_len",
    "encode",
    "encode_frame",
    "encode_heartbeat",
    "decode",
    "decode_frames",
    "parse_message",
]

FRAME = "~m~"
JSON_PREFIX = "~j~"
HEARTBEAT_PREFIX = "~h~"
_MAX_LENGTH_DIGITS = 12
_SCAN_BELOW = 100  # payloads shorter than this are parsed frame by frame
_PREFIXES = (JSON_PREFIX, HEARTBEAT_PREFIX)  # what a text message may not start with
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class Heartbeat(str):
    """A decoded ``~h~<n>`` message; a ``str`` holding the counter text."""

    __slots__ = ()

    @property
    def wire(self) -> str:
        return HEARTBEAT_PREFIX + self


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (JavaScript ``.length``)."""
    if text.isascii():
        return len(text)
    return len(text) + len(_ASTRAL.findall(text))


def _check_text(text: str) -> None:
    if not text.isascii() and _SURROGATE.search(text):
        raise UsageError("text holds a lone surrogate; it cannot be sent as UTF-8")


def encode_frame(data: str) -> str:
    """Frame one message's raw ``data`` (no prefix handling)."""
    _check_text(data)
    return f"{FRAME}{utf16_len(data)}{FRAME}{data}"


def encode_heartbeat(counter: int) -> str:
    return encode_frame(f"{HEARTBEAT_PREFIX}{counter}")


def _js_number(value: float) -> str:
    """``String(x)`` of a JavaScript number (ECMAScript Number::toString)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    assert isinstance(exponent, int)  # a finite number (NaN and infinities returned above)
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    n = k + exponent  # the decimal point sits after the n-th digit
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        text = f"{mantissa}e{'+' if e > 0 else '-'}{abs(e)}"
    return sign + text


def _dumps(value: Any) -> str:
    return jsontext.dumps(value)


def _message_data(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        if value.startswith(_PREFIXES):
            raise UsageError(
                f"a text message may not start with {value[:3]!r}: the peer would read it "
                "as JSON or a heartbeat; send a dict instead"
            )
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _js_number(value)
    if isinstance(value, dict):
        return JSON_PREFIX + _dumps(value)
    if isinstance(value, (list, tuple)):
        # Nested sequences are string-converted as JavaScript would: a,b
        return ",".join("" if v is None else _message_data(v) for v in value)
    raise UsageError(f"cannot send a value of type {type(value).__name__}")


def encode(value: Any) -> str:
    """Encode what ``send(value)`` means into a payload.

    ``str`` as is; ``dict`` as ``~j~`` JSON; ``list``/``tuple`` as one message
    per element; ``None`` as the empty message; ``bool``/numbers as their
    JavaScript text (the 0.6 protocol has no typed scalars).
    """
    if type(value) is str and value.isascii() and not value.startswith(_PREFIXES):
        return f"{FRAME}{len(value)}{FRAME}{value}"  # the common case, in one step
    if isinstance(value, (list, tuple)):
        return "".join(encode_frame(_message_data(v)) for v in value)
    return encode_frame(_message_data(value))


def encode_json(value: Any) -> str:
    """Encode any JSON value as one ``~j~`` message (used by typed clients)."""
    return encode_frame(JSON_PREFIX + _dumps(value))


def _split_plain(payload: str, limit: int) -> Optional[List[str]]:
    """The common case in a few C-level calls: no frame's data holds ``~m~``.

    Returns the frames' data, or ``None`` when the split does not line up
    with the announced lengths (a frame holds ``~m~``, or the payload is
    malformed): the exact parser then decides.  Raises
    :class:`LimitExceeded` once ``limit`` frames line up and more follow; the
    split stops there, however many frames the payload announces.
    """
    if limit < 0:
        parts = payload.split(FRAME)
        over = False
    else:
        parts = payload.split(FRAME, 2 * limit + 1)
        over = len(parts) == 2 * limit + 2  # a separator opens frame limit + 1
        if over:
            parts.pop()
    if parts[0] or len(parts) % 2 == 0:
        return None
    lengths, data = parts[1::2], parts[2::2]
    if lengths:
        digits = "".join(lengths)
        if not (digits.isdigit() and digits.isascii() and all(lengths)):
            return None
        if max(map(len, lengths)) > _MAX_LENGTH_DIGITS or list(map(int, lengths)) != list(map(len, data)):
            return None
    if over:
        raise LimitExceeded(f"a payload may hold at most {limit} messages")
    return data


def _decode_bmp(payload: str, limit: int) -> List[str]:
    if len(payload) < _SCAN_BELOW:  # a few short frames: scanning costs less than splitting
        return _scan_bmp(payload, limit)
    fast = _split_plain(payload, limit)
    return _scan_bmp(payload, limit) if fast is None else fast


def _scan_bmp(payload: str, limit: int) -> List[str]:
    """The exact parser: frame by frame, by the announced lengths."""
    out: List[str] = []
    pos = 0
    end = len(payload)
    while pos < end:
        if len(out) == limit:
            raise LimitExceeded(f"a payload may hold at most {limit} messages")
        if not payload.startswith(FRAME, pos):
            raise ProtocolError(f"expected '~m~' at offset {pos}")
        digits_start = pos + 3
        digits_end = payload.find(FRAME, digits_start, digits_start + _MAX_LENGTH_DIGITS + 1)
        if digits_end == -1:
            raise ProtocolError(f"missing length terminator after offset {digits_start}")
        digits = payload[digits_start:digits_end]
        if not (digits.isascii() and digits.isdigit()):
            raise ProtocolError(f"frame length {digits!r} is not a decimal number")
        length = int(digits)
        start = digits_end + 3
        if start + length > end:
            raise ProtocolError(f"frame announces {length} units but only {end - start} remain")
        out.append(payload[start : start + length])
        pos = start + length
    return out


def _decode_astral(payload: str, limit: int) -> List[str]:
    # Work in UTF-16 so that lengths are code units; an astral character is two.
    raw = payload.encode("utf-16-le")
    units = raw.decode("latin-1")  # one char per byte: two chars per code unit
    frame = FRAME.encode("utf-16-le").decode("latin-1")
    out: List[str] = []
    pos = 0
    end = len(units)
    while pos < end:
        if len(out) == limit:
            raise LimitExceeded(f"a payload may hold at most {limit} messages")
        if not units.startswith(frame, pos):
            raise ProtocolError(f"expected '~m~' at unit {pos // 2}")
        digits_start = pos + 6
        i = digits_start
        scan_end = min(end - 1, digits_start + 2 * _MAX_LENGTH_DIGITS)
        while i < scan_end and units[i + 1] == "\x00" and "0" <= units[i] <= "9":
            i += 2
        digits = units[digits_start:i:2]
        if not digits:
            raise ProtocolError(f"frame length at unit {digits_start // 2} is not a decimal number")
        if not units.startswith(frame, i):
            raise ProtocolError(f"missing length terminator at unit {i // 2}")
        digits_end = i
        length = int(digits) * 2
        start = digits_end + 6
        if start + length > end:
            raise ProtocolError(f"frame announces {length // 2} units but only {(end - start) // 2} remain")
        data = raw[start : start + length].decode("utf-16-le", "surrogatepass")
        if _SURROGATE.search(data):
            raise ProtocolError("frame length splits a surrogate pair")
        out.append(data)
        pos = start + length
    return out


def decode_frames(payload: str, max_messages: Optional[int] = None) -> List[str]:
    """Split a payload into the raw data of its frames (no prefix parsing).

    More than ``max_messages`` frames raise :class:`LimitExceeded` as soon as
    the next one is found, so a payload of a million tiny frames costs no more
    than ``max_messages`` of them.
    """
    if not payload:
        return []
    limit = -1 if max_messages is None else max_messages
    if payload.isascii():
        return _decode_bmp(payload, limit)
    if _SURROGATE.search(payload):
        raise ProtocolError("payload holds a lone surrogate (not valid UTF-16 text)")
    if not _ASTRAL.search(payload):
        return _decode_bmp(payload, limit)
    return _decode_astral(payload, limit)


def parse_message(data: str) -> Any:
    """Turn one frame's data into a value: a :class:`Heartbeat`, JSON, or text."""
    if data.startswith(JSON_PREFIX):
        return jsontext.loads(data[3:])
    if data.startswith(HEARTBEAT_PREFIX):
        return Heartbeat(data[3:])
    return data


def decode(payload: str) -> List[Any]:
    """Decode a whole payload into values; all or nothing."""
    return [parse_message(data) for data in decode_frames(payload)]


def encode_many(values: Iterable[Any]) -> str:
    """Encode several ``send`` calls into one payload."""
    return "".join(encode(v) for v in values)
