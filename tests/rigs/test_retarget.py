"""Retargeting maths on constructed landmark sets: bone directions within 5 degrees."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mocap import landmarks as lm
from mocap.landmarks import LandmarkFrame
from rigs.retarget import (
    REST_DIRECTION,
    RetargetOptions,
    bone_direction,
    camera_to_avatar,
    retarget,
    world_rotations,
)
from rigs.rotation import q_angle, q_from_to, q_mul, q_rotate, q_slerp

TOLERANCE_DEG = 5.0


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    return math.degrees(math.acos(float(np.clip(np.dot(a, b), -1.0, 1.0))))


def body(left_upper: tuple[float, float, float] = (1, 0, 0),
         left_lower: tuple[float, float, float] | None = None,
         right_upper: tuple[float, float, float] = (-1, 0, 0),
         right_lower: tuple[float, float, float] | None = None,
         twist_deg: float = 0.0) -> np.ndarray:
    """33 pose landmarks in *avatar* axes: a body facing +Z with the given arm directions."""
    p = np.zeros((lm.POSE_COUNT, 3))
    for side, sign in ((0, 1.0), (1, -1.0)):
        p[lm.LEFT_HIP + side] = (0.1 * sign, 0.0, 0.0)
        p[lm.LEFT_KNEE + side] = (0.1 * sign, -0.45, 0.0)
        p[lm.LEFT_ANKLE + side] = (0.1 * sign, -0.9, 0.0)
        p[lm.LEFT_HEEL + side] = (0.1 * sign, -0.95, -0.05)
        p[lm.LEFT_FOOT + side] = (0.1 * sign, -0.97, 0.15)
        p[lm.LEFT_SHOULDER + side] = (0.18 * sign, 0.5, 0.0)
        p[lm.LEFT_EAR + side] = (0.07 * sign, 0.68, -0.02)
        p[(lm.LEFT_EYE, lm.RIGHT_EYE)[side]] = (0.03 * sign, 0.7, 0.08)
        p[lm.MOUTH_LEFT + side] = (0.025 * sign, 0.63, 0.08)
    p[lm.NOSE] = (0.0, 0.67, 0.1)
    for side, upper, lower in ((0, left_upper, left_lower), (1, right_upper, right_lower)):
        u = np.asarray(upper, float) / np.linalg.norm(upper)
        low = u if lower is None else np.asarray(lower, float) / np.linalg.norm(lower)
        elbow = p[lm.LEFT_SHOULDER + side] + 0.28 * u
        wrist = elbow + 0.25 * low
        p[lm.LEFT_ELBOW + side] = elbow
        p[lm.LEFT_WRIST + side] = wrist
        # hand points: palm down (index in front of pinky), continuing the forearm
        side_axis = np.cross(low, (0.0, 1.0, 0.0)) * (1 if side == 0 else -1)
        if np.linalg.norm(side_axis) < 1e-6:
            side_axis = np.array([0.0, 0.0, 1.0])
        side_axis = side_axis / np.linalg.norm(side_axis)
        p[lm.LEFT_INDEX + side] = wrist + 0.08 * low + 0.02 * side_axis
        p[lm.LEFT_PINKY + side] = wrist + 0.08 * low - 0.02 * side_axis
    if twist_deg:
        c, s = math.cos(math.radians(twist_deg)), math.sin(math.radians(twist_deg))
        rot_y = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        p = p @ rot_y.T
    return p


def frame_of(avatar_points: np.ndarray) -> LandmarkFrame:
    return LandmarkFrame(0, pose_world=camera_to_avatar(avatar_points),
                         pose_visibility=np.ones(lm.POSE_COUNT))


def check(points: np.ndarray, bone: str, expected: np.ndarray) -> float:
    local = retarget(frame_of(points))
    err = angle_deg(bone_direction(local, bone), expected)
    assert err < TOLERANCE_DEG, f"{bone}: {err:.2f} deg off"
    return err


def test_t_pose_is_rest() -> None:
    local = retarget(frame_of(body()))
    for bone in ("hips", "spine", "chest", "leftUpperArm", "leftLowerArm", "rightUpperArm",
                 "rightLowerArm", "leftUpperLeg", "rightLowerLeg", "head", "neck"):
        assert q_angle(local[bone], (0, 0, 0, 1)) < math.radians(TOLERANCE_DEG), bone


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_pose(side: str) -> None:
    down = math.radians(45)
    sign = 1 if side == "left" else -1
    arm = (sign * math.cos(down), -math.sin(down), 0.0)
    points = body(left_upper=arm) if side == "left" else body(right_upper=arm)
    check(points, f"{side}UpperArm", np.array(arm))
    check(points, f"{side}LowerArm", np.array(arm))


def test_arm_raised_forward() -> None:
    points = body(left_upper=(0, 0, 1), right_upper=(0, 0, 1))
    check(points, "leftUpperArm", np.array([0, 0, 1.0]))
    check(points, "rightUpperArm", np.array([0, 0, 1.0]))
    check(points, "rightLowerArm", np.array([0, 0, 1.0]))


@pytest.mark.parametrize("upper,lower", [((1, 0, 0), (0, 0, 1)), ((1, -1, 0), (0, 0, 1)),
                                         ((1, 0, 0), (0, 1, 0)), ((0, -1, 0), (0, 0, 1))])
def test_elbow_bent_90(upper: tuple[float, float, float], lower: tuple[float, float, float]
                       ) -> None:
    points = body(left_upper=upper, left_lower=lower)
    check(points, "leftUpperArm", np.array(upper, float))
    check(points, "leftLowerArm", np.array(lower, float))
    local = retarget(frame_of(points))
    # the elbow is a hinge: its local rotation is 90 degrees about one axis
    assert abs(math.degrees(q_angle(local["leftLowerArm"], (0, 0, 0, 1))) - 90) < TOLERANCE_DEG


def test_torso_twist_carries_arms() -> None:
    points = body(twist_deg=30.0)
    local = retarget(frame_of(points))
    assert abs(math.degrees(q_angle(local["hips"], (0, 0, 0, 1))) - 30) < TOLERANCE_DEG
    check(points, "leftUpperArm", points[lm.LEFT_ELBOW] - points[lm.LEFT_SHOULDER])
    # arms in line with the twisted shoulders need no rotation of their own
    assert q_angle(local["leftUpperArm"], (0, 0, 0, 1)) < math.radians(TOLERANCE_DEG)


def test_unseen_limbs_are_left_out() -> None:
    vis = np.ones(lm.POSE_COUNT)
    vis[[lm.LEFT_ELBOW, lm.LEFT_WRIST, lm.LEFT_KNEE]] = 0.1
    frame = LandmarkFrame(0, pose_world=camera_to_avatar(body()), pose_visibility=vis)
    local = retarget(frame)
    assert "leftUpperArm" not in local and "leftUpperLeg" not in local
    assert "rightUpperArm" in local and "rightUpperLeg" in local


def test_mirror_swaps_sides() -> None:
    points = body(left_upper=(0, 0, 1))
    local = retarget(frame_of(points), RetargetOptions(mirror=True))
    assert angle_deg(bone_direction(local, "rightUpperArm"), np.array([0, 0, 1.0])) < 5
    assert angle_deg(bone_direction(local, "leftUpperArm"), np.array([1.0, 0, 0])) < 5


def test_hand_landmarks_drive_fingers() -> None:
    points = body()
    hand = np.zeros((21, 3))
    hand[0] = (0, 0, 0)
    for base, finger_z in ((5, 0.02), (9, 0.0), (13, -0.015), (17, -0.03)):
        for k in range(4):  # straight along +X, the last finger (little) curled down
            curl = base == 17 and k > 0
            hand[base + k] = (0.08 + (0.03 * k if not curl else 0.0),
                              -0.03 * k if curl else 0.0, finger_z)
    for k in range(1, 5):
        hand[k] = (0.02 * k, 0.0, 0.02 + 0.02 * k)
    frame = LandmarkFrame(0, pose_world=camera_to_avatar(points),
                          pose_visibility=np.ones(lm.POSE_COUNT),
                          left_hand=camera_to_avatar(hand))
    local = retarget(frame)
    assert angle_deg(bone_direction(local, "leftIndexProximal"), np.array([1.0, 0, 0])) < 5
    assert angle_deg(bone_direction(local, "leftLittleIntermediate"),
                     np.array([0, -1.0, 0])) < 5
    assert angle_deg(bone_direction(local, "leftThumbProximal"),
                     REST_DIRECTION["leftThumbProximal"]) < 5


def test_rotation_helpers() -> None:
    q = q_from_to(np.array([1.0, 0, 0]), np.array([0, 0, 1.0]))
    assert np.allclose(q_rotate(q, np.array([1.0, 0, 0])), [0, 0, 1], atol=1e-9)
    half = q_slerp((0, 0, 0, 1), q, 0.5)
    assert abs(math.degrees(q_angle(half, (0, 0, 0, 1))) - 45) < 1e-6
    assert q_angle(q_mul(half, half), q) < 1e-6
    assert set(world_rotations({})) >= {"hips", "leftHand", "rightFoot"}
