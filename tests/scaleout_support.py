"""Scale-out without sticky sessions (issue 16): the real components and the load.

Two clusters, each three workers sharing one Redis, that any request of any
session may reach:

- :class:`NginxCluster`: Debian's nginx on a loopback port, a round-robin
  upstream (no ``ip_hash``, no ``hash``) of three ``python -m socketio_wsgi``
  processes running ``tests/apps/scaleout_app.py``;
- :class:`GunicornCluster`: ``gunicorn -k socketio_wsgi.workers.GeventSocketIOWorker
  -w 3`` on one port, the kernel handing each connection to any worker.

Run as a script this file is the *load driver*: a gevent process (the test
process stays unpatched) running hundreds of our 0.6 test clients, each in a
greenlet; it reads its configuration as JSON on stdin, prints progress lines
and a final report, one JSON object a line (see :func:`drive`).
"""
if __name__ == "__main__":  # the load driver: patch before anything imports socket
    from gevent import monkey

    monkey.patch_all()

import json  # noqa: E402
import os  # noqa: E402
import pwd  # noqa: E402
import queue  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Dict, Iterator, List, Optional, Tuple  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, "apps")
NGINX = "/usr/sbin/nginx"
# The subprocess helper of the Django tests serves these processes too.
if os.path.join(HERE, "django") not in sys.path:
    sys.path.append(os.path.join(HERE, "django"))

from browser_support import require  # noqa: E402
from djtest_support import Proc  # noqa: E402
from servers import wait_for  # noqa: E402
from test_runner import free_port  # noqa: E402

#: Long-poll length the workers run with: short, so a dead owner's clients
#: learn it soon, and every bound below stays small.
POLLING_DURATION = 5.0
#: The workers' liveness rules.  The load test overloads three workers, nginx,
#: Redis and a 400-client driver on two cores on purpose, so a client's next
#: poll can reach its owner seconds late through two busy event loops; the
#: defaults (8 s) would end such sessions by "close timeout" and the test
#: would measure the machine, not the forwarding.  These tests check order
#: and exactly-once delivery; the liveness rules have tests of their own.
LIVENESS_TIMEOUT = 30.0
#: The forwarding's own bound (the middleware's ``forward_timeout`` default).
FORWARD_TIMEOUT = 5.0
#: ``forward_timeout`` under the load test: how late an overloaded owner may
#: answer before the client gets a 503 (which the driver counts as a failure).
#: A poll's worst case, POLLING_DURATION + this, stays under the driver's
#: request timeout (30 s).
LOAD_FORWARD_TIMEOUT = 15.0
UNKNOWN_SESSION = "unknown session"
STATUS_TOKEN = "scaleout-status"


# -- the clusters -------------------------------------------------------------------------------

def _get(url: str, timeout: float = 2.0) -> Optional[str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read().decode()
    except (OSError, urllib.error.URLError):
        return None


def _gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie waiting for its parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


class Cluster:
    """Three workers behind one URL; subclasses start them."""

    kind = ""
    url = ""

    def __init__(self, directory: Path, backend: str, forward_timeout: float = FORWARD_TIMEOUT):
        self.dir = directory
        self.backend = backend
        self.forward_timeout = forward_timeout

    def pids(self) -> List[int]:
        """The pids of the live workers (each owns the sessions it accepted)."""
        raise NotImplementedError

    def kill_one(self, pid: int) -> None:
        """SIGKILL the worker ``pid`` (no goodbye: its sessions stay in Redis)."""
        assert pid in self.pids(), (pid, self.pids())
        os.kill(pid, signal.SIGKILL)

    def logs(self) -> str:
        """The tail of every log, for failure messages."""
        parts = []
        for path in sorted(self.dir.glob("*.log")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        raise NotImplementedError


class NginxCluster(Cluster):
    """nginx (round robin, no stickiness) in front of three runner processes."""

    kind = "nginx"

    def __init__(self, directory: Path, backend: str, workers: int = 3, forward_timeout: float = FORWARD_TIMEOUT):
        require(os.path.exists(NGINX), f"{NGINX} is not installed (apt-get install nginx)")

        super().__init__(directory, backend, forward_timeout)
        self.backends: List[Tuple[int, Any]] = []  # (port, Proc)
        self.nginx = None
        try:
            for n in range(workers):  # started together, waited for below
                port = free_port()
                proc = Proc([sys.executable, "-m", "socketio_wsgi", "--port", str(port), "--origins", "*",
                             "--no-access-log", "--polling-duration", str(POLLING_DURATION),
                             "--heartbeat-timeout", str(LIVENESS_TIMEOUT),
                             "--close-timeout", str(LIVENESS_TIMEOUT),
                             "--forward-timeout", str(forward_timeout),
                             "--status-token", STATUS_TOKEN,
                             "--backend", backend, "scaleout_app:application"],
                            cwd=APPS, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                            log_path=str(directory / f"worker{n}.log"))
                self.backends.append((port, proc))
            for _port, proc in self.backends:
                proc.wait_for_output("serving on", timeout=30)
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            conf = directory / "nginx.conf"
            conf.write_text(self.config())
            self.nginx = Proc([NGINX, "-p", str(directory), "-c", str(conf),
                               "-e", str(directory / "error.log"), "-g", "daemon off;"],
                              cwd=str(directory), env=dict(os.environ), log_path=str(directory / "nginx.log"))
            wait_for(lambda: (_get(self.url + "/") or "").startswith("scaleout app")
                     or self.nginx.proc.poll() is not None, timeout=15)
            assert self.nginx.proc.poll() is None, self.logs()
        except BaseException:
            self.stop()
            raise

    def config(self) -> str:
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
        # A worker that failed stays out for the whole test (fail_timeout): with
        # proxy_next_upstream off, nginx's retry of a dead worker after the
        # default 10 s would fail one more client request, not a stray bug.
        servers = "\n".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=600s;"
                            for port, _ in self.backends)
        d = self.dir
        return f"""
{user}
worker_processes 1;
worker_rlimit_nofile 8192;
pid {d}/nginx.pid;
error_log {d}/error.log notice;
events {{ worker_connections 4096; }}
http {{
    log_format scaleout '$msec $request_method "$request_uri" $status "$upstream_addr" '
                        '"$upstream_status" $request_time';
    access_log {d}/access.log scaleout;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      '';
    }}

    upstream socketio {{
        # round robin, and nothing that keeps a client on one worker
{servers}
        keepalive 32;
    }}

    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            proxy_pass http://socketio;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_buffering off;
            proxy_read_timeout {POLLING_DURATION * 4:.0f}s;
            proxy_next_upstream off;  # as the README says: a poll is never sent twice
        }}
    }}
}}
"""

    def pids(self) -> List[int]:
        return [proc.pid for _port, proc in self.backends if proc.proc.poll() is None]

    def forwarding_counters(self) -> Dict[int, Any]:
        """What each live worker's status endpoint says it forwarded and served
        for others (for the record only: the figures may change)."""
        out = {}
        for port, proc in self.backends:
            if proc.proc.poll() is None:
                text = _get(f"http://127.0.0.1:{port}/socket.io/status?token={STATUS_TOKEN}")
                out[proc.pid] = json.loads(text).get("forwarding") if text else None
        return out

    def port_of(self) -> Dict[int, int]:
        """upstream port -> worker pid."""
        return {port: proc.pid for port, proc in self.backends}

    def access_log(self) -> List[Dict[str, Any]]:
        """nginx's record of every request: which upstream(s) served it."""
        path = self.dir / "access.log"
        pattern = re.compile(r'^(\S+) (\S+) "([^"]*)" (\d+) "([^"]*)" "([^"]*)" (\S+)$')
        out = []
        for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
            match = pattern.match(line)
            if match:
                t, method, uri, status, upstreams, statuses, took = match.groups()
                out.append({"t": float(t), "method": method, "uri": uri, "status": int(status),
                            "upstreams": [u.strip() for u in re.split(r"[,:]\s", upstreams) if u.strip()],
                            "upstream_statuses": statuses, "time": float(took)})
        return out

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for _port, proc in self.backends:
            proc.stop()
        for _port, proc in self.backends:
            assert proc.proc.poll() is not None
        assert self.nginx is None or self.nginx.proc.poll() is not None


class GunicornCluster(Cluster):
    """One gunicorn, three of our workers on one port; the app reads its backend
    from ``SCALEOUT_BACKEND``."""

    kind = "gunicorn"

    def __init__(self, directory: Path, backend: str, workers: int = 3, forward_timeout: float = FORWARD_TIMEOUT):
        import importlib.util

        require(importlib.util.find_spec("gunicorn") is not None, "gunicorn is not installed")

        super().__init__(directory, backend, forward_timeout)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self._seen: set = set()
        env = dict(os.environ, PYTHONUNBUFFERED="1", SCALEOUT_BACKEND=backend,
                   SCALEOUT_POLLING_DURATION=str(POLLING_DURATION),
                   SCALEOUT_LIVENESS_TIMEOUT=str(LIVENESS_TIMEOUT),
                   SCALEOUT_FORWARD_TIMEOUT=str(forward_timeout))
        self.master = Proc([sys.executable, "-m", "gunicorn",
                            "-k", "socketio_wsgi.workers.GeventSocketIOWorker", "-w", str(workers),
                            "-b", f"127.0.0.1:{self.port}", "--graceful-timeout", "3",
                            "--log-level", "warning", "scaleout_app:make_app()"],
                           cwd=APPS, env=env, log_path=str(directory / "gunicorn.log"))
        try:
            wait_for(lambda: len(self.pids()) >= workers or self.master.proc.poll() is not None, timeout=30)
            assert self.master.proc.poll() is None, self.logs()
            # each worker imports the app (and reaches Redis) once it runs
            wait_for(lambda: (_get(self.url + "/") or "").startswith("scaleout app"), timeout=15)
        except BaseException:
            self.stop()
            raise

    def booted(self) -> List[int]:
        """Every worker the master has started so far (its children, as they come)."""
        try:
            with open(f"/proc/{self.master.pid}/task/{self.master.pid}/children") as fh:
                self._seen.update(int(pid) for pid in fh.read().split())
        except OSError:
            pass
        return sorted(self._seen)

    def pids(self) -> List[int]:
        return [pid for pid in self.booted() if not _gone(pid)]

    def wait_for_replacement(self, timeout: float = 30) -> None:
        wait_for(lambda: len(self.pids()) >= self.workers, timeout=timeout)

    def stop(self) -> None:
        workers = self.booted()
        self.master.stop()  # TERM, then KILL, to the process group: master and workers
        wait_for(lambda: all(_gone(pid) for pid in workers), timeout=10)


# -- the load driver ----------------------------------------------------------------------------

class DriverRun:
    """The load driver as a subprocess: progress lines are read as they come."""

    def __init__(self, config: Dict[str, Any], log_path: Path):
        self.log_path = log_path
        self._err = open(log_path, "w")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._err, text=True, cwd=HERE)
        self.proc.stdin.write(json.dumps(config))
        self.proc.stdin.close()
        self.lines: "queue.Queue[Dict[str, Any]]" = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.strip():
                self.lines.put(json.loads(line))
        self.lines.put({"event": "eof"})

    def wait_event(self, name: str, timeout: float) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the load driver printed no {name!r} within {timeout}s:\n"
                                     + self.stderr()) from None
            if line.get("event") == name:
                return line
            if line.get("event") == "eof":
                raise AssertionError(f"the load driver ended before {name!r}:\n" + self.stderr())

    def report(self, timeout: float) -> Dict[str, Any]:
        """The final report (also kept next to the driver's log, as JSON)."""
        try:
            report = self.wait_event("report", timeout)
        finally:
            self.stop()
        self.log_path.with_suffix(".json").write_text(json.dumps(report))
        return report

    def stderr(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(10)
        self._err.close()


class GaveUp(Exception):
    """A client stops: a failure its run does not tolerate."""


class LoadClient:
    """One simulated page: a 0.6 polling client in a channel.  As a browser
    does, it keeps a long poll open (one greenlet) while it posts its numbered
    messages one after another (another greenlet), so a poll and a POST of the
    same session often race on two workers."""

    #: How long after the last message a client waits for what is still due.
    GRACE = POLLING_DURATION + max(FORWARD_TIMEOUT, LOAD_FORWARD_TIMEOUT) + 10

    def __init__(self, shared: "Load", cid: int, transport: str, channel: str):
        from gevent.lock import RLock

        self.shared = shared
        self.cid = cid
        self.transport = transport
        self.channel = channel
        self.client: Any = None
        self.generation = 0      # bumped by each reconnect
        self.lock = RLock()
        self.sessions: List[Dict[str, Any]] = []   # {"sid", "pid", "t"} per session
        self.failures: List[Dict[str, Any]] = []   # every request that did not get its answer
        self.received: List[List[int]] = []        # [sender, seq] in arrival order
        self.got: Dict[int, set] = defaultdict(set)  # sender -> seqs, for the waits
        self.confirmed: List[int] = []             # own seqs whose echo came back
        self.uncertain: List[int] = []             # own seqs whose POST got no answer from us
        self.strangers: List[Any] = []             # anything else that arrived
        self.subscribed = False
        self.attempted = 0       # seqs sent so far (answered or not)
        self.resumed_at = 0      # the first seq sent by the second session
        self.done_at: Optional[float] = None   # monotonic time it sent its last message
        self.gave_up: Optional[str] = None

    # -- a session -------------------------------------------------------------------------------
    def open(self) -> None:
        from test_channels import SUB, frame

        from socketio_wsgi.client import Client

        self.client = Client(self.shared.url, transport=self.transport, timeout=self.shared.timeout)
        sid = self.client.connect()
        self.sessions.append({"sid": sid, "pid": None, "t": time.time()})
        self.subscribed = False
        self.until(lambda: self.sessions[-1]["pid"] is not None)
        self.client.send_payload(SUB + frame(self.channel))
        self.until(lambda: self.subscribed)

    def until(self, done) -> None:
        """Receive until ``done()``, within the run's deadline."""
        while not done():
            left = self.shared.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the run's deadline passed")
            try:
                self.take(self.client.receive(timeout=min(0.5, left)))
            except TimeoutError:
                continue

    def take(self, message: Any) -> None:
        if isinstance(message, dict) and "c" in message and "s" in message:
            self.received.append([message["c"], message["s"]])
            self.got[message["c"]].add(message["s"])
            if message["c"] == self.cid:
                self.confirmed.append(message["s"])
        elif isinstance(message, dict) and set(message) == {"pid"} and self.sessions[-1]["pid"] is None:
            self.sessions[-1]["pid"] = message["pid"]
        elif message == {"subscribed": self.channel}:
            self.subscribed = True
        else:
            self.strangers.append(message)

    # -- failures ----------------------------------------------------------------------------------
    def failed(self, op: str, exc: BaseException) -> str:
        """Record a request that got no proper answer; which kind it was."""
        status = getattr(exc, "status", None)
        text = str(getattr(exc, "reason", "") or exc)
        if status in (400, 404) and UNKNOWN_SESSION in text:
            kind = "unknown"
        elif isinstance(exc, TimeoutError):
            kind = "timeout"
        else:
            kind = "transport"  # no HTTP answer (reset, EOF), or the proxy's 502
        self.failures.append({"t": time.time(), "op": op, "kind": kind, "status": status, "text": text[:200],
                              "session": len(self.sessions) - 1, "seq": self.attempted - 1})
        return kind

    def trouble(self, op: str, exc: BaseException, generation: int) -> str:
        """A request of session ``generation`` failed.  Without tolerance (or on a
        timeout) the client gives up.  In a kill run, as the real client does,
        the first unknown-session answer ends the session, aborts the other
        request and opens a new session (once); a request lost on the way (the
        worker holding it died) is followed by the next one."""
        with self.lock:
            if generation != self.generation:
                return "aborted"  # it belonged to the session a reconnect just replaced
            kind = self.failed(op, exc)
            again = kind == "unknown" and len(self.sessions) > 1  # a second one is never expected
            if not self.shared.tolerate or kind == "timeout" or again:
                self.gave_up = f"{op}: {exc!r}"
                raise GaveUp(self.gave_up)
            if kind == "unknown":
                self.generation += 1
                self.client.disconnect()  # the other greenlet's request ends here
                self.resumed_at = self.attempted
                try:
                    self.open()
                except Exception as again:
                    self.failed("connect", again)
                    self.gave_up = f"reconnect: {again!r}"
                    raise GaveUp(self.gave_up) from again
            elif self.client._closed is not None:  # a lost GET: the session itself lives on
                self.client._closed = None
                self.client.connected = True
            return kind

    # -- the run -----------------------------------------------------------------------------------
    def run(self) -> None:
        import gevent

        try:
            self.open()
        except BaseException as exc:  # noqa: B036 (a greenlet reports, never raises)
            self.failed("connect", exc)
            self.gave_up = f"connect: {exc!r}"
            self.done_at = time.monotonic()
            self.shared.ready()
            return
        self.shared.ready()
        self.shared.start.wait()
        poller = gevent.spawn(self.poll)
        try:
            self.send_all()
            self.done_at = time.monotonic()
            self.settle()
        except BaseException as exc:  # noqa: B036
            self.gave_up = self.gave_up or f"{exc!r}"
        finally:
            if self.done_at is None:
                self.done_at = time.monotonic()
            poller.kill(block=True, timeout=5)
            self.client.disconnect()
            self.ended = time.time()

    def poll(self) -> None:
        while self.gave_up is None:
            with self.lock:  # never while a reconnect is under way
                client, generation = self.client, self.generation
            left = self.shared.deadline - time.monotonic()
            if left <= 0:
                self.gave_up = "the run's deadline passed"
                return
            try:
                self.take(client.receive(timeout=min(0.5, left)))
            except TimeoutError:
                continue
            except Exception as exc:
                try:
                    self.trouble("receive", exc, generation)
                except GaveUp:
                    return

    def send_all(self) -> None:
        for seq in range(self.shared.messages):
            if self.gave_up:
                raise GaveUp(self.gave_up)
            with self.lock:  # never while a reconnect is under way
                client, generation = self.client, self.generation
                self.attempted = seq + 1
            try:
                client.send({"c": self.cid, "s": seq, "ch": self.channel})
            except Exception as exc:
                if self.trouble("send", exc, generation) == "transport":
                    self.uncertain.append(seq)  # served or not: nobody can tell
            finally:
                self.shared.progress()

    def echoed_all(self) -> bool:
        last = self.attempted - 1
        return last in self.got[self.cid] or last in self.uncertain or last < self.resumed_at

    def settled(self) -> bool:
        """Done sending and got its own last echo (or gave up, or waited long enough)."""
        return self.done_at is not None and (self.gave_up is not None or self.echoed_all()
                                             or time.monotonic() > self.done_at + self.GRACE)

    def settle(self) -> None:
        """Wait (the poller receives) until the own last echo and every other
        member's last confirmed message arrived, or the grace time is over."""
        import gevent

        others = [m for m in self.shared.groups[self.channel] if m is not self]
        while self.gave_up is None:
            if self.settled() and all(m.settled() for m in others) and all(
                    not m.confirmed or m.confirmed[-1] in self.got[m.cid] for m in others):
                return
            ends = [m.done_at for m in others] + [self.done_at]
            if None not in ends and time.monotonic() > max(ends) + self.GRACE:
                return
            if time.monotonic() > self.shared.deadline:
                raise TimeoutError("the run's deadline passed")
            gevent.sleep(0.2)

    def summary(self) -> Dict[str, Any]:
        return {"cid": self.cid, "transport": self.transport, "channel": self.channel,
                "sessions": self.sessions, "failures": self.failures, "received": self.received,
                "confirmed": self.confirmed, "uncertain": self.uncertain, "attempted": self.attempted,
                "resumed_at": self.resumed_at, "strangers": [repr(s)[:100] for s in self.strangers[:5]],
                "gave_up": self.gave_up, "ended": getattr(self, "ended", None)}


class Load:
    """What the clients of one run share: the config, the start line, progress."""

    def __init__(self, config: Dict[str, Any]):
        import gevent.event

        self.url = config["url"]
        self.messages = config["messages"]
        self.timeout = config.get("request_timeout", 30.0)
        self.tolerate = config.get("tolerate_failures", False)
        self.deadline = time.monotonic() + config["deadline"]
        self.start = gevent.event.Event()
        self.clients: List[LoadClient] = []
        self.groups: Dict[str, List[LoadClient]] = defaultdict(list)
        cid = 0
        for transport, count in config["clients"].items():
            for _ in range(count):
                self.clients.append(LoadClient(self, cid, transport, ""))
                cid += 1
        # channels of ``group`` members, the transports mixed in each
        order = sorted(self.clients, key=lambda c: (c.cid % (len(self.clients) // 2 or 1), c.cid))
        for n, client in enumerate(order):
            client.channel = f"{config.get('prefix', 'ch')}-{n // config['group']}"
            self.groups[client.channel].append(client)
        self._ready = 0
        self._sent = 0
        self._half = len(self.clients) * self.messages // 2

    def ready(self) -> None:
        self._ready += 1
        if self._ready == len(self.clients):
            owners = Counter(str(c.sessions[0]["pid"]) for c in self.clients if c.sessions)
            emit({"event": "subscribed", "t": time.time(), "owners": dict(owners)})
            self.start.set()

    def progress(self) -> None:
        self._sent += 1
        if self._sent == self._half:
            emit({"event": "half", "t": time.time()})


def emit(line: Dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def drive(config: Dict[str, Any]) -> None:
    """Run the clients of ``config`` and print the report.

    ``config``: ``url``; ``clients`` ({transport: count}); ``group`` (clients a
    channel); ``messages`` (each client sends); ``deadline`` (seconds for the
    whole run); ``tolerate_failures`` (reconnect once after an unknown session,
    go on after a lost request: the kill runs); ``prefix`` of the channel names.
    Prints ``subscribed`` once every client holds its channel, ``half`` when
    half the messages were sent, then ``report``.
    """
    import gevent

    sys.path.insert(0, HERE)
    load = Load(config)
    began = time.monotonic()
    greenlets = [gevent.spawn(client.run) for client in load.clients]
    stall = [0.0]

    def watch() -> None:  # how late this process's own loop got (a starved driver, not a slow server)
        while True:
            before = time.monotonic()
            gevent.sleep(0.05)
            stall[0] = max(stall[0], time.monotonic() - before - 0.05)

    watcher = gevent.spawn(watch)
    gevent.joinall(greenlets, timeout=config["deadline"] + 5)
    watcher.kill()
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    emit({"event": "report", "elapsed": round(time.monotonic() - began, 2),
          "cpu": round(usage.ru_utime + usage.ru_stime, 2), "loop_stall": round(stall[0], 3),
          "unfinished": sum(1 for g in greenlets if not g.dead),
          "clients": [client.summary() for client in load.clients]})
    gevent.killall(greenlets, timeout=5)


# -- what the report says -----------------------------------------------------------------------

def check(report: Dict[str, Any], messages: int, victims: Tuple[int, ...] = ()) -> Dict[str, Any]:
    """Count every problem of a run; ``victims``: pids of killed workers.

    A client is a victim when its first session lived in a killed worker.
    Every other client: no unknown-session answer, no reconnect, and from
    every member of its channel (itself included) every message it should
    get, once, in order: all the seqs of a sender but those whose POST got no
    answer at all (served or not, nobody can tell), and of a victim sender
    the seqs its own echo confirmed (an unanswered POST may also arrive
    after later ones: its order is not checked).  The one exception: a client whose long
    poll got no answer at all (the killed worker held its connection: nginx's
    502, or a reset under gunicorn) may miss what that poll carried: counted
    apart, not a problem.  A victim: exactly one unknown-session
    answer and one reconnect, then the echo of everything it sent on its new
    session; no duplicate, nothing out of order (it misses what its channel
    said while it had no session).
    """
    clients = {c["cid"]: c for c in report["clients"]}
    groups: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    for c in clients.values():
        groups[c["channel"]].append(c)
    is_victim = {cid: bool(c["sessions"]) and c["sessions"][0]["pid"] in victims
                 for cid, c in clients.items()}
    totals: Counter = Counter()
    problems: List[str] = []

    def problem(kind: str, cid: int, detail: str) -> None:
        totals[kind] += 1
        if len(problems) < 20:
            problems.append(f"client {cid} ({clients[cid]['transport']}): {kind}: {detail}")

    def expected_from(m: Dict[str, Any]) -> set:
        if is_victim[m["cid"]]:
            return set(m["confirmed"])
        return set(range(messages)) - set(m["uncertain"])

    for cid, c in clients.items():
        kinds = Counter(f["kind"] for f in c["failures"])
        totals["requests without an answer"] += kinds["transport"]
        if c["gave_up"]:
            problem("gave up", cid, c["gave_up"] + f"; last failures {c['failures'][-3:]}")
        if is_victim[cid]:
            totals["victims"] += 1
            if kinds["unknown"] != 1 or len(c["sessions"]) != 2:
                problem("victim not reconnected exactly once", cid,
                        f"{kinds['unknown']} unknown-session answers, {len(c['sessions'])} sessions")
        else:
            totals["unknown-session answers"] += kinds["unknown"]
            totals["reconnects"] += max(0, len(c["sessions"]) - 1)
            if kinds["unknown"]:
                problem("unknown session", cid, str([f for f in c["failures"] if f["kind"] == "unknown"][:2]))
        if kinds["timeout"]:
            problem("timeout", cid, str([f for f in c["failures"] if f["kind"] == "timeout"][:1]))
        by_sender: Dict[int, List[int]] = defaultdict(list)
        for sender, seq in c["received"]:
            by_sender[sender].append(seq)
        for sender, seqs in by_sender.items():
            if len(set(seqs)) != len(seqs):
                totals["duplicated"] += len(seqs) - len(set(seqs))
                twice = sorted(s for s, n in Counter(seqs).items() if n > 1)
                problem("duplicated", cid, f"from {sender}: {twice}")
            # A message whose POST got no answer (its forwarding worker died
            # with it) may still reach the owner after later ones: no order
            # is promised for it, as no delivery is; the rest keep theirs.
            uncertain = set(clients[sender]["uncertain"]) if sender in clients else set()
            late = [seq for seq in seqs if seq in uncertain]
            if late:
                totals["uncertain POSTs delivered"] += len(late)
            ordered = [seq for seq in seqs if seq not in uncertain]
            out_of_order = sum(1 for a, b in zip(ordered, ordered[1:], strict=False) if b < a)
            if out_of_order:
                totals["reordered"] += out_of_order
                problem("reordered", cid, f"from {sender}: {seqs}")
        if c["strangers"]:
            problem("unexpected messages", cid, str(c["strangers"]))
        lost_poll = any(f["kind"] == "transport" and f["op"] == "receive" for f in c["failures"])
        for m in groups[c["channel"]]:
            if is_victim[cid]:
                if m["cid"] != cid:
                    continue  # it had no session for a while: what it missed is not known
                expected = set(range(c["resumed_at"], c["attempted"])) - set(c["uncertain"])
            else:
                expected = expected_from(m)
            missing = expected - set(by_sender.get(m["cid"], ()))
            if missing and lost_poll:
                # its long poll died with the worker holding it, maybe carrying these
                totals["lost with a poll that died"] += len(missing)
            elif missing:
                totals["lost"] += len(missing)
                problem("lost", cid, f"{len(missing)} from {m['cid']}: {sorted(missing)[:10]}")
    totals["clients"] = len(clients)
    totals["messages received"] = sum(len(c["received"]) for c in clients.values())
    return {"totals": dict(totals), "problems": problems}


def forwarding(cluster: NginxCluster, report: Dict[str, Any]) -> Dict[str, int]:
    """From nginx's log: requests of known sessions served by their owner
    (local) or by another worker (which forwarded them)."""
    owner = {s["sid"]: s["pid"] for c in report["clients"] for s in c["sessions"] if s["pid"]}
    pid_of_port = {f"127.0.0.1:{port}": pid for port, pid in cluster.port_of().items()}
    counts: Counter = Counter()
    for entry in cluster.access_log():
        match = re.search(r"/(?:xhr|jsonp)-polling/(\d+)/|[?&]sid=([^&]+)", entry["uri"])
        sid = match and (match.group(1) or match.group(2))
        if not sid or sid not in owner or not entry["upstreams"]:
            continue
        served_by = pid_of_port.get(entry["upstreams"][-1])
        counts["local" if served_by == owner[sid] else "forwarded"] += 1
        if len(entry["upstreams"]) > 1:
            counts["retried by nginx"] += 1
    return dict(counts)


def sessions_spread(cluster: NginxCluster, sid: str) -> Dict[str, int]:
    """How many requests of session ``sid`` each upstream served (nginx's log)."""
    return dict(Counter(e["upstreams"][-1] for e in cluster.access_log()
                        if sid in e["uri"] and e["upstreams"]))


def iter_failures(report: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    for c in report["clients"]:
        for f in c["failures"]:
            yield dict(f, cid=c["cid"])


if __name__ == "__main__":
    drive(json.loads(sys.stdin.read()))
