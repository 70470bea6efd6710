"""The performer's page may send frames of any size: those the tracker cannot take (a few
pixels, larger than 4096) are skipped and counted, and the next good frame is read."""

from __future__ import annotations

import asyncio

import av
import numpy as np
import pytest

from mocap.webrtc_source import WebRtcSource


def frame(height: int, width: int) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.full((height, width, 3), 80, np.uint8), format="rgb24")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("size", [(8, 8), (4100, 32)])
async def test_unusable_frame_sizes_are_skipped(size: tuple[int, int]) -> None:
    source = WebRtcSource()
    source.put(frame(*size), 1_000)
    reading = asyncio.ensure_future(asyncio.to_thread(source.read_stamped))
    for _ in range(200):
        if source.bad_frames:
            break
        await asyncio.sleep(0.01)
    source.put(frame(48, 64), 2_000)
    got = await reading
    source.close()
    assert got is not None and got[0].shape == (48, 64, 3)
    assert source.bad_frames == 1 and source.last_size == (64, 48)
