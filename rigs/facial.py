"""Facial capture: head rotation and VRM expressions (blink, mouth, brows, gaze).

Input: the 478 refined FaceMesh landmarks in pixels (mediapipe camera axes: x right, y down,
z away, z in the same scale as x). Ratios of distances make the expressions independent of
the face's size and of the head's roll. The thresholds are in ``FaceOptions``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rigs.pose import Quaternion
from rigs.retarget import X, Y, camera_to_avatar
from rigs.rotation import q_from_frames

# FaceMesh indices; "left" is the performer's own left
FOREHEAD, CHIN = 10, 152
LEFT_EYE_OUTER, LEFT_EYE_INNER, LEFT_LID_UP, LEFT_LID_DOWN = 263, 362, 386, 374
RIGHT_EYE_OUTER, RIGHT_EYE_INNER, RIGHT_LID_UP, RIGHT_LID_DOWN = 33, 133, 159, 145
LIP_UP, LIP_DOWN, MOUTH_LEFT, MOUTH_RIGHT = 13, 14, 291, 61
LEFT_BROW, RIGHT_BROW = 334, 105
LEFT_CHEEK, RIGHT_CHEEK = 454, 234
LEFT_IRIS, RIGHT_IRIS = 473, 468


@dataclass(frozen=True, slots=True)
class FaceOptions:
    """Calibration of the face expressions (ratios of landmark distances)."""

    eye_open_ratio: float = 0.28
    """Eyelid gap / eye width of an open eye (blink 0)."""
    eye_closed_ratio: float = 0.12
    """Eyelid gap / eye width of a closed eye (blink 1)."""
    mouth_closed_ratio: float = 0.03
    """Inner-lip gap / mouth width of a closed mouth (aa 0)."""
    mouth_open_ratio: float = 0.55
    """Inner-lip gap / mouth width of a wide-open mouth (aa 1)."""
    mouth_neutral_width: float = 0.38
    """Mouth width / face width at rest; wider spreads to ``ee``."""
    mouth_wide_width: float = 0.50
    """Mouth width / face width of a full smile-spread (ee 1)."""
    brow_neutral: float = 0.14
    """Brow-to-eye height / face width at rest; higher raises ``surprised``."""
    brow_raised: float = 0.20
    """Brow-to-eye height / face width of fully raised brows."""
    gaze_range: float = 0.18
    """Iris offset from the eye centre / eye width for a full look."""
    gaze_up_bias: float = 0.027
    """Iris height above the eye centre / eye width when looking straight ahead."""


def head_rotation(face: np.ndarray) -> Quaternion:
    """World rotation of the head (avatar axes) from the eye line and forehead-chin line."""
    p = camera_to_avatar(np.asarray(face, dtype=float))
    return q_from_frames(X, Y, p[LEFT_EYE_OUTER] - p[RIGHT_EYE_OUTER], p[FOREHEAD] - p[CHIN])


def _dist(p: np.ndarray, a: int, b: int) -> float:
    return float(np.linalg.norm(p[a, :2] - p[b, :2]))


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0))


def face_measures(face: np.ndarray) -> dict[str, float]:
    """Raw ratios: eye openness (left/right), mouth gap and width, brow height."""
    p = np.asarray(face, dtype=float)
    face_w = _dist(p, LEFT_CHEEK, RIGHT_CHEEK) or 1.0
    mouth_w = _dist(p, MOUTH_LEFT, MOUTH_RIGHT) or 1.0
    left_w = _dist(p, LEFT_EYE_OUTER, LEFT_EYE_INNER) or 1.0
    right_w = _dist(p, RIGHT_EYE_OUTER, RIGHT_EYE_INNER) or 1.0
    brow = (_dist(p, LEFT_BROW, LEFT_LID_UP) + _dist(p, RIGHT_BROW, RIGHT_LID_UP)) / 2
    return {
        "left_eye": _dist(p, LEFT_LID_UP, LEFT_LID_DOWN) / left_w,
        "right_eye": _dist(p, RIGHT_LID_UP, RIGHT_LID_DOWN) / right_w,
        "mouth_gap": _dist(p, LIP_UP, LIP_DOWN) / mouth_w,
        "mouth_width": mouth_w / face_w,
        "brow": brow / face_w,
    }


def _gaze(p: np.ndarray, iris: int, outer: int, inner: int, up: int, down: int
          ) -> tuple[float, float]:
    """Iris offset from the eye centre in eye widths, along the eye line and across it."""
    centre = (p[outer, :2] + p[inner, :2] + p[up, :2] + p[down, :2]) / 4
    along = p[outer, :2] - p[inner, :2]
    width = float(np.linalg.norm(along)) or 1.0
    along = along / width
    across = np.array([-along[1], along[0]])
    off = p[iris, :2] - centre
    return float(off @ along) / width, float(off @ across) / width


def face_expressions(face: np.ndarray, options: FaceOptions | None = None) -> dict[str, float]:
    """VRM 1.0 expression weights (0..1) for one face."""
    o = options or FaceOptions()
    p = np.asarray(face, dtype=float)
    m = face_measures(p)
    out = {
        "blinkLeft": 1.0 - _ramp(m["left_eye"], o.eye_closed_ratio, o.eye_open_ratio),
        "blinkRight": 1.0 - _ramp(m["right_eye"], o.eye_closed_ratio, o.eye_open_ratio),
        "aa": _ramp(m["mouth_gap"], o.mouth_closed_ratio, o.mouth_open_ratio),
        "ee": _ramp(m["mouth_width"], o.mouth_neutral_width, o.mouth_wide_width),
        "surprised": _ramp(m["brow"], o.brow_neutral, o.brow_raised),
    }
    if len(p) > max(LEFT_IRIS, RIGHT_IRIS):
        # along the eye line from inner to outer corner: the left eye's outward is the
        # performer's left, the right eye's is their right; average into one gaze
        left_out, left_down = _gaze(p, LEFT_IRIS, LEFT_EYE_OUTER, LEFT_EYE_INNER,
                                      LEFT_LID_UP, LEFT_LID_DOWN)
        right_out, right_down = _gaze(p, RIGHT_IRIS, RIGHT_EYE_OUTER, RIGHT_EYE_INNER,
                                        RIGHT_LID_UP, RIGHT_LID_DOWN)
        to_left = (left_out - right_out) / 2 / o.gaze_range
        # ``across`` points down in the image for the left eye and up for the right eye
        down = ((left_down - right_down) / 2 + o.gaze_up_bias) / o.gaze_range
        out["lookLeft"] = float(np.clip(to_left, 0.0, 1.0))
        out["lookRight"] = float(np.clip(-to_left, 0.0, 1.0))
        out["lookDown"] = float(np.clip(down, 0.0, 1.0))
        out["lookUp"] = float(np.clip(-down, 0.0, 1.0))
    return out
