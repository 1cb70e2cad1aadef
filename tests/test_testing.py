"""Tests of socketio_wsgi.testing (FakeSocket, TestServer, TestClient) and of
the pytest plugin's fixtures, in process and in a child pytest run."""
from __future__ import annotations

import http.client
import inspect
import json
import os
import re
import select
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Dict, List

import gevent
import gevent.event
import pytest

import socketio_wsgi
from socketio_wsgi import (ConnectionRefused, HandlerRegistry, NoSocket, ProtocolError, Reason,
                           SocketIOMiddleware, use_registry)
from socketio_wsgi.client import Client
from socketio_wsgi.errors import UsageError
from socketio_wsgi.protocol import encode_heartbeat
from socketio_wsgi.events import EVENT_NAMES, current_registry
from socketio_wsgi.pytest_plugin import (fake_socket, socketio_app, socketio_client,  # noqa: F401
                                         socketio_handlers, socketio_server)
from socketio_wsgi.request import WSGIRequest
from socketio_wsgi.socket import Socket, encode_frame_bytes
from socketio_wsgi.testing import (Broadcast, ConnectionClosedError, FakeSocket, Peers,
                                   TestServer, copy_registry, isolated_handlers)

PLUGIN = "socketio_wsgi.pytest_plugin"


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def recorder(registry: HandlerRegistry, log: List[tuple]) -> None:
    """Register one handler per event that appends what it saw to ``log``."""
    def make(event: str):
        def handler(request, socket, context, *arg, reason=None):
            seen = tuple(type(a).__name__ if isinstance(a, BaseException) else a for a in arg)
            log.append((event,) + seen + ((reason,) if reason else ()))
        return handler
    for event in EVENT_NAMES:
        registry.add(event, make(event))


def start_pytest(directory: Path, files: Dict[str, str], *args: str) -> subprocess.Popen:
    """Write ``files`` into ``directory`` and start pytest there in a child process
    (on ``args``, default the whole directory) with a blank ini and no plugin but
    ours: autoloading the installed ones would only slow it down."""
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    (directory / "pytest.ini").write_text("[pytest]\n")
    targets = [] if any(not a.startswith("-") for a in args) else [str(directory)]
    command = [sys.executable, "-m", "pytest", "-p", PLUGIN, "-p", "no:cacheprovider",
               "-q", "-rs", "--rootdir", str(directory), "-c", str(directory / "pytest.ini"),
               "-W", "error::pytest.PytestCollectionWarning", *args, *targets]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return subprocess.Popen(command, cwd=directory, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish_pytest(proc: subprocess.Popen) -> "tuple[int, str]":
    """Wait (bounded) for a child pytest; returns its exit code and output."""
    try:
        output, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate(timeout=10)
    return proc.returncode, output


def run_pytest(directory: Path, files: Dict[str, str], *args: str) -> "tuple[int, str]":
    return finish_pytest(start_pytest(directory, files, *args))


@pytest.fixture
def registry():
    """A fresh current registry for tests that build their own TestServer."""
    with use_registry(HandlerRegistry()) as fresh:
        yield fresh


# ---------------------------------------------------------------------------
# FakeSocket
# ---------------------------------------------------------------------------

def test_fake_socket_has_every_public_method_of_socket():
    public = {name for name, _ in inspect.getmembers(Socket) if not name.startswith("_")}
    assert public <= set(dir(FakeSocket()))
    for name in public:
        real = getattr(Socket, name)
        if callable(real):
            assert (list(inspect.signature(real).parameters)
                    == list(inspect.signature(getattr(FakeSocket, name)).parameters)), name


def test_fake_socket_records_sends_as_the_client_decodes_them(fake_socket):
    assert fake_socket.send("hello") is True
    assert fake_socket.send({"a": [1, 2]}) is True
    assert fake_socket.send(42) is True
    assert fake_socket.send(["x", "y"]) is True
    assert fake_socket.sent == ["hello", {"a": [1, 2]}, "42", "x", "y"]
    with pytest.raises(UsageError):
        fake_socket.send(object())
    assert fake_socket.session.session_id == fake_socket.session_id
    assert len(fake_socket.session_id) == 20


def test_fake_socket_broadcasts_reach_connected_peers_but_not_the_sender():
    alice = FakeSocket(session_id="a")
    bob = FakeSocket(session_id="b", peers=alice.peers)
    carol = FakeSocket(session_id="c", peers=alice.peers)
    gone = FakeSocket(session_id="d", peers=alice.peers)
    gone.close()
    assert alice.broadcast({"t": 1}) == 2
    assert alice.broadcasts == [Broadcast([{"t": 1}], None, ["b", "c"])]
    assert bob.received == [{"t": 1}] and carol.received == [{"t": 1}]
    assert alice.sent == [] and alice.received == [] and gone.received == []
    assert len(alice.peers) == 4 and bob in alice.peers


def test_fake_socket_channel_broadcasts_pick_holders_once():
    alice = FakeSocket(session_id="a", channels=["red", "blue"])
    bob = FakeSocket(session_id="b", channels=["red", "blue"], peers=alice.peers)
    carol = FakeSocket(session_id="c", channels=["green"], peers=alice.peers)
    assert alice.broadcast_channel("hi") == 1  # bob holds both channels, gets it once
    assert bob.received == ["hi"] and carol.received == []
    assert alice.broadcast_channel("psst", "green") == 1  # not held by alice: still allowed
    assert carol.received == ["psst"]
    assert alice.broadcasts == [Broadcast(["hi"], ["red", "blue"], ["b"]),
                                Broadcast(["psst"], ["green"], ["c"])]
    lonely = FakeSocket()
    assert lonely.broadcast_channel(object()) == 0  # no channel: nothing encoded, nothing sent
    assert lonely.broadcasts == []


def test_fake_socket_send_and_broadcast_variants():
    alice = FakeSocket(session_id="a", channels=["room"])
    bob = FakeSocket(session_id="b", channels=["room"], peers=alice.peers)
    FakeSocket(session_id="c", peers=alice.peers)
    assert alice.send_and_broadcast("all") == 3
    assert alice.send_and_broadcast_channel("room only") == 2
    assert alice.sent == ["all", "room only"]
    assert bob.received == ["all", "room only"]
    assert [b.recipients for b in alice.broadcasts] == [["b", "c"], ["b"]]
    alone = FakeSocket()
    assert alone.send_and_broadcast_channel("x") == 1 and alone.sent == ["x"]


def test_fake_socket_explicit_peers_list():
    bob, carol = FakeSocket(session_id="b"), FakeSocket(session_id="c")
    alice = FakeSocket(session_id="a", peers=[bob, carol])
    assert alice.broadcast("hey") == 2
    assert bob.received == ["hey"] == carol.received
    assert alice not in bob.peers  # an explicit list is alice's view only
    assert isinstance(alice.peers, Peers) and list(alice.peers) == [bob, carol, alice]


def test_fake_socket_subscriptions_and_close():
    sock = FakeSocket()
    assert sock.subscribe("a") is True and sock.subscribe("a") is False
    assert sock.subscribe("b") is True
    assert sock.channels == ("a", "b")
    assert sock.unsubscribe("a") is True and sock.unsubscribe("a") is False
    assert sock.connected and not sock.closed
    sock.disconnect()
    assert sock.closed and not sock.connected and sock.channels == ()
    assert sock.subscribe("c") is False and sock.send("late") is False and sock.sent == []
    assert sock.push(encode_frame_bytes("late")) is False


def test_fake_socket_matches_the_real_socket(registry):
    """The same handler body observed through a FakeSocket and through the real
    engine gives the same messages, recipients and return values."""
    def body(socket) -> list:
        return [socket.subscribe("room"), socket.subscribe("room"), socket.send(7),
                socket.broadcast_channel({"x": 1}), socket.send_and_broadcast(["p", "q"]),
                socket.broadcast_channel("nobody", "empty"), socket.unsubscribe("room"),
                socket.unsubscribe("room"), socket.channels]

    with TestServer() as server:
        peer = server.client()
        peer.subscribe("room")
        me = server.client()
        real_results = body(me.socket)
        real_sent = me.receive_all()
        real_peer = peer.receive_all()

    fake_peer = FakeSocket(channels=["room"])
    fake = FakeSocket(peers=fake_peer.peers)
    assert body(fake) == real_results
    assert fake.sent == real_sent == ["7", "p", "q"]
    assert fake_peer.received == real_peer == [{"x": 1}, "p", "q"]


def test_fake_socket_broadcast_reaches_test_clients(registry):
    with TestServer() as server:
        bob = server.client()
        bob.subscribe("room")
        alice = FakeSocket(channels=["room"], peers=[bob])
        assert alice.broadcast_channel({"hi": "bob"}) == 1
        assert bob.receive() == {"hi": "bob"}
        assert alice.broadcasts[0].recipients == [bob.session_id]


# ---------------------------------------------------------------------------
# TestServer / TestClient
# ---------------------------------------------------------------------------

def test_events_fire_in_the_real_order(registry):
    log: List[tuple] = []
    recorder(registry, log)
    with TestServer() as server:
        client = server.client()
        client.subscribe("a")
        client.subscribe("b")
        client.send("hi")
        client.unsubscribe("a")
        client.disconnect()
        assert not client.connected and client.close_reason == Reason.CLIENT_CLOSED
    assert log == [("on_connect",), ("on_subscribe", "a"), ("on_subscribe", "b"),
                   ("on_message", "hi"), ("on_unsubscribe", "a"),
                   ("on_disconnect", "client closed"), ("on_unsubscribe", "b"), ("on_finish",)]


def test_disconnect_with_another_reason_and_server_close(registry):
    log: List[tuple] = []
    recorder(registry, log)
    server = TestServer()
    server.client().disconnect(Reason.HEARTBEAT_TIMEOUT)
    other = server.client()
    other.subscribe("x")
    log.clear()
    server.close()
    assert log == [("on_disconnect", "server shutdown"), ("on_unsubscribe", "x"), ("on_finish",)]
    assert other.close_reason == Reason.SERVER_SHUTDOWN and server.sessions == {}


def test_messages_keep_their_types_only_with_send_json(registry):
    got: list = []
    registry.add("on_message", lambda request, socket, context, message: got.append(message))
    with TestServer() as server:
        client = server.client()
        client.send([1, True, "x"])        # the 0.6 client: one text message per element
        client.send({"k": [1, 2]})
        client.send_json([1, True, None])  # our browser client: one typed message
        client.send_payload("~m~5~m~raw!!")
    assert got == ["1", "true", "x", {"k": [1, 2]}, [1, True, None], "raw!!"]


def test_receive_order_heartbeats_and_limits(registry):
    registry.add("on_message", lambda request, socket, context, message: socket.send(message))
    with TestServer() as server:
        client = server.client(timeout=0.05)
        client.session.push(encode_heartbeat(1).encode())  # what the server's timer queues
        client.send({"n": 1})
        client.send("two")
        client.send_payload("~m~4~m~~h~1")  # a heartbeat echo is not a message
        assert client.receive() == {"n": 1}
        assert client.receive_all() == ["two"]
        assert client.receive_all() == []
        with pytest.raises(TimeoutError):
            client.receive()
        client.send("three")
        with pytest.raises(TimeoutError):
            client.receive_many(2)
        assert client.receive() == "three"  # put back after the failed receive_many


def test_receive_waits_for_work_spawned_by_handlers(registry):
    release = gevent.event.Event()

    def later(request, socket, context, message):
        def work():
            release.wait(10)
            socket.send("done " + message)
        gevent.spawn(work)
    registry.add("on_message", later)
    with TestServer() as server:
        client = server.client(timeout=10)
        client.send("job")
        assert client.receive_all() == []  # the spawned work is still waiting
        gevent.spawn(release.set)
        assert client.receive() == "done job"


def test_connection_refused_propagates_and_keeps_nothing(registry):
    log: List[tuple] = []

    def refuse(request, socket, context):
        raise ConnectionRefused("members only")
    registry.add("on_connect", refuse)
    recorder(registry, log)
    with TestServer() as server:
        with pytest.raises(ConnectionRefused, match="members only"):
            server.client()
        assert server.sessions == {}
    assert log == []


def test_handler_error_runs_on_error_then_closing_events(registry):
    log: List[tuple] = []
    recorder(registry, log)

    def boom(request, socket, context, message):
        socket.send("before the crash")
        raise ValueError(message)
    registry.add("on_message", boom)
    with TestServer() as server:
        client = server.client()
        client.subscribe("room")
        client.send("bad")
        assert not client.connected and client.close_reason == Reason.HANDLER_ERROR
        assert client.receive() == "before the crash"
        with pytest.raises(ConnectionClosedError, match="handler error"):
            client.receive()
        with pytest.raises(ConnectionClosedError):
            client.send("more")
    assert log[-4:] == [("on_message", "bad"), ("on_error", "ValueError"),
                        ("on_unsubscribe", "room"), ("on_finish",)]
    assert not any(entry[0] == "on_disconnect" for entry in log)


def test_error_in_on_connect_closes_the_new_session(registry):
    log: List[tuple] = []
    registry.add("on_connect", lambda request, socket, context: 1 / 0)
    recorder(registry, log)
    with TestServer() as server:
        client = server.client()
        assert client.close_reason == Reason.HANDLER_ERROR and server.sessions == {}
    assert log == [("on_error", "ZeroDivisionError"), ("on_finish",)]


def test_bad_payload_closes_with_protocol_error(registry):
    with TestServer() as server:
        client = server.client()
        with pytest.raises(ProtocolError):
            client.subscribe("")
        assert client.close_reason == Reason.PROTOCOL_ERROR


def test_request_from_environ_object_or_adapter(registry):
    seen: list = []
    registry.add("on_connect", lambda request, socket, context: seen.append(request))
    with TestServer() as server:
        server.client({"QUERY_STRING": "room=7", "HTTP_COOKIE": "a=b", "HTTP_ORIGIN": "http://x"})
        marker = object()
        server.client(request=marker)
    assert isinstance(seen[0], WSGIRequest)
    assert seen[0].GET == {"room": ["7"]} and seen[0].COOKIES == {"a": "b"}
    assert seen[0].path == "/socket.io/test"
    assert seen[1] is marker

    class MyRequest:
        def __init__(self, environ):
            self.user = environ.get("HTTP_X_USER")
    with TestServer(request_adapter=MyRequest) as server:
        client = server.client({"HTTP_X_USER": "ada"})
        assert isinstance(seen[2], MyRequest) and client.request.user == "ada"


def test_test_server_uses_the_app_middleware_options():
    app_handlers = HandlerRegistry()
    app_handlers.add("on_message",
                     lambda request, socket, context, message: socket.send(request.tag))

    class Tagged:
        def __init__(self, environ):
            self.tag = "tagged"
    middleware = SocketIOMiddleware(None, handlers=app_handlers, request_adapter=Tagged,
                                    max_message_size=16)
    with TestServer(middleware) as server:
        assert server.engine.backend is not middleware.engine.backend
        client = server.client()
        client.send("hi")
        assert client.receive() == "tagged"
        with pytest.raises(ProtocolError):
            client.send("x" * 17)
        assert client.close_reason == Reason.LIMIT_EXCEEDED


def test_several_clients_talk_through_channels_and_out_of_band(registry):
    def relay(request, socket, context, message):
        socket.broadcast_channel({"from": socket.session_id, "text": message})
    registry.add("on_message", relay)
    server = TestServer()
    try:
        alice, bob, carol = server.client(), server.client(), server.client()
        alice.subscribe("room")
        bob.subscribe("room")
        alice.send("hello")
        assert bob.receive() == {"from": alice.session_id, "text": "hello"}
        assert alice.receive_all() == [] and carol.receive_all() == []

        assert socketio_wsgi.broadcast_channel("to the room", "room") == 2
        assert socketio_wsgi.broadcast("to all") == 3
        socketio_wsgi.send(carol.session_id, {"private": True})
        assert alice.receive_all() == ["to the room", "to all"]
        assert bob.receive_all() == ["to the room", "to all"]
        assert carol.receive_all() == ["to all", {"private": True}]
        with pytest.raises(NoSocket):
            socketio_wsgi.broadcast_channel("x", "nobody-here")
        with pytest.raises(NoSocket):
            socketio_wsgi.send("12345", "x")
        bob.disconnect()
        assert socketio_wsgi.broadcast_channel("left", "room") == 1
    finally:
        server.close()


def test_out_of_band_routing_is_restored_after_close(registry):
    with TestServer() as outer:
        outer_client = outer.client()
        with TestServer() as inner:
            inner_client = inner.client()
            assert socketio_wsgi.broadcast("inner") == 1
        assert socketio_wsgi.broadcast("outer") == 1
        assert outer_client.receive_all() == ["outer"]
        assert inner_client.receive_all() == ["inner"]


def test_out_of_band_from_a_plain_thread_reaches_a_waiting_client(registry):
    with TestServer() as server:
        client = server.client(timeout=10)
        errors: list = []

        def worker():
            try:
                socketio_wsgi.send(client.session_id, "from a thread")
            except Exception as exc:  # reported to the test below
                errors.append(exc)
        thread = threading.Thread(target=worker)
        thread.start()
        assert client.receive() == "from a thread"
        thread.join(10)
        assert errors == []


def test_a_client_can_connect_later_and_be_used_as_context_manager(registry):
    log: List[tuple] = []
    recorder(registry, log)
    with TestServer() as server:
        client = server.client(connect=False)
        assert client.session_id is None and not client.connected
        with pytest.raises(RuntimeError):
            client.send("x")
        with client:
            assert client.connected and client.context == {}
        assert log == [("on_connect",), ("on_disconnect", "client closed"), ("on_finish",)]


# ---------------------------------------------------------------------------
# Registry isolation
# ---------------------------------------------------------------------------

def test_copy_registry_keeps_patterns_and_order():
    original = HandlerRegistry()
    first, second = (lambda *a: None), (lambda *a: None)
    original.add("on_message", first, "^room-")
    original.add("on_message", second)
    copy = copy_registry(original)
    assert copy.handlers("on_message") == [first, second]
    assert [b.handler for b in copy.bindings_for("on_message", frozenset({"lobby"}))] == [second]
    assert len(copy.bindings_for("on_message", frozenset({"room-1"}))) == 2


def test_isolated_handlers_discard_test_registrations(registry):
    kept = lambda request, socket, context: None  # noqa: E731
    registry.add("on_connect", kept)
    with isolated_handlers() as inner:
        assert current_registry() is inner and inner.handlers("on_connect") == [kept]
        socketio_wsgi.on_connect(lambda request, socket, context: None)
        assert len(inner.handlers("on_connect")) == 2
    assert current_registry() is registry and registry.handlers("on_connect") == [kept]


def test_isolated_handlers_keep_import_time_registrations(registry, tmp_path, monkeypatch):
    (tmp_path / "late_events_module.py").write_text(
        "from socketio_wsgi import on_message\n"
        "@on_message(channel='^late')\n"
        "def late(request, socket, context, message):\n"
        "    socket.send('late handler')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "late_events_module", raising=False)
    with isolated_handlers():
        import late_events_module
        socketio_wsgi.on_message(lambda request, socket, context, message: None)
    assert registry.handlers("on_message") == [late_events_module.late]
    assert registry.bindings_for("on_message", frozenset({"lobby"})) == ()


# ---------------------------------------------------------------------------
# Fixtures, in this process (imported from the plugin above)
# ---------------------------------------------------------------------------

@pytest.fixture
def app_events():
    """Stands for the registry an app's events modules filled at import time
    (requested first, so the plugin's fixtures copy it)."""
    with use_registry(HandlerRegistry()) as base:
        base.add("on_message",
                 lambda request, socket, context, message: socket.send(message.upper()))
        yield base


def test_socketio_client_fixture(app_events, socketio_client, socketio_handlers, socketio_server):
    assert current_registry() is socketio_handlers is not app_events
    socketio_wsgi.on_message(lambda request, socket, context, message: socket.send(message[::-1]))
    client = socketio_client()
    client.send("shout")
    assert client.receive_many(2) == ["SHOUT", "tuohs"]
    assert socketio_server.sessions == {client.session_id: client.session}
    assert len(app_events.handlers("on_message")) == 1


def test_fake_socket_fixture_is_fresh(fake_socket):
    assert fake_socket.sent == [] and fake_socket.channels == ()
    assert list(fake_socket.peers) == [fake_socket]


# ---------------------------------------------------------------------------
# The plugin in a child pytest run: isolation between tests, Django flavour
# ---------------------------------------------------------------------------

ISOLATION_TESTS = """
    import sys
    import pytest
    import socketio_wsgi
    from socketio_wsgi import on_connect, on_message
    from socketio_wsgi.testing import TestClient, TestServer  # must not be collected

    @on_connect
    def hello(request, socket, context):
        socket.send("hello")

    def test_1_registers_and_subscribes(socketio_client):
        @on_message
        def extra(request, socket, context, message):
            socket.send("extra")
        client = socketio_client()
        client.subscribe("leaky")
        client.send("x")
        assert client.receive_many(2) == ["hello", "extra"]
        assert socketio_wsgi.broadcast_channel("y", "leaky") == 1

    def test_2_sees_neither(socketio_client):
        client = socketio_client()
        client.send("x")
        assert client.receive_all() == ["hello"]
        with pytest.raises(socketio_wsgi.NoSocket):
            socketio_wsgi.broadcast_channel("y", "leaky")

    def test_3_imports_events_lazily(socketio_client, tmp_path, monkeypatch):
        (tmp_path / "lazy_events.py").write_text(
            "from socketio_wsgi import on_message\\n"
            "@on_message\\n"
            "def lazy(request, socket, context, message):\\n"
            "    socket.send('lazy')\\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        import lazy_events
        client = socketio_client()
        client.send("x")
        assert client.receive_all() == ["hello", "lazy"]

    def test_4_still_has_lazily_imported_handlers(socketio_client):
        assert "lazy_events" in sys.modules
        client = socketio_client()
        client.send("x")
        assert client.receive_all() == ["hello", "lazy"]

    def test_5_out_of_band_needs_a_server(socketio_handlers):
        with pytest.raises(socketio_wsgi.NoSocket):
            socketio_wsgi.broadcast("nobody")

    def test_6_django_fixture_skips_without_settings(django_socketio_client):
        raise AssertionError("must have been skipped")
"""


def test_plugin_isolates_tests_from_each_other(tmp_path):
    code, output = run_pytest(tmp_path, {"test_isolation.py": ISOLATION_TESTS})
    assert code == 0, output
    assert "5 passed, 1 skipped" in output, output
    assert "Django settings are not configured" in output


DJANGO_CONFTEST = """
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="test-only",
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes",
                        "django.contrib.sessions"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    )
    django.setup()
"""

DJANGO_TESTS = """
    import pytest
    from django.contrib.auth.models import User
    from django.http import HttpRequest
    from socketio_wsgi import ConnectionRefused, on_connect, on_message

    @on_connect
    def members_only(request, socket, context):
        assert isinstance(request, HttpRequest)
        if not request.user.is_authenticated:
            raise ConnectionRefused("log in first")
        context["room"] = request.session.get("room", "lobby")
        socket.send({"user": request.user.username, "room": context["room"],
                     "path": request.path, "lang": request.GET.get("lang")})

    @on_message
    def echo(request, socket, context, message):
        socket.send(f"{request.user.username}@{context['room']}: {message}")

    def test_user_and_session_reach_handlers(django_socketio_client):
        ada = django_socketio_client(user=User(username="ada"), session={"room": "kitchen"},
                                     data={"lang": "fr"})
        assert ada.receive() == {"user": "ada", "room": "kitchen",
                                 "path": "/socket.io/test", "lang": "fr"}
        ada.send("hi")
        assert ada.receive() == "ada@kitchen: hi"
        assert ada.request.session["room"] == "kitchen"

    def test_anonymous_by_default(django_socketio_client):
        with pytest.raises(ConnectionRefused, match="log in first"):
            django_socketio_client()
"""


def test_django_flavour(tmp_path):
    pytest.importorskip("django")
    code, output = run_pytest(tmp_path,
                              {"conftest.py": DJANGO_CONFTEST, "test_dj.py": DJANGO_TESTS})
    assert code == 0, output
    assert "2 passed" in output, output


# ---------------------------------------------------------------------------
# The example apps really run (their own tests use the fixtures)
# ---------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def _start_example(spec: str) -> "tuple[subprocess.Popen, int]":
    proc = subprocess.Popen([sys.executable, "-m", "socketio_wsgi", spec, "--port", "0",
                             "--no-access-log"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    seen = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
        match = re.search(r"serving on http://127\.0\.0\.1:(\d+)/", line)
        if match:
            return proc, int(match.group(1))
    proc.kill()
    proc.wait(10)
    raise AssertionError(f"{spec} did not start:\n{seen}")


def _stop_example(proc: subprocess.Popen) -> str:
    proc.terminate()
    output, _ = proc.communicate(timeout=20)
    return output


def _http(port: int, method: str, path: str, body: str = "", headers: dict = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body.encode("utf-8"), headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Set-Cookie") or "", response.read().decode()
    finally:
        conn.close()


def test_plain_wsgi_example_runs():
    proc, port = _start_example("examples.plain_wsgi.app:application")
    try:
        status, cookie, page = _http(port, "GET", "/?name=ada")
        assert status == 200 and "Hello ada." in page
        with Client(f"http://127.0.0.1:{port}", headers={"Cookie": cookie.split(";")[0]}) as ada:
            assert ada.receive() == {"welcome": "ada"}
            ada.send({"join": "lobby"})
            ada.send({"say": "hi"})
            assert ada.receive() == {"from": "ada", "say": "hi"}
            assert _http(port, "POST", "/announce", "bye")[2] == "1\n"
            assert ada.receive() == {"announcement": "bye"}
    finally:
        output = _stop_example(proc)
    assert "shutting down" in output


def test_flask_example_runs():
    proc, port = _start_example("examples.flask_app.app:application")
    try:
        status, cookie, _ = _http(port, "POST", "/login", "name=bob",
                                  {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 302 and cookie.startswith("session=")
        with pytest.raises(ConnectionClosedError, match="log in first"):
            Client(f"http://127.0.0.1:{port}").connect()
        with Client(f"http://127.0.0.1:{port}", transport="xhr-polling",
                    headers={"Cookie": cookie.split(";")[0]}) as bob:
            bob.send({"room": "kitchen"})
            assert bob.receive() == {"arrived": "bob"}
            status, _, answer = _http(port, "POST", "/rooms/kitchen/announce", "text=tea",
                                      {"Content-Type": "application/x-www-form-urlencoded"})
            assert status == 200 and json.loads(answer) == {"reached": 1}
            assert bob.receive() == {"announcement": "tea"}
    finally:
        _stop_example(proc)
