"""The performer's browser camera as a capture source: video frames received over WebRTC.

``WebRtcSource`` is a live ``FrameSource`` fed by a received video track (``consume(track)``,
run on the event loop). It keeps only the newest frame: a reader (the capture's worker
thread) that is slower than the camera gets the newest frame and the older ones are dropped
and counted, never queued. Conversion to RGB happens in ``read_stamped``, on the worker
thread, and only for the frames that are read.

Capture time (``FrameClock``): each frame carries ``pts * time_base``, the sender's capture
clock (for RTP video, the 90 kHz RTP timestamp, which starts at a random value and wraps at
2**32). We do not know how the browser's clock relates to ours, so a frame's capture time is
mapped onto ``time.monotonic_ns()`` by the smallest ``arrival - pts`` seen over the last
``window`` frames: the quickest frame of that window is taken to have arrived with no
delay. That keeps the sender's own frame spacing (no network or decoder jitter in the
timestamps), never puts a frame later than its arrival, and follows slow drift between the
two clocks. The true capture time is earlier by the quickest frame's one-way latency
(encode + network + decode, typically 20-60 ms on a LAN), which cannot be measured without a
shared clock. The capture maps the result onto the show clock like any other source's read
time. Frames without ``pts`` use their arrival time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

from mocap.sources import FrameSource

log = logging.getLogger(__name__)

RTP_WRAP = 1 << 32
RESYNC_NS = 2_000_000_000
"""An ``arrival - pts`` this far from the current one means a new stream: start over."""


MIN_SIDE_PX, MAX_SIDE_PX = 16, 4096
"""A received frame narrower or shorter than this, or wider or taller, is skipped."""


def _usable_image(rgb: np.ndarray) -> bool:
    """An (H, W, 3) ``uint8`` image of a size the tracker can take."""
    return (rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8
            and MIN_SIDE_PX <= min(rgb.shape[:2]) and max(rgb.shape[:2]) <= MAX_SIDE_PX)


class VideoTrack(Protocol):
    """A received video track (aiortc's ``MediaStreamTrack``): ``await recv()`` gives frames
    (``av.VideoFrame``) and raises when the track ends."""

    kind: str

    async def recv(self) -> Any: ...


class FrameClock:
    """Maps frame presentation times (``pts`` in ``time_base`` seconds, the sender's clock)
    onto ``time.monotonic_ns()`` using each frame's arrival time (see the module doc)."""

    def __init__(self, window: int = 150) -> None:
        self._offsets: deque[int] = deque(maxlen=window)
        self._last_pts: int | None = None
        self._unwrapped = 0

    def reset(self) -> None:
        """Forget the stream (a new sender)."""
        self._offsets.clear()
        self._last_pts = None
        self._unwrapped = 0

    def capture_ns(self, pts: int | None, time_base: Fraction | None, arrival_ns: int) -> int:
        """The monotonic time at which the frame was captured (never after ``arrival_ns``)."""
        if pts is None or time_base is None or time_base <= 0:
            return arrival_ns
        if self._last_pts is not None:
            step = (pts - self._last_pts) % RTP_WRAP  # RTP timestamps wrap at 2**32
            self._unwrapped += step - RTP_WRAP if step >= RTP_WRAP // 2 else step
        self._last_pts = pts
        pts_ns = int(self._unwrapped * time_base * 1_000_000_000)
        offset = arrival_ns - pts_ns
        if self._offsets and abs(offset - min(self._offsets)) > RESYNC_NS:
            self._offsets.clear()
        self._offsets.append(offset)
        return pts_ns + min(self._offsets)


class WebRtcSource(FrameSource):
    """Frames of the current performer's video track; ``read`` blocks until one arrives (or
    ``close``). One track at a time: a newer ``consume`` replaces the older one."""

    live = True

    def __init__(self, name: str = "webrtc", now_ns: Callable[[], int] = time.monotonic_ns
                 ) -> None:
        self.name = name
        self.fps = 30.0
        self.received = 0
        """Frames received from performers."""
        self.dropped = 0
        """Frames replaced by a newer one before the reader took them."""
        self.bad_frames = 0
        """Frames that could not be converted to RGB, or of an unusable size (skipped)."""
        self.tracks = 0
        """Video tracks consumed so far (performers)."""
        self.last_size: tuple[int, int] = (0, 0)
        self._now_ns = now_ns
        self._clock = FrameClock()
        self._cond = threading.Condition()
        self._slot: tuple[Any, int] | None = None
        self._closed = False
        self._generation = 0
        self._active = False

    @property
    def performing(self) -> bool:
        """True while a track is being received."""
        return self._active

    async def consume(self, track: VideoTrack) -> None:
        """Receive ``track``'s frames until it ends (the performer left) or a newer track
        replaces it. Runs on the event loop; does no heavy work."""
        self._generation += 1
        generation = self._generation
        self.tracks += 1
        self._clock.reset()
        self._active = True
        try:
            while generation == self._generation and not self._closed:
                try:
                    frame = await track.recv()
                except Exception:  # aiortc's MediaStreamError: the track ended
                    break
                if generation != self._generation:
                    break
                self.put(frame, self._now_ns())
        finally:
            if generation == self._generation:
                self._active = False
                with self._cond:
                    self._slot = None

    def put(self, frame: Any, arrival_ns: int) -> None:
        """Offer one received frame (``av.VideoFrame``-like: ``pts``, ``time_base``,
        ``to_ndarray(format="rgb24")``); an untaken older frame is dropped."""
        captured = self._clock.capture_ns(getattr(frame, "pts", None),
                                          getattr(frame, "time_base", None), arrival_ns)
        with self._cond:
            self.received += 1
            if self._slot is not None:
                self.dropped += 1
            self._slot = (frame, captured)
            self._cond.notify()

    def read_stamped(self) -> tuple[np.ndarray, int] | None:
        """The newest frame as RGB ``uint8`` and its capture time (monotonic ns); blocks
        until one arrives; None once closed."""
        while True:
            with self._cond:
                while self._slot is None and not self._closed:
                    self._cond.wait(0.5)
                if self._closed:
                    return None
                assert self._slot is not None
                (frame, captured), self._slot = self._slot, None
            try:
                rgb = np.asarray(frame.to_ndarray(format="rgb24"))
            except Exception as err:  # a frame PyAV cannot convert: skip it
                self.bad_frames += 1
                log.warning("webrtc: skipped a frame that cannot be converted: %s", err)
                continue
            if not _usable_image(rgb):
                self.bad_frames += 1
                log.warning("webrtc: skipped a frame of shape %s", rgb.shape)
                continue
            self.last_size = (int(rgb.shape[1]), int(rgb.shape[0]))
            return rgb, captured

    def read(self) -> np.ndarray | None:
        got = self.read_stamped()
        return None if got is None else got[0]

    def stats(self) -> dict[str, object]:
        """Counters for ``/status``."""
        return {"performing": self._active, "received": self.received,
                "dropped": self.dropped, "bad_frames": self.bad_frames,
                "tracks": self.tracks, "size": list(self.last_size)}

    def close(self) -> None:
        """Stop: the reader gets None, the track is no longer read."""
        with self._cond:
            self._closed = True
            self._generation += 1
            self._slot = None
            self._cond.notify_all()
