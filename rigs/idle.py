"""A natural idle for the body while no performer drives it: breathing, sway, blinks.

Pure functions of the show sample, so every viewer and the recorder see the same idle.
"""

from __future__ import annotations

import math

from rigs.pose import Quaternion
from singer.contracts import SAMPLE_RATE_HZ

ARMS_DOWN_DEG = 72.0
"""From the T-pose rest, upper arms rotate this far down (a relaxed A-pose)."""
BLINK_PERIOD_S = 3.7
BLINK_S = 0.15


def axis_angle(axis: tuple[float, float, float], degrees: float) -> Quaternion:
    """Quaternion (x, y, z, w) rotating ``degrees`` about a unit ``axis``."""
    half = math.radians(degrees) / 2
    s = math.sin(half)
    return (axis[0] * s, axis[1] * s, axis[2] * s, math.cos(half))


def idle_bones(sample: int) -> dict[str, Quaternion]:
    """Normalized bone rotations of the idle body at a show sample (VRM 1.0, faces +Z)."""
    t = sample / SAMPLE_RATE_HZ
    breath = math.sin(2 * math.pi * t / 4.2)
    sway = math.sin(2 * math.pi * t / 7.3)
    return {
        # left arm rests along -Y: rotate +X down about +Z; right arm mirrors
        "leftUpperArm": axis_angle((0.0, 0.0, 1.0), -ARMS_DOWN_DEG + 1.5 * breath),
        "rightUpperArm": axis_angle((0.0, 0.0, 1.0), ARMS_DOWN_DEG - 1.5 * breath),
        "leftLowerArm": axis_angle((0.0, 1.0, 0.0), 8.0),
        "rightLowerArm": axis_angle((0.0, 1.0, 0.0), -8.0),
        "chest": axis_angle((1.0, 0.0, 0.0), -1.2 * breath),
        "spine": axis_angle((0.0, 0.0, 1.0), 1.0 * sway),
        "neck": axis_angle((0.0, 1.0, 0.0), 2.0 * sway),
        "head": axis_angle((1.0, 0.0, 0.0), 1.5 + 1.0 * breath),
    }


def idle_blink(sample: int) -> float:
    """Blink weight 0..1: a quick close and open every few seconds."""
    t = (sample / SAMPLE_RATE_HZ) % BLINK_PERIOD_S
    if t > BLINK_S:
        return 0.0
    return math.sin(math.pi * t / BLINK_S)
