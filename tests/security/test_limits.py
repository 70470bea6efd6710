"""Limits a venue-network client cannot push past: WHEP/viewer sessions, SDP and body sizes,
OSC TCP connections, OSC bundle depth (the other limits: tests/streams/test_osc_flood.py,
tests/streams/test_web_guard.py, tests/fuzz/)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest
from aiortc import RTCPeerConnection

from streams import osc
from streams.cue import Cue
from streams.web import MAX_BODY_BYTES, WebServer
from streams.webrtc.viewers import ViewerHub
from tests.fuzz.strategies import osc_bundle, osc_string
from tests.streams.test_web import WEB_ROOT

pytestmark = pytest.mark.timeout(60)


class _Handler:
    async def handle(self, cue: Cue) -> object:
        return None

    def show_sample_at_unix(self, unix_s: float) -> int:
        return 0

    def status(self) -> dict[str, object]:
        return {}


async def _offer() -> str:
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def test_whep_sessions_are_capped_and_a_place_frees_on_delete(tmp_path: Path) -> None:
    web = WebServer(ViewerHub(max_viewers=1), _Handler(), web_root=WEB_ROOT,
                    avatar_path=tmp_path / "a.vrm", port=0)
    await web.start()
    base = f"http://127.0.0.1:{web.port}"
    sdp = (await _offer()).encode()
    headers = {"Content-Type": "application/sdp"}
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(base + "/whep", data=sdp, headers=headers) as r:
                assert r.status == 201
                location = r.headers["Location"]
            async with http.post(base + "/whep", data=sdp, headers=headers) as r:
                assert r.status == 503
                assert "too many viewers" in (await r.json())["error"]
            async with http.delete(base + location) as r:
                assert r.status == 200
            async with http.post(base + "/whep", data=sdp, headers=headers) as r:
                assert r.status == 201
            big = b"v=0\r\n" + b"a=x\r\n" * (MAX_BODY_BYTES // 5)
            async with http.post(base + "/whep", data=big, headers=headers) as r:
                assert r.status == 413
            assert len(web.hub.viewers) == 1
    finally:
        await web.stop()


async def test_osc_tcp_connections_are_capped() -> None:
    async with osc.OscServer(_Handler(), port=0) as server:
        sockets = [socket.create_connection(("127.0.0.1", server.port))
                   for _ in range(osc.MAX_TCP_CONNECTIONS)]
        try:
            for _ in range(200):
                await asyncio.sleep(0.01)
                if len(server._connections) == osc.MAX_TCP_CONNECTIONS:
                    break
            extra = socket.create_connection(("127.0.0.1", server.port))
            extra.settimeout(5)
            loop = asyncio.get_running_loop()
            assert await loop.run_in_executor(None, extra.recv, 1) == b""  # closed at once
            extra.close()
            assert server.errors["too_many_connections"] == 1
        finally:
            for s in sockets:
                s.close()


def test_osc_bundle_depth_and_packet_size_are_capped() -> None:
    packet = osc_string("/livesinger/go") + osc_string(",")
    for _ in range(osc.MAX_BUNDLE_DEPTH):
        packet = osc_bundle(1, [packet])
    assert len(osc.decode_packet(packet)) == 1  # at the limit: taken
    with pytest.raises(osc.OscPacketError, match="nested deeper"):
        osc.decode_packet(osc_bundle(1, [packet]))
    with pytest.raises(osc.OscPacketError, match="at most"):
        osc.decode_packet(osc_string("/x") + b"\0" * osc.MAX_PACKET_BYTES)
