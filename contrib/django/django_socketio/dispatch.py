"""Firing handlers the Django way: database hygiene and connect/disconnect lines.

The engine calls ``handlers.fire(...)`` for every event.  Under Django that
goes through :class:`DjangoHandlers`, which wraps the handler registry:

- around the outermost ``fire`` of a greenlet it calls
  ``close_old_connections()``, as Django does around a request, so a handler
  that touched the database does not keep a connection open (or broken)
  for the life of the socket; nested fires (a handler that subscribes)
  leave an open transaction alone;
- it logs ``connect``, ``refused``, ``disconnect`` and ``error`` lines in
  ``SOCKETIO_MESSAGE_LOG_FORMAT`` (see :mod:`django_socketio.log`).
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any, Optional

from django.db import close_old_connections

from socketio_wsgi.errors import ConnectionRefused
from socketio_wsgi.events import HandlerRegistry, current_registry

from .log import MessageLog

__all__ = ["DjangoHandlers", "firing"]

_depth: contextvars.ContextVar[int] = contextvars.ContextVar("django_socketio_fire_depth", default=0)


def firing() -> bool:
    """True inside :meth:`DjangoHandlers.fire` (which releases database
    connections when the outermost fire ends)."""
    return _depth.get() > 0


class DjangoHandlers:
    """A handler registry (by default the current one, so ``use_registry``
    still works) whose ``fire`` cleans up database connections and logs."""

    def __init__(self, registry: Optional[HandlerRegistry] = None, message_log: Optional[MessageLog] = None):
        self._registry = registry
        self.message_log = message_log

    @property
    def registry(self) -> HandlerRegistry:
        return self._registry if self._registry is not None else current_registry()

    def __getattr__(self, name: str) -> Any:  # add, remove, handlers, clear, ...
        return getattr(self.registry, name)

    def fire(
        self,
        event: str,
        channels: Any,
        request: Any,
        socket: Any,
        context: dict,
        *arg: Any,
        reason: Optional[str] = None,
        auth: Any = None,
    ) -> None:
        depth = _depth.get()
        token = _depth.set(depth + 1)
        if depth == 0:
            close_old_connections()
        try:
            if event == "on_disconnect":
                self._log(request, "disconnect", f"session {socket.session_id}: {reason or 'closed'}")
            elif event == "on_error":
                self._log(request, "error", f"session {socket.session_id}: {arg[0]!r}", logging.WARNING)
            self.registry.fire(event, channels, request, socket, context, *arg, reason=reason, auth=auth)
            if event == "on_connect":
                self._log(request, "connect", f"session {socket.session_id} over {socket.session.transport}")
        except ConnectionRefused as refused:
            if event == "on_connect":
                self._log(request, "refused", f"session {socket.session_id}: {refused.reason}")
            raise
        finally:
            _depth.reset(token)
            if depth == 0:
                close_old_connections()

    def fire_named(self, namespace: str, name: str, *args: Any) -> Any:
        """A Socket.IO 4 client's named event, with the same database
        connection clean-up as the seven events."""
        depth = _depth.get()
        token = _depth.set(depth + 1)
        if depth == 0:
            close_old_connections()
        try:
            return self.registry.fire_named(namespace, name, *args)
        finally:
            _depth.reset(token)
            if depth == 0:
                close_old_connections()

    def _log(self, request: Any, kind: str, text: str, level: int = logging.INFO) -> None:
        if self.message_log is not None:
            self.message_log(request, kind, text, level)
