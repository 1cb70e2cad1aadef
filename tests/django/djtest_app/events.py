"""Handlers of the test project (autodiscovered by django_socketio)."""
import os
import time

from django.contrib.auth import get_user_model

from django_socketio.events import on_disconnect, on_finish, on_message

RELEASED = {"flag": False}


def _record(line):
    path = os.environ.get("DJTEST_EVENTS")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


@on_message
def answer(request, socket, context, message):
    if message == "whoami":
        socket.send({"user": request.user.username, "authenticated": request.user.is_authenticated,
                     "middleware": getattr(request, "passed_test_middleware", False),
                     "transport": socket.session.transport})
    elif message == "block":
        # Blocks this greenlet in time.sleep until another client sends "release"
        # (bounded: 30 s); with gevent's patching other connections go on meanwhile.
        socket.send("blocking")
        for _ in range(600):
            if RELEASED["flag"]:
                break
            time.sleep(0.05)
        socket.send("unblocked" if RELEASED["flag"] else "gave up")
    elif message == "release":
        RELEASED["flag"] = True
        socket.send("released")
    elif message == "users":
        socket.send({"users": get_user_model().objects.count()})
    else:
        socket.send(message)


@on_disconnect
def disconnected(request, socket, context, reason=None):
    _record(f"disconnect {socket.session_id} {reason}")


@on_finish
def finished(request, socket, context):
    _record(f"finish {socket.session_id}")
