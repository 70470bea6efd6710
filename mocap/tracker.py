"""mediapipe 0.10.21 ``solutions`` trackers: Pose (full), FaceMesh (refined), Hands.

Blocking: call ``Tracker.process`` from one worker thread (mediapipe graphs are not shared
between threads). The models ship inside the mediapipe wheel; nothing is downloaded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from mocap import landmarks as lm
from mocap.landmarks import LandmarkFrame

log = logging.getLogger(__name__)


class TrackerUnavailable(RuntimeError):
    """mediapipe (or its ``solutions`` API) could not be loaded."""


@dataclass(frozen=True, slots=True)
class TrackerOptions:
    """Which trackers run and how."""

    pose: bool = True
    """Body: Pose with the full model (the lite/heavy ones are not in the wheel)."""
    face: bool = True
    """Face: FaceMesh with refined eye and iris landmarks (478 points)."""
    hands: bool = False
    """Hands and fingers (two hands, full model); costs about as much as the pose."""
    max_width_px: int = 640
    """Frames wider than this are scaled down first (speed; the models work at 256 px)."""
    static_images: bool = False
    """Detect on every frame instead of tracking between frames (for unrelated images)."""
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5


def _array(landmarks: Any, scale: tuple[float, float, float]) -> np.ndarray:
    return np.array([(p.x * scale[0], p.y * scale[1], p.z * scale[2]) for p in landmarks],
                    dtype=np.float64)


def _resize(rgb: np.ndarray, max_width: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if w <= max_width:
        return rgb
    import cv2

    return cv2.resize(rgb, (max_width, round(h * max_width / w)), interpolation=cv2.INTER_AREA)


class Tracker:
    """Runs the enabled mediapipe solutions on RGB frames."""

    def __init__(self, options: TrackerOptions | None = None) -> None:
        self.options = o = options or TrackerOptions()
        try:
            import mediapipe as mp

            solutions = mp.solutions
        except (ImportError, AttributeError) as err:
            raise TrackerUnavailable(f"mediapipe 0.10.21 with mp.solutions is needed: {err}"
                                     ) from err
        conf = {"min_detection_confidence": o.min_detection_confidence,
                "min_tracking_confidence": o.min_tracking_confidence}
        self._pose = solutions.pose.Pose(
            static_image_mode=o.static_images, model_complexity=1, smooth_landmarks=False,
            enable_segmentation=False, **conf) if o.pose else None
        self._face = solutions.face_mesh.FaceMesh(
            static_image_mode=o.static_images, max_num_faces=1, refine_landmarks=True,
            **conf) if o.face else None
        self._hands = solutions.hands.Hands(
            static_image_mode=o.static_images, max_num_hands=2, model_complexity=1,
            **conf) if o.hands else None

    def process(self, rgb: np.ndarray, t: int) -> LandmarkFrame:
        """Landmarks in an RGB ``uint8`` frame (H, W, 3) captured at show sample ``t``."""
        image = np.ascontiguousarray(_resize(rgb, self.options.max_width_px))
        h, w = image.shape[:2]
        pose_world = visibility = pose_image = face = None
        left_hand = right_hand = None
        if self._pose is not None:
            r = self._pose.process(image)
            if r.pose_world_landmarks is not None and r.pose_landmarks is not None:
                pose_world = _array(r.pose_world_landmarks.landmark, (1.0, 1.0, 1.0))
                pose_image = _array(r.pose_landmarks.landmark, (1.0, 1.0, 1.0))
                visibility = np.array([p.visibility for p in r.pose_landmarks.landmark])
        if self._face is not None:
            r = self._face.process(image)
            if r.multi_face_landmarks:
                face = _array(r.multi_face_landmarks[0].landmark, (w, h, w))
        if self._hands is not None:
            r = self._hands.process(image)
            if r.multi_hand_world_landmarks:
                left_hand, right_hand = _assign_hands(r, pose_image)
        return LandmarkFrame(t, pose_world, visibility, pose_image, face, left_hand,
                             right_hand, (w, h))

    def close(self) -> None:
        """Release the mediapipe graphs."""
        for solution in (self._pose, self._face, self._hands):
            if solution is not None:
                solution.close()


def _assign_hands(result: Any, pose_image: np.ndarray | None
                  ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The performer's (left, right) hand world landmarks.

    With a body, each hand goes to the nearer pose wrist. Without, mediapipe's handedness
    label is used; it assumes a mirrored (selfie) image, so on an unmirrored camera its
    "Left" is the performer's right hand.
    """
    left = right = None
    for image_hand, world_hand, label in zip(result.multi_hand_landmarks,
                                             result.multi_hand_world_landmarks,
                                             result.multi_handedness, strict=True):
        world = _array(world_hand.landmark, (1.0, 1.0, 1.0))
        if pose_image is not None:
            wrist = np.array([image_hand.landmark[0].x, image_hand.landmark[0].y])
            d_left = np.linalg.norm(pose_image[lm.LEFT_WRIST, :2] - wrist)
            d_right = np.linalg.norm(pose_image[lm.RIGHT_WRIST, :2] - wrist)
            is_left = d_left < d_right
        else:
            is_left = label.classification[0].label == "Right"
        if is_left:
            left = world
        else:
            right = world
    return left, right
