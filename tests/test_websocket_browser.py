"""Chromium against socketio_wsgi.websocket.accept: permessage-deflate is
negotiated (Chromium offers it on every connection) and a 1 MiB message is
echoed, compressed on the wire both ways."""
from __future__ import annotations

import pytest
from servers import wait_for

from socketio_wsgi.websocket import accept

pytestmark = pytest.mark.browser

MiB = 1024 * 1024

PAGE = """<!doctype html><meta charset="utf-8"><title>ws</title><script>
window.result = new Promise(function (resolve, reject) {
  var rows = [], length = 0;
  for (var i = 0; length < %(size)d; i++) {
    var row = '{"id":' + i + ',"user":"user' + (i %% 97) + '","text":"message number ' + i + ' é"}';
    rows.push(row);
    length += row.length + 1;
  }
  var big = rows.join(",");
  big = big.slice(0, %(size)d - 2) + "😀";   // 2 UTF-16 units, 4 UTF-8 bytes
  var ws = new WebSocket("ws://" + location.host + "/echo");
  ws.onopen = function () { ws.send(big); };
  ws.onmessage = function (event) {
    resolve({extensions: ws.extensions, same: event.data === big,
             length: event.data.length});
    ws.close(1000, "done");
  };
  ws.onerror = function () { reject("websocket error"); };
});
</script>"""


class App:
    def __init__(self, size: int):
        self.page = (PAGE % {"size": size}).encode("utf-8")
        self.connections = []

    def __call__(self, environ, start_response):
        if environ["PATH_INFO"] == "/echo":
            ws = accept(environ, start_response, max_size=2 * MiB)
            if ws is None:
                return []
            self.connections.append(ws)
            for message in ws:
                ws.send(message)
            return []
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                  ("Content-Length", str(len(self.page)))])
        return [self.page]


def test_chromium_negotiates_compression_and_echoes_one_mib(make_server_thread, browser_page):
    app = App(MiB - 2)  # the message's UTF-8 form is a little over 1 MiB
    server = make_server_thread(app)
    page = browser_page()
    page.goto(server.url + "/")
    result = page.evaluate("window.result")
    assert result["same"] is True
    assert result["length"] >= MiB - 2
    assert "permessage-deflate" in result["extensions"]
    conn = app.connections[0]
    wait_for(lambda: server.call(lambda: conn.closed))
    assert server.call(lambda: conn.close_code) == 1000
    # Both directions were compressed on the wire: well under the 1 MiB sent.
    received = server.call(lambda: conn.bytes_received)
    sent = server.call(lambda: conn.bytes_sent)
    assert received < MiB // 2 and sent < MiB // 2, (received, sent)
