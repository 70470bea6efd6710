"""Presence blending (no jumps on loss/recovery) and the singer-vs-camera mouth."""

from __future__ import annotations

import math

from rigs.blend import PoseBlender, merge_mouth
from rigs.idle import axis_angle
from rigs.rotation import q_angle

STEP = 800  # show samples per 60 Hz pose


def test_lost_bone_eases_to_rest_and_back() -> None:
    blender = PoseBlender()
    raised = axis_angle((0.0, 0.0, 1.0), 80.0)
    rest = {"leftUpperArm": axis_angle((0.0, 0.0, 1.0), -70.0)}
    angles = []
    for i in range(240):
        t = i * STEP
        if i < 60 or i >= 150:  # seen, lost for 1.5 s, seen again
            blender.observe(t, {"leftUpperArm": raised}, {"aa": 0.8})
        pose = blender.pose(t, rest)
        angles.append(q_angle(pose.normalized_bones["leftUpperArm"], rest["leftUpperArm"]))
    steps = [abs(b - a) for a, b in zip(angles, angles[1:], strict=False)]
    # exponential easing: at 60 Hz no pose moves more than 14 % of the 150 degree way
    assert math.degrees(max(steps)) < 0.14 * 150
    assert math.degrees(angles[59]) > 145  # followed the capture
    assert math.degrees(angles[149]) < 5  # back at rest
    assert math.degrees(angles[-1]) > 145  # and found again


def test_mouth_merge() -> None:
    singing = {"aa": 0.7, "ih": 0.0, "ou": 0.0, "ee": 0.0, "oh": 0.2}
    silent = dict.fromkeys(singing, 0.0)
    camera = {"aa": 0.3, "ee": 0.1, "blinkLeft": 1.0}
    assert merge_mouth(singing, camera)["aa"] == 0.7
    assert merge_mouth(singing, camera)["blinkLeft"] == 1.0
    assert merge_mouth(silent, camera)["aa"] == 0.3
    assert merge_mouth(singing, camera, singer_wins=False)["aa"] == 0.3
    assert merge_mouth(singing, {"blinkLeft": 1.0})["oh"] == 0.2
