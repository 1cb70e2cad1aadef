"""The pure websocket layer (socketio_wsgi.ws.protocol, .deflate, .handshake):
plain calls, no sockets, no gevent."""
from __future__ import annotations

import base64
import os
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socketio_wsgi.ws.connection import PreparedMessage
from socketio_wsgi.ws.deflate import Compression, Deflate, negotiate, parse_extensions
from socketio_wsgi.ws.handshake import HandshakeError, accept_key, check_request
from socketio_wsgi.ws.protocol import Close, InvalidState, Ping, Pong, Protocol, State
from socketio_wsgi.wsframes import (
    FRAME_COST,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    build_frame,
    close_payload,
)

MASK = b"\x12\x34\x56\x78"


def frame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0,
          masked: bool = True) -> bytes:
    """Any frame as a client would send it, valid or not."""
    n = len(payload)
    first = (0x80 if fin else 0) | rsv | opcode
    bit = 0x80 if masked else 0
    if n < 126:
        head = bytes([first, bit | n])
    elif n < 65536:
        head = bytes([first, bit | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([first, bit | 127]) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    return head + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


def server(**kw) -> Protocol:
    kw.setdefault("max_size", 1 << 20)
    return Protocol(**kw)


def feed(proto: Protocol, data: bytes) -> list:
    """Feed ``data`` and collect every event, parsing what waits after each message."""
    proto.receive_data(data)
    events = proto.events_received()
    while proto.input_pending:
        proto.receive_data(b"")
        events += proto.events_received()
    return events


def parse_server_frames(data: bytes) -> list:
    """(fin, rsv1, opcode, payload) of unmasked frames, as a client sees them."""
    out = []
    while data:
        b0, b1 = data[0], data[1]
        assert not b1 & 0x80, "a server must not mask"
        n, pos = b1 & 0x7F, 2
        if n == 126:
            n, pos = int.from_bytes(data[2:4], "big"), 4
        elif n == 127:
            n, pos = int.from_bytes(data[2:10], "big"), 10
        out.append((bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F, data[pos:pos + n]))
        data = data[pos + n:]
    return out


def sent_close(proto: Protocol):
    frames = [f for f in parse_server_frames(proto.data_to_send()) if f[2] == OP_CLOSE]
    assert len(frames) == 1, frames
    payload = frames[0][3]
    return int.from_bytes(payload[:2], "big") if payload else None


# ----------------------------------------------------------------- messages
def test_text_and_binary_messages():
    p = server()
    assert feed(p, frame(OP_TEXT, "héllo 😀".encode()) + frame(OP_BINARY, b"\x00\xff")) == [
        "héllo 😀", b"\x00\xff"]
    assert p.state is State.OPEN and p.data_to_send() == b""


def test_one_message_per_parse_step():
    p = server()
    p.receive_data(frame(OP_TEXT, b"a") + frame(OP_TEXT, b"b"))
    assert p.events_received() == ["a"]
    assert p.input_pending
    p.receive_data(b"")
    assert p.events_received() == ["b"]
    assert not p.input_pending


def test_fed_one_byte_at_a_time():
    data = (frame(OP_TEXT, b"Hel", fin=False) + frame(OP_PING, b"p") + frame(OP_CONT, b"lo")
            + frame(OP_BINARY, os.urandom(300)))
    p = server()
    events = []
    for i in range(len(data)):
        events += feed(p, data[i:i + 1])
    assert events[0].payload == b"p" and isinstance(events[0], Ping)
    assert events[1] == "Hello"
    assert isinstance(events[2], bytes) and len(events[2]) == 300


def test_fragments_with_empty_parts_and_interleaved_control_frames():
    p = server()
    data = (frame(OP_BINARY, b"ab", fin=False) + frame(OP_CONT, b"", fin=False)
            + frame(OP_PONG, b"x") + frame(OP_CONT, b"cd"))
    events = feed(p, data)
    assert isinstance(events[0], Pong) and events[1] == b"abcd"


@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=6))
@settings(max_examples=150, deadline=None)
def test_fragmentation_property(payload, cuts):
    points = sorted({0, len(payload), *[min(c, len(payload)) for c in cuts]})
    parts = [payload[a:b] for a, b in zip(points, points[1:], strict=False)] or [b""]
    data = b"".join(frame(OP_BINARY if i == 0 else OP_CONT, part, fin=i == len(parts) - 1)
                    for i, part in enumerate(parts))
    assert feed(server(), data) == [payload]


# ------------------------------------------------------------------- limits
def test_size_limit_checked_from_the_header():
    p = server(max_size=1000)
    head = frame(OP_BINARY, b"x" * 1001)[:8]  # header only: the payload never comes
    feed(p, head)
    assert p.failure is not None and p.failure.code == 1009
    assert sent_close(p) == 1009


def test_exact_limit_in_one_frame_is_accepted():
    p = server(max_size=1000)
    assert feed(p, frame(OP_BINARY, b"x" * 1000)) == [b"x" * 1000]


def test_zero_length_fragments_exhaust_the_limit():
    max_size = 1000
    p = server(max_size=max_size)
    data = frame(OP_TEXT, b"", fin=False) + frame(OP_CONT, b"", fin=False) * (max_size // FRAME_COST + 1)
    feed(p, data)
    assert p.failure is not None and p.failure.code == 1009


def test_many_tiny_fragments_keep_one_buffer():
    p = server(max_size=10_000)
    data = frame(OP_BINARY, b"a", fin=False) + frame(OP_CONT, b"b", fin=False) * 500
    feed(p, data)
    assert p.failure is None
    # everything so far sits in one bytearray, no per-fragment objects
    assert isinstance(p._msg, bytearray) and len(p._msg) == 501
    assert feed(p, frame(OP_CONT, b"c")) == [b"a" + b"b" * 500 + b"c"]


# ---------------------------------------------------------------- violations
@pytest.mark.parametrize("data, code", [
    (frame(OP_TEXT, b"x", rsv=0x40), 1002),           # RSV1 without an extension
    (frame(OP_TEXT, b"x", rsv=0x20), 1002),
    (frame(OP_TEXT, b"x", rsv=0x10), 1002),
    (frame(3, b"x"), 1002), (frame(7, b"x"), 1002),   # reserved data opcodes
    (frame(0xB, b"x"), 1002), (frame(0xF, b"x"), 1002),  # reserved control opcodes
    (frame(OP_PING, b"x" * 126), 1002),                # control frame too long
    (frame(OP_PING, b"x", fin=False), 1002),           # fragmented control frame
    (frame(OP_PING, b"x", rsv=0x40), 1002),
    (frame(OP_CONT, b"x"), 1002),                      # nothing to continue
    (frame(OP_TEXT, b"a", fin=False) + frame(OP_TEXT, b"b"), 1002),  # nested message
    (frame(OP_TEXT, b"x", masked=False), 1002),        # a client must mask
    (frame(OP_TEXT, b"\xce\xba\xff"), 1007),           # not UTF-8
    (frame(OP_TEXT, b"\xed\xa0\x80"), 1007),           # a surrogate
])
def test_violations_fail_with_the_right_code(data, code):
    p = server()
    feed(p, data)
    assert p.failure is not None and p.failure.code == code
    assert p.state is State.CLOSING
    assert sent_close(p) == code
    assert feed(p, frame(OP_TEXT, b"ignored")) == []


def test_utf8_fails_fast_inside_a_frame_before_it_is_complete():
    p = server()
    whole = frame(OP_TEXT, b"\xce\xba\xe1\xbd\xb9" + b"\xf4\x90\x80\x80" + b"rest")
    feed(p, whole[:6 + 5])  # header, mask and the valid part
    assert p.failure is None
    feed(p, whole[11:13])  # the first two bytes of the invalid sequence
    assert p.failure is not None and p.failure.code == 1007


def test_utf8_fails_fast_on_a_fragment():
    p = server()
    feed(p, frame(OP_TEXT, b"ok", fin=False))
    feed(p, frame(OP_CONT, b"\xf4\x90", fin=False))
    assert p.failure is not None and p.failure.code == 1007


def test_utf8_sequence_split_across_fragments_is_valid():
    p = server()
    euro = "€".encode()
    assert feed(p, frame(OP_TEXT, euro[:1], fin=False) + frame(OP_CONT, euro[1:2], fin=False)
                + frame(OP_CONT, euro[2:])) == ["€"]


# -------------------------------------------------------------------- close
@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                                  1012, 1013, 1014, 3000, 3999, 4000, 4999])
def test_valid_close_codes_are_echoed(code):
    p = server()
    events = feed(p, frame(OP_CLOSE, close_payload(code, "bye")))
    assert isinstance(events[-1], Close) and (events[-1].code, events[-1].reason) == (code, "bye")
    assert p.state is State.CLOSED and p.close_expected
    assert sent_close(p) == code


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999,
                                  5000, 65535])
def test_invalid_close_codes_fail_with_1002(code):
    p = server()
    feed(p, frame(OP_CLOSE, code.to_bytes(2, "big")))
    assert p.failure is not None and p.failure.code == 1002
    assert sent_close(p) == 1002


def test_one_byte_close_payload_fails_with_1002():
    p = server()
    feed(p, frame(OP_CLOSE, b"\x03"))
    assert p.failure.code == 1002 and sent_close(p) == 1002


def test_close_reason_not_utf8_fails_with_1007():
    p = server()
    feed(p, frame(OP_CLOSE, (1000).to_bytes(2, "big") + b"\xff\xfe"))
    assert p.failure.code == 1007 and sent_close(p) == 1007


def test_empty_close_is_answered_with_an_empty_close():
    p = server()
    events = feed(p, frame(OP_CLOSE))
    assert events[-1].code == 1005 and p.close_code == 1005
    frames = parse_server_frames(p.data_to_send())
    assert frames == [(True, False, OP_CLOSE, b"")]


def test_our_close_then_the_peers():
    p = server()
    p.send_close(1001, "going")
    assert p.state is State.CLOSING
    assert parse_server_frames(p.data_to_send()) == [(True, False, OP_CLOSE, close_payload(1001, "going"))]
    p.send_close(1000)  # only once
    assert p.data_to_send() == b""
    feed(p, frame(OP_CLOSE, close_payload(1001)))
    assert p.state is State.CLOSED and p.data_to_send() == b""  # no second close frame


def test_sending_after_close_and_bad_codes():
    p = server()
    with pytest.raises(ValueError):
        p.send_close(1005)
    p.send_close()
    with pytest.raises(InvalidState):
        p.send_text("late")
    with pytest.raises(InvalidState):
        p.send_ping()


def test_eof_without_close_is_1006():
    p = server()
    p.receive_eof()
    assert p.state is State.CLOSED and p.close_code == 1006


def test_close_reason_is_cut_on_a_character_boundary():
    payload = close_payload(1000, "é" * 100)
    assert len(payload) <= 125
    payload[2:].decode("utf-8")


# ------------------------------------------------------------------- output
def test_server_frames_are_unmasked_and_ping_pong():
    p = server()
    p.send_text("hi")
    p.send_binary(b"\x01")
    p.send_ping(b"p")
    p.send_pong(b"q")
    assert parse_server_frames(p.data_to_send()) == [
        (True, False, OP_TEXT, b"hi"), (True, False, OP_BINARY, b"\x01"),
        (True, False, OP_PING, b"p"), (True, False, OP_PONG, b"q")]
    with pytest.raises(ValueError):
        p.send_ping(b"x" * 126)


def test_client_side_masks_and_round_trips():
    client = Protocol(client=True)
    srv = server()
    client.send_text("ping me")
    client.send_binary(b"\x00" * 70000)
    assert feed(srv, client.data_to_send()) == ["ping me", b"\x00" * 70000]


# ------------------------------------------------------------------- deflate
CHROMIUM_OFFER = "permessage-deflate; client_max_window_bits"


def test_negotiate_chromium_offer():
    response, deflate = negotiate(CHROMIUM_OFFER, Compression())
    assert response == ("permessage-deflate; server_no_context_takeover; "
                        "client_no_context_takeover")
    assert deflate.share_key is not None and deflate.remote_no_takeover


def test_negotiate_with_context_takeover_and_windows():
    options = Compression(server_no_context_takeover=False, client_no_context_takeover=False,
                          client_max_window_bits=12)
    response, deflate = negotiate(
        "permessage-deflate; server_max_window_bits=10; client_max_window_bits", options)
    assert response == "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12"
    assert deflate.local_window == 10 and deflate.share_key is None
    assert not deflate.remote_no_takeover
    # a client limit above our own window: announced as asked, ours is used
    response, deflate = negotiate("permessage-deflate; server_max_window_bits=14", Compression())
    assert response.endswith("server_max_window_bits=14") and deflate.local_window == 12


@pytest.mark.parametrize("offer", [
    "permessage-deflate; foo",                                   # unknown parameter
    "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; server_max_window_bits=16",
    "permessage-deflate; server_max_window_bits",                # value required
    "permessage-deflate; server_max_window_bits=8",              # zlib cannot
    "permessage-deflate; client_max_window_bits=7",
    "permessage-deflate; client_no_context_takeover=1",
    "x-webkit-deflate-frame",
    'permessage-deflate; server_max_window_bits="1 0"',
])
def test_unacceptable_offers_are_declined(offer):
    assert negotiate(offer, Compression()) is None


def test_first_acceptable_offer_wins():
    response, _ = negotiate("permessage-deflate; server_max_window_bits=8, "
                            "permessage-deflate; client_no_context_takeover", Compression())
    assert response == "permessage-deflate; server_no_context_takeover; client_no_context_takeover"


def test_quoted_values_and_parse_errors():
    assert parse_extensions('permessage-deflate; server_max_window_bits="10"') == [
        ("permessage-deflate", [("server_max_window_bits", "10")])]
    with pytest.raises(ValueError):
        parse_extensions("a; =1")


def deflate_pair(**kw):
    srv = Protocol(deflate=Deflate(**kw))
    cli = Protocol(client=True, deflate=Deflate(**kw))
    return srv, cli


@pytest.mark.parametrize("takeover", [False, True])
def test_compressed_messages_both_ways(takeover):
    srv, cli = deflate_pair(local_no_takeover=not takeover, remote_no_takeover=not takeover,
                            threshold=10)
    messages = ["short", "x" * 5000, "é" * 3000, "y" * 5000]
    for m in messages:
        cli.send_text(m)
    wire = cli.data_to_send()
    assert len(wire) < 2000  # it really was compressed
    assert feed(srv, wire) == messages
    for m in messages:
        srv.send_text(m)
    frames = parse_server_frames(srv.data_to_send())
    assert [f[1] for f in frames] == [False, True, True, True]  # "short" is under the threshold
    assert feed(cli, b"".join(build_frame(f[2], f[3], rsv1=f[1]) for f in frames)) == messages


def test_compressed_message_in_fragments():
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = comp.compress(b"hello " * 1000) + comp.flush(zlib.Z_SYNC_FLUSH)
    data = data[:-4]
    srv = Protocol(deflate=Deflate())
    wire = (frame(OP_TEXT, data[:10], fin=False, rsv=0x40) + frame(OP_CONT, data[10:20], fin=False)
            + frame(OP_CONT, data[20:]))
    assert feed(srv, wire) == ["hello " * 1000]


def test_rsv1_on_a_continuation_frame_fails():
    srv = Protocol(deflate=Deflate())
    feed(srv, frame(OP_TEXT, b"a", fin=False) + frame(OP_CONT, b"b", rsv=0x40))
    assert srv.failure.code == 1002


def test_decompression_bomb_stops_at_the_limit():
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = bomb.compress(b"\x00" * (64 << 20)) + bomb.flush(zlib.Z_SYNC_FLUSH)
    data = data[:-4]
    assert len(data) < 100_000
    produced = []

    class Spy(Deflate):
        __slots__ = ()

        def decompress(self, chunk, final, max_length):
            out = super().decompress(chunk, final, max_length)
            produced.append(len(out))
            return out

    deflate = Spy()
    srv = Protocol(max_size=1 << 20, deflate=deflate)
    feed(srv, frame(OP_BINARY, data, rsv=0x40))
    assert srv.failure is not None and srv.failure.code == 1009
    assert sum(produced) <= (1 << 20) + 1  # never inflated past the limit


def test_corrupt_compressed_data_fails():
    srv = Protocol(deflate=Deflate())
    feed(srv, frame(OP_BINARY, b"\xff\xff\xff\xff", rsv=0x40))
    assert srv.failure is not None


# ------------------------------------------------------- prepared messages
def test_prepared_message_is_built_once_per_parameters():
    message = PreparedMessage("z" * 1000)
    a = Protocol(deflate=Deflate(local_no_takeover=True, threshold=10))
    b = Protocol(deflate=Deflate(local_no_takeover=True, threshold=10))
    plain1, plain2 = Protocol(), Protocol()
    assert message.frame_for(a) is message.frame_for(b)
    assert message.frame_for(plain1) is message.frame_for(plain2)
    assert len(message.frame_for(a)) < 100 < len(message.frame_for(plain1))
    cli = Protocol(client=True, deflate=Deflate())
    (fin, rsv1, op, payload), = parse_server_frames(message.frame_for(a))
    assert feed(cli, build_frame(op, payload, rsv1=rsv1)) == ["z" * 1000]
    # with context takeover the compressor state is per connection: not shared
    c = Protocol(deflate=Deflate(local_no_takeover=False, threshold=10))
    assert message.frame_for(c) is not message.frame_for(c)


# ------------------------------------------------------------------ handshake
def environ(**headers):
    env = {"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1",
           "HTTP_UPGRADE": "websocket", "HTTP_CONNECTION": "keep-alive, Upgrade",
           "HTTP_SEC_WEBSOCKET_VERSION": "13",
           "HTTP_SEC_WEBSOCKET_KEY": base64.b64encode(b"0123456789abcdef").decode()}
    for k, v in headers.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def test_valid_handshake_and_accept_key():
    assert check_request(environ()) == "MDEyMzQ1Njc4OWFiY2RlZg=="
    # RFC 6455 section 1.3's example
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("change, status", [
    ({"HTTP_SEC_WEBSOCKET_KEY": "abc"}, 400),
    ({"HTTP_SEC_WEBSOCKET_KEY": None}, 400),
    ({"HTTP_SEC_WEBSOCKET_KEY": base64.b64encode(b"x" * 15).decode()}, 400),
    ({"HTTP_SEC_WEBSOCKET_KEY": "!!!!!!!!!!!!!!!!!!!!!!=="}, 400),
    ({"HTTP_SEC_WEBSOCKET_VERSION": "99"}, 426),
    ({"HTTP_SEC_WEBSOCKET_VERSION": None}, 426),
    ({"HTTP_SEC_WEBSOCKET_KEY": "MDEyMzQ1Njc4OWFi\r\n Y2RlZg=="}, 400),  # obs-fold
    ({"HTTP_CONNECTION": None}, 400),
    ({"REQUEST_METHOD": "POST"}, 400),
    ({"SERVER_PROTOCOL": "HTTP/1.0"}, 400),
])
def test_malformed_handshakes(change, status):
    with pytest.raises(HandshakeError) as info:
        check_request(environ(**change))
    assert info.value.status == status
    if status == 426:
        assert ("Sec-WebSocket-Version", "13") in info.value.headers


def _outcome(proto: Protocol, chunks: list) -> tuple:
    events = []
    for chunk in chunks:
        events += feed(proto, chunk)
    return events, proto.state, proto.failure and proto.failure.code, proto.data_to_send()


@pytest.mark.parametrize("data", [
    frame(OP_TEXT, b""),
    frame(OP_TEXT, b"hello"),
    frame(OP_TEXT, "é😀".encode()),
    frame(OP_TEXT, b"x" * 125),
    frame(OP_TEXT, b"x" * 126),
    frame(OP_TEXT, b"x" * 65535),
    frame(OP_TEXT, b"x" * 65536),            # 64-bit length: the general parser
    frame(OP_TEXT, b"\xff\xfe"),             # invalid UTF-8: 1007
    frame(OP_TEXT, b"abc", masked=False),    # unmasked from a client: 1002
    frame(OP_TEXT, b"abc", fin=False),
    frame(OP_TEXT, b"abc", rsv=0x40),        # compressed without the extension
    frame(OP_BINARY, b"abc"),
    frame(OP_TEXT, b"abc") + frame(OP_TEXT, b"def"),
    frame(OP_TEXT, b"abc")[:-1],
])
def test_the_one_frame_shortcut_agrees_with_the_general_parser(data):
    # Fed whole, a lone small text frame takes the shortcut; fed a byte at a
    # time, it takes the general parser.  Both must end the same way.
    whole = _outcome(server(max_size=70_000), [data])
    bytewise = _outcome(server(max_size=70_000), [data[i:i + 1] for i in range(len(data))])
    assert whole == bytewise


def test_the_one_frame_shortcut_respects_max_size():
    events, state, code, _ = _outcome(server(max_size=10), [frame(OP_TEXT, b"x" * 11)])
    assert events == [] and code == 1009
