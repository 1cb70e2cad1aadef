"""Our server's bench app, run with::

    python -m socketio_wsgi --port P --origins '*' --no-access-log bench.apps_ours:application

``on_message`` echoes; a ``{"channel": c, "data": d}`` message publishes ``d``
to channel ``c`` with :meth:`Socket.broadcast_channel` (encoded once, the same
bytes queued for every holder).  Subscribing is the protocol's own
``__subscribe__`` command, so no handler is needed for it.
"""
from socketio_wsgi import on_message


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
