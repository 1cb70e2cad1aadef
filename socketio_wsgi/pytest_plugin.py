"""pytest fixtures for testing Socket.IO handlers in process.

Installed as a ``pytest11`` plugin, so with socketio-wsgi installed the
fixtures are simply there:

- ``socketio_client``: call it to connect a :class:`~socketio_wsgi.testing.TestClient`;
- ``socketio_server``: the :class:`~socketio_wsgi.testing.TestServer` behind it;
- ``socketio_handlers``: this test's copy of the handler registry;
- ``socketio_app``: override it to return your app, so the test server uses its options;
- ``fake_socket``: a :class:`~socketio_wsgi.testing.FakeSocket` for calling one handler directly;
- ``django_socketio_client``: like ``socketio_client``, with a Django request
  carrying the user and session you choose (skips when Django is not configured).

Each test gets its own registry copy and its own channels, so nothing one
test registers or subscribes reaches the next.
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import Any, Callable, Iterator, Mapping, Optional

import pytest

from .events import HandlerRegistry
from .testing import FakeSocket, TestClient, TestServer, app_registry, isolated_handlers

__all__ = [
    "socketio_app",
    "socketio_handlers",
    "socketio_server",
    "socketio_client",
    "fake_socket",
    "django_socketio_client",
]


@pytest.fixture
def socketio_app() -> Any:
    """The application under test; override it to return your WSGI app
    (wrapped in, or being, a ``SocketIOMiddleware``).  Default: none."""
    return None


@pytest.fixture
def socketio_handlers(socketio_app: Any) -> Iterator[HandlerRegistry]:
    """A copy of the app's handler registry, current for this test only:
    handlers registered during the test fire for this test's clients and are
    gone afterwards."""
    with isolated_handlers(app_registry(socketio_app)) as registry:
        yield registry


@pytest.fixture
def socketio_server(socketio_app: Any, socketio_handlers: HandlerRegistry) -> Iterator[TestServer]:
    """The real engine for this test; out-of-band sends reach its clients."""
    server = TestServer(socketio_app, handlers=socketio_handlers)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def socketio_client(socketio_server: TestServer) -> Callable[..., TestClient]:
    """``socketio_client(environ=None, *, request=None, connect=True)``: a new connected client."""
    return socketio_server.client


@pytest.fixture
def fake_socket() -> FakeSocket:
    """A fresh recording socket, alone until given peers."""
    return FakeSocket()


def _django_or_skip() -> Any:
    try:
        import django
        from django.conf import settings
    except ImportError:
        pytest.skip("Django is not installed")
    if not (settings.configured or os.environ.get("DJANGO_SETTINGS_MODULE")):
        pytest.skip("Django settings are not configured")
    from django.apps import apps

    if not apps.ready:
        django.setup()
    return settings


@pytest.fixture
def django_socketio_client(socketio_server: TestServer) -> Callable[..., TestClient]:
    """``django_socketio_client(user=None, session=None, path=..., **request_kwargs)``.

    Connects a client whose handlers get a real ``django.http.HttpRequest``
    built by ``RequestFactory().get(path, **request_kwargs)``, with
    ``request.user`` (default ``AnonymousUser``) and ``request.session`` (a
    store of ``SESSION_ENGINE`` holding ``session``) set, as the session and
    auth middleware would.  Nothing is saved to the database.
    """
    settings = _django_or_skip()
    from django.apps import apps
    from django.test import RequestFactory

    factory = RequestFactory()
    default_path = f"/{socketio_server.options.resource}/test"

    def connect(
        user: Any = None,
        session: Optional[Mapping[str, Any]] = None,
        path: str = default_path,
        **request_kwargs: Any,
    ) -> TestClient:
        request = factory.get(path, **request_kwargs)
        if user is None and apps.is_installed("django.contrib.auth"):
            from django.contrib.auth.models import AnonymousUser

            user = AnonymousUser()
        if user is not None:
            request.user = user
        store = import_module(settings.SESSION_ENGINE).SessionStore()
        store.update(dict(session or {}))
        request.session = store
        return socketio_server.client(request=request)

    return connect
