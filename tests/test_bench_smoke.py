"""The bench runs: ``python -m bench --quick`` prints its table with numbers.

A smoke check only: benchmarks are not tests, so nothing here looks at how
fast anything is.  The quick run drives our server and the plain
gevent-websocket app with the Node.js load generator (``ws`` from npm,
installed into the bench cache on first use) and never needs
python-socketio or daphne.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from browser_support import require

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUMBER = r"[\d,]+(?:\.\d+)?"


def cell_pair(metric: str) -> str:
    """A row whose plain and socketio_wsgi cells both hold a number and a ratio."""
    return rf"^{metric}\s+{NUMBER} \(1\.00x\)\s+{NUMBER} \({NUMBER}x\)(\s|$)"


def test_quick_bench_prints_a_table_with_numbers_for_every_scenario():
    require(shutil.which("node") is not None and shutil.which("npm") is not None,
            "node and npm are needed for the bench's load generator")
    done = subprocess.run([sys.executable, "-m", "bench", "--quick"], cwd=REPO,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"gevent-websocket \(plain\)\s+socketio_wsgi\s+socketio_wsgi \(Socket\.IO 4\)"
                     r"\s+python-socketio 5 \(skipped\)", out), out
    for row in (r"echo, 1 clients\s+msg/s", r"echo, 10 clients\s+p99 ms",
                r"echo, 10 clients\s+server CPU us/msg",
                r"fan-out, 10 subscribers\s+deliveries/s",
                r"fan-out, 10 subscribers\s+last delivery p50 ms",
                r"idle, 30 connections\s+handshakes/s", r"idle, 30 connections\s+RSS KB/conn",
                r"xhr-polling, 5 clients\s+msg/s"):
        assert re.search(cell_pair(row), out, re.M), f"no numbers for {row!r} in\n{out}"
        # The same server driven by Socket.IO 4 clients: its column has numbers too.
        assert re.search(cell_pair(row)[:-len(r"(\s|$)")] + rf"\s+{NUMBER} \({NUMBER}x\)", out, re.M), \
            f"no Socket.IO 4 numbers for {row!r} in\n{out}"
    # jsonp-polling: our server only (the plain app and Engine.IO 4 have none).
    assert re.search(rf"^jsonp-polling, 5 clients\s+msg/s\s+n/a\s+{NUMBER}\s+n/a", out, re.M), out
    # Every connection of the idle scenario still answered after the hold.
    assert re.search(r"^idle, 30 connections\s+alive after 0\.5 s\s+30 \(1\.00x\)\s+30 \(1\.00x\)", out, re.M), out
    assert "skipped: python-socketio 5: not run (--quick)" in out
    assert "skipped: Channels 4 / daphne: not run (--quick)" in out
    assert re.search(r"^echo 1: CPU % server / loadgen\s+\d+ / \d+\s+\d+ / \d+", out, re.M), out
    # The attacks scenario: one row per attack, then the verdict line.
    assert re.search(r"^9,999 echoes never collected\s+\d+\s+\d+\s+[\d.]+", out, re.M), out
    assert re.search(r"^worst bystander delay [\d.]+ ms", out, re.M), out
