"""Running today's official ``socket.io-client`` 4.x (npm) from the tests.

The package is installed at test time into ``.cache/npm-v4`` (``.ci/run``
installs it once; :func:`v4_modules` installs it when it is missing and npm
is there) and never committed.  Two node scripts use it:

* ``tests/node/v4_client.js``: a real client that follows a list of steps
  (:func:`run_client`);
* ``tests/node/v4_parsers.js``: the client's own Socket.IO and Engine.IO
  parsers, to check our codecs against them (:func:`run_parsers`).

Without node or the package the tests skip with the reason, except when the
``CI`` variable is set: then they fail, because CI must run them.

Binary values cross the process boundary as ``{"$bin": "<base64>"}``
(:func:`mark` / :func:`unmark`).
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

from socketio_wsgi import sio5

__all__ = ["NPM_V4_DIR", "V4_SPEC", "CLIENT_SCRIPT", "PARSERS_SCRIPT", "require", "v4_modules",
           "run_client", "run_parsers", "mark", "unmark", "packet_to_json", "packet_from_json",
           "ClientFailed"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NPM_V4_DIR = os.environ.get("SOCKETIO_TEST_NPM_V4_DIR", os.path.join(ROOT, ".cache", "npm-v4"))
V4_SPEC = "socket.io-client@4"
CLIENT_SCRIPT = os.path.join(ROOT, "tests", "node", "v4_client.js")
PARSERS_SCRIPT = os.path.join(ROOT, "tests", "node", "v4_parsers.js")


class ClientFailed(AssertionError):
    """A node script exited badly or printed something that is not JSON."""


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` unless running under CI, where it is a failure."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


def v4_modules() -> str:
    """The ``node_modules`` directory holding ``socket.io-client`` 4.x,
    installing it once if npm is available (skip/fail otherwise)."""
    require(shutil.which("node") is not None, "node is not installed")
    modules = os.path.join(NPM_V4_DIR, "node_modules")
    marker = os.path.join(modules, "socket.io-client", "package.json")
    if not os.path.exists(marker):
        require(shutil.which("npm") is not None, f"npm is not installed (needed for {V4_SPEC})")
        os.makedirs(NPM_V4_DIR, exist_ok=True)
        result = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", NPM_V4_DIR, V4_SPEC],
                                capture_output=True, text=True, timeout=300)
        require(result.returncode == 0, f"npm install {V4_SPEC} failed: {result.stderr[-500:]}")
    require(os.path.exists(marker), f"socket.io-client missing from {modules} after npm install {V4_SPEC}")
    with open(marker, encoding="utf-8") as fh:
        version = json.load(fh)["version"]
    require(version.split(".")[0] == "4", f"{modules} holds socket.io-client {version}, not 4.x")
    return modules


# -- binary markers -------------------------------------------------------------------------

def mark(value: Any) -> Any:
    """JSON-ready copy of ``value`` with bytes-like values as ``{"$bin": base64}``."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bin": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return [mark(v) for v in value]
    if isinstance(value, dict):
        return {k: mark(v) for k, v in value.items()}
    return value


def unmark(value: Any) -> Any:
    """The inverse of :func:`mark` (tuples come back as lists)."""
    if isinstance(value, list):
        return [unmark(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("$bin"), str):
            return base64.b64decode(value["$bin"])
        return {k: unmark(v) for k, v in value.items()}
    return value


def packet_to_json(packet: sio5.Packet) -> Dict[str, Any]:
    """``packet`` in the reference parser's object form ``{type, nsp, data, id}``
    (events and acks with their plain type: the encoder picks BINARY_*)."""
    if isinstance(packet, sio5.Event):
        out: Dict[str, Any] = {"type": 2, "nsp": packet.namespace, "data": mark([packet.name, *packet.args])}
        if packet.id is not None:
            out["id"] = packet.id
        return out
    if isinstance(packet, sio5.Ack):
        return {"type": 3, "nsp": packet.namespace, "data": mark(list(packet.args)), "id": packet.id}
    if isinstance(packet, sio5.Connect):
        out = {"type": 0, "nsp": packet.namespace}
        if packet.data is not None:
            out["data"] = packet.data
        return out
    if isinstance(packet, sio5.Disconnect):
        return {"type": 1, "nsp": packet.namespace}
    if isinstance(packet, sio5.ConnectError):
        return {"type": 4, "nsp": packet.namespace, "data": packet.data}
    raise TypeError(f"not a packet: {packet!r}")


def packet_from_json(obj: Dict[str, Any]) -> sio5.Packet:
    """The inverse of :func:`packet_to_json` (for what the reference decoded)."""
    kind, ns, data, id = obj["type"], obj.get("nsp", "/"), unmark(obj.get("data")), obj.get("id")
    if kind in (2, 5):
        return sio5.Event(data[0], data[1:], ns, id)
    if kind in (3, 6):
        return sio5.Ack(id, data, ns)
    if kind == 0:
        return sio5.Connect(ns, data)
    if kind == 1:
        return sio5.Disconnect(ns)
    if kind == 4:
        return sio5.ConnectError(ns, data)
    raise ValueError(f"unknown packet type {kind}")


# -- running the scripts ------------------------------------------------------------------------

def _run(args: Sequence[str], stdin: Optional[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(list(args), input=stdin, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        # subprocess.run kills the child it started before raising.
        raise ClientFailed(f"{args[1]} did not finish within {timeout}s; stderr: {exc.stderr!r}") from None


def _json_lines(text: str, script: str) -> List[Dict[str, Any]]:
    lines = []
    for line in text.split("\n"):  # not splitlines(): JSON text may hold U+2028
        if not line.strip():
            continue
        try:
            lines.append(json.loads(line))
        except ValueError:
            raise ClientFailed(f"{script} printed a line that is not JSON: {line[:200]!r}") from None
    return lines


def run_parsers(jobs: List[Dict[str, Any]], timeout: float = 60.0) -> Tuple[Dict[str, str], List[Dict[str, Any]]]:
    """Run ``jobs`` through the client's parsers (see tests/node/v4_parsers.js);
    returns (package versions, one result per job)."""
    modules = v4_modules()
    result = _run(["node", PARSERS_SCRIPT, modules], json.dumps({"jobs": jobs}), timeout)
    if result.returncode != 0:
        raise ClientFailed(f"v4_parsers.js exited with {result.returncode}: {result.stderr[-2000:]}")
    [answer] = _json_lines(result.stdout, "v4_parsers.js")
    if len(answer["results"]) != len(jobs):
        raise ClientFailed(f"{len(jobs)} jobs but {len(answer['results'])} results")
    return answer["versions"], answer["results"]


def run_client(config: Dict[str, Any], timeout: float = 30.0) -> List[Dict[str, Any]]:
    """Run the real client with ``config`` (see tests/node/v4_client.js) and
    return what it printed, one dict per line.  ``timeout_ms`` in the config
    bounds the client's own run (default: ``timeout`` minus 5 s); this
    process kills it at ``timeout`` seconds.  Raises :class:`ClientFailed`
    if it crashed (exit code other than 0, or 1 for a reported failure)."""
    modules = v4_modules()
    config = dict(config)
    config.setdefault("timeout_ms", int(max(timeout - 5, 1) * 1000))
    result = _run(["node", CLIENT_SCRIPT, modules, json.dumps(config)], None, timeout)
    lines = _json_lines(result.stdout, "v4_client.js")
    if result.returncode not in (0, 1):
        raise ClientFailed(f"v4_client.js exited with {result.returncode}; printed {lines}; "
                           f"stderr: {result.stderr[-2000:]}")
    return lines
