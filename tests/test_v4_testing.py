"""V4TestClient: handlers for Socket.IO 4 clients tested in process, through
the real engine, as TestClient does for 0.6 clients."""
from __future__ import annotations

import pytest

from socketio_wsgi import ConnectionRefused
from socketio_wsgi.events import HandlerRegistry
from socketio_wsgi.testing import Received, TestServer


@pytest.fixture
def registry():
    return HandlerRegistry()


def test_emit_ack_send_channels_and_server_acks(registry):
    answers = []
    registry.add_named("add", lambda request, socket, context, *n: (sum(n), b"\x00"))
    registry.add_named("ask", lambda request, socket, context: socket.emit("q", 1, callback=answers.append))
    registry.add("on_message", lambda request, socket, context, m: socket.broadcast_channel(m, "room"))
    with TestServer(handlers=registry) as server:
        a, b = server.client_v4(), server.client_v4()
        old = server.client()
        assert a.emit("add", 1, 2, 3, ack=True) == (6, b"\x00")
        b.subscribe("room")
        old.subscribe("room")
        a.send({"hi": [1]})
        assert b.receive() == Received("message", ({"hi": [1]},))
        assert old.receive() == {"hi": [1]}
        a.emit("ask")
        question = a.receive()
        assert (question.name, question.args) == ("q", (1,))
        a.ack(question, "answer")
        assert answers == ["answer"]


def test_auth_refusal_and_unknown_namespace(registry):
    def on_connect(request, socket, context, auth=None):
        if auth != {"token": "t"}:
            raise ConnectionRefused("no")

    registry.add("on_connect", on_connect)
    with TestServer(handlers=registry) as server:
        with pytest.raises(ConnectionRefused):
            server.client_v4(auth={"token": "x"})
        assert server.client_v4(auth={"token": "t"}).connected
        with pytest.raises(ConnectionRefused, match="Invalid namespace"):
            server.client_v4("/nope", auth={"token": "t"})


def test_a_broadcast_is_encoded_once_per_protocol_not_per_recipient(registry):
    with TestServer(handlers=registry) as server:
        news = [server.client_v4() for _ in range(3)]
        old = [server.client() for _ in range(3)]
        for client in news + old:
            client.subscribe("room")
        sender = server.client_v4()
        for message in ("text", {"a": [1]}):
            sender.socket.broadcast_channel(message, "room")
            v4 = [client.session.take() for client in news]
            v06 = [client.session.take() for client in old]
            assert all(data is v4[0] for data in v4) and v4[0].startswith(b"\x1e42")
            assert all(data is v06[0] for data in v06) and v06[0].startswith(b"~m~")
        sender.socket.emit_channel("ev", b"\x01", channel="room")
        v4 = [client.session.take() for client in news]
        assert all(data is v4[0] for data in v4)
