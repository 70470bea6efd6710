"""mediapipe on real photographs (matplotlib's grace_hopper.jpg, scikit-image's astronaut) made
into sequences by known rotations, translations and edits: head roll, blink, mouth, loss."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator

import cv2
import matplotlib.cbook
import numpy as np
import pytest
import skimage.data

from mocap.capture import Capture, CaptureOptions
from mocap.landmarks import LandmarkFrame
from mocap.sources import ArraySource, SourceError, open_source
from mocap.tracker import Tracker, TrackerOptions
from rigs.facial import (
    LEFT_EYE_INNER,
    LEFT_EYE_OUTER,
    LIP_DOWN,
    LIP_UP,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    RIGHT_EYE_INNER,
    RIGHT_EYE_OUTER,
)
from rigs.mocap_rig import MocapRig
from rigs.pose import PoseFrame
from rigs.retarget import world_rotations
from rigs.rotation import q_angle, q_inv, q_mul, swing_twist

FPS = 30
FRAME_NS = 1_000_000_000 // FPS


def grace() -> np.ndarray:
    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


IMAGES = {"grace_hopper": grace, "astronaut": skimage.data.astronaut}


def transformed(img: np.ndarray, degrees: float, shift_px: tuple[float, float] = (0, 0)
                ) -> np.ndarray:
    """``img`` turned counter-clockwise (as seen) by ``degrees`` and moved by ``shift_px``."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    m[:, 2] += shift_px
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def closed_eyes(img: np.ndarray, face: np.ndarray) -> np.ndarray:
    """Eyelids painted shut with the skin below each eye and a lash line."""
    out = img.copy()
    for outer, inner in ((LEFT_EYE_OUTER, LEFT_EYE_INNER), (RIGHT_EYE_OUTER, RIGHT_EYE_INNER)):
        a, b = face[outer, :2], face[inner, :2]
        c, w = (a + b) / 2, float(np.linalg.norm(a - b))
        skin = img[int(c[1] + 0.9 * w), int(c[0])].tolist()
        cv2.ellipse(out, (int(c[0]), int(c[1])), (int(w * 0.75), int(w * 0.45)), 0, 0, 360,
                    skin, -1)
        cv2.line(out, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), (60, 40, 40), 2)
    return out


def open_mouth(img: np.ndarray, face: np.ndarray, gap: float = 0.35) -> np.ndarray:
    """The jaw dropped by ``gap`` mouth widths: the lower face moved down, a dark mouth."""
    out = img.copy()
    a, b = face[MOUTH_RIGHT, :2], face[MOUTH_LEFT, :2]
    w = float(np.linalg.norm(a - b))
    y, g = int((face[LIP_UP, 1] + face[LIP_DOWN, 1]) / 2), int(gap * w)
    x0, x1 = int(min(a[0], b[0]) - 0.6 * w), int(max(a[0], b[0]) + 0.6 * w)
    out[y + g:, x0:x1] = img[y:img.shape[0] - g, x0:x1]
    out[y:y + g, x0:x1] = img[y:y + 1, x0:x1]
    cv2.ellipse(out, (int((a[0] + b[0]) / 2), y + g // 2), (int(w * 0.4), max(1, g // 2)), 0,
                0, 360, (60, 25, 30), -1)
    return out


@pytest.fixture(scope="module")
def tracker() -> Iterator[Tracker]:
    t = Tracker(TrackerOptions(pose=True, face=True))
    yield t
    t.close()


def run(tracker: Tracker, frames: list[np.ndarray]) -> list[tuple[LandmarkFrame, PoseFrame]]:
    """Frames through capture (track + One Euro) and rig at 30 fps show time."""
    capture = Capture(ArraySource([]), lambda ns: ns * 48000 // 1_000_000_000,
                      tracker=tracker)
    rig = MocapRig()
    out = []
    for i, rgb in enumerate(frames):
        landmarks = capture.track(rgb, (i + 1) * FRAME_NS)
        out.append((landmarks, rig.update(landmarks)))
    return out


def head_roll_deg(pose: PoseFrame, reference: PoseFrame) -> float:
    """Roll (about the viewing axis +Z) of the head's world rotation relative to reference."""
    head = world_rotations(pose.normalized_bones)["head"]
    ref = world_rotations(reference.normalized_bones)["head"]
    _, twist = swing_twist(q_mul(head, q_inv(ref)), np.array([0.0, 0.0, 1.0]))
    return math.degrees(2 * math.atan2(twist[2], twist[3]))


@pytest.mark.parametrize("name", list(IMAGES))
def test_head_roll_follows_rotation(tracker: Tracker, name: str) -> None:
    img = IMAGES[name]()
    angles = [0.0, 10.0, 20.0, 10.0, 0.0, -10.0, -20.0]
    hold = 4  # frames per angle; the last of each is compared (the filter has settled)
    frames = [transformed(img, a, (3.0 * k, -2.0 * k)) for a in angles for k in range(hold)]
    results = run(tracker, frames)
    settled = [results[i * hold + hold - 1][0] for i in range(len(angles))]
    assert all(lf.face is not None and lf.pose_world is not None for lf in settled)
    reference = results[hold - 1][1]
    errors = []
    for i, angle in enumerate(angles):
        measured = head_roll_deg(results[i * hold + hold - 1][1], reference)
        errors.append(abs(measured - angle))
    assert max(errors) < 5.0, f"head roll errors {errors}"


@pytest.mark.parametrize("name", list(IMAGES))
def test_blink_and_mouth_respond(tracker: Tracker, name: str) -> None:
    img = IMAGES[name]()
    face = Tracker(TrackerOptions(pose=False, static_images=True)).process(img, 0).face
    assert face is not None
    frames = [img] * 4 + [closed_eyes(img, face)] * 4 + [img] * 4 + [open_mouth(img, face)] * 4
    poses = [p for _, p in run(tracker, frames)]
    e = [p.expressions for p in poses]
    blink_open = max(max(x["blinkLeft"], x["blinkRight"]) for x in e[2:4])
    blink_shut = min((x["blinkLeft"] + x["blinkRight"]) / 2 for x in e[6:8])
    assert blink_open < 0.25 and blink_shut > 0.6, (blink_open, blink_shut)
    mouth_rest, mouth_open = e[11]["aa"], e[15]["aa"]
    assert mouth_open > mouth_rest + 0.3 and mouth_open > 0.5, (mouth_rest, mouth_open)


def test_no_person_returns_to_rest_without_jumps(tracker: Tracker) -> None:
    img = transformed(grace(), 15.0)
    empty = np.full_like(img, 128)
    frames = [img] * 4 + [empty] * 45
    results = run(tracker, frames)
    assert results[3][0].face is not None and results[10][0].empty
    poses = [p for _, p in results]
    tilted = world_rotations(poses[3].normalized_bones)["head"]
    assert q_angle(tilted, (0, 0, 0, 1)) > math.radians(10)
    steps = [max(q_angle(a.normalized_bones.get(b, (0, 0, 0, 1)),
                         c.normalized_bones.get(b, (0, 0, 0, 1))) for b in c.normalized_bones)
             for a, c in zip(poses[3:], poses[4:], strict=False)]
    assert math.degrees(max(steps)) < 6.0, "a jump on loss"
    final = poses[-1]
    rest = (0, 0, 0, 1)
    assert all(q_angle(q, rest) < math.radians(1.0) for q in final.normalized_bones.values())
    assert all(v < 0.02 for v in final.expressions.values())


async def test_capture_loop_drops_frames_when_behind(tracker: Tracker) -> None:
    small = cv2.resize(grace(), (256, 300))

    class Live(ArraySource):
        live = True

    got: list[LandmarkFrame] = []
    capture = Capture(Live([small] * 40), lambda ns: 0, CaptureOptions(), tracker=tracker)
    await asyncio.wait_for(capture.run(lambda f, _ns: got.append(f)), 30)
    s = capture.stats
    assert s.read == 40 and s.dropped > 0 and s.tracked == len(got) == s.read - s.dropped
    paced = Capture(ArraySource([small] * 3), lambda ns: 0, CaptureOptions(pace=False),
                    tracker=tracker)
    await asyncio.wait_for(paced.run(lambda f, _ns: got.append(f)), 30)
    assert paced.stats.tracked == 3 and paced.stats.dropped == 0


def test_bad_sources_say_what_is_wrong(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    bad = folder / "clip.mp4"
    bad.write_bytes(b"this is not a video")
    with pytest.raises(SourceError, match="clip.mp4"):
        open_source(str(bad))
    with pytest.raises(SourceError, match="camera:7"):
        open_source("camera:7")
    with pytest.raises(SourceError, match="no such"):
        open_source(str(folder / "missing.mp4"))
    (folder / "frames").mkdir()
    with pytest.raises(SourceError, match="no images"):
        open_source(str(folder / "frames"))
    (folder / "frames" / "a.png").write_bytes(b"broken")
    cv2.imwrite(str(folder / "frames" / "b.png"), np.zeros((8, 8, 3), np.uint8))
    source = open_source(str(folder / "frames"))
    first = source.read()
    assert first is not None and first.shape == (8, 8, 3) and source.read() is None
