"""The HTTP exchanges of every transport, byte for byte, over raw sockets.

Requests are written as the real 0.6 client (or the browser under it) writes
them; answers are checked against the wire examples of PROTOCOL-0.6.md
(W1-W7, V-vectors, §5.2-§5.7).  htmlfile, xhr-multipart and flashsocket are
covered *only* here, because Chromium cannot run them with the real client
(ActiveX, ``XMLHttpRequest.prototype.multipart`` and Flash); websocket,
xhr-polling and jsonp-polling are also driven by the real client in
``test_browser_real_client.py``.

Script bodies (jsonp answers, htmlfile chunks) are also evaluated by node, a
real JavaScript engine, to prove the escaping.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Tuple
from urllib.parse import quote

import pytest

from browser_support import require
from servers import wait_for
from socketio_wsgi.flashpolicy import POLICY_REQUEST, FlashPolicyServer, policy_xml
from socketio_wsgi.protocol import decode, encode_many

TIMEOUT = 5.0
PAGE_ORIGIN = "http://127.0.0.1:18080"  # the page lives on another port than the server


# ---------------------------------------------------------------------------
# raw HTTP
# ---------------------------------------------------------------------------

class Response:
    def __init__(self, status: int, headers: Dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.headers} {self.body[:200]!r}>"


class Conn:
    """One raw keep-alive connection; every read is bounded by ``timeout``."""

    def __init__(self, port: int, timeout: float = TIMEOUT):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _take_until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            self._fill()
        end = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:end], self.buf[end:]
        return out

    def head(self) -> Tuple[int, Dict[str, str]]:
        lines = self._take_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        return status, headers

    def chunk(self) -> bytes:
        """One chunk of a chunked body (``b""`` for the last one)."""
        size = int(self._take_until(b"\r\n")[:-2], 16)
        data = self._take(size)
        assert self._take(2) == b"\r\n"
        return data

    def response(self) -> Response:
        status, headers = self.head()
        if "content-length" in headers:
            body = self._take(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                data = self.chunk()
                if not data:
                    break
                body += data
        else:
            body = self.buf
            try:
                while True:
                    self._fill()
            except EOFError:
                body = self.buf
            self.buf = b""
        return Response(status, headers, body)

    def request(self, method: str, path: str, body: bytes = b"",
                headers: Optional[Dict[str, str]] = None) -> None:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}",
                 "Connection: keep-alive"]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def get(self, path: str, headers: Optional[Dict[str, str]] = None) -> Response:
        self.request("GET", path, headers=headers)
        return self.response()

    def post(self, path: str, body: bytes, headers: Optional[Dict[str, str]] = None) -> Response:
        self.request("POST", path, body, headers)
        return self.response()


def ts() -> int:
    return int(time.time() * 1000)


def encode_uri_component(text: str) -> str:
    """JavaScript's encodeURIComponent (what the XHR transports POST)."""
    return quote(text, safe="-_.!~*'()")


def form_urlencode(text: str) -> str:
    """What a browser form submits for a textarea holding ``text`` (jsonp POST):
    newlines become CRLF, spaces ``+``, everything but ``*-._`` and
    alphanumerics is percent-encoded as UTF-8."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    out = []
    for ch in text:
        if ch.isascii() and (ch.isalnum() or ch in "*-._"):
            out.append(ch)
        elif ch == " ":
            out.append("+")
        else:
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
    return "".join(out)


XHR_POST_HEADERS = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                    "Origin": PAGE_ORIGIN}
FORM_POST_HEADERS = {"Content-Type": "application/x-www-form-urlencoded", "Origin": PAGE_ORIGIN}
_JSONP = re.compile(rb'^io\.JSONP\[(\d+)\]\._\(("(?:[^"\\]|\\.)*")\);$')


def jsonp_payload(body: bytes, index: int) -> str:
    match = _JSONP.match(body)
    assert match, body[:200]
    assert int(match.group(1)) == index
    return json.loads(match.group(2))


def run_js(bodies: List[str]) -> List[List[str]]:
    """Run each script text in a fresh node VM context whose ``io.JSONP[i]._``
    and ``parent.s._`` record their first argument; returns what each recorded."""
    require(shutil.which("node") is not None, "node is not installed")
    program = """
const vm = require('vm');
const bodies = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = bodies.map((body) => {
  const got = [];
  const cb = { _: (data) => { got.push(data); } };
  const ctx = { io: { JSONP: Array.from({ length: 10 }, () => cb) }, parent: { s: cb }, document: {} };
  vm.runInNewContext(body, ctx);
  return got;
});
process.stdout.write(JSON.stringify(out));
"""
    result = subprocess.run(["node", "-e", program], input=json.dumps(bodies), capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# ---------------------------------------------------------------------------
# servers and sessions
# ---------------------------------------------------------------------------

def echo_server(make_server_thread, **options):
    srv = make_server_thread(**options)
    srv.echo()
    srv.record("on_connect", "on_message", "on_disconnect")
    return srv


def push(srv, sid: str, *messages) -> None:
    """Send ``messages`` from the server, all in one go inside its hub."""
    srv.call(lambda: [srv.engine.get(sid).socket.send(m) for m in messages])


def sid_of(payload: str) -> str:
    sid = decode(payload)[0]
    assert sid.isdigit() and len(sid) >= 16
    return sid


def poll_path(transport: str, sid: str, index: int = 0) -> str:
    if transport == "jsonp-polling":
        return f"/socket.io/jsonp-polling/{sid}/{ts()}/{index}"
    return f"/socket.io/xhr-polling/{sid}/{ts()}"


def poll(conn: Conn, transport: str, sid: str = "", index: int = 0) -> Tuple[Response, str]:
    resp = conn.get(poll_path(transport, sid, index))
    assert resp.status == 200, resp
    if transport == "jsonp-polling":
        return resp, jsonp_payload(resp.body, index)
    return resp, resp.body.decode("utf-8")


def disconnect_reason(srv, sid: str) -> Optional[str]:
    for event in srv.events:
        if event[0] == "on_disconnect" and event[1] == sid:
            return event[2]
    return None


POLLING = ["xhr-polling", "jsonp-polling"]
STREAMING = ["htmlfile", "xhr-multipart"]


# ---------------------------------------------------------------------------
# xhr-polling / jsonp-polling
# ---------------------------------------------------------------------------

def test_xhr_polling_first_answer_is_the_session_id_w7(server):
    conn = Conn(server.port)
    resp = conn.get(f"/socket.io/xhr-polling//{ts()}", {"Origin": PAGE_ORIGIN})
    assert resp.status == 200
    assert resp.headers["content-type"] == "text/plain; charset=UTF-8"
    assert resp.headers["content-length"] == str(len(resp.body))
    assert resp.headers["access-control-allow-origin"] == PAGE_ORIGIN
    sid = sid_of(resp.body.decode())
    assert resp.body == b"~m~%d~m~%s" % (len(sid), sid.encode())  # W7's shape
    assert server.call(lambda: sid in server.engine.sessions)
    conn.close()


def test_handshake_carries_what_on_connect_sent_v16(make_server_thread):
    srv = make_server_thread()
    srv.on("on_connect", lambda request, socket, context: socket.send("welcome"))
    resp = Conn(srv.port).get(f"/socket.io/xhr-polling//{ts()}")
    sid = sid_of(resp.body.decode())
    assert resp.body.decode() == f"~m~{len(sid)}~m~{sid}~m~7~m~welcome"


def test_jsonp_first_answer_calls_the_index_from_the_url(server):
    resp = Conn(server.port).get(f"/socket.io/jsonp-polling//{ts()}/3")
    assert resp.status == 200
    assert resp.headers["content-type"] == "text/javascript; charset=UTF-8"
    assert resp.headers["content-length"] == str(len(resp.body))
    sid = sid_of(jsonp_payload(resp.body, 3))
    assert resp.body == b'io.JSONP[3]._("~m~%d~m~%s");' % (len(sid), sid.encode())


def test_jsonp_wire_examples_w1_w2(make_server_thread):
    srv = echo_server(make_server_thread, polling_duration=0.3)
    conn = Conn(srv.port)
    _, first = poll(conn, "jsonp-polling", "", 2)
    sid = sid_of(first)
    push(srv, sid, 'café "x"')
    # W1, with the recommended ASCII-only literal (é as \u00e9; the reference sends it raw).
    assert conn.get(poll_path("jsonp-polling", sid, 2)).body == b'io.JSONP[2]._("~m~8~m~caf\\u00e9 \\"x\\"");'
    # W2: the idle answer after polling_duration.
    assert conn.get(poll_path("jsonp-polling", sid, 3)).body == b'io.JSONP[3]._("");'


def test_xhr_idle_answer_is_an_empty_200(make_server_thread):
    srv = echo_server(make_server_thread, polling_duration=0.3)
    conn = Conn(srv.port)
    _, first = poll(conn, "xhr-polling")
    resp = conn.get(poll_path("xhr-polling", sid_of(first)))
    assert (resp.status, resp.headers["content-length"], resp.body) == (200, "0", b"")


SCRIPT_BREAKERS = [
    'say "hi"', "back\\slash \\u0041", "</script><script>alert(1)</script>", "<!-- <script>",
    "\u2028line\u2029sep", "emoji 😀👋🏽 é 日本", "tab\tlf\ncr\r", "nul\x00end", "", {"k": "</SCRIPT>"},
]


def test_jsonp_escaping_survives_a_real_javascript_engine(server):
    conn = Conn(server.port)
    _, first = poll(conn, "jsonp-polling", "", 0)
    sid = sid_of(first)
    push(server, sid, *SCRIPT_BREAKERS)
    body = conn.get(poll_path("jsonp-polling", sid, 1)).body
    assert body.isascii()
    assert b"<" not in body  # so no </script> and no <!--
    [[evaluated]] = run_js([body.decode("ascii")])
    assert evaluated == encode_many(SCRIPT_BREAKERS)
    assert decode(evaluated) == SCRIPT_BREAKERS


@pytest.mark.parametrize("path", ["/socket.io/jsonp-polling//",
                                  "/socket.io/jsonp-polling//123/" + "9" * 5000,
                                  "/socket.io/jsonp-polling//123/x"])
def test_jsonp_without_a_usable_index_is_400(server, path):
    resp = Conn(server.port).get(path)
    assert resp.status == 400
    assert b"index" in resp.body
    assert not server.engine.sessions


def test_xhr_post_w4_exactly_as_the_client_sends_it(server):
    conn = Conn(server.port)
    _, first = poll(conn, "xhr-polling")
    sid = sid_of(first)
    data = encode_many(["hi é😀", {"k": 1}])
    body = "data=" + encode_uri_component(data)
    assert body == "data=~m~6~m~hi%20%C3%A9%F0%9F%98%80~m~10~m~~j~%7B%22k%22%3A1%7D"  # W4
    resp = Conn(server.port).post(f"/socket.io/xhr-polling/{sid}/send", body.encode(), XHR_POST_HEADERS)
    assert (resp.status, resp.body) == (200, b"ok")
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.headers["access-control-allow-origin"] == PAGE_ORIGIN
    assert [e[2] for e in server.events if e[0] == "on_message"] == ["hi é😀", {"k": 1}]
    # The echo comes back in the next poll: V-vectors, all in one body.
    assert conn.get(poll_path("xhr-polling", sid)).body.decode() == "~m~6~m~hi é😀~m~10~m~~j~{\"k\":1}"


def test_jsonp_form_post_with_crlf_plus_and_emoji(server):
    """The hidden form's textarea turns LF into CRLF and spaces into '+'; the
    frame lengths were counted before that, so the server must undo it."""
    conn = Conn(server.port)
    _, first = poll(conn, "jsonp-polling", "", 0)
    sid = sid_of(first)
    messages = ["line one\nline two", "1+1 = 2 ~ é😀", {"k": "a\nb"}]
    body = "data=" + form_urlencode(encode_many(messages))
    assert "%0D%0A" in body and "+" in body and "%2B" in body and "%7E" in body
    ts0 = ts()
    for _ in range(2):  # the form keeps its action URL (same ts0) for every POST
        resp = Conn(server.port).post(f"/socket.io/jsonp-polling/{sid}/{ts0}/0", body.encode(),
                                      FORM_POST_HEADERS)
        assert (resp.status, resp.body) == (200, b"ok")
    assert [e[2] for e in server.events if e[0] == "on_message"] == messages * 2


@pytest.mark.parametrize("transport", POLLING)
def test_every_poll_returns_all_queued_messages_in_order(make_server_thread, transport):
    srv = echo_server(make_server_thread, close_timeout=5.0)
    conn = Conn(srv.port)
    _, first = poll(conn, transport)
    sid = sid_of(first)
    push(srv, sid, "hello", {"a": 1}, "😀", "café")  # queued in the gap between polls
    _, payload = poll(conn, transport, sid, 1)
    assert payload == '~m~5~m~hello~m~10~m~~j~{"a":1}~m~2~m~😀~m~4~m~café'  # V1 V10 V8 V6


@pytest.mark.parametrize("transport", POLLING)
def test_a_second_poll_answers_the_first_empty(make_server_thread, transport):
    srv = echo_server(make_server_thread, polling_duration=30.0)
    conn1, conn2 = Conn(srv.port), Conn(srv.port)
    _, first = poll(conn1, transport)
    sid = sid_of(first)
    conn1.request("GET", poll_path(transport, sid, 1))
    wait_for(lambda: not srv.call(lambda: srv.engine.get(sid).is_attached(None)))
    conn2.request("GET", poll_path(transport, sid, 2))
    older = conn1.response()  # answered at once, not after 30 s
    assert older.status == 200
    assert older.body == (b'io.JSONP[1]._("");' if transport == "jsonp-polling" else b"")
    push(srv, sid, "for the newer poll")
    newer = conn2.response()
    assert (jsonp_payload(newer.body, 2) if transport == "jsonp-polling"
            else newer.body.decode()) == "~m~18~m~for the newer poll"


@pytest.mark.parametrize("transport", POLLING)
def test_gaps_between_polls_lose_and_reorder_nothing(make_server_thread, transport):
    srv = echo_server(make_server_thread, close_timeout=5.0, polling_duration=1.0)
    conn = Conn(srv.port)
    _, first = poll(conn, transport)
    sid = sid_of(first)
    sent = [f"m{i} é😀" if i % 7 == 0 else f"m{i}" for i in range(300)]

    def producer():
        for i, message in enumerate(sent):
            push(srv, sid, message)
            if i % 25 == 0:
                time.sleep(0.01)

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    got: List[str] = []
    responses = 0
    deadline = time.monotonic() + 30
    while len(got) < len(sent) and time.monotonic() < deadline and responses < 2000:
        _, payload = poll(conn, transport, sid, responses % 10)
        got.extend(decode(payload))
        responses += 1
    thread.join(10)
    assert got == sent
    assert responses > 1  # the messages really were spread over several polls


@pytest.mark.parametrize("transport", POLLING)
def test_close_timeout_ends_a_session_whose_client_stopped_polling(make_server_thread, transport):
    srv = echo_server(make_server_thread, close_timeout=0.3)
    conn = Conn(srv.port)
    _, first = poll(conn, transport)
    sid = sid_of(first)
    wait_for(lambda: disconnect_reason(srv, sid), timeout=10)
    assert disconnect_reason(srv, sid) == "close timeout"
    assert srv.call(lambda: sid not in srv.engine.sessions)
    # A poll for the dead session is not a 200 (the client would poll forever).
    assert conn.get(poll_path(transport, sid, 1)).status == 404


@pytest.mark.parametrize("transport", POLLING)
def test_client_hanging_up_mid_poll(make_server_thread, transport):
    """A dropped pending GET takes nothing from the queue: a new GET within the
    close timeout gets it; without one the session ends after close_timeout,
    not after polling_duration."""
    srv = echo_server(make_server_thread, close_timeout=2.0, polling_duration=60.0)
    conn = Conn(srv.port)
    _, first = poll(conn, transport)
    sid = sid_of(first)
    has_waiter = lambda: not srv.call(lambda: srv.engine.get(sid).is_attached(None))  # noqa: E731
    conn.request("GET", poll_path(transport, sid, 1))
    wait_for(has_waiter)
    conn.close()
    wait_for(lambda: not has_waiter())  # the server noticed the hang-up
    push(srv, sid, "kept 1", "kept 2")
    conn = Conn(srv.port)
    _, payload = poll(conn, transport, sid, 2)
    assert decode(payload) == ["kept 1", "kept 2"]
    # Now vanish for good while a poll is held: ended by the close timeout.
    conn.request("GET", poll_path(transport, sid, 3))
    wait_for(has_waiter)
    conn.close()
    wait_for(lambda: disconnect_reason(srv, sid), timeout=20)
    assert disconnect_reason(srv, sid) == "close timeout"


# ---------------------------------------------------------------------------
# htmlfile / xhr-multipart
# ---------------------------------------------------------------------------

HTMLFILE_GET = {"Accept": "text/html, application/xhtml+xml, */*", "Accept-Language": "en-US",
                "User-Agent": "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)"}
MULTIPART_GET = {"Origin": PAGE_ORIGIN, "Accept": "*/*",
                 "User-Agent": "Mozilla/5.0 (Windows NT 6.1; rv:2.0) Gecko/20100101 Firefox/4.0"}


class Stream:
    """A streaming GET: htmlfile script chunks or multipart parts, one per chunk."""

    def __init__(self, srv, transport: str):
        self.transport = transport
        self.conn = Conn(srv.port)
        if transport == "htmlfile":
            self.conn.request("GET", f"/socket.io/htmlfile//{ts()}", headers=HTMLFILE_GET)
        else:
            self.conn.request("GET", "/socket.io/xhr-multipart/", headers=MULTIPART_GET)
        self.status, self.headers = self.conn.head()
        assert self.headers["transfer-encoding"] == "chunked"
        self.first = self.conn.chunk()
        if transport == "htmlfile":
            prelude = b"<html><body>" + b" " * 244
        else:  # a boundary drawn at random per stream, announced in the header
            match = re.fullmatch(r'multipart/x-mixed-replace;boundary="(socketio-[0-9a-f]{32})"',
                                 self.headers["content-type"])
            assert match, self.headers["content-type"]
            self.boundary = b"--" + match.group(1).encode() + b"\n"
            prelude = self.boundary
        assert self.first.startswith(prelude)
        self.sid = sid_of(self.payload(self.first[len(prelude):]))

    def payload(self, chunk: bytes) -> str:
        """The one payload a chunk carries, unwrapped (and JS-evaluated for htmlfile)."""
        if self.transport == "htmlfile":
            match = re.fullmatch(rb'<script>(parent\.s\._\(".*", document\);)</script>', chunk, re.S)
            assert match, chunk
            [[payload]] = run_js([match.group(1).decode("ascii")])
            return payload
        head = b"Content-Type: text/plain\n\n"
        assert chunk.startswith(head) and chunk.endswith(b"\n" + self.boundary), chunk
        return chunk[len(head):-len(b"\n" + self.boundary)].decode("utf-8")

    def next(self) -> str:
        return self.payload(self.conn.chunk())

    def messages(self, count: int) -> list:
        """Decoded messages of the next chunks, until ``count`` arrived."""
        got: list = []
        while len(got) < count:
            got.extend(decode(self.next()))
        return got

    def post(self, srv, payload: str) -> Response:
        return Conn(srv.port).post(f"/socket.io/{self.transport}/{self.sid}/send",
                                   ("data=" + encode_uri_component(payload)).encode(),
                                   XHR_POST_HEADERS)


def test_htmlfile_stream_w3_and_the_256_byte_prelude(make_server_thread):
    srv = echo_server(make_server_thread)
    stream = Stream(srv, "htmlfile")
    assert stream.status == 200
    assert stream.headers["content-type"] == "text/html; charset=UTF-8"
    assert stream.headers["connection"] == "keep-alive"
    assert stream.first[:256] == b"<html><body>" + b" " * 244
    assert stream.first[256:] == b'<script>parent.s._("~m~%d~m~%s", document);</script>' % (
        len(stream.sid), stream.sid.encode())
    push(srv, stream.sid, {"a": "b"})
    assert stream.conn.chunk() == b'<script>parent.s._("~m~12~m~~j~{\\"a\\":\\"b\\"}", document);</script>'  # W3
    # A batch of messages queued together is one script chunk.
    push(srv, stream.sid, "one", "two", "three")
    assert decode(stream.next()) == ["one", "two", "three"]
    # Text that would end the script early stays inside it.
    push(srv, stream.sid, *SCRIPT_BREAKERS)
    chunk = stream.conn.chunk()
    assert chunk.isascii() and chunk.count(b"<") == 2 and chunk.endswith(b"</script>")
    assert decode(stream.payload(chunk)) == SCRIPT_BREAKERS
    # Sends go by POST and are echoed on the stream.
    resp = stream.post(srv, encode_many(["from IE", {"n": 1}]))
    assert (resp.status, resp.body) == (200, b"ok")
    assert stream.messages(2) == ["from IE", {"n": 1}]
    stream.conn.close()


def test_xhr_multipart_stream_w6_and_cors(make_server_thread):
    srv = echo_server(make_server_thread)
    srv.on("on_connect", lambda request, socket, context: socket.send("welcome"))
    stream = Stream(srv, "xhr-multipart")
    assert stream.status == 200
    boundary = stream.boundary  # W6 with a random boundary instead of "socketio"
    assert stream.headers["access-control-allow-origin"] == PAGE_ORIGIN
    assert stream.first == boundary + b"Content-Type: text/plain\n\n~m~%d~m~%s\n%s" % (
        len(stream.sid), stream.sid.encode(), boundary)
    # What on_connect sent follows in its own part: W6 exactly.
    assert stream.conn.chunk() == b"Content-Type: text/plain\n\n~m~7~m~welcome\n" + boundary
    assert Stream(srv, "xhr-multipart").boundary != boundary  # a new one per stream
    push(srv, stream.sid, "é😀", {"x": [1]})
    assert stream.next() == '~m~3~m~é😀~m~12~m~~j~{"x":[1]}'  # one part per batch
    # The client's POST (and a preflight, should a browser send one).
    preflight = Conn(srv.port)
    preflight.request("OPTIONS", f"/socket.io/xhr-multipart/{stream.sid}/send",
                      headers={"Origin": PAGE_ORIGIN, "Access-Control-Request-Method": "POST"})
    answer = preflight.response()
    assert answer.status == 200 and "POST" in answer.headers["access-control-allow-methods"]
    resp = stream.post(srv, encode_many(["hi"]))
    assert (resp.status, resp.body) == (200, b"ok")
    assert resp.headers["access-control-allow-origin"] == PAGE_ORIGIN
    assert stream.next() == "~m~2~m~hi"
    stream.conn.close()


@pytest.mark.parametrize("transport", STREAMING)
def test_streaming_heartbeats_echoed_by_post_keep_the_stream(make_server_thread, transport):
    srv = echo_server(make_server_thread, heartbeat_interval=0.2, heartbeat_timeout=1.5)
    stream = Stream(srv, transport)
    for n in (1, 2, 3):
        beat = stream.next()
        assert beat == f"~m~4~m~~h~{n}"
        assert stream.post(srv, beat).status == 200  # the client echoes by POST
    assert disconnect_reason(srv, stream.sid) is None
    # Stop echoing: the session ends and so does the HTTP stream.
    assert stream.next() == "~m~4~m~~h~4"
    wait_for(lambda: disconnect_reason(srv, stream.sid), timeout=10)
    assert disconnect_reason(srv, stream.sid) == "heartbeat timeout"
    assert stream.conn.chunk() == b""  # the terminating chunk
    stream.conn.close()


@pytest.mark.parametrize("transport", STREAMING)
def test_streaming_client_hanging_up_ends_the_session(make_server_thread, transport):
    srv = echo_server(make_server_thread, heartbeat_interval=60.0)
    stream = Stream(srv, transport)
    stream.conn.close()
    wait_for(lambda: disconnect_reason(srv, stream.sid), timeout=10)  # not at the 60 s heartbeat
    assert disconnect_reason(srv, stream.sid) == "client closed"
    assert srv.call(lambda: not srv.engine.sessions)


@pytest.mark.parametrize("transport", STREAMING)
def test_streaming_transports_do_not_resume_a_session(make_server_thread, transport):
    srv = echo_server(make_server_thread)
    stream = Stream(srv, transport)
    resp = Conn(srv.port).get(f"/socket.io/{transport}/{stream.sid}")
    assert resp.status == 400
    stream.conn.close()


# ---------------------------------------------------------------------------
# flashsocket (RFC 6455 under the flashsocket path)
# ---------------------------------------------------------------------------

def ws_frame(text: str) -> bytes:
    """A masked client text frame (payloads under 64 KiB)."""
    data = text.encode("utf-8")
    mask = os.urandom(4)
    size = bytes([0x80 | len(data)]) if len(data) < 126 else bytes([0x80 | 126]) + len(data).to_bytes(2, "big")
    return b"\x81" + size + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def ws_read(conn: Conn) -> str:
    first, second = conn._take(2)
    assert first == 0x81 and not second & 0x80  # final text frame, unmasked
    size = second & 0x7F
    if size == 126:
        size = int.from_bytes(conn._take(2), "big")
    return conn._take(size).decode("utf-8")


def test_flashsocket_is_the_websocket_transport(server):
    conn = Conn(server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    conn.request("GET", "/socket.io/flashsocket", headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Origin": PAGE_ORIGIN,
        "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"})
    status, headers = conn.head()
    assert status == 101
    sid = sid_of(ws_read(conn))
    assert server.call(lambda: server.engine.get(sid).transport) == "flashsocket"
    conn.send(ws_frame(encode_many(["hello", {"a": 1}, "😀"])))
    got = []
    while len(got) < 3:
        got.extend(decode(ws_read(conn)))
    assert got == ["hello", {"a": 1}, "😀"]
    conn.close()
    wait_for(lambda: disconnect_reason(server, sid))


def test_flash_bridge_hixie76_handshake_is_refused_clearly(server):
    """The 0.6 client's Flash bridge speaks only hixie-76 (V21 keys here);
    the server speaks RFC 6455, so it answers 426 instead of hanging."""
    conn = Conn(server.port)
    conn.send(b"GET /socket.io/flashsocket HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
              b"Host: 127.0.0.1:%d\r\nOrigin: %s\r\nCookie: \r\n"
              b"Sec-WebSocket-Key1: 91 62x59 68 y8\r\nSec-WebSocket-Key2: 37359 28Z559\r\n\r\n"
              b"Tm9uY2U!" % (server.port, PAGE_ORIGIN.encode()))
    status, headers = conn.head()
    assert status == 426
    assert "13" in headers["sec-websocket-version"]
    assert not server.engine.sessions


# ---------------------------------------------------------------------------
# enabling and disabling transports
# ---------------------------------------------------------------------------

def test_disabled_transports_get_a_clear_403(make_server_thread):
    srv = echo_server(make_server_thread, transports=["websocket", "xhr-polling"])
    conn = Conn(srv.port)
    for path in (f"/socket.io/jsonp-polling//{ts()}/0", f"/socket.io/htmlfile//{ts()}",
                 "/socket.io/xhr-multipart/"):
        resp = conn.get(path)
        name = path.split("/")[2]
        assert resp.status == 403, path
        assert resp.body.decode() == f"transport {name} is disabled on this server"
    upgrade = Conn(srv.port)
    upgrade.request("GET", "/socket.io/flashsocket", headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()})
    status, _ = upgrade.head()
    assert status == 403  # refused before the handshake
    assert conn.get("/socket.io/smoke-signals//1").status == 404
    assert not srv.engine.sessions
    _, first = poll(conn, "xhr-polling")  # the enabled ones still work
    sid_of(first)


# ---------------------------------------------------------------------------
# Flash policy
# ---------------------------------------------------------------------------

POLICY_HEAD = (b'<?xml version="1.0"?>\n'
               b'<!DOCTYPE cross-domain-policy SYSTEM "/xml/dtds/cross-domain-policy.dtd">\n'
               b"<cross-domain-policy>\n")


def test_policy_document_v23_and_allowed_origins_only():
    assert policy_xml("*") == POLICY_HEAD + (
        b'<allow-access-from domain="*" to-ports="*"/>\n</cross-domain-policy>\n\x00')  # V23 + NUL
    assert policy_xml(["127.0.0.1:*", "https://App.example.com:8443", "*.example.org", "*:3000"],
                      "8000") == POLICY_HEAD + (
        b'<allow-access-from domain="127.0.0.1" to-ports="8000"/>\n'
        b'<allow-access-from domain="app.example.com" to-ports="8000"/>\n'
        b'<allow-access-from domain="*.example.org" to-ports="8000"/>\n'
        b"</cross-domain-policy>\n\x00")
    # Same-origin only (the default) cannot be expressed: nobody is allowed.
    assert policy_xml(None) == POLICY_HEAD + b"</cross-domain-policy>\n\x00"
    with pytest.raises(ValueError):
        policy_xml("*", '8000"/><allow-access-from domain="*')


def read_to_eof(sock: socket.socket) -> bytes:
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


@pytest.fixture
def policy_server(make_server_thread):
    """A FlashPolicyServer on a free port, run in a test server's hub."""
    hub = make_server_thread()
    started = []

    def start(origins, **kwargs) -> FlashPolicyServer:
        policy = FlashPolicyServer(origins, port=0, host="127.0.0.1", **kwargs)
        assert hub.call(policy.start)
        started.append(policy)
        return policy

    yield start
    for policy in started:
        hub.call(policy.stop)


def test_policy_server_answers_after_reading_the_request(policy_server):
    policy = policy_server(["127.0.0.1:*", "*:3000"], to_ports="8000")
    port = policy.address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            sock.recv(1)  # nothing before the request
        sock.settimeout(TIMEOUT)
        sock.sendall(POLICY_REQUEST[:10])
        sock.sendall(POLICY_REQUEST[10:])
        assert read_to_eof(sock) == policy_xml(["127.0.0.1:*"], "8000")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert read_to_eof(sock) == b""  # not a policy request: no policy


def test_policy_server_times_out_silent_clients(policy_server):
    policy = policy_server("*", read_timeout=0.2)
    with socket.create_connection(("127.0.0.1", policy.address[1]), timeout=TIMEOUT) as sock:
        assert read_to_eof(sock) == b""


def test_policy_server_bind_failure_is_logged_not_raised(make_server_thread, caplog):
    hub = make_server_thread()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        policy = FlashPolicyServer("*", port=taken.getsockname()[1], host="127.0.0.1")
        with caplog.at_level(logging.ERROR, logger="socketio_wsgi.flashpolicy"):
            assert hub.call(policy.start) is False
    assert "flash policy server not started" in caplog.text


def test_policy_server_on_port_843_without_root_says_so():
    """Run in a child process without CAP_NET_BIND_SERVICE (dropped with
    setpriv when the tests run as root): start() returns False and logs why."""
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as fh:
        require(int(fh.read()) > 843, "port 843 is not privileged on this machine")
    code = ("import logging, sys; logging.basicConfig(stream=sys.stdout, format='%(message)s');"
            "from socketio_wsgi.flashpolicy import FlashPolicyServer;"
            "print('started:', FlashPolicyServer('*', port=843, host='127.0.0.1').start())")
    command = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        require(shutil.which("setpriv") is not None, "setpriv is needed to drop root's bind privilege")
        command = ["setpriv", "--bounding-set=-net_bind_service", "--inh-caps=-net_bind_service"] + command
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "started: False" in result.stdout
    assert "port 843 is privileged and needs root" in result.stdout


def test_inline_policy_request_on_the_http_port(make_server_thread):
    srv = echo_server(make_server_thread)
    # Off by default: pywsgi treats the bytes as a (bad) HTTP request.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as sock:
        sock.sendall(POLICY_REQUEST)
        sock.shutdown(socket.SHUT_WR)
        assert b"cross-domain-policy" not in read_to_eof(sock)
    srv = echo_server(make_server_thread, flash_policy_inline=True)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as sock:
        sock.sendall(POLICY_REQUEST)
        # to-ports is "*" because the server was asked for port 0 (any free port).
        assert read_to_eof(sock) == policy_xml("*", "*")
    # Everything else on that port is unchanged.
    conn = Conn(srv.port)
    _, first = poll(conn, "xhr-polling")
    sid_of(first)
    assert conn.get("/hello").body == b"hello from the wrapped app /hello"
