"""The performer's page in headless Chromium with a fake camera showing grace_hopper.jpg: the
frames cross WebRTC to the engine, which tracks her face and its known head roll.

Everything is real: Chromium's camera capture (a .y4m file), its VP8 encoder and WebRTC,
aiortc, the web server, the capture loop, mediapipe.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from mocap.capture import CaptureOptions
from mocap.landmarks import LandmarkFrame
from mocap.tracker import Tracker, TrackerOptions
from mocap.webrtc_source import WebRtcSource
from rigs.facial import LEFT_EYE_OUTER, RIGHT_EYE_OUTER
from stage.clock import ClockSync
from stage.mocap import MocapFeed
from streams.web import WebServer
from streams.webrtc.performer import PerformerDesk
from streams.webrtc.viewers import ViewerHub
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.mocap.test_tracking import grace, transformed
from tests.streams.test_web import WEB_ROOT, Show

W, H, FPS = 640, 480, 10
ROLLS = (15.0, -15.0)  # degrees counter-clockwise as seen, one second each, looped
FRAMES_PER_ROLL = 10


def camera_frames() -> list[np.ndarray]:
    """grace_hopper.jpg on a 640x480 canvas, rolled +15 degrees then -15 degrees."""
    rgb = grace()
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (round(w * H / h), H), interpolation=cv2.INTER_AREA)
    canvas = np.full((H, W, 3), 96, np.uint8)
    x0 = (W - small.shape[1]) // 2
    canvas[:, x0:x0 + small.shape[1]] = small
    return [transformed(canvas, roll) for roll in ROLLS for _ in range(FRAMES_PER_ROLL)]


def write_y4m(path: Path, frames: list[np.ndarray], fps: int) -> None:
    """An uncompressed YUV 4:2:0 video, as Chromium's fake camera reads it."""
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{W} H{H} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())


def eye_line_roll_deg(face: np.ndarray) -> float:
    """Angle of the eye line in the image, counter-clockwise as seen (y points down)."""
    d = face[LEFT_EYE_OUTER, :2] - face[RIGHT_EYE_OUTER, :2]
    return math.degrees(math.atan2(-d[1], d[0]))


@pytest.fixture
async def camera_browser(tmp_path: Path) -> AsyncIterator[object]:
    """Chromium whose camera plays a .y4m of grace_hopper.jpg."""
    from playwright.async_api import async_playwright

    video = tmp_path / "grace.y4m"
    write_y4m(video, camera_frames(), FPS)
    args = [*CHROMIUM_ARGS, "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}"]
    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            yield instance
        finally:
            await instance.close()


async def wait_until(predicate, timeout_s: float) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.mark.timeout(90)
async def test_perform_page_camera_is_tracked_by_the_engine(camera_browser, tmp_path: Path
                                                            ) -> None:  # noqa: ANN001
    # what the tracker sees in the camera's own frames (no WebRTC): the reference rolls
    still = Tracker(TrackerOptions(pose=False, static_images=True))
    frames = camera_frames()
    reference = []
    for k in range(len(ROLLS)):
        face = still.process(frames[k * FRAMES_PER_ROLL], 0).face
        assert face is not None
        reference.append(eye_line_roll_deg(face))
    still.close()

    avatar = tmp_path / "a.vrm"
    avatar.write_bytes(b"glTF-test")
    clock = ClockSync()
    source = WebRtcSource()
    feed = MocapFeed(source, clock, CaptureOptions(TrackerOptions(pose=True, face=True)),
                     prewarm=True)
    tracked: list[LandmarkFrame] = []
    feed.add_frame_sink(tracked.append)
    desk = PerformerDesk(source.consume)
    web = WebServer(ViewerHub(), Show(), web_root=WEB_ROOT, avatar_path=avatar, port=0,
                    performer=desk)
    await web.start()
    capture = asyncio.ensure_future(feed.run())
    page = await camera_browser.new_page()  # type: ignore[attr-defined]
    logs: list[str] = []
    page.on("console", lambda msg: logs.append(msg.text))
    try:
        started = time.monotonic()
        await page.goto(f"http://127.0.0.1:{web.port}/perform")
        await page.wait_for_function(
            "window.livesingerPerform && window.livesingerPerform.state.startsWith('performing')",
            timeout=20_000)
        connected_s = time.monotonic() - started
        # collect tracked frames over three loops of the video
        n0 = len(tracked)
        await asyncio.sleep(3 * len(ROLLS) * FRAMES_PER_ROLL / FPS)
        seen = tracked[n0:]
        shown = await page.evaluate("window.livesingerPerform")
        status = desk.stats()
        # the performer leaves with the page's button: the engine lets go at once
        await page.evaluate("window.livesingerLeave()")
        await wait_until(lambda: desk.performer is None, 5)
        left_state = await page.evaluate("window.livesingerPerform.state")
        # and can come back; closing the tab (no goodbye) also ends the session
        await page.evaluate("document.getElementById('start').click()")
        await page.wait_for_function(
            "window.livesingerPerform.state.startsWith('performing')", timeout=20_000)
        assert desk.performer is not None
        await page.close()
        await wait_until(lambda: desk.performer is None, 10)
    finally:
        if not page.is_closed():
            await page.close()
        await web.stop()
        capture.cancel()
        await asyncio.gather(capture, return_exceptions=True)

    assert status is not None and status["state"] == "connected", status
    assert shown["framesSent"] > 0 and shown["error"] is None, (shown, logs)
    assert left_state == "left"
    assert not source.performing and desk.joined == 2 and desk.left == 2
    faces = [f for f in seen if f.face is not None]
    rolls = np.array([eye_line_roll_deg(f.face) for f in faces])
    print(f"connected in {connected_s:.1f} s; tracked {len(seen)} frames in "
          f"{3 * len(ROLLS) * FRAMES_PER_ROLL / FPS:.0f} s, {len(faces)} with a face, "
          f"{sum(f.pose_world is not None for f in seen)} with a body; "
          f"received {source.received}, dropped {source.dropped} + "
          f"{feed.capture.stats.dropped}; size {source.last_size}; "
          f"rolls {np.round(np.sort(rolls), 1).tolist()}; reference {np.round(reference, 1)}")
    assert len(faces) >= 10 and len(faces) >= 0.8 * len(seen)
    assert sum(f.pose_world is not None for f in seen) >= 0.8 * len(seen)
    # both rolls of the video are seen, each as big as in the frames themselves
    for roll in reference:
        near = np.abs(rolls - roll) < 4.0
        assert near.sum() >= 3, (roll, rolls)
    # capture times are on the show clock, in order, never in the future
    assert all(a.t < b.t for a, b in zip(seen, seen[1:], strict=False))
    assert seen[-1].t <= clock.now_sample()
