"""JSON with one rule for both directions and both protocol generations.

What :func:`loads` accepts, :func:`dumps` can send back: no ``NaN`` or
``Infinity`` (nor a number that overflows to it), no integer longer than
:data:`MAX_INT_DIGITS` digits, no lone surrogate in any string or key.  Peer
input that breaks the rule raises :class:`~socketio_wsgi.errors.ProtocolError`
(a malformed message); a value the application cannot send raises
:class:`~socketio_wsgi.errors.UsageError`.  Pure, no I/O.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Callable, Optional

from .errors import ProtocolError, UsageError

__all__ = ["loads", "dumps", "MAX_INT_DIGITS", "has_lone_surrogate"]

#: The longest JSON integer accepted (Python's own limit for str -> int is 4300).
MAX_INT_DIGITS = 400

_SURROGATE = re.compile("[\ud800-\udfff]")
#: A ``\\uD800``-``\\uDFFF`` escape in JSON text (a surrogate, maybe unpaired).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
#: Text that might hold a JSON number over the limits: a run of 200+ digits
#: or an exponent of 100 or more (overflowing a float with an exponent below
#: 100 takes more than 200 digits).  It may match inside strings: then every
#: number is checked, which is only slower.
_BIG_NUMBER = re.compile(r"[0-9]{200}|[eE][+]?0*[1-9][0-9]{2}")


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a surrogate code point (which UTF-8 cannot carry)."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def _refuse_constant(name: str) -> Any:
    raise ProtocolError(f"{name} is not JSON (the encoder could never send it back)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ProtocolError(f"the number {text[:20]}... overflows to Infinity")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise ProtocolError(f"a JSON integer of {len(text)} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _holds_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


# Built once: json.loads() with keyword arguments builds a decoder per call.
_plain_decode = json.JSONDecoder(parse_constant=_refuse_constant).decode
_checking_decode = json.JSONDecoder(
    parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int
).decode
_plain_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def loads(text: str) -> Any:
    """Decode peer JSON under the rule above; :class:`ProtocolError` otherwise."""
    try:
        if _BIG_NUMBER.search(text):
            value = _checking_decode(text)  # check each number: slower, only when needed
        else:
            value = _plain_decode(text)
    except ProtocolError:
        raise
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"invalid JSON: {exc}") from None
    # Paired surrogate escapes decode to one character; an unpaired one stays
    # a lone surrogate, which no encoder can turn into UTF-8 again.
    if _SURROGATE_ESCAPE.search(text) and _holds_surrogate(value):
        raise ProtocolError("JSON holds a lone surrogate escape")
    return value


def dumps(value: Any, default: Optional[Callable[[Any], Any]] = None) -> str:
    """Compact JSON text of ``value``; :class:`UsageError` if it cannot be sent
    (``default`` as for :func:`json.dumps`, for values JSON has no type for)."""
    try:
        if default is None:
            text = _plain_encode(value)
        else:
            text = json.dumps(
                value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=default
            )
    except (TypeError, ValueError, RecursionError) as exc:
        raise UsageError(f"value is not JSON serialisable: {exc}") from None
    if has_lone_surrogate(text):
        raise UsageError("text holds a lone surrogate; it cannot be sent as UTF-8")
    return text
