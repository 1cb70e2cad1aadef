"""Sockets through Django, in a server thread: the request adapter, the event
lifecycle, users and sessions, refusals, log lines and out-of-band sends."""
from __future__ import annotations

import logging

import pytest
from django.contrib.auth import get_user_model
from django.core import signals
from django.core.handlers.wsgi import WSGIRequest
from django.test import Client as DjangoClient, override_settings

from socketio_wsgi import ConnectionRefused
from socketio_wsgi.client import Client, ConnectionClosedError
from servers import wait_for

POLLING = ("xhr-polling", "jsonp-polling")


def subscribe(client: Client, channel: str) -> None:
    client.send(["__subscribe__", channel])


def unsubscribe(client: Client, channel: str) -> None:
    client.send(["__unsubscribe__", channel])


def login_cookie(username: str) -> str:
    user = get_user_model().objects.create_user(username, password="pw")
    browser = DjangoClient()
    browser.force_login(user)
    return f"sessionid={browser.cookies['sessionid'].value}"


def test_events_fire_in_order_with_a_django_request_that_went_through_middleware(django_socket_server):
    server = django_socket_server()
    seen = []

    def note(name):
        def handler(request, socket, context, *arg, **kw):
            context["n"] = context.get("n", 0) + 1
            seen.append((name, *arg, context["n"], type(request), request.path,
                         getattr(request, "passed_test_middleware", False),
                         request.user.is_authenticated))
        return handler

    for event in ("on_connect", "on_subscribe", "on_message", "on_unsubscribe", "on_disconnect",
                  "on_finish"):
        server.on(event, note(event))
    with Client(server.url, timeout=5) as client:
        subscribe(client, "room-1")
        client.send({"text": "hi"})
        unsubscribe(client, "room-1")
        subscribe(client, "room-2")
        client.send("bye")
        wait_for(lambda: len(seen) == 6)
    wait_for(lambda: len(seen) == 9)
    assert [s[:-4] for s in seen] == [
        ("on_connect", 1), ("on_subscribe", "room-1", 2), ("on_message", {"text": "hi"}, 3),
        ("on_unsubscribe", "room-1", 4), ("on_subscribe", "room-2", 5), ("on_message", "bye", 6),
        ("on_disconnect", 7), ("on_unsubscribe", "room-2", 8), ("on_finish", 9)]
    assert {s[-4:] for s in seen} == {(WSGIRequest, "/socket.io/websocket", True, False)}


@pytest.mark.parametrize("transport", ["websocket", *POLLING])
def test_handlers_see_the_logged_in_user_and_session(django_socket_server, transactional_db, transport):
    cookie = login_cookie("alice")
    server = django_socket_server()

    @server.on("on_message")
    def whoami(request, socket, context, message):
        request.session["visits"] = request.session.get("visits", 0) + 1
        request.session.save()
        socket.send([request.user.username, request.session["visits"], request.session.session_key])

    with Client(server.url, transport=transport, headers={"Cookie": cookie}, timeout=5) as client:
        client.send("who")
        assert client.receive_many(3) == ["alice", "1", cookie.split("=", 1)[1]]
        client.send("who")
        assert client.receive_many(3)[:2] == ["alice", "2"]
    with Client(server.url, transport=transport, timeout=5) as anonymous:
        anonymous.send("who")
        assert anonymous.receive_many(3)[:2] == ["", "1"]


@pytest.mark.parametrize("transport", ["websocket", "xhr-polling"])
def test_a_request_answered_by_middleware_refuses_the_connection(django_socket_server, transport):
    server = django_socket_server()
    server.record("on_connect", "on_disconnect", "on_finish")
    client = Client(server.url, transport=transport, headers={"X-Refuse": "1"}, timeout=5)
    with pytest.raises(ConnectionClosedError) as refused:
        client.connect()
    assert "HTTP 403" in refused.value.reason
    assert refused.value.code == 4403 or refused.value.status == 403
    assert server.engine.sessions == {} and server.events == []


def test_request_started_and_finished_are_sent_around_the_middleware(django_socket_server):
    sent = []

    def started(sender, **kw):
        sent.append(("started", sender.__name__))

    def finished(sender, **kw):
        sent.append(("finished", getattr(sender, "__name__", sender)))

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    try:
        server = django_socket_server()
        with Client(server.url, timeout=5):
            pass
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)
    assert sent[:2] == [("started", "DjangoRequestAdapter"), ("finished", None)]


@pytest.mark.parametrize("transport", ["websocket", "xhr-polling"])
def test_on_connect_can_refuse_anonymous_users(django_socket_server, transactional_db, transport):
    """The README recipe."""
    cookie = login_cookie("bob")
    server = django_socket_server()

    @server.on("on_connect")
    def members_only(request, socket, context):
        if not request.user.is_authenticated:
            raise ConnectionRefused("log in first")

    server.echo()
    with pytest.raises(ConnectionClosedError) as refused:
        Client(server.url, transport=transport, timeout=5).connect()
    assert "log in first" in refused.value.reason
    with Client(server.url, transport=transport, headers={"Cookie": cookie}, timeout=5) as member:
        member.send("hello")
        assert member.receive() == "hello"


def test_one_log_line_per_message_subscription_connect_disconnect_and_error(django_socket_server, caplog):
    caplog.set_level(logging.INFO, logger="django_socketio.messages")
    server = django_socket_server()
    server.echo()

    @server.on("on_message")
    def fail(request, socket, context, message):
        if message == "boom":
            raise ValueError("boom")

    with Client(server.url, timeout=5) as client:
        sid = client.session_id
        subscribe(client, "room-1")
        client.send({"action": "start"})
        assert client.receive() == {"action": "start"}
        unsubscribe(client, "room-1")
        client.send("bye")
        assert client.receive() == "bye"
    wait_for(lambda: any("disconnect" in m for m in caplog.messages))
    with Client(server.url, timeout=5) as failing:
        failing.send("boom")
        with pytest.raises(ConnectionClosedError):
            failing.receive_many(2)
        failing_sid = failing.session_id
    wait_for(lambda: any("error" in m for m in caplog.messages))
    lines = [r.getMessage() for r in caplog.records if r.name == "django_socketio.messages"]
    kinds = [line.split('"Socket.IO ', 1)[1].split(":", 1)[0] for line in lines]
    assert kinds == ["connect", "subscribe", "message", "unsubscribe", "message", "disconnect",
                     "connect", "error"]
    assert all(line.startswith("127.0.0.1 - - [") for line in lines)
    assert lines[0].endswith(f'connect: session {sid} over websocket"')
    assert lines[1].endswith('"Socket.IO subscribe: room-1"')
    assert lines[2].endswith("\"Socket.IO message: {'action': 'start'}\"")
    assert lines[5].endswith(f'disconnect: session {sid}: client closed"')
    assert lines[7].endswith(f"error: session {failing_sid}: ValueError('boom')\"")
    assert [r.levelno for r in caplog.records if "error:" in r.getMessage()] == [logging.WARNING]


def test_message_log_format_none_turns_lines_off(django_socket_server, caplog):
    caplog.set_level(logging.INFO, logger="django_socketio.messages")
    with override_settings(SOCKETIO_MESSAGE_LOG_FORMAT=None):
        server = django_socket_server()
    server.echo()
    with Client(server.url, timeout=5) as client:
        client.send("quiet")
        assert client.receive() == "quiet"
    assert not [r for r in caplog.records if r.name == "django_socketio.messages"]


def test_out_of_band_sends_from_a_plain_thread(django_socket_server):
    from django_socketio import NoSocket, broadcast, broadcast_channel, send
    server = django_socket_server()
    with Client(server.url, timeout=5) as first, Client(server.url, transport="xhr-polling",
                                                        timeout=5) as second:
        subscribe(first, "room-1")
        wait_for(lambda: server.engine.backend.channel_sizes().get("room-1") == 1)
        assert broadcast_channel({"to": "room"}, "room-1") == 1
        assert first.receive() == {"to": "room"}
        send(second.session_id, "just you")
        assert second.receive() == "just you"
        assert broadcast("everyone") == 2
        assert first.receive() == "everyone" and second.receive() == "everyone"
        with pytest.raises(NoSocket):
            send("12345", "nobody")
        with pytest.raises(NoSocket):
            broadcast_channel("nobody", "room-2")
