"""A small development reloader: one parent that restarts one child.

The parent never imports the application; it watches the modification times
of Python files under the current directory and, on a change, stops the
child with SIGTERM (so its sessions close cleanly) and starts a new one.
Processes never nest.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Dict, List

__all__ = ["run_with_reloader", "snapshot"]

MAX_FILES = 20_000
SKIP_DIRS = {".git", "__pycache__", "node_modules", ".venv", "venv", ".tox", ".mypy_cache"}


def snapshot(root: str = ".") -> Dict[str, float]:
    """Modification times of up to MAX_FILES ``.py`` files below ``root``."""
    times: Dict[str, float] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for name in filenames:
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                try:
                    times[path] = os.stat(path).st_mtime
                except OSError:
                    continue
                if len(times) >= MAX_FILES:
                    return times
    return times


def _stop(child: subprocess.Popen, timeout: float = 10.0) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def run_with_reloader(command: List[str], interval: float = 1.0) -> int:
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while True:
        before = snapshot()
        child = subprocess.Popen(command)
        changed = False
        while not stopping and child.poll() is None:
            time.sleep(interval)
            if snapshot() != before:
                changed = True
                break
        if stopping or not changed:
            _stop(child)
            return 0 if stopping else (child.returncode or 0)
        print("socketio_wsgi: a file changed, restarting", file=sys.stderr, flush=True)
        _stop(child)
