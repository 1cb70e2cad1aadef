"""socketio_wsgi.websocket.accept over real sockets on 127.0.0.1, and each
attack of issue 14 next to a bystander connection that keeps getting echoes."""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import tracemalloc

import pytest
from servers import ServerThread, wait_for
from websocket_support import WSClient, handshake, http_exchange, masked_frame

from socketio_wsgi.websocket import accept
from socketio_wsgi.wsframes import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, close_payload

KiB = 1024
MiB = 1024 * KiB


class EchoApp:
    """Echo on /echo (1 MiB limit), /small (64 KiB limit), /flood (1 s write
    deadline); /plain is an ordinary page.  Keeps the connections it served."""

    def __init__(self):
        self.connections = {}  # path -> the last connection served there

    def __call__(self, environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/plain":
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
            return [b"ok"]
        options = {"/small": {"max_size": 64 * KiB},
                   "/flood": {"write_timeout": 1.0, "write_limit": 16 * KiB},
                   "/nocompression": {"compression": False}}.get(path, {})
        ws = accept(environ, start_response, **options)
        if ws is None:
            return []
        self.connections[path] = ws
        for message in ws:
            ws.send(message)
        return []


@pytest.fixture
def app():
    return EchoApp()


@pytest.fixture
def server(make_server_thread, app) -> ServerThread:
    return make_server_thread(app)


@pytest.fixture
def bystander(server):
    client = WSClient(server.port, "/echo")
    yield client
    client.close()


def still_echoes(bystander: WSClient) -> None:
    for i in range(3):
        assert bystander.echo(f"still here {i}") == f"still here {i}"


# ------------------------------------------------------------------ basics
def test_echo_text_binary_and_a_large_message(server, bystander):
    c = WSClient(server.port, "/echo")
    assert c.echo("héllo 😀") == "héllo 😀"
    assert c.echo(b"\x00\xff" * 10) == b"\x00\xff" * 10
    big = os.urandom(MiB - 100)
    assert c.echo(big, timeout=20) == big
    c.send_raw(masked_frame(OP_CLOSE, close_payload(1000)))
    close, eof = c.wait_closed()
    assert close.code == 1000 and eof  # echoed, then the server ended TCP
    still_echoes(bystander)


def test_send_many_writes_each_message_as_its_own_frame_in_order(server, app, bystander):
    from socketio_wsgi.ws.connection import PreparedMessage
    c = WSClient(server.port, "/many")
    assert c.echo("x") == "x"
    conn = app.connections["/many"]
    shared = PreparedMessage("shared")
    server.call(lambda: conn.send_many(["a", b"\x01\x02", shared, "é", shared]))
    server.call(lambda: conn.send_many([]))  # nothing to send: no frame
    assert [c.receive(timeout=5) for _ in range(5)] == ["a", b"\x01\x02", "shared", "é", "shared"]
    assert c.echo("after") == "after"
    still_echoes(bystander)


def test_plain_requests_still_reach_the_app(server):
    status, _, body = http_exchange(server.port, b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, body) == (200, b"ok")


def test_server_close_handshake(server, app):
    import gevent
    c = WSClient(server.port, "/closing")
    assert c.echo("x") == "x"
    conn = app.connections["/closing"]
    server.call(lambda: gevent.spawn(conn.close, 4000, "bye") and None)
    for _ in range(100):
        if c.close_frame() is not None or not c.pump(5):
            break
    assert (c.close_frame().code, c.close_frame().reason) == (4000, "bye")
    c.send_raw(c.protocol.data_to_send())  # our protocol object echoes the close
    close, eof = c.wait_closed()
    assert eof  # the server ended TCP after the handshake
    wait_for(lambda: server.call(lambda: conn.closed and conn.close_code == 4000))


def test_compression_negotiated_and_used(server):
    c = WSClient(server.port, "/echo", extensions="permessage-deflate; client_max_window_bits")
    assert c.headers["sec-websocket-extensions"] == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    text = '{"user": "ann", "text": "%s"}' % ("hello " * 2000)
    assert c.echo(text) == text
    plain = WSClient(server.port, "/nocompression",
                     extensions="permessage-deflate; client_max_window_bits")
    assert "sec-websocket-extensions" not in plain.headers
    assert plain.echo(text) == text


# ------------------------------------------------------ malformed handshakes
MALFORMED = [
    ("key abc", {"Sec-WebSocket-Key": "abc"}, 400),
    ("no key", {"Sec-WebSocket-Key": None}, 400),
    ("version 99", {"Sec-WebSocket-Version": "99"}, 426),
    ("no version", {"Sec-WebSocket-Version": None}, 426),
    ("key of 15 bytes", {"Sec-WebSocket-Key": "MDEyMzQ1Njc4OWFiY2Rl"}, 400),
]


@pytest.mark.parametrize("path", ["/echo", "/socket.io/websocket"])
@pytest.mark.parametrize("name, change, status", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_handshakes_get_400_or_426_and_one_log_line(server, bystander, caplog, capfd,
                                                              path, name, change, status):
    caplog.set_level(logging.INFO)
    got, headers, _ = http_exchange(server.port, handshake(path, change))
    assert got == status
    if status == 426:
        assert headers["sec-websocket-version"] == "13"
    wait_for(lambda: [r for r in caplog.records if "handshake" in r.getMessage()])
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and not lines[0].exc_info, [r.getMessage() for r in lines]
    assert "Traceback" not in capfd.readouterr().err
    still_echoes(bystander)


@pytest.mark.parametrize("path", ["/echo", "/socket.io/websocket"])
def test_obs_folded_header_is_refused(server, bystander, caplog, capfd, path):
    caplog.set_level(logging.INFO)
    request = handshake(path, {"Sec-WebSocket-Key": "MDEyMzQ1Njc4OWFi"}).replace(
        b"MDEyMzQ1Njc4OWFi\r\n", b"MDEyMzQ1Njc4OWFi\r\n Y2RlZg==\r\n")
    status, _, _ = http_exchange(server.port, request)
    assert status == 400
    assert "Traceback" not in capfd.readouterr().err
    assert not [r for r in caplog.records if r.exc_info]
    still_echoes(bystander)


# ----------------------------------------- upgrades only where they belong
@pytest.mark.parametrize("transport", ["htmlfile", "xhr-multipart", "xhr-polling", "jsonp-polling"])
def test_upgrade_on_a_non_websocket_transport_is_refused_before_any_101(server, bystander, capfd,
                                                                        transport):
    status, _, body = http_exchange(server.port, handshake(f"/socket.io/{transport}"))
    assert status == 400
    assert b"no websocket upgrade" in body
    assert "Traceback" not in capfd.readouterr().err
    still_echoes(bystander)


def test_upgrade_on_the_websocket_transport_still_works(server):
    c = WSClient(server.port, "/socket.io/websocket")
    assert c.receive().startswith("~m~")  # the Socket.IO session id
    c.close()


# ---------------------------------------------------------------- fragments
def test_many_one_byte_fragments_cost_no_more_than_the_message(server, bystander):
    n = 100_000
    frames = (masked_frame(OP_BINARY, b"a", fin=False)
              + masked_frame(OP_CONT, b"b", fin=False) * (n - 2) + masked_frame(OP_CONT, b"c"))
    c = WSClient(server.port, "/echo", timeout=30)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        c.send_raw(frames)
        echoed = c.receive(timeout=60)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert echoed == b"a" + b"b" * (n - 2) + b"c"
    # One bytearray of 100 kB (plus one read buffer), not 100 000 objects (~50x).
    assert peak < 1 * MiB, peak
    still_echoes(bystander)


def test_zero_length_fragments_hit_the_limit(server, bystander):
    c = WSClient(server.port, "/small", timeout=10)
    c.send_raw(masked_frame(OP_TEXT, b"", fin=False))
    empty = masked_frame(OP_CONT, b"", fin=False)
    sent = 0
    try:
        for _ in range(64):  # 64 * 1024 empty frames cost 512 KiB > 64 KiB
            c.send_raw(empty * 1024)
            sent += 1024
    except (BrokenPipeError, ConnectionResetError):
        pass
    close, eof = c.wait_closed()
    assert close is not None and close.code == 1009
    assert eof
    still_echoes(bystander)


# ---------------------------------------------------------------- ping flood
def test_ping_flood_from_a_client_that_does_not_read(server, app, bystander):
    flooder = WSClient(server.port, "/flood", rcvbuf=4096)
    conn = wait_for(lambda: app.connections.get("/flood"))
    ping = masked_frame(OP_PING, b"p" * 125)
    batch = ping * 500
    deadline = time.monotonic() + 30
    sent = 0
    flooder.sock.settimeout(2)
    try:
        while time.monotonic() < deadline:  # never reads: pongs pile up server-side
            flooder.sock.sendall(batch)
            sent += 500
            if sent % 20_000 == 0:
                # The server keeps reading (our pings are taken) and keeps its
                # outgoing buffer bounded while it cannot write.
                assert server.call(lambda: conn.buffered) <= 16 * KiB + 200
                still_echoes(bystander)
            if server.call(lambda: conn.closed):
                break
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    # The pong writes missed their 1 s deadline: the connection was aborted and
    # its socket shut (the client sees EOF or a reset once it reads).
    wait_for(lambda: server.call(lambda: conn.closed), timeout=15)
    assert server.call(lambda: conn.close_code) == 1006
    assert server.call(lambda: conn.buffered) == 0
    flooder.sock.settimeout(5)
    got_eof = False
    for _ in range(100_000):
        try:
            if not flooder.sock.recv(262144):
                got_eof = True
                break
        except ConnectionResetError:
            got_eof = True
            break
    assert got_eof
    still_echoes(bystander)


# ------------------------------------------------------- invalid close frames
@pytest.mark.parametrize("payload, code", [
    ((999).to_bytes(2, "big"), 1002),
    ((1005).to_bytes(2, "big"), 1002),
    ((1006).to_bytes(2, "big"), 1002),
    ((1015).to_bytes(2, "big"), 1002),
    ((2999).to_bytes(2, "big"), 1002),
    ((5000).to_bytes(2, "big"), 1002),
    (b"\x03", 1002),
    ((1000).to_bytes(2, "big") + b"\xc3\x28", 1007),
], ids=["999", "1005", "1006", "1015", "2999", "5000", "one-byte", "reason-not-utf8"])
def test_invalid_close_frames(server, bystander, payload, code):
    c = WSClient(server.port, "/echo")
    c.send_raw(masked_frame(OP_CLOSE, payload))
    close, eof = c.wait_closed()
    assert close is not None and close.code == code
    assert eof
    still_echoes(bystander)


def test_valid_close_without_code_is_answered_without_code(server):
    c = WSClient(server.port, "/echo")
    c.send_raw(masked_frame(OP_CLOSE))
    close, eof = c.wait_closed()
    assert close.code == 1005 and eof


# ------------------------------------------------------- python -m socketio_wsgi
def test_runner_serves_accept_on_any_path(tmp_path):
    (tmp_path / "wsapp.py").write_text(
        "from socketio_wsgi.websocket import accept\n"
        "def application(environ, start_response):\n"
        "    ws = accept(environ, start_response)\n"
        "    if ws is None:\n"
        "        return []\n"
        "    for m in ws:\n"
        "        ws.send(m)\n"
        "    return []\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path)] + sys.path))
    proc = subprocess.Popen([sys.executable, "-m", "socketio_wsgi", "--port", str(port),
                             "--no-access-log", "wsapp:application"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def connected():
            try:
                return WSClient(port, "/any/path/at/all")
            except OSError:
                return None
        c = wait_for(connected, timeout=20, interval=0.1)
        assert c.echo("from the runner") == "from the runner"
        c.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# --------------------------------------------- Socket.IO broadcasts share one frame
def test_a_broadcast_is_compressed_once_for_all_recipients(make_server_thread, monkeypatch):
    from socketio_wsgi import broadcast
    from socketio_wsgi.ws import deflate as deflate_module

    calls = []
    original = deflate_module.Deflate.compress

    def counting(self, data):
        calls.append(len(data))
        return original(self, data)

    monkeypatch.setattr(deflate_module.Deflate, "compress", counting)
    server = make_server_thread()
    offer = "permessage-deflate; client_max_window_bits"
    clients = [WSClient(server.port, "/socket.io/websocket", extensions=offer) for _ in range(5)]
    for c in clients:
        assert c.receive().startswith("~m~")  # the session id
    wait_for(lambda: server.call(lambda: len(server.engine.sessions)) == 5)
    text = "broadcast " * 1000
    assert broadcast(text) == 5
    for c in clients:
        frame = c.receive()
        assert frame.endswith(text) and frame.startswith("~m~")
        c.close()
    # one compression of the 10 kB payload for the five recipients
    assert [n for n in calls if n >= len(text)] == [len(text) + len(f"~m~{len(text)}~m~")]


def test_a_websocket_the_app_leaves_open_is_closed_when_it_returns(make_server_thread):
    def app(environ, start_response):
        ws = accept(environ, start_response)
        if ws is not None:
            ws.send("bye")
            if environ["PATH_INFO"] == "/raise":
                raise RuntimeError("the app failed")
        return []

    server = make_server_thread(app)
    for path, code in (("/return", 1000), ("/raise", 1011)):
        c = WSClient(server.port, path)
        assert c.receive() == "bye"
        for _ in range(100):
            if c.close_frame() is not None or not c.pump(5):
                break
        assert c.close_frame().code == code
        c.send_raw(c.protocol.data_to_send())
        assert c.wait_closed()[1]  # then the server ends TCP
