"""Our server's bench app, run with::

    python -m socketio_wsgi --port P --origins '*' --no-access-log bench.apps_ours:application

``on_message`` echoes; a ``{"channel": c, "data": d}`` message publishes ``d``
to channel ``c`` with :meth:`Socket.broadcast_channel` (encoded once per
protocol, the same bytes queued for every holder).  Subscribing is the
protocol's own ``__subscribe__`` command, so no handler is needed for it.

Socket.IO 4 clients (the bench's ``eio4`` wire, as python-socketio's app
serves it) send ``message`` (which reaches ``on_message``), ``sub`` (join a
channel) and ``pub`` (``{"channel": c, "data": d}``), and receive
``message`` events.
"""
from socketio_wsgi import on_event, on_message


def application(environ, start_response):
    body = b"bench"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@on_message
def echo_or_publish(request, socket, context, message):
    if isinstance(message, dict):
        socket.broadcast_channel(message.get("data"), message.get("channel"))
    else:
        socket.send(message)


@on_event("sub")
def join(request, socket, context, channel):
    socket.subscribe(channel)


@on_event("pub")
def publish(request, socket, context, data):
    socket.broadcast_channel(data["data"], data["channel"])
