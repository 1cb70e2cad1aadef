"""The real Socket.IO 0.6 browser client (npm socket.io@0.6.18) in Debian
chromium, against our server on another port than the page.

In Chromium the client offers websocket, xhr-polling and jsonp-polling only
(flashsocket needs the Flash plugin, htmlfile ActiveX, xhr-multipart the
``XMLHttpRequest.prototype.multipart`` of old Firefox); the first test checks
that, the next ones force each offered transport in turn.  The other three are
covered byte for byte in ``test_transports_http.py``; htmlfile additionally
runs here with the client's own htmlfile transport object, only the ActiveX
document replaced by a plain iframe, to put the stream through a real HTML
parser.
"""
from __future__ import annotations

import pytest

from servers import wait_for

pytestmark = pytest.mark.browser

OFFERED_IN_CHROMIUM = ["websocket", "xhr-polling", "jsonp-polling"]
ALL = ["websocket", "flashsocket", "htmlfile", "xhr-multipart", "xhr-polling", "jsonp-polling"]

#: Strings a page and a script context both tend to break; one JSON object.
ECHOES = [
    "hello",
    "café 日本語 ñ",
    "emoji 😀👋🏽 end",
    {"a": 1, "text": "é😀", "list": [1, "two", None, True], "nested": {"ok": False}},
    "line one\nline two",
    "</script><script>window.hacked = 1</script>",
    "<!-- <script> an HTML comment opener",
    "separators \u2028 and \u2029",
    'quote " and \\ backslash',
]
BIG = "0123456789abcdef" * 65536  # 1 MiB of ASCII

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>real 0.6 client</title>
<script src="/socket.io.js"></script></head>
<body><script>
window.offered = function () {
  var out = {};
  for (var i = 0; i < arguments.length; i++) {
    var t = arguments[i], T = io.Transport[t];
    out[t] = !!(T && T.check() && T.xdomainCheck());
  }
  return out;
};
window.start = function (port, transport) {
  var rec = window.rec = {messages: [], connected: false, disconnected: false, failed: false};
  var socket = rec.socket = new io.Socket('127.0.0.1', {
    port: port, transports: [transport], rememberTransport: false,
    reconnect: false, tryTransportsOnConnectTimeout: false, connectTimeout: 10000});
  if (!socket.transport) return null;
  socket.on('connect', function () {
    rec.connected = true; rec.sessionid = socket.transport.sessionid; rec.type = socket.transport.type;
  });
  socket.on('message', function (m) { rec.messages.push(m); });
  socket.on('disconnect', function () { rec.disconnected = true; });
  socket.on('connect_failed', function () { rec.failed = true; });
  socket.connect();
  return socket.transport.type;
};
</script></body></html>
"""


@pytest.fixture
def site(page_server, real_client_js):
    page_server.pages["/socket.io.js"] = real_client_js.encode("utf-8")
    page_server.pages["/index.html"] = PAGE.encode("utf-8")
    return page_server


@pytest.fixture
def app_server(make_server_thread):
    """Echo server; ``{"broadcast": x}`` broadcasts ``x`` to everybody else."""
    srv = make_server_thread(polling_duration=5.0, close_timeout=2.0)

    def on_message(request, socket, context, message):
        if isinstance(message, dict) and "broadcast" in message:
            socket.broadcast(message["broadcast"])
        else:
            socket.send(message)

    srv.on("on_message", on_message)
    srv.record("on_connect", "on_message", "on_disconnect")
    return srv


def open_client(browser_page, site, port: int, transport: str):
    page = browser_page()
    page.goto(site.url + "/index.html")
    assert page.evaluate("([p, t]) => start(p, t)", [port, transport]) == transport
    page.wait_for_function("rec.connected || rec.failed", timeout=10_000)
    assert page.evaluate("rec.connected"), f"{transport}: connect_failed"
    assert page.evaluate("rec.type") == transport
    return page, page.evaluate("rec.sessionid")


def received(page, count: int, timeout: float = 10_000):
    page.wait_for_function(f"rec.messages.length >= {count}", timeout=timeout)
    return page.evaluate("rec.messages")


def messages_of(srv, sid):
    return [e[2] for e in srv.events if e[0] == "on_message" and e[1] == sid]


def test_transports_the_client_offers_in_chromium(browser_page, site):
    page = browser_page()
    page.goto(site.url + "/index.html")
    offered = page.evaluate("(names) => offered.apply(null, names)", ALL)
    assert [t for t in ALL if offered[t]] == OFFERED_IN_CHROMIUM
    # Forcing a transport the browser cannot run leaves the client without one.
    for transport in sorted(set(ALL) - set(OFFERED_IN_CHROMIUM)):
        assert page.evaluate("([p, t]) => start(p, t)", [1, transport]) is None


@pytest.mark.parametrize("transport", OFFERED_IN_CHROMIUM)
def test_real_client(transport, browser_page, site, app_server):
    srv = app_server
    page, sid = open_client(browser_page, site, srv.port, transport)
    assert srv.call(lambda: srv.engine.get(sid).transport) == transport

    # Echo: text, non-ASCII, emoji, script-breaking text, and an object.
    page.evaluate("(msgs) => msgs.forEach(m => rec.socket.send(m))", ECHOES)
    assert received(page, len(ECHOES)) == ECHOES
    assert page.evaluate("typeof rec.messages[3] === 'object' && rec.messages[3].nested.ok === false")
    assert page.evaluate("window.hacked === undefined")
    assert messages_of(srv, sid) == ECHOES  # what the server's handler got

    # 50 messages keep their order both ways.
    page.evaluate("() => { for (var i = 0; i < 50; i++) rec.socket.send('n' + i); }")
    numbered = [f"n{i}" for i in range(50)]
    assert received(page, len(ECHOES) + 50)[len(ECHOES):] == numbered
    assert messages_of(srv, sid)[len(ECHOES):] == numbered

    # 1 MiB each way (compared in the page, not shipped back through CDP).
    total = len(ECHOES) + 51
    page.evaluate("(n) => { window.big = '0123456789abcdef'.repeat(n); rec.socket.send(big); }", 65536)
    page.wait_for_function(f"rec.messages.length >= {total}", timeout=20_000)
    assert page.evaluate(f"rec.messages[{total - 1}] === big")
    assert messages_of(srv, sid)[-1] == BIG

    # A broadcast reaches a second browser client, not the sender.
    other, other_sid = open_client(browser_page, site, srv.port, transport)
    page.evaluate("rec.socket.send({broadcast: 'to all é😀'})")
    assert received(other, 1) == ["to all é😀"]
    page.evaluate("rec.socket.send('marker')")
    assert received(page, total + 1)[total:] == ["marker"]

    # Closing the first client ends its session on the server, and only its.
    page.evaluate("rec.socket.disconnect()")
    page.close()
    wait_for(lambda: ("on_disconnect", sid) in [e[:2] for e in srv.events], timeout=15)
    assert ("on_disconnect", other_sid) not in [e[:2] for e in srv.events]
    assert srv.call(lambda: sorted(srv.engine.sessions)) == [other_sid]


HTMLFILE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><script src="/client.js"></script></head>
<body><script>
window.start = function () {
  var rec = window.rec = {messages: [], connected: false};
  var socket = rec.socket = new io.Socket(document.domain, {
    port: location.port, transports: ['xhr-polling'], rememberTransport: false, reconnect: false});
  // The client's own htmlfile transport; only open() needs ActiveX, so do
  // what it does with a plain iframe: expose the transport as window.s.
  var t = socket.transport = window.s = new io.Transport.htmlfile(socket, {});
  socket.on('connect', function () { rec.connected = true; rec.sessionid = t.sessionid; });
  socket.on('message', function (m) { rec.messages.push(m); });
  socket.connecting = true;
  var frame = document.createElement('iframe');
  frame.src = t.prepareUrl() + '/' + (+new Date);
  document.body.appendChild(frame);
  rec.frame = frame;
};
</script></body></html>
"""


def test_htmlfile_stream_in_chromium_with_the_client_transport(make_server_thread, browser_page,
                                                                real_client_js):
    """Same origin (the frame calls ``parent.s``): the page comes from the app
    the middleware wraps.  Heartbeats are answered by the client's own code."""
    files = {"/page.html": (HTMLFILE_PAGE.encode("utf-8"), "text/html; charset=utf-8"),
             "/client.js": (real_client_js.encode("utf-8"), "text/javascript")}

    def app(environ, start_response):
        body, kind = files.get(environ["PATH_INFO"], (b"not found", "text/plain"))
        start_response("200 OK" if environ["PATH_INFO"] in files else "404 Not Found",
                       [("Content-Type", kind), ("Content-Length", str(len(body)))])
        return [body]

    srv = make_server_thread(app, heartbeat_interval=0.3, heartbeat_timeout=2.0)
    srv.echo()
    srv.record("on_connect", "on_message", "on_disconnect")
    page = browser_page()
    page.goto(srv.url + "/page.html")
    page.evaluate("start()")
    page.wait_for_function("rec.connected", timeout=10_000)
    sid = page.evaluate("rec.sessionid")
    assert srv.call(lambda: srv.engine.get(sid).transport) == "htmlfile"

    page.evaluate("(msgs) => msgs.forEach(m => rec.socket.send(m))", ECHOES)
    assert received(page, len(ECHOES)) == ECHOES
    assert page.evaluate("window.hacked === undefined")
    page.evaluate("() => { for (var i = 0; i < 50; i++) rec.socket.send('n' + i); }")
    assert received(page, len(ECHOES) + 50)[len(ECHOES):] == [f"n{i}" for i in range(50)]
    # Heartbeats went out and the client echoed them by POST; each executed
    # script removed itself, as the client's _() does.
    wait_for(lambda: srv.call(lambda: srv.engine.get(sid).core.hb_acked) >= 2, timeout=10)
    assert page.evaluate("rec.frame.contentDocument.getElementsByTagName('script').length") == 0
    assert disconnect_reason_of(srv, sid) is None
    page.evaluate("rec.frame.src = 'about:blank'")  # what the client's disconnect() does
    wait_for(lambda: disconnect_reason_of(srv, sid), timeout=10)
    assert disconnect_reason_of(srv, sid) == "client closed"


def disconnect_reason_of(srv, sid):
    return next((e[2] for e in srv.events if e[0] == "on_disconnect" and e[1] == sid), None)
