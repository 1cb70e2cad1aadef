"""Tests of the Flask chat, with the socketio_wsgi pytest fixtures.

Run with ``python -m pytest examples/flask_app`` (add
``-p socketio_wsgi.pytest_plugin`` if socketio-wsgi is not installed).
"""
import pytest

from socketio_wsgi import ConnectionRefused

from .app import app, application


@pytest.fixture
def socketio_app():
    """Test clients get this app's options: its handlers and request adapter."""
    return application


def logged_in(socketio_client, name: str):
    """A socket client carrying the Flask session cookie of a real login."""
    with app.test_client() as browser:
        assert browser.post("/login", data={"name": name}).status_code == 302
        cookie = browser.get_cookie("session").value
    return socketio_client({"HTTP_COOKIE": f"session={cookie}"})


def test_anonymous_visitors_are_refused(socketio_client):
    with pytest.raises(ConnectionRefused, match="log in first"):
        socketio_client()


def test_handlers_know_the_logged_in_user(socketio_client):
    ada = logged_in(socketio_client, "ada")
    assert ada.request.user == "ada" and ada.context == {"user": "ada"}


def test_a_room_conversation(socketio_client):
    ada = logged_in(socketio_client, "ada")
    bob = logged_in(socketio_client, "bob")
    ada.send({"room": "kitchen"})
    bob.send({"room": "kitchen"})
    assert ada.receive_many(2) == [{"arrived": "ada"}, {"arrived": "bob"}]
    assert bob.receive() == {"arrived": "bob"}
    bob.send("tea?")
    assert ada.receive() == {"user": "bob", "text": "tea?"}
    assert bob.receive() == {"user": "bob", "text": "tea?"}
    bob.disconnect()
    assert ada.receive() == {"departed": "bob"}


def test_a_flask_view_announces_to_a_room(socketio_client):
    ada = logged_in(socketio_client, "ada")
    ada.send({"room": "kitchen"})
    assert ada.receive() == {"arrived": "ada"}
    browser = app.test_client()
    answer = browser.post("/rooms/kitchen/announce", data={"text": "dinner!"})
    assert answer.get_json() == {"reached": 1}
    assert ada.receive() == {"announcement": "dinner!"}
    assert browser.post("/rooms/attic/announce", data={"text": "hello?"}).status_code == 404
