"""``request.session`` changes saved after each handler, without ``save()``.

Django's ``SessionMiddleware`` saves a modified session when a view returns.
A socket has no response per event, so :func:`save_session_after` does the
same around every handler call: the engine enters it through the
``around_handlers`` option, which :func:`django_socketio.wsgi.socketio_options`
sets.  After a handler returns (or refuses the connection) a session it
modified is saved; what a handler that raised changed is dropped (the session
is reloaded from its store), as Django saves nothing for a 500.

A session the handler created (a visitor without a session cookie) is stored
but lives only as long as the connection: a socket cannot hand the browser a
new cookie.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator

from django.contrib.sessions.backends.base import UpdateError
from django.db import close_old_connections

from socketio_wsgi.errors import ConnectionRefused

__all__ = ["save_session_after", "save_modified_session", "discard_unsaved_changes"]

log = logging.getLogger("django_socketio")


def save_modified_session(request: Any) -> bool:
    """Save ``request.session`` if it was modified; returns whether it was saved."""
    session = getattr(request, "session", None)
    if session is None or not getattr(session, "modified", False):
        return False
    try:
        if session.session_key is None and session.is_empty():
            return False
        session.save()
    except UpdateError:  # deleted meanwhile, e.g. the user logged out in another tab
        log.warning("session changes made by a Socket.IO handler were not saved: the session ended meanwhile")
        return False
    finally:
        session.modified = False
    return True


@contextlib.contextmanager
def save_session_after(request: Any) -> Iterator[None]:
    """The ``around_handlers`` hook: save the session a handler modified."""
    from .dispatch import firing

    try:
        yield
    except ConnectionRefused:
        _save(request, firing())
        raise
    except BaseException:
        discard_unsaved_changes(request)
        raise
    _save(request, firing())


def discard_unsaved_changes(request: Any) -> None:
    """Forget what a failed handler changed: the next access reloads the session
    from its store, so later handlers (``on_error``, ``on_finish``) neither see
    nor save it."""
    session = getattr(request, "session", None)
    if session is None or not getattr(session, "modified", False):
        return
    session.modified = False
    if hasattr(session, "_session_cache"):  # SessionBase's loaded data
        del session._session_cache


def _save(request: Any, inside_fire: bool) -> None:
    if save_modified_session(request) and not inside_fire:
        # Outside DjangoHandlers.fire nobody else releases the connection the save used.
        close_old_connections()
