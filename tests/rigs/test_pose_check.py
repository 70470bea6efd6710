"""What may enter a pose: finite unit rotations on humanoid bones, preset expressions in 0..1,
a root on the stage; checked on the retargeter's output, VMC in and the tracker's landmarks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mocap import landmarks as lm
from mocap.landmarks import LandmarkFrame
from rigs.mocap_rig import MocapRig
from rigs.pose import PoseFrame
from rigs.pose_check import (
    EXPRESSION_NAMES,
    ROOT_LIMIT_M,
    bounded_position,
    checked_bones,
    checked_expressions,
    expression_weight,
    pose_is_finite,
    unit_quaternion,
)
from rigs.retarget import camera_to_avatar
from rigs.skeleton import HUMANOID_BONES
from rigs.unity import UNITY_BONE, VRM0_PRESET
from streams.vmc import VmcReceiver, osc_message
from tests.rigs.test_retarget import body

NAN, INF = float("nan"), float("inf")


def finite_pose(frame: PoseFrame) -> bool:
    return pose_is_finite(frame) and all(
        abs(math.hypot(*q) - 1) < 1e-6 for q in frame.normalized_bones.values())


def test_the_name_lists_are_the_vrm_ones() -> None:
    assert len(HUMANOID_BONES) == 55 and set(UNITY_BONE) == HUMANOID_BONES
    assert set(VRM0_PRESET) == EXPRESSION_NAMES


@pytest.mark.parametrize(("values", "expected"), [
    ((0.0, 0.0, 0.0, 1.0), (0.0, 0.0, 0.0, 1.0)),
    ((0.0, 0.0, 0.0, 1.1), (0.0, 0.0, 0.0, 1.0)),  # made unit
    ((0, 0, 1, 0), (0.0, 0.0, 1.0, 0.0)),  # ints are numbers
    ((np.float32(0.6), 0.0, 0.0, np.float32(0.8)), (0.6, 0.0, 0.0, 0.8)),
    ((NAN, 0.0, 0.0, 1.0), None), ((0.0, INF, 0.0, 1.0), None),
    ((0.0, 0.0, 0.0, 0.0), None), ((1e30, 0.0, 0.0, 1e30), None), ((1e300,) * 4, None),
    ((0.0, 0.0, 1.0), None), ((True, 0.0, 0.0, 1.0), None), (("0", 0.0, 0.0, 1.0), None),
    ((10**400, 0, 0, 1), None),
])
def test_unit_quaternion(values: tuple[object, ...], expected: tuple[float, ...] | None
                         ) -> None:
    got = unit_quaternion(values)
    if expected is None:
        assert got is None
    else:
        assert got is not None and np.allclose(got, expected, atol=1e-7)
        assert all(type(c) is float for c in got)


def test_positions_and_weights_are_bounded() -> None:
    assert bounded_position((1e30, -1e30, 0.5)) == (ROOT_LIMIT_M, -ROOT_LIMIT_M, 0.5)
    assert bounded_position((NAN, 0.0, 0.0)) is None
    assert bounded_position((0.0, -INF, 0.0)) is None
    assert [expression_weight(v) for v in (5.0, -1.0, 0.25, NAN, INF, "1")] == [
        1.0, 0.0, 0.25, None, None, None]
    bones, refused = checked_bones({"head": (0, 0, 0, 2), "tail": (0, 0, 0, 1),
                                    "leftHand": (NAN, 0, 0, 1)})
    assert bones == {"head": (0.0, 0.0, 0.0, 1.0)} and refused == 2
    weights, refused = checked_expressions({"happy": 3.0, "evil": 0.5, "aa": NAN})
    assert weights == {"happy": 1.0} and refused == 2


def test_the_retargeters_non_finite_output_never_reaches_the_pose() -> None:
    """A landmark at infinity makes the retargeter's arm rotations non-finite: the rig leaves
    them out (the arm stays at rest) and counts them; the pose stays finite."""
    points = body()
    points[lm.LEFT_ELBOW] = INF
    frame = LandmarkFrame(0, pose_world=camera_to_avatar(points),
                          pose_visibility=np.ones(lm.POSE_COUNT))
    rig = MocapRig()
    with np.errstate(all="ignore"):
        rig.observe(frame)
    rig.pose(0)
    pose = rig.pose(4800)  # 0.1 s later: the seen bones are blending in
    assert finite_pose(pose) and pose.to_json()
    assert rig.blender.refused == 3  # leftUpperArm, leftLowerArm, leftHand
    assert "spine" in pose.normalized_bones and "leftLowerArm" not in pose.normalized_bones


def test_a_captured_pose_is_checked_before_the_blend() -> None:
    rig = MocapRig()
    rig.observe_pose(PoseFrame(0, {"head": (0.0, 0.0, 0.0, 1.5), "tail": (0.0, 0.0, 0.0, 1.0),
                                   "neck": (NAN, 0.0, 0.0, 1.0)},
                               expressions={"happy": 7.0, "evil": 1.0, "aa": INF}))
    rig.pose(0)
    pose = rig.pose(4800)  # 0.1 s later: blending in
    assert finite_pose(pose) and set(pose.normalized_bones) == {"head"}
    assert set(pose.expressions) == {"happy"} and 0.5 < pose.expressions["happy"] < 1.0
    assert rig.blender.refused == 4


def test_landmark_arrays_with_non_finite_numbers_are_left_out() -> None:
    face = np.zeros((lm.FACE_COUNT, 3))
    face[3, 1] = NAN
    hand = np.zeros((lm.HAND_COUNT, 3))
    frame = LandmarkFrame(0, np.zeros((lm.POSE_COUNT, 3)), np.full(lm.POSE_COUNT, INF),
                          np.zeros((lm.POSE_COUNT, 3)), face, hand, np.zeros((5, 3)))
    clean, refused = frame.without_non_finite()
    assert clean.pose_world is None and clean.pose_visibility is None
    assert clean.pose_image is None and clean.face is None and clean.right_hand is None
    assert clean.left_hand is hand and refused == 5
    assert LandmarkFrame(1, left_hand=hand).without_non_finite()[1] == 0


def test_vmc_root_is_kept_on_the_stage() -> None:
    frames: list[PoseFrame] = []
    receiver = VmcReceiver(frames.append, lambda: 0)
    receiver.feed(osc_message("/VMC/Ext/Root/Pos", "sfffffff", "root", 1e30, 1.0, -1e30,
                              0.0, 0.0, 0.0, 1.0))
    receiver.feed(osc_message("/VMC/Ext/Root/Pos", "sfffffff", "root", NAN, 0.0, 0.0,
                              0.0, 0.0, 0.0, 1.0))
    receiver.feed(osc_message("/VMC/Ext/Bone/Pos", "sfffffff", "Head", 0.0, 0.0, 0.0,
                              0.0, 0.0, 0.0, 1.0))
    assert frames[-1].root_position_m == (-ROOT_LIMIT_M, 1.0, -ROOT_LIMIT_M)  # Unity mirrors X
    assert receiver.state.clamped == 1 and receiver.state.ignored == 1
