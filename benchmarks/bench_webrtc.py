"""WebRTC benchmark: a stage page in headless Chromium plus WHEP listeners (``--smoke``), or
through a local Janus with aiortc subscribers (``--janus``)."""

from __future__ import annotations

import argparse
import asyncio
import json

from stage.bench.web import VIEWER_COUNTS, bench_webrtc


def main() -> None:
    """Run and print one JSON line per viewer count."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="short run for CI")
    parser.add_argument("--janus", action="store_true", help="watch through a local Janus")
    parser.add_argument("--realtime", action="store_true",
                        help="the engine as `serve --realtime` (SCHED_FIFO synthesis, nice -10)")
    parser.add_argument("--browser-idle", action="store_true",
                        help="run the measuring Chromium under SCHED_IDLE, below the engine "
                             "(as when the renderer has a machine of its own)")
    args = parser.parse_args()
    if args.janus:
        from stage.bench.janus import bench_webrtc_janus

        asyncio.run(bench_webrtc_janus((1, 2) if args.smoke else (1, 2, 4, 8, 16, 32, 64),
                                       cues=2 if args.smoke else 8,
                                       cpu_window_s=1.0 if args.smoke else 3.0,
                                       on_row=lambda row: print(json.dumps(row), flush=True),
                                       browser_idle=args.browser_idle))
        return
    counts = (1, 2) if args.smoke else VIEWER_COUNTS
    cues = 3 if args.smoke else 8
    asyncio.run(bench_webrtc(counts, cues=cues, cpu_window_s=1.0 if args.smoke else 3.0,
                             on_row=lambda row: print(json.dumps(row), flush=True),
                             realtime=args.realtime, browser_idle=args.browser_idle))


if __name__ == "__main__":
    main()
