"""The two URLs of ``django_socketio.urls``."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Tuple

from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.views.decorators.http import condition, require_safe

from socketio_wsgi.static import CLIENT_PATH

__all__ = ["client_js", "socketio"]


@lru_cache(maxsize=1)
def _client() -> Tuple[bytes, str]:
    with open(CLIENT_PATH, "rb") as fh:
        body = fh.read()
    return body, hashlib.sha256(body).hexdigest()[:20]


@require_safe
@condition(etag_func=lambda request: _client()[1])
def client_js(request: HttpRequest) -> HttpResponse:
    """The socketio_wsgi browser client, served by Django at the same path the
    socket server serves it, so a page rendered by any server can load it."""
    response = HttpResponse(_client()[0], content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def socketio(request: HttpRequest) -> HttpResponse:
    """A Socket.IO request that reached Django: nothing in front of it speaks Socket.IO."""
    return HttpResponseNotFound(
        "This Socket.IO request reached Django itself. Socket.IO is served by "
        "`manage.py runserver_socketio` or by django_socketio.wsgi.application "
        "under a gevent-websocket server; check the page's SOCKETIO_PORT.\n",
        content_type="text/plain; charset=utf-8",
    )
