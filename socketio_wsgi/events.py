"""Event handlers and the rules that decide which of them fire.

Handlers are called as ``handler(request, socket, context[, arg])``.  They are
kept in a :class:`HandlerRegistry`; the seven event objects of this module
register into the *current* registry, which tests can swap with
:func:`use_registry` so that no handler leaks from one test into another.

Dispatch rules (see README "Channels"): a handler registered without
``channel=`` fires for every event of its kind; one with a pattern fires when
``re.match(pattern, channel)`` holds for any channel the socket holds, or, for
``on_subscribe``/``on_unsubscribe``, for the channel being (un)subscribed.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import threading
from typing import Any, Callable, Dict, FrozenSet, Iterator, List, Optional, Pattern, Tuple

from .errors import EventError

__all__ = [
    "Event",
    "EventError",
    "HandlerRegistry",
    "current_registry",
    "use_registry",
    "on_connect",
    "on_message",
    "on_subscribe",
    "on_unsubscribe",
    "on_error",
    "on_disconnect",
    "on_finish",
    "EVENT_NAMES",
]

Handler = Callable[..., Any]
EVENT_NAMES = (
    "on_connect",
    "on_message",
    "on_subscribe",
    "on_unsubscribe",
    "on_error",
    "on_disconnect",
    "on_finish",
)
_ARG_CHANNEL_EVENTS = ("on_subscribe", "on_unsubscribe")
_CACHE_LIMIT = 4096


class _Binding:
    __slots__ = ("handler", "pattern", "wants_reason")

    def __init__(self, handler: Handler, pattern: Optional[Pattern[str]]):
        self.handler = handler
        self.pattern = pattern
        self.wants_reason = _accepts_keyword(handler, "reason")

    def matches_any(self, channels: FrozenSet[str]) -> bool:
        match = self.pattern.match  # type: ignore[union-attr]
        return any(match(channel) for channel in channels)


def _accepts_keyword(func: Handler, name: str) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


class HandlerRegistry:
    """Handlers per event, with a cache of which handlers fire per channel set."""

    def __init__(self) -> None:
        self._bindings: Dict[str, List[_Binding]] = {name: [] for name in EVENT_NAMES}
        self._cache: Dict[Tuple[str, FrozenSet[str]], Tuple[_Binding, ...]] = {}
        self._lock = threading.Lock()

    def add(self, event: str, handler: Handler, channel: Optional[str] = None) -> None:
        pattern = re.compile(channel) if channel else None
        with self._lock:
            self._bindings[event].append(_Binding(handler, pattern))
            self._cache = {}

    def remove(self, event: str, handler: Handler) -> None:
        with self._lock:
            self._bindings[event] = [b for b in self._bindings[event] if b.handler is not handler]
            self._cache = {}

    def clear(self) -> None:
        with self._lock:
            for name in EVENT_NAMES:
                self._bindings[name] = []
            self._cache = {}

    def handlers(self, event: str) -> List[Handler]:
        return [b.handler for b in self._bindings[event]]

    def bindings(self, event: str) -> List[Tuple[Handler, Optional[str]]]:
        """``(handler, channel pattern or None)`` in registration order."""
        return [
            (b.handler, b.pattern.pattern if b.pattern is not None else None) for b in self._bindings[event]
        ]

    def bindings_for(self, event: str, channels: FrozenSet[str]) -> Tuple[_Binding, ...]:
        """Bindings of ``event`` that fire for a socket holding ``channels``."""
        key = (event, channels)
        found = self._cache.get(key)
        if found is None:
            found = tuple(b for b in self._bindings[event] if b.pattern is None or b.matches_any(channels))
            cache = self._cache
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[key] = found
        return found

    def fire(
        self,
        event: str,
        channels: FrozenSet[str],
        request: Any,
        socket: Any,
        context: dict,
        *arg: Any,
        reason: Optional[str] = None,
    ) -> None:
        """Call each matching handler in registration order; the first error propagates."""
        if event in _ARG_CHANNEL_EVENTS:
            channels = frozenset(arg[:1])
        for binding in self.bindings_for(event, channels):
            if reason is not None and binding.wants_reason:
                binding.handler(request, socket, context, *arg, reason=reason)
            else:
                binding.handler(request, socket, context, *arg)


_current = HandlerRegistry()
_default = _current


def current_registry() -> HandlerRegistry:
    """The registry the module-level events register into."""
    return _current


@contextlib.contextmanager
def use_registry(registry: Optional[HandlerRegistry] = None) -> Iterator[HandlerRegistry]:
    """Make ``registry`` (a fresh one by default) current inside the block."""
    global _current
    previous = _current
    _current = registry if registry is not None else HandlerRegistry()
    try:
        yield _current
    finally:
        _current = previous


class Event:
    """A decorator that registers handlers for one event.

    ``@on_message``, ``@on_message(channel="^room-")`` and
    ``on_message(handler, channel="^room-")`` all work and return the handler,
    so decorators can be stacked.
    """

    def __init__(self, name: str, supports_channels: bool = True):
        self.name = name
        self.supports_channels = supports_channels

    def __repr__(self) -> str:
        return f"<Event {self.name}>"

    def __call__(self, handler: Optional[Handler] = None, channel: Optional[str] = None) -> Any:
        if channel is not None and not self.supports_channels:
            raise EventError(f"{self.name} does not accept channel= (it fires before any subscription)")
        if channel is not None and not isinstance(channel, str):
            raise EventError(f"{self.name}: channel must be a regular expression string")
        if handler is None:

            def decorator(func: Handler) -> Handler:
                return self(func, channel=channel)

            return decorator
        if not callable(handler):
            raise EventError(f"{self.name}: handler must be callable, got {handler!r}")
        current_registry().add(self.name, handler, channel or None)
        return handler


on_connect = Event("on_connect", supports_channels=False)
on_message = Event("on_message")
on_subscribe = Event("on_subscribe")
on_unsubscribe = Event("on_unsubscribe")
on_error = Event("on_error")
on_disconnect = Event("on_disconnect")
on_finish = Event("on_finish")
