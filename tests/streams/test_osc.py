"""OSC control in over real sockets: liblo's oscsend, python-osc clients and raw bytes."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator

import pytest
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.tcp_client import SimpleTCPClient
from pythonosc.udp_client import SimpleUDPClient

from streams import slip
from streams.cue import Cue, CueError
from streams.osc import NOT_AUTHORISED, OscServer, decode_packet

pytestmark = pytest.mark.timeout(20)


class RecordingHandler:
    """A real ``CueHandler`` that records what it applies (the transport is under test)."""

    def __init__(self) -> None:
        self.cues: list[Cue] = []
        self.origin_unix = 1_700_000_000.0

    async def handle(self, cue: Cue) -> object:
        if cue.kind == "voice" and cue.args["name"] == "nope":
            raise CueError("no voice named 'nope'")
        self.cues.append(cue)
        return {"ok": True}

    def show_sample_at_unix(self, unix_s: float) -> int:
        return round((unix_s - self.origin_unix) * 48_000)

    def status(self) -> dict[str, object]:
        return {"cues": len(self.cues), "last": self.cues[-1].kind if self.cues else None}


def message(address: str, *args: tuple[object, str]) -> bytes:
    """An OSC message with explicitly typed arguments: ``message("/a", (60, "i"))``."""
    builder = OscMessageBuilder(address)
    for value, tag in args:
        builder.add_arg(value, tag)
    return builder.build().dgram


def parse_reply(data: bytes) -> tuple[str, dict[str, object]]:
    msg = OscMessage(data)
    assert len(msg.params) == 1 and isinstance(msg.params[0], str)
    return msg.address, json.loads(msg.params[0])


class UdpPeer:
    """A UDP controller: sends packets from one port and reads the replies sent back to it."""

    def __init__(self, port: int) -> None:
        self.server = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)

    def send(self, packet: bytes) -> None:
        self.sock.sendto(packet, self.server)

    async def reply(self, timeout: float = 3.0) -> tuple[str, dict[str, object]]:
        data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.sock, 65536),
                                      timeout)
        return parse_reply(data)

    async def ask(self, packet: bytes) -> tuple[str, dict[str, object]]:
        self.send(packet)
        return await self.reply()

    def close(self) -> None:
        self.sock.close()


class TcpPeer:
    """A TCP controller speaking SLIP-framed OSC 1.1, as QLab does."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = slip.SlipDecoder()
        self.frames: list[bytes] = []

    @classmethod
    async def connect(cls, port: int) -> TcpPeer:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    def send(self, packet: bytes) -> None:
        self.writer.write(slip.encode(packet))

    async def reply(self, timeout: float = 3.0) -> tuple[str, dict[str, object]]:
        while not self.frames:
            chunk = await asyncio.wait_for(self.reader.read(65536), timeout)
            assert chunk, "the server closed the connection"
            for item in self.decoder.feed(chunk):
                assert isinstance(item, bytes)
                self.frames.append(item)
        return parse_reply(self.frames.pop(0))

    async def ask(self, packet: bytes) -> tuple[str, dict[str, object]]:
        self.send(packet)
        return await self.reply()

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@pytest.fixture
def handler() -> RecordingHandler:
    return RecordingHandler()


@pytest.fixture
async def server(handler: RecordingHandler) -> AsyncIterator[OscServer]:
    async with OscServer(handler, port=0) as osc:
        yield osc


@pytest.fixture
async def peer(server: OscServer) -> AsyncIterator[UdpPeer]:
    udp = UdpPeer(server.port)
    yield udp
    udp.close()


async def oscsend(target: str, *argv: str) -> None:
    proc = await asyncio.create_subprocess_exec("oscsend", *target.split(), *argv,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


async def until(condition: object, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


# -- real external clients --------------------------------------------------------------------


async def test_liblo_oscsend_over_udp_becomes_cues(server: OscServer,
                                                   handler: RecordingHandler) -> None:
    host = f"localhost {server.port}"
    await oscsend(host, "/livesinger/note/on", "if", "60", "0.8")
    await oscsend(host, "/livesinger/note/on", "ifs", "62", "0.5", "la")
    await oscsend(host, "/livesinger/singer/alto/expr/vibrato_depth", "f", "1.5")
    await oscsend(host, "/livesinger/note/off", "f", "60")  # a float where an int is documented
    await oscsend(host, "/livesinger/tempo", "i", "96")  # an int where a float is documented
    await oscsend(host, "/go")
    await oscsend(host, "/cue/12.5/start")
    await until(lambda: len(handler.cues) == 7)
    assert [(c.kind, c.args, c.singer) for c in handler.cues] == [
        ("note.on", {"pitch": 60.0, "velocity": pytest.approx(0.8), "syllable": None}, None),
        ("note.on", {"pitch": 62.0, "velocity": 0.5, "syllable": "la"}, None),
        ("expr", {"name": "vibrato_depth", "value": 1.5}, "alto"),
        ("note.off", {"pitch": 60.0}, None),
        ("tempo", {"bpm": 96.0}, None),
        ("go", {}, None),
        ("cue.start", {"id": "12.5"}, None),
    ]
    assert all(c.at_sample is None and c.source.startswith("osc-udp ") for c in handler.cues)
    assert server.messages_ok == 7 and server.bad_packets == 0 and not server.errors


async def test_liblo_oscsend_over_tcp_length_prefixed(server: OscServer,
                                                      handler: RecordingHandler) -> None:
    await oscsend(f"osc.tcp://127.0.0.1:{server.port}", "/livesinger/lyric", "s", "hello world")
    await oscsend(f"osc.tcp://127.0.0.1:{server.port}", "/livesinger/song/seek", "i", "8")
    await until(lambda: len(handler.cues) == 2)
    assert [(c.kind, c.args) for c in handler.cues] == [
        ("lyric", {"text": "hello world"}), ("song.seek", {"beat": 8.0})]
    assert handler.cues[0].source.startswith("osc-tcp ")


async def test_python_osc_udp_client_gets_qlab_style_replies(server: OscServer,
                                                             handler: RecordingHandler) -> None:
    client = SimpleUDPClient("127.0.0.1", server.port)
    try:
        client.send_message("/livesinger/song/load", "jasmine")
        reply = await asyncio.to_thread(client.receive, 3.0)
        assert parse_reply(reply) == ("/reply/livesinger/song/load", {
            "address": "/livesinger/song/load", "status": "ok", "data": {"ok": True}})
        client.send_message("/thump", [])
        address, body = parse_reply(await asyncio.to_thread(client.receive, 3.0))
        assert address == "/reply/thump" and body["status"] == "ok"
        client.send_message("/livesinger/voice", "nope")  # the handler refuses it
        address, body = parse_reply(await asyncio.to_thread(client.receive, 3.0))
        assert address == "/reply/livesinger/voice"
        assert body == {"address": "/livesinger/voice", "status": "error",
                        "data": "no voice named 'nope'"}
    finally:
        client._sock.close()
    assert [c.kind for c in handler.cues] == ["song.load", "thump"]
    assert handler.cues[0].args == {"song": "jasmine"}
    assert server.errors == {"refused": 1}


async def test_python_osc_tcp_client_slip_messages_and_replies(
        server: OscServer, handler: RecordingHandler) -> None:
    def talk() -> list[bytes]:
        with SimpleTCPClient("127.0.0.1", server.port, mode="1.1") as client:
            client.send_message("/livesinger/song/play", 4)
            client.send_message("/livesinger/singer/bass/voice", "deep")
            client.send_message("/livesinger/expr/wobble", 1.0)
            replies: list[bytes] = []
            while len(replies) < 3:
                got = client.receive(3.0)
                assert got, "no reply"
                replies.extend(got)
            return replies

    replies = [parse_reply(r) for r in await asyncio.to_thread(talk)]
    assert [(a, b["status"]) for a, b in replies] == [
        ("/reply/livesinger/song/play", "ok"), ("/reply/livesinger/singer/bass/voice", "ok"),
        ("/reply/livesinger/expr/wobble", "error")]
    assert "unknown expression 'wobble'" in str(replies[2][1]["data"])
    assert [(c.kind, c.args, c.singer) for c in handler.cues] == [
        ("song.play", {"beat": 4.0}, None), ("voice", {"name": "deep"}, "bass")]


# -- argument types ---------------------------------------------------------------------------


async def test_numbers_of_either_kind_are_taken_and_bools_are_refused(
        peer: UdpPeer, handler: RecordingHandler) -> None:
    assert (await peer.ask(message("/livesinger/song/play")))[1]["status"] == "ok"
    assert (await peer.ask(message("/livesinger/song/play", (2, "i"))))[1]["status"] == "ok"
    assert (await peer.ask(message("/livesinger/tempo", (120.5, "d"))))[1]["status"] == "ok"
    assert (await peer.ask(message("/livesinger/note/on", (64, "h"))))[1]["status"] == "ok"
    _, body = await peer.ask(message("/livesinger/tempo", (True, "T")))
    assert body["data"] == ("/livesinger/tempo expects f:bpm; argument 1 (bpm) must be a "
                            "number (i or f), got T True")
    assert [c.args for c in handler.cues] == [
        {"beat": None}, {"beat": 2.0}, {"bpm": 120.5},
        {"pitch": 64.0, "velocity": 0.8, "syllable": None}]


# -- bundles ----------------------------------------------------------------------------------


async def test_a_future_bundle_is_scheduled_on_the_show_clock(
        peer: UdpPeer, handler: RecordingHandler) -> None:
    at_unix = float(int(time.time()) + 30) + 0.25  # exact in NTP fixed point
    bundle = OscBundleBuilder(at_unix)
    bundle.add_content(OscMessage(message("/livesinger/note/on", (67, "i"), (0.9, "f"))))
    bundle.add_content(OscMessage(message("/livesinger/lyric", ("ah", "s"))))
    peer.send(bundle.build().dgram)
    replies = [await peer.reply(), await peer.reply()]
    assert [b["status"] for _, b in replies] == ["ok", "ok"]
    now = OscBundleBuilder(0)  # the "immediately" timetag
    now.add_content(OscMessage(message("/livesinger/note/off", (67, "i"))))
    assert (await peer.ask(now.build().dgram))[1]["status"] == "ok"
    expected = handler.show_sample_at_unix(at_unix)
    assert [(c.kind, c.at_sample) for c in handler.cues] == [
        ("note.on", expected), ("lyric", expected), ("note.off", None)]


# -- malformed input --------------------------------------------------------------------------

GOOD = message("/livesinger/note/on", (60, "i"), (0.5, "f"))


def nested(depth: int) -> bytes:
    packet = GOOD
    for _ in range(depth):
        packet = b"#bundle\0" + b"\0" * 7 + b"\1" + struct.pack(">i", len(packet)) + packet
    return packet


BAD: list[tuple[str, bytes, str]] = [
    ("truncated argument", GOOD[:-4], "truncated"),
    ("cut mid-word", GOOD[:-3], "not a multiple of 4"),
    ("bad type tag", b"/livesinger/go\0\0,x\0\0" + b"\0" * 4, "unsupported type tag 'x'"),
    ("type tags without comma", b"/livesinger/go\0\0ii\0\0", "must start with ','"),
    ("unpadded address", b"/livesinger/lyric\0,s\0\0hi\0\0\0\0", "not padded"),
    ("stray bytes", GOOD + b"\0\0\0\0", "stray bytes"),
    ("blob larger than the packet", b"/livesinger/lyric\0\0\0,b\0\0" + struct.pack(">i", 1 << 20),
     "blob of 1048576 bytes does not fit"),
    ("a 60 kB blob where a string belongs", message("/livesinger/lyric", (b"x" * 60_000, "b")),
     "argument 1 (text) must be a string (s), got b"),
    ("negative bundle element", b"#bundle\0" + b"\0" * 7 + b"\1" + struct.pack(">i", -4),
     "bundle element of -4 bytes"),
    ("bundles nested too deep", nested(20), "bundles nested deeper than 8"),
    ("not OSC at all", b"GET / HTTP/1.1\r\n", "not an OSC message"),
    ("address not UTF-8", b"/\xff\xfe\0,\0\0\0", "not UTF-8"),
    ("empty datagram", b"", "not an OSC message"),
    ("unknown address", message("/x"), "unknown address /x (see docs/osc.md)"),
    ("no such command", message("/livesinger/sing", ("la", "s")), "unknown address"),
    ("string for a number", message("/livesinger/tempo", ("fast", "s")),
     "expects f:bpm; argument 1 (bpm) must be a number (i or f), got s 'fast'"),
    ("no arguments", message("/livesinger/note/on"),
     "expects i:pitch [f:velocity] [s:syllable]; got 0 arguments"),
    ("too many arguments", message("/livesinger/note/off", (60, "i"), (61, "i")),
     "expects i:pitch; got 2 arguments"),
    ("an array", message("/livesinger/note/off", ([60], "")), "arrays are not accepted"),
    ("pitch out of range", message("/livesinger/note/on", (200, "i")),
     "pitch (MIDI) must be within 0..127, got 200"),
    ("velocity out of range", message("/livesinger/note/on", (60, "i"), (2.0, "f")),
     "velocity must be within 0..1, got 2.0"),
    ("NaN", message("/livesinger/song/seek", (math.nan, "f")), "beat must be within"),
    ("expression out of range", message("/livesinger/expr/volume", (9.0, "f")),
     "volume must be within 0..2"),
    ("bad singer name", message("/livesinger/singer/a*b/go"), "may only hold"),
    ("refused by the show", message("/livesinger/voice", ("nope", "s")), "no voice named"),
]


@pytest.mark.parametrize(("case", "packet", "needle"), BAD, ids=[b[0] for b in BAD])
async def test_each_malformed_packet_gets_an_error_naming_the_problem(
        case: str, packet: bytes, needle: str, server: OscServer, peer: UdpPeer,
        handler: RecordingHandler) -> None:
    _, body = await peer.ask(packet)
    assert body["status"] == "error"
    assert needle in str(body["data"]), body
    assert sum(server.errors.values()) == 1 and server.messages_ok == 0
    assert handler.cues == []
    assert (await peer.ask(GOOD))[1]["status"] == "ok"  # and the server still serves
    assert len(handler.cues) == 1


def good(i: int) -> bytes:
    return message("/livesinger/note/on", (40 + i, "i"), (0.5, "f"), (f"s{i}", "s"))


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_good_messages_interleaved_with_bad_ones_are_each_applied_once_in_order(
        transport: str, server: OscServer, handler: RecordingHandler) -> None:
    bad = [packet for _, packet, _ in BAD if packet or transport == "udp"]  # b"" is no frame
    sequence = [p for i in range(len(bad)) for p in (good(i), bad[i])]
    client: UdpPeer | TcpPeer = (UdpPeer(server.port) if transport == "udp"
                                 else await TcpPeer.connect(server.port))
    statuses = []
    for packet in sequence:
        statuses.append((await client.ask(packet))[1]["status"])
    assert statuses == ["ok", "error"] * len(bad)
    assert [c.args["syllable"] for c in handler.cues] == [f"s{i}" for i in range(len(bad))]
    assert server.messages_ok == len(bad)
    parse_failures = sum(1 for p in bad if _unparseable(p))
    assert server.bad_packets == parse_failures
    assert sum(server.errors.values()) == len(bad)
    if isinstance(client, TcpPeer):
        await client.close()
    else:
        client.close()


def _unparseable(packet: bytes) -> bool:
    try:
        decode_packet(packet)
    except ValueError:
        return True
    return False


async def test_tcp_garbage_and_oversize_frames_are_answered_then_the_connection_closed(
        server: OscServer, handler: RecordingHandler) -> None:
    tcp = await TcpPeer.connect(server.port)
    tcp.send(message("/livesinger/lyric", (b"\0" * 1_000_000, "b")))  # a 1 MB blob
    _, body = await tcp.reply()
    assert body == {"address": None, "status": "error",
                    "data": "bad frame: frame larger than 65536 bytes"}
    tcp.writer.write(b"\xc0\xdb\x01\xc0")  # a bad SLIP escape
    assert "bad SLIP escape" in str((await tcp.reply())[1]["data"])
    assert (await tcp.ask(GOOD))[1]["status"] == "ok"
    tcp.writer.write(b"\xc0garbage\xc0" * 40)
    errors = [await tcp.reply() for _ in range(16)]
    assert all(b["status"] == "error" for _, b in errors)
    assert await asyncio.wait_for(tcp.reader.read(), 3.0) == b""  # closed after 16 in a row
    await tcp.close()
    other = await TcpPeer.connect(server.port)  # the server itself is fine
    assert (await other.ask(GOOD))[1]["status"] == "ok"
    await other.close()
    assert len(handler.cues) == 2


class SlowHandler(RecordingHandler):
    """Takes a millisecond per cue, so that a flood outruns it."""

    async def handle(self, cue: Cue) -> object:
        await asyncio.sleep(0.001)
        return await super().handle(cue)


async def test_a_flood_is_bounded_in_order_and_never_stalls_the_event_loop() -> None:
    sent = 10_000
    handler = SlowHandler()
    async with OscServer(handler, port=0, queue_size=64) as osc:
        done = threading.Event()

        def flood() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for i in range(sent):
                    packet = message("/livesinger/lyric", (f"n{i}", "s")) if i % 2 else b"junk"
                    sock.sendto(packet, ("127.0.0.1", osc.port))
            done.set()

        flooding = asyncio.ensure_future(asyncio.to_thread(flood))
        gaps, last = [], time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.005)
            gaps.append(time.monotonic() - last)
            last = time.monotonic()
        await flooding
        await until(lambda: osc._queue.empty())
        assert max(gaps) < 0.1, f"the event loop stalled for {max(gaps) * 1000:.0f} ms"
        seen = osc.messages_ok + osc.bad_packets + osc.errors["queue_full"]
        assert seen <= sent  # the kernel may drop some before the server sees them
        assert osc.errors["queue_full"] > 0 and osc.messages_ok > 0
        numbers = [int(str(c.args["text"])[1:]) for c in handler.cues]
        assert numbers == sorted(set(numbers))  # in order, none twice
        print(f"flood: {seen} of {sent} datagrams reached the server, {osc.messages_ok} cues, "
              f"{osc.errors['queue_full']} dropped by the queue, max gap "
              f"{max(gaps) * 1000:.1f} ms")
        peer = UdpPeer(osc.port)
        assert (await peer.ask(GOOD))[1]["status"] == "ok"  # and it serves on
        peer.close()


# -- token ------------------------------------------------------------------------------------


def test_a_non_loopback_bind_needs_a_token(handler: RecordingHandler) -> None:
    with pytest.raises(ValueError, match="needs a token"):
        OscServer(handler, host="0.0.0.0")
    with pytest.raises(ValueError, match="needs a token"):
        OscServer(handler, host="192.168.1.20")
    OscServer(handler, host="0.0.0.0", token="s3cret")  # fine with one
    OscServer(handler, host="::1")  # loopback needs none


async def test_with_a_token_each_sender_must_authorise_first(handler: RecordingHandler) -> None:
    async with OscServer(handler, host="127.0.0.1", port=0, token="s3cret") as osc:
        a, b = UdpPeer(osc.port), UdpPeer(osc.port)
        assert (await a.ask(GOOD))[1] == {"address": "/livesinger/note/on", "status": "error",
                                          "data": NOT_AUTHORISED}
        assert (await a.ask(message("/livesinger/auth", ("wrong", "s"))))[1]["data"] == (
            "wrong token")
        assert (await a.ask(message("/livesinger/auth", ("s3cret", "s"))))[1] == {
            "address": "/livesinger/auth", "status": "ok", "data": "authorised"}
        assert (await a.ask(GOOD))[1]["status"] == "ok"
        assert (await b.ask(GOOD))[1]["data"] == NOT_AUTHORISED  # another port, another sender
        assert (await b.ask(message("/connect", ("s3cret", "s"))))[1]["status"] == "ok"  # QLab
        assert (await b.ask(GOOD))[1]["status"] == "ok"
        tcp = await TcpPeer.connect(osc.port)  # a TCP connection authorises itself
        assert (await tcp.ask(GOOD))[1]["data"] == NOT_AUTHORISED
        assert (await tcp.ask(message("/livesinger/auth", ("s3cret", "s"))))[1]["status"] == "ok"
        assert (await tcp.ask(GOOD))[1]["status"] == "ok"
        await tcp.close()
        a.close()
        b.close()
        assert len(handler.cues) == 3
        assert osc.errors["unauthorised"] == 4
