"""Our browser client (socketio_wsgi/static/socketio_wsgi/socket.io.js) in headless
Chromium, against our server on each transport and against the real node
Socket.IO 0.6.18 server on the polling transports.

The client is loaded exactly as pages load it: from the middleware at
``/socket.io/socket.io.js`` (or, for the node server, from the page server).
Wire payloads are read from the browser's own network events, so the exact
bytes the client puts on the wire are checked, not what it thinks it sent.
"""
from __future__ import annotations

import itertools
import os
import random
import shutil
import socket
import subprocess
import threading
import urllib.request
from typing import Any, Dict, List, Optional
from urllib.parse import parse_qs

import pytest

from browser_support import npm_package, require
from servers import ServerThread, wait_for
from socketio_wsgi.protocol import decode_frames, encode_frame
from socketio_wsgi.socket import encode_frame_bytes
from socketio_wsgi.static import CLIENT_PATH

pytestmark = pytest.mark.browser

TRANSPORTS = ["websocket", "xhr-polling", "jsonp-polling"]
POLLING = ["xhr-polling", "jsonp-polling"]
NODE_ECHO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node", "echo_server.js")
# Polling sessions end soon after the client goes (a pending GET is answered
# within 2 s, then 1 s of grace).
FAST = {"close_timeout": 1.0, "polling_duration": 2.0}

# Every event of a socket is logged as [name, args...]; messages are kept apart.
TRACK_JS = """
window.track = function (socket) {
  socket.log = []; socket.messages = []; socket.errors = [];
  ['connecting', 'connect', 'disconnect', 'connect_failed', 'reconnecting',
   'reconnect', 'reconnect_failed'].forEach(function (name) {
    socket.on(name, function () {
      socket.log.push([name].concat(Array.prototype.slice.call(arguments)));
    });
  });
  socket.on('message', function (m) { socket.messages.push(m); });
  socket.on('error', function (e) { socket.errors.push(String(e && (e.message || e.type))); });
  return socket;
};
window.open_socket = function (args) {
  var s = window.sock = track(new io.Socket(args.host, args.options));
  (args.subscribe || []).forEach(function (ch) { s.subscribe(ch); });
  s.connect();
  return true;
};
"""


def page_html(script_src: str, before: str = "") -> bytes:
    return (f"<!doctype html><html><head><meta charset='utf-8'>{before}"
            f"<script src='{script_src}'></script><script>{TRACK_JS}</script>"
            f"</head><body>client test</body></html>").encode("utf-8")


def record_wire(page) -> List[str]:
    """Collect every payload the page sends: websocket frames and POST ``data``."""
    sent: List[str] = []

    def on_websocket(ws):
        ws.on("framesent", lambda payload: sent.append(payload if isinstance(payload, str)
                                                         else payload.decode("utf-8")))

    def on_request(request):
        if request.method == "POST" and "/socket.io/" in request.url:
            body = request.post_data or ""
            sent.append(parse_qs(body, keep_blank_values=True)["data"][0])

    page.on("websocket", on_websocket)
    page.on("request", on_request)
    return sent


_page_numbers = itertools.count()


def open_page(browser_page, page_server, script_src: str, before: str = ""):
    page = browser_page()
    path = f"/page-{next(_page_numbers)}.html"
    page_server.pages[path] = page_html(script_src, before)
    wire = record_wire(page)
    page.goto(page_server.url + path)
    return page, wire


def connect(page, port: int, transport: Optional[str] = None, subscribe=(), **options) -> str:
    """Open ``window.sock`` and wait for its session id."""
    if transport:
        options.setdefault("transports", [transport])
    options.setdefault("port", port)
    page.evaluate("open_socket", {"host": "127.0.0.1", "options": options,
                                  "subscribe": list(subscribe)})
    page.wait_for_function("() => window.sock.connected")
    return page.evaluate("sock.transport.sessionid")


def messages(page) -> List[Any]:
    return page.evaluate("sock.messages")


def wait_messages(page, count: int) -> List[Any]:
    page.wait_for_function(f"() => window.sock.messages.length >= {count}")
    return messages(page)


def publish(server: ServerThread, message: Any, channel: Optional[str] = None) -> int:
    """Out-of-band send from the server (to ``channel``, or to every session)."""
    frame = encode_frame_bytes(message)
    channels = (channel,) if channel else None
    return server.call(server.engine.backend.publish, frame, channels, None)


def typed_echo(request, socket, context, message):
    """Echo the decoded value with its Python type; strings also come back raw."""
    if isinstance(message, str) and not message.startswith(("~j~", "~h~")):
        socket.send(message)
    socket.send({"echo": message, "type": type(message).__name__})


def relay_to_channels(request, socket, context, message):
    socket.broadcast_channel(message)


# --------------------------------------------------------------------------
# the codec, in the page, against the spec vectors and our Python codec
# --------------------------------------------------------------------------
ENCODE_VECTORS = [
    ("hello", "~m~5~m~hello"),
    ("", "~m~0~m~"),
    ("café", "~m~4~m~café"),
    ("日本語", "~m~3~m~日本語"),
    ("😀", "~m~2~m~😀"),
    ("hi 👋!", "~m~6~m~hi 👋!"),
    ({"a": 1}, '~m~10~m~~j~{"a":1}'),
    ({"msg": "é😀"}, '~m~16~m~~j~{"msg":"é😀"}'),
    ("~m~5~m~hello", "~m~12~m~~m~5~m~hello"),
    ('{"a":1}', '~m~7~m~{"a":1}'),
    ("a\nb", "~m~3~m~a\nb"),
    # our client keeps types: arrays, numbers, booleans, null are JSON
    ([1, 2], "~m~8~m~~j~[1,2]"),
    (42, "~m~5~m~~j~42"),
    (True, "~m~7~m~~j~true"),
    (None, "~m~7~m~~j~null"),
    (["a", {"b": [True]}], '~m~21~m~~j~["a",{"b":[true]}]'),
    # text that would read as JSON or a heartbeat goes as a JSON string
    ("~j~x", '~m~9~m~~j~"~j~x"'),
    ("~h~1", '~m~9~m~~j~"~h~1"'),
]

DECODE_VECTORS = [
    ("~m~5~m~hello~m~3~m~abc", ["hello", "abc"]),
    ("~m~12~m~~m~5~m~hello", ["~m~5~m~hello"]),
    ("~m~0~m~~m~1~m~x", ["", "x"]),
    ("~m~2~m~😀~m~4~m~é😀!", ["😀", "é😀!"]),
    ("~m~3~m~abcdef", ["abc"]),        # trailing junk dropped
    ("~m~05~m~hello", ["hello"]),      # leading zero tolerated
    ("hello", []),
    ("~m~9~m~short", []),              # length past the end: nothing
    ("~m~2~m~ok~m~x~m~zz", ["ok"]),    # a malformed frame ends decoding
]


def random_texts(count: int, seed: int) -> List[str]:
    rng = random.Random(seed)
    pieces = ["a", "Z", "0", "9", " ", "~", "~m~", "~m~3~m~", "é", "日", "😀", "👋🏽", "\n", "\t",
              "\u2028", "</script>", '"', "\\", "%", "+", "&", "=", "\ufeff", "𝄞"]
    return ["".join(rng.choice(pieces) for _ in range(rng.randrange(0, 12))) for _ in range(count)]


def test_codec_in_the_page(browser_page, page_server):
    page = browser_page()
    page_server.pages["/codec.html"] = page_html("/socket.io.js")
    with open(CLIENT_PATH, "rb") as fh:
        page_server.pages["/socket.io.js"] = fh.read()
    page.goto(page_server.url + "/codec.html")

    encoded = page.evaluate("values => values.map(v => io.util.encode(v))",
                            [value for value, _ in ENCODE_VECTORS])
    assert encoded == [wire for _, wire in ENCODE_VECTORS]
    # The lengths the page wrote are UTF-16 code units: our Python codec agrees.
    for value, wire in ENCODE_VECTORS:
        assert len(decode_frames(wire)) == 1

    decoded = page.evaluate("payloads => payloads.map(p => io.util.decode(p))",
                            [wire for wire, _ in DECODE_VECTORS])
    assert decoded == [frames for _, frames in DECODE_VECTORS]
    # a length that ends inside a surrogate pair yields the lone high surrogate
    assert page.evaluate("io.util.decode('~m~1~m~\\ud83d\\ude00')[0].charCodeAt(0)") == 0xD83D

    # Several frames in one payload, both ways, against the Python codec.
    texts = random_texts(200, seed=6)
    js_payload = page.evaluate("texts => texts.map(t => io.util.frame(t)).join('')", texts)
    assert decode_frames(js_payload) == texts
    py_payload = "".join(encode_frame(t) for t in texts)
    assert page.evaluate("p => io.util.decode(p)", py_payload) == texts

    # Reserved markers and functions cannot be sent as plain messages.
    assert page.evaluate("""() => ['__subscribe__', '__unsubscribe__', '__array__'].map(m => {
        try { io.util.encode(m); return 'sent'; } catch (e) { return 'refused'; } })""") == ["refused"] * 3
    assert page.evaluate("() => { try { io.util.encode(function () {}); return 'sent'; }"
                         " catch (e) { return e.name; } }") == "TypeError"
    # A lone surrogate cannot travel as UTF-8: it becomes U+FFFD, same length.
    assert page.evaluate("io.util.encode('a\\ud800b')") == "~m~3~m~a\ufffdb"


def test_client_is_served_with_an_etag(make_server_thread):
    server = make_server_thread()
    with urllib.request.urlopen(server.url + "/socket.io/socket.io.js", timeout=5) as answer:
        body = answer.read()
        etag = answer.headers["ETag"]
        assert answer.headers["Content-Type"].startswith("text/javascript")
    with open(CLIENT_PATH, "rb") as fh:
        assert body == fh.read()
    request = urllib.request.Request(server.url + "/socket.io/socket.io.js",
                                     headers={"If-None-Match": etag})
    with pytest.raises(urllib.error.HTTPError) as not_modified:
        urllib.request.urlopen(request, timeout=5)
    assert not_modified.value.code == 304


# --------------------------------------------------------------------------
# our client against our server
# --------------------------------------------------------------------------
VALUES = ["hello", "", "café 日本語", "emoji 😀 👋🏽 𝄞", "line1\nline2\r\nend", "a+b=c&d=%20",
          "~m~5~m~hello", "~j~not json", {"a": 1, "nested": {"x": [1, "é😀"]}}, [1, 2, "three", None],
          [], 42, -7, 3.5, True, False, None]


def as_typed(value: Any) -> Dict[str, Any]:
    return {"echo": value, "type": type(value).__name__}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_echo_of_every_value_type(transport, make_server_thread, browser_page, page_server):
    server = make_server_thread(**FAST)
    server.record("on_message", "on_disconnect")
    server.on("on_message", typed_echo)
    page, wire = open_page(browser_page, page_server, server.url + "/socket.io/socket.io.js")
    sid = connect(page, server.port, transport)
    assert server.engine.get(sid) is not None
    assert page.evaluate("sock.transport.type") == transport

    page.evaluate("values => values.forEach(v => sock.send(v))", VALUES)
    raw = [v for v in VALUES if isinstance(v, str) and not v.startswith(("~j~", "~h~"))]
    got = wait_messages(page, len(VALUES) + len(raw))
    wait_for(lambda: len([e for e in server.events if e[0] == "on_message"]) == len(VALUES))

    received = [e[2] for e in server.events if e[0] == "on_message"]
    assert [(type(v).__name__, v) for v in received] == [(type(v).__name__, v) for v in VALUES]
    assert [m for m in got if isinstance(m, dict)] == [as_typed(v) for v in VALUES]
    assert [m for m in got if isinstance(m, str)] == raw
    assert page.evaluate("sock.errors") == []

    payloads = "".join(wire)
    for expected in ('~m~21~m~~j~[1,2,"three",null]', "~m~5~m~~j~42", "~m~7~m~~j~true",
                     "~m~7~m~~j~null", '~m~16~m~~j~"~j~not json"'):
        assert expected in payloads
    for text in raw:  # UTF-16 lengths, as our Python codec counts them
        assert encode_frame(text) in payloads

    page.evaluate("sock.disconnect()")
    wait_for(lambda: ("on_disconnect", sid) in [e[:2] for e in server.events])
    assert page.evaluate("sock.log.map(e => e[0])") == ["connecting", "connect", "disconnect"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_subscribe_before_connect_and_channel_broadcast(transport, make_server_thread, browser_page,
                                                        page_server):
    server = make_server_thread(**FAST)
    server.record("on_subscribe", "on_unsubscribe", "on_message")
    server.on("on_message", relay_to_channels)
    src = server.url + "/socket.io/socket.io.js"
    pages = {}
    for name, channel in (("a", "room-1"), ("b", "room-1"), ("c", "room-2")):
        page, wire = open_page(browser_page, page_server, src)
        sid = connect(page, server.port, transport, subscribe=[channel])
        pages[name] = (page, wire, sid, channel)

    for page, wire, sid, channel in pages.values():
        # exactly one positional marker batch, as old pages sent it
        wait_for(lambda: ("on_subscribe", sid, channel) in server.events)
        assert wire[0] == f"~m~13~m~__subscribe__~m~6~m~{channel}"
        assert server.call(lambda s=sid: server.engine.get(s).socket.channels) == (channel,)

    a, b, c = (pages[n][0] for n in "abc")
    a.evaluate("sock.send('from A to room-1')")
    c.evaluate("sock.send({text: 'from C to room-2'})")
    wait_messages(b, 1)
    b.evaluate("sock.send('from B to room-1')")
    wait_messages(a, 1)
    # A fence after everything: whatever else was coming would have come first.
    assert publish(server, "fence") == 3
    for page in (a, b, c):
        page.wait_for_function("() => sock.messages.indexOf('fence') >= 0")
    assert messages(a) == ["from B to room-1", "fence"]
    assert messages(b) == ["from A to room-1", "fence"]
    assert messages(c) == ["fence"]

    # unsubscribe leaves the channel on the server; later broadcasts skip it
    b.evaluate("sock.unsubscribe('room-1')")
    b_sid = pages["b"][2]
    wait_for(lambda: ("on_unsubscribe", b_sid, "room-1") in server.events)
    assert pages["b"][1][-1] == "~m~15~m~__unsubscribe__~m~6~m~room-1"
    assert publish(server, "room-1 only", "room-1") == 1


def test_subscribe_and_unsubscribe_queue_before_connect(make_server_thread, browser_page, page_server):
    """Calls made before the session exists collapse into one batch in order."""
    server = make_server_thread(**FAST)
    server.record("on_subscribe", "on_unsubscribe", "on_message")
    page, wire = open_page(browser_page, page_server, server.url + "/socket.io/socket.io.js")
    page.evaluate("""port => {
        window.sock = track(new io.Socket('127.0.0.1', {port: port, transports: ['websocket']}));
        sock.subscribe('x').send('hello').subscribe('gone').subscribe('y').unsubscribe('gone')
            .subscribe('x').connect();
    }""", server.port)
    page.wait_for_function("() => sock.connected")
    sid = page.evaluate("sock.transport.sessionid")
    wait_for(lambda: len(server.events) == 3)
    assert server.events == [("on_subscribe", sid, "x"), ("on_message", sid, "hello"),
                             ("on_subscribe", sid, "y")]
    assert wire == ["~m~13~m~__subscribe__~m~1~m~x~m~5~m~hello~m~13~m~__subscribe__~m~1~m~y"]
    assert page.evaluate("sock.channels") == ["x", "y"]


def test_heartbeats_are_echoed_and_never_surfaced(make_server_thread, browser_page, page_server):
    server = make_server_thread(heartbeat_interval=0.1, heartbeat_timeout=2.0)
    page, wire = open_page(browser_page, page_server, server.url + "/socket.io/socket.io.js")
    sid = connect(page, server.port, "websocket")
    session = server.engine.get(sid)
    wait_for(lambda: server.call(lambda: session.core.hb_acked) >= 3)
    assert server.call(lambda: session.connected)
    assert messages(page) == []
    assert wire[:3] == ["~m~4~m~~h~1", "~m~4~m~~h~2", "~m~4~m~~h~3"]


def test_falls_back_when_a_transport_is_refused(make_server_thread, browser_page, page_server):
    server = make_server_thread(transports=("xhr-polling", "jsonp-polling"), **FAST)
    server.echo()
    page, wire = open_page(browser_page, page_server, server.url + "/socket.io/socket.io.js")
    connect(page, server.port, transports=["websocket", "xhr-polling"], connectTimeout=10_000)
    assert page.evaluate("sock.transport.type") == "xhr-polling"
    assert page.evaluate("sock.log.map(e => e.join(' '))") == [
        "connecting websocket", "connecting xhr-polling", "connect"]
    page.evaluate("sock.send('still works')")
    assert wait_messages(page, 1) == ["still works"]

    # With no transport left to try, the attempt ends in connect_failed.
    page.evaluate("port => { window.lone = track(new io.Socket('127.0.0.1', "
                  "{port: port, transports: ['websocket']})); lone.connect(); }", server.port)
    page.wait_for_function("() => lone.log.some(e => e[0] === 'connect_failed')")
    assert page.evaluate("lone.log.map(e => e[0])") == ["connecting", "connect_failed"]
    assert page.evaluate("[lone.connected, lone.connecting]") == [False, False]


def test_defaults_from_the_page_global_and_io_configure(make_server_thread, browser_page, page_server):
    first = make_server_thread(**FAST)
    second = make_server_thread(**FAST)
    for srv in (first, second):
        srv.record("on_connect")
    before = ("<script>SOCKETIO_DEFAULTS = {host: '127.0.0.1', port: %d, "
              "transports: ['xhr-polling']};</script>" % first.port)
    page, _ = open_page(browser_page, page_server, first.url + "/socket.io/socket.io.js", before)
    page.evaluate("window.sock = track(new io.Socket()); sock.connect()")
    page.wait_for_function("() => sock.connected")
    assert page.evaluate("[sock.transport.type, sock.options.port]") == ["xhr-polling", first.port]
    sid = page.evaluate("sock.transport.sessionid")
    assert first.events == [("on_connect", sid)]

    page.evaluate("port => { io.configure({port: port}); window.sock2 = new io.Socket(); sock2.connect(); }",
                  second.port)
    page.wait_for_function("() => sock2.connected")
    sid2 = page.evaluate("sock2.transport.sessionid")
    assert second.events == [("on_connect", sid2)]


@pytest.fixture
def restartable_server(make_server_thread):
    """Start servers on a chosen port (0 picks one); ``stop(timeout=0)`` ends
    their connections at once, like a process that exits."""
    return make_server_thread


def channel_server(server: ServerThread) -> ServerThread:
    server.record("on_subscribe", "on_connect")
    return server


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reconnects_after_a_server_restart_and_resubscribes(transport, restartable_server,
                                                            browser_page, page_server):
    first = channel_server(restartable_server(**FAST))
    page, wire = open_page(browser_page, page_server, first.url + "/socket.io/socket.io.js")
    old_sid = connect(page, first.port, transport, subscribe=["room-9", "room-10"], reconnect=True,
                      reconnectionDelay=100, maxReconnectionAttempts=12)
    wait_for(lambda: ("on_subscribe", old_sid, "room-10") in first.events)
    page.evaluate("sock.unsubscribe('room-10')")  # not held any more: must not come back

    first.stop(timeout=0)
    page.wait_for_function("() => sock.log.some(e => e[0] === 'disconnect')")
    second = channel_server(restartable_server(port=first.port, **FAST))
    page.wait_for_function("() => sock.log.some(e => e[0] === 'reconnect')", timeout=30_000)

    new_sid = page.evaluate("sock.transport.sessionid")
    assert new_sid != old_sid
    wait_for(lambda: ("on_subscribe", new_sid, "room-9") in second.events)
    assert [e for e in second.events if e[0] == "on_subscribe"] == [("on_subscribe", new_sid, "room-9")]
    assert publish(second, "after restart", "room-9") == 1
    assert wait_messages(page, 1) == ["after restart"]

    names = page.evaluate("sock.log.map(e => e[0])")
    assert names[:3] == ["connecting", "connect", "disconnect"]
    assert names[-2:] == ["connect", "reconnect"]
    assert "reconnecting" in names[3:]
    assert page.evaluate("sock.transport.type") == transport


def test_reconnect_is_opt_in(make_server_thread, browser_page, page_server):
    server = make_server_thread(**FAST)
    page, _ = open_page(browser_page, page_server, server.url + "/socket.io/socket.io.js")
    sid = connect(page, server.port, "websocket")
    server.call(lambda: server.engine.get(sid).socket.close())
    page.wait_for_function("() => !sock.connected")
    # the decision is taken when the loss is noticed: nothing was scheduled
    assert page.evaluate("sock.reconnecting") is False
    assert page.evaluate("sock.log.map(e => e[0])") == ["connecting", "connect", "disconnect"]
    assert len(server.engine.sessions) == 0


def test_reconnect_gives_up_after_max_attempts(restartable_server, browser_page, page_server):
    server = restartable_server(**FAST)
    page, _ = open_page(browser_page, page_server, server.url + "/socket.io/socket.io.js")
    connect(page, server.port, "xhr-polling", reconnect=True, reconnectionDelay=50,
            maxReconnectionAttempts=3)
    server.stop(timeout=0)
    page.wait_for_function("() => sock.log.some(e => e[0] === 'reconnect_failed')")
    assert page.evaluate("sock.log.map(e => e[0] === 'disconnect' ? e[0] : e.join(' '))") == [
        "connecting xhr-polling", "connect", "disconnect",
        "reconnecting 50 1", "connecting xhr-polling",
        "reconnecting 100 2", "connecting xhr-polling",
        "reconnecting 200 3", "connecting xhr-polling",
        "reconnect_failed"]
    assert page.evaluate("[sock.connected, sock.connecting, sock.reconnecting]") == [False, False, False]


# --------------------------------------------------------------------------
# our client against the real node Socket.IO 0.6.18 server
# --------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def node_server():
    """The node echo app (tests/node/echo_server.js) on a loopback port."""
    require(shutil.which("node") is not None, "node is not installed")
    package_json = npm_package("socket.io@0.6.18", "socket.io/package.json")
    modules = os.path.dirname(os.path.dirname(package_json))
    port = free_port()
    proc = subprocess.Popen(["node", NODE_ECHO, modules, str(port)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = threading.Event()
    lines: List[str] = []

    def read_stdout():
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("listening"):
                ready.set()

    threading.Thread(target=read_stdout, daemon=True).start()
    try:
        if not ready.wait(15):
            raise RuntimeError(f"node echo server did not start: {proc.stderr.read()[-2000:]}")
        yield port
    finally:
        proc.kill()  # by PID: the process this fixture started
        proc.wait(10)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            pipe.close()


def node_page(browser_page, page_server):
    with open(CLIENT_PATH, "rb") as fh:
        page_server.pages["/socket.io.js"] = fh.read()
    return open_page(browser_page, page_server, "/socket.io.js")


NODE_VALUES = ["hello", "café 日本語", "emoji 😀 👋🏽 𝄞", "a+b=c&d=%20", "~m~3~m~abc",
               {"a": 1, "nested": ["é😀", None]}, [1, 2, "three"], 42, 3.5, True, False]


def js_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "object" if isinstance(value, dict) else "string"


@pytest.mark.parametrize("transport", POLLING)
def test_real_node_server_speaks_with_our_client(transport, node_server, browser_page, page_server):
    page, wire = node_page(browser_page, page_server)
    sid = connect(page, node_server, transport, subscribe=["room-1"])
    assert sid.isdigit()
    # The node server has no channels: it sees the marker batch as two messages.
    got = wait_messages(page, 4)
    assert got == ["__subscribe__", {"echo": "__subscribe__", "type": "string"},
                   "room-1", {"echo": "room-1", "type": "string"}]
    assert wire[0] == "~m~13~m~__subscribe__~m~6~m~room-1"

    page.evaluate("values => values.forEach(v => sock.send(v))", NODE_VALUES)
    raw = [v for v in NODE_VALUES if isinstance(v, str)]
    got = wait_messages(page, 4 + len(NODE_VALUES) + len(raw))[4:]
    assert [m for m in got if isinstance(m, dict)] == [{"echo": v, "type": js_kind(v)} for v in NODE_VALUES]
    assert [m for m in got if isinstance(m, str)] == raw
    assert page.evaluate("sock.errors") == []
    assert page.evaluate("sock.log.map(e => e.join(' '))") == [f"connecting {transport}", "connect"]


def test_real_node_server_falls_back_after_the_connect_timeout(node_server, browser_page, page_server):
    """The node 0.6 server never answers an RFC 6455 handshake: the client waits
    ``connectTimeout`` and moves on to the next transport."""
    page, _ = node_page(browser_page, page_server)
    connect(page, node_server, transports=["websocket", "xhr-polling"], connectTimeout=1000)
    assert page.evaluate("sock.log.map(e => e.join(' '))") == [
        "connecting websocket", "connecting xhr-polling", "connect"]
    page.evaluate("sock.send({ok: true})")
    assert wait_messages(page, 1) == [{"echo": {"ok": True}, "type": "object"}]
