"""The app the soak script runs in a separate server process."""
import gevent

from socketio_wsgi import on_message


def application(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
    return [b""]


@on_message
def handle(request, socket, context, message):
    if isinstance(message, str) and message.startswith("produce "):
        count = int(message.split()[1])
        gevent.spawn(_produce, socket, count)
    else:
        socket.send(message)


def _produce(socket, count):
    for i in range(count):
        if not socket.send(f"seq {i}"):
            return
        if i % 50 == 49:
            gevent.sleep(0.002)  # let polls interleave with production
