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


# --- Running against an installed wheel (tox's ``wheel`` env, .ci/test_installed_wheel.py) ---

def pytest_addoption(parser):
    parser.addoption(
        "--expect-installed", action="store_true", default=False,
        help="fail at once unless socketio_wsgi and django_socketio are imported from "
             "site-packages and the pytest plugin was loaded through its entry point "
             "(the suite then runs against the installed distribution, not a checkout)")


def pytest_configure(config):
    if not config.getoption("--expect-installed", default=False):
        return
    import sysconfig
    from pathlib import Path

    import django_socketio
    import socketio_wsgi

    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    for module in (socketio_wsgi, django_socketio):
        where = Path(module.__file__).resolve()
        if site not in where.parents:
            raise pytest.UsageError(f"--expect-installed: {module.__name__} comes from {where}, "
                                    f"not from {site}")
    if config.pluginmanager.get_plugin("socketio_wsgi.pytest_plugin") is None:
        raise pytest.UsageError("--expect-installed: the socketio_wsgi pytest plugin was not "
                                "loaded through its pytest11 entry point")
    config.stash[_INSTALLED] = str(site)


_INSTALLED = pytest.StashKey[str]()


def pytest_report_header(config):
    site = config.stash.get(_INSTALLED, None)
    if site is not None:
        return [f"socketio_wsgi and django_socketio imported from the installed wheel in {site}"]
    return None
