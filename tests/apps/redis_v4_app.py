"""The app of the two-process Socket.IO 4 test (tests/test_v4_redis.py):
named events and a channel shared by 0.6 and Socket.IO 4 clients, served by
``python -m socketio_wsgi --backend redis://...`` processes."""
from socketio_wsgi import on_event, on_message


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


@on_event("join")
def join(request, socket, context, channel):
    socket.subscribe(channel)
    socket.emit_channel("joined", socket.protocol, channel=channel)
    return "joined"


@on_event("shout")
def shout(request, socket, context, text, channel):
    return socket.emit_channel("shouted", text, b"\x01\x02", channel=channel)


@on_message
def relay(request, socket, context, message):
    if message == "go":
        socket.emit_broadcast("go")
    else:
        socket.broadcast_channel(message, "room")
