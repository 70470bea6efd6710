"""The audible AI label: the standard's short-long-short-short rhythm cue (Morse "AI").

GB 45438-2025 allows, as the explicit label of audio, a rhythm of short-long-short-short
beeps at the start (``../shared/REFERENCE.md`` → "Labels, watermark, consent"). Ours is a
1 kHz tone in 100 ms units: short 1 unit, long 3, one unit between beeps and three between
the letters (· —   · ·), raised-cosine edges, at -18 dBFS: 1.1 s in all.
"""

from __future__ import annotations

import threading

import numpy as np

SAMPLE_RATE_HZ = 48_000
UNIT_S = 0.1
TONE_HZ = 1000.0
LEVEL_DBFS = -18.0
EDGE_S = 0.005
PATTERN = ((1, 1), (3, 3), (1, 1), (1, 0))
"""(beep units, gap units after it): · —, then · · ."""
LEAD_OUT_S = 0.4
"""Silence after the cue in a rendered file, before the song starts."""


def rhythm_cue(sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """The cue as float32 mono at ``sample_rate_hz`` (1.1 s)."""
    unit = int(round(UNIT_S * sample_rate_hz))
    edge = int(round(EDGE_S * sample_rate_hz))
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(edge) + 0.5) / edge)
    amp = 10.0 ** (LEVEL_DBFS / 20.0) * np.sqrt(2.0)  # a sine at LEVEL_DBFS RMS
    parts = []
    for beep, gap in PATTERN:
        n = beep * unit
        tone = amp * np.sin(2 * np.pi * TONE_HZ * np.arange(n) / sample_rate_hz)
        tone[:edge] *= ramp
        tone[-edge:] *= ramp[::-1]
        parts += [tone, np.zeros(gap * unit)]
    return np.concatenate(parts).astype(np.float32)


def beep_lengths_units(audio: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> list[int]:
    """The beeps in ``audio`` as lengths in cue units (e.g. ``[1, 3, 1, 1]``): for checking.

    Only the cue's tone is listened to (a band-pass of ±60 Hz), so a song under it is not."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, (TONE_HZ - 60.0, TONE_HZ + 60.0), "bandpass", fs=sample_rate_hz,
                 output="sos")
    audio = sosfiltfilt(sos, np.asarray(audio, np.float64))
    hop = sample_rate_hz // 200  # 5 ms envelope
    frames = len(audio) // hop
    env = np.sqrt(np.mean(np.asarray(audio[:frames * hop], np.float64).reshape(frames, hop)
                          ** 2, axis=1))
    on = env > 0.5 * 10.0 ** (LEVEL_DBFS / 20.0)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
    lengths = (edges[1::2] - edges[::2]) * hop / sample_rate_hz
    return [int(round(s / UNIT_S)) for s in lengths]


def prepend_cue(audio: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """A rendered file's audio with the cue and ``LEAD_OUT_S`` of silence before it."""
    lead = np.concatenate([rhythm_cue(sample_rate_hz),
                           np.zeros(int(LEAD_OUT_S * sample_rate_hz), np.float32)])
    return np.concatenate([lead, np.asarray(audio, np.float32)])


def lead_samples(sample_rate_hz: int = SAMPLE_RATE_HZ) -> int:
    """How far ``prepend_cue`` moves the song (score time t lands at t + this)."""
    return len(rhythm_cue(sample_rate_hz)) + int(LEAD_OUT_S * sample_rate_hz)


class CueMixer:
    """Mixes the cue into a live stream at show sample ``start_sample`` (chunk by chunk), and
    again at every start ``add``-ed later (each song's start in a live show).

    ``add`` may be called from another thread than ``mix`` (the Director's, the pacer's)."""

    def __init__(self, start_sample: int = 0) -> None:
        self.start_sample = start_sample
        self._cue = rhythm_cue()
        self._starts = [start_sample]
        self._lock = threading.Lock()

    @property
    def end_sample(self) -> int:
        """Show sample after the last scheduled cue's last."""
        with self._lock:
            return max(self._starts, default=self.start_sample) + len(self._cue)

    @property
    def starts(self) -> tuple[int, ...]:
        """Show samples of the cues still to come or playing."""
        with self._lock:
            return tuple(self._starts)

    def add(self, start_sample: int) -> bool:
        """Play the cue (again) from show sample ``start_sample``; False (and nothing added)
        when it would start while a scheduled cue still plays (no two cues over each other)."""
        with self._lock:
            if any(s <= start_sample < s + len(self._cue) for s in self._starts):
                return False
            self._starts.append(start_sample)
            return True

    def mix(self, t: int, samples: np.ndarray) -> np.ndarray:
        """``samples`` (starting at show sample ``t``) with the part of the cues they overlap."""
        with self._lock:
            self._starts = [s for s in self._starts if s + len(self._cue) > t]
            starts = list(self._starts)
        out = samples
        for start in starts:
            a, b = max(t, start), min(t + len(samples), start + len(self._cue))
            if a >= b:
                continue
            if out is samples:
                out = np.array(samples, dtype=np.float32)
            out[a - t:b - t] += self._cue[a - start:b - start]
        return out
