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
from typing import Any, Callable, Dict, FrozenSet, Iterator, List, Optional, Pattern, Set, Tuple

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
    "on_event",
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
    __slots__ = ("handler", "pattern", "wants_reason", "wants_auth")

    def __init__(self, handler: Handler, pattern: Optional[Pattern[str]]):
        self.handler = handler
        self.pattern = pattern
        self.wants_reason = _accepts_keyword(handler, "reason")
        self.wants_auth = _accepts_keyword(handler, "auth")

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
        #: Named-event handlers (``on_event``) per ``(namespace, name)``.
        self._named: Dict[Tuple[str, str], List[_Binding]] = {}
        #: Socket.IO 4 namespaces clients may join ("/" always).
        self.namespaces: Set[str] = {"/"}

    def add_namespace(self, namespace: str) -> None:
        """Let Socket.IO 4 clients join ``namespace`` (a str starting with "/")."""
        if not isinstance(namespace, str) or not namespace.startswith("/") or "," in namespace:
            raise EventError(f"a namespace is a str starting with '/' without ',', got {namespace!r}")
        with self._lock:
            self.namespaces.add(namespace)

    def add_named(
        self, name: str, handler: Handler, channel: Optional[str] = None, namespace: str = "/"
    ) -> None:
        """Register ``handler`` for the named event ``name`` on ``namespace``."""
        self.add_namespace(namespace)
        pattern = re.compile(channel) if channel else None
        with self._lock:
            self._named.setdefault((namespace, name), []).append(_Binding(handler, pattern))

    def named_bindings(self, namespace: str, name: str) -> List[Tuple[Handler, Optional[str]]]:
        """``(handler, channel pattern or None)`` of a named event, in registration order."""
        return [
            (b.handler, b.pattern.pattern if b.pattern is not None else None)
            for b in self._named.get((namespace, name), ())
        ]

    def named_items(self) -> List[Tuple[str, str, Handler, Optional[str]]]:
        """Every named-event binding as ``(namespace, name, handler, pattern)``."""
        return [
            (namespace, name, b.handler, b.pattern.pattern if b.pattern is not None else None)
            for (namespace, name), bindings in self._named.items()
            for b in bindings
        ]

    def has_named(self, namespace: str, name: str) -> bool:
        return (namespace, name) in self._named

    def fire_named(
        self,
        namespace: str,
        name: str,
        channels: FrozenSet[str],
        request: Any,
        socket: Any,
        context: dict,
        args: Tuple[Any, ...],
    ) -> Any:
        """Call the handlers of a named event in registration order; returns the
        first value one of them returned that is not None (the ack)."""
        result = None
        for binding in self._named.get((namespace, name), ()):
            if binding.pattern is not None and not binding.matches_any(channels):
                continue
            value = binding.handler(request, socket, context, *args)
            if result is None:
                result = value
        return result

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
            self._named = {}
            self.namespaces = {"/"}

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
        auth: Any = None,
    ) -> None:
        """Call each matching handler in registration order; the first error
        propagates.  ``reason`` goes to handlers taking a ``reason`` keyword,
        ``auth`` (a Socket.IO 4 client's CONNECT payload) to those taking ``auth``."""
        if event in _ARG_CHANNEL_EVENTS:
            channels = frozenset(arg[:1])
        for binding in self.bindings_for(event, channels):
            if reason is not None and binding.wants_reason:
                binding.handler(request, socket, context, *arg, reason=reason)
            elif auth is not None and binding.wants_auth:
                binding.handler(request, socket, context, *arg, auth=auth)
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


def on_event(
    name: str, handler: Optional[Handler] = None, *, channel: Optional[str] = None, namespace: str = "/"
) -> Any:
    """Register a handler for the named event ``name`` (Socket.IO 4 clients'
    ``socket.emit(name, ...)``), called as ``handler(request, socket, context,
    *args)``; its return value is the ack when the client asked for one (a
    tuple for several values).  ``channel``: fire only for sockets holding a
    matching channel; ``namespace``: the namespace it serves (registered by
    this call).  Works as ``@on_event("name")`` and ``on_event("name", handler)``."""
    if not isinstance(name, str) or not name:
        raise EventError(f"on_event: the event name must be a non-empty str, got {name!r}")
    if name in RESERVED_NAMES:
        raise EventError(f"on_event: {name!r} is reserved ({', '.join(sorted(RESERVED_NAMES))})")
    if channel is not None and not isinstance(channel, str):
        raise EventError("on_event: channel must be a regular expression string")
    if handler is None:

        def decorator(func: Handler) -> Handler:
            return on_event(name, func, channel=channel, namespace=namespace)

        return decorator
    if not callable(handler):
        raise EventError(f"on_event: handler must be callable, got {handler!r}")
    current_registry().add_named(name, handler, channel or None, namespace)
    return handler


#: Event names with a meaning of their own: "message" reaches ``on_message``,
#: the channel markers subscribe and unsubscribe, the rest are Socket.IO's own.
RESERVED_NAMES = frozenset(
    {
        "message",
        "__subscribe__",
        "__unsubscribe__",
        "connect",
        "connect_error",
        "disconnect",
        "disconnecting",
        "newListener",
        "removeListener",
    }
)
