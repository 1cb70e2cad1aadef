"""Helpers of the Django tests: paths, subprocess servers and their environment."""
from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONTRIB = os.path.join(ROOT, "contrib", "django")
EXAMPLE = os.path.join(ROOT, "examples", "chat")

# A checkout that was installed before django_socketio was mapped in setup.cfg
# still tests the code in contrib/django.
EXTRA_PATH = [] if importlib.util.find_spec("django_socketio") else [CONTRIB]
for _path in EXTRA_PATH:
    if _path not in sys.path:
        sys.path.insert(1, _path)


def subprocess_env(**extra: str) -> Dict[str, str]:
    """The environment for a subprocess server: this interpreter's path setup."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "RUN_MAIN")}
    paths = [p for p in [*EXTRA_PATH, env.get("PYTHONPATH", "")] if p]
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Proc:
    """A subprocess whose combined output goes to a file we can poll."""

    def __init__(self, args: List[str], cwd: str, env: Dict[str, str], log_path: str):
        self.log_path = log_path
        self._out = open(log_path, "w")
        self.proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.pid = self.proc.pid

    def output(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def wait_for_output(self, pattern: str, timeout: float = 30.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.output())
            if match:
                return match
            if self.proc.poll() is not None:
                raise AssertionError(f"process exited ({self.proc.returncode}) before {pattern!r}:\n"
                                     + self.output()[-3000:])
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not in output within {timeout}s:\n" + self.output()[-3000:])
            time.sleep(0.05)

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float = 20.0) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Kill the whole process group we started (the server and any child)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
                self.proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(10)
        self._out.close()


def manage(*args: str, env: Dict[str, str], cwd: str = HERE, timeout: float = 60) -> str:
    """Run a management command of the test project to completion; its stdout."""
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


class SocketServer:
    """``manage.py runserver_socketio`` of the test project, in a subprocess."""

    def __init__(self, proc: Proc):
        self.proc = proc
        match = proc.wait_for_output(r"SocketIOServer running on (\S+):(\d+)")
        self.host, self.port = match.group(1), int(match.group(2))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def events_lines(tmp_path) -> List[str]:
    path = tmp_path / "events.txt"
    return path.read_text().splitlines() if path.exists() else []
