"""Issue 18: an idle websocket holds no greenlet, and still obeys every rule.

A real ``python -m socketio_wsgi`` process (tests/apps/redis_app.py, which
answers ``/greenlets`` with how many greenlets are alive, run without a
backend); Socket.IO 0.6 and Engine.IO 4 clients over real websockets.
After the 101 our server lets go of the socket: the connection is read from
an event-loop watcher, and a greenlet exists only while input is handled
(and up to ``PARK_AFTER`` seconds after it).  The socket of a session that
ends is closed: the process's descriptors come back.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from typing import List

import pytest
from servers import wait_for
from test_runner import free_port
from websocket_support import WSClient

from socketio_wsgi.client import Client
from socketio_wsgi.ws.connection import PARK_AFTER

APPS = os.path.join(os.path.dirname(__file__), "apps")
N = 60


class Runner:
    def __init__(self, tmp_path):
        self.port = free_port()
        self.log = tmp_path / "server.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "socketio_wsgi", "--port", str(self.port), "--origins", "*",
                 "--no-access-log", "--heartbeat-interval", "30", "redis_app:application"],
                cwd=APPS, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=out, stderr=subprocess.STDOUT)
        wait_for(lambda: "serving on" in self.log.read_text() or self.proc.poll() is not None, timeout=30)
        assert self.proc.poll() is None, self.log.read_text()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def greenlets(self) -> int:
        with urllib.request.urlopen(self.url + "/greenlets", timeout=5) as answer:
            return json.loads(answer.read())["greenlets"]

    def descriptors(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def runner(tmp_path):
    server = Runner(tmp_path)
    yield server
    server.stop()


def settled(runner: Runner, limit: int, timeout: float = 10.0) -> int:
    """The greenlet count once it is at most ``limit`` (or the last seen)."""
    seen: List[int] = []

    def low() -> bool:
        seen.append(runner.greenlets())
        return seen[-1] <= limit

    try:
        wait_for(low, timeout=timeout, interval=0.2)
    except AssertionError:
        pass
    return seen[-1]


def test_idle_06_websockets_hold_no_greenlet_and_wake_up(runner):
    base = runner.greenlets()
    clients = [Client(runner.url, transport="websocket", timeout=10) for _ in range(N)]
    try:
        for client in clients:
            client.connect()
        for i, client in enumerate(clients):
            client.send(f"hello {i}")
        for i, client in enumerate(clients):
            assert client.receive(10) == f"hello {i}"
        # Busy connections keep their greenlet for PARK_AFTER seconds, then let it go.
        assert settled(runner, base + 3, timeout=PARK_AFTER + 10) <= base + 3
        for i, client in enumerate(clients):  # a parked connection wakes up for its input
            client.send(f"again {i}")
            assert client.receive(10) == f"again {i}"
    finally:
        for client in clients:
            client.disconnect()


def test_idle_engine_io_4_websockets_hold_no_greenlet(runner):
    base = runner.greenlets()
    clients = []
    try:
        for _ in range(N):
            client = WSClient(runner.port, "/socket.io/?EIO=4&transport=websocket", timeout=10)
            assert client.receive(10).startswith("0{")
            client.send("40")
            assert client.receive(10).startswith("40{")
            clients.append(client)
        assert settled(runner, base + 3, timeout=PARK_AFTER + 10) <= base + 3
        for client in clients:
            client.send('42["message","still there"]')
            assert client.receive(10) == '42["message","still there"]'
    finally:
        for client in clients:
            client.sock.close()


def test_ended_sessions_give_their_descriptors_back(runner):
    """However a parked connection ends (the client's close handshake, a
    client that vanishes, a protocol violation), its socket is closed."""
    base_fds = runner.descriptors()
    polite = [Client(runner.url, transport="websocket", timeout=10) for _ in range(N // 2)]
    for client in polite:
        client.connect()
    vanishing = [WSClient(runner.port, "/socket.io/websocket", timeout=10) for _ in range(N // 2)]
    rude = [WSClient(runner.port, "/socket.io/?EIO=4&transport=websocket", timeout=10) for _ in range(10)]
    for client in vanishing:
        assert client.receive(10).startswith("~m~20~m~")  # the session id
    for client in rude:
        assert client.receive(10).startswith("0{")
    assert runner.descriptors() >= base_fds + N + 10
    time.sleep(PARK_AFTER + 0.5)  # all parked
    for client in polite:
        client.disconnect()  # close handshake
    for client in vanishing:
        client.sock.close()  # gone without a word
    for client in rude:
        client.send_raw(b"\x81\x05hello")  # unmasked: a protocol violation
    wait_for(lambda: runner.descriptors() <= base_fds + 2, timeout=15, interval=0.2)
    for client in rude:
        client.sock.close()
    assert "Traceback" not in runner.log.read_text()


def test_a_flood_of_tiny_frames_is_handed_over_in_slices_with_pauses(monkeypatch):
    """One read can hold thousands of frames: a parked connection hands them
    over 64 at a time and lets other sessions run in between (a peer's flood
    must not hold the hub), in order, each once."""
    import gevent
    import gevent.socket

    from socketio_wsgi.ws import connection as module
    from socketio_wsgi.ws.connection import Connection
    from socketio_wsgi.ws.protocol import Protocol, State
    from websocket_support import masked_frame

    pauses = []
    real_pause = module.pause
    monkeypatch.setattr(module, "pause", lambda: (pauses.append(len(got)), real_pause()))
    ours, peer = gevent.socket.socketpair()
    conn = Connection(ours, ours.makefile("rb"), Protocol(state=State.OPEN))
    got, ended = [], gevent.event.Event()
    conn.serve(lambda message: got.append(message) or True, ended.set, park=ours.detach)
    peer.sendall(b"".join(masked_frame(0x1, str(i).encode()) for i in range(1000)))
    deadline = time.monotonic() + 5
    while len(got) < 1000 and time.monotonic() < deadline:
        gevent.sleep(0.01)
    assert got == [str(i) for i in range(1000)]
    assert len(pauses) >= 1000 // 64 - 1, pauses  # a pause after every 64 messages
    peer.close()  # end of file: the connection ends, on_end runs once
    assert ended.wait(5)
    conn.close()


def test_a_busy_connection_keeps_its_greenlet_past_park_after_in_total(monkeypatch):
    """A connection that gets a message every few milliseconds must keep its
    pump for as long as it stays busy, however long it has waited in all.

    libev keeps what is left of a stopped timer: the idle timer restarted
    with start() went on from there, so once a connection had waited
    PARK_AFTER in total it parked, and cost a greenlet spawn, after every
    message (echo at 50 clients ran at 0.58x the speed it has now)."""
    import gevent
    import gevent.socket

    from socketio_wsgi.ws import connection as module
    from socketio_wsgi.ws.connection import Connection
    from socketio_wsgi.ws.protocol import Protocol, State
    from websocket_support import masked_frame

    monkeypatch.setattr(module, "PARK_AFTER", 0.2)
    spawned = []
    real_spawn = module.gevent.spawn

    def counting_spawn(func, *args, **kwargs):
        if getattr(func, "__name__", "") == "_pump":
            spawned.append(time.monotonic())
        return real_spawn(func, *args, **kwargs)

    monkeypatch.setattr(module.gevent, "spawn", counting_spawn)
    ours, peer = gevent.socket.socketpair()
    conn = Connection(ours, ours.makefile("rb"), Protocol(state=State.OPEN))
    got, ended = [], gevent.event.Event()
    conn.serve(lambda message: got.append(message) or True, ended.set, park=ours.detach)
    for i in range(80):  # 80 x 10 ms: four times PARK_AFTER of waiting, in short waits
        peer.sendall(masked_frame(0x1, str(i).encode()))
        gevent.sleep(0.01)
    deadline = time.monotonic() + 5
    while len(got) < 80 and time.monotonic() < deadline:
        gevent.sleep(0.01)
    assert got == [str(i) for i in range(80)]
    assert len(spawned) <= 2, f"{len(spawned)} pumps started for 80 messages"
    gevent.sleep(0.4)  # quiet past PARK_AFTER: the pump lets go...
    peer.sendall(masked_frame(0x1, b"again"))  # ...and the next message starts one
    deadline = time.monotonic() + 5
    while len(got) < 81 and time.monotonic() < deadline:
        gevent.sleep(0.01)
    assert got[-1] == "again" and len(spawned) >= 2
    peer.close()
    assert ended.wait(5)
    conn.close()
