"""The session core with plain calls: no server, no gevent, no clock.

Every rule of a session's life is exercised here by feeding the core input
and times and reading back what it answers.
"""
from __future__ import annotations

import sys

import pytest

from socketio_wsgi.core import (TRANSITIONS, Disconnect, Finish, Limits, Message, Reason,
                                SessionCore, State, Subscribe, Unsubscribe, Unsubscribed)
from socketio_wsgi.errors import LimitExceeded, MessageTooLarge, ProtocolError, UsageError
from socketio_wsgi.protocol import encode, encode_frame, encode_json


def core(**limits) -> SessionCore:
    heartbeats = limits.pop("heartbeats", False)
    polling = limits.pop("polling", False)
    session = SessionCore("12345678901234567890", Limits(**limits), heartbeats=heartbeats,
                          polling=polling)
    session.open(100.0)
    return session


def test_the_core_imports_nothing_that_waits():
    import socketio_wsgi.core as module
    source = open(module.__file__, encoding="utf-8").read()
    for forbidden in ("import gevent", "import time", "import socket", "import threading"):
        assert forbidden not in source
    assert "gevent" not in {name.split(".")[0] for name in vars(module)}
    assert "socketio_wsgi.core" in sys.modules


def test_states_move_only_along_the_table():
    session = SessionCore("1", Limits())
    assert session.state is State.CONNECTING
    with pytest.raises(UsageError):
        session.receive("~m~1~m~a", 0.0)  # nothing is delivered before on_connect finished
    session.open(0.0)
    with pytest.raises(UsageError):
        session.open(0.0)
    with pytest.raises(UsageError):
        session.finish()  # OPEN -> CLOSED skips the closing events
    assert session.close(Reason.CLIENT_CLOSED) is True
    assert session.close(Reason.SERVER_CLOSED) is False  # the first reason stands
    assert (session.state, session.close_reason) == (State.CLOSING, Reason.CLIENT_CLOSED)
    session.finish()
    assert session.state is State.CLOSED
    with pytest.raises(UsageError):
        session.finish()
    assert TRANSITIONS[State.CLOSED] == frozenset()


def test_a_refusal_goes_straight_to_closed_with_nothing_kept():
    session = SessionCore("1", Limits())
    assert session.send(b"queued by on_connect") is True
    session.refuse()
    assert session.state is State.CLOSED and not session.has_data()


def test_receive_returns_messages_and_channel_requests_in_order():
    session = core()
    payload = encode(["a", {"b": 1}]) + encode(["__subscribe__", "room"]) + \
        encode_json([1, 2]) + encode(["__unsubscribe__", "room"])
    session.receive(payload, 100.0)
    assert session.events_received() == [Message("a"), Message({"b": 1}), Subscribe("room"),
                                         Message([1, 2]), Unsubscribe("room")]
    assert session.events_received() == []


def test_events_come_out_in_slices_and_stop_at_a_close():
    session = core()
    session.receive(encode([str(n) for n in range(10)]), 100.0)
    assert session.events_received(3) == [Message("0"), Message("1"), Message("2")]
    assert session.has_events()
    session.close(Reason.SERVER_CLOSED)
    assert not session.has_events()
    assert session.events_received() == []  # delivery stops the moment a close is pending


@pytest.mark.parametrize("payload", [
    "hello", "~m~5~m~ab", "~m~9~m~~j~{bad}", "~m~6~m~~j~NaN", "~m~14~m~~j~[-Infinity]",
    "~m~8~m~~j~1e400", "~m~12~m~~j~[-2.5e999]",
    '~m~11~m~~j~"\\ud800"', '~m~17~m~~j~{"\\udfff": 1}', "~m~13~m~__subscribe__",
])
def test_bad_input_closes_with_protocol_error_and_delivers_nothing(payload):
    session = core()
    with pytest.raises(ProtocolError) as info:
        session.receive(encode("fine") + payload, 100.0)
    assert not isinstance(info.value, LimitExceeded)
    assert (session.state, session.close_reason) == (State.CLOSING, Reason.PROTOCOL_ERROR)
    assert session.events_received() == []


def test_paired_surrogate_escapes_are_fine():
    session = core()
    session.receive(encode_frame('~j~"\\ud83d\\ude00"'), 100.0)
    assert session.events_received() == [Message("\U0001F600")]


def test_json_the_decoder_accepts_the_encoder_can_send_back():
    session = core()
    session.receive(encode_json({"x": [1.5, "é", None, True]}), 100.0)
    [event] = session.events_received()
    assert encode_json(event.value)  # no value the decoder returns is refused by the encoder


def test_too_many_messages_in_one_payload_is_a_limit():
    session = core(max_messages_per_payload=100)
    session.receive(encode(["x"] * 100), 100.0)
    assert len(session.events_received()) == 100
    with pytest.raises(LimitExceeded):
        session.receive(encode(["x"] * 101), 100.0)
    assert session.close_reason == Reason.LIMIT_EXCEEDED


def test_undelivered_messages_count_against_the_payload_cap():
    session = core(max_messages_per_payload=100)
    session.receive(encode(["x"] * 60), 100.0)
    with pytest.raises(LimitExceeded):
        session.receive(encode(["x"] * 60), 100.0)  # 120 waiting: a client outrunning delivery


def test_message_size_limit():
    session = core(max_message_size=1000)
    session.receive(encode("é" * 500), 100.0)  # 1000 bytes of UTF-8
    with pytest.raises(MessageTooLarge) as info:
        session.receive(encode("é" * 501), 100.0)
    assert (info.value.http_status, info.value.close_code) == (413, 1009)
    assert session.close_reason == Reason.LIMIT_EXCEEDED


def test_channels_are_a_bounded_ordered_set():
    session = core(max_channels=3)
    assert session.add_channel("a") and session.add_channel("b")
    assert session.add_channel("a") is False
    assert session.channels == ("a", "b") and session.channel_key == frozenset({"a", "b"})
    assert session.remove_channel("a") and not session.remove_channel("a")
    assert session.channel_key == frozenset({"b"})
    session.add_channel("c")
    session.add_channel("d")
    with pytest.raises(LimitExceeded):
        session.add_channel("e")
    assert session.close_reason == Reason.LIMIT_EXCEEDED


def test_the_channel_key_is_built_once_per_change():
    session = core()
    session.add_channel("a")
    key = session.channel_key
    assert session.channel_key is key
    session.add_channel("b")
    assert session.channel_key is not key


def test_queue_limits_close_and_drop_the_queue():
    session = core(max_queue_messages=3, max_queue_bytes=10)
    assert session.send(b"1") and session.send(b"2") and session.send(b"3")
    assert session.send(b"4") is False
    assert session.close_reason == Reason.LIMIT_EXCEEDED
    assert not session.has_data()  # nothing more goes to a client past its limit
    assert session.send(b"5") is False
    other = core(max_queue_bytes=10)
    assert other.send(b"x" * 10) and not other.send(b"y")


def test_data_to_send_joins_the_queue():
    session = core()
    session.send(b"a")
    session.send(b"bc")
    assert (session.queued_messages, session.queued_bytes) == (2, 3)
    assert session.data_to_send() == b"abc"
    assert session.data_to_send() == b"" and session.queued_bytes == 0


def test_a_graceful_close_keeps_the_queue_for_a_last_collection():
    session = core()
    session.send(b"bye")
    session.close(Reason.SERVER_SHUTDOWN)
    session.finish()
    assert session.data_to_send() == b"bye"


def test_closing_events_in_order_with_channels_read_after_disconnect():
    session = core()
    session.add_channel("a")
    session.add_channel("b")
    session.close(Reason.CLIENT_CLOSED)
    steps = session.closing_events()
    assert next(steps) == Disconnect(Reason.CLIENT_CLOSED)
    session.remove_channel("a")  # an on_disconnect handler left a channel
    assert list(steps) == [Unsubscribed("b"), Finish()]
    assert session.finish() == ("b",)
    assert session.channels == ()


def test_a_handler_error_skips_on_disconnect():
    session = core()
    session.close(Reason.HANDLER_ERROR)
    assert list(session.closing_events()) == [Finish()]


def test_closing_events_need_a_closing_session():
    with pytest.raises(UsageError):
        list(core().closing_events())


# -- time --------------------------------------------------------------------------

def test_heartbeats_their_echoes_and_the_timeout():
    session = core(heartbeats=True, heartbeat_interval=10, heartbeat_timeout=5)
    assert session.next_deadline() is None  # nobody listens yet
    session.attach(100.0)
    assert session.next_deadline() == 110.0
    session.tick(109.9)
    assert not session.has_data()
    session.tick(110.0)
    assert session.data_to_send() == encode_frame("~h~1").encode()
    assert session.next_deadline() == 115.0  # the echo is due
    session.receive(encode_frame("~h~1"), 112.0)
    assert session.events_received() == []  # an echo is not a message
    assert session.next_deadline() == 120.0
    session.tick(120.0)
    assert session.data_to_send() == encode_frame("~h~2").encode()
    session.tick(124.9)
    assert session.state is State.OPEN
    session.tick(125.0)
    assert session.close_reason == Reason.HEARTBEAT_TIMEOUT


def test_a_stale_or_future_echo_changes_nothing():
    session = core(heartbeats=True, heartbeat_interval=10, heartbeat_timeout=5)
    session.attach(100.0)
    session.tick(110.0)
    session.receive(encode_frame("~h~7") + encode_frame("~h~x"), 111.0)
    assert session.awaiting_echo()


def test_the_polling_gap():
    session = core(polling=True, close_timeout=8)
    session.detach(100.0)
    assert session.next_deadline() == 108.0
    session.attach(107.0)  # the next poll came in time
    assert session.next_deadline() is None
    session.detach(120.0)
    session.tick(127.9)
    assert session.state is State.OPEN
    session.tick(128.0)
    assert session.close_reason == Reason.CLOSE_TIMEOUT


def test_a_test_client_session_has_no_gap():
    session = core()
    session.detach(100.0)
    assert session.next_deadline() is None


def test_every_write_has_a_deadline():
    session = core(write_timeout=10)
    first = session.write_started(100.0)
    second = session.write_started(105.0)
    assert session.next_deadline() == 110.0
    session.write_finished(first)
    assert session.next_deadline() == 115.0
    assert session.tick(114.0) == ()
    assert session.tick(115.0) == (second,)
    assert session.close_reason == Reason.WRITE_TIMEOUT and not session.writing


def test_a_write_deadline_outlives_the_session():
    session = core(write_timeout=10)
    token = session.write_started(100.0)
    session.close(Reason.CLIENT_CLOSED)
    session.finish()
    assert session.next_deadline() == 110.0  # the socket must still be shut in time
    assert session.tick(110.0) == (token,)


def test_aborting_reasons_drop_output():
    for reason in Reason.ABORTING:
        session = core()
        session.send(b"x")
        session.close(reason)
        assert not session.has_data()


def test_a_limited_take_leaves_the_rest_queued_in_order():
    session = core()
    for size in (400, 300, 500, 100):
        assert session.send(b"x" * size)
    assert session.data_to_send(limit=800) == b"x" * 700  # 400 + 300; 500 more would pass 800
    assert session.queued_bytes == 600 and session.queued_messages == 2
    assert session.data_to_send(limit=10) == b"x" * 500  # one message, however large
    takes = session.takes
    assert session.put_back(b"y", takes)  # an answer that reached nobody comes back first
    assert session.data_to_send(limit=1000) == b"y" + b"x" * 100
    assert session.queued_bytes == 0 and session.data_to_send(limit=5) == b""
    assert session.send(b"1") and session.data_to_send() == b"1"
    assert not session.put_back(b"0", takes)  # "1" was taken since: "0" after it would reorder
    assert session.send(b"2") and session.data_to_send() == b"2"
    session.close(Reason.CLIENT_CLOSED)
    assert not session.put_back(b"z", session.takes)
