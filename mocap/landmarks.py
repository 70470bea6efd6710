"""``LandmarkFrame``: what the tracker saw in one camera frame (the mocap contract).

Axes are mediapipe's camera axes: x to the right of the image, y down, z away from the camera.
The performer's left is their own left (mediapipe's ``LEFT_*`` landmarks); with an unmirrored
camera it appears on the right of the image.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

POSE_COUNT = 33
HAND_COUNT = 21
FACE_COUNT = 478

# mediapipe Pose landmark indices (the ones the rig uses)
NOSE = 0
LEFT_EYE, RIGHT_EYE = 2, 5
LEFT_EAR, RIGHT_EAR = 7, 8
MOUTH_LEFT, MOUTH_RIGHT = 9, 10
LEFT_SHOULDER, RIGHT_SHOULDER = 11, 12
LEFT_ELBOW, RIGHT_ELBOW = 13, 14
LEFT_WRIST, RIGHT_WRIST = 15, 16
LEFT_PINKY, RIGHT_PINKY = 17, 18
LEFT_INDEX, RIGHT_INDEX = 19, 20
LEFT_HIP, RIGHT_HIP = 23, 24
LEFT_KNEE, RIGHT_KNEE = 25, 26
LEFT_ANKLE, RIGHT_ANKLE = 27, 28
LEFT_HEEL, RIGHT_HEEL = 29, 30
LEFT_FOOT, RIGHT_FOOT = 31, 32

LEFT_RIGHT_SWAP = np.array([0, 4, 5, 6, 1, 2, 3, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17,
                            20, 19, 22, 21, 24, 23, 26, 25, 28, 27, 30, 29, 32, 31])
"""Index permutation exchanging left and right pose landmarks (for mirroring)."""


@dataclass(frozen=True, slots=True, eq=False)
class LandmarkFrame:
    """Landmarks of one performer in one camera frame, captured at show sample ``t``.

    ``pose_world``: (33, 3) metres, origin between the hips. ``pose_visibility``: (33,) 0..1.
    ``pose_image``: (33, 3) x, y in 0..1 of the image, z relative depth.
    ``face``: (478, 3) refined FaceMesh landmarks in pixels (x, y; z in the same scale).
    ``left_hand``/``right_hand``: (21, 3) metres, the performer's own left/right hand.
    ``None`` means not seen in this frame.
    """

    t: int
    pose_world: np.ndarray | None = None
    pose_visibility: np.ndarray | None = None
    pose_image: np.ndarray | None = None
    face: np.ndarray | None = None
    left_hand: np.ndarray | None = None
    right_hand: np.ndarray | None = None
    image_size: tuple[int, int] = (0, 0)

    @property
    def empty(self) -> bool:
        """True when nobody was seen."""
        return (self.pose_world is None and self.face is None and self.left_hand is None
                and self.right_hand is None)

    def without_non_finite(self) -> tuple[LandmarkFrame, int]:
        """This frame with every landmark array that holds a non-finite number, or has the
        wrong shape, taken out (as if not seen), and how many were taken out."""
        changes: dict[str, Any] = {}
        for name, shape in _SHAPES.items():
            value = getattr(self, name)
            if value is not None and not _usable(value, shape):
                changes[name] = None
        if "pose_world" in changes or "pose_visibility" in changes:
            changes.update(pose_world=None, pose_visibility=None, pose_image=None)
        return (replace(self, **changes) if changes else self), len(changes)


_SHAPES: dict[str, tuple[int, ...]] = {
    "pose_world": (POSE_COUNT, 3), "pose_visibility": (POSE_COUNT,),
    "pose_image": (POSE_COUNT, 3), "face": (FACE_COUNT, 3),
    "left_hand": (HAND_COUNT, 3), "right_hand": (HAND_COUNT, 3)}
"""The shape of each landmark array."""


def _usable(value: np.ndarray, shape: tuple[int, ...]) -> bool:
    array = np.asarray(value)
    return (array.shape == shape and array.dtype.kind in "fiu"
            and bool(np.isfinite(array).all()))
