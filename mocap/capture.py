"""Capture: source -> tracker (off the event loop) -> One Euro smoothing -> landmark frames.

Two loops: the reader takes frames from the source into a one-slot mailbox (the newest frame
wins; an older one not yet tracked is dropped and counted), and the tracker loop tracks the
newest frame in a worker thread. A tracker that falls behind therefore drops frames and never
queues them, and nothing blocking runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from mocap.landmarks import LandmarkFrame
from mocap.one_euro import OneEuroFilter, OneEuroParams
from mocap.sources import FrameSource
from mocap.tracker import Tracker, TrackerOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SmoothingOptions:
    """One Euro parameters per landmark stream (units: metres for world landmarks, pixels for
    the face mesh) and the visibility low-pass."""

    pose: OneEuroParams = field(default_factory=lambda: OneEuroParams(1.5, 8.0, 1.0))
    face: OneEuroParams = field(default_factory=lambda: OneEuroParams(2.0, 0.08, 1.0))
    hands: OneEuroParams = field(default_factory=lambda: OneEuroParams(2.0, 8.0, 1.0))
    visibility_alpha: float = 0.5
    """Per frame, visibility moves this share of the way to the new value."""


class LandmarkSmoother:
    """One Euro per landmark coordinate; a stream that disappears is reset, so the performer's
    return starts fresh instead of gliding from where they were lost."""

    def __init__(self, options: SmoothingOptions | None = None) -> None:
        self.options = o = options or SmoothingOptions()
        self._filters = {"pose_world": OneEuroFilter(o.pose), "pose_image": OneEuroFilter(o.pose),
                         "face": OneEuroFilter(o.face), "left_hand": OneEuroFilter(o.hands),
                         "right_hand": OneEuroFilter(o.hands)}
        self._visibility: np.ndarray | None = None

    def reset(self) -> None:
        """Forget every stream."""
        for f in self._filters.values():
            f.reset()
        self._visibility = None

    def process(self, frame: LandmarkFrame, t_s: float) -> LandmarkFrame:
        """The smoothed frame (``t_s``: capture time in seconds)."""
        out: dict[str, np.ndarray | None] = {}
        for name, filt in self._filters.items():
            value = getattr(frame, name)
            if value is None:
                filt.reset()
                out[name] = None
            else:
                out[name] = filt.process(value, t_s)
        vis = frame.pose_visibility
        if vis is None:
            self._visibility = None
        else:
            a = self.options.visibility_alpha
            self._visibility = vis if self._visibility is None else (
                self._visibility + a * (vis - self._visibility))
        return LandmarkFrame(frame.t, out["pose_world"], self._visibility, out["pose_image"],
                             out["face"], out["left_hand"], out["right_hand"], frame.image_size)


@dataclass(frozen=True, slots=True)
class CaptureOptions:
    """Tracker, smoothing and pacing of a capture."""

    tracker: TrackerOptions = field(default_factory=TrackerOptions)
    smoothing: SmoothingOptions = field(default_factory=SmoothingOptions)
    pace: bool = True
    """Play recorded sources (files, folders) at their frame rate, as a camera would."""


@dataclass(slots=True)
class CaptureStats:
    """Counters of a running capture."""

    read: int = 0
    tracked: int = 0
    dropped: int = 0
    """Frames replaced in the mailbox before the tracker took them."""
    lost: int = 0
    """Tracked frames in which nobody was found."""
    refused: int = 0
    """Landmark arrays left out (as unseen) for a non-finite number or a wrong shape."""


FrameCallback = Callable[[LandmarkFrame, int], None]
"""Receives each smoothed frame and the ``time.monotonic_ns()`` at which it was captured
(read, for sources that do not know better; see ``FrameSource.read_stamped``)."""


class Capture:
    """Runs one source through the tracker; ``await run(on_frame)`` until the source ends."""

    def __init__(self, source: FrameSource, show_sample_at: Callable[[int], int],
                 options: CaptureOptions | None = None, tracker: Tracker | None = None) -> None:
        self.source = source
        self.options = options or CaptureOptions()
        self.stats = CaptureStats()
        self._sample_at = show_sample_at
        self._tracker = tracker
        self._smoother = LandmarkSmoother(self.options.smoothing)
        self._mailbox: tuple[np.ndarray, int] | None = None
        self._wake = asyncio.Event()
        self._ended = False

    async def run(self, on_frame: FrameCallback) -> None:
        """Read, track and deliver frames until the source ends (or cancellation)."""
        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mocap")
        loop = asyncio.get_running_loop()
        try:
            if self._tracker is None:
                self._tracker = await loop.run_in_executor(pool, Tracker,
                                                           self.options.tracker)
            async with asyncio.TaskGroup() as group:
                group.create_task(self._run_reader(pool))
                group.create_task(self._run_tracker(pool, on_frame))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    async def _run_reader(self, pool: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.source.fps
        next_at = loop.time()
        try:
            while True:
                got = await loop.run_in_executor(pool, self.source.read_stamped)
                if got is None:
                    break
                self.stats.read += 1
                if self._mailbox is not None:
                    self.stats.dropped += 1
                self._mailbox = got
                self._wake.set()
                if self.options.pace and not self.source.live:
                    next_at += period
                    await asyncio.sleep(max(0.0, next_at - loop.time()))
                elif not self.source.live:
                    while self._mailbox is not None:  # unpaced: hand every frame over
                        await asyncio.sleep(0.001)
        finally:
            self._ended = True
            self._wake.set()

    async def _run_tracker(self, pool: ThreadPoolExecutor, on_frame: FrameCallback) -> None:
        loop = asyncio.get_running_loop()
        tracker = self._tracker
        assert tracker is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._mailbox is None:
                if self._ended:
                    return
                continue
            (rgb, read_ns), self._mailbox = self._mailbox, None
            frame = await loop.run_in_executor(pool, self.track, rgb, read_ns)
            on_frame(frame, read_ns)
            if self._mailbox is not None:
                self._wake.set()
            elif self._ended:
                return

    def track(self, rgb: np.ndarray, read_ns: int) -> LandmarkFrame:
        """Track and smooth one frame (blocking; the worker thread's job)."""
        assert self._tracker is not None
        raw, refused = self._tracker.process(rgb, self._sample_at(read_ns)).without_non_finite()
        self.stats.tracked += 1
        self.stats.refused += refused
        if raw.empty:
            self.stats.lost += 1
        return self._smoother.process(raw, read_ns / 1e9)

    def close(self) -> None:
        """Release the tracker and the source."""
        if self._tracker is not None:
            with contextlib.suppress(Exception):
                self._tracker.close()
        self.source.close()
