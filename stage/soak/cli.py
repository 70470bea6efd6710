"""``livesinger soak --minutes N [--json]``: the whole show under load and faults
(``stage.soak.runner``)."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

MAX_MINUTES = 24 * 60.0


def minutes(text: str) -> float:
    """``--minutes``: a positive number of minutes, at most a day."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes") from None
    if not math.isfinite(value) or not 0 < value <= MAX_MINUTES:
        raise argparse.ArgumentTypeError(f"{text}: want minutes > 0 and <= {MAX_MINUTES:g}")
    return value


def scale(text: str) -> float:
    """``--flood-scale``: a factor > 0 and <= 10 on the malformed-input rates."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or not 0 < value <= 10:
        raise argparse.ArgumentTypeError(f"{text}: want a factor > 0 and <= 10")
    return value


def loads(text: str) -> tuple[str, ...]:
    """``--loads``: a comma list of what runs beside the show (``stage.soak.runner.LOADS``)."""
    from stage.soak.runner import LOADS

    if text.strip() == "none":  # the show alone (with its mocap unless --no-mocap)
        return ()
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in LOADS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: want a comma list of "
                                         f"{', '.join(LOADS)}, or none")
    return names


def add_commands(sub: Any) -> None:
    """Add ``soak`` to the CLI's subcommands."""
    p = sub.add_parser("soak", help="run a show under load, floods and faults for N minutes",
                       description="Run a real show (OSC, MQTT with a mosquitto of its own, "
                       "WHEP listeners, mocap, recording) while cues, notes, listeners, "
                       "malformed input and faults (a voice raising, synthesis killed, broker "
                       "and mocap source restarted) hit it; print one JSON report "
                       "(docs/benchmarks.md#soak). Progress goes to stderr.")
    p.add_argument("--minutes", type=minutes, default=2.0, help="how long (default 2)")
    p.add_argument("--json", action="store_true", help="the report on one line")
    p.add_argument("--no-mocap", action="store_true", help="no mocap source")
    p.add_argument("--flood-scale", type=scale, default=1.0, metavar="X",
                   help="malformed-input rate, times the default (~670/s)")
    p.add_argument("--loads", type=loads, default=None, metavar="LIST",
                   help="only these beside the show: cues,notes,listeners,flood,faults or "
                   "none (default all; to find which load makes a figure)")
    p.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=True,
                   help="run the show as `serve --realtime` does (SCHED_FIFO synthesis), as "
                   "a show machine of its own should run it (default: the soak tests that "
                   "deployment; docs/benchmarks.md#soak); --no-realtime: serve's default "
                   "scheduling. The report's `realtime` says which, and whether the OS "
                   "granted it")
    p.add_argument("--trace-memory", action="store_true",
                   help="trace allocations from warm-up on; print the biggest still held at "
                   "the end to stderr (slows the engine)")
    p.set_defaults(run=cmd_soak)


def cmd_soak(args: argparse.Namespace) -> int:
    """Run the soak and print its report."""
    from stage.soak.runner import LOADS, soak

    report = soak(args.minutes, mocap=not args.no_mocap, flood_scale=args.flood_scale,
                  trace_memory=args.trace_memory,
                  loads=LOADS if args.loads is None else args.loads, realtime=args.realtime)
    print(json.dumps(report) if args.json else json.dumps(report, indent=2), flush=True)
    return 0
