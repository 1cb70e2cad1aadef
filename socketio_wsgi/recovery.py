"""What a Socket.IO 4 session keeps for connection state recovery.

Pure: no gevent, no clock.  A :class:`Recovery` holds the event packets a
session was sent (already encoded), newest last, bounded by count and bytes,
and answers which of them a client that comes back with an offset missed.
"""

from __future__ import annotations

from collections import deque
from typing import Deque, List, Optional, Tuple

__all__ = ["Recovery"]


class Recovery:
    """What a session keeps for connection state recovery: the event packets
    it was sent, newest last, at most ``max_packets`` and ``max_bytes`` of them
    (the queue limits), so that a client that comes back with the offset of
    the last one it saw gets every later one again."""

    __slots__ = ("pid", "log", "bytes", "max_packets", "max_bytes", "dropped")

    def __init__(self, pid: str, max_packets: int, max_bytes: int):
        self.pid = pid
        self.log: Deque[Tuple[str, bytes]] = deque()
        self.bytes = 0
        self.max_packets = max_packets
        self.max_bytes = max_bytes
        #: Whether the oldest packets had to go (to keep within the limits).
        self.dropped = False

    def record(self, offset: str, data: bytes) -> None:
        log = self.log
        log.append((offset, data))
        self.bytes += len(data)
        while log and (len(log) > self.max_packets or self.bytes > self.max_bytes):
            self.bytes -= len(log.popleft()[1])
            self.dropped = True

    def after(self, offset: Optional[str]) -> Optional[List[bytes]]:
        """The packets sent after ``offset`` (all of them for None); None if
        ``offset`` is no longer kept (some were dropped: no recovery)."""
        if offset is None:
            return None if self.dropped else [data for _, data in self.log]
        found = -1
        for index, (kept, _) in enumerate(self.log):
            if kept == offset:
                found = index
                break
        if found < 0:
            return None
        return [data for _, data in list(self.log)[found + 1 :]]
