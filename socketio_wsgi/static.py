"""Serve our browser client at ``/<resource>/socket.io.js`` with an ETag."""

from __future__ import annotations

import hashlib
import os
from typing import Callable, Dict, List, Optional, Tuple

from .http import respond, text_response

__all__ = ["FILES", "CLIENT_PATH", "serve"]

CLIENT_PATH = os.path.join(os.path.dirname(__file__), "static", "socketio_wsgi", "socket.io.js")
FILES = {"socket.io.js": (CLIENT_PATH, "text/javascript; charset=UTF-8")}
_cache: Dict[str, Tuple[bytes, str]] = {}


def _load(name: str) -> Optional[Tuple[bytes, str]]:
    if name not in _cache:
        path, _ = FILES[name]
        try:
            with open(path, "rb") as fh:
                body = fh.read()
        except OSError:
            return None
        _cache[name] = (body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
    return _cache[name]


def serve(name: str, environ: dict, start_response: Callable) -> List[bytes]:
    loaded = _load(name)
    if loaded is None:
        return text_response(start_response, 404, f"{name} is not installed")
    body, etag = loaded
    headers = [("ETag", etag), ("X-Content-Type-Options", "nosniff")]
    if environ.get("HTTP_IF_NONE_MATCH") == etag:
        start_response("304 Not Modified", headers)
        return []
    return respond(start_response, 200, body, FILES[name][1], headers)
