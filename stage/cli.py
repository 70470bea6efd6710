"""The ``livesinger`` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from singer.contracts import SAMPLE_RATE_HZ
from stage.cli_types import (
    host_port,
    ice_server,
    listen_port,
    mocap_source,
    mqtt_url,
    publish_target,
)
from stage.commands import mix as mix_cli
from stage.commands import provenance as provenance_cli
from stage.commands import voices as voices_cli
from stage.follow import cli as duet_cli
from stage.soak import cli as soak_cli
from stage.timecode import cli as timecode_cli

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
                                   "mono WAV, marked and labelled as AI-generated "
                                   "(docs/provenance.md). Score time t lands at WAV time "
                                   "t + 1.5 s after the audible label (at t with "
                                   "--no-audible-label).")
    p.add_argument("score", help="score file, or the name of a song in the library")
    p.add_argument("-o", "--output", required=True, help="output WAV path")
    p.add_argument("--voice", default=None,
                   help=voices_cli.VOICE_HELP + " (default: the song's own, else soprano); "
                        "comma-separate to give each part its voice")
    p.add_argument("--voices", metavar="DIR", action="append", default=[],
                   help=voices_cli.VOICES_DIR_HELP)
    p.add_argument("--voice-steps", type=_step_count, default=None, metavar="N",
                   help=VOICE_STEPS_HELP)
    p.add_argument("--seed", type=int, default=0, help="random seed (jitter, noise)")
    p.add_argument("--lang", default="auto", choices=["auto", "zh", "en"],
                   help="lyrics language (default: detect)")
    p.add_argument("--report", metavar="PNG", default=None,
                   help="also draw a report: piano roll, lyrics, measured f0, loudness")
    p.add_argument("--songs", metavar="DIR", default=None,
                   help="song library folder for song names (default: $LIVESINGER_SONGS, "
                        "then the demo songs)")
    p.add_argument("--encoding", metavar="NAME", default=None,
                   help="charset of the score's lyrics, e.g. gbk, shift_jis, big5 (default: "
                        "declared by the file, else guessed from all its text)")
    p.add_argument("--no-watermark", action="store_true",
                   help="leave out the inaudible watermark (the AIGC label is always written)")
    mix_cli.add_render_options(p)
    provenance_cli.add_render_options(p)
    p.set_defaults(run=cmd_render)

    p = sub.add_parser("demo", help="sing the demo song live through the engine",
                       description="Start the engine on embedded defaults and sing the demo "
                                   "song in real time.")
    p.add_argument("--song", default="jasmine",
                   help="demo song name or score path (default: jasmine)")
    p.add_argument("--voice", default=None,
                   help=voices_cli.VOICE_HELP + " (default: the song's own)")
    p.add_argument("--voices", metavar="DIR", action="append", default=[],
                   help=voices_cli.VOICES_DIR_HELP)
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--headless", action="store_true",
                   help="no sound card, no browser window; use with --record")
    p.add_argument("--record", metavar="DIR", default=None,
                   help="write what was streamed to DIR/audio.wav")
    p.add_argument("--device", default=None, help="torch device (default: cuda if present)")
    p.add_argument("--http-port", type=listen_port, default=8080,
                   help="stage page port (default 8080, or any free one)")
    p.add_argument("--avatar", default=None, help="a .vrm avatar (default: the built-in one)")
    p.add_argument("--no-open", action="store_true", help="do not open the stage page")
    provenance_cli.add_show_options(p)
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("serve", help="run the engine for a live show (OSC, MQTT)",
                       description="Run the engine until SIGINT/SIGTERM, controlled live over "
                                   "OSC (UDP and TCP/SLIP on one port; see docs/osc.md) and "
                                   "optionally MQTT (docs/mqtt.md).")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default loopback; others need --token)")
    p.add_argument("--osc-port", type=listen_port, default=9000,
                   help="OSC port (default 9000; 0: any free port)")
    p.add_argument("--http-port", type=listen_port, default=8080,
                   help="stage page, signaling and WHEP port (default 8080)")
    p.add_argument("--avatar", default=None, help="a .vrm avatar (default: the built-in one)")
    p.add_argument("--mqtt", metavar="URL", type=mqtt_url, default=None,
                   help="connect to an MQTT broker: mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT], "
                        "e.g. mqtt://127.0.0.1:1883 (docs/mqtt.md: TLS and broker ACLs)")
    p.add_argument("--show", default="default", help="show name in MQTT topics")
    p.add_argument("--token", default=None,
                   help="shared secret remote controllers must present (see docs/osc.md); "
                        "on the web it is the control token (docs/web.md)")
    p.add_argument("--viewer-token", default=None,
                   help="a second secret that may only watch: the stage page and WHEP, not "
                        "cues (docs/web.md); without it viewers need --token")
    p.add_argument("--song", default=None, help="song to load at start (path or name)")
    p.add_argument("--cues", metavar="FILE", default=None, help="cue list (YAML or JSON)")
    p.add_argument("--songs", metavar="DIR", default=None,
                   help="song library folder: names are looked up there, and remote "
                        "song/load cues may load only its songs (default: $LIVESINGER_SONGS, "
                        "then the demo songs)")
    p.add_argument("--max-singers", type=int, default=8,
                   help="singers the show may hold: the lead, song parts and singers cues "
                        "name (default 8)")
    p.add_argument("--voice", default="soprano",
                   help="voice of the lead singer: " + voices_cli.VOICE_HELP)
    p.add_argument("--voices", metavar="DIR", action="append", default=[],
                   help=voices_cli.VOICES_DIR_HELP)
    p.add_argument("--voice-steps", type=_step_count, default=None, metavar="N",
                   help=VOICE_STEPS_HELP)
    p.add_argument("--record", metavar="DIR", default=None,
                   help="write what was streamed to DIR/audio.wav")
    p.add_argument("--headless", action="store_true", help="no sound card")
    p.add_argument("--chunk-ms", type=float, default=5.0,
                   help="audio chunk in ms (default 5: a live note sounds within one)")
    p.add_argument("--lookahead", type=int, default=4,
                   help="chunks rendered ahead of playout (default 4: 20 ms at 5 ms chunks; "
                        "a live edit re-renders them, so it adds no latency)")
    p.add_argument("--realtime", action="store_true",
                   help="schedule the synthesis thread SCHED_FIFO, as audio servers do, and "
                        "the engine's other threads at nice -10 (needs root or CAP_SYS_NICE; "
                        "for an engine with the machine to itself)")
    p.add_argument("--synthesis", choices=("process", "thread"), default="process",
                   help="render in a process of its own, off the network loop's GIL "
                        "(default), or in a thread of the engine (docs/synthesis.md)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if present)")
    p.add_argument("--mocap", metavar="SOURCE", type=mocap_source, default=None,
                   help="drive the avatar from camera:N, a video file, an image folder, "
                        "webrtc (the performer's browser at /perform) or vmc[:PORT] (VMC in, "
                        "default port 39540) (docs/mocap.md)")
    p.add_argument("--vmc-out", metavar="HOST:PORT", type=host_port, default=None,
                   help="also send the pose as VMC (docs/vmc.md), e.g. 127.0.0.1:39539")
    p.add_argument("--ice-server", metavar="URL", type=ice_server, action="append",
                   default=[],
                   help="a STUN or TURN server for the WebRTC peers: stun:HOST[:PORT] or "
                        "turn[s]:USER:PASSWORD@HOST[:PORT][?transport=udp|tcp]; repeatable "
                        "(one of each kind). Default: none, so nothing is asked of a public "
                        "STUN server; loopback and LAN viewers need none")
    p.add_argument("--publish", metavar="TARGET", type=publish_target, action="append",
                   default=[],
                   help="also publish the show (audio + pose) into a Janus VideoRoom: "
                        "janus:http://HOST:PORT/janus?room=N[&secret=S]; repeatable; Janus "
                        "then serves the viewers and fans out to edges (docs/janus.md)")
    provenance_cli.add_show_options(p)
    duet_cli.add_serve_options(p)
    mix_cli.add_serve_options(p)
    timecode_cli.add_serve_options(p)
    p.set_defaults(run=cmd_serve)

    p = sub.add_parser("mocap", help="motion capture alone: camera/video/images -> VMC",
                       description="Track a performer with mediapipe (pose + face), retarget "
                                   "onto the VRM humanoid and send VMC; see docs/mocap.md.")
    p.add_argument("--source", required=True, type=mocap_source,
                   help="camera:N, a video file, a folder of images, or vmc[:PORT] (VMC in "
                        "from another capture app, default port 39540)")
    p.add_argument("--vmc-out", metavar="HOST:PORT", type=host_port, default=None,
                   help="send VMC here (a VMC receiver listens on 39539)")
    p.add_argument("--preview", metavar="OUT.mp4", default=None,
                   help="write what the tracker saw (skeleton and face points) to a video")
    p.add_argument("--hands", action="store_true", help="track hands and fingers too")
    p.add_argument("--no-pace", action="store_true",
                   help="process files as fast as possible instead of at their frame rate")
    p.add_argument("--seconds", type=float, default=None,
                   help="stop after this many seconds (default: when the source ends)")
    p.set_defaults(run=cmd_mocap)

    p = sub.add_parser("songs", help="the song library (docs/songs.md)")
    songs = p.add_subparsers(title="actions", metavar="ACTION")
    b = songs.add_parser("list", help="list the songs with title, language, tempo, length",
                         description="List the songs of the library folder (--songs, else "
                                     "$LIVESINGER_SONGS, else the demo songs); files that "
                                     "cannot be read are listed with their error.")
    b.add_argument("--songs", metavar="DIR", default=None, help="songs folder")
    b.add_argument("--json", action="store_true", help="one JSON object per song")
    b.set_defaults(run=cmd_songs_list)

    p = sub.add_parser("avatar", help="build or check a VRM avatar",
                       description="Build the default avatar (VRM 1.0, from code) or check "
                       "that a .vrm file can be used with --avatar.")
    avatar = p.add_subparsers(title="actions", metavar="ACTION")
    a = avatar.add_parser("build", help="write the default avatar as a VRM 1.0 file")
    a.add_argument("-o", "--output", required=True, help="output .vrm path")
    a.set_defaults(run=cmd_avatar_build)
    a = avatar.add_parser("check", help="say what a .vrm holds, or what is wrong with it")
    a.add_argument("path", help="a .vrm file")
    a.add_argument("--json", action="store_true", help="print the summary as JSON")
    a.set_defaults(run=cmd_avatar_check)

    p = sub.add_parser("bench", help="run a benchmark and print JSON lines")
    bench = p.add_subparsers(title="benchmarks", metavar="WHAT")
    b = bench.add_parser("voice", help="per-chunk compute time for 1, 8, 32 voices")
    b.add_argument("--json", action="store_true", help="one JSON object per line (default)")
    b.add_argument("--seconds", type=float, default=5.0, help="audio seconds per run")
    b.add_argument("--voices", default="1,8,32", help="comma-separated voice counts")
    b.add_argument("--backends", default="builtin",
                   help="comma-separated backends to measure: builtin, utau, diffsinger "
                        "(the last two on stand-in banks; default builtin)")
    b.add_argument("--steps", default="",
                   help="DiffSinger rows: comma-separated diffusion steps, one row each "
                        "(default 20, OpenUtau's)")
    b.add_argument("--depth", type=float, default=None,
                   help="DiffSinger rows: shallow-diffusion depth 0..1 (banks that have it)")
    b.add_argument("--live-notes", type=int, default=None,
                   help="DiffSinger rows: live notes played as the show plays them "
                        "(default 50)")
    b.set_defaults(run=cmd_bench_voice)
    b = bench.add_parser("osc", help="OSC note-on -> first sample latency, malformed floods")
    b.add_argument("--json", action="store_true", help="one JSON object per line (default)")
    b.add_argument("--notes", type=int, default=1000, help="notes to play (default 1000)")
    b.add_argument("--bad-per-s", type=float, default=2000.0,
                   help="malformed packets per second sent meanwhile")
    b.add_argument("--realtime", action="store_true",
                   help="run the engine as `serve --realtime` does (SCHED_FIFO synthesis)")
    b.add_argument("--synthesis", choices=("process", "thread"), default="process",
                   help="where the engine renders, as `serve --synthesis`")
    b.set_defaults(run=cmd_bench_osc)
    b = bench.add_parser("webrtc", help="cue -> audible in Chromium, sync, CPU per viewer")
    b.add_argument("--json", action="store_true", help="one JSON object per line (default)")
    b.add_argument("--viewers", default=None,
                   help="comma-separated viewer counts (one page, the rest WHEP listeners or, "
                        "with --janus, Janus subscribers; default 1,4,16,24, with --janus "
                        "1,2,4,8,16,32,64)")
    b.add_argument("--cues", type=int, default=8, help="cues per viewer count")
    b.add_argument("--smoke", action="store_true",
                   help="a short run for CI: 1 and 2 viewers, 3 cues each, 1 s CPU windows")
    b.add_argument("--janus", action="store_true",
                   help="watch through a local Janus (the Debian package) the engine publishes "
                        "into: engine and Janus CPU per viewer, cue -> audible through Janus")
    b.add_argument("--realtime", action="store_true",
                   help="run the engine as `serve --realtime` does (SCHED_FIFO synthesis, the "
                        "event loop at a raised nice value)")
    b.add_argument("--browser-idle", action="store_true",
                   help="run the measuring Chromium under SCHED_IDLE, below the engine (as when "
                        "the renderer has a machine of its own; on a small machine its software "
                        "GL otherwise takes CPU time the engine needs on time)")
    b.add_argument("--page", default="", metavar="QUERY",
                   help="stage page options, e.g. 'latency=interactive&buffer=peak' (the page "
                        "before issue 11's tuning)")
    b.add_argument("--rtp-frame-ms", type=int, choices=(10, 20), default=10,
                   help="Opus frame on the stage page's RTP track (default 10)")
    b.set_defaults(run=cmd_bench_webrtc)
    b = bench.add_parser("mocap", help="capture -> PoseFrame latency and fps vs bare mediapipe")
    b.add_argument("--json", action="store_true", help="one JSON object per line (default)")
    b.add_argument("--frames", type=int, default=300, help="frames to track (default 300)")
    b.add_argument("--hands", action="store_true", help="track hands too")
    b.set_defaults(run=cmd_bench_mocap)
    provenance_cli.add_bench(bench)
    duet_cli.add_bench(bench)
    mix_cli.add_bench(bench)
    provenance_cli.add_commands(sub)
    voices_cli.add_commands(sub)
    duet_cli.add_commands(sub)
    soak_cli.add_commands(sub)
    return parser


DEMO_VOICES = {"jasmine": "soprano", "twinkle": "tenor"}


def load_score_or_song(ref: str, language: str = "auto",  # type: ignore[no-untyped-def]
                       songs: str | None = None, encoding: str | None = None):
    """A score (MusicXML, MIDI, USTX, UST) from a path or a song name; ``CliError`` on failure.

    ``encoding`` names the charset of the score's text (checked first: an unknown name is an
    error even for a file that turns out to be ASCII)."""
    from singer.score import ScoreError
    from singer.scores.load import load_score
    from singer.text_encoding import EncodingError, check_encoding

    options = {}
    if encoding is not None:
        try:
            options["encoding"] = check_encoding(encoding)
        except EncodingError as err:
            raise CliError(f"--encoding: {err}") from None
    try:
        return load_score(ref, songs=songs, language=language, **options)
    except ScoreError as err:
        raise CliError(str(err)) from None


def _voices(arg: str | None, song: str, dirs: list[str] | None = None) -> list[str]:
    """The live show's voices: built-in names, banks as their folders (one line if not
    found)."""
    names = (arg or DEMO_VOICES.get(Path(song).stem, "soprano")).split(",")
    try:
        return [voices_cli.live_voice_name(n, dirs) for n in names]
    except voices_cli.VoiceRefError as err:
        raise CliError(str(err)) from None


def cmd_render(args: argparse.Namespace) -> int:
    """``livesinger render``: offline render with a progress bar."""
    import numpy as np
    import soundfile as sf
    from tqdm import tqdm

    from singer.render import build_ensemble, render_ensemble, render_ensemble_parts

    try:
        infos = voices_cli.resolve_refs(args.voice, DEMO_VOICES.get(Path(args.score).stem,
                                                                    "soprano"), args.voices)
    except voices_cli.VoiceRefError as err:
        raise CliError(str(err)) from None
    voices = [info.name for info in infos]
    score = load_score_or_song(args.score, args.lang, args.songs, args.encoding)
    for notice in score.notices:
        print(f"livesinger: notice: {notice}", file=sys.stderr)
    score_file = mix_cli.score_path(args.score, args.songs)
    try:  # a bad backing is said before the render, not after it
        program_mix = mix_cli.wants_program(args, score_file)
        mix_cli.check_chains(args, score)
    except ValueError as err:
        raise CliError(str(err)) from None
    banks = any(info.type != "builtin" for info in infos)
    # the singers named as a live show names them: the same noise, so the same samples
    ensemble = None if banks else build_ensemble(score, voices, seed=args.seed,
                                                 singers=mix_cli.live_singers(score))
    total = ensemble.end_sample if ensemble else score.end_sample
    with tqdm(total=round(total / SAMPLE_RATE_HZ, 1), unit="s", desc="rendering",
              disable=None, bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s audio") as bar:
        def progress(done: int, _total: int) -> None:
            bar.n = round(done / SAMPLE_RATE_HZ, 1)
            bar.refresh()
        parts = None
        if ensemble is not None and program_mix:  # each singer apart, for their chains
            parts = render_ensemble_parts(ensemble, progress=progress)
            audio = parts.sum(axis=0, dtype=np.float32)
        elif ensemble is not None:
            audio = render_ensemble(ensemble, progress=progress)
        else:
            try:
                audio = voices_cli.render_with_backends(score, infos, args.seed, progress,
                                                        steps=args.voice_steps)
            except voices_cli.VoiceRefError as err:
                raise CliError(str(err)) from None
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    song_audio = audio
    program = None
    if program_mix:
        try:
            program = mix_cli.render_program_mix(
                args, score, mix_cli.singer_voices(score, parts, audio), score_file)
        except ValueError as err:
            raise CliError(str(err)) from None
        audio = program.program
    unmarked = len(audio)
    audio, label = provenance_cli.mark_render(audio, watermark=not args.no_watermark,
                                              producer=args.producer,
                                              audible_label=not args.no_audible_label)
    sf.write(out, audio, SAMPLE_RATE_HZ, subtype="FLOAT")
    provenance_cli.label_file(out, label)
    if program is not None and args.stems:
        for path in mix_cli.write_stems(Path(args.stems), program, len(audio) - unmarked):
            print(f"wrote {path}")
    print(f"wrote {out} ({len(audio) / SAMPLE_RATE_HZ:.2f} s, {', '.join(voices)})")
    if args.report:
        from singer.report import write_report

        def say(step: str) -> None:
            print(f"livesinger: report: {step}", file=sys.stderr, flush=True)

        result = write_report(score, song_audio, args.report, subtitle=", ".join(voices),
                              progress=say)
        print(f"wrote {args.report} (median pitch error {result.median_abs_cents:.1f} cents)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``livesinger demo``: the demo song, live through the engine, on the stage page."""
    from stage.serve import ServeOptions

    voices = _voices(args.voice, args.song, args.voices)
    load_score_or_song(args.song)  # a clear error now rather than inside the show
    opts = ServeOptions(
        osc_port=_free_or_any(9000), http_port=_free_or_any(args.http_port),
        headless=args.headless, open_page=not args.no_open,
        record=Path(args.record) if args.record else None, voice=voices[0], song=args.song,
        voices_dirs=tuple(Path(d) for d in args.voices),
        play_song=True, device=args.device, seed=args.seed,
        avatar=Path(args.avatar) if args.avatar else None,
        **provenance_cli.show_options(args))
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
    from streams.listen import ListenError

    try:
        return asyncio.run(serve(opts))  # type: ignore[arg-type]
    except (ServeError, CueListError, ScoreError, ListenError) as err:
        raise CliError(str(err)) from None
    except OSError as err:  # a port in use, mostly
        raise CliError(f"cannot start: {err}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    """``livesinger serve``: run the show until a signal."""
    from stage.serve import REALTIME_PRIORITY, ServeOptions

    voice = _voices(args.voice, "", args.voices)[0]
    opts = ServeOptions(
        host=args.host, osc_port=args.osc_port, http_port=args.http_port, mqtt=args.mqtt,
        show=args.show, token=args.token, viewer_token=args.viewer_token,
        record=Path(args.record) if args.record else None,
        headless=args.headless, voice=voice, voices_dirs=tuple(Path(d) for d in args.voices),
        voice_steps=args.voice_steps, song=args.song,
        cues=Path(args.cues) if args.cues else None,
        songs=Path(args.songs) if args.songs else None, max_singers=args.max_singers,
        avatar=Path(args.avatar) if args.avatar else None, chunk_ms=args.chunk_ms,
        lookahead_chunks=args.lookahead, device=args.device, mocap=args.mocap,
        vmc_out=args.vmc_out, realtime_priority=REALTIME_PRIORITY if args.realtime else None,
        synthesis=args.synthesis, ice_servers=tuple(args.ice_server), publish=tuple(args.publish),
        **provenance_cli.show_options(args), **duet_cli.serve_options(args),
        **mix_cli.serve_options(args),  # type: ignore[arg-type]
        **timecode_cli.serve_options(args))  # type: ignore[arg-type]
    _run_show(opts)
    return 0


def cmd_mocap(args: argparse.Namespace) -> int:
    """``livesinger mocap``: capture alone until the source ends or Ctrl-C."""
    from mocap.capture import CaptureOptions
    from mocap.sources import SourceError
    from mocap.tracker import TrackerOptions
    from stage.mocap import parse_host_port, run_mocap

    try:
        vmc = parse_host_port(args.vmc_out, 39539) if args.vmc_out else None
        summary = asyncio.run(run_mocap(
            args.source, vmc, Path(args.preview) if args.preview else None,
            CaptureOptions(TrackerOptions(hands=args.hands), pace=not args.no_pace),
            args.seconds))
    except (SourceError, ValueError) as err:
        raise CliError(str(err)) from None
    except OSError as err:  # VMC in: the port is taken or the host is not ours
        raise CliError(f"{args.source}: cannot listen: {err}") from None
    print(json.dumps(summary), flush=True)
    return 0


def cmd_bench_mocap(args: argparse.Namespace) -> int:
    """``livesinger bench mocap``: tracking latency next to bare mediapipe."""
    from stage.bench.mocap import bench_mocap

    print(json.dumps(bench_mocap(args.frames, hands=args.hands)), flush=True)
    return 0


def cmd_bench_osc(args: argparse.Namespace) -> int:
    """``livesinger bench osc``: live-control latency."""
    from stage.bench.live import bench_osc

    row = asyncio.run(bench_osc(notes=args.notes, bad_per_s=args.bad_per_s,
                                realtime=args.realtime, synthesis=args.synthesis))
    print(json.dumps(row), flush=True)
    return 0


def cmd_bench_webrtc(args: argparse.Namespace) -> int:
    """``livesinger bench webrtc [--janus]``: a stage page in Chromium plus WHEP listeners
    (or, through Janus, aiortc subscribers)."""
    from stage.bench.web import bench_webrtc

    smoke = args.smoke
    viewers = args.viewers or ("1,2" if smoke else "1,2,4,8,16,32,64" if args.janus
                               else "1,4,16,24")
    cues = 3 if smoke else args.cues
    cpu_window_s = 1.0 if smoke else 3.0
    try:
        counts = tuple(int(v) for v in viewers.split(","))
    except ValueError:
        raise CliError(f"--viewers wants comma-separated numbers, got {viewers!r}") from None
    if not counts or min(counts) < 1:
        raise CliError(f"--viewers wants counts of 1 or more, got {viewers!r}")
    def on_row(row: dict[str, object]) -> None:
        print(json.dumps(row), flush=True)
    if args.janus:
        from stage.bench.janus import bench_webrtc_janus
        from streams.janus.local import janus_binary

        if janus_binary() is None:
            raise CliError("--janus: janus is not installed (Debian package 'janus')")
        asyncio.run(bench_webrtc_janus(counts, cues=cues, cpu_window_s=cpu_window_s,
                                       on_row=on_row, browser_idle=args.browser_idle))
        return 0
    if args.page and (len(args.page) > 200 or any(c in args.page for c in " #?/")):
        raise CliError(f"--page wants a query like 'latency=0&buffer=peak', got {args.page!r}")
    asyncio.run(bench_webrtc(counts, cues=cues, cpu_window_s=cpu_window_s, on_row=on_row,
                             realtime=args.realtime, page_query=args.page,
                             rtp_frame_ms=args.rtp_frame_ms, browser_idle=args.browser_idle))
    return 0


def cmd_songs_list(args: argparse.Namespace) -> int:
    """``livesinger songs list``: the library's songs and their metadata (or errors)."""
    from singer.library import SongLibrary, default_folder
    from singer.score import ScoreError

    try:
        library = SongLibrary(args.songs or default_folder())
    except ScoreError as err:
        raise CliError(str(err)) from None
    infos = library.songs()
    if args.json:
        for info in infos:
            print(json.dumps(info.to_json(), ensure_ascii=False), flush=True)
        return 0
    print(f"songs in {library.folder}:")
    for info in infos:
        if info.ok:
            tempo = "/".join(f"{b:g}" for b in info.tempo_bpm)
            print(f"  {info.name:16s} {info.title} [{info.language}, {tempo} bpm, "
                  f"{info.length_s:.1f} s, {info.notes} notes, sung by "
                  f"{', '.join(info.singers)}]")
        else:
            print(f"  {info.name:16s} error: {info.error}")
    if not infos:
        print("  (no score files)")
    return 0


def cmd_avatar_build(args: argparse.Namespace) -> int:
    """``livesinger avatar build``: write the default avatar."""
    from rigs.avatar import build_default_avatar, read_vrm

    path = build_default_avatar(Path(args.output))
    summary = read_vrm(path)
    print(f"{path}: {summary.name}, VRM {summary.spec_version}, {len(summary.bones)} bones, "
          f"expressions {' '.join(summary.expressions)}")
    return 0


def cmd_avatar_check(args: argparse.Namespace) -> int:
    """``livesinger avatar check``: what a VRM holds, or a clear error."""
    from rigs.avatar import AvatarError, read_vrm

    try:
        summary = read_vrm(Path(args.path))
    except AvatarError as err:
        raise CliError(str(err)) from None
    if args.json:
        print(json.dumps({"name": summary.name, "vrm": summary.spec_version,
                          "bones": sorted(summary.bones), "expressions": summary.expressions}))
    else:
        print(f"{args.path}: {summary.name or '(no name)'}, VRM {summary.spec_version}")
        print(f"  bones ({len(summary.bones)}): {' '.join(summary.bones)}")
        print(f"  expressions ({len(summary.expressions)}): {' '.join(summary.expressions)}")
    return 0


VOICE_STEPS_HELP = ("diffusion steps of a DiffSinger voice, 1..1000 (default 20, OpenUtau's; "
                    "fewer render faster: see docs/voices.md for the steps a CPU needs)")


def _step_count(text: str) -> int:
    """``--voice-steps N``: a whole number from 1 to 1000."""
    if not text.strip().isdigit() or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a step count from 1 to 1000")
    return int(text)


def _steps_list(text: str) -> tuple[int, ...]:
    """``--steps 20,10,5`` as numbers (each 1..1000; ``CliError`` naming a bad one)."""
    out = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        if not item.isdigit() or not 1 <= int(item) <= 1000:
            raise CliError(f"--steps: {item!r} is not a step count from 1 to 1000")
        out.append(int(item))
    return tuple(out)


def cmd_bench_voice(args: argparse.Namespace) -> int:
    """``livesinger bench voice``: JSON lines of chunk timings."""
    from singer.bench import run_voice_benchmarks

    try:
        counts = tuple(int(v) for v in args.voices.split(","))
    except ValueError:
        raise CliError(f"--voices wants comma-separated numbers, got {args.voices!r}") from None
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - {"builtin", "utau", "diffsinger"})
    if unknown:
        raise CliError(f"--backends: unknown {', '.join(unknown)} (builtin, utau, diffsinger)")
    if "builtin" in backends:
        for row in run_voice_benchmarks(counts, args.seconds):
            print(json.dumps(row), flush=True)
    if set(backends) - {"builtin"}:
        from singer.backends.bench import run_backend_benchmarks

        steps = _steps_list(args.steps)
        if args.depth is not None and not 0.0 < args.depth <= 1.0:
            raise CliError(f"--depth {args.depth:g}: want a number in (0, 1]")
        if args.live_notes is not None and args.live_notes < 0:
            raise CliError(f"--live-notes {args.live_notes}: want 0 or more")
        for row in run_backend_benchmarks([b for b in backends if b != "builtin"],
                                          max(counts), args.seconds, steps=steps,
                                          depth=args.depth, live_notes=args.live_notes):
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    # Run the imported module's main: subcommand modules raise ``stage.cli.CliError``, which
    # this ``__main__`` copy's own class would not catch.
    from stage.cli import main as _main

    sys.exit(_main())
