"""Start each server, drive it with the Node.js load generator, stop it, print a table.

    python -m bench            # the full run (about 10 minutes)
    python -m bench --quick    # a smoke run: tiny counts, our server (both generations) and the plain app

Servers run on core 0 and the load generator on core 1 (``taskset``).  Every
figure is also shown as a ratio to the plain gevent-websocket app measured in
the same run; with ``--rounds N`` each scenario runs N times, servers
interleaved in a rotating order, and the table shows medians.

node's own socket.io 0.6.18 is the peer ``node06`` (``--peers ours,node06``): the
npm package from ``.cache/npm/node_modules`` (``SOCKETIO_BENCH_NODE06_MODULES``),
unmodified, started by ``bench/peers/node06_server.js`` with its node 20 and
RFC 6455 shims.  Idle runs past 20,000 connections spread the load generator
over loopback source addresses (``--idle-per-source``) and need a hard
``RLIMIT_NOFILE`` (``ulimit -Hn``) above the largest stage.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LOADGEN = os.path.join(HERE, "loadgen", "loadgen.js")
WS_SPEC = "ws@8"
NODE_DIR = os.environ.get("SOCKETIO_BENCH_NODE_DIR", os.path.join(REPO, ".cache", "bench-node"))
# node's socket.io 0.6.18 (npm socket.io@0.6.18, installed there by .ci/run; never committed)
NODE06_MODULES = os.environ.get("SOCKETIO_BENCH_NODE06_MODULES",
                                os.path.join(REPO, ".cache", "npm", "node_modules"))
SERVER_CORE, LOADGEN_CORE = "0", "1"


@dataclasses.dataclass
class Peer:
    key: str
    label: str
    proto: str  # the wire client in loadgen/wire.js
    command: List[str]  # "{port}" is replaced
    requires: Tuple[str, ...] = ()
    polling: bool = True
    pythonpath: Optional[str] = None  # prepended to PYTHONPATH (a patched copy of the package)
    files: Tuple[str, ...] = ()  # paths that must exist (a node peer's packages)

    def missing(self) -> List[str]:
        out = [name for name in self.requires if importlib.util.find_spec(name) is None]
        if self.command[0] == "node" and shutil.which("node") is None:
            out.append("node")
        return out + [os.path.relpath(f, REPO) for f in self.files if not os.path.exists(f)]


def default_peers() -> List[Peer]:
    py = sys.executable
    return [
        Peer("plain", "gevent-websocket (plain)", "plain",
             [py, "-m", "bench.peers.plain_app", "--port", "{port}"], ("geventwebsocket",)),
        Peer("ours", "socketio_wsgi", "sio06", ours_command()),
        # The same server and app, driven by Socket.IO 4 clients (EIO=4).
        Peer("ours4", "socketio_wsgi (Socket.IO 4)", "eio4", ours_command()),
        Peer("pysio", "python-socketio 5", "eio4",
             [py, "-m", "bench.peers.pysio_app", "--port", "{port}"], ("socketio", "engineio")),
        Peer("channels", "Channels 4 / daphne", "channels",
             [py, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", "{port}", "--ping-interval", "10",
              "--ping-timeout", "30", "bench.peers.channels_app:application"],
             ("channels", "daphne"), polling=False),
        # node's own socket.io 0.6.18, unmodified, with start-up shims for node 20 and
        # RFC 6455 websockets (see the script); the same sio06 clients as ours.
        Peer("node06", "node socket.io 0.6.18", "sio06",
             ["node", os.path.join(HERE, "peers", "node06_server.js"), "--port", "{port}",
              "--modules", NODE06_MODULES],
             files=(os.path.join(NODE06_MODULES, "socket.io", "package.json"),)),
    ]


def runs(peer: Peer, scenario: str) -> bool:
    """Whether ``peer`` takes part in ``scenario``: polling needs a polling
    transport, jsonp-polling a Socket.IO 0.6 server."""
    if scenario == "polling":
        return peer.polling
    if scenario == "jsonp":
        return peer.polling and peer.proto == "sio06"
    return True


def ours_command() -> List[str]:
    return [sys.executable, "-m", "socketio_wsgi", "--port", "{port}", "--origins", "*",
            "--no-access-log", "bench.apps_ours:application"]


# -- scenario settings ---------------------------------------------------------
FULL = {
    "echo": {"clients": [1, 50, 500], "warmup": 0.3, "duration": 1.5},
    "fanout": {"subscribers": [100, 1000], "publishes": 20, "window": 8, "warmup": 0.3, "duration": 1.5},
    "idle": {"stages": [1000, 10000], "hold": 60.0, "settle": 1.5},
    "polling": {"clients": [200], "warmup": 0.3, "duration": 1.5},
    "jsonp": {"clients": [200], "warmup": 0.3, "duration": 1.5},
}
QUICK = {
    "echo": {"clients": [1, 10], "warmup": 0.1, "duration": 0.3},
    "fanout": {"subscribers": [10], "publishes": 3, "window": 2, "warmup": 0.1, "duration": 0.3},
    "idle": {"stages": [30], "hold": 0.5, "settle": 0.2},
    "polling": {"clients": [5], "warmup": 0.1, "duration": 0.3},
    "jsonp": {"clients": [5], "warmup": 0.1, "duration": 0.3},
}
SCENARIOS = ("echo", "fanout", "idle", "polling", "jsonp", "attacks")
OPT_IN = ("scaleout",)  # run only when named (--scenarios scaleout): needs redis-server and nginx


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# -- environment -----------------------------------------------------------------
def ensure_ws() -> str:
    """Install the ``ws`` npm package into the bench cache once; return its path."""
    target = os.path.join(NODE_DIR, "node_modules", "ws")
    if not os.path.isdir(target):
        if shutil.which("npm") is None or shutil.which("node") is None:
            raise SystemExit("bench: node and npm are needed for the load generator")
        os.makedirs(NODE_DIR, exist_ok=True)
        log(f"npm install {WS_SPEC} into {NODE_DIR}")
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", NODE_DIR, WS_SPEC],
                       check=True, stdout=subprocess.DEVNULL, timeout=300)
    return target


def raise_nofile(needed: int) -> int:
    """Raise this process's descriptor limit (the servers and the load generator inherit it).

    The soft limit goes to the hard one; when the hard one is below ``needed``, it is
    raised too, which only a process with CAP_SYS_RESOURCE may do (``ulimit -Hn``
    shows the hard limit; raise it in the shell, limits.conf or the container)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return needed
        except (ValueError, OSError):
            log(f"could not raise the hard RLIMIT_NOFILE from {hard} to {needed} (needs CAP_SYS_RESOURCE)")
    want = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pinned(core: str, argv: List[str]) -> List[str]:
    return ["taskset", "-c", core, *argv] if shutil.which("taskset") else argv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One peer's server process, pinned to the server core."""

    def __init__(self, peer: Peer, logdir: str):
        self.peer = peer
        self.port = free_port()
        self.logpath = os.path.join(logdir, f"{peer.key}-{self.port}.log")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        paths = [p for p in (peer.pythonpath, REPO, env.get("PYTHONPATH")) if p]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        argv = [a.replace("{port}", str(self.port)) for a in peer.command]
        self.out = open(self.logpath, "w")
        # Not cwd=REPO: ``-m`` puts the working directory first on sys.path, and a
        # variant's copy of the package must win over the checkout.
        self.proc = subprocess.Popen(pinned(SERVER_CORE, argv), cwd=logdir, env=env,
                                     stdout=self.out, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.peer.key} exited: {self.tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.peer.key} did not listen within {timeout} s: {self.tail()}")

    def tail(self) -> str:
        with open(self.logpath, errors="replace") as fh:
            return fh.read()[-1500:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.out.close()


def drive(server: Server, ws_module: str, scenario: str, timeout: float, **options: Any) -> Dict[str, Any]:
    """Run one load generator process against ``server``; its JSON result."""
    config = dict(options, wsModule=ws_module, proto=server.peer.proto, port=server.port,
                  serverPid=server.proc.pid, scenario=scenario)
    try:
        done = subprocess.run(pinned(LOADGEN_CORE, ["node", LOADGEN, json.dumps(config)]),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"load generator timed out after {timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        result = {"error": f"no result (exit {done.returncode}): {done.stderr[-500:]}"}
    if "error" in result:
        log(f"{server.peer.key} {scenario}: {result['error']}")
    return result


# -- the run -------------------------------------------------------------------------
def rotated(items: Sequence[Any], shift: int) -> List[Any]:
    shift %= len(items)
    return list(items[shift:]) + list(items[:shift])


def run_shared(peers: List[Peer], settings: Dict[str, dict], scenarios: Sequence[str], rounds: int,
               ws_module: str, logdir: str) -> Dict[Tuple[str, str], List[dict]]:
    """echo, fan-out and polling: every server up at once, trials interleaved."""
    results: Dict[Tuple[str, str], List[dict]] = {}
    cases = []
    for scenario in ("echo", "fanout", "polling", "jsonp"):
        if scenario not in scenarios:
            continue
        opts = dict(settings[scenario])
        counts = opts.pop("subscribers" if scenario == "fanout" else "clients")
        for count in counts:
            cases.append((scenario, count, opts))
    if not cases:
        return results
    servers = {peer.key: Server(peer, logdir) for peer in peers}
    try:
        for scenario, count, opts in cases:
            row = f"{scenario} {count}"
            for rnd in range(rounds):
                for peer in rotated(peers, rnd):
                    if not runs(peer, scenario):
                        continue
                    key = "subscribers" if scenario == "fanout" else "clients"
                    log(f"{row} round {rnd + 1}/{rounds}: {peer.key}")
                    timeout = 120 + count / 20 + opts.get("publishes", 0)
                    results.setdefault((row, peer.key), []).append(
                        drive(servers[peer.key], ws_module, scenario, timeout, **{key: count}, **opts))
    finally:
        for server in servers.values():
            server.stop()
    return results


def run_idle(peers: List[Peer], settings: dict, ws_module: str, logdir: str
             ) -> Dict[Tuple[str, str], List[dict]]:
    """idle: a fresh server per peer (RSS is measured), one at a time."""
    results: Dict[Tuple[str, str], List[dict]] = {}
    for peer in peers:
        log(f"idle {settings['stages']} hold {settings['hold']:.0f} s: {peer.key}")
        server = Server(peer, logdir)
        try:
            timeout = 300 + settings["hold"] + settings["stages"][-1] / 20
            results[("idle", peer.key)] = [drive(server, ws_module, "idle", timeout, **settings)]
        finally:
            server.stop()
    return results


# -- the table -----------------------------------------------------------------------
@dataclasses.dataclass
class Metric:
    row: str  # results key
    label: str
    unit: str
    pick: Any  # result dict -> number (or None)
    fmt: str = "{:,.0f}"


def cpu_per_unit(result: dict) -> Optional[float]:
    """Server CPU time per message or delivery: steadier than rates on a busy machine."""
    if result.get("srvCpu") is None or not result["rate"]:
        return None
    return result["srvCpu"] * 1e4 / result["rate"]


def metrics_for(settings: Dict[str, dict], scenarios: Sequence[str]) -> List[Metric]:
    out: List[Metric] = []
    if "echo" in scenarios:
        for c in settings["echo"]["clients"]:
            row = f"echo {c}"
            out += [Metric(row, f"echo, {c} clients", "msg/s", lambda r: r["rate"]),
                    Metric(row, f"echo, {c} clients", "p50 ms", lambda r: r["p50"], "{:.2f}"),
                    Metric(row, f"echo, {c} clients", "p99 ms", lambda r: r["p99"], "{:.2f}"),
                    Metric(row, f"echo, {c} clients", "server CPU us/msg", cpu_per_unit, "{:.1f}")]
    if "fanout" in scenarios:
        for n in settings["fanout"]["subscribers"]:
            row = f"fanout {n}"
            out += [Metric(row, f"fan-out, {n} subscribers", "deliveries/s", lambda r: r["rate"]),
                    Metric(row, f"fan-out, {n} subscribers", "last delivery p50 ms",
                           lambda r: r["last_p50"], "{:.2f}"),
                    Metric(row, f"fan-out, {n} subscribers", "server CPU us/delivery", cpu_per_unit,
                           "{:.1f}")]
    if "idle" in scenarios:
        stages = settings["idle"]["stages"]
        for i, n in enumerate(stages):
            label = f"idle, {n:,} connections"
            out += [Metric("idle", label, "handshakes/s", lambda r, i=i: r["stages"][i]["handshakes"]),
                    Metric("idle", label, "RSS KB/conn", lambda r, i=i: r["stages"][i]["rss_per_conn_kb"],
                           "{:.1f}")]
        hold = settings["idle"]["hold"]
        out += [Metric("idle", f"idle, {stages[-1]:,} connections", f"alive after {hold:g} s",
                       lambda r: r["alive"], "{:,.0f}"),
                Metric("idle", f"idle, {stages[-1]:,} connections", "heartbeats/conn (min)",
                       lambda r: r["min_heartbeats"], "{:,.0f}")]
    for scenario, transport in (("polling", "xhr-polling"), ("jsonp", "jsonp-polling")):
        if scenario not in scenarios:
            continue
        for c in settings[scenario]["clients"]:
            row, label = f"{scenario} {c}", f"{transport}, {c} clients"
            out += [Metric(row, label, "msg/s", lambda r: r["rate"]),
                    Metric(row, label, "server CPU us/msg", cpu_per_unit, "{:.0f}"),
                    Metric(row, label, "handshakes/s", lambda r: r.get("handshakes"))]
    return out


def _value(result: dict, metric: Metric) -> Optional[float]:
    if "error" in result:
        return None
    try:
        value = metric.pick(result)
    except (KeyError, IndexError, TypeError):
        return None
    return None if value is None else float(value)


def summarise(results: Dict[Tuple[str, str], List[dict]], metric: Metric, peer: str
              ) -> Tuple[Optional[float], Optional[float]]:
    """(median value, median of same-round ratios to the plain app)."""
    mine = results.get((metric.row, peer), [])
    base = results.get((metric.row, "plain"), [])
    values = [v for v in (_value(r, metric) for r in mine) if v is not None]
    ratios = []
    for a, b in zip(mine, base):
        va, vb = _value(a, metric), _value(b, metric)
        if va is not None and vb:
            ratios.append(va / vb)
    return (statistics.median(values) if values else None,
            statistics.median(ratios) if ratios else None)


def cpu_rows(results: Dict[Tuple[str, str], List[dict]], peers: List[Peer]) -> List[List[str]]:
    rows = []
    for row in dict.fromkeys(k[0] for k in results):
        cells = [f"{row.replace('fanout', 'fan-out')}: CPU % server / loadgen", ""]
        for peer in peers:
            srv, lg = [], []
            for r in results.get((row, peer.key), []):
                parts = r.get("stages", [r])
                srv += [p["srvCpu"] for p in parts if p.get("srvCpu") is not None]
                lg += [p["lgCpu"] for p in parts if p.get("lgCpu") is not None]
            cells.append(f"{statistics.median(srv):.0f} / {statistics.median(lg):.0f}" if srv else "-")
        rows.append(cells)
    return rows


def table(results: Dict[Tuple[str, str], List[dict]], peers: List[Peer], skipped: Dict[str, str],
          settings: Dict[str, dict], scenarios: Sequence[str]) -> str:
    head = ["scenario", "metric"] + [p.label for p in peers] + [f"{note.split(':')[0]} (skipped)"
                                                                  for note in skipped.values()]
    body: List[List[str]] = []
    for metric in metrics_for(settings, scenarios):
        cells = [metric.label, metric.unit]
        for peer in peers:
            if not runs(peer, metric.row.split()[0]):
                cells.append("n/a")
                continue
            value, ratio = summarise(results, metric, peer.key)
            if value is None:
                failed = any("error" in r for r in results.get((metric.row, peer.key), []))
                cells.append("error" if failed else "-")
            elif ratio is None:
                cells.append(metric.fmt.format(value))
            else:
                cells.append(f"{metric.fmt.format(value)} ({ratio:.2f}x)")
        cells += ["-"] * len(skipped)
        body.append(cells)
    body += [cells + ["-"] * len(skipped) for cells in cpu_rows(results, peers)]
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    rule = "  ".join("=" * w for w in widths)
    lines = [rule, "  ".join(h.ljust(w) for h, w in zip(head, widths)), rule]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in body]
    lines.append(rule)
    return "\n".join(lines)


def targets(results: Dict[Tuple[str, str], List[dict]], settings: Dict[str, dict],
            scenarios: Sequence[str], peers: List[Peer]) -> List[str]:
    """The performance targets of the issue, checked against this run (informative only)."""
    keys = {p.key for p in peers}
    out = []

    def ratio(row: str, pick: Any, a: str, b: str) -> Optional[float]:
        m = Metric(row, "", "", pick)
        rs = []
        for ra, rb in zip(results.get((row, a), []), results.get((row, b), [])):
            va, vb = _value(ra, m), _value(rb, m)
            if va is not None and vb:
                rs.append(va / vb)
        return statistics.median(rs) if rs else None

    def check(name: str, value: Optional[float], limit: float, at_least: bool) -> None:
        if value is None:
            out.append(f"  {name}: not measured")
            return
        ok = value >= limit if at_least else value <= limit
        out.append(f"  {name}: {value:.3f}x ({'>=' if at_least else '<='} {limit}) {'met' if ok else 'MISSED'}")

    rate = lambda r: r["rate"]  # noqa: E731
    if "echo" in scenarios:
        for c in settings["echo"]["clients"]:
            check(f"echo {c}: ours / plain", ratio(f"echo {c}", rate, "ours", "plain"), 0.8, True)
            if "pysio" in keys:
                check(f"echo {c}: ours / python-socketio", ratio(f"echo {c}", rate, "ours", "pysio"), 1.5, True)
                if "ours4" in keys:
                    check(f"echo {c}: ours (Socket.IO 4) / python-socketio",
                          ratio(f"echo {c}", rate, "ours4", "pysio"), 1.5, True)
    if "echo" in scenarios and "node06" in keys:  # issue 18: node's own socket.io 0.6.18
        for c in settings["echo"]["clients"]:
            if c == 1:
                check("echo 1: server CPU per message ours / node socket.io 0.6.18",
                      ratio("echo 1", cpu_per_unit, "ours", "node06"), 1.3, False)
            else:
                check(f"echo {c}: ours / node socket.io 0.6.18", ratio(f"echo {c}", rate, "ours", "node06"),
                      1.0, True)
    if "fanout" in scenarios:
        n = settings["fanout"]["subscribers"][-1]
        check(f"fan-out {n}: ours / plain", ratio(f"fanout {n}", rate, "ours", "plain"), 0.9, True)
        if "pysio" in keys and "ours4" in keys:
            check(f"fan-out {n}: ours (Socket.IO 4) / python-socketio",
                  ratio(f"fanout {n}", rate, "ours4", "pysio"), 1.5, True)
    if "fanout" in scenarios and "node06" in keys:
        for n in settings["fanout"]["subscribers"]:
            check(f"fan-out {n}: ours / node socket.io 0.6.18", ratio(f"fanout {n}", rate, "ours", "node06"),
                  1.0, True)
    if "polling" in scenarios:
        for c in settings["polling"]["clients"]:
            check(f"xhr-polling {c}: ours / plain", ratio(f"polling {c}", rate, "ours", "plain"), 1.0, True)
            if "node06" in keys:
                check(f"xhr-polling {c}: ours / node socket.io 0.6.18",
                      ratio(f"polling {c}", rate, "ours", "node06"), 1.0, True)
    if "idle" in scenarios:
        stages = settings["idle"]["stages"]
        last = len(stages) - 1
        check(f"idle {stages[-1]}: RSS per connection ours / plain",
              ratio("idle", lambda r: r["stages"][last]["rss_per_conn_kb"], "ours", "plain"), 1.3, False)
        if "node06" in keys:
            for i, n in enumerate(stages):
                check(f"idle {n}: RSS per connection ours / node socket.io 0.6.18",
                      ratio("idle", lambda r, i=i: r["stages"][i]["rss_per_conn_kb"], "ours", "node06"), 1.0,
                      False)
                check(f"idle {n}: handshakes/s ours / node socket.io 0.6.18",
                      ratio("idle", lambda r, i=i: r["stages"][i]["handshakes"], "ours", "node06"), 1.0, True)
        held = [r for r in results.get(("idle", "ours"), []) if "error" not in r]
        if held:
            r = held[0]
            state = "met" if r["alive"] == r["held"] == stages[-1] else "MISSED"
            out.append(f"  idle: {r['alive']:,} of {stages[-1]:,} connections alive after "
                       f"{r['hold_s']:g} s in one process: {state}")
    return out


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny counts, our server (both generations) and the plain app only (a smoke run)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset; scaleout runs only when named")
    parser.add_argument("--peers", default=None,
                        help="comma-separated subset of plain,ours,ours4,pysio,channels,node06 (plain is always run)")
    parser.add_argument("--rounds", type=int, default=None, help="repeats per scenario (default 3; quick 1)")
    parser.add_argument("--idle-hold", type=float, default=None, help="seconds to hold idle connections")
    parser.add_argument("--idle-stages", default=None, help="comma-separated connection counts")
    parser.add_argument("--idle-per-source", type=int, default=None, metavar="N",
                        help="idle connections per loopback source address (default 20000; then "
                             "127.0.0.2, 127.0.0.3, ...: one address has about 28,000 ephemeral ports)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=DIR",
                        help="also run our server from a copy of the package in DIR (A/B a patch)")
    parser.add_argument("--json", default=None, help="write the raw results to this file")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    settings = json.loads(json.dumps(QUICK if args.quick else FULL))
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS) - set(OPT_IN)
    if unknown:
        raise SystemExit(f"bench: unknown scenarios {sorted(unknown)}")
    if args.idle_hold is not None:
        settings["idle"]["hold"] = args.idle_hold
    if args.idle_stages:
        settings["idle"]["stages"] = [int(n) for n in args.idle_stages.split(",")]
    if args.idle_per_source:
        settings["idle"]["perSource"] = args.idle_per_source
    rounds = args.rounds or (1 if args.quick else 3)

    peers = default_peers()
    skipped: Dict[str, str] = {}
    wanted = args.peers.split(",") if args.peers else (["plain", "ours", "ours4"] if args.quick else None)
    if wanted is not None:
        for peer in peers:
            if peer.key != "plain" and peer.key not in wanted:
                skipped[peer.key] = f"{peer.label}: not run ({'--quick' if args.quick else '--peers'})"
        peers = [p for p in peers if p.key == "plain" or p.key in wanted]
    for peer in list(peers):
        missing = peer.missing()
        if missing:
            skipped[peer.key] = f"{peer.label}: not installed ({', '.join(missing)})"
            log(f"skipping {peer.label}: {', '.join(missing)} not installed")
            peers.remove(peer)
    if peers[0].key != "plain":
        raise SystemExit("bench: gevent-websocket is needed for the plain app (the baseline)")
    for spec in args.variant:
        name, _, path = spec.partition("=")
        peers.append(Peer(name, name, "sio06", ours_command(), pythonpath=os.path.abspath(path)))

    ws_module = ensure_ws()
    most = max(settings["idle"]["stages"]) if "idle" in scenarios else 0
    limit = raise_nofile(most + 1000)
    if "idle" in scenarios and limit < most + 200:
        raise SystemExit(f"bench: RLIMIT_NOFILE is {limit} (the hard limit, `ulimit -Hn`), too low for "
                         f"{most:,} connections in one process: raise the hard limit (root with "
                         "CAP_SYS_RESOURCE, limits.conf or the container's nofile) or use smaller --idle-stages")
    if args.quick:
        for s in settings.values():
            s.setdefault("inflight", 10)
    started = time.monotonic()
    logdir = tempfile.mkdtemp(prefix="socketio-bench-")
    log(f"servers on core {SERVER_CORE}, load generator on core {LOADGEN_CORE}; logs in {logdir}")
    results = run_shared(peers, settings, scenarios, rounds, ws_module, logdir)
    if "idle" in scenarios:
        results.update(run_idle(peers, settings["idle"], ws_module, logdir))
    elapsed = time.monotonic() - started
    if "attacks" in scenarios:  # our server alone: what hostile clients cost a bystander
        from bench import attacks
        # A smoke run only shows the table works: its "after" RSS is read too early to mean anything.
        attacks.main(["--seconds", "1", "--settle", "1"] if args.quick else ["--seconds", "5"])
    if "scaleout" in scenarios:  # 1 worker vs 3 behind nginx, no sticky sessions (issue 16)
        from bench import scaleout
        stem, ext = os.path.splitext(args.json) if args.json else ("", "")
        scaleout.main(["--quick"] * args.quick + (["--json", f"{stem}.scaleout{ext}"] if stem else []))

    print(f"socketio_wsgi bench: {rounds} round(s), medians; (Nx) = ratio to the plain "
          f"gevent-websocket app in the same run (lower is better for ms and KB).")
    print(table(results, peers, skipped, settings, scenarios))
    for note in skipped.values():
        print(f"skipped: {note}")
    lines = targets(results, settings, scenarios, peers)
    if lines:
        print("targets:")
        print("\n".join(lines))
    print(f"total {elapsed:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({f"{row}|{peer}": rs for (row, peer), rs in results.items()}, fh, indent=1)
    errors = sum(1 for rs in results.values() for r in rs if "error" in r)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
