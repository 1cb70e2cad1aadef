"""README "Socket.IO 4 clients": its example handlers run as written, driven
by the real socket.io-client@4 (Node) and a 0.6 client."""
from __future__ import annotations

import threading

from servers import wait_for
from test_readme_examples import run_blocks, section_blocks
from v4_support import run_client, v4_modules

from socketio_wsgi.client import Client
from socketio_wsgi.events import HandlerRegistry, use_registry
from socketio_wsgi.protocol import encode


def events(lines, kind):
    return [line for line in lines if line["type"] == kind]


def test_socketio_4_section_examples(make_server_thread):
    v4_modules()
    registry = HandlerRegistry()
    with use_registry(registry):
        run_blocks(section_blocks("Socket.IO 4 clients"))
    server = make_server_thread(handlers=registry)

    refused = run_client({"url": server.url, "auth": {"token": "wrong"}, "steps": []})
    assert [e["message"] for e in events(refused, "connect_error")] == ["bad token"]

    math = run_client({"url": server.url, "namespace": "/math", "auth": {"token": "s3cret"},
                       "steps": [{"emit": "sum", "args": [1, 2, 3], "ack": True}]})
    assert events(math, "ack")[0]["args"] == [6, 3]

    old = Client(server.url, transport="websocket", timeout=10)  # 0.6: no auth needed
    old.connect()
    try:
        old.send_payload(encode(["__subscribe__", "lobby"]))
        old.send("ping")
        assert old.receive(timeout=10) == "ping"  # on_message echoes; lobby is joined by now
        result = {}
        node = threading.Thread(target=lambda: result.update(lines=run_client({
            "url": server.url, "auth": {"token": "s3cret"},
            "steps": [{"emit": "__subscribe__", "args": ["lobby"], "ack": True},
                      {"emit": "chat", "args": ["lobby", "hi"], "ack": True},
                      {"send": [{"x": 1}]}, {"wait": "message"}],
        })))
        node.start()
        assert old.receive(timeout=15) == {"$event": "chat", "args": ["lobby", "hi"]}
        node.join(30)
    finally:
        old.disconnect()
    lines = result["lines"]
    assert [a["args"] for a in events(lines, "ack")] == [[], ["delivered"]]
    assert [e["args"] for e in events(lines, "event") if e["name"] == "message"] == [[{"x": 1}]]
    wait_for(lambda: not server.engine.sessions, timeout=10)
