"""Issue 10: limits, hostile HTTP, slow readers, proxies — the server keeps serving."""
from __future__ import annotations

import socket
import string
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from socketio_wsgi import Reason
from socketio_wsgi.client import Client, ConnectionClosedError
from servers import wait_for
from test_core import http_request

DOCUMENTED = {200, 204, 304, 400, 403, 404, 405, 411, 413, 414, 426, 429, 431, 501, 503}


def test_websocket_client_that_does_not_read_is_dropped_at_the_queue_limit(make_server_thread):
    server = make_server_thread(max_queue_messages=200, max_queue_bytes=1 << 20)
    server.record("on_disconnect")
    flood = "x" * 60_000

    def flood_me(request, socket, context, message):
        for _ in range(500):  # ~30 MB: far more than the socket buffers hold
            if not socket.send(flood):
                break

    server.on("on_message", flood_me)
    client = Client(server.url, transport="websocket", timeout=5)
    client.connect()
    sid = client.session_id
    client.send("flood me")  # and never read again
    wait_for(lambda: ("on_disconnect", sid, Reason.LIMIT_EXCEEDED) in server.events, timeout=20)
    assert server.call(lambda: sid not in server.engine.sessions)
    client.disconnect()


def test_polling_client_that_never_polls_is_dropped_at_the_queue_limit(make_server_thread):
    server = make_server_thread(max_queue_messages=50)
    server.record("on_disconnect")
    client = Client(server.url, transport="xhr-polling", timeout=5)
    client.connect()
    sid = client.session_id
    for i in range(60):
        server.call(lambda i=i: server.engine.get(sid) and server.engine.get(sid).socket.send(f"n{i}"))
    wait_for(lambda: ("on_disconnect", sid, Reason.LIMIT_EXCEEDED) in server.events)


def test_max_sessions_answers_503(make_server_thread):
    server = make_server_thread(max_sessions=2)
    clients = [Client(server.url, transport="xhr-polling", timeout=5) for _ in range(2)]
    for client in clients:
        client.connect()
    code, _, body = http_request(server, "GET", "/socket.io/xhr-polling//1")
    assert code == 503 and b"max_sessions" in body
    for client in clients:
        client.disconnect()


def test_handshake_rate_per_address_answers_429(make_server_thread, caplog):
    server = make_server_thread(max_handshakes_per_minute=3)
    answers = [http_request(server, "GET", "/socket.io/xhr-polling//1")[0] for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    assert "new sessions a minute" in caplog.text


def test_proxy_headers_are_ignored_unless_trusted(make_server_thread):
    seen = []
    plain = make_server_thread()
    plain.on("on_connect", lambda request, socket, context: seen.append(request.remote_addr))
    trusted = make_server_thread(trust_proxy_headers=True)
    trusted.on("on_connect", lambda request, socket, context: seen.append(request.remote_addr))
    headers = {"X-Forwarded-For": "1.2.3.4, 203.0.113.9", "X-Forwarded-Proto": "https"}
    for server in (plain, trusted):
        with Client(server.url, transport="xhr-polling", headers=headers, timeout=5):
            pass
    assert seen == ["127.0.0.1", "203.0.113.9"]


def test_slowloris_style_partial_requests_do_not_block_others(server):
    idle = []
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"GET /socket.io/xhr-polling//1 HTTP/1.1\r\nHost: x\r\n")  # never finished
        idle.append(sock)
    try:
        with Client(server.url, transport="websocket", timeout=5) as client:
            client.send("through")
            assert client.receive(timeout=5) == "through"
    finally:
        for sock in idle:
            sock.close()


def test_garbage_bytes_on_the_socket_get_an_http_error_not_a_crash(server):
    for junk in (b"\x00\xff\xfe garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"<policy-file-request/>\x00", b"\r\n\r\n" * 10):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(junk)
        try:
            answer = sock.recv(4096)
        except (ConnectionResetError, socket.timeout):
            answer = b""
        sock.close()
        assert not answer or answer.startswith(b"HTTP/1.")
        assert b" 500 " not in answer[:20]
    with Client(server.url, transport="websocket", timeout=5) as client:
        client.send("alive")
        assert client.receive(timeout=5) == "alive"


_path_piece = st.one_of(
    st.sampled_from(["socket.io", "websocket", "xhr-polling", "jsonp-polling", "htmlfile",
                     "xhr-multipart", "flashsocket", "send", "status", "socket.io.js", "",
                     "12345678901234567890", "0", "..", "%00", "%2F", "é"]),
    st.text(string.ascii_letters + string.digits + "-_.~%", max_size=12))
_requests = st.fixed_dictionaries({
    "method": st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"]),
    "path": st.lists(_path_piece, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts)),
    "headers": st.dictionaries(
        st.sampled_from(["Origin", "Content-Type", "Upgrade", "Connection", "Cookie",
                         "Sec-WebSocket-Version", "Sec-WebSocket-Key", "Authorization", "X-Junk"]),
        st.text(string.printable.replace("\r", "").replace("\n", ""), max_size=40), max_size=4),
    "body": st.one_of(st.none(), st.binary(max_size=300),
                      st.text(max_size=200).map(lambda t: ("data=" + t).encode("utf-8", "surrogatepass"))),
})


@pytest.fixture(scope="module")
def fuzz_target():
    from servers import ServerThread
    server = ServerThread(polling_duration=0.2, close_timeout=0.5, status_token="tok")
    server.echo()
    yield server
    server.stop()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=_requests)
def test_random_http_requests_get_documented_statuses(fuzz_target, request):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", fuzz_target.port, timeout=10)
    try:
        try:
            conn.request(request["method"], request["path"], body=request["body"],
                         headers=request["headers"])
        except UnicodeEncodeError:
            return  # http.client cannot even send that; nothing reached the server
        response = conn.getresponse()
        body = response.read()
    except http.client.RemoteDisconnected:
        return  # a connection closed without an answer is allowed for garbage upgrades
    finally:
        conn.close()
    assert response.status in DOCUMENTED | {101}, (request, response.status, body[:200])
    assert b"Traceback" not in body


def test_server_still_serves_after_the_fuzzing(fuzz_target):
    with Client(fuzz_target.url, transport="websocket", timeout=5) as client:
        client.send("still serving")
        assert client.receive(timeout=5) == "still serving"
    assert fuzz_target.call(lambda: fuzz_target.engine.stats.handler_errors) == 0
