"""The chat's event handlers: rooms are channels; the page's cookie names the visitor."""
from urllib.parse import unquote

from socketio_wsgi import on_connect, on_message, on_subscribe, on_unsubscribe


@on_connect
def welcome(request, socket, context):
    context["name"] = unquote(request.COOKIES.get("chat_name", ""))[:40] or "guest"
    socket.send({"welcome": context["name"]})


@on_message
def chat(request, socket, context, message):
    if not isinstance(message, dict):
        socket.send({"error": "send an object: {join: room} or {say: text}"})
    elif "join" in message:
        socket.subscribe(str(message["join"]))  # fires on_subscribe below
    elif not socket.channels:
        socket.send({"error": "join a room first"})
    else:
        socket.send_and_broadcast_channel({"from": context["name"], "say": message.get("say", "")})


@on_subscribe
def joined(request, socket, context, room):
    socket.broadcast_channel({"joined": context["name"]}, room)


@on_unsubscribe
def left(request, socket, context, room):
    # Also fires for each room still held when the client goes away.
    socket.broadcast_channel({"left": context["name"]}, room)
