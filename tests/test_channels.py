"""Issue 5, server side: channels, channel-bound handlers, out-of-band sends."""
from __future__ import annotations

import threading

import gevent
import pytest

import socketio_wsgi
from socketio_wsgi import NoSocket, Reason
from socketio_wsgi.client import Client
from servers import wait_for

SUB = "~m~13~m~__subscribe__"
UNSUB = "~m~15~m~__unsubscribe__"


def frame(text: str) -> str:
    return f"~m~{len(text)}~m~{text}"


def subscribe(client: Client, *channels: str) -> None:
    """Exactly what the old django-socketio page sends for socket.subscribe(ch)."""
    for channel in channels:
        client.send_payload(SUB + frame(channel))


def unsubscribe(client: Client, channel: str) -> None:
    client.send_payload(UNSUB + frame(channel))


def connect(server, transport="websocket") -> Client:
    client = Client(server.url, transport=transport, timeout=10)
    client.connect()
    return client


@pytest.fixture
def relay(make_server_thread):
    """A server whose on_message does what the message asks, for channel tests."""
    server = make_server_thread(close_timeout=3)
    server.record("on_connect", "on_subscribe", "on_unsubscribe", "on_disconnect", "on_finish",
                  "on_error")

    def act(request, socket, context, message):
        if not isinstance(message, dict):
            return
        action, value = message.get("do"), message.get("value")
        channel = message.get("channel")
        if action == "bc":
            socket.broadcast_channel(value, channel)
        elif action == "sbc":
            socket.send_and_broadcast_channel(value, channel)
        elif action == "sb":
            socket.send_and_broadcast(value)
        elif action == "channels":
            socket.send({"channels": list(socket.channels)})

    server.on("on_message", act)
    return server


def channels_of(server, sid):
    return server.call(lambda: server.engine.get(sid).socket.channels)


def test_old_client_subscribe_format_and_on_subscribe(relay):
    with connect(relay) as a:
        subscribe(a, "room-1")
        wait_for(lambda: ("on_subscribe", a.session_id, "room-1") in relay.events)
        assert channels_of(relay, a.session_id) == ("room-1",)
        assert relay.call(lambda: relay.engine.backend.channel_sizes()) == {"room-1": 1}
        unsubscribe(a, "room-1")
        wait_for(lambda: ("on_unsubscribe", a.session_id, "room-1") in relay.events)
        assert channels_of(relay, a.session_id) == ()
        assert relay.call(lambda: relay.engine.backend.channel_sizes()) == {}


def test_subscribe_over_polling_post_and_array_marker(relay):
    relay.echo()
    with connect(relay, "xhr-polling") as a:
        a.send_payload(SUB + frame("news") + "~m~9~m~__array__~m~5~m~1,2,3")
        assert a.receive(timeout=5) == "1,2,3"
        assert channels_of(relay, a.session_id) == ("news",)


def test_socket_channels_is_a_read_only_view_in_subscription_order(relay):
    with connect(relay) as a:
        subscribe(a, "b", "a", "c")
        a.send({"do": "channels"})
        assert a.receive(timeout=5) == {"channels": ["b", "a", "c"]}
        view = channels_of(relay, a.session_id)
        assert isinstance(view, tuple)


def test_broadcast_channel_excludes_sender_and_reaches_each_peer_once(relay):
    with connect(relay) as a, connect(relay) as b, connect(relay, "xhr-polling") as c, \
            connect(relay) as outsider:
        subscribe(a, "x", "y")
        subscribe(b, "x", "y")  # shares two channels with a
        subscribe(c, "y")
        subscribe(outsider, "z")
        wait_for(lambda: len([e for e in relay.events if e[0] == "on_subscribe"]) == 6)
        a.send({"do": "bc", "value": "hi"})
        assert b.receive(timeout=5) == "hi"
        assert c.receive(timeout=5) == "hi"
        for client in (a, b, c, outsider):
            with pytest.raises(TimeoutError):
                client.receive(timeout=0.3)


def test_broadcast_channel_to_a_channel_the_sender_does_not_hold(relay):
    with connect(relay) as a, connect(relay) as b:
        subscribe(b, "elsewhere")
        wait_for(lambda: channels_of(relay, b.session_id))
        a.send({"do": "bc", "value": "knock", "channel": "elsewhere"})
        assert b.receive(timeout=5) == "knock"


def test_send_and_broadcast_variants_include_the_sender_once(relay):
    with connect(relay) as a, connect(relay) as b, connect(relay) as c:
        subscribe(a, "r")
        subscribe(b, "r")
        wait_for(lambda: channels_of(relay, b.session_id))
        a.send({"do": "sbc", "value": "room news"})
        assert a.receive(timeout=5) == "room news"
        assert b.receive(timeout=5) == "room news"
        with pytest.raises(TimeoutError):
            c.receive(timeout=0.3)
        a.send({"do": "sb", "value": "everyone"})
        assert [x.receive(timeout=5) for x in (a, b, c)] == ["everyone"] * 3


def test_channel_bound_handlers_follow_the_dispatch_rules(make_server_thread):
    server = make_server_thread()
    fired = []

    def note(name):
        return lambda request, socket, context, *arg: fired.append((name, *arg))

    server.on("on_message", note("any"))
    server.on("on_message", note("room"), channel="room")  # re.match: prefix
    server.on("on_message", note("exact"), channel="^lobby$")
    server.on("on_subscribe", note("sub-any"))
    server.on("on_subscribe", note("sub-room"), channel="^room-")
    with connect(server) as a:
        a.send("before")
        subscribe(a, "roomba")
        a.send("in roomba")
        subscribe(a, "room-1")
        subscribe(a, "lobby")
        a.send("in all")
        wait_for(lambda: ("exact", "in all") in fired)
    assert fired == [
        ("any", "before"),
        ("sub-any", "roomba"),
        ("any", "in roomba"), ("room", "in roomba"),
        ("sub-any", "room-1"), ("sub-room", "room-1"),
        ("sub-any", "lobby"),
        ("any", "in all"), ("room", "in all"), ("exact", "in all"),
    ]


def test_on_connect_refuses_a_channel_and_decorators_stack():
    from socketio_wsgi.events import EventError, HandlerRegistry, on_connect, on_message, use_registry

    with use_registry(HandlerRegistry()) as registry:
        with pytest.raises(EventError):
            on_connect(channel="^room")

        @on_message
        @on_message(channel="^a")
        def handler(request, socket, context, message):
            return "called"

        assert handler(None, None, None, None) == "called"
        assert registry.handlers("on_message") == [handler, handler]


def test_closing_unsubscribes_each_channel_then_finishes_then_forgets(relay):
    fired = []
    relay.on("on_finish", lambda r, s, c: fired.append(("finish-bound", tuple(s.channels))),
             channel="^keep")
    a = connect(relay)
    sid = a.session_id
    subscribe(a, "keep-1", "keep-2")
    wait_for(lambda: len(channels_of(relay, sid)) == 2)
    a.disconnect()
    wait_for(lambda: ("on_finish", sid) in relay.events)
    assert relay.names(sid) == ["on_connect", "on_subscribe", "on_subscribe", "on_disconnect",
                                "on_unsubscribe", "on_unsubscribe", "on_finish"]
    assert [e[2] for e in relay.events if e[0] == "on_unsubscribe"] == ["keep-1", "keep-2"]
    assert fired == [("finish-bound", ("keep-1", "keep-2"))]  # channels still held in on_finish
    assert relay.call(lambda: relay.engine.backend.channel_sizes()) == {}
    assert relay.call(lambda: len(relay.engine.backend.sessions)) == 0


def test_error_lifecycle_replaces_disconnect_with_error(relay):
    def fail(request, socket, context, message):
        if message == "fail":
            raise ValueError("nope")

    relay.on("on_message", fail)
    a = connect(relay)
    sid = a.session_id
    subscribe(a, "c1")
    a.send("fail")
    wait_for(lambda: ("on_finish", sid) in relay.events)
    assert relay.names(sid) == ["on_connect", "on_subscribe", "on_error", "on_unsubscribe", "on_finish"]
    a.disconnect()


def test_on_disconnect_receives_the_reason_only_when_it_asks(make_server_thread):
    server = make_server_thread(close_timeout=0.3)
    seen = []
    server.on("on_disconnect", lambda request, socket, context: seen.append("three-args"))
    server.on("on_disconnect", lambda request, socket, context, reason=None: seen.append(reason))
    a = connect(server)
    a.disconnect()
    wait_for(lambda: len(seen) == 2)
    assert seen == ["three-args", Reason.CLIENT_CLOSED]


# -- out of band -----------------------------------------------------------------

def test_out_of_band_calls_from_a_plain_os_thread(relay):
    with connect(relay) as a, connect(relay, "xhr-polling") as b:
        subscribe(b, "alerts")
        wait_for(lambda: channels_of(relay, b.session_id))
        results = {}

        def worker():
            results["broadcast"] = socketio_wsgi.broadcast("to everyone")
            results["channel"] = socketio_wsgi.broadcast_channel({"alert": "é😀"}, "alerts")
            socketio_wsgi.send(a.session_id, "just a")
            results["thread"] = threading.current_thread() is not threading.main_thread()

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(10)
        assert results == {"broadcast": 2, "channel": 1, "thread": True}
        assert a.receive_many(2, timeout=5) == ["to everyone", "just a"]
        assert b.receive_many(2, timeout=5) == ["to everyone", {"alert": "é😀"}]


def test_out_of_band_calls_from_a_greenlet_in_the_server(relay):
    with connect(relay) as a:
        def from_greenlet():
            return gevent.spawn(socketio_wsgi.send, a.session_id, "from a greenlet").get(timeout=5)

        relay.call(from_greenlet)
        assert a.receive(timeout=5) == "from a greenlet"


def test_no_socket_cases(relay):
    with pytest.raises(NoSocket):
        socketio_wsgi.broadcast("nobody is here")
    with pytest.raises(NoSocket):
        socketio_wsgi.send("12345678901234567890", "who?")
    with connect(relay) as a:
        with pytest.raises(NoSocket):
            socketio_wsgi.broadcast_channel("empty", "no-such-channel")
        subscribe(a, "brief")
        wait_for(lambda: channels_of(relay, a.session_id))
        assert socketio_wsgi.broadcast_channel("one", "brief") == 1
        unsubscribe(a, "brief")
        wait_for(lambda: not channels_of(relay, a.session_id))
        with pytest.raises(NoSocket):  # the empty channel was forgotten
            socketio_wsgi.broadcast_channel("gone", "brief")
        sid = a.session_id
    wait_for(lambda: ("on_finish", sid) in relay.events)
    with pytest.raises(NoSocket):
        socketio_wsgi.send(sid, "too late")
