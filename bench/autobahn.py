"""Websocket-layer benchmarks: Autobahn case group 9 (and the full 12/13)
timed against gevent-websocket, and the cost of permessage-deflate.

``python -m bench.autobahn group9``
    runs cases 9.* (large messages, many fragments, many round trips) with
    kosoku against an echo app on :func:`socketio_wsgi.websocket.accept` and
    against gevent-websocket's plain ``WebSocketHandler`` echo app, each in
    its own process on 127.0.0.1, and prints each case's verdict and duration
    side by side.
``python -m bench.autobahn compression``
    bytes on the wire and CPU per message with and without compression for a
    100-character JSON message and a 10 KiB JSON message (pure protocol
    objects, no sockets).
``python -m bench.autobahn full``
    every case of groups 1-7, 9, 10, 12 and 13 against our echo app (~20 min).

Timings are wall-clock milliseconds reported by kosoku; on a shared machine
run it twice and keep the lower figures.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

OUR_ECHO = """
import sys
from gevent import monkey; monkey.patch_all()
from socketio_wsgi.server import make_server
from socketio_wsgi.websocket import accept

def app(environ, start_response):
    ws = accept(environ, start_response, max_size=32 * 1024 * 1024)
    if ws is None:
        return []
    for message in ws:
        ws.send(message)
    return []

make_server(app, "127.0.0.1", int(sys.argv[1]), access_log=False).serve_forever()
"""

GWS_ECHO = """
import sys
from gevent import monkey; monkey.patch_all()
from gevent.pywsgi import WSGIServer
from geventwebsocket.handler import WebSocketHandler

def app(environ, start_response):
    ws = environ.get("wsgi.websocket")
    if ws is None:
        start_response("400 Bad Request", [("Content-Length", "0")])
        return [b""]
    while True:
        message = ws.receive()
        if message is None:
            break
        ws.send(message, binary=not isinstance(message, str))
    return []

WSGIServer(("127.0.0.1", int(sys.argv[1])), app, handler_class=WebSocketHandler,
           log=None).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EchoServer:
    """An echo app in a child process (started and stopped by PID)."""

    def __init__(self, code: str):
        self.port = free_port()
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen([sys.executable, "-c", code, str(self.port)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    error = self.proc.stderr.read().decode()[-2000:] if self.proc.stderr else ""
                    raise RuntimeError(f"the echo server exited: {error}") from None
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the echo server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def kosoku(port: int, cases: List[str], timeout: float) -> Dict[str, dict]:
    exe = shutil.which("kosoku")
    if exe is None:
        raise SystemExit("bench: kosoku is not installed (pip install -e '.[test]')")
    with tempfile.TemporaryDirectory() as outdir:
        args = [exe, "-m", "fuzzingclient", "-o", outdir]
        for case in cases:
            args += ["-i", case]
        args.append(f"127.0.0.1:{port}")
        try:
            subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"bench: kosoku did not finish within {timeout:.0f} s", file=sys.stderr)
        reports = {}
        for path in Path(outdir).glob("*case*.json"):
            report = json.loads(path.read_text(encoding="utf-8"))
            reports[report["id"]] = report
        return reports


def _key(case_id: str) -> Tuple[int, ...]:
    return tuple(int(p) for p in case_id.split("."))


def verdict(report: Optional[dict]) -> str:
    if report is None:
        return "-"
    behavior, close = report["behavior"], report["behaviorClose"]
    return behavior if behavior == close or close == "OK" else f"{behavior}/{close}"


def group9(timeout: float) -> int:
    results = {}
    for name, code in (("socketio_wsgi", OUR_ECHO), ("gevent-websocket", GWS_ECHO)):
        if name == "gevent-websocket":
            try:
                import geventwebsocket  # noqa: F401
            except ImportError:
                print("bench: gevent-websocket is not installed; skipping it", file=sys.stderr)
                continue
        server = EchoServer(code)
        try:
            started = time.monotonic()
            results[name] = kosoku(server.port, ["9.*"], timeout)
            print(f"{name}: {len(results[name])} cases in {time.monotonic() - started:.1f} s",
                  file=sys.stderr)
        finally:
            server.stop()
    names = list(results)
    ids = sorted({i for r in results.values() for i in r}, key=_key)
    header = f"{'case':8} " + " ".join(f"{n + ' (ms)':>26}" for n in names)
    print(header)
    totals = {n: 0 for n in names}
    for case_id in ids:
        cells = []
        for n in names:
            report = results[n].get(case_id)
            ms = report["duration"] if report else 0
            totals[n] += ms
            cells.append(f"{verdict(report):>12} {ms:>13}")
        print(f"{case_id:8} " + " ".join(cells))
    print(f"{'total':8} " + " ".join(f"{'':>12} {totals[n]:>13}" for n in names))
    ours = results.get("socketio_wsgi", {})
    return 0 if ours and all(verdict(r) == "OK" for r in ours.values()) else 1


def full(timeout: float) -> int:
    server = EchoServer(OUR_ECHO)
    try:
        reports = kosoku(server.port, ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*",
                                       "10.*", "12.*", "13.*"], timeout)
    finally:
        server.stop()
    counts: Dict[str, int] = {}
    for case_id in sorted(reports, key=_key):
        v = verdict(reports[case_id])
        counts[v] = counts.get(v, 0) + 1
        if v != "OK":
            print(f"{case_id}: {v} {reports[case_id].get('result', '')}")
    print("summary:", ", ".join(f"{v} {n}" for v, n in sorted(counts.items())))
    return 0


def compression(rounds: int) -> int:
    from socketio_wsgi.ws.deflate import Compression, Deflate
    from socketio_wsgi.ws.protocol import Protocol

    rng = random.Random(1)
    words = ("the quick brown fox jumps over lazy dog hello world chat message room user "
             "online typing").split()

    def chat(i: int) -> str:
        text = json.dumps({"user": f"user{i % 50}", "room": "lobby",
                           "text": " ".join(rng.choice(words) for _ in range(10))})
        return text[:100].ljust(100)

    def document(i: int) -> str:
        rows = [{"id": i * 1000 + k, "user": f"user{k % 50}", "ts": 1_700_000_000 + k,
                 "text": " ".join(rng.choice(words) for _ in range(6))} for k in range(150)]
        return json.dumps(rows)[:10240]

    default = Compression()
    variants = [
        ("off", None),
        ("default (level 1, window 12, memLevel 5, no context takeover)",
         dict(local_no_takeover=True, remote_no_takeover=True, level=default.level,
              local_window=default.server_max_window_bits, mem_level=default.mem_level)),
        ("level 6, window 15, memLevel 8, no context takeover",
         dict(local_no_takeover=True, remote_no_takeover=True, level=6)),
        ("level 6, window 15, memLevel 8, context takeover",
         dict(local_no_takeover=False, remote_no_takeover=False, level=6)),
    ]
    print(f"{'message':15} {'compression':62} {'bytes/msg':>10} {'send us':>9} {'receive us':>11}")
    for label, make in (("100-char JSON", chat), ("10 KiB JSON", document)):
        messages = [make(i) for i in range(rounds)]
        for name, params in variants:
            best = None
            for _ in range(3):
                sender = Protocol(deflate=Deflate(threshold=0, **params) if params else None)
                receiver = Protocol(client=True, deflate=Deflate(**params) if params else None)
                frames = []
                t0 = time.process_time()
                for m in messages:
                    sender.send_text(m)
                    frames.append(sender.data_to_send())
                t1 = time.process_time()
                for f in frames:
                    receiver.receive_data(f)
                    receiver.events_received()
                t2 = time.process_time()
                n = len(messages)
                row = (sum(map(len, frames)) / n, (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6)
                best = row if best is None or row[1] < best[1] else best
            print(f"{label:15} {name:62} {best[0]:10.1f} {best[1]:9.1f} {best[2]:11.1f}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.autobahn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["group9", "compression", "full"])
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds per kosoku run (default 1800)")
    parser.add_argument("--rounds", type=int, default=1000,
                        help="messages per compression measurement (default 1000)")
    args = parser.parse_args(argv)
    if args.what == "group9":
        return group9(args.timeout)
    if args.what == "full":
        return full(args.timeout)
    return compression(args.rounds)


if __name__ == "__main__":
    sys.exit(main())
