"""The performer's camera over WebRTC without a browser: an aiortc peer sends real frames
(grace_hopper.jpg) to the engine's ``/perform/offer``; capture times, bad offers, one
performer at a time, cleanup."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction
from pathlib import Path

import aiohttp
import av
import cv2
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

from mocap.webrtc_source import RTP_WRAP, FrameClock, WebRtcSource
from streams.web import WebServer
from streams.webrtc.performer import PerformerDesk
from streams.webrtc.viewers import ViewerHub
from tests.mocap.test_tracking import grace
from tests.streams.test_web import WEB_ROOT, Show

MS = 1_000_000
TB = Fraction(1, 90000)


def test_frame_clock_keeps_sender_spacing_removes_jitter_and_unwraps() -> None:
    clock = FrameClock(window=50)
    start_pts = RTP_WRAP - 9000 * 5  # wraps after 5 frames of 100 ms
    arrival0 = 10_000 * MS
    jitter = [0, 30, 5, 12, 40, 0, 8, 25, 3, 17]  # ms of extra delay per frame
    out = []
    for i, extra in enumerate(jitter):
        pts = (start_pts + 9000 * i) % RTP_WRAP
        arrival = arrival0 + i * 100 * MS + extra * MS
        captured = clock.capture_ns(pts, TB, arrival)
        assert captured <= arrival
        out.append(captured)
    # the sender's 100 ms spacing is kept exactly, across the 2**32 wrap, jitter removed
    assert np.all(np.diff(out) == 100 * MS)
    assert out[0] == arrival0  # the quickest frame (no extra delay) anchors the mapping
    # a new stream (pts restart far away) resynchronises instead of going back in time
    later = arrival0 + 60_000 * MS
    assert clock.capture_ns(123, TB, later) == later
    # no pts: the arrival time
    assert FrameClock().capture_ns(None, None, 77) == 77


class GraceTrack(VideoStreamTrack):
    """A camera that shows grace_hopper.jpg (640x480), paced at 30 fps by aiortc."""

    def __init__(self) -> None:
        super().__init__()
        rgb = grace()
        h, w = rgb.shape[:2]
        small = cv2.resize(rgb, (round(w * 480 / h), 480))
        canvas = np.full((480, 640, 3), 90, np.uint8)
        x0 = (640 - small.shape[1]) // 2
        canvas[:, x0:x0 + small.shape[1]] = small
        self.image = canvas

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame.from_ndarray(self.image, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


async def offer_sdp(video: bool = True, audio: bool = False) -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection()
    if video:
        pc.addTransceiver(GraceTrack(), direction="sendonly")
    if audio:
        pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def wait_until(predicate, timeout_s: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.mark.timeout(60)
async def test_performer_offers_frames_errors_and_one_at_a_time(tmp_path: Path) -> None:
    avatar = tmp_path / "a.vrm"
    avatar.write_bytes(b"glTF-test")
    source = WebRtcSource()
    desk = PerformerDesk(source.consume)
    web = WebServer(ViewerHub(), Show(), web_root=WEB_ROOT, avatar_path=avatar, port=0,
                    performer=desk)
    await web.start()
    tasks_before = set(asyncio.all_tasks())
    base = f"http://127.0.0.1:{web.port}"
    first = second = None
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/perform") as r:
                assert r.status == 200 and "perform.js" in await r.text()
            async with http.get(base + "/perform.js") as r:
                assert r.status == 200 and "getUserMedia" in await r.text()
            # bad offers: 400 naming what is wrong; nothing changes
            bad = [(b"{not json", "not JSON"), (b'{"type": "answer", "sdp": "v=0"}',
                                                  '"type": "offer"'),
                   (b'{"type": "offer", "sdp": "hello"}', "not an SDP offer")]
            for body, words in bad:
                async with http.post(base + "/perform/offer", data=body,
                                     headers={"Content-Type": "application/json"}) as r:
                    assert r.status == 400 and words in (await r.json())["error"]
            audio_pc, audio_only = await offer_sdp(video=False, audio=True)
            async with http.post(base + "/perform/offer",
                                 json={"type": "offer", "sdp": audio_only}) as r:
                assert r.status == 400 and "no video" in (await r.json())["error"]
            await audio_pc.close()
            garbled_pc, sdp = await offer_sdp()
            garbled = "".join(line for line in sdp.splitlines(keepends=True)
                              if not line.startswith("a=ice-ufrag"))
            async with http.post(base + "/perform/offer",
                                 json={"type": "offer", "sdp": garbled}) as r:
                assert r.status == 400 and "cannot answer" in (await r.json())["error"]
            await garbled_pc.close()
            assert desk.performer is None

            # the first performer sends frames
            first, sdp = await offer_sdp()
            async with http.post(base + "/perform/offer", json={"type": "offer", "sdp": sdp}
                                 ) as r:
                assert r.status == 200
                answer = await r.json()
            await first.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
            got: list[tuple[np.ndarray, int, int]] = []

            def read_some() -> None:
                for _ in range(5):
                    stamped = source.read_stamped()
                    assert stamped is not None
                    got.append((*stamped, time.monotonic_ns()))

            await asyncio.wait_for(asyncio.to_thread(read_some), 20)
            assert all(rgb.shape == (480, 640, 3) and rgb.dtype == np.uint8 for rgb, _, _ in got)
            assert all(t_cap <= t_read for _, t_cap, t_read in got)
            spacing_ms = np.diff([t for _, t, _ in got]) / MS
            assert np.all(spacing_ms > 20), spacing_ms  # the sender's 30 fps, not bunched
            # colours survive: the middle of the picture is Grace's face, not the grey border
            assert abs(float(got[-1][0][:, :100].mean()) - 90) < 10
            async with http.get(base + "/status") as r:
                assert (await r.json())["performer"]["state"] == "connected"

            # a second performer is refused while the first is on
            second, sdp2 = await offer_sdp()
            async with http.post(base + "/perform/offer", json={"type": "offer", "sdp": sdp2}
                                 ) as r:
                assert r.status == 409 and "already connected" in (await r.json())["error"]

            # the first leaves: cleaned up, and the second can start
            async with http.delete(base + f"/perform/{answer['id']}") as r:
                assert r.status == 200
            async with http.delete(base + f"/perform/{answer['id']}") as r:
                assert r.status == 404
            assert desk.performer is None and not source.performing
            await first.close()
            async with http.post(base + "/perform/offer", json={"type": "offer", "sdp": sdp2}
                                 ) as r:
                assert r.status == 200
                answer2 = await r.json()
            await second.setRemoteDescription(RTCSessionDescription(answer2["sdp"], "answer"))
            received = source.received
            await wait_until(lambda: source.received > received + 3)
            # the second leaves by closing its connection (as a closed tab does)
            await second.close()
            await wait_until(lambda: desk.performer is None, 10)
            assert not source.performing and desk.joined == 2 and desk.left == 2
    finally:
        for pc in (first, second):
            if pc is not None:
                await pc.close()
        await web.stop()
        source.close()
    # nothing of the performers is left running
    await wait_until(lambda: not (set(asyncio.all_tasks()) - tasks_before
                                  - {asyncio.current_task()}), 5)


@pytest.mark.timeout(60)
async def test_serve_mocap_webrtc_serves_the_performer_page() -> None:
    from stage.serve import ServeError, ServeOptions, serve

    with pytest.raises(ServeError, match="needs the web server"):
        await serve(ServeOptions(http_port=None, osc_port=None, headless=True, mocap="webrtc"))
    ports: dict[str, object] = {}
    ready = asyncio.Event()
    handles: dict[str, object] = {}
    show = asyncio.ensure_future(serve(
        ServeOptions(http_port=0, osc_port=None, headless=True, mocap="webrtc"),
        lambda p: (ports.update(p), ready.set()), handles))
    try:
        await asyncio.wait_for(ready.wait(), 40)
        base = f"http://127.0.0.1:{ports['http']}"
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/perform") as r:
                assert r.status == 200
            async with http.post(base + "/perform/offer", json={"type": "offer",
                                                                 "sdp": "v=0\r\n"}) as r:
                assert r.status == 400 and "not an SDP offer" in (await r.json())["error"]
            async with http.get(base + "/status") as r:
                assert (await r.json())["performer"] is None
        assert isinstance(handles["performer"], PerformerDesk)
        assert not show.done()
    finally:
        show.cancel()
        await asyncio.gather(show, return_exceptions=True)
