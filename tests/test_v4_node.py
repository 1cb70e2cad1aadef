"""Socket.IO 4 clients end to end: the real ``socket.io-client@4`` in Node
against our server (tests/node/v4_client.js), on the same handlers and
channels as the 0.6 clients."""

from __future__ import annotations

import pytest

from socketio_wsgi import ConnectionRefused
from tests.v4_support import run_client, v4_modules

ALL_JSON = ["text ✓", 0, -1.5, 2**40, True, False, None, [1, "two", [3]], {"a": {"b": [None, 1.25]}}, ""]


@pytest.fixture(autouse=True)
def _node():
    v4_modules()


def events(lines, kind):
    return [line for line in lines if line["type"] == kind]


def one_connect(lines):
    connects = events(lines, "connect")
    assert len(connects) == 1, lines
    return connects[0]


@pytest.mark.parametrize(
    "transports, transport",
    [
        (["polling", "websocket"], "websocket"),
        (["websocket"], "websocket"),
        (["polling"], "polling"),
    ],
)
def test_named_event_with_every_json_type_and_ack(make_server_thread, transports, transport):
    server = make_server_thread(heartbeat_interval=2.0, heartbeat_timeout=2.0)
    seen = []

    def echo(request, socket, context, *args):
        seen.append((socket.protocol, socket.namespace, args))
        socket.emit("echoed", *args)
        return ("got", len(args))

    server.handlers.add_named("echo", echo)
    steps = [{"emit": "echo", "args": ALL_JSON, "ack": True}, {"wait": "echoed"}]
    if transports == ["polling", "websocket"]:
        steps.insert(0, {"wait": "upgrade"})
    lines = run_client({"url": server.url, "transports": transports, "steps": steps})
    assert events(lines, "done"), lines
    one_connect(lines)
    [ack] = events(lines, "ack")
    assert ack["args"] == ["got", len(ALL_JSON)]
    [echoed] = [e for e in events(lines, "event") if e["name"] == "echoed"]
    assert echoed["args"] == ALL_JSON
    assert seen == [("4", "/", tuple(ALL_JSON))]
    if transport == "websocket" and "polling" in transports:
        assert events(lines, "upgrade") == [{"type": "upgrade", "transport": "websocket"}]


def test_message_event_reaches_on_message_and_send_reaches_client(make_server_thread):
    server = make_server_thread()
    got = []

    def on_message(request, socket, context, message):
        got.append(message)
        socket.send({"echo": message})

    server.handlers.add("on_message", on_message)
    lines = run_client({"url": server.url, "steps": [{"send": [{"x": [1, 2]}]}, {"wait": "message"}]})
    assert got == [{"x": [1, 2]}]
    [message] = [e for e in events(lines, "event") if e["name"] == "message"]
    assert message["args"] == [{"echo": {"x": [1, 2]}}]


def test_auth_reaches_on_connect_and_refusal_is_connect_error(make_server_thread):
    server = make_server_thread()
    auths = []

    def on_connect(request, socket, context, auth=None):
        auths.append(auth)
        if auth.get("token") != "good":
            raise ConnectionRefused("bad token")
        socket.emit("welcome", auth["token"])

    server.handlers.add("on_connect", on_connect)
    refused = run_client({"url": server.url, "auth": {"token": "bad"}, "steps": []})
    [error] = events(refused, "connect_error")
    assert error["message"] == "bad token"
    assert not events(refused, "connect")
    accepted = run_client({"url": server.url, "auth": {"token": "good"}, "steps": [{"wait": "welcome"}]})
    one_connect(accepted)
    assert auths == [{"token": "bad"}, {"token": "good"}]


def test_custom_namespace_and_unknown_namespace(make_server_thread):
    server = make_server_thread()
    server.handlers.add_named("where", lambda request, socket, context: socket.namespace, namespace="/admin")
    lines = run_client({"url": server.url, "namespace": "/admin", "steps": [{"emit": "where", "ack": True}]})
    one_connect(lines)
    assert events(lines, "ack")[0]["args"] == ["/admin"]
    unknown = run_client({"url": server.url, "namespace": "/nope", "steps": []})
    [error] = events(unknown, "connect_error")
    assert error["message"] == "Invalid namespace"


def test_server_asks_for_an_ack(make_server_thread):
    server = make_server_thread()
    answers = []

    def on_connect(request, socket, context):
        socket.emit("question", 41, callback=lambda *args: (answers.append(args), socket.emit("thanks")))

    server.handlers.add("on_connect", on_connect)
    lines = run_client(
        {"url": server.url, "ack_replies": {"question": [42, "yes"]}, "steps": [{"wait": "thanks"}]}
    )
    assert events(lines, "done"), lines
    assert answers == [(42, "yes")]
