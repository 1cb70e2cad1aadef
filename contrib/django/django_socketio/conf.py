"""The ``SOCKETIO_*`` settings: names, defaults and validation.

Every option of :class:`socketio_wsgi.config.Options` is a setting named
``SOCKETIO_`` + the option in capitals (``heartbeat_interval`` →
``SOCKETIO_HEARTBEAT_INTERVAL``); an unset setting keeps the option's
default, except ``SOCKETIO_ORIGINS``, which follows ``ALLOWED_HOSTS``.
Values are checked by socketio_wsgi itself; a bad one raises
``ImproperlyConfigured`` naming the setting.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Dict, List, Optional, Tuple, Union

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from socketio_wsgi.config import Options
from socketio_wsgi.origins import OriginPolicy

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_MESSAGE_LOG_FORMAT",
    "option_settings",
    "setting_name",
    "host",
    "port",
    "message_log_format",
    "client_url",
    "resource",
    "backend",
    "origins_from_allowed_hosts",
    "middleware_options",
    "check",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000
DEFAULT_MESSAGE_LOG_FORMAT = '%(REMOTE_ADDR)s - - [%(TIME)s] "Socket.IO %(TYPE)s: %(MESSAGE)s"'
# Options that are not settings: the adapter, the handlers and the session-saving
# hook are this app's own, and the backend has its own setting with the same
# name (read by backend()).
_NOT_SETTINGS = ("request_adapter", "handlers", "backend", "around_handlers")
# Django's own fallback when DEBUG is on and ALLOWED_HOSTS is empty.
_DEBUG_HOSTS = [".localhost", "127.0.0.1", "[::1]"]
_UNSET = object()


def setting_name(option: str) -> str:
    return "SOCKETIO_" + option.upper()


def option_settings() -> Dict[str, str]:
    """``{option: setting name}`` for every middleware option that is a setting."""
    return {f.name: setting_name(f.name) for f in dataclasses.fields(Options) if f.name not in _NOT_SETTINGS}


def _get(name: str, default: Any = _UNSET) -> Any:
    return getattr(settings, name, default)


def _fail(name: str, problem: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name} {problem}")


def host() -> str:
    value = _get("SOCKETIO_HOST", DEFAULT_HOST)
    if not isinstance(value, str) or not value:
        raise _fail("SOCKETIO_HOST", f"must be a host name or address, got {value!r}")
    return value


def port() -> int:
    value = _get("SOCKETIO_PORT", DEFAULT_PORT)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise _fail("SOCKETIO_PORT", f"must be an integer from 0 to 65535, got {value!r}")
    return value


class _AnyKey(dict):
    def __missing__(self, key: str) -> str:
        return ""


def message_log_format() -> Optional[str]:
    """The format of log lines, or None when logging them is turned off."""
    value = _get("SOCKETIO_MESSAGE_LOG_FORMAT", DEFAULT_MESSAGE_LOG_FORMAT)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail("SOCKETIO_MESSAGE_LOG_FORMAT", f"must be a string or None, got {value!r}")
    try:
        value % _AnyKey()
    except (TypeError, ValueError) as exc:
        raise _fail(
            "SOCKETIO_MESSAGE_LOG_FORMAT", f"must be a %-format with named keys such as %(MESSAGE)s: {exc}"
        ) from None
    return value


def client_url() -> Optional[str]:
    """``SOCKETIO_CLIENT_URL``: where ``{% socketio %}`` loads the client from
    (None: this app's own ``/<resource>/socket.io.js``)."""
    value = _get("SOCKETIO_CLIENT_URL", None)
    if value is not None and (not isinstance(value, str) or not value):
        raise _fail("SOCKETIO_CLIENT_URL", f"must be a URL or None, got {value!r}")
    return value


def v4_client_url() -> Optional[str]:
    """``SOCKETIO_V4_CLIENT_URL``: where ``{% socketio "4" %}`` loads the
    official ``socket.io-client`` 4.x browser bundle (not shipped here)."""
    value = _get("SOCKETIO_V4_CLIENT_URL", None)
    if value is not None and (not isinstance(value, str) or not value):
        raise _fail("SOCKETIO_V4_CLIENT_URL", f"must be a URL or None, got {value!r}")
    return value


def resource() -> str:
    return _checked("resource", _get("SOCKETIO_RESOURCE", Options.resource)).strip("/")


def backend() -> Any:
    """``SOCKETIO_BACKEND``: None (in-process), a URL such as
    ``"redis://127.0.0.1:6379/0"``, or a backend object."""
    value = _get("SOCKETIO_BACKEND", None)
    if isinstance(value, str) and not value:
        raise _fail("SOCKETIO_BACKEND", "may not be empty; leave it unset for the in-process backend")
    if value is not None and not isinstance(value, str) and not hasattr(value, "publish"):
        raise _fail("SOCKETIO_BACKEND", f"must be a backend URL or a backend object, got {value!r}")
    return value


def origins_from_allowed_hosts() -> Union[str, List[str]]:
    """Origins allowed when ``SOCKETIO_ORIGINS`` is unset: the hosts Django
    serves (``ALLOWED_HOSTS``, or Django's DEBUG fallback), on any port."""
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = list(_DEBUG_HOSTS)
    origins: List[str] = []
    for entry in hosts:
        if entry == "*":
            return "*"
        if entry.startswith("."):  # Django: the domain and all its sub-domains
            origins += [entry[1:], "*" + entry]
        else:
            origins.append(entry)
    return origins


def _named(text: str) -> str:
    """Replace option names in socketio_wsgi's messages by the setting names."""
    for option, name in option_settings().items():
        text = re.sub(rf"\b{option}\b", name, text)
    return text


def _type_problem(option: str, value: Any) -> Optional[str]:
    default = getattr(Options, option, None)
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "must be True or False"
    if isinstance(default, str):
        return None if isinstance(value, str) else "must be a string"
    if isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else "must be a number"
    if isinstance(default, tuple):
        ok = isinstance(value, (list, tuple, str)) and all(isinstance(v, str) for v in value)
        return None if ok else "must be a list of strings"
    return None


def _checked(option: str, value: Any) -> Any:
    name = setting_name(option)
    problem = _type_problem(option, value)
    if problem:
        raise _fail(name, f"{problem}, got {value!r}")
    if option == "origins":
        if value is not None and not isinstance(value, (str, list, tuple)):
            raise _fail(name, f"must be None, '*' or a list of origins, got {value!r}")
        try:
            OriginPolicy(value)
        except (TypeError, ValueError, AttributeError) as exc:
            raise _fail(name, f"has an entry that is not an origin: {exc}") from None
    try:
        Options(**{option: value})
    except Exception as exc:
        raise _fail(name, f"is not valid: {_named(str(exc))}") from None
    return value


def middleware_options() -> Dict[str, Any]:
    """Keyword arguments for ``SocketIOMiddleware`` from the settings (without
    the request adapter and handlers, which :mod:`django_socketio.wsgi` adds)."""
    given: Dict[str, Any] = {}
    for option, name in option_settings().items():
        value = _get(name)
        if value is not _UNSET:
            given[option] = _checked(option, value)
    if "origins" not in given:
        given["origins"] = origins_from_allowed_hosts()
    try:
        Options(**given)
    except Exception as exc:
        raise ImproperlyConfigured(f"SOCKETIO_* settings do not fit together: {_named(str(exc))}") from None
    given["backend"] = backend()
    return given


def check() -> Tuple[str, int]:
    """Validate every setting (at start-up); returns the ``(host, port)`` to bind."""
    middleware_options()
    message_log_format()
    client_url()
    return host(), port()
