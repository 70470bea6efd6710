"""``livesinger duet`` (rehearsal and offline evaluation of following a performer) and
``livesinger bench duet``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

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
    p.add_argument("--input", required=True, metavar="FILE.wav|midi:FILE.mid",
                   help="the performer: a sound file, or a MIDI file as midi:FILE")
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
                   help="writes DIR/audio.wav (the idol alone; sample 0 = input sample 0) "
                        "and DIR/follow.jsonl")
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
    b = bench.add_parser("duet", help="follower compute per 5 ms chunk, decision latency")
    b.add_argument("--json", action="store_true", help="(output is always JSON)")
    b.set_defaults(run=cmd_bench_duet)


def cmd_duet(args: argparse.Namespace) -> int:
    """``livesinger duet``: follow a recorded performer, write the idol and the follow log."""
    from mocap.performer_audio import PerformerAudioError, WavFileSource
    from mocap.performer_midi import PerformerMidiError, midi_file_events
    from singer.follow.duet import DuetSession, duet_from_audio, duet_from_midi
    from singer.score import ScoreError
    from singer.voices import UnknownVoiceError
    from stage.cli import CliError, load_score_or_song

    score = load_score_or_song(args.score, songs=args.songs)
    is_midi = args.input.startswith("midi:")
    try:
        session = DuetSession(score, args.follow, sing=args.sing, voice=args.voice,
                              midi=is_midi, on_silence=args.on_silence,
                              harmony=args.harmony)
        if is_midi:
            result = duet_from_midi(session, midi_file_events(args.input[5:]))
        else:
            source = WavFileSource(args.input)
            result = duet_from_audio(session, source.chunks(), source.latency_samples)
    except (ScoreError, UnknownVoiceError, PerformerAudioError, PerformerMidiError) as err:
        raise CliError(str(err)) from None
    folder = Path(args.record)
    result.write(folder)
    print(f"wrote {folder / 'audio.wav'} ({len(result.audio) / SAMPLE_RATE_HZ:.2f} s) and "
          f"{folder / 'follow.jsonl'} ({len(result.log)} events, {result.retimes} re-timings)")
    return 0


def cmd_bench_duet(_args: argparse.Namespace) -> int:
    """``livesinger bench duet``: the follower's cost per 5 ms chunk of a sung performance."""
    from singer.follow.follower import ScoreFollower
    from singer.follow.part import FollowedPart
    from singer.render import render_score
    from singer.score import SourceNote, assemble_score
    from singer.tempo import TempoChange, TempoMap

    pitches = [60, 62, 64, 65, 67, 65, 64, 62] * 4
    notes = [SourceNote(float(k), k + 0.95, float(p), "他卡怕撒"[k % 4])
             for k, p in enumerate(pitches)]
    score = assemble_score("bench", TempoMap([TempoChange(0.0, 110.0)]), {"performer": notes})
    audio = render_score(score, "tenor")
    follower = ScoreFollower(FollowedPart.of(score, "performer"))
    chunk = SAMPLE_RATE_HZ // 200
    costs = []
    latencies = []
    for i in range(0, len(audio), chunk):
        t0 = time.perf_counter()
        for state in follower.feed_audio(audio[i:i + chunk]):
            latencies.append((state.decided_sample - state.sample) / SAMPLE_RATE_HZ * 1e3)
        costs.append((time.perf_counter() - t0) * 1e3)
    c = np.array(costs)
    row = {"bench": "duet", "chunk_ms": 5.0, "chunks": len(c),
           "compute_ms_p50": round(float(np.percentile(c, 50)), 4),
           "compute_ms_p99": round(float(np.percentile(c, 99)), 4),
           "compute_ms_max": round(float(c.max()), 4),
           "decision_latency_ms_median": round(float(np.median(latencies)), 1)
           if latencies else None,
           "events": len(follower.history), "notes": len(notes)}
    print(json.dumps(row), file=sys.stdout, flush=True)
    return 0
