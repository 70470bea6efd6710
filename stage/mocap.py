"""Motion capture in the show: a capture feeding the rig, VMC out, a preview video.

``run_mocap`` is ``livesinger mocap`` (capture alone); ``MocapFeed`` is what ``serve --mocap``
runs next to the pose stream, which blends the rig over the idle body (``stage.posing``).
``VmcFeed`` is the same for poses received as VMC (``--mocap vmc:PORT``); ``make_feed`` picks
one from a ``--mocap`` spec.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mocap.capture import Capture, CaptureOptions
from mocap.landmarks import LandmarkFrame
from mocap.sources import FrameSource, SourceError, open_source
from mocap.tracker import Tracker
from rigs.mocap_rig import MocapRig
from rigs.pose import PoseFrame
from stage.clock import ClockSync
from streams.vmc import VMC_PERFORMER_PORT, VmcReceiver, VmcSender

log = logging.getLogger(__name__)

_BONES = [(11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24),
          (23, 25), (25, 27), (24, 26), (26, 28)]


def parse_host_port(text: str, default_port: int) -> tuple[str, int]:
    """``HOST:PORT``, ``HOST`` or ``:PORT`` -> (host, port); ``ValueError`` explains."""
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    try:
        number = int(port) if port else default_port
    except ValueError:
        raise ValueError(f"{text!r}: want HOST:PORT") from None
    if not 0 < number < 65536:
        raise ValueError(f"{text!r}: port out of range")
    return host or "127.0.0.1", number


class PreviewWriter:
    """Draws the tracked skeleton and face points into an MP4 (what the tracker saw)."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self._fps = fps
        self._writer: object | None = None

    def write(self, frame: LandmarkFrame) -> None:
        """Add one frame (blank canvas of the tracked image size)."""
        import cv2

        w, h = frame.image_size
        if w == 0:
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")  # type: ignore[attr-defined]
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self._fps, (w, h))
        canvas = np.zeros((h, w, 3), np.uint8)
        if frame.pose_image is not None:
            pts = (frame.pose_image[:, :2] * (w, h)).astype(int)
            for a, b in _BONES:
                cv2.line(canvas, tuple(map(int, pts[a])), tuple(map(int, pts[b])),
                         (0, 200, 255), 2)
        if frame.face is not None:
            for x, y in frame.face[::3, :2].astype(int):
                canvas[np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)] = (255, 255, 255)
        self._writer.write(canvas)  # type: ignore[attr-defined]

    def close(self) -> None:
        """Finish the file."""
        if self._writer is not None:
            self._writer.release()  # type: ignore[attr-defined]


class MocapFeed:
    """A capture driving a ``MocapRig``; pose sinks get each captured pose (T-pose rest).
    Without sinks the rig only observes, and the show's pose stream blends it."""

    def __init__(self, source: str | FrameSource, clock: ClockSync,
                 options: CaptureOptions | None = None,
                 sinks: list[Callable[[PoseFrame], None]] | None = None,
                 prewarm: bool = False) -> None:
        self.rig = MocapRig()
        opts = options or CaptureOptions()
        frames = open_source(source) if isinstance(source, str) else source
        # prewarm: load the models now (before the show clock runs), not mid-show
        tracker = Tracker(opts.tracker) if prewarm else None
        self.capture = Capture(frames, clock.sample_at, opts, tracker)
        self.latency_ms: list[float] = []
        self._sinks = sinks or []
        self._frame_sinks: list[Callable[[LandmarkFrame], None]] = []

    def add_frame_sink(self, sink: Callable[[LandmarkFrame], None]) -> None:
        """Also hand each smoothed landmark frame to ``sink`` (preview)."""
        self._frame_sinks.append(sink)

    def _on_frame(self, frame: LandmarkFrame, read_ns: int) -> None:
        if self._sinks:
            pose = self.rig.update(frame)
            for sink in self._sinks:
                sink(pose)
        else:  # the show's pose stream asks the rig for poses at its own rate
            self.rig.observe(frame)
        for frame_sink in self._frame_sinks:
            frame_sink(frame)
        self.latency_ms.append((time.monotonic_ns() - read_ns) / 1e6)
        del self.latency_ms[:-1000]

    async def run(self) -> None:
        """Capture until the source ends (or cancellation)."""
        try:
            await self.capture.run(self._on_frame)
        finally:
            self.capture.close()

    async def run_guarded(self) -> None:
        """``run`` for the show: a failing capture is reported and the show goes on (the
        avatar eases back to idle)."""
        try:
            await self.run()
        except Exception as err:  # the tracker or the source failed mid-show
            log.exception("mocap stopped")
            print(f"livesinger: mocap stopped ({err}); the show goes on", file=sys.stderr)
        else:
            print(f"livesinger: mocap source {self.capture.source.name} ended", file=sys.stderr)


class VmcFeed:
    """Poses received as VMC (another capture app: VSeeFace, Webcam Motion Capture...) drive
    a ``MocapRig``, like ``MocapFeed``: the show's pose stream blends them over the idle body;
    pose sinks get each received pose as it is. Each pose is stamped with the show sample at
    which its packet arrived. Bad packets and messages with bad types, non-finite numbers or
    unknown names are ignored and counted (``receiver.bad_packets``,
    ``receiver.state.ignored``); out-of-range weights and root positions are clamped."""

    def __init__(self, clock: ClockSync, host: str = "127.0.0.1",
                 port: int = VMC_PERFORMER_PORT,
                 sinks: list[Callable[[PoseFrame], None]] | None = None,
                 allow: Sequence[str] = ()) -> None:
        self.rig = MocapRig()
        self.receiver = VmcReceiver(self._on_pose, clock.now_sample, host, port, allow)
        self.name = f"vmc:{host}:{port}"
        self._sinks = sinks or []
        self._listening = asyncio.Event()

    def _on_pose(self, frame: PoseFrame) -> None:
        self.rig.observe_pose(frame)
        for sink in self._sinks:
            sink(frame)

    async def listening(self) -> int:
        """Wait until the port is bound; the port (useful with port 0)."""
        await self._listening.wait()
        return self.receiver.port

    async def run(self) -> None:
        """Receive until cancelled."""
        await self.receiver.start()
        self.name = f"vmc:{self.receiver.host}:{self.receiver.port}"
        self._listening.set()
        try:
            await asyncio.Event().wait()
        finally:
            await self.receiver.stop()

    async def run_guarded(self) -> None:
        """``run`` for the show: a port that cannot be bound is reported, the show goes on."""
        try:
            await self.run()
        except OSError as err:
            log.exception("VMC in stopped")
            print(f"livesinger: VMC in stopped ({err}); the show goes on", file=sys.stderr)

    def stats(self) -> dict[str, object]:
        """Counters for summaries."""
        r = self.receiver
        return {"source": self.name, "frames": r.frames, "bad_packets": r.bad_packets,
                "ignored": r.state.ignored, "clamped": r.state.clamped, "refused": r.refused}


def make_feed(spec: str, clock: ClockSync, options: CaptureOptions | None = None,
              sinks: list[Callable[[PoseFrame], None]] | None = None, prewarm: bool = False
              ) -> MocapFeed | VmcFeed:
    """The feed of a ``--mocap``/``--source`` spec: ``vmc[:[HOST:]PORT][?from=ADDR,...]``
    (VMC in, default port 39540 on loopback; off loopback ``from=`` lists the senders taken,
    docs/security.md), ``webrtc`` (the ``/perform`` page's camera; the source is
    ``feed.capture.source``, to be fed by the web server), else a frame source
    (``camera:N``, a file, a folder). ``SourceError`` explains a bad spec."""
    if spec.partition("?")[0] == "vmc" or spec.startswith("vmc:"):
        rest, _, query = spec.removeprefix("vmc").removeprefix(":").partition("?")
        host, port = "127.0.0.1", VMC_PERFORMER_PORT
        allow: list[str] = []
        if query:
            key, _, senders = query.partition("=")
            if key != "from" or not senders:
                raise SourceError(f"{spec}: after '?' write from=ADDR[,ADDR...]")
            allow = senders.split(",")
        try:
            if rest.isdigit():
                port = int(rest)
                if port >= 65536:
                    raise ValueError("port out of range")
            elif ":" in rest:
                host, port = parse_host_port(rest, VMC_PERFORMER_PORT)
            elif rest:
                raise ValueError("not a port")
        except ValueError as err:
            raise SourceError(f"{spec}: want vmc, vmc:PORT or vmc:HOST:PORT ({err})") from None
        try:
            return VmcFeed(clock, host, port, sinks, allow)
        except ValueError as err:
            raise SourceError(f"{spec}: {err}") from None
    if spec == "webrtc":
        from mocap.webrtc_source import WebRtcSource

        return MocapFeed(WebRtcSource(), clock, options, sinks, prewarm)
    return MocapFeed(spec, clock, options, sinks, prewarm)


async def run_mocap(source: str, vmc_out: tuple[str, int] | None = None,
                    preview: Path | None = None, options: CaptureOptions | None = None,
                    seconds: float | None = None) -> dict[str, object]:
    """``livesinger mocap``: capture alone, to VMC and/or a preview file, until the source
    ends or ``seconds`` have passed. Returns a summary."""
    if source == "webrtc":
        raise SourceError("webrtc: the performer page needs the engine's web server: use "
                          "'livesinger serve --mocap webrtc'")
    clock = ClockSync()
    sender = VmcSender(*vmc_out) if vmc_out else None
    feed = make_feed(source, clock, options, [sender.send] if sender else [])
    writer = None
    if isinstance(feed, MocapFeed) and preview:
        writer = PreviewWriter(preview, feed.capture.source.fps)
        feed.add_frame_sink(writer.write)
    elif preview:
        raise SourceError(f"{source}: --preview needs a camera, video or image source")
    if sender:
        await sender.start()
    name = feed.capture.source.name if isinstance(feed, MocapFeed) else feed.name
    print(f"livesinger: capturing {name}"
          + (f" -> VMC {vmc_out[0]}:{vmc_out[1]}" if vmc_out else ""), file=sys.stderr,
          flush=True)
    try:
        if seconds is None:
            await feed.run()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(feed.run(), seconds)
    finally:
        if sender:
            with contextlib.suppress(Exception):
                await sender.stop()
        if writer:
            writer.close()
    sent = {"vmc_sent": sender.sent if sender else 0}
    if isinstance(feed, VmcFeed):
        return {**feed.stats(), **sent}
    s = feed.capture.stats
    lat = np.array(feed.latency_ms or [0.0])
    return {"read": s.read, "tracked": s.tracked, "dropped": s.dropped, "lost": s.lost,
            "refused": s.refused,
            "ms_p50": round(float(np.percentile(lat, 50)), 2), **sent,
            "preview": str(preview) if preview else None}
