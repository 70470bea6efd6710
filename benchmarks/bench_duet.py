"""Duet benchmark: the score follower's compute per 5 ms chunk and onset -> decision latency,
then the idol-vs-performer asynchrony per tempo curve (steady, ramps, rubato, step, fermata,
skipped bar) for audio and MIDI input, measured in the idol's audio (singer/follow/bench.py).

Prints one JSON object per line. ``--smoke`` runs a short version (CI).
"""

from __future__ import annotations

import argparse
import json
import sys

from singer.follow.bench import run_duet_benchmarks


def main() -> None:
    """Run and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="short run for CI")
    args = parser.parse_args()
    for row in run_duet_benchmarks(smoke=args.smoke,
                                   progress=lambda line: print(line, file=sys.stderr)):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
