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
