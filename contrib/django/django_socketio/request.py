"""The request handlers receive: a real ``HttpRequest`` that went through MIDDLEWARE.

The first HTTP request of a session (the websocket upgrade, or the first
poll) is turned into a Django ``WSGIRequest`` and run through the project's
middleware chain, exactly as a view would see it, so ``request.user``,
``request.session`` and anything else middleware attaches are there.  The
"view" at the end of the chain only marks the request as accepted; if a
middleware answers by itself instead (a redirect, a 403), the connection is
refused with that status.

``request_started`` and ``request_finished`` are sent around the middleware
run, as Django's own handler does, so database connections opened by
middleware are released at once (handlers get their own cleanup, see
:mod:`django_socketio.dispatch`).
"""

from __future__ import annotations

import io
import logging
import sys
from typing import Any

from django.core import signals
from django.core.handlers.base import BaseHandler
from django.core.handlers.wsgi import WSGIRequest, get_script_name
from django.http import HttpRequest, HttpResponse
from django.urls import ResolverMatch, set_script_prefix

from socketio_wsgi.errors import ConnectionRefused
from socketio_wsgi.request import kept_environ

__all__ = ["DjangoRequestAdapter", "detached_environ"]

log = logging.getLogger("django_socketio")
_ACCEPTED = "_django_socketio_accepted"


def detached_environ(environ: dict) -> dict:
    """A copy of ``environ`` that is safe to keep for the whole session: no
    server streams or sockets, and an empty body."""
    out: dict = kept_environ(environ)
    out.setdefault("wsgi.url_scheme", "http")
    out["wsgi.input"] = io.BytesIO(b"")
    out["wsgi.errors"] = sys.stderr
    out["CONTENT_LENGTH"] = "0"
    return out


def _accept(request: HttpRequest) -> HttpResponse:
    """The end of the chain: the request got through every middleware."""
    setattr(request, _ACCEPTED, True)
    return HttpResponse(b"", content_type="text/plain")


class _MiddlewareOnly(BaseHandler):
    """Django's request handler with URL resolution replaced by :func:`_accept`,
    so view middleware runs too, whatever the project's URLconf says."""

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        match = ResolverMatch(_accept, (), {}, url_name="socketio")
        request.resolver_match = match
        return match


class DjangoRequestAdapter:
    """``adapter(environ) -> HttpRequest``, the ``request_adapter`` option of
    ``SocketIOMiddleware``; raises ``ConnectionRefused`` when middleware
    answers the request itself."""

    def __init__(self) -> None:
        self.handler = _MiddlewareOnly()
        self.handler.load_middleware()

    def __call__(self, environ: dict) -> HttpRequest:
        environ = detached_environ(environ)
        set_script_prefix(get_script_name(environ))
        signals.request_started.send(sender=self.__class__, environ=environ)
        request = WSGIRequest(environ)
        response: Any = None
        try:
            response = self.handler.get_response(request)
        finally:
            if response is not None:
                response.close()  # sends request_finished: DB connections are released
            else:
                signals.request_finished.send(sender=self.__class__)
        if not getattr(request, _ACCEPTED, False):
            status = response.status_code
            log.warning(
                "Socket.IO connection from %s refused by middleware: HTTP %d",
                environ.get("REMOTE_ADDR", "?"),
                status,
            )
            raise ConnectionRefused(f"refused by the site's middleware (HTTP {status})")
        return request
