"""``livesinger label check``, ``watermark detect``, ``bench watermark`` and render marking."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

EXIT_NOT_FOUND = 1


def add_commands(sub: Any) -> None:
    """Register ``label`` and ``watermark`` on the top-level subparsers."""
    p = sub.add_parser("label", help="the AIGC implicit label (GB 45438-2025) of a file")
    actions = p.add_subparsers(title="actions", metavar="ACTION")
    a = actions.add_parser("check", help="read a file's AIGC label back (exit 1: none)")
    a.add_argument("file", help="a WAV file (RIFF AIGC chunk) or a pose.jsonl (header line)")
    a.add_argument("--json", action="store_true", help="print the label as JSON")
    a.set_defaults(run=cmd_label_check)
    p = sub.add_parser("watermark", help="the inaudible audio watermark")
    actions = p.add_subparsers(title="actions", metavar="ACTION")
    a = actions.add_parser("detect", help="look for the watermark in an audio file "
                                          "(exit 1: not found)")
    a.add_argument("file", help="an audio file: WAV, FLAC, Ogg/Opus, MP3, ...")
    a.add_argument("--json", action="store_true",
                   help="print detected, payload, confidence, segments as JSON")
    a.set_defaults(run=cmd_watermark_detect)


def add_render_options(p: Any) -> None:
    """``render``'s label options: ``--producer``, ``--no-audible-label``."""
    p.add_argument("--producer", type=producer_name, default=None,
                   help="ContentProducer of the AIGC label (default: livesinger)")
    p.add_argument("--no-audible-label", action="store_true",
                   help="leave out the audible AI label (the short-long-short-short cue put "
                        "first by default; with it the song starts 1.5 s into the file)")


def add_show_options(p: Any) -> None:
    """A show's label and licence options: ``--producer``, ``--audible-label``, ``--usage``."""
    p.add_argument("--producer", type=producer_name, default=None,
                   help="ContentProducer of the show's AIGC label (default: livesinger)")
    p.add_argument("--audible-label", choices=["start", "off"], default="start",
                   help="the audible AI label (short-long-short-short cue) at the start of the "
                        "show and of every song (default start; off is logged as the show's "
                        "explicit choice)")
    p.add_argument("--usage", choices=["personal", "commercial", "corporation"],
                   default="personal",
                   help="what the show is for: a voice or avatar whose licence/consent record "
                        "does not allow it is refused (default personal; docs/provenance.md)")


def add_bench(bench: Any) -> None:
    """Register ``bench watermark``."""
    b = bench.add_parser("watermark", help="watermark embed cost, detection per attack, "
                                           "false positives")
    b.add_argument("--json", action="store_true", help="(output is always JSON)")
    b.add_argument("--clips", type=int, default=20, help="marked clips per attack (default 20)")
    b.add_argument("--unmarked", type=int, default=1000,
                   help="unmarked clips for false positives (default 1000)")
    b.set_defaults(run=cmd_bench_watermark)


def mark_render(audio: np.ndarray, *, watermark: bool = True, producer: str | None = None,
                audible_label: bool = False) -> tuple[np.ndarray, Any]:
    """A rendered mix marked for its file: (audio, AIGC label) with a fresh ProduceID.

    ``audible_label`` puts the rhythm cue first (the song then starts ``lead_samples()``
    later); the watermark carries the label's ``watermark_id`` (the ProduceID's first 8 hex
    digits)."""
    from singer.provenance.aigc import DEFAULT_PRODUCER, AigcLabel
    from singer.provenance.audible import prepend_cue
    from singer.provenance.watermark import embed

    label = AigcLabel.new(producer or DEFAULT_PRODUCER)
    if audible_label:
        audio = prepend_cue(audio)
    if watermark:
        audio = embed(audio, label.watermark_id)
    return audio, label


def label_file(path: str | Path, label: Any) -> None:
    """Write ``label`` into the WAV file at ``path`` (its RIFF ``AIGC`` chunk)."""
    from singer.provenance.aigc import write_wav_label

    write_wav_label(path, label)


def cmd_label_check(args: argparse.Namespace) -> int:
    """``livesinger label check FILE``."""
    from dataclasses import asdict

    from singer.provenance.aigc import LabelError, read_label
    from stage.cli import CliError

    try:
        label = read_label(args.file)
    except LabelError as err:
        raise CliError(str(err)) from None
    if label is None:
        print(json.dumps({"AIGC": None}) if args.json else f"{args.file}: no AIGC label")
        return EXIT_NOT_FOUND
    if args.json:
        print(label.to_json())
    else:
        print(f"{args.file}: AIGC label")
        for name, value in asdict(label).items():
            print(f"  {name}: {value}")
    return 0


def read_audio(path: str) -> tuple[np.ndarray, int]:
    """Mono float audio and its rate from any file soundfile or FFmpeg (PyAV) can read."""
    import soundfile as sf

    from stage.cli import CliError

    if not Path(path).is_file():
        raise CliError(f"{path}: no such file")
    try:
        data, rate = sf.read(path, dtype="float64", always_2d=True)
        return data.mean(axis=1), int(rate)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        pass
    import av

    parts: list[np.ndarray] = []
    try:
        with av.open(path) as container:
            stream = container.streams.audio[0]
            rate = int(stream.rate)
            to_mono = av.AudioResampler(format="flt", layout="mono", rate=rate)
            for frame in container.decode(stream):
                parts += [f.to_ndarray().reshape(-1) for f in to_mono.resample(frame)]
    except (av.FFmpegError, IndexError) as err:
        raise CliError(f"{path}: not a readable audio file ({err})") from None
    if not parts:
        raise CliError(f"{path}: no audio in the file")
    return np.concatenate(parts).astype(np.float64), rate


def cmd_watermark_detect(args: argparse.Namespace) -> int:
    """``livesinger watermark detect FILE [--json]``."""
    from singer.provenance.watermark import detect

    audio, rate = read_audio(args.file)
    found = detect(audio, rate)
    if args.json:
        print(json.dumps(found.to_json()))
    elif found.detected:
        what = "payload unreadable" if found.payload is None else \
            f"id {found.payload.id:08x}, time {found.payload.time_s:.1f} s"
        print(f"{args.file}: watermark found ({what}; confidence {found.confidence:.6f}, "
              f"scores {found.score:.1f} sync / {found.spread_score:.1f} noise) in "
              f"{len(found.segments)} segment(s)")
    else:
        print(f"{args.file}: no watermark (scores {found.score:.1f} sync / "
              f"{found.spread_score:.1f} noise)")
    return 0 if found.detected else EXIT_NOT_FOUND


def cmd_bench_watermark(args: argparse.Namespace) -> int:
    """``livesinger bench watermark``: one JSON object."""
    from stage.bench.watermark import bench_watermark

    print(json.dumps(bench_watermark(clips=args.clips, unmarked=args.unmarked)), flush=True)
    return 0


def producer_name(value: str) -> str:
    """``--producer NAME``: a non-empty name of printable characters, at most 64."""
    name = value.strip()
    if not name or len(name) > 64 or not name.isprintable():
        raise argparse.ArgumentTypeError(
            f"{value!r}: want a producer name of 1..64 printable characters")
    return name


def show_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``ServeOptions`` fields ``add_show_options`` parsed."""
    return {"producer": args.producer, "audible_label": args.audible_label,
            "usage": args.usage}
