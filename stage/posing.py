"""The avatar's pose for a show sample: the singer's lip-sync on an idle body."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from rigs.idle import idle_blink, idle_bones
from rigs.lipsync import mouth_from_control
from rigs.pose import PoseFrame
from singer.ensemble import SingerLine

log = logging.getLogger(__name__)

POSE_RATE_HZ = 60.0


def pose_for(line: SingerLine, sample: int) -> PoseFrame:
    """The pose of the singer ``line`` at a show sample."""
    mouth = mouth_from_control(line.control_frame(sample))
    expressions = {**mouth, "blink": idle_blink(sample)}
    return PoseFrame(sample, idle_bones(sample), (0.0, 0.0, 0.0), expressions)


async def run_pose_stream(line: Callable[[], SingerLine], playout: Callable[[], int],
                          sinks: list[Callable[[PoseFrame], None]],
                          rate_hz: float = POSE_RATE_HZ) -> None:
    """Every 1/rate s: the pose at the sample being played goes to every sink."""
    period = 1.0 / rate_hz
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while True:
        frame = await asyncio.to_thread(pose_for, line(), playout())
        for sink in sinks:
            try:
                sink(frame)
            except Exception:
                log.exception("pose sink %r failed", sink)
        next_at += period
        await asyncio.sleep(max(0.0, next_at - loop.time()))
