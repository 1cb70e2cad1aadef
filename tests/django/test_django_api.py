"""The documented django-socketio API, settings, the template tag, the URLs,
autodiscovery and the log format: everything that needs no server."""
from __future__ import annotations

import logging
import traceback

import pytest
from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured
from django.template import Context, Template
from django.test import Client, RequestFactory, override_settings

import socketio_wsgi
import socketio_wsgi.events as core_events
from socketio_wsgi import api
from socketio_wsgi.config import Options
from socketio_wsgi.static import CLIENT_PATH


def render(request=None, **context):
    template = Template("{% load socketio_tags %}{% socketio %}")
    if request is not None:
        context["request"] = request
    return template.render(Context(context))


# -- the documented names ------------------------------------------------------

def test_documented_imports_are_socketio_wsgi_objects():
    from django_socketio import NoSocket, broadcast, broadcast_channel, send
    from django_socketio.events import (Event, EventError, on_connect, on_disconnect, on_error,
                                        on_finish, on_message, on_subscribe, on_unsubscribe)
    assert NoSocket is socketio_wsgi.NoSocket
    assert EventError is socketio_wsgi.EventError
    assert Event is core_events.Event
    events = [on_connect, on_message, on_subscribe, on_unsubscribe, on_error, on_disconnect, on_finish]
    assert events == [getattr(core_events, e.name) for e in events]
    assert [e.name for e in events] == list(core_events.EVENT_NAMES)
    assert all(callable(f) for f in (send, broadcast, broadcast_channel))
    import django_socketio
    assert django_socketio.__version__ == socketio_wsgi.__version__


def test_decorators_register_into_the_current_registry_and_return_the_handler():
    from django_socketio.events import EventError, on_connect, on_message
    with core_events.use_registry() as registry:
        @on_message(channel="^room-")
        @on_message
        def handler(request, socket, context, message):
            pass
        assert handler is not None
        assert registry.handlers("on_message") == [handler, handler]
        with pytest.raises(EventError):
            on_connect(handler, channel="^room-")


def test_out_of_band_without_a_server_or_backend_raises_nosocket():
    from django_socketio import NoSocket, broadcast, broadcast_channel, send
    previous = api.use_backend(None)
    try:
        for call in (lambda: send("123", "x"), lambda: broadcast("x"),
                     lambda: broadcast_channel("x", "room")):
            with pytest.raises(NoSocket):
                call()
    finally:
        api.restore(previous)


def test_out_of_band_in_a_process_without_sockets_uses_socketio_backend():
    """A shared backend named in SOCKETIO_BACKEND is set up on first use (here
    the in-process one, which nobody listens to: NoSocket, not 'no server')."""
    from django_socketio import NoSocket, broadcast
    previous = api.use_backend(None)
    try:
        with override_settings(SOCKETIO_BACKEND="memory://"):
            with pytest.raises(NoSocket, match="no clients"):
                broadcast("x")
        assert api.current_backend()[0].session_count() == 0
    finally:
        api.restore(previous)


# -- settings --------------------------------------------------------------------

def test_every_middleware_option_has_a_setting():
    from django_socketio import conf
    names = conf.option_settings()
    assert names["heartbeat_interval"] == "SOCKETIO_HEARTBEAT_INTERVAL"
    assert set(names) == set(Options.names()) - {"request_adapter", "handlers", "backend", "around_handlers"}


def test_settings_reach_the_middleware_options():
    from django_socketio import conf
    with override_settings(SOCKETIO_RESOURCE="/live/", SOCKETIO_TRANSPORTS=["websocket"],
                           SOCKETIO_HEARTBEAT_INTERVAL=3, SOCKETIO_ORIGINS="*",
                           SOCKETIO_MAX_SESSIONS=7):
        options = conf.middleware_options()
        assert options["resource"] == "/live/" and conf.resource() == "live"
        assert Options(**options).transports == ("websocket",)
        assert (options["heartbeat_interval"], options["origins"], options["max_sessions"]) == (3, "*", 7)
    assert conf.host() == "127.0.0.1" and conf.port() == 9000
    assert conf.message_log_format() == conf.DEFAULT_MESSAGE_LOG_FORMAT


@pytest.mark.parametrize("name, value", [
    ("SOCKETIO_PORT", "9000"), ("SOCKETIO_PORT", 70000), ("SOCKETIO_HOST", ""),
    ("SOCKETIO_HEARTBEAT_INTERVAL", 0), ("SOCKETIO_HEARTBEAT_INTERVAL", "10"),
    ("SOCKETIO_TRANSPORTS", ["carrier-pigeon"]), ("SOCKETIO_RESOURCE", "/"),
    ("SOCKETIO_MAX_MESSAGE_SIZE", 8 * 1024 * 1024), ("SOCKETIO_ORIGINS", ["example.com:port"]),
    ("SOCKETIO_TRUST_PROXY_HEADERS", "yes"), ("SOCKETIO_MESSAGE_LOG_FORMAT", "%(MESSAGE)"),
    ("SOCKETIO_MESSAGE_LOG_FORMAT", 42), ("SOCKETIO_BACKEND", ""), ("SOCKETIO_CLIENT_URL", 1),
])
def test_an_invalid_setting_raises_improperly_configured_naming_it(name, value):
    from django_socketio import conf
    with override_settings(**{name: value}):
        with pytest.raises(ImproperlyConfigured) as raised:
            conf.check()
    assert str(raised.value).startswith(name), str(raised.value)


@pytest.mark.parametrize("debug, allowed, expected", [
    (False, ["example.com", ".example.org"], ["example.com", "example.org", "*.example.org"]),
    (False, ["*"], "*"),
    (True, [], ["localhost", "*.localhost", "127.0.0.1", "[::1]"]),
    (False, [], []),
])
def test_origins_follow_allowed_hosts_when_socketio_origins_is_unset(debug, allowed, expected):
    from django_socketio import conf
    with override_settings(DEBUG=debug, ALLOWED_HOSTS=allowed):
        assert conf.middleware_options()["origins"] == expected
    with override_settings(DEBUG=debug, ALLOWED_HOSTS=allowed, SOCKETIO_ORIGINS=["other.net"]):
        assert conf.middleware_options()["origins"] == ["other.net"]


def test_origin_policy_from_allowed_hosts_accepts_subdomains_on_any_port():
    from socketio_wsgi.origins import OriginPolicy
    from django_socketio import conf
    with override_settings(ALLOWED_HOSTS=[".example.org", "[::1]"]):
        policy = OriginPolicy(conf.middleware_options()["origins"])
    assert policy.allows("http://example.org:8000")
    assert policy.allows("https://chat.example.org")
    assert policy.allows("http://[::1]:8000")
    assert not policy.allows("http://example.org.evil.net")
    assert not policy.allows("http://localhost:8000")


# -- the template tag ----------------------------------------------------------------

def test_tag_loads_the_client_from_this_app_and_points_it_at_socketio_port():
    html = render(RequestFactory().get("/page/"))
    assert html == ('<script>window.SOCKETIO_DEFAULTS = {"port": 9000, "resource": "socket.io", "withCredentials": true};</script>\n'
                    '<script src="/socket.io/socket.io.js"></script>')


def test_tag_on_a_page_served_by_the_socket_server_uses_the_pages_own_port():
    from django_socketio.wsgi import SAME_SERVER
    request = RequestFactory().get("/page/", **{SAME_SERVER: True})
    assert 'window.SOCKETIO_DEFAULTS = {"resource": "socket.io", "withCredentials": true};' in render(request)


def test_tag_follows_port_resource_and_client_url_settings_and_works_without_a_request():
    with override_settings(SOCKETIO_PORT=9123, SOCKETIO_RESOURCE="live",
                           SOCKETIO_CLIENT_URL="https://cdn.example.com/s.js?a=1&b=2"):
        html = render()
    assert '{"port": 9123, "resource": "live", "withCredentials": true}' in html
    assert '<script src="https://cdn.example.com/s.js?a=1&amp;b=2"></script>' in html


def test_tag_escapes_for_an_inline_script_and_passes_a_csp_nonce():
    with override_settings(SOCKETIO_RESOURCE="a</script><b>"):
        html = render(csp_nonce="n0nce")
    assert "</script><b>" not in html.split("</script>", 1)[0]
    assert '"resource": "a\\u003C/script\\u003E\\u003Cb\\u003E"' in html
    assert html.count('nonce="n0nce"') == 2


def test_tag_includes_socketio_client_4_pointed_at_the_socket_server():
    template = Template('{% load socketio_tags %}{% socketio "4" %}')
    with override_settings(SOCKETIO_V4_CLIENT_URL="/static/socket.io.min.js", SOCKETIO_PORT=9123):
        html = template.render(Context({"request": RequestFactory().get("/page/")}))
    assert html == ('<script src="/static/socket.io.min.js"></script>\n'
                    '<script>window.SOCKETIO_V4 = {"options": {"path": "/socket.io/", "withCredentials": true}, '
                    '"url": "http://testserver:9123"};</script>')
    with pytest.raises(ImproperlyConfigured, match="SOCKETIO_V4_CLIENT_URL"):
        template.render(Context({}))


def test_client_url_serves_the_socketio_wsgi_client_with_an_etag():
    client = Client()
    response = client.get("/socket.io/socket.io.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    with open(CLIENT_PATH, "rb") as fh:
        assert response.content == fh.read()
    again = client.get("/socket.io/socket.io.js", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304


def test_a_socketio_request_that_reaches_django_gets_an_explanation():
    response = Client().get("/socket.io/websocket")
    assert response.status_code == 404
    assert b"runserver_socketio" in response.content


# -- autodiscovery -----------------------------------------------------------------------

def test_autodiscover_loads_events_modules_and_logs_each_app(caplog):
    from django_socketio.apps import SocketIOConfig, autodiscover
    from django.apps import apps
    caplog.set_level(logging.INFO, logger="django_socketio")
    assert autodiscover() == ["djtest_app"]
    assert apps.get_app_config("django_socketio").events_loaded == ["djtest_app"]
    assert isinstance(apps.get_app_config("django_socketio"), SocketIOConfig)
    assert "loaded events from djtest_app" in caplog.messages
    import djtest_app.events
    assert djtest_app.events.answer in core_events.current_registry().handlers("on_message")


def test_autodiscover_raises_the_real_error_of_a_broken_events_module():
    from django_socketio.apps import autodiscover
    configs = [AppConfig.create("django.contrib.sessions"), AppConfig.create("djtest_broken")]
    with pytest.raises(ModuleNotFoundError) as raised:
        autodiscover(configs)
    assert raised.value.name == "djtest_module_that_does_not_exist"
    frames = traceback.extract_tb(raised.value.__traceback__)
    assert frames[-1].filename.endswith("djtest_broken/events.py")


# -- log lines ----------------------------------------------------------------------------

def test_log_lines_use_the_old_default_format_and_keys():
    from django_socketio import conf
    from django_socketio.log import MessageLog
    request = RequestFactory().get("/socket.io/websocket", REMOTE_ADDR="10.1.2.3")
    line = MessageLog(conf.DEFAULT_MESSAGE_LOG_FORMAT).line(request, "message", {"action": "start"})
    assert line.startswith('10.1.2.3 - - [')
    assert line.endswith("] \"Socket.IO message: {'action': 'start'}\"")
    custom = MessageLog("%(HTTP_X_MISSING)s %(TYPE)s %(MESSAGE)s")
    assert custom.line(request, "subscribe", "a\nb\rc") == "- subscribe a\\nb\\rc"
