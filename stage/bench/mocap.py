"""Mocap benchmark: capture -> PoseFrame out, next to bare mediapipe on the same frames.

Frames: matplotlib's grace_hopper.jpg turned and moved a little each frame (a moving head).
"Bare" runs mediapipe Pose (full) + FaceMesh (refined) on each frame and nothing else; ours
runs the whole path: tracker, One Euro smoothing, retargeting, face expressions, blending and
the PoseFrame's JSON for the wire. Both in this process, alternating frame by frame.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from mocap.capture import Capture
from mocap.sources import ArraySource
from mocap.tracker import Tracker, TrackerOptions
from rigs.mocap_rig import MocapRig


def bench_frames(count: int) -> list[np.ndarray]:
    """``count`` RGB frames of a photograph turning +-20 degrees and drifting."""
    import cv2
    import matplotlib.cbook

    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    h, w = img.shape[:2]
    frames = []
    for i in range(count):
        phase = 2 * math.pi * i / 60
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 20 * math.sin(phase), 1.0)
        m[:, 2] = m[:, 2] + np.array([8 * math.sin(phase / 2), 4 * math.cos(phase)])
        frames.append(cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE))
    return frames


def _stats(ms: list[float], prefix: str) -> dict[str, float]:
    a = np.array(ms)
    return {f"{prefix}ms_p50": round(float(np.percentile(a, 50)), 2),
            f"{prefix}ms_p99": round(float(np.percentile(a, 99)), 2),
            f"{prefix}fps": round(1000.0 / float(a.mean()), 1)}


def bench_mocap(frames: int = 300, hands: bool = False) -> dict[str, object]:
    """Per-frame latency (p50/p99) and fps of ours and bare mediapipe; one JSON-able row."""
    import mediapipe as mp

    images = bench_frames(frames)
    options = TrackerOptions(pose=True, face=True, hands=hands)
    tracker = Tracker(options)
    capture = Capture(ArraySource([]), lambda ns: ns * 48000 // 1_000_000_000, tracker=tracker)
    rig = MocapRig()
    sol = mp.solutions
    bare = [sol.pose.Pose(model_complexity=1, smooth_landmarks=False),
            sol.face_mesh.FaceMesh(max_num_faces=1, refine_landmarks=True)]
    if hands:
        bare.append(sol.hands.Hands(max_num_hands=2, model_complexity=1))
    ours_ms: list[float] = []
    bare_ms: list[float] = []
    warmup = min(10, frames // 5)
    try:
        for i, rgb in enumerate(images):
            t0 = time.perf_counter_ns()
            for solution in bare:
                solution.process(rgb)
            t1 = time.perf_counter_ns()
            pose = rig.update(capture.track(rgb, t1))
            pose.to_json()
            t2 = time.perf_counter_ns()
            if i >= warmup:
                bare_ms.append((t1 - t0) / 1e6)
                ours_ms.append((t2 - t1) / 1e6)
    finally:
        tracker.close()
        for solution in bare:
            solution.close()
    row: dict[str, object] = {"bench": "mocap", "trackers": "pose+face" + ("+hands" if hands
                                                                             else ""),
                              "frames": len(ours_ms), "cpu_count": os.cpu_count()}
    row.update(_stats(ours_ms, ""))
    row.update(_stats(bare_ms, "bare_"))
    row["ratio_p50"] = round(float(np.median(ours_ms) / np.median(bare_ms)), 3)
    row["found_face"] = capture.stats.tracked - capture.stats.lost
    return row
