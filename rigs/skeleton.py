"""The VRM 1.0 humanoid skeleton: bone names, hierarchy, and the default avatar's rest pose.

Coordinates are VRM 1.0 / three.js: metres, +Y up, the avatar faces +Z, so her left hand is
on +X. The rest pose is a T-pose with every local rotation the identity (as VRM 1.0 asks),
which makes a bone's rest direction simply the vector to its child.
"""

from __future__ import annotations

from dataclasses import dataclass

Vec3 = tuple[float, float, float]

REQUIRED_BONES: tuple[str, ...] = (
    "hips", "spine", "head",
    "leftUpperArm", "leftLowerArm", "leftHand",
    "rightUpperArm", "rightLowerArm", "rightHand",
    "leftUpperLeg", "leftLowerLeg", "leftFoot",
    "rightUpperLeg", "rightLowerLeg", "rightFoot",
)
"""Bones every VRM 1.0 humanoid must have (VRMC_vrm humanoid specification)."""


def _humanoid_bones() -> frozenset[str]:
    names = {"hips", "spine", "chest", "upperChest", "neck", "head", "jaw"}
    for side in ("left", "right"):
        names |= {side + bone for bone in (
            "Eye", "Shoulder", "UpperArm", "LowerArm", "Hand",
            "UpperLeg", "LowerLeg", "Foot", "Toes",
            "ThumbMetacarpal", "ThumbProximal", "ThumbDistal")}
        names |= {side + finger + seg for finger in ("Index", "Middle", "Ring", "Little")
                  for seg in ("Proximal", "Intermediate", "Distal")}
    return frozenset(names)


HUMANOID_BONES: frozenset[str] = _humanoid_bones()
"""Every VRM 1.0 humanoid bone name (55): the only bone names a pose may carry."""


@dataclass(frozen=True, slots=True)
class Bone:
    """One humanoid bone of the rest pose: its parent and its position in the model."""

    name: str
    parent: str | None
    rest_position_m: Vec3


def _mirror(bones: list[tuple[str, str | None, Vec3]]) -> list[tuple[str, str | None, Vec3]]:
    """The right side from the left side: swap the prefix and negate x."""
    def swap(name: str | None) -> str | None:
        return None if name is None else name.replace("left", "right", 1)
    return [(swap(n) or n, swap(p), (-x, y, z)) for n, p, (x, y, z) in bones]


_CENTRE: list[tuple[str, str | None, Vec3]] = [
    ("hips", None, (0.0, 0.95, 0.0)),
    ("spine", "hips", (0.0, 1.05, 0.0)),
    ("chest", "spine", (0.0, 1.18, 0.0)),
    ("upperChest", "chest", (0.0, 1.30, 0.0)),
    ("neck", "upperChest", (0.0, 1.41, 0.0)),
    ("head", "neck", (0.0, 1.49, 0.0)),
]
_LEFT: list[tuple[str, str | None, Vec3]] = [
    ("leftShoulder", "upperChest", (0.03, 1.37, 0.0)),
    ("leftUpperArm", "leftShoulder", (0.16, 1.37, 0.0)),
    ("leftLowerArm", "leftUpperArm", (0.42, 1.37, 0.0)),
    ("leftHand", "leftLowerArm", (0.65, 1.37, 0.0)),
    ("leftUpperLeg", "hips", (0.09, 0.90, 0.0)),
    ("leftLowerLeg", "leftUpperLeg", (0.09, 0.50, 0.0)),
    ("leftFoot", "leftLowerLeg", (0.09, 0.09, 0.0)),
    ("leftToes", "leftFoot", (0.09, 0.03, 0.11)),
]

SKELETON: tuple[Bone, ...] = tuple(
    Bone(n, p, pos) for n, p, pos in [*_CENTRE, *_LEFT, *_mirror(_LEFT)])
"""The default avatar's bones, parents before children."""

BONES_BY_NAME: dict[str, Bone] = {b.name: b for b in SKELETON}


def local_offset(bone: Bone) -> Vec3:
    """The bone's rest translation relative to its parent (its glTF node translation)."""
    if bone.parent is None:
        return bone.rest_position_m
    parent = BONES_BY_NAME[bone.parent].rest_position_m
    return (bone.rest_position_m[0] - parent[0], bone.rest_position_m[1] - parent[1],
            bone.rest_position_m[2] - parent[2])


def children(name: str) -> list[Bone]:
    """The bones whose parent is ``name``."""
    return [b for b in SKELETON if b.parent == name]
