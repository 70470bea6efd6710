"""Viewers get the show's audio over real WebRTC (aiortc on both ends, one process)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from rigs.pose import PoseFrame
from singer.contracts import SAMPLE_RATE_HZ
from stage.pacer import AudioPacer, PacerConfig
from streams.webrtc.viewers import OfferError, ViewerHub
from tests.measure import xrun_budget

SWITCH = SAMPLE_RATE_HZ  # the test tone jumps from 300 Hz to 600 Hz at show second 1


def tone(start: int, n: int) -> np.ndarray:
    t = np.arange(start, start + n)
    freq = np.where(t < SWITCH, 300.0, 600.0)
    phase = np.where(t < SWITCH, 2 * np.pi * 300 * t / SAMPLE_RATE_HZ,
                     2 * np.pi * 600 * t / SAMPLE_RATE_HZ)
    return (0.4 * np.sin(phase) * (freq > 0)).astype(np.float32)


class Client:
    """A receive-only viewer, as a broadcaster's WHEP player or the stage page would be."""

    def __init__(self, with_pose: bool = True) -> None:
        self.pc = RTCPeerConnection()
        self.pc.addTransceiver("audio", direction="recvonly")
        self.frames: list[tuple[int, np.ndarray]] = []
        self.messages: list[str] = []
        if with_pose:
            channel = self.pc.createDataChannel("pose", ordered=False, maxRetransmits=0)
            channel.on("message", self.messages.append)
        self.pc.on("track", self._on_track)
        self._tasks: list[asyncio.Task[None]] = []

    def _on_track(self, track) -> None:  # noqa: ANN001
        async def pull() -> None:
            while True:
                frame = await track.recv()
                pcm = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0]
                self.frames.append((int(frame.pts), pcm.astype(np.float32) / 32768))
        self._tasks.append(asyncio.ensure_future(pull()))

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE_HZ)[np.argmax(spectrum)])


@pytest.mark.timeout(60)
async def test_a_viewer_hears_the_show_and_can_map_rtp_time_to_show_samples() -> None:
    hub = ViewerHub()
    client = Client()
    viewer, answer = await hub.answer(await client.offer())
    await client.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    pacer = AudioPacer(tone, [hub.push_audio], PacerConfig(480, 2))

    async def poses() -> None:
        while True:
            hub.push_pose(PoseFrame(pacer.playout_sample, expressions={"aa": 0.5}))
            await asyncio.sleep(1 / 60)

    pose_task = asyncio.ensure_future(poses())
    try:
        await pacer.run(until_sample=2 * SAMPLE_RATE_HZ)
        await asyncio.sleep(0.3)
    finally:
        pose_task.cancel()
    receiver = client.pc.getTransceivers()[0].receiver
    # aiortc's receiver re-bases RTP time to its first packet; browsers report raw RTP time
    rtp_origin = receiver._RTCRtpReceiver__timestamp_mapper._origin
    await client.close()
    await hub.close_all()

    assert pacer.xruns <= xrun_budget(pacer.chunks_played) and len(client.frames) > 40
    # audio arrived, in tune
    rtp = np.array([pts for pts, _ in client.frames], dtype=np.int64) + rtp_origin
    audio = np.concatenate([pcm for _, pcm in client.frames])
    assert abs(dominant_hz(audio[: SAMPLE_RATE_HZ // 4]) - 300) < 10
    assert abs(dominant_hz(audio[-SAMPLE_RATE_HZ // 4:]) - 600) < 10
    # RTP time -> show time: where the received tone jumps is where the show's jump was
    offset = viewer.track.rtp_minus_show
    assert offset is not None
    per_frame = [dominant_hz(pcm) for _, pcm in client.frames]
    first_high = next(i for i, hz in enumerate(per_frame) if hz > 450)
    show_at_jump = (rtp[first_high] - offset) % (1 << 32)
    assert abs(int(show_at_jump) - SWITCH) <= 960 + 480  # within one Opus frame + codec delay
    # the pose channel carried sync info and compact pose frames
    syncs = [json.loads(m)["sync"] for m in client.messages if m.startswith('{"sync"')]
    poses = [PoseFrame.from_json(m) for m in client.messages if m.startswith('{"t"')]
    assert syncs and syncs[0]["rtp_minus_show"] == offset
    assert len(poses) > 30 and poses[-1].expressions == {"aa": 0.5}
    assert max(len(m) for m in client.messages) < 1024


async def test_bad_offers_get_clear_errors_and_leave_nothing_behind() -> None:
    hub = ViewerHub()
    for sdp, words in [("hello", "not an SDP offer"),
                       ("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", "no audio"),
                       ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 X 0\r\n",
                        "cannot answer")]:
        with pytest.raises(OfferError, match=words):
            await hub.answer(sdp)
    assert hub.viewers == {}
    # a page may take the voice on a data channel alone; a WHEP player needs the audio track
    pc = RTCPeerConnection()
    pc.createDataChannel("voice", ordered=False, maxRetransmits=0)
    await pc.setLocalDescription(await pc.createOffer())
    with pytest.raises(OfferError, match="no audio section"):
        await hub.answer(pc.localDescription.sdp, kind="whep")
    viewer, _ = await hub.answer(pc.localDescription.sdp, kind="stage")
    assert viewer.track is None and viewer.stats()["path"] == "datachannel"
    await pc.close()
    await hub.close_all()


@pytest.mark.timeout(60)
async def test_a_stage_page_gets_10_ms_packets_and_a_whep_player_20_ms() -> None:
    """The stage page's RTP fallback takes the 10 ms Opus frames (less for NetEq to buffer);
    broadcasters' WHEP keeps 20 ms. Measured on what arrived: the RTP timestamp step between
    consecutive packets, and the tone in them."""
    hub = ViewerHub()
    stage, whep = Client(), Client(with_pose=False)
    _, stage_answer = await hub.answer(await stage.offer(), kind="stage")
    _, whep_answer = await hub.answer(await whep.offer(), kind="whep")
    await stage.pc.setRemoteDescription(RTCSessionDescription(stage_answer, "answer"))
    await whep.pc.setRemoteDescription(RTCSessionDescription(whep_answer, "answer"))
    pacer = AudioPacer(tone, [hub.push_audio], PacerConfig(480, 2))
    await pacer.run(until_sample=SAMPLE_RATE_HZ)
    await asyncio.sleep(0.3)
    await stage.close()
    await whep.close()
    await hub.close_all()
    for client, step in ((stage, 480), (whep, 960)):
        pts = np.array([p for p, _ in client.frames])
        assert len(pts) > 10, len(pts)
        steps = np.diff(pts)
        assert np.median(steps) == step and all(len(pcm) == step for _, pcm in client.frames)
        audio = np.concatenate([pcm for _, pcm in client.frames])
        assert abs(dominant_hz(audio[-SAMPLE_RATE_HZ // 8:]) - 300) < 10
    # one encoder per frame size, whatever the viewers: the 10 ms one fed the stage page
    assert hub.voice_encoder.frames_encoded > 0 and hub.rtp_encoder.frames_encoded > 0
