"""``manage.py runserver_socketio``: arguments, and the real server in a subprocess."""
from __future__ import annotations

import os
import signal
import socket
import sys
import time
import urllib.request

import pytest
from django.core.management import CommandError

from socketio_wsgi.client import Client, ConnectionClosedError
from servers import wait_for
from djtest_support import SocketServer, events_lines, free_port, manage

from django_socketio.management.commands.runserver_socketio import Command, parse_addrport


# -- arguments -----------------------------------------------------------------------

@pytest.mark.parametrize("arg, expected", [
    (None, ("127.0.0.1", 9000)),
    ("", ("127.0.0.1", 9000)),
    ("9001", ("127.0.0.1", 9001)),            # a bare port keeps SOCKETIO_HOST
    ("0.0.0.0:9001", ("0.0.0.0", 9001)),
    ("[::1]:9000", ("::1", 9000)),             # brackets are stripped
    ("[::ffff:127.0.0.1]:80", ("::ffff:127.0.0.1", 80)),
    ("chat.example.local:8080", ("chat.example.local", 8080)),
    ("localhost:0", ("localhost", 0)),
])
def test_addrport_is_parsed_like_runserver(arg, expected):
    assert parse_addrport(arg, "127.0.0.1", 9000) == expected


@pytest.mark.parametrize("arg", ["abc", "1.2.3.4", ":9000", "[::1]", "::1:9000", "host:port", "70000",
                                 "1.2.3.4:99999"])
def test_an_invalid_addrport_is_a_command_error(arg):
    with pytest.raises(CommandError):
        parse_addrport(arg, "127.0.0.1", 9000)


def test_arguments_are_declared_for_argparse():
    parser = Command().create_parser("manage.py", "runserver_socketio")
    options = vars(parser.parse_args(["[::1]:9000", "--noreload"]))
    assert (options["addrport"], options["use_reloader"]) == ("[::1]:9000", False)
    options = vars(parser.parse_args([]))
    assert (options["addrport"], options["use_reloader"]) == (None, True)


def test_a_bad_address_stops_the_command_before_serving(runserver, spawn, project_db):
    env, _ = project_db
    proc = spawn([sys.executable, "manage.py", "runserver_socketio", "not-a-port", "--noreload"], env=env)
    assert proc.wait() == 1
    assert '"not-a-port" is not a valid port number or address:port pair.' in proc.output()


# -- the server -------------------------------------------------------------------------

def db_files_open(pid: int, db_path: str) -> int:
    fd_dir = f"/proc/{pid}/fd"
    count = 0
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(os.path.join(fd_dir, fd)).startswith(db_path):
                count += 1
        except OSError:
            continue
    return count


def test_serves_site_and_sockets_with_gevent_and_closes_sessions_on_sigterm(runserver, project_db, tmp_path):
    env, keys = project_db
    server = runserver()
    assert "django_socketio.bootstrap" in open(f"/proc/{server.proc.pid}/cmdline").read()
    cookie = {"Cookie": f"sessionid={keys['alice']}"}
    page = urllib.request.Request(server.url + "/hello/", headers=cookie)
    with urllib.request.urlopen(page, timeout=5) as response:
        assert response.read() == b"hello alice"
    with urllib.request.urlopen(server.url + "/socket.io/socket.io.js", timeout=5) as response:
        assert b"io.Socket" in response.read()

    blocked = Client(server.url, headers=cookie, timeout=10)
    blocked.connect()
    blocked.send("whoami")
    assert blocked.receive() == {"user": "alice", "authenticated": True, "middleware": True,
                                 "transport": "websocket"}
    blocked.send("block")  # that handler now sleeps until someone sends "release"
    assert blocked.receive() == "blocking"
    # Other connections, pages and the database still work meanwhile.
    with urllib.request.urlopen(server.url + "/hello/", timeout=5) as response:
        assert response.read() == b"hello anonymous"
    other = Client(server.url, transport="xhr-polling", headers=cookie, timeout=10)
    other.connect()
    other.send("users")
    assert other.receive() == {"users": 2}
    other.send("release")
    assert other.receive() == "released"
    assert blocked.receive() == "unblocked"
    # Handlers that touched the database do not keep a connection open.
    db_path = env["DJTEST_DB"]
    wait_for(lambda: db_files_open(server.proc.pid, db_path) == 0)

    server.proc.signal(signal.SIGTERM)
    assert server.proc.wait() == 0
    with pytest.raises(ConnectionClosedError) as closed:
        blocked.receive(timeout=5)
    lines = events_lines(tmp_path)
    assert closed.value.code == 1001, (closed.value, lines, server.proc.output())
    for client in (blocked, other):
        assert f"disconnect {client.session_id} server shutdown" in lines
        assert f"finish {client.session_id}" in lines
    assert "Closing Socket.IO sessions" in server.proc.output()


def test_a_bare_port_keeps_socketio_host_and_ctrl_c_closes_sessions(runserver, tmp_path):
    server = runserver("0", "--noreload")
    assert server.host == "127.0.0.1"
    client = Client(server.url, timeout=5)
    client.connect()
    client.send("hello")
    assert client.receive() == "hello"
    server.proc.signal(signal.SIGINT)
    assert server.proc.wait() == 0
    assert f"finish {client.session_id}" in events_lines(tmp_path)
    client.disconnect()


def test_binds_ipv6(runserver):
    server = runserver("[::1]:0", "--noreload")
    assert server.host == "[::1]"
    with Client(f"http://[::1]:{server.port}", transport="xhr-polling", origin="http://localhost:1",
                timeout=5) as client:
        client.send("over ipv6")
        assert client.receive() == "over ipv6"


def test_a_port_in_use_is_reported(runserver, spawn, project_db):
    env, _ = project_db
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = spawn([sys.executable, "manage.py", "runserver_socketio", str(port), "--noreload"], env=env)
        assert proc.wait() == 1
    assert f"Error: could not listen on 127.0.0.1:{port}" in proc.output()


RELOAD_EVENTS = '''
from django_socketio.events import on_message


@on_message
def version(request, socket, context, message):
    if message == "version":
        socket.send("{version}")
'''


def children(pid: int) -> list:
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        return [int(p) for p in fh.read().split()]


@pytest.mark.parametrize("stop", ["sigterm-parent", "ctrl-c-group"])
def test_reloads_in_one_child_without_nesting_and_closes_sessions(spawn, project_db, tmp_path, stop):
    env, _ = project_db
    app = tmp_path / "apps" / "djtest_reload_app"
    app.mkdir(parents=True)
    (app / "__init__.py").write_text("")
    events = app / "events.py"
    events.write_text(RELOAD_EVENTS.format(version="v1"))
    env = dict(env, PYTHONPATH=os.pathsep.join([str(tmp_path / "apps"), env.get("PYTHONPATH", "")]),
               DJTEST_EXTRA_APPS="djtest_reload_app", DJTEST_EVENTS=str(tmp_path / "events.txt"))
    port = free_port()
    proc = spawn([sys.executable, "manage.py", "runserver_socketio", str(port)], env=env)
    server = SocketServer(proc)
    first_child, = children(proc.pid)
    with Client(server.url, timeout=5) as client:
        client.send("version")
        assert client.receive_many(2) == ["version", "v1"]
        time.sleep(0.01)
        events.write_text(RELOAD_EVENTS.format(version="v2"))
        later = time.time() + 2
        os.utime(events, (later, later))
        with pytest.raises(ConnectionClosedError) as closed:
            client.receive(timeout=15)
        assert closed.value.code == 1001
        assert f"finish {client.session_id}" in events_lines(tmp_path)
    proc.wait_for_output(r"(?s)running on.*running on", timeout=20)
    assert proc.proc.poll() is None
    second_child, = children(proc.pid)
    assert second_child != first_child and children(second_child) == []
    with Client(server.url, timeout=5) as client:
        client.send("version")
        assert client.receive_many(2) == ["version", "v2"]
        if stop == "sigterm-parent":
            proc.signal(signal.SIGTERM)
        else:  # what a terminal does on Ctrl-C
            os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait() == 0
        with pytest.raises(ConnectionClosedError):
            client.receive(timeout=5)
        assert f"disconnect {client.session_id} server shutdown" in events_lines(tmp_path)
    assert not os.path.exists(f"/proc/{second_child}") or open(f"/proc/{second_child}/stat").read().split()[2] == "Z"


def test_out_of_band_from_another_process_through_the_redis_backend(runserver, project_db, tmp_path):
    """``manage.py shell`` (a process without sockets) reaches the server's clients."""
    from test_redis import RedisServer
    redis_server = RedisServer(tmp_path).start()
    try:
        url = redis_server.url(prefix="djtest")
        server = runserver(DJTEST_BACKEND=url)
        env, _ = project_db
        with Client(server.url, timeout=5) as client:
            client.send(["__subscribe__", "room-1"])
            client.send("subscribed?")
            assert client.receive() == "subscribed?"
            code = ("from django_socketio import NoSocket, broadcast_channel\n"
                    "print(broadcast_channel({'from': 'shell'}, 'room-1'))\n"
                    "try:\n    broadcast_channel('x', 'room-2')\n"
                    "except NoSocket:\n    print('nobody in room-2')\n")
            out = manage("shell", "-c", code, env=dict(env, DJTEST_BACKEND=url))
            assert client.receive() == {"from": "shell"}
            assert out.splitlines()[-2:] == ["1", "nobody in room-2"]
    finally:
        redis_server.stop()
