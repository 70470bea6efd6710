"""The show's audio as an aiortc track: one per viewer, paced by the show clock.

aiortc's sender sends a frame as soon as ``recv()`` returns, so this track never invents its
own timing: the audio pacer pushes each chunk at its play time and ``recv()`` hands out
20 ms Opus-sized frames as they fill. A viewer that cannot keep up loses its own oldest
audio (bounded queue); it never slows the pacer or other viewers.
"""

from __future__ import annotations

import asyncio
import fractions
import logging

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from singer.contracts import SAMPLE_RATE_HZ, AudioChunk

log = logging.getLogger(__name__)

FRAME_SAMPLES = 960
"""20 ms: the frame aiortc's Opus encoder wants."""
QUEUE_FRAMES = 25
"""At most 0.5 s waits for a slow viewer; older audio is dropped."""


class ShowAudioTrack(MediaStreamTrack):
    """An audio track whose frame ``pts`` is the show sample of its first sample."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._frames: asyncio.Queue[av.AudioFrame] = asyncio.Queue(QUEUE_FRAMES)
        self._pending = np.zeros(0, dtype=np.float32)
        self._pending_start = 0
        self.first_sample: int | None = None
        self.frames_sent = 0
        self.frames_dropped = 0
        self.last_sent_sample: int | None = None
        self.rtp_minus_show: int | None = None
        self.sender: object | None = None  # the RTCRtpSender sending this track

    def push(self, chunk: AudioChunk) -> None:
        """Add a chunk (called by the pacer at its play time; never blocks)."""
        if self.readyState != "live":
            return
        if self._pending.size == 0:
            self._pending_start = chunk.t
        elif self._pending_start + self._pending.size != chunk.t:  # a gap: start over
            self._pending = np.zeros(0, dtype=np.float32)
            self._pending_start = chunk.t
        self._pending = np.concatenate([self._pending, chunk.samples])
        while self._pending.size >= FRAME_SAMPLES:
            samples, self._pending = self._pending[:FRAME_SAMPLES], self._pending[FRAME_SAMPLES:]
            self._enqueue(self._frame(samples, self._pending_start))
            self._pending_start += FRAME_SAMPLES

    def _frame(self, samples: np.ndarray, show_sample: int) -> av.AudioFrame:
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE_HZ
        frame.pts = show_sample
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE_HZ)
        return frame

    def _enqueue(self, frame: av.AudioFrame) -> None:
        if self._frames.full():
            self._frames.get_nowait()
            self.frames_dropped += 1
        self._frames.put_nowait(frame)

    def _learn_rtp_offset(self) -> None:
        """How RTP timestamps map to show samples: ``rtp = show + rtp_minus_show (mod 2^32)``.

        aiortc starts RTP time at a random origin it keeps to itself; when ``recv`` is called
        again, the previous frame's packet has just gone out with its timestamp.
        """
        if self.rtp_minus_show is not None or self.last_sent_sample is None or not self.sender:
            return
        sent = getattr(self.sender, "_RTCRtpSender__rtp_timestamp", 0)
        packets = getattr(self.sender, "_RTCRtpSender__packet_count", 0)
        if packets:
            self.rtp_minus_show = (sent - self.last_sent_sample) % (1 << 32)

    async def recv(self) -> av.AudioFrame:
        """The next 20 ms of show audio, when it is due."""
        if self.readyState != "live":
            raise MediaStreamError
        self._learn_rtp_offset()
        frame = await self._frames.get()
        if self.first_sample is None:
            self.first_sample = int(frame.pts or 0)
        self.frames_sent += 1
        self.last_sent_sample = int(frame.pts or 0)
        return frame
