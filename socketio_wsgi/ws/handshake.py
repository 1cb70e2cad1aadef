"""The opening handshake (RFC 6455 section 4.2), checked from a WSGI environ.

Pure functions: :func:`check_request` says why a request cannot be upgraded
(as a :class:`HandshakeError` carrying the HTTP status, 400 or 426) and
:func:`response_headers` builds the 101 answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any, Dict, List, Optional, Tuple

from ..errors import ProtocolError

__all__ = ["HandshakeError", "check_request", "accept_key", "response_headers", "is_upgrade_request", "GUID"]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class HandshakeError(ProtocolError):
    """The request is not a valid websocket handshake.

    ``status`` (also ``http_status``): 400, or 426 for a version we do not
    speak; ``headers``: to add to the refusal (``Sec-WebSocket-Version: 13``
    with a 426)."""

    def __init__(self, reason: str, status: int = 400, headers: Optional[List[Tuple[str, str]]] = None):
        super().__init__(reason)
        self.reason = reason
        self.http_status = status
        self.headers = headers or []

    @property
    def status(self) -> int:
        return self.http_status


def _tokens(value: str) -> List[str]:
    return [t.strip().lower() for t in value.split(",")]


def is_upgrade_request(environ: Dict[str, Any]) -> bool:
    """True if the request asks for a websocket upgrade (valid or not)."""
    return "websocket" in _tokens(environ.get("HTTP_UPGRADE", ""))


def check_request(environ: Dict[str, Any]) -> str:
    """Validate a websocket handshake; return its ``Sec-WebSocket-Key``.

    Raises :class:`HandshakeError` saying what is wrong."""
    for name in (
        "HTTP_UPGRADE",
        "HTTP_CONNECTION",
        "HTTP_SEC_WEBSOCKET_KEY",
        "HTTP_SEC_WEBSOCKET_VERSION",
        "HTTP_SEC_WEBSOCKET_EXTENSIONS",
    ):
        value = environ.get(name, "")
        if "\r" in value or "\n" in value or "\0" in value:
            # obs-fold (a header continued on the next line) or a raw control byte
            raise HandshakeError(
                f"{name[5:].replace('_', '-').title()} header is folded "
                "over lines or holds control characters"
            )
    if environ.get("REQUEST_METHOD") != "GET":
        raise HandshakeError("a websocket handshake must be a GET")
    if environ.get("SERVER_PROTOCOL", "HTTP/1.1") not in ("HTTP/1.1",):
        raise HandshakeError("a websocket handshake needs HTTP/1.1")
    if "websocket" not in _tokens(environ.get("HTTP_UPGRADE", "")):
        raise HandshakeError("missing Upgrade: websocket")
    if "upgrade" not in _tokens(environ.get("HTTP_CONNECTION", "")):
        raise HandshakeError("missing Connection: Upgrade")
    version = environ.get("HTTP_SEC_WEBSOCKET_VERSION")
    if version is None or version.strip() != "13":
        raise HandshakeError(
            f"unsupported Sec-WebSocket-Version {(version or '')[:20]!r}; this server speaks 13",
            426,
            [("Sec-WebSocket-Version", "13")],
        )
    key = str(environ.get("HTTP_SEC_WEBSOCKET_KEY", "")).strip()
    if not key:
        raise HandshakeError("missing Sec-WebSocket-Key")
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raw = b""
    if len(raw) != 16:
        raise HandshakeError(f"Sec-WebSocket-Key {key[:40]!r} is not 16 bytes in base64")
    return key


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for ``key``."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode("ascii")).digest()).decode("ascii")


def response_headers(key: str, extensions: Optional[str] = None) -> List[Tuple[str, str]]:
    """Headers of the 101 answer."""
    headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept_key(key))]
    if extensions:
        headers.append(("Sec-WebSocket-Extensions", extensions))
    return headers
