"""``MocapRig``: smoothed landmark frames -> ``PoseFrame``s (retarget, face, blend)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mocap.landmarks import LandmarkFrame
from rigs.blend import BlendOptions, PoseBlender
from rigs.facial import FaceOptions, face_expressions, head_rotation
from rigs.pose import PoseFrame, Quaternion
from rigs.retarget import (
    RetargetOptions,
    local_rotations,
    retarget,
    split_neck_head,
    world_rotations,
)
from rigs.rotation import IDENTITY


@dataclass(frozen=True, slots=True)
class RigOptions:
    """Retargeting, face calibration and blending of captured poses."""

    retarget: RetargetOptions = field(default_factory=RetargetOptions)
    face: FaceOptions = field(default_factory=FaceOptions)
    blend: BlendOptions = field(default_factory=BlendOptions)
    face_drives_head: bool = True
    """The face mesh (more precise than the pose's few face points) turns the head."""


class MocapRig:
    """Turns each landmark frame into a pose; unseen bones ease back to ``rest``."""

    def __init__(self, options: RigOptions | None = None) -> None:
        self.options = options or RigOptions()
        self.blender = PoseBlender(self.options.blend)

    def observe(self, frame: LandmarkFrame) -> None:
        """Take one (smoothed) landmark frame."""
        bones = retarget(frame, self.options.retarget)
        expressions: dict[str, float] = {}
        if frame.face is not None:
            expressions = face_expressions(frame.face, self.options.face)
            if self.options.face_drives_head:
                bones = _with_face_head(bones, head_rotation(frame.face),
                                        self.options.retarget.neck_share)
        self.blender.observe(frame.t, bones, expressions)

    def observe_pose(self, frame: PoseFrame) -> None:
        """Take a pose captured elsewhere (VMC in): its bones and expressions as seen at
        ``frame.t``. The root position is not used (the avatar stays in place)."""
        self.blender.observe(frame.t, dict(frame.normalized_bones), dict(frame.expressions))

    def pose(self, t: int, rest: dict[str, Quaternion] | None = None,
             rest_expressions: dict[str, float] | None = None) -> PoseFrame:
        """The pose at show sample ``t`` (capture blended over ``rest``)."""
        return self.blender.pose(t, rest, rest_expressions)

    def update(self, frame: LandmarkFrame) -> PoseFrame:
        """``observe`` then ``pose`` at the frame's capture time (over the T-pose)."""
        self.observe(frame)
        return self.pose(frame.t)


def _with_face_head(bones: dict[str, Quaternion], head_world: Quaternion, neck_share: float
                    ) -> dict[str, Quaternion]:
    """Replace neck and head with the face's rotation, relative to the captured chest."""
    world = world_rotations(bones)
    chest = world["upperChest"] if "chest" in bones else IDENTITY
    parts = split_neck_head(chest, head_world, neck_share)
    chain: dict[str, Quaternion] = {
        k: world[k] for k in ("hips", "spine", "chest", "upperChest") if k in bones}
    locals_ = local_rotations({**chain, "upperChest": chest, **parts})
    out = dict(bones)
    out["neck"], out["head"] = locals_["neck"], locals_["head"]
    return out
