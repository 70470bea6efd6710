"""Program mix benchmark: the live program mix's cost per 5 ms chunk (each singer through
their vocal chain, a 4-stem backing read and summed) for 1, 4 and 8 singers with the dry,
pop and ballad chains: p50/p99 ms per chunk and the real-time factor.

Prints one JSON object per line. ``--smoke`` runs a short version (CI).
"""

from __future__ import annotations

import argparse
import json

from stage.bench.mix import run_mix_benchmarks


def main() -> None:
    """Run and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="short run for CI")
    parser.add_argument("--seconds", type=float, default=10.0, help="audio seconds per run")
    args = parser.parse_args()
    counts = (1, 4) if args.smoke else (1, 4, 8)
    seconds = 0.6 if args.smoke else args.seconds
    presets = ("pop",) if args.smoke else ("dry", "pop", "ballad")
    for row in run_mix_benchmarks(counts, seconds, presets):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
