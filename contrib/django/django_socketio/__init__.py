"""django_socketio: the django-socketio 0.3.9 API on top of socketio_wsgi.

``INSTALLED_APPS += ["django_socketio"]``, ``include("django_socketio.urls")``,
``from django_socketio.events import on_message``, ``{% load socketio_tags %}``
and ``manage.py runserver_socketio`` work as they did; the protocol, sessions
and channels are socketio_wsgi's.

Importing this package imports nothing else (the names below load on first
use), so ``python -m django_socketio.bootstrap`` can monkey-patch with gevent
before Django or socketio_wsgi are imported.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NoSocket", "send", "broadcast", "broadcast_channel", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("NoSocket", "send", "broadcast", "broadcast_channel"):
        from . import utils

        return getattr(utils, name)
    if name == "__version__":
        from socketio_wsgi import __version__

        return __version__
    raise AttributeError(f"module 'django_socketio' has no attribute {name!r}")
