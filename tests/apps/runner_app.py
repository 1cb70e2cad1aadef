"""A plain WSGI app with handlers, run by the runner tests in a subprocess.

Each lifecycle event is appended to the file named by RUNNER_EVENTS_FILE, so
the test can see what the server process did.
"""
import os

from socketio_wsgi import on_disconnect, on_finish, on_message

EVENTS_FILE = os.environ.get("RUNNER_EVENTS_FILE", os.devnull)


def note(line: str) -> None:
    with open(EVENTS_FILE, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def application(environ, start_response):
    body = b"runner app"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@on_message
def echo(request, socket, context, message):
    socket.send(message)


@on_disconnect
def disconnected(request, socket, context, reason=None):
    note(f"disconnect {socket.session.session_id} {reason}")


@on_finish
def finished(request, socket, context):
    note(f"finish {socket.session.session_id}")
