"""The gevent driver of :class:`~socketio_wsgi.ws.protocol.Protocol`.

One :class:`Connection` per upgraded socket:

* **One writer.**  Every outgoing byte (messages, pongs, the close frame) goes
  into one buffer and leaves through :meth:`Connection._write`: a
  non-blocking ``os.write`` right away, and, only when the socket does not
  take everything, a single writer greenlet that waits for writability.
  Nothing else writes to the socket.
* **Writes never block the reader.**  Pongs are queued, never written in
  place; while the buffer is above ``write_limit`` only the latest ping is
  answered (RFC 6455 5.5.3 allows it), so a ping flood from a client that
  does not read cannot grow the buffer.  ``send`` waits while the buffer is
  above ``write_limit``.
* **Every write has a deadline.**  Each queued frame must be on the wire
  within ``write_timeout`` seconds of being queued, else the connection is
  aborted and the socket shut.
* **One close path.**  :meth:`Connection.close` sends one close frame, waits
  up to ``close_timeout`` for the peer's, then shuts the socket; a close
  started by the peer, a protocol violation, EOF and an expired write all end
  in the same :meth:`Connection._end`.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import gevent
import gevent.event
from gevent import monkey
from gevent.hub import Waiter
from gevent.socket import wait_write

from ..errors import ConnectionClosed
from ..session import pause
from ..wsframes import OP_BINARY, OP_TEXT, frame_header
from .protocol import Close, Message, Ping, Protocol, State

__all__ = ["Connection", "ConnectionClosed", "PreparedMessage"]

log = logging.getLogger("socketio_wsgi.websocket")

_RECV_SIZE = 65536
#: Messages a parked connection hands over before it lets other sessions run.
_SLICE = 64
#: Seconds without input after which a parked connection's greenlet ends.
PARK_AFTER = 1.0
#: The standard library's socket class (gevent's adds two watchers per socket).
_PlainSocket = monkey.get_original("socket", "socket")


class PreparedMessage:
    """A message encoded once for many connections (a broadcast).

    :meth:`Connection.send` takes it like a str/bytes message; the frame is
    built once per set of compression parameters (uncompressed, or compressed
    without context takeover) and shared by every connection using them.
    Connections whose compressor keeps context compress it themselves.
    """

    __slots__ = ("opcode", "payload", "_frames")

    def __init__(self, message: Message, *, text: bool = False):
        """``message``: ``str`` for text, ``bytes`` for binary, or UTF-8
        ``bytes`` to be sent as text with ``text=True`` (not checked)."""
        if isinstance(message, str):
            self.opcode, self.payload = OP_TEXT, message.encode("utf-8")
        else:
            self.opcode, self.payload = (OP_TEXT if text else OP_BINARY), bytes(message)
        self._frames: Dict[Optional[Tuple[Any, ...]], bytes] = {}

    def frame_for(self, proto: Protocol) -> bytes:
        """The frame to send on ``proto``'s connection."""
        deflate = proto.deflate
        key: Optional[Tuple[Any, ...]] = None
        if deflate is not None and len(self.payload) >= deflate.threshold:
            if deflate.share_key is None:
                return proto.encode(self.opcode, self.payload)  # context takeover: per connection
            key = deflate.share_key
        frame = self._frames.get(key)
        if frame is None:
            if deflate is None or key is None:
                frame = frame_header(0x80 | self.opcode, len(self.payload)) + self.payload
            else:
                data = deflate.compress(self.payload)
                frame = frame_header(0xC0 | self.opcode, len(data)) + data
            self._frames[key] = frame
        return frame


class Connection:
    """An open server-side websocket (see :func:`socketio_wsgi.websocket.accept`).

    Iterating yields messages (``str`` for text, ``bytes`` for binary) until
    the connection closes.  Use it from greenlets of the hub it was accepted
    in; one greenlet reads at a time.
    """

    __slots__ = (
        "protocol",
        "write_timeout",
        "close_timeout",
        "write_limit",
        "peer",
        "subprotocol",
        "_sock",
        "_fd",
        "_rfile",
        "_read",
        "_pending",
        "_out",
        "_deadlines",
        "_queued",
        "_written",
        "bytes_received",
        "_writer",
        "_pong_due",
        "_drained",
        "_done",
        "_reading",
        "_ended",
        "_shut",
        "_half",
        "_closing",
        "_close_timer",
        "on_drained",
        "aborted",
        "_close_code",
        "_close_reason",
        "_watcher",
        "_on_message",
        "_on_end",
        "_pumping",
        "_idle_timer",
        "_waiter",
        "_owns_fd",
    )  # one per open websocket: no per-instance dict

    def __init__(
        self,
        sock: socket.socket,
        rfile: Any,
        proto: Protocol,
        *,
        write_timeout: float = 10.0,
        close_timeout: float = 5.0,
        write_limit: int = 64 * 1024,
        peer: str = "",
        subprotocol: Optional[str] = None,
    ):
        self.protocol = proto
        self.write_timeout = write_timeout
        self.close_timeout = close_timeout
        self.write_limit = write_limit
        self.peer = peer
        #: The subprotocol agreed in the handshake, if any.
        self.subprotocol = subprotocol
        self._sock = sock
        self._fd = sock.fileno()
        self._rfile: Any = rfile
        self._read: Callable[[int], bytes] = self._read_first
        # Lists, not deques (760 bytes each even when empty): both stay short.
        self._pending: List[Message] = []
        self._out = bytearray()
        self._deadlines: List[Tuple[int, float]] = []  # (end offset, deadline)
        self._queued = 0  # bytes ever queued
        self._written = 0  # bytes ever written
        #: Bytes read from the socket so far (compressed size on the wire).
        self.bytes_received = 0
        self._writer: Optional[gevent.Greenlet] = None
        self._pong_due: Optional[bytes] = None
        self._drained = gevent.event.Event()
        self._drained.set()
        self._done = gevent.event.Event()  # set once the connection has ended
        self._reading = False
        self._ended = False
        self._shut = False
        self._half = False
        self._closing = False
        self._close_timer: Any = None
        #: Called once a backlog (bytes the socket did not take at once) has
        #: been written: a sender that held back can go on.
        self.on_drained: Optional[Callable[[], None]] = None
        #: Why the connection was dropped without a close handshake
        #: ("write timeout", "connection lost", "aborted"), else None.
        self.aborted: Optional[str] = None
        self._close_code: Optional[int] = None
        self._close_reason = ""
        # Parked (see serve()): read from a loop watcher, no greenlet waits.
        self._watcher: Any = None
        self._on_message: Optional[Callable[[Message], bool]] = None
        self._on_end: Optional[Callable[[], None]] = None
        self._pumping = False
        self._idle_timer: Any = None
        self._waiter: Optional[Waiter] = None
        self._owns_fd = False

    # ------------------------------------------------------------ state
    @property
    def closed(self) -> bool:
        """True once the connection has ended (or is ending): no more sends."""
        return self._ended or self.protocol.state is not State.OPEN

    @property
    def parked(self) -> bool:
        """True once :meth:`serve` read through a watcher: the connection
        owns its descriptor, and nobody else may close it."""
        return self._read == self._read_parked

    @property
    def close_code(self) -> Optional[int]:
        """The peer's close code (1005: none given, 1006: no close frame), or
        None while open."""
        return self._close_code

    @property
    def close_reason(self) -> str:
        return self._close_reason

    @property
    def bytes_sent(self) -> int:
        """Bytes written to the socket so far (compressed size on the wire)."""
        return self._written

    @property
    def buffered(self) -> int:
        """Bytes queued and not yet written."""
        return len(self._out)

    # ------------------------------------------------------------ reading
    def __iter__(self) -> Iterator[Message]:
        return self

    def __next__(self) -> Message:
        pending = self._pending
        while not pending:
            if self._ended:
                raise StopIteration
            self._read_once(None)
        return pending.pop(0)

    def receive(self, timeout: Optional[float] = None) -> Message:
        """The next message.  Raises :class:`ConnectionClosed` once the
        connection has ended, ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pending = self._pending
        while not pending:
            if self._ended:
                raise ConnectionClosed(self._close_reason, code=self._close_code)
            self._read_once(deadline)
        return pending.pop(0)

    def _read_once(self, deadline: Optional[float]) -> None:
        """Read once from the socket and act on what arrived."""
        proto = self.protocol
        if proto.input_pending:  # what came after the last message
            proto.receive_data(b"")
            self._handle_events()
            return
        if self._reading:
            if self._closing:  # close() is reading for the peer's close frame
                self._done.wait(self.close_timeout)
                if not self._ended:
                    self._end()
                return
            raise RuntimeError("another greenlet is already reading this websocket")
        self._reading = True
        try:
            if deadline is None:
                data = self._read(_RECV_SIZE)
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no websocket message within the timeout")
                with gevent.Timeout(remaining, TimeoutError("no websocket message within the timeout")):
                    data = self._read(_RECV_SIZE)
        except OSError:
            data = b""
        except ValueError:  # the file was closed under us
            data = b""
        finally:
            self._reading = False
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        """Hand what one read returned (``b""``: end of file) to the protocol,
        and act on what it makes of it."""
        if data:
            self.bytes_received += len(data)
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        self._handle_events()

    def _read_first(self, size: int) -> bytes:
        """The first read goes through the HTTP reader, which may hold bytes the
        client sent right behind its handshake: ``peek`` returns them, or
        waits by filling that reader's own small buffer.  Later reads go
        straight to the socket, which allocates a buffer only once data has
        arrived, so an idle connection holds no read buffer while it waits."""
        rfile, self._rfile = self._rfile, None
        self._read = self._sock.recv
        data = rfile.peek(size)
        return rfile.read1(len(data)) if data else b""

    def _handle_events(self) -> None:
        proto = self.protocol
        for event in proto.events_received():
            kind = type(event)
            if kind is str or kind is bytes:
                self._pending.append(event)
            elif kind is Ping:
                if len(self._out) <= self.write_limit:
                    proto.send_pong(event.payload)
                    self._push(proto.data_to_send())
                else:
                    self._pong_due = event.payload  # the reader never waits on a write
            elif kind is Close:
                self._close_code, self._close_reason = event.code, event.reason
        data = proto.data_to_send()
        if data:
            self._push(data)
        if proto.state is State.CLOSED:
            if self._close_code is None:
                self._close_code = proto.close_code
            self._end()
        elif proto.failure is not None and not self._ended:
            log.info("websocket %s: %s (closing with %d)", self.peer, proto.failure, proto.failure.code)
            self._close_code = 1006
            self._end(half=True)

    # ------------------------------------------------------------ serving
    def serve(
        self,
        on_message: Callable[[Message], bool],
        on_end: Callable[[], None],
        park: Optional[Callable[[], int]] = None,
    ) -> None:
        """Hand each message to ``on_message`` until it returns False or the
        connection ends, then call ``on_end()`` once.  Both run in a greenlet
        and may block (they run handlers).

        Without ``park`` this reads in the calling greenlet until then.  With
        ``park`` (our server's way to let go of the socket: it returns the
        descriptor, see :data:`~socketio_wsgi.websocket.PARK_KEY`) it returns
        at once: the socket is read from an event-loop watcher, and a
        greenlet exists only while what arrived is being handled, so a quiet
        connection holds no greenlet, no stack and no HTTP reader.  Each
        wake-up reads at most 16 times before letting other sessions run."""
        if park is None:
            try:
                for message in self:
                    if not on_message(message):
                        break
            finally:
                on_end()
            return
        buffered = self._take_buffered()
        fd = park()
        self._sock = _PlainSocket(fileno=fd)  # no watchers of its own: ours below
        self._fd = fd
        self._owns_fd = True
        self._read = self._read_parked
        self._on_message, self._on_end = on_message, on_end
        self._watcher = gevent.get_hub().loop.io(fd, 1)
        if buffered:
            self._feed(buffered)
        if self._pending or self._ended:
            self._pumping = True
            gevent.spawn(self._pump)
        else:
            self._watcher.start(self._readable)

    def _take_buffered(self) -> bytes:
        """What the HTTP reader already holds (bytes the client sent right
        behind its handshake), without waiting for more."""
        rfile, self._rfile = self._rfile, None
        if rfile is None:
            return b""
        sock = self._sock
        timeout = sock.gettimeout()
        sock.settimeout(0.0)
        try:
            data = rfile.peek(_RECV_SIZE) or b""
            return rfile.read1(len(data)) if data else b""
        except (OSError, ValueError):
            return b""
        finally:
            sock.settimeout(timeout)

    def _read_parked(self, size: int) -> bytes:
        """A parked connection's blocking read (close() lingering for the
        peer's close frame waits through the watcher instead)."""
        raise OSError("a parked websocket is read by its watcher")

    def _readable(self) -> None:
        """The watcher's callback (in the hub): handle what arrived in a greenlet."""
        self._watcher.stop()
        if not self._pumping:
            self._pumping = True
            gevent.spawn(self._pump)

    def _pump(self) -> None:
        """Read what is there, hand over its messages, and park again."""
        try:
            reads = delivered = 0
            while True:
                if self._pending:
                    # Taken whole (popping each from the front was quadratic
                    # in a read of thousands of tiny frames), and handed over
                    # _SLICE at a time with a pause between: one peer's flood
                    # must not hold every other session.
                    batch, self._pending = self._pending, []
                    for message in batch:
                        on_message = self._on_message
                        if on_message is not None and not on_message(message):
                            self._stop_delivering()
                        delivered += 1
                        if delivered == _SLICE:
                            delivered = 0
                            pause()
                if self._ended:
                    break
                proto = self.protocol
                if proto.input_pending:  # what came after the last message
                    proto.receive_data(b"")
                    self._handle_events()
                    continue
                if reads == 16:
                    reads = 0
                    pause()  # a busy peer: let others in (and their sockets polled)
                    if self._ended:
                        break
                try:
                    data = os.read(self._fd, _RECV_SIZE)
                except BlockingIOError:
                    if self._wait_input():
                        continue
                    if self._ended:
                        break
                    self._watcher.start(self._readable)  # quiet: park, this greenlet ends
                    return
                except OSError:
                    data = b""
                reads += 1
                self._feed(data)
            self._stop_delivering()
        finally:
            self._pumping = False
            self._release_fd()

    def _wait_input(self) -> bool:
        """Wait (in the pump) for more input, up to :data:`PARK_AFTER`
        seconds: a busy connection keeps its greenlet (switching to it is far
        cheaper than starting one per message); False once it went quiet or
        ended."""
        watcher, timer = self._watcher, self._idle_timer
        if watcher is None or self._ended:
            return False
        if timer is not None:
            timer.close()
        # A new timer per wait: libev keeps what is left of a stopped timer,
        # so restarting one would go on from there (and after an expiry fire
        # at once): every connection that had waited a second in all then
        # parked, and cost a greenlet spawn, after every message.
        timer = self._idle_timer = watcher.loop.timer(PARK_AFTER)
        waiter = self._waiter = Waiter()
        watcher.start(waiter.switch, True)
        timer.start(waiter.switch, False)
        try:
            return waiter.get() and not self._ended
        finally:
            self._waiter = None
            watcher.stop()
            timer.stop()

    def _stop_delivering(self) -> None:
        """No more messages go to the consumer; its ``on_end`` runs once."""
        self._on_message = None
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()

    def _release_fd(self) -> None:
        """Close a parked connection's descriptor once it is shut and nothing
        may still touch it (its number may then be reused at once)."""
        if self._owns_fd and self._shut and not self._pumping and self._writer is None:
            self._owns_fd = False
            watcher, self._watcher = self._watcher, None
            if watcher is not None:
                watcher.stop()
                watcher.close()
            timer, self._idle_timer = self._idle_timer, None
            if timer is not None:
                timer.stop()
                timer.close()
            self._sock.close()

    # ------------------------------------------------------------ writing
    def send(self, message: Union[Message, PreparedMessage]) -> None:
        """Send a message: ``str`` as text, ``bytes`` as binary, or a
        :class:`PreparedMessage`.  Waits (cooperatively) while more than
        ``write_limit`` bytes are buffered.  Raises :class:`ConnectionClosed`
        if the connection is closing or closed."""
        proto = self.protocol
        if self._ended or proto.state is not State.OPEN:
            raise ConnectionClosed(self._close_reason, code=self._close_code or 1006)
        if len(self._out) > self.write_limit and gevent.getcurrent() is not gevent.get_hub():
            self._drained.wait()
            if self._ended or proto.state is not State.OPEN:
                raise ConnectionClosed(self._close_reason, code=self._close_code or 1006)
        self._push(self._frame(message))

    def send_many(self, messages: Sequence[Union[Message, PreparedMessage]]) -> None:
        """Send several messages, each its own frame, in one write (what
        ``send`` would do for each, without waiting on ``write_limit``: for
        hub callbacks that hand over a batch).  Raises
        :class:`ConnectionClosed` if the connection is closing or closed."""
        proto = self.protocol
        if self._ended or proto.state is not State.OPEN:
            raise ConnectionClosed(self._close_reason, code=self._close_code or 1006)
        frames = [self._frame(message) for message in messages]
        if frames:
            self._push(frames[0] if len(frames) == 1 else b"".join(frames))

    def _frame(self, message: Union[Message, PreparedMessage]) -> bytes:
        """The bytes of one message on this connection."""
        proto = self.protocol
        if isinstance(message, PreparedMessage):
            # Its frame goes straight out: the protocol keeps no state for
            # data frames, and its own output is always taken at once.
            return message.frame_for(proto)
        if isinstance(message, str):
            proto.send_text(message)
        else:
            proto.send_binary(message)
        return proto.data_to_send()

    def ping(self, payload: bytes = b"") -> None:
        """Send a ping (the pong is not waited for).  Raises ConnectionClosed."""
        if self.closed:
            raise ConnectionClosed(self._close_reason, code=self._close_code or 1006)
        self.protocol.send_ping(payload)
        self._push(self.protocol.data_to_send())

    def _push(self, data: bytes) -> None:
        """Queue bytes for the socket (the only way anything is written)."""
        if not data or self._shut:
            return
        self._queued += len(data)
        if self._writer is None and not self._out:
            # Nothing is waiting: write from ``data`` itself, and buffer only
            # what the socket does not take now (with its deadline).
            try:
                sent = os.write(self._fd, data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._abort("connection lost", "the peer is gone")
                return
            self._written += sent
            if sent == len(data):
                if self._pong_due is not None or self._ended:
                    self._on_drained(backlog=False)
                return
            self._out += memoryview(data)[sent:]
            self._deadlines.append((self._queued, time.monotonic() + self.write_timeout))
            self._drained.clear()
            self._writer = gevent.spawn(self._write_rest)
            return
        self._out += data
        self._deadlines.append((self._queued, time.monotonic() + self.write_timeout))
        if self._writer is None:
            self._write()

    def _write(self) -> bool:
        """Write what the socket takes now, without waiting.  Returns False if
        the connection was aborted; starts the writer greenlet for the rest."""
        out = self._out
        try:
            sent = os.write(self._fd, out)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._abort("connection lost", "the peer is gone")
            return False
        if sent:
            del out[:sent]
            self._written += sent
            deadlines = self._deadlines
            while deadlines and deadlines[0][0] <= self._written:
                deadlines.pop(0)
        if out:
            self._drained.clear()
            if self._writer is None:
                self._writer = gevent.spawn(self._write_rest)
        else:
            self._on_drained(backlog=self._writer is not None)
        return True

    def _write_rest(self) -> None:
        """The writer greenlet: waits for writability, each wait bounded by
        the deadline of the oldest unwritten frame."""
        try:
            while self._out and not self._shut:
                timeout = self._deadlines[0][1] - time.monotonic() if self._deadlines else 0.0
                if timeout <= 0:
                    self._abort("write timeout", f"a write did not finish within {self.write_timeout} s")
                    return
                try:
                    wait_write(self._fd, timeout=timeout)
                except socket.timeout:
                    continue  # the deadline check above aborts
                except (OSError, ValueError):
                    self._abort("connection lost", "the socket failed")
                    return
                if not self._write():
                    return
        finally:
            self._writer = None
            self._release_fd()

    def _on_drained(self, backlog: bool) -> None:
        pong, self._pong_due = self._pong_due, None
        if pong is not None and self.protocol.state is not State.CLOSED:
            self.protocol.send_pong(pong)
            data = self.protocol.data_to_send()
            if data:
                self._push(data)
                return
        self._drained.set()
        if self._ended and not self._shut:
            self._shutdown(socket.SHUT_WR if self._half else socket.SHUT_RDWR)
        elif backlog and self.on_drained is not None:
            self.on_drained()

    # ------------------------------------------------------------ closing
    def close(self, code: int = 1000, reason: str = "", *, wait: bool = True) -> None:
        """Close: send one close frame, wait up to ``close_timeout`` seconds for
        the peer's, then shut the socket.  Safe to call more than once.

        ``wait=False`` (for hub callbacks, and while another greenlet
        iterates the connection): send the close frame now and return; the
        reader sees the peer's answer, and a timer shuts the socket if none
        comes within ``close_timeout``.  Raises ValueError for a code that
        may not be sent."""
        proto = self.protocol
        if self._ended:
            return
        proto.send_close(code, reason)
        self._push(proto.data_to_send())
        if not wait or self._watcher is not None:  # parked: the watcher sees the answer
            if self._close_timer is None and not self._ended:
                self._close_timer = gevent.get_hub().loop.timer(self.close_timeout)
                self._close_timer.start(self._close_expired)
            return
        deadline = time.monotonic() + self.close_timeout
        if self._reading or self._closing:
            # Another greenlet reads: it will see the peer's close frame.
            self._done.wait(self.close_timeout)
        else:
            self._closing = True
            try:
                while not self._ended:
                    self._read_once(deadline)
                    self._pending.clear()  # messages after our close are dropped
            except TimeoutError:
                pass
        if not self._ended:
            self._close_code = 1006
            self._end()
            self._shutdown(socket.SHUT_RDWR)

    def _close_expired(self) -> None:
        """The peer did not answer our close frame in time (a hub callback)."""
        self._close_timer = None
        if not self._ended:
            self._close_code = 1006
            self._end()
            self._shutdown(socket.SHUT_RDWR)

    def _end(self, half: bool = False) -> None:
        """The one ending.  The socket is shut once what is buffered (our close
        frame) is written, or at its write deadline.  ``half`` (after a
        protocol violation): the peer's bytes can no longer be parsed, so send
        FIN after our close frame and wait, bounded, for the peer's EOF."""
        if self._ended:
            return
        self._ended = True
        self._half = half
        timer, self._close_timer = self._close_timer, None
        if timer is not None:
            timer.stop()
        self._done.set()
        self._drained.set()  # senders waiting for room find the connection closed
        if self._close_code is None:
            self._close_code = self.protocol.close_code or 1006
        watcher = self._watcher
        if watcher is not None and not self._pumping:
            watcher.stop()
            self._pumping = True
            gevent.spawn(self._pump)  # runs on_end, then lets the descriptor go
        elif self._waiter is not None:  # the pump waits for input: it ends now
            watcher.loop.run_callback(self._waiter.switch, False)
        if half:
            if not self._out:
                self._shutdown(socket.SHUT_WR)
            self._linger()
            self._shutdown(socket.SHUT_RDWR)
        elif not self._out:
            self._shutdown(socket.SHUT_RDWR)

    def _linger(self) -> None:
        deadline = time.monotonic() + self.close_timeout
        try:
            while not self._shut:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                with gevent.Timeout(remaining, False):
                    if not self._read(_RECV_SIZE):
                        return
        except (OSError, ValueError, RuntimeError):
            pass

    def abort(self, code: Optional[int] = None, reason: str = "") -> None:
        """Drop the connection now, waiting for nothing (callable from a hub
        callback): for a peer that must not hold us up.  A close frame with
        ``code`` goes first if nothing else is waiting to be written."""
        if self._ended:
            return
        proto = self.protocol
        if code is not None and not self._out and proto.state is State.OPEN:
            proto.send_close(code, reason)
            self._push(proto.data_to_send())  # one non-blocking attempt
        self._abort("aborted", f"closed without a handshake ({reason or code})")

    def _abort(self, kind: str, why: str) -> None:
        """A write failed or missed its deadline (or :meth:`abort`): drop the
        connection now."""
        if self.aborted is None and not self._ended:
            self.aborted = kind
        if not self._shut:
            log.info("websocket %s: aborted: %s", self.peer, why)
        self._out.clear()
        self._deadlines.clear()
        if self._close_code is None:
            self._close_code = 1006
        self.protocol.receive_eof()
        self._end()
        self._shutdown(socket.SHUT_RDWR)

    def _shutdown(self, how: int) -> None:
        if self._shut:
            return
        if how == socket.SHUT_RDWR:
            self._shut = True
        try:
            self._sock.shutdown(how)
        except OSError:
            pass
        self._release_fd()
