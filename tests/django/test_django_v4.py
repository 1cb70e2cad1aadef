"""Socket.IO 4 clients through Django: the real socket.io-client@4 (Node)
against the test project behind the middleware configured from settings,
with Django requests, the auth payload and database access in handlers."""
from __future__ import annotations

import logging

import pytest
from django.contrib.auth import get_user_model
from v4_support import run_client, v4_modules

from socketio_wsgi import ConnectionRefused


@pytest.fixture(autouse=True)
def _node():
    v4_modules()


@pytest.mark.django_db(transaction=True)
def test_named_events_auth_and_database_through_django(django_socket_server, caplog):
    caplog.set_level(logging.INFO, "django_socketio.messages")
    server = django_socket_server()
    get_user_model().objects.create_user("ann", password="pw")

    def on_connect(request, socket, context, auth=None):
        if (auth or {}).get("token") != "t":
            raise ConnectionRefused("token please")
        context["path"] = request.path

    def users(request, socket, context, prefix):
        found = get_user_model().objects.filter(username__startswith=prefix)
        names = list(found.values_list("username", flat=True))
        return names, request.user.is_authenticated, context["path"]

    server.on("on_connect", on_connect)
    server.handlers.add_named("users", users)
    refused = run_client({"url": server.url, "auth": {}, "steps": []})
    assert [line["message"] for line in refused if line["type"] == "connect_error"] == ["token please"]
    lines = run_client({"url": server.url, "auth": {"token": "t"},
                        "steps": [{"emit": "users", "args": ["a"], "ack": True}]})
    [ack] = [line for line in lines if line["type"] == "ack"]
    assert ack["args"] == [["ann"], False, "/socket.io/"]
    assert [r.getMessage() for r in caplog.records if "Socket.IO event" in r.getMessage()][0].endswith(
        "\"Socket.IO event: ['users', 'a']\"")
