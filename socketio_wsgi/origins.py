"""Origin allow-list checks (pure).

Entries compare host and port separately, case-insensitively, with the
scheme's default port when the Origin names none:

- ``"*"`` allows every origin (including ``null``);
- ``"example.com"`` allows that host on any port;
- ``"example.com:8000"``, ``"*:8000"``, ``"example.com:*"`` as written;
- ``"https://example.com"`` also pins the scheme (and its default port);
- ``"*.example.com"`` allows sub-domains.

With no list at all the only allowed origin is the request's own Host.
A request without an ``Origin`` header does not come from a cross-origin
browser context and is allowed.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

__all__ = ["OriginPolicy"]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_Entry = Tuple[Optional[str], str, Optional[int]]  # scheme, host pattern, port (None = any)


def _split_host_port(text: str) -> Tuple[str, Optional[str]]:
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else None
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, port
    return text, None


def _parse_entry(entry: str) -> _Entry:
    entry = entry.strip().lower()
    scheme = None
    if "://" in entry:
        scheme, _, entry = entry.partition("://")
    host, port = _split_host_port(entry.rstrip("/"))
    if port in (None, "*"):
        port_num = _DEFAULT_PORTS.get(scheme or "") if port is None and scheme else None
    else:
        try:
            port_num = int(port)
        except ValueError:
            raise ValueError(f"bad port in origin entry {entry!r}") from None
    return scheme, host or "*", port_num


def parse_origin(origin: str) -> Optional[Tuple[str, str, int]]:
    """``(scheme, host, port)`` of an Origin header value, or None if unusable."""
    try:
        parts = urlsplit(origin.strip())
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    if not scheme or not host or port is None:
        return None
    return scheme, host, port


def _host_matches(pattern: str, host: str) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return pattern == host


class OriginPolicy:
    """Decides whether an ``Origin`` header value may talk to this server."""

    def __init__(self, origins: Union[None, str, Sequence[str]] = None):
        if isinstance(origins, str):
            origins = [origins]
        self.allow_all = origins is not None and any(o.strip() == "*" for o in origins)
        self.same_origin_only = origins is None
        self.entries: List[_Entry] = (
            [] if origins is None or self.allow_all else [_parse_entry(o) for o in origins]
        )

    def allows(self, origin: Optional[str], host: Optional[str] = None, request_scheme: str = "http") -> bool:
        if origin is None:
            return True
        if self.allow_all:
            return True
        parsed = parse_origin(origin)
        if parsed is None:  # "null" and garbage
            return False
        scheme, o_host, o_port = parsed
        if self.same_origin_only:
            if not host:
                return False
            h_host, h_port = _split_host_port(host.lower())
            port = int(h_port) if h_port and h_port.isdigit() else _DEFAULT_PORTS.get(request_scheme, 80)
            return o_host == h_host and o_port == port
        for e_scheme, e_host, e_port in self.entries:
            if e_scheme is not None and e_scheme != scheme:
                continue
            if e_port is not None and e_port != o_port:
                continue
            if _host_matches(e_host, o_host):
                return True
        return False
