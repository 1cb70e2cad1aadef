"""Production entry: the project under gunicorn's gevent-websocket worker."""
from __future__ import annotations

import importlib.util
import signal
import sys
import urllib.request

import pytest

from socketio_wsgi.client import Client
from browser_support import require
from djtest_support import free_port


STOCK_WORKER = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"
OUR_WORKER = "socketio_wsgi.workers.GeventSocketIOWorker"


def start_gunicorn(spawn, env, worker, graceful_timeout):
    """gunicorn serving the test project with ``worker``; returns the process and its URL
    once the worker has booted."""
    require(importlib.util.find_spec("gunicorn") is not None, "gunicorn is not installed")
    port = free_port()
    proc = spawn([sys.executable, "-m", "gunicorn", "-k", worker, "-w", "1", "-b", f"127.0.0.1:{port}",
                  "--graceful-timeout", str(graceful_timeout), "django_socketio.wsgi:application"],
                 env=dict(env, DJANGO_SETTINGS_MODULE="djtest.settings"), name="gunicorn")
    proc.wait_for_output(r"Booting worker with pid")
    url = f"http://127.0.0.1:{port}"
    return proc, url


def test_gunicorn_serves_pages_and_sockets_with_the_logged_in_user(spawn, project_db):
    env, keys = project_db
    proc, url = start_gunicorn(spawn, env, STOCK_WORKER, 3)
    cookie = {"Cookie": f"sessionid={keys['alice']}"}
    # The master listens before the worker boots; the request waits in the backlog.
    with urllib.request.urlopen(urllib.request.Request(url + "/hello/", headers=cookie),
                                timeout=15) as response:
        assert response.read() == b"hello alice"
    with urllib.request.urlopen(url + "/page/", timeout=5) as response:
        page = response.read().decode()
    # A page served by the socket server itself connects to its own origin.
    assert 'window.SOCKETIO_DEFAULTS = {"resource": "socket.io", "withCredentials": true};' in page
    for transport in ("websocket", "xhr-polling"):
        with Client(url, transport=transport, headers=cookie, timeout=5) as client:
            client.send("whoami")
            assert client.receive() == {"user": "alice", "authenticated": True, "middleware": True,
                                        "transport": transport}
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0


@pytest.mark.parametrize("worker, closes_sessions", [(OUR_WORKER, True), (STOCK_WORKER, False)])
def test_only_our_worker_closes_sessions_with_their_events_on_sigterm(spawn, project_db, tmp_path,
                                                                      worker, closes_sessions):
    env, keys = project_db
    events = tmp_path / "events.txt"
    proc, url = start_gunicorn(spawn, dict(env, DJTEST_EVENTS=str(events)), worker, 2)
    client = Client(url, transport="websocket", headers={"Cookie": f"sessionid={keys['alice']}"},
                    timeout=15)
    client.connect()
    client.send("whoami")
    assert client.receive()["user"] == "alice"
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    lines = events.read_text().splitlines() if events.exists() else []
    if closes_sessions:
        assert f"disconnect {client.session_id} server shutdown" in lines
        assert lines.count(f"finish {client.session_id}") == 1
    else:  # gevent-websocket's worker kills the connection: no closing event ever runs
        assert lines == []
