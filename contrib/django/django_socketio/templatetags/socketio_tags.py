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
"""

from __future__ import annotations

import json

from django import template
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


@register.simple_tag(takes_context=True)
def socketio(context) -> SafeString:
    request = context.get("request")
    literal = json.dumps(client_defaults(request), sort_keys=True).translate(_SCRIPT_ESCAPES)
    nonce = context.get("csp_nonce")
    attrs = format_html(' nonce="{}"', nonce) if nonce else ""
    return format_html(
        '<script{}>window.SOCKETIO_DEFAULTS = {};</script>\n<script{} src="{}"></script>',
        attrs,
        mark_safe(literal),
        attrs,
        client_src(),
    )
