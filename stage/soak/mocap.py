"""The soak's mocap source: a capture of its own, looping an image folder, sending VMC.

Runs in a process of its own (``python -m stage.soak.mocap FOLDER PORT``) so the soak can
kill it without a goodbye and start it again, as a capture machine or app that crashes and is
restarted mid-show: the real capture (mediapipe tracker, One Euro smoothing, the mocap rig)
reads the folder's frames round and round at ``--fps`` and sends each pose as VMC to the
show's ``--mocap vmc:`` port on loopback. It prints one JSON line once the tracker is loaded
(before the first pose goes out) and runs until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
from pathlib import Path

import numpy as np

DEFAULT_FPS = 10.0
"""Frames a second: enough to keep poses flowing, little CPU beside the show."""


def load_frames(folder: Path) -> list[np.ndarray]:
    """The folder's images as RGB frames, in name order (``SourceError`` if none)."""
    from mocap.sources import ImageDirSource

    source = ImageDirSource(folder)
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    return frames


async def run(folder: Path, port: int, fps: float) -> None:
    """Capture the folder's frames, looping, into VMC on ``127.0.0.1:port`` until killed."""
    from mocap.sources import ArraySource
    from stage.clock import ClockSync
    from stage.mocap import MocapFeed
    from streams.vmc import VmcSender

    frames = load_frames(folder)
    sender = VmcSender("127.0.0.1", port)
    await sender.start()
    feed = MocapFeed(ArraySource(itertools.cycle(frames), fps, name=str(folder)), ClockSync(),
                     sinks=[sender.send], prewarm=True)
    print(json.dumps({"capturing": str(folder), "frames": len(frames), "port": port}),
          flush=True)
    try:
        await feed.run()
    finally:
        await sender.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m stage.soak.mocap FOLDER PORT [--fps F]``."""
    p = argparse.ArgumentParser(prog="python -m stage.soak.mocap")
    p.add_argument("folder", type=Path)
    p.add_argument("port", type=int)
    p.add_argument("--fps", type=float, default=DEFAULT_FPS)
    args = p.parse_args(argv)
    if not 0 < args.port < 65536 or not 0 < args.fps <= 60:
        print("soak_mocap: want a port 1..65535 and fps in (0, 60]", file=sys.stderr)
        return 2
    asyncio.run(run(args.folder, args.port, args.fps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
