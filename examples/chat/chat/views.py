"""Pages of the chat: the room list, a room, and the staff-only system message."""
from django.contrib.auth.decorators import user_passes_test
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from django_socketio import NoSocket, broadcast, broadcast_channel

from .models import ChatRoom, ChatUser


def rooms(request):
    listing = ChatRoom.objects.prefetch_related(Prefetch("users", queryset=ChatUser.objects.order_by("name")))
    return render(request, "chat/rooms.html", {"rooms": listing})


@require_POST
def create(request):
    name = request.POST.get("name", "").strip()[:40]
    if not name:
        return redirect("chat:rooms")
    room, _ = ChatRoom.objects.get_or_create(name=name)
    return redirect(room)


def room(request, slug):
    return render(request, "chat/room.html", {"room": get_object_or_404(ChatRoom, slug=slug)})


@user_passes_test(lambda user: user.is_staff)
def system_message(request):
    """Sends a message to one room or to everyone, from outside any socket."""
    result = ""
    if request.method == "POST":
        text = request.POST.get("message", "").strip()
        room_id = request.POST.get("room", "")
        target = ChatRoom.objects.filter(pk=room_id).first() if room_id.isdigit() else None
        if text:
            data = {"action": "system", "message": text}
            try:
                if target is None:
                    broadcast(data)
                else:
                    broadcast_channel(data, target.channel)
            except NoSocket as exc:
                result = f"Nobody received it: {exc}"
            else:
                result = "Message sent"
        else:
            result = "Type a message first"
    return render(request, "chat/system_message.html",
                  {"rooms": ChatRoom.objects.all(), "result": result})
