"""Issue 13: what one hostile client can cost, tried over real sockets.

Every attack runs in its own thread, again and again, while a *bystander*
session echoes messages: the bystander's echoes must all arrive, in order,
while the attack is still running, and again after it.  Then the
attacker's session must be gone, its socket shut and its memory released
(the session object garbage) within ``write_timeout + heartbeat_timeout``.
How long the bystander waited is measured by ``python -m bench --scenarios
attacks``, never asserted here.
"""
from __future__ import annotations

import base64
import gc
import os
import http.client
import logging
import socket
import threading
import time
import weakref
from typing import Callable, List
from urllib.parse import quote

import pytest

from socketio_wsgi import Reason
from socketio_wsgi.client import Client
from socketio_wsgi.protocol import encode, encode_frame
from servers import wait_for

ORIGIN = "http://page.example"
ATTACK_ROUNDS = 200  # an upper bound: every attack loop also stops when the bystander is done


def post(server, sid: str, payload: str, transport: str = "xhr-polling", origin: str = ORIGIN):
    body = ("data=" + quote(payload, safe="")).encode()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("POST", f"/socket.io/{transport}/{sid}/send", body=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": origin})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def handshake(server, transport: str = "xhr-polling") -> str:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", f"/socket.io/{transport}//{time.time_ns()}", headers={"Origin": ORIGIN})
        body = conn.getresponse().read().decode()
    finally:
        conn.close()
    assert body.startswith("~m~"), body
    return body.split("~m~")[2]


class Attack:
    """Runs ``round_()`` in a thread until stopped (or ATTACK_ROUNDS); counts rounds."""

    def __init__(self, round_: Callable[[], None]):
        self.round_ = round_
        self.rounds = 0
        self.error: List[BaseException] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.is_set() and self.rounds < ATTACK_ROUNDS:
                self.round_()
                self.rounds += 1
        except BaseException as exc:  # handed to the test thread
            self.error.append(exc)

    def __enter__(self) -> "Attack":
        self.thread.start()
        wait_for(lambda: self.rounds >= 1 or self.error, timeout=30)
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive()
        if self.error:
            raise self.error[0]


def bystander_echoes(client: Client, attack: Attack, count: int = 20) -> None:
    """``count`` echoes, in order, each while the attack still runs."""
    for i in range(count):
        client.send(f"bystander {i}")
        assert client.receive(timeout=20) == f"bystander {i}"
        assert attack.thread.is_alive(), "the attack ended before the bystander was served"


@pytest.fixture
def arena(make_server_thread):
    """An echo server with small limits; handlers count what they ran."""
    server = make_server_thread(origins="*", max_channels_per_session=50,
                                max_messages_per_payload=2_000, max_queue_messages=500,
                                write_timeout=1.0, heartbeat_interval=5.0, heartbeat_timeout=5.0,
                                close_timeout=2.0)
    server.handled = {"message": 0, "subscribe": 0}

    def echo(request, socket, context, message):
        server.handled["message"] += 1
        socket.send(message)

    def subscribed(request, socket, context, channel):
        server.handled["subscribe"] += 1

    server.on("on_message", echo)
    server.on("on_subscribe", subscribed)
    server.record("on_disconnect")
    return server


@pytest.fixture
def bystander(arena):
    client = Client(arena.url, transport="websocket", timeout=20)
    client.connect()
    yield client
    client.send("after the attack")
    assert client.receive(timeout=20) == "after the attack"
    client.disconnect()


def raw_websocket(port: int):
    """A websocket to the Socket.IO endpoint that the test reads only when it wants."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /socket.io/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n\r\n").encode())
    data = b""
    while b"~m~" not in data or not data.rstrip().split(b"~m~")[-1].isdigit():
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    assert data.startswith(b"HTTP/1.1 101"), data
    return sock, data.split(b"~m~")[-1].decode()


def masked_text_frame(payload: bytes) -> bytes:
    assert len(payload) < 126
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + body


def session_ref(server, sid: str):
    return server.call(lambda: weakref.ref(server.engine.sessions[sid]))


def released(server, ref) -> bool:
    def check() -> bool:
        gc.collect()
        return ref() is None
    return server.call(check)


def test_a_flood_of_subscribe_markers_is_refused_at_the_channel_cap(arena, bystander):
    # 900 subscriptions in one payload (1,800 messages: under the payload cap)
    payload = encode([item for n in range(900) for item in ("__subscribe__", f"room-{n}")])
    answers, refs = [], []

    def round_():
        sid = handshake(arena)
        if len(refs) < 3:
            refs.append(session_ref(arena, sid))
        answers.append(post(arena, sid, payload)[0])

    with Attack(round_) as attack:
        bystander_echoes(bystander, attack)
    assert set(answers) == {413}
    # Each attacker subscribed 50 channels (the cap), not 5,000, and left them all.
    assert arena.handled["subscribe"] <= 50 * len(answers)
    assert arena.call(lambda: arena.engine.backend.channel_sizes()) == {}
    assert ("on_disconnect", bystander.session_id, Reason.LIMIT_EXCEEDED) not in arena.events
    wait_for(lambda: all(released(arena, ref) for ref in refs), timeout=5)


def test_a_payload_of_a_million_tiny_messages_is_refused_before_any_runs(arena, bystander):
    payload = encode_frame("a") * 400_000  # 3.2 MB of text, under max_payload_size
    answers = []
    before = arena.handled["message"]

    def round_():
        sid = handshake(arena)
        answers.append(post(arena, sid, payload)[:3:2])

    with Attack(round_) as attack:
        bystander_echoes(bystander, attack, count=5)
    assert {status for status, _ in answers} == {413}
    assert all(b"at most 2000 messages" in body or b"exceeds" in body for _, body in answers)
    # Only the bystander's own messages were handled.
    assert arena.handled["message"] - before == 5


def test_delivery_stops_the_moment_the_queue_limit_closes_the_session(arena, bystander):
    """1,999 messages (under the payload cap), echoed to a client that never
    polls: the session closes at the 501st echo and not one handler more runs."""
    payload = encode([f"m{n}" for n in range(1_999)])
    handled_per_round = []

    def round_():
        sid = handshake(arena)
        before = arena.handled["message"]
        status = post(arena, sid, payload)[0]
        assert status == 200
        wait_for(lambda: ("on_disconnect", sid, Reason.LIMIT_EXCEEDED) in arena.events)
        handled_per_round.append(arena.handled["message"] - before)

    with Attack(round_) as attack:
        bystander_echoes(bystander, attack)
    # The bystander's echoes may interleave with one round; the attacker's
    # handler stops at the queue limit (500 queued + the one that broke it).
    assert min(handled_per_round) <= 501 + 20


@pytest.mark.parametrize("transport", ["htmlfile", "websocket"])
def test_a_client_that_stops_reading_is_shut_out_and_its_memory_freed(arena, bystander, transport):
    """The attacker connects, asks for a flood and never reads again: the
    pending write hits ``write_timeout`` (or the queue limit), its socket is
    shut and the session, with everything it held, is released."""
    flood = "x" * 250_000  # 60 of them: 15 MB, more than the kernel buffers of a connection
    arena.on("on_message", lambda request, socket, context, message:
             [socket.send(flood) for _ in range(60)] if message == "flood me" else None)
    closed_reasons: List[str] = []
    refs = []

    def round_():
        if transport == "htmlfile":
            sock = socket.create_connection(("127.0.0.1", arena.port), timeout=10)
            sock.sendall(b"GET /socket.io/htmlfile//1 HTTP/1.1\r\nHost: x\r\nOrigin: %s\r\n\r\n"
                         % ORIGIN.encode())
            head = b""
            while head.count(b"~m~") < 2 or b'"' not in head.split(b"~m~")[2]:
                chunk = sock.recv(4096)
                assert chunk, head
                head += chunk
            sid = head.split(b"~m~")[2].split(b'"')[0].decode()
            assert post(arena, sid, encode("flood me"), transport="htmlfile")[0] == 200
        else:
            sock, sid = raw_websocket(arena.port)
            sock.sendall(masked_text_frame(encode("flood me").encode()))
        refs.append(session_ref(arena, sid))
        started = time.monotonic()
        wait_for(lambda: sid not in arena.call(lambda: list(arena.engine.sessions)), timeout=10)
        reasons = [event[2] for event in arena.events if event[:2] == ("on_disconnect", sid)]
        closed_reasons.extend(reasons)
        # The server shut the socket: reading what is buffered ends in EOF or a reset.
        sock.settimeout(10)
        try:
            while sock.recv(1 << 20):
                pass
        except ConnectionResetError:
            pass
        assert time.monotonic() - started < 10
        sock.close()

    with Attack(round_) as attack:
        bystander_echoes(bystander, attack, count=10)
    assert set(closed_reasons) <= {Reason.WRITE_TIMEOUT, Reason.LIMIT_EXCEEDED,
                                   Reason.HEARTBEAT_TIMEOUT}
    wait_for(lambda: all(released(arena, ref) for ref in refs), timeout=5)


@pytest.mark.parametrize("bad", ["~j~NaN", "~j~[Infinity]", "~j~{\"a\": -Infinity}", '~j~"\\ud800"',
                                 '~j~["\\udc00x"]'])
def test_json_the_encoder_would_refuse_is_refused_at_decode(arena, bystander, bad, caplog):
    relayed = []
    arena.on("on_message", lambda request, socket, context, message: relayed.append(message))
    answers = []

    def round_():
        sid = handshake(arena)
        answers.append(post(arena, sid, encode_frame(bad)))
        wait_for(lambda: ("on_disconnect", sid, Reason.PROTOCOL_ERROR) in arena.events)

    with caplog.at_level(logging.WARNING, logger="socketio_wsgi"):
        with Attack(round_) as attack:
            bystander_echoes(bystander, attack, count=5)
    assert {status for status, _, _ in answers} == {400}
    assert all(b"malformed payload" in body for _, _, body in answers)
    assert not [m for m in relayed if not str(m).startswith("bystander")]
    assert "handler error" not in caplog.text and "Traceback" not in caplog.text
    assert len([r for r in caplog.records if "bad payload" in r.getMessage()]) == len(answers)


REFUSALS = [
    ("GET", "/socket.io/no-such-transport/", 404),
    ("GET", "/socket.io/xhr-polling/12345678901234567890/1", 404),
    ("POST", "/socket.io/xhr-polling/12345678901234567890/send", 404),
    ("POST", "/socket.io/xhr-polling//send", 400),
    ("PUT", "/socket.io/xhr-polling//1", 405),
    ("GET", "/socket.io/jsonp-polling//", 400),
]


@pytest.mark.parametrize("method,path,status", REFUSALS)
def test_refusals_carry_cors_headers_only_for_allowed_origins(make_server_thread, method, path,
                                                              status):
    server = make_server_thread(origins=["allowed.example"])
    for origin, allowed in (("http://allowed.example", True), ("http://evil.example", False)):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request(method, path, body=b"data=x" if method == "POST" else None,
                     headers={"Origin": origin})
        response = conn.getresponse()
        response.read()
        conn.close()
        headers = {k.lower() for k, _ in response.getheaders()}
        expected = status if allowed else 403
        assert response.status in (expected, status), (origin, response.status)
        assert ("access-control-allow-origin" in headers) is allowed
        assert ("access-control-allow-credentials" in headers) is allowed


def test_a_message_holding_the_old_multipart_boundary_cannot_forge_a_part(arena):
    conn = socket.create_connection(("127.0.0.1", arena.port), timeout=10)
    conn.sendall(b"GET /socket.io/xhr-multipart/ HTTP/1.1\r\nHost: x\r\nOrigin: %s\r\n\r\n"
                 % ORIGIN.encode())
    data = b""
    while b"\r\n\r\n" not in data or data.count(b"~m~") < 2:
        data += conn.recv(65536)
    head = data.split(b"\r\n\r\n")[0].decode()
    boundary = head.split('boundary="')[1].split('"')[0].encode()
    sid = data.split(b"~m~")[2].split(b"\n")[0].decode()
    forged = "x\n--socketio\nContent-Type: text/plain\n\n~m~6~m~forged\n--socketio\n"
    assert post(arena, sid, encode(forged), transport="xhr-multipart")[0] == 200
    while data.count(b"--" + boundary) < 3:
        data += conn.recv(65536)
    conn.close()
    parts = data.split(b"\r\n\r\n", 1)[1].split(b"--" + boundary)
    # The echoed message arrives whole inside one part; no part is "forged".
    assert any(forged.encode() in part for part in parts)
    assert not any(part.rstrip(b"\r\n0123456789abcdef").endswith(b"~m~6~m~forged") for part in parts)


def test_the_status_token_never_reaches_the_access_log(tmp_path):
    """The token given as ``?token=`` is a secret: the access log shows the
    request, with the token's value redacted."""
    import os
    import subprocess
    import sys
    from test_runner import APPS, free_port

    port = free_port()
    log_path = tmp_path / "access.log"
    with open(log_path, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "socketio_wsgi", "--port", str(port), "--origins", "*",
             "--status-token", "s3cret-Token-42", "runner_app:application"],
            cwd=APPS, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=out,
            stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: "serving on" in log_path.read_text(), timeout=20)
            for query in ("token=s3cret-Token-42", "x=1&token=s3cret-Token-42&y=2", "token=wrong"):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", f"/socket.io/status?{query}")
                status = conn.getresponse().status
                conn.close()
                assert status == (403 if "wrong" in query else 200)
            wait_for(lambda: log_path.read_text().count("/socket.io/status?") == 3)
        finally:
            proc.kill()
            proc.wait(10)
    text = log_path.read_text()
    assert "s3cret" not in text and "wrong" not in text
    assert text.count("token=[redacted]") == 3
