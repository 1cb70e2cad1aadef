"""Tests of the RFC 6455 framing in socketio_wsgi.wsframes (no sockets)."""
from __future__ import annotations

import io
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socketio_wsgi.errors import ConnectionClosed, MessageTooLarge, ProtocolError
from socketio_wsgi.wsframes import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                                    FRAME_COST, FrameError, MessageReader,
                                    build_frame, check_close, close_payload,
                                    parse_close, unmask)

FUZZ = settings(max_examples=300, deadline=None)
MiB = 1024 * 1024


def raw_frame(opcode: int, payload: bytes = b"", fin: bool = True, mask: bytes | None = None,
              rsv: int = 0, length: int | None = None) -> bytes:
    """Build any frame by hand, including invalid ones."""
    n = len(payload) if length is None else length
    first = (0x80 if fin else 0) | rsv | opcode
    mask_bit = 0x80 if mask is not None else 0
    if n < 126:
        header = struct.pack("!BB", first, mask_bit | n)
    elif n <= 0xFFFF:
        header = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, n)
    if mask is not None:
        return header + mask + naive_xor(payload, mask)
    return header + payload


def naive_xor(data: bytes, mask: bytes) -> bytes:
    return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, opcode, payload):
        self.calls.append((opcode, payload))


def reader_for(data: bytes, max_size: int = 2 * MiB, server: bool = False, on_control=None):
    return MessageReader(io.BytesIO(data).read, max_size, expect_masked=server,
                         on_control=on_control or Recorder())


def trickle(data: bytes):
    """A read() that hands out at most one byte per call (short reads)."""
    stream = io.BytesIO(data)
    return lambda n: stream.read(min(n, 1))


# --------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------

LENGTHS = [0, 1, 125, 126, 127, 65535, 65536, MiB]


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("masked", [False, True], ids=["server-to-client", "client-to-server"])
def test_round_trip(length, masked):
    payload = os.urandom(length)
    frame = build_frame(OP_BINARY, payload, masked=masked)
    reader = reader_for(frame, server=masked)
    assert reader.read_message() == (OP_BINARY, payload)
    with pytest.raises(ConnectionClosed):
        reader.read_message()  # nothing left: EOF


@pytest.mark.parametrize("length, header_len", [
    (0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10), (MiB, 10)])
def test_build_frame_length_encoding(length, header_len):
    frame = build_frame(OP_TEXT, b"x" * length)
    assert len(frame) == header_len + length
    assert frame[0] == 0x80 | OP_TEXT
    assert frame[1] & 0x80 == 0
    masked = build_frame(OP_TEXT, b"x" * length, masked=True)
    assert len(masked) == header_len + 4 + length
    assert masked[1] & 0x80


def test_build_frame_masks_with_a_fresh_key():
    payload = b"hello world" * 10
    a = build_frame(OP_TEXT, payload, masked=True)
    b = build_frame(OP_TEXT, payload, masked=True)
    assert a[2:6] != b[2:6] or a == b  # keys are random (equal with chance 2**-32)
    assert naive_xor(a[6:], a[2:6]) == payload
    assert build_frame(OP_TEXT, payload) == b"\x81" + bytes([len(payload)]) + payload


def test_text_round_trip_utf8():
    text = "~m~2~m~😀 é 日本"
    frame = build_frame(OP_TEXT, text.encode("utf-8"), masked=True)
    assert reader_for(frame, server=True).read_message() == (OP_TEXT, text.encode("utf-8"))


@pytest.mark.parametrize("masked", [False, True])
def test_short_reads(masked):
    payload = os.urandom(70000)
    frame = build_frame(OP_TEXT, payload, masked=masked)
    reader = MessageReader(trickle(frame), 2 * MiB, expect_masked=masked, on_control=Recorder())
    assert reader.read_message() == (OP_TEXT, payload)


def test_several_messages_in_sequence():
    frames = b"".join(build_frame(OP_TEXT, f"m{i}".encode(), masked=True) for i in range(5))
    reader = reader_for(frames, server=True)
    assert [reader.read_message()[1] for _ in range(5)] == [b"m0", b"m1", b"m2", b"m3", b"m4"]


def test_exact_limit_is_accepted():
    payload = b"a" * 1000
    assert reader_for(build_frame(OP_TEXT, payload), max_size=1000).read_message()[1] == payload


# --------------------------------------------------------------------------
# Fragmentation and control frames
# --------------------------------------------------------------------------

@pytest.mark.parametrize("masked", [False, True])
def test_fragments_are_joined(masked):
    mask = b"\x01\x02\x03\x04" if masked else None
    data = (raw_frame(OP_TEXT, b"Hel", fin=False, mask=mask)
            + raw_frame(OP_CONT, b"", fin=False, mask=mask)
            + raw_frame(OP_CONT, b"lo ", fin=False, mask=mask)
            + raw_frame(OP_CONT, b"world", fin=True, mask=mask))
    assert reader_for(data, server=masked).read_message() == (OP_TEXT, b"Hello world")


def test_binary_fragments_keep_the_first_opcode():
    data = raw_frame(OP_BINARY, b"\x00\x01", fin=False) + raw_frame(OP_CONT, b"\xff")
    assert reader_for(data).read_message() == (OP_BINARY, b"\x00\x01\xff")


def test_control_frames_interleaved_with_fragments():
    recorder = Recorder()
    data = (raw_frame(OP_PING, b"p1")
            + raw_frame(OP_TEXT, b"ab", fin=False)
            + raw_frame(OP_PING, b"p2")
            + raw_frame(OP_CONT, b"cd", fin=False)
            + raw_frame(OP_PONG, b"")
            + raw_frame(OP_CONT, b"ef")
            + raw_frame(OP_PING, b"after"))
    reader = reader_for(data, on_control=recorder)
    assert reader.read_message() == (OP_TEXT, b"abcdef")
    assert recorder.calls == [(OP_PING, b"p1"), (OP_PING, b"p2"), (OP_PONG, b"")]
    with pytest.raises(ConnectionClosed):
        reader.read_message()
    assert recorder.calls[-1] == (OP_PING, b"after")


def test_masked_control_frame_payload_is_unmasked():
    recorder = Recorder()
    data = raw_frame(OP_PING, b"ping!", mask=b"\xaa\xbb\xcc\xdd") + build_frame(
        OP_TEXT, b"x", masked=True)
    assert reader_for(data, server=True, on_control=recorder).read_message() == (OP_TEXT, b"x")
    assert recorder.calls == [(OP_PING, b"ping!")]


def test_control_frame_of_125_bytes_is_allowed():
    recorder = Recorder()
    data = raw_frame(OP_PING, b"z" * 125) + raw_frame(OP_TEXT, b"ok")
    assert reader_for(data, on_control=recorder).read_message() == (OP_TEXT, b"ok")
    assert recorder.calls == [(OP_PING, b"z" * 125)]


# --------------------------------------------------------------------------
# Size limits are checked from the header, before the payload is read
# --------------------------------------------------------------------------

class GuardedRead:
    """Serves ``allowed`` bytes; asking for anything more fails the test."""

    def __init__(self, allowed: bytes):
        self.stream = io.BytesIO(allowed)
        self.remaining = len(allowed)

    def __call__(self, n: int) -> bytes:
        if self.remaining <= 0:
            raise AssertionError(f"the reader asked for {n} payload bytes of an oversize frame")
        data = self.stream.read(n)
        self.remaining -= len(data)
        return data


@pytest.mark.parametrize("declared", [1001, 65536, 2 ** 30, 2 ** 63 - 1])
@pytest.mark.parametrize("masked", [False, True])
def test_oversize_refused_before_reading_payload(declared, masked):
    mask = b"\x00\x11\x22\x33" if masked else None
    header = raw_frame(OP_TEXT, b"", mask=mask, length=declared)
    reader = MessageReader(GuardedRead(header), 1000, expect_masked=masked, on_control=Recorder())
    with pytest.raises(MessageTooLarge) as info:
        reader.read_message()
    assert info.value.close_code == 1009
    assert info.value.size == declared
    assert info.value.limit == 1000
    assert isinstance(info.value, ProtocolError)


def test_oversize_fragmented_message_refused_at_the_fragment_header():
    first = raw_frame(OP_TEXT, b"a" * 600, fin=False)
    second_header = raw_frame(OP_CONT, b"", length=600)
    reader = MessageReader(GuardedRead(first + second_header), 1000, expect_masked=False,
                           on_control=Recorder())
    with pytest.raises(MessageTooLarge) as info:
        reader.read_message()
    assert info.value.size == 1200 + FRAME_COST  # each continuation frame costs FRAME_COST too


def test_many_small_fragments_count_towards_the_limit():
    data = b"".join(raw_frame(OP_TEXT if i == 0 else OP_CONT, b"x" * 100, fin=False)
                    for i in range(20))
    with pytest.raises(MessageTooLarge):
        reader_for(data, max_size=1000).read_message()


# --------------------------------------------------------------------------
# Protocol violations
# --------------------------------------------------------------------------

@pytest.mark.parametrize("opcode", [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_unknown_opcodes(opcode):
    with pytest.raises(FrameError) as info:
        reader_for(raw_frame(opcode, b"x")).read_message()
    assert info.value.code == 1002


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10, 0x70])
def test_reserved_bits(rsv):
    with pytest.raises(FrameError):
        reader_for(raw_frame(OP_TEXT, b"x", rsv=rsv)).read_message()


def test_unmasked_frame_from_a_client_is_refused():
    with pytest.raises(FrameError):
        reader_for(build_frame(OP_TEXT, b"hi", masked=False), server=True).read_message()


def test_masked_frame_from_a_server_is_refused():
    with pytest.raises(FrameError):
        reader_for(build_frame(OP_TEXT, b"hi", masked=True), server=False).read_message()


def test_unmasked_control_frame_from_a_client_is_refused():
    data = raw_frame(OP_PING, b"") + build_frame(OP_TEXT, b"x", masked=True)
    with pytest.raises(FrameError):
        reader_for(data, server=True).read_message()


def test_fragmented_control_frame_is_refused():
    with pytest.raises(FrameError):
        reader_for(raw_frame(OP_PING, b"x", fin=False)).read_message()


@pytest.mark.parametrize("length", [126, 65536])
def test_long_control_frame_is_refused_from_the_header(length):
    header = raw_frame(OP_PING, b"", length=length)[:2]
    reader = MessageReader(GuardedRead(header), MiB, expect_masked=False, on_control=Recorder())
    with pytest.raises(FrameError):
        reader.read_message()


def test_continuation_without_a_message():
    with pytest.raises(FrameError):
        reader_for(raw_frame(OP_CONT, b"x")).read_message()


def test_new_message_before_the_last_one_ended():
    data = raw_frame(OP_TEXT, b"a", fin=False) + raw_frame(OP_TEXT, b"b")
    with pytest.raises(FrameError):
        reader_for(data).read_message()


def test_frame_error_carries_a_close_code():
    assert FrameError("x").code == 1002
    assert FrameError("x", 1007).code == 1007


# --------------------------------------------------------------------------
# Close and EOF
# --------------------------------------------------------------------------

def test_close_frame_raises_with_code_and_reason():
    data = build_frame(OP_CLOSE, close_payload(1001, "going away"))
    with pytest.raises(ConnectionClosed) as info:
        reader_for(data).read_message()
    assert info.value.code == 1001
    assert info.value.reason == "going away"


def test_masked_close_frame_from_a_client():
    data = build_frame(OP_CLOSE, close_payload(1000), masked=True)
    with pytest.raises(ConnectionClosed) as info:
        reader_for(data, server=True).read_message()
    assert (info.value.code, info.value.reason) == (1000, "")


def test_close_frame_without_a_code():
    with pytest.raises(ConnectionClosed) as info:
        reader_for(raw_frame(OP_CLOSE, b"")).read_message()
    assert info.value.code == 1005  # "no status code was present"


def test_close_frame_in_the_middle_of_a_fragmented_message():
    data = raw_frame(OP_TEXT, b"a", fin=False) + build_frame(OP_CLOSE, close_payload(4403, "no"))
    with pytest.raises(ConnectionClosed) as info:
        reader_for(data).read_message()
    assert (info.value.code, info.value.reason) == (4403, "no")


def test_close_does_not_call_on_control():
    recorder = Recorder()
    with pytest.raises(ConnectionClosed):
        reader_for(build_frame(OP_CLOSE, close_payload(1000)), on_control=recorder).read_message()
    assert recorder.calls == []


@pytest.mark.parametrize("cut", [0, 1, 2, 3, 5, 9, 10, 100])
def test_eof_raises_connection_closed(cut):
    frame = build_frame(OP_TEXT, b"x" * 300)
    with pytest.raises(ConnectionClosed) as info:
        reader_for(frame[:cut]).read_message()
    assert info.value.code == 1006


def test_eof_during_trickled_payload():
    frame = build_frame(OP_TEXT, b"x" * 300, masked=True)[:-1]
    reader = MessageReader(trickle(frame), MiB, expect_masked=True, on_control=Recorder())
    with pytest.raises(ConnectionClosed):
        reader.read_message()


def test_close_payload_and_parse_close():
    assert close_payload(1000) == b"\x03\xe8"
    assert parse_close(close_payload(1011, "boom")) == (1011, "boom")
    assert parse_close(b"") == (None, "")
    assert parse_close(b"\x03") == (None, "")
    assert len(close_payload(1000, "é" * 200)) <= 125  # fits a control frame
    assert parse_close(b"\x03\xe8\xff") == (1000, "\ufffd")


# --------------------------------------------------------------------------
# Masking
# --------------------------------------------------------------------------

@FUZZ
@given(st.binary(max_size=2000), st.binary(min_size=4, max_size=4))
def test_unmask_matches_naive_xor(data, mask):
    assert unmask(data, mask) == naive_xor(data, mask)
    assert unmask(unmask(data, mask), mask) == data


@FUZZ
@given(st.binary(max_size=3000), st.booleans(), st.sampled_from([OP_TEXT, OP_BINARY]))
def test_round_trip_property(payload, masked, opcode):
    frame = build_frame(opcode, payload, masked=masked)
    assert reader_for(frame, server=masked).read_message() == (opcode, payload)


@FUZZ
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=6), st.booleans())
def test_fragmentation_property(parts, masked):
    mask = b"\x5a\xa5\x0f\xf0" if masked else None
    data = b"".join(
        raw_frame(OP_TEXT if i == 0 else OP_CONT, part, fin=(i == len(parts) - 1), mask=mask)
        for i, part in enumerate(parts))
    assert reader_for(data, server=masked).read_message() == (OP_TEXT, b"".join(parts))


@FUZZ
@given(st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_framing_errors(data):
    for server in (False, True):
        reader = reader_for(data, max_size=1000, server=server)
        try:
            while True:
                reader.read_message()
        except (ProtocolError, ConnectionClosed):  # FrameError, MessageTooLarge, a close
            pass


@pytest.mark.parametrize("payload, code", [
    (b"\x03", 1002), ((999).to_bytes(2, "big"), 1002), ((1005).to_bytes(2, "big"), 1002),
    ((1015).to_bytes(2, "big"), 1002), ((1000).to_bytes(2, "big") + b"\xff", 1007)])
def test_invalid_close_frames_are_protocol_errors(payload, code):
    with pytest.raises(FrameError) as info:
        reader_for(raw_frame(OP_CLOSE, payload)).read_message()
    assert info.value.code == code
    with pytest.raises(FrameError):
        check_close(payload)


def test_zero_length_fragments_exhaust_the_limit():
    data = raw_frame(OP_TEXT, b"", fin=False) + raw_frame(OP_CONT, b"", fin=False) * 200
    with pytest.raises(MessageTooLarge):
        reader_for(data, max_size=1000).read_message()
