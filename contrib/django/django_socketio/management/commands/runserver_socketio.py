"""``manage.py runserver_socketio [addrport] [--noreload]``: the development server.

It serves the whole Django site and Socket.IO on one gevent server (static
files too when DEBUG is on, as ``runserver`` does), with gevent's
monkey-patching done before Django loads: unless it already runs under
:mod:`django_socketio.bootstrap`, the command re-executes itself through it
(same pid with ``--noreload``; with the reloader, the parent process only
supervises one patched child, restarting it when a file changes).

``addrport`` is parsed like runserver's: ``9000``, ``0.0.0.0:9000``,
``[::1]:9000``, ``example.local:9000``; a bare port keeps ``SOCKETIO_HOST``,
no argument means ``SOCKETIO_HOST:SOCKETIO_PORT``.  Port 0 picks a free port
(the line ``SocketIOServer running on host:port`` shows which).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
from typing import Any, Optional, Tuple

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from ... import bootstrap, conf

ADDRPORT = re.compile(
    r"""^(?:
    (?P<addr>
        (?P<ipv4>\d{1,3}(?:\.\d{1,3}){3}) |
        \[(?P<ipv6>[a-fA-F0-9:.]+)\] |
        (?P<fqdn>[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*)
    ):)?(?P<port>\d+)$""",
    re.X,
)
SHUTDOWN_TIMEOUT = 5.0
# Loggers shown on the console unless LOGGING configures them: ours at INFO
# (events, messages, requests), socketio_wsgi's at WARNING (refusals, errors).
LOGGERS = {"django_socketio": logging.INFO, "socketio_wsgi": logging.WARNING}


def parse_addrport(addrport: Optional[str], default_host: str, default_port: int) -> Tuple[str, int]:
    """``(host, port)`` for the command's argument; CommandError when it is not one."""
    if not addrport:
        return default_host, default_port
    match = ADDRPORT.match(addrport.strip())
    if match is None:
        raise CommandError(f'"{addrport}" is not a valid port number or address:port pair.')
    port = int(match["port"])
    if port > 65535:
        raise CommandError(f'"{match["port"]}" is not a valid port number.')
    host = match["ipv4"] or match["ipv6"] or match["fqdn"] or default_host
    return host, port


def _display(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _show_our_logs() -> bool:
    """Let our loggers' lines reach the console, unless LOGGING set them up;
    True if that was done for ``django_socketio``."""
    shown = False
    for name, level in LOGGERS.items():
        logger = logging.getLogger(name)
        if logger.handlers or logger.level != logging.NOTSET:
            continue
        shown = shown or name == "django_socketio"
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    return shown


class Command(BaseCommand):
    help = "Serve the Django site and Socket.IO with gevent (for development)."
    requires_system_checks: list = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "addrport", nargs="?", help="port or address:port to bind (default SOCKETIO_HOST:SOCKETIO_PORT)"
        )
        parser.add_argument(
            "--noreload",
            action="store_false",
            dest="use_reloader",
            help="do not restart the server when a Python file changes",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = parse_addrport(options.get("addrport"), conf.host(), conf.port())
        use_reloader = options.get("use_reloader", True)
        from django.utils import autoreload

        in_child = os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) == "true"
        if not bootstrap.PATCHED_EARLY:
            if use_reloader and not in_child:
                sys.exit(bootstrap.supervise(bootstrap.patched_command(), autoreload.DJANGO_AUTORELOAD_ENV))
            bootstrap.exec_patched()  # does not return
        self.serve(host, port, use_reloader, supervised=in_child)

    def serve(self, host: str, port: int, use_reloader: bool, supervised: bool) -> None:
        from django.utils import autoreload

        from socketio_wsgi import make_server
        from socketio_wsgi.session import Reason

        from ...apps import SocketIOConfig
        from ...wsgi import get_wsgi_application

        console = _show_our_logs()
        self.stdout.write("Performing system checks...\n\n")
        self.check(display_num_errors=True)
        self.check_migrations()
        connections.close_all()  # the checks' connection belongs to no request
        if console:  # at start-up (AppConfig.ready) nothing showed these lines yet
            for config in _app_configs(SocketIOConfig):
                for name in config.events_loaded:
                    logging.getLogger("django_socketio").info("loaded events from %s", name)
        static = settings.DEBUG and _installed("django.contrib.staticfiles")
        app = get_wsgi_application(static=static)
        server = make_server(app, host, port)
        server.logger = logging.getLogger("django_socketio.access")  # gevent-websocket's request log
        try:
            server.start()
        except OSError as exc:
            self.stderr.write(f"Error: could not listen on {_display(host, port)}: {exc.strerror or exc}")
            sys.exit(1)
        bound_host, bound_port = server.address[:2]
        self.stdout.write(
            f"SocketIOServer running on {_display(bound_host, bound_port)}\nQuit the server with CONTROL-C.",
            ending="\n",
        )
        self.stdout.flush()
        stopping = _Stopper(catch_sigint=not supervised)
        if supervised:  # the parent turns Ctrl-C into one SIGTERM for us
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if use_reloader:
                autoreload.autoreload_started.connect(stopping.watch_reloader)
                autoreload.run_with_reloader(stopping.wait)  # exits 3 when a file changes
            else:
                stopping.wait()
        except KeyboardInterrupt:
            pass
        finally:
            stopping.cancel()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)
            self.stdout.write("Closing Socket.IO sessions...")
            self.stdout.flush()
            server.close()  # stop accepting
            app.engine.close_all(Reason.SERVER_SHUTDOWN)
            server.stop(timeout=SHUTDOWN_TIMEOUT)


class _Stopper:
    """Turns SIGTERM (and SIGINT) into an orderly stop of the main greenlet.

    The signals are handled by gevent in a greenlet of their own: a Python
    signal handler that raised would raise inside whichever greenlet happened
    to run (a socket's writer, say) and cut its work short.  With the
    reloader the main greenlet runs Django's reloader loop, which is told to
    stop; without it, it waits here.
    """

    def __init__(self, catch_sigint: bool):
        import gevent
        import gevent.event

        self.event = gevent.event.Event()
        self.reloader: Any = None
        self.handlers: list = []
        self._signals = [signal.SIGTERM] + ([signal.SIGINT] if catch_sigint else [])
        self._gevent = gevent

    def wait(self) -> None:
        # Installed here: run_with_reloader sets its own SIGTERM handler first.
        self.handlers = [self._gevent.signal_handler(sig, self.stop) for sig in self._signals]
        self.event.wait()

    def watch_reloader(self, sender: Any, **kwargs: Any) -> None:
        self.reloader = sender
        if self.event.is_set():
            sender.stop()

    def stop(self) -> None:
        self.event.set()
        if self.reloader is not None:
            self.reloader.stop()

    def cancel(self) -> None:
        for handler in self.handlers:
            handler.cancel()


def _app_configs(cls: type) -> list:
    from django.apps import apps

    return [c for c in apps.get_app_configs() if isinstance(c, cls)]


def _installed(app: str) -> bool:
    from django.apps import apps

    return apps.is_installed(app)
