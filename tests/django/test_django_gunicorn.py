"""Production entry: the project under gunicorn's gevent-websocket worker."""
from __future__ import annotations

import importlib.util
import signal
import sys
import urllib.request

from socketio_wsgi.client import Client
from browser_support import require
from djtest_support import free_port


def test_gunicorn_serves_pages_and_sockets_with_the_logged_in_user(spawn, project_db):
    require(importlib.util.find_spec("gunicorn") is not None, "gunicorn is not installed")
    env, keys = project_db
    port = free_port()
    env = dict(env, DJANGO_SETTINGS_MODULE="djtest.settings")
    proc = spawn([sys.executable, "-m", "gunicorn", "-k", "geventwebsocket.gunicorn.workers.GeventWebSocketWorker",
                  "-w", "1", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "3",
                  "django_socketio.wsgi:application"], env=env, name="gunicorn")
    proc.wait_for_output(r"Booting worker with pid")
    url = f"http://127.0.0.1:{port}"
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


def test_our_gunicorn_worker_closes_sessions_with_their_events_on_sigterm(spawn, project_db, tmp_path):
    require(importlib.util.find_spec("gunicorn") is not None, "gunicorn is not installed")
    env, keys = project_db
    port = free_port()
    events = tmp_path / "events.txt"
    env = dict(env, DJANGO_SETTINGS_MODULE="djtest.settings", DJTEST_EVENTS=str(events))
    proc = spawn([sys.executable, "-m", "gunicorn", "-k", "socketio_wsgi.workers.GeventSocketIOWorker",
                  "-w", "1", "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5",
                  "django_socketio.wsgi:application"], env=env, name="gunicorn")
    proc.wait_for_output(r"Booting worker with pid")
    url = f"http://127.0.0.1:{port}"
    cookie = {"Cookie": f"sessionid={keys['alice']}"}
    with urllib.request.urlopen(urllib.request.Request(url + "/hello/", headers=cookie),
                                timeout=15) as response:
        assert response.read() == b"hello alice"
    client = Client(url, transport="websocket", headers=cookie, timeout=5)
    client.connect()
    client.send("whoami")
    assert client.receive()["user"] == "alice"
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    lines = events.read_text().splitlines()
    assert f"disconnect {client.session_id} server shutdown" in lines
    assert lines.count(f"finish {client.session_id}") == 1
