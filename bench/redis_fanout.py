"""Cross-process fan-out: deliveries per second to many subscribers.

Compares, in one run and on the same machine:

- ``memory``: the in-memory backend, one server process holding every subscriber;
- ``redis``: the Redis backend, the subscribers spread over two server processes,
  the publisher a handler in the first (half the deliveries cross Redis);
- ``redis out-of-band``: the same two servers, the publisher this process
  through ``set_backend`` (every delivery crosses Redis).

Run from the repository root (needs redis-server, or pass ``--redis-url``)::

    python bench/redis_fanout.py                     # 1000 subscribers, 50 messages, 3 rounds
    python bench/redis_fanout.py --subscribers 200 --messages 20 --rounds 1

Every subscriber is a websocket client in this process (gevent greenlets), so
this process's CPU is part of what is measured; the figures compare backends,
they are not a capacity claim.  Each round is bounded by ``--timeout``.

This file is also the app the server processes run (``redis_fanout:application``).
"""
if __name__ == "__main__":  # the benchmark process: patch before anything opens a socket
    from gevent import monkey
    monkey.patch_all()

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, List, Optional, Tuple

from socketio_wsgi import on_message, on_subscribe

HERE = os.path.dirname(os.path.abspath(__file__))
CHANNEL = "bench"


# -- the app the servers run ---------------------------------------------------

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"bench"]


@on_subscribe
def acknowledge(request, socket, context, channel):
    socket.send("subscribed")


@on_message
def burst(request, socket, context, message):
    """``{"burst": n, "size": bytes}``: broadcast n messages to the channel."""
    if isinstance(message, dict) and "burst" in message:
        body = "x" * int(message.get("size", 64))
        reached = sum(socket.broadcast_channel(f"{i}:{body}", CHANNEL) for i in range(message["burst"]))
        socket.send({"reached": reached})


# -- processes -------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


class Processes:
    """Child processes started here, stopped by PID at the end."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.children: List[subprocess.Popen] = []

    def redis(self) -> str:
        server = shutil.which("redis-server")
        if server is None:
            raise SystemExit("redis-server is not installed; install it or pass --redis-url")
        port = free_port()
        log = open(os.path.join(self.workdir, "redis.log"), "w")
        self.children.append(subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.workdir], stdout=log, stderr=subprocess.STDOUT))

        def answers() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_until(answers, 10, "redis-server")
        return f"redis://127.0.0.1:{port}/0"

    def server(self, name: str, *args: str) -> str:
        port = free_port()
        path = os.path.join(self.workdir, f"{name}.log")
        with open(path, "w") as log:
            self.children.append(subprocess.Popen(
                [sys.executable, "-m", "socketio_wsgi", "--port", str(port), "--no-access-log",
                 "--heartbeat-interval", "120", "--heartbeat-timeout", "120", *args,
                 "redis_fanout:application"],
                cwd=HERE, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=log,
                stderr=subprocess.STDOUT))
        child = self.children[-1]
        wait_until(lambda: "serving on" in open(path).read() or child.poll() is not None, 30, name)
        if child.poll() is not None:
            raise SystemExit(f"{name} exited:\n{open(path).read()}")
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait(10)


# -- measuring ---------------------------------------------------------------------

def connect_subscribers(urls: List[str], count: int, timeout: float) -> list:
    import gevent.pool
    from socketio_wsgi.client import Client
    from socketio_wsgi.protocol import encode_frame

    def one(index: int):
        client = Client(urls[index % len(urls)], timeout=timeout)
        client.connect()
        client.send_payload(encode_frame("__subscribe__") + encode_frame(CHANNEL))
        if client.receive(timeout) != "subscribed":
            raise RuntimeError("no subscribe acknowledgement")
        return client

    return list(gevent.pool.Pool(100).imap(one, range(count)))


def measure(subscribers: list, publish: Callable[[], int], messages: int, timeout: float
            ) -> Tuple[float, int]:
    """Seconds from the publish until every subscriber has every message."""
    import gevent
    finished: List[float] = []

    def drain(client) -> None:
        client.receive_many(messages, timeout=timeout)
        finished.append(time.monotonic())

    readers = [gevent.spawn(drain, client) for client in subscribers]
    gevent.sleep(0)
    start = time.monotonic()
    reached = publish()
    gevent.joinall(readers, timeout=timeout, raise_error=True)
    if len(finished) != len(subscribers):
        raise SystemExit(f"only {len(finished)} of {len(subscribers)} subscribers got everything")
    return max(finished) - start, reached


def run_case(urls: List[str], publisher_url: Optional[str], emitter_url: Optional[str],
             args: argparse.Namespace) -> Tuple[float, int]:
    from socketio_wsgi.client import Client
    subscribers = connect_subscribers(urls, args.subscribers, args.timeout)
    publisher = None
    try:
        if publisher_url is not None:
            publisher = Client(publisher_url, timeout=args.timeout)
            publisher.connect()

            def publish() -> int:
                publisher.send({"burst": args.messages, "size": args.size})
                return publisher.receive(args.timeout)["reached"]
        else:
            import socketio_wsgi
            from socketio_wsgi import api
            previous = api.use_backend(None)
            backend = socketio_wsgi.set_backend(emitter_url)
            body = "x" * args.size

            def publish() -> int:
                return sum(socketio_wsgi.broadcast_channel(f"{i}:{body}", CHANNEL)
                           for i in range(args.messages))
        times = []
        for _ in range(args.rounds):
            seconds, reached = measure(subscribers, publish, args.messages, args.timeout)
            if reached != args.subscribers * args.messages:
                raise SystemExit(f"publish reported {reached} deliveries, expected "
                                 f"{args.subscribers * args.messages}")
            times.append(seconds)
        if publisher_url is None:
            backend.close()
            api.restore(previous)
        return statistics.median(times), args.subscribers * args.messages
    finally:
        for client in subscribers + ([publisher] if publisher else []):
            client.disconnect()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=50, help="messages per round")
    parser.add_argument("--size", type=int, default=64, help="payload characters per message")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per case (median reported)")
    parser.add_argument("--timeout", type=float, default=60.0, help="bound for each wait, seconds")
    parser.add_argument("--redis-url", default=None,
                        help="use this Redis instead of starting redis-server (a prefix is added)")
    args = parser.parse_args(argv)

    workdir = tempfile.mkdtemp(prefix="redis-fanout-")
    procs = Processes(workdir)
    rows = []
    try:
        redis_url = args.redis_url or procs.redis()
        redis_url += ("&" if "?" in redis_url else "?") + f"prefix=bench-{os.getpid()}"
        memory = procs.server("memory")
        redis_servers = [procs.server(f"redis-{n}", "--backend", redis_url) for n in (1, 2)]
        cases = [
            ("memory", "1", [memory], memory, None),
            ("redis", "2", redis_servers, redis_servers[0], None),
            ("redis out-of-band", "2 + emitter", redis_servers, None, redis_url),
        ]
        for name, processes, urls, publisher, emitter in cases:
            seconds, deliveries = run_case(urls, publisher, emitter, args)
            rows.append((name, processes, deliveries, seconds))
            print(f"  {name}: {deliveries / seconds:,.0f} deliveries/s", file=sys.stderr, flush=True)
    finally:
        procs.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"{args.subscribers} subscribers on one channel, {args.messages} messages of "
          f"{args.size} characters per round, median of {args.rounds} rounds")
    header = ("backend", "processes", "deliveries", "seconds", "deliveries/s")
    lines = [header] + [(n, p, f"{d:,}", f"{s:.3f}", f"{d / s:,.0f}") for n, p, d, s in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    print(rule)
    for index, line in enumerate(lines):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
        if index == 0:
            print(rule)
    print(rule)
    return 0


if __name__ == "__main__":
    sys.exit(main())
