"""Socket.IO 4 pages in headless Chromium: the official ``socket.io-client@4``
browser bundle (from .cache/npm-v4) beside a page on the real 0.6.18 client
and a page on our own client, sharing one channel on one server."""
from __future__ import annotations

import os

import pytest
from servers import wait_for
from v4_support import v4_modules

pytestmark = pytest.mark.browser

V4_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>socket.io-client 4</title>
<script src="/v4.js"></script></head>
<body><script>
window.start = function (port, transports) {
  var rec = window.rec = {events: [], acks: [], connected: false, upgraded: false, errors: []};
  var socket = rec.socket = io('http://127.0.0.1:' + port, {transports: transports, reconnection: false});
  socket.on('connect', function () {
    rec.connected = true;
    rec.transport = socket.io.engine.transport.name;
  });
  socket.io.on('open', function () {
    socket.io.engine.on('upgrade', function (t) { rec.upgraded = t.name; });
  });
  socket.on('connect_error', function (err) { rec.errors.push(err.message); });
  socket.on('question', function (n, answer) { answer(n + 1, new Uint8Array([9, 8])); });
  socket.onAny(function (name) {
    var args = Array.prototype.slice.call(arguments, 1).map(function (a) {
      return a instanceof ArrayBuffer ? {bytes: Array.from(new Uint8Array(a))} : a;
    });
    rec.events.push([name, args]);
  });
};
window.call = function (name, args) {
  return new Promise(function (resolve) {
    rec.socket.emit.apply(rec.socket, [name].concat(args).concat([function () {
      resolve(Array.prototype.slice.call(arguments).map(function (a) {
        return a instanceof ArrayBuffer ? {bytes: Array.from(new Uint8Array(a))} : a;
      }));
    }]));
  });
};
</script></body></html>
"""

OLD_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>real 0.6 client</title>
<script src="/socket.io.js"></script></head>
<body><script>
window.start = function (port) {
  var rec = window.rec = {messages: [], connected: false};
  var socket = rec.socket = new io.Socket('127.0.0.1', {
    port: port, transports: ['websocket'], rememberTransport: false, reconnect: false});
  socket.on('connect', function () {
    rec.connected = true;
    socket.send(['__subscribe__', 'room']);
  });
  socket.on('message', function (m) { rec.messages.push(m); });
  socket.connect();
};
</script></body></html>
"""

OURS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>our client</title>
<script src="SRC"></script></head>
<body><script>
window.start = function (port) {
  var rec = window.rec = {said: [], messages: [], connected: false};
  var socket = rec.socket = new io.Socket('127.0.0.1', {port: port, transports: ['websocket']});
  socket.on('connect', function () { rec.connected = true; });
  socket.on('message', function (m) { rec.messages.push(m); });
  socket.on('said', function (text, extra) { rec.said.push([text, extra]); });
  socket.subscribe('room').connect();
};
</script></body></html>
"""


@pytest.fixture
def site(page_server, real_client_js):
    bundle = os.path.join(v4_modules(), "socket.io-client", "dist", "socket.io.min.js")
    with open(bundle, "rb") as fh:
        page_server.pages["/v4.js"] = fh.read()
    page_server.pages["/socket.io.js"] = real_client_js.encode("utf-8")
    page_server.pages["/v4.html"] = V4_PAGE.encode("utf-8")
    page_server.pages["/old.html"] = OLD_PAGE.encode("utf-8")
    return page_server


@pytest.fixture
def app(make_server_thread):
    srv = make_server_thread()
    subscribed = []
    srv.handlers.add("on_subscribe", lambda request, socket, context, channel:
                     (subscribed.append((socket.protocol, channel)),
                      socket.emit("subscribed", channel) if socket.protocol == "4" else None))
    srv.handlers.add("on_message", lambda request, socket, context, message:
                     socket.broadcast_channel(message, "room"))
    srv.handlers.add_named("say", lambda request, socket, context, text:
                           socket.emit_channel("said", text, {"n": 1}, channel="room"))
    srv.handlers.add_named("reverse", lambda request, socket, context, data, *rest:
                           (bytes(reversed(data)), len(rest)))
    srv.subscribed = subscribed
    return srv


def open_v4(browser_page, site, port, transports):
    page = browser_page()
    page.goto(site.url + "/v4.html")
    page.evaluate("([p, t]) => start(p, t)", [port, transports])
    page.wait_for_function("rec.connected || rec.errors.length")
    assert page.evaluate("rec.connected"), page.evaluate("rec.errors")
    return page


@pytest.mark.parametrize("transports", [["polling", "websocket"], ["websocket"]])
def test_v4_page_and_real_06_page_share_a_channel(browser_page, site, app, transports):
    old = browser_page()
    old.goto(site.url + "/old.html")
    old.evaluate("p => start(p)", app.port)
    old.wait_for_function("rec.connected")
    wait_for(lambda: ("0.6", "room") in app.subscribed, timeout=10)
    page = open_v4(browser_page, site, app.port, transports)
    if "polling" in transports:
        page.wait_for_function("rec.upgraded === 'websocket'")
    assert page.evaluate("call('__subscribe__', ['room'])") == []
    page.evaluate("rec.socket.emit('say', 'from the v4 page')")
    old.wait_for_function("rec.messages.length >= 1")
    assert old.evaluate("rec.messages") == [{"$event": "said", "args": ["from the v4 page", {"n": 1}]}]
    old.evaluate("rec.socket.send({from: 'the 0.6 page'})")
    page.wait_for_function("rec.events.some(function (e) { return e[0] === 'message'; })")
    events = page.evaluate("rec.events")
    assert ["message", [{"from": "the 0.6 page"}]] in events
    assert ["subscribed", ["room"]] in events
    assert sorted(app.subscribed) == [("0.6", "room"), ("4", "room")]


def test_v4_page_binary_and_json_types_with_acks(browser_page, site, app):
    page = open_v4(browser_page, site, app.port, ["polling", "websocket"])
    answer = page.evaluate("call('reverse', [new Uint8Array([1, 2, 3]), 'x', 1.5, null, true, {a: [1]}])")
    assert answer == [{"bytes": [3, 2, 1]}, 5]


def test_our_client_fires_named_events(browser_page, page_server, site, app):
    page_server.pages["/ours.html"] = OURS_PAGE.replace(
        "SRC", f"http://127.0.0.1:{app.port}/socket.io/socket.io.js").encode("utf-8")
    ours = browser_page()
    ours.goto(page_server.url + "/ours.html")
    ours.evaluate("p => start(p)", app.port)
    ours.wait_for_function("rec.connected")
    page = open_v4(browser_page, site, app.port, ["websocket"])
    page.evaluate("call('__subscribe__', ['room'])")
    app_sessions = app.call(lambda: len(app.engine.sessions))
    assert app_sessions == 2
    wait_for(lambda: ("0.6", "room") in app.subscribed, timeout=10)
    page.evaluate("rec.socket.emit('say', 'named')")
    ours.wait_for_function("rec.said.length >= 1")
    assert ours.evaluate("rec.said") == [["named", {"n": 1}]]
    assert ours.evaluate("rec.messages") == []


def test_the_server_asks_the_page_for_an_ack(browser_page, site, app):
    answers = []
    app.handlers.add_named("ask", lambda request, socket, context:
                           socket.emit("question", 41, callback=lambda *args: answers.append(args)))
    page = open_v4(browser_page, site, app.port, ["websocket"])
    page.evaluate("call('ask', [])")
    wait_for(lambda: answers, timeout=10)
    assert answers == [(42, b"\x09\x08")]
