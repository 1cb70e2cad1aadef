"""Fixtures for browser tests: Debian chromium via Playwright, the real 0.6
client from the npm package, and a page server on its own port.

tests/conftest.py imports the fixtures once for the whole session.
Without chromium (or npm) the tests skip with the reason, except when the
``CI`` variable is set: then they fail, because CI must run them.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Iterator

import pytest

__all__ = ["chromium", "browser_page", "real_client_js", "page_server", "npm_package",
           "CHROMIUM", "require"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NPM_CACHE = os.environ.get("SOCKETIO_TEST_NPM_DIR",
                           os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                        ".cache", "npm"))


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` unless running under CI, where it is a failure."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


def npm_package(spec: str, check_path: str) -> str:
    """Install ``spec`` (e.g. ``socket.io@0.6.18``) into the test cache once and
    return the absolute path of ``check_path`` inside ``node_modules``."""
    target = os.path.join(NPM_CACHE, "node_modules", check_path)
    if not os.path.exists(target):
        require(shutil.which("npm") is not None, "npm is not installed")
        os.makedirs(NPM_CACHE, exist_ok=True)
        result = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", NPM_CACHE, spec],
                                capture_output=True, text=True, timeout=300)
        require(result.returncode == 0, f"npm install {spec} failed: {result.stderr[-500:]}")
    require(os.path.exists(target), f"{check_path} missing after npm install {spec}")
    return target


@pytest.fixture(scope="session")
def real_client_js() -> str:
    """Text of the real Socket.IO 0.6 browser client shipped by socket.io@0.6.18."""
    path = npm_package("socket.io@0.6.18", "socket.io/support/socket.io-client/socket.io.js")
    with open(path, encoding="utf-8") as fh:
        return fh.read()


@pytest.fixture(scope="session")
def chromium():
    require(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "the playwright Python package is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(chromium):
    """A fresh browser context (no shared cookies) and page per test."""
    contexts = []

    def new_page():
        context = chromium.new_context()
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield new_page
    for context in contexts:
        context.close()


class _Pages(ThreadingHTTPServer):
    daemon_threads = True
    pages: Dict[str, bytes]


class _PageHandler(SimpleHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server naming)
        body = self.server.pages.get(self.path.split("?")[0])
        if body is None:
            self.send_error(404)
            return
        kind = "text/javascript" if self.path.endswith(".js") else "text/html; charset=utf-8"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def page_server() -> Iterator[_Pages]:
    """An HTTP server on 127.0.0.1 (its own port) serving ``pages[path] = bytes``.

    Tests put pages in ``page_server.pages`` and open ``page_server.url + path``;
    the Socket.IO server runs on a different port, as in the usual Django layout.
    """
    server = _Pages(("127.0.0.1", 0), _PageHandler)
    server.pages = {}
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
