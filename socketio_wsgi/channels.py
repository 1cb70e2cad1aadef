"""Where sessions and channel memberships live, and how frames reach them.

A backend knows which sessions exist and who holds which channel, and
delivers already-encoded frames (``bytes``) to sessions.  The dispatcher and
the out-of-band API talk only to this interface, so a backend that spans
processes (Redis) plugs in without touching them.  Every method is called in
the thread of the hub that serves the sessions.
"""

from __future__ import annotations

from typing import Dict, Iterable, Iterator, Optional, Protocol, Tuple

from .outbound import Frame

__all__ = ["Backend", "Deliverable", "MemoryBackend"]


class Deliverable(Protocol):
    @property
    def session_id(self) -> str: ...

    def push(self, frame: Frame) -> bool: ...


class Backend(Protocol):
    """The interface every channel backend implements."""

    def add_session(self, session: Deliverable) -> None: ...

    def remove_session(self, session_id: str) -> None: ...

    def subscribe(self, session_id: str, channel: str) -> bool: ...

    def unsubscribe(self, session_id: str, channel: str) -> bool: ...

    def publish(
        self, frame: Frame, channels: Optional[Iterable[str]] = None, exclude: Optional[str] = None
    ) -> int:
        """Deliver to every session (``channels=None``) or to every holder of
        any of ``channels``, each at most once, skipping ``exclude``.  Returns
        how many sessions it reached (0 means nobody)."""

    def send(self, session_id: str, frame: Frame) -> bool: ...

    def session_count(self) -> int: ...

    def channel_sizes(self) -> Dict[str, int]: ...

    def close(self) -> None: ...


class MemoryBackend:
    """The default backend: one process, plain dicts.

    An empty channel is forgotten at once, so the registry holds nothing for
    channels or sessions that are gone.
    """

    name = "memory"

    def __init__(self) -> None:
        self.sessions: Dict[str, Deliverable] = {}
        self.channels: Dict[str, Dict[str, None]] = {}

    def add_session(self, session: Deliverable) -> None:
        self.sessions[session.session_id] = session

    def remove_session(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)

    def subscribe(self, session_id: str, channel: str) -> bool:
        members = self.channels.get(channel)
        if members is None:
            members = self.channels[channel] = {}
        elif session_id in members:
            return False
        members[session_id] = None
        return True

    def unsubscribe(self, session_id: str, channel: str) -> bool:
        members = self.channels.get(channel)
        if members is None or session_id not in members:
            return False
        del members[session_id]
        if not members:
            del self.channels[channel]
        return True

    def _recipients(
        self, channels: Optional[Iterable[str]], exclude: Optional[str]
    ) -> Iterator[Tuple[str, Deliverable]]:
        sessions = self.sessions
        if channels is None:
            for sid, session in list(sessions.items()):
                if sid != exclude:
                    yield sid, session
            return
        if isinstance(channels, str):
            channels = (channels,)
        seen = set()
        for channel in channels:
            members = self.channels.get(channel)
            if not members:
                continue
            for sid in list(members):
                if sid == exclude or sid in seen:
                    continue
                seen.add(sid)
                member = sessions.get(sid)
                if member is not None:
                    yield sid, member

    def publish(
        self, frame: Frame, channels: Optional[Iterable[str]] = None, exclude: Optional[str] = None
    ) -> int:
        if isinstance(channels, str):
            channels = (channels,)
        if isinstance(channels, (tuple, list)) and len(channels) == 1:
            # The common case (broadcast_channel to one channel): nobody can be
            # reached twice, so no seen-set and no generator.
            members = self.channels.get(next(iter(channels)))
            if not members:
                return 0
            sessions = self.sessions
            reached = 0
            for sid in list(members):
                if sid != exclude:
                    session = sessions.get(sid)
                    if session is not None and session.push(frame):
                        reached += 1
            return reached
        reached = 0
        for _sid, session in self._recipients(channels, exclude):
            if session.push(frame):
                reached += 1
        return reached

    def send(self, session_id: str, frame: Frame) -> bool:
        session = self.sessions.get(session_id)
        return session is not None and session.push(frame)

    def session_count(self) -> int:
        return len(self.sessions)

    def channel_sizes(self) -> Dict[str, int]:
        return {name: len(members) for name, members in self.channels.items()}

    def close(self) -> None:
        self.sessions.clear()
        self.channels.clear()
