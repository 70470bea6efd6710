"""A DiffSinger bank behind the backend contract: phrase-ahead, live notes in segments.

A line is a ``PhraseTrack`` (phrases rendered once, cached by content, crossfaded where they
meet) plus the live notes started on it (``LiveNote``: a first segment rendered at note-on,
held-vowel continuations rendered ahead by ``prepare``, a release segment at note-off).
``prepare(until)`` is the worker's job; ``render`` only mixes what is ready (and renders what
is not, which offline is simply the work).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from singer.backends.contract import Ahead, BackendLine, LiveStart, VoiceBackend, VoiceInfo
from singer.backends.diffsinger.bank import DiffSingerBank
from singer.backends.diffsinger.live import LiveNote
from singer.backends.diffsinger.phrases import PhraseRenderer, PhraseTrack
from singer.backends.diffsinger.render import RenderSettings, expression_fields, render_phrase
from singer.backends.segment_latency import SegmentLatency
from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.performer import Expression, ExpressionEvent

log = logging.getLogger(__name__)

LOOKAHEAD_S = 4.0
"""How far ahead of playout ``prepare`` is called by default (phrases are rendered from
``PhraseTrack``'s 2 s lead before their first note on top of this)."""
TELL_LATE_AHEAD_S = 0.05
"""A queued note-on/off whose segment is not ready when the render loop comes this close to
its sample is told late (``live_listener``, sample ``None``): the show's mouth, drawn from the
built-in controls, leads their sound by up to two control frames (20 ms), and must hear of it
before it opens (a note ready after all is told again with its sample)."""
HELD_AHEAD_S = 1.5
"""How far past the audio already played a held live note (``queue_note_on``) is extended:
more is work a note-off throws away, and it delays the next note-on's first segment."""


@dataclass
class _QueuedNote:
    """A live note asked for (``queue_note_on``) whose first segment is not rendered yet."""

    sample: int
    pitch_midi: float
    lyric: str
    velocity: float
    off_sample: int | None = None
    asked_ns: int = field(default_factory=time.monotonic_ns)
    late_told: bool = False  # the listener heard it missed its sample


class DiffSingerLine(BackendLine):
    """One singer's line sung by a DiffSinger bank (thread-safe)."""

    def __init__(self, name: str, renderer: PhraseRenderer,
                 notes: list[Note] | tuple[Note, ...] = ()) -> None:
        self.name = name
        self.renderer = renderer
        self.track = PhraseTrack(renderer, tuple(notes))
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a queued note started
        self._live: dict[int, LiveNote] = {}
        self._queued: dict[int, _QueuedNote] = {}
        self._offs: dict[int, int] = {}  # started queued notes waiting for their release
        self._offs_asked: dict[int, tuple[int, bool]] = {}  # id -> (asked ns, late told)
        self.latency = SegmentLatency()
        """The live segments' waits (``live_latency_samples``)."""
        self._deferred: set[int] = set()  # live notes only ``prepare`` renders
        self._played_to = 0  # end of the latest ``render``: audio before it is fixed
        self._next_id = 1

    def set_expression(self, base: Expression,
                       events: tuple[ExpressionEvent, ...] | list[ExpressionEvent],
                       changed_from: int = 0) -> None:
        """Sing the phrases with the singer's expression (``render.expression_fields``): only
        the phrases a change reaches are rendered again."""
        self.renderer.set_expression(base, events)

    def set_notes(self, notes: list[Note] | tuple[Note, ...], changed_from: int = 0) -> None:
        """Replace the line; only phrases whose notes changed are rendered again."""
        with self._lock:
            self.track.set_notes(tuple(notes))

    def note_on(self, sample: int, pitch_midi: float, lyric: str,
                velocity: float = 0.8) -> LiveStart:
        """Render the note's first segment now (its first phoneme sounds at ``sample``); a
        note still held ends there (one note at a time)."""
        live = LiveNote(self.renderer, sample, pitch_midi, lyric, velocity)
        live.begin()
        with self._lock:
            held = [n for n in self._live.values() if not n.released]
            live_id = self._next_id
            self._next_id += 1
            self._live[live_id] = live
        for other in held:
            other.release(sample)
        return LiveStart(live_id, sample, live.note.t_on)

    def note_off(self, note_id: int, sample: int) -> None:
        """Render the release segment (vowel to ``sample``, coda, SP)."""
        with self._lock:
            live = self._live.get(note_id)
        if live is not None and not live.released:
            live.release(sample)

    def queue_note_on(self, sample: int, pitch_midi: float, lyric: str,
                      velocity: float = 0.8) -> int:
        """Start a held note without rendering anything here: the next ``prepare`` renders
        its first segment before any other work. It sounds from ``sample`` when that segment
        is ready before ``sample`` is rendered, else from the end of the ``render`` that was
        last called when it became ready (the first chunk after it is ready)."""
        with self._lock:
            live_id = self._next_id
            self._next_id += 1
            self._queued[live_id] = _QueuedNote(sample, pitch_midi, lyric, velocity)
        return live_id

    def queue_note_off(self, note_id: int, sample: int) -> None:
        """Release a queued note at ``sample``; ``prepare`` renders the release (if it is
        ready after ``sample`` was rendered, the note ends where it is ready instead)."""
        with self._lock:
            queued = self._queued.get(note_id)
            if queued is not None:
                queued.off_sample = sample if queued.off_sample is None \
                    else min(queued.off_sample, sample)
                return
            live = self._live.get(note_id)
            if live is not None and not live.released:
                self._offs[note_id] = min(self._offs.get(note_id, sample), sample)
                self._offs_asked.setdefault(note_id, (time.monotonic_ns(), False))

    def wait_ready(self, start_sample: int, until_sample: int, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the queued notes that start in ``[start, until)`` to
        have their first segment; True if none is left waiting there. (Only the chunk a
        note should start in waits: once that chunk is rendered without it, the note starts
        at the first chunk after it is ready, and waiting longer would only eat the render
        loop's lookahead.)"""
        with self._changed:
            return self._changed.wait_for(
                lambda: not any(start_sample <= q.sample < until_sample
                                for q in self._queued.values()),
                timeout=max(0.0, timeout_s))

    @property
    def has_queued(self) -> bool:
        """Whether a queued note-on or note-off waits for ``prepare``."""
        with self._lock:
            return bool(self._queued or self._offs)

    @property
    def live_latency_samples(self) -> int:
        """A high percentile of the waits from a queued note-on/off to its segment being
        ready (``SegmentLatency``), in show samples."""
        return self.latency.expected_samples

    def _tell(self, reports: list[tuple[int, str, int | None]]) -> None:
        listener = self.live_listener
        if listener is not None:
            for report in reports:
                try:
                    listener(*report)
                except Exception:  # the show's side is gone or broken: the voice sings on
                    log.exception("telling the show about live note %d failed", report[0])

    def prepare(self, until_sample: int) -> int:
        """Render what is waiting, most urgent first: queued notes' first segments, queued
        releases, held notes' continuations (to ``HELD_AHEAD_S`` past what was played, not
        further: a release drops them), then the phrases starting before ``until_sample``
        (one at a time, a queued note-on going first between two)."""
        done = self._start_queued() + self._release_queued()
        with self._lock:
            track, held = self.track, [(i, n) for i, n in self._live.items()
                                       if not n.released and i not in self._offs]
            horizon = min(until_sample, self._played_to + int(HELD_AHEAD_S * SAMPLE_RATE_HZ))
        for live_id, live in held:
            until = horizon if live_id in self._deferred else until_sample
            while not live.released and live.rendered_until < until:
                if self.has_queued:  # a note-on or note-off waits: it goes first
                    return done + self.prepare(until_sample)
                done += len(live.extend(live.rendered_until + 1))  # one segment
        for phrase in track.due(until_sample):
            if self.has_queued:
                return done + self.prepare(until_sample)
            done += track.render_one(phrase)
        return done

    def _start_queued(self) -> int:
        """Render the first segment of every queued note, in the order they start."""
        with self._lock:
            queued = sorted(self._queued.items(), key=lambda kv: kv[1].sample)
        reports: list[tuple[int, str, int | None]] = []
        for live_id, q in queued:
            try:
                live = LiveNote(self.renderer, q.sample, q.pitch_midi, q.lyric, q.velocity)
                live.begin()
            except Exception:  # it cannot sing: dropped (the caller logs), nothing waits on it
                with self._changed:
                    del self._queued[live_id]
                    self._changed.notify_all()
                raise
            self.latency.record((time.monotonic_ns() - q.asked_ns) / 1e9)
            with self._changed:
                # its first sound moves to the first sample not yet played, if that is later;
                # nothing sounds before it (the SP lead-in before it is cut)
                late = max(0, self._played_to - q.sample)
                if late:
                    live.shift(late)
                live.trim_before(q.sample + late)
                for other_id, other in self._live.items():  # one note at a time
                    if not other.released:
                        self._offs[other_id] = min(self._offs.get(other_id, q.sample + late),
                                                   q.sample + late)
                        self._offs_asked.setdefault(other_id, (time.monotonic_ns(), False))
                self._live[live_id] = live
                self._deferred.add(live_id)
                del self._queued[live_id]
                if q.off_sample is not None:
                    self._offs[live_id] = max(q.off_sample, live.note.t_on)
                    self._offs_asked[live_id] = (time.monotonic_ns(), False)
                self._changed.notify_all()
            reports.append((live_id, "on", q.sample + late))
            self._tell(reports[-1:])
        return len(queued)

    def _release_queued(self) -> int:
        """Render the queued releases; one ready after its sample was played starts at the
        first sample not yet played."""
        with self._lock:
            offs = list(self._offs.items())
        for live_id, off in offs:
            with self._lock:
                live = self._live[live_id]
            try:
                seg = live.render_release(off)
            except Exception:  # it ends where it is (the caller logs), nothing waits on it
                with self._lock:
                    del self._offs[live_id], self._live[live_id]
                    self._offs_asked.pop(live_id, None)
                raise
            with self._lock:
                asked_ns, _ = self._offs_asked.pop(live_id, (time.monotonic_ns(), False))
                late = max(0, self._played_to - seg.start)
                live.commit_release(seg, not_before=self._played_to)
                del self._offs[live_id]
            self.latency.record((time.monotonic_ns() - asked_ns) / 1e9)
            # the vowel ends ``late`` after the note-off asked (the release moved as a whole)
            self._tell([(live_id, "off", off + late)])
        return len(offs)

    def render(self, start_sample: int, n_samples: int) -> np.ndarray:
        """Phrases and live notes of ``[start, start + n)``, mixed (a queued live note that
        ``prepare`` has not started yet is not heard)."""
        with self._lock:
            track, lives = self.track, list(self._live.items())
            self._played_to = end = start_sample + n_samples
            missed = self._missed(end + int(TELL_LATE_AHEAD_S * SAMPLE_RATE_HZ))
        if missed:
            self._tell(missed)
        out = track.read(start_sample, n_samples)
        for live_id, live in lives:
            if not live.released and live_id not in self._deferred:
                live.extend(start_sample + n_samples)  # offline, or prepare fell behind
            out += live.read(start_sample, n_samples)
        return out

    def _missed(self, played_to: int) -> list[tuple[int, str, int | None]]:
        """Queued note-ons and note-offs whose sample is before ``played_to`` without their
        segment (each told once); under the lock."""
        missed: list[tuple[int, str, int | None]] = []
        for live_id, q in self._queued.items():
            if q.sample < played_to and not q.late_told:
                q.late_told = True
                missed.append((live_id, "on", None))
        for live_id, off in self._offs.items():
            asked_ns, told = self._offs_asked.get(live_id, (0, False))
            if off < played_to and not told:
                self._offs_asked[live_id] = (asked_ns, True)
                missed.append((live_id, "off", None))
        return missed

    def forget_before(self, sample: int) -> None:
        """Drop live notes released and over before ``sample``."""
        with self._lock:
            self._live = {k: n for k, n in self._live.items()
                          if not n.released or n.rendered_until > sample}
            self._deferred &= set(self._live)

    @property
    def end_sample(self) -> int:
        """After the last phrase's SP tail and every live note's release."""
        settings = self.renderer.settings
        tail = int((settings.tail_frames + 2) * self.renderer.bank.frame_s * SAMPLE_RATE_HZ)
        with self._lock:
            notes, lives = self.track.notes, list(self._live.values())
        end = max((n.t_off for n in notes), default=0) + tail if notes else 0
        return max([end] + [n.rendered_until for n in lives])


class DiffSingerBackend(VoiceBackend):
    """A loaded DiffSinger bank (onnxruntime on CUDA when present, else CPU)."""

    def __init__(self, bank: DiffSingerBank, info: VoiceInfo,
                 settings: RenderSettings | None = None, *,
                 lookahead_s: float = LOOKAHEAD_S) -> None:
        self.bank = bank
        self.info = info
        self.settings = settings or RenderSettings()
        self.ahead = Ahead("phrase_ahead", int(lookahead_s * SAMPLE_RATE_HZ))
        self.expression_fields = expression_fields(bank.config, "pitch" in bank.predictors)
        self.first_segment_s = 0.0
        """A live note's first segment's render time at ``warm_up`` (0: not warmed)."""

    @classmethod
    def load(cls, folder: Path | str, info: VoiceInfo | None = None, *, device: str = "auto",
             settings: RenderSettings | None = None) -> DiffSingerBackend:
        """Load and validate the bank (``BankError`` naming the file at fault)."""
        from singer.backends.discovery import describe_bank

        bank = DiffSingerBank.load(folder, device=device)
        return cls(bank, info or describe_bank(Path(folder)), settings)

    @property
    def device(self) -> str:
        """The execution provider the acoustic model runs on."""
        return self.bank.device

    def warm_up(self) -> None:
        """Sing one short probe phrase: every ONNX session runs once end to end."""
        d = next(iter(self.bank.dictionaries.values()), None)
        if d is None or not d.entries:
            return
        grapheme = next(iter(d.entries))
        note = Note(SAMPLE_RATE_HZ // 2, SAMPLE_RATE_HZ, 60.0,
                    f"[{' '.join(d.entries[grapheme])}]", ("a",))
        render_phrase(self.bank, [note], self.settings)
        # a live note's first segment once, timed: the start value of the live latency
        start = time.perf_counter()
        LiveNote(PhraseRenderer(self.bank, self.settings), SAMPLE_RATE_HZ // 2, 60.0,
                 note.lyric).begin()
        self.first_segment_s = time.perf_counter() - start

    def open_line(self, name: str, notes: list[Note] | tuple[Note, ...] = (), *, seed: int = 0,
                  expression: Expression | None = None) -> DiffSingerLine:
        """A line with its own phrase cache (``seed`` shapes the engine's f0 curve)."""
        settings = dataclasses.replace(self.settings, seed=seed)
        renderer = PhraseRenderer(self.bank, settings)
        if expression is not None:
            renderer.set_expression(expression, ())
        line = DiffSingerLine(name, renderer, notes)
        line.latency.seed(self.first_segment_s)
        return line
