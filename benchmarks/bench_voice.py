"""Voice benchmark: per-chunk compute p50/p99 and real-time factor for 1, 8, 32 voices.

Prints one JSON object per line. ``--smoke`` runs a short version (CI).
"""

from __future__ import annotations

import argparse
import json

from singer.bench import run_voice_benchmarks


def main() -> None:
    """Run and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="short run for CI")
    parser.add_argument("--seconds", type=float, default=10.0, help="audio seconds per run")
    args = parser.parse_args()
    counts = (1, 4) if args.smoke else (1, 8, 32)
    seconds = 0.5 if args.smoke else args.seconds
    for row in run_voice_benchmarks(counts, seconds):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
