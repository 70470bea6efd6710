"""Mocap benchmark: capture -> PoseFrame latency and fps next to bare mediapipe (``--smoke``)."""

from __future__ import annotations

import argparse
import json

from stage.bench.mocap import bench_mocap


def main() -> None:
    """Run and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="short run for CI")
    parser.add_argument("--hands", action="store_true", help="track hands too")
    args = parser.parse_args()
    frames = 20 if args.smoke else 300
    print(json.dumps(bench_mocap(frames, hands=args.hands)), flush=True)


if __name__ == "__main__":
    main()
