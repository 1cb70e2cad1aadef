"""Where the bytes of an idle websocket go: tracemalloc over N connections.

    python -m bench.memory --connections 5000

Our server runs in this process under :mod:`tracemalloc`; the Node load
generator (another process, so none of its memory counts) opens
``--connections`` Socket.IO 0.6 websockets and holds them.  Once every
session exists and the connections are quiet, the Python heap is compared
with the one before the first connection, grouped by the line that
allocated, and divided by the number of connections.

What tracemalloc sees is the Python heap only: the kernel's socket buffers
and libev's per-descriptor arrays are not in it, and an RSS figure (``python
-m bench --scenarios idle``) also counts allocator slack.  The two together
say where an idle connection's memory goes.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from typing import List, Optional  # noqa: E402

import gevent  # noqa: E402
from gevent import subprocess  # noqa: E402

from bench.run import LOADGEN, ensure_ws, raise_nofile  # noqa: E402
from socketio_wsgi.server import make_server  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def where(frame: tracemalloc.Frame) -> str:
    """A frame as ``package/module.py:line``, relative to site-packages or the repo."""
    name = frame.filename
    for marker in ("site-packages/", "socketio_wsgi/", "lib/python3"):
        i = name.find(marker)
        if i >= 0:
            name = name[i:] if marker == "socketio_wsgi/" else name[i + len(marker):]
            break
    return f"{name}:{frame.lineno}"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--frames", type=int, default=8, help="traceback depth kept per allocation")
    parser.add_argument("--top", type=int, default=15, help="lines shown")
    args = parser.parse_args(argv)
    raise_nofile(args.connections + 1000)
    ws_module = ensure_ws()

    from bench import apps_ours  # the handlers register on import

    server = make_server(apps_ours.application, "127.0.0.1", 0, access_log=False, origins="*")
    server.start()
    engine = server.socketio_middleware.engine
    port = server.server_port
    gevent.sleep(0.2)
    gc.collect()
    tracemalloc.start(args.frames)
    before = tracemalloc.take_snapshot()
    config = {"wsModule": ws_module, "proto": "sio06", "port": port, "serverPid": os.getpid(),
              "scenario": "idle", "stages": [args.connections], "hold": 3600, "settle": 0.5}
    loadgen = subprocess.Popen(["node", LOADGEN, json.dumps(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60 + args.connections / 200
        while len(engine.sessions) < args.connections:
            if time.monotonic() > deadline or loadgen.poll() is not None:
                raise SystemExit(f"memory: {len(engine.sessions)} of {args.connections} sessions "
                                 f"came up (load generator exit {loadgen.poll()})")
            gevent.sleep(0.2)
        gevent.sleep(2.0)  # past PARK_AFTER: every connection parked
        gc.collect()
        after = tracemalloc.take_snapshot()
        sessions = len(engine.sessions)
    finally:
        loadgen.kill()
        loadgen.wait()
        server.stop(timeout=2)
    tracemalloc.stop()
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    diffs = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "lineno")
    total = sum(d.size_diff for d in diffs)
    print(f"bench.memory: {sessions:,} idle Socket.IO 0.6 websockets; Python heap "
          f"+{total / 1024 / 1024:.1f} MiB = {total / sessions:,.0f} bytes per connection "
          f"({sys.version.split()[0]}, gevent {gevent.__version__})")
    print()
    print("| bytes per connection | blocks per connection | allocated at |")
    print("|---:|---:|---|")
    grew = sorted((d for d in diffs if d.size_diff > 0), key=lambda d: -d.size_diff)
    shown = 0
    for d in grew[: args.top]:
        shown += d.size_diff
        print(f"| {d.size_diff / sessions:,.0f} | {d.count_diff / sessions:.1f} | "
              f"{where(d.traceback[0])} |")
    print(f"| {(total - shown) / sessions:,.0f} | | everything else |")
    print()
    print("| bytes per connection | module |")
    print("|---:|---|")
    by_file = after.filter_traces(ignore).compare_to(before.filter_traces(ignore), "filename")
    for d in sorted(by_file, key=lambda d: -d.size_diff)[: args.top]:
        if d.size_diff > 0:
            print(f"| {d.size_diff / sessions:,.0f} | {where(d.traceback[0]).rsplit(':', 1)[0]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
