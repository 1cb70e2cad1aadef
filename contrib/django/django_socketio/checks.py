"""System checks (``manage.py check``): origins that let any website in.

A browser sends the user's cookies with a Socket.IO request to your server
whatever page opened it, so an origin allow-list that admits any host lets
any website open a socket as the logged-in user, and handlers would act for
them.  Two warnings, both in the ``security`` tag:

- ``django_socketio.W001``: ``SOCKETIO_ORIGINS`` allows any host (``"*"``,
  or an entry such as ``"*:443"`` or ``"https://*"``);
- ``django_socketio.W002``: ``SOCKETIO_ORIGINS`` is unset and
  ``ALLOWED_HOSTS`` holds ``"*"``, which the origins follow.

Silence one with ``SILENCED_SYSTEM_CHECKS`` if the site really has no
logged-in users.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register

from socketio_wsgi.origins import OriginPolicy

__all__ = ["check_origins", "any_host_entries"]

_HINT = (
    "List only the origins of your own pages, e.g. "
    'SOCKETIO_ORIGINS = ["https://example.com", "https://www.example.com"].'
)


def any_host_entries(origins: Any) -> List[str]:
    """The entries of an origins setting that match every host name
    (``"*"`` itself, ``"*:8000"``, ``"https://*"``, ...); empty if none."""
    if origins is None:
        return []
    entries = [origins] if isinstance(origins, str) else list(origins)
    wild: List[str] = []
    for entry in entries:
        if not isinstance(entry, str):
            continue
        policy = OriginPolicy([entry])
        if policy.allow_all or any(host == "*" for _scheme, host, _port in policy.entries):
            wild.append(entry)
    return wild


@register(Tags.security)
def check_origins(app_configs: Optional[Sequence[Any]] = None, **kwargs: Any) -> List[CheckMessage]:
    if hasattr(settings, "SOCKETIO_ORIGINS"):
        try:
            wild = any_host_entries(settings.SOCKETIO_ORIGINS)
        except (TypeError, ValueError, AttributeError):
            return []  # a malformed value is reported by the app's start-up check
        if not wild:
            return []
        return [
            Warning(
                f"SOCKETIO_ORIGINS allows every website ({', '.join(map(repr, wild))}): any page on "
                "the web can open a Socket.IO connection that carries your users' cookies, and your "
                "handlers would act as the logged-in user.",
                hint=_HINT,
                obj="SOCKETIO_ORIGINS",
                id="django_socketio.W001",
            )
        ]
    if "*" in list(getattr(settings, "ALLOWED_HOSTS", [])):
        return [
            Warning(
                "SOCKETIO_ORIGINS is not set, so the allowed origins follow ALLOWED_HOSTS, which "
                "holds '*': any page on the web can open a Socket.IO connection that carries your "
                "users' cookies, and your handlers would act as the logged-in user.",
                hint="Set SOCKETIO_ORIGINS to your own origins (ALLOWED_HOSTS may stay as it is). " + _HINT,
                obj="ALLOWED_HOSTS",
                id="django_socketio.W002",
            )
        ]
    return []
