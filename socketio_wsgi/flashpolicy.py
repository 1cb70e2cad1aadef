"""The Flash socket policy for the ``flashsocket`` transport.

Before a Flash movie opens a TCP socket it asks the target host for a
*socket policy*: it connects, writes ``<policy-file-request/>`` plus a NUL
byte and expects an XML document naming the sites whose movies may connect.
The 0.6 client's Flash bridge asks on port 843 first; Flash may also ask on
the target port itself ("inline").

- :class:`FlashPolicyServer` answers on its own port (opt-in; 843 needs
  root, and a failed bind is logged, never raised).
- :class:`PolicyRequestMixin` lets a pywsgi handler answer the inline request
  on the HTTP port, which pywsgi alone cannot parse (it has no line end).

The policy lists only the allowed origins (:mod:`socketio_wsgi.origins`
entries), answers only after reading the request, and ends with a NUL byte.
"""

from __future__ import annotations

import errno
import logging
import re
from typing import Callable, Optional, Sequence, Tuple, Union
from xml.sax.saxutils import quoteattr

import gevent
from gevent.server import StreamServer

from .origins import _parse_entry

__all__ = ["POLICY_REQUEST", "policy_xml", "FlashPolicyServer", "PolicyRequestMixin"]

log = logging.getLogger("socketio_wsgi.flashpolicy")

#: What Flash sends: the tag and a terminating NUL byte (23 bytes).
POLICY_REQUEST = b"<policy-file-request/>\x00"
_DOMAIN = re.compile(r"^(\*|(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?|[0-9a-f.]*:[0-9a-f:.]*)$")
_PORTS = re.compile(r"^(\*|[0-9]{1,5}(-[0-9]{1,5})?(,[0-9]{1,5}(-[0-9]{1,5})?)*)$")
Origins = Union[None, str, Sequence[str]]


def policy_domains(origins: Origins) -> Tuple[str, ...]:
    """The ``domain`` values for ``origins`` (the middleware option).

    Flash policies know no origin ports or schemes, so an entry such as
    ``"https://example.com:8443"`` allows the host ``example.com``.  An entry
    for *any* host on one port or scheme (``"*:3000"``) would have to become
    ``domain="*"``, allowing far more than the option does, so it is left
    out.  ``None`` (same origin only) cannot be expressed without knowing the
    host: it allows nobody.
    """
    if origins is None:
        return ()
    if isinstance(origins, str):
        origins = [origins]
    domains = []
    for entry in origins:
        scheme, host, port = _parse_entry(entry)
        if host == "*":
            if scheme is None and port is None:
                return ("*",)
            log.warning(
                "flash policy leaves out origin entry %r: Flash cannot limit "
                "any-host entries to a port or scheme",
                entry,
            )
            continue
        if not _DOMAIN.match(host):
            raise ValueError(f"origin entry {entry!r} has no host usable in a Flash policy")
        if host not in domains:
            domains.append(host)
    return tuple(domains)


def policy_xml(origins: Origins, to_ports: str = "*") -> bytes:
    """The policy document (NUL-terminated) allowing ``origins`` to connect
    to ``to_ports`` of this host (``"*"``, ``"8000"``, ``"8000,9000-9010"``)."""
    if not _PORTS.match(to_ports):
        raise ValueError(f"to_ports {to_ports!r} is not '*' or a list of ports and ranges")
    lines = [
        '<?xml version="1.0"?>',
        '<!DOCTYPE cross-domain-policy SYSTEM "/xml/dtds/cross-domain-policy.dtd">',
        "<cross-domain-policy>",
    ]
    lines += [
        f"<allow-access-from domain={quoteattr(d)} to-ports={quoteattr(to_ports)}/>"
        for d in policy_domains(origins)
    ]
    lines.append("</cross-domain-policy>")
    return ("\n".join(lines) + "\n").encode("ascii") + b"\x00"


def _read_request(read: Callable[[int], bytes], limit: int = len(POLICY_REQUEST)) -> bytes:
    """Read with ``read(n)`` until the whole request, end of file, or a byte
    that shows it is not a policy request (then stop at once)."""
    data = b""
    while len(data) < limit:
        chunk = read(limit - len(data))
        if not chunk:
            break
        data += chunk
        if not POLICY_REQUEST.startswith(data):
            break
    return data


class FlashPolicyServer:
    """Serve the policy for ``origins`` on ``host:port`` (843 is where Flash looks).

    ``to_ports`` should name the port(s) of the Socket.IO server.  A client
    that does not send exactly :data:`POLICY_REQUEST` within ``read_timeout``
    seconds is disconnected without an answer.
    """

    def __init__(
        self,
        origins: Origins,
        port: int = 843,
        host: str = "0.0.0.0",
        to_ports: str = "*",
        read_timeout: float = 5.0,
    ):
        self.policy = policy_xml(origins, to_ports)
        self.host = host
        self.port = port
        self.read_timeout = read_timeout
        self._server: Optional[StreamServer] = None
        if not policy_domains(origins):
            log.warning(
                "flash policy allows no site: set the origins option to the sites whose pages use flashsocket"
            )

    @property
    def address(self) -> Optional[Tuple[str, int]]:
        """``(host, port)`` actually bound (the port is real even if 0 was asked), or None."""
        return None if self._server is None else self._server.address[:2]

    def start(self) -> bool:
        """Bind and serve in the current gevent hub; False (and a log line) on failure."""
        server = StreamServer((self.host, self.port), self._handle)
        try:
            server.start()
        except OSError as exc:
            if exc.errno == errno.EACCES and 0 < self.port < 1024:
                log.warning(
                    "flash policy server not started: port %d is privileged and needs "
                    "root (or CAP_NET_BIND_SERVICE); run it on another port or serve "
                    "the policy inline on the HTTP port",
                    self.port,
                )
            else:
                log.error("flash policy server not started on %s:%d: %s", self.host, self.port, exc)
            return False
        self._server = server
        log.info("flash policy server listening on %s:%d", *server.address[:2])
        return True

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(timeout=1)
            self._server = None

    def _handle(self, sock, address) -> None:
        try:
            with gevent.Timeout(self.read_timeout, False):
                if _read_request(sock.recv) == POLICY_REQUEST:
                    sock.sendall(self.policy)
        except OSError:
            pass
        finally:
            sock.close()


class PolicyRequestMixin:
    """For gevent pywsgi handlers: answer ``<policy-file-request/>\\0`` on the
    HTTP port when the server has a ``flash_policy`` attribute (the bytes of
    :func:`policy_xml`); with none set this costs nothing.

    An HTTP request line never starts with ``<``, so a peek at the first byte
    tells the two apart without consuming anything pywsgi needs.
    """

    rfile: object
    server: object
    socket: object

    def read_requestline(self):
        policy = getattr(self.server, "flash_policy", None)
        if policy and self.rfile.peek(1)[:1] == b"<":
            if _read_request(self.rfile.read1) == POLICY_REQUEST:
                self.socket.sendall(policy)
            return ""  # pywsgi closes the connection
        return super().read_requestline()
