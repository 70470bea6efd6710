"""``livesinger render`` with backing: the program mix (voice + backing) offline, and the
dry voice and each stem into ``--stems DIR`` (docs/mix.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ
from singer.mix.backing import BackingPlayer, load_backing
from singer.mix.backing_spec import BackingError, BackingSpec, files_spec, load_backing_spec
from singer.mix.chain import PRESETS, chain_plan, chain_preset
from singer.mix.effects import ParamError
from singer.mix.program import TAIL_S as PROGRAM_TAIL_S
from singer.mix.program import ProgramMix, ProgramRender, render_program
from singer.score import Score

TAIL_S = PROGRAM_TAIL_S
"""How long the render runs past the last note for reverb and delay tails (and at least to
the backing's end): as long as a live show plays on after a song's end."""


def add_render_options(p: argparse.ArgumentParser) -> None:
    """``--backing``, ``--backing-offset``, ``--stems``, ``--chain`` for ``render``."""
    p.add_argument("--backing", metavar="FILE", action="append", default=[],
                   help="backing audio (WAV, FLAC, Ogg/Opus, any rate) mixed under the voice; "
                        "repeat for stems (default: the song's <song>.backing.yaml if any)")
    p.add_argument("--backing-offset", metavar="S", type=float, default=None,
                   help="score time (s) at which backing time 0 falls (default 0, or the "
                        "sidecar's offset_s)")
    p.add_argument("--stems", metavar="DIR", default=None,
                   help="also write the dry voice and each backing stem to DIR (aligned WAVs)")
    p.add_argument("--chain", metavar="[SINGER=]PRESET", action="append", default=[],
                   help=f"vocal chain ({', '.join(sorted(PRESETS))}) of every singer, or "
                        "SINGER=PRESET for one (a part's name, or lead for the first); "
                        "repeatable (default dry: none)")


def score_path(ref: str, songs: str | None) -> Path | None:
    """The score file ``ref`` names (a path or a library song), for its sidecar."""
    from singer.library import SongLibrary, default_libraries
    from singer.score import ScoreError

    if Path(ref).is_file():
        return Path(ref)
    try:
        libraries = [SongLibrary(songs)] if songs else default_libraries()
    except ScoreError:
        return None
    return next((p for lib in libraries if (p := lib.find(ref)) is not None), None)


def backing_spec(args: argparse.Namespace, score_path: Path | None) -> BackingSpec | None:
    """The backing asked on the command line, else the song's sidecar, else ``None``."""
    from singer.mix.backing_spec import sidecar_for

    try:
        if args.backing:
            return files_spec(args.backing, args.backing_offset or 0.0)
        sidecar = sidecar_for(score_path) if score_path is not None else None
        if sidecar is None:
            return None
        spec = load_backing_spec(sidecar)
        if args.backing_offset is not None:
            spec = BackingSpec(spec.stems, args.backing_offset, spec.source)
        return spec
    except BackingError as err:
        raise ValueError(str(err)) from None


def wants_program(args: argparse.Namespace, score_path: Path | None) -> bool:
    """Whether ``render`` writes a program mix (a backing, stems or a chain asked)."""
    default, per_singer = plan(args.chain)
    return bool(args.backing or args.stems or default != "dry"
                or any(p != "dry" for p in per_singer.values())
                or (score_path is not None and backing_spec(args, score_path) is not None))


def render_program_mix(args: argparse.Namespace, score: Score,
                       voices: Mapping[str, np.ndarray], score_path: Path | None
                       ) -> ProgramRender:
    """The program mix of each singer's voice (by name, as live: ``lead`` for the first
    part; show sample 0 at index 0) through their chain, with the backing; ``ValueError``
    with one line when the backing or a chain cannot be used."""
    default, per_singer = plan(args.chain)
    unknown = sorted(set(per_singer) - set(voices))
    if unknown:
        raise ValueError(f"--chain {unknown[0]}=...: no singer {unknown[0]!r} in this song "
                         f"(singers: {', '.join(voices)})")
    chains = {name: chain_preset(per_singer.get(name, default)) for name in voices}
    spec = backing_spec(args, score_path)
    player = None
    wet = any(c.preset != "dry" for c in chains.values())
    tail = round(TAIL_S * SAMPLE_RATE_HZ) if wet else 0
    length = max((len(v) for v in voices.values()), default=0)
    if spec is not None:
        try:
            track = load_backing(spec)
        except BackingError as err:
            raise ValueError(str(err)) from None
        player = BackingPlayer(track, score.tempo_map)
        player.play(0, 0.0)
        tail = max(tail, track.offset_samples + track.length_samples - length)
        print(f"livesinger: backing {', '.join(track.names)} from score time "
              f"{spec.offset_s:g} s", file=sys.stderr)
    mix = ProgramMix(chains, player)
    return render_program(voices, mix, tail_samples=max(0, tail))


def check_chains(args: argparse.Namespace, score: Score) -> None:
    """``ValueError`` (one line) for a ``--chain SINGER=PRESET`` naming no singer of
    ``score`` (said before the render, not after it)."""
    _, per_singer = plan(args.chain)
    names = live_singers(score)
    unknown = sorted(set(per_singer) - set(names))
    if unknown:
        raise ValueError(f"--chain {unknown[0]}=...: no singer {unknown[0]!r} in this song "
                         f"(singers: {', '.join(names)})")


def live_singers(score: Score) -> list[str]:
    """The singer of each part as a live show names it: ``lead``, then the parts' names."""
    from stage.director import Director

    return Director._part_singers(score)


def singer_voices(score: Score, parts: np.ndarray | None, voice: np.ndarray
                  ) -> dict[str, np.ndarray]:
    """Each singer's dry voice by the name it has live (``lead``, then the parts' names)
    from the per-part rows; without rows (bank voices render summed) the lead's alone."""
    names = live_singers(score)
    if parts is None:
        return {names[0]: voice}
    return {name: parts[i] for i, name in enumerate(names[:len(parts)])}


def write_stems(folder: Path, render: ProgramRender, lead_samples: int) -> list[Path]:
    """``dry.wav`` and ``<stem>.wav`` into ``folder``, each preceded by ``lead_samples`` of
    silence so they line up with the written program (the audible label's lead-in)."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    lead = np.zeros(max(0, lead_samples), np.float32)
    written = []
    singers = [(f"voice-{name}", audio) for name, audio in render.parts.items()]
    for name, audio in [("dry", render.dry), *singers, *render.stems.items()]:
        path = folder / f"{name}.wav"
        sf.write(path, np.concatenate([lead, audio]), SAMPLE_RATE_HZ, subtype="FLOAT")
        written.append(path)
    return written


def add_serve_options(p: argparse.ArgumentParser) -> None:
    """``serve --chain PRESET --backing FILE [--backing FILE …] --backing-offset S``."""
    p.add_argument("--chain", metavar="[SINGER=]PRESET", action="append", default=[],
                   help=f"vocal chain ({', '.join(sorted(PRESETS))}) of every singer in the "
                        "program mix, or SINGER=PRESET for one; repeatable (default dry)")
    p.add_argument("--card-mix", choices=("program", "voice"), default="program",
                   help="what the sound card plays: the program, or the voice alone "
                        "(in-ear monitors); default program")
    p.add_argument("--backing", metavar="FILE", action="append", default=[],
                   help="backing audio mixed under every song (repeat for stems; default: "
                        "each song's cue-list backing: or <song>.backing.yaml)")
    p.add_argument("--backing-offset", metavar="S", type=float, default=0.0,
                   help="score time (s) at which --backing time 0 falls (default 0)")


def add_bench(bench: Any) -> None:
    """Register ``bench mix``."""
    b = bench.add_parser("mix", help="program mix cost per chunk for 1, 4, 8 singers")
    b.add_argument("--json", action="store_true", help="(output is always JSON)")
    b.add_argument("--seconds", type=float, default=10.0, help="audio seconds per run")
    b.add_argument("--singers", default="1,4,8", help="comma-separated singer counts")
    b.add_argument("--chains", default="dry,pop,ballad", help="comma-separated presets")
    b.set_defaults(run=cmd_bench_mix)


def cmd_bench_mix(args: argparse.Namespace) -> int:
    """``livesinger bench mix``: JSON lines of the program mix's cost per chunk."""
    import json

    from stage.bench.mix import run_mix_benchmarks

    try:
        counts = tuple(int(c) for c in args.singers.split(","))
    except ValueError:
        counts = ()
    presets = tuple(p.strip() for p in args.chains.split(",") if p.strip())
    bad = [p for p in presets if p not in PRESETS]
    if bad or not presets or not counts or min(counts) < 1:
        print(f"livesinger: error: bench mix --singers {args.singers} --chains {args.chains}: "
              f"want counts of at least 1 (1,4,8) and presets among {', '.join(PRESETS)}",
              file=sys.stderr)
        return 2
    for row in run_mix_benchmarks(counts, args.seconds, presets):
        print(json.dumps(row), flush=True)
    return 0


def serve_options(args: argparse.Namespace) -> dict[str, object]:
    """The ``ServeOptions`` fields of ``add_serve_options``."""
    default = next((c for c in reversed(args.chain) if "=" not in c), "dry")
    return {"chain": default, "singer_chains": tuple(c for c in args.chain if "=" in c),
            "backing": tuple(Path(f) for f in args.backing),
            "backing_offset": args.backing_offset, "card_mix": args.card_mix}


def plan(specs: list[str]) -> tuple[str, dict[str, str]]:
    """``--chain`` values as (default preset, {singer: preset}); ``ValueError`` one line."""
    try:
        return chain_plan(specs)
    except ParamError as err:
        raise ValueError(f"--chain: {err}") from None
