"""OSC under malformed floods and from strangers: bounded work per packet, bounded SLIP
buffering, per-source error budgets, connections closed for garbage, and no reflection
amplification toward unauthorised remote sources."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import AsyncIterator

import pytest

from streams import slip
from streams.osc import (
    ERROR_BURST,
    ERROR_RATE_PER_S,
    MAX_ARGUMENTS,
    MAX_MESSAGES,
    NOT_AUTHORISED,
    OscPacketError,
    OscServer,
    decode_packet,
)
from tests.streams.test_osc import GOOD, RecordingHandler, TcpPeer, UdpPeer, message

pytestmark = pytest.mark.timeout(30)


def bundle(*elements: bytes) -> bytes:
    out = b"#bundle\0" + b"\0" * 7 + b"\1"
    for element in elements:
        out += struct.pack(">i", len(element)) + element
    return out


async def drain(sock: socket.socket, quiet_s: float = 0.3) -> list[bytes]:
    """Every datagram that reaches ``sock`` until it has been quiet for ``quiet_s``."""
    loop = asyncio.get_running_loop()
    out = []
    while True:
        try:
            out.append(await asyncio.wait_for(loop.sock_recv(sock, 65536), quiet_s))
        except TimeoutError:
            return out


@pytest.fixture
async def server() -> AsyncIterator[OscServer]:
    async with OscServer(RecordingHandler(), port=0) as osc:
        yield osc


def test_work_per_packet_is_bounded() -> None:
    note = message("/livesinger/go")
    assert len(decode_packet(bundle(*[note] * MAX_MESSAGES))) == MAX_MESSAGES
    with pytest.raises(OscPacketError, match=f"more than {MAX_MESSAGES} messages"):
        decode_packet(bundle(*[note] * (MAX_MESSAGES + 1)))
    # nesting does not get around the count
    with pytest.raises(OscPacketError, match=f"more than {MAX_MESSAGES} messages"):
        decode_packet(bundle(*[bundle(*[note] * 10)] * 7))
    with pytest.raises(OscPacketError, match=f"{MAX_ARGUMENTS + 1} arguments"):
        decode_packet(message("/livesinger/go", *[(1, "i")] * (MAX_ARGUMENTS + 1)))


def test_an_oversized_slip_frame_is_dropped_as_it_arrives() -> None:
    decoder = slip.SlipDecoder(1000)
    held = []
    frame = slip.encode(b"\xc0" * 600 + b"a" * 600)  # 1200 bytes decoded, 1800 on the wire
    for i in range(0, len(frame), 50):
        out = decoder.feed(frame[i:i + 50])
        held.append(len(decoder._buffer) - decoder._escapes)
    assert max(held) <= 1000  # never more than the limit held, escapes counted exactly
    assert [str(e) for e in out] == ["frame larger than 1000 bytes"]
    assert decoder.feed(slip.encode(b"\xc0" * 1000)) == [b"\xc0" * 1000]  # exactly the limit


async def test_error_replies_are_rate_limited_per_source_and_good_cues_still_apply(
        server: OscServer) -> None:
    flooder, other = UdpPeer(server.port), UdpPeer(server.port)
    sent = 300
    start = time.monotonic()
    for _ in range(sent):
        flooder.send(b"junk")
    replies = await drain(flooder.sock)
    elapsed = time.monotonic() - start
    seen = server.bad_packets  # what the kernel did not drop; each one counted
    assert ERROR_BURST < seen <= sent
    assert ERROR_BURST <= len(replies) <= ERROR_BURST + ERROR_RATE_PER_S * elapsed + 1
    assert server.replies_dropped == seen - len(replies)
    assert server.counters()["replies_dropped"] == server.replies_dropped
    # the flooder's valid cues still apply; another source's errors are still answered
    assert (await flooder.ask(GOOD))[1]["status"] == "ok"
    assert (await other.ask(b"junk"))[1]["status"] == "error"
    flooder.close()
    other.close()


async def test_a_tcp_connection_sending_garbage_between_good_frames_is_closed(
        server: OscServer) -> None:
    tcp = await TcpPeer.connect(server.port)
    for _ in range(3 * ERROR_BURST):  # never 16 bad frames in a row
        tcp.send(GOOD)
        tcp.send(b"junk")
    with pytest.raises((AssertionError, ConnectionError)):  # "the server closed..."
        while True:
            await tcp.reply()
    assert server.errors["connection_closed"] == 1
    assert server.messages_ok < 3 * ERROR_BURST
    await tcp.close()


async def test_a_tcp_frame_that_never_ends_gets_the_connection_closed(
        server: OscServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    chunk = b"x" * 65536
    with pytest.raises(ConnectionError):
        for _ in range(1000):  # 64 MB without an END
            writer.write(chunk)
            await writer.drain()
    try:
        assert await asyncio.wait_for(reader.read(), 3) == b""
    except ConnectionError:
        pass  # closed with our bytes unread: a reset
    assert server.errors["connection_closed"] == 1
    writer.close()
    other = await TcpPeer.connect(server.port)  # the server serves on
    assert (await other.ask(GOOD))[1]["status"] == "ok"
    await other.close()


def outward_address() -> str | None:
    """This machine's address on a non-loopback interface (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 9))
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


async def test_an_unauthorised_remote_source_never_gets_more_bytes_than_it_sent() -> None:
    address = outward_address()
    if address is None:
        pytest.skip("no non-loopback interface to send from")
    handler = RecordingHandler()
    async with OscServer(handler, host="0.0.0.0", port=0, token="s3cret") as osc:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((address, 0))
        sock.setblocking(False)
        target = (address, osc.port)
        probes = [b"/x\0\0", GOOD, message("/livesinger/auth", ("wrong", "s")),
                  message("/livesinger/go"), b"#bundle\0"]
        for packet in probes * 5:
            sock.sendto(packet, target)
        received = await drain(sock)
        assert sum(map(len, received)) <= sum(map(len, probes * 5))
        assert received == []  # each answer would be larger than its question
        assert osc.replies_dropped == len(probes) * 5 and handler.cues == []
        # once authorised, the same source is answered in full
        sock.sendto(message("/livesinger/auth", ("s3cret", "s")), target)
        sock.sendto(GOOD, target)
        sock.sendto(b"/x\0\0", target)
        answers = [data.split(b"\0")[0] for data in await drain(sock)]
        assert answers == [b"/reply/livesinger/auth", b"/reply/livesinger/note/on",
                           b"/reply/x"]
        assert len(handler.cues) == 1
        sock.close()
        # a loopback sender is still told what to do
        local = UdpPeer(osc.port)
        assert (await local.ask(GOOD))[1]["data"] == NOT_AUTHORISED
        local.close()
