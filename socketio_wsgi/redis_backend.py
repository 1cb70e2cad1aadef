"""A channel backend that spans processes and machines through Redis.

Every process keeps its own sessions in a :class:`MemoryBackend` and delivers
to them directly; Redis carries what other processes must deliver, and holds
who is where so that any process can count the recipients of a message:

``<prefix>:sessions``            hash, session id -> id of the owning process
``<prefix>:ch:<channel>``        set of the session ids holding ``channel``
``<prefix>:procs``               set of serving process ids
``<prefix>:alive:<process>``     expires after ``ttl`` unless the process renews it
``<prefix>:proc:<process>:sessions`` / ``:subs``  what that process registered,
                                 so its entries can be removed once it is dead
``<prefix>:links``               hash, Engine.IO 4 polling connection id -> process
``<prefix>:bus`` / ``<prefix>:to:<process>``  pub/sub channels for broadcasts
                                 and for sends to one session
``<prefix>:fwd:<process>``       pub/sub channel of forwarded HTTP requests, their
                                 answers and cancels (:mod:`socketio_wsgi.forwarding`)

Messages are JSON with a version field (never pickle): whoever can write to
Redis can make clients receive text, but cannot run code in the servers.

A serving process runs two greenlets, started by its first session: the
*listener* reads pub/sub and delivers locally; the *keeper* writes membership
changes in order, renews the liveness key, removes dead processes' entries and
re-registers everything after Redis comes back.  A process that serves no
sockets (``set_backend(url)``) runs neither and may use plain threads.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket as _socket
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import gevent
import gevent.event
import gevent.lock
import redis
from gevent import monkey
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.exceptions import RedisError
from redis.retry import Retry

from .channels import Deliverable, MemoryBackend
from .errors import ConfigurationError
from .outbound import Emission, Frame, from_json_args, to_json_args
from .resp import ReplyError, RespConnection

__all__ = ["RedisBackend", "encode_message", "decode_message", "MESSAGE_VERSION"]

log = logging.getLogger("socketio_wsgi.redis")

MESSAGE_VERSION = 1
BACKOFF_MIN = 0.1
BACKOFF_MAX = 5.0
READ_WAIT = 1.0
CHUNK = 1000
#: Owners of forwarded ids remembered (each found by one lookup in Redis).
OWNERS_CACHED = 10_000
_get_ident = monkey.get_original("_thread", "get_ident")
_FAILURES = (RedisError, OSError)
#: What forwarding's own connections may raise besides (an error reply, bytes
#: that are not RESP).
_FORWARD_FAILURES = (RedisError, OSError, ReplyError, ValueError)

# Shared Lua: remove a process's registrations; remove those of every process
# whose liveness key has expired.  ARGV[1] is always the key prefix.
_REAP = """
local p = ARGV[1]
local function reap(id)
  local own = p .. ':proc:' .. id .. ':sessions'
  local subs = p .. ':proc:' .. id .. ':subs'
  local links = p .. ':proc:' .. id .. ':links'
  for _, sid in ipairs(redis.call('SMEMBERS', own)) do
    redis.call('HDEL', p .. ':sessions', sid)
  end
  for _, sid in ipairs(redis.call('SMEMBERS', links)) do
    redis.call('HDEL', p .. ':links', sid)
  end
  for _, item in ipairs(redis.call('SMEMBERS', subs)) do
    local cut = string.find(item, '\\n', 1, true)
    if cut then
      redis.call('SREM', p .. ':ch:' .. string.sub(item, cut + 1), string.sub(item, 1, cut - 1))
    end
  end
  redis.call('DEL', own, subs, links, p .. ':alive:' .. id)
  redis.call('SREM', p .. ':procs', id)
end
local function reap_dead()
  for _, id in ipairs(redis.call('SMEMBERS', p .. ':procs')) do
    if redis.call('EXISTS', p .. ':alive:' .. id) == 0 then reap(id) end
  end
end
"""

# KEYS: the channel sets (none: every session).  ARGV: prefix, bus, message, exclude.
# Counts the distinct recipients, then publishes if there are any; 0 when no
# process is listening.
_PUBLISH = (
    _REAP
    + """
reap_dead()
local exclude = ARGV[4]
local n = 0
if #KEYS == 0 then
  n = redis.call('HLEN', p .. ':sessions')
  if exclude ~= '' and redis.call('HEXISTS', p .. ':sessions', exclude) == 1 then n = n - 1 end
elseif #KEYS == 1 then
  n = redis.call('SCARD', KEYS[1])
  if exclude ~= '' and redis.call('SISMEMBER', KEYS[1], exclude) == 1 then n = n - 1 end
else
  local seen = {}
  for _, key in ipairs(KEYS) do
    for _, sid in ipairs(redis.call('SMEMBERS', key)) do
      if sid ~= exclude and not seen[sid] then
        seen[sid] = true
        n = n + 1
      end
    end
  end
end
if n > 0 and redis.call('PUBLISH', ARGV[2], ARGV[3]) == 0 then return 0 end
return n
"""
)

# ARGV: prefix, session id, message.  1 if the owning process received it.
_SEND = (
    _REAP
    + """
reap_dead()
local owner = redis.call('HGET', p .. ':sessions', ARGV[2])
if not owner then return 0 end
if redis.call('PUBLISH', p .. ':to:' .. owner, ARGV[3]) > 0 then return 1 end
return 0
"""
)

# KEYS: the hash of owners (sessions or links).  ARGV: id, forward channel
# prefix, message.  The owner's process id if its listener received the
# message; nil when there is no owner or it is not listening (dead).
_FORWARD = """
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if not owner then return false end
if redis.call('PUBLISH', ARGV[2] .. owner, ARGV[3]) > 0 then return owner end
return false
"""

# ARGV: prefix, process id, ttl in ms.  1 if the process had been forgotten.
_HEARTBEAT = (
    _REAP
    + """
redis.call('SET', p .. ':alive:' .. ARGV[2], '1', 'PX', ARGV[3])
local added = redis.call('SADD', p .. ':procs', ARGV[2])
reap_dead()
return added
"""
)

# ARGV: prefix, process id.  Forget one process's registrations.
_LEAVE = _REAP + "\nreap(ARGV[2])\nreturn 1\n"


# -- wire format -------------------------------------------------------------


def encode_message(
    kind: str,
    origin: str,
    frame: Frame,
    channels: Optional[Sequence[str]] = None,
    exclude: Optional[str] = None,
    target: Optional[str] = None,
) -> bytes:
    """One pub/sub message: ``kind`` is ``"pub"`` (to ``channels``, or everyone
    when None, minus ``exclude``) or ``"send"`` (to session ``target``)."""
    body: Dict[str, Any] = {"v": MESSAGE_VERSION, "k": kind, "o": origin}
    if isinstance(frame, Emission):
        # Both generations: the 0.6 text, and the event and args that each
        # receiving process encodes once for its Socket.IO 4 clients.
        body["f"] = frame.v06().decode("utf-8", "surrogatepass")
        body["e"] = frame.event
        body["a"] = to_json_args(frame.args)
    else:
        body["f"] = frame.decode("utf-8", "surrogatepass")
    if kind == "pub":
        body["c"] = None if channels is None else list(channels)
        body["x"] = exclude
    else:
        body["s"] = target
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


def _is_text_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def decode_message(data: bytes) -> Dict[str, Any]:
    """The checked fields of a message; ValueError for anything else, so a
    stranger's bytes on the channel are dropped, never executed."""
    try:
        body = json.loads(data.decode("utf-8", "surrogatepass"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("not a JSON message") from None
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    if type(body.get("v")) is not int or body["v"] != MESSAGE_VERSION:
        raise ValueError(f"unsupported message version {body.get('v')!r}")
    kind = body.get("k")
    if not isinstance(body.get("o"), str) or not isinstance(body.get("f"), str):
        raise ValueError("origin and frame must be strings")
    if "a" in body:
        event = body.get("e")
        if not isinstance(body["a"], list) or not (event is None or isinstance(event, str)):
            raise ValueError("an emission has a list of args and a str (or null) event")
    if kind == "pub":
        channels, exclude = body.get("c"), body.get("x")
        if not (channels is None or _is_text_list(channels)):
            raise ValueError("channels must be null or a list of strings")
        if not (exclude is None or isinstance(exclude, str)):
            raise ValueError("exclude must be null or a string")
    elif kind == "send":
        if not isinstance(body.get("s"), str):
            raise ValueError("a send needs a target session id")
    else:
        raise ValueError(f"unknown message kind {kind!r}")
    return body


# -- helpers -----------------------------------------------------------------


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(parts.password, "***", 1)))


def _split_url(url: str) -> Tuple[str, Dict[str, str]]:
    """Our query parameters (``prefix``, ``ttl``) apart from redis-py's."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in ("prefix", "ttl")}
    rest = [(k, v) for k, v in query if k not in ours]
    return urlunsplit(parts._replace(query=urlencode(rest))), ours


def _process_id() -> str:
    return f"{_socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _io(func: Any, *args: Any) -> Any:
    """Run a blocking redis-py call from a greenlet without stalling the hub:
    directly when sockets are gevent-patched, else in the hub's thread pool."""
    if monkey.is_module_patched("socket"):
        return func(*args)
    return gevent.get_hub().threadpool.apply(func, args)


class RedisBackend:
    """Channels, broadcasts and out-of-band sends across processes via Redis.

    ``url``: ``redis://[:password@]host:port/db``, ``rediss://...`` or
    ``unix:///path?db=0``, optionally with ``prefix=`` (namespace of every key
    and pub/sub channel, default ``socketio``) and ``ttl=`` (seconds a dead
    process's sessions keep counting, default 15) in the query.  Keyword
    arguments override the query.  Raises :class:`ConfigurationError` when
    Redis cannot be reached.
    """

    name = "redis"

    def __init__(
        self,
        url: str,
        prefix: Optional[str] = None,
        ttl: Optional[float] = None,
        socket_timeout: float = 5.0,
        max_connections: int = 50,
    ):
        redis_url, ours = _split_url(url)
        # Forwarding speaks to Redis directly over plain TCP or unix sockets.
        self._address: Optional[dict] = (
            None if urlsplit(redis_url).scheme == "rediss" else dict(parse_url(redis_url))
        )
        self.url = _redacted(url)
        self.prefix = prefix if prefix is not None else ours.get("prefix", "socketio")
        if not self.prefix:
            raise ConfigurationError("the Redis backend prefix may not be empty")
        try:
            self.ttl = float(ttl if ttl is not None else ours.get("ttl", 15.0))
        except ValueError:
            raise ConfigurationError(f"ttl must be a number of seconds, got {ours.get('ttl')!r}") from None
        if self.ttl < 1.0:
            raise ConfigurationError(f"ttl must be at least 1 second, got {self.ttl}")
        self.socket_timeout = socket_timeout
        try:
            pool = redis.BlockingConnectionPool.from_url(
                redis_url,
                max_connections=max_connections,
                timeout=socket_timeout,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                socket_keepalive=True,
                health_check_interval=self.ttl,
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as exc:
            raise ConfigurationError(f"bad Redis URL {self.url!r}: {exc}") from None
        self.redis = redis.Redis(connection_pool=pool)
        try:
            self.redis.ping()
        except _FAILURES as exc:
            pool.disconnect()
            raise ConfigurationError(
                f"cannot reach Redis for the channel backend at {self.url}: {exc} "
                "(is redis-server running and the URL right?)"
            ) from None

        p = self.prefix.encode("utf-8", "surrogatepass")
        self._p = p
        self._k_sessions = p + b":sessions"
        self._k_ch = p + b":ch:"
        self._bus = p + b":bus"
        self._publish_script = self.redis.register_script(_PUBLISH)
        self._send_script = self.redis.register_script(_SEND)
        self._forward_script = self.redis.register_script(_FORWARD)
        self._k_links = p + b":links"
        self._k_fwd = p + b":fwd:"
        self._heartbeat_script = self.redis.register_script(_HEARTBEAT)

        self.local = MemoryBackend()
        #: Engine.IO 4 polling connections of this process (see :meth:`add_link`).
        self.links: Set[str] = set()
        self._on_forwarded: Optional[Callable[[bytes], None]] = None
        self.process_id = _process_id()  # renewed at start, after any fork
        self._started = False
        self._closed = False
        self._subscribed = False
        self._down = True  # membership not (yet, or no longer) mirrored in Redis
        self._dirty = True  # a full re-registration is needed
        self._lost_at: Optional[float] = None
        self._pending: List[tuple] = []
        self._batch: Optional[gevent.event.Event] = None
        self._wake: Optional[gevent.event.Event] = None
        self._hub: Any = None
        self._greenlets: List[gevent.Greenlet] = []
        self._ready = gevent.event.Event()  # set once a start has subscribed and registered
        # Forwarding's hot path: one connection kept for its PUBLISHes, and
        # the owners found so far (a lookup in Redis only for a new id).
        self._fast: Any = None
        self._fast_lock = gevent.lock.Semaphore()
        self._owners: Dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<RedisBackend {self.url} prefix={self.prefix!r} {self.state}>"

    @property
    def state(self) -> str:
        """``ok``, or ``down`` while a serving process cannot reach Redis."""
        if self._closed:
            return "closed"
        return "down" if self._started and (self._down or not self._subscribed) else "ok"

    # -- keys --------------------------------------------------------------
    def _channel_key(self, channel: str) -> bytes:
        return self._k_ch + channel.encode("utf-8", "surrogatepass")

    @staticmethod
    def _sub_member(session_id: str, channel: str) -> bytes:
        return session_id.encode() + b"\n" + channel.encode("utf-8", "surrogatepass")

    def _own(self, what: str) -> bytes:
        return self._p + f":proc:{self.process_id}:{what}".encode()

    # -- the Backend interface ---------------------------------------------
    def _wait_started(self) -> None:
        """Start serving, or wait (bounded) until another greenlet's start has
        subscribed and registered: until then nothing is reachable."""
        if not self._started:
            self._start()
        elif not self._ready.is_set():
            self._ready.wait(self.socket_timeout)

    def add_session(self, session: Deliverable) -> None:
        self.local.add_session(session)
        if not self._started:
            self._start()  # registers every local session, this one included
            return
        self._wait_started()  # (a start under way registers this one, or the keeper will)
        sid = session.session_id
        self._mirror(("HSET", self._k_sessions, sid, self.process_id), ("SADD", self._own("sessions"), sid))

    def remove_session(self, session_id: str) -> None:
        self.local.remove_session(session_id)
        self._mirror(("HDEL", self._k_sessions, session_id), ("SREM", self._own("sessions"), session_id))

    def subscribe(self, session_id: str, channel: str) -> bool:
        added = self.local.subscribe(session_id, channel)
        if added:
            self._mirror(
                ("SADD", self._channel_key(channel), session_id),
                ("SADD", self._own("subs"), self._sub_member(session_id, channel)),
            )
        return added

    def unsubscribe(self, session_id: str, channel: str) -> bool:
        removed = self.local.unsubscribe(session_id, channel)
        if removed:
            self._mirror(
                ("SREM", self._channel_key(channel), session_id),
                ("SREM", self._own("subs"), self._sub_member(session_id, channel)),
            )
        return removed

    def publish(
        self, frame: Frame, channels: Optional[Iterable[str]] = None, exclude: Optional[str] = None
    ) -> int:
        """Deliver to local recipients at once and to other processes' through
        Redis.  Returns how many sessions, on all live processes, held one of
        ``channels`` (or existed, for ``channels=None``) minus ``exclude``, as
        Redis counted them when the message was published — or this process's
        deliveries alone while a serving process cannot reach Redis."""
        names: Optional[Tuple[str, ...]] = None
        if channels is not None:
            names = (channels,) if isinstance(channels, str) else tuple(channels)
            if not names:
                return 0
        reached = self.local.publish(frame, names, exclude)
        if self._started and self._down:
            return reached
        message = encode_message("pub", self.process_id, frame, names, exclude)
        keys = [] if names is None else [self._channel_key(c) for c in names]
        try:
            counted = self._publish_script(keys=keys, args=[self._p, self._bus, message, exclude or ""])
        except _FAILURES as exc:
            if not self._started:
                raise  # a process that serves no sockets has only Redis
            self._lost(exc)
            return reached
        return max(int(counted), reached)

    def send(self, session_id: str, frame: Frame) -> bool:
        """True if the session is here and took the frame, or its (live)
        process received it through Redis."""
        if session_id in self.local.sessions:
            return self.local.send(session_id, frame)
        if self._started and self._down:
            return False
        message = encode_message("send", self.process_id, frame, target=session_id)
        try:
            return bool(self._send_script(keys=[], args=[self._p, session_id, message]))
        except _FAILURES as exc:
            if not self._started:
                raise
            self._lost(exc)
            return False

    # -- forwarding (see socketio_wsgi.forwarding) ----------------------------
    def add_link(self, link_id: str) -> None:
        """Register an Engine.IO 4 polling connection of this process, so that
        its requests reaching other processes are forwarded here."""
        self.links.add(link_id)
        if not self._started:
            self._start()
            return
        self._wait_started()
        self._mirror(("HSET", self._k_links, link_id, self.process_id), ("SADD", self._own("links"), link_id))

    def remove_link(self, link_id: str) -> None:
        if link_id not in self.links:
            return
        self.links.discard(link_id)
        # Not waited for (it may run in a hub callback): a request that still
        # finds the stale entry reaches us and is answered as unknown.
        self._mirror(("HDEL", self._k_links, link_id), ("SREM", self._own("links"), link_id), wait=False)

    def listen(self) -> None:
        """Start serving (subscribed, registered) if not yet: a process must
        listen before it forwards, since answers come back on its own
        channel, named after :attr:`process_id` (which starting renews)."""
        self._wait_started()

    def serve_forwarded(self, callback: Callable[[bytes], None]) -> None:
        """Hand every message on this process's forwarding channel to
        ``callback`` (from the listener greenlet: it must not block)."""
        self._on_forwarded = callback

    def forward(self, kind: str, route_id: str, data: bytes) -> Optional[str]:
        """Publish ``data`` to the process that owns ``route_id`` (``kind``:
        ``"session"`` for a 0.6 session, ``"link"`` for an Engine.IO 4
        connection).  Returns that process's id, or None when no live process
        owns it (or Redis cannot be reached): one round trip either way."""
        self.listen()
        if self._down:
            return None
        owners = self._owners
        known = owners.get(route_id)
        try:
            if known is not None:
                if self._publish_fast(self._k_fwd + known.encode(), data):
                    return known
                owners.pop(route_id, None)  # that process is gone
                return None
            key = self._k_sessions if kind == "session" else self._k_links
            owner = _io(self._forward_script, [key], [route_id, self._k_fwd, data])
        except _FORWARD_FAILURES as exc:
            self._lost(exc)
            return None
        if owner is None:
            return None
        if len(owners) >= OWNERS_CACHED:
            del owners[next(iter(owners))]  # the oldest
        known = owners[route_id] = owner.decode("utf-8", "replace")
        return known

    def is_alive(self, process_id: str) -> bool:
        """Whether that process renewed its liveness key within ``ttl``."""
        try:
            return bool(_io(self.redis.exists, self._p + f":alive:{process_id}".encode()))
        except _FORWARD_FAILURES:
            return False

    def reply(self, process_id: str, data: bytes) -> bool:
        """Publish ``data`` on another process's forwarding channel; False if
        nobody received it (that process is gone, or Redis is)."""
        try:
            return bool(self._publish_fast(self._k_fwd + process_id.encode(), data))
        except _FORWARD_FAILURES as exc:
            self._lost(exc)
            return False

    def _publish_fast(self, channel: bytes, data: bytes) -> int:
        """PUBLISH on the connection kept for forwarding: without the client's
        pool and per-command machinery, about a third of the CPU per call."""
        with self._fast_lock:
            conn = self._fast
            if conn is None:
                if self._address is None:  # TLS: redis-py's connection
                    conn = self._fast = self.redis.connection_pool.make_connection()
                else:
                    conn = self._fast = RespConnection(self._address, self.socket_timeout)
            try:
                if isinstance(conn, RespConnection):
                    return int(_io(conn.call, b"PUBLISH", channel, data))
                _io(conn.send_packed_command, conn.pack_command("PUBLISH", channel, data))
                return int(_io(conn.read_response))
            except BaseException:
                self._fast = None
                if isinstance(conn, RespConnection):
                    conn.close()
                else:
                    conn.disconnect()
                raise

    def session_count(self) -> int:
        """Sessions of this process (see :meth:`total_sessions` for all)."""
        return self.local.session_count()

    def channel_sizes(self) -> Dict[str, int]:
        """Channel sizes in this process (see :meth:`channel_size` for all)."""
        return self.local.channel_sizes()

    def total_sessions(self) -> int:
        """Sessions registered in Redis by every process."""
        return int(self.redis.hlen(self._k_sessions))

    def channel_size(self, channel: str) -> int:
        """Holders of ``channel`` registered in Redis by every process."""
        return int(self.redis.scard(self._channel_key(channel)))

    def close(self) -> None:
        """Stop the greenlets, forget this process in Redis, drop connections."""
        if self._closed:
            return
        self._closed = True
        greenlets, self._greenlets = self._greenlets, []
        if greenlets:
            if self._hub is not None and self._hub.thread_ident != _get_ident():
                self._hub.loop.run_callback_threadsafe(lambda: gevent.killall(greenlets, block=False))
            else:
                gevent.killall(greenlets, block=True, timeout=2)
        self._release()
        if self._started:
            try:
                self.redis.eval(_LEAVE, 0, self._p, self.process_id)
            except _FAILURES as exc:
                log.warning("could not unregister process %s from Redis: %s", self.process_id, exc)
        self.local.close()
        fast, self._fast = self._fast, None
        if isinstance(fast, RespConnection):
            fast.close()
        elif fast is not None:
            fast.disconnect()
        self.redis.connection_pool.disconnect()

    # -- membership mirror (serving processes) ------------------------------
    def _start(self) -> None:
        """First session: subscribe and register synchronously, so the first
        client is reachable from other processes once its connect completes."""
        self._started = True
        self._ready = ready = gevent.event.Event()
        self.process_id = _process_id()
        self._hub = gevent.get_hub()
        self._wake = gevent.event.Event()
        self._batch = gevent.event.Event()
        pubsub = None
        forwarded = None
        try:
            pubsub = self._subscribe()
            if self._address is not None:
                forwarded = self._subscribe_forwarded()
            self._resync()
        except _FAILURES as exc:
            self._lost(exc)
        finally:
            ready.set()
        self._greenlets = [gevent.spawn(self._listen, pubsub), gevent.spawn(self._keep)]
        if self._address is not None:
            self._greenlets.append(gevent.spawn(self._listen_forwarded, forwarded))
        log.info("Redis backend %s: process %s serving", self.url, self.process_id)

    def _mirror(self, *commands: tuple, wait: bool = True) -> None:
        """Queue membership writes for the keeper and (``wait``) wait until
        they are in Redis, so events that follow (``on_subscribe``) see them."""
        if not self._started or self._closed:
            return
        if self._down:
            self._dirty = True  # re-registration will include this change
            return
        self._pending.extend(commands)
        batch, wake = self._batch, self._wake
        assert batch is not None and wake is not None  # set up by _start()
        wake.set()
        if wait:
            batch.wait(self.socket_timeout)

    def _release(self) -> None:
        """Wake everyone waiting on queued writes (done, dropped or failed)."""
        if self._batch is not None:
            batch, self._batch = self._batch, gevent.event.Event()
            batch.set()

    def _lost(self, exc: BaseException) -> None:
        was_down = self._down
        if not was_down or self._lost_at is None:
            self._lost_at = time.monotonic()
            log.warning(
                "Redis backend %s unreachable (%s): serving this process's clients only; "
                "reconnecting with back-off",
                self.url,
                exc,
            )
        self._down = True
        self._dirty = True
        self._pending = []
        self._release()
        if not was_down and self._wake is not None:
            self._wake.set()  # the keeper tries again now, then backs off

    def _resync(self) -> None:
        """Replace this process's registrations with its local state, atomically."""
        self._pending = []  # superseded by the snapshot below
        self._release()
        self._dirty = False
        was_down, self._down = self._down, False  # later writes queue behind the snapshot
        sessions = list(self.local.sessions)
        pid = self.process_id
        pipe = self.redis.pipeline(transaction=True)
        pipe.eval(_LEAVE, 0, self._p, pid)
        pipe.set(self._p + f":alive:{pid}".encode(), b"1", px=int(self.ttl * 1000))
        pipe.sadd(self._p + b":procs", pid)
        for start in range(0, len(sessions), CHUNK):
            chunk = sessions[start : start + CHUNK]
            pipe.hset(self._k_sessions, mapping={sid: pid for sid in chunk})
            pipe.sadd(self._own("sessions"), *chunk)
        links = list(self.links)
        for start in range(0, len(links), CHUNK):
            chunk = links[start : start + CHUNK]
            pipe.hset(self._k_links, mapping={sid: pid for sid in chunk})
            pipe.sadd(self._own("links"), *chunk)
        for channel, members in self.local.channels.items():
            sids = list(members)
            for start in range(0, len(sids), CHUNK):
                chunk = sids[start : start + CHUNK]
                pipe.sadd(self._channel_key(channel), *chunk)
                pipe.sadd(self._own("subs"), *[self._sub_member(sid, channel) for sid in chunk])
        try:
            _io(pipe.execute)
        except _FAILURES:
            self._down = True
            raise
        if was_down and self._lost_at is not None:
            log.warning(
                "Redis backend %s reachable again after %.1f s; re-registered %d sessions",
                self.url,
                time.monotonic() - self._lost_at,
                len(sessions),
            )
        self._lost_at = None

    def _subscribe(self) -> Any:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            channels = [self._bus, self._p + f":to:{self.process_id}".encode()]
            if self._address is None:  # TLS: forwarded requests come this way too
                channels.append(self._k_fwd + self.process_id.encode())
            _io(pubsub.subscribe, *channels)
        except BaseException:
            pubsub.close()
            raise
        self._subscribed = True
        return pubsub

    def _listen(self, pubsub: Any) -> None:
        """Read pub/sub and deliver locally; resubscribe with back-off."""
        delay = BACKOFF_MIN
        while not self._closed:
            try:
                if pubsub is None:
                    pubsub = self._subscribe()
                    self._dirty = True  # Redis may have lost everything: register again
                    if self._wake is not None:
                        self._wake.set()
                delay = BACKOFF_MIN
                while not self._closed:
                    message = _io(pubsub.get_message, True, READ_WAIT)
                    if message is not None and message.get("type") == "message":
                        if message["channel"].startswith(self._k_fwd):
                            self._forwarded(message["data"])
                        else:
                            self._deliver(message["data"])
            except Exception as exc:  # Redis errors, and anything unforeseen: never die
                if not isinstance(exc, _FAILURES):
                    log.exception("Redis backend listener failed; reconnecting")
                self._subscribed = False
                self._lost(exc)
                if pubsub is not None:
                    self._close_quietly(pubsub)
                    pubsub = None
                gevent.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
            finally:
                if self._closed and pubsub is not None:
                    self._subscribed = False
                    self._close_quietly(pubsub)

    def _subscribe_forwarded(self) -> RespConnection:
        """A connection of our own, subscribed to this process's forwarding
        channel (read without redis-py's pub/sub machinery)."""
        assert self._address is not None
        conn = RespConnection(self._address, self.socket_timeout)
        try:
            _io(conn.open)
            _io(conn.send, b"SUBSCRIBE", self._k_fwd + self.process_id.encode())
            confirmed = _io(conn.read)
            if not (isinstance(confirmed, list) and confirmed[:1] == [b"subscribe"]):
                raise RedisError(f"unexpected answer to SUBSCRIBE: {confirmed!r}"[:200])
        except BaseException:
            conn.close()
            raise
        return conn

    def _listen_forwarded(self, conn: Optional[RespConnection]) -> None:
        """Read forwarded requests, answers and cancels; resubscribe with
        back-off.  A quiet connection is pinged once per ``ttl`` and dropped
        if even that gets no answer (a Redis gone without a word)."""
        delay = BACKOFF_MIN
        while not self._closed:
            try:
                if conn is None:
                    conn = self._subscribe_forwarded()
                delay = BACKOFF_MIN
                pinged = False
                while not self._closed:
                    try:
                        reply = _io(conn.read, self.ttl)
                    except _socket.timeout:
                        if pinged:
                            raise
                        _io(conn.send, b"PING")
                        pinged = True
                        continue
                    pinged = False
                    if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
                        self._forwarded(reply[2])
            except Exception as exc:  # Redis errors, and anything unforeseen: never die
                if not isinstance(exc, _FORWARD_FAILURES):
                    log.exception("Redis backend forwarding listener failed; reconnecting")
                self._lost(exc)
                if conn is not None:
                    conn.close()
                    conn = None
                gevent.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
            finally:
                if self._closed and conn is not None:
                    conn.close()

    @staticmethod
    def _close_quietly(pubsub: Any) -> None:
        try:
            pubsub.close()
        except _FAILURES:
            pass

    def _deliver(self, data: bytes) -> None:
        try:
            body = decode_message(data)
        except ValueError as exc:
            log.warning("dropped a message from Redis (%d bytes): %s", len(data), exc)
            return
        frame: Frame = body["f"].encode("utf-8", "surrogatepass")
        try:
            if "a" in body:
                frame = Emission(body.get("e"), from_json_args(body["a"])).preset_v06(frame)  # type: ignore[arg-type]
            if body["k"] == "send":
                self.local.send(body["s"], frame)
            elif body["o"] != self.process_id:  # the publisher delivered its own locally
                self.local.publish(frame, body["c"], body["x"])
        except Exception:  # one bad delivery must not stop the listener
            log.exception("delivering a message from Redis failed")

    def _forwarded(self, data: bytes) -> None:
        callback = self._on_forwarded
        if callback is None:
            log.warning("dropped a forwarded request (%d bytes): nothing serves them here", len(data))
            return
        try:
            callback(data)
        except Exception:  # one bad message must not stop the listener
            log.exception("handling a forwarded request failed")

    def _keep(self) -> None:
        """Write queued membership changes in order; renew liveness; re-register."""
        beat = self.ttl / 3
        next_beat = 0.0
        delay = BACKOFF_MIN
        timeout: Optional[float] = 0.0
        wake = self._wake
        assert wake is not None  # set up by _start() before the keeper runs
        while not self._closed:
            wake.wait(timeout)
            wake.clear()
            if not self._subscribed:
                timeout = None  # the listener wakes us once it is subscribed again
                continue
            try:
                if self._dirty or self._down:
                    self._resync()
                if self._pending:
                    commands, self._pending = self._pending, []
                    batch, self._batch = self._batch, gevent.event.Event()
                    try:
                        pipe = self.redis.pipeline(transaction=False)
                        for command in commands:
                            pipe.execute_command(*command)
                        _io(pipe.execute)
                    finally:
                        if batch is not None:
                            batch.set()
                if time.monotonic() >= next_beat:
                    ms = int(self.ttl * 1000)
                    if _io(self._heartbeat_script, [], [self._p, self.process_id, ms]):
                        log.warning(
                            "Redis backend: process %s had been forgotten (stalled "
                            "longer than ttl?); registering again",
                            self.process_id,
                        )
                        self._dirty = True
                    next_beat = time.monotonic() + beat
                delay = BACKOFF_MIN
                timeout = 0.0 if (self._dirty or self._pending) else max(0.0, next_beat - time.monotonic())
            except Exception as exc:  # Redis errors, and anything unforeseen: never die
                if not isinstance(exc, _FAILURES):
                    log.exception("Redis backend keeper failed; registering again")
                self._lost(exc)
                timeout = delay
                delay = min(delay * 2, BACKOFF_MAX)
