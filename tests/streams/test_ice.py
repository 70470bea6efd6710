"""ICE servers: none by default on every peer connection the engine makes (no public STUN
server is contacted), and those given with ``--ice-server`` are the ones used."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from streams.webrtc.ice import IceServerError, ice_configuration, parse_ice_server
from streams.webrtc.performer import PerformerDesk
from streams.webrtc.viewers import ViewerHub
from streams.webrtc.whep_client import WhepListener

pytestmark = pytest.mark.timeout(60)


def gatherer(pc: RTCPeerConnection):  # type: ignore[no-untyped-def]
    """The real ICE gatherer of a peer connection's first transceiver."""
    return pc.getTransceivers()[0].sender.transport.transport.iceGatherer


async def client_offer(kind: str) -> tuple[RTCPeerConnection, str]:
    """An offer from a client that itself uses no ICE servers."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(kind, direction="recvonly" if kind == "audio" else "sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


@pytest.fixture
def stun_server() -> Iterator[socket.socket]:
    """A UDP socket where a STUN server would be: it records what reaches it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5.0)
        yield sock


def test_urls_are_checked_and_turn_needs_credentials() -> None:
    assert parse_ice_server("stun:stun.example.org").urls == "stun:stun.example.org"
    turn = parse_ice_server("turn:show:p%40ss@10.0.0.2:3478?transport=tcp")
    assert (turn.urls, turn.username, turn.credential) == (
        "turn:10.0.0.2:3478?transport=tcp", "show", "p@ss")
    for url, needle in [("http://x", "want stun:"), ("stun:h:0", "port must be 1..65535"),
                        ("stun:h:99999", "port must be 1..65535"),
                        ("turn:10.0.0.2", "needs USER:PASSWORD@"),
                        ("turns:u:p@h?transport=udp", "transport must be tcp"),
                        ("stun:", "not a stun: URL")]:
        with pytest.raises(IceServerError, match=needle):
            parse_ice_server(url)
    with pytest.raises(IceServerError, match="port must be") as err:
        parse_ice_server("turn:u:secret@h:0")
    assert "secret" not in str(err.value)
    with pytest.raises(IceServerError, match="one STUN server"):
        ice_configuration(["stun:a", "stun:b"])
    assert ice_configuration().iceServers == []


async def test_viewers_use_no_ice_server_by_default() -> None:
    client, offer = await client_offer("audio")
    hub = ViewerHub()
    viewer, answer = await hub.answer(offer)
    ice = gatherer(viewer.pc)
    assert ice._connection.stun_server is None  # aiortc's default would be Google's
    assert ice._connection.turn_server is None
    candidates = ice.getLocalCandidates()
    assert candidates and {c.type for c in candidates} == {"host"}
    assert "srflx" not in answer
    await hub.close_all()
    await client.close()


async def test_the_performer_desk_uses_no_ice_server_by_default() -> None:
    client, offer = await client_offer("video")

    async def consume(_track: object) -> None:
        await asyncio.Event().wait()

    desk = PerformerDesk(consume)  # type: ignore[arg-type]
    performer, answer = await desk.answer(offer)
    assert gatherer(performer.pc)._connection.stun_server is None
    assert "srflx" not in answer
    await desk.close_all()
    await client.close()


async def test_the_whep_client_uses_no_ice_server_by_default() -> None:
    listener = WhepListener("http://127.0.0.1:1/whep")
    pc = listener._pc
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    assert gatherer(pc)._connection.stun_server is None
    assert "srflx" not in pc.localDescription.sdp
    await pc.close()


async def test_a_given_stun_server_is_asked(stun_server: socket.socket) -> None:
    port = stun_server.getsockname()[1]
    client, offer = await client_offer("audio")
    hub = ViewerHub(ice_servers=[f"stun:127.0.0.1:{port}"])
    answering = asyncio.ensure_future(hub.answer(offer))
    data, _ = await asyncio.to_thread(stun_server.recvfrom, 2048)
    assert data[:2] == b"\x00\x01"  # a STUN Binding Request reached the server we named
    viewer, _answer = await answering
    assert gatherer(viewer.pc)._connection.stun_server == ("127.0.0.1", port)
    await hub.close_all()
    await client.close()
