"""The six Socket.IO 0.6 transports, by URL name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Iterable

from .base import HttpTransport, Transport
from .polling import JsonpPolling, XhrPolling
from .streaming import HtmlFile, XhrMultipart
from .websocket import WebSocketTransport

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Engine

__all__ = ["Transport", "HttpTransport", "build_transports", "TRANSPORT_CLASSES"]

TRANSPORT_CLASSES = {
    "websocket": WebSocketTransport,
    "flashsocket": WebSocketTransport,
    "htmlfile": HtmlFile,
    "xhr-multipart": XhrMultipart,
    "xhr-polling": XhrPolling,
    "jsonp-polling": JsonpPolling,
}


def build_transports(engine: "Engine", names: Iterable[str]) -> Dict[str, Transport]:
    """One transport object per enabled name."""
    return {name: TRANSPORT_CLASSES[name](engine, name) for name in names}
