"""Out-of-band sends: from a view, a script, a greenlet or a plain OS thread.

They reach sessions through the engine of the most recently created
middleware (or the backend set with :func:`set_backend`), and raise
:class:`NoSocket` when nobody can receive.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from .errors import NoSocket
from .socket import encode_frame_bytes

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine

__all__ = ["broadcast", "broadcast_channel", "send", "use_engine", "current_engine"]

_engine: Optional["Engine"] = None


def use_engine(engine: Optional["Engine"]) -> Optional["Engine"]:
    """Route out-of-band calls to ``engine``; returns the previous one."""
    global _engine
    previous, _engine = _engine, engine
    return previous


def current_engine() -> "Engine":
    if _engine is None:
        raise NoSocket("no socket server has been set up in this process")
    return _engine


def send(session_id: str, message: Any) -> None:
    """Send ``message`` to one session; NoSocket if it does not exist."""
    engine = current_engine()
    frame = encode_frame_bytes(message)
    if not engine.bridge.call(engine.backend.send, str(session_id), frame):
        raise NoSocket(f"there is no client with session id {session_id!r}")


def broadcast(message: Any) -> int:
    """Send ``message`` to every connected client; NoSocket if there is none."""
    engine = current_engine()
    frame = encode_frame_bytes(message)
    reached = engine.bridge.call(engine.backend.publish, frame, None, None)
    if not reached:
        raise NoSocket("there are no clients")
    return reached


def broadcast_channel(message: Any, channel: str) -> int:
    """Send ``message`` to every holder of ``channel``; NoSocket if none."""
    engine = current_engine()
    frame = encode_frame_bytes(message)
    reached = engine.bridge.call(engine.backend.publish, frame, (channel,), None)
    if not reached:
        raise NoSocket(f"there are no clients on channel {channel!r}")
    return reached
