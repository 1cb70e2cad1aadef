"""Socket.IO v5 codec (socketio_wsgi.sio5): the protocol text's examples,
the reference test suite's frames, binary attachments and every refusal."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socketio_wsgi import eio4, sio5
from socketio_wsgi.errors import LimitExceeded, MessageTooLarge, ProtocolError, UsageError
from socketio_wsgi.sio5 import Ack, Connect, ConnectError, Decoder, Disconnect, Event


def decode_all(*messages):
    """Feed messages (str or bytes) to a fresh Decoder; return every packet it completed."""
    decoder = Decoder()
    out = []
    for item in messages:
        if isinstance(item, str):
            out.extend(decoder.receive_text(item))
        else:
            out.extend(decoder.receive_binary(item))
    assert not decoder.waiting
    return out


# -- the examples of the protocol text (revision 5), both ways --------------------------

VECTORS = [
    (Connect("/"), ["0"]),
    (Connect("/admin", {"sid": "oSO0OpakMV_3jnilAAAA"}), ['0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}']),
    (ConnectError("/", {"message": "Not authorized"}), ['4{"message":"Not authorized"}']),
    (Event("foo"), ['2["foo"]']),
    (Event("bar", namespace="/admin"), ['2/admin,["bar"]']),
    (Event("baz", [b"\x01\x02\x03\x04"]),
     ['51-["baz",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"]),
    (Event("baz", [b"\x01\x02", b"\x03\x04"], "/admin"),
     ['52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
      b"\x01\x02", b"\x03\x04"]),
    (Event("foo", id=12), ['212["foo"]']),
    (Ack(13, ["bar"], "/admin"), ['3/admin,13["bar"]']),
    (Ack(15, ["bar", b"\x01\x02\x03\x04"]), ['61-15["bar",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"]),
    (Disconnect("/"), ["1"]),
    (Disconnect("/admin"), ["1/admin,"]),
    # The sample session.
    (Connect("/", {"sid": "wZX3oN0bSVIhsaknAAAI"}), ['0{"sid":"wZX3oN0bSVIhsaknAAAI"}']),
    (Event("hey", ["Jude"]), ['2["hey","Jude"]']),
    (Event("tellme", namespace="/admin", id=1), ['2/admin,1["tellme"]']),
    (Ack(1, [b"\xff"], "/admin"), ['61-/admin,1[{"_placeholder":true,"num":0}]', b"\xff"]),
    (Ack(12, []), ["312[]"]),
    # The reference test suite's frames (without the Engine.IO "4").
    (Connect("/", {"token": "123"}), ['0{"token":"123"}']),
    (Connect("/custom", {"token": "abc"}), ['0/custom,{"token":"abc"}']),
    (Event("message", [1, "2", {"3": [True]}]), ['2["message",1,"2",{"3":[true]}]']),
    (Event("message-with-ack", [1, "2", {"3": [False]}], id=456),
     ['2456["message-with-ack",1,"2",{"3":[false]}]']),
    (Ack(456, [1, "2", {"3": [False]}]), ['3456[1,"2",{"3":[false]}]']),
    (Event("message", [b"\x01\x02\x03", b"\x04\x05\x06"]),
     ['52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
      b"\x01\x02\x03", b"\x04\x05\x06"]),
    (Event("message-with-ack", [b"\x01\x02\x03", b"\x04\x05\x06"], id=789),
     ['52-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
      b"\x01\x02\x03", b"\x04\x05\x06"]),
    (Ack(789, [b"\x01\x02\x03", b"\x04\x05\x06"]),
     ['62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', b"\x01\x02\x03", b"\x04\x05\x06"]),
]


@pytest.mark.parametrize("packet,wire", VECTORS, ids=[w[0][:40] for _, w in VECTORS])
def test_protocol_vectors_encode(packet, wire):
    assert sio5.encode(packet) == wire


@pytest.mark.parametrize("packet,wire", VECTORS, ids=[w[0][:40] for _, w in VECTORS])
def test_protocol_vectors_decode(packet, wire):
    assert decode_all(*wire) == [packet]


def test_namespace_without_trailing_comma():
    # The reference test suite connects with "40/custom" and leaves with "41/custom".
    assert sio5.decode("0/custom") == Connect("/custom")
    assert sio5.decode("1/custom") == Disconnect("/custom")
    assert sio5.decode("0/random") == Connect("/random")  # unknown: the server's answer, not a parse error


def test_engine_io_envelope_round_trip():
    # Over Engine.IO each text becomes a message "4...", each attachment a binary message.
    wire = [eio4.message(part) for part in sio5.encode(Event("up", [b"\x00\x01"], "/a", 3))]
    body = eio4.encode_payload(wire)
    assert body == '451-/a,3["up",{"_placeholder":true,"num":0}]\x1ebAAE='
    packets = eio4.decode_payload(body)
    assert decode_all(*[p.data for p in packets]) == [Event("up", [b"\x00\x01"], "/a", 3)]


def test_binary_anywhere_in_the_args():
    args = [{"a": [1, bytearray(b"x"), {"b": memoryview(b"yz")}]}, (b"", None), "s", 1.5, True]
    encoded = sio5.encode(Event("deep", args))
    assert encoded[0].startswith("53-[")
    assert encoded[1:] == [b"x", b"yz", b""]
    [event] = decode_all(*encoded)
    assert event.args == ({"a": [1, b"x", {"b": b"yz"}]}, [b"", None], "s", 1.5, True)
    assert all(type(part) is bytes for part in encoded[1:])


def test_same_attachment_may_be_referenced_twice():
    [event] = decode_all('51-["e",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]', b"z")
    assert event.args == (b"z", b"z")


def test_non_binary_event_keeps_placeholder_shaped_objects():
    [event] = decode_all('2["e",{"_placeholder":true,"num":0}]')
    assert event.args == ({"_placeholder": True, "num": 0},)


def test_numeric_event_names_as_the_reference_parser_allows():
    assert sio5.decode("2[1,2]") == Event(1, [2])
    assert sio5.encode(Event(1.5, [])) == ["2[1.5]"]


def test_connect_error_accepts_a_plain_string():
    assert sio5.decode('4/admin,"nope"') == ConnectError("/admin", "nope")
    assert ConnectError("/admin", "nope").message == "nope"
    assert ConnectError(data={"message": "Invalid namespace"}).message == "Invalid namespace"


def test_unicode_round_trips():
    packet = Event("émoji", ["😀", "\u2028", {"ключ": "値"}])
    assert decode_all(*sio5.encode(packet)) == [packet]
    # A paired surrogate escape is one character: accepted.
    assert sio5.decode('2["e","\\ud83d\\ude00"]') == Event("e", ["😀"])


def test_auth_property():
    assert sio5.decode('0{"token":"t"}').auth == {"token": "t"}
    assert Connect().auth is None


# -- refusals of peer input ---------------------------------------------------------------------

MALFORMED = [
    "", "7", "8[]", "x", "abc", "-1", " 2[\"a\"]",
    # payloads of the wrong shape (reference isPayloadValid)
    "2{}", "2", "2[]", '2"a"', "2[null]", "2[true]", "2[[1]]", "2[{}]", "3[]x", "312", "3{}", "3",
    '0[]', '0"tok"', "01", '1{}', '1"x"', "4", "4[1]", "41", "012{}", '112', '412"x"',
    # reserved event names
    '2["connect"]', '2["disconnect"]', '2["connect_error"]', '2["disconnecting"]',
    '2["newListener"]', '2["removeListener"]',
    # ack ids that are not integers, or too large
    '2abc["message-with-ack",1,"2",{"3":[false]}]', '2-1["a"]', '21.5["a"]', '2 1["a"]',
    '29007199254740992["a"]', '212345678901234567["a"]', '31e3[]',
    # malformed JSON and JSON the encoder could not send back
    '2["a"', '2["a"]]', "2['a']", '2["a",NaN]', '2["a",Infinity]', '2["a",-Infinity]',
    '2["a",1e400]', '2["a",-1e999]', '2["a",1' + "0" * 250 + 'e99]', '2["a",1' + "0" * 309 + '.5]',
    '2["a",1E+0400]', '2["a","\\ud800"]', '2["a",{"\\udfff":1}]',
    '2["a","\\ude00\\ud83d"]', '2["a",' + "1" * 401 + "]", '2["a",\x01]', '2["a","\n"]',
    # namespaces that are not "/..."
    '2admin,["a"]', '0admin', '2,["a"]',
    # binary headers without a valid count
    '5-["a",{"_placeholder":true,"num":0}]', '50-["a"]', '5x-["a"]', '51["a"]', "51", "5",
    '5 1-["a"]', '5+1-["a"]',
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_text_is_refused(text):
    with pytest.raises(ProtocolError):
        Decoder().receive_text(text)


def test_binary_header_with_invalid_shape_is_refused_before_its_attachments():
    for text in ('51-{"a":{"_placeholder":true,"num":0}}', '51-', '61-[]', '51-["connect",'
                 '{"_placeholder":true,"num":0}]', '51-[{"_placeholder":true,"num":0}]'):
        with pytest.raises(ProtocolError):
            Decoder().receive_text(text)


@pytest.mark.parametrize("placeholder", [
    '{"_placeholder":true,"num":1}', '{"_placeholder":true,"num":-1}', '{"_placeholder":true,"num":0.5}',
    '{"_placeholder":true,"num":"0"}', '{"_placeholder":true}', '{"_placeholder":true,"num":true}',
    '{"_placeholder":true,"num":99999999999999999999}',
])
def test_placeholder_pointing_past_the_attachments(placeholder):
    with pytest.raises(ProtocolError, match="placeholder"):
        Decoder().receive_text(f'51-["a",{{"x":[{placeholder}]}}]')


def test_attachments_that_never_arrive():
    decoder = Decoder()
    assert decoder.receive_text('52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]') == []
    assert decoder.waiting and decoder.missing == 2
    assert decoder.receive_binary(b"1") == []
    assert decoder.missing == 1
    # Another text packet while one waits: refused, and the decoder is empty again.
    with pytest.raises(ProtocolError, match="missing"):
        decoder.receive_text('2["b"]')
    assert not decoder.waiting and decoder.missing == 0
    assert decoder.receive_text('2["b"]') == [Event("b")]
    # The session core gives up on a waiting packet with reset().
    decoder.receive_text('51-["a",{"_placeholder":true,"num":0}]')
    decoder.reset()
    assert not decoder.waiting
    with pytest.raises(ProtocolError):
        decoder.receive_binary(b"late")


def test_binary_without_a_waiting_packet():
    with pytest.raises(ProtocolError):
        Decoder().receive_binary(b"\x00")
    decoder = Decoder()
    decoder.receive_text('51-["a",{"_placeholder":true,"num":0}]')
    with pytest.raises(ProtocolError):
        decoder.receive_binary("text")  # type: ignore[arg-type]
    with pytest.raises(ProtocolError):
        Decoder().receive_text(b"2[]")  # type: ignore[arg-type]


def test_max_attachments():
    header = "53-[" + ",".join('{"_placeholder":true,"num":%d}' % i for i in range(3)) + "]"
    with pytest.raises(LimitExceeded):
        Decoder(max_attachments=2).receive_text(header.replace("[{", '["e",{', 1))
    decoder = Decoder(max_attachments=3)
    decoder.receive_text(header.replace("[{", '["e",{', 1))
    assert decoder.missing == 3
    with pytest.raises(LimitExceeded):
        Decoder().receive_text('511-["e"]')
    # A count too long to be one is malformed, refused without converting it.
    with pytest.raises(ProtocolError):
        Decoder().receive_text('5' + "9" * 30 + '-["e"]')


def test_max_attachment_bytes_counts_all_attachments_of_a_packet():
    decoder = Decoder(max_attachment_bytes=10)
    decoder.receive_text('52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    decoder.receive_binary(b"x" * 6)
    with pytest.raises(MessageTooLarge):
        decoder.receive_binary(b"x" * 5)
    assert not decoder.waiting
    decoder.receive_text('52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    decoder.receive_binary(b"x" * 6)
    assert decoder.receive_binary(b"x" * 4) == [Event("a", [b"x" * 6, b"x" * 4])]
    # The budget is per packet.
    decoder.receive_text('51-["a",{"_placeholder":true,"num":0}]')
    assert decoder.receive_binary(b"y" * 10) == [Event("a", [b"y" * 10])]


def test_max_namespace_length():
    ns = "/" + "n" * 9
    assert Decoder(max_namespace_length=10).receive_text(f'2{ns},["a"]') == [Event("a", namespace=ns)]
    assert Decoder(max_namespace_length=10).receive_text(f"0{ns}") == [Connect(ns)]
    for text in (f'2{ns}n,["a"]', f"0{ns}n"):
        with pytest.raises(LimitExceeded):
            Decoder(max_namespace_length=10).receive_text(text)


def test_numbers_near_the_limits_are_accepted():
    # 1e99 written with 300 zeros after the point; 1e290 with 200 digits.
    assert sio5.decode('2["a",0.' + "0" * 300 + '1e400]').args[0] == pytest.approx(1e99)
    assert sio5.decode('2["a",1' + "0" * 200 + 'e90]').args[0] == pytest.approx(1e290)
    assert sio5.decode('2["a",' + "1" * 400 + "]").args[0] == int("1" * 400)
    assert sio5.decode('2["a",1.7976931348623157e308,5e-324,1e-400]').args == (1.7976931348623157e308, 5e-324, 0.0)


def test_largest_ack_id():
    assert sio5.decode('29007199254740991["a"]').id == sio5.MAX_ACK_ID
    assert sio5.decode('30[]') == Ack(0, [])


def test_decode_refuses_binary_headers():
    with pytest.raises(ProtocolError, match="Decoder"):
        sio5.decode('51-["a",{"_placeholder":true,"num":0}]')


@pytest.mark.parametrize("kwargs", [{"max_attachments": 0}, {"max_attachment_bytes": -1},
                                    {"max_namespace_length": True}, {"max_attachments": 1.0}])
def test_decoder_refuses_bad_limits(kwargs):
    with pytest.raises(UsageError):
        Decoder(**kwargs)


# -- refusals of application values ----------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: Event("connect"), lambda: Event("disconnect"), lambda: Event(True), lambda: Event(None),
    lambda: Event(float("nan")), lambda: Event("e", "notalist"), lambda: Event("e", namespace="admin"),
    lambda: Event("e", namespace="/a,b"), lambda: Event("e", id=-1), lambda: Event("e", id=2 ** 53),
    lambda: Event("e", id=True), lambda: Ack(None, []), lambda: Ack(1, {}), lambda: Connect("/", []),
    lambda: ConnectError("/", 5), lambda: Disconnect(""),
])
def test_packets_refuse_invalid_fields(make):
    with pytest.raises(UsageError):
        make()


@pytest.mark.parametrize("args", [
    [float("nan")], [float("inf")], [{1, 2}], [object()], ["\ud800"], [{"\udc00": 1}],
])
def test_encoder_refuses_what_the_decoder_would_refuse(args):
    with pytest.raises(UsageError):
        sio5.encode(Event("e", args))
    with pytest.raises(UsageError):
        sio5.encode(Ack(1, [b"x", *args]))


def test_encoder_refuses_non_packets_and_cycles():
    loop: list = []
    loop.append(loop)
    with pytest.raises(UsageError):
        sio5.encode(Event("e", [loop]))
    with pytest.raises(UsageError):
        sio5.encode("2[]")  # type: ignore[arg-type]


# -- round trips -----------------------------------------------------------------------------------

_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 63, 2 ** 63),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.text(st.characters(blacklist_categories=("Cs",)), max_size=10),
                    st.binary(max_size=8))
_value = st.recursive(_scalar, lambda children: st.one_of(
    st.lists(children, max_size=4),
    st.dictionaries(st.text(max_size=5).filter(lambda k: k != "_placeholder"), children, max_size=4)),
    max_leaves=12)
_namespace = st.one_of(st.just("/"), st.text(st.characters(blacklist_categories=("Cs",),
                                                           blacklist_characters=","),
                                             max_size=8).map(lambda s: "/" + s))
_id = st.one_of(st.none(), st.integers(0, sio5.MAX_ACK_ID))
_name = st.one_of(st.text(max_size=8).filter(lambda n: n not in sio5.RESERVED_EVENTS),
                  st.integers(0, 10 ** 6))


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.builds(Event, _name, st.lists(_value, max_size=4), _namespace, _id),
    st.builds(Ack, st.integers(0, sio5.MAX_ACK_ID), st.lists(_value, max_size=4), _namespace),
    st.builds(Connect, _namespace, st.one_of(st.none(), st.dictionaries(st.text(max_size=4), _scalar.filter(
        lambda v: not isinstance(v, bytes)), max_size=3))),
    st.builds(Disconnect, _namespace),
    st.builds(ConnectError, _namespace, st.one_of(st.text(max_size=8), st.fixed_dictionaries(
        {"message": st.text(max_size=8)}))),
))
def test_round_trip(packet):
    wire = sio5.encode(packet)
    assert isinstance(wire[0], str) and all(isinstance(part, bytes) for part in wire[1:])
    [decoded] = decode_all(*wire)
    assert _normalise(decoded) == _normalise(packet)


def _normalise(value):
    """Tuples become lists and bytearray/memoryview bytes, as they do on the wire."""
    if isinstance(value, (Event, Ack)):
        return (type(value).__name__, getattr(value, "name", None), _normalise(list(value.args)),
                value.namespace, value.id)
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    return value


# -- arbitrary input: only ProtocolError, never anything else ----------------------------------------

_wire_alphabet = st.sampled_from(list('0123456-/,[]{}":_placeholder truefalsenum\\u\\ud800 ae1.+'))


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.text(_wire_alphabet, max_size=40), st.text(max_size=20), st.binary(max_size=8)),
                min_size=1, max_size=6))
def test_arbitrary_input_raises_only_protocol_errors(messages):
    decoder = Decoder(max_attachments=3, max_attachment_bytes=16)
    for item in messages:
        try:
            if isinstance(item, str):
                packets = decoder.receive_text(item)
            else:
                packets = decoder.receive_binary(item)
        except ProtocolError:
            continue
        # Whatever was accepted can be sent back and reads the same.
        for packet in packets:
            assert decode_all(*sio5.encode(packet)) == [packet]
