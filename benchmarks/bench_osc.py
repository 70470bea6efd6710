"""Live-control benchmark: OSC note-on -> first sample of the note (``--smoke`` for CI)."""

from __future__ import annotations

import argparse
import asyncio
import json

from stage.bench.live import bench_osc


def main() -> None:
    """Run and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="short run for CI")
    parser.add_argument("--realtime", action="store_true",
                        help="SCHED_FIFO synthesis, as `serve --realtime`")
    parser.add_argument("--synthesis", choices=("process", "thread"), default="process",
                        help="where the engine renders, as `serve --synthesis`")
    args = parser.parse_args()
    notes = 40 if args.smoke else 1000
    print(json.dumps(asyncio.run(bench_osc(notes=notes, realtime=args.realtime,
                                           synthesis=args.synthesis))), flush=True)


if __name__ == "__main__":
    main()
