"""Issue 3: the core over real sockets on 127.0.0.1, for websocket and xhr-polling."""
from __future__ import annotations

import http.client
import logging
import socket
import time

import gevent
import pytest

from socketio_wsgi import ConnectionRefused, Reason
from socketio_wsgi.client import Client, ConnectionClosedError
from servers import wait_for

TRANSPORTS = ["websocket", "xhr-polling"]

PAYLOADS = [
    "hello",
    "café, 日本語, Ünïcödé",
    "emoji 😀 and 👋🏽 together",
    {"user": "al", "tags": ["x", "y"], "n": None, "nested": {"é": "😀"}},
    "~m~5~m~hello",
    "",
]


def connect(server, transport, **kw) -> Client:
    client = Client(server.url, transport=transport, timeout=10, **kw)
    client.connect()
    return client


def http_request(server, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_handshake_gives_a_session_id_and_registers_the_session(server, transport):
    with connect(server, transport) as client:
        sid = client.session_id
        assert sid.isdigit() and len(sid) >= 16
        assert server.call(lambda: sid in server.engine.sessions)
        wait_for(lambda: ("on_connect", sid) in server.events)


def test_session_ids_are_unique_and_unpredictable(server):
    ids = set()
    for _ in range(20):
        with connect(server, "xhr-polling") as client:
            ids.add(client.session_id)
    assert len(ids) == 20
    assert len({i[:6] for i in ids}) > 10  # no shared prefix or counter


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("payload", PAYLOADS, ids=["ascii", "non-ascii", "emoji", "json", "frame-in-data", "empty"])
def test_echo_round_trips_exactly(server, transport, payload):
    with connect(server, transport) as client:
        client.send(payload)
        assert client.receive(timeout=5) == payload
        wait_for(lambda: ("on_message", client.session_id, payload) in server.events)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_one_mebibyte_message_echoes(server, transport):
    big = ("0123456789abcdef" * 65536)[: 1024 * 1024 - 6] + "é😀"  # exactly 1 MiB of UTF-8
    with connect(server, transport) as client:
        client.send(big)
        assert client.receive(timeout=20) == big


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_thousand_messages_arrive_in_order(server, transport):
    with connect(server, transport) as client:
        for i in range(1000):
            client.send(f"m{i}")
        got = client.receive_many(1000, timeout=30)
        assert got == [f"m{i}" for i in range(1000)]


def test_several_messages_in_one_websocket_frame_are_all_delivered(server):
    with connect(server, "websocket") as client:
        client.send_payload("~m~3~m~one~m~3~m~two~m~5~m~~h~99~m~5~m~three")
        assert client.receive_many(3, timeout=5) == ["one", "two", "three"]


def test_polling_get_returns_all_queued_messages_at_once(make_server_thread):
    server = make_server_thread()
    server.on("on_message", lambda r, s, c, m: [s.send(f"{m}-{i}") for i in range(5)])
    with connect(server, "xhr-polling") as client:
        client.send("x")
        # The POST answer comes after the handler ran, so all five are queued now.
        status, _, body = http_request(server, "GET", f"/socket.io/xhr-polling/{client.session_id}/1")
        assert status == 200
        assert body.decode() == "".join(f"~m~3~m~x-{i}" for i in range(5))


def test_second_concurrent_poll_answers_the_first_one_empty(make_server_thread):
    server = make_server_thread(polling_duration=5)
    with connect(server, "xhr-polling") as client:
        sid = client.session_id
        first = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        first.request("GET", f"/socket.io/xhr-polling/{sid}/1")
        time.sleep(0.2)
        second = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        second.request("GET", f"/socket.io/xhr-polling/{sid}/2")
        r1 = first.getresponse()
        assert (r1.status, r1.read()) == (200, b"")
        server.call(lambda: server.engine.get(sid).socket.send("for the second"))
        r2 = second.getresponse()
        assert (r2.status, r2.read()) == (200, b"~m~14~m~for the second")
        first.close()
        second.close()


def test_wrapped_app_still_serves_its_own_urls(server):
    for path in ("/", "/page", "/socket.io", "/socket.iox/y"):
        status, _, body = http_request(server, "GET", path)
        assert status == 200
        assert body == b"hello from the wrapped app " + path.encode()


def test_websocket_client_that_stops_answering_heartbeats_is_dropped(make_server_thread):
    server = make_server_thread(heartbeat_interval=0.3, heartbeat_timeout=0.3)
    server.record("on_disconnect", "on_finish")
    client = connect(server, "websocket", auto_heartbeat=False)
    sid = client.session_id
    wait_for(lambda: ("on_finish", sid) in server.events, timeout=5)
    assert server.events == [("on_disconnect", sid, Reason.HEARTBEAT_TIMEOUT), ("on_finish", sid)]
    with pytest.raises(ConnectionClosedError):
        client.receive(timeout=2)
    assert server.call(lambda: sid not in server.engine.sessions)


def test_websocket_client_answering_heartbeats_stays_connected(make_server_thread):
    server = make_server_thread(heartbeat_interval=0.1, heartbeat_timeout=0.2)
    server.echo()
    with connect(server, "websocket") as client:
        with pytest.raises(TimeoutError):  # reading for 1 s echoes ~10 heartbeats
            client.receive(timeout=1.0)
        client.send("still here")
        assert client.receive(timeout=5) == "still here"
        assert server.call(lambda: server.engine.get(client.session_id).core.hb_acked) >= 3


def test_polling_client_that_vanishes_is_dropped_by_the_close_timeout(make_server_thread):
    server = make_server_thread(close_timeout=0.3)
    server.record("on_disconnect", "on_finish")
    client = connect(server, "xhr-polling")
    sid = client.session_id
    wait_for(lambda: ("on_finish", sid) in server.events, timeout=5)
    assert server.events == [("on_disconnect", sid, Reason.CLOSE_TIMEOUT), ("on_finish", sid)]
    status, _, body = http_request(server, "GET", f"/socket.io/xhr-polling/{sid}/9")
    assert status == 404 and "unknown session" in body.decode()


def test_close_timeout_covers_the_gap_between_polls(make_server_thread):
    server = make_server_thread(close_timeout=0.5, polling_duration=0.3)
    server.echo()
    with connect(server, "xhr-polling") as client:
        for i in range(5):
            time.sleep(0.3)  # gaps shorter than close_timeout
            client.send(f"n{i}")
            assert client.receive(timeout=5) == f"n{i}"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_client_disconnect_fires_disconnect_then_finish_once(make_server_thread, transport):
    server = make_server_thread(close_timeout=0.3)
    server.record("on_connect", "on_disconnect", "on_finish")
    client = connect(server, transport)
    sid = client.session_id
    client.disconnect()
    wait_for(lambda: ("on_finish", sid) in server.events, timeout=5)
    time.sleep(0.2)
    assert server.names(sid) == ["on_connect", "on_disconnect", "on_finish"]


# -- handlers ------------------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
def test_on_connect_can_refuse_and_no_message_handler_runs(make_server_thread, transport):
    server = make_server_thread()

    def refuse(request, socket, context):
        raise ConnectionRefused("log in first")

    server.on("on_connect", refuse)
    server.record("on_message", "on_disconnect", "on_finish")
    client = Client(server.url, transport=transport, timeout=5)
    with pytest.raises(ConnectionClosedError) as info:
        client.connect()
    if transport == "websocket":
        assert info.value.code == 4403 and info.value.reason == "log in first"
    else:
        assert info.value.status == 403 and "log in first" in info.value.reason
    assert server.events == []
    assert server.call(lambda: len(server.engine.sessions)) == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_handler_error_fires_on_error_then_closes_cleanly(make_server_thread, transport):
    server = make_server_thread(close_timeout=0.3)
    server.record("on_connect", "on_error", "on_disconnect", "on_unsubscribe", "on_finish")

    def boom(request, socket, context, message):
        if message == "boom":
            raise RuntimeError("handler exploded")
        socket.send(message)

    server.on("on_message", boom)
    client = connect(server, transport)
    sid = client.session_id
    client.send("fine")
    assert client.receive(timeout=5) == "fine"
    client.send("boom")
    wait_for(lambda: ("on_finish", sid) in server.events, timeout=5)
    names = server.names(sid)
    assert names == ["on_connect", "on_error", "on_finish"]
    error = [e for e in server.events if e[0] == "on_error"][0][2]
    assert isinstance(error, RuntimeError) and str(error) == "handler exploded"
    assert server.call(lambda: sid not in server.engine.sessions)
    if transport == "websocket":
        with pytest.raises(ConnectionClosedError) as info:
            client.receive(timeout=5)
        assert info.value.code == 1011
    client.disconnect()


def test_context_lives_as_long_as_the_connection(make_server_thread):
    server = make_server_thread()

    def count(request, socket, context, message):
        context["n"] = context.get("n", 0) + 1
        socket.send(context["n"])

    server.on("on_message", count)
    with connect(server, "websocket") as a, connect(server, "websocket") as b:
        for _ in range(3):
            a.send("x")
        b.send("x")
        assert a.receive_many(3, timeout=5) == ["1", "2", "3"]
        assert b.receive(timeout=5) == "1"


def test_request_wraps_the_first_request_environ(make_server_thread):
    server = make_server_thread()
    seen = []
    server.on("on_connect", lambda request, socket, context: seen.append(request))
    with connect(server, "websocket", headers={"X-Test": "yes"}):
        wait_for(lambda: seen)
    request = seen[0]
    assert request.path == "/socket.io/websocket"
    assert request.headers["X-Test"] == "yes"
    assert request.META["REMOTE_ADDR"] == "127.0.0.1"


def test_handlers_of_one_session_run_in_order_and_sessions_do_not_wait(make_server_thread):
    server = make_server_thread()
    order = []

    def slow(request, socket, context, message):
        order.append(("start", message))
        if message.startswith("slow"):
            gevent.sleep(0.5)
        order.append(("end", message))
        socket.send(message)

    server.on("on_message", slow)
    with connect(server, "websocket") as a, connect(server, "websocket") as b:
        a.send("slow-1")
        a.send("a-2")
        time.sleep(0.1)
        b.send("b-1")
        assert b.receive(timeout=5) == "b-1"
        assert ("end", "slow-1") not in order  # b did not wait for a's slow handler
        assert a.receive_many(2, timeout=5) == ["slow-1", "a-2"]
    assert order.index(("end", "slow-1")) < order.index(("start", "a-2"))


def test_socket_broadcast_reaches_every_other_live_session(make_server_thread):
    server = make_server_thread()
    server.on("on_message", lambda r, s, c, m: s.broadcast(m))
    with connect(server, "websocket") as a, connect(server, "xhr-polling") as b, \
            connect(server, "websocket") as c:
        a.send("to all")
        assert b.receive(timeout=5) == "to all"
        assert c.receive(timeout=5) == "to all"
        with pytest.raises(TimeoutError):
            a.receive(timeout=0.3)


# -- bad input -----------------------------------------------------------------

@pytest.fixture
def bystander(server):
    """A healthy session that must not notice anything while others misbehave."""
    client = connect(server, "websocket")
    yield client
    client.send("still fine")
    assert client.receive(timeout=5) == "still fine"
    client.disconnect()


def warnings(caplog):
    return [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("socketio_wsgi")]


@pytest.mark.parametrize("payload, status, words", [
    ("~m~99~m~short", 400, "malformed payload"),
    ("hello", 400, "malformed payload"),
    ("~m~x~m~abc", 400, "malformed payload"),
    ("~m~6~m~~j~{x}", 400, "invalid JSON"),
    ("~m~13~m~__subscribe__", 400, "followed by its argument"),
])
def test_bad_post_payloads_get_400_logged_once(server, bystander, caplog, payload, status, words):
    with connect(server, "xhr-polling") as client:
        sid = client.session_id
        caplog.clear()
        code, _, body = http_request(server, "POST", f"/socket.io/xhr-polling/{sid}/send",
                                     body=b"data=" + payload.encode(),
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert code == status and words in body.decode()
        assert len(warnings(caplog)) == 1
        assert server.call(lambda: sid not in server.engine.sessions)


@pytest.mark.parametrize("body, status, words", [
    (b"data=\xff\xfe", 400, "not valid UTF-8"),
    (b"data=%FF%FE", 400, "not valid UTF-8"),
    (b"nodata=1", 400, "no data field"),
])
def test_undecodable_post_bodies_get_400(server, bystander, caplog, body, status, words):
    with connect(server, "xhr-polling") as client:
        caplog.clear()
        code, _, text = http_request(server, "POST", f"/socket.io/xhr-polling/{client.session_id}/send",
                                     body=body)
        assert code == status and words in text.decode()
        assert len(warnings(caplog)) == 1


def test_oversize_post_gets_413_before_the_body_is_read(make_server_thread, caplog):
    server = make_server_thread(max_message_size=1000, max_payload_size=2000)
    with connect(server, "xhr-polling") as client:
        caplog.clear()
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(f"POST /socket.io/xhr-polling/{client.session_id}/send HTTP/1.1\r\n"
                     f"Host: x\r\nContent-Length: 100000000\r\n\r\n".encode())
        answer = sock.recv(4096).decode()
        sock.close()
        assert answer.startswith("HTTP/1.1 413")
        assert len(warnings(caplog)) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_message_over_max_message_size_is_refused(make_server_thread, transport):
    server = make_server_thread(max_message_size=1000)
    server.record("on_message", "on_disconnect")
    client = connect(server, transport)
    sid = client.session_id
    if transport == "websocket":
        client.send("x" * 1001)
        with pytest.raises(ConnectionClosedError) as info:
            client.receive(timeout=5)
        assert info.value.code == 1009
    else:
        with pytest.raises(ConnectionClosedError) as info:
            client.send("x" * 1001)
        assert info.value.status == 413
    wait_for(lambda: server.call(lambda: sid not in server.engine.sessions))
    assert ("on_disconnect", sid, Reason.LIMIT_EXCEEDED) in server.events
    assert not [e for e in server.events if e[0] == "on_message"]


def test_websocket_frame_over_the_payload_limit_is_refused_from_its_header(make_server_thread):
    server = make_server_thread(max_message_size=1000, max_payload_size=2000)
    client = connect(server, "websocket")
    # Announce 1 GiB in the header and send nothing more: the server must not wait for it.
    header = bytes([0x81, 0x80 | 127]) + (1 << 30).to_bytes(8, "big") + b"\x00\x00\x00\x00"
    client._sock.sendall(header)  # noqa: SLF001 (raw bytes on purpose)
    with pytest.raises(ConnectionClosedError) as info:
        client.receive(timeout=5)
    assert info.value.code == 1009


@pytest.mark.parametrize("payload", ["~m~99~m~short", "~m~6~m~~j~{x}"])
def test_malformed_websocket_payload_closes_with_1007(server, bystander, caplog, payload):
    client = connect(server, "websocket")
    caplog.clear()
    client.send_payload(payload)
    with pytest.raises(ConnectionClosedError) as info:
        client.receive(timeout=5)
    assert info.value.code == 1007
    wait_for(lambda: len(warnings(caplog)) >= 1)
    time.sleep(0.1)
    assert len(warnings(caplog)) == 1


@pytest.mark.parametrize("opcode, data, code", [
    (0x1, b"~m~2~m~\xff\xfe", 1007),  # a text frame that is not UTF-8
    (0x2, b"\x00\x01", 1003),          # binary frames are not part of Socket.IO 0.6
])
def test_unusable_websocket_frames_close_with_their_code(server, bystander, opcode, data, code):
    client = connect(server, "websocket")
    client.send_frame(opcode, data)
    with pytest.raises(ConnectionClosedError) as info:
        client.receive(timeout=5)
    assert info.value.code == code


@pytest.mark.parametrize("path, status, words", [
    ("/socket.io/carrier-pigeon/", 404, "unknown transport"),
    ("/socket.io/xhr-polling/12345678901234567890/1", 404, "unknown session"),
    ("/socket.io/jsonp-polling//abc", 400, "callback index"),
])
def test_unknown_transport_and_session_get_clear_statuses(server, bystander, caplog, path, status, words):
    caplog.clear()
    code, _, body = http_request(server, "GET", path)
    assert code == status and words in body.decode()
    assert len(warnings(caplog)) == 1


def test_websocket_to_unknown_session_is_refused_before_upgrade(server, bystander):
    with pytest.raises(ConnectionClosedError) as info:
        _raw_upgrade(server, "/socket.io/websocket/12345678901234567890")
    assert info.value.status == 404
    assert info.value.reason == "unknown session"


def _raw_upgrade(server, path, origin=None):
    headers = {"Upgrade": "websocket", "Connection": "Upgrade",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
    if origin:
        headers["Origin"] = origin
    status, _, body = http_request(server, "GET", path, headers=headers)
    if status != 101:
        raise ConnectionClosedError(body.decode(), status=status)


def test_disallowed_origin_gets_403_on_every_transport(make_server_thread, caplog):
    server = make_server_thread(origins=["good.example:8000"])
    caplog.clear()
    with pytest.raises(ConnectionClosedError) as info:
        _raw_upgrade(server, "/socket.io/websocket", origin="http://evil.example")
    assert info.value.status == 403
    code, _, body = http_request(server, "GET", "/socket.io/xhr-polling//1",
                                 headers={"Origin": "http://evil.example"})
    assert code == 403 and "not allowed" in body.decode()
    assert len(warnings(caplog)) == 2
    # The allowed origin works and gets CORS headers with credentials.
    code, headers, body = http_request(server, "GET", "/socket.io/xhr-polling//1",
                                       headers={"Origin": "http://good.example:8000"})
    assert code == 200
    assert headers["Access-Control-Allow-Origin"] == "http://good.example:8000"
    assert headers["Access-Control-Allow-Credentials"] == "true"


def test_default_origin_policy_is_same_origin(make_server_thread):
    server = make_server_thread(origins=None)
    own = f"http://127.0.0.1:{server.port}"
    code, _, _ = http_request(server, "GET", "/socket.io/xhr-polling//1", headers={"Origin": own})
    assert code == 200
    code, _, _ = http_request(server, "GET", "/socket.io/xhr-polling//1",
                              headers={"Origin": "http://127.0.0.1:1"})
    assert code == 403


def test_session_cannot_be_driven_from_another_origin(server):
    with connect(server, "xhr-polling", origin="http://a.example") as client:
        code, _, body = http_request(server, "POST", f"/socket.io/xhr-polling/{client.session_id}/send",
                                     body=b"data=~m~2~m~hi", headers={"Origin": "http://b.example"})
        assert code == 403 and "origin" in body.decode()


def test_bad_input_never_produces_a_500_or_traceback(server, bystander):
    cases = [("GET", "/socket.io/"), ("GET", "/socket.io//"), ("DELETE", "/socket.io/xhr-polling//1"),
             ("POST", "/socket.io/xhr-polling//send"), ("PUT", "/socket.io/websocket"),
             ("GET", "/socket.io/websocket"), ("GET", "/socket.io/xhr-polling/%00/1"),
             ("GET", "/socket.io/" + "x" * 5000)]
    for method, path in cases:
        code, _, body = http_request(server, method, path)
        assert 400 <= code < 500, (method, path, code)
        assert b"Traceback" not in body


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_messages_sent_in_on_connect_follow_the_session_id(make_server_thread, transport):
    server = make_server_thread()
    server.on("on_connect", lambda request, socket, context: socket.send_and_broadcast("welcome"))
    with connect(server, transport) as first:
        assert first.receive(timeout=5) == "welcome"
        with connect(server, transport) as second:
            assert second.receive(timeout=5) == "welcome"
            assert first.receive(timeout=5) == "welcome"  # the broadcast of the second connect
