"""Run a function in the gevent hub that owns the sessions, from any thread.

Out-of-band calls may come from a plain OS thread (a worker pool, a signal
handler thread).  Such a thread must not touch gevent objects, so the call is
handed to the owning hub's loop with ``run_callback_threadsafe`` and the thread
waits on a lock that gevent did not patch.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

import gevent
from gevent import monkey

__all__ = ["HubBridge"]

_allocate_lock = monkey.get_original("_thread", "allocate_lock")
_get_ident = monkey.get_original("_thread", "get_ident")


class HubBridge:
    """Remembers the hub of the serving thread and calls into it."""

    def __init__(self) -> None:
        self.hub: Optional[Any] = None
        self._thread: Optional[threading.Thread] = None

    def bind_current(self) -> None:
        """Record the current thread's hub (called where sessions are created)."""
        if self.hub is None:
            self.hub = gevent.get_hub()
            self._thread = threading.current_thread()

    def alive(self) -> bool:
        """False once the bound hub's thread has ended (a stopped server's)."""
        thread = self._thread
        try:
            return thread is None or thread.is_alive()
        except RuntimeError:
            # Python 3.13: bound in a greenlet that has ended since (a monkey-patched
            # greenlet's dummy thread), whose is_alive() raises instead of answering
            # True as it does up to 3.12; the hub's own thread is still there.
            return True

    def in_hub_thread(self) -> bool:
        hub = self.hub
        return hub is None or hub.thread_ident == _get_ident()

    def call(self, func: Callable[..., Any], *args: Any, timeout: float = 10.0) -> Any:
        """``func(*args)`` in the hub's thread; returns its result or raises its error."""
        if self.in_hub_thread():
            return func(*args)
        hub = self.hub
        assert hub is not None  # in_hub_thread() is True for an unbound bridge
        done = _allocate_lock()
        done.acquire()
        box: list = []

        def run() -> None:
            def job() -> None:
                try:
                    box.append((True, func(*args)))
                except BaseException as exc:  # handed back to the calling thread
                    box.append((False, exc))
                finally:
                    done.release()

            gevent.spawn(job)

        hub.loop.run_callback_threadsafe(run)
        if not done.acquire(True, timeout):
            raise TimeoutError("the socket server's event loop did not answer in time")
        ok, value = box[0]
        if ok:
            return value
        raise value
