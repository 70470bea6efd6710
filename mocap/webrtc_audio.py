"""The performer's browser microphone as a capture source: a received WebRTC audio track
pushed, on the show clock, into a ``PushedAudioSource`` (follow mode's audio input).

Each received frame (aiortc's Opus decoder: 20 ms of 48 kHz, 16-bit, usually stereo) is
mixed to mono, resampled to 48 kHz if it is not, and stamped with the show sample at which
it was captured: its RTP timestamp is mapped onto our clock the way the camera's frames are
(``FrameClock``: the quickest frame of the last few seconds is taken to have arrived with no
delay), so the sender's own sample spacing is kept and network jitter is not. The measured
input latency (``latency_samples``: the median delay from that capture time to the frame's
arrival, i.e. the receive jitter buffer) tells the follower how late it hears the voice.
The quickest frame's own one-way delay (encode, network, decode: typically 20-60 ms on a
LAN) cannot be measured without a shared clock and is not included.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from mocap.performer_audio import PushedAudioSource
from mocap.webrtc_source import FrameClock
from singer.contracts import SAMPLE_RATE_HZ

LATENCY_WINDOW = 100
"""Frames (2 s of 20 ms frames) over which the input latency is measured."""


class WebRtcAudio:
    """Feeds ``target`` from the current performer's audio track; ``now_sample()`` is the
    show clock, ``now_ns()`` the monotonic clock it is read beside."""

    def __init__(self, target: PushedAudioSource, now_sample: Callable[[], int],
                 now_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self.target = target
        self._now_sample = now_sample
        self._now_ns = now_ns
        self._clock = FrameClock(window=LATENCY_WINDOW * 3)
        self._delays: deque[int] = deque(maxlen=LATENCY_WINDOW)
        self.frames = 0
        self.bad_frames = 0
        self.tracks = 0

    async def consume(self, track: Any) -> None:
        """Receive ``track``'s audio until it ends (the performer left)."""
        self.tracks += 1
        self._clock.reset()
        self._delays.clear()
        while not self.target.closed:
            try:
                frame = await track.recv()
            except Exception:  # aiortc's MediaStreamError: the track ended
                return
            self.put(frame, self._now_ns(), self._now_sample())

    def put(self, frame: Any, arrival_ns: int, arrival_sample: int) -> None:
        """One received ``av.AudioFrame``-like frame (``to_ndarray``, ``sample_rate``,
        ``format``, ``layout``, ``pts``, ``time_base``), arrived at ``arrival_sample``."""
        try:
            samples = _mono_float(frame)
            rate = int(frame.sample_rate)
        except Exception:  # a frame that cannot be read: skipped and counted
            self.bad_frames += 1
            return
        captured_ns = self._clock.capture_ns(getattr(frame, "pts", None),
                                             getattr(frame, "time_base", None), arrival_ns)
        delay = (arrival_ns - captured_ns) * SAMPLE_RATE_HZ // 1_000_000_000
        self._delays.append(int(delay))
        self.target.latency_samples = int(np.median(self._delays))
        # the frame's first sample, captured (len / rate) before its last one
        start = arrival_sample - int(delay) - len(samples) * SAMPLE_RATE_HZ // rate
        try:
            self.target.push(samples, rate, start)
        except ValueError:
            self.bad_frames += 1
            return
        self.frames += 1

    def stats(self) -> dict[str, object]:
        """Counters for the status."""
        return {"frames": self.frames, "bad_frames": self.bad_frames, "tracks": self.tracks,
                "latency_ms": round(self.target.latency_samples * 1000 / SAMPLE_RATE_HZ, 1)}


def _mono_float(frame: Any) -> np.ndarray:
    """A frame's samples as mono float32 in -1..1 (packed or planar, s16/s32/flt)."""
    data = np.asarray(frame.to_ndarray())
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        data = data.reshape(channels, -1).T
    else:
        data = data.reshape(-1, channels)
    if data.dtype == np.int16:
        scaled = data.astype(np.float32) / 32768.0
    elif data.dtype == np.int32:
        scaled = data.astype(np.float32) / 2147483648.0
    else:
        scaled = data.astype(np.float32)
    return np.asarray(scaled.mean(axis=1), dtype=np.float32)
