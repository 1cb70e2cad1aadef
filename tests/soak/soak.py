"""Soak test: many short sessions, many held sessions, a long ordered stream.

Runs a real server process (``python -m socketio_wsgi``) and drives it with
greenlets of our Python client from this process.  Every phase is bounded in
count and time and prints one line; the exit status is 0 only if every check
held.  Full size (the issue's figures)::

    python tests/soak/soak.py

Quick (what CI runs through tests/test_soak.py)::

    python tests/soak/soak.py --cycles 600 --clients 200 --hold 3 --messages 1000
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

import gevent  # noqa: E402
from gevent.pool import Pool  # noqa: E402

from socketio_wsgi.client import Client  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN = "soak"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Server:
    def __init__(self, heartbeat: float):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "socketio_wsgi", "--port", str(self.port), "--origins", "*",
             "--no-access-log", "--status-token", TOKEN, "--heartbeat-interval", str(heartbeat),
             "--heartbeat-timeout", str(heartbeat), "--close-timeout", "2",
             "--polling-duration", "2", "--max-queue-messages", "100000", "soak_app:application"],
            cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self.status()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("soak server did not start")

    def status(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/socket.io/status?token={TOKEN}", timeout=10) as r:
            return json.load(r)

    def rss(self) -> int:
        return rss_kib(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def one_cycle(url: str, i: int) -> None:
    transport = "websocket" if i % 2 else "xhr-polling"
    client = Client(url, transport=transport, timeout=10)
    client.connect()
    client.send(f"c{i}")
    if client.receive(timeout=10) != f"c{i}":
        raise AssertionError("echo mismatch")
    client.disconnect()


def phase_cycles(server: Server, cycles: int, concurrency: int = 50) -> bool:
    # Warm-up: as many cycles as are measured.  From a cold start RSS steps up
    # over the first ~16,000 cycles (allocator and gevent pools reaching their
    # working size; no Python object survives a cycle) and is flat after that
    # (measured 43.9 -> 44.3 MB from 20,000 to 40,000 cycles); churn after the
    # warm-up must not grow it.
    warm = max(100, cycles)
    pool = Pool(concurrency)
    failures = []

    def run(i):
        try:
            one_cycle(server.url, i)
        except Exception as exc:  # counted, reported
            failures.append(repr(exc))

    for i in range(warm):
        pool.spawn(run, i)
    pool.join(timeout=120)
    wait_until(lambda: server.status()["sessions"]["total"] == 0, 15)
    start_rss = server.rss()
    started = time.monotonic()
    for i in range(warm, warm + cycles):
        pool.spawn(run, i)
    pool.join(timeout=max(120, cycles / 20))
    elapsed = time.monotonic() - started
    empty = wait_until(lambda: server.status()["sessions"]["total"] == 0, 15)
    status = server.status()
    end_rss = server.rss()
    growth = (end_rss - start_rss) / start_rss
    ok = not failures and empty and status["channels"]["count"] == 0 and growth <= 0.10
    print(f"cycles: {cycles} connect/disconnect (ws+polling) in {elapsed:.1f}s, failures {len(failures)}, "
          f"sessions left {status['sessions']['total']}, channels left {status['channels']['count']}, "
          f"RSS {start_rss} -> {end_rss} KiB ({growth:+.1%}) {'OK' if ok else 'FAIL'}")
    if failures:
        print("  first failure:", failures[0])
    return ok


def phase_hold(server: Server, clients: int, hold: float) -> bool:
    held = []
    for i in range(clients):
        client = Client(server.url, transport="websocket", timeout=20)
        client.connect()
        held.append(client)
    drops = []

    def keep_alive(client):
        deadline = time.monotonic() + hold
        try:
            while time.monotonic() < deadline:
                try:
                    client.receive(timeout=max(0.05, min(1.0, deadline - time.monotonic())))
                except TimeoutError:
                    pass
            client.send("alive?")
            if client.receive(timeout=20) != "alive?":
                drops.append("wrong echo")
        except Exception as exc:
            drops.append(repr(exc))

    greenlets = [gevent.spawn(keep_alive, c) for c in held]
    gevent.joinall(greenlets, timeout=hold + 60)
    alive = server.status()["sessions"]["total"]
    for client in held:
        client.disconnect()
    ok = not drops and alive == clients
    print(f"hold: {clients} websocket clients for {hold:.0f}s with heartbeats: drops {len(drops)}, "
          f"alive at the end {alive} {'OK' if ok else 'FAIL'}")
    return ok


def phase_ordered(server: Server, messages: int) -> bool:
    client = Client(server.url, transport="xhr-polling", timeout=30)
    client.connect()
    client.send(f"produce {messages}")
    got = []
    deadline = time.monotonic() + max(60, messages / 100)
    while len(got) < messages and time.monotonic() < deadline:
        try:
            got.append(client.receive(timeout=5))  # each poll is a new TCP connection
        except TimeoutError:
            break
    client.disconnect()
    expected = [f"seq {i}" for i in range(messages)]
    lost = len(set(expected) - set(got))
    reordered = sum(1 for a, b in zip(got, expected) if a != b) if not lost else 0
    ok = got == expected
    print(f"ordered: {messages} messages to a polling client reconnecting per poll: "
          f"received {len(got)}, lost {lost}, out of order {reordered} {'OK' if ok else 'FAIL'}")
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=2_000)
    parser.add_argument("--hold", type=float, default=60.0)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--heartbeat", type=float, default=10.0)
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.clients + 1024)), hard))
    server = Server(heartbeat=args.heartbeat)
    try:
        results = [phase_cycles(server, args.cycles), phase_hold(server, args.clients, args.hold),
                   phase_ordered(server, args.messages)]
    finally:
        server.stop()
    print("soak:", "all checks held" if all(results) else "FAILED")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
