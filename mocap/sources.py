"""Frame sources: a camera (OpenCV), a video file, a folder of images, frames in memory.

``open_source("camera:0" | "clip.mp4" | "frames/")`` gives a ``FrameSource`` whose blocking
``read()`` returns the next RGB ``uint8`` frame or ``None`` at the end. A source that cannot
be opened raises ``SourceError`` naming what is wrong.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class SourceError(ValueError):
    """A source that cannot be opened or read (no camera, unreadable video, empty folder)."""


class FrameSource:
    """Base: ``read()`` blocks for the next RGB frame (None at the end); ``close()``."""

    live: bool = False
    """True for a camera (frames arrive in real time; the slow reader drops them)."""
    fps: float = 30.0
    """Nominal frame rate (for pacing recorded sources)."""
    name: str = "source"

    def read(self) -> np.ndarray | None:
        """The next frame, RGB uint8 (H, W, 3), or None when the source is finished."""
        raise NotImplementedError

    def read_stamped(self) -> tuple[np.ndarray, int] | None:
        """The next frame and when it was captured (``time.monotonic_ns()``); by default the
        time ``read`` returned it. Sources that know better (WebRTC) override this."""
        rgb = self.read()
        return None if rgb is None else (rgb, time.monotonic_ns())

    def close(self) -> None:
        """Release the device or file."""


class ArraySource(FrameSource):
    """Frames from memory (tests, benchmarks)."""

    def __init__(self, frames: Iterable[np.ndarray], fps: float = 30.0, name: str = "frames"
                 ) -> None:
        self._frames = iter(frames)
        self.fps = fps
        self.name = name

    def read(self) -> np.ndarray | None:
        return next(self._frames, None)


class _OpenCvSource(FrameSource):
    def __init__(self, capture: Any, name: str) -> None:
        self._capture = capture
        self.name = name
        fps = float(capture.get(5) or 0.0)  # cv2.CAP_PROP_FPS
        self.fps = fps if 1.0 <= fps <= 240.0 else 30.0

    def read(self) -> np.ndarray | None:
        import cv2

        ok, bgr = self._capture.read()
        if not ok or bgr is None:
            return None
        return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def close(self) -> None:
        self._capture.release()


class CameraSource(_OpenCvSource):
    """A camera device by index (``camera:0``)."""

    live = True

    def __init__(self, index: int) -> None:
        import cv2

        capture = cv2.VideoCapture(index)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"camera:{index}: no such camera (or it is busy)")
        super().__init__(capture, f"camera:{index}")


class VideoFileSource(_OpenCvSource):
    """A video file OpenCV can decode; the first frame is checked at open."""

    def __init__(self, path: Path) -> None:
        import cv2

        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"{path}: cannot open as a video")
        super().__init__(capture, str(path))
        self._first = super().read()
        if self._first is None:
            self.close()
            raise SourceError(f"{path}: no readable video frames")

    def read(self) -> np.ndarray | None:
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        return super().read()


class ImageDirSource(FrameSource):
    """The images of a folder in name order; unreadable files are skipped with a warning."""

    def __init__(self, folder: Path, fps: float = 30.0) -> None:
        self._paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._paths:
            raise SourceError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
        self._next = 0
        self.fps = fps
        self.name = str(folder)
        self.skipped = 0

    def read(self) -> np.ndarray | None:
        import cv2

        while self._next < len(self._paths):
            path = self._paths[self._next]
            self._next += 1
            bgr = cv2.imread(str(path))
            if bgr is not None:
                return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            self.skipped += 1
            log.warning("%s: not a readable image, skipped", path)
        return None


def open_source(spec: str, fps: float = 30.0) -> FrameSource:
    """A source from ``camera:N``, a video file or a folder of images (``fps`` for folders)."""
    if spec.startswith("camera:"):
        try:
            index = int(spec.removeprefix("camera:"))
        except ValueError:
            raise SourceError(f"{spec}: want camera:N with N a device number") from None
        return CameraSource(index)
    path = Path(spec)
    if path.is_dir():
        return ImageDirSource(path, fps)
    if path.is_file():
        return VideoFileSource(path)
    raise SourceError(f"{spec}: no such file, folder or camera:N")
