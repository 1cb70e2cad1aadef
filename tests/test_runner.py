"""The runner (`python -m socketio_wsgi`) in a real subprocess."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from socketio_wsgi.client import Client
from servers import wait_for

APPS = os.path.join(os.path.dirname(__file__), "apps")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Runner:
    def __init__(self, tmp_path, *args: str):
        self.port = free_port()
        self.events = tmp_path / "events.txt"
        self.log = tmp_path / "out.txt"
        env = dict(os.environ, RUNNER_EVENTS_FILE=str(self.events), PYTHONUNBUFFERED="1")
        self.out = open(self.log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "socketio_wsgi", "--port", str(self.port), "--origins", "*",
             "--no-access-log", *args, "runner_app:application"],
            cwd=APPS, env=env, stdout=self.out, stderr=subprocess.STDOUT)
        wait_for(lambda: self.output().count("serving on") >= 1, timeout=20)

    def output(self) -> str:
        return self.log.read_text()

    def lines(self):
        return self.events.read_text().splitlines() if self.events.exists() else []

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.out.close()


@pytest.fixture
def runner(tmp_path):
    started = []

    def start(*args):
        r = Runner(tmp_path, *args)
        started.append(r)
        return r

    yield start
    for r in started:
        r.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_runner_serves_and_closes_every_session_on_signal(runner, sig):
    r = runner()
    assert f"http://127.0.0.1:{r.port}/" in r.output()
    with urllib.request.urlopen(f"http://127.0.0.1:{r.port}/anything", timeout=5) as resp:
        assert resp.read() == b"runner app"
    clients = [Client(f"http://127.0.0.1:{r.port}", transport=t, timeout=5)
               for t in ("websocket", "xhr-polling")]
    for client in clients:
        client.connect()
        client.send("ping é😀")
        assert client.receive(timeout=5) == "ping é😀"
    r.proc.send_signal(sig)
    assert r.proc.wait(15) == 0
    lines = r.lines()
    for client in clients:
        sid = client.session_id
        assert f"disconnect {sid} server shutdown" in lines
        assert lines.count(f"finish {sid}") == 1
    assert "shutting down" in r.output()


def test_runner_reload_restarts_on_change_without_nesting(runner, tmp_path):
    import shutil
    apps = tmp_path / "apps"
    shutil.copytree(APPS, apps)
    r = Runner.__new__(Runner)
    r.port = free_port()
    r.events = tmp_path / "events.txt"
    r.log = tmp_path / "out.txt"
    r.out = open(r.log, "w")
    env = dict(os.environ, RUNNER_EVENTS_FILE=str(r.events), PYTHONUNBUFFERED="1")
    r.proc = subprocess.Popen(
        [sys.executable, "-m", "socketio_wsgi", "--reload", "--port", str(r.port), "--origins", "*",
         "--no-access-log", "runner_app:application"],
        cwd=str(apps), env=env, stdout=r.out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: r.output().count("serving on") == 1, timeout=20)
        client = Client(f"http://127.0.0.1:{r.port}", timeout=5)
        client.connect()
        time.sleep(1.1)  # mtime granularity
        (apps / "runner_app.py").write_text((apps / "runner_app.py").read_text() + "\n# changed\n")
        wait_for(lambda: r.output().count("serving on") == 2, timeout=20)
        assert "restarting" in r.output()
        assert f"finish {client.session_id}" in r.lines()  # the old child closed its sessions
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(r.proc.pid)],
                                  capture_output=True, text=True).stdout.split()
        assert len(children) == 1  # one child, never a chain of parents
        with Client(f"http://127.0.0.1:{r.port}", timeout=5) as again:
            again.send("after reload")
            assert again.receive(timeout=5) == "after reload"
        r.proc.send_signal(signal.SIGTERM)
        assert r.proc.wait(15) == 0
    finally:
        r.stop()


def test_shutdown_lets_a_polling_client_collect_what_was_queued(runner):
    r = runner("--shutdown-grace", "10")
    client = Client(f"http://127.0.0.1:{r.port}", transport="xhr-polling", timeout=5)
    client.connect()
    client.send("queued before the signal")  # the echo waits in the queue: no GET is pending
    r.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "shutting down" in r.output(), timeout=10)
    # New sessions are refused while the old ones drain...
    with pytest.raises(Exception) as refused:
        Client(f"http://127.0.0.1:{r.port}", transport="xhr-polling", timeout=5).connect()
    assert getattr(refused.value, "status", None) == 503
    # ...but the closed session's last poll still gets its messages.
    assert client.receive(timeout=5) == "queued before the signal"
    started = time.monotonic()
    assert r.proc.wait(15) == 0
    assert time.monotonic() - started < 9  # it did not wait out the whole grace period
    assert f"disconnect {client.session_id} server shutdown" in r.lines()


HEAP_PROBE = """
import gc, sys
def rss_mib():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) // 1024 for l in fh if l.startswith("VmRSS:"))
from socketio_wsgi.server import prepare_heap
prepare_heap()
frozen = gc.get_freeze_count()
first = bytearray(300_000); del first  # glibc raises its threshold after a large free
before = rss_mib()
small, large = [], []
for _ in range(100):  # large messages interleaved with long-lived small objects
    large.append(bytearray(300_000)); small.append(bytearray(600))
del large
print(frozen, before, rss_mib())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and glibc's malloc")
def test_the_runner_heap_returns_large_buffers_and_freezes_startup_objects():
    out = subprocess.run([sys.executable, "-c", HEAP_PROBE], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    frozen, before, after = map(int, out)
    assert frozen > 1000  # start-up objects are out of every later collection
    assert after - before < 10  # 30 MB of freed large buffers went back to the system
