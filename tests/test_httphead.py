"""The request header reader (socketio_wsgi.httphead): plain calls, then the
server answering hostile header sections on a real socket."""
from __future__ import annotations

import io
import socket
import time

import pytest

from socketio_wsgi.client import Client
from socketio_wsgi.httphead import MAX_FIELDS, MAX_LINE, read_headers


def read(raw: bytes):
    rfile = io.BufferedReader(io.BytesIO(raw))
    message = read_headers(rfile)
    return message, rfile.read()


def test_fields_are_read_up_to_the_empty_line_and_no_further():
    message, rest = read(b"Host: a\r\nContent-Length: 5\r\nX-Odd:  spaced value \t\r\n\r\nhello")
    assert message.status == ""
    assert message.get("host") == "a"
    assert message.getheader("content-length") == "5"
    assert message["X-ODD"] == "spaced value"
    assert rest == b"hello"  # the body stays for the server


def test_repeated_fields_are_all_kept_in_order():
    message, _ = read(b"Cookie: a=1\r\nAccept: x\r\nCookie: b=2\r\n\r\n")
    assert message.get_all("cookie") == ["a=1", "b=2"]
    assert list(message.headers) == ["Cookie: a=1\r\n", "Accept: x\r\n", "Cookie: b=2\r\n"]


def test_bare_newlines_and_an_empty_value_are_accepted():
    message, rest = read(b"A:\nB: 2\n\nbody")
    assert (message.status, message.get("a"), message.get("b"), rest) == ("", "", "2", b"body")


def test_a_folded_line_joins_the_previous_value():
    message, _ = read(b"X-Long: one\r\n  two\r\n\tthree\r\nY: 1\r\n\r\n")
    assert message.get("x-long") == "one two three"
    assert message.get("y") == "1"


def test_values_are_latin_1_as_pywsgi_had_them():
    message, _ = read("X-Name: caf\u00e9\r\n\r\n".encode("latin-1"))
    assert message.get("x-name") == "caf\u00e9"


@pytest.mark.parametrize("raw, why", [
    (b"no colon here\r\n\r\n", "Invalid header line"),
    (b": no name\r\n\r\n", "Invalid header line"),
    (b"Host : a\r\n\r\n", "Invalid header line"),  # RFC 9112: whitespace before the colon
    (b" folded first\r\n\r\n", "continuation of nothing"),
    (b"X: " + b"y" * MAX_LINE + b"\r\n\r\n", "Line too long"),
    (b"".join(b"X-%d: v\r\n" % i for i in range(MAX_FIELDS + 1)) + b"\r\n", "Too many headers"),
])
def test_what_the_server_must_refuse_comes_back_with_a_status(raw, why):
    message, _ = read(raw)
    assert why in message.status


def test_the_limits_themselves_are_accepted():
    message, _ = read(b"".join(b"X-%d: v\r\n" % i for i in range(MAX_FIELDS)) + b"\r\n")
    assert message.status == "" and len(message) == MAX_FIELDS
    line = b"X: " + b"y" * (MAX_LINE - 5) + b"\r\n"
    assert len(line) == MAX_LINE
    message, _ = read(line + b"\r\n")
    assert message.status == "" and len(message.get("x")) == MAX_LINE - 5


def test_a_line_longer_than_the_limit_is_not_read_whole():
    """The reader stops at the limit: a client cannot make it buffer more."""
    rfile = io.BufferedReader(io.BytesIO(b"X: " + b"y" * (4 * MAX_LINE) + b"\r\n\r\n"))
    assert read_headers(rfile).status == "Line too long"
    assert len(rfile.read()) > 2 * MAX_LINE  # the rest was never consumed


# -- on a real socket ---------------------------------------------------------------------
def exchange(port: int, raw: bytes, timeout: float = 5.0) -> bytes:
    """Send ``raw``, read until the server closes (or ``timeout``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize("head", [
    b"no colon here\r\n",
    b"Host : a\r\n",
    b"X: " + b"y" * (MAX_LINE + 10) + b"\r\n",
    b"".join(b"X-%d: v\r\n" % i for i in range(MAX_FIELDS + 1)),
])
def test_the_server_answers_a_bad_header_section_400_and_closes(make_server_thread, head):
    server = make_server_thread()
    answer = exchange(server.port, b"GET /socket.io/xhr-polling//1 HTTP/1.1\r\n" + head + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    # a bystander session is served as before
    client = Client(server.url, transport="xhr-polling", timeout=5)
    client.connect()
    client.send("still here")
    client.disconnect()


def test_the_server_reads_folded_and_repeated_fields(make_server_thread):
    server = make_server_thread()
    seen = []
    server.on("on_connect", lambda request, socket, context: seen.append(
        (request.environ.get("HTTP_X_FOLDED"), request.environ.get("HTTP_X_TWICE"))))
    answer = exchange(server.port, b"GET /socket.io/xhr-polling//1 HTTP/1.1\r\nHost: t\r\n"
                      b"X-Folded: a\r\n b\r\nX-Twice: 1\r\nX-Twice: 2\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert seen == [("a b", "1,2")]  # pywsgi joins repeated fields with a comma
