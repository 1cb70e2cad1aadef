"""Our Engine.IO v4 / Socket.IO v5 codecs against the parsers inside the
installed ``socket.io-client`` 4.x (its ``socket.io-parser`` and
``engine.io-parser``), both ways:

* what their encoder writes (text, attachments, polling bodies, websocket
  frames), our decoders read back as the same packets;
* what our encoders write, their decoders read back as the same packets,
  and for plain JSON the wire text is identical byte for byte;
* every input their decoders refuse, ours refuse too, and where ours are
  stricter the difference is one of the documented rules.

The parsers run in one node process per test module (tests/node/v4_parsers.js).
"""
from __future__ import annotations

from typing import Any, Dict, List

import pytest
from v4_support import mark, packet_from_json, packet_to_json, run_parsers, unmark

from socketio_wsgi import eio4, sio5
from socketio_wsgi.eio4 import Packet, PacketType
from socketio_wsgi.errors import ProtocolError
from socketio_wsgi.sio5 import Ack, Connect, ConnectError, Decoder, Disconnect, Event

# Every JSON type, written the same way by JSON.stringify and by our encoder.
EVERY_JSON: List[Any] = [
    "", "text", "émoji 😀 ☃", 'quote " back \\ slash / nl \n tab \t cr \r', "\u2028\u2029\x7f",
    "\x00\x01\x1e\x1f\b\f", 0, -1, 42, 2 ** 53 - 1, -(2 ** 53 - 1), 1.5, -0.25, 123456.789, 0.1,
    True, False, None, [], {}, [1, [2, [3, []]]], {"a": {"b": [None, True, {"c": "d"}]}},
    {"": "empty key", "ключ": "値", "x y": [{}]},
]
# Numbers whose text differs (1e-07 / 1e-7, -0.0 / 0, 1e+16 / 10000000000000000):
# the same values, compared after decoding.
NUMBERS: List[Any] = [1e-7, 1e16, 1e21, 1e300, -0.0, 5e-324, 1.7976931348623157e308, 2.5e-5]

PACKETS: List[sio5.Packet] = [
    Event("every", EVERY_JSON),
    Event("every", EVERY_JSON, "/custom", 7),
    Event("message", ["hello"]),
    Event("none", []),
    Event(5, ["a numeric event name"]),
    Event("bin", [b"\x00\x01\xff"]),
    Event("bins", [b"a", {"nested": [b"", bytearray(b"b")]}, "s", b"c" * 1000], "/custom", 0),
    Event("mixed", ["x", 1, {"k": b"\x80"}, None], id=2 ** 53 - 1),
    Event("ten", [bytes([i]) for i in range(10)]),
    Ack(3, []),
    Ack(4, EVERY_JSON, "/custom"),
    Ack(5, [b"ack-bin", {"b": b"\x01"}], "/custom"),
    Connect("/"),
    Connect("/", {"token": "abc", "n": 1, "nested": {"a": [1, 2]}}),
    Connect("/admin", {"sid": "xyz"}),
    Connect("/custom"),
    Connect("/a/b.c-d_e~f"),
    Disconnect("/"),
    Disconnect("/custom"),
    ConnectError("/", {"message": "Invalid namespace"}),
    ConnectError("/custom", {"message": "Not authorized", "data": {"code": 4}}),
    ConnectError("/", "plain"),
]
NUMBER_PACKETS: List[sio5.Packet] = [Event("numbers", NUMBERS), Ack(9, [{"n": NUMBERS}], "/custom")]
ALL_PACKETS = PACKETS + NUMBER_PACKETS


def _decode_ours(parts: List[Any]) -> List[sio5.Packet]:
    decoder = Decoder()
    out: List[sio5.Packet] = []
    for part in parts:
        out.extend(decoder.receive_text(part) if isinstance(part, str) else decoder.receive_binary(part))
    assert not decoder.waiting
    return out


def _same(a: Any, b: Any) -> bool:
    """Packet equality as the wire sees it: tuples are lists, bytearray is bytes,
    -0.0 is 0 (both JSON texts decode to equal numbers)."""
    return _plain(a) == _plain(b)


def _plain(value: Any) -> Any:
    if isinstance(value, (Event, Ack, Connect, Disconnect, ConnectError)):
        return packet_to_json(value)
    return value


def _ours_on_the_wire(packet: sio5.Packet) -> Dict[str, Any]:
    parts = sio5.encode(packet)
    messages = [eio4.message(part) for part in parts]
    ours = {"parts": parts, "polling": eio4.encode_message_payload(parts),
            "frames": eio4.encode_message_frames(parts)}
    # The shortcuts are the same as wrapping each part in a message packet.
    assert ours["polling"] == eio4.encode_payload(messages)
    assert ours["frames"] == [eio4.encode_packet(m) for m in messages]
    return ours


@pytest.fixture(scope="module")
def reference():
    """One node run: their encodings of every packet, their decodings of ours,
    and their verdicts on the refusal corpora."""
    jobs: List[Dict[str, Any]] = []
    index: Dict[str, List[int]] = {}

    def add(kind: str, job: Dict[str, Any]) -> None:
        index.setdefault(kind, []).append(len(jobs))
        jobs.append(job)

    for packet in ALL_PACKETS:
        add("encode", {"op": "sio_encode", "packet": packet_to_json(packet)})
        ours = _ours_on_the_wire(packet)
        add("decode_parts", {"op": "sio_decode", "parts": mark(ours["parts"])})
        add("decode_polling", {"op": "sio_decode_polling", "body": ours["polling"]})
        add("decode_frames", {"op": "sio_decode_frames", "frames": mark(ours["frames"])})
    for text in SIO_CORPUS:
        add("sio_verdict", {"op": "sio_decode", "parts": [text]})
    for body in EIO_CORPUS:
        add("eio_verdict", {"op": "eio_decode_payload", "body": body})
    for packet in EIO_PACKETS:
        add("eio_frame", {"op": "eio_decode_packet", "frame": mark(eio4.encode_packet(packet))})
    add("eio_payload", {"op": "eio_decode_payload", "body": eio4.encode_payload(EIO_PACKETS)})
    add("eio_encode", {"op": "eio_encode_payload", "packets": [_engine_json(p) for p in EIO_PACKETS]})
    add("handshake", {"op": "eio_decode_packet", "frame": eio4.encode_packet(HANDSHAKE.packet())})
    versions, results = run_parsers(jobs)
    assert versions["socket.io-client"].startswith("4."), versions
    return versions, {kind: [results[i] for i in positions] for kind, positions in index.items()}


# -- their encoder, our decoder ------------------------------------------------------------------

@pytest.mark.parametrize("i", range(len(ALL_PACKETS)))
def test_their_encoding_decodes_to_the_same_packet(reference, i):
    packet = ALL_PACKETS[i]
    theirs = reference[1]["encode"][i]
    assert "error" not in theirs, theirs
    parts = unmark(theirs["parts"])
    # The bare Socket.IO parts (text, then attachments as bytes) ...
    assert [_plain(p) for p in _decode_ours(parts)] == [_plain(packet)]
    # ... the HTTP long-polling body their engine.io-parser builds ...
    messages = eio4.decode_payload(theirs["polling"])
    assert all(m.type is PacketType.MESSAGE for m in messages)
    assert [_plain(p) for p in _decode_ours([m.data for m in messages])] == [_plain(packet)]
    # ... and the websocket frames (binary frames as raw bytes, or base64
    # text frames from a client started with forceBase64).
    for key in ("frames", "frames_base64"):
        frames = [eio4.decode_packet(f) for f in unmark(theirs[key])]
        assert [_plain(p) for p in _decode_ours([f.data for f in frames])] == [_plain(packet)], key


@pytest.mark.parametrize("i", range(len(PACKETS)))
def test_wire_text_is_identical_to_theirs(reference, i):
    theirs = reference[1]["encode"][i]
    ours = _ours_on_the_wire(PACKETS[i])
    assert unmark(theirs["parts"]) == ours["parts"]
    assert theirs["polling"] == ours["polling"]
    assert unmark(theirs["frames"]) == ours["frames"]


# -- our encoder, their decoder ---------------------------------------------------------------------

@pytest.mark.parametrize("i", range(len(ALL_PACKETS)))
def test_our_encoding_decodes_to_the_same_packet_for_them(reference, i):
    packet = ALL_PACKETS[i]
    for kind in ("decode_parts", "decode_polling", "decode_frames"):
        result = reference[1][kind][i]
        assert "error" not in result, (kind, result)
        assert result["waiting"] is False
        [decoded] = result["packets"]
        assert _plain(packet_from_json(decoded)) == _plain(packet), kind


# -- refusals: at least as strict as the reference ------------------------------------------------------

SIO_CORPUS: List[str] = [
    "", "7", "8[]", "x", "abc", "-1", " 2[\"a\"]", "2{}", "2", "2[]", '2"a"', "2[null]", "2[true]",
    "2[[1]]", "2[{}]", "3[]x", "3{}", '0[]', '0"tok"', '1{}', '1"x"', "4", "4[1]",
    '2["connect"]', '2["disconnect"]', '2["connect_error"]', '2["disconnecting"]',
    '2["newListener"]', '2["removeListener"]', '2abc["message-with-ack",1,"2",{"3":[false]}]',
    '2-1["a"]', '21.5["a"]', '2 1["a"]', '2["a"', '2["a"]]', "2['a']", '2["a",NaN]',
    '2["a",Infinity]', '2["a",\x01]', '2["a","\n"]', '2admin,["a"]', '0admin', '2,["a"]',
    '5-["a",{"_placeholder":true,"num":0}]', '50-["a"]', '5x-["a"]', '51["a"]', '5 1-["a"]',
    '511-["a"]', '5' + "9" * 30 + '-["e"]',
    # The cases where we are stricter (each is one documented rule; see STRICTER).
    '312', '3', '01', '112', '412"x"', '012{}', '29007199254740992["a"]', '212345678901234567["a"]',
    '2["a",1e400]', '2["a",-1e999]', '2["a","\\ud800"]', '2["a",{"\\udfff":1}]',
    '2["a",' + "1" * 401 + "]", '5+1-["a"]', '2[1.5e400]',
    # Leading zeros are digits for both.
    '5001-["a"]', '2007["a"]',
    # Valid for both.
    '2["a"]', '2/x,["a"]', '0/custom', '1/custom', '212["a"]', '30[]', '2[1,2]', '4"no"',
]
#: Inputs the reference parser accepts and we refuse, with the rule that refuses each.
STRICTER = {
    "": "an empty packet (JavaScript reads Number('') as 0: CONNECT)",
    "2": "an EVENT carries a non-empty array (the protocol text's MUST)",
    "3": "an ACK carries an array and an id",
    "312": "an ACK carries an array",
    "4": "a CONNECT_ERROR carries a message",
    "01": "only EVENT and ACK carry an ack id",
    "112": "only EVENT and ACK carry an ack id",
    '412"x"': "only EVENT and ACK carry an ack id",
    "012{}": "only EVENT and ACK carry an ack id",
    '2 1["a"]': "an ack id is plain digits (JavaScript reads ' 1' as 1)",
    '29007199254740992["a"]': "ack ids stop at 2**53-1",
    '212345678901234567["a"]': "ack ids have at most 16 digits",
    '2["a",1e400]': "numbers that overflow to Infinity",
    '2["a",-1e999]': "numbers that overflow to Infinity",
    '2[1.5e400]': "numbers that overflow to Infinity",
    '2["a","\\ud800"]': "lone surrogates",
    '2["a",{"\\udfff":1}]': "lone surrogates",
    '2["a",' + "1" * 401 + "]": "integers of more than 400 digits",
    '5+1-["a"]': "the attachment count is plain digits",
    '5 1-["a"]': "the attachment count is plain digits",
}


def _ours_refuse(text: str) -> bool:
    try:
        Decoder().receive_text(text)
    except ProtocolError:
        return True
    return False


def test_everything_they_refuse_we_refuse(reference):
    for text, result in zip(SIO_CORPUS, reference[1]["sio_verdict"]):
        if "error" in result:
            assert _ours_refuse(text), f"they refuse {text!r} ({result['error']}), we accept it"


def test_where_we_are_stricter_it_is_a_documented_rule(reference):
    stricter = {text for text, result in zip(SIO_CORPUS, reference[1]["sio_verdict"])
                if "error" not in result and _ours_refuse(text)}
    # Exactly the listed cases: no accidental difference, no stale entry.
    assert stricter == set(STRICTER)


def test_valid_inputs_agree(reference):
    for text, result in zip(SIO_CORPUS, reference[1]["sio_verdict"]):
        if "error" in result or _ours_refuse(text):
            continue
        if result["waiting"]:
            assert Decoder().receive_text(text) == []
            continue
        [theirs] = result["packets"]
        assert _plain(packet_from_json(theirs)) == _plain(sio5.decode(text)), text


# -- Engine.IO ----------------------------------------------------------------------------------------

EIO_PACKETS: List[Packet] = [
    Packet(PacketType.OPEN, '{"sid":"x"}'), Packet(PacketType.CLOSE), Packet(PacketType.PING),
    Packet(PacketType.PING, "probe"), Packet(PacketType.PONG, "probe"), Packet(PacketType.MESSAGE, "hello €"),
    Packet(PacketType.MESSAGE, b"\x00\xff"), Packet(PacketType.MESSAGE, b""), Packet(PacketType.UPGRADE),
    Packet(PacketType.NOOP), Packet(PacketType.MESSAGE, ""),
]
HANDSHAKE = eio4.Handshake("lv_VI97HAXpY6yYWAAAC", ["websocket"], 25000, 20000, 1000000)
EIO_CORPUS: List[str] = ["", "7", "4a\x1e\x1e4b", "4a\x1e8", "x", "4hello\x1ebAQIDBA==\x1e2", "6", "b"]


def _engine_json(packet: Packet) -> Dict[str, Any]:
    out: Dict[str, Any] = {"type": packet.type.name.lower()}
    if packet.data != "":
        out["data"] = mark(packet.data)
    return out


def test_engine_packets_both_ways(reference):
    results = reference[1]
    for packet, theirs in zip(EIO_PACKETS, results["eio_frame"]):
        assert theirs["packet"] == _engine_json(packet)
    [payload] = results["eio_payload"]
    assert payload["packets"] == [_engine_json(p) for p in EIO_PACKETS]
    [encoded] = results["eio_encode"]
    assert encoded["body"] == eio4.encode_payload(EIO_PACKETS)
    assert eio4.decode_payload(encoded["body"]) == EIO_PACKETS


def test_engine_refusals_match(reference):
    for body, result in zip(EIO_CORPUS, reference[1]["eio_verdict"]):
        they_refuse = any(p["type"] == "error" for p in result["packets"])
        try:
            eio4.decode_payload(body)
            we_refuse = False
        except ProtocolError:
            we_refuse = True
        assert we_refuse == they_refuse, body


def test_handshake_reads_as_an_open_packet(reference):
    [theirs] = reference[1]["handshake"]
    assert theirs["packet"]["type"] == "open"
    assert eio4.Handshake.decode(Packet(PacketType.OPEN, theirs["packet"]["data"])) == HANDSHAKE


# -- the scripted real client, against a minimal polling server made of these codecs ------------------
#
# Not the project's server (that wiring is elsewhere): a few lines of
# http.server on 127.0.0.1 that speak Engine.IO polling through eio4 and
# Socket.IO through sio5, so that the real client exercises both codecs over
# real HTTP and tests/node/v4_client.js + run_client are proven to work.

import queue  # noqa: E402
import threading  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from urllib.parse import parse_qs, urlparse  # noqa: E402

from v4_support import run_client  # noqa: E402

NAMESPACES = ("/", "/custom")


class _Session:
    def __init__(self, sid: str):
        self.sid = sid
        self.outbox: "queue.Queue[List[Packet]]" = queue.Queue()
        self.decoder = Decoder()
        self.next_id = 0
        self.lock = threading.Lock()

    def send(self, packet: sio5.Packet) -> None:
        # A packet and its attachments go out together, in order.
        self.outbox.put([eio4.message(part) for part in sio5.encode(packet)])

    def handle(self, packet: sio5.Packet) -> None:
        if isinstance(packet, Connect):
            auth = packet.data or {}
            if packet.namespace not in NAMESPACES:
                self.send(ConnectError(packet.namespace, {"message": "Invalid namespace"}))
            elif auth.get("refuse"):
                self.send(ConnectError(packet.namespace, {"message": "refused", "data": {"why": auth["refuse"]}}))
            else:
                self.send(Connect(packet.namespace, {"sid": self.sid + packet.namespace}))
                self.send(Event("welcome", [auth, packet.namespace], packet.namespace))
        elif isinstance(packet, Event):
            if packet.name == "ask":     # the server asks the client, which answers with an ack
                self.send(Event("question", packet.args, packet.namespace, self.next_id))
                self.next_id += 1
            elif packet.id is not None:  # an ack carrying the args back
                self.send(Ack(packet.id, packet.args, packet.namespace))
            else:                        # an event carrying them back
                self.send(Event("echo", [packet.name, *packet.args], packet.namespace))
        elif isinstance(packet, Ack):
            self.send(Event("answer", [packet.id, *packet.args], packet.namespace))


class _PollingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _PollingHandler)
        self.sessions: Dict[str, _Session] = {}
        self.stopping = threading.Event()
        self.count = 0

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys
        # A long poll answered after its client left: nothing to report.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _PollingHandler(BaseHTTPRequestHandler):
    server: _PollingServer

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _query(self) -> Dict[str, List[str]]:
        return parse_qs(urlparse(self.path).query)

    def _session(self) -> Any:
        query = self._query()
        if query.get("EIO") != ["4"] or query.get("transport") != ["polling"]:
            return None
        return self.server.sessions.get(query.get("sid", [""])[0])

    def do_GET(self) -> None:
        query = self._query()
        session = self._session()
        if "sid" not in query and query.get("EIO") == ["4"]:
            self.server.count += 1
            session = _Session(f"s{self.server.count}")
            self.server.sessions[session.sid] = session
            self._reply(200, eio4.encode_payload([eio4.Handshake(session.sid, upgrades=()).packet()]))
            return
        if session is None:
            return self._reply(400, "unknown sid")
        packets: List[Packet] = []
        for _ in range(40):  # at most 40 x 0.25 s, then a ping keeps the client polling
            if self.server.stopping.is_set():
                break
            try:
                packets.extend(session.outbox.get(timeout=0.25))
                break
            except queue.Empty:
                continue
        while True:
            try:
                packets.extend(session.outbox.get_nowait())
            except queue.Empty:
                break
        self._reply(200, eio4.encode_payload(packets or [Packet(PacketType.PING)]))

    def do_POST(self) -> None:
        session = self._session()
        if session is None:
            return self._reply(400, "unknown sid")
        length = int(self.headers.get("Content-Length", "0"))
        if length > eio4.DEFAULT_MAX_PAYLOAD:
            return self._reply(413, "too large")
        try:
            packets = eio4.decode_payload(self.rfile.read(length))
            with session.lock:
                for packet in packets:
                    if packet.type is not PacketType.MESSAGE:
                        continue
                    done = (session.decoder.receive_binary(packet.data) if packet.binary
                            else session.decoder.receive_text(packet.data))
                    for item in done:
                        session.handle(item)
        except ProtocolError as exc:
            return self._reply(400, str(exc))
        self._reply(200, "ok")


@pytest.fixture(scope="module")
def polling_server():
    server = _PollingServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


def _events(lines: List[Dict[str, Any]], name: str) -> List[List[Any]]:
    return [unmark(line["args"]) for line in lines if line["type"] == "event" and line["name"] == name]


def test_real_client_every_json_type_and_binary_both_ways(polling_server):
    blob = {"$bin": "AAEC/w=="}
    lines = run_client({
        "url": polling_server, "transports": ["polling"], "auth": {"token": "t-1", "n": [1, 2]},
        "steps": [
            {"emit": "data", "args": EVERY_JSON},
            {"emit": "binary", "args": [blob, {"deep": [blob, "x"]}, "tail"]},
            {"wait": "echo", "count": 2},
            {"emit": "with-ack", "args": [1, "two", blob], "ack": True},
            {"disconnect": True},
        ],
    })
    assert lines[0]["type"] == "connect" and lines[0]["transport"] == "polling"
    assert _events(lines, "welcome") == [[{"token": "t-1", "n": [1, 2]}, "/"]]
    raw = b"\x00\x01\x02\xff"
    assert _events(lines, "echo") == [["data", *EVERY_JSON], ["binary", raw, {"deep": [raw, "x"]}, "tail"]]
    [ack] = [line for line in lines if line["type"] == "ack"]
    assert unmark(ack["args"]) == [1, "two", raw]
    assert lines[-1] == {"type": "done"}


def test_real_client_answers_server_acks_and_uses_a_custom_namespace(polling_server):
    lines = run_client({
        "url": polling_server, "namespace": "/custom", "transports": ["polling"],
        "ack_replies": {"question": ["reply", {"$bin": "cXE="}]},
        "steps": [{"emit": "ask", "args": ["q?"]}, {"wait": "answer"}],
    })
    assert _events(lines, "welcome") == [[{}, "/custom"]]
    [question] = [line for line in lines if line["type"] == "event" and line["name"] == "question"]
    assert question["ack"] is True and unmark(question["args"]) == ["q?"]
    assert _events(lines, "answer") == [[0, "reply", b"qq"]]


def test_real_client_sees_connect_errors(polling_server):
    unknown = run_client({"url": polling_server, "namespace": "/nope", "transports": ["polling"]})
    assert [line["type"] for line in unknown] == ["connect_error"]
    assert unknown[0]["message"] == "Invalid namespace"
    refused = run_client({"url": polling_server, "transports": ["polling"], "auth": {"refuse": "no token"}})
    assert refused == [{"type": "connect_error", "message": "refused", "data": {"why": "no token"}}]


def test_real_client_reconnects_after_its_engine_closes(polling_server):
    lines = run_client({
        "url": polling_server, "transports": ["polling"], "reconnection": True,
        "steps": [{"emit": "before", "args": [1]}, {"wait": "echo"}, {"close_engine": True},
                  {"wait": "connect", "count": 2}, {"emit": "after", "args": [2]},
                  {"wait": "echo", "count": 2}],
    })
    kinds = [line["type"] for line in lines]
    assert kinds.count("connect") == 2 and "disconnect" in kinds
    first, second = [line["id"] for line in lines if line["type"] == "connect"]
    assert first != second  # this little server keeps no session to recover
    assert _events(lines, "echo") == [["before", 1], ["after", 2]]
