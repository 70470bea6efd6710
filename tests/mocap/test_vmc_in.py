"""VMC in as a mocap source: python-osc sends bone packets to ``serve --mocap vmc:PORT`` and
``livesinger mocap --source vmc:PORT``; the show's pose stream carries what was sent (through
the Unity conversion); badly typed and non-OSC packets are ignored and counted."""

from __future__ import annotations

import asyncio
import json
import math
import socket
from pathlib import Path

import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from rigs.unity import quaternion_from_unity
from stage.cli import main
from stage.serve import ServeOptions, serve
from tests.measure import xrun_budget

# Unity quaternions as a VMC performer app sends them (left-handed, Unity bone names)
S = math.sqrt(0.5)
SENT = {"LeftUpperArm": ("leftUpperArm", (0.0, S, 0.0, S)),  # a quarter turn about Unity +Y
        "Head": ("head", (0.0, 0.0, math.sin(0.2), math.cos(0.2)))}  # rolled 23 degrees


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def message(address: str, *args: object) -> OscMessageBuilder:
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return builder


def pose_bundle(bones: dict[str, tuple[str, tuple[float, ...]]], joy: float) -> bytes:
    bundle = OscBundleBuilder(IMMEDIATELY)
    bundle.add_content(message("/VMC/Ext/OK", 1).build())
    for unity, (_, q) in bones.items():
        bundle.add_content(message("/VMC/Ext/Bone/Pos", unity, 0.0, 0.0, 0.0, *q).build())
    bundle.add_content(message("/VMC/Ext/Blend/Val", "Joy", joy).build())
    bundle.add_content(message("/VMC/Ext/Blend/Apply").build())
    return bundle.build().dgram


def same(a: list[float] | tuple[float, ...], b: tuple[float, ...], eps: float = 1e-6) -> bool:
    """Same rotation (q and -q alike); ``a`` may be rounded (pose.jsonl keeps 4 decimals)."""
    norm = math.sqrt(sum(x * x for x in a))
    return 1 - abs(sum(x * y for x, y in zip(a, b, strict=True))) / norm < eps


async def send_for(client: SimpleUDPClient, seconds: float, data: bytes) -> None:
    for _ in range(int(seconds * 30)):
        client._sock.sendto(data, (client._address, client._port))
        await asyncio.sleep(1 / 30)


@pytest.mark.timeout(60)
async def test_serve_with_vmc_in_streams_the_sent_bones(tmp_path: Path) -> None:
    port = free_udp_port()
    opts = ServeOptions(osc_port=None, http_port=None, headless=True, record=tmp_path,
                        mocap=f"vmc:{port}")
    ready = asyncio.Event()
    handles: dict[str, object] = {}
    show = asyncio.ensure_future(serve(opts, lambda _ports: ready.set(), handles))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        feed = handles["mocap"]
        client = SimpleUDPClient("127.0.0.1", port)
        await send_for(client, 1.0, pose_bundle(SENT, 0.8))
        # a message with a string where a float belongs, and a datagram that is not OSC
        client.send_message("/VMC/Ext/Bone/Pos", ["Head", 0.0, 0.0, 0.0, "x", 0.0, 0.0, 1.0])
        client._sock.sendto(b"\x00garbage", ("127.0.0.1", port))
        await send_for(client, 0.5, pose_bundle({"LeftUpperArm": SENT["LeftUpperArm"]}, 0.8))
        pacer = handles["pacer"]
        assert not show.done()  # the show goes on
    finally:
        show.cancel()
        await asyncio.gather(show, return_exceptions=True)
    stats = feed.stats()  # type: ignore[attr-defined]
    assert stats["ignored"] == 1 and stats["bad_packets"] == 1, stats
    assert stats["frames"] >= 30
    assert pacer.xruns <= xrun_budget(pacer.chunks_played)  # type: ignore[attr-defined]
    frames = [json.loads(line) for line in (tmp_path / "pose.jsonl").read_text().splitlines()]
    last = frames[-1]
    for _, (bone, q) in SENT.items():
        # sent in Unity axes; streamed in ours: the one conversion, and fully blended in
        assert same(last["b"][bone], quaternion_from_unity(q)), (bone, last["b"][bone])
    assert abs(last["e"]["happy"] - 0.8) < 0.01
    # the bones were also absent before the first packet: they eased in, no jump
    first_arm = next(i for i, f in enumerate(frames)
                     if not same(f["b"].get("leftUpperArm", (0, 0, 0, 1)), (0, 0, 0, 1)))
    steps = [abs(sum(x * y for x, y in zip(a["b"]["leftUpperArm"], b["b"]["leftUpperArm"],
                                           strict=True)))
             for a, b in zip(frames[first_arm:], frames[first_arm + 1:], strict=False)]
    # eased in over BlendOptions.acquire_s (0.12 s): several pose frames, none a snap
    assert min(steps) > math.cos(math.radians(20) / 2)
    assert sum(step < math.cos(math.radians(1) / 2) for step in steps) >= 5


@pytest.mark.timeout(30)
async def test_mocap_cli_relays_vmc_in_to_vmc_out(capsys: pytest.CaptureFixture[str]) -> None:
    got: list[bytes] = []

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            got.append(data)

    loop = asyncio.get_running_loop()
    out, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    out_port = out.get_extra_info("sockname")[1]
    in_port = free_udp_port()
    cli = asyncio.ensure_future(asyncio.to_thread(
        main, ["mocap", "--source", f"vmc:{in_port}", "--vmc-out", f"127.0.0.1:{out_port}",
               "--seconds", "1.5"]))
    await asyncio.sleep(0.5)
    client = SimpleUDPClient("127.0.0.1", in_port)
    await send_for(client, 0.3, pose_bundle(SENT, 0.5))
    client.send_message("/VMC/Ext/Blend/Val", [3, "wrong"])
    assert await cli == 0
    out.close()
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["frames"] >= 5 and summary["ignored"] == 1 and summary["vmc_sent"] >= 5
    from streams.vmc import VmcReceiver

    relayed = VmcReceiver(lambda _f: None, lambda: 0)
    relayed.feed(got[-1])
    for _, (bone, q) in SENT.items():
        assert same(relayed.state.bones[bone], quaternion_from_unity(q))
    assert await asyncio.to_thread(main, ["mocap", "--source", "vmc:notaport"]) == 2
    assert "vmc:notaport" in capsys.readouterr().err
