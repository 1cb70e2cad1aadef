"""Run a Django command with gevent monkey-patching done before Django loads.

``python -m django_socketio.bootstrap manage.py runserver_socketio ...``
(or ``... -m django runserver_socketio ...``) patches the standard library,
then runs the script or module exactly as Python would have.

Patching must come first: Django keeps database connections in a
thread-local created when ``django.db`` is imported, and a thread-local
created before patching is shared by every greenlet, i.e. every socket would
share one connection.  ``runserver_socketio`` therefore re-executes itself
through this module (:func:`patched_command`) unless it already runs here;
users' ``manage.py`` stays unchanged.
"""

from __future__ import annotations

import os
import runpy
import signal
import subprocess
import sys
import time
from typing import List, Optional, Sequence

__all__ = ["PATCHED_EARLY", "patched_command", "exec_patched", "supervise", "main"]

#: True in a process started by :func:`main` (set on the importable module,
#: not on ``__main__``).
PATCHED_EARLY = False
RESTART_CODE = 3  # what Django's autoreloader exits with to ask for a restart


def patched_command(argv: Optional[Sequence[str]] = None) -> List[str]:
    """The command line that runs this process's command again, through this module."""
    import __main__

    argv = list(sys.argv if argv is None else argv)
    args = [sys.executable, *(f"-W{opt}" for opt in sys.warnoptions)]
    args += ["-X" + (k if v is True else f"{k}={v}") for k, v in getattr(sys, "_xoptions", {}).items()]
    args += ["-m", "django_socketio.bootstrap"]
    spec = getattr(__main__, "__spec__", None)
    if spec is not None:  # started as `python -m package`
        name = spec.parent if spec.name.endswith("__main__") and spec.parent else spec.name
        args += ["-m", name]
    else:
        args.append(argv[0])
    return args + argv[1:]


def exec_patched() -> None:
    """Replace this process by :func:`patched_command` (same pid, same signals)."""
    sys.stdout.flush()
    sys.stderr.flush()
    args = patched_command()
    if os.name == "nt":  # no real exec on Windows: run it and pass its exit code on
        sys.exit(subprocess.call(args))
    os.execv(sys.executable, args)


def supervise(args: List[str], env_name: str) -> int:
    """The reloader's parent: run ``args`` with ``env_name=true``, start it
    again each time it exits with :data:`RESTART_CODE`, and never nest.

    Ctrl-C and SIGTERM reach the child once, as SIGTERM (the child ignores
    SIGINT), so it can close its sessions; the parent then exits with it.
    After a reload whose child crashes (a syntax error), it waits for the next
    change under the current directory and starts again.
    """
    from socketio_wsgi.reloader import snapshot

    env = {**os.environ, env_name: "true"}
    stopping = False
    child: Optional[subprocess.Popen] = None

    def forward(signum, frame):
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        starts = 0
        while True:
            child = subprocess.Popen(args, env=env, close_fds=False)
            starts += 1
            code = child.wait()
            if stopping:
                return 0 if code in (0, -signal.SIGTERM) else code
            if code == RESTART_CODE:
                continue
            if starts == 1 or code == 0:
                return code
            print(
                f"runserver_socketio: the server exited with code {code}; waiting for a file to change",
                file=sys.stderr,
                flush=True,
            )
            before = snapshot()
            while not stopping and snapshot() == before:
                time.sleep(1.0)
            if stopping:
                return code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Optional[Sequence[str]] = None) -> None:
    from gevent import monkey

    monkey.patch_all()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] == "-m" and len(argv) < 2:
        sys.exit("usage: python -m django_socketio.bootstrap (script.py | -m module) [args...]")
    from django_socketio import bootstrap as importable

    importable.PATCHED_EARLY = True
    if argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv
        sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
        runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
