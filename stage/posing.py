"""The avatar's pose for a show sample: the singer's lip-sync on an idle body."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from rigs.blend import merge_mouth
from rigs.idle import idle_blink, idle_bones
from rigs.lipsync import mouth_from_control
from rigs.mocap_rig import MocapRig
from rigs.pose import PoseFrame
from rigs.pose_check import pose_is_finite
from singer.ensemble import SingerLine

log = logging.getLogger(__name__)

POSE_RATE_HZ = 60.0


def pose_for(line: SingerLine, sample: int, mocap: MocapRig | None = None,
             singer_mouth_wins: bool = True) -> PoseFrame:
    """The pose of the singer ``line`` at a show sample.

    With ``mocap``, the captured performer is blended over the idle body (unseen limbs ease
    back to idle) and the mouth is the singer's while it sings (``singer_mouth_wins``), else
    the camera's.
    """
    mouth = mouth_from_control(line.control_frame(sample))
    expressions = {**mouth, "blink": idle_blink(sample)}
    if mocap is None:
        return PoseFrame(sample, idle_bones(sample), (0.0, 0.0, 0.0), expressions)
    idle = {"blink": expressions["blink"]}
    captured = mocap.pose(sample, idle_bones(sample), idle)
    merged = merge_mouth(mouth, captured.expressions, singer_mouth_wins)
    if any(k in captured.expressions for k in ("blinkLeft", "blinkRight")):
        merged["blink"] = 0.0  # the performer's own blinks replace the idle one
    return PoseFrame(sample, captured.normalized_bones, captured.root_position_m, merged)


@dataclass(slots=True)
class PoseStreamStats:
    """Counters of a pose stream."""

    frames: int = 0
    """Frames handed to the sinks."""
    dropped: int = 0
    """Frames holding a non-finite number, sent to no sink (never expected: every input is
    checked where it enters; a drop is an engine bug, logged)."""


async def run_pose_stream(line: Callable[[], SingerLine], playout: Callable[[], int],
                          sinks: list[Callable[[PoseFrame], None]],
                          rate_hz: float = POSE_RATE_HZ, mocap: MocapRig | None = None,
                          singer_mouth_wins: bool = True,
                          stats: PoseStreamStats | None = None) -> None:
    """Every 1/rate s: the pose at the sample being played goes to every sink; a frame that
    is not finite goes to none (dropped and counted in ``stats``)."""
    stats = stats if stats is not None else PoseStreamStats()
    period = 1.0 / rate_hz
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while True:
        frame = await asyncio.to_thread(pose_for, line(), playout(), mocap, singer_mouth_wins)
        if pose_is_finite(frame):
            stats.frames += 1
            _deliver(frame, sinks)
        else:
            stats.dropped += 1
            if stats.dropped == 1 or stats.dropped % 600 == 0:
                log.error("pose stream: dropped a frame with a non-finite number at sample %d "
                          "(%d so far)", frame.t, stats.dropped)
        next_at += period
        await asyncio.sleep(max(0.0, next_at - loop.time()))


def _deliver(frame: PoseFrame, sinks: list[Callable[[PoseFrame], None]]) -> None:
    for sink in sinks:
        try:
            sink(frame)
        except Exception:
            log.exception("pose sink %r failed", sink)
