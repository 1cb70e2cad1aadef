"""A plain WSGI application with chat rooms, wrapped in the middleware.

Run it with either of::

    python -m socketio_wsgi examples.plain_wsgi.app:application
    python -m examples.plain_wsgi.app

then open http://127.0.0.1:8000/?name=ada and, in another browser,
http://127.0.0.1:8000/?name=bob.  The page stores the name in a cookie,
which the socket's handshake request carries to the handlers.
``POST /announce`` (body: the text) tells every connected client, from
outside any socket handler.
"""
from __future__ import annotations

from html import escape
from urllib.parse import parse_qs, quote

from socketio_wsgi import HandlerRegistry, NoSocket, SocketIOMiddleware, broadcast, use_registry

# This example keeps its handlers in a registry of its own so that it can share a
# process with the other examples (the test suite imports them all).  A project
# with one app just imports its events module and omits ``handlers=``.
handlers = HandlerRegistry()
with use_registry(handlers):
    from . import events  # noqa: F401  (its decorators register into ``handlers``)

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>Chat rooms</title>
<script src="/socket.io/socket.io.js"></script>
<p>Hello {name}. <input id="room" value="lobby"> <button id="join">Join</button>
<p><input id="text"> <button id="say">Say</button>
<ul id="log"></ul>
<script>
  var socket = new io.Socket(location.hostname, {{port: location.port || 80}});
  function show(item) {{
    var li = document.createElement("li");
    li.textContent = JSON.stringify(item);
    document.getElementById("log").appendChild(li);
  }}
  socket.on("message", show);
  socket.connect();
  document.getElementById("join").onclick = function () {{
    socket.send({{join: document.getElementById("room").value}});
  }};
  document.getElementById("say").onclick = function () {{
    socket.send({{say: document.getElementById("text").value}});
  }};
</script>
"""


def site(environ: dict, start_response) -> list:
    """The application being wrapped: a page, and an announcement endpoint."""
    path, method = environ.get("PATH_INFO", "/"), environ.get("REQUEST_METHOD", "GET")
    if path == "/" and method == "GET":
        name = parse_qs(environ.get("QUERY_STRING", "")).get("name", ["guest"])[0][:40]
        return _answer(start_response, "200 OK", PAGE.format(name=escape(name)), "text/html",
                       [("Set-Cookie", f"chat_name={quote(name)}; Path=/; SameSite=Lax")])
    if path == "/announce" and method == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        text = environ["wsgi.input"].read(min(length, 1000)).decode("utf-8", "replace")
        try:
            reached = broadcast({"announcement": text})
        except NoSocket:
            reached = 0
        return _answer(start_response, "200 OK", f"{reached}\n", "text/plain")
    return _answer(start_response, "404 Not Found", "not found\n", "text/plain")


def _answer(start_response, status: str, text: str, content_type: str,
            headers: tuple = ()) -> list:
    body = text.encode("utf-8")
    start_response(status, [("Content-Type", f"{content_type}; charset=utf-8"),
                            ("Content-Length", str(len(body))), *headers])
    return [body]


application = SocketIOMiddleware(site, handlers=handlers)

if __name__ == "__main__":
    from socketio_wsgi import serve
    serve(application)
