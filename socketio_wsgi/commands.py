"""Turn a decoded batch into what it asks for: messages and (un)subscriptions.

Pure.  Old pages send ``__subscribe__`` / ``__unsubscribe__`` / ``__array__``
as a marker message followed, in the same batch, by its argument; our client
sends exactly the same.  Heartbeats pass through so the session can see echoes.
"""

from __future__ import annotations

from typing import Any, List, Tuple

from .protocol import Heartbeat, ProtocolError

__all__ = ["MESSAGE", "SUBSCRIBE", "UNSUBSCRIBE", "HEARTBEAT", "MARKERS", "plan_batch"]

MESSAGE, SUBSCRIBE, UNSUBSCRIBE, HEARTBEAT = "message", "subscribe", "unsubscribe", "heartbeat"
#: The texts that announce a command whose argument is the next message.
MARKERS = {"__subscribe__": SUBSCRIBE, "__unsubscribe__": UNSUBSCRIBE, "__array__": MESSAGE}
MAX_CHANNEL_LENGTH = 256


def _channel_name(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ProtocolError(f"a channel name must be text, got {type(value).__name__}")
    name = value if isinstance(value, str) else str(value)
    if not name:
        raise ProtocolError("a channel name may not be empty")
    if len(name) > MAX_CHANNEL_LENGTH:
        raise ProtocolError(f"a channel name may not exceed {MAX_CHANNEL_LENGTH} characters")
    return name


def plan_batch(values: List[Any]) -> List[Tuple[str, Any]]:
    """Return ``(kind, argument)`` pairs in order, or raise :class:`ProtocolError`."""
    plan: List[Tuple[str, Any]] = []
    it = iter(values)
    for value in it:
        if isinstance(value, Heartbeat):
            plan.append((HEARTBEAT, value))
            continue
        kind = MARKERS.get(value) if isinstance(value, str) else None
        if kind is None:
            plan.append((MESSAGE, value))
            continue
        try:
            arg = next(it)
        except StopIteration:
            raise ProtocolError(f"{value} must be followed by its argument in the same batch") from None
        if isinstance(arg, Heartbeat):
            raise ProtocolError(f"{value} is followed by a heartbeat, not its argument")
        plan.append((kind, _channel_name(arg) if kind != MESSAGE else arg))
    return plan
