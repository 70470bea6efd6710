"""``livesinger render`` with backing: the program mix (voice + backing) offline, and the
dry voice and each stem into ``--stems DIR`` (docs/mix.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ
from singer.mix.backing import BackingPlayer, load_backing
from singer.mix.backing_spec import BackingError, BackingSpec, files_spec, load_backing_spec
from singer.mix.chain import PRESETS, chain_preset
from singer.mix.program import ProgramMix, ProgramRender, render_program
from singer.score import Score

TAIL_S = 3.0
"""How long the render runs past the last note for reverb and delay tails (and at least to
the backing's end)."""


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
    p.add_argument("--chain", default="dry", choices=sorted(PRESETS),
                   help="vocal chain preset on the voice (default dry: none)")


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
    return bool(args.backing or args.stems or args.chain != "dry"
                or (score_path is not None and backing_spec(args, score_path) is not None))


def render_program_mix(args: argparse.Namespace, score: Score, voice: np.ndarray,
                       score_path: Path | None) -> ProgramRender:
    """The program mix of ``voice`` (show sample 0 at index 0) with the backing and chain;
    ``ValueError`` with one line when the backing cannot be used."""
    spec = backing_spec(args, score_path)
    player = None
    tail = round(TAIL_S * SAMPLE_RATE_HZ) if args.chain != "dry" else 0
    if spec is not None:
        try:
            track = load_backing(spec)
        except BackingError as err:
            raise ValueError(str(err)) from None
        player = BackingPlayer(track, score.tempo_map)
        player.play(0, 0.0)
        tail = max(tail, track.offset_samples + track.length_samples - len(voice))
        print(f"livesinger: backing {', '.join(track.names)} from score time "
              f"{spec.offset_s:g} s", file=sys.stderr)
    mix = ProgramMix({"voice": chain_preset(args.chain)}, player)
    return render_program({"voice": voice}, mix, tail_samples=max(0, tail))


def write_stems(folder: Path, render: ProgramRender, lead_samples: int) -> list[Path]:
    """``dry.wav`` and ``<stem>.wav`` into ``folder``, each preceded by ``lead_samples`` of
    silence so they line up with the written program (the audible label's lead-in)."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    lead = np.zeros(max(0, lead_samples), np.float32)
    written = []
    for name, audio in [("dry", render.dry), *render.stems.items()]:
        path = folder / f"{name}.wav"
        sf.write(path, np.concatenate([lead, audio]), SAMPLE_RATE_HZ, subtype="FLOAT")
        written.append(path)
    return written


def add_serve_options(p: argparse.ArgumentParser) -> None:
    """``serve --chain PRESET --backing FILE [--backing FILE …] --backing-offset S``."""
    p.add_argument("--chain", default="dry", choices=sorted(PRESETS),
                   help="vocal chain preset on the voice in the program mix (default dry)")
    p.add_argument("--backing", metavar="FILE", action="append", default=[],
                   help="backing audio mixed under every song (repeat for stems; default: "
                        "each song's cue-list backing: or <song>.backing.yaml)")
    p.add_argument("--backing-offset", metavar="S", type=float, default=0.0,
                   help="score time (s) at which --backing time 0 falls (default 0)")


def serve_options(args: argparse.Namespace) -> dict[str, object]:
    """The ``ServeOptions`` fields of ``add_serve_options``."""
    return {"chain": args.chain, "backing": tuple(Path(f) for f in args.backing),
            "backing_offset": args.backing_offset}
