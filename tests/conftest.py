import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from servers import ServerThread  # noqa: E402
# One definition of the browser fixtures for the whole session (one Playwright).
from browser_support import browser_page, chromium, page_server, real_client_js  # noqa: E402,F401


@pytest.fixture
def make_server_thread():
    started = []

    def start(*args, **kwargs) -> ServerThread:
        server = ServerThread(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server_thread) -> ServerThread:
    srv = make_server_thread()
    srv.echo()
    srv.record("on_connect", "on_message", "on_disconnect", "on_finish", "on_error",
               "on_subscribe", "on_unsubscribe")
    return srv
