"""Handlers of the Flask chat.  ``request`` is a ``flask.Request`` whose
``user`` was read from the Flask session cookie (see ``app.socket_request``)."""
from socketio_wsgi import ConnectionRefused, on_connect, on_message, on_subscribe, on_unsubscribe


@on_connect
def members_only(request, socket, context):
    if request.user is None:
        raise ConnectionRefused("log in first")
    context["user"] = request.user


@on_message
def say(request, socket, context, message):
    if isinstance(message, dict) and "room" in message:
        socket.subscribe(str(message["room"]))
    elif socket.channels:
        socket.send_and_broadcast_channel({"user": context["user"], "text": str(message)})


@on_subscribe
def arrived(request, socket, context, room):
    socket.send_and_broadcast_channel({"arrived": context["user"]}, room)


@on_unsubscribe
def departed(request, socket, context, room):
    socket.broadcast_channel({"departed": context["user"]}, room)
