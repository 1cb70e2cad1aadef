"""Issue 13, item 2: no hidden global state.

A middleware binds its handler registry when it is built; swapping the
current registry afterwards (``use_registry``) or building a second
middleware never changes a server that is already running, and out-of-band
sends keep reaching the server whose clients they can reach.
"""
from __future__ import annotations

import socketio_wsgi
from socketio_wsgi import HandlerRegistry, SocketIOMiddleware, on_message, use_registry
from socketio_wsgi.client import Client
from servers import ServerThread


def test_use_registry_in_a_test_never_changes_a_live_server():
    with use_registry() as first:
        @on_message
        def echo(request, socket, context, message):
            socket.send(f"first: {message}")

        server = ServerThread(handlers=first)
    try:
        with use_registry() as other:
            @on_message
            def hijack(request, socket, context, message):  # pragma: no cover - must not run
                socket.send("hijacked")

            with Client(server.url, transport="websocket", timeout=10) as client:
                client.send("hello")
                assert client.receive() == "first: hello"
        assert server.engine.handlers is first
        assert other.handlers("on_message") == [hijack]
    finally:
        server.stop()


def test_a_middleware_binds_the_registry_current_when_built():
    with use_registry() as registry:
        middleware = SocketIOMiddleware(None)
    with use_registry():
        later = SocketIOMiddleware(None)
    assert middleware.engine.handlers is registry
    assert later.engine.handlers is not registry


def test_a_second_middleware_does_not_take_out_of_band_calls_from_the_first():
    registry = HandlerRegistry()
    first = ServerThread(handlers=registry)
    try:
        with Client(first.url, transport="websocket", timeout=10) as client:
            second = SocketIOMiddleware(None, handlers=HandlerRegistry())  # built, never served
            assert socketio_wsgi.broadcast("still to the first") == 1
            assert client.receive() == "still to the first"
            socketio_wsgi.send(client.session_id, "direct")
            assert client.receive() == "direct"
            # Each middleware also has its own out-of-band methods.
            first.middleware.send(client.session_id, "by method")
            assert client.receive() == "by method"
            assert second.engine.sessions == {}
    finally:
        first.stop()


PAUSE_PROBE = """
from gevent import monkey; monkey.patch_all()
import socket, sys, gevent
from socketio_wsgi.session import pause
yielder = gevent.sleep if sys.argv[1] == "sleep0" else (lambda _=None: pause())  # sleep0: to compare by hand
a, b = socket.socketpair()
slices = [0]
def busy():
    for _ in range(300):
        slices[0] += 1
        yielder(0)
seen = []
def reader():
    b.recv(1)
    seen.append(slices[0])
r = gevent.spawn(reader)
gevent.sleep(0.01)
a.send(b"x")
gevent.joinall([gevent.spawn(busy), gevent.spawn(busy), r])
print(seen[0])
"""


def test_a_session_pausing_between_slices_lets_other_sockets_in():
    # Two greenlets that yield with sleep(0) run again in the same pass over
    # the loop's callbacks, before it polls the sockets: a third one's input
    # waits for hundreds of their slices.  pause() lets the poll in at once.
    import subprocess
    import sys

    def slices_before_the_reader(mode):
        out = subprocess.run([sys.executable, "-c", PAUSE_PROBE, mode], capture_output=True,
                             text=True, timeout=60, check=True)
        return int(out.stdout)

    assert slices_before_the_reader("pause") <= 4
