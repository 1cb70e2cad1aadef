"""Engine.IO 4 / Socket.IO 5 on the wire, by hand: the handshake, polling,
the upgrade, and every bad-input case of issue 15 (each answered with a 400,
a CONNECT_ERROR or a close, one log line, and nothing disturbed for another
client)."""
from __future__ import annotations

import http.client
import json
import logging
from typing import Dict, Optional, Tuple

import pytest

from socketio_wsgi import ConnectionRefused
from tests.websocket_support import WSClient, handshake, http_exchange

PATH = "/socket.io/"


def request(port: int, method: str, query: str, body: Optional[bytes] = None,
            headers: Optional[Dict[str, str]] = None) -> Tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, PATH + "?" + query, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def open_polling(port: int) -> Dict:
    status, body = request(port, "GET", "EIO=4&transport=polling")
    assert status == 200 and body[:1] == b"0", body
    return json.loads(body[1:])


def connect_polling(port: int, namespace: str = "/", auth: str = "") -> Tuple[str, bytes]:
    """A polling link with a namespace joined: (eio sid, the CONNECT answer)."""
    sid = open_polling(port)["sid"]
    prefix = "" if namespace == "/" else namespace + ","
    answer = request(port, "POST", f"EIO=4&transport=polling&sid={sid}", f"40{prefix}{auth}".encode())
    assert answer == (200, b"ok")
    status, body = request(port, "GET", f"EIO=4&transport=polling&sid={sid}")
    assert status == 200
    return sid, body


def poll(port: int, sid: str) -> Tuple[int, bytes]:
    return request(port, "GET", f"EIO=4&transport=polling&sid={sid}")


def send(port: int, sid: str, payload: bytes) -> Tuple[int, bytes]:
    return request(port, "POST", f"EIO=4&transport=polling&sid={sid}", payload)


def start(make_server_thread, interval: float):
    srv = make_server_thread(heartbeat_interval=interval, heartbeat_timeout=interval,
                             max_payload_size=64 * 1024, max_message_size=64 * 1024)
    srv.handlers.add_named("echo", lambda request, socket, context, *args: args)
    return srv


@pytest.fixture
def server(make_server_thread):
    """Pings far apart: no ping shows up in the answers a test expects."""
    return start(make_server_thread, 60.0)


@pytest.fixture
def fast(make_server_thread):
    """Pings every second, for the tests of pings and of what times out."""
    return start(make_server_thread, 1.0)


def test_handshake_values(fast):
    data = open_polling(fast.port)
    assert data["upgrades"] == ["websocket"]
    assert data["pingInterval"] == 1000 and data["pingTimeout"] == 1000
    assert data["maxPayload"] == 64 * 1024
    assert len(data["sid"]) >= 20


def test_event_and_ack_over_polling_and_records(server):
    sid, connected = connect_polling(server.port)
    assert connected.startswith(b'40{"sid":"')
    assert send(server.port, sid, b'42["echo",1,"a"]\x1e421["echo",{"x":null}]') == (200, b"ok")
    status, body = poll(server.port, sid)
    assert body == b'431[{"x":null}]'


@pytest.mark.parametrize("query, code", [
    ("EIO=3&transport=polling", 5),
    ("EIO=5&transport=polling", 5),
    ("EIO=4&transport=flashsocket", 0),
    ("EIO=4", 0),
    ("EIO=4&transport=polling&sid=12345678901234567890", 1),
])
def test_bad_requests_answer_400_with_the_engine_io_code(server, caplog, query, code):
    caplog.set_level(logging.WARNING, "socketio_wsgi")
    status, body = request(server.port, "GET", query)
    assert status == 400
    assert json.loads(body)["code"] == code
    assert len([r for r in caplog.records if "EIO=4" in r.getMessage()]) == 1


def test_bad_methods(server):
    status, body = request(server.port, "POST", "EIO=4&transport=polling", b"40")
    assert status == 400 and json.loads(body)["code"] == 2
    sid = open_polling(server.port)["sid"]
    status, body = request(server.port, "PUT", f"EIO=4&transport=polling&sid={sid}", b"40")
    assert status == 400 and json.loads(body)["code"] == 3


def test_websocket_transport_without_upgrade_and_polling_with_one(server):
    status, body = request(server.port, "GET", "EIO=4&transport=websocket")
    assert status == 400
    raw = handshake(PATH + "?EIO=4&transport=polling")
    status, _, _ = http_exchange(server.port, raw)
    assert status == 400


def test_oversize_post_is_413_and_ends_the_link(server, caplog):
    caplog.set_level(logging.WARNING, "socketio_wsgi")
    sid, _ = connect_polling(server.port)
    other, _ = connect_polling(server.port)
    status, _ = send(server.port, sid, b"4" + b"x" * (64 * 1024 + 1))
    assert status == 413
    assert poll(server.port, sid)[0] == 400  # gone
    assert send(server.port, other, b'421["echo","still here"]') == (200, b"ok")
    assert poll(server.port, other) == (200, b'431["still here"]')


@pytest.mark.parametrize("payload", [
    b"9",                                   # unknown Engine.IO type
    b"",                                    # empty packet
    b"bnot base64!",                        # bad base64
    b"49",                                  # unknown Socket.IO type
    b"42[oops",                             # malformed JSON
    b'42{"not":"an array"}',                # an event that is not an array
    b'451-["echo",{"_placeholder":true,"num":1}]',  # placeholder past the attachments
    b'40/x' + b"y" * 300 + b",",            # namespace over the limit
    b"5",                                   # upgrade without probe
    b"3",                                   # pong without ping
    b'44{"message":"no"}',                  # CONNECT_ERROR from a client
    b'42["__subscribe__",17.5e400]',        # not a number JSON can carry
    b'42["echo"]\x1e44',                     # a good packet then a bad one
])
def test_invalid_packets_end_the_link_with_one_log_line(server, caplog, payload):
    caplog.set_level(logging.WARNING, "socketio_wsgi")
    closed = []
    server.handlers.add("on_disconnect", lambda request, socket, context, reason=None: closed.append(reason))
    sid, _ = connect_polling(server.port)
    other, _ = connect_polling(server.port)
    caplog.clear()
    status, body = send(server.port, sid, payload)
    assert status in (400, 413), body  # 413 for a limit (the namespace's length)
    assert "code" in json.loads(body)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert not [r for r in caplog.records if r.exc_info]
    assert poll(server.port, sid)[0] == 400
    assert closed == ["protocol error"]
    assert send(server.port, other, b'421["echo",2]') == (200, b"ok")
    assert poll(server.port, other) == (200, b"431[2]")


def test_unknown_namespace_is_connect_error(server):
    sid, body = connect_polling(server.port, "/nope")
    assert body == b'44/nope,{"message":"Invalid namespace"}'
    # The link stays usable: "/" can still be joined.
    assert send(server.port, sid, b"40") == (200, b"ok")
    assert poll(server.port, sid)[1].startswith(b'40{"sid":')


def test_refused_connect_is_connect_error_with_the_reason(server):
    def on_connect(request, socket, context, auth=None):
        raise ConnectionRefused(f"no entry for {auth['user']}")

    server.handlers.add("on_connect", on_connect)
    _, body = connect_polling(server.port, auth='{"user":"eve"}')
    assert body == b'44{"message":"no entry for eve"}'


def test_an_ack_never_sent_is_ignored_with_one_log_line(server, caplog):
    caplog.set_level(logging.WARNING, "socketio_wsgi")
    sid, _ = connect_polling(server.port)
    caplog.clear()
    assert send(server.port, sid, b"\x1e".join([b"437[1]"] * 500)) == (200, b"ok")
    assert len([r for r in caplog.records if "never sent" in r.getMessage()]) == 1
    assert send(server.port, sid, b'428["echo","ok"]') == (200, b"ok")
    assert poll(server.port, sid) == (200, b'438["ok"]')


def test_a_packet_for_a_namespace_not_joined_is_ignored(server, caplog):
    caplog.set_level(logging.WARNING, "socketio_wsgi")
    sid, _ = connect_polling(server.port)
    assert send(server.port, sid, b"\x1e".join([b'42/admin,["echo"]'] * 500)) == (200, b"ok")
    assert len([r for r in caplog.records if "has not joined" in r.getMessage()]) == 1
    assert send(server.port, sid, b'421["echo"]') == (200, b"ok")
    assert poll(server.port, sid) == (200, b"431[]")


def test_attachments_that_never_arrive_end_the_link(fast, caplog):
    caplog.set_level(logging.WARNING, "socketio_wsgi")
    sid, _ = connect_polling(fast.port)
    assert send(fast.port, sid, b'451-["echo",{"_placeholder":true,"num":0}]') == (200, b"ok")
    for _ in range(5):  # pings, then the close once ping_timeout has passed
        status, body = poll(fast.port, sid)
        if status == 400 or body.endswith(b"1"):
            break
    assert status == 400 or body.endswith(b"1")
    assert [r for r in caplog.records if "attachments did not arrive" in r.getMessage()]
    assert poll(fast.port, sid)[0] == 400


def test_overlapping_polls_are_refused(server):
    import threading

    sid, _ = connect_polling(server.port)
    answers = []
    polls = [threading.Thread(target=lambda: answers.append(poll(server.port, sid))) for _ in range(2)]
    for thread in polls:
        thread.start()
    for thread in polls:
        thread.join(10)
    assert len(answers) == 2
    refused = [body for status, body in answers if status == 400]
    # Either the second poll overlapped the first (refused, and the link
    # closed: the first answers "1"), or the first had already been answered
    # by the close and the second found no session.
    assert refused, answers
    assert any(body.endswith(b"1") for status, body in answers if status == 200), answers
    assert poll(server.port, sid)[0] == 400


def test_no_pong_ends_the_link_with_ping_timeout(fast):
    reasons = []
    fast.handlers.add("on_disconnect", lambda request, socket, context, reason=None: reasons.append(reason))
    sid, _ = connect_polling(fast.port)
    assert poll(fast.port, sid) == (200, b"2")  # the ping
    status, body = poll(fast.port, sid)  # no pong: the link ends
    assert body == b"1"
    assert reasons == ["heartbeat timeout"]


def test_pong_keeps_the_link(fast):
    sid, _ = connect_polling(fast.port)
    for _ in range(3):
        assert poll(fast.port, sid) == (200, b"2")
        assert send(fast.port, sid, b"3") == (200, b"ok")
    assert send(fast.port, sid, b'421["echo"]') == (200, b"ok")
    assert poll(fast.port, sid) == (200, b"431[]")


def receive(ws: WSClient):
    """The next message that is not a ping (pings are answered)."""
    for _ in range(10):
        message = ws.receive()
        if message != "2":
            return message
        ws.send("3")
    raise AssertionError("only pings")


def ws_path(sid: str = "") -> str:
    return PATH + "?EIO=4&transport=websocket" + (f"&sid={sid}" if sid else "")


def test_websocket_only_session(server):
    ws = WSClient(server.port, ws_path())
    try:
        opened = receive(ws)
        assert opened.startswith("0{")
        ws.send("40")
        assert receive(ws).startswith('40{"sid":')
        ws.send('421["echo",1]')
        assert receive(ws) == "431[1]"
        ws.send('451-["echo",{"_placeholder":true,"num":0}]')
        ws.send(b"\x00\xff")
        # a binary echo answers with a binary ack: header then attachment
        ws.send('452-7["echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
        ws.send(b"a")
        ws.send(b"b")
        assert receive(ws) == '462-7[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
        assert receive(ws) == b"a"
        assert receive(ws) == b"b"
    finally:
        ws.close()


def test_upgrade_then_a_second_websocket_is_refused(server):
    sid, _ = connect_polling(server.port)
    ws = WSClient(server.port, ws_path(sid))
    try:
        ws.send("2probe")
        assert receive(ws) == "3probe"
        assert poll(server.port, sid) == (200, b"6")  # the paused poll's noop
        ws.send("5")
        ws.send('421["echo","over ws"]')
        assert receive(ws) == '431["over ws"]'
        status, _, _ = http_exchange(server.port, handshake(ws_path(sid)))
        assert status == 400
        assert poll(server.port, sid)[0] == 400  # polling is over for this sid
        ws.send('422["echo","still"]')
        assert receive(ws) == '432["still"]'
    finally:
        ws.close()


def test_bad_frame_on_websocket_closes_it(server):
    ws = WSClient(server.port, ws_path())
    try:
        receive(ws)
        ws.send("40")
        receive(ws)
        ws.send("42[nope")
        close, _ = ws.wait_closed()
        assert close is not None and close.code == 1007
    finally:
        ws.close()


def test_origin_allow_list_applies(make_server_thread):
    srv = make_server_thread(origins=["good.example"])
    status, body = request(srv.port, "GET", "EIO=4&transport=polling", headers={"Origin": "http://evil.example"})
    assert status == 403 and json.loads(body)["code"] == 4
    status, _ = request(srv.port, "GET", "EIO=4&transport=polling", headers={"Origin": "http://good.example"})
    assert status == 200


def test_requests_without_eio_still_reach_0_6(server):
    status, _ = request(server.port, "GET", "")
    assert status == 404  # "/socket.io/" with no transport, as before
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/socket.io/xhr-polling//1")
    response = conn.getresponse()
    assert response.status == 200 and response.read().startswith(b"~m~")
    conn.close()


def test_a_poll_answer_the_client_does_not_read_ends_the_link(make_server_thread):
    import socket as socketlib

    from servers import wait_for

    from socketio_wsgi.outbound import Emission

    srv = make_server_thread(write_timeout=1.0, max_queue_bytes=64 << 20, max_payload_size=64 << 20,
                             max_message_size=1 << 20)
    reasons = []
    srv.handlers.add("on_disconnect", lambda request, socket, context, reason=None: reasons.append(reason))
    sid, _ = connect_polling(srv.port)
    [session] = srv.engine.sessions.values()
    srv.call(session.push, Emission("big", ("x" * (24 << 20),)))
    sock = socketlib.socket()
    sock.setsockopt(socketlib.SOL_SOCKET, socketlib.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", srv.port))
    try:
        sock.sendall(f"GET {PATH}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        wait_for(lambda: reasons, timeout=15)  # nothing read meanwhile
    finally:
        sock.close()
    assert reasons == ["write timeout"]
    assert not srv.middleware.v4.links


def test_oversize_websocket_frame_closes_with_1009(server):
    ws = WSClient(server.port, ws_path())
    try:
        receive(ws)
        ws.send("40")
        receive(ws)
        ws.send("4" + "x" * (64 * 1024 + 1))
        close, _ = ws.wait_closed()
        assert close is not None and close.code == 1009
    finally:
        ws.close()


def test_fan_out_to_many_websocket_clients_of_both_generations(server):
    from servers import wait_for

    from socketio_wsgi.client import Client
    from socketio_wsgi.protocol import encode

    server.handlers.add_named("join", lambda request, socket, context, channel: socket.subscribe(channel))
    clients = []
    try:
        for _ in range(100):
            ws = WSClient(server.port, ws_path())
            clients.append(ws)
            receive(ws)
            ws.send("40")
            receive(ws)
            ws.send('421["join","fan"]')
            assert receive(ws) == "431[true]"
        old = Client(server.url, transport="websocket", timeout=10)
        old.connect()
        old.send_payload(encode(["__subscribe__", "fan"]))
        wait_for(lambda: len(server.engine.backend.channels.get("fan", ())) == 101, timeout=10)
        reached = server.middleware.emit_channel("tick", {"n": 1}, b"\x07", channel="fan")
        assert reached == 101
        for ws in clients:
            assert receive(ws) == '451-["tick",{"n":1},{"_placeholder":true,"num":0}]'
            assert receive(ws) == b"\x07"
        assert old.receive(timeout=10) == {"$event": "tick", "args": [{"n": 1}, "Bw=="]}
        old.disconnect()
    finally:
        for ws in clients:
            ws.close()


def test_refusals_the_client_never_collects_are_bounded(make_server_thread):
    srv = make_server_thread(max_queue_messages=100)
    sid = open_polling(srv.port)["sid"]
    assert send(srv.port, sid, b"\x1e".join([b"40/nope,"] * 100)) == (200, b"ok")
    status, _ = send(srv.port, sid, b"40/nope,")
    assert status == 413
    assert poll(srv.port, sid)[0] == 400


def test_sessions_beyond_max_sessions_get_503_before_any_upgrade(make_server_thread):
    srv = make_server_thread(max_sessions=1)
    open_polling(srv.port)
    status, _ = request(srv.port, "GET", "EIO=4&transport=polling")
    assert status == 503
    status, _, _ = http_exchange(srv.port, handshake(ws_path()))
    assert status == 503


def test_two_namespaces_on_one_connection(server):
    closed = []
    server.handlers.add_named("where", lambda request, socket, context: socket.namespace, namespace="/admin")
    server.handlers.add("on_disconnect", lambda request, socket, context, reason=None:
                        closed.append((socket.namespace, reason)))
    sid, _ = connect_polling(server.port)
    assert send(server.port, sid, b"40/admin,") == (200, b"ok")
    assert poll(server.port, sid)[1].startswith(b'40/admin,{"sid":')
    assert send(server.port, sid, b'421["echo","root"]\x1e42/admin,2["where"]') == (200, b"ok")
    assert poll(server.port, sid) == (200, b'431["root"]\x1e43/admin,2["/admin"]')
    assert send(server.port, sid, b"41/admin,") == (200, b"ok")
    assert send(server.port, sid, b'423["echo"]') == (200, b"ok")
    assert poll(server.port, sid) == (200, b"433[]")
    assert closed == [("/admin", "client closed")]
    assert send(server.port, sid, b"1") == (200, b"ok")  # the client closes the connection
    assert closed == [("/admin", "client closed"), ("/", "client closed")]
