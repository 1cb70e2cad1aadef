"""Peer: python-socketio 5 (Engine.IO 4) on gevent with gevent-websocket.

Events: ``message`` is echoed to the sender; ``sub`` (a channel name) enters
that room; ``pub`` (``{"channel": ..., "data": ...}``) emits ``message`` with
``data`` to the room, skipping the sender.  Pings every 10 s, as our server's
heartbeats.  Handlers run the library's default way (``async_handlers=True``).

Run: ``python -m bench.peers.pysio_app --port 8002``.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402

import socketio  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402
from geventwebsocket.handler import WebSocketHandler  # noqa: E402

sio = socketio.Server(async_mode="gevent", cors_allowed_origins="*", ping_interval=10,
                      ping_timeout=8, logger=False, engineio_logger=False)
application = socketio.WSGIApp(sio)


@sio.on("message")
def on_message(sid, data):
    sio.send(data, to=sid)


@sio.on("sub")
def on_sub(sid, channel):
    sio.enter_room(sid, channel)


@sio.on("pub")
def on_pub(sid, data):
    sio.emit("message", data["data"], room=data["channel"], skip_sid=sid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = WSGIServer(("127.0.0.1", args.port), application, handler_class=WebSocketHandler, log=None)
    print(f"python-socketio: serving on {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
