"""The Django project as one WSGI application that also serves Socket.IO.

``runserver_socketio`` serves :func:`get_wsgi_application`; in production
serve it with gunicorn and socketio_wsgi's worker, which closes every session
with its events on a graceful stop::

    gunicorn -k socketio_wsgi.workers.GeventSocketIOWorker -w 1 \\
        --env DJANGO_SETTINGS_MODULE=mysite.settings django_socketio.wsgi:application

(``application`` is built on first access, after the worker has
monkey-patched with gevent.)
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Optional

from django.core.exceptions import ImproperlyConfigured

from socketio_wsgi import SocketIOMiddleware
from socketio_wsgi.errors import ConfigurationError

__all__ = ["get_wsgi_application", "socketio_options", "SAME_SERVER"]

#: Set in the environ of every page request served by a process that also
#: serves Socket.IO; ``{% socketio %}`` then connects to the page's own origin.
SAME_SERVER = "django_socketio.same_server"


def socketio_options() -> Dict[str, Any]:
    """``SocketIOMiddleware`` options from the settings, with the Django
    request adapter (handlers get a real ``HttpRequest``) and the hook that
    saves ``request.session`` after each handler."""
    from . import conf
    from .request import DjangoRequestAdapter
    from .sessions import save_session_after

    options = conf.middleware_options()
    options["request_adapter"] = DjangoRequestAdapter()
    options["around_handlers"] = save_session_after
    return options


class _SameServer:
    """Marks page requests so the template tag knows sockets are served here too."""

    def __init__(self, app: Callable):
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        environ[SAME_SERVER] = True
        return self.app(environ, start_response)


def get_wsgi_application(static: bool = False, handlers: Optional[Any] = None) -> SocketIOMiddleware:
    """Django's WSGI application (with static files when ``static``) wrapped in
    ``SocketIOMiddleware`` configured from the ``SOCKETIO_*`` settings.

    ``handlers``: a ``HandlerRegistry`` to use instead of the global one (tests).
    """
    import django
    from django.core.handlers.wsgi import WSGIHandler

    from . import log
    from .dispatch import DjangoHandlers

    django.setup(set_prefix=False)
    app: Callable = WSGIHandler()
    if static:
        from django.contrib.staticfiles.handlers import StaticFilesHandler

        app = StaticFilesHandler(app)
    message_log = log.from_settings()
    try:
        middleware = SocketIOMiddleware(
            _SameServer(app), handlers=DjangoHandlers(handlers, message_log), **socketio_options()
        )
    except ConfigurationError as exc:
        raise ImproperlyConfigured(f"SOCKETIO_* settings: {exc}") from None
    middleware.engine.message_log = message_log
    return middleware


#: Built on first access (a module ``__getattr__``), so importing this module
#: neither sets Django up nor opens anything before gevent has patched.
application: SocketIOMiddleware


def __getattr__(name: str) -> Any:
    if name == "application":
        global application
        application = get_wsgi_application()
        return application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
