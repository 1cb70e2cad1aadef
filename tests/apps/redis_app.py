"""The app the Redis tests run in several ``python -m socketio_wsgi`` processes.

Clients drive it with JSON messages: ``{"do": "bc", "channel": c, "value": v}``
broadcasts to a channel (all held channels without ``channel``), ``"b"`` to
everyone, ``"send"`` / ``"oob_bc"`` use the out-of-band API from a handler;
the sender gets ``{"reached": n}`` or ``{"nosocket": reason}`` back.  Strings
are echoed; each subscribe and unsubscribe is acknowledged.

HTTP ``/greenlets`` answers how many greenlets are alive in the process.

Run as a script it is an *emitter*: a plain process (no gevent patching) that
calls the out-of-band API through the backend URL and prints the results::

    python redis_app.py redis://127.0.0.1:6379/0 '[["broadcast_channel", "hi", "room"]]'
"""
import gc
import json
import sys

import greenlet

import socketio_wsgi
from socketio_wsgi import NoSocket, on_message, on_subscribe, on_unsubscribe


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/greenlets":
        alive = sum(1 for obj in gc.get_objects() if isinstance(obj, greenlet.greenlet) and obj)
        body = json.dumps({"greenlets": alive}).encode()
    else:
        body = b"redis app"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def outcome(call, *args):
    try:
        result = call(*args)
    except NoSocket as exc:
        return {"nosocket": str(exc)}
    return {"reached": 1 if result is None else result}


@on_message
def act(request, socket, context, message):
    if not isinstance(message, dict):
        socket.send(message)
        return
    action, value = message.get("do"), message.get("value")
    if action == "bc":
        socket.send({"reached": socket.broadcast_channel(value, message.get("channel"))})
    elif action == "b":
        socket.send({"reached": socket.broadcast(value)})
    elif action == "send":
        socket.send(outcome(socketio_wsgi.send, message["to"], value))
    elif action == "oob_bc":
        socket.send(outcome(socketio_wsgi.broadcast_channel, value, message["channel"]))


@on_subscribe
def subscribed(request, socket, context, channel):
    socket.send({"subscribed": channel})


@on_unsubscribe
def unsubscribed(request, socket, context, channel):
    socket.send({"unsubscribed": channel})


def emit(url: str, calls: list) -> list:
    """Run ``[name, *args]`` calls of the out-of-band API; their outcomes."""
    backend = socketio_wsgi.set_backend(url)
    try:
        return [outcome(getattr(socketio_wsgi, name), *args) for name, *args in calls]
    finally:
        backend.close()


if __name__ == "__main__":
    print(json.dumps(emit(sys.argv[1], json.loads(sys.argv[2]))), flush=True)
