"""No pose leaves with a non-finite number: the pose stream, the recorder, the viewers' data
channel and VMC out each drop such a frame and count it; the good frames still go out."""

from __future__ import annotations

import asyncio
import json
import math
import socket
from pathlib import Path

import pytest
from aiortc import RTCSessionDescription
from pythonosc.osc_packet import OscPacket

from rigs.mocap_rig import MocapRig
from rigs.pose import PoseFrame, Quaternion
from singer.ensemble import SingerLine
from singer.voices import get_voice
from stage.posing import PoseStreamStats, run_pose_stream
from streams.recorder import PoseRecorder
from streams.vmc import VmcSender
from streams.webrtc.viewers import ViewerHub
from tests.streams.test_viewers import Client

NAN, INF = float("nan"), float("inf")
HEAD: Quaternion = (0.0, 0.0, 0.0, 1.0)


def strict_json(text: str) -> object:
    """``json.loads`` refusing ``NaN``/``Infinity``, as a browser's ``JSON.parse`` does."""
    def refuse(name: str) -> object:
        raise ValueError(f"{name} in {text[:80]!r}")
    return json.loads(text, parse_constant=refuse)


def good(t: int) -> PoseFrame:
    return PoseFrame(t, {"head": HEAD}, (0.0, 0.0, 0.0), {"aa": 0.5})


BAD = [PoseFrame(2, {"head": (NAN, 0.0, 0.0, 1.0)}), PoseFrame(3, {}, (INF, 0.0, 0.0)),
       PoseFrame(4, {}, (0.0, 0.0, 0.0), {"happy": INF})]


def test_pose_json_is_strict_both_ways() -> None:
    for frame in BAD:
        with pytest.raises(ValueError, match=f"sample {frame.t} holds a non-finite number"):
            frame.to_json()
    with pytest.raises(ValueError, match="NaN"):
        PoseFrame.from_json('{"t":1,"b":{"head":[NaN,0,0,1]},"r":[0,0,0],"e":{}}')
    assert PoseFrame.from_json(good(1).to_json()) == good(1)


def test_recorder_writes_only_strict_json(tmp_path: Path) -> None:
    recorder = PoseRecorder(tmp_path / "pose.jsonl")
    for frame in [good(1), *BAD, good(5)]:
        recorder(frame)
    recorder.close()
    lines = (tmp_path / "pose.jsonl").read_text().splitlines()
    assert [strict_json(line)["t"] for line in lines] == [1, 5]  # type: ignore[index]
    assert recorder.frames == 2 and recorder.rejected == 3


@pytest.mark.timeout(60)
async def test_viewers_get_only_strict_json() -> None:
    hub = ViewerHub()
    client = Client()
    viewer, answer = await hub.answer(await client.offer())
    await client.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    try:
        for _ in range(400):
            if viewer.channel is not None and viewer.channel.readyState == "open":
                break
            await asyncio.sleep(0.05)
        for frame in [good(1), *BAD, good(5)]:
            hub.push_pose(frame)
        for _ in range(200):
            if len(client.messages) >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await client.close()
        await hub.close_all()
    assert [strict_json(m)["t"] for m in client.messages] == [1, 5]  # type: ignore[index]
    assert hub.poses_rejected == 3 and viewer.poses_sent == 2


async def test_vmc_out_sends_only_finite_frames() -> None:
    beyond_float32 = PoseFrame(6, {"head": HEAD}, (1e300, 0.0, 0.0))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        raw.bind(("127.0.0.1", 0))
        raw.settimeout(5.0)
        sender = VmcSender("127.0.0.1", raw.getsockname()[1], sample_rate_hz=1)
        await sender.start()
        try:
            for frame in [good(1), *BAD, beyond_float32, good(5)]:
                sender.send(frame)
            datagrams = [await asyncio.to_thread(raw.recv, 65536) for _ in range(2)]
            raw.settimeout(0.2)
            with pytest.raises(TimeoutError):
                raw.recv(65536)
        finally:
            await sender.stop()
    times = []
    for data in datagrams:
        for timed in OscPacket(data).messages:
            floats = [v for v in timed.message.params if isinstance(v, float)]
            assert all(math.isfinite(v) for v in floats), timed.message.address
            if timed.message.address == "/VMC/Ext/T":
                times.append(timed.message.params[0])
    assert times == [1.0, 5.0] and sender.sent == 2 and sender.rejected == 4


class _BrokenRig(MocapRig):
    """A rig with a bug: every other pose holds NaN (stands in for any upstream defect)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def pose(self, t: int, rest: dict[str, Quaternion] | None = None,
             rest_expressions: dict[str, float] | None = None) -> PoseFrame:
        self.calls += 1
        frame = super().pose(t, rest, rest_expressions)
        if self.calls % 2:
            return PoseFrame(t, {**frame.normalized_bones, "head": (NAN, 0.0, 0.0, 1.0)},
                             frame.root_position_m, frame.expressions)
        return frame


@pytest.mark.timeout(60)
async def test_pose_stream_drops_and_counts_non_finite_frames(tmp_path: Path) -> None:
    line = SingerLine("lead", get_voice("soprano"))
    recorder = PoseRecorder(tmp_path / "pose.jsonl")
    stats = PoseStreamStats()
    clock = iter(range(0, 1 << 30, 800))
    stream = asyncio.ensure_future(run_pose_stream(
        lambda: line, lambda: next(clock), [recorder], rate_hz=200.0, mocap=_BrokenRig(),
        stats=stats))
    while stats.frames < 10:
        await asyncio.sleep(0.02)
    stream.cancel()
    await asyncio.gather(stream, return_exceptions=True)
    recorder.close()
    lines = (tmp_path / "pose.jsonl").read_text().splitlines()
    assert len(lines) == stats.frames == recorder.frames and recorder.rejected == 0
    assert all(strict_json(line) for line in lines)
    assert stats.dropped in (stats.frames, stats.frames + 1)  # every other frame
