"""Run the test suite against the built wheel, not the checkout.

``python .ci/test_installed_wheel.py [--dist DIR] [--report FILE] [pytest args]``
(tox's ``wheel`` env runs it in a fresh virtualenv after the ``packaging``
env built ``dist/``):

1. installs ``dist/socketio_wsgi-*.whl[test]`` into this interpreter;
2. copies ``tests/``, ``examples/``, ``bench/``, README.rst and setup.cfg
   (pytest's settings) into a temporary directory that has no package
   source, so every import, in the tests and in the servers they start as
   subprocesses, resolves to site-packages;
3. runs pytest there with ``--expect-installed`` (tests/conftest.py), which
   stops the run unless both packages come from site-packages and the pytest
   plugin was loaded through its entry point.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COPIED = ["tests", "examples", "bench", "README.rst", "setup.cfg"]
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.sqlite3", "node_modules", ".pytest_cache")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", default=str(REPO / "dist"))
    parser.add_argument("--report", help="junit XML file for pytest")
    args, pytest_args = parser.parse_known_args()

    wheels = sorted(Path(args.dist).glob("socketio_wsgi-*.whl"))
    if len(wheels) != 1:
        print(f"test_installed_wheel: expected one wheel in {args.dist}, found {wheels}", file=sys.stderr)
        return 2
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", f"{wheels[0]}[test]"], check=True)

    with tempfile.TemporaryDirectory(prefix="socketio-wheel-tests-") as tmp:
        root = Path(tmp)
        for name in COPIED:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, root / name, ignore=IGNORED)
            else:
                shutil.copy2(source, root / name)
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env.setdefault("SOCKETIO_TEST_NPM_DIR", str(REPO / ".cache" / "npm"))
        env.setdefault("SOCKETIO_TEST_NPM_V4_DIR", str(REPO / ".cache" / "npm-v4"))
        env.setdefault("SOCKETIO_BENCH_NODE_DIR", str(REPO / ".cache" / "bench-node"))
        probe = ("import django_socketio, socketio_wsgi, socketio_wsgi.static as s, os, sysconfig;"
                 "print(sysconfig.get_paths()['purelib']);"
                 "print(socketio_wsgi.__file__); print(django_socketio.__file__);"
                 "assert os.path.isfile(s.CLIENT_PATH), s.CLIENT_PATH; print(s.CLIENT_PATH)")
        site, *files = subprocess.run([sys.executable, "-c", probe], cwd=root, env=env, check=True,
                                      capture_output=True, text=True).stdout.split()
        print(f"test_installed_wheel: from {site}:\n  " + "\n  ".join(files), flush=True)
        outside = [f for f in files if not Path(f).resolve().is_relative_to(Path(site).resolve())]
        if outside:
            print(f"test_installed_wheel: not from site-packages: {outside}; refusing to run",
                  file=sys.stderr)
            return 2
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--expect-installed"]
        if args.report:
            command.append(f"--junitxml={args.report}")
        return subprocess.run(command + pytest_args, cwd=root, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
