"""Issue 8: the Redis backend, with a real redis-server and several server processes.

Servers are ``python -m socketio_wsgi --backend redis://...`` subprocesses
running tests/apps/redis_app.py; emitters are a plain subprocess (that same
file run as a script) and this test process through ``set_backend``.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import redis

import socketio_wsgi
from browser_support import require
from servers import wait_for
from socketio_wsgi import NoSocket, api
from socketio_wsgi.client import Client, ConnectionClosedError
from socketio_wsgi.errors import ConfigurationError
from socketio_wsgi.ws.connection import PARK_AFTER
from socketio_wsgi.redis_backend import MESSAGE_VERSION, RedisBackend, decode_message, encode_message
from test_channels import SUB, UNSUB, frame
from test_runner import free_port

APPS = os.path.join(os.path.dirname(__file__), "apps")
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PREFIX = "t8"


# -- processes ---------------------------------------------------------------

class RedisServer:
    """redis-server on a free loopback port, no persistence, files in ``directory``."""

    def __init__(self, directory: Path):
        require(os.path.exists(REDIS_SERVER), "redis-server is not installed (apt-get install redis-server)")
        self.dir = directory
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "RedisServer":
        with open(self.dir / "redis.log", "a") as log:
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.dir), "--protected-mode", "no"],
                stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.ping, timeout=10, interval=0.05)
        return self

    def ping(self) -> bool:
        try:
            return redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1).ping()
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def url(self, prefix: str = PREFIX, ttl: Optional[float] = None) -> str:
        query = f"?prefix={prefix}" + (f"&ttl={ttl}" if ttl is not None else "")
        return f"redis://127.0.0.1:{self.port}/0{query}"

    def raw(self) -> "redis.Redis":
        return redis.Redis(port=self.port, socket_timeout=5)


class Worker:
    """One socket server process (the runner) using the Redis backend."""

    def __init__(self, directory: Path, name: str, backend: str, *extra: str):
        self.port = free_port()
        self.log = directory / f"{name}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "socketio_wsgi", "--port", str(self.port), "--origins", "*",
                 "--no-access-log", "--backend", backend, *extra, "redis_app:application"],
                cwd=APPS, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                stdout=out, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text()

    def ready(self) -> "Worker":
        wait_for(lambda: "serving on" in self.output() or self.proc.poll() is not None, timeout=30)
        assert self.proc.poll() is None, self.output()
        return self

    def greenlets(self) -> int:
        with urllib.request.urlopen(self.url + "/greenlets", timeout=5) as resp:
            return json.loads(resp.read())["greenlets"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def start_workers(directory: Path, backend: str, names: List[str]) -> List[Worker]:
    workers = [Worker(directory, name, backend) for name in names]  # start in parallel
    return [worker.ready() for worker in workers]


def emit_from_process(url: str, *calls: list) -> List[Dict[str, Any]]:
    """Run out-of-band calls in a separate, plain (unpatched) Python process."""
    result = subprocess.run([sys.executable, os.path.join(APPS, "redis_app.py"), url, json.dumps(calls)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# -- fixtures ----------------------------------------------------------------

@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(redis_server, tmp_path_factory):
    """Three socket servers sharing one Redis (prefix ``t8``)."""
    workers = start_workers(tmp_path_factory.mktemp("workers"), redis_server.url(ttl=3),
                            ["s1", "s2", "s3"])
    yield workers
    for worker in workers:
        worker.stop()


@pytest.fixture
def clients():
    """Make connected clients; all are disconnected after the test."""
    made: List[Client] = []

    def connect(worker: Worker, transport: str = "websocket") -> Client:
        client = Client(worker.url, transport=transport, timeout=10)
        client.connect()
        made.append(client)
        return client

    yield connect
    for client in made:
        client.disconnect()


@pytest.fixture
def emitter(redis_server):
    """This test process as an emitter-only process, through ``set_backend``."""
    previous = api.use_backend(None)
    backend = socketio_wsgi.set_backend(redis_server.url())
    yield backend
    backend.close()
    api.restore(previous)


def join(client: Client, *channels: str) -> None:
    """Subscribe the way old pages do, and wait for the server's ack (sent by
    on_subscribe, which runs after Redis has the membership)."""
    for channel in channels:
        client.send_payload(SUB + frame(channel))
        assert client.receive(10) == {"subscribed": channel}


def leave(client: Client, channel: str) -> None:
    client.send_payload(UNSUB + frame(channel))
    assert client.receive(10) == {"unsubscribed": channel}


def ask(client: Client, **message: Any) -> Any:
    client.send(message)
    return client.receive(10)


# -- wire format (no server needed) ------------------------------------------

def test_message_codec_round_trip_and_refusals():
    frame_bytes = socketio_wsgi.socket.encode_frame_bytes({"text": "é😀"})
    data = encode_message("pub", "host:1:ab", frame_bytes, ["room", "ü"], "123")
    body = json.loads(data)
    assert body["v"] == MESSAGE_VERSION and body["k"] == "pub"
    assert body["f"].encode("utf-8") == frame_bytes
    assert decode_message(data) == body
    direct = decode_message(encode_message("send", "o", b"~m~1~m~x", target="42"))
    assert (direct["k"], direct["s"], direct["f"]) == ("send", "42", "~m~1~m~x")
    strangers = [pickle.dumps({"v": 1}), b"\x80\x03", b"[1, 2]", b'{"v": 2, "k": "pub"}',
                 b'{"v": true, "k": "pub", "o": "", "f": ""}',
                 b'{"v": 1, "k": "exec", "o": "", "f": ""}',
                 b'{"v": 1, "k": "pub", "o": "", "f": "", "c": "room"}',
                 b'{"v": 1, "k": "send", "o": "", "f": ""}']
    for data in strangers:
        with pytest.raises(ValueError):
            decode_message(data)


# -- across processes ---------------------------------------------------------

@pytest.mark.redis
def test_channel_broadcasts_reach_every_process_once(cluster, clients):
    s1, s2, s3 = cluster
    sender = clients(s1)
    room1 = [clients(s1, "xhr-polling"), clients(s2), clients(s2, "jsonp-polling"),
             clients(s3), clients(s3, "xhr-polling")]
    room2_only = clients(s3)
    join(sender, "t1-room1", "t1-room2")
    for client in room1:
        join(client, "t1-room1")
    join(room1[1], "t1-room2")   # holds both rooms, on another process
    join(room1[0], "t1-room2")   # holds both rooms, on the sender's process
    join(room2_only, "t1-room2")

    assert ask(sender, do="bc", channel="t1-room1", value="one") == {"reached": len(room1)}
    assert ask(sender, do="bc", value="both") == {"reached": len(room1) + 1}
    sender.send({"do": "b", "value": "end"})
    assert sender.receive(10)["reached"] >= len(room1) + 1
    for client in room1:
        assert client.receive_many(3, timeout=10) == ["one", "both", "end"]
    assert room2_only.receive_many(2, timeout=10) == ["both", "end"]
    # nothing came back to the sender: the next thing it gets is a later marker
    assert ask(room2_only, do="send", to=sender.session_id, value="marker") == {"reached": 1}
    assert sender.receive(10) == "marker"


@pytest.mark.redis
def test_out_of_band_from_a_separate_plain_process(cluster, clients, redis_server):
    s1, s2, s3 = cluster
    on_s1, on_s2, on_s3 = clients(s1), clients(s2, "xhr-polling"), clients(s3)
    join(on_s2, "t2-news")
    join(on_s3, "t2-news")
    results = emit_from_process(
        redis_server.url(),
        ["broadcast_channel", "headline", "t2-news"],
        ["send", on_s1.session_id, "just you"],
        ["broadcast_channel", "nobody", "t2-empty"],
        ["send", "12345678901234567890", "nobody"])
    assert results[0] == {"reached": 2}
    assert results[1] == {"reached": 1}
    assert "t2-empty" in results[2]["nosocket"]
    assert "12345678901234567890" in results[3]["nosocket"]
    assert on_s2.receive(10) == "headline"
    assert on_s3.receive(10) == "headline"
    assert on_s1.receive(10) == "just you"


@pytest.mark.redis
def test_out_of_band_from_this_process_with_set_backend(cluster, clients, emitter):
    s1, s2, _ = cluster
    a, b = clients(s1), clients(s2, "jsonp-polling")
    join(a, "t3-room")
    join(b, "t3-room")
    assert socketio_wsgi.broadcast_channel({"n": 1}, "t3-room") == 2
    assert a.receive(10) == {"n": 1} and b.receive(10) == {"n": 1}
    socketio_wsgi.send(b.session_id, "to b")
    assert b.receive(10) == "to b"
    reached = socketio_wsgi.broadcast("all of you")
    assert reached >= 2  # every client of the cluster, these two included
    assert a.receive(10) == "all of you" and b.receive(10) == "all of you"
    with pytest.raises(NoSocket):
        socketio_wsgi.broadcast_channel("x", "t3-nobody")
    # the same Redis under another prefix is another application
    other = RedisBackend(emitter.url.replace(f"prefix={PREFIX}", "prefix=another-app"))
    try:
        assert other.publish(b"~m~1~m~x", ("t3-room",)) == 0
        assert other.send(a.session_id, b"~m~1~m~x") is False
    finally:
        other.close()


@pytest.mark.redis
def test_handlers_reach_sessions_of_other_processes(cluster, clients):
    s1, s2, _ = cluster
    here, there = clients(s1), clients(s2)
    assert ask(here, do="send", to=there.session_id, value="hello there") == {"reached": 1}
    assert there.receive(10) == "hello there"
    join(there, "t4-room")
    assert ask(here, do="oob_bc", channel="t4-room", value="via api") == {"reached": 1}
    assert there.receive(10) == "via api"
    assert "t4-empty" in ask(here, do="oob_bc", channel="t4-empty", value="x")["nosocket"]


@pytest.mark.redis
def test_nosocket_follows_membership_across_processes(cluster, clients, emitter):
    _, s2, s3 = cluster
    with pytest.raises(NoSocket):
        socketio_wsgi.broadcast_channel("x", "t5-room")
    a = clients(s2)
    join(a, "t5-room")
    assert socketio_wsgi.broadcast_channel("first", "t5-room") == 1
    assert a.receive(10) == "first"
    leave(a, "t5-room")
    with pytest.raises(NoSocket):
        socketio_wsgi.broadcast_channel("x", "t5-room")
    b = clients(s3)
    join(b, "t5-room")
    assert emitter.channel_size("t5-room") == 1
    b.disconnect()  # websocket: the server closes the session at once
    wait_for(lambda: emitter.channel_size("t5-room") == 0, timeout=10)
    with pytest.raises(NoSocket):
        socketio_wsgi.broadcast_channel("x", "t5-room")
    with pytest.raises(NoSocket):
        socketio_wsgi.send(b.session_id, "gone")


@pytest.mark.redis
def test_polling_requests_on_the_wrong_worker_are_served_by_the_owner(cluster, clients):
    """Issue 16: no sticky sessions needed; the full matrix is in test_scaleout.py."""
    s1, s2, _ = cluster
    client = clients(s1, "xhr-polling")
    base = f"{s2.url}/socket.io/xhr-polling/{client.session_id}"
    post = urllib.request.Request(base + "/send", data=b"data=" + frame("elsewhere").encode(), method="POST")
    with urllib.request.urlopen(post, timeout=10) as answer:
        assert answer.status == 200 and answer.read() == b"ok"
    with urllib.request.urlopen(f"{base}/{int(time.time() * 1000)}", timeout=10) as answer:
        assert answer.read().decode() == frame("elsewhere")  # the echo, taken from s1's queue
    with pytest.raises(urllib.error.HTTPError) as info:  # an id nobody owns
        urllib.request.urlopen(f"{s2.url}/socket.io/xhr-polling/10000000000000000000/1", timeout=10)
    assert info.value.code == 404 and info.value.read().decode() == "unknown session"


@pytest.mark.redis
def test_versioned_json_on_the_wire_and_strangers_dropped(cluster, clients, emitter, redis_server):
    s1, s2, _ = cluster
    a, b = clients(s1), clients(s2)
    join(a, "t7-room")
    join(b, "t7-room")
    watcher = redis_server.raw().pubsub(ignore_subscribe_messages=True)
    watcher.subscribe(f"{PREFIX}:bus")
    try:
        socketio_wsgi.broadcast_channel({"seen": "é😀"}, "t7-room")
        raw = wait_for(lambda: watcher.get_message(timeout=0.2), timeout=10)
        body = json.loads(raw["data"])
        assert body["v"] == MESSAGE_VERSION and body["c"] == ["t7-room"]
        assert body["f"] == socketio_wsgi.socket.encode_frame_bytes({"seen": "é😀"}).decode()
    finally:
        watcher.close()
    assert a.receive(10) == {"seen": "é😀"} and b.receive(10) == {"seen": "é😀"}
    publisher = redis_server.raw()
    for junk in (pickle.dumps(["t7-room"]), b"not json", b'{"v": 99, "k": "pub"}'):
        assert publisher.publish(f"{PREFIX}:bus", junk) == len(cluster)  # every worker listens
    socketio_wsgi.broadcast_channel("after the junk", "t7-room")
    assert a.receive(10) == "after the junk" and b.receive(10) == "after the junk"
    for worker in (s1, s2):
        assert worker.proc.poll() is None
        wait_for(lambda: worker.output().count("dropped a message from Redis") >= 3, timeout=5)


@pytest.mark.redis
def test_a_dead_workers_sessions_stop_counting(cluster, clients, emitter, redis_server, tmp_path):
    s1 = cluster[0]
    doomed = start_workers(tmp_path, redis_server.url(ttl=1), ["doomed"])[0]
    try:
        victims = [clients(doomed), clients(doomed, "xhr-polling")]
        for client in victims:
            join(client, "t8-lonely")
        assert socketio_wsgi.broadcast_channel("still here", "t8-lonely") == 2
        for client in victims:
            assert client.receive(10) == "still here"
        sessions_before = emitter.total_sessions()
        doomed.proc.kill()  # no goodbye: its registrations stay until its ttl ends
        doomed.proc.wait(10)

        def nobody_left() -> bool:
            try:
                socketio_wsgi.broadcast_channel("anyone?", "t8-lonely")
            except NoSocket:
                return True
            time.sleep(0.2)
            return False

        wait_for(nobody_left, timeout=15)
        assert emitter.total_sessions() == sessions_before - 2
        with pytest.raises((ConnectionClosedError, OSError)):
            victims[0].receive(5)
        moved = clients(s1)  # the client reconnects to a surviving worker
        join(moved, "t8-lonely")
        assert socketio_wsgi.broadcast_channel("welcome back", "t8-lonely") == 1
        assert moved.receive(10) == "welcome back"
    finally:
        doomed.stop()


@pytest.mark.redis
def test_in_process_server_without_monkey_patching(cluster, clients, make_server_thread,
                                                   redis_server):
    """``serve()`` embedded in a program that did not monkey-patch: redis-py
    blocks, so the backend reads pub/sub in gevent's thread pool."""
    embedded = make_server_thread(backend=redis_server.url(ttl=3))
    embedded.on("on_subscribe", lambda request, socket, context, channel:
                socket.send({"subscribed": channel}))
    embedded.on("on_message", lambda request, socket, context, message:
                socket.send({"reached": socket.broadcast_channel(message, "t9-room")}))
    try:
        here, there = clients(embedded), clients(cluster[1], "xhr-polling")
        join(here, "t9-room")
        join(there, "t9-room")
        here.send("from the embedded server")
        assert here.receive(10) == {"reached": 1}
        assert there.receive(10) == "from the embedded server"
        assert ask(there, do="bc", channel="t9-room", value="back") == {"reached": 1}
        assert here.receive(10) == "back"
    finally:
        embedded.call(embedded.engine.close_all)
        embedded.call(embedded.engine.backend.close)  # in its hub, as serve() does


# -- faults ------------------------------------------------------------------

@pytest.mark.redis
def test_redis_unreachable_at_start_up_is_a_clear_error(tmp_path):
    require(os.path.exists(REDIS_SERVER), "redis-server is not installed (apt-get install redis-server)")
    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(ConfigurationError, match="cannot reach Redis"):
        RedisBackend(url)
    with pytest.raises(ConfigurationError, match="cannot reach Redis"):
        socketio_wsgi.set_backend(url)
    worker = Worker(tmp_path, "no-redis", url)
    assert worker.proc.wait(30) != 0
    assert "cannot reach Redis" in worker.output()
    assert "serving on" not in worker.output()


@pytest.mark.redis
def test_redis_restart_in_the_middle_of_traffic(tmp_path, clients):
    store = RedisServer(tmp_path).start()
    try:
        w1, w2 = start_workers(tmp_path, store.url(ttl=3), ["w1", "w2"])
        previous = api.use_backend(None)
        emitter = socketio_wsgi.set_backend(store.url())
        try:
            run_restart_scenario(store, emitter, w1, w2, clients)
        finally:
            emitter.close()
            api.restore(previous)
            w1.stop()
            w2.stop()
    finally:
        store.stop()


def run_restart_scenario(store: RedisServer, emitter: RedisBackend, w1: Worker, w2: Worker,
                         clients) -> None:
    a1, a2, b1, b2 = clients(w1), clients(w1), clients(w2), clients(w2)
    everyone = [a1, a2, b1, b2]
    for client in everyone:
        join(client, "live")
    rounds = [{"round": n} for n in range(3)]  # traffic before the restart
    for message in rounds:
        assert socketio_wsgi.broadcast_channel(message, "live") == 4
    for client in everyone:
        assert client.receive_many(3, timeout=10) == rounds
    greenlets_before = [w1.greenlets(), w2.greenlets()]

    store.stop()
    for worker in (w1, w2):
        wait_for(lambda: "unreachable" in worker.output(), timeout=10)
    time.sleep(1.5)  # let the workers fail to reconnect a few times (back-off)
    with pytest.raises(redis.ConnectionError):  # an emitter-only process has only Redis
        socketio_wsgi.broadcast_channel("lost", "live")
    # local traffic goes on while Redis is down
    a1.send("echo while down")
    assert a1.receive(10) == "echo while down"
    assert ask(a1, do="bc", channel="live", value="local only") == {"reached": 1}
    assert a2.receive(10) == "local only"
    join(b2, "joined-while-down")  # must be registered once Redis is back

    store.start()  # same port, empty: the workers must register everything again
    wait_for(lambda: emitter.channel_size("live") == 4 and emitter.total_sessions() == 4, timeout=20)
    wait_for(lambda: emitter.channel_size("joined-while-down") == 1, timeout=10)
    assert socketio_wsgi.broadcast_channel("after", "live") == 4
    assert socketio_wsgi.broadcast_channel("you too", "joined-while-down") == 1
    assert b1.receive(10) == "after"
    assert a2.receive(10) == "after"
    assert a1.receive(10) == "after"
    assert b2.receive_many(2, timeout=10) == ["after", "you too"]
    assert ask(b1, do="bc", channel="live", value="cross") == {"reached": 3}
    for client in (a1, a2, b2):
        assert client.receive(10) == "cross"
    for worker in (w1, w2):
        assert worker.proc.poll() is None
        assert "reachable again" in worker.output()
    # Reconnecting leaked none.  A websocket that just handled input keeps its
    # reader for PARK_AFTER seconds (a busy connection does not respawn one per
    # message), so the count settles back within that.
    counts: List[List[int]] = []

    def settled() -> bool:
        counts.append([w1.greenlets(), w2.greenlets()])
        return all(after <= before for after, before in zip(counts[-1], greenlets_before))

    try:
        wait_for(settled, timeout=PARK_AFTER + 10, interval=0.25)
    except AssertionError:
        raise AssertionError(f"greenlets before the restart {greenlets_before}, "
                             f"after it: {counts[-3:]}") from None
