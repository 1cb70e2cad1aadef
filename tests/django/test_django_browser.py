"""In headless Chromium: logged-in users over each transport, and the chat demo end to end."""
from __future__ import annotations

import signal
import sys

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory, override_settings

from djtest_support import EXAMPLE, SocketServer, free_port, manage, subprocess_env

pytestmark = pytest.mark.browser

def whoami(page, url):
    page.goto(url, wait_until="domcontentloaded")  # a pending JSONP poll delays "load"
    page.wait_for_function("window.answers.length > 0")
    return page.evaluate("window.answers[0]")


def test_handlers_see_the_logged_in_user_from_a_page_on_another_port(runserver, project_db, browser_page,
                                                                     page_server):
    _env, keys = project_db
    server = runserver()
    with override_settings(SOCKETIO_PORT=server.port,
                           SOCKETIO_CLIENT_URL=server.url + "/socket.io/socket.io.js"):
        html = render_to_string("djtest_page.html", request=RequestFactory().get("/page/"))
    assert f'"port": {server.port}' in html
    page_server.pages["/page"] = html.encode()

    def logged_in_page():
        page = browser_page()
        page.context.add_cookies([{"name": "sessionid", "value": keys["alice"], "domain": "127.0.0.1",
                                   "path": "/"}])
        return page

    cross_port = [("websocket", "/page"), ("jsonp-polling", "/page"), ("xhr-polling", "/page")]
    for transport, path in cross_port:
        answer = whoami(logged_in_page(), f"{page_server.url}{path}?transports={transport}")
        assert answer == {"user": "alice", "authenticated": True, "middleware": True, "transport": transport}
    # A page served by the socket server itself polls same-origin, with cookies.
    answer = whoami(logged_in_page(), f"{server.url}/page/?transports=xhr-polling")
    assert answer["authenticated"] is True and answer["transport"] == "xhr-polling"
    answer = whoami(browser_page(), f"{page_server.url}/page?transports=websocket")
    assert (answer["user"], answer["authenticated"]) == ("", False)


# -- the chat demo --------------------------------------------------------------------------

class Demo:
    """``manage.py rundemo`` of examples/chat on a fixed port, restartable."""

    def __init__(self, spawn, tmp_path):
        self.spawn = spawn
        self.env = subprocess_env(CHAT_DATABASE=str(tmp_path / "chat.sqlite3"),
                                  DJANGO_SUPERUSER_PASSWORD="boss-password")
        manage("migrate", "--noinput", "-v", "0", env=self.env, cwd=EXAMPLE)
        manage("createsuperuser", "--noinput", "--username", "boss", "--email", "boss@example.com",
               env=self.env, cwd=EXAMPLE)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = None

    def start(self):
        proc = self.spawn([sys.executable, "manage.py", "rundemo", f"127.0.0.1:{self.port}", "--noreload"],
                          cwd=EXAMPLE, env=self.env, name="demo")
        self.server = SocketServer(proc)

    def stop(self):
        self.server.proc.signal(signal.SIGTERM)
        assert self.server.proc.wait() == 0


def join(page, name):
    page.wait_for_selector("#status:text-is('connected')")
    page.fill("#text", name)
    page.click("#submit")


def users(page):
    return page.eval_on_selector_all("#users li", "items => items.map(i => i.textContent)")


def lines(page):
    return page.eval_on_selector_all("#messages li", "items => items.map(i => i.textContent)")


def wait_line(page, text):
    page.wait_for_function("text => Array.from(document.querySelectorAll('#messages li'))"
                           ".some(li => li.textContent.endsWith(text))", arg=text)


def test_chat_demo_end_to_end(spawn, tmp_path, browser_page):
    demo = Demo(spawn, tmp_path)
    demo.start()
    alice = browser_page()
    alice.goto(demo.url + "/")
    alice.fill("#room-name", "Lobby")
    alice.click("#add-room button")
    alice.wait_for_url(demo.url + "/lobby/")
    join(alice, "alice")
    alice.wait_for_selector("#submit:text-is('Send')")
    assert users(alice) == ["alice"]

    bob = browser_page()
    bob.goto(demo.url + "/")
    bob.click("#rooms a:text-is('Lobby')")
    alerts = []
    bob.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.accept()))
    join(bob, "alice")  # taken
    bob.wait_for_function("() => document.querySelector('#text').value === ''")
    assert alerts and "already in use" in alerts[0]
    bob.fill("#text", "bob")
    bob.click("#submit")
    bob.wait_for_selector("#submit:text-is('Send')")
    wait_line(alice, "bob joined")
    assert users(alice) == ["alice", "bob"] and users(bob) == ["alice", "bob"]

    alice.fill("#text", "hello <b>bob</b> 👋")
    alice.click("#submit")
    wait_line(bob, "hello bob 👋")  # tags stripped by the server
    bob.fill("#text", "hi alice")
    bob.click("#submit")
    wait_line(alice, "hi alice")
    assert any(line.endswith("alicehello bob 👋") for line in lines(alice))

    # Staff: the system message page, after logging in through the admin.
    boss = browser_page()
    boss.goto(demo.url + "/")
    assert "alice, bob" in boss.inner_text("#rooms li")
    boss.goto(demo.url + "/system_message/")
    boss.fill("#id_username", "boss")
    boss.fill("#id_password", "boss-password")
    boss.click("input[type=submit]")
    boss.wait_for_url(demo.url + "/system_message/")
    boss.fill("#message", "maintenance in five minutes")
    boss.select_option("#room", label="Lobby")
    boss.click("#system button")
    assert boss.inner_text("#result") == "Message sent"
    for page in (alice, bob):
        wait_line(page, "SYSTEMmaintenance in five minutes")
    boss.fill("#message", "hello everyone")
    boss.select_option("#room", label="All rooms")
    boss.click("#system button")
    assert boss.inner_text("#result") == "Message sent"
    for page in (alice, bob):
        wait_line(page, "SYSTEMhello everyone")

    # The server restarts: both pages reconnect and rejoin under their names.
    demo.stop()
    alice.wait_for_selector("#status:text-is('reconnecting…')")
    demo.start()
    for page in (alice, bob):
        page.wait_for_selector("#status:text-is('connected')", timeout=20_000)
        page.wait_for_function("() => document.querySelectorAll('#users li').length === 2")
    alice.fill("#text", "still here?")
    alice.click("#submit")
    wait_line(bob, "still here?")

    bob.click("#leave")
    bob.wait_for_url(demo.url + "/")
    wait_line(alice, "bob left")
    assert users(alice) == ["alice"]
