"""``livesinger duet`` (rehearsal and offline evaluation of following a performer) and
``livesinger bench duet``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from singer.contracts import SAMPLE_RATE_HZ


def add_commands(sub: Any) -> None:
    """Register ``duet`` on the top-level subparsers."""
    p = sub.add_parser("duet", help="the idol follows a performer's part (rehearsal, offline)",
                       description="Follow a performer singing or playing one part of a score "
                                   "and sing the other part(s) in time with them "
                                   "(docs/follow.md).")
    p.add_argument("score", help="score file with several parts, or a library song name")
    p.add_argument("--follow", required=True, metavar="PART",
                   help="the performer's part (name, or number from 1)")
    p.add_argument("--input", required=True, metavar="FILE.wav|midi:FILE.mid|midi:PORT",
                   help="the performer: a sound file, a MIDI file as midi:FILE, or a live "
                        "MIDI input port as midi:PORT (followed in real time from the moment "
                        "it opens, the score's beat 0; until the song's end or Ctrl-C, "
                        "exit 0; exit 1 if the port goes away; the files are written each "
                        "way)")
    p.add_argument("--sing", action="append", metavar="PART", default=None,
                   help="a part the idol sings (repeatable; default: all the others)")
    p.add_argument("--voice", default="soprano", help="the idol's voice (default soprano)")
    p.add_argument("--harmony", choices=["third_above", "third_below", "sixth_above",
                                         "sixth_below"], default=None,
                   help="sing the performer's line this far away in the song's key (from "
                        "their live pitch) instead of the other parts (unless --sing)")
    p.add_argument("--on-silence", choices=["hold", "carry"], default="hold",
                   help="when the performer stops: hold, or carry on at the last tempo")
    p.add_argument("--record", required=True, metavar="DIR",
                   help="writes DIR/audio.wav (the idol alone; sample 0 = input sample 0, "
                        "or the moment a live port opened) and DIR/follow.jsonl")
    p.add_argument("--songs", metavar="DIR", default=None, help="song library folder")
    p.set_defaults(run=cmd_duet)


def add_serve_options(p: argparse.ArgumentParser) -> None:
    """``serve --follow PART --performer-audio SRC | --performer-midi PORT``."""
    p.add_argument("--follow", metavar="PART", default=None,
                   help="follow mode: the performer takes this part of --song; the idol sings "
                        "the others in time with them (docs/follow.md)")
    p.add_argument("--performer-audio", metavar="mic[:DEVICE]|FILE", default=None,
                   help="the performer's voice: the sound card input or a sound file played "
                        "in real time")
    p.add_argument("--performer-midi", metavar="PORT|FILE.mid", default=None,
                   help="the performer's MIDI: an input port name, or a MIDI file played in "
                        "real time")
    p.add_argument("--on-silence", choices=["hold", "carry"], default="hold",
                   help="follow mode, when the performer falls silent: hold (default) or "
                        "carry on at the last tempo")


def serve_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``ServeOptions`` fields of the follow options."""
    return {"follow": args.follow, "performer_audio": args.performer_audio,
            "performer_midi": args.performer_midi, "on_silence": args.on_silence}


def add_bench(bench: Any) -> None:
    """Register ``bench duet``."""
    b = bench.add_parser("duet", help="follower compute per 5 ms chunk, decision latency, "
                                      "idol-vs-performer asynchrony per tempo curve",
                         description="The follower's compute per 5 ms chunk and onset -> "
                                     "decision latency, then per tempo curve (steady, ramps "
                                     "up and down, rubato, step, fermata, skipped bar) and "
                                     "input (audio, MIDI) the idol's asynchrony measured in "
                                     "its audio, with the targets beside (docs/follow.md). "
                                     "One JSON object per line; progress on stderr.")
    b.add_argument("--json", action="store_true", help="(output is always JSON)")
    b.add_argument("--smoke", "--quick", action="store_true",
                   help="short run for CI: a short compute run, the step curve, MIDI only")
    b.add_argument("--curves", type=_curve_list, default=None, metavar="NAME,...",
                   help="only these curves (default: all)")
    b.add_argument("--draws", type=_draws, default=3, metavar="N",
                   help="MIDI: draws of the deleted and inserted notes per curve (default 3)")
    b.add_argument("--table", action="store_true",
                   help="also print the curve rows as a Markdown table on stderr")
    b.set_defaults(run=cmd_bench_duet)


def _draws(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: want a whole number, 1 or more")
    return n


def _curve_list(text: str) -> tuple[str, ...]:
    from singer.follow.corpus import CURVES

    names = tuple(n.strip() for n in text.split(",") if n.strip())
    known = [c.name for c in CURVES]
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        named = ", ".join(unknown) if unknown else repr(text)
        raise argparse.ArgumentTypeError(f"unknown curve(s) {named}; curves: "
                                         f"{', '.join(known)}")
    return names


def cmd_duet(args: argparse.Namespace) -> int:
    """``livesinger duet``: follow a recorded performer (or one playing a live MIDI port),
    write the idol and the follow log."""
    from mocap.performer_audio import PerformerAudioError, WavFileSource
    from mocap.performer_midi import PerformerMidiError, midi_file_events
    from singer.follow.duet import DuetSession, duet_from_audio, duet_from_midi
    from singer.score import ScoreError
    from singer.voices import UnknownVoiceError
    from stage.cli import CliError, load_score_or_song

    score = load_score_or_song(args.score, songs=args.songs)
    is_midi = args.input.startswith("midi:")
    folder = Path(args.record)
    try:
        session = DuetSession(score, args.follow, sing=args.sing, voice=args.voice,
                              midi=is_midi, on_silence=args.on_silence,
                              harmony=args.harmony)
        if is_midi and is_port(args.input[5:]):
            return _duet_on_port(session, args.input, folder)
        if is_midi:
            result = duet_from_midi(session, midi_file_events(args.input[5:]))
        else:
            source = WavFileSource(args.input)
            result = duet_from_audio(session, source.chunks(), source.latency_samples)
    except (ScoreError, UnknownVoiceError, PerformerAudioError, PerformerMidiError) as err:
        raise CliError(str(err)) from None
    write_marked(result, folder)
    print(f"wrote {folder / 'audio.wav'} ({len(result.audio) / SAMPLE_RATE_HZ:.2f} s) and "
          f"{folder / 'follow.jsonl'} ({len(result.log)} events, {result.retimes} re-timings)")
    return 0


def write_marked(result: Any, folder: Path) -> None:
    """Write the duet's files with the idol's audio marked as every other output is: the
    watermark in the samples (no shift: show sample 0 stays input sample 0) and the AIGC label
    in the WAV."""
    from stage.commands.provenance import label_file, mark_render

    result.audio, label = mark_render(result.audio)
    result.write(folder)
    label_file(folder / "audio.wav", label)


def is_port(spec: str) -> bool:
    """``midi:SPEC`` names a live port unless SPEC is a file there or ends in .mid/.midi."""
    path = Path(spec)
    return not (path.suffix.lower() in (".mid", ".midi") or path.exists())


def _duet_on_port(session: Any, spec: str, folder: Path) -> int:
    """Follow a live MIDI port in real time (``stage.follow.port``): exit status 0 at the
    song's end or on SIGINT/SIGTERM, 1 when the port goes away; the files are written
    each way."""
    import torch

    from stage.follow.port import PortDuet, describe, signals_stop

    torch.set_num_threads(1)  # the idol is sung in real time, as in a show
    duet = PortDuet(session, spec)  # PerformerMidiError: the port, and the ports there are
    with signals_stop(duet):
        print(describe(duet, folder), file=sys.stderr, flush=True)
        end = duet.run()
    result = duet.result()
    write_marked(result, folder)
    wrote = (f"{folder / 'audio.wav'} ({len(result.audio) / SAMPLE_RATE_HZ:.2f} s) and "
             f"{folder / 'follow.jsonl'} ({len(result.log)} events, {result.retimes} "
             "re-timings)")
    if end.reason == "port gone":
        print(f"livesinger: error: MIDI port {duet.source.name!r} went away {end.at_s:.2f} s "
              f"in; the duet so far is in {wrote}", file=sys.stderr, flush=True)
        return 1
    how = "stopped" if end.reason == "stopped" else "song over"
    print(f"{how} at {end.at_s:.2f} s; wrote {wrote}")
    return 0


def cmd_bench_duet(args: argparse.Namespace) -> int:
    """``livesinger bench duet``: JSON lines (the follower's compute, then asynchrony per
    tempo curve and input)."""
    from singer.follow.bench import run_duet_benchmarks, table

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    rows = []
    for row in run_duet_benchmarks(smoke=args.smoke, curves=args.curves, draws=args.draws,
                                   progress=progress):
        rows.append(row)
        print(json.dumps(row), file=sys.stdout, flush=True)
    if args.table:
        print(table(rows), file=sys.stderr, flush=True)
    return 0
