"""The program mix live: the pacer's one audio sink, in front of the marked fan-out.

For each played chunk at show sample ``t`` the voice goes through the show's vocal chain
(``serve --chain``) and the song's backing is added, read at ``[t − L, t − L + n)`` from a
``BackingPlayer`` (``L``: the chain's latency), so what is watermarked and sent to every
output is the program; the dry voice goes to ``dry_sinks`` (the recorder's ``voice.wav``).
The player follows the Director's transport (``Director.transport_listeners``) at the show
samples it acts at; ``WithProgram`` loads a song's backing when the song loads and answers
the ``backing.gain`` / ``backing.mute`` cues (docs/mix.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from singer.contracts import AudioChunk
from singer.mix.backing import BackingPlayer, load_backing
from singer.mix.backing_spec import BackingError, BackingSpec, load_backing_spec, sidecar_for
from singer.mix.chain import VocalChain
from singer.mix.program import ProgramMix
from singer.score import Score
from stage.director import Director
from streams.cue import Cue, CueError, CueHandler

log = logging.getLogger(__name__)

ChunkSink = Callable[[AudioChunk], None]
MAX_EVENTS = 64
"""Transport events kept for a backing still loading (replayed on it once loaded)."""


class ProgramStage:
    """Voice through ``chain`` plus the backing, handed to ``out`` (the marked fan-out).

    Everything runs on the event loop (the pacer calls its sinks there), so the player has
    one owner. ``backing_override`` (``serve --backing``) replaces every song's own backing;
    otherwise a song's backing is the cue list's ``backing:`` entry for its name, else its
    ``<song>.backing.yaml`` sidecar."""

    def __init__(self, out: ChunkSink, chain: VocalChain, *,
                 backing_override: BackingSpec | None = None,
                 cue_backing: Callable[[], Mapping[str, BackingSpec]] = dict,
                 songs: Path | None = None) -> None:
        self.out = out
        self.chain = chain
        self.mix = ProgramMix({"voice": chain})
        self.backing_override = backing_override
        self.cue_backing = cue_backing
        self.songs = songs
        self.dry_sinks: list[ChunkSink] = []
        self.next_sample = 0
        """The first show sample not mixed yet: a stem cue lands here at the earliest."""
        self._events: list[tuple[str, int, float | None]] = []
        self._generation = 0

    @property
    def player(self) -> BackingPlayer | None:
        return self.mix.backing

    @property
    def latency_samples(self) -> int:
        """How far the program runs behind the show clock (the chain's latency)."""
        return self.mix.latency_samples

    def __call__(self, chunk: AudioChunk) -> None:
        """Mix one played chunk and forward the program (and the dry voice)."""
        program, dry = self.mix.render(chunk.t, len(chunk.samples), {"voice": chunk.samples})
        self.next_sample = chunk.end
        self.out(AudioChunk(chunk.t, program))
        for sink in list(self.dry_sinks):
            try:
                sink(AudioChunk(chunk.t, dry))
            except Exception:  # a broken sink never stops the show
                log.exception("dry-voice sink %r failed; removing it", sink)
                self.dry_sinks.remove(sink)

    # transport ---------------------------------------------------------------------------
    def transport(self, what: str, at: int, beat: float | None) -> None:
        """A Director transport change (``Director.transport_listeners``)."""
        self._events = [*self._events, (what, at, beat)][-MAX_EVENTS:]
        if self.player is not None:
            _apply(self.player, what, at, beat)

    def spec_for(self, ref: str) -> BackingSpec | None:
        """The backing of song ``ref`` (a name or a path), ``None`` when it has none."""
        if self.backing_override is not None:
            return self.backing_override
        declared = self.cue_backing().get(ref)
        if declared is not None:
            return declared
        from singer.load import resolve_score

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
        for what, when, beat in self._events:
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
        player = self.player
        return {"chain": self.chain.preset, "latency_samples": self.latency_samples,
                "backing": list(player.track.names) if player is not None else None}


def _apply(player: BackingPlayer, what: str, at: int, beat: float | None) -> None:
    if what == "play":
        player.play(at, beat or 0.0)
    elif what == "stop":
        player.stop(at)


class WithProgram:
    """A cue handler in front of the show's: answers ``backing.*`` cues, and loads a song's
    backing when a ``song.load`` (alone or in a fired cue) installs it."""

    def __init__(self, inner: CueHandler, stage: ProgramStage, director: Director) -> None:
        self.inner = inner
        self.stage = stage
        self.director = director

    async def handle(self, cue: Cue) -> object:
        if cue.kind in ("backing.gain", "backing.mute"):
            self.director.cues_applied += 1
            return self.stage.stem_cue(cue)
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
