"""The show's Opus is encoded once: every viewer gets the same packets, strictly in order.

Real aiortc peers on loopback (aioice leaves 127.0.0.1 out of ICE: the peers meet on the
machine's other address), the real pacer and the real libopus encoder; each receiver's RTP
packets are recorded as they arrive from its transport.
"""

from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from singer.contracts import SAMPLE_RATE_HZ, AudioChunk
from stage.pacer import AudioPacer, PacerConfig
from streams.webrtc.opus_encoder import VOICE_HEADER, OpusFrame, ShowOpusEncoder
from streams.webrtc.viewers import ViewerHub
from tests.measure import xrun_budget
from tests.streams.test_viewers import SWITCH, dominant_hz, tone

SR = SAMPLE_RATE_HZ


def decode(payloads: list[bytes]) -> np.ndarray:
    """Opus packets -> mono float32, with PyAV's libopus decoder (as a receiver would)."""
    codec = av.CodecContext.create("libopus", "r")
    out = []
    for i, payload in enumerate(payloads):
        packet = av.Packet(payload)
        packet.pts = i
        packet.time_base = fractions.Fraction(1, SR)
        for frame in codec.decode(packet):
            pcm = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0]
            out.append(pcm.astype(np.float32) / (32768 if pcm.dtype == np.int16 else 1))
    return np.concatenate(out)


class RtpRecorder:
    """A receive-only aiortc peer recording (timestamp, payload) of each RTP packet."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        transceiver = self.pc.addTransceiver("audio", direction="recvonly")
        self.packets: list[tuple[int, bytes]] = []
        receiver = transceiver.receiver
        handle = receiver._handle_rtp_packet

        async def recording(packet, arrival_time_ms: int) -> None:  # noqa: ANN001
            self.packets.append((packet.timestamp, bytes(packet.payload)))
            await handle(packet, arrival_time_ms)
        receiver._handle_rtp_packet = recording  # type: ignore[method-assign]

    async def join(self, hub: ViewerHub) -> None:
        """Connect to ``hub`` as one of its WHEP players (``self.viewer``: 20 ms frames; a
        stage page's track takes the 10 ms ones)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.viewer, answer = await hub.answer(self.pc.localDescription.sdp, kind="whep")
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))


def test_frames_are_stamped_strictly_increasing_across_gaps_and_jumps_back() -> None:
    encoder = ShowOpusEncoder(480)
    frames: list[OpusFrame] = []
    encoder.subscribe(frames.append)
    for start in [*range(0, 9600, 240), *range(24000, 28800, 240), *range(4800, 9600, 240)]:
        encoder.push(AudioChunk(start, tone(start, 240)))
    stream = np.array([f.stream_sample for f in frames])
    show = np.array([f.show_sample for f in frames])
    assert np.all(np.diff(stream) > 0)  # strictly increasing, never repeated
    steps = sorted(set(np.diff(stream).tolist()))
    assert steps == [480, 480 + 24000 - 9600], steps  # the forward gap is kept, the jump back not
    assert encoder.jumps == 2 and encoder.delay_samples == 120  # lowdelay: 2.5 ms
    # the mapping to the show follows the chunks: heard = input - codec delay
    assert show[0] == -120 and show[20] == 24000 - 120 and show[30] == 4800 - 120
    audio = decode([bytes(f.packet) for f in frames[:20]])
    assert abs(dominant_hz(audio[2400:]) - 300) < 10
    with pytest.raises(ValueError, match="not 500"):
        ShowOpusEncoder(500)


@pytest.mark.timeout(60)
async def test_every_viewer_gets_the_same_packets_encoded_once() -> None:
    hub = ViewerHub()
    recorders = [RtpRecorder() for _ in range(3)]
    for recorder in recorders:
        await recorder.join(hub)
    pacer = AudioPacer(tone, [hub.push_audio], PacerConfig(240, 4))
    try:
        await pacer.run(until_sample=2 * SR)
        await asyncio.sleep(0.3)
        offsets = [r.viewer.track.rtp_minus_show for r in recorders]
    finally:
        for recorder in recorders:
            await recorder.pc.close()
        await hub.close_all()

    assert pacer.xruns <= xrun_budget(pacer.chunks_played)
    # encoded once: one encode per 20 ms frame of the show, not one per viewer
    frames_played = pacer.chunks_played * 240 // 960
    assert frames_played - 2 <= hub.rtp_encoder.frames_encoded <= frames_played
    assert hub.voice_encoder.frames_encoded == 0  # nobody took the data-channel voice
    by_show = []
    for recorder, offset in zip(recorders, offsets, strict=True):
        assert offset is not None and len(recorder.packets) > 60
        stamps = np.array([ts for ts, _ in recorder.packets], dtype=np.int64)
        # strictly increasing RTP timestamps, one 20 ms frame apart, no duplicates
        assert set(np.diff(stamps).tolist()) == {960}, sorted(set(np.diff(stamps).tolist()))
        by_show.append({(ts - offset) % (1 << 32): p for ts, p in recorder.packets})
    common = set(by_show[0]) & set(by_show[1]) & set(by_show[2])
    assert len(common) > 60
    for show in common:  # the very same bytes, for the same show sample, to every viewer
        assert by_show[0][show] == by_show[1][show] == by_show[2][show]
    # and they are the show: the tone's jump sits where the show put it
    first = min(common)
    ordered = [by_show[0][s] for s in sorted(common)]
    per_frame = [dominant_hz(x) for x in np.split(decode(ordered)[:len(ordered) * 960],
                                                   len(ordered))]
    jump = first + 960 * next(i for i, hz in enumerate(per_frame) if hz > 450)
    assert abs(jump - SWITCH) <= 960


@pytest.mark.timeout(60)
async def test_the_voice_channel_carries_10_ms_frames_stamped_with_show_samples() -> None:
    hub = ViewerHub()
    pc = RTCPeerConnection()
    voice = pc.createDataChannel("voice", ordered=False, maxRetransmits=0)
    messages: list[bytes] = []
    voice.on("message", messages.append)
    await pc.setLocalDescription(await pc.createOffer())
    assert "m=audio" not in pc.localDescription.sdp  # the low-latency path offers no track
    viewer, answer = await hub.answer(pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    pacer = AudioPacer(tone, [hub.push_audio], PacerConfig(240, 4))
    try:
        await pacer.run(until_sample=2 * SR)
        await asyncio.sleep(0.2)
        stats = viewer.stats()
    finally:
        await pc.close()
        await hub.close_all()

    assert stats["path"] == "datachannel" and hub.rtp_encoder.frames_encoded == 0
    heads = [VOICE_HEADER.unpack_from(m) for m in messages]
    assert len(heads) > 120 and {h[:3] for h in heads} == {(1, 1, 480)}
    stream = np.array(sorted(h[3] for h in heads))
    assert len(set(stream.tolist())) == len(stream)  # no duplicates
    in_order = sorted(zip(heads, messages, strict=True), key=lambda hm: hm[0][3])
    show = [h[4] for h, _ in in_order]
    audio = decode([m[VOICE_HEADER.size:] for _, m in in_order])
    per_frame = [dominant_hz(x) for x in np.split(audio[:len(show) * 480], len(show))]
    first_high = next(i for i, hz in enumerate(per_frame) if hz > 450)
    assert abs(show[first_high] - SWITCH) <= 480  # the show sample heard is the one stated
