"""Profile one server under one scenario with py-spy; print where its time goes.

    python -m bench.profile --peer ours --scenario echo --count 50
    python -m bench.profile --peer ours --scenario fanout --count 1000 --variant /tmp/patched

py-spy samples the server process (``--nonblocking``, so it is not paused)
while the Node.js load generator drives it, then this prints the functions
with the most samples, self and inclusive, with paths shortened.  ``--raw``
keeps py-spy's collapsed stacks (flamegraph input).  Needs ``pip install py-spy``.
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Tuple

from bench.run import Peer, Server, default_peers, drive, ensure_ws, ours_command, raise_nofile

_PATH = re.compile(r" \((?:[^()]*/)?(site-packages/|lib/python3\.\d+/)?([^()/]+/)?([^()/]+\.py):(\d+)\)")


def shorten(frame: str) -> str:
    """``func (/long/path/pkg/mod.py:12)`` -> ``func pkg/mod.py:12``."""
    return _PATH.sub(lambda m: f" {m.group(2) or ''}{m.group(3)}:{m.group(4)}", frame)


def summarise(raw_path: str, top: int) -> Tuple[int, List[Tuple[str, int]], List[Tuple[str, int]]]:
    own: Dict[str, int] = collections.Counter()
    inclusive: Dict[str, int] = collections.Counter()
    total = 0
    with open(raw_path) as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = [shorten(f) for f in stack.split(";") if f]
            if not frames:
                continue
            own[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n
    return total, own.most_common(top), inclusive.most_common(top)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--peer", default="ours", help="plain, ours, pysio or channels")
    parser.add_argument("--variant", default=None, help="run our server from a patched copy in this directory")
    parser.add_argument("--scenario", default="echo", choices=("echo", "fanout", "polling"))
    parser.add_argument("--count", type=int, default=50, help="clients (echo, polling) or subscribers (fanout)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--raw", default=None, help="also keep py-spy's collapsed stacks in this file")
    args = parser.parse_args(argv)
    if shutil.which("py-spy") is None:
        raise SystemExit("bench.profile: py-spy is not installed (pip install py-spy)")
    if args.variant:
        peer = Peer("variant", "variant", "sio06", ours_command(), pythonpath=os.path.abspath(args.variant))
    else:
        peer = {p.key: p for p in default_peers()}[args.peer]
    ws_module = ensure_ws()
    raise_nofile(args.count + 1000)
    logdir = tempfile.mkdtemp(prefix="socketio-profile-")
    raw = args.raw or os.path.join(logdir, "stacks.txt")
    server = Server(peer, logdir)
    try:
        warm = 1.0
        spy = subprocess.Popen(["py-spy", "record", "--nonblocking", "-r", str(args.rate), "-f", "raw",
                                "-d", str(int(args.seconds + warm + 1)), "-o", raw, "-p", str(server.proc.pid)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        key = "subscribers" if args.scenario == "fanout" else "clients"
        options = {key: args.count, "warmup": warm, "duration": args.seconds}
        if args.scenario == "fanout":
            options.update(publishes=5, window=8)
        result = drive(server, ws_module, args.scenario, 120 + args.seconds, **options)
        spy.wait(60)
    finally:
        server.stop()
    print(f"{peer.label} {args.scenario} x{args.count}: {result}")
    total, own, inclusive = summarise(raw, args.top)
    print(f"{total} samples (Hub.run self time is the event loop: libev, callbacks, the wait for I/O)")
    print("-- self --")
    for name, n in own:
        print(f"{100 * n / total:5.1f}%  {name}")
    print("-- inclusive --")
    for name, n in inclusive:
        print(f"{100 * n / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
