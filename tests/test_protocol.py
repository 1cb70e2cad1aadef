"""Tests of the Socket.IO 0.6 codec against PROTOCOL-0.6.md §11 and by property."""
from __future__ import annotations

import decimal
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socketio_wsgi import protocol
from socketio_wsgi.errors import UsageError
from socketio_wsgi.errors import LimitExceeded
from socketio_wsgi.protocol import (Heartbeat, ProtocolError, decode, decode_frames, encode,
                                    encode_frame, encode_heartbeat, encode_json, encode_many,
                                    parse_message, utf16_len)

FUZZ = settings(max_examples=300, deadline=None)

# --------------------------------------------------------------------------
# §11 encoding vectors V1-V20: (input, wire, units, bytes)
# --------------------------------------------------------------------------

ENCODE_VECTORS = [
    pytest.param("hello", "~m~5~m~hello", 12, 12, id="V1"),
    pytest.param("", "~m~0~m~", 7, 7, id="V2"),
    pytest.param(None, "~m~0~m~", 7, 7, id="V3"),
    pytest.param(42, "~m~2~m~42", 9, 9, id="V4"),
    pytest.param(True, "~m~4~m~true", 11, 11, id="V5"),
    pytest.param("café", "~m~4~m~café", 11, 12, id="V6"),
    pytest.param("日本語", "~m~3~m~日本語", 10, 16, id="V7"),
    pytest.param("😀", "~m~2~m~😀", 9, 11, id="V8"),
    pytest.param("hi 👋!", "~m~6~m~hi 👋!", 13, 15, id="V9"),
    pytest.param({"a": 1}, '~m~10~m~~j~{"a":1}', 18, 18, id="V10"),
    pytest.param({"user": "al", "tags": ["x", "y"], "n": None},
                 '~m~42~m~~j~{"user":"al","tags":["x","y"],"n":null}', 50, 50, id="V11"),
    pytest.param({"msg": "é😀"}, '~m~16~m~~j~{"msg":"é😀"}', 24, 27, id="V12"),
    pytest.param("~m~5~m~hello", "~m~12~m~~m~5~m~hello", 20, 20, id="V13"),
    pytest.param(["abc", "de"], "~m~3~m~abc~m~2~m~de", 19, 19, id="V15"),
    pytest.param("a\nb", "~m~3~m~a\nb", 10, 10, id="V17"),
    pytest.param([{"a": 1}, "x"], '~m~10~m~~j~{"a":1}~m~1~m~x', 26, 26, id="V18"),
    pytest.param([["a", "b"]], "~m~3~m~a,b", 10, 10, id="V19"),
    pytest.param('{"a":1}', '~m~7~m~{"a":1}', 14, 14, id="V20"),
]


@pytest.mark.parametrize("value, wire, units, nbytes", ENCODE_VECTORS)
def test_encode_vectors(value, wire, units, nbytes):
    assert encode(value) == wire
    assert utf16_len(wire) == units
    assert len(wire.encode("utf-8")) == nbytes


@pytest.mark.parametrize("value, wire, units, nbytes", ENCODE_VECTORS)
def test_encoded_vectors_decode_back_to_their_frames(value, wire, units, nbytes):
    values = value if isinstance(value, list) else [value]
    expected = []
    for v in values:
        if v is None:
            expected.append("")
        elif isinstance(v, (str, dict)):
            expected.append(v)
        elif isinstance(v, list):
            expected.append(",".join(v))
        else:
            expected.append(json.dumps(v))  # 42 -> "42", True -> "true"
    assert decode(wire) == expected


def test_v4_number_arrives_as_a_string():
    assert decode(encode(42)) == ["42"]


def test_v14_heartbeat_echo():
    assert encode_heartbeat(1) == "~m~4~m~~h~1"
    assert encode_frame(Heartbeat("1").wire) == "~m~4~m~~h~1"
    assert utf16_len("~m~4~m~~h~1") == 11


def test_v16_handshake_payload():
    payload = encode_frame("4830125957125931") + encode("welcome")
    assert payload == "~m~16~m~4830125957125931~m~7~m~welcome"
    assert (utf16_len(payload), len(payload.encode())) == (38, 38)
    assert decode_frames(payload) == ["4830125957125931", "welcome"]


def test_w7_polling_first_answer_length():
    body = encode_frame("05784506992653626")
    assert body == "~m~17~m~05784506992653626"
    assert len(body.encode("utf-8")) == 25


def test_encode_many_and_tuple():
    assert encode_many(["a", {"k": 1}, None]) == "~m~1~m~a~m~10~m~~j~{\"k\":1}~m~0~m~"
    assert encode(("x", "y")) == encode(["x", "y"])
    assert encode([]) == ""


def test_encode_json_any_value():
    assert encode_json([1, 2]) == "~m~8~m~~j~[1,2]"
    assert encode_json("s") == '~m~6~m~~j~"s"'
    assert encode_json(None) == "~m~7~m~~j~null"
    assert decode(encode_json(7)) == [7]


def test_nested_list_string_conversion_like_javascript():
    # String([1, null, true, ["a", "b"]]) in JS is "1,,true,a,b"
    assert encode([[1, None, True, ["a", "b"]]]) == "~m~11~m~1,,true,a,b"


# --------------------------------------------------------------------------
# §11 decoding vectors D1-D10
# --------------------------------------------------------------------------

def test_d1_two_frames():
    assert decode("~m~5~m~hello~m~3~m~abc") == ["hello", "abc"]


def test_d2_frame_inside_data():
    assert decode("~m~12~m~~m~5~m~hello") == ["~m~5~m~hello"]


def test_d3_empty_message_then_another():
    assert decode("~m~0~m~~m~1~m~x") == ["", "x"]


def test_d4_trailing_junk_is_rejected_not_dropped():
    # The reference drops "def"; we deliberately refuse the whole payload.
    with pytest.raises(ProtocolError):
        decode("~m~3~m~abcdef")


def test_d5_length_splitting_a_surrogate_pair_is_rejected():
    # The reference returns a lone "\ud83d"; we refuse.
    with pytest.raises(ProtocolError):
        decode("~m~1~m~😀")


def test_d6_leading_zero_tolerated():
    assert decode("~m~05~m~hello") == ["hello"]


def test_d7_text_without_a_frame_is_rejected():
    # The reference yields []; we refuse.
    with pytest.raises(ProtocolError):
        decode("hello")


def test_d8_heartbeat_then_message():
    assert decode_frames("~m~4~m~~h~3~m~2~m~ok") == ["~h~3", "ok"]
    values = decode("~m~4~m~~h~3~m~2~m~ok")
    assert values == ["3", "ok"]
    assert isinstance(values[0], Heartbeat)
    assert values[0].wire == "~h~3"
    assert not isinstance(values[1], Heartbeat)


def test_d9_broken_json_is_rejected():
    # The reference server turns it into {}; we deliberately refuse it.
    with pytest.raises(ProtocolError):
        decode("~m~8~m~~j~{bad}")


def test_d10_any_json_value():
    assert decode("~m~8~m~~j~[1,2]") == [[1, 2]]
    assert decode("~m~4~m~~j~7") == [7]


def test_json_looking_text_stays_a_string():
    assert decode('~m~7~m~{"a":1}') == ['{"a":1}']


def test_empty_payload_is_no_messages():
    assert decode("") == []
    assert decode_frames("") == []


def test_decoding_is_all_or_nothing():
    with pytest.raises(ProtocolError):
        decode("~m~1~m~a~m~1~m~b~m~9~m~short")


@pytest.mark.parametrize("payload", [
    "~m~3x~m~abc",        # the reference would yield "~ab"
    "~m~~m~",             # empty length (the reference reads 0)
    "~m~ 5~m~hello",      # space in the digits (the reference reads a 0)
    "~m~-1~m~",
    "~m~+1~m~a",
    "~m~5~m~abc",         # announces more than present
    "~m~5hello",          # no second separator
    "~m~5",
    "~m~",
    "~m",
    "x~m~1~m~a",
    "~m~1~m~a ",          # trailing junk
    "~m~1~m~a~m~",        # truncated second frame
    "~m~٣~m~abc",         # non-ASCII digit
    "~m~1234567890123~m~",  # absurdly long length field
    "~m~3~m~😀",           # astral path: announces more than present
    "😀~m~1~m~a",          # astral path: junk before the frame
    "~m~2~m~😀x",          # astral path: trailing junk
    "~m~x~m~😀",           # astral path: bad length
    "~m~1😀",              # astral path: no second separator
    "~m~4~m~~j~{",        # broken JSON
    "~m~3~m~~j~",         # empty JSON
])
def test_malformed_payloads_raise_protocol_error(payload):
    with pytest.raises(ProtocolError):
        decode(payload)


def test_astral_payload_with_several_frames():
    wire = encode(["😀", "a😀b", "", "日"])
    assert decode(wire) == ["😀", "a😀b", "", "日"]
    assert wire == "~m~2~m~😀~m~4~m~a😀b~m~0~m~~m~1~m~日"


def test_parse_message_kinds():
    assert parse_message("plain") == "plain"
    assert parse_message('~j~{"a":[1]}') == {"a": [1]}
    hb = parse_message("~h~12")
    assert isinstance(hb, Heartbeat) and hb == "12" and hb.wire == "~h~12"


def test_protocol_error_is_a_value_error():
    assert issubclass(ProtocolError, ValueError)


# --------------------------------------------------------------------------
# utf16_len and encoder refusals
# --------------------------------------------------------------------------

@pytest.mark.parametrize("text, units", [
    ("", 0), ("abc", 3), ("é", 1), ("日本語", 3), ("😀", 2), ("hi 👋!", 6),
    ("a😀b😀", 6), ("\U0010ffff", 2), ("\uffff", 1), ("\x00", 1),
])
def test_utf16_len(text, units):
    assert utf16_len(text) == units
    assert utf16_len(text) == len(text.encode("utf-16-le")) // 2


@pytest.mark.parametrize("value", ["~j~{}", "~h~1", "~j~", "~h~", ["ok", "~h~2"], [["~j~x"]]])
def test_encode_refuses_text_that_would_be_misread(value):
    with pytest.raises(UsageError):
        encode(value)


@pytest.mark.parametrize("value", ["~m~", "~J~x", " ~j~", "~h", "~~h~"])
def test_encode_accepts_text_that_merely_looks_special(value):
    assert decode(encode(value)) == [value]


@pytest.mark.parametrize("value", [object(), b"bytes", {1, 2}, {"a": object()}, {"n": math.nan}])
def test_encode_refuses_unsupported_values(value):
    with pytest.raises(UsageError):
        encode(value)


def test_encode_refuses_lone_surrogates():
    with pytest.raises(UsageError):
        encode("\ud83d")
    with pytest.raises(UsageError):
        encode_frame("a\udc00")


# --------------------------------------------------------------------------
# JavaScript number formatting (String(x) in JS)
# --------------------------------------------------------------------------

def js_number(x: float) -> str:
    """An oracle: ECMA-262 Number::toString(10) from Python's shortest repr."""
    if math.isnan(x):
        return "NaN"
    if x == 0:
        return "0"
    if x < 0:
        return "-" + js_number(-x)
    if math.isinf(x):
        return "Infinity"
    _sign, digit_tuple, exponent = decimal.Decimal(repr(x)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    exponent += len(digit_tuple) - len(digits)
    k = len(digits)
    n = exponent + k
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return f"{digits[:n]}.{digits[n:]}"
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


# Checked with node 20: String(v) for each value.
JS_NUMBERS = [
    (0.0, "0"), (-0.0, "0"), (1.0, "1"), (-1.0, "-1"), (0.1, "0.1"), (1.5, "1.5"),
    (123.456, "123.456"), (1e16, "10000000000000000"), (1e21, "1e+21"), (-1e21, "-1e+21"),
    (1.5e300, "1.5e+300"), (1e-7, "1e-7"), (1.5e-7, "1.5e-7"), (5e-324, "5e-324"),
    (1.7976931348623157e308, "1.7976931348623157e+308"), (math.inf, "Infinity"),
    (-math.inf, "-Infinity"), (math.nan, "NaN"), (2.0 ** 53, "9007199254740992"),
    (0.000123, "0.000123"),
]

# Also checked with node: decimal notation down to 1e-6, shortest digits
# padded with zeros for integral floats beyond 2**53.
JS_NUMBERS += [
    (1e-5, "0.00001"), (1.234e-5, "0.00001234"), (1e-6, "0.000001"),
    (2.0 ** 60, "1152921504606847000"), (1.2345678901234568e20, "123456789012345680000"),
]


@pytest.mark.parametrize("value, text", JS_NUMBERS)
def test_js_number_formatting(value, text):
    assert js_number(value) == text  # the oracle itself
    assert encode(value) == encode_frame(text)


def test_ints_and_bools():
    assert encode(0) == "~m~1~m~0"
    assert encode(-17) == "~m~3~m~-17"
    assert encode(False) == "~m~5~m~false"
    assert encode(10 ** 30) == "~m~31~m~1" + "0" * 30


@FUZZ
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_js_number_property(x):
    assert encode(x) == encode_frame(js_number(x))


# --------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------

# Text that survives UTF-8: no lone surrogates.
texts = st.text(st.characters(blacklist_categories=("Cs",)))
plain_texts = texts.filter(lambda t: not t.startswith(("~j~", "~h~")))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | texts
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(texts, children, max_size=5),
    max_leaves=20,
)


@FUZZ
@given(plain_texts)
def test_text_round_trip(text):
    assert decode(encode(text)) == [text]
    wire = encode(text)
    assert wire.startswith(f"~m~{utf16_len(text)}~m~")


@FUZZ
@given(json_values)
def test_json_round_trip(value):
    decoded = decode(encode_json(value))
    assert decoded == [value]


@FUZZ
@given(st.dictionaries(texts, json_values, max_size=5))
def test_dict_round_trip(value):
    assert decode(encode(value)) == [value]


@FUZZ
@given(st.lists(plain_texts, max_size=8))
def test_several_messages_round_trip(items):
    assert decode(encode(items)) == items
    assert decode(encode_many(items)) == items
    assert decode("".join(encode(t) for t in items)) == items


@FUZZ
@given(st.lists(plain_texts, max_size=8))
def test_frames_round_trip_raw(items):
    assert decode_frames("".join(encode_frame(t) for t in items)) == items


def _decode_or_protocol_error(payload):
    try:
        result = decode(payload)
    except ProtocolError:
        return None
    assert isinstance(result, list)
    return result


@FUZZ
@given(st.text())
def test_decode_arbitrary_text_never_crashes(payload):
    _decode_or_protocol_error(payload)


@FUZZ
@given(st.text(st.characters(max_codepoint=0xFFFF)))
def test_decode_bmp_text_with_lone_surrogates_never_crashes(payload):
    _decode_or_protocol_error(payload)


@pytest.mark.parametrize("payload", [
    "\ud83d\U0001f600",                    # once crashed with UnicodeEncodeError
    "~m~1~m~\udc00~m~2~m~\U0001f600",
    "~m~1~m~\ud83d",
    "~m~2~m~é\udc00",
])
def test_lone_surrogates_raise_protocol_error(payload):
    with pytest.raises(ProtocolError):
        decode(payload)


frame_pieces = st.lists(
    st.one_of(
        st.just("~m~"),
        st.just("~j~"),
        st.just("~h~"),
        st.integers(min_value=0, max_value=30).map(str),
        st.sampled_from(["0", "05", "1234567890123", "٣", " ", "😀", "é", "\ud83d", "{", "}", "[1]"]),
        st.text(max_size=6),
    ),
    max_size=14,
)


@FUZZ
@given(frame_pieces)
def test_decode_frame_like_input_never_crashes(pieces):
    _decode_or_protocol_error("".join(pieces))


def _outcome(parse, payload, limit):
    try:
        return parse(payload, limit)
    except ProtocolError as exc:
        return type(exc)


@FUZZ
@given(frame_pieces, st.integers(min_value=-1, max_value=4))
def test_split_fast_path_agrees_with_the_exact_scanner(pieces, limit):
    # The C-level split is only a shortcut: whenever it answers, the
    # frame-by-frame scanner gives the same frames (or the same error).
    payload = "".join(pieces)
    if not payload.isascii():
        return
    fast = _outcome(protocol._split_plain, payload, limit)
    if fast is not None:
        assert fast == _outcome(protocol._scan_bmp, payload, limit)


@pytest.mark.parametrize("payload, limit, expected", [
    ("~m~4~m~a~m~", -1, ["a~m~"]),                 # data holding the separator
    ("~m~003~m~abc~m~0~m~", -1, ["abc", ""]),
    ("~m~1~m~a~m~1~m~b~m~1~m~c", 2, LimitExceeded),
    ("~m~1~m~a~m~1~m~b", 2, ["a", "b"]),
    ("~m~1~m~a~m~x", 1, LimitExceeded),           # over the limit, malformed after it
    ("~m~1~m~a~m~x", -1, ProtocolError),
    ("~m~2~m~a", -1, ProtocolError),
])
def test_split_fast_path_edge_cases(payload, limit, expected):
    assert _outcome(protocol._decode_bmp, payload, limit) == expected
    assert _outcome(protocol._scan_bmp, payload, limit) == expected
    fast = _outcome(protocol._split_plain, payload, limit)
    assert fast is None or fast == expected


def test_the_message_limit_holds_for_astral_text_too():
    # The UTF-16 scanner once reused the limit's name for a loop bound.
    payload = encode_frame("\U0001f600") * 5
    assert len(decode_frames(payload, max_messages=5)) == 5
    with pytest.raises(LimitExceeded):
        decode_frames(payload, max_messages=4)


def test_a_payload_of_a_million_frames_is_refused_after_the_limit():
    with pytest.raises(LimitExceeded):
        decode_frames("~m~1~m~a" * 1_000_000, max_messages=10_000)


@pytest.mark.parametrize("count", [1, 2, 5, 40, 10_000])
def test_long_and_short_payloads_decode_alike(count):
    items = [f"message {n}" for n in range(count)]
    assert decode_frames(encode(items), max_messages=10_000) == items
    with pytest.raises(LimitExceeded):
        decode_frames(encode(items + ["one more"]), max_messages=count)


@FUZZ
@given(st.lists(plain_texts, min_size=1, max_size=4), st.data())
def test_decode_truncated_or_extended_payloads(items, data):
    wire = encode(items)
    cut = data.draw(st.integers(min_value=0, max_value=len(wire)))
    result = _decode_or_protocol_error(wire[:cut])
    if result is not None:
        # A clean cut lands on a frame boundary: a prefix of the messages.
        assert result == items[:len(result)]
    junk = data.draw(st.text(min_size=1, max_size=5))
    extended = _decode_or_protocol_error(wire + junk)
    if extended is not None:
        assert extended[:len(items)] == items


@FUZZ
@given(st.text(max_size=20))
def test_encode_arbitrary_text_either_frames_or_refuses(text):
    try:
        wire = encode(text)
    except UsageError:  # the application's mistake, never the peer's
        assert text.startswith(("~j~", "~h~")) or any(
            0xD800 <= ord(c) <= 0xDFFF for c in text)
        return
    assert decode(wire) == [text]


def test_module_exports():
    for name in protocol.__all__:
        assert hasattr(protocol, name)


@FUZZ
@given(st.text(max_size=40) | st.sampled_from(["", "~j~x", "~h~1", "~m~", "é", "😀", "a~j~"]))
def test_the_plain_text_shortcut_encodes_as_the_general_rule(text):
    try:
        general = encode_frame(protocol._message_data(text))
    except UsageError:
        with pytest.raises(UsageError):
            encode(text)
        return
    assert encode(text) == general
