"""``{% load socketio_tags %}{% socketio %}``: the client and where it connects.

Renders two script tags: one that sets ``window.SOCKETIO_DEFAULTS`` (read by
the client when it loads) and the client itself, so ``new io.Socket()`` with
no arguments connects to the socket server:

- host: the page's own host name (the client's default);
- port: ``SOCKETIO_PORT``, unless the page was served by the socket server
  itself (``runserver_socketio``, ``django_socketio.wsgi``): then the page's
  own port, which is also right behind a proxy;
- resource: ``SOCKETIO_RESOURCE``;
- withCredentials: true, so cross-port polls carry the session cookie.

The client is loaded from ``SOCKETIO_CLIENT_URL`` when set, else from this
app's ``<resource>/socket.io.js`` URL on the page's origin.  The tag takes the
template context; with Django's ``request`` context processor it can see
which server rendered the page.

``{% socketio "4" %}`` includes the official ``socket.io-client`` 4.x
instead (from ``SOCKETIO_V4_CLIENT_URL``; we do not ship it) and sets
``window.SOCKETIO_V4 = {url, options}`` for ``io(SOCKETIO_V4.url,
SOCKETIO_V4.options)``: the same server, port and resource.
"""

from __future__ import annotations

import json

from django import template
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from .. import conf
from ..wsgi import SAME_SERVER

register = template.Library()

_SCRIPT_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


def client_src() -> str:
    url = conf.client_url()
    if url:
        return url
    try:
        return reverse("socketio_client")
    except NoReverseMatch:  # the socket server answers this path itself
        return f"/{conf.resource()}/socket.io.js"


def client_defaults(request) -> dict:
    # Credentialed polls carry the session cookie cross-port, so handlers see
    # request.user on xhr-polling too (our server allows it for allowed origins).
    defaults = {"resource": conf.resource(), "withCredentials": True}
    if request is None or not request.META.get(SAME_SERVER):
        defaults["port"] = conf.port()
    return defaults


def v4_settings(request) -> dict:
    """``{url, options}`` for ``io(url, options)``: the socket server's origin
    (``""``, the page's own, when it served the page) and path."""
    url = ""
    if request is None or not request.META.get(SAME_SERVER):
        host = request.get_host().rsplit(":", 1)[0] if request is not None else "localhost"
        scheme = "https" if request is not None and request.is_secure() else "http"
        url = f"{scheme}://{host}:{conf.port()}"
    return {"url": url, "options": {"path": f"/{conf.resource()}/", "withCredentials": True}}


@register.simple_tag(takes_context=True)
def socketio(context, client: str = "0.6") -> SafeString:
    """The client (``"0.6"``, ours, by default; ``"4"``: socket.io-client 4.x)."""
    request = context.get("request")
    nonce = context.get("csp_nonce")
    attrs = format_html(' nonce="{}"', nonce) if nonce else ""
    if str(client) == "4":
        src = conf.v4_client_url()
        if src is None:
            raise ImproperlyConfigured(
                '{% socketio "4" %} needs SOCKETIO_V4_CLIENT_URL: the URL of socket.io-client 4.x\'s '
                "dist/socket.io.min.js on your site (we do not ship it)"
            )
        literal = json.dumps(v4_settings(request), sort_keys=True).translate(_SCRIPT_ESCAPES)
        return format_html(
            '<script{} src="{}"></script>\n<script{}>window.SOCKETIO_V4 = {};</script>',
            attrs,
            src,
            attrs,
            mark_safe(literal),
        )
    if str(client) != "0.6":
        raise template.TemplateSyntaxError(f'{{% socketio %}} takes "0.6" or "4", not {client!r}')
    literal = json.dumps(client_defaults(request), sort_keys=True).translate(_SCRIPT_ESCAPES)
    return format_html(
        '<script{}>window.SOCKETIO_DEFAULTS = {};</script>\n<script{} src="{}"></script>',
        attrs,
        mark_safe(literal),
        attrs,
        client_src(),
    )
