"""Pure, socket-free tests of the I/O-free parts: origins, dispatch, batches, options."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from socketio_wsgi.commands import HEARTBEAT, MESSAGE, SUBSCRIBE, UNSUBSCRIBE, plan_batch
from socketio_wsgi.config import Options
from socketio_wsgi.errors import ConfigurationError
from socketio_wsgi.events import HandlerRegistry
from socketio_wsgi.origins import OriginPolicy
from socketio_wsgi.protocol import Heartbeat, ProtocolError
from socketio_wsgi.session import new_session_id


@pytest.mark.parametrize("origins, origin, host, allowed", [
    ("*", "http://anything:1", None, True),
    ("*", "null", None, True),
    (None, "http://127.0.0.1:8000", "127.0.0.1:8000", True),
    (None, "http://127.0.0.1:8001", "127.0.0.1:8000", False),
    (None, "http://example.com", "example.com", True),
    (None, "https://example.com", "example.com:443", True),
    (None, "null", "example.com", False),
    (["example.com"], "http://example.com:1234", None, True),
    (["example.com"], "http://EXAMPLE.com", None, True),
    (["example.com"], "http://evil.com", None, False),
    (["example.com:8000"], "http://example.com:8000", None, True),
    (["example.com:8000"], "http://example.com", None, False),
    (["*:3000"], "http://a.test:3000", None, True),
    (["*:3000"], "http://a.test", None, False),
    (["127.0.0.1:*"], "http://127.0.0.1:18082", None, True),
    (["https://example.com"], "https://example.com", None, True),
    (["https://example.com"], "http://example.com", None, False),
    (["https://example.com"], "https://example.com:8443", None, False),
    (["*.example.com"], "http://chat.example.com", None, True),
    (["*.example.com"], "http://example.com.evil.net", None, False),
    (["example.com"], "null", None, False),
    (["example.com"], "garbage", None, False),
    (["[::1]:9000"], "http://[::1]:9000", None, True),
])
def test_origin_policy(origins, origin, host, allowed):
    assert OriginPolicy(origins).allows(origin, host) is allowed


def test_missing_origin_header_is_not_a_cross_origin_browser_request():
    assert OriginPolicy(["example.com"]).allows(None) is True


def noop(*args, **kwargs):
    pass


def test_dispatch_cache_is_reused_and_invalidated_on_registration():
    registry = HandlerRegistry()
    registry.add("on_message", noop, "^room")
    key = frozenset({"room-1"})
    first = registry.bindings_for("on_message", key)
    assert registry.bindings_for("on_message", key) is first  # cached: no regex scan
    registry.add("on_message", noop)
    assert len(registry.bindings_for("on_message", key)) == 2


def test_dispatch_rules_on_the_registry():
    registry = HandlerRegistry()
    calls = []
    registry.add("on_message", lambda *a: calls.append("plain"))
    registry.add("on_message", lambda *a: calls.append("room"), "room")
    registry.add("on_unsubscribe", lambda *a: calls.append("unsub-room"), "^room")
    registry.fire("on_message", frozenset(), None, None, {}, "m")
    registry.fire("on_message", frozenset({"room-9", "x"}), None, None, {}, "m")
    registry.fire("on_message", frozenset({"lobby"}), None, None, {}, "m")
    # on_unsubscribe matches the channel argument, not the channels still held
    registry.fire("on_unsubscribe", frozenset({"lobby"}), None, None, {}, "room-2")
    registry.fire("on_unsubscribe", frozenset({"room-1"}), None, None, {}, "lobby")
    assert calls == ["plain", "plain", "room", "plain", "unsub-room"]


@pytest.mark.parametrize("batch, plan", [
    (["a", "b"], [(MESSAGE, "a"), (MESSAGE, "b")]),
    (["__subscribe__", "room-1"], [(SUBSCRIBE, "room-1")]),
    (["__unsubscribe__", "room-1", "x"], [(UNSUBSCRIBE, "room-1"), (MESSAGE, "x")]),
    (["__array__", "1,2,3"], [(MESSAGE, "1,2,3")]),
    (["__subscribe__", 42], [(SUBSCRIBE, "42")]),
    ([Heartbeat("3"), "ok"], [(HEARTBEAT, "3"), (MESSAGE, "ok")]),
    (["__array__", {"a": 1}], [(MESSAGE, {"a": 1})]),
])
def test_plan_batch(batch, plan):
    assert plan_batch(batch) == plan


@pytest.mark.parametrize("batch", [
    ["__subscribe__"], ["__subscribe__", {"a": 1}], ["__subscribe__", ""], ["__subscribe__", True],
    ["__unsubscribe__", Heartbeat("1")], ["__subscribe__", "x" * 1000],
])
def test_plan_batch_rejects_broken_commands(batch):
    with pytest.raises(ProtocolError):
        plan_batch(batch)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(["__subscribe__", "__unsubscribe__", "__array__"]),
                          st.text(max_size=5), st.integers(), st.none(), st.booleans(),
                          st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                          st.builds(Heartbeat, st.text("0123456789", max_size=3))), max_size=8))
def test_plan_batch_either_plans_or_raises_protocol_error(batch):
    try:
        plan = plan_batch(batch)
    except ProtocolError:
        return
    assert all(kind in (MESSAGE, SUBSCRIBE, UNSUBSCRIBE, HEARTBEAT) for kind, _ in plan)


def test_session_ids_are_twenty_digits():
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 20 and i.isdigit() for i in ids)


@pytest.mark.parametrize("options", [
    {"transports": ["carrier-pigeon"]}, {"heartbeat_interval": 0}, {"close_timeout": -1},
    {"max_message_size": "big"}, {"resource": "/"}, {"max_message_size": 10, "max_payload_size": 5},
    {"polling_duration": True},
])
def test_bad_options_raise_configuration_error(options):
    with pytest.raises(ConfigurationError):
        Options(**options)


def test_handshake_limiter_allows_bursts_then_refills():
    from socketio_wsgi.ratelimit import HandshakeLimiter
    now = [0.0]
    limiter = HandshakeLimiter(per_minute=3, max_addresses=2, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b") is True  # addresses are independent
    now[0] += 20.0  # one token back (3 a minute)
    assert [limiter.allow("a") for _ in range(2)] == [True, False]
    limiter.allow("c")  # evicts the least recently seen bucket ("b")
    assert set(limiter._buckets) == {"a", "c"}
