"""Issue 16: a request for a session of another process is served by its owner.

Unit tests of the forwarding wire format, then real ``python -m socketio_wsgi``
processes sharing a real redis-server: every kind of polling request sent to
a process that does not own the session, hang-ups, forged ids, a stalled
owner, a dead owner and a dead forwarder.  The load and the proxies (nginx,
``gunicorn -w 3``) are in test_scaleout.py.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import time
from types import SimpleNamespace
from typing import Dict, Optional, Tuple

import pytest
from test_channels import frame
from test_redis import Worker, redis_server  # noqa: F401  (a fixture)

from socketio_wsgi.forwarding import (
    FORWARDED_ENVIRON,
    Cancel,
    Request,
    Response,
    decode,
    encode_cancel,
    encode_request,
    encode_response,
)

PREFIX = "fw"


# -- the wire format (no server) ----------------------------------------------------


def test_request_response_and_cancel_round_trip():
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/socket.io/xhr-polling/1/send", "HTTP_ORIGIN": "é",
               "wsgi.input": object(), "HTTP_COOKIE": "secret=1", "CONTENT_LENGTH": "3"}
    body = b"\x00\n\xff"
    request = decode(encode_request("7", "host:1:ab", environ, body))
    assert request == Request("7", "host:1:ab", {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "3",
                                                  "PATH_INFO": "/socket.io/xhr-polling/1/send",
                                                  "HTTP_ORIGIN": "é"}, body)
    assert "HTTP_COOKIE" not in request.environ  # only what routing and the transports read crosses
    response = decode(encode_response("7", "200 OK", [("Content-Type", "text/plain")], b"~m~1~m~\n"))
    assert response == Response("7", "200 OK", [("Content-Type", "text/plain")], b"~m~1~m~\n")
    assert decode(encode_cancel("7")) == Cancel("7")


@pytest.mark.parametrize("junk", [
    b"",
    b"{}",
    b"Q{}",  # no newline
    b"Xnot a tag\n",
    b"Q{not json\n",
    b'Q{"v":2,"id":"1","r":"p","e":{}}\n',
    b'Q{"v":1,"id":1,"r":"p","e":{}}\n',
    b'Q{"v":1,"id":"1","e":{}}\n',
    b'Q{"v":1,"id":"1","r":"p","e":{"HTTP_COOKIE":"x"}}\n',
    b'Q{"v":1,"id":"1","r":"p","e":{"PATH_INFO":1}}\n',
    b'A{"v":1,"id":"1","s":200,"h":[]}\n',
    b'A{"v":1,"id":"1","s":"200 OK","h":[["a"]]}\n',
    b'A{"v":1,"id":"1","s":"200 OK","h":{"a":"b"}}\n',
    b"Q\xff\xfe\n",
])
def test_anything_else_on_the_channel_is_refused(junk):
    with pytest.raises(ValueError):
        decode(junk)


def test_only_the_listed_environ_crosses():
    assert "HTTP_COOKIE" not in FORWARDED_ENVIRON and "HTTP_AUTHORIZATION" not in FORWARDED_ENVIRON
    assert {"REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "HTTP_ORIGIN", "HTTP_HOST"} <= set(FORWARDED_ENVIRON)


def test_resp_reader_takes_replies_in_any_pieces():
    from socketio_wsgi.resp import Reader, ReplyError, command
    assert command(b"PUBLISH", b"ch", b"a\r\nb") == b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$4\r\na\r\nb\r\n"
    wire = (b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
            b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nQ\r\n\x00\xff\r\n"
            b":42\r\n+OK\r\n-ERR nope\r\n$-1\r\n*-1\r\n*2\r\n*1\r\n:1\r\n$0\r\n\r\n")
    expected = [[b"subscribe", b"ch", 1], [b"message", b"ch", b"Q\r\n\x00\xff"], 42, b"OK", "error",
                None, None, [[1], b""]]
    for size in (1, 2, 3, 7, len(wire)):  # byte by byte, and in other pieces
        reader, got = Reader(), []
        for start in range(0, len(wire), size):
            reader.feed(wire[start:start + size])
            got.extend(reader.replies())
        assert [("error" if isinstance(g, ReplyError) else g) for g in got] == expected
        assert str(got[4]) == "ERR nope"


@pytest.mark.parametrize("junk", [b"?what\r\n", b"$999999999999\r\n", b"x" * 2000])
def test_resp_reader_refuses_what_is_not_resp(junk):
    from socketio_wsgi.resp import Reader
    reader = Reader()
    reader.feed(junk)
    with pytest.raises(ValueError):
        reader.replies()


# -- real processes -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def workers(redis_server, tmp_path_factory):
    """The owner of the sessions, and another process (short polls)."""
    directory = tmp_path_factory.mktemp("workers")
    url = redis_server.url(prefix=PREFIX, ttl=3)
    started = [Worker(directory, name, url, "--polling-duration", "3", "--forward-timeout", "1")
               for name in ("owner", "other")]
    yield [worker.ready() for worker in started]
    for worker in started:
        worker.stop()


@pytest.fixture
def spare(redis_server, tmp_path_factory):
    """A third process, for a test to kill or stop."""
    worker = Worker(tmp_path_factory.mktemp("spare"), "spare", redis_server.url(prefix=PREFIX, ttl=3),
                    "--polling-duration", "3", "--forward-timeout", "1").ready()
    yield worker
    if worker.proc.poll() is None:
        os.kill(worker.proc.pid, signal.SIGCONT)
    worker.stop()


def call(worker: Worker, method: str, path: str, body: bytes = b"",
         headers: Optional[Dict[str, str]] = None, timeout: float = 10) -> Tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=timeout)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def stamp() -> int:
    return int(time.time() * 1000)


def open_06(worker: Worker, transport: str = "xhr-polling") -> str:
    suffix = "/0" if transport == "jsonp-polling" else ""
    status, body = call(worker, "GET", f"/socket.io/{transport}//{stamp()}{suffix}")
    assert status == 200, body
    return re.search(rb"~m~20~m~(\d{20})", body).group(1).decode()


def post_06(worker: Worker, transport: str, sid: str, text: str) -> Tuple[int, bytes]:
    return call(worker, "POST", f"/socket.io/{transport}/{sid}/send", b"data=" + frame(text).encode(),
                {"Content-Type": "application/x-www-form-urlencoded"})


def poll_06(worker: Worker, sid: str, transport: str = "xhr-polling", suffix: str = "") -> Tuple[int, bytes]:
    return call(worker, "GET", f"/socket.io/{transport}/{sid}/{stamp()}{suffix}")


def evalsha_calls(redis_server) -> int:
    stats = redis_server.raw().info("commandstats")
    return sum(v.get("calls", 0) for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))


@pytest.mark.redis
def test_xhr_polling_posts_and_polls_on_another_process(workers):
    owner, other = workers
    sid = open_06(owner)
    for i in range(20):  # alternate the processes: one session, one order
        assert post_06(other if i % 2 else owner, "xhr-polling", sid, f"m{i}") == (200, b"ok")
    assert poll_06(other, sid) == (200, "".join(frame(f"m{i}") for i in range(20)).encode())
    assert poll_06(owner, sid) == (200, b"")  # taken once: nothing left (after the short hold)


@pytest.mark.redis
def test_jsonp_polling_answer_uses_the_index_of_the_forwarded_path(workers):
    owner, other = workers
    sid = open_06(owner, "jsonp-polling")
    assert post_06(other, "jsonp-polling", sid, "</script>é") == (200, b"ok")
    status, body = poll_06(other, sid, "jsonp-polling", "/7")
    assert status == 200
    assert body.decode("ascii") == 'io.JSONP[7]._("~m~10~m~\\u003c/script>\\u00e9");'


@pytest.mark.redis
def test_htmlfile_stream_stays_put_and_its_posts_may_land_anywhere(workers):
    owner, other = workers
    stream = socket.create_connection(("127.0.0.1", owner.port), timeout=10)
    try:
        stream.sendall(f"GET /socket.io/htmlfile//{stamp()} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        seen = b""
        deadline = time.monotonic() + 10
        while not re.search(rb"~m~20~m~(\d{20})", seen) and time.monotonic() < deadline:
            seen += stream.recv(65536)
        sid = re.search(rb"~m~20~m~(\d{20})", seen).group(1).decode()
        assert post_06(other, "htmlfile", sid, "through other") == (200, b"ok")
        while b"through other" not in seen and time.monotonic() < deadline:
            seen += stream.recv(65536)
        assert b"through other" in seen
    finally:
        stream.close()


def open_v4(worker: Worker) -> str:
    status, body = call(worker, "GET", "/socket.io/?EIO=4&transport=polling")
    assert status == 200 and body[:1] == b"0", body
    return json.loads(body[1:])["sid"]


@pytest.mark.redis
def test_engine_io_4_polling_on_another_process_and_no_upgrade_there(workers):
    owner, other = workers
    sid = open_v4(owner)
    path = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
    assert call(other, "POST", path, b"40") == (200, b"ok")
    status, body = call(other, "GET", path)
    assert status == 200 and body.startswith(b"40{") and "sid" in json.loads(body[2:])
    assert call(other, "POST", path, b'42["message","hi"]') == (200, b"ok")
    assert call(other, "GET", path) == (200, b'42["message","hi"]')
    # The websocket stays with the process that accepted the connection: an
    # upgrade elsewhere is refused before the handshake, and polling goes on.
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    status, body = call(other, "GET", f"/socket.io/?EIO=4&transport=websocket&sid={sid}", headers=upgrade)
    assert (status, body) == (400, b"Session ID unknown")
    assert call(other, "POST", path, b'42["message","again"]') == (200, b"ok")
    assert call(owner, "GET", path) == (200, b'42["message","again"]')
    status, body = call(other, "GET", "/socket.io/?EIO=4&transport=polling&sid=nobodys")
    assert status == 400 and json.loads(body) == {"code": 1, "message": "Session ID unknown"}


@pytest.mark.redis
def test_a_forged_id_costs_one_lookup_then_a_cached_answer(workers, redis_server):
    owner, other = workers
    sid = open_06(owner)
    before = evalsha_calls(redis_server)
    for _ in range(30):
        assert poll_06(other, "31415926535897932384") == (404, b"unknown session")
    assert evalsha_calls(redis_server) - before == 1
    # Bystander: the real session, served through the same process meanwhile.
    assert post_06(other, "xhr-polling", sid, "still here") == (200, b"ok")
    assert poll_06(other, sid) == (200, frame("still here").encode())


@pytest.mark.redis
def test_a_client_that_hangs_up_on_a_forwarded_poll_takes_nothing(workers):
    owner, other = workers
    sid = open_06(owner)
    held = socket.create_connection(("127.0.0.1", other.port), timeout=10)
    held.sendall(f"GET /socket.io/xhr-polling/{sid}/{stamp()} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    time.sleep(0.5)  # forwarded and held by the owner
    held.close()
    time.sleep(0.5)  # the cancel reaches the owner
    # Queued while nobody polls: an uncancelled poll would take it and answer
    # a client that is gone.
    assert post_06(owner, "xhr-polling", sid, "kept") == (200, b"ok")
    assert poll_06(owner, sid) == (200, frame("kept").encode())


@pytest.mark.redis
def test_what_a_dead_forwarder_poll_took_goes_back_to_the_queue(workers, spare):
    owner, _ = workers
    sid = open_06(owner)
    held = socket.create_connection(("127.0.0.1", spare.port), timeout=10)
    try:
        held.sendall(f"GET /socket.io/xhr-polling/{sid}/{stamp()} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(0.5)  # held by the owner for the spare
        spare.proc.kill()
        spare.proc.wait(10)
        assert post_06(owner, "xhr-polling", sid, "not lost") == (200, b"ok")
        time.sleep(0.3)  # the held poll answers nobody, and puts it back
        assert poll_06(owner, sid) == (200, frame("not lost").encode())
    finally:
        held.close()


@pytest.mark.redis
def test_a_dead_owner_is_unknown_at_once_and_a_stalled_one_after_forward_timeout(workers, spare):
    _, other = workers
    sid = open_06(spare)
    assert post_06(other, "xhr-polling", sid, "known") == (200, b"ok")  # its owner is remembered now
    os.kill(spare.proc.pid, signal.SIGSTOP)  # alive for Redis (ttl 3 s), answering nobody
    started = time.monotonic()
    status, body = post_06(other, "xhr-polling", sid, "x")
    assert (status, body) == (503, b"busy: the session's worker did not answer in time")
    assert 0.9 < time.monotonic() - started < 3  # --forward-timeout 1
    assert "did not answer within 1.0 s; answered 503" in other.output()
    os.kill(spare.proc.pid, signal.SIGCONT)
    spare.proc.kill()
    spare.proc.wait(10)
    started = time.monotonic()
    assert poll_06(other, sid) == (404, b"unknown session")
    assert time.monotonic() - started < 1  # nobody listens any more: one round trip
    assert "Traceback" not in other.output()


@pytest.mark.redis
def test_sessions_made_while_the_backend_starts_are_registered_before_they_are_answered(redis_server):
    """A second session must not be answered while the first one's start of
    the backend (subscribe, register) is still under way."""
    import gevent

    from socketio_wsgi.redis_backend import RedisBackend

    backend = RedisBackend(redis_server.url(prefix="fwstart"))
    subscribe = backend._subscribe

    def slow_subscribe():
        gevent.sleep(0.2)
        return subscribe()

    backend._subscribe = slow_subscribe
    first = SimpleNamespace(session_id="11111111111111111111", push=lambda frame: True)
    second = SimpleNamespace(session_id="22222222222222222222", push=lambda frame: True)
    try:
        starting = gevent.spawn(backend.add_session, first)
        gevent.sleep(0.05)  # the start is under way
        backend.add_session(second)
        owners = redis_server.raw().hgetall("fwstart:sessions")
        assert owners.get(b"22222222222222222222") == backend.process_id.encode()
        starting.get(timeout=5)
    finally:
        backend.close()


def test_a_byte_budget_lets_one_large_body_through_and_makes_others_wait():
    import gevent

    from socketio_wsgi.forwarding import ByteBudget
    budget = ByteBudget(100)
    assert budget.take(500, time.monotonic())  # alone: always
    assert not budget.take(1, time.monotonic() + 0.05)  # full, and the deadline passes
    later = gevent.spawn(budget.take, 60, time.monotonic() + 5)
    gevent.sleep(0.01)
    assert not later.ready()
    budget.give(500)
    assert later.get(timeout=1) is True and budget.used == 60


@pytest.mark.redis
def test_a_forwarded_poll_takes_at_most_a_mebibyte_and_leaves_the_rest(workers):
    owner, other = workers
    sid = open_06(owner)
    big = "a" * 600_000
    for _ in range(3):  # echoed: 3 x 600 kB queued at the owner
        assert post_06(owner, "xhr-polling", sid, big) == (200, b"ok")
    for _ in range(3):
        assert poll_06(other, sid) == (200, frame(big).encode())  # one at a time through Redis
    assert post_06(owner, "xhr-polling", sid, big) == (200, b"ok")
    assert post_06(owner, "xhr-polling", sid, "small") == (200, b"ok")
    assert poll_06(owner, sid) == (200, (frame(big) + frame("small")).encode())  # locally: all at once
