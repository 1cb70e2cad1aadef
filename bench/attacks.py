"""What each hostile client of issue 13 costs everyone else, measured.

    python -m bench.attacks                 # every attack, 5 s each
    python -m bench.attacks --seconds 2     # shorter
    python -m bench --scenarios attacks     # the same, from the main bench

Our server runs in its own process (pinned to core 0, as in the main bench).
A *bystander* websocket client echoes a message every 10 ms for the whole
run and records each round trip.  Each attack then runs for ``--seconds`` in
two attacker threads; the table shows, per attack, the bystander's worst and
99th-percentile echo delay while it ran, and the server's RSS before, at its
peak during, and after the attack (once ``write_timeout + heartbeat_timeout``
has passed).  Targets: worst delay under 100 ms, RSS after within 10 % of
before.
"""
from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional
from urllib.parse import quote

from bench.run import Peer, Server, ours_command
from socketio_wsgi.client import Client
from socketio_wsgi.protocol import encode, encode_frame

WRITE_TIMEOUT, HEARTBEAT_TIMEOUT = 2.0, 4.0
SERVER_OPTIONS = ["--write-timeout", str(WRITE_TIMEOUT), "--heartbeat-interval", "4",
                  "--heartbeat-timeout", str(HEARTBEAT_TIMEOUT), "--max-queue-messages", "2000"]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Target:
    def __init__(self, port: int):
        self.port = port

    def handshake(self, transport: str = "xhr-polling") -> str:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", f"/socket.io/{transport}//{time.time_ns()}")
            body = conn.getresponse().read().decode()
        finally:
            conn.close()
        return body.split("~m~")[2]

    def post(self, sid: str, body: bytes, transport: str = "xhr-polling") -> int:
        """POST a form body built beforehand with :func:`form` (building a
        multi-megabyte body here would hold the bench's GIL and delay the
        bystander's own measurements)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("POST", f"/socket.io/{transport}/{sid}/send", body=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()


def form(payload: str) -> bytes:
    return ("data=" + quote(payload, safe="")).encode()


# -- the attacks: one round each; the runner repeats them --------------------------------
SUBSCRIBES = form(encode([item for n in range(900) for item in ("__subscribe__", f"room-{n}")]))
TINY = form(encode_frame("a") * 400_000)
UNCOLLECTED = form(encode([f"m{n}" for n in range(9_999)]))
NAN = form(encode_frame("~j~[NaN]") + encode_frame('~j~"\\ud800"'))
FLOOD = form(encode("x" * 250_000))  # the bench app echoes it: 60 of them queue 15 MB


def subscribe_flood(target: Target) -> None:
    target.post(target.handshake(), SUBSCRIBES)


def tiny_messages(target: Target) -> None:
    target.post(target.handshake(), TINY)


def uncollected_echoes(target: Target) -> None:
    target.post(target.handshake(), UNCOLLECTED)


def bad_json(target: Target) -> None:
    target.post(target.handshake(), NAN)


def stops_reading(transport: str) -> Callable[[Target], None]:
    """Open a stream, have 15 MB echoed to it, never read."""
    def attack(target: Target) -> None:
        sock = socket.create_connection(("127.0.0.1", target.port), timeout=30)
        sock.sendall(f"GET /socket.io/{transport}//1 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = b""
        while head.count(b"~m~") < 2 or b'"' not in head.split(b"~m~")[2]:
            chunk = sock.recv(4096)
            if not chunk:
                return
            head += chunk
        sid = head.split(b"~m~")[2].split(b'"')[0].decode()
        for _ in range(60):
            if target.post(sid, FLOOD, transport) != 200:
                break
        time.sleep(WRITE_TIMEOUT)  # hold the unread socket until the deadline
        sock.close()
    return attack


ATTACKS: Dict[str, Callable[[Target], None]] = {
    "900 subscribes per payload": subscribe_flood,
    "400,000 tiny messages per payload": tiny_messages,
    "9,999 echoes never collected": uncollected_echoes,
    "NaN / lone-surrogate JSON": bad_json,
    "htmlfile client stops reading (15 MB)": stops_reading("htmlfile"),
}


class Bystander:
    """Echoes every 10 ms; keeps (time sent, delay) for every echo."""

    def __init__(self, port: int):
        self.client = Client(f"http://127.0.0.1:{port}", transport="websocket", timeout=30)
        self.client.connect()
        self.samples: List[tuple] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        n = 0
        while not self.stop.is_set():
            sent = time.monotonic()
            self.client.send(f"ping {n}")
            assert self.client.receive(timeout=30) == f"ping {n}"
            self.samples.append((sent, time.monotonic() - sent))
            n += 1
            time.sleep(0.01)

    def delays(self, start: float, end: float) -> List[float]:
        return [d for t, d in self.samples if start <= t <= end]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.client.disconnect()


def run_attack(target: Target, attack: Callable[[Target], None], seconds: float, pid: int,
               settle: float = WRITE_TIMEOUT + HEARTBEAT_TIMEOUT + 1.0) -> Dict[str, float]:
    stop = threading.Event()
    rounds = [0]
    peak = [0]

    def attacker() -> None:
        deadline = time.monotonic() + seconds
        while not stop.is_set() and time.monotonic() < deadline:
            attack(target)
            rounds[0] += 1

    before = rss_kib(pid)
    started = time.monotonic()
    threads = [threading.Thread(target=attacker, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads) and time.monotonic() < started + seconds + 60:
        peak[0] = max(peak[0], rss_kib(pid))
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(60)
    ended = time.monotonic()
    time.sleep(settle)
    return {"started": started, "ended": ended, "rounds": rounds[0], "before": before,
            "peak": peak[0], "after": rss_kib(pid)}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.attacks", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each attack runs")
    parser.add_argument("--settle", type=float, default=WRITE_TIMEOUT + HEARTBEAT_TIMEOUT + 1.0,
                        help="seconds to wait after each attack before reading RSS 'after' (by default "
                             "write_timeout + heartbeat_timeout + 1, when the attacker must be gone)")
    args = parser.parse_args(argv)
    logdir = tempfile.mkdtemp(prefix="socketio-attacks-")
    peer = Peer("ours", "socketio_wsgi", "sio06", ours_command()[:-1] + SERVER_OPTIONS
                + ours_command()[-1:])
    server = Server(peer, logdir)
    target = Target(server.port)
    bystander = Bystander(server.port)
    try:
        time.sleep(1.0)
        baseline = bystander.delays(0, time.monotonic())
        rows = []
        for name, attack in ATTACKS.items():
            result = run_attack(target, attack, args.seconds, server.proc.pid, args.settle)
            delays = bystander.delays(result["started"], result["ended"]) or [float("nan")]
            p99 = statistics.quantiles(delays, n=100)[98] if len(delays) >= 2 else delays[0]
            rows.append((name, int(result["rounds"]), len(delays), max(delays) * 1000, p99 * 1000,
                         result["before"], result["peak"], result["after"]))
    finally:
        bystander.close()
        server.stop()
    base = (statistics.median(d for _, d in bystander.samples[:len(baseline)]) * 1000
            if baseline else float("nan"))
    print(f"bystander echo before any attack: median {base:.2f} ms; each attack {args.seconds:g} s, "
          f"2 attacker threads; RSS in MiB")
    print(f"{'attack':40} {'rounds':>6} {'echoes':>6} {'worst ms':>9} {'p99 ms':>7} "
          f"{'RSS before':>10} {'peak':>7} {'after':>7} {'after/before':>12}")
    worst_all, back = 0.0, True
    for name, rounds, echoes, worst, p99, before, peak, after in rows:
        ratio = after / before if before else float("nan")
        worst_all = max(worst_all, worst)
        back = back and ratio <= 1.10
        print(f"{name:40} {rounds:6d} {echoes:6d} {worst:9.1f} {p99:7.1f} {before / 1024:10.1f} "
              f"{peak / 1024:7.1f} {after / 1024:7.1f} {ratio:12.2f}")
    print(f"worst bystander delay {worst_all:.1f} ms (target < 100 ms); "
          f"RSS back within 10 % after every attack: {'yes' if back else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
