"""A UTAU bank behind the backend contract: sample-accurate streaming, live notes at once.

``UtauBackend`` loads the bank once and shares one ``SampleAnalyser`` (WORLD analysis cached
on disk by file hash) between its lines; ``warm_up`` analyses every sample of the bank so a
live note starts from ready data.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from singer.backends.contract import Ahead, BackendLine, LiveStart, VoiceBackend, VoiceInfo
from singer.backends.utau.analysis import SampleAnalyser
from singer.backends.utau.bank import UtauBank
from singer.backends.utau.line import UtauLine
from singer.contracts import Note
from singer.performer import Expression, ExpressionEvent
from singer.voices import VoiceProfile, get_voice


class UtauBackendLine(BackendLine):
    """A ``UtauLine`` behind the contract."""

    def __init__(self, name: str, line: UtauLine) -> None:
        self.name = name
        self.line = line
        self._lock = threading.Lock()
        self._held: set[int] = set()

    def set_notes(self, notes: list[Note] | tuple[Note, ...], changed_from: int = 0) -> None:
        """Sing ``notes``; blocks before ``changed_from`` stay cached."""
        self.line.set_notes(notes, changed_from)

    def set_expression(self, base: Expression,
                       events: tuple[ExpressionEvent, ...] | list[ExpressionEvent],
                       changed_from: int = 0) -> None:
        """Vibrato depth/rate in the f0 curve; breathiness (noise mix), formant shift
        (envelope warp), tension (spectral tilt) and volume in the resynthesis."""
        self.line.set_expression(base, tuple(events), changed_from)

    def note_on(self, sample: int, pitch_midi: float, lyric: str,
                velocity: float = 0.8) -> LiveStart:
        """The sample starts at ``sample``; its vowel lands one preutterance later."""
        live = self.line.note_on(sample, pitch_midi, lyric, velocity)
        with self._lock:
            self._held.add(live.id)
        return LiveStart(live.id, live.start_sample, live.note.t_on)

    def note_off(self, note_id: int, sample: int) -> None:
        """Release at ``sample`` (a note already released, or unknown, is left as it is: a
        second note-off must not move its release)."""
        with self._lock:
            if note_id not in self._held:
                return
            self._held.discard(note_id)
        self.line.note_off(note_id, sample)

    def render(self, start_sample: int, n_samples: int) -> np.ndarray:
        """``UtauLine.render``: chunked equals whole."""
        return self.line.render(start_sample, n_samples)

    def forget_before(self, sample: int) -> None:
        """Drop cached blocks and finished live notes before ``sample``."""
        self.line.forget_before(sample)

    @property
    def end_sample(self) -> int:
        """Where the last placed sample ends."""
        return self.line.end_sample


class UtauBackend(VoiceBackend):
    """A classic UTAU bank sung in-process (WORLD resampling, no external resampler)."""

    ahead = Ahead("streaming")
    expression_fields = frozenset({"vibrato_depth", "vibrato_rate", "breathiness", "tension",
                                   "volume", "formant_shift"})

    def __init__(self, bank: UtauBank, info: VoiceInfo, *, cache_dir: Path | str | None = None,
                 pitch_style: VoiceProfile | str = "soprano") -> None:
        self.bank = bank
        self.info = info
        self.analyser = SampleAnalyser(cache_dir)
        self.pitch_style = get_voice(pitch_style) if isinstance(pitch_style, str) \
            else pitch_style
        """Whose f0 habits (vibrato, preparation, overshoot) the engine's curve follows."""

    @classmethod
    def load(cls, folder: Path | str, info: VoiceInfo | None = None, *,
             cache_dir: Path | str | None = None) -> UtauBackend:
        """Load the bank in ``folder`` (``BankError`` naming file and line on a problem)."""
        from singer.backends.discovery import describe_bank

        bank = UtauBank.load(folder)
        return cls(bank, info or describe_bank(Path(folder)), cache_dir=cache_dir)

    @property
    def device(self) -> str:
        """WORLD and numpy run on the CPU."""
        return "cpu"

    def warm_up(self) -> None:
        """Analyse (or load from the disk cache) every sample of the bank."""
        for wav in self.bank.wav_files():
            self.analyser.features(wav)

    def open_line(self, name: str, notes: list[Note] | tuple[Note, ...] = (), *, seed: int = 0,
                  expression: Expression | None = None) -> UtauBackendLine:
        """A line sharing this backend's analysis cache."""
        return UtauBackendLine(name, UtauLine(self.bank, list(notes), analyser=self.analyser,
                                              voice=self.pitch_style, seed=seed,
                                              expression=expression))
