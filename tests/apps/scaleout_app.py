"""The app of the scale-out tests (tests/test_scaleout.py): several worker
processes share one Redis, and any request of a session may reach any of them.

Served two ways:

- ``python -m socketio_wsgi --backend redis://... scaleout_app:application``
  (the runner wraps ``application``; three of them behind nginx);
- ``gunicorn -k socketio_wsgi.workers.GeventSocketIOWorker -w 3
  'scaleout_app:make_app()'``: every worker builds its own middleware from
  ``SCALEOUT_BACKEND`` (the Redis URL), ``SCALEOUT_POLLING_DURATION`` and
  ``SCALEOUT_LIVENESS_TIMEOUT`` (heartbeat and close timeouts) and
  ``SCALEOUT_FORWARD_TIMEOUT``.

What a client gets:

- on connect, the process that owns its session: ``{"pid": N}`` (0.6), the
  event ``pid`` (Socket.IO 4), so a test knows whose sessions a killed
  worker takes with it;
- each subscription of a 0.6 client acknowledged: ``{"subscribed": channel}``;
- a numbered message ``{"c": client, "s": seq, "ch": channel}`` back, and
  the same to the other holders of ``channel`` (one frame for both);
- ``{"say": text, "name": who}`` (the chat): ``{"from": who, "said": text}``
  to the sender and the other holders of its channels;
- ``{"go": channel}``: the event ``go`` to the other holders of ``channel``
  (the tests' coordinator starts Socket.IO 4 clients with it);
- Socket.IO 4 events: ``join(channel)`` subscribes, tells the channel's other
  holders ``joined`` and is acknowledged with how many it told; ``echo(*args)``
  is acknowledged with its arguments;
  ``shout(text, channel)`` emits ``shouted`` to the channel's other holders
  and is acknowledged with how many it reached.
"""
import os

import sys

from socketio_wsgi import SocketIOMiddleware, on_connect, on_disconnect, on_event, on_message, on_subscribe


def application(environ, start_response):
    body = f"scaleout app {os.getpid()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def make_app():
    """The middleware of one gunicorn worker, configured from the environment."""
    liveness = float(os.environ.get("SCALEOUT_LIVENESS_TIMEOUT", "8"))
    return SocketIOMiddleware(application, origins="*", backend=os.environ["SCALEOUT_BACKEND"],
                              polling_duration=float(os.environ.get("SCALEOUT_POLLING_DURATION", "20")),
                              heartbeat_timeout=liveness, close_timeout=liveness,
                              forward_timeout=float(os.environ.get("SCALEOUT_FORWARD_TIMEOUT", "5")))


@on_connect
def hello(request, socket, context):
    if socket.protocol == "0.6":
        socket.send({"pid": os.getpid()})
    else:
        socket.emit("pid", os.getpid())


@on_disconnect
def gone(request, socket, context, reason=None):
    """One line in the worker's log for a session that ended other than by
    its client's choice, so a failed run says why a session became unknown."""
    if reason not in (None, "client closed", "server shutdown"):
        print(f"session {socket.session_id} ({socket.protocol}) ended: {reason}", file=sys.stderr, flush=True)


@on_subscribe
def subscribed(request, socket, context, channel):
    if socket.protocol == "0.6":  # Socket.IO 4 clients join with an acknowledged event
        socket.send({"subscribed": channel})


@on_message
def act(request, socket, context, message):
    if not isinstance(message, dict):
        return
    if "s" in message:
        socket.send_and_broadcast_channel(message, message.get("ch"))
    elif "say" in message:
        socket.send_and_broadcast_channel({"from": message.get("name"), "said": message["say"]})
    elif "go" in message:
        socket.emit_channel("go", channel=message["go"])


@on_event("join")
def join(request, socket, context, channel):
    socket.subscribe(channel)
    return socket.emit_channel("joined", socket.protocol, channel=channel)  # how many it told


@on_event("echo")
def echo(request, socket, context, *args):
    return args


@on_event("shout")
def shout(request, socket, context, text, channel):
    return socket.emit_channel("shouted", text, channel=channel)
