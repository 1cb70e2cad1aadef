"""The pure pieces of the Socket.IO 4 side, with plain calls: the Engine.IO
link's rules (ping/pong, upgrade, close) and the once-per-protocol encoding."""
from __future__ import annotations

import pytest

from socketio_wsgi import sio5
from socketio_wsgi.eio4 import Packet, PacketType
from socketio_wsgi.eio4_link import PING_TIMEOUT, POLLING, WEBSOCKET, EngineIOLink, LinkState
from socketio_wsgi.errors import ProtocolError, UsageError
from socketio_wsgi.events import HandlerRegistry, on_event, use_registry
from socketio_wsgi.outbound import Emission, from_json_args, records, split_records, to_json_args, v06_as_v4
from socketio_wsgi.protocol import decode, encode


def link(transport=POLLING):
    return EngineIOLink("sid1", 10.0, 5.0, 1000, now=100.0, transport=transport)


def test_handshake_announces_the_upgrade_only_from_polling():
    assert link().handshake().upgrades == ("websocket",)
    assert link(WEBSOCKET).handshake().upgrades == ()
    assert link().handshake_record().startswith(b'\x1e0{"sid":"sid1"')


def test_ping_then_pong_then_next_ping():
    lk = link()
    assert lk.next_deadline() == 110.0
    assert not lk.tick(109.9)
    assert lk.tick(110.0) and lk.take() == b"\x1e2"
    assert lk.next_deadline() == 115.0
    assert lk.receive(Packet(PacketType.PONG), 111.0) is None
    assert lk.next_deadline() == 121.0


def test_no_pong_closes_with_ping_timeout():
    lk = link()
    lk.tick(110.0)
    assert not lk.tick(114.9) and lk.open
    lk.tick(115.0)
    assert lk.state is LinkState.CLOSED and lk.close_reason == PING_TIMEOUT
    assert lk.next_deadline() is None


@pytest.mark.parametrize("kind", [PacketType.OPEN, PacketType.PING, PacketType.UPGRADE, PacketType.PONG])
def test_packets_a_client_may_not_send(kind):
    with pytest.raises(ProtocolError):
        link().receive(Packet(kind), 100.0)


def test_messages_pass_close_closes():
    lk = link()
    message = Packet(PacketType.MESSAGE, "2[\"x\"]")
    assert lk.receive(message, 100.0) is message
    assert lk.receive(Packet(PacketType.NOOP), 100.0) is None
    lk.receive(Packet(PacketType.CLOSE), 100.0)
    assert not lk.open


def test_upgrade_probe_noop_and_switch():
    lk = link()
    assert lk.probe() == b"3probe"
    assert lk.state is LinkState.UPGRADING and lk.take() == b"\x1e6"
    with pytest.raises(ProtocolError):
        lk.probe()  # a second probe
    lk.upgraded(101.0)
    assert lk.transport == WEBSOCKET and lk.state is LinkState.OPEN
    with pytest.raises(ProtocolError):
        lk.probe()  # no upgrade from websocket
    with pytest.raises(ProtocolError):
        lk.upgraded(102.0)


def test_failed_upgrade_keeps_polling():
    lk = link()
    lk.probe()
    lk.upgrade_failed()
    assert lk.state is LinkState.OPEN and lk.transport == POLLING
    with pytest.raises(ProtocolError):
        lk.upgraded(101.0)


def test_unknown_transport_is_a_usage_error():
    with pytest.raises(UsageError):
        EngineIOLink("s", 1.0, 1.0, 10, 0.0, "flashsocket")


# -- outbound ------------------------------------------------------------------------


def test_an_emission_is_encoded_once_per_protocol_and_namespace():
    emission = Emission("news", ("a", 1, b"\x00"))
    v06 = emission.v06()
    assert emission.v06() is v06
    assert decode(v06.decode()) == [{"$event": "news", "args": ["a", 1, "AA=="]}]
    v4 = emission.v4("/")
    assert emission.v4("/") is v4
    assert v4 == b'\x1e451-["news","a",1,{"_placeholder":true,"num":0}]\x1ebAA=='
    assert emission.v4("/chat").startswith(b"\x1e451-/chat,[")
    assert list(split_records(v4)) == ['451-["news","a",1,{"_placeholder":true,"num":0}]', b"\x00"]


def test_a_message_is_the_message_event():
    emission = Emission.message({"x": [1, None]})
    assert emission.v06() == encode({"x": [1, None]}).encode()
    assert emission.v4() == b'\x1e42["message",{"x":[1,null]}]'


@pytest.mark.parametrize("name", ["connect", "disconnect", 7])
def test_reserved_or_odd_event_names_cannot_be_emitted(name):
    with pytest.raises(UsageError):
        Emission(name, ())


def test_0_6_payloads_as_v4_records():
    frame = encode(["a", "b"]).encode()
    assert v06_as_v4(frame, "/") == b'\x1e42["message","a"]\x1e42["message","b"]'
    event = Emission("e", (1,)).v06()
    assert v06_as_v4(event, "/x") == b'\x1e42/x,["e",1]'


def test_records_of_an_ack_and_json_args_round_trip():
    assert records(sio5.Ack(3, ("ok",))) == b'\x1e433["ok"]'
    args = ("a", b"\x01\x02", [{"k": b""}])
    assert from_json_args(to_json_args(args)) == ("a", b"\x01\x02", [{"k": b""}])
    with pytest.raises(ValueError):
        from_json_args([{"$b64": "!!"}])


# -- on_event ---------------------------------------------------------------------------


def test_on_event_registers_named_handlers_and_namespaces():
    with use_registry(HandlerRegistry()) as registry:
        @on_event("hello", namespace="/chat")
        def hello(request, socket, context, *args):
            return args

        on_event("bye", lambda *a: None, channel="^room")
        assert registry.namespaces == {"/", "/chat"}
        assert registry.named_bindings("/chat", "hello") == [(hello, None)]
        assert registry.fire_named("/chat", "hello", frozenset(), None, None, {}, (1, 2)) == (1, 2)
        # a channel-bound handler fires only for holders of a matching channel
        assert registry.named_bindings("/", "bye")[0][1] == "^room"


@pytest.mark.parametrize("name", ["message", "__subscribe__", "connect", "", 3])
def test_on_event_refuses_reserved_names(name):
    from socketio_wsgi.errors import EventError

    with use_registry(HandlerRegistry()), pytest.raises(EventError):
        on_event(name, lambda *a: None)


# -- recovery --------------------------------------------------------------------------


def test_recovery_keeps_what_came_after_an_offset():
    from socketio_wsgi.recovery import Recovery

    kept = Recovery("pid", max_packets=10, max_bytes=1000)
    for n in range(5):
        kept.record(str(n), b"p%d" % n)
    assert kept.after("2") == [b"p3", b"p4"]
    assert kept.after("4") == []
    assert kept.after(None) == [b"p0", b"p1", b"p2", b"p3", b"p4"]
    assert kept.after("unknown") is None


def test_recovery_is_bounded_by_count_and_bytes():
    from socketio_wsgi.recovery import Recovery

    kept = Recovery("pid", max_packets=3, max_bytes=10)
    for n in range(6):
        kept.record(str(n), b"xx")
    assert len(kept.log) == 3 and kept.bytes == 6
    assert kept.after("1") is None  # dropped: no recovery past it
    assert kept.after("3") == [b"xx", b"xx"]
    kept.record("big", b"y" * 9)
    assert [offset for offset, _ in kept.log] == ["big"] and kept.bytes == 9
    assert kept.after(None) is None  # the log is full: some may be missing


@pytest.mark.parametrize("args", [(), (None,), ("é\u2028", 1.5, -0.0, 2**53), ([{"a": [True, None]}],),
                                  ({"_placeholder": True, "num": 0},)])
@pytest.mark.parametrize("namespace", ["/", "/chat"])
def test_the_direct_text_encoding_is_the_codecs(args, namespace):
    assert Emission("ev", args).v4(namespace) == records(sio5.Event("ev", args, namespace))
