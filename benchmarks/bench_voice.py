"""Voice benchmark: per-chunk compute p50/p99 and real-time factor for 1, 8, 32 voices;
with ``--backends utau,diffsinger`` also the rows of those backends (RTF, phrase render time,
live note-on -> first sample) on stand-in banks.

Prints one JSON object per line. ``--smoke`` runs a short version (CI).
"""

from __future__ import annotations

import argparse
import json

from singer.backends.bench import run_backend_benchmarks
from singer.bench import run_voice_benchmarks


def main() -> None:
    """Run and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="short run for CI")
    parser.add_argument("--seconds", type=float, default=10.0, help="audio seconds per run")
    parser.add_argument("--backends", default="builtin",
                        help="comma-separated: builtin (the batched ensemble rows, plus its "
                             "contract row when others are named), utau, diffsinger")
    parser.add_argument("--steps", default="",
                        help="DiffSinger rows: comma-separated diffusion steps (default 20)")
    args = parser.parse_args()
    steps = tuple(int(v) for v in args.steps.split(",") if v.strip())
    counts = (1, 4) if args.smoke else (1, 8, 32)
    seconds = 0.5 if args.smoke else args.seconds
    kinds = [k.strip() for k in args.backends.split(",") if k.strip()]
    if "builtin" in kinds:
        for row in run_voice_benchmarks(counts, seconds):
            print(json.dumps(row), flush=True)
    others = [k for k in kinds if k != "builtin"]
    if others:
        for row in run_backend_benchmarks(others, max(counts), 2.0 if args.smoke else seconds,
                                          smoke=args.smoke, steps=steps):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
