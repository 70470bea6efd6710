"""The default avatar's face: head, eyes, lids and mouth, and its expressions as shapes.

Each VRM expression (aa, ih, ou, ee, oh, blink, blinkLeft, blinkRight, happy, surprised) is
a ``FaceShape``; its morph target is the difference between that face and the neutral one,
so every shape has the same vertices in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from rigs.mesh import MeshPart, disc_on_sphere, ellipse, ellipsoid, merge

HEAD_CENTRE_M = (0.0, 1.585, 0.0)
HEAD_RADIUS_M = 0.105
EYE_X_M, EYE_Y_M = 0.038, 0.008
EYE_W_M, EYE_H_M = 0.030, 0.034
MOUTH_Y_M = -0.05

SKIN, LID, EYE_WHITE, IRIS, MOUTH = 0xFFDCCB, 0xF2C4B0, 0xFFFFFF, 0x3A4FA0, 0x9A2A3A


@dataclass(frozen=True, slots=True)
class FaceShape:
    """Mouth width/height (m), smile (corner lift, m), lids closed (0 open .. 1 shut)."""

    mouth_w_m: float = 0.030
    mouth_h_m: float = 0.004
    smile_m: float = 0.0
    lid_left: float = 0.0
    lid_right: float = 0.0
    eye_scale: float = 1.0


NEUTRAL = FaceShape()
EXPRESSION_SHAPES: dict[str, FaceShape] = {
    "aa": replace(NEUTRAL, mouth_w_m=0.036, mouth_h_m=0.042),
    "ih": replace(NEUTRAL, mouth_w_m=0.046, mouth_h_m=0.013),
    "ou": replace(NEUTRAL, mouth_w_m=0.017, mouth_h_m=0.020),
    "ee": replace(NEUTRAL, mouth_w_m=0.050, mouth_h_m=0.022),
    "oh": replace(NEUTRAL, mouth_w_m=0.027, mouth_h_m=0.034),
    "blink": replace(NEUTRAL, lid_left=1.0, lid_right=1.0),
    "blinkLeft": replace(NEUTRAL, lid_left=1.0),
    "blinkRight": replace(NEUTRAL, lid_right=1.0),
    "happy": replace(NEUTRAL, mouth_w_m=0.044, mouth_h_m=0.008, smile_m=0.008, lid_left=0.45,
                     lid_right=0.45),
    "surprised": replace(NEUTRAL, mouth_w_m=0.022, mouth_h_m=0.028, eye_scale=1.2),
}
"""The face each expression makes at weight 1."""


def face_mesh(shape: FaceShape, joint: int) -> MeshPart:
    """The whole face for one shape, every vertex following ``joint`` (the head)."""
    c, r = HEAD_CENTRE_M, HEAD_RADIUS_M
    parts = [ellipsoid(c, (r, r * 1.04, r), SKIN, joint, rings=16, segments=28)]
    for side, closed in ((1.0, shape.lid_left), (-1.0, shape.lid_right)):
        eye = (side * EYE_X_M, EYE_Y_M)
        w, h = EYE_W_M * shape.eye_scale, EYE_H_M * shape.eye_scale
        parts.append(disc_on_sphere(ellipse(eye, w, h), c, r, 0.0015, EYE_WHITE, joint))
        parts.append(disc_on_sphere(ellipse((eye[0], eye[1] - 0.002), 0.62 * w, 0.78 * h),
                                    c, r, 0.0025, IRIS, joint))
        parts.append(disc_on_sphere(ellipse((eye[0] + side * 0.004, eye[1] + 0.006),
                                            0.006, 0.006, 12), c, r, 0.0032, EYE_WHITE, joint))
        parts.append(disc_on_sphere(_lid(eye, w + 0.008, h + 0.008, closed), c, r, 0.0045,
                                    LID, joint))
    parts.append(disc_on_sphere(_mouth(shape), c, r, 0.002, MOUTH, joint))
    return merge(parts)


def morph_targets(joint: int) -> dict[str, np.ndarray]:
    """Per expression, the N×3 vertex displacements from the neutral face."""
    rest = face_mesh(NEUTRAL, joint).positions
    return {name: face_mesh(shape, joint).positions - rest
            for name, shape in EXPRESSION_SHAPES.items()}


def _lid(eye: tuple[float, float], w: float, h: float, closed: float) -> np.ndarray:
    """An eyelid: gathered at the top of the eye when open, the whole eye when shut."""
    outline = ellipse(eye, w, h)
    top = eye[1] + h / 2
    outline[:, 1] = top + (outline[:, 1] - top) * closed
    return outline


def _mouth(shape: FaceShape) -> np.ndarray:
    """The mouth opening; a smile lifts the corners."""
    outline = ellipse((0.0, MOUTH_Y_M), shape.mouth_w_m, shape.mouth_h_m, 28)
    corner = (outline[:, 0] / (shape.mouth_w_m / 2)) ** 2
    outline[:, 1] += shape.smile_m * corner
    return outline
