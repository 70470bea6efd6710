"""Running a show: the engine with its pacer, inputs (OSC, MQTT, web) and outputs (viewers,
recorder, sound card), until a signal — or until the song ends, for the demo."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
import tempfile
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rigs.pose import PoseFrame
from singer.backends.preparer import BankPreparer
from singer.contracts import SAMPLE_RATE_HZ
from singer.mix.backing_spec import BackingError
from singer.provenance.aigc import DEFAULT_PRODUCER, AigcLabel
from singer.provenance.consent import USAGES, ConsentError, voice_record
from singer.provenance.live import MarkedFanout
from singer.synth import HarmonicNoiseSynth
from stage.console import ShowHealth, catalog
from stage.cuelist import CueList, load_cue_list
from stage.director import LEAD, MAX_SINGERS, Director
from stage.pacer import AudioPacer, PacerConfig
from stage.posing import run_pose_stream
from stage.program import ProgramStage, WithProgram
from stage.realtime.blas import limit_blas_threads
from stage.realtime.collector import Collector
from stage.realtime.priority import LoopPriority, raise_loop_priority
from stage.show_provenance import ShowProvenance, WithProvenance
from stage.song_loader import local_loader
from stage.supervise import Supervisor
from stage.timecode.show import WithTimecode
from streams.auth import is_loopback
from streams.cue import CueError, CueHandler, make_cue
from streams.devices.sound_device import SoundDeviceSink, SoundDeviceUnavailable
from streams.listen import ListenError
from streams.recorder import AudioRecorder, PoseRecorder
from streams.webrtc.ice import IceServerError, ice_configuration

if TYPE_CHECKING:
    from stage.follow.desk import FollowDesk
    from streams.janus.publisher import JanusPublisher
    from streams.osc import OscServer
    from streams.timecode.smpte import Rate, Timecode
    from streams.vmc import VmcSender
    from streams.web import WebServer
    from streams.webrtc.opus_encoder import ShowOpusEncoder

log = logging.getLogger(__name__)

WEB_ROOT = Path(__file__).parent / "web"


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """Everything a show can be told (see ``livesinger serve --help``).

    ``osc_port``/``http_port`` ``None`` leave that surface off; 0 picks a free port.
    ``play_song`` plays the loaded song at start and stops when it ends (the demo).
    """

    host: str = "127.0.0.1"
    osc_port: int | None = 9000
    http_port: int | None = 8080
    mqtt: str | None = None
    show: str = "default"
    token: str | None = None
    viewer_token: str | None = None
    """May watch the stage page and WHEP but not control (docs/web.md); needs ``token``."""
    record: Path | None = None
    headless: bool = False
    open_page: bool = False
    voice: str = "soprano"
    """A built-in voice name, a bank's name in ``voices_dirs`` or a bank folder."""
    voices_dirs: tuple[Path, ...] = ()
    """Voices folders searched for bank names (``--voices DIR``), before the defaults."""
    song: str | None = None
    play_song: bool = False
    cues: Path | None = None
    songs: Path | None = None
    """Song library folder (``--songs``): song names are looked up there, and remote
    ``song.load`` cues may load only its songs (default: the song library's folders)."""
    max_singers: int = MAX_SINGERS
    """Singers the show may hold (the lead, song parts, singers cues name)."""
    avatar: Path | None = None
    chunk_ms: float = 5.0
    lookahead_chunks: int = 4
    realtime_priority: int | None = None
    """Ask for ``SCHED_FIFO`` at this priority for the synthesis thread (``--realtime``; the
    engine's other threads, the event loop's among them, then run at nice −10:
    ``stage.realtime.priority``): for an engine with the machine to itself; beside a browser
    drawing WebGL in software it can starve the page (measured)."""
    synthesis: str = "process"
    """Where chunks are rendered (``--synthesis``): ``process``, a process of its own, off
    this process's GIL (docs/synthesis.md), or ``thread``, a thread of this process."""
    device: str | None = None
    seed: int = 0
    mocap: str | None = None
    """What drives the avatar: camera:N, a video file, an image folder, ``webrtc`` (the
    performer's browser camera via ``/perform``) or ``vmc[:[HOST:]PORT]`` (VMC in)."""
    vmc_out: str | None = None
    """HOST:PORT to send the pose to as VMC (docs/vmc.md)."""
    singer_mouth_wins: bool = True
    """With ``mocap``: while the singer sings, its lip-sync beats the camera's mouth."""
    ice_servers: tuple[str, ...] = ()
    """STUN/TURN URLs for the WebRTC peers (``--ice-server``, ``streams.webrtc.ice``); none by
    default, so no public STUN server is contacted."""
    publish: tuple[str, ...] = ()
    """Janus VideoRooms to publish the show into (``--publish janus:URL?room=N``,
    docs/janus.md)."""
    producer: str | None = None
    """ContentProducer of the show's AIGC label (``--producer``; default ``livesinger``)."""
    audible_label: str = "start"
    """``start``: the audible AI label (rhythm cue) at show sample 0; ``off``: none, logged as
    the show's explicit choice (docs/provenance.md)."""
    follow: str | None = None
    """Follow mode (``--follow PART``): the performer sings this part of ``song``; the idol
    sings the others in time with them (docs/follow.md)."""
    performer_audio: str | None = None
    """The performer's voice for ``follow``: ``mic[:DEVICE]`` or a sound file."""
    performer_midi: str | None = None
    """The performer's MIDI for ``follow``: a MIDI input port name or a ``.mid`` file."""
    voice_steps: int | None = None
    """Diffusion steps of DiffSinger voices (``--voice-steps``; ``None``: 20, OpenUtau's)."""
    on_silence: str = "hold"
    """Follow mode, when the performer falls silent: ``hold`` or ``carry`` on."""
    chain: str = "dry"
    """The vocal chain preset of every singer in the program mix (``--chain``, docs/mix.md)."""
    singer_chains: tuple[str, ...] = ()
    """``SINGER=PRESET``: that singer's own chain (``--chain SINGER=PRESET``)."""
    card_mix: str = "program"
    """What the sound card plays: ``program`` or ``voice`` (the voice alone, e.g. in-ears;
    ``--card-mix``)."""
    backing: tuple[Path, ...] = ()
    """Backing files mixed under every song (``--backing``); none: each song's own."""
    backing_offset: float = 0.0
    """Score time (s) at which ``backing`` time 0 falls (``--backing-offset``)."""
    usage: str = "personal"
    """What the show is for (``--usage``): personal, commercial or corporation; a voice or
    avatar whose record does not allow it is refused."""
    chase: str | None = None
    """Timecode the song's transport follows (``--chase mtc:PORT|ltc:mic[:DEV]|ltc:FILE``,
    docs/timecode.md)."""
    mtc_out: str | None = None
    """MIDI port MTC is sent to, following the song position (``--mtc-out``)."""
    timecode_rate: str = "25"
    """Rate of LTC in and MTC out (``--timecode-rate``; MTC in carries its own)."""
    timecode_start: str = "00:00:00:00"
    """Timecode of the song's beat 0 (``--timecode-start``)."""


SYNTHESIS_MODES = ("thread", "process")
"""Where a show renders its chunks (``ServeOptions.synthesis``)."""


class ServeError(ValueError):
    """Options that cannot start a show (bad host without token, bad cue list...)."""


def check_options(opts: ServeOptions) -> None:
    """Refuse options that would expose the engine without a token, or make no sense."""
    if not is_loopback(opts.host) and not opts.token:
        raise ServeError(f"--host {opts.host} is not loopback: remote control needs --token")
    if opts.viewer_token is not None and (not opts.token or opts.viewer_token == opts.token):
        raise ServeError("--viewer-token needs a different --token (the control token)")
    chunk = opts.chunk_ms * SAMPLE_RATE_HZ / 1000
    if chunk != int(chunk) or not 1 <= opts.chunk_ms <= 40:
        raise ServeError(f"--chunk-ms {opts.chunk_ms}: want 1..40 ms in whole samples")
    if opts.synthesis not in SYNTHESIS_MODES:
        raise ServeError(f"--synthesis {opts.synthesis}: want one of "
                         f"{', '.join(SYNTHESIS_MODES)}")
    if not 1 <= opts.lookahead_chunks <= 16:
        raise ServeError(f"--lookahead {opts.lookahead_chunks}: want 1..16 chunks")
    if opts.songs is not None and not opts.songs.is_dir():
        raise ServeError(f"--songs {opts.songs}: not a folder")
    if not 1 <= opts.max_singers <= 64:
        raise ServeError(f"--max-singers {opts.max_singers}: want 1..64")
    for option, port in (("--osc-port", opts.osc_port), ("--http-port", opts.http_port)):
        if port is not None and not 0 <= port <= 65535:
            raise ServeError(f"{option} {port}: want a port 0..65535 (0: any free port)")
    try:
        ice_configuration(opts.ice_servers)
    except IceServerError as err:
        raise ServeError(f"--ice-server {err}") from None
    for target in opts.publish:
        from streams.janus.target import JanusTargetError, parse_target

        try:
            parse_target(target)
        except JanusTargetError as err:
            raise ServeError(f"--publish {err}") from None
    if opts.audible_label not in ("start", "off"):
        raise ServeError(f"--audible-label {opts.audible_label}: want start or off")
    if opts.follow is not None or opts.performer_audio or opts.performer_midi:
        if not opts.follow:
            raise ServeError("--performer-audio/--performer-midi need --follow PART")
        if not opts.song:
            raise ServeError(f"--follow {opts.follow} needs --song (the duet score)")
        if opts.performer_audio and opts.performer_midi:
            raise ServeError(f"--follow {opts.follow}: name one input, --performer-audio or "
                             "--performer-midi, not both (none: note events over OSC/MQTT)")
        if opts.performer_audio == "page" and opts.mocap != "webrtc":
            raise ServeError("--performer-audio page: the /perform page needs --mocap webrtc")
        if opts.on_silence not in ("hold", "carry"):
            raise ServeError(f"--on-silence {opts.on_silence}: want hold or carry")
    from singer.mix.chain import PRESETS, chain_plan
    from singer.mix.effects import ParamError

    if opts.chain not in PRESETS:
        raise ServeError(f"--chain {opts.chain}: want one of {', '.join(sorted(PRESETS))}")
    try:
        chain_plan(list(opts.singer_chains))
    except ParamError as err:
        raise ServeError(f"--chain: {err}") from None
    if opts.card_mix not in MIXES:
        raise ServeError(f"--card-mix {opts.card_mix}: want one of {', '.join(MIXES)}")
    if opts.voice_steps is not None and not 1 <= opts.voice_steps <= 1000:
        raise ServeError(f"--voice-steps {opts.voice_steps}: want 1 to 1000")
    if opts.usage not in USAGES:
        raise ServeError(f"--usage {opts.usage}: want one of {', '.join(USAGES)}")
    _timecode_settings(opts)
    if opts.avatar is not None:
        from rigs.avatar import AvatarError
        from rigs.consent import read_avatar_licence

        try:
            read_avatar_licence(opts.avatar).check(opts.usage)
        except (AvatarError, ConsentError) as err:
            raise ServeError(f"--avatar: {err}") from None
    try:
        voice_record(opts.voice).check(opts.usage)
    except ConsentError as err:
        raise ServeError(f"--voice: {err}") from None


def score_loader(ref: str):  # type: ignore[no-untyped-def]
    """Load a score by path or library name (raises ``ScoreError`` with a clear message)."""
    from singer.scores.load import load_score

    return load_score(ref)


REALTIME_SWITCH_INTERVAL_S = 0.0005


def realtime_threads() -> None:
    """Set torch up for the live show: one intra-op thread.

    Per-chunk work is many tiny ops: one thread is fastest, and torch's spinning worker
    threads would otherwise fight the network, the tracker and a local browser for the cores
    (measured: a 10 ms chunk took 35 ms beside headless Chromium with two threads).
    """
    import torch

    torch.set_num_threads(1)
    limit_blas_threads(1)  # numpy's OpenBLAS worker busy-waits beside the loop otherwise
    # The synthesis thread shares the GIL with the network: hand it over more often than
    # the default 5 ms so a chunk's many small steps are not each held up a whole interval.
    sys.setswitchinterval(REALTIME_SWITCH_INTERVAL_S)


REALTIME_PRIORITY = 20
"""``SCHED_FIFO`` priority ``--realtime`` asks for the synthesis thread (audio servers use
10–95); it sleeps between chunks, so it holds a core only while a chunk renders."""

GC_THRESHOLDS = (10_000, 50, 1000)
"""Young collections stay frequent and short; full collections become rare."""


def realtime_gc() -> None:
    """Keep Python's garbage collector from pausing the show.

    Everything alive once the show is set up (torch, models, the score) is frozen out of
    collection, and full collections are made rare: a full pass over a big heap holds the
    GIL for a hundred milliseconds or more, which stalls synthesis (measured as bursts of
    xruns while viewers joined). What is made after this and ends up in reference cycles (an
    ended viewer's peer) is freed by ``stage.realtime.collector.Collector``'s scheduled full passes.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def default_avatar() -> Path:
    """The default avatar, built from code once per version of that code (a temp-dir cache)."""
    import hashlib

    import rigs.avatar
    import rigs.avatar_face
    import rigs.mesh
    import rigs.skeleton
    from rigs.avatar import build_default_avatar

    code = hashlib.sha256()
    for module in (rigs.avatar, rigs.avatar_face, rigs.mesh, rigs.skeleton):
        code.update(Path(str(module.__file__)).read_bytes())
    path = Path(tempfile.gettempdir()) / "livesinger" / f"default-{code.hexdigest()[:12]}.vrm"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        build_default_avatar(path)
    return path


async def serve(opts: ServeOptions, ready: Callable[[dict[str, object]], None] | None = None,
                handles: dict[str, object] | None = None) -> dict[str, object]:
    """Run the show until SIGINT/SIGTERM, cancellation, or (``play_song``) the song's end.

    ``ready`` is called with the bound ports once every surface listens; ``handles`` (for
    benchmarks and tests) receives the running parts by name. Returns a summary.
    """
    check_options(opts)
    realtime_threads()
    cue_list = load_cue_list(opts.cues) if opts.cues else CueList([])
    synth = HarmonicNoiseSynth(device=opts.device)
    loader = local_loader(opts.songs)
    try:
        director = Director(synth, loader, voice=opts.voice, seed=opts.seed,
                            cue_list=cue_list, song_folders=[opts.songs] if opts.songs else None,
                            max_singers=opts.max_singers, voices_dirs=opts.voices_dirs,
                            voice_steps=opts.voice_steps)
    except CueError as err:
        raise ServeError(f"--voice: {err}") from None
    if opts.synthesis == "thread":  # a bank is loaded and warmed before the clock runs
        try:
            await asyncio.to_thread(director.ensemble.warm_banks)
        except ValueError as err:
            raise ServeError(f"--voice: {err}") from None
    chunk = int(opts.chunk_ms * SAMPLE_RATE_HZ / 1000)
    config = PacerConfig(chunk, opts.lookahead_chunks, realtime_priority=opts.realtime_priority)
    pacer: AudioPacer
    if opts.synthesis == "process":
        from stage.synthesis import ProcessPacer

        pacer = ProcessPacer(director.ensemble, config=config, device=opts.device,
                             planes=director.max_singers)  # each singer's voice apart
    else:
        pacer = AudioPacer(director.render_parts, config=config)
    director.attach(pacer)
    provenance = _provenance(opts, director)
    # Every output gets the same marked chunk: the watermark (and the audible label) are
    # applied once, here, before the fan-out to the recorder, viewers, sound card, Janus...
    outputs = MarkedFanout(provenance.label, audible_label=opts.audible_label == "start")
    director.transport_listeners.append(outputs.transport)  # the cue again at each song start
    # ...and what is marked is the program: the voice through its chain plus the backing.
    program = _program_stage(opts, outputs, director)
    pacer.add_sink(program)
    until = None
    if opts.song:
        score = await asyncio.to_thread(loader, opts.song)
        try:
            director.install(score, 0)
            await program.load_song(opts.song, score, 0)
        except CueError as err:
            raise ServeError(f"--song {opts.song}: {err}") from None
        except BackingError as err:
            raise ServeError(f"--song {opts.song}: {err}") from None
        if opts.play_song:
            director.apply_now(make_cue("song.play", {"beat": 0.0}), 0)
            until = score.end_sample + program.latency_samples \
                + int(program.tail_s * SAMPLE_RATE_HZ)  # the chains' tails are heard out
    follow = _follow(opts, director)

    feed, vmc, performer = _mocap_parts(opts, pacer)
    _page_microphone(follow, performer, pacer)
    hub = None
    if opts.http_port is not None:
        from streams.webrtc.viewers import ViewerHub

        hub = ViewerHub(ice_servers=opts.ice_servers)
    # Janus publishers send the viewers' own 20 ms Opus frames (encoded once for all of them)
    publishers = _publishers(opts, outputs, hub.rtp_encoder if hub else None)
    control: CueHandler = WithProvenance(director, provenance)  # "aigc" in /status and MQTT
    control = _with_follow(control, follow)  # follow.start/stop, perform.note_on (docs/follow.md)
    control = WithProgram(control, program, director)  # backing.gain/mute, a song's backing
    # tempo cues and the follower may not re-time the voice where the backing locks it
    director.locked_span = lambda: program.player.locked_beats() if program.player else None
    timecode = WithTimecode(control, None, None)  # "timecode" in /status and MQTT
    control = timecode
    if publishers:
        from streams.janus.status import WithPublishers

        control = WithPublishers(control, publishers)  # their state in /status and MQTT
    web = osc = console = None
    health = ShowHealth(pacer, performer=performer, mocap=feed)
    if hub is not None and opts.http_port is not None:
        from streams.director_socket import DirectorSocket
        from streams.level_meter import LevelMeter
        from streams.web import WebServer

        health.hub = hub
        outputs.add_sink(hub.push_audio)
        voice_hub = hub

        def voice_only() -> None:  # the first /whep?mix=voice: feed its encoder from now on
            fanout = mix_out("voice", outputs, program, director,
                             opts.audible_label == "start")
            if voice_hub.push_voice_only not in fanout.sinks:
                fanout.add_sink(voice_hub.push_voice_only)

        hub.wants_voice_only = voice_only
        meter = LevelMeter()
        outputs.add_sink(meter)
        songs = await asyncio.to_thread(catalog, opts.songs)
        console = DirectorSocket(director, meter=meter, health=health,
                                 catalog=lambda: songs)
        avatar = opts.avatar if opts.avatar else await asyncio.to_thread(default_avatar)
        try:
            provenance.allow_avatar(avatar)
        except ConsentError as err:
            raise ServeError(f"--avatar: {err}") from None
        web = WebServer(hub, control, web_root=WEB_ROOT, avatar_path=avatar, host=opts.host,
                        port=opts.http_port, token=opts.token,
                        viewer_token=opts.viewer_token, performer=performer, console=console)
        web.response_headers["AIGC-Label"] = provenance.header()
    if opts.osc_port is not None:
        from streams.osc import OscServer

        osc = health.osc = OscServer(control, host=opts.host, port=opts.osc_port,
                                     token=opts.token)
    bridge = None
    if opts.mqtt:
        from streams.mqtt import MqttBridge

        try:
            bridge = health.mqtt = MqttBridge(control, url=opts.mqtt, show=opts.show,
                                              token=opts.token)
        except ValueError as err:
            raise ServeError(f"--mqtt: {err}") from None

    recorder = pose_recorder = card = voice_recorder = None
    bank_worker: BankPreparer | None = None
    loop_priority: LoopPriority | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        # Every port first: one that cannot be bound ends the start here (ListenError), before
        # any file is written, any device opened or the show clock started.
        await _listen(opts, vmc, web, osc)
        label = provenance.label
        recorder = AudioRecorder(opts.record / "audio.wav", label) if opts.record else None
        pose_recorder = PoseRecorder(opts.record / "pose.jsonl", label) if opts.record else None
        voice_recorder = AudioRecorder(opts.record / "voice.wav", label) if opts.record \
            else None
        if recorder:
            outputs.add_sink(recorder)
        if voice_recorder:  # the dry voice beside the program, for post-production
            program.dry_sinks.append(voice_recorder)
            folder = opts.record
            assert folder is not None
            program.singer_sink = lambda singer: AudioRecorder(  # each singer's, apart
                folder / f"voice-{singer}.wav", label)
        if opts.follow:
            _open_follow(opts, follow, pacer)
        _open_timecode(opts, timecode, director, pacer)
        if not opts.headless:
            try:
                card = SoundDeviceSink(chunk)
                mix_out(opts.card_mix, outputs, program, director,
                        opts.audible_label == "start").add_sink(card)
            except SoundDeviceUnavailable as err:
                log.info("%s; carrying on without it", err)
                print(f"livesinger: {err}; carrying on without it", file=sys.stderr)
        pose_sinks: list[Callable[[PoseFrame], None]] = [
            s for s in (pose_recorder, hub.push_pose if hub else None) if s is not None]
        if vmc:
            pose_sinks.append(vmc.send)
        pose_sinks.extend(publisher.push_pose for publisher in publishers)
        if opts.synthesis == "process":  # it renders from its own copy; ours serves lip-sync
            director.prefetch = "controls" if pose_sinks else "off"
        if opts.synthesis == "thread":  # phrase-ahead banks' work beside the synthesis thread
            bank_worker = BankPreparer(director.ensemble, lambda: pacer.playout_sample).start()
        if opts.realtime_priority is not None:  # the viewers' hand-out runs on this loop
            loop_priority = raise_loop_priority()
        realtime_gc()  # everything is set up: nothing of it needs collecting during the show
        async with asyncio.TaskGroup() as group:
            # Only the pacer ends the show; a helper that fails is logged and restarted.
            play = group.create_task(pacer.run(until_sample=until))
            play.add_done_callback(lambda _t: stop.set())
            helpers = health.helpers = Supervisor(group)
            if console:
                helpers.start("director console", console.run)
            helpers.start("prefetch", director.run_prefetch)
            collector = Collector()  # the cycles realtime_gc leaves (ended peers): freed
            helpers.start("collector", collector.run)
            if pose_sinks:
                helpers.start("pose stream", lambda: run_pose_stream(
                    lambda: director.line(LEAD), lambda: pacer.playout_sample, pose_sinks,
                    mocap=feed.rig if feed else None,
                    singer_mouth_wins=opts.singer_mouth_wins))
            if feed:
                helpers.start("mocap", feed.run_guarded)
            if follow:
                helpers.start("follow", follow.run)
            if timecode.chase:
                helpers.start("timecode chase", timecode.chase.run)
            if bridge:
                helpers.start("mqtt", bridge.run)
            for number, publisher in enumerate(publishers, 1):
                helpers.start(f"janus publisher {number}", publisher.run)
            ports: dict[str, object] = {"osc": osc.port if osc else None,
                                        "http": web.port if web else None}
            if handles is not None:
                handles.update(director=director, pacer=pacer, osc=osc, web=web, hub=hub,
                               mocap=feed, performer=performer, helpers=helpers,
                               publishers=publishers, provenance=provenance, follow=follow,
                               outputs=outputs, mqtt=bridge, program=program,
                               timecode=timecode, collector=collector)
            while pacer.chunks_played == 0:  # ready means the show clock is running
                await asyncio.sleep(0.01)
            provenance.announce()
            _announce(opts, ports, recorder)
            if web and opts.open_page and not opts.headless:
                with contextlib.suppress(Exception):
                    webbrowser.open(f"http://{opts.host}:{web.port}/")
            if ready:
                ready(ports)
            await stop.wait()
            log.info("stopping at show sample %d", pacer.playout_sample)
            play.cancel()
            helpers.cancel()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        for surface in (osc, web, vmc):
            if surface:
                with contextlib.suppress(Exception):
                    await surface.stop()
        for sink in (recorder, voice_recorder, pose_recorder, card, follow, timecode.chase,
                     timecode.lead):
            if sink:
                sink.close()
        for singer_file in program.singer_sinks().values():
            if isinstance(singer_file, AudioRecorder):
                singer_file.close()
        if bank_worker:
            bank_worker.stop()
        loop_nice = loop_priority.nice if loop_priority and loop_priority.raised else None
        if loop_priority:
            loop_priority.restore()
        director.close()
    summary: dict[str, object] = {
        "seconds": round(pacer.playout_sample / SAMPLE_RATE_HZ, 3), "xruns": pacer.xruns,
        "late_edits": pacer.late_edits, "cues": director.cues_applied,
        "helper_restarts": {k: v for k, v in helpers.restarts.items() if v},
        "synthesis": pacer.synthesis_state(),
        "loop_nice": loop_nice,
        "recording": str(opts.record) if opts.record else None,
        "produce_id": provenance.label.ProduceID}
    print(f"livesinger: stopped after {pacer.playout_sample / SAMPLE_RATE_HZ:.1f} s, "
          f"{pacer.xruns} xruns, {pacer.late_edits} late edits, "
          f"{director.cues_applied} cues"
          + "".join(f", {name} restarted {n}x" for name, n in helpers.restarts.items() if n)
          + _synthesis_restarts(pacer), file=sys.stderr)
    return summary


def _program_stage(opts: ServeOptions, outputs: MarkedFanout,
                   director: Director) -> ProgramStage:
    """The program mix in front of the marked fan-out, following the director's transport."""
    from singer.mix.backing_spec import files_spec
    from singer.mix.chain import chain_plan

    try:
        override = files_spec([str(f) for f in opts.backing], opts.backing_offset) \
            if opts.backing else None
    except BackingError as err:
        raise ServeError(f"--backing: {err}") from None
    _, per_singer = chain_plan(list(opts.singer_chains))
    stage = ProgramStage(outputs, opts.chain, chains=per_singer,
                         singers=lambda: [line.name for line in director.ensemble.lines],
                         backing_override=override,
                         cue_backing=lambda: director.cue_list.backing, songs=opts.songs)
    director.transport_listeners.append(stage.transport)
    director.chase_listeners.append(stage.chase)  # the backing resamples at the chase's rate
    return stage


MIXES = ("program", "voice")
"""What an output can carry: the program, or the voice alone (in-ear monitors)."""


def mix_out(mix: str, outputs: MarkedFanout, program: ProgramStage, director: Director,
            audible_label: bool) -> MarkedFanout:
    """The marked fan-out an output asking for ``mix`` joins: the program's, or the voice
    alone's (made on first use, watermarked with the same ID, the audible label too)."""
    if mix == "program":
        return outputs

    def make() -> MarkedFanout:
        fanout = MarkedFanout(outputs.label, audible_label=audible_label)
        director.transport_listeners.append(fanout.transport)
        return fanout

    voice = program.voice_outputs(make)
    assert isinstance(voice, MarkedFanout)
    return voice


def _synthesis_restarts(pacer: AudioPacer) -> str:
    """``, synthesis process restarted Nx (gaps M ms)`` for the last line, if it ever was."""
    state = pacer.synthesis_state()
    restarts = state.get("restarts")
    if not restarts:
        return ""
    return f", synthesis process restarted {restarts}x (gaps {state.get('gap_ms')} ms)"


def _follow(opts: ServeOptions, director: Director) -> FollowDesk:
    """Follow mode's desk: armed now by ``--follow`` (in ``_open_follow``) or later by a
    ``follow.start`` cue, on the input named by ``--performer-audio``/``--performer-midi``
    (none: note events over OSC/MQTT)."""
    from stage.follow.desk import FollowDesk

    return FollowDesk(director, audio=opts.performer_audio, midi=opts.performer_midi,
                      on_silence="carry" if opts.on_silence == "carry" else "hold")


def _with_follow(control: CueHandler, desk: FollowDesk) -> CueHandler:
    from stage.follow.desk import WithFollow

    return WithFollow(control, desk)


def _page_microphone(desk: FollowDesk, performer: object, pacer: AudioPacer) -> None:
    """``--performer-audio page``: the ``/perform`` page's microphone track feeds follow
    mode (``mocap.webrtc_audio``)."""
    from streams.webrtc.performer import PerformerDesk

    if desk.page_audio is not None and isinstance(performer, PerformerDesk):
        from mocap.webrtc_audio import WebRtcAudio

        # stamped on the clock's present sample (not the playout sample, which stands still
        # while playout stalls: the microphone's stamps jumped back and forth by 150 ms)
        desk.page_receiver = WebRtcAudio(desk.page_audio, pacer.clock.now_sample)
        performer.on_audio = desk.page_receiver.consume


def _timecode_settings(opts: ServeOptions) -> tuple[Rate, Timecode]:
    """``--timecode-rate`` and ``--timecode-start`` (``ServeError`` naming a bad one); a
    malformed ``--chase`` is refused here too, before anything opens."""
    from stage.timecode.show import TimecodeSpecError, parse_chase
    from streams.timecode.smpte import TimecodeError, parse_timecode, rate

    try:
        tc_rate = rate(opts.timecode_rate)
    except TimecodeError as err:
        raise ServeError(f"--timecode-rate: {err}") from None
    try:
        start = parse_timecode(opts.timecode_start, tc_rate)
    except TimecodeError as err:
        raise ServeError(f"--timecode-start: {err}") from None
    if opts.chase is not None:
        try:
            parse_chase(opts.chase)
        except TimecodeSpecError as err:
            raise ServeError(str(err)) from None
    return tc_rate, start


def _open_timecode(opts: ServeOptions, timecode: WithTimecode, director: Director,
                   pacer: AudioPacer) -> None:
    """Open ``--chase``'s source and ``--mtc-out``'s port (after the network ports, like
    every device; one line naming the port or file that cannot be opened)."""
    if opts.chase is None and opts.mtc_out is None:
        return
    from stage.timecode.show import MtcLead, ShowChase, TimecodeSpecError, open_chase_input
    from streams.devices.midi_ports import MidiPortError

    tc_rate, start = _timecode_settings(opts)
    if opts.chase is not None:
        try:
            source = open_chase_input(opts.chase, tc_rate, pacer.clock.now_sample)
        except MidiPortError as err:
            raise ServeError(f"--chase {opts.chase}: {err}") from None
        except TimecodeSpecError as err:
            raise ServeError(str(err)) from None
        timecode.chase = ShowChase(director, source, tc_rate, start)
    if opts.mtc_out is not None:
        try:
            lead = timecode.lead = MtcLead(opts.mtc_out, director, tc_rate, start)
        except MidiPortError as err:
            raise ServeError(f"--mtc-out {opts.mtc_out}: {err}") from None
        director.transport_listeners.append(lead.transport)
        pacer.add_sink(lead)


def _open_follow(opts: ServeOptions, follow: FollowDesk, pacer: AudioPacer) -> None:
    """Arm ``--follow`` and open its input (after the ports, like every device)."""
    from stage.follow.live import FollowError

    try:
        follow.arm(str(opts.follow))
    except FollowError as err:
        raise ServeError(f"--follow {opts.follow}: {err}") from None


async def _listen(opts: ServeOptions, vmc: VmcSender | None, web: WebServer | None,
                  osc: OscServer | None) -> None:
    """Open every network surface; ``ListenError`` names the first one that cannot be.

    The caller's cleanup stops them all (a surface that never started stops as a no-op).
    """
    if vmc:
        try:
            await vmc.start()
        except OSError as err:
            raise ListenError("VMC out", vmc.host, vmc.port, "udp", err) from None
    if web:
        try:
            await web.start()
        except OSError as err:
            raise ListenError("HTTP", opts.host, web.port, "tcp", err) from None
    if osc:
        await osc.start()  # raises ListenError itself (it knows whether UDP or TCP failed)


def _announce(opts: ServeOptions, ports: dict[str, object],
              recorder: AudioRecorder | None) -> None:
    parts = []
    if ports["http"] is not None:
        parts.append(f"stage page http://{opts.host}:{ports['http']}/")
    if ports["http"] is not None and opts.mocap == "webrtc":
        parts.append(f"performer page http://{opts.host}:{ports['http']}/perform")
    if opts.mocap and opts.mocap.split(":")[0] == "vmc":
        parts.append(f"VMC in {opts.mocap}")
    if ports["osc"] is not None:
        parts.append(f"OSC udp+tcp {opts.host}:{ports['osc']}")
    if opts.mqtt:
        parts.append(f"MQTT {opts.mqtt} show '{opts.show}'")
    for target in opts.publish:
        from streams.janus.target import parse_target

        parts.append(f"publishing into {parse_target(target)}")  # never the secret
    if recorder:
        parts.append(f"recording {recorder.path.parent}/")
    print("livesinger: serving; " + "; ".join(parts), file=sys.stderr, flush=True)


def _mocap_parts(opts: ServeOptions, pacer: AudioPacer):  # type: ignore[no-untyped-def]
    """The capture feed (``--mocap``), VMC sender (``--vmc-out``) and, for ``--mocap webrtc``,
    the performer desk answering ``/perform`` offers, as the options ask."""
    feed = vmc = performer = None
    if opts.mocap:
        from mocap.sources import SourceError
        from stage.mocap import MocapFeed, make_feed

        if opts.mocap == "webrtc" and opts.http_port is None:
            raise ServeError("--mocap webrtc: the performer page needs the web server "
                             "(--http-port)")
        try:
            feed = make_feed(opts.mocap, pacer.clock, prewarm=True)
        except SourceError as err:
            raise ServeError(f"--mocap: {err}") from None
        if opts.mocap == "webrtc" and isinstance(feed, MocapFeed):
            from mocap.webrtc_source import WebRtcSource
            from streams.webrtc.performer import PerformerDesk

            source = feed.capture.source
            assert isinstance(source, WebRtcSource)
            performer = PerformerDesk(source.consume, ice_servers=opts.ice_servers)
    if opts.vmc_out:
        from stage.mocap import parse_host_port
        from streams.vmc import VmcSender

        try:
            vmc = VmcSender(*parse_host_port(opts.vmc_out, 39539))
        except ValueError as err:
            raise ServeError(f"--vmc-out {err}") from None
    return feed, vmc, performer


def _publishers(opts: ServeOptions, outputs: MarkedFanout,
                encoder: ShowOpusEncoder | None) -> list[JanusPublisher]:
    """A Janus publisher per ``--publish`` target, each sending ``encoder``'s frames (the
    viewer hub's; without a hub, one encoder of their own fed the marked audio); the pose
    stream feeds them too. Each runs as a supervised helper and reconnects on its own."""
    if not opts.publish:
        return []
    from streams.janus.publisher import JanusPublisher
    from streams.janus.target import parse_target
    from streams.webrtc.audio_track import FRAME_SAMPLES
    from streams.webrtc.opus_encoder import ShowOpusEncoder

    if encoder is None:
        encoder = ShowOpusEncoder(FRAME_SAMPLES)
        outputs.add_sink(encoder.push)
    return [JanusPublisher(parse_target(t), encoder, ice_servers=opts.ice_servers)
            for t in opts.publish]


def _provenance(opts: ServeOptions, director: Director) -> ShowProvenance:
    """The show's AIGC label (a fresh ProduceID), its voice checked against its record (one
    log line saying which record allowed it), and the audible-label choice logged."""
    label = AigcLabel.new(opts.producer or DEFAULT_PRODUCER)
    provenance = ShowProvenance(
        label, opts.usage, opts.audible_label,
        language=lambda: director.song.language if director.song is not None else None)
    try:
        provenance.allow_voice(opts.voice)
    except ConsentError as err:
        raise ServeError(f"--voice: {err}") from None
    if opts.audible_label == "off":
        log.warning("audible AI label off: the show's explicit choice (--audible-label off)")
        print("livesinger: audible AI label off by the show's explicit choice",
              file=sys.stderr, flush=True)
    log.info("show AIGC label %s; watermark id %08x", label.to_json(), label.watermark_id)
    return provenance
