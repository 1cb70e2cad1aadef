"""Scale-out without sticky sessions (issue 16): polling echo through a round-robin proxy.

    python -m bench.scaleout                   # 200 clients, 2 rounds: about 2 minutes
    python -m bench.scaleout --quick           # a smoke run of a few seconds
    python -m bench.scaleout --json out.json   # the results as JSON too
    python -m bench --scenarios scaleout       # the same, from the main bench

Everything runs on loopback ports and is started here: Debian's redis-server,
Debian's nginx (a round-robin upstream with no stickiness, HTTP/1.1 with
keepalive to the workers, no buffering, no retry on another worker) and
``python -m socketio_wsgi bench.apps_ours:application --backend redis://...``
workers.  Two measurements:

1. **Throughput**: ``--clients`` Socket.IO 0.6 xhr-polling clients (the Node.js
   generator ``loadgen/scaleout.js``: POST a message, GET its echo, again)
   through nginx against 1 worker, then against 3, the same clients and
   duration, the order rotating per round; messages/s, echo latency p50/p99,
   worker CPU per message, and the CPU share of every process group.  With 3
   workers two requests in three reach a worker that does not own the session
   and are forwarded over Redis to the one that does.
2. **Forwarding cost**: without nginx, the same POST (and the same GET that
   finds the echo queued) sent to the owning worker and to another one,
   interleaved, ``--samples`` times each; p50/p99 and the difference.  Then
   the CPU each side spends on one POST + GET pair, sent to the owner and
   sent to the other worker, from /proc over ``--samples`` pairs each.

Placement: worker i runs on core i (modulo the cores this process may use);
the load generator, nginx and redis share the cores left over, or, with fewer
than four cores, the last core, the same in both cases.  On a 2-core machine
the 3 workers therefore share 2 cores with everything else: the throughput
ratio is bounded by the cores, and the worker CPU per message (which does not
depend on how many cores there are) shows what forwarding costs.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import quote

from bench.redis_fanout import Processes, wait_until
from bench.run import REPO, Peer, Server, free_port, ours_command, pinned, raise_nofile

HERE = os.path.dirname(os.path.abspath(__file__))
LOADGEN = os.path.join(HERE, "loadgen", "scaleout.js")
NGINX = "/usr/sbin/nginx"
TICK = 1.0 / os.sysconf("SC_CLK_TCK")
FULL = {"clients": 200, "rounds": 2, "warmup": 2.0, "duration": 8.0, "samples": 1000}
QUICK = {"clients": 20, "rounds": 1, "warmup": 0.3, "duration": 1.5, "samples": 60}
WORKER_OPTIONS = ["--shutdown-grace", "0.2"]
#: The cases of a round: 1 worker, 3 behind round robin, 3 behind a sticky proxy.
CASES = ("1", "3", "3s")
SETTLE = 1.5  # seconds between the load generator's end and stopping the workers
EXPECTED_LOG = ("socketio_wsgi: serving on ", "socketio_wsgi: shutting down")
TARGET_RATIO, TARGET_ADDED_MS = 2.0, 2.0


def log(msg: str) -> None:
    print(f"scaleout: {msg}", file=sys.stderr, flush=True)


# -- cores and CPU time ------------------------------------------------------------------
def placement(workers: int, most: int = 3) -> Tuple[List[int], List[int]]:
    """(core of each worker, cores of the helpers): worker i on core i modulo the
    cores; the helpers on the cores no worker of the largest case uses, else
    the last core, so that they sit in the same place in every case."""
    cores = sorted(os.sched_getaffinity(0))
    helpers = cores[most:] if len(cores) > most else cores[-1:]
    return [cores[i % len(cores)] for i in range(workers)], helpers


def cores_arg(cores: Sequence[int]) -> str:
    return ",".join(str(c) for c in cores)


def pin(pid: int, cores: Sequence[int]) -> None:
    """Every thread of a running process onto ``cores``."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), set(cores))
        except OSError:
            pass  # a thread that has just ended


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) * TICK  # utime + stime


def machine_busy_seconds() -> float:
    """CPU time every core spent on anything but idle and iowait, since boot."""
    with open("/proc/stat") as fh:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fh.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) * TICK


def children_of(pid: int) -> List[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def sample(groups: Dict[str, List[int]]) -> Dict[str, Any]:
    return {"t": time.monotonic(), "machine": machine_busy_seconds(),
            "pids": {pid: cpu_seconds(pid) for pids in groups.values() for pid in pids}}


def cpu_shares(groups: Dict[str, List[int]], start: dict, stop: dict) -> Dict[str, Any]:
    """Percent of one core per group over the window; ``others`` is what the
    rest of the machine (other users of the cores) took meanwhile."""
    seconds = stop["t"] - start["t"]
    used = {name: sum(stop["pids"][p] - start["pids"][p] for p in pids) for name, pids in groups.items()}
    shares: Dict[str, Any] = {name: 100 * s / seconds for name, s in used.items()}
    shares["others"] = max(0.0, 100 * (stop["machine"] - start["machine"] - sum(used.values())) / seconds)
    shares["per_worker"] = [100 * (stop["pids"][p] - start["pids"][p]) / seconds for p in groups["workers"]]
    shares["worker_seconds"] = used["workers"]
    return shares


# -- processes --------------------------------------------------------------------------
class Nginx:
    """nginx in front of ``ports``: round robin, no stickiness, keepalive, no buffering.
    ``sticky``: each client to one worker instead (a hash of the load generator's
    ``X-Client`` header), so nothing is forwarded: what this machine allows."""

    def __init__(self, workdir: str, ports: Sequence[int], cores: Sequence[int], sticky: bool = False):
        self.sticky = sticky
        if not os.access(NGINX, os.X_OK):
            raise SystemExit(f"scaleout: {NGINX} is missing (apt-get install nginx)")
        self.dir = tempfile.mkdtemp(prefix="nginx-", dir=workdir)
        self.port = free_port()
        self.workers: List[int] = []
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as fh:
            fh.write(self.config(ports))
        self.log = open(os.path.join(self.dir, "stderr.log"), "w")
        self.proc = subprocess.Popen(
            pinned(cores_arg(cores), [NGINX, "-e", os.path.join(self.dir, "error.log"), "-p", self.dir,
                                      "-c", conf, "-g", "daemon off;"]),
            stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_until(self.listening, 15, "nginx")
            wait_until(lambda: bool(children_of(self.proc.pid)), 5, "nginx's worker process")
        except BaseException:
            self.stop()
            raise
        self.workers = children_of(self.proc.pid)

    def config(self, ports: Sequence[int]) -> str:
        d = self.dir
        servers = "\n".join(f"        server 127.0.0.1:{p};" for p in ports)
        balance = ("        hash $http_x_client consistent;  # sticky: the ceiling case" if self.sticky else
                   "        # round robin (nginx's default): no ip_hash, no hash, no sticky cookie")
        user = "user root root;\n" if os.geteuid() == 0 else ""  # workers keep access to the temp dir
        return f"""{user}worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream workers {{
{balance}
{servers}
        keepalive 256;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            proxy_pass http://workers;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_next_upstream off;
            proxy_read_timeout 120s;
        }}
    }}
}}
"""

    def listening(self) -> bool:
        if self.proc.poll() is not None:
            with open(os.path.join(self.dir, "error.log"), errors="replace") as fh:
                raise SystemExit(f"scaleout: nginx exited: {fh.read()[-1500:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
            return True
        except OSError:
            return False

    def pids(self) -> List[int]:
        return [self.proc.pid] + self.workers

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # nginx's fast shutdown: it stops its workers first
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for pid in self.workers:  # only if the master could not stop them itself
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    if b"nginx" in fh.read():
                        os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.log.close()


class Worker(Server):
    """The main bench's server process, started without waiting for it: it is
    in the caller's list (to be stopped) before anything can go wrong."""

    def __init__(self, peer: Peer, logdir: str, started: List[Server]):
        self.started = started
        super().__init__(peer, logdir)

    def _wait_ready(self, timeout: float = 30.0) -> None:
        self.started.append(self)

    def wait_ready(self) -> None:
        Server._wait_ready(self)


class Workers:
    """``count`` server processes on one Redis prefix, worker i pinned to its core."""

    def __init__(self, count: int, redis_url: str, prefix: str, logdir: str, package: Optional[str],
                 extra: Sequence[str] = ()):
        cores, _ = placement(count)
        command = ours_command()
        backend = f"{redis_url}?prefix={prefix}"
        self.servers: List[Server] = []
        try:
            for i in range(count):
                peer = Peer(f"worker{i}", f"worker {i}", "sio06",
                            command[:-1] + ["--backend", backend, *WORKER_OPTIONS, *extra] + command[-1:],
                            pythonpath=package)
                Worker(peer, logdir, self.servers)
            for core, server in zip(cores, self.servers, strict=True):  # they start side by side
                server.wait_ready()
                pin(server.proc.pid, [core])
        except BaseException:
            self.stop()
            raise
        self.cores = cores

    def complaints(self) -> List[str]:
        """What the workers logged beyond starting and stopping: warnings, errors and
        tracebacks (no logging is configured, so they come as bare messages)."""
        found = []
        for server in self.servers:
            with open(server.logpath, errors="replace") as fh:
                found += [f"{server.peer.key}: {line.strip()[:300]}" for line in fh
                          if line.strip() and not line.startswith(EXPECTED_LOG)]
        return found

    @property
    def ports(self) -> List[int]:
        return [s.port for s in self.servers]

    @property
    def pids(self) -> List[int]:
        return [s.proc.pid for s in self.servers]

    def stop(self) -> None:
        for server in self.servers:  # all at once: each may take its shutdown grace
            if server.proc.poll() is None:
                server.proc.send_signal(signal.SIGTERM)
        for server in self.servers:
            server.stop()


# -- the load generator -------------------------------------------------------------------
class Lines:
    """Lines of a child's stdout, each read bounded by a deadline."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.buffer = b""

    def next(self, deadline: float) -> Optional[str]:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode(errors="replace")


def drive(port: int, settings: dict, cores: Sequence[int], groups: Dict[str, List[int]],
          logdir: str, name: str) -> Dict[str, Any]:
    """One load generator run against ``port``; its figures plus the CPU shares
    of every group in ``groups`` over its measuring window."""
    budget = 60 + settings["clients"] / 10 + settings["warmup"] + settings["duration"]
    config = {"port": port, "clients": settings["clients"], "warmup": settings["warmup"],
              "duration": settings["duration"], "mode": settings["mode"], "size": 32,
              "inflight": 50, "deadline": budget}
    with open(os.path.join(logdir, f"loadgen-{name}.log"), "w") as err:
        proc = subprocess.Popen(pinned(cores_arg(cores), ["node", LOADGEN, json.dumps(config)]),
                                stdout=subprocess.PIPE, stderr=err)
    lines = Lines(proc)
    deadline = time.monotonic() + budget + 10
    groups = dict(groups, loadgen=[proc.pid])
    marks: Dict[str, dict] = {}
    finished = False
    try:
        while True:
            line = lines.next(deadline)
            if line is None:
                return {"error": f"the load generator stopped answering (exit {proc.poll()})"}
            if line in ("window start", "window stop"):
                marks[line.split()[1]] = sample(groups)
                continue
            result = json.loads(line)
            finished = True
            break
    finally:
        try:
            proc.wait(5 if finished else 0)  # it exits by itself once it has answered
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()
    if "error" not in result and {"start", "stop"} <= marks.keys():
        result["cpu"] = cpu_shares(groups, marks["start"], marks["stop"])
        echoes = result["echoes"]
        result["worker_us_per_msg"] = 1e6 * result["cpu"]["worker_seconds"] / echoes if echoes else None
    return result


def run_case(count: int, redis_url: str, args: argparse.Namespace, logdir: str, tag: str,
             sticky: bool = False) -> Dict[str, Any]:
    _, helpers = placement(count)
    workers = Workers(count, redis_url, f"scaleout-{os.getpid()}-{tag}", logdir, args.package)
    nginx = None
    try:
        nginx = Nginx(logdir, workers.ports, helpers, sticky=sticky)
        settings = {k: getattr(args, k) for k in ("clients", "warmup", "duration", "mode")}
        result = drive(nginx.port, settings, helpers,
                       {"workers": workers.pids, "nginx": nginx.pids(), "redis": args.redis_pids},
                       logdir, tag)
        # What the last requests of the run log once answered counts; what stopping
        # makes them log (an owner that goes first answers others' forwards "unknown") not.
        time.sleep(SETTLE)
        complaints = workers.complaints()
        result["worker_log"] = {"lines": len(complaints), "first": complaints[:5]}
    finally:
        if nginx is not None:
            nginx.stop()
        workers.stop()
    return result


# -- the cost of one forwarded request ------------------------------------------------------
class Poller:
    """A keep-alive HTTP connection to one worker, speaking 0.6 xhr-polling."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body: Optional[bytes] = None) -> Tuple[int, str]:
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        return response.status, response.read().decode(errors="replace")

    def handshake(self) -> str:
        status, body = self.call("GET", f"/socket.io/xhr-polling//{time.time_ns()}")
        if status != 200:
            raise SystemExit(f"scaleout: handshake answered {status} {body[:200]}")
        return body.split("~m~")[2]

    def post(self, sid: str, payload: str) -> Tuple[int, str]:
        return self.call("POST", f"/socket.io/xhr-polling/{sid}/send",
                         ("data=" + quote(payload, safe="")).encode())

    def get(self, sid: str) -> Tuple[int, str]:
        return self.call("GET", f"/socket.io/xhr-polling/{sid}/{time.time_ns()}")

    def close(self) -> None:
        self.conn.close()


def exchange(poller: Poller, sid: str, text: str) -> Tuple[float, float, Optional[str]]:
    """POST ``text``, then GET its echo: (POST ms, GET ms, what went wrong or None)."""
    from socketio_wsgi.protocol import decode_frames, encode_frame
    t0 = time.perf_counter()
    status, body = poller.post(sid, encode_frame(text))
    t1 = time.perf_counter()
    if status != 200 or body != "ok":
        return 0.0, 0.0, f"POST answered {status} {body[:80]!r}"
    status, body = poller.get(sid)
    t2 = time.perf_counter()
    frames = decode_frames(body) if status == 200 else []
    beats = [frame for frame in frames if frame.startswith("~h~")]
    if beats:
        poller.post(sid, "".join(encode_frame(beat) for beat in beats))
    if len(frames) - len(beats) != 1 or text not in frames:
        return 0.0, 0.0, f"GET answered {status} {body[:80]!r}, expected the echo of {text!r} alone"
    return (t1 - t0) * 1000, (t2 - t1) * 1000, None


def forwarding_cost(args: argparse.Namespace, redis_url: str, logdir: str) -> Dict[str, Any]:
    """The same POST and GET, to the owner and to a worker that is not: each of two
    sessions is owned by one of two workers (on different cores), each request
    goes to its owner or to the other, in alternating order.  Then the CPU they
    cost: a block of owner-only rounds and a block of forwarded-only rounds."""
    workers = Workers(2, redis_url, f"scaleout-{os.getpid()}-latency", logdir, args.package,
                      extra=["--polling-duration", "5"])
    _, helpers = placement(2)
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(helpers))
    pollers = [Poller(port) for port in workers.ports]
    timings: Dict[str, List[float]] = {f"{kind} {route}": [] for kind in ("POST", "GET")
                                       for route in ("direct", "forwarded")}
    problems: List[str] = []
    cpu: Dict[str, Dict[str, float]] = {}
    deadline = time.monotonic() + args.latency_seconds

    def rounds(count: int, order, record: bool, owners: Sequence[int] = (0, 1)) -> int:
        """``count`` rounds over the sessions of ``owners``; ``order(i, owner)``: the routes of one."""
        for i in range(count):
            if time.monotonic() > deadline:
                problems.append(f"stopped after {i} of {count} rounds: --latency-seconds passed")
                return i
            for owner in owners:
                sid = sids[owner]
                for route in order(i, owner):
                    poller = pollers[owner if route == "direct" else 1 - owner]
                    text = f"{i}-{route}-{owner}"
                    post_ms, get_ms, problem = exchange(poller, sid, text)
                    if problem:
                        problems.append(f"{route}: {problem}")
                    elif record:
                        timings[f"POST {route}"].append(post_ms)
                        timings[f"GET {route}"].append(get_ms)
        return count

    try:
        sids = [poller.handshake() for poller in pollers]
        status, body = pollers[1].post(sids[0], "~m~5~m~probe")
        if status != 200:
            return {"error": f"a forwarded POST is not served: POST /socket.io/xhr-polling/<sid>/send "
                             f"to a non-owner answered {status} {body[:120]!r}"}
        pollers[0].get(sids[0])  # the probe's echo
        def alternate(i: int, owner: int) -> Tuple[str, str]:
            return ("direct", "forwarded") if (i + owner) % 2 == 0 else ("forwarded", "direct")

        rounds(min(50, args.samples), alternate, False)  # warm-up
        rounds(args.samples, alternate, True)
        # CPU: the session of worker 0 only, so that worker 1 is the forwarding side alone
        groups = {"workers": workers.pids, "redis": args.redis_pids}
        owner_pid, other_pid = workers.pids
        seconds = {route: {"owner": 0.0, "other": 0.0, "redis": 0.0, "pairs": 0}
                   for route in ("direct", "forwarded")}
        for route in ("direct", "forwarded", "forwarded", "direct"):  # drift in the machine's load cancels
            before = sample(groups)
            pairs = rounds(max(1, args.samples // 2), lambda i, owner, r=route: (r,), False, owners=(0,))
            after = sample(groups)
            used = {pid: after["pids"][pid] - before["pids"][pid] for pid in before["pids"]}
            seconds[route]["owner"] += used[owner_pid]
            seconds[route]["other"] += used[other_pid]
            seconds[route]["redis"] += sum(used[p] for p in args.redis_pids)
            seconds[route]["pairs"] += pairs
        for route, spent in seconds.items():
            if spent["pairs"]:
                per = {f"{k}_us": 1e6 * spent[k] / spent["pairs"] for k in ("owner", "other", "redis")}
                cpu[route] = dict(per, workers_us=per["owner_us"] + per["other_us"], pairs=spent["pairs"])
    finally:
        for poller in pollers:
            poller.close()
        os.sched_setaffinity(0, mine)
        complaints = workers.complaints()
        workers.stop()
    out: Dict[str, Any] = {"problems": problems[:20], "problem_count": len(problems), "cpu": cpu,
                           "worker_log": {"lines": len(complaints), "first": complaints[:5]}}
    for key, values in timings.items():
        if len(values) >= 2:
            cuts = statistics.quantiles(values, n=100)
            out[key] = {"n": len(values), "p50": statistics.median(values), "p99": cuts[98]}
    for kind in ("POST", "GET"):
        direct, forwarded = out.get(f"{kind} direct"), out.get(f"{kind} forwarded")
        if direct and forwarded:
            out[f"{kind} added"] = {q: forwarded[q] - direct[q] for q in ("p50", "p99")}
    return out


# -- the report ------------------------------------------------------------------------------
def median_of(results: List[dict], pick) -> Optional[float]:
    values = []
    for r in results:
        try:
            value = pick(r)
        except (KeyError, TypeError, IndexError):
            continue
        if value is not None:
            values.append(value)
    return statistics.median(values) if values else None


def summary(results: List[dict]) -> Dict[str, Any]:
    good = [r for r in results if "error" not in r]
    failures: Dict[str, int] = {}
    for r in good:
        for key, n in r["failures"].items():
            failures[key] = failures.get(key, 0) + n
    out: Dict[str, Any] = {
        "rounds": len(results), "errors": [r["error"] for r in results if "error" in r],
        "failures": failures, "replaced": sum(r["replaced"] for r in good),
        "wrong_echo": sum(r["wrong_echo"] for r in good),
        "log_lines": sum(r.get("worker_log", {}).get("lines", 0) for r in results),
        "log_first": [line for r in results for line in r.get("worker_log", {}).get("first", [])][:3],
    }
    for key in ("rate", "p50", "p99", "worker_us_per_msg"):
        out[key] = median_of(good, lambda r, k=key: r[k])
    for group in ("workers", "nginx", "redis", "loadgen", "others"):
        out[f"cpu_{group}"] = median_of(good, lambda r, g=group: r["cpu"][g])
    width = max((len(r["cpu"]["per_worker"]) for r in good if "cpu" in r), default=0)
    out["cpu_per_worker"] = [median_of(good, lambda r, i=i: r["cpu"]["per_worker"][i]) for i in range(width)]
    return out


def round_ratios(one: List[dict], three: List[dict], key: str) -> Optional[float]:
    ratios = [b[key] / a[key] for a, b in zip(one, three, strict=False)
              if "error" not in a and "error" not in b and a.get(key) and b.get(key) is not None]
    return statistics.median(ratios) if ratios else None


def busiest_core(s: Dict[str, Any], workers: int) -> Tuple[Optional[int], float, str]:
    """The core whose pinned processes used the most CPU, from the group shares."""
    worker_cores, helpers = placement(workers)
    load: Dict[int, float] = {}
    parts: Dict[int, List[str]] = {}
    for i, share in enumerate(s["cpu_per_worker"]):
        if share is not None:
            load[worker_cores[i]] = load.get(worker_cores[i], 0.0) + share
            parts.setdefault(worker_cores[i], []).append(f"worker {i} {share:.0f}")
    for group in ("loadgen", "nginx", "redis"):
        share = s[f"cpu_{group}"]
        if share is not None:
            for core in helpers:
                load[core] = load.get(core, 0.0) + share / len(helpers)
                parts.setdefault(core, []).append(f"{group} {share / len(helpers):.0f}")
    if not load:
        return None, 0.0, ""
    core = max(load, key=load.get)
    return core, load[core], ", ".join(parts[core])


def fmt(value: Optional[float], pattern: str = "{:,.0f}") -> str:
    return "-" if value is None else pattern.format(value)


def markdown(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    align = ["---"] + ["---:"] * (len(head) - 1)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def throughput_table(args: argparse.Namespace, one: Dict[str, Any], three: Dict[str, Any],
                     ratios: Dict[str, Optional[float]], sticky: Dict[str, Any],
                     sticky_ratios: Dict[str, Optional[float]]) -> str:
    def failures(s: Dict[str, Any]) -> str:
        return "; ".join(f"{k}: {n:,}" for k, n in sorted(s["failures"].items())) or "0"

    def per_worker(s: Dict[str, Any]) -> str:
        return fmt(s["cpu_workers"]) + (f" ({' / '.join(fmt(v) for v in s['cpu_per_worker'])})"
                                        if len(s["cpu_per_worker"]) > 1 else "")

    def row(label: str, value, pattern: str = "{:,.0f}", key: Optional[str] = None) -> List[str]:
        """``value(summary)`` for each case, and the ratios to one worker of ``key``."""
        cells = [label, value(one, pattern), value(three, pattern), "", value(sticky, pattern), ""]
        if key is not None:
            cells[3], cells[5] = fmt(ratios[key], "{:.2f}x"), fmt(sticky_ratios[key], "{:.2f}x")
        return cells

    def of(key: str):
        return lambda s, pattern: fmt(s[key], pattern)

    def helpers(s, _pattern) -> str:
        return " / ".join(fmt(s[f"cpu_{g}"]) for g in ("nginx", "redis", "loadgen"))

    rows = [
        row("messages/s", of("rate"), key="rate"),
        row("echo p50 ms (POST sent to echo received)", of("p50"), "{:.2f}", "p50"),
        row("echo p99 ms", of("p99"), "{:.2f}", "p99"),
        row("worker CPU us/message (all workers)", of("worker_us_per_msg"), key="worker_us_per_msg"),
        row("CPU % of a core: workers (each)", lambda s, _p: per_worker(s)),
        row("CPU %: nginx / redis / load generator", helpers),
        row("CPU %: other processes on the machine", of("cpu_others")),
        row("failed requests (status: count)", lambda s, _p: failures(s)),
        row("clients replaced after a failure", of("replaced")),
        row("echoes not matching the message in flight", of("wrong_echo")),
        row("worker log lines (warnings, errors)", of("log_lines")),
    ]
    title = f"polling echo, {args.clients} clients, {args.duration:g} s x {args.rounds} round(s)"
    head = [title, "1 worker", "3 workers", "3 / 1", "3 workers, sticky proxy", "sticky 3 / 1"]
    return markdown(head, rows)


def latency_table(cost: Dict[str, Any]) -> str:
    rows = []
    for kind, label in (("POST", "POST /send"), ("GET", "GET, echo queued")):
        d, f, a = cost.get(f"{kind} direct"), cost.get(f"{kind} forwarded"), cost.get(f"{kind} added")
        if not (d and f and a):
            rows.append([label] + ["-"] * 6)
            continue
        rows.append([f"{label} (n={d['n']:,})", f"{d['p50']:.3f}", f"{f['p50']:.3f}", f"{a['p50']:+.3f}",
                     f"{d['p99']:.3f}", f"{f['p99']:.3f}", f"{a['p99']:+.3f}"])
    table = markdown(["request, ms", "owner p50", "forwarded p50", "added p50", "owner p99",
                      "forwarded p99", "added p99"], rows)
    cpu = cost.get("cpu", {})
    if "direct" in cpu and "forwarded" in cpu:
        d, f = cpu["direct"], cpu["forwarded"]
        rows = [[label, fmt(d[key]), fmt(f[key]),
                 fmt(f[key] / d[key] if ratio and d[key] else None, "{:.2f}x")]
                for label, key, ratio in (("owning worker", "owner_us", True),
                                          ("the other worker (idle when not forwarding)", "other_us", False),
                                          ("both workers", "workers_us", True),
                                          ("redis-server", "redis_us", False))]
        table += "\n\n" + markdown(
            [f"CPU per POST + GET, us (n={f['pairs']:,})", "sent to the owner", "sent to the other",
             "other / owner"], rows)
    return table


def checkout() -> Dict[str, Any]:
    def git(*argv: str) -> str:
        try:
            done = subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True, timeout=10)
            return done.stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "uncommitted": [line[3:] for line in git("status", "--porcelain", "socketio_wsgi").splitlines()]}


def described(source: Dict[str, Any]) -> str:
    changes = ", ".join(source["uncommitted"])
    return f"commit {source['commit']}" + (f" + uncommitted changes in {changes}" if changes else "")


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few clients, short windows")
    parser.add_argument("--clients", type=int, help=f"polling clients (default {FULL['clients']})")
    parser.add_argument("--rounds", type=int,
                        help=f"1-worker/3-worker pairs, order rotating (default {FULL['rounds']})")
    parser.add_argument("--warmup", type=float, help="seconds of load before each window")
    parser.add_argument("--duration", type=float,
                        help=f"seconds per measuring window (default {FULL['duration']:g})")
    parser.add_argument("--samples", type=int,
                        help=f"timed requests per kind and route (default {FULL['samples']} per session, "
                             "two sessions)")
    parser.add_argument("--latency-seconds", type=float, default=60.0,
                        help="bound of the forwarding-cost phase")
    parser.add_argument("--mode", choices=("sequential", "pending"), default="sequential",
                        help="sequential: POST then GET the echo; pending: a GET always pending, as the "
                             "real client does (long polls are forwarded too)")
    parser.add_argument("--package", default=None, metavar="DIR",
                        help="run the workers from the socketio_wsgi package in DIR (another checkout)")
    parser.add_argument("--json", default=None, help="write the results to this file")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs (path printed)")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.package:
        args.package = os.path.abspath(args.package)
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    for tool in ("node", "redis-server"):
        if shutil.which(tool) is None:
            raise SystemExit(f"scaleout: {tool} is needed")
    raise_nofile(4 * args.clients + 1000)
    started = time.monotonic()
    logdir = tempfile.mkdtemp(prefix="socketio-scaleout-")
    procs = Processes(logdir)
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run every finally below
    load_before = open("/proc/loadavg").read().split()[:3]
    source = checkout()  # the workers import the checkout as it is when each case starts
    results: Dict[str, List[dict]] = {case: [] for case in CASES}
    try:
        redis_url = procs.redis()
        args.redis_pids = [procs.children[-1].pid]
        pin(args.redis_pids[0], placement(3)[1])
        for rnd in range(args.rounds):
            shift = rnd % len(CASES)
            for case in CASES[shift:] + CASES[:shift]:
                count, sticky = int(case[0]), case.endswith("s")
                what = f"{count} worker(s)" + (", sticky proxy" if sticky else "")
                log(f"round {rnd + 1}/{args.rounds}: {what}, {args.clients} clients, {args.duration:g} s")
                result = run_case(count, redis_url, args, logdir, f"{case}w-r{rnd}", sticky)
                if "error" in result:
                    log(f"{what}: {result['error']}")
                else:
                    log(f"{what}: {result['rate']:,.0f} msg/s, p50 {result['p50']:.2f} ms, "
                        f"failures {result['failures'] or 0}")
                results[case].append(result)
        log(f"forwarding cost: {args.samples} rounds of POST + GET, owner vs non-owner")
        cost = forwarding_cost(args, redis_url, logdir)
    finally:
        procs.stop()
        signal.signal(signal.SIGTERM, previous)
        if args.keep_logs:
            log(f"logs kept in {logdir}")
        else:
            shutil.rmtree(logdir, ignore_errors=True)
    elapsed = time.monotonic() - started

    one, three, sticky = summary(results["1"]), summary(results["3"]), summary(results["3s"])
    ratios = {key: round_ratios(results["1"], results["3"], key)
              for key in ("rate", "p50", "p99", "worker_us_per_msg")}
    sticky_ratios = {key: round_ratios(results["1"], results["3s"], key)
                     for key in ("rate", "p50", "p99", "worker_us_per_msg")}
    worker_cores, helpers = placement(3)
    cores = sorted(os.sched_getaffinity(0))
    after = checkout()
    print(f"socketio_wsgi scale-out bench: {described(source)}"
          + (f" (workers from {args.package})" if args.package else "")
          + f"; load average before {' '.join(load_before)}")
    if after != source and not args.package:
        print(f"the checkout changed during the run (now {described(after)}): later cases ran other code; "
              "--package DIR runs the workers from a fixed copy")
        source["after"] = after
    print(f"cores {cores_arg(cores)}: worker i on core i % {len(cores)} (1 worker: core {worker_cores[0]}; "
          f"3 workers: cores {', '.join(map(str, worker_cores))}); load generator, nginx and redis on "
          f"core(s) {cores_arg(helpers)} in both cases; the forwarding-cost client on core(s) "
          f"{cores_arg(placement(2)[1])}" + (
              ". Fewer cores than processes: the 3 workers share the cores with each other and with "
              "the helpers, so 3 / 1 in messages/s is bounded by the cores, not by forwarding"
              if len(cores) < 4 else ""))
    print()
    print(throughput_table(args, one, three, ratios, sticky, sticky_ratios))
    for label, s, count in (("1 worker", one, 1), ("3 workers", three, 3), ("3 workers, sticky", sticky, 3)):
        core, load, parts = busiest_core(s, count)
        if core is not None:
            print(f"- {label}: busiest core {core} at {load:.0f} % ({parts})"
                  + (" -- saturated" if load >= 90 else ""))
        for error in s["errors"]:
            print(f"- {label}: error: {error}")
        for line in s["log_first"]:
            print(f"- {label}: worker log: {line}")
    print()
    if "error" in cost:
        print(f"forwarding cost: not measured: {cost['error']}")
    else:
        print(f"forwarding cost, no proxy: two sessions, each owned by one of two workers (cores "
              f"{cores_arg(placement(2)[0])}), each request sent to its owner or to the other worker, "
              "interleaved")
        print()
        print(latency_table(cost))
        if cost["problem_count"]:
            print(f"- {cost['problem_count']} unexpected answers, first: {cost['problems'][0]}")
        for line in cost["worker_log"]["first"]:
            print(f"- worker log: {line}")
    print()
    print("targets:")
    rate = ratios["rate"]
    print(f"- 3 workers / 1 worker, messages/s: {fmt(rate, '{:.2f}x')} (target >= {TARGET_RATIO:g}x): "
          + ("not measured" if rate is None else "met" if rate >= TARGET_RATIO else "MISSED"))
    ceiling = sticky_ratios["rate"]
    print(f"- this machine's ceiling: 3 workers behind a sticky proxy (nothing forwarded) / 1 worker: "
          f"{fmt(ceiling, '{:.2f}x')}" + ("" if not (ceiling and rate) else
                                          f"; without stickiness we reach {rate / ceiling:.0%} of it"))
    per_msg = ratios["worker_us_per_msg"]
    if per_msg:
        print(f"- the same with a core for each worker, projected from worker CPU per message "
              f"(3 x 1 / {per_msg:.2f}): {3 / per_msg:.2f}x")
    for kind in ("POST", "GET"):
        added = cost.get(f"{kind} added")
        print(f"- forwarded {kind} adds, p50: " + ("not measured" if not added else
              f"{added['p50']:.3f} ms (target < {TARGET_ADDED_MS:g} ms): "
              + ("met" if added["p50"] < TARGET_ADDED_MS else "MISSED")))
    print(f"total {elapsed:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            keys = ("clients", "rounds", "warmup", "duration", "samples", "mode", "package")
            json.dump({"settings": {k: getattr(args, k) for k in keys}, "source": source, "cores": cores,
                       "placement": {"workers": worker_cores, "helpers": helpers},
                       "load_before": load_before, "elapsed_s": elapsed,
                       "rounds": results, "summary": {"1": one, "3": three, "3s": sticky}, "ratios": ratios,
                       "sticky_ratios": sticky_ratios,
                       "forwarding": cost}, fh, indent=1)
    failed = one["errors"] or three["errors"] or sticky["errors"] or "error" in cost
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
