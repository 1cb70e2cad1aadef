"""Socket.IO 4 and 0.6 clients on two server processes sharing one Redis:
named events and channel broadcasts cross processes and generations, each
encoded once per protocol in each process."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import Dict, List

import pytest
from servers import wait_for
from test_channels import SUB, frame
from test_redis import RedisServer
from test_runner import free_port
from v4_support import run_client, unmark, v4_modules

from socketio_wsgi.client import Client

pytestmark = pytest.mark.redis

APPS = os.path.join(os.path.dirname(__file__), "apps")


class V4Worker:
    def __init__(self, directory, name: str, backend: str):
        self.port = free_port()
        self.log = directory / f"{name}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "socketio_wsgi", "--port", str(self.port), "--origins", "*",
                 "--no-access-log", "--backend", backend, "redis_v4_app:application"],
                cwd=APPS, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=out, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> "V4Worker":
        wait_for(lambda: "serving on" in self.log.read_text() or self.proc.poll() is not None, timeout=30)
        assert self.proc.poll() is None, self.log.read_text()
        return self

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    v4_modules()
    redis_server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    directory = tmp_path_factory.mktemp("v4workers")
    started = [V4Worker(directory, name, redis_server.url(prefix="v4", ttl=3)) for name in ("a", "b")]
    try:
        yield [worker.ready() for worker in started]
    finally:
        for worker in started:
            worker.stop()
        redis_server.stop()


def in_thread(config: Dict, results: Dict, key: str) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.update({key: run_client(config, timeout=40)}))
    thread.start()
    return thread


def events(lines: List[Dict], name: str) -> List[Dict]:
    return [line for line in lines if line["type"] == "event" and line["name"] == name]


def test_channel_and_named_events_across_processes_and_generations(workers):
    a, b = workers
    old = Client(b.url, transport="websocket", timeout=20)
    old.connect()
    results: Dict = {}
    try:
        old.send_payload(SUB + frame("room"))
        shouter = in_thread({"url": a.url, "steps": [
            {"emit": "join", "args": ["room"], "ack": True},
            {"wait": "go"},
            {"emit": "shout", "args": ["hi all", "room"], "ack": True},
            {"wait": "message"},
        ]}, results, "shouter")
        listener = in_thread({"url": b.url, "transports": ["websocket"], "steps": [
            {"emit": "join", "args": ["room"], "ack": True},
            {"wait": "shouted"},
        ]}, results, "listener")
        joined = [old.receive(timeout=30), old.receive(timeout=30)]
        assert joined == [{"$event": "joined", "args": ["4"]}] * 2
        old.send("go")
        assert old.receive(timeout=30) == {"$event": "shouted", "args": ["hi all", "AQI="]}
        old.send({"from": "0.6 on b"})
        shouter.join(40)
        listener.join(40)
        assert not shouter.is_alive() and not listener.is_alive()
    finally:
        old.disconnect()
    shouter_lines, listener_lines = results["shouter"], results["listener"]
    assert any(line["type"] == "done" for line in shouter_lines), shouter_lines
    assert any(line["type"] == "done" for line in listener_lines), listener_lines
    [shouted] = events(listener_lines, "shouted")
    assert unmark(shouted["args"]) == ["hi all", b"\x01\x02"]
    # the shout reached the listener and the 0.6 client, both on the other process
    shout_ack = [line for line in shouter_lines if line["type"] == "ack"][1]
    assert shout_ack["args"] == [2]
    [message] = events(shouter_lines, "message")
    assert message["args"] == [{"from": "0.6 on b"}]
