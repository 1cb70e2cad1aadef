"""The opt-in status endpoint: guarded, JSON, Prometheus, and a page in Chromium."""
from __future__ import annotations

import json
import time

import pytest

from socketio_wsgi import Reason
from socketio_wsgi.client import Client
from servers import wait_for
from test_core import http_request

TOKEN = "s3cret-token"


@pytest.fixture
def status_server(make_server_thread):
    server = make_server_thread(status_token=TOKEN)
    server.echo()
    return server


def test_status_is_off_by_default(server):
    code, _, body = http_request(server, "GET", "/socket.io/status")
    assert code == 404


def test_status_needs_the_token_or_an_allowed_address(status_server, make_server_thread):
    assert http_request(status_server, "GET", "/socket.io/status")[0] == 403
    assert http_request(status_server, "GET", "/socket.io/status?token=wrong")[0] == 403
    assert http_request(status_server, "GET", "/socket.io/status",
                        headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
    by_address = make_server_thread(status_addresses=["127.0.0.0/8"])
    assert http_request(by_address, "GET", "/socket.io/status")[0] == 200
    elsewhere = make_server_thread(status_addresses=["10.1.2.3"])
    assert http_request(elsewhere, "GET", "/socket.io/status")[0] == 403


def test_status_json_and_metrics_count_what_happened(status_server):
    a = Client(status_server.url, transport="websocket", timeout=5)
    a.connect()
    b = Client(status_server.url, transport="xhr-polling", timeout=5)
    b.connect()
    a.send_payload("~m~13~m~__subscribe__~m~4~m~room")
    a.send("hi")
    assert a.receive(timeout=5) == "hi"
    a.send_payload("~m~9~m~bad")  # 9 units announced, 3 present: a protocol error
    wait_for(lambda: status_server.call(lambda: a.session_id not in status_server.engine.sessions))
    code, headers, body = http_request(status_server, "GET", f"/socket.io/status?token={TOKEN}")
    data = json.loads(body)
    assert code == 200 and headers["Content-Type"] == "application/json"
    assert data["sessions"]["by_transport"] == {"xhr-polling": 1}
    assert data["sessions"]["opened_total"] == 2
    assert data["messages"]["in"] == 2  # the subscribe and "hi"
    assert data["messages"]["out"] >= 1
    assert data["disconnects"][Reason.PROTOCOL_ERROR] == 1
    assert data["errors"]["protocol"] == 1
    assert data["backend"] == {"name": "memory", "state": "ok"}
    code, headers, body = http_request(status_server, "GET", f"/socket.io/status/metrics?token={TOKEN}")
    text = body.decode()
    assert code == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'socketio_sessions{transport="xhr-polling"} 1' in text
    assert 'socketio_disconnects_total{reason="protocol error"} 1' in text
    assert "socketio_messages_received_total 2" in text
    b.disconnect()


@pytest.mark.browser
def test_status_page_shows_the_figures_and_refreshes(status_server, browser_page):
    page = browser_page()
    page.goto(f"{status_server.url}/socket.io/status/page?token={TOKEN}")
    page.wait_for_selector("text=Sessions")
    assert page.locator("table").first.inner_text().count("total") == 1
    before = page.inner_text("#tables")
    assert "xhr-polling" not in before
    client = Client(status_server.url, transport="xhr-polling", timeout=5)
    client.connect()
    page.wait_for_function("document.getElementById('tables').innerText.includes('xhr-polling')",
                           timeout=10_000)
    assert "memory" in page.inner_text("#tables")
    page.screenshot(path=str(__import__("pathlib").Path(__file__).parent.parent / ".cache" / "status.png"))
    client.disconnect()
