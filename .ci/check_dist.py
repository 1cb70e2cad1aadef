"""What the built distributions must carry: ``python .ci/check_dist.py dist``.

Checks the one sdist and the one wheel in the directory: the wheel holds both
packages with the browser client, the Django app's template tags and
management command, ``py.typed`` in each package, the license, and the
pytest11 entry point; the sdist holds the license, changelog, tests and
examples.  Exits non-zero naming every missing piece.
"""
from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path
from typing import List

WHEEL_FILES = [
    "socketio_wsgi/__init__.py",
    "socketio_wsgi/py.typed",
    "socketio_wsgi/pytest_plugin.py",
    "socketio_wsgi/static/socketio_wsgi/socket.io.js",
    "socketio_wsgi/transports/__init__.py",
    "django_socketio/__init__.py",
    "django_socketio/py.typed",
    "django_socketio/apps.py",
    "django_socketio/checks.py",
    "django_socketio/templatetags/socketio_tags.py",
    "django_socketio/management/commands/runserver_socketio.py",
]
SDIST_FILES = [
    "LICENSE", "CHANGELOG.rst", "README.rst", "setup.cfg", "pyproject.toml", "tox.ini",
    "socketio_wsgi/py.typed", "socketio_wsgi/static/socketio_wsgi/socket.io.js",
    "contrib/django/django_socketio/py.typed", "tests/conftest.py", "examples/chat/manage.py",
]


def only(directory: Path, pattern: str) -> Path:
    found = sorted(directory.glob(pattern))
    if len(found) != 1:
        sys.exit(f"check_dist: expected one {pattern} in {directory}, found {[p.name for p in found]}")
    return found[0]


def check_wheel(path: Path) -> List[str]:
    with zipfile.ZipFile(path) as wheel:
        names = set(wheel.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA")).rsplit("/", 1)[0]
        missing = [name for name in WHEEL_FILES if name not in names]
        if not any(n.startswith(info + "/") and n.rsplit("/", 1)[-1].startswith("LICENSE") for n in names):
            missing.append(f"{info}/LICENSE*")
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
        if "[pytest11]" not in entry_points or "socketio_wsgi.pytest_plugin" not in entry_points:
            missing.append("the pytest11 entry point socketio_wsgi.pytest_plugin")
        metadata = wheel.read(f"{info}/METADATA").decode()
        for needle in ("License-Expression: BSD-3-Clause", "Requires-Python: >=3.10",
                       "Classifier: Framework :: Django :: 6.1",
                       "Classifier: Programming Language :: Python :: 3.13"):
            if needle not in metadata and not (needle.startswith("License-Expression")
                                               and "License: BSD-3-Clause" in metadata):
                missing.append(f"METADATA line {needle!r}")
        stray = sorted(n for n in names if n.startswith(("tests/", "examples/", "bench/"))
                       or "__pycache__" in n)
        missing += [f"(should not be there) {n}" for n in stray]
    return missing


def check_sdist(path: Path) -> List[str]:
    with tarfile.open(path) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    stray = sorted(n for n in names if "__pycache__" in n or n.startswith(".cache/")
                   or "node_modules" in n or n.endswith(".sqlite3"))
    return [n for n in SDIST_FILES if n not in names] + [f"(should not be there) {n}" for n in stray]


def main() -> None:
    directory = Path(sys.argv[1] if len(sys.argv) > 1 else "dist")
    wheel, sdist = only(directory, "*.whl"), only(directory, "*.tar.gz")
    problems = [f"{wheel.name}: {p}" for p in check_wheel(wheel)]
    problems += [f"{sdist.name}: {p}" for p in check_sdist(sdist)]
    for problem in problems:
        print(f"check_dist: missing {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"check_dist: {wheel.name} and {sdist.name} carry everything")


if __name__ == "__main__":
    main()
