"""Retargeting: mediapipe world landmarks -> rotations of VRM 1.0 normalized humanoid bones.

Every bone's world rotation is found with proper 3-D rotations: a *swing* taking the bone's
rest direction onto the measured direction, and a *twist* about it fixed by a second measured
axis (the elbow/knee bending plane, the palm, the hip or shoulder line). Local rotations are
``inverse(parent_world) * world``. Normalized bones rest in the T-pose with world-aligned
axes: the avatar faces +Z, its left arm points +X, Y is up (three.js, VRM 1.0).

A bone whose landmarks were not seen is left out of the result, so the caller can blend it
back to rest (see ``rigs.blend``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mocap import landmarks as lm
from mocap.landmarks import LandmarkFrame
from rigs.pose import Quaternion
from rigs.rotation import (
    IDENTITY,
    normalize,
    q_from_frames,
    q_from_to,
    q_inv,
    q_mul,
    q_rotate,
    q_slerp,
)

X = np.array([1.0, 0.0, 0.0])
Y = np.array([0.0, 1.0, 0.0])
Z = np.array([0.0, 0.0, 1.0])
_THUMB_L = normalize(np.array([1.0, 0.0, 1.0]))
_THUMB_R = normalize(np.array([-1.0, 0.0, 1.0]))

PARENT: dict[str, str | None] = {
    "hips": None, "spine": "hips", "chest": "spine", "upperChest": "chest",
    "neck": "upperChest", "head": "neck",
}
"""Parent of every bone the retargeter drives (VRM 1.0 humanoid)."""

REST_DIRECTION: dict[str, np.ndarray] = {"spine": Y, "chest": Y, "upperChest": Y, "neck": Y,
                                         "head": Y}
"""Unit direction from a bone's head to its child in the T-pose rest (avatar axes)."""

FINGERS = {"Thumb": (1, 2, 3, 4), "Index": (5, 6, 7, 8), "Middle": (9, 10, 11, 12),
           "Ring": (13, 14, 15, 16), "Little": (17, 18, 19, 20)}
"""mediapipe hand landmark indices along each finger, base to tip."""
_SEGMENTS = {"Thumb": ("Metacarpal", "Proximal", "Distal"),
             "Index": ("Proximal", "Intermediate", "Distal")}

for _side, _sign in (("left", 1.0), ("right", -1.0)):
    PARENT[f"{_side}Shoulder"] = "upperChest"
    PARENT[f"{_side}UpperArm"] = f"{_side}Shoulder"
    PARENT[f"{_side}LowerArm"] = f"{_side}UpperArm"
    PARENT[f"{_side}Hand"] = f"{_side}LowerArm"
    PARENT[f"{_side}UpperLeg"] = "hips"
    PARENT[f"{_side}LowerLeg"] = f"{_side}UpperLeg"
    PARENT[f"{_side}Foot"] = f"{_side}LowerLeg"
    for _bone in ("Shoulder", "UpperArm", "LowerArm", "Hand"):
        REST_DIRECTION[f"{_side}{_bone}"] = _sign * X
    for _bone in ("UpperLeg", "LowerLeg"):
        REST_DIRECTION[f"{_side}{_bone}"] = -Y
    REST_DIRECTION[f"{_side}Foot"] = Z
    for _finger in FINGERS:
        _parent = f"{_side}Hand"
        for _seg in _SEGMENTS.get(_finger, _SEGMENTS["Index"]):
            _name = f"{_side}{_finger}{_seg}"
            PARENT[_name] = _parent
            REST_DIRECTION[_name] = (_THUMB_L if _sign > 0 else _THUMB_R) \
                if _finger == "Thumb" else _sign * X
            _parent = _name


@dataclass(frozen=True, slots=True)
class RetargetOptions:
    """How landmarks become bones."""

    visibility_threshold: float = 0.5
    """A pose landmark counts as seen at or above this (filtered) visibility."""
    mirror: bool = False
    """Mirror the performer (the avatar's left follows the performer's right), like a mirror."""
    neck_share: float = 0.35
    """Share of the head's rotation (relative to the chest) given to the neck."""
    legs: bool = True
    """Drive the legs when hips, knees and ankles are seen."""


def camera_to_avatar(points: np.ndarray) -> np.ndarray:
    """mediapipe camera axes (x right, y down, z away) -> avatar axes facing the camera.

    A performer facing the camera and an avatar facing the viewer (+Z) share left and
    right: the performer's left (+x in the image) is the avatar's left (+X).
    """
    return points * np.array([1.0, -1.0, -1.0])


def retarget(frame: LandmarkFrame, options: RetargetOptions | None = None
             ) -> dict[str, Quaternion]:
    """Normalized local bone rotations for the bones seen in ``frame``."""
    opts = options or RetargetOptions()
    world: dict[str, Quaternion] = {}
    left_hand, right_hand = frame.left_hand, frame.right_hand
    if frame.pose_world is not None:
        p = camera_to_avatar(np.asarray(frame.pose_world, dtype=float))
        vis = (np.ones(lm.POSE_COUNT) if frame.pose_visibility is None
               else np.asarray(frame.pose_visibility))
        if opts.mirror:
            p = p[lm.LEFT_RIGHT_SWAP] * np.array([-1.0, 1.0, 1.0])
            vis = vis[lm.LEFT_RIGHT_SWAP]
            left_hand, right_hand = right_hand, left_hand
        seen = vis >= opts.visibility_threshold
        world.update(body_world_rotations(p, seen, opts))
    for side, hand in (("left", left_hand), ("right", right_hand)):
        if hand is None or f"{side}LowerArm" not in world:
            continue
        h = camera_to_avatar(np.asarray(hand, dtype=float))
        if opts.mirror:
            h = h * np.array([-1.0, 1.0, 1.0])
        world.update(hand_world_rotations(h, side, world[f"{side}LowerArm"]))
    return local_rotations(world)


def body_world_rotations(p: np.ndarray, seen: np.ndarray, opts: RetargetOptions
                         ) -> dict[str, Quaternion]:
    """World rotations of torso, head, arms (with pose-landmark hands) and legs.

    ``p``: (33, 3) pose world landmarks in avatar axes; ``seen``: (33,) booleans.
    """
    world: dict[str, Quaternion] = {}

    def ok(*idx: int) -> bool:
        return bool(all(seen[i] for i in idx))

    hips = chest = IDENTITY
    shoulders_seen = ok(lm.LEFT_SHOULDER, lm.RIGHT_SHOULDER)
    hips_seen = ok(lm.LEFT_HIP, lm.RIGHT_HIP)
    hip_mid = (p[lm.LEFT_HIP] + p[lm.RIGHT_HIP]) / 2
    shoulder_mid = (p[lm.LEFT_SHOULDER] + p[lm.RIGHT_SHOULDER]) / 2
    up = shoulder_mid - hip_mid if hips_seen and shoulders_seen else Y
    if hips_seen:
        hips = q_from_frames(X, Y, p[lm.LEFT_HIP] - p[lm.RIGHT_HIP], up)
        world["hips"] = hips
    if shoulders_seen:
        chest = q_from_frames(X, Y, p[lm.LEFT_SHOULDER] - p[lm.RIGHT_SHOULDER], up)
        relative = q_mul(q_inv(hips), chest)
        spine = q_slerp(IDENTITY, relative, 0.5)
        world["spine"] = q_mul(hips, spine)
        world["chest"] = world["upperChest"] = chest
        world["leftShoulder"] = world["rightShoulder"] = chest
    if ok(lm.LEFT_EAR, lm.RIGHT_EAR, lm.LEFT_EYE, lm.RIGHT_EYE, lm.MOUTH_LEFT, lm.MOUTH_RIGHT):
        eyes = (p[lm.LEFT_EYE] + p[lm.RIGHT_EYE]) / 2
        mouth = (p[lm.MOUTH_LEFT] + p[lm.MOUTH_RIGHT]) / 2
        head = q_from_frames(X, Y, p[lm.LEFT_EAR] - p[lm.RIGHT_EAR], eyes - mouth)
        world.update(split_neck_head(chest, head, opts.neck_share))
    for side, s in (("left", 0), ("right", 1)):
        sign = 1.0 if side == "left" else -1.0
        sh, el, wr = lm.LEFT_SHOULDER + s, lm.LEFT_ELBOW + s, lm.LEFT_WRIST + s
        if shoulders_seen and ok(el, wr):
            upper, lower = limb_world_rotations(
                sign * X, -Y * sign, p[el] - p[sh], p[wr] - p[el], chest)
            world[f"{side}UpperArm"], world[f"{side}LowerArm"] = upper, lower
            index, pinky = p[lm.LEFT_INDEX + s], p[lm.LEFT_PINKY + s]
            if ok(lm.LEFT_INDEX + s, lm.LEFT_PINKY + s):
                world[f"{side}Hand"] = q_from_frames(
                    sign * X, Z, (index + pinky) / 2 - p[wr], index - pinky)
        hip, knee, ankle = lm.LEFT_HIP + s, lm.LEFT_KNEE + s, lm.LEFT_ANKLE + s
        if opts.legs and hips_seen and ok(knee, ankle):
            upper, lower = limb_world_rotations(-Y, X, p[knee] - p[hip], p[ankle] - p[knee],
                                                hips)
            world[f"{side}UpperLeg"], world[f"{side}LowerLeg"] = upper, lower
            heel, toe = lm.LEFT_HEEL + s, lm.LEFT_FOOT + s
            if ok(heel, toe):
                world[f"{side}Foot"] = chain_world(lower, Z, p[toe] - p[heel])
    return world


def split_neck_head(chest_world: Quaternion, head_world: Quaternion, neck_share: float
                    ) -> dict[str, Quaternion]:
    """World rotations of neck and head sharing the head's turn relative to the chest."""
    relative = q_mul(q_inv(chest_world), head_world)
    neck = q_mul(chest_world, q_slerp(IDENTITY, relative, neck_share))
    return {"neck": neck, "head": head_world}


def limb_world_rotations(rest_dir: np.ndarray, rest_bend_axis: np.ndarray, upper: np.ndarray,
                         lower: np.ndarray, parent_world: Quaternion
                         ) -> tuple[Quaternion, Quaternion]:
    """World rotations of a two-bone limb (upper arm + forearm, thigh + shin).

    The upper bone swings onto ``upper``; its twist puts ``rest_bend_axis`` (the hinge axis of
    the middle joint at rest) onto the measured hinge axis ``upper x lower``. A nearly
    straight limb has no measurable hinge: its twist then follows the parent's, blending
    smoothly between the two from 8 to 25 degrees of bend.
    """
    hinge = np.cross(upper, lower)
    bend = float(np.linalg.norm(hinge) / (np.linalg.norm(upper) * np.linalg.norm(lower) + 1e-9))
    # minimal twist: the rest direction as carried by the parent, swung onto the measurement
    swing = chain_world(parent_world, rest_dir, upper)
    weight = float(np.clip((bend - 0.14) / (0.42 - 0.14), 0.0, 1.0))
    if weight > 0.0:
        twisted = q_from_frames(rest_dir, rest_bend_axis, upper, hinge)
        upper_world = q_slerp(swing, twisted, weight)
    else:
        upper_world = swing
    return upper_world, chain_world(upper_world, rest_dir, lower)


def chain_world(parent_world: Quaternion, rest_dir: np.ndarray, measured: np.ndarray
                ) -> Quaternion:
    """World rotation of a child bone: the parent's, then the swing onto ``measured``.

    ``rest_dir`` is the child's rest direction; the parent's world rotation carries it to
    ``parent_world * rest_dir``, and the shortest arc from there meets the measurement.
    """
    carried = q_rotate(parent_world, rest_dir)
    return q_mul(q_from_to(carried, measured), parent_world)


def hand_world_rotations(h: np.ndarray, side: str, lower_arm_world: Quaternion
                         ) -> dict[str, Quaternion]:
    """World rotations of a hand and its fingers from 21 hand landmarks (avatar axes)."""
    sign = 1.0 if side == "left" else -1.0
    wrist, index, middle, pinky = h[0], h[5], h[9], h[17]
    hand = q_from_frames(sign * X, Z, middle - wrist, index - pinky)
    world = {f"{side}Hand": hand}
    for finger, idx in FINGERS.items():
        parent = hand
        for seg, a, b in zip(_SEGMENTS.get(finger, _SEGMENTS["Index"]), idx[:-1], idx[1:],
                             strict=True):
            name = f"{side}{finger}{seg}"
            parent = chain_world(parent, REST_DIRECTION[name], h[b] - h[a])
            world[name] = parent
    return world


def local_rotations(world: dict[str, Quaternion]) -> dict[str, Quaternion]:
    """``inverse(parent_world) * world`` for each bone; unseen parents count as rest."""
    local: dict[str, Quaternion] = {}
    for name, q in world.items():
        parent = PARENT.get(name)
        parent_world = IDENTITY
        while parent is not None:
            if parent in world:
                parent_world = world[parent]
                break
            parent = PARENT.get(parent)
        local[name] = q_mul(q_inv(parent_world), q)
    return local


def world_rotations(local: dict[str, Quaternion]) -> dict[str, Quaternion]:
    """Forward kinematics of rotations: each bone's world rotation from local ones."""
    out: dict[str, Quaternion] = {}

    def resolve(name: str) -> Quaternion:
        if name not in out:
            parent = PARENT.get(name)
            base = resolve(parent) if parent is not None else IDENTITY
            out[name] = q_mul(base, local.get(name, IDENTITY))
        return out[name]

    for name in PARENT:
        resolve(name)
    return out


def bone_direction(local: dict[str, Quaternion], bone: str) -> np.ndarray:
    """World direction of ``bone`` in a pose of local rotations (for checks and tests)."""
    return q_rotate(world_rotations(local)[bone], REST_DIRECTION[bone])
