"""The Director: show state and the one place cues become changes to what is sung.

Every cue turns into an edit of the singers' timelines at a show sample — the next chunk
boundary that can still change, or the exact sample an OSC bundle asked for — and the pacer
renders again from there. Songs, live notes, tempo, voices and expressions all work the same
way, so a live note sounds within one chunk and a scheduled cue lands on its sample.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from singer.backends.live import (
    BankRef,
    check_expression,
    check_lyrics,
    check_syllable,
    live_lead_samples,
    load_text,
    sings_held_notes,
)
from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.ensemble import Ensemble, HeldNote, LiveReport, SingerLine
from singer.lyrics import LyricError, detect_language, phonemize_word
from singer.score import Score, ScoreError
from singer.synth import HarmonicNoiseSynth
from singer.voices import UnknownVoiceError, VoiceProfile, get_voice
from stage.cuelist import CueEntry, CueList, CueListError, dump_cue_list, parse_cue_list
from stage.pacer import AudioPacer
from stage.song_loader import ScoreLoader, SongLoader
from streams.cue import Cue, CueError, describe

log = logging.getLogger(__name__)

LEAD = "lead"
OPEN_NOTE_S = 600.0
"""A live note with no note-off yet is sung for at most this long."""
MAX_LYRIC_QUEUE = 256
MAX_SINGERS = 8
"""Singers a show holds at most by default (the lead, song parts and singers cues name)."""
NO_SOUND_CHANGE = frozenset({"lyric", "thump", "playhead"})
"""Cues that change nothing already rendered: no re-render after them."""
EDIT_QUIET_S = 0.03
"""After an edit, prefetching waits this long: the audio thread re-renders undisturbed."""
CUE_LIST_FIRES = frozenset({"go", "cue.start"})
PrefetchMode = Literal["params", "controls", "off"]
Resolved = tuple[VoiceProfile, BankRef | None]
"""A voice as a cue names it: the built-in profile and the bank (``None``: built in)."""


@dataclass
class _SongPlacement:
    """Where the loaded song sits on the show clock."""

    anchor_sample: int  # show sample at which ...
    anchor_beat: float  # ... this beat plays
    bpm: float | None  # tempo override (None: the score's own tempo map)
    until_beat: float | None = None
    """The override ends at this beat (a locked backing starts there): the score's tempo
    map from it on."""
    rate: float = 1.0
    """Speed factor on top (the timecode chase's trim): score samples per show sample."""


@dataclass
class _SingerState:
    live: list[Note] = field(default_factory=list)
    song: list[Note] = field(default_factory=list)
    open_notes: dict[float, int] = field(default_factory=dict)  # pitch -> index in live
    held: dict[float, int] = field(default_factory=dict)  # pitch -> its HeldNote id
    waiting: set[int] = field(default_factory=set)  # held ids whose voice has not started
    lyrics: deque[tuple[str, tuple[str, ...]]] = field(default_factory=deque)

    def drop_ended(self, before: int) -> None:
        """Forget the notes that ended before show sample ``before`` (played for good)."""
        if any(n.t_off < before for n in self.song):
            self.song = [n for n in self.song if n.t_off >= before]
        if not any(n.t_off < before for n in self.live):
            return
        open_by_index = {i: pitch for pitch, i in self.open_notes.items()}
        kept: list[Note] = []
        self.open_notes = {}
        for i, note in enumerate(self.live):
            if i in open_by_index:
                self.open_notes[open_by_index[i]] = len(kept)
            elif note.t_off < before:
                continue
            kept.append(note)
        self.live = kept


class Director:
    """Holds the show (song, transport, singers, cue list) and applies cues on the clock."""

    def __init__(self, synth: HarmonicNoiseSynth, load_score: ScoreLoader, *,
                 voice: str = "soprano", seed: int = 0, default_syllable: str = "la",
                 cue_list: CueList | None = None, song_folders: Sequence[Path] | None = None,
                 max_singers: int = MAX_SINGERS, voices_dirs: Sequence[Path] = (),
                 voice_steps: int | None = None) -> None:
        """``load_score`` parses local references (paths, names) in a worker process when it
        can be sent to one; remote ``song.load`` cues may name only library songs and files
        inside ``song_folders`` (default: the song library's folders). ``max_singers`` caps
        the singers cues and songs may create. ``voice`` is a built-in name, a bank's name in
        ``voices_dirs`` (and the default voices folders) or a bank folder."""
        if max_singers < 1:
            raise ValueError(f"max_singers must be at least 1, got {max_singers}")
        self.synth = synth
        self.seed = seed
        self.default_syllable = default_syllable
        self.max_singers = max_singers
        self.voices_dirs = tuple(voices_dirs)
        self.voice_steps = voice_steps
        """Diffusion steps of every DiffSinger voice the show sings with (``None``: 20)."""
        profile, bank = self._resolve_voice(voice)
        if bank is not None:
            load_text(bank)  # before the show: cues consult the bank's oto.ini / dictionaries
        self.ensemble = Ensemble(synth, [SingerLine(LEAD, profile, seed=seed, hop=synth.hop,
                                                    bank=bank)])
        self.cue_list = cue_list or CueList([])
        self.songs = SongLoader(load_score, song_folders)
        self.songs.preload(_cue_list_songs(self.cue_list))  # parsed while the show starts
        self._cue_list_lock = asyncio.Lock()  # one GO at a time: each fires the next cue
        self._singers: dict[str, _SingerState] = {LEAD: _SingerState()}
        self._pacer: AudioPacer | None = None
        self.song: Score | None = None
        self._song_beats: dict[str, list[tuple[float, float, Note]]] = {}
        self._placement: _SongPlacement | None = None
        self._stopped_beat = 0.0
        self.cues_applied = 0
        self._held_ids = 0  # ids of live notes a phrase-ahead bank sings as held notes
        self._held_told: dict[int, set[str]] = {}  # held id -> kinds reported with a sample
        self.live_latency: Callable[[], int] = self.ensemble.live_latency_samples
        """Samples after a cue a held live note's segment is expected to be ready (the bank
        worker's running high percentile): such a note is placed that late, voice and mouth."""
        self.last_cue_latency_ms: float | None = None
        self._last_edit = 0.0
        self.transport_listeners: list[Callable[[str, int, float | None], None]] = []
        """Told ``("play", at_sample, from_beat)`` / ``("stop", at_sample, None)`` whenever
        the song's transport changes, however it was asked (cue, GO, tempo, panic): the
        program mix's backing follows it (``stage.program``). ``("backing", at_sample,
        beat | None)`` moves the backing alone (a tempo override ending where the backing's
        span starts), and ``("trim", at_sample, beat)`` a timecode chase trim (the song
        re-timed in place, no jump: ``chase_listeners`` get its rate); other listeners
        ignore them."""
        self.follow_status: Callable[[], dict[str, object]] | None = None
        """Follow mode's state for ``status()`` (set by ``stage.follow.live``)."""
        self.chase_listeners: list[Callable[[int, float, float], None]] = []
        """Told ``(at_sample, beat, rate)`` at every timecode chase placement (after its
        ``play`` for a locate, or alone for a trim, which transport listeners hear as
        ``trim``): from ``at_sample`` the song should be at ``beat``, running at ``rate`` times
        the score's speed; the backing resamples onto it (``BackingPlayer.chase``)."""
        self.transport_hold: str | None = None
        """The cue that stopped the song (``song.stop``, ``cue.stop``, ``panic``): the
        timecode chase leaves the transport alone until a ``song.play`` (or GO playing) —
        a timecode locate also ends a stop's hold, never a panic's (docs/timecode.md)."""
        self.locked_span: Callable[[], tuple[float, float] | None] = lambda: None
        """The beats a backing track locks (``BackingPlayer.locked_beats``; ``None``: no
        backing): tempo cues and follower re-timings may not move the voice inside it."""
        self._retime_refused = False
        self.delegates: dict[str, Callable[[Cue], object]] = {}
        """Cue kinds another stage answers (the program mix's ``backing.*`` and
        ``chain.set``), so a fired cue-list entry reaches them like a direct cue."""
        self.prefetch: PrefetchMode = "params"
        """What ``run_prefetch`` computes ahead: ``params`` (controls and synthesis
        parameters, for the synthesis thread), ``controls`` (where a synthesis process
        renders, this copy of the ensemble serves only lip-sync) or ``off`` (nothing reads
        it ahead: it only folds what was played)."""
        # Load the pronouncing dictionaries now, not on the first live note mid-show.
        self._default_phonemes = phonemize_word([default_syllable],
                                                detect_language([default_syllable]))[0]
        phonemize_word(["好"], "zh")

    # -- wiring ---------------------------------------------------------------------------

    def attach(self, pacer: AudioPacer) -> None:
        """Use ``pacer``'s clock and re-render through it after every edit."""
        self._pacer = pacer
        # rendering here (a synthesis thread): a held note's first segment is waited for
        # only within its chunk's budget
        self.ensemble.seconds_until = pacer.clock.seconds_until
        # where held live notes really start and end: the mouth follows the voice
        from stage.synthesis import ProcessPacer

        if isinstance(pacer, ProcessPacer):
            pacer.live_reports = self.on_live_report
            self.live_latency = lambda: pacer.live_latency_samples
        else:
            try:
                loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                loop = None

            def report(got: LiveReport) -> None:  # from the render loop or the bank worker
                if loop is None:
                    self.on_live_report(got)
                else:
                    loop.call_soon_threadsafe(self.on_live_report, got)
            self.ensemble.live_reports = report
            self.live_latency = self.ensemble.live_latency_samples

    async def run_prefetch(self, period_s: float = 0.05, ahead_s: float = 0.05) -> None:
        """Keep every singer's coming control blocks computed off the audio thread.

        It starts ``ahead_s`` past the playout point: the blocks right at an edit are the
        audio thread's to compute, without a second thread competing for them.
        """
        # The audio thread must get the interpreter back quickly from Python-heavy threads.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))
        while True:
            since_edit = time.monotonic() - self._last_edit
            if since_edit < EDIT_QUIET_S:  # let the audio thread re-render the edit alone
                await asyncio.sleep(EDIT_QUIET_S - since_edit)
                continue
            params = self.prefetch == "params"
            # controls for lip-sync: from playout (no audio thread computes them here), and
            # just the next block or so (edits would make more of it wasted work)
            ahead = int((ahead_s if params else 0.0) * SAMPLE_RATE_HZ)
            if self.prefetch != "off":
                await asyncio.to_thread(self.ensemble.prefetch,
                                        self.pacer.playout_sample + ahead,
                                        0.6 if params else 0.2,
                                        lambda: time.monotonic() - self._last_edit
                                        < EDIT_QUIET_S, params)
            self._fold_played()  # a long show without cues must not keep its past either
            await asyncio.sleep(period_s)

    def render(self, start_sample: int, n_samples: int) -> np.ndarray:
        """The ensemble's mono mix (a renderer for a pacer with no program mix)."""
        return self.ensemble.render_mix_samples(start_sample, n_samples)

    def render_parts(self, start_sample: int, n_samples: int) -> np.ndarray:
        """The show pacer's renderer: one row per singer (``[singers, n]``; the pacer plays
        their sum and hands the rows to the program mix); runs in the synth thread."""
        return self.ensemble.render(start_sample, n_samples)

    @property
    def pacer(self) -> AudioPacer:
        """The pacer driving the show (after ``attach``)."""
        if self._pacer is None:
            raise RuntimeError("the director is not attached to a pacer")
        return self._pacer

    def show_sample_at_unix(self, unix_s: float) -> int:
        """Show sample playing at a Unix time (OSC timetags are Unix/NTP time)."""
        mono_ns = time.monotonic_ns() + int((unix_s - time.time()) * 1e9)
        return self.pacer.clock.sample_at(mono_ns)

    # -- cues -----------------------------------------------------------------------------

    async def handle(self, cue: Cue) -> object:
        """Apply ``cue`` at its sample (or the next editable chunk); returns reply data.

        Cues come from remote surfaces: a ``song.load`` may name library songs only, and
        whatever takes time (parsing a song, warming up a new singer) runs off the loop.
        """
        received_ns = time.monotonic_ns()
        if cue.kind == "song.load":
            try:
                score = await self.songs.load_remote(str(cue.args["song"]))
            except (ScoreError, ValueError, OSError) as err:
                raise CueError(str(err)) from None
            await self._check_song_voices(score)  # a song the voices cannot sing: refused
            await self._add_singers(self._part_singers(score), score.title)
            at = self._edit_sample(cue)
            reply = self.install(score, at)
            self._edited(cue, at, received_ns)
            return reply
        if cue.kind in CUE_LIST_FIRES:
            async with self._cue_list_lock:  # the next GO waits: it fires the next cue
                return await self._fire(cue, received_ns)
        voices = await self._resolve_cue_voices([cue])  # folders scanned off the loop
        if cue.kind == "song.play" and self.song is not None:
            await self._check_song_voices(self.song)  # the voice may have changed since
        if cue.singer is not None:
            await self._add_singers([cue.singer])
        at = self._edit_sample(cue)
        reply = self._apply(cue, at, voices)
        self._edited(cue, at, received_ns)
        return reply

    async def _resolve_cue_voices(self, cues: Iterable[Cue]) -> dict[str, Resolved]:
        """The voices ``voice`` cues among ``cues`` name, looked up in a worker thread (the
        voices folders are scanned and a bank's text files read there, never on the event
        loop); a bank switched to while a song plays must sing the rest of its lyrics
        (``CueError`` naming the bank and the syllable otherwise)."""
        out: dict[str, Resolved] = {}
        for cue in cues:
            if cue.kind != "voice":
                continue
            ref = str(cue.args["name"])
            if ref not in out:
                out[ref] = await asyncio.to_thread(self._resolve_voice_text, ref)
            bank = out[ref][1]
            if bank is not None and self._placement is not None:
                names = [cue.singer] if cue.singer else list(self._singers)
                jobs = [(bank, tuple(self._singers[n].song), n) for n in names
                        if n in self._singers and self._singers[n].song]
                await self._check_lyrics(jobs)
        return out

    def _resolve_voice_text(self, ref: str) -> Resolved:
        """``_resolve_voice`` for a cue (no paths), with the bank's text files read (in a
        worker thread)."""
        profile, bank = self._resolve_voice(ref, paths=False)
        if bank is not None:
            try:
                load_text(bank)
            except (ValueError, OSError) as err:
                raise CueError(f"voice {bank.name!r}: {err}") from None
        return profile, bank

    async def _check_song_voices(self, score: Score) -> None:
        """``CueError`` (one line: the bank, the part, the note and its syllable) if a part of
        ``score`` is sung by a bank that cannot sing one of its lyrics (checked in a worker
        thread: it reads the bank's text files)."""
        lead = self._line(LEAD).bank
        jobs = []
        for name, part in zip(self._part_singers(score), score.parts, strict=True):
            line = self.ensemble.line(name)
            bank = line.bank if line is not None else lead
            if bank is not None and part.notes:
                jobs.append((bank, tuple(part.notes), f"part {part.name or name!r}"))
        await self._check_lyrics(jobs)

    @staticmethod
    async def _check_lyrics(jobs: list[tuple[BankRef, tuple[Note, ...], str]]) -> None:
        def check() -> None:
            for bank, notes, what in jobs:
                check_lyrics(bank, notes, what)
        if not jobs:
            return
        try:
            await asyncio.to_thread(check)
        except ValueError as err:
            raise CueError(str(err)) from None

    def _edit_sample(self, cue: Cue) -> int:
        """Where ``cue`` lands: its own sample, or the next chunk that can still change."""
        earliest = self.pacer.earliest_editable_sample()
        return earliest if cue.at_sample is None else max(cue.at_sample, earliest)

    def _edited(self, cue: Cue, at: int, received_ns: int) -> None:
        """After applying ``cue`` at ``at``: render again what is not played yet, fold what
        is over for good."""
        self.cues_applied += 1
        if cue.kind not in NO_SOUND_CHANGE:
            self._last_edit = time.monotonic()
            start = self.pacer.rewind(at, placed=True, asked_ns=received_ns)
            if cue.at_sample is None and cue.kind != "song.load":  # a parse is not latency
                self.last_cue_latency_ms = (self.pacer.clock.ns_of(start) - received_ns) / 1e6
        self._fold_played()

    def apply_now(self, cue: Cue, at: int) -> object:
        """Apply ``cue`` at show sample ``at`` right away (setting up before the show runs:
        a voice is looked up here, on the caller's thread)."""
        reply = self._apply(cue, at)
        self.pacer.rewind(at)
        return reply

    def set_cue_list(self, cue_list: CueList) -> None:
        """Make ``cue_list`` the show's cue list (its songs start parsing now); the playhead
        stands by its first cue."""
        self.cue_list = cue_list
        self.songs.preload(_cue_list_songs(cue_list))

    def load_cue_text(self, text: str) -> dict[str, object]:
        """Replace the cue list with one in the ``--cues`` file format (``CueError`` naming
        the cue and command that is wrong; the old list stays then)."""
        try:
            cue_list = parse_cue_list(text, "cue list")
        except CueListError as err:
            raise CueError(str(err)) from None
        self.set_cue_list(cue_list)
        return {"cues": len(cue_list.entries), "standby": cue_list.peek_id()}

    def cue_file(self) -> str:
        """The cue list in the ``--cues`` file format (what the console downloads)."""
        return dump_cue_list(self.cue_list)

    def cue_list_state(self) -> dict[str, object]:
        """The cue list for the console: entries (id, name, commands in words), the cue
        standing by and the one fired last."""
        cues = self.cue_list
        return {"entries": [{"id": e.id, "name": e.name, "do": [describe(c) for c in e.commands]}
                            for e in cues.entries],
                "standby": cues.peek_id(), "last": cues.last_fired}

    def song_state(self, max_syllables: int = 16) -> dict[str, object]:
        """The loaded song for the director's console: tempo (the score's and the override),
        bar lengths, and the lead's current lyric line with the index of the sung syllable."""
        if self.song is None:
            return {"title": None}
        now = self.pacer.playout_sample if self._pacer else 0
        beat = self.beat_at(now)
        at_beat = beat if beat is not None else self._stopped_beat
        notes = self._song_beats.get(LEAD, [])
        current = next((i for i, (on, off, _) in enumerate(notes) if on <= at_beat < off),
                       None)
        here = current if current is not None else \
            next((i for i, (on, _, _) in enumerate(notes) if on >= at_beat), len(notes))
        if not notes:
            return {"title": self.song.title, "score_bpm": None, "bpm": None, "line": [],
                    "sung": None, "meters": [[0.0, 4.0]]}
        here = min(here, len(notes) - 1)
        first = here
        while first > 0 and here - first < max_syllables // 2 and \
                notes[first][0] - notes[first - 1][1] < 1.0:  # a rest of a beat ends a line
            first -= 1
        last = here
        while last + 1 < len(notes) and last + 1 - first < max_syllables and \
                notes[last + 1][0] - notes[last][1] < 1.0:
            last += 1
        placement = self._placement
        return {
            "title": self.song.title,
            "score_bpm": round(self.song.tempo_map.bpm_at(max(0.0, at_beat)), 3),
            "bpm": placement.bpm if placement else None,
            "beat": None if beat is None else round(beat, 3),
            "cued_beat": round(self._stopped_beat, 3),
            "meters": [[m.beat, m.numerator * 4 / m.denominator]
                       for m in self.song.time_signatures] or [[0.0, 4.0]],
            "line": [n.lyric for _, _, n in notes[first:last + 1]],
            "sung": None if current is None else current - first,
        }

    def line(self, name: str) -> SingerLine:
        """The singer line called ``name`` (``CueError`` if there is none)."""
        return self._line(name)

    def close(self) -> None:
        """Stop the song loader's worker (the show is over)."""
        self.songs.close()

    def _apply(self, cue: Cue, at: int, voices: dict[str, Resolved] | None = None) -> object:
        """Apply ``cue`` at ``at``; ``voices``: the voices ``voice`` cues name, looked up off
        the loop (``_resolve_cue_voices``; a voice not there is looked up here)."""
        kind, args = cue.kind, cue.args
        if kind in self.delegates:
            return self.delegates[kind](cue)
        if kind == "note.on":
            return self._note_on(self._singer(cue.singer), float(args["pitch"]),  # type: ignore[arg-type]
                                 float(args["velocity"]), args["syllable"], at)  # type: ignore[arg-type]
        if kind == "note.off":
            return self._note_off(self._singer(cue.singer), float(args["pitch"]), at)  # type: ignore[arg-type]
        if kind == "lyric":
            return self._queue_lyric(self._singer(cue.singer), str(args["text"]))
        if kind == "voice":  # a remote cue names a voice; it never opens a server path
            found = (voices or {}).get(str(args["name"]))
            profile, bank = found or self._resolve_voice_text(str(args["name"]))
            switched = at
            for name in self._targets(cue.singer):
                line = self._line(name)
                if bank is None:
                    line.set_voice(profile, at)
                if bank is not None or line.bank is not None:
                    switched = line.set_bank(bank, at)
            return {"voice": bank.name if bank else profile.name, "at_sample": switched}
        if kind == "expr":
            targets = self._targets(cue.singer)
            for name in targets:  # a bank voice that cannot honour it: refused, nothing changes
                bank = self._line(name).bank
                if bank is not None:
                    try:
                        check_expression(bank, str(args["name"]))
                    except ValueError as err:
                        raise CueError(str(err)) from None
            for name in targets:
                self._line(name).add_expression(at, str(args["name"]), float(args["value"]))  # type: ignore[arg-type]
            return {"expr": args["name"], "value": args["value"], "at_sample": at}
        if kind == "song.play":
            self.transport_hold = None
            beat = args["beat"]
            return self._play(self._stopped_beat if beat is None else float(beat), at)  # type: ignore[arg-type]
        if kind == "song.stop":
            self.transport_hold = kind
            return self._stop(at)
        if kind == "song.seek":
            return self._seek(float(args["beat"]), at)  # type: ignore[arg-type]
        if kind == "tempo":
            return self._tempo(float(args["bpm"]), at)  # type: ignore[arg-type]
        if kind == "panic":
            self.transport_hold = kind
            self._stop(at)
            for name in list(self._singers):
                for pitch in list(self._singers[name].open_notes):
                    self._note_off(name, pitch, at)
            return {"panic": True, "at_sample": at}
        if kind == "thump":
            return {"thump": True, "show_sample": self.pacer.playout_sample}
        if kind == "playhead":
            entry = self.cue_list.stand_by(str(args["id"]))
            return {"standby": entry.id, "name": entry.name}
        if kind == "cue.stop":
            entry = self.cue_list.find(str(args["id"]))
            self.transport_hold = kind
            self._stop(at)
            return {"cue": entry.id, "stopped": True}
        raise CueError(f"command {kind!r} is not handled by the show")

    async def _fire(self, cue: Cue, received_ns: int) -> object:
        """GO / cue.start: parse the cue's songs and warm up its singers off the loop (the
        cue list's songs were parsed at show start), then apply its commands together."""
        entry = self.cue_list.next() if cue.kind == "go" else \
            self.cue_list.find(str(cue.args["id"]))
        scores: dict[int, Score] = {}
        for k, sub in enumerate(entry.commands):
            if sub.kind == "song.load":
                try:
                    scores[k] = await self.songs.load(str(sub.args["song"]))
                except (ScoreError, ValueError, OSError) as err:
                    raise CueError(f"cue {entry.id}: {err}") from None
        try:  # voices looked up and lyrics checked off the loop, before anything changes
            voices = await self._resolve_cue_voices(entry.commands)
            for score in scores.values():
                await self._check_song_voices(score)
            if self.song is not None and not scores and \
                    any(sub.kind == "song.play" for sub in entry.commands):
                await self._check_song_voices(self.song)
        except CueError as err:
            raise CueError(f"cue {entry.id}: {err}") from None
        names = [s.singer for s in entry.commands if s.singer is not None]
        for score in scores.values():
            names += self._part_singers(score)
        await self._add_singers(names, f"cue {entry.id}")
        at = self._edit_sample(cue)
        self.cue_list.started(entry)
        replies = []
        for k, sub in enumerate(entry.commands):
            if k in scores:
                replies.append(self.install(scores[k], at))
            else:
                replies.append(self._apply(replace(sub, at_sample=at), at, voices))
        self._edited(cue, at, received_ns)
        return {"cue": entry.id, "name": entry.name, "done": replies}

    # -- songs ----------------------------------------------------------------------------

    def install(self, score: Score, at: int) -> object:
        """Make ``score`` the loaded song (stopping the current one); the caller re-renders
        from ``at`` (``handle`` does). ``CueError`` if its parts would pass the singer cap."""
        parts = self._part_singers(score)
        self._check_room(parts, score.title)
        self._stop(at)
        self.song = score
        self._song_beats = {}
        tm = score.tempo_map
        for name, part in zip(parts, score.parts, strict=True):
            self._singer(name)
            self._song_beats[name] = [(tm.sample_to_beat(n.t_on), tm.sample_to_beat(n.t_off), n)
                                      for n in part.notes]
        self._stopped_beat = 0.0
        return {"song": score.title, "parts": len(score.parts),
                "length_s": round(score.end_sample / SAMPLE_RATE_HZ, 3), "at_sample": at}

    @staticmethod
    def _part_singers(score: Score) -> list[str]:
        """The singer of each part of ``score``: the lead, then one named after the part."""
        return [LEAD if i == 0 else _singer_name(part.name, i)
                for i, part in enumerate(score.parts)]

    part_singers = _part_singers

    def retime_song(self, notes: dict[str, list[Note]], at: int) -> bool:
        """Follow mode: the song notes of each named singer are now ``notes`` (those before
        ``at`` as they were sung); what is not played yet is rendered again from ``at``.
        Inside the span a backing track locks nothing changes and it returns False (logged
        once per refused stretch): the voice keeps the score's time there."""
        beat = self.beat_at(at)
        if beat is not None:
            try:
                self._retime_until(beat, "follower re-timing")
            except CueError as err:
                if not self._retime_refused:
                    log.info("%s", err)
                self._retime_refused = True
                return False
        self._retime_refused = False
        playout = self.pacer.playout_sample
        for name, line_notes in notes.items():
            settled = self._line(name).settled_before(playout)
            self._singers[name].song = [n for n in line_notes if n.t_off >= settled]
            self._refresh(name, at)
        self._last_edit = time.monotonic()
        self.pacer.rewind(at, placed=True)
        return True

    def _beat_offset(self, beat: float) -> float:
        """Samples from the placement's anchor beat to ``beat``."""
        assert self._placement is not None and self.song is not None
        p = self._placement
        tm = self.song.tempo_map
        if p.bpm is None:
            return float(tm.beat_to_sample(beat) - tm.beat_to_sample(p.anchor_beat)) / p.rate
        if p.until_beat is not None and beat > p.until_beat:
            return (self._beat_offset(p.until_beat)
                    + float(tm.beat_to_sample(beat) - tm.beat_to_sample(p.until_beat)) / p.rate)
        return (beat - p.anchor_beat) * 60.0 / p.bpm * SAMPLE_RATE_HZ / p.rate

    def beat_at(self, sample: int) -> float | None:
        """The song beat playing at a show sample (``None`` when no song plays)."""
        if self._placement is None or self.song is None:
            return None
        p = self._placement
        tm = self.song.tempo_map
        if p.bpm is not None:
            beat = p.anchor_beat + (sample - p.anchor_sample) * p.rate / SAMPLE_RATE_HZ \
                * p.bpm / 60.0
            if p.until_beat is None or beat <= p.until_beat:
                return beat
            at_until = p.anchor_sample + self._beat_offset(p.until_beat)
            return tm.sample_to_beat(tm.beat_to_sample(p.until_beat)
                                     + (sample - at_until) * p.rate)
        return tm.sample_to_beat(tm.beat_to_sample(p.anchor_beat)
                                 + (sample - p.anchor_sample) * p.rate)

    def _play(self, beat: float, at: int, bpm: float | None = None,
              until_beat: float | None = None, rate: float = 1.0, tell: str = "play"
              ) -> object:
        if self.song is None:
            raise CueError("no song loaded: send /livesinger/song/load <name> first")
        self._clear_song_from(at)
        if bpm is not None and until_beat is not None and beat >= until_beat:
            bpm = until_beat = None  # past the override's end: the score's tempo
        self._placement = _SongPlacement(at, beat, bpm, until_beat, rate)
        for name, notes in self._song_beats.items():
            placed = []
            for b_on, b_off, note in notes:
                if b_off <= beat:
                    continue
                t_on = at + int(round(self._beat_offset(max(b_on, beat))))
                t_off = at + int(round(self._beat_offset(b_off)))
                if b_on < beat and note.is_melisma:
                    continue
                placed.append(Note(t_on, t_off, note.pitch_midi, note.lyric, note.phonemes,
                                   note.velocity))
            self._singers[name].song = placed
            self._refresh(name, at)
        self._tell(tell, at, beat)
        if bpm is not None and until_beat is not None:  # the backing starts with its span
            self._tell("backing", at, None)
            self._tell("backing", at + int(round(self._beat_offset(until_beat))), until_beat)
        return {"playing": self.song.title, "from_beat": beat, "at_sample": at}

    def chase_to(self, at: int, beat: float, rate: float, relocate: bool) -> None:
        """Timecode chase (``stage.timecode.show``): from show sample ``at`` the song plays
        from ``beat`` at ``rate`` times the score's speed. ``relocate``: a jump (a locate;
        it starts a stopped song); otherwise a trim: the notes sounding at ``at`` keep their
        onsets (only their ends move), so riding drift never re-attacks a note. Transport
        listeners hear ``play`` for a locate, ``trim`` for a trim (no jump); chase listeners
        hear both, with the rate."""
        if self.song is None:
            return
        sounding = {} if relocate else {
            name: [n for n in state.song if n.t_on < at < n.t_off]
            for name, state in self._singers.items()}
        self._play(beat, at, rate=rate, tell="play" if relocate else "trim")
        for listener in self.chase_listeners:
            listener(at, beat, rate)
        for name, notes in sounding.items():
            state = self._singers[name]
            for old in notes:
                for i, new in enumerate(state.song):
                    if new.t_on == at and new.pitch_midi == old.pitch_midi \
                            and new.lyric == old.lyric:
                        state.song[i] = replace(new, t_on=old.t_on)  # the same note, on
                        break
            if notes:
                self._refresh(name, at)
        self._last_edit = time.monotonic()
        self.pacer.rewind(at, placed=True)

    def _clear_song_from(self, at: int) -> None:
        for name, state in self._singers.items():
            kept = []
            for note in state.song:
                if note.t_on >= at:
                    continue
                kept.append(note if note.t_off <= at else replace(note, t_off=at))
            state.song = kept
            self._refresh(name, at)

    def _stop(self, at: int) -> object:
        beat = self.beat_at(at)
        if beat is not None:
            self._stopped_beat = max(0.0, beat)
        self._clear_song_from(at)
        self._placement = None
        self._tell("stop", at, None)
        return {"stopped": True, "beat": beat, "at_sample": at}

    def _tell(self, what: str, at: int, beat: float | None) -> None:
        for listener in self.transport_listeners:
            listener(what, at, beat)

    def _seek(self, beat: float, at: int) -> object:
        if self._placement is None:
            self._stopped_beat = beat
            return {"cued_beat": beat}
        p = self._placement
        bpm, until = p.bpm, None
        span = self.locked_span() if bpm is not None else None
        if span is not None:  # a tempo override never reaches into the backing's span
            if beat < span[0]:
                until = span[0]
            elif beat < span[1]:
                bpm = None
        return self._play(beat, at, bpm, until, p.rate)

    def _tempo(self, bpm: float, at: int) -> object:
        if self._placement is None or self.song is None:
            raise CueError("no song is playing: tempo applies to the playing song")
        beat = self.beat_at(at)
        assert beat is not None
        until = self._retime_until(beat, f"tempo {bpm:g}")
        return {"bpm": bpm, **self._play(beat, at, bpm, until)}  # type: ignore[dict-item]

    def _retime_until(self, beat: float, what: str) -> float | None:
        """Where a re-timing from ``beat`` must end: the first beat of the span a backing
        track locks (``None``: no span ahead); ``CueError`` naming the span when ``beat`` is
        inside it (the backing cannot be re-timed: nothing changes)."""
        span = self.locked_span()
        if span is None:
            return None
        first, last = span
        if first <= beat < last:
            raise CueError(f"{what} at beat {beat:.3f} refused: the backing track locks beats "
                           f"{first:g}..{last:g} to the score's tempo; re-time before beat "
                           f"{first:g} or from beat {last:g}")
        return first if beat < first else None

    # -- live singing ---------------------------------------------------------------------

    def _queue_lyric(self, singer: str, text: str) -> object:
        state = self._singers[singer]
        language = detect_language([text])
        pieces = _split_lyric(text, language)
        try:
            syllables = [(p, phonemize_word([p], language)[0]) for p in pieces]
        except LyricError as err:
            raise CueError(f"lyric {text!r}: {err}") from None
        if len(state.lyrics) + len(syllables) > MAX_LYRIC_QUEUE:
            raise CueError(f"lyric queue of {singer!r} is full ({MAX_LYRIC_QUEUE} syllables)")
        state.lyrics.extend(syllables)
        return {"queued": [p for p, _ in syllables], "waiting": len(state.lyrics)}

    def _note_on(self, singer: str, pitch: float, velocity: float, syllable: object,
                 at: int) -> object:
        state = self._singers[singer]
        bank = self._line(singer).bank
        if isinstance(syllable, str):
            language = detect_language([syllable])
            try:
                lyric, phonemes = syllable, phonemize_word([syllable], language)[0]
            except LyricError as err:
                if bank is None:
                    raise CueError(f"syllable {syllable!r}: {err}") from None
                # the bank sings its own aliases; the built-in phonemes only drive lip-sync
                lyric, phonemes = syllable, self._default_phonemes
        elif state.lyrics:
            lyric, phonemes = state.lyrics[0]
        else:
            lyric, phonemes = self.default_syllable, self._default_phonemes
        lead = None
        if bank is not None:  # checked before anything changes: a bad syllable changes nothing
            try:
                check_syllable(bank, lyric, pitch)
            except ValueError as err:
                raise CueError(str(err)) from None
            lead = live_lead_samples(bank, lyric, pitch)
        if not isinstance(syllable, str) and state.lyrics:
            state.lyrics.popleft()
        line = self._line(singer)
        held_bank = any(b is not None and sings_held_notes(b) for _, b in line.banks)
        if held_bank:  # voice and mouth start where the bank's first segment is expected
            at += max(0, self.live_latency())
        # Legato: a note still sounding ends where this one starts.
        for open_pitch in list(state.open_notes):
            self._close(singer, open_pitch, at)
        # A live note cannot sing its consonants in the past: they start now (a bank's sample
        # starts now, its vowel one preutterance later).
        if lead is None:
            lead = _onset_lead_samples(phonemes)
        note = Note(at + lead, at + lead + int(OPEN_NOTE_S * SAMPLE_RATE_HZ), pitch, lyric,
                    phonemes, velocity)
        state.live.append(note)
        state.open_notes[pitch] = len(state.live) - 1
        if held_bank:
            # a phrase-ahead bank sings it as a held note (first segment in its worker; it
            # sounds from ``at`` or the first chunk after that segment is ready: reported,
            # ``on_live_report``), leaving the open note (there for lip-sync) out of its
            # phrases; its mouth waits for that report (a report that the segment came late
            # can itself come late, after the mouth had opened, when the machine is loaded)
            self._held_ids += 1
            state.held[pitch] = self._held_ids
            state.waiting.add(self._held_ids)
            line.held_note_on(HeldNote(self._held_ids, at, pitch, lyric, velocity, note.t_on))
        self._refresh(singer, at)
        return {"singer": singer, "pitch": pitch, "lyric": lyric, "at_sample": at}

    def _note_off(self, singer: str, pitch: float, at: int) -> object:
        state = self._singers[singer]
        if pitch not in state.open_notes:
            return {"singer": singer, "pitch": pitch, "sounding": False}
        if pitch in state.held:  # the release is rendered in the bank worker: as long
            at += max(0, self.live_latency())
        self._close(singer, pitch, at)
        self._refresh(singer, at)
        return {"singer": singer, "pitch": pitch, "at_sample": at}

    def _close(self, singer: str, pitch: float, at: int) -> None:
        state = self._singers[singer]
        index = state.open_notes.pop(pitch)
        note = state.live[index]
        state.live[index] = replace(note, t_off=max(at, note.t_on + 1))
        held = state.held.pop(pitch, None)
        if held is not None:
            self._line(singer).held_note_off(held, at)

    def on_live_report(self, report: LiveReport) -> None:
        """Keep a held live note's mouth on its voice (on the event loop): a held note's note
        (lip-sync) is held back from its note-on until the report of where its voice starts,
        and moves there if that is later than placed; a late release (``sample`` ``None``)
        keeps the mouth open until the report of where the voice ends."""
        found = next(((name, h) for name in self._singers
                      for h in self._line(name).held_notes if h.id == report.held_id), None)
        if found is None:
            return
        name, held = found
        state = self._singers[name]
        told = self._held_told.setdefault(held.id, set())
        if report.sample is None and report.kind in told:
            return  # its real sample came first (two threads report)
        index = next((i for i, n in enumerate(state.live)
                      if n.t_on == held.note_t_on and n.pitch_midi == held.pitch_midi), None)
        if index is None:
            return
        note = state.live[index]
        waiting_before = set(state.waiting)
        open_s = int(OPEN_NOTE_S * SAMPLE_RATE_HZ)
        if report.kind == "on" and report.sample is None:
            state.waiting.add(held.id)
            changed = note.t_on
        elif report.kind == "on":
            assert report.sample is not None
            told.add("on")
            state.waiting.discard(held.id)
            t_on = note.t_on + report.sample - held.sample
            still_open = note.t_off - note.t_on == open_s
            t_off = t_on + open_s if still_open else max(note.t_off, t_on + 1)
            line = self._line(name)
            line.held_note_moved(held.id, t_on)  # before the notes: it stays out of phrases
            state.live[index] = replace(note, t_on=t_on, t_off=t_off)
            changed = min(note.t_on, t_on)
        elif report.sample is None:  # a late release: the mouth stays open meanwhile
            state.live[index] = replace(note, t_off=note.t_on + open_s)
            changed = note.t_off
        else:
            told.add("off")
            state.live[index] = replace(note, t_off=max(report.sample, note.t_on + 1))
            changed = min(note.t_off, report.sample)
        if state.live[index] == note and report.sample is not None \
                and held.id not in waiting_before:
            return  # in time: the mouth was right all along
        if len(self._held_told) > 256:
            alive = {h.id for n in self._singers for h in self._line(n).held_notes}
            self._held_told = {k: v for k, v in self._held_told.items() if k in alive}
        self._refresh(name, max(changed, self.pacer.playout_sample))

    # -- helpers --------------------------------------------------------------------------

    def _refresh(self, singer: str, at: int) -> None:
        state = self._singers[singer]
        line = self._line(singer)
        notes = state.live
        if state.waiting:  # held notes whose voice has not started: no mouth yet
            line_held = {h.id: h for h in line.held_notes}
            waiting = {(line_held[i].note_t_on, line_held[i].pitch_midi)
                       for i in state.waiting if i in line_held}
            state.waiting &= set(line_held)
            notes = [n for n in notes if (n.t_on, n.pitch_midi) not in waiting]
        line.set_notes(_monophonic(notes + state.song), changed_from=at)
        line.forget_before(self.pacer.playout_sample)

    def _resolve_voice(self, ref: str, paths: bool = True
                       ) -> tuple[VoiceProfile, BankRef | None]:
        """The built-in profile and bank ``ref`` names (a bank keeps the lead's profile for
        lip-sync); ``paths``: a bank folder's path is taken too (the command line, not a
        cue); ``CueError`` (one line) for a voice that is not found."""
        try:
            return get_voice(ref), None
        except UnknownVoiceError:
            pass
        from singer.backends.contract import VoiceError
        from singer.backends.discovery import resolve_voice

        try:
            info = resolve_voice(ref, self.voices_dirs, paths=paths)
        except VoiceError as err:
            raise CueError(str(err)) from None
        if info.type == "builtin":
            return get_voice(info.name), None
        ensemble = getattr(self, "ensemble", None)
        profile = ensemble.lines[0].voice if ensemble is not None else get_voice("soprano")
        return profile, BankRef.of(info, getattr(self, "voice_steps", None))

    def _line(self, name: str) -> SingerLine:
        line = self.ensemble.line(name)
        if line is None:
            raise CueError(f"unknown singer {name!r}; singers: {', '.join(self._singers)}")
        return line

    def _singer(self, name: str | None) -> str:
        """The singer ``name`` addresses (the lead for ``None``), added if new (cues add
        theirs off the loop first: see ``_add_singers``)."""
        name = name or LEAD
        if name not in self._singers:
            self._check_room([name])
            self._join(self._new_line(name))
        return name

    async def _add_singers(self, names: Iterable[str], what: str | None = None) -> None:
        """Add the singers ``names`` asks for that the show lacks, each line warmed up in a
        worker thread (its filters and tables take a while); ``CueError`` naming the cap,
        before any is added, if they would pass it."""
        wanted = [n for n in dict.fromkeys(names) if n not in self._singers]
        self._check_room(wanted, what)
        for name in wanted:
            line = await asyncio.to_thread(self._new_line, name)
            if name not in self._singers:  # another cue may have added it meanwhile
                self._check_room([name], what)
                self._join(line)

    def _check_room(self, names: Iterable[str], what: str | None = None) -> None:
        new = [n for n in dict.fromkeys(names) if n not in self._singers]
        if len(self._singers) + len(new) <= self.max_singers:
            return
        asked = f"{what} needs" if what else "asked for"
        raise CueError(f"{asked} new singer(s) {', '.join(map(repr, new))}, but the show "
                       f"holds at most {self.max_singers} singers (singers: "
                       f"{', '.join(self._singers)})")

    def _new_line(self, name: str) -> SingerLine:
        lead = self._line(LEAD)
        return SingerLine(name, lead.voice, seed=self.seed + len(self._singers),
                          hop=self.synth.hop, bank=lead.bank)

    def _join(self, line: SingerLine) -> None:
        self._singers[line.name] = _SingerState()
        self.ensemble.add_line(line)

    def _fold_played(self) -> None:
        """Fold what has been played for good into each singer's base state, so the kept
        notes and expression changes follow what is still to come, not the show's length."""
        if self._pacer is None:
            return
        playout = self._pacer.playout_sample
        for name, state in self._singers.items():
            line = self._line(name)
            settled = line.settled_before(playout)
            state.drop_ended(settled)
            line.fold_before(settled)
            line.forget_before(playout)

    def _targets(self, name: str | None) -> list[str]:
        return [self._singer(name)] if name else list(self._singers)

    def status(self) -> dict[str, object]:
        """Show state for status publishing and the control page."""
        now = self.pacer.playout_sample if self._pacer else 0
        singing = []
        for name in self._singers:
            line = self._line(name)
            for note in line.notes:
                if note.t_on <= now < note.t_off:
                    singing.append({"singer": name, "pitch": note.pitch_midi,
                                    "lyric": note.lyric})
        beat = self.beat_at(now)
        return {
            "song": self.song.title if self.song else None,
            "playing": self._placement is not None,
            "beat": None if beat is None else round(beat, 3),
            "show_s": round(now / SAMPLE_RATE_HZ, 3),
            "singing": singing,
            "singers": {n: _voice_name(self._line(n)) for n in self._singers},
            "xruns": self._pacer.xruns if self._pacer else 0,
            "late_edits": self._pacer.late_edits if self._pacer else 0,
            "lookahead_ms": round(1000 * self._pacer.lookahead_chunks
                                  * self._pacer.config.chunk_samples / SAMPLE_RATE_HZ, 1)
            if self._pacer else None,
            "edit_margin_ms": round(1000 * self._pacer.edit_margin_s, 1)
            if self._pacer else None,
            "cue_latency_ms": None if self.last_cue_latency_ms is None
            else round(self.last_cue_latency_ms, 3),
            "cues_applied": self.cues_applied,
            "next_cue": self.cue_list.peek_id(),
            "follow": self.follow_status() if self.follow_status else None,
            "synthesis": self._pacer.synthesis_state() if self._pacer else None,
        }


def _cue_list_songs(cue_list: CueList) -> list[str]:
    """The songs the cue list's cues load, in cue order."""
    entries: list[CueEntry] = cue_list.entries
    refs = [str(c.args["song"]) for e in entries for c in e.commands if c.kind == "song.load"]
    return list(dict.fromkeys(refs))


def _singer_name(part: str, index: int) -> str:
    clean = "".join(c if c.isalnum() or c in "_-." else "_" for c in part.strip().lower())
    return clean or f"part{index + 1}"


def _split_lyric(text: str, language: str) -> list[str]:
    """A lyric line into one piece per note: characters for Mandarin, words for English."""
    if language == "zh":
        return [c for c in text if not c.isspace() and c not in "，。、！？,.!?;；：:“”\"'"]
    return [w for w in text.replace("-", " ").split() if w.strip(",.!?;:\"'")]


def _voice_name(line: SingerLine) -> str:
    bank = line.bank
    return bank.name if bank is not None else line.voice.name


def _onset_lead_samples(phonemes: tuple[str, ...]) -> int:
    from singer.phonemes import spec
    from singer.timeline import split_syllable

    onset, _, _ = split_syllable(phonemes)
    return int(round(sum(spec(p).lead_s for p in onset) * SAMPLE_RATE_HZ))


def _monophonic(notes: list[Note]) -> list[Note]:
    """Sort and trim overlaps so a singer sings one note at a time (latest wins)."""
    out: list[Note] = []
    for note in sorted(notes, key=lambda n: n.t_on):
        if out and out[-1].t_off > note.t_on:
            prev = out[-1]
            if prev.t_on >= note.t_on:
                out.pop()
            else:
                out[-1] = replace(prev, t_off=note.t_on)
        out.append(note)
    return out

