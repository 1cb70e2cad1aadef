"""One log line per Socket.IO message, connect, disconnect and error.

Lines are written to the ``django_socketio.messages`` logger at INFO
(errors at WARNING) in ``SOCKETIO_MESSAGE_LOG_FORMAT``, whose keys are every
key of ``request.META`` plus:

- ``TYPE``: ``message``, ``subscribe``, ``unsubscribe``, ``connect``,
  ``refused``, ``disconnect`` or ``error``;
- ``MESSAGE``: the message (the decoded value, so a dict shows as a dict),
  the channel, or for the other types the session id and transport, reason
  or error;
- ``TIME``: the local time, to the second.

A key missing from ``META`` formats as ``-`` (in 0.3.9 it raised and ended
the connection).  Line breaks are escaped, so one event is always one line.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any, Optional

__all__ = ["MessageLog", "logger"]

logger = logging.getLogger("django_socketio.messages")


class _Record:
    """The mapping a format is applied to; computed lazily, key by key."""

    __slots__ = ("meta", "kind", "message")

    def __init__(self, meta: Any, kind: str, message: Any):
        self.meta = meta
        self.kind = kind
        self.message = message

    def __getitem__(self, key: str) -> Any:
        if key == "TYPE":
            return self.kind
        if key == "MESSAGE":
            return self.message
        if key == "TIME":
            return datetime.datetime.now().replace(microsecond=0)
        value = self.meta.get(key) if self.meta is not None else None
        return "-" if value is None else value


class MessageLog:
    """Formats and logs lines; an instance is the engine's ``message_log`` hook
    (``hook(request, kind, message)``, called after the handlers ran)."""

    def __init__(self, fmt: str):
        self.fmt = fmt

    def line(self, request: Any, kind: str, message: Any) -> str:
        text = self.fmt % _Record(getattr(request, "META", None), kind, message)
        return text.replace("\r", "\\r").replace("\n", "\\n")

    def __call__(self, request: Any, kind: str, message: Any, level: int = logging.INFO) -> None:
        if logger.isEnabledFor(level):
            logger.log(level, "%s", self.line(request, kind, message))


def from_settings() -> Optional[MessageLog]:
    from . import conf

    fmt = conf.message_log_format()
    return MessageLog(fmt) if fmt is not None else None
