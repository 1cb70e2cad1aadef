"""Connection state recovery with the real socket.io-client@4 (Node): a
session survives an unclean disconnect for ``recovery_window`` seconds, and
the client that comes back gets its session id, its channels and every packet
it missed, in order."""
from __future__ import annotations

import threading
from typing import Dict

import pytest
from servers import wait_for
from v4_support import run_client, v4_modules

from socketio_wsgi.config import Options
from socketio_wsgi.errors import ConfigurationError
from socketio_wsgi.outbound import Emission

MISSED = 1000


@pytest.fixture(autouse=True)
def _node():
    v4_modules()


def test_recovery_is_off_by_default_and_validated():
    from socketio_wsgi.__main__ import build_parser, options_from_args

    assert Options().recovery_window is None
    with pytest.raises(ConfigurationError):
        Options(recovery_window=0)
    args = build_parser().parse_args(["--recovery-window", "30", "app:application"])
    assert Options(**options_from_args(args)).recovery_window == 30.0


def start_client(config: Dict, results: Dict) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.update(lines=run_client(config, timeout=60)))
    thread.start()
    return thread


@pytest.mark.parametrize("transports", [["websocket"], ["polling", "websocket"]])
def test_recovery_after_a_forced_disconnect_with_1000_missed_packets(make_server_thread, transports):
    server = make_server_thread(recovery_window=30.0, heartbeat_interval=5.0, heartbeat_timeout=5.0)
    seen = {"recovered": [], "disconnects": []}
    server.handlers.add_named("join", lambda request, socket, context, channel: socket.subscribe(channel))
    server.handlers.add_named("check", lambda request, socket, context:
                              (socket.recovered, list(socket.channels), socket.session_id,
                               len(seen["disconnects"])))
    server.handlers.add("on_disconnect", lambda request, socket, context, reason=None:
                        seen["disconnects"].append(reason))
    endpoint = server.middleware.v4
    results: Dict = {}
    client = start_client({
        "url": server.url, "transports": transports, "reconnection": True, "reconnection_delay_ms": 2000,
        "timeout_ms": 50000,
        "steps": [
            {"emit": "join", "args": ["news"], "ack": True},
            *([{"wait": "upgrade"}] if "polling" in transports else []),
            {"kill_transport": True},
            {"wait": "connect", "count": 2},
            {"wait": "n", "count": MISSED},
            {"emit": "check", "ack": True},
        ],
    }, results)
    wait_for(lambda: len(endpoint.held) == 1, timeout=20)

    def send_missed():
        for i in range(MISSED):
            server.engine.backend.publish(Emission("n", (i,)), ("news",), None)

    server.call(send_missed)
    client.join(60)
    assert not client.is_alive()
    lines = results["lines"]
    assert any(line["type"] == "done" for line in lines), lines[-5:]
    connects = [line for line in lines if line["type"] == "connect"]
    assert [c["recovered"] for c in connects] == [False, True]
    assert connects[0]["id"] == connects[1]["id"]
    numbers = [line["args"][0] for line in lines if line["type"] == "event" and line["name"] == "n"]
    assert numbers == list(range(MISSED))  # 0 lost, 0 reordered, none twice
    check = [line for line in lines if line["type"] == "ack"][-1]
    assert check["args"] == [True, ["news"], connects[0]["id"], 0]  # it never ended meanwhile
    assert not endpoint.held


def test_a_held_session_ends_when_the_window_passes(make_server_thread):
    server = make_server_thread(recovery_window=0.5)
    reasons = []
    server.handlers.add("on_disconnect", lambda request, socket, context, reason=None: reasons.append(reason))
    lines = run_client({"url": server.url, "transports": ["websocket"], "steps": [{"kill_transport": True}]})
    assert [line["type"] for line in lines][:1] == ["connect"]
    wait_for(lambda: reasons, timeout=10)
    assert reasons == ["client closed"]
    assert not server.middleware.v4.held and not server.engine.sessions
