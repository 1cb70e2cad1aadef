"""Choosing a channel backend by URL: ``memory://`` or ``redis://host:port/db``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from .channels import Backend, MemoryBackend
from .errors import ConfigurationError

__all__ = ["backend_from_url", "resolve_backend"]


def backend_from_url(url: str, **options: Any) -> Backend:
    scheme = urlsplit(url).scheme
    if scheme in ("", "memory"):
        return MemoryBackend()
    if scheme in ("redis", "rediss", "unix"):
        try:
            from .redis_backend import RedisBackend
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ConfigurationError(
                f"backend {url!r} needs the redis extra: pip install 'socketio-wsgi[redis]' ({exc})"
            ) from None
        return RedisBackend(url, **options)
    raise ConfigurationError(f"unknown backend URL {url!r}: use memory:// or redis://host:port/db")


def resolve_backend(value: Any) -> Backend:
    """The middleware's ``backend`` option: None, a URL, or a backend object."""
    if value is None:
        return MemoryBackend()
    if isinstance(value, str):
        return backend_from_url(value)
    return value
