"""``serve --chase mtc:PORT|ltc:mic[:DEV]|ltc:FILE --mtc-out PORT --timecode-rate R
--timecode-start HH:MM:SS:FF`` (docs/timecode.md)."""

from __future__ import annotations

import argparse

from streams.timecode.smpte import RATES


def add_serve_options(p: argparse.ArgumentParser) -> None:
    """The timecode options of ``serve``."""
    p.add_argument("--chase", metavar="mtc:PORT|ltc:mic[:DEV]|ltc:FILE", default=None,
                   help="the song's transport follows this timecode: MTC from a MIDI port, "
                        "or LTC from the sound card input or a sound file")
    p.add_argument("--mtc-out", metavar="PORT", default=None,
                   help="send MIDI Time Code following the song position to this MIDI port")
    p.add_argument("--timecode-rate", choices=tuple(RATES), default="25",
                   help="frame rate of LTC in and of MTC out (MTC in says its own); "
                        "default 25")
    p.add_argument("--timecode-start", metavar="HH:MM:SS:FF", default="00:00:00:00",
                   help="the timecode of the song's beat 0 (default 00:00:00:00)")


def serve_options(args: argparse.Namespace) -> dict[str, object]:
    """The ``ServeOptions`` fields of ``add_serve_options``."""
    return {"chase": args.chase, "mtc_out": args.mtc_out, "timecode_rate": args.timecode_rate,
            "timecode_start": args.timecode_start}
