"""Out-of-band sends: from a view, a script, a greenlet or a plain OS thread.

They go to the *default server* of the process: the backend given to
:func:`set_backend` (a process that serves no sockets: a Django process under
another server, a management command, a worker), else the first middleware
built in this process that has clients, else the first that accepts them.
Building another middleware never takes the calls away from one whose
clients they can reach; each middleware also has its own
``send``/``broadcast``/``broadcast_channel`` methods.  They raise
:class:`NoSocket` when nobody can receive.  Calls from another OS thread are
handed to the serving hub.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any, List, Optional, Tuple, Union

from .channels import Backend
from .errors import NoSocket
from .outbound import Emission, Frame
from .socket import outgoing
from .threadsafe import HubBridge

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine

__all__ = [
    "broadcast",
    "broadcast_channel",
    "send",
    "emit",
    "emit_broadcast",
    "emit_channel",
    "set_backend",
    "use_backend",
    "current_backend",
    "register_engine",
]

Route = Tuple[Backend, HubBridge]


class _Routing:
    """Where this process's out-of-band calls go."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.explicit: Optional[Route] = None
        self.engines: List["weakref.ref[Engine]"] = []

    def default(self) -> Optional[Route]:
        """The explicit route, else the first live engine that has clients,
        else the first live engine that still accepts them."""
        if self.explicit is not None:
            return self.explicit
        with self.lock:
            engines = [
                engine
                for engine in (ref() for ref in self.engines)
                if engine is not None and engine.bridge.alive()
            ]
            self.engines = [weakref.ref(engine) for engine in engines]
        chosen = next((e for e in engines if e.sessions and e.accepting), None)
        if chosen is None:
            chosen = next((e for e in engines if e.accepting), None)
        return None if chosen is None else (chosen.backend, chosen.bridge)


_routing = _Routing()


def register_engine(engine: "Engine") -> None:
    """Called by each middleware (see the module's rule for which one is used)."""
    with _routing.lock:
        _routing.engines.append(weakref.ref(engine))


def use_backend(backend: Optional[Backend], bridge: Optional[HubBridge] = None) -> Optional[Route]:
    """Route out-of-band calls to ``backend`` explicitly (``None``: back to
    the default server); returns the previous explicit route for :func:`restore`."""
    previous = _routing.explicit
    _routing.explicit = None if backend is None else (backend, bridge or HubBridge())
    return previous


def restore(previous: Optional[Route]) -> None:
    _routing.explicit = previous


def set_backend(backend: Union[str, Backend]) -> Backend:
    """Send out-of-band through ``backend`` (a URL such as ``redis://host:6379/0``
    or a backend object) from a process that serves no sockets."""
    from .backends import backend_from_url

    resolved = backend_from_url(backend) if isinstance(backend, str) else backend
    use_backend(resolved)
    return resolved


def current_backend() -> Route:
    """The ``(backend, bridge)`` out-of-band calls use; :class:`NoSocket` if none."""
    route = _routing.default()
    if route is None:
        raise NoSocket("no socket server or backend has been set up in this process")
    return route


def send_via(route: Route, session_id: str, message: Any) -> None:
    """:func:`send` through one ``(backend, bridge)`` route."""
    deliver_via(route, session_id, outgoing(message))


def deliver_via(route: Route, session_id: str, frame: Frame) -> None:
    """Hand ``frame`` to one session through one route; NoSocket if unknown."""
    backend, bridge = route
    if not bridge.call(backend.send, str(session_id), frame):
        raise NoSocket(f"there is no client with session id {session_id!r}")


def broadcast_via(route: Route, message: Any, channel: Optional[str] = None) -> int:
    """:func:`broadcast` (or, with ``channel``, :func:`broadcast_channel`) through one route."""
    return publish_via(route, outgoing(message), channel)


def publish_via(route: Route, frame: Frame, channel: Optional[str] = None) -> int:
    """Hand ``frame`` to every client (or every holder of ``channel``)."""
    backend, bridge = route
    channels = None if channel is None else (channel,)
    reached = bridge.call(backend.publish, frame, channels, None)
    if not reached:
        raise NoSocket(
            "there are no clients" if channel is None else f"there are no clients on channel {channel!r}"
        )
    return reached


def send(session_id: str, message: Any) -> None:
    """Send ``message`` to one session; NoSocket if it does not exist."""
    send_via(current_backend(), session_id, message)


def broadcast(message: Any) -> int:
    """Send ``message`` to every connected client; NoSocket if there is none."""
    return broadcast_via(current_backend(), message)


def broadcast_channel(message: Any, channel: str) -> int:
    """Send ``message`` to every holder of ``channel``; NoSocket if none."""
    return broadcast_via(current_backend(), message, channel)


def emission(event: str, args: Any) -> Emission:
    """A named event for out-of-band calls, its 0.6 form encoded (and checked) now."""
    made = Emission(event, tuple(args))
    made.v06()  # encoded (and checked) here, once
    return made


def emit(session_id: str, event: str, *args: Any) -> None:
    """Emit the named event ``event`` to one session; NoSocket if it does not exist."""
    deliver_via(current_backend(), session_id, emission(event, args))


def emit_broadcast(event: str, *args: Any) -> int:
    """Emit ``event`` to every connected client; NoSocket if there is none."""
    return publish_via(current_backend(), emission(event, args))


def emit_channel(event: str, *args: Any, channel: str) -> int:
    """Emit ``event`` to every holder of ``channel``; NoSocket if none."""
    return publish_via(current_backend(), emission(event, args), channel)
