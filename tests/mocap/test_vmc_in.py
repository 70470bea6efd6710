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
from aiortc import RTCSessionDescription
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


def exit_status(argv: list[str]) -> int | str | None:
    """``livesinger ARGV``'s exit status (a parser error exits through ``SystemExit``)."""
    try:
        return main(argv)
    except SystemExit as exited:
        return exited.code


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
    frames = [json.loads(line)  # (the first line is the AIGC header)
              for line in (tmp_path / "pose.jsonl").read_text().splitlines()[1:]]
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
    assert await asyncio.to_thread(exit_status, ["mocap", "--source", "vmc:notaport"]) == 2
    assert "vmc:notaport" in capsys.readouterr().err


def strict_json(text: str) -> object:
    """``json.loads`` that refuses ``NaN`` and ``Infinity``, as a browser's ``JSON.parse``."""
    def refuse(name: str) -> object:
        raise ValueError(f"{name} in {text[:80]!r}")
    return json.loads(text, parse_constant=refuse)


def bad_datagrams() -> tuple[list[bytes], int, int]:
    """Hostile VMC datagrams, with how many messages the receiver must ignore and clamp."""
    nan, inf = float("nan"), float("inf")
    doubles = OscMessageBuilder("/VMC/Ext/Bone/Pos")
    doubles.add_arg("Head")
    for v in (0.0, 0.0, 0.0, 1e300, 0.0, 0.0, 1e300):
        doubles.add_arg(v, "d")
    single = [
        doubles,
        message("/VMC/Ext/Bone/Pos", "LeftUpperArm", 0.0, 0.0, 0.0, 1e30, 0.0, 0.0, 1e30),
        message("/VMC/Ext/Bone/Pos", "LeftUpperArm", inf, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
        message("/VMC/Ext/Bone/Pos", "Tail", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
        message("/VMC/Ext/Bone/Pos", "Head", 0.0, 0.0, 0.0, nan, 0.0, 0.0, 1.0),
        message("/VMC/Ext/Root/Pos", "root", nan, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
        message("/VMC/Ext/Root/Pos", "root", 1e30, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0),  # clamped
        message("/VMC/Ext/T", nan),
    ]
    blends = OscBundleBuilder(IMMEDIATELY)
    for name, weight in (("Joy", nan), ("EvilBlend", 0.5), ("Blink", -inf), ("Joy", 5.0)):
        blends.add_content(message("/VMC/Ext/Blend/Val", name, weight).build())
    blends.add_content(message("/VMC/Ext/Blend/Apply").build())
    datagrams = [m.build().dgram for m in single] + [blends.build().dgram, b"\x00garbage"]
    return datagrams, 7 + 3, 1 + 1


@pytest.mark.timeout(90)
async def test_hostile_vmc_in_never_reaches_a_wire_and_the_show_goes_on(tmp_path: Path
                                                                         ) -> None:
    """NaN, infinities, huge values, unknown bones and blends, garbage, mixed with good
    frames into ``serve --mocap vmc:PORT --vmc-out``: the viewer's pose channel, pose.jsonl and
    VMC out all parse strictly, and the good pose still arrives."""
    from pythonosc.osc_packet import OscPacket

    from rigs.pose_check import EXPRESSION_NAMES, ROOT_LIMIT_M
    from rigs.skeleton import HUMANOID_BONES
    from tests.streams.test_viewers import Client

    vmc_out: list[bytes] = []

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            vmc_out.append(data)

    loop = asyncio.get_running_loop()
    out, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    port = free_udp_port()
    opts = ServeOptions(osc_port=None, http_port=0, headless=True, record=tmp_path,
                        mocap=f"vmc:{port}",
                        vmc_out=f"127.0.0.1:{out.get_extra_info('sockname')[1]}")
    ready = asyncio.Event()
    handles: dict[str, object] = {}
    show = asyncio.ensure_future(serve(opts, lambda _ports: ready.set(), handles))
    client = Client()
    bad, ignored_each, clamped_each = bad_datagrams()
    rounds = 30
    try:
        await asyncio.wait([show, asyncio.ensure_future(ready.wait())], timeout=60,
                           return_when=asyncio.FIRST_COMPLETED)
        assert ready.is_set(), show.exception() if show.done() else "serve is not ready"
        feed, hub = handles["mocap"], handles["hub"]
        viewer, answer = await hub.answer(await client.offer())  # type: ignore[attr-defined]
        await client.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        for _ in range(400):  # the pose channel is open: frames sent to it are received
            if viewer.channel is not None and viewer.channel.readyState == "open":
                break
            await asyncio.sleep(0.05)
        sock = SimpleUDPClient("127.0.0.1", port)._sock
        good = pose_bundle(SENT, 0.8)
        for _ in range(rounds):
            sock.sendto(good, ("127.0.0.1", port))
            for data in bad:
                sock.sendto(data, ("127.0.0.1", port))
            await asyncio.sleep(1 / 30)
        await send_for(SimpleUDPClient("127.0.0.1", port), 0.5, good)
        pacer = handles["pacer"]
        assert not show.done()  # the show goes on
    finally:
        show.cancel()
        await asyncio.gather(show, return_exceptions=True)
        await client.close()
        out.close()
    stats = feed.stats()  # type: ignore[attr-defined]
    assert stats["ignored"] == ignored_each * rounds, stats
    assert stats["clamped"] == clamped_each * rounds, stats
    assert stats["bad_packets"] == rounds, stats
    assert pacer.xruns <= xrun_budget(pacer.chunks_played)  # type: ignore[attr-defined]

    # every frame written or sent parses as strict JSON, and holds only what a pose may
    recorded = [strict_json(line)  # (the first line is the AIGC header)
                for line in (tmp_path / "pose.jsonl").read_text().splitlines()[1:]]
    streamed = [strict_json(m) for m in client.messages if m.startswith('{"t"')]
    assert len(recorded) > 60 and len(streamed) > 30
    for frame in recorded + streamed:
        assert isinstance(frame, dict)
        assert set(frame["b"]) <= HUMANOID_BONES
        assert set(frame["e"]) <= EXPRESSION_NAMES
        assert all(0.0 <= v <= 1.0 for v in frame["e"].values())
        assert all(abs(c) <= ROOT_LIMIT_M for c in frame["r"])
    # VMC out: every float finite (a receiver would take NaN as it comes)
    assert len(vmc_out) > 30
    for data in vmc_out:
        for timed in OscPacket(data).messages:
            floats = [v for v in timed.message.params if isinstance(v, float)]
            assert all(math.isfinite(v) and abs(v) < 1e6 for v in floats), timed.message.address
    # and the good pose came through: the last frame is the sent one, fully blended in
    last = recorded[-1]
    assert isinstance(last, dict)
    for _, (bone, q) in SENT.items():
        assert same(last["b"][bone], quaternion_from_unity(q)), (bone, last["b"][bone])
    assert abs(last["e"]["happy"] - 0.8) < 0.01
