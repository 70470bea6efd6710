"""The ``livesinger`` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from singer.contracts import SAMPLE_RATE_HZ

log = logging.getLogger("livesinger")

EXIT_BAD_INPUT = 2


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2, no traceback."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``livesinger`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(args.run(args) or 0)
    except CliError as err:
        print(f"livesinger: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="livesinger",
        description="A streaming real-time virtual singer for live shows.",
        epilog="Run 'livesinger COMMAND --help' for the options of a command.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("render", help="render a score offline to a WAV file",
                       description="Render a score (MusicXML, MIDI, USTX, UST) to a 48 kHz "
                                   "mono WAV. Score time t lands at WAV time t.")
    p.add_argument("score", help="score file, or the name of a song in the library")
    p.add_argument("-o", "--output", required=True, help="output WAV path")
    p.add_argument("--voice", default=None,
                   help="voice name (default: the song's own, else soprano); "
                        "comma-separate to give each part its voice")
    p.add_argument("--seed", type=int, default=0, help="random seed (jitter, noise)")
    p.add_argument("--lang", default="auto", choices=["auto", "zh", "en"],
                   help="lyrics language (default: detect)")
    p.set_defaults(run=cmd_render)

    p = sub.add_parser("demo", help="sing the demo song live through the engine",
                       description="Start the engine on embedded defaults and sing the demo "
                                   "song in real time.")
    p.add_argument("--song", default="jasmine",
                   help="demo song name or score path (default: jasmine)")
    p.add_argument("--voice", default=None, help="voice name (default: the song's own)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--headless", action="store_true",
                   help="no sound card, no browser window; use with --record")
    p.add_argument("--record", metavar="DIR", default=None,
                   help="write what was streamed to DIR/audio.wav")
    p.add_argument("--device", default=None, help="torch device (default: cuda if present)")
    p.add_argument("--http-port", type=int, default=8080,
                   help="stage page port (default 8080, or any free one)")
    p.add_argument("--avatar", default=None, help="a .vrm avatar (default: the built-in one)")
    p.add_argument("--no-open", action="store_true", help="do not open the stage page")
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("serve", help="run the engine for a live show (OSC, MQTT)",
                       description="Run the engine until SIGINT/SIGTERM, controlled live over "
                                   "OSC (UDP and TCP/SLIP on one port; see docs/osc.md) and "
                                   "optionally MQTT (docs/mqtt.md).")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default loopback; others need --token)")
    p.add_argument("--osc-port", type=int, default=9000, help="OSC port (default 9000)")
    p.add_argument("--http-port", type=int, default=8080,
                   help="stage page, signaling and WHEP port (default 8080)")
    p.add_argument("--avatar", default=None, help="a .vrm avatar (default: the built-in one)")
    p.add_argument("--mqtt", metavar="URL", default=None,
                   help="connect to an MQTT broker, e.g. mqtt://127.0.0.1:1883")
    p.add_argument("--show", default="default", help="show name in MQTT topics")
    p.add_argument("--token", default=None,
                   help="shared secret remote controllers must present (see docs/osc.md)")
    p.add_argument("--song", default=None, help="song to load at start (path or name)")
    p.add_argument("--cues", metavar="FILE", default=None, help="cue list (YAML or JSON)")
    p.add_argument("--voice", default="soprano", help="voice of the lead singer")
    p.add_argument("--record", metavar="DIR", default=None,
                   help="write what was streamed to DIR/audio.wav")
    p.add_argument("--headless", action="store_true", help="no sound card")
    p.add_argument("--chunk-ms", type=float, default=5.0,
                   help="audio chunk in ms (default 5: a live note sounds within one)")
    p.add_argument("--lookahead", type=int, default=4,
                   help="chunks rendered ahead of playout (default 4: 20 ms at 5 ms chunks; "
                        "a live edit re-renders them, so it adds no latency)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if present)")
    p.set_defaults(run=cmd_serve)

    p = sub.add_parser("voices", help="list the built-in voices")
    p.set_defaults(run=cmd_voices)

    p = sub.add_parser("bench", help="run a benchmark and print JSON lines")
    bench = p.add_subparsers(title="benchmarks", metavar="WHAT")
    b = bench.add_parser("voice", help="per-chunk compute time for 1, 8, 32 voices")
    b.add_argument("--json", action="store_true", help="one JSON object per line (default)")
    b.add_argument("--seconds", type=float, default=5.0, help="audio seconds per run")
    b.add_argument("--voices", default="1,8,32", help="comma-separated voice counts")
    b.set_defaults(run=cmd_bench_voice)
    b = bench.add_parser("osc", help="OSC note-on -> first sample latency, malformed floods")
    b.add_argument("--json", action="store_true", help="one JSON object per line (default)")
    b.add_argument("--notes", type=int, default=1000, help="notes to play (default 1000)")
    b.add_argument("--bad-per-s", type=float, default=2000.0,
                   help="malformed packets per second sent meanwhile")
    b.set_defaults(run=cmd_bench_osc)
    b = bench.add_parser("webrtc", help="cue -> audible in Chromium, sync, CPU per viewer")
    b.add_argument("--json", action="store_true", help="one JSON object per line (default)")
    b.add_argument("--viewers", default="1,4,16", help="comma-separated viewer counts")
    b.add_argument("--cues", type=int, default=8, help="cues per viewer count")
    b.set_defaults(run=cmd_bench_webrtc)
    return parser


DEMO_VOICES = {"jasmine": "soprano", "twinkle": "tenor"}


def load_score_or_song(ref: str, language: str = "auto"):  # type: ignore[no-untyped-def]
    """A score from a file path or a song name; ``CliError`` explains a failure."""
    from singer.musicxml import read_musicxml
    from singer.score import ScoreError
    from singer.songs import DEMO_SONGS, song_path

    path = Path(ref)
    if not path.exists() and ref in DEMO_SONGS:
        path = song_path(ref)
    if not path.exists():
        raise CliError(f"{ref}: no such score file or song (songs: {', '.join(DEMO_SONGS)})")
    try:
        return read_musicxml(path, language=language)
    except ScoreError as err:
        raise CliError(str(err)) from None


def _voices(arg: str | None, song: str) -> list[str]:
    from singer.voices import UnknownVoiceError, get_voice

    names = (arg or DEMO_VOICES.get(Path(song).stem, "soprano")).split(",")
    try:
        return [get_voice(n).name for n in names]
    except UnknownVoiceError as err:
        raise CliError(str(err)) from None


def cmd_render(args: argparse.Namespace) -> int:
    """``livesinger render``: offline render with a progress bar."""
    import soundfile as sf
    from tqdm import tqdm

    from singer.render import build_ensemble, render_ensemble

    voices = _voices(args.voice, args.score)
    score = load_score_or_song(args.score, args.lang)
    for notice in score.notices:
        print(f"livesinger: notice: {notice}", file=sys.stderr)
    ensemble = build_ensemble(score, voices, seed=args.seed)
    total = ensemble.end_sample
    with tqdm(total=round(total / SAMPLE_RATE_HZ, 1), unit="s", desc="rendering",
              disable=None, bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s audio") as bar:
        def progress(done: int, _total: int) -> None:
            bar.n = round(done / SAMPLE_RATE_HZ, 1)
            bar.refresh()
        audio = render_ensemble(ensemble, progress=progress)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(out, audio, SAMPLE_RATE_HZ, subtype="FLOAT")
    print(f"wrote {out} ({len(audio) / SAMPLE_RATE_HZ:.2f} s, {', '.join(voices)})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``livesinger demo``: the demo song, live through the engine, on the stage page."""
    from stage.serve import ServeOptions

    voices = _voices(args.voice, args.song)
    load_score_or_song(args.song)  # a clear error now rather than inside the show
    opts = ServeOptions(
        osc_port=_free_or_any(9000), http_port=_free_or_any(args.http_port),
        headless=args.headless, open_page=not args.no_open,
        record=Path(args.record) if args.record else None, voice=voices[0], song=args.song,
        play_song=True, device=args.device, seed=args.seed,
        avatar=Path(args.avatar) if args.avatar else None)
    summary = _run_show(opts)
    print(f"sang {summary['seconds']:.1f} s, {summary['xruns']} xruns"
          + (f"; recorded {summary['recording']}" if summary["recording"] else ""))
    return 0


def _free_or_any(port: int) -> int:
    """``port`` if nothing listens there, else 0 (any free port)."""
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def _run_show(opts: object) -> dict[str, object]:
    from singer.score import ScoreError
    from stage.cuelist import CueListError
    from stage.serve import ServeError, serve

    try:
        return asyncio.run(serve(opts))  # type: ignore[arg-type]
    except (ServeError, CueListError, ScoreError) as err:
        raise CliError(str(err)) from None
    except OSError as err:  # a port in use, mostly
        raise CliError(f"cannot start: {err}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    """``livesinger serve``: run the show until a signal."""
    from stage.serve import ServeOptions

    voice = _voices(args.voice, "")[0]
    opts = ServeOptions(
        host=args.host, osc_port=args.osc_port, http_port=args.http_port, mqtt=args.mqtt,
        show=args.show, token=args.token, record=Path(args.record) if args.record else None,
        headless=args.headless, voice=voice, song=args.song,
        cues=Path(args.cues) if args.cues else None,
        avatar=Path(args.avatar) if args.avatar else None, chunk_ms=args.chunk_ms,
        lookahead_chunks=args.lookahead, device=args.device)
    _run_show(opts)
    return 0


def cmd_bench_osc(args: argparse.Namespace) -> int:
    """``livesinger bench osc``: live-control latency."""
    from stage.bench_live import bench_osc

    row = asyncio.run(bench_osc(notes=args.notes, bad_per_s=args.bad_per_s))
    print(json.dumps(row), flush=True)
    return 0


def cmd_bench_webrtc(args: argparse.Namespace) -> int:
    """``livesinger bench webrtc``: viewers in headless Chromium."""
    from stage.bench_web import bench_webrtc

    try:
        counts = tuple(int(v) for v in args.viewers.split(","))
    except ValueError:
        raise CliError(f"--viewers wants comma-separated numbers, got {args.viewers!r}") from None
    for row in asyncio.run(bench_webrtc(counts, cues=args.cues)):
        print(json.dumps(row), flush=True)
    return 0


def cmd_voices(_args: argparse.Namespace) -> int:
    """``livesinger voices``: the built-in voices."""
    from singer.voices import VOICES

    for voice in VOICES.values():
        print(f"{voice.name:10s} {voice.description}")
    return 0


def cmd_bench_voice(args: argparse.Namespace) -> int:
    """``livesinger bench voice``: JSON lines of chunk timings."""
    from singer.bench import run_voice_benchmarks

    try:
        counts = tuple(int(v) for v in args.voices.split(","))
    except ValueError:
        raise CliError(f"--voices wants comma-separated numbers, got {args.voices!r}") from None
    for row in run_voice_benchmarks(counts, args.seconds):
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
