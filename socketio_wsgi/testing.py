"""Test event handlers in process: no server, no browser, no network.

Two tools, for two sizes of test:

- :class:`FakeSocket` stands in for the ``socket`` argument when a test calls
  one handler function directly.  It records what the handler sends,
  broadcasts and subscribes to, and which peers a broadcast would reach.
- :class:`TestServer` runs the real dispatcher (:class:`~socketio_wsgi.engine.Engine`)
  in the test's own thread; its :meth:`TestServer.client` returns a
  :class:`TestClient` that connects, sends, subscribes and disconnects like a
  real client, so the real events fire in the real order.

The pytest fixtures in :mod:`socketio_wsgi.pytest_plugin` build on both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import sys
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Tuple, Union, cast

import gevent
import gevent.event

from . import api, sio5
from .client import ConnectionClosedError
from .config import Options
from .engine import Engine
from .errors import ConnectionRefused, ProtocolError
from .events import EVENT_NAMES, HandlerRegistry, current_registry, use_registry
from .outbound import Emission, Frame, split_records
from .protocol import Heartbeat, decode, encode, encode_json
from .request import WSGIRequest
from .session import Reason, Session, Waiter, new_session_id
from .socket import Socket, encode_frame_bytes
from .v4session import V4Session

__all__ = [
    "FakeSocket",
    "Peers",
    "Broadcast",
    "TestServer",
    "TestClient",
    "V4TestClient",
    "Received",
    "ConnectionClosedError",
    "copy_registry",
    "isolated_handlers",
]

REQUEST_KEY = "socketio_wsgi.testing.request"


def _messages(frame: Frame) -> List[Any]:
    """What a client decodes from ``frame``; heartbeats are transport noise."""
    if not isinstance(frame, bytes):
        frame = frame.v06()
    return [value for value in decode(frame.decode("utf-8")) if not isinstance(value, Heartbeat)]


# ---------------------------------------------------------------------------
# FakeSocket: one handler, called directly
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Broadcast:
    """One broadcast a :class:`FakeSocket` made.

    ``messages``: what each recipient decodes (``send`` semantics: a list
    becomes several messages, a number its text); ``channels``: the channels
    it targeted, ``None`` for everybody; ``recipients``: the session ids it
    reached, in peer order.
    """

    messages: List[Any]
    channels: Optional[List[str]]
    recipients: List[str]


class Peers:
    """Sockets that can reach one another, as the sessions of one server can.

    Members are :class:`FakeSocket` and :class:`TestClient` objects (anything
    with ``session_id``, ``channels`` and ``push(frame) -> bool``).
    """

    def __init__(self, members: Iterable[Any] = ()):
        self._members: List[Any] = []
        for member in members:
            self.add(member)

    def add(self, member: Any) -> None:
        if not any(m is member for m in self._members):
            self._members.append(member)

    def remove(self, member: Any) -> None:
        self._members = [m for m in self._members if m is not member]

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._members))

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, member: Any) -> bool:
        return any(m is member for m in self._members)


class _FakeSession:
    __slots__ = ("session_id",)

    def __init__(self, session_id: str):
        self.session_id = session_id

    def __repr__(self) -> str:
        return f"<FakeSession {self.session_id}>"


class FakeSocket:
    """A recording stand-in for :class:`~socketio_wsgi.socket.Socket`.

    Same methods, return values and encoding rules as the real socket, so a
    message that could not be sent raises :class:`~socketio_wsgi.ProtocolError`
    here too.  It runs no other handler: ``subscribe`` does not fire
    ``on_subscribe``, ``close`` fires no closing event (use :class:`TestClient`
    for that).

    - ``sent``: messages this socket's own client receives from ``send`` and
      ``send_and_broadcast*``, as the client decodes them;
    - ``broadcasts``: one :class:`Broadcast` per broadcast that went out;
    - ``received``: messages other peers' broadcasts delivered to this client;
    - ``channels``, ``connected``, ``closed``.

    ``peers`` decides who a broadcast reaches: a :class:`Peers` group shared
    with other sockets (``FakeSocket(peers=alice.peers)``), or an explicit
    list of peers.  By default the socket is alone.
    """

    def __init__(
        self,
        session_id: Optional[str] = None,
        channels: Iterable[str] = (),
        peers: Union[None, Peers, Iterable[Any]] = None,
    ):
        self.session = _FakeSession(str(session_id) if session_id is not None else new_session_id())
        self._channels: List[str] = []
        for channel in channels:
            if channel not in self._channels:
                self._channels.append(channel)
        self.sent: List[Any] = []
        self.received: List[Any] = []
        self.broadcasts: List[Broadcast] = []
        self.closed = False
        self.peers = peers if isinstance(peers, Peers) else Peers(peers or ())
        self.peers.add(self)

    def __repr__(self) -> str:
        return f"<FakeSocket {self.session_id}{' closed' if self.closed else ''}>"

    @property
    def session_id(self) -> str:
        return self.session.session_id

    @property
    def connected(self) -> bool:
        return not self.closed

    @property
    def channels(self) -> Tuple[str, ...]:
        return tuple(self._channels)

    #: A fake socket stands for a 0.6 client on "/" (named events arrive as
    #: their 0.6 form, ``{"$event": name, "args": [...]}``).
    protocol = "0.6"
    namespace = "/"
    recovered = False
    auth = None

    # -- the peer side: what other sockets' broadcasts deliver ---------------
    def push(self, frame: Frame) -> bool:
        """Receive an encoded frame from a peer; False once closed (as a session)."""
        if self.closed:
            return False
        self.received.extend(_messages(frame))
        return True

    # -- the Socket API ---------------------------------------------------
    def _deliver_self(self, frame: bytes) -> bool:
        if self.closed:
            return False
        self.sent.extend(_messages(frame))
        return True

    def _publish(self, frame: bytes, channels: Optional[List[str]]) -> int:
        reached: List[str] = []
        for peer in self.peers:
            if peer is self or peer.session_id == self.session_id:
                continue
            if channels is not None and not any(c in peer.channels for c in channels):
                continue
            if peer.push(frame):
                reached.append(peer.session_id)
        self.broadcasts.append(Broadcast(_messages(frame), channels, reached))
        return len(reached)

    def send(self, message: Any) -> bool:
        return self._deliver_self(encode_frame_bytes(message))

    def broadcast(self, message: Any) -> int:
        return self._publish(encode_frame_bytes(message), None)

    def broadcast_channel(self, message: Any, channel: Optional[str] = None) -> int:
        channels = [channel] if channel is not None else list(self._channels)
        if not channels:
            return 0
        return self._publish(encode_frame_bytes(message), channels)

    def send_and_broadcast(self, message: Any) -> int:
        frame = encode_frame_bytes(message)
        self._deliver_self(frame)
        return 1 + self._publish(frame, None)

    def send_and_broadcast_channel(self, message: Any, channel: Optional[str] = None) -> int:
        frame = encode_frame_bytes(message)
        self._deliver_self(frame)
        channels = [channel] if channel is not None else list(self._channels)
        if not channels:
            return 1
        return 1 + self._publish(frame, channels)

    def emit(self, event: str, *args: Any, callback: Optional[Callable[..., Any]] = None) -> bool:
        """Record the named event as this 0.6 client receives it (no ack comes)."""
        return self._deliver_self(Emission(event, args).v06())

    def emit_broadcast(self, event: str, *args: Any) -> int:
        return self._publish(Emission(event, args).v06(), None)

    def emit_channel(self, event: str, *args: Any, channel: Optional[str] = None) -> int:
        channels = [channel] if channel is not None else list(self._channels)
        if not channels:
            return 0
        return self._publish(Emission(event, args).v06(), channels)

    def subscribe(self, channel: str) -> bool:
        if self.closed or channel in self._channels:
            return False
        self._channels.append(channel)
        return True

    def unsubscribe(self, channel: str) -> bool:
        if channel not in self._channels:
            return False
        self._channels.remove(channel)
        return True

    def close(self) -> None:
        """Mark the socket closed; like a closed session it leaves every channel."""
        self.closed = True
        self._channels = []

    disconnect = close


# ---------------------------------------------------------------------------
# Handler registries: let a test add handlers without leaking them
# ---------------------------------------------------------------------------


def copy_registry(registry: HandlerRegistry) -> HandlerRegistry:
    """A new registry holding the same handlers, patterns and order."""
    copy = HandlerRegistry()
    for event in EVENT_NAMES:
        for handler, pattern in registry.bindings(event):
            copy.add(event, handler, pattern)
    for namespace in registry.namespaces:
        copy.add_namespace(namespace)
    for namespace, name, handler, pattern in registry.named_items():
        copy.add_named(name, handler, pattern, namespace)
    return copy


@contextlib.contextmanager
def isolated_handlers(registry: Optional[HandlerRegistry] = None) -> Iterator[HandlerRegistry]:
    """Make a copy of ``registry`` (default: the current one) current inside the block.

    Handlers registered in the block go into the copy and vanish with it, so
    they cannot leak into the next test.  One exception keeps imports honest:
    a module *first imported* inside the block registers import-time handlers
    that would otherwise be lost for good (Python imports a module once), so
    those are added to the registry that was current before the block.
    """
    outer = current_registry()
    modules_before = set(sys.modules)
    copy = copy_registry(registry if registry is not None else outer)
    initial = {event: len(copy.bindings(event)) for event in EVENT_NAMES}
    try:
        with use_registry(copy):
            yield copy
    finally:
        for event in EVENT_NAMES:
            for handler, pattern in copy.bindings(event)[initial[event] :]:
                module = getattr(handler, "__module__", None)
                if module in sys.modules and module not in modules_before:
                    outer.add(event, handler, pattern)


def _middleware_of(app: Any) -> Any:
    from .server import find_middleware

    return find_middleware(app) if app is not None else None


def app_registry(app: Any = None) -> HandlerRegistry:
    """The registry ``app``'s middleware dispatches to: its ``handlers=`` option,
    else the current registry."""
    middleware = _middleware_of(app)
    if middleware is not None and middleware.options.handlers is not None:
        return middleware.options.handlers
    return current_registry()


# ---------------------------------------------------------------------------
# TestServer / TestClient: the real dispatcher, in process
# ---------------------------------------------------------------------------


def _route_out_of_band(engine: Engine) -> Callable[[], None]:
    """Send :func:`socketio_wsgi.send`/``broadcast*`` to ``engine``; returns the undo."""
    previous = api.use_backend(engine.backend, engine.bridge)
    return lambda: api.restore(previous)


def base_environ(resource: str = "socket.io", transport: str = "test") -> Dict[str, Any]:
    """A complete WSGI environ for a Socket.IO handshake GET from 127.0.0.1."""
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": f"/{resource}/{transport}",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


class TestServer:
    """The real engine, run in the calling thread, for :class:`TestClient` objects.

    ``app``: a :class:`~socketio_wsgi.SocketIOMiddleware` (or an app wrapping
    one) whose options to use: its request adapter, limits and handler
    registry.  ``handlers`` overrides the registry (default: the app's, else
    the one current when the server is built).  Any other keyword overrides an option.
    The backend is a fresh in-memory one unless ``backend=`` is given, so no
    channel outlives the server.

    While the server is open, :func:`socketio_wsgi.send`, ``broadcast`` and
    ``broadcast_channel`` reach its clients; :meth:`close` (or leaving the
    ``with`` block) closes every session as a shutdown does and restores
    where out-of-band calls went before.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, app: Any = None, *, handlers: Optional[HandlerRegistry] = None, **options: Any):
        middleware = _middleware_of(app)
        base = middleware.options if middleware is not None else Options()
        self._request_adapter = options.pop("request_adapter", None) or base.request_adapter or WSGIRequest
        settings = dict(options)
        if handlers is None:
            handlers = middleware.engine.handlers if middleware is not None else current_registry()
        settings["handlers"] = handlers
        settings.setdefault("backend", None)
        settings["request_adapter"] = self._adapt_request
        self.options = dataclasses.replace(base, **settings)
        self.engine = Engine(self.options)
        self._undo_route: Optional[Callable[[], None]] = _route_out_of_band(self.engine)

    def _adapt_request(self, environ: dict) -> Any:
        if REQUEST_KEY in environ:
            return environ[REQUEST_KEY]
        return self._request_adapter(environ)

    def client(
        self,
        environ: Optional[dict] = None,
        *,
        request: Any = None,
        connect: bool = True,
        timeout: float = 1.0,
    ) -> "TestClient":
        """A new client; connected (``on_connect`` has run) unless ``connect=False``.

        ``environ`` keys override those of :func:`base_environ`; ``request``
        is handed to handlers as is instead of the request adapter's result.
        A :class:`~socketio_wsgi.ConnectionRefused` from ``on_connect`` propagates.
        """
        client = TestClient(self, environ, request=request, timeout=timeout)
        if connect:
            client.connect()
        return client

    def client_v4(
        self,
        namespace: str = "/",
        auth: Optional[Dict[str, Any]] = None,
        environ: Optional[dict] = None,
        *,
        connect: bool = True,
        timeout: float = 1.0,
    ) -> "V4TestClient":
        """A new Socket.IO 4 client of ``namespace`` (``auth``: its CONNECT
        payload); connected unless ``connect=False``.  A refusal raises
        :class:`~socketio_wsgi.ConnectionRefused`."""
        client = V4TestClient(self, namespace, auth, environ, timeout=timeout)
        if connect:
            client.connect()
        return client

    @property
    def sessions(self) -> Dict[str, Session]:
        """Open sessions by id."""
        return self.engine.sessions

    def close(self) -> None:
        """Close every open session (reason "server shutdown") and restore routing."""
        try:
            self.engine.close_all(Reason.SERVER_SHUTDOWN)
        finally:
            undo, self._undo_route = self._undo_route, None
            if undo is not None:
                undo()

    def __enter__(self) -> "TestServer":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def _take_output(session: Session, timeout: float) -> bytes:
    """What ``session`` has queued for its client, waiting up to ``timeout``
    seconds for something (through the one wait every transport uses)."""
    if not session.has_queued() and timeout > 0 and session.connected:
        waiter = Waiter()
        session.attach(waiter)
        try:
            session.wait(waiter, time.monotonic() + timeout)
        finally:
            session.detach(waiter)
    return session.take()


class _SessionClient:
    """What both test clients share: the one session each drives."""

    session: Optional[Session]

    @property
    def session_id(self) -> Optional[str]:
        return self.session.session_id if self.session is not None else None

    @property
    def connected(self) -> bool:
        return self.session is not None and self.session.connected

    def _open_session(self) -> Session:
        if self.session is None:
            raise RuntimeError("connect() first")
        return self.session


class TestClient(_SessionClient):
    """One client of a :class:`TestServer`, driving the real engine directly.

    Its methods mirror :class:`socketio_wsgi.client.Client`: ``connect``,
    ``send``, ``send_payload``, ``receive``, ``receive_many``, ``disconnect``;
    plus ``subscribe``/``unsubscribe`` (the ``__subscribe__`` marker batch the
    old JavaScript sends), ``send_json`` (what our browser client sends) and
    ``receive_all``.  The session-id frame and heartbeats are transport
    details and never show up in what it receives.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        server: TestServer,
        environ: Optional[dict] = None,
        *,
        request: Any = None,
        timeout: float = 1.0,
        transport: str = "test",
    ):
        self.server = server
        self.engine = server.engine
        self.timeout = timeout
        self.transport = transport
        merged = base_environ(server.options.resource, transport)
        if environ is None and request is not None:
            environ = getattr(request, "environ", None) or getattr(request, "META", None)
        merged.update(environ or {})
        if request is not None:
            merged[REQUEST_KEY] = request
        self.environ = merged
        self.session: Optional[Session] = None
        self._inbox: Deque[Any] = deque()

    def __repr__(self) -> str:
        state = "new" if self.session is None else self.session.state
        return f"<TestClient sid={self.session_id} {state}>"

    # -- state ------------------------------------------------------------

    @property
    def close_reason(self) -> Optional[str]:
        """Why the server ended the session (a :class:`~socketio_wsgi.Reason`), if it did."""
        return self.session.close_reason if self.session is not None else None

    @property
    def channels(self) -> Tuple[str, ...]:
        return tuple(self.session.channel_list) if self.session is not None else ()

    @property
    def socket(self) -> Socket:
        """The server-side socket handlers get for this client."""
        return self._open_session().socket  # type: ignore[return-value]

    @property
    def request(self) -> Any:
        """The request handlers get for this client."""
        return self._open_session().request

    @property
    def context(self) -> dict:
        """The per-connection ``context`` dict handlers share."""
        return self._open_session().context

    # -- lifecycle ----------------------------------------------------------
    def connect(self) -> str:
        """Open a session and run ``on_connect``; returns the session id."""
        if self.session is not None:
            raise RuntimeError("connect() was already called")
        session = self.engine.new_session(self.transport, self.environ)
        self.session = session
        self.engine.connect(session)  # ConnectionRefused propagates, as for a real client
        return session.session_id

    def disconnect(self, reason: str = Reason.CLIENT_CLOSED) -> None:
        """Leave, as a client closing its connection does (or with another
        :class:`~socketio_wsgi.Reason`, e.g. ``Reason.HEARTBEAT_TIMEOUT``)."""
        if self.session is not None:
            self.engine.close(self.session, reason)

    close = disconnect

    def __enter__(self) -> "TestClient":
        if self.session is None:
            self.connect()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.disconnect()

    # -- sending ------------------------------------------------------------
    def send(self, value: Any) -> None:
        """Send ``value`` as the 0.6 client's ``socket.send`` does: text as is,
        a dict as JSON, a list as one message per element."""
        self.send_payload(encode(value))

    def send_json(self, value: Any) -> None:
        """Send any JSON value as one message, keeping its type (our browser client)."""
        self.send_payload(encode_json(value))

    def subscribe(self, channel: str) -> None:
        """Send the ``__subscribe__`` marker batch; the server fires ``on_subscribe``."""
        self.send_payload(encode(["__subscribe__", channel]))

    def unsubscribe(self, channel: str) -> None:
        self.send_payload(encode(["__unsubscribe__", channel]))

    def send_payload(self, payload: str) -> None:
        """Hand raw payload text to the server; a :class:`~socketio_wsgi.ProtocolError`
        closes the session and propagates."""
        session = self._open_session()
        if not session.connected:
            raise self._closed_error()
        self.engine.receive(session, payload)

    def push(self, frame: bytes) -> bool:
        """Deliver an encoded frame as the server would (lets FakeSockets reach us)."""
        return self.session is not None and self.session.push(frame)

    # -- receiving ------------------------------------------------------------
    def _closed_error(self) -> ConnectionClosedError:
        reason = self.close_reason or Reason.CLIENT_CLOSED
        return ConnectionClosedError(f"the session was closed: {reason}")

    def _collect(self, timeout: float) -> None:
        data = _take_output(self._open_session(), timeout)
        if data:
            self._inbox.extend(_messages(data))

    def receive(self, timeout: Optional[float] = None) -> Any:
        """The next message the server sent: ``str`` for text, the value for JSON.

        Waits at most ``timeout`` seconds (default: the client's ``timeout``)
        for work spawned by handlers, then raises ``TimeoutError``.  Raises
        :class:`ConnectionClosedError` once the session is closed and every
        message sent before that has been returned.
        """
        wait = self.timeout if timeout is None else timeout
        if not self._inbox:
            self._collect(wait)
        if self._inbox:
            return self._inbox.popleft()
        if not self.connected:
            raise self._closed_error()
        raise TimeoutError(f"nothing received within {wait}s")

    def receive_many(self, n: int, timeout: Optional[float] = None) -> List[Any]:
        """``n`` messages; on a timeout or close the ones taken are put back."""
        out: List[Any] = []
        try:
            while len(out) < n:
                out.append(self.receive(timeout))
        except BaseException:
            self._inbox.extendleft(reversed(out))
            raise
        return out

    def receive_all(self) -> List[Any]:
        """Everything received so far (possibly nothing); never waits beyond
        letting already-runnable greenlets run once."""
        gevent.sleep(0)
        self._collect(0)
        out = list(self._inbox)
        self._inbox.clear()
        return out


@dataclasses.dataclass
class Received:
    """An event a :class:`V4TestClient` received: ``name``, ``args``, and the
    ``id`` to answer with :meth:`V4TestClient.ack` when the server asked for one."""

    name: str
    args: Tuple[Any, ...]
    id: Optional[int] = None


class V4TestClient(_SessionClient):
    """A Socket.IO 4 client of a :class:`TestServer`, driving the real engine
    directly (no Engine.IO transport): ``emit`` (returns the ack when asked),
    ``send`` (the ``"message"`` event), ``subscribe``/``unsubscribe``,
    ``receive``, ``receive_all``, ``ack``, ``disconnect``."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        server: TestServer,
        namespace: str = "/",
        auth: Optional[Dict[str, Any]] = None,
        environ: Optional[dict] = None,
        *,
        timeout: float = 1.0,
    ):
        self.server = server
        self.engine = server.engine
        self.namespace = namespace
        self.auth = auth
        self.timeout = timeout
        self.environ = base_environ(server.options.resource, "eio4-test")
        self.environ.update(environ or {})
        self.session: Optional[V4Session] = None
        self._inbox: Deque[Received] = deque()
        self._acks: Dict[int, Tuple[Any, ...]] = {}
        self._next_id = 0
        self._decoder = sio5.Decoder()

    @property
    def socket(self) -> Socket:
        return self._open().socket  # type: ignore[return-value]

    def _open(self) -> V4Session:
        return cast(V4Session, self._open_session())

    def connect(self) -> str:
        """Join the namespace and run ``on_connect`` (refusals raise ConnectionRefused)."""
        if self.session is not None:
            raise RuntimeError("connect() was already called")
        if self.namespace not in self.engine.handlers.namespaces:
            raise ConnectionRefused("Invalid namespace")
        session = self.engine.new_session("eio4-test", self.environ, V4Session, namespace=self.namespace)
        assert isinstance(session, V4Session)
        session.auth = self.auth
        self.session = session
        self.engine.connect(session)
        return session.session_id

    def disconnect(self) -> None:
        if self.session is not None:
            self.engine.close(self.session, Reason.CLIENT_CLOSED)

    def __enter__(self) -> "V4TestClient":
        if self.session is None:
            self.connect()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.disconnect()

    # -- sending ----------------------------------------------------------------
    def emit(self, event: str, *args: Any, ack: bool = False, timeout: Optional[float] = None) -> Any:
        """Emit ``event``; with ``ack=True`` wait for and return the ack's args (a tuple)."""
        session = self._open()
        ack_id = None
        if ack:
            ack_id = self._next_id
            self._next_id += 1
        # Through the codec both ways, as on the wire (bytes become attachments).
        packet = self._round_trip(sio5.Event(event, args, self.namespace, ack_id))
        try:
            self.engine.run_event(session, packet)  # type: ignore[arg-type]
        except ProtocolError:
            pass  # the session is closed; the error was logged
        if ack_id is None:
            return None
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while ack_id not in self._acks:
            if not self._collect(max(0.0, deadline - time.monotonic())) and time.monotonic() >= deadline:
                raise TimeoutError(f"no ack for {event!r}")
        return self._acks.pop(ack_id)

    def send(self, value: Any) -> None:
        """``socket.send(value)`` of a Socket.IO 4 client: reaches ``on_message``."""
        self.emit("message", value)

    def subscribe(self, channel: str) -> None:
        self.emit("__subscribe__", channel)

    def unsubscribe(self, channel: str) -> None:
        self.emit("__unsubscribe__", channel)

    def ack(self, received: Received, *args: Any) -> None:
        """Answer an event the server sent with a callback."""
        if received.id is None:
            raise RuntimeError(f"{received.name!r} asked for no ack")
        packet = self._round_trip(sio5.Ack(received.id, args, self.namespace))
        self.engine.run_ack(self._open(), packet)  # type: ignore[arg-type]

    def _round_trip(self, packet: sio5.Packet) -> sio5.Packet:
        decoder = sio5.Decoder()
        out: List[sio5.Packet] = []
        for part in sio5.encode(packet):
            out += decoder.receive_binary(part) if isinstance(part, bytes) else decoder.receive_text(part)
        return out[0]

    # -- receiving ----------------------------------------------------------------
    def _collect(self, timeout: float) -> bool:
        session = self._open()
        data = _take_output(session, timeout)
        for frame in split_records(data):
            if isinstance(frame, bytes):
                packets = self._decoder.receive_binary(frame)
            else:
                packets = self._decoder.receive_text(frame[1:])  # drop the Engine.IO message type
            for packet in packets:
                if isinstance(packet, sio5.Ack):
                    self._acks[packet.id] = packet.args
                elif isinstance(packet, sio5.Event):
                    self._inbox.append(Received(str(packet.name), packet.args, packet.id))
        return bool(data)

    def receive(self, timeout: Optional[float] = None) -> Received:
        """The next event the server sent (``"message"`` for ``send``)."""
        wait = self.timeout if timeout is None else timeout
        if not self._inbox:
            self._collect(wait)
        if self._inbox:
            return self._inbox.popleft()
        if not self.connected:
            raise ConnectionClosedError("the session was closed")
        raise TimeoutError(f"nothing received within {wait}s")

    def receive_all(self) -> List[Received]:
        gevent.sleep(0)
        self._collect(0)
        out = list(self._inbox)
        self._inbox.clear()
        return out
