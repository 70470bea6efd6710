"""Data contracts the singer produces: notes, control frames and audio chunks.

Every time in these contracts is on the one show clock: an ``int`` count of output samples at
``SAMPLE_RATE_HZ`` since the show started.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_RATE_HZ = 48_000
"""The show clock's rate: every ``*_sample`` / ``t`` field counts samples at this rate."""

DEFAULT_HOP_SAMPLES = 480
"""One control hop (10 ms), also the default audio chunk."""


def seconds_to_samples(seconds: float) -> int:
    """Round a duration in seconds to the nearest whole show sample."""
    return int(round(seconds * SAMPLE_RATE_HZ))


@dataclass(frozen=True, slots=True)
class Note:
    """A sung note on the show clock.

    ``t_on``/``t_off`` are show samples; the vowel of the syllable lands on ``t_on`` (its
    onset consonants are sung before it). ``phonemes`` are names from ``singer.phonemes``;
    an empty tuple with ``lyric == "-"`` continues the previous syllable (melisma).
    """

    t_on: int
    t_off: int
    pitch_midi: float
    lyric: str
    phonemes: tuple[str, ...]
    velocity: float = 0.8

    @property
    def is_melisma(self) -> bool:
        """True when this note carries on the previous note's syllable."""
        return not self.phonemes

    @property
    def duration_samples(self) -> int:
        """Length of the note in show samples."""
        return self.t_off - self.t_on


@dataclass(frozen=True, slots=True)
class ControlFrame:
    """The voice's controls for one hop, starting at show sample ``t``.

    ``phonemes`` maps phoneme names to their weight in the current sound (weights sum to 1
    while singing); ``loudness`` is the linear RMS target of the voiced part; ``breath`` and
    ``tension`` are 0..1; ``vibrato_cents`` is the current vibrato depth.
    """

    t: int
    f0_hz: float
    loudness: float
    phonemes: dict[str, float]
    breath: float
    tension: float
    vibrato_cents: float


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Mono float32 audio at 48 kHz whose first sample sits at show sample ``t``.

    ``parts``, where the pacer has them: each singer's dry audio (``[rows, n]``, row ``i`` =
    the ensemble's ``i``-th line, rows past its lines silent); ``samples`` is their sum."""

    t: int
    samples: np.ndarray
    parts: np.ndarray | None = None

    @property
    def end(self) -> int:
        """Show sample just after the last sample of this chunk."""
        return self.t + len(self.samples)
