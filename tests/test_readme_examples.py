"""The README's Quick start, Events and Channels examples run as written.

Each Python block is taken from README.rst (so an edit there is tested) and
run against a real server on 127.0.0.1:

- Quick start: ``app.py`` is written to a directory and served with the
  README's own command, ``python -m socketio_wsgi --port N app:application``;
- Events: the ``ConnectionRefused`` recipe refuses a client without the token;
- Channels: the four dispatch-rule examples, registered together, behave as
  the rules they illustrate say.
"""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List

import pytest

import socketio_wsgi
from socketio_wsgi.client import Client, ConnectionClosedError
from socketio_wsgi.events import use_registry
from servers import ServerThread, wait_for
from test_readme_testing_examples import README, extract_section, python_blocks

TIMEOUT = 5.0


def section_blocks(title: str) -> List[str]:
    section = extract_section(README.read_text(encoding="utf-8"), title)
    assert section is not None, f"no {title!r} section in README.rst"
    return python_blocks(section)


def run_blocks(blocks: List[str]) -> Dict[str, object]:
    """Run blocks as one module with socketio_wsgi's names imported, as the
    README's fragments assume; returns the module's namespace."""
    namespace: Dict[str, object] = {"__name__": "readme_example"}
    exec("from socketio_wsgi import *\nfrom socketio_wsgi import on_finish, on_subscribe", namespace)
    for block in blocks:
        exec(compile(block, "README.rst", "exec"), namespace)
    return namespace


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------
# Quick start
# ---------------------------------------------------------------------------

def test_quick_start_app_served_with_the_readme_command(tmp_path):
    [app] = [b for b in section_blocks("Quick start") if b.startswith("# app.py")]
    (tmp_path / "app.py").write_text(app + "\n", encoding="utf-8")
    text = README.read_text(encoding="utf-8")
    command = re.search(r"^\s+(python -m socketio_wsgi --port 8000 app:application)$", text, re.M)
    assert command, "the Quick start's run command is not in README.rst"
    port = free_port()
    args = command.group(1).replace("python", sys.executable, 1).replace("8000", str(port)).split()
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()  # the runner says where it listens, then serves
        assert f":{port}" in line, line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=TIMEOUT) as page:
            assert page.read() == b"my site"  # everything else reaches the app untouched
        # A script without an Origin header is not a cross-origin browser page: allowed.
        with Client(f"http://127.0.0.1:{port}", origin="", timeout=TIMEOUT) as client:
            client.send({"hello": "world"})
            assert client.receive() == {"hello": "world"}
            client.send("ünïcode ✓")
            assert client.receive() == "ünïcode ✓"
        # origins=["localhost:8000"]: a page from another site is refused.
        with pytest.raises(ConnectionClosedError):
            Client(f"http://127.0.0.1:{port}", origin="http://evil.example", timeout=TIMEOUT).connect()
    finally:
        proc.terminate()
        proc.wait(timeout=15)


# ---------------------------------------------------------------------------
# Events: refusing a connection
# ---------------------------------------------------------------------------

def first_poll(server: ServerThread, query: str = "") -> "tuple[int, str]":
    """The first xhr-polling GET of a new session: ``(status, body)``."""
    url = f"{server.url}/socket.io/xhr-polling//1{query}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as answer:
            return answer.status, answer.read().decode("utf-8")
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode("utf-8")


def test_refusing_a_connection_recipe(make_server_thread):
    [recipe] = [b for b in section_blocks("Events") if "ConnectionRefused" in b]
    with use_registry() as registry:
        run_blocks([recipe])
    server: ServerThread = make_server_thread(handlers=registry)
    server.record("on_finish")
    status, body = first_poll(server)
    assert status == 403 and "a valid token is required" in body
    status, body = first_poll(server, "?token=let-me-in")
    assert status == 200 and re.fullmatch(r"~m~20~m~\d{20}", body), body
    assert server.events == []  # the refused session ran no other handler


# ---------------------------------------------------------------------------
# Channels: the dispatch rules
# ---------------------------------------------------------------------------

def subscribe(client: Client, channel: str) -> None:
    client.send(["__subscribe__", channel])


def test_channel_examples_follow_their_rules(make_server_thread):
    blocks = section_blocks("Channels")
    assert len(blocks) == 4, blocks
    with use_registry() as registry:
        names = run_blocks(blocks)
        with pytest.raises(socketio_wsgi.EventError):  # rule 5
            socketio_wsgi.on_connect(lambda request, socket, context: None, channel="x")
    assert {"log_everything", "chat", "joined", "left"} <= set(names)
    # A marker for the client outside the rooms (not a README handler).
    registry.add("on_message", lambda request, socket, context, message: socket.send(f"echo:{message}"),
                 "^roomba$")
    server: ServerThread = make_server_thread(handlers=registry)

    with Client(server.url, timeout=TIMEOUT) as bob, Client(server.url, timeout=TIMEOUT) as roomba:
        subscribe(bob, "room-1")
        subscribe(roomba, "roomba")
        wait_for(lambda: server.engine.backend.channel_sizes() == {"room-1": 1, "roomba": 1})
        with Client(server.url, timeout=TIMEOUT) as ada:
            subscribe(ada, "room-1")
            # rule 3: on_subscribe matches the channel being subscribed
            assert bob.receive() == {"joined": ada.session_id}
            # rule 2: "^room-\d+$" matches room-1 ...
            ada.send("hi room")
            assert ada.receive() == "hi room" and bob.receive() == "hi room"
            # ... and not "roomba", whose holder got nothing before its own marker
            roomba.send("ping")
            assert roomba.receive() == "echo:ping"
            ada_id = ada.session_id
        # rule 4: on_finish still sees the channels held, so room-1 hears ada leave
        assert bob.receive() == {"left": ada_id}
