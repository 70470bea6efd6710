"""The program mix live: the pacer's one audio sink, in front of the marked fan-out.

For each played chunk at show sample ``t`` each singer's dry voice (the chunk's ``parts``)
goes through their own vocal chain (``serve --chain [SINGER=]PRESET``, the ``chain.set``
cue) and the song's backing is added, read at ``[t − L, t − L + n)`` from a
``BackingPlayer`` (``L``: the program's latency), so what is watermarked and sent to every
output is the program; the dry voice goes to ``dry_sinks`` (the recorder's ``voice.wav``),
each singer's to a sink of their own (``voice-<singer>.wav``), and, once an output asks for
the voice alone (in-ear monitors), to a second marked fan-out (``voice_outputs``).
The player follows the Director's transport (``Director.transport_listeners``) at the show
samples it acts at; ``WithProgram`` loads a song's backing when the song loads and answers
the ``backing.gain`` / ``backing.mute`` cues (docs/mix.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from singer.contracts import AudioChunk
from singer.mix.backing import BackingPlayer, load_backing
from singer.mix.backing_spec import BackingError, BackingSpec, load_backing_spec, sidecar_for
from singer.mix.chain import chain_preset, max_latency
from singer.mix.effects import ParamError
from singer.mix.program import TAIL_S, ProgramMix
from singer.score import Score
from stage.director import Director
from streams.cue import Cue, CueError, CueHandler
from streams.level_meter import LevelMeter

log = logging.getLogger(__name__)

ChunkSink = Callable[[AudioChunk], None]
MAX_EVENTS = 64
"""Transport events kept for a backing still loading (replayed on it once loaded)."""


class ProgramStage:
    """Each singer's voice through their chain plus the backing, handed to ``out`` (the
    marked fan-out).

    Everything runs on the event loop (the pacer calls its sinks there), so the player and
    the chains have one owner. ``singers()`` names the rows of a played chunk's ``parts``
    (the ensemble's lines in order); a singer gets ``chains[name]`` or ``default_chain``
    when first heard. The program's latency is fixed for the show (the longest of those
    presets), so a chain swapped in live never moves it. ``backing_override`` (``serve
    --backing``) replaces every song's own backing; otherwise a song's backing is the cue
    list's ``backing:`` entry for its name, else its ``<song>.backing.yaml`` sidecar."""

    def __init__(self, out: ChunkSink, default_chain: str = "dry", *,
                 chains: Mapping[str, str] | None = None,
                 singers: Callable[[], Sequence[str]] = lambda: ("lead",),
                 backing_override: BackingSpec | None = None,
                 cue_backing: Callable[[], Mapping[str, BackingSpec]] = dict,
                 songs: Path | None = None) -> None:
        self.out = out
        self.default_chain = default_chain
        self.chain_presets = dict(chains or {})
        """The preset each singer named so far sings through (``--chain SINGER=PRESET``)."""
        self.singers = singers
        latency = max_latency([default_chain, *self.chain_presets.values()])
        self.mix = ProgramMix({}, min_latency=latency)
        self.backing_override = backing_override
        self.cue_backing = cue_backing
        self.songs = songs
        self.dry_sinks: list[ChunkSink] = []
        """Receive the dry voice (all singers), on the program's timeline."""
        self.singer_sink: Callable[[str], ChunkSink] | None = None
        """Makes the sink of each singer's dry voice when first heard (the recorder's
        ``voice-<singer>.wav``)."""
        self._singer_sinks: dict[str, ChunkSink] = {}
        self.meters: dict[str, LevelMeter] = {}
        """Each singer's level through their chain (what they add to the program)."""
        self.voice_out: Callable[[AudioChunk], None] | None = None
        """The voice-only outputs' marked fan-out, once one asked for it (``voice_outputs``)."""
        self.next_sample = 0
        """The first show sample not mixed yet: a stem cue lands here at the earliest."""
        self._events: list[tuple[str, int, float | None, float]] = []
        self._generation = 0

    @property
    def player(self) -> BackingPlayer | None:
        return self.mix.backing

    @property
    def latency_samples(self) -> int:
        """How far the program runs behind the show clock (fixed for the show)."""
        return self.mix.latency_samples

    @property
    def tail_s(self) -> float:
        """How long a song's end rings on in the program: 3 s with an effect chain (reverb,
        echo), else 0.5 s."""
        wet = any(p != "dry" for p in (self.default_chain, *self.chain_presets.values()))
        return TAIL_S if wet else 0.5

    def _chain(self, singer: str) -> None:
        if singer not in self.mix.chains:
            preset = self.chain_presets.setdefault(singer, self.default_chain)
            self.mix.set_chain(singer, chain_preset(preset))

    def voices(self, chunk: AudioChunk) -> dict[str, np.ndarray]:
        """Each singer's dry audio in ``chunk`` by name (mono chunks: all the lead's)."""
        names = list(self.singers()) or ["lead"]
        if chunk.parts is None:
            return {names[0]: chunk.samples}
        rows = min(len(names), len(chunk.parts))
        return {names[i]: chunk.parts[i] for i in range(rows)}

    def __call__(self, chunk: AudioChunk) -> None:
        """Mix one played chunk and forward the program (and the dry voices)."""
        voices = self.voices(chunk)
        for singer in voices:
            self._chain(singer)
        program, dry = self.mix.render(chunk.t, len(chunk.samples), voices)
        self.next_sample = chunk.end
        self.out(AudioChunk(chunk.t, program))
        if self.voice_out is not None:
            self.voice_out(AudioChunk(chunk.t, dry))
        for sink in list(self.dry_sinks):
            try:
                sink(AudioChunk(chunk.t, dry))
            except Exception:  # a broken sink never stops the show
                log.exception("dry-voice sink %r failed; removing it", sink)
                self.dry_sinks.remove(sink)
        for singer, wet in self.mix.last_wet.items():
            meter = self.meters.get(singer)
            if meter is None:
                meter = self.meters[singer] = LevelMeter()
            meter(AudioChunk(chunk.t, wet))
        if self.singer_sink is not None:
            self._to_singer_sinks(chunk.t)

    def _to_singer_sinks(self, t: int) -> None:
        assert self.singer_sink is not None
        for singer, dry in self.mix.last_dry.items():
            sink = self._singer_sinks.get(singer)
            if sink is None:
                try:
                    sink = self._singer_sinks[singer] = self.singer_sink(singer)
                except Exception:
                    log.exception("no dry-voice file for singer %s", singer)
                    self._singer_sinks[singer] = _nowhere
                    continue
            sink(AudioChunk(t, dry))

    def singer_sinks(self) -> dict[str, ChunkSink]:
        """The sinks made by ``singer_sink`` so far (to close them at the end)."""
        return dict(self._singer_sinks)

    def voice_outputs(self, make: Callable[[], Callable[[AudioChunk], None]]
                      ) -> Callable[[AudioChunk], None]:
        """The voice-only outputs' fan-out (made by ``make`` on first use: until an output
        asks for the voice alone, no second stream is marked or encoded)."""
        if self.voice_out is None:
            self.voice_out = make()
        return self.voice_out

    def chain_cue(self, cue: Cue) -> dict[str, object]:
        """``chain.set``: a singer's (none: every singer's) preset or one parameter, from
        the next chunk mixed."""
        targets = [cue.singer] if cue.singer is not None else \
            sorted({*self.mix.chains, *self.chain_presets})
        preset = cue.args.get("preset")
        try:
            if preset is not None:
                chain = chain_preset(str(preset))
                if chain.latency_samples > self.latency_samples:
                    raise CueError(
                        f"chain preset {preset}: its latency ({chain.latency_samples} "
                        f"samples) is more than the show's program latency "
                        f"({self.latency_samples} samples, fixed at start by serve --chain); "
                        "start the show with a chain of that preset")
                if cue.singer is None:
                    self.default_chain = str(preset)
                for singer in targets:
                    self.chain_presets[singer] = str(preset)
                    if singer in self.mix.chains:
                        self.mix.set_chain(singer, chain_preset(str(preset)), crossfade=True)
                return {"singers": targets, "preset": preset,
                        "at_sample": self.next_sample}
            param, value = str(cue.args["param"]), float(cue.args["value"])  # type: ignore[arg-type]
            for singer in targets:
                self._chain(singer)
            for singer in targets:  # every chain takes it, or none (checked first)
                self.mix.chains[singer].effect(param.partition(".")[0])
            for singer in targets:
                self.mix.chains[singer].set(param, value)
            return {"singers": targets, "param": param, "value": value,
                    "at_sample": self.next_sample}
        except ParamError as err:
            raise CueError(str(err)) from None

    # transport ---------------------------------------------------------------------------
    def transport(self, what: str, at: int, beat: float | None) -> None:
        """A Director transport change (``Director.transport_listeners``)."""
        self._events = [*self._events, (what, at, beat, 1.0)][-MAX_EVENTS:]
        if self.player is not None:
            _apply(self.player, what, at, beat)

    def chase(self, at: int, beat: float, rate: float) -> None:
        """A timecode chase placement (``Director.chase_listeners``): the backing reads at
        ``rate`` and steers smoothly onto ``beat`` (``BackingPlayer.chase``)."""
        self._events = [*self._events, ("chase", at, beat, rate)][-MAX_EVENTS:]
        if self.player is not None:
            self.player.chase(at, beat, rate)

    def spec_for(self, ref: str) -> BackingSpec | None:
        """The backing of song ``ref`` (a name or a path), ``None`` when it has none."""
        if self.backing_override is not None:
            return self.backing_override
        declared = self.cue_backing().get(ref)
        if declared is not None:
            return declared
        from singer.scores.load import resolve_score

        try:
            path = resolve_score(ref, self.songs)
        except (ValueError, OSError):
            return None
        sidecar = sidecar_for(path)
        return load_backing_spec(sidecar) if sidecar is not None else None

    async def load_song(self, ref: str, score: Score, at: int) -> list[str]:
        """Song ``ref`` (``score``) was installed at show sample ``at``: drop the old backing
        and load the new one off the loop; transport changes made meanwhile are replayed
        on it. Returns its stem names; ``BackingError`` names what is wrong."""
        self._generation += 1
        generation = self._generation
        self._events = [e for e in self._events if e[1] >= at]
        self.mix.backing = None
        spec = await asyncio.to_thread(self.spec_for, ref)
        if spec is None:
            return []
        track = await asyncio.to_thread(load_backing, spec)
        if generation != self._generation:  # another song loaded meanwhile
            return []
        player = BackingPlayer(track, score.tempo_map)
        for what, when, beat, rate in self._events:
            if what == "chase":
                player.chase(when, beat or 0.0, rate)
            else:
                _apply(player, what, when, beat)
        self.mix.backing = player
        log.info("backing %s for %s from score time %g s", ", ".join(track.names), ref,
                 spec.offset_s)
        return list(track.names)

    # stem cues ---------------------------------------------------------------------------
    def stem_cue(self, cue: Cue) -> dict[str, object]:
        """``backing.gain`` / ``backing.mute`` at ``cue.at_sample`` (none, or one already
        mixed: the next chunk mixed)."""
        if self.player is None:
            raise CueError("no backing loaded: the song has none (or it is still loading)")
        at = self.next_sample if cue.at_sample is None else max(cue.at_sample,
                                                                self.next_sample)
        stem, fade = str(cue.args["stem"]), float(cue.args["fade_s"])  # type: ignore[arg-type]
        try:
            if cue.kind == "backing.gain":
                db = float(cue.args["db"])  # type: ignore[arg-type]
                self.player.set_gain(stem, db, at, fade)
                return {"stem": stem, "db": db, "at_sample": at}
            on = bool(cue.args["on"])
            self.player.mute(stem, on, at, fade)
            return {"stem": stem, "muted": on, "at_sample": at}
        except BackingError as err:
            raise CueError(str(err)) from None

    def status(self) -> dict[str, object]:
        """The chains, each singer's level since the last look, the backing."""
        player = self.player
        singers = {name: {"chain": self.chain_presets.get(name, self.default_chain),
                          **(self.meters[name].read() if name in self.meters else {})}
                   for name in sorted({*self.chain_presets, *self.mix.chains})}
        return {"chain": self.default_chain, "singers": singers,
                "latency_samples": self.latency_samples,
                "voice_outputs": self.voice_out is not None,
                "backing": list(player.track.names) if player is not None else None}


def _nowhere(_chunk: AudioChunk) -> None:
    """Where a singer's dry voice goes when its file could not be opened."""


def _apply(player: BackingPlayer, what: str, at: int, beat: float | None) -> None:
    if what == "play":
        player.play(at, beat or 0.0)
    elif what == "stop" or (what == "backing" and beat is None):
        player.stop(at)
    elif what == "backing":  # the backing alone (it starts with its span: docs/mix.md)
        player.play(at, beat or 0.0)


class WithProgram:
    """A cue handler in front of the show's: answers ``backing.*`` cues, and loads a song's
    backing when a ``song.load`` (alone or in a fired cue) installs it."""

    def __init__(self, inner: CueHandler, stage: ProgramStage, director: Director) -> None:
        self.inner = inner
        self.stage = stage
        self.director = director
        director.delegates.update({"backing.gain": stage.stem_cue, "backing.mute": stage.stem_cue,
                                   "chain.set": stage.chain_cue})

    async def handle(self, cue: Cue) -> object:
        handler = self.director.delegates.get(cue.kind)
        if handler is not None:
            answer = handler(cue)
            self.director.cues_applied += 1
            return answer
        reply = await self.inner.handle(cue)
        loads: list[tuple[str, dict[str, object]]] = []
        if cue.kind == "song.load" and isinstance(reply, dict):
            loads.append((str(cue.args["song"]), reply))
        elif cue.kind in ("go", "cue.start") and isinstance(reply, dict):
            entry = self.director.cue_list.find(str(reply["cue"]))
            done = reply.get("done")
            for sub, sub_reply in zip(entry.commands, done if isinstance(done, list) else [],
                                      strict=False):
                if sub.kind == "song.load" and isinstance(sub_reply, dict):
                    loads.append((str(sub.args["song"]), sub_reply))
        for ref, song_reply in loads:
            score = self.director.song
            if score is None:
                continue
            try:
                stems = await self.stage.load_song(ref, score, int(song_reply["at_sample"]))  # type: ignore[call-overload]
            except BackingError as err:
                log.warning("song %s: %s; playing without backing", ref, err)
                song_reply["backing_error"] = str(err)
            else:
                song_reply["backing"] = stems
        return reply

    def show_sample_at_unix(self, unix_s: float) -> int:
        return self.inner.show_sample_at_unix(unix_s)

    def status(self) -> dict[str, object]:
        return {**self.inner.status(), "program": self.stage.status()}

    def __getattr__(self, attr: str) -> object:  # the wrapped handler's other parts
        return getattr(self.inner, attr)
