"""Engine.IO v4 codec (socketio_wsgi.eio4): the protocol text's examples,
every malformed input, and the limits enforced before allocation."""
from __future__ import annotations

import json
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socketio_wsgi import eio4
from socketio_wsgi.eio4 import Handshake, Packet, PacketType, message
from socketio_wsgi.errors import LimitExceeded, MessageTooLarge, ProtocolError, UsageError

PING = Packet(PacketType.PING)


# -- the examples of the protocol text (revision 4) --------------------------------

def test_polling_payload_example_with_ping_between_messages():
    assert eio4.decode_payload("4hello\x1e2\x1e4world") == [message("hello"), PING, message("world")]
    assert eio4.encode_payload([message("hello"), PING, message("world")]) == "4hello\x1e2\x1e4world"


def test_polling_payload_example_with_base64_binary():
    packets = eio4.decode_payload("4hello\x1ebAQIDBA==")
    assert packets == [message("hello"), message(b"\x01\x02\x03\x04")]
    assert packets[1].binary and not packets[0].binary
    assert eio4.encode_payload(packets) == "4hello\x1ebAQIDBA=="


def test_parser_changelog_payload_vectors():
    # engine.io-parser 4.0.0 changelog: the v4 outputs.
    assert eio4.encode_payload([message("hello"), message("€€€")]) == "4hello\x1e4€€€"
    assert eio4.encode_payload([message("hello"), message(b"\x01\x02\x03")]) == "4hello\x1ebAQID"
    assert eio4.encode_packet(message(b"\x01\x02\x03")) == b"\x01\x02\x03"
    assert eio4.encode_packet(message("hello")) == "4hello"


def test_websocket_frames_example():
    assert eio4.decode_packet("4hello") == message("hello")
    # Binary frames are sent as is: a message holding exactly those bytes.
    assert eio4.decode_packet(b"\x01\x02\x03\x04") == message(b"\x01\x02\x03\x04")
    assert eio4.decode_packet(bytearray(b"\x00")) == message(b"\x00")


def test_upgrade_exchange_packets():
    assert eio4.decode_packet("2probe") == Packet(PacketType.PING, "probe")
    assert eio4.encode_packet(Packet(PacketType.PONG, "probe")) == "3probe"
    assert eio4.decode_packet("5") == Packet(PacketType.UPGRADE)
    assert eio4.encode_payload([Packet(PacketType.NOOP)]) == "6"
    assert eio4.decode_packet("1") == Packet(PacketType.CLOSE)
    assert eio4.decode_packet("3") == Packet(PacketType.PONG)


def test_every_type_digit_round_trips():
    for kind in PacketType:
        assert eio4.decode_packet(str(int(kind))) == Packet(kind)
        assert eio4.decode_packet(f"{int(kind)}x") == Packet(kind, "x")


def test_handshake_example_round_trips():
    text = ('0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,'
            '"pingTimeout":20000,"maxPayload":1000000}')
    hs = Handshake.decode(eio4.decode_packet(text))
    assert hs == Handshake("lv_VI97HAXpY6yYWAAAC", ["websocket"], 25000, 20000, 1000000)
    assert eio4.encode_packet(hs.packet()) == text


def test_handshake_defaults_and_json_fields():
    hs = Handshake("abc", upgrades=())
    data = json.loads(hs.to_json())
    assert data == {"sid": "abc", "upgrades": [], "pingInterval": eio4.DEFAULT_PING_INTERVAL,
                    "pingTimeout": eio4.DEFAULT_PING_TIMEOUT, "maxPayload": eio4.DEFAULT_MAX_PAYLOAD}


@pytest.mark.parametrize("kwargs", [
    {"sid": ""}, {"sid": 5}, {"sid": "a", "upgrades": "websocket"}, {"sid": "a", "upgrades": [1]},
    {"sid": "a", "ping_interval": 0}, {"sid": "a", "ping_timeout": 1.5},
    {"sid": "a", "max_payload": True},
])
def test_handshake_refuses_bad_values(kwargs):
    with pytest.raises(UsageError):
        Handshake(**kwargs)


@pytest.mark.parametrize("text", [
    "0", "0{", '0{"sid":"a"}', '0[]', '0{"sid":"a","upgrades":[],"pingInterval":"1",'
    '"pingTimeout":1,"maxPayload":1}', '4{"sid":"a"}',
])
def test_handshake_decode_refuses_malformed(text):
    with pytest.raises(ProtocolError):
        Handshake.decode(eio4.decode_packet(text))


# -- malformed input -----------------------------------------------------------------

@pytest.mark.parametrize("frame", ["", "7", "9hello", "x", "bAQI", "b!", "-1", "\x1e"])
def test_decode_packet_refuses_malformed_frames(frame):
    with pytest.raises(ProtocolError):
        eio4.decode_packet(frame)


def test_base64_text_frames_from_a_force_base64_client():
    # engine.io-client with forceBase64 sends binary as "b"+base64 text frames.
    assert eio4.decode_packet("bAQID") == message(b"\x01\x02\x03")
    assert eio4.decode_packet("b") == message(b"")


def test_decode_packet_refuses_other_types():
    with pytest.raises(ProtocolError):
        eio4.decode_packet(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [
    "", "\x1e", "4a\x1e", "\x1e4a", "4a\x1e\x1e4b", "7", "4a\x1e8", "bAQID=", "b!!!!", "b AQID",
    "bAQ", "bAQ=", "bAQI", "bAQID\n", "bAQ==\n", "bAQ==AQ==", b"4\xff\xfe", b"\xc3",
])
def test_decode_payload_refuses_malformed(body):
    with pytest.raises(ProtocolError):
        eio4.decode_payload(body)


def test_decode_payload_accepts_utf8_bytes():
    assert eio4.decode_payload("4é\x1e4€".encode()) == [message("é"), message("€")]


def test_empty_binary_message_is_valid():
    assert eio4.decode_payload("b") == [message(b"")]
    assert eio4.encode_polling_packet(message(b"")) == "b"


# -- limits ------------------------------------------------------------------------------

def test_max_payload_on_frames():
    assert eio4.decode_packet("4" + "a" * 9, max_payload=10) == message("a" * 9)
    with pytest.raises(MessageTooLarge) as info:
        eio4.decode_packet("4" + "a" * 10, max_payload=10)
    assert info.value.limit == 10 and info.value.http_status == 413 and info.value.close_code == 1009
    with pytest.raises(MessageTooLarge):
        eio4.decode_packet(b"x" * 11, max_payload=10)
    # Counted in UTF-8 bytes, not characters: 4 characters, 10 bytes.
    with pytest.raises(MessageTooLarge):
        eio4.decode_packet("4€€€", max_payload=9)
    assert eio4.decode_packet("4€€€", max_payload=10) == message("€€€")


def test_max_payload_on_polling_bodies():
    with pytest.raises(MessageTooLarge):
        eio4.decode_payload("4€\x1e4€", max_payload=8)
    assert len(eio4.decode_payload("4€\x1e4€", max_payload=9)) == 2
    with pytest.raises(MessageTooLarge):
        eio4.decode_payload(b"4" * 11, max_payload=10)


def test_max_packets():
    assert len(eio4.decode_payload("\x1e".join(["2"] * 5), max_packets=5)) == 5
    with pytest.raises(LimitExceeded) as info:
        eio4.decode_payload("\x1e".join(["2"] * 6), max_packets=5)
    assert not isinstance(info.value, MessageTooLarge)


def _peak_allocation(fn) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with pytest.raises(LimitExceeded):
            fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_oversize_input_is_refused_before_any_copy():
    big_text = "4" + "€" * 5_000_000     # 15 MB of UTF-8, limit 1 MB
    big_bytes = b"4" * 5_000_000
    assert _peak_allocation(lambda: eio4.decode_payload(big_text)) < 64_000
    assert _peak_allocation(lambda: eio4.decode_packet(big_text)) < 64_000
    assert _peak_allocation(lambda: eio4.decode_payload(big_bytes)) < 64_000


def test_too_many_packets_are_refused_before_splitting():
    body = "\x1e".join(["6"] * 400_000)   # 800 KB, under max_payload
    # A split would build 400,000 strings (tens of MB); the count builds nothing.
    assert _peak_allocation(lambda: eio4.decode_payload(body, max_packets=1000)) < 64_000


# -- encoder refusals ------------------------------------------------------------------------

def test_encoder_refusals():
    with pytest.raises(UsageError):
        Packet(4, "x")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        Packet(PacketType.PING, b"probe")
    with pytest.raises(UsageError):
        Packet(PacketType.MESSAGE, 42)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        eio4.encode_payload([])
    with pytest.raises(UsageError):
        eio4.encode_payload([message("a\x1eb")])
    # On a websocket the separator is plain data.
    assert eio4.decode_packet(eio4.encode_packet(message("a\x1eb"))) == message("a\x1eb")


def test_message_shortcuts_for_socket_io_parts():
    parts = ['51-["e",{"_placeholder":true,"num":0}]', b"\x01\x02"]
    assert eio4.encode_message_frames(parts) == ['451-["e",{"_placeholder":true,"num":0}]', b"\x01\x02"]
    assert eio4.encode_message_payload(parts) == '451-["e",{"_placeholder":true,"num":0}]\x1ebAQI='
    assert eio4.decode_payload(eio4.encode_message_payload(parts)) == [message(p) for p in parts]


def test_binary_data_is_copied_to_bytes():
    data = bytearray(b"abc")
    packet = message(memoryview(data))
    data[0] = 0
    assert packet.data == b"abc" and isinstance(packet.data, bytes)


# -- round trips --------------------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x1e"), max_size=40)
_packet = st.one_of(
    st.builds(Packet, st.sampled_from(list(PacketType)), _text),
    st.builds(message, st.binary(max_size=40)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_packet, min_size=1, max_size=20))
def test_payload_round_trip(packets):
    assert eio4.decode_payload(eio4.encode_payload(packets)) == packets
    for packet in packets:
        assert eio4.decode_packet(eio4.encode_packet(packet)) == packet


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(st.sampled_from(list("0123456789b\x1eAQID=+/ hé")), max_size=30),
                 st.text(max_size=30), st.binary(max_size=30)))
def test_arbitrary_input_raises_only_protocol_errors(body):
    for decode in (eio4.decode_payload, eio4.decode_packet):
        try:
            packets = decode(body, max_payload=64)
        except ProtocolError:
            continue
        packets = packets if isinstance(packets, list) else [packets]
        # Whatever was accepted can be sent back and reads the same (on a
        # websocket a separator is data, in a payload it cannot be).
        for packet in packets:
            assert eio4.decode_packet(eio4.encode_packet(packet)) == packet
