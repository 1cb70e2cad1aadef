"""Out-of-band sends, usable from views, the shell, commands and workers.

In the process that serves sockets they reach its sessions directly.  In any
other process (plain ``runserver``, ``manage.py shell``, a Celery worker) they
go through ``SOCKETIO_BACKEND`` when it names a shared backend such as
``"redis://127.0.0.1:6379/0"``; without one they raise :class:`NoSocket`.
"""

from __future__ import annotations

from typing import Any

from socketio_wsgi import api
from socketio_wsgi.errors import NoSocket

__all__ = ["NoSocket", "send", "broadcast", "broadcast_channel"]


def _use_configured_backend() -> None:
    try:
        api.current_backend()
    except NoSocket:
        from . import conf

        backend = conf.backend()
        if backend is None:
            raise
        api.set_backend(backend)


def send(session_id: str, message: Any) -> None:
    """Send ``message`` to the client with ``session_id``; NoSocket if it is gone."""
    _use_configured_backend()
    api.send(session_id, message)


def broadcast(message: Any) -> int:
    """Send ``message`` to every connected client; NoSocket if there is none."""
    _use_configured_backend()
    return api.broadcast(message)


def broadcast_channel(message: Any, channel: str) -> int:
    """Send ``message`` to every subscriber of ``channel``; NoSocket if none."""
    _use_configured_backend()
    return api.broadcast_channel(message, channel)
