"""A DiffSinger bank behind the backend contract: phrase-ahead, live notes in segments.

A line is a ``PhraseTrack`` (phrases rendered once, cached by content, crossfaded where they
meet) plus the live notes started on it (``LiveNote``: a first segment rendered at note-on,
held-vowel continuations rendered ahead by ``prepare``, a release segment at note-off).
``prepare(until)`` is the worker's job; ``render`` only mixes what is ready (and renders what
is not, which offline is simply the work).
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np

from singer.backends.contract import Ahead, BackendLine, LiveStart, VoiceBackend, VoiceInfo
from singer.backends.diffsinger.bank import DiffSingerBank
from singer.backends.diffsinger.live import LiveNote
from singer.backends.diffsinger.phrases import PhraseRenderer, PhraseTrack
from singer.backends.diffsinger.render import RenderSettings, render_phrase
from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.performer import Expression

LOOKAHEAD_S = 4.0
"""How far ahead of playout ``prepare`` is called by default (phrases are rendered from
``PhraseTrack``'s 2 s lead before their first note on top of this)."""


class DiffSingerLine(BackendLine):
    """One singer's line sung by a DiffSinger bank (thread-safe)."""

    def __init__(self, name: str, renderer: PhraseRenderer,
                 notes: list[Note] | tuple[Note, ...] = ()) -> None:
        self.name = name
        self.renderer = renderer
        self.track = PhraseTrack(renderer, tuple(notes))
        self._lock = threading.Lock()
        self._live: dict[int, LiveNote] = {}
        self._next_id = 1

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

    def prepare(self, until_sample: int) -> int:
        """Render the phrases starting before ``until_sample`` and extend held notes to it."""
        with self._lock:
            track, held = self.track, [n for n in self._live.values() if not n.released]
        done = track.prepare(until_sample)
        for live in held:
            done += len(live.extend(until_sample))
        return done

    def render(self, start_sample: int, n_samples: int) -> np.ndarray:
        """Phrases and live notes of ``[start, start + n)``, mixed."""
        with self._lock:
            track, lives = self.track, list(self._live.values())
        out = track.read(start_sample, n_samples)
        for live in lives:
            if not live.released:
                live.extend(start_sample + n_samples)  # offline, or prepare fell behind
            out += live.read(start_sample, n_samples)
        return out

    def forget_before(self, sample: int) -> None:
        """Drop live notes released and over before ``sample``."""
        with self._lock:
            self._live = {k: n for k, n in self._live.items()
                          if not n.released or n.rendered_until > sample}

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

    def open_line(self, name: str, notes: list[Note] | tuple[Note, ...] = (), *, seed: int = 0,
                  expression: Expression | None = None) -> DiffSingerLine:
        """A line with its own phrase cache (``seed`` shapes the engine's f0 curve)."""
        settings = dataclasses.replace(self.settings, seed=seed)
        return DiffSingerLine(name, PhraseRenderer(self.bank, settings), notes)
