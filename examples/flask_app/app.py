"""A Flask application with members-only chat rooms, wrapped in the middleware.

Run it with either of::

    python -m socketio_wsgi examples.flask_app.app:application
    python -m examples.flask_app.app

then open http://127.0.0.1:8000/, log in under two names in two browsers.
Handlers see who is logged in through a request adapter that reads the
Flask session cookie; ``POST /rooms/<room>/announce`` speaks to a room from
an ordinary Flask view.
"""
from __future__ import annotations

import os

import flask

from socketio_wsgi import (HandlerRegistry, NoSocket, SocketIOMiddleware, broadcast_channel,
                           use_registry)

app = flask.Flask(__name__)
app.secret_key = os.environ.get("FLASK_SECRET_KEY", "change me: example only")

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>Members-only rooms</title>
{% if user %}
<script src="/socket.io/socket.io.js"></script>
<p>Logged in as {{ user }}. <input id="room" value="lobby"> <button id="join">Join</button>
<p><input id="text"> <button id="say">Say</button>
<ul id="log"></ul>
<script>
  var socket = new io.Socket(location.hostname, {port: location.port || 80});
  socket.on("message", function (item) {
    var li = document.createElement("li");
    li.textContent = JSON.stringify(item);
    document.getElementById("log").appendChild(li);
  });
  socket.connect();
  document.getElementById("join").onclick = function () {
    socket.send({room: document.getElementById("room").value});
  };
  document.getElementById("say").onclick = function () {
    socket.send(document.getElementById("text").value);
  };
</script>
{% else %}
<form method="post" action="/login"><input name="name"> <button>Log in</button></form>
{% endif %}
"""


@app.get("/")
def index():
    return flask.render_template_string(PAGE, user=flask.session.get("user"))


@app.post("/login")
def login():
    name = flask.request.form.get("name", "").strip()[:40]
    if not name:
        flask.abort(400)
    flask.session["user"] = name
    return flask.redirect("/")


@app.post("/rooms/<room>/announce")
def announce(room: str):
    """Speak to a room from a view: an out-of-band send."""
    try:
        reached = broadcast_channel({"announcement": flask.request.form["text"]}, room)
    except NoSocket:
        return {"reached": 0}, 404
    return {"reached": reached}


def socket_request(environ: dict) -> flask.Request:
    """The request handlers get: a Flask request with ``user`` from the session cookie."""
    request = app.request_class(environ)
    session = app.session_interface.open_session(app, request)
    request.user = session.get("user") if session is not None else None
    return request


# A registry of its own, so this example can share a process with the others;
# a project with one app imports its events module and omits ``handlers=``.
handlers = HandlerRegistry()
with use_registry(handlers):
    from . import events  # noqa: F401  (its decorators register into ``handlers``)

application = SocketIOMiddleware(app, handlers=handlers, request_adapter=socket_request)

if __name__ == "__main__":
    from socketio_wsgi import serve
    serve(application)
