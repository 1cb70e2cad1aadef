"""Tests of the plain WSGI chat, with the socketio_wsgi pytest fixtures.

Run with ``python -m pytest examples/plain_wsgi`` (add
``-p socketio_wsgi.pytest_plugin`` if socketio-wsgi is not installed).
"""
import io
from wsgiref.util import setup_testing_defaults

import pytest

from socketio_wsgi.testing import FakeSocket

from .app import application
from .events import chat


@pytest.fixture
def socketio_app():
    """Test clients get this app's options and handlers."""
    return application


def http(method: str, path: str, text: str = "", query: str = ""):
    """Call the wrapped WSGI app as a server would: ``(headers, body text)`` of a 200."""
    body = text.encode("utf-8")
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    setup_testing_defaults(environ)
    answer = {}
    chunks = application(environ, lambda status, headers: answer.update(status=status,
                                                                        headers=headers))
    assert answer["status"] == "200 OK"
    return dict(answer["headers"]), b"".join(chunks).decode("utf-8")


def join(socketio_client, name: str, room: str):
    client = socketio_client({"HTTP_COOKIE": f"chat_name={name}"})
    assert client.receive() == {"welcome": name}
    client.send({"join": room})
    return client


def test_the_page_cookie_names_the_visitor(socketio_client):
    headers, page = http("GET", "/", query="name=ada")
    assert "Hello ada." in page
    cookie = headers["Set-Cookie"].split(";")[0]
    client = socketio_client({"HTTP_COOKIE": cookie})
    assert client.receive() == {"welcome": "ada"}


def test_a_room_hears_who_joins_speaks_and_leaves(socketio_client):
    ada = join(socketio_client, "ada", "lobby")
    bob = join(socketio_client, "bob", "lobby")
    assert ada.receive() == {"joined": "bob"}
    bob.send({"say": "hi"})
    assert bob.receive() == {"from": "bob", "say": "hi"}
    assert ada.receive() == {"from": "bob", "say": "hi"}
    bob.disconnect()
    assert ada.receive() == {"left": "bob"}
    assert ada.receive_all() == []


def test_other_rooms_hear_nothing(socketio_client):
    ada = join(socketio_client, "ada", "lobby")
    eve = join(socketio_client, "eve", "attic")
    ada.send({"say": "secret"})
    assert ada.receive() == {"from": "ada", "say": "secret"}
    assert eve.receive_all() == []


def test_the_subscribe_marker_of_old_pages_joins_too(socketio_client):
    ada = join(socketio_client, "ada", "lobby")
    old_page = socketio_client({"HTTP_COOKIE": "chat_name=old"})
    old_page.subscribe("lobby")  # what django-socketio's JavaScript sends
    assert ada.receive() == {"joined": "old"}
    assert old_page.channels == ("lobby",)


def test_saying_before_joining_is_an_error(socketio_client):
    client = socketio_client()
    assert client.receive() == {"welcome": "guest"}
    client.send({"say": "anyone?"})
    client.send("plain text")
    assert client.receive_many(2) == [{"error": "join a room first"},
                                      {"error": "send an object: {join: room} or {say: text}"}]


def test_announcements_reach_everyone_from_outside_a_handler(socketio_client):
    assert http("POST", "/announce", "nobody yet")[1] == "0\n"
    ada = join(socketio_client, "ada", "lobby")
    bob = join(socketio_client, "bob", "attic")
    assert http("POST", "/announce", "closing soon")[1] == "2\n"
    assert ada.receive_all()[-1] == {"announcement": "closing soon"}
    assert bob.receive_all() == [{"announcement": "closing soon"}]


def test_chat_handler_alone_with_a_fake_socket(fake_socket):
    listener = FakeSocket(channels=["lobby"], peers=fake_socket.peers)
    fake_socket.subscribe("lobby")
    chat(None, fake_socket, {"name": "ada"}, {"say": "hello"})
    assert fake_socket.sent == [{"from": "ada", "say": "hello"}]
    assert listener.received == [{"from": "ada", "say": "hello"}]
    assert fake_socket.broadcasts[0].recipients == [listener.session_id]
