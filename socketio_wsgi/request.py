"""The request object handlers receive, for plain WSGI applications.

A request adapter is any callable ``adapter(environ) -> request``; this is the
default one.  Django's adapter (in ``django_socketio``) returns a real
``HttpRequest`` instead.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Dict, List
from urllib.parse import parse_qs

__all__ = ["WSGIRequest", "kept_environ"]


def kept_environ(environ: dict) -> Dict[str, str]:
    """What of a request's environ a session may keep for its whole life: the
    text entries (CGI variables, headers, ``wsgi.url_scheme``).  Servers put
    objects beside them (streams, sockets, their handler's methods), and a
    kept reference to one pins its buffers for as long as the session lives."""
    return {k: v for k, v in environ.items() if type(v) is str}


class WSGIRequest:
    """A small read-only view of the WSGI environ of a session's first request."""

    def __init__(self, environ: dict):
        self.environ = kept_environ(environ)  # the request outlives its connection

    @property
    def META(self) -> dict:
        """Alias of ``environ``, so log formats written for Django work."""
        return self.environ

    @property
    def method(self) -> str:
        return self.environ.get("REQUEST_METHOD", "GET")

    @property
    def path(self) -> str:
        return self.environ.get("PATH_INFO", "")

    @property
    def remote_addr(self) -> str:
        return self.environ.get("REMOTE_ADDR", "")

    @property
    def headers(self) -> Dict[str, str]:
        out = {k[5:].replace("_", "-").title(): v for k, v in self.environ.items() if k.startswith("HTTP_")}
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if self.environ.get(key):
                out[key.replace("_", "-").title()] = self.environ[key]
        return out

    @property
    def GET(self) -> Dict[str, List[str]]:
        return parse_qs(self.environ.get("QUERY_STRING", ""), keep_blank_values=True)

    @property
    def COOKIES(self) -> Dict[str, str]:
        jar = SimpleCookie()
        try:
            jar.load(self.environ.get("HTTP_COOKIE", ""))
        except Exception:  # a malformed Cookie header is not the handler's problem
            return {}
        return {k: m.value for k, m in jar.items()}

    def __repr__(self) -> str:
        return f"<WSGIRequest {self.method} {self.path}>"
