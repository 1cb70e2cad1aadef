"""The ceiling: a plain gevent-websocket echo/rooms app with no Socket.IO framing.

Wire protocol (text frames), shared with the Channels peer:

* server -> client ``hello`` once connected (so "handshake done" means the same
  thing for every peer: the first server message arrived);
* ``sub:<channel>`` joins a room; ``pub:<channel>:<data>`` sends ``<data>`` to every
  other member of the room (frame built once, the same bytes written to each socket);
* ``hb`` every ``--heartbeat`` seconds from one timer greenlet; the client echoes it;
* anything else is echoed back.

Long polling, for the polling scenario: ``GET /poll/new`` -> id, ``GET /poll/<id>``
waits up to 20 s for queued messages (joined by U+001E), ``POST /poll/<id>`` with a
text body queues its echo.

Run: ``python -m bench.peers.plain_app --port 8001``.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import itertools  # noqa: E402
import socket  # noqa: E402
from typing import Dict, List, Set  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402
from geventwebsocket.handler import WebSocketHandler  # noqa: E402
from geventwebsocket.websocket import Header  # noqa: E402

rooms: Dict[str, Set] = {}
sockets: Set = set()


def text_frame(data: str) -> bytes:
    """One unmasked final text frame, built once for every recipient."""
    payload = data.encode("utf-8")
    return bytes(Header.encode_header(True, 0x1, b"", len(payload), 0)) + payload


def serve_websocket(ws) -> None:
    joined: List[str] = []
    sockets.add(ws)
    try:
        ws.send("hello")
        while True:
            msg = ws.receive()
            if msg is None:
                return
            if msg == "hb":
                continue
            if msg.startswith("sub:"):
                channel = msg[4:]
                rooms.setdefault(channel, set()).add(ws)
                joined.append(channel)
            elif msg.startswith("pub:"):
                channel, _, data = msg[4:].partition(":")
                frame = text_frame(data)
                for peer in list(rooms.get(channel, ())):
                    if peer is not ws:
                        try:
                            peer.raw_write(frame)
                        except (OSError, AttributeError):
                            pass  # the peer is going away; its own greenlet cleans up
            else:
                ws.send(msg)
    except OSError:
        return
    finally:
        sockets.discard(ws)
        for channel in joined:
            members = rooms.get(channel)
            if members is not None:
                members.discard(ws)
                if not members:
                    del rooms[channel]


def heartbeats(interval: float) -> None:
    frame = text_frame("hb")
    while True:
        gevent.sleep(interval)
        for ws in list(sockets):
            try:
                ws.raw_write(frame)
            except (OSError, AttributeError):
                pass


class Poller:
    __slots__ = ("queue", "event")

    def __init__(self) -> None:
        self.queue: List[str] = []
        self.event = gevent.event.Event()


pollers: Dict[str, Poller] = {}
_ids = itertools.count(1)


def respond(start_response, status: str, body: bytes):
    start_response(status, [("Content-Type", "text/plain; charset=UTF-8"),
                            ("Content-Length", str(len(body)))])
    return [body]


def serve_poll(environ, start_response):
    key = environ["PATH_INFO"][len("/poll/"):]
    method = environ["REQUEST_METHOD"]
    if key == "new" and method == "GET":
        sid = str(next(_ids))
        pollers[sid] = Poller()
        return respond(start_response, "200 OK", sid.encode())
    poller = pollers.get(key)
    if poller is None:
        return respond(start_response, "404 Not Found", b"unknown id")
    if method == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        poller.queue.append(environ["wsgi.input"].read(length).decode("utf-8"))
        poller.event.set()
        return respond(start_response, "200 OK", b"ok")
    if not poller.queue:
        poller.event.clear()
        poller.event.wait(20)
    body, poller.queue = poller.queue, []
    return respond(start_response, "200 OK", "\x1e".join(body).encode("utf-8"))


def application(environ, start_response):
    ws = environ.get("wsgi.websocket")
    if ws is not None:
        serve_websocket(ws)
        return []
    if environ["PATH_INFO"].startswith("/poll/"):
        return serve_poll(environ, start_response)
    return respond(start_response, "404 Not Found", b"not found")


class Handler(WebSocketHandler):
    """gevent-websocket's handler with Nagle off: pywsgi writes the headers and
    the body of a response in two sends, and with Nagle on the body waits for
    the client's delayed ACK (about 40 ms) on every keep-alive poll."""

    def handle(self):
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return super().handle()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--heartbeat", type=float, default=10.0)
    args = parser.parse_args()
    gevent.spawn(heartbeats, args.heartbeat)
    server = WSGIServer(("127.0.0.1", args.port), application, handler_class=Handler, log=None)
    print(f"plain: serving on {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
