"""OSC packets and bundles (``streams.osc``, ``streams.osc_address``): any bytes end in a
list of messages or an ``OscPacketError``; any decoded message ends in a ``Cue`` or a
``CueError``; a real server fed garbage over UDP and TCP keeps answering."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pythonosc.osc_message import OscMessage

from streams import slip
from streams.cue import Cue, CueError
from streams.osc import (
    MAX_BUNDLE_DEPTH,
    OscPacketError,
    OscServer,
    build_reply,
    decode_packet,
    read_address,
)
from streams.osc_address import AUTH, resolve
from tests.fuzz.strategies import NASTY_TEXT, mutated, osc_bundle, osc_packets, osc_string

pytestmark = pytest.mark.timeout(60)

ANY_PACKET = st.one_of(osc_packets, mutated(osc_packets), st.binary(max_size=300))


def one_line(err: Exception) -> str:
    text = str(err)
    assert text and "\n" not in text, repr(text)
    return text


@given(ANY_PACKET)
def test_any_bytes_decode_to_messages_or_a_packet_error(data: bytes) -> None:
    try:
        messages = decode_packet(data)
    except OscPacketError as err:
        one_line(err)
        return
    for m in messages:
        assert m.address.startswith("/")
        assert len(m.tags) == len(m.values) or "[" in m.tags


@given(osc_packets)
def test_well_formed_packets_within_limits_decode(data: bytes) -> None:
    try:
        messages = decode_packet(data)
    except OscPacketError as err:  # only the documented limits may refuse a good packet
        assert any(word in str(err) for word in ("deeper", "messages in one packet",
                                                 "arguments")), str(err)
        return
    assert all(isinstance(m.values, list) for m in messages)


def test_bundles_nested_past_the_limit_are_refused_without_recursing() -> None:
    packet = osc_string("/go") + osc_string(",")
    for _ in range(MAX_BUNDLE_DEPTH + 1):
        packet = osc_bundle(1, [packet])
    with pytest.raises(OscPacketError, match="nested deeper"):
        decode_packet(packet)
    deep = b"#bundle\0" + b"\0" * 8 + (b"\0\0\xff\xf0#bundle\0" + b"\0" * 8) * 5000
    with pytest.raises(OscPacketError):
        decode_packet(deep)


@given(ANY_PACKET)
def test_every_decoded_message_becomes_a_cue_or_a_cue_error(data: bytes) -> None:
    try:
        messages = decode_packet(data)
    except OscPacketError:
        return
    for m in messages:
        try:
            route = resolve(m.address)
            if route.kind == AUTH:
                route.osc_args(m.address, m.tags, m.values)
                continue
            cue = route.osc_cue(m.address, m.tags, m.values, at_sample=None, source="fuzz")
        except CueError as err:
            one_line(err)
            continue
        assert isinstance(cue, Cue)


@given(st.one_of(st.text(max_size=600), NASTY_TEXT.map(lambda s: "/livesinger/" + s)))
@example("/\n")  # found: the address's newline split the error in two lines
def test_any_address_resolves_or_is_unknown(address: str) -> None:
    try:
        resolve(address)
    except CueError as err:
        assert len(one_line(err)) < 700


@given(st.binary(max_size=200), st.one_of(st.none(), st.text(max_size=300)))
def test_replies_to_anything_are_one_osc_message(data: bytes, extra: str | None) -> None:
    address = read_address(data)
    packet = build_reply(address if extra is None else extra, "error", "x")
    parsed = OscMessage(packet)
    assert parsed.address.startswith("/reply")
    json.loads(parsed.params[0])


# -- a real server ----------------------------------------------------------------------------


class _Handler:
    """A real ``CueHandler`` that accepts every cue (the OSC server is under test)."""

    def __init__(self) -> None:
        self.cues = 0

    async def handle(self, cue: Cue) -> object:
        self.cues += 1
        return "ok"

    def show_sample_at_unix(self, unix_s: float) -> int:
        return int(unix_s) % 1_000_000

    def status(self) -> dict[str, object]:
        return {}


@pytest.fixture(scope="module")
def server() -> Iterator[OscServer]:
    """One OSC server in a thread of its own for every example (starting one per example
    would dominate the run)."""
    loop = asyncio.new_event_loop()
    osc = OscServer(_Handler(), port=0)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(osc.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield osc
    asyncio.run_coroutine_threadsafe(osc.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


GO = osc_string("/livesinger/go") + osc_string(",")


def _reply_ok(sock: socket.socket) -> None:
    """Read replies until the one to ``/livesinger/go`` (replies to garbage may come first)."""
    while True:  # a fuzzed packet may hold a /livesinger/go of its own, with bad arguments
        reply = OscMessage(sock.recv(65536))
        if (reply.address == "/reply/livesinger/go"
                and json.loads(reply.params[0])["status"] == "ok"):
            return


@given(st.lists(ANY_PACKET, min_size=1, max_size=5))
def test_udp_server_keeps_answering_after_garbage(server: OscServer,
                                                  packets: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        for packet in packets:
            if packet:
                sock.sendto(packet, ("127.0.0.1", server.port))
        sock.sendto(GO, ("127.0.0.1", server.port))
        _reply_ok(sock)
    assert server.errors["internal"] == 0


@given(st.lists(st.one_of(ANY_PACKET.map(slip.encode), st.binary(max_size=200)),
                min_size=1, max_size=5))
def test_tcp_server_keeps_answering_after_garbage(server: OscServer,
                                                  frames: list[bytes]) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        try:
            sock.sendall(b"".join(frames))
        except OSError:
            pass  # the server may close a connection that sent garbage
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(slip.encode(GO))
        decoder = slip.SlipDecoder()
        while True:
            chunk = sock.recv(65536)
            assert chunk, "the server closed a good connection"
            for item in decoder.feed(chunk):
                assert isinstance(item, bytes)
                reply = OscMessage(item)
                if (reply.address == "/reply/livesinger/go"
                        and json.loads(reply.params[0])["status"] == "ok"):
                    assert server.errors["internal"] == 0
                    return
