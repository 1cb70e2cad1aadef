"""Django settings for the tests in this directory, and server fixtures.

Settings are configured here with ``settings.configure()`` (from the test
project's ``djtest.settings``), not through ``DJANGO_SETTINGS_MODULE``, so
nothing leaks into other test directories' subprocesses; pytest-django
picks the configured settings up for its ``db`` fixtures.
"""
from __future__ import annotations

import os
import sys
from typing import Dict, List, Optional

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from djtest_support import HERE, Proc, SocketServer, manage, subprocess_env  # noqa: E402


def pytest_configure(config):
    import django
    from django.conf import settings
    if not settings.configured:
        from djtest import settings as project
        settings.configure(**{k: getattr(project, k) for k in dir(project) if k.isupper()})
    django.setup()


@pytest.fixture
def django_socket_server(make_server_thread):
    """``start(**overrides)``: the test project (Django's WSGI handler) behind
    the middleware configured from settings, as ``django_socketio.wsgi``
    configures it, in a server thread with its own handler registry
    (``server.on``/``server.record`` add handlers to it)."""
    from django.core.handlers.wsgi import WSGIHandler

    from socketio_wsgi.events import HandlerRegistry

    from django_socketio import log
    from django_socketio.dispatch import DjangoHandlers
    from django_socketio.wsgi import socketio_options

    def start(**overrides):
        message_log = log.from_settings()
        handlers = DjangoHandlers(HandlerRegistry(), message_log)
        server = make_server_thread(WSGIHandler(), handlers=handlers, **{**socketio_options(), **overrides})
        server.engine.message_log = message_log
        return server

    return start


@pytest.fixture
def spawn(tmp_path):
    """``spawn(args, cwd=..., env=...)`` starts a :class:`Proc`; all are stopped after the test."""
    started: List[Proc] = []

    def start(args: List[str], cwd: str = HERE, env: Optional[Dict[str, str]] = None, name: str = "proc") -> Proc:
        proc = Proc(args, cwd, env or subprocess_env(), str(tmp_path / f"{name}-{len(started)}.log"))
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def project_db(tmp_path_factory):
    """A migrated SQLite file for subprocess servers, with users alice and
    (staff) boss; returns ``(env, {"alice": session key, "boss": session key})``."""
    path = tmp_path_factory.mktemp("djtest") / "db.sqlite3"
    env = subprocess_env(DJTEST_DB=str(path))
    manage("migrate", "--noinput", "-v", "0", env=env)
    keys = {name: manage("djtest_session", name, *(["--staff"] if name == "boss" else []), env=env).strip()
            for name in ("alice", "boss")}
    return env, keys


@pytest.fixture
def runserver(spawn, project_db, tmp_path):
    """``runserver(*args, **env)`` starts runserver_socketio on a free port."""
    env_base, _keys = project_db

    def start(*args: str, **extra_env: str) -> SocketServer:
        env = dict(env_base, DJTEST_EVENTS=str(tmp_path / "events.txt"), **extra_env)
        argv = list(args) or ["127.0.0.1:0", "--noreload"]
        proc = spawn([sys.executable, "manage.py", "runserver_socketio", *argv], env=env, name="runserver")
        return SocketServer(proc)

    return start
