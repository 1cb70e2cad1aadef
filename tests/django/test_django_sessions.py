"""``request.user`` and ``request.session`` in every handler on every
transport, session changes saved after each handler without ``save()``, and
the system check against origins that let any website in.

Every exchange goes over real sockets to a server thread on 127.0.0.1.
htmlfile and xhr-multipart have no client in socketio_wsgi.client (browsers
use ActiveX and ``multipart`` XHR for them), so :class:`StreamingClient` speaks
them here: one chunked GET that streams payloads, and a POST per message.
"""
from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core import checks
from django.test import Client as DjangoClient, override_settings

from socketio_wsgi.client import Client, ConnectionClosedError
from socketio_wsgi.protocol import decode_frames, encode, encode_frame
from djtest_support import HERE
from servers import wait_for

from django_socketio.checks import any_host_entries
from django_socketio.sessions import save_modified_session

ALL_TRANSPORTS = ["websocket", "flashsocket", "xhr-polling", "jsonp-polling", "htmlfile", "xhr-multipart"]
STREAMING = ("htmlfile", "xhr-multipart")
TIMEOUT = 5.0


def login(username: str) -> Tuple[str, str]:
    """A user logged in through Django's test client: ``(Cookie header, session key)``."""
    user = get_user_model().objects.create_user(username, password="pw")
    browser = DjangoClient()
    browser.force_login(user)
    key = browser.cookies["sessionid"].value
    return f"sessionid={key}", key


class StreamingClient:
    """A Socket.IO 0.6 client over htmlfile or xhr-multipart (raw HTTP/1.1)."""

    def __init__(self, port: int, transport: str, cookie: str = ""):
        assert transport in STREAMING
        self.port, self.transport = port, transport
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""
        self.pending: List[Any] = []
        path = f"/socket.io/htmlfile//{int(time.time() * 1000)}" if transport == "htmlfile" \
            else "/socket.io/xhr-multipart/"
        headers = {"Host": f"127.0.0.1:{port}", "Accept": "*/*"}
        if transport == "xhr-multipart":
            headers["Origin"] = f"http://127.0.0.1:{port}"
        if cookie:
            headers["Cookie"] = cookie
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.sock.sendall(f"GET {path} HTTP/1.1\r\n{head}\r\n".encode("latin-1"))
        head_lines = self._until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        assert " 200 " in head_lines[0], head_lines
        content_type = next(line.split(":", 1)[1] for line in head_lines
                            if line.lower().startswith("content-type:"))
        boundary = re.search(r'boundary="?([^";]+)', content_type)
        self.boundary = ("--" + boundary.group(1)).encode("ascii") if boundary else b""
        first = self._chunk()
        prelude = b"<html><body>" + b" " * 244 if transport == "htmlfile" else self.boundary + b"\n"
        assert first.startswith(prelude), first[:300]
        self.session_id = self._messages(first[len(prelude):])[0]

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionClosedError("the server ended the stream")
        self.buf += data

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            self._fill()
        end = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:end], self.buf[end:]
        return out

    def _chunk(self) -> bytes:
        size = int(self._until(b"\r\n")[:-2], 16)
        if size == 0:
            raise ConnectionClosedError("the server ended the stream")
        while len(self.buf) < size + 2:
            self._fill()
        data, self.buf = self.buf[:size], self.buf[size + 2:]
        return data

    def _messages(self, chunk: bytes) -> List[Any]:
        """The messages of one chunk's payload (heartbeats are echoed, not returned)."""
        if self.transport == "htmlfile":
            match = re.fullmatch(rb'<script>parent\.s\._\((".*"), document\);</script>', chunk, re.S)
            assert match, chunk
            payload = json.loads(match.group(1))
        else:
            head, tail = b"Content-Type: text/plain\n\n", b"\n" + self.boundary + b"\n"
            assert chunk.startswith(head) and chunk.endswith(tail), chunk
            payload = chunk[len(head):-len(tail)].decode("utf-8")
        out = []
        for frame in decode_frames(payload):
            if frame.startswith("~h~"):
                self._post(encode_frame(frame))  # a heartbeat goes back as it came
            elif frame.startswith("~j~"):
                out.append(json.loads(frame[3:]))
            else:
                out.append(frame)
        return out

    def _post(self, payload: str) -> None:
        body = ("data=" + quote(payload, safe="")).encode("ascii")
        with socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT) as post:
            post.sendall((f"POST /socket.io/{self.transport}/{self.session_id}/send HTTP/1.1\r\n"
                          f"Host: 127.0.0.1:{self.port}\r\nOrigin: http://127.0.0.1:{self.port}\r\n"
                          "Content-Type: application/x-www-form-urlencoded\r\n"
                          f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("ascii")
                         + body)
            answer = b""
            while b"\r\n" not in answer:
                data = post.recv(4096)
                if not data:
                    break
                answer += data
        assert answer.startswith(b"HTTP/1.1 200"), answer

    def send(self, value: Any) -> None:
        self._post(encode(value))

    def receive(self) -> Any:
        while not self.pending:
            self.pending.extend(self._messages(self._chunk()))
        return self.pending.pop(0)

    def disconnect(self) -> None:
        self.sock.close()


def connect(server, transport: str, cookie: str = ""):
    if transport in STREAMING:
        return StreamingClient(server.port, transport, cookie)
    client = Client(server.url, transport=transport, timeout=TIMEOUT,
                    headers={"Cookie": cookie} if cookie else None)
    client.connect()
    return client


def send_markers(client, marker: str, channel: str) -> None:
    client.send([marker, channel])


# ---------------------------------------------------------------------------
# request.user and request.session in every handler, on every transport
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("transport", ALL_TRANSPORTS)
def test_every_handler_sees_the_user_and_session_on_every_transport(django_socket_server,
                                                                    transactional_db, transport):
    cookie, key = login("alice")
    # A polling client that stops polling is gone after close_timeout: keep it short.
    server = django_socket_server(close_timeout=1.0)
    seen: List[Tuple[str, str, Optional[str]]] = []

    def note(event):
        def handler(request, socket, context, *arg, **kw):
            seen.append((event, request.user.get_username(), request.session.session_key))
            if event == "on_message" and arg[0] == "boom":
                raise RuntimeError("boom")
            if event == "on_message":
                socket.send({"user": request.user.get_username(), "got": arg[0]})
        return handler

    for event in ("on_connect", "on_message", "on_subscribe", "on_unsubscribe", "on_error",
                  "on_disconnect", "on_finish"):
        server.on(event, note(event))

    client = connect(server, transport, cookie)
    send_markers(client, "__subscribe__", "room-1")
    client.send("hi")
    assert client.receive() == {"user": "alice", "got": "hi"}
    send_markers(client, "__unsubscribe__", "room-1")
    send_markers(client, "__subscribe__", "room-2")
    client.send("again")
    assert client.receive() == {"user": "alice", "got": "again"}
    client.disconnect()
    wait_for(lambda: seen and seen[-1][0] == "on_finish")

    failing = connect(server, transport, cookie)
    failing.send("boom")
    wait_for(lambda: seen[-1][0] == "on_finish" and any(s[0] == "on_error" for s in seen))
    failing.disconnect()

    assert [s[0] for s in seen] == [
        "on_connect", "on_subscribe", "on_message", "on_unsubscribe", "on_subscribe", "on_message",
        "on_disconnect", "on_unsubscribe", "on_finish",
        "on_connect", "on_message", "on_error", "on_finish"]
    assert {s[1:] for s in seen} == {("alice", key)}


# ---------------------------------------------------------------------------
# session changes saved after each handler
# ---------------------------------------------------------------------------

def stored(key: str) -> Dict[str, Any]:
    return SessionStore(session_key=key).load()


@pytest.mark.parametrize("transport", ["websocket", "xhr-polling", "htmlfile"])
def test_session_changes_are_saved_after_each_handler_without_save(django_socket_server,
                                                                   transactional_db, transport):
    cookie, key = login("carol")
    server = django_socket_server()

    @server.on("on_connect")
    def count_connects(request, socket, context):
        request.session["connects"] = request.session.get("connects", 0) + 1

    @server.on("on_message")
    def remember(request, socket, context, message):
        if message == "crash":
            request.session["lost"] = True
            raise RuntimeError("a handler that fails saves nothing")
        request.session["last"] = message
        socket.send("noted")

    @server.on("on_subscribe")
    def rooms(request, socket, context, channel):
        request.session["rooms"] = [*request.session.get("rooms", []), channel]

    client = connect(server, transport, cookie)
    assert stored(key)["connects"] == 1
    client.send("first")
    assert client.receive() == "noted"
    assert stored(key)["last"] == "first"
    send_markers(client, "__subscribe__", "room-7")
    client.send("second")
    assert client.receive() == "noted"
    assert stored(key)["rooms"] == ["room-7"] and stored(key)["last"] == "second"
    client.send("crash")
    wait_for(lambda: not server.engine.sessions)
    client.disconnect()
    data = stored(key)
    assert "lost" not in data and data["last"] == "second" and data["connects"] == 1
    # ... and the next page the browser loads sees what the handlers stored.
    browser = DjangoClient()
    browser.cookies["sessionid"] = key
    assert browser.get("/session-value/last").content == b"second"


def test_a_refused_connection_still_saves_what_on_connect_stored(django_socket_server, transactional_db):
    from socketio_wsgi import ConnectionRefused
    cookie, key = login("dave")
    server = django_socket_server()

    @server.on("on_connect")
    def refuse(request, socket, context):
        request.session["refused_at"] = "now"
        raise ConnectionRefused("not today")

    with pytest.raises(ConnectionClosedError):
        connect(server, "websocket", cookie)
    assert stored(key)["refused_at"] == "now"


def test_an_unmodified_session_is_not_written():
    class Session(dict):
        modified = False
        session_key = "k"

        def save(self):
            raise AssertionError("saved an unmodified session")

    class Request:
        session = Session()

    assert save_modified_session(Request()) is False
    assert save_modified_session(object()) is False  # no SessionMiddleware: no session


def test_a_session_deleted_meanwhile_is_not_resurrected(transactional_db, caplog):
    _cookie, key = login("erin")

    class Request:
        session = SessionStore(session_key=key)

    request = Request()
    request.session["x"] = 1
    SessionStore(session_key=key).delete()  # logged out in another tab
    assert save_modified_session(request) is False
    assert "not saved" in caplog.text
    assert not SessionStore().exists(key)


# ---------------------------------------------------------------------------
# the system check
# ---------------------------------------------------------------------------

def origin_warnings() -> List[checks.CheckMessage]:
    return [m for m in checks.run_checks(tags=[checks.Tags.security])
            if m.id.startswith("django_socketio.")]


@pytest.mark.parametrize("origins", ["*", ["example.com", "*"], ["*:443"], ["https://*"], "*:*"])
def test_check_warns_when_socketio_origins_allow_any_website(origins):
    with override_settings(SOCKETIO_ORIGINS=origins):
        [warning] = origin_warnings()
    assert warning.id == "django_socketio.W001" and warning.level == checks.WARNING
    assert "any page on the web" in warning.msg and "SOCKETIO_ORIGINS" in warning.hint


def test_check_warns_when_origins_follow_an_allowed_hosts_wildcard():
    with override_settings(ALLOWED_HOSTS=["*"]):
        [warning] = origin_warnings()
    assert warning.id == "django_socketio.W002" and warning.obj == "ALLOWED_HOSTS"


@pytest.mark.parametrize("settings_", [
    {},  # the test project: ALLOWED_HOSTS without "*"
    {"SOCKETIO_ORIGINS": ["example.com", "*.example.com", "https://example.com:8443"]},
    {"SOCKETIO_ORIGINS": None},  # same origin only
    {"SOCKETIO_ORIGINS": ["app.example.com"], "ALLOWED_HOSTS": ["*"]},  # explicit origins win
])
def test_check_is_quiet_for_specific_origins(settings_):
    with override_settings(**settings_):
        assert origin_warnings() == []


def test_any_host_entries():
    assert any_host_entries("*") == ["*"]
    assert any_host_entries(["a.com", "*:8000", "http://*", "*.a.com"]) == ["*:8000", "http://*"]
    assert any_host_entries(None) == [] and any_host_entries(["a.com:*"]) == []


def test_manage_py_check_prints_the_warning(project_db):
    env, _keys = project_db
    for hosts, warned in (("*", True), ("example.com", False)):
        done = subprocess.run([sys.executable, "manage.py", "check", "--tag", "security"], cwd=HERE,
                              env={**env, "DJTEST_ALLOWED_HOSTS": hosts}, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr  # a warning, not an error
        assert ("django_socketio.W002" in done.stderr) is warned, done.stderr
        assert ("1 issue" in done.stderr) is warned
        assert "no issues" in done.stdout or warned
