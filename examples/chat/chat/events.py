"""The chat over Socket.IO.

A page subscribes to ``room-<id>`` and sends ``{room, action, ...}``:

- ``start`` with a ``name``: join the room under that name (unique per room);
- ``message`` with a ``message``: say something.

The server answers ``in-use``, ``started`` (with the other chatters' names)
and relays ``join``, ``message`` and ``leave`` to everyone in the room.
"""
from django.db import IntegrityError, transaction
from django.utils.html import strip_tags

from django_socketio.events import on_finish, on_message

from .models import ChatRoom, ChatUser


def _clean(value, limit):
    return strip_tags(str(value or "")).strip()[:limit]


@on_message(channel="^room-")
def chat(request, socket, context, message):
    if not isinstance(message, dict):
        return
    room_id = str(message.get("room", ""))
    room = ChatRoom.objects.filter(pk=room_id).first() if room_id.isdigit() else None
    if room is None:
        return
    action = message.get("action")
    if action == "start" and "user" not in context:
        name = _clean(message.get("name"), 20)
        if not name:
            return
        try:
            with transaction.atomic():
                user = ChatUser.objects.create(room=room, name=name, session=socket.session_id)
        except IntegrityError:
            socket.send({"action": "in-use"})
            return
        context["user"] = user
        others = list(room.users.exclude(pk=user.pk).values_list("name", flat=True))
        socket.send({"action": "started", "users": others})
        socket.send_and_broadcast_channel({"action": "join", "name": user.name, "id": user.pk},
                                          room.channel)
    elif action == "message" and "user" in context:
        text = _clean(message.get("message"), 1000)
        if text:
            socket.send_and_broadcast_channel(
                {"action": "message", "name": context["user"].name, "message": text}, room.channel)


@on_finish(channel="^room-")
def leave(request, socket, context):
    user = context.pop("user", None)
    if user is not None:
        socket.broadcast_channel({"action": "leave", "name": user.name, "id": user.pk},
                                 f"room-{user.room_id}")
        user.delete()
