"""Socket.IO 4 clients end to end: the real ``socket.io-client@4`` in Node
against our server (tests/node/v4_client.js), on the same handlers and
channels as the 0.6 clients."""

from __future__ import annotations

import base64
import threading

import pytest
from servers import wait_for

from socketio_wsgi import ConnectionRefused, NoSocket
from socketio_wsgi.client import Client
from socketio_wsgi.protocol import encode
from tests.v4_support import run_client, unmark, v4_modules

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


@pytest.mark.parametrize("transports", [["polling"], ["websocket"]])
def test_binary_both_ways_with_acks(make_server_thread, transports):
    server = make_server_thread()
    got = []

    def upload(request, socket, context, name, data, extra):
        got.append((name, data, extra))
        socket.emit("download", {"name": name, "data": data[::-1]}, b"",
                    callback=lambda *a: (got.append(a), socket.emit("thanks")))
        return (len(data), data[:2])

    server.handlers.add_named("upload", upload)
    blob = bytes(range(256)) * 3
    lines = run_client({
        "url": server.url, "transports": transports,
        "ack_replies": {"download": [{"$bin": "AAEC"}]},
        "steps": [
            {"emit": "upload", "args": ["f.bin", {"$bin": base64.b64encode(blob).decode()},
                                        [{"$bin": ""}, {"nested": {"$bin": "AQ=="}}]], "ack": True},
            {"wait": "thanks"},
        ],
    })
    assert events(lines, "done"), lines
    assert got[0] == ("f.bin", blob, [b"", {"nested": b"\x01"}])
    [ack] = events(lines, "ack")
    assert unmark(ack["args"]) == [len(blob), blob[:2]]
    [download] = [e for e in events(lines, "event") if e["name"] == "download"]
    assert unmark(download["args"]) == [{"name": "f.bin", "data": blob[::-1]}, b""]
    assert download["ack"] is True
    assert got[1] == (b"\x00\x01\x02",)


def test_a_channel_shared_by_a_06_client_and_a_v4_client(make_server_thread):
    server = make_server_thread()
    subscribed = []
    server.handlers.add("on_subscribe", lambda request, socket, context, channel:
                        subscribed.append((socket.protocol, channel)))
    server.handlers.add("on_message", lambda request, socket, context, message:
                        socket.broadcast_channel(message, "room"))
    server.handlers.add_named("say", lambda request, socket, context, text:
                              socket.emit_channel("said", text, {"n": 1}, channel="room"))
    old = Client(server.url, transport="websocket", timeout=10)
    old.connect()
    try:
        old.send_payload(encode(["__subscribe__", "room"]))
        result = {}
        node = threading.Thread(target=lambda: result.update(lines=run_client({
            "url": server.url,
            "steps": [{"emit": "__subscribe__", "args": ["room"], "ack": True},
                      {"emit": "say", "args": ["hello 0.6"]},
                      {"wait": "message"}],
        })))
        node.start()
        said = old.receive(timeout=15)
        assert said == {"$event": "said", "args": ["hello 0.6", {"n": 1}]}
        old.send({"from": "0.6"})
        node.join(30)
        assert not node.is_alive()
    finally:
        old.disconnect()
    lines = result["lines"]
    assert events(lines, "done"), lines
    [message] = [e for e in events(lines, "event") if e["name"] == "message"]
    assert message["args"] == [{"from": "0.6"}]
    assert sorted(subscribed) == [("0.6", "room"), ("4", "room")]


def test_out_of_band_emits_reach_both_generations(make_server_thread):
    server = make_server_thread()
    server.handlers.add_named("join", lambda request, socket, context: socket.subscribe("live") and None)
    old = Client(server.url, transport="xhr-polling", timeout=10)
    old.connect()
    result = {}
    try:
        old.send_payload(encode(["__subscribe__", "live"]))
        node = threading.Thread(target=lambda: result.update(lines=run_client({
            "url": server.url,
            "steps": [{"emit": "join", "ack": True}, {"wait": "score"}, {"wait": "direct"}],
        })))
        node.start()
        wait_for(lambda: len(server.engine.backend.channels.get("live", ())) == 2, timeout=20)
        assert server.middleware.emit_channel("score", 3, "to 1", channel="live") == 2
        v4_sid = next(s.session_id for s in server.engine.sessions.values() if s.protocol == "4")
        server.middleware.emit(v4_sid, "direct", None)
        assert old.receive(timeout=10) == {"$event": "score", "args": [3, "to 1"]}
        node.join(30)
    finally:
        old.disconnect()
    lines = result["lines"]
    assert [e["args"] for e in events(lines, "event")] == [[3, "to 1"], [None]]
    with pytest.raises(NoSocket):
        server.middleware.emit("12345678901234567890", "direct")


def test_server_side_close_reaches_the_client_as_io_server_disconnect(make_server_thread):
    server = make_server_thread()
    reasons = []
    server.handlers.add_named("bye", lambda request, socket, context: socket.close())
    server.handlers.add("on_disconnect", lambda request, socket, context, reason=None: reasons.append(reason))
    lines = run_client({"url": server.url, "transports": ["websocket"],
                        "steps": [{"emit": "bye"}, {"wait": "disconnect"}]})
    assert [line["reason"] for line in lines if line["type"] == "disconnect"][0] == "io server disconnect"
    assert reasons == ["server closed"]
