"""``python -m socketio_wsgi [options] module:app`` — run an app on gevent.

gevent monkey-patches the standard library before the app is imported, so a
handler that sleeps or waits on a database does not stall other connections.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from .config import ALL_TRANSPORTS, COUNT_OPTIONS, SECONDS_OPTIONS, Options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m socketio_wsgi", description="Serve a WSGI application with Socket.IO 0.6 on gevent."
    )
    parser.add_argument("app", help="the WSGI application, as module:attribute")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    parser.add_argument(
        "--reload", action="store_true", help="restart when a Python file under the current directory changes"
    )
    parser.add_argument("--no-access-log", action="store_true", help="do not log every HTTP request")
    parser.add_argument(
        "--shutdown-grace",
        type=float,
        default=5.0,
        help="seconds polling clients get to collect queued messages on shutdown",
    )
    defaults = Options()
    parser.add_argument("--resource", default=defaults.resource)
    parser.add_argument(
        "--origins", default=None, help="comma-separated allowed origins, or * (default: same origin only)"
    )
    parser.add_argument(
        "--transports", default=",".join(ALL_TRANSPORTS), help="comma-separated enabled transports"
    )
    parser.add_argument(
        "--backend",
        default=None,
        help="channel backend URL: memory:// (default) or redis://host:6379/0[?prefix=NAME&ttl=SECONDS]",
    )
    parser.add_argument(
        "--max-handshakes-per-minute",
        type=int,
        default=None,
        help="new sessions allowed per client address a minute (default: no limit)",
    )
    parser.add_argument(
        "--flash-policy-port",
        type=int,
        default=None,
        help="serve the Flash socket policy on this port (843 needs root)",
    )
    parser.add_argument(
        "--flash-policy-inline",
        action="store_true",
        help="also answer <policy-file-request/> on the HTTP port",
    )
    parser.add_argument(
        "--status-token",
        default=None,
        help="enable the status endpoint under /<resource>/status for this token",
    )
    parser.add_argument(
        "--trust-proxy-headers",
        action="store_true",
        help="take client address/scheme from X-Forwarded-For/-Proto",
    )
    parser.add_argument(
        "--recovery-window",
        type=float,
        default=None,
        help="seconds a Socket.IO 4 session waits for its client to recover it (default: off)",
    )
    for name in SECONDS_OPTIONS:
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=float,
            default=getattr(defaults, name),
            help=f"seconds (default {getattr(defaults, name)})",
        )
    for name in COUNT_OPTIONS:
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=int,
            default=getattr(defaults, name),
            help=f"default {getattr(defaults, name)}",
        )
    return parser


def options_from_args(args: argparse.Namespace) -> dict:
    origins = None
    if args.origins:
        origins = "*" if args.origins.strip() == "*" else [o for o in args.origins.split(",") if o]
    out = {
        name: getattr(args, name)
        for name in Options.names()
        if hasattr(args, name) and name not in ("origins", "transports")
    }
    out["origins"] = origins
    out["transports"] = [t for t in args.transports.split(",") if t]
    return out


def load_app(spec: str):
    import importlib

    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    target = module
    for part in (attr or "application").split("."):
        target = getattr(target, part)
    return target


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.reload:
        from .reloader import run_with_reloader

        child_argv = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--reload"]
        return run_with_reloader([sys.executable, "-m", "socketio_wsgi", *child_argv])
    from gevent import monkey

    monkey.patch_all()
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    from .errors import ConfigurationError
    from .server import find_middleware, serve

    try:
        app = load_app(args.app)
        options = {} if find_middleware(app) is not None else options_from_args(args)
        serve(
            app,
            host=args.host,
            port=args.port,
            access_log=not args.no_access_log,
            shutdown_grace=args.shutdown_grace,
            **options,
        )
    except ConfigurationError as exc:
        print(f"socketio_wsgi: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
