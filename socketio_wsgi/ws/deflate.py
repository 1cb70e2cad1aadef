"""permessage-deflate (RFC 7692): negotiation and the zlib state, without I/O.

:func:`negotiate` reads a client's ``Sec-WebSocket-Extensions`` offers and
returns the response header plus a :class:`Deflate` for the connection, or
None when no offer is acceptable.  Inflation is bounded: the caller passes the
most output it will accept, so a small compressed message can never expand
past the connection's ``max_size`` (a decompression bomb stops at the limit).
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["Compression", "Deflate", "negotiate", "parse_extensions"]

_TAIL = b"\x00\x00\xff\xff"
_PARAMS = (
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
)


@dataclasses.dataclass(frozen=True)
class Compression:
    """How the server compresses (options of :func:`socketio_wsgi.websocket.accept`).

    The defaults come from measurements (README, "Websockets without
    Socket.IO"): a 10 KiB JSON message shrinks to ~20 % for ~0.1 ms of CPU at
    level 1, a 100-byte one only to ~77 % for several times the CPU of an
    uncompressed send, hence the threshold.

    ``threshold``: messages shorter than this many bytes go uncompressed.
    ``level`` and ``mem_level``: zlib's.  ``server_max_window_bits``: the
    LZ77 window we compress with (9-15; a client's smaller limit wins).
    ``server_no_context_takeover``: compress each message on its own, so that
    one compressed frame is shared by every recipient of a broadcast and no
    compressor stays allocated between messages.
    ``client_no_context_takeover``: ask the client to do the same, so that no
    inflate window (32 KiB) stays allocated per connection between messages.
    ``client_max_window_bits``: ask the client for a smaller window when it
    offers to accept one (None: leave it at its choice).
    """

    threshold: int = 128
    level: int = 1
    mem_level: int = 5
    server_no_context_takeover: bool = True
    client_no_context_takeover: bool = True
    server_max_window_bits: int = 12
    client_max_window_bits: Optional[int] = None

    def __post_init__(self) -> None:
        if not 0 <= self.threshold:
            raise ValueError("threshold must be >= 0")
        if not -1 <= self.level <= 9:
            raise ValueError("level must be -1..9")
        if not 1 <= self.mem_level <= 9:
            raise ValueError("mem_level must be 1..9")
        if not 9 <= self.server_max_window_bits <= 15:
            raise ValueError("server_max_window_bits must be 9..15")
        if self.client_max_window_bits is not None and not 8 <= self.client_max_window_bits <= 15:
            raise ValueError("client_max_window_bits must be 8..15 or None")


class Deflate:
    """The negotiated parameters of one connection and its zlib objects.

    ``share_key`` is the same for every connection whose compressed frames are
    byte-identical for the same message (no context takeover on our side, same
    window, level and memory level), else None: a broadcast compresses once
    per key.
    """

    __slots__ = (
        "threshold",
        "level",
        "mem_level",
        "local_window",
        "local_no_takeover",
        "remote_no_takeover",
        "share_key",
        "_compressor",
        "_decompressor",
    )

    def __init__(
        self,
        *,
        local_no_takeover: bool = False,
        remote_no_takeover: bool = False,
        local_window: int = 15,
        threshold: int = 128,
        level: int = 6,
        mem_level: int = 8,
    ):
        if local_window < 9:
            raise ValueError("zlib compresses with a window of 9 to 15 bits")
        self.threshold = threshold
        self.level = level
        self.mem_level = mem_level
        self.local_window = local_window
        self.local_no_takeover = local_no_takeover
        self.remote_no_takeover = remote_no_takeover
        self.share_key: Optional[Tuple[Any, ...]] = (
            ("deflate", local_window, level, mem_level) if local_no_takeover else None
        )
        self._compressor: Optional[Any] = None  # a zlib compress object
        self._decompressor: Optional[Any] = None  # a zlib decompress object

    def compress(self, data: bytes) -> bytes:
        """One message's compressed payload (the trailing 00 00 ff ff removed)."""
        c = self._compressor
        if c is None:
            c = zlib.compressobj(self.level, zlib.DEFLATED, -self.local_window, self.mem_level)
        out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
        self._compressor = None if self.local_no_takeover else c
        return out[:-4] if out.endswith(_TAIL) else out

    def decompress(self, chunk: bytes, final: bool, max_length: int) -> bytes:
        """Inflate part of a message, producing at most ``max_length`` bytes
        (``final``: the last of it).  Output of exactly ``max_length`` means
        the message is over the caller's limit.  Raises zlib.error on corrupt
        input."""
        d = self._decompressor
        if d is None:
            d = self._decompressor = zlib.decompressobj(-15)  # inflates any window size
        out = d.decompress(chunk, max_length) if chunk else b""
        if final and len(out) < max_length:
            if d.eof:
                self._decompressor = None
                return out
            out += d.decompress(_TAIL, max_length - len(out))
        if final and (self.remote_no_takeover or d.eof):
            self._decompressor = None
        return out


def parse_extensions(header: str) -> List[Tuple[str, List[Tuple[str, Optional[str]]]]]:
    """``Sec-WebSocket-Extensions`` as ``[(name, [(param, value or None), ...])]``.

    Raises ValueError on a syntax error."""
    out: List[Tuple[str, List[Tuple[str, Optional[str]]]]] = []
    for item in header.split(","):
        parts = [p.strip() for p in item.split(";")]
        if not parts[0]:
            if len(parts) == 1 and not item.strip():
                continue  # tolerate empty list elements ("a, , b")
            raise ValueError("extension without a name")
        params: List[Tuple[str, Optional[str]]] = []
        for part in parts[1:]:
            name, eq, value = part.partition("=")
            name = name.strip()
            if not name or not _is_token(name):
                raise ValueError(f"bad extension parameter {part!r}")
            if eq:
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                if not value or not _is_token(value):
                    raise ValueError(f"bad extension parameter value {part!r}")
                params.append((name, value))
            else:
                params.append((name, None))
        if not _is_token(parts[0]):
            raise ValueError(f"bad extension name {parts[0]!r}")
        out.append((parts[0], params))
    return out


def _is_token(text: str) -> bool:
    return all(33 <= ord(c) < 127 and c not in '()<>@,;:\\"/[]?={}' for c in text)


def _bits(value: Optional[str]) -> int:
    if value is None or not value.isdigit() or value[0] == "0" or len(value) > 2:
        raise ValueError("window bits must be a number from 8 to 15")
    bits = int(value)
    if not 8 <= bits <= 15:
        raise ValueError("window bits must be a number from 8 to 15")
    return bits


def negotiate(header: str, options: Compression) -> Optional[Tuple[str, Deflate]]:
    """Accept the first acceptable permessage-deflate offer in ``header``.

    Returns ``(response header value, Deflate)``, or None when nothing is
    acceptable (the connection then runs uncompressed).  Offers with unknown
    or repeated parameters or bad values are declined (RFC 7692 section 5)."""
    try:
        offers = parse_extensions(header)
    except ValueError:
        return None
    for name, params in offers:
        if name.lower() != "permessage-deflate":
            continue
        seen: Dict[str, Optional[str]] = {}
        try:
            for key, value in params:
                key = key.lower()
                if key not in _PARAMS or key in seen:
                    raise ValueError(key)
                seen[key] = value
            if (
                seen.get("server_no_context_takeover", None) is not None
                or seen.get("client_no_context_takeover", None) is not None
            ):
                raise ValueError("no_context_takeover takes no value")
            server_bits = _bits(seen["server_max_window_bits"]) if "server_max_window_bits" in seen else None
            client_bits = seen.get("client_max_window_bits")
            client_limit = _bits(client_bits) if client_bits is not None else 15
        except ValueError:
            continue
        if server_bits == 8:
            continue  # zlib cannot compress with a 256-byte window
        response = ["permessage-deflate"]
        local_no_takeover = options.server_no_context_takeover or "server_no_context_takeover" in seen
        if local_no_takeover:
            response.append("server_no_context_takeover")
        remote_no_takeover = options.client_no_context_takeover or "client_no_context_takeover" in seen
        if remote_no_takeover:
            response.append("client_no_context_takeover")
        # A smaller window than the client allows is always inflatable: only
        # a limit the client asked for is announced.
        window = options.server_max_window_bits
        if server_bits is not None:
            window = min(window, server_bits)
            response.append(f"server_max_window_bits={server_bits}")
        if "client_max_window_bits" in seen and options.client_max_window_bits is not None:
            response.append(f"client_max_window_bits={min(client_limit, options.client_max_window_bits)}")
        deflate = Deflate(
            local_no_takeover=local_no_takeover,
            remote_no_takeover=remote_no_takeover,
            local_window=window,
            threshold=options.threshold,
            level=options.level,
            mem_level=options.mem_level,
        )
        return "; ".join(response), deflate
    return None
