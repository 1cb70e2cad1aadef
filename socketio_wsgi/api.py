"""Out-of-band sends: from a view, a script, a greenlet or a plain OS thread.

They go to the *current backend*: the one of the most recently created
middleware in this process, or the one given to :func:`set_backend` in a
process that serves no sockets (a Django process under another server, a
management command, a worker).  They raise :class:`NoSocket` when nobody can
receive.  Calls from another OS thread are handed to the serving hub.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple, Union

from .channels import Backend
from .errors import NoSocket
from .socket import encode_frame_bytes
from .threadsafe import HubBridge

__all__ = ["broadcast", "broadcast_channel", "send", "set_backend", "use_backend", "current_backend"]

_current: Optional[Tuple[Backend, HubBridge]] = None


def use_backend(backend: Optional[Backend], bridge: Optional[HubBridge] = None
                ) -> Optional[Tuple[Backend, HubBridge]]:
    """Route out-of-band calls to ``backend`` (called by the middleware); returns
    the previous ``(backend, bridge)`` pair so tests can restore it."""
    global _current
    previous = _current
    _current = None if backend is None else (backend, bridge or HubBridge())
    return previous


def restore(previous: Optional[Tuple[Backend, HubBridge]]) -> None:
    global _current
    _current = previous


def set_backend(backend: Union[str, Backend]) -> Backend:
    """Send out-of-band through ``backend`` (a URL such as ``redis://host:6379/0``
    or a backend object) from a process that serves no sockets."""
    from .backends import backend_from_url
    resolved = backend_from_url(backend) if isinstance(backend, str) else backend
    use_backend(resolved)
    return resolved


def current_backend() -> Tuple[Backend, HubBridge]:
    if _current is None:
        raise NoSocket("no socket server or backend has been set up in this process")
    return _current


def send(session_id: str, message: Any) -> None:
    """Send ``message`` to one session; NoSocket if it does not exist."""
    backend, bridge = current_backend()
    frame = encode_frame_bytes(message)
    if not bridge.call(backend.send, str(session_id), frame):
        raise NoSocket(f"there is no client with session id {session_id!r}")


def broadcast(message: Any) -> int:
    """Send ``message`` to every connected client; NoSocket if there is none."""
    backend, bridge = current_backend()
    reached = bridge.call(backend.publish, encode_frame_bytes(message), None, None)
    if not reached:
        raise NoSocket("there are no clients")
    return reached


def broadcast_channel(message: Any, channel: str) -> int:
    """Send ``message`` to every holder of ``channel``; NoSocket if none."""
    backend, bridge = current_backend()
    reached = bridge.call(backend.publish, encode_frame_bytes(message), (channel,), None)
    if not reached:
        raise NoSocket(f"there are no clients on channel {channel!r}")
    return reached
