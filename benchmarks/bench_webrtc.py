"""WebRTC benchmark: stage pages in headless Chromium (``--smoke`` for CI)."""

from __future__ import annotations

import argparse
import asyncio
import json

from stage.bench_web import bench_webrtc


def main() -> None:
    """Run and print one JSON line per viewer count."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="short run for CI")
    args = parser.parse_args()
    counts = (1,) if args.smoke else (1, 2, 4, 8, 16)
    cues = 3 if args.smoke else 8
    for row in asyncio.run(bench_webrtc(counts, cues=cues, cpu_window_s=1.0 if args.smoke
                                        else 3.0)):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
