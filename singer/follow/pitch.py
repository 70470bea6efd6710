"""A causal YIN pitch tracker for a singing voice: 48 kHz chunks in, one frame per 5 ms hop.

YIN (de Cheveigné & Kawahara 2002): the cumulative-mean-normalised difference function of a
20 ms window, its first dip under a threshold, refined by parabolic interpolation. The input
is low-passed and decimated to 16 kHz first (a causal FIR, state kept across chunks), so a hop
costs one 1024-point FFT pair. Each frame looks only at samples already heard, and its window
is the newest 20 ms, compared with the audio up to one longest period before it: a frame
stamped ``t_sample`` ends there and describes the voice ``FRAME_DELAY_S`` (about 11 ms)
earlier. Frames end on the hops counted from ``start_sample``, so a tracker fed the show's
5 ms chunks decides at each chunk's last sample, without waiting for the next chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from singer.contracts import SAMPLE_RATE_HZ

ANALYSIS_RATE_HZ = 16_000
DECIMATE = SAMPLE_RATE_HZ // ANALYSIS_RATE_HZ
HOP_S = 0.005
"""One frame per show chunk (``serve --chunk-ms 5``): an onset is decided 5 ms sooner on
average than with 10 ms hops, and the confirming frames (``events.CONFIRM_FRAMES``) span
10 ms, not 20 (docs/follow.md)."""
WINDOW_S = 0.020
MIN_F0_HZ = 65.0
MAX_F0_HZ = 1000.0
THRESHOLD = 0.1
_HOP = int(HOP_S * ANALYSIS_RATE_HZ)
_WINDOW = int(WINDOW_S * ANALYSIS_RATE_HZ)
_MAX_LAG = int(ANALYSIS_RATE_HZ / MIN_F0_HZ)
_MIN_LAG = int(ANALYSIS_RATE_HZ / MAX_F0_HZ)
_FRAME = _WINDOW + _MAX_LAG
_FFT = 1 << int(np.ceil(np.log2(_FRAME + _WINDOW)))
_FIR = signal.firwin(31, 0.8 / DECIMATE).astype(np.float64)
_LEAD = _FRAME % _HOP
"""Zeros a fresh tracker starts with, so that every frame ends on a hop boundary."""
FRAME_DELAY_S = (_WINDOW / 2 + (len(_FIR) - 1) / 2) / ANALYSIS_RATE_HZ
"""How far behind a frame's stamp the sound it describes sits (half the window + the
filter's delay)."""


@dataclass(frozen=True, slots=True)
class PitchFrame:
    """One 10 ms analysis frame ending at show sample ``t_sample``.

    ``f0_hz`` is 0 where no period was found; ``periodicity`` is 1 − the YIN dip (1 = a pure
    periodic tone, under ~0.5 = noise); ``rms_db`` is the frame's level in dBFS.
    """

    t_sample: int
    f0_hz: float
    periodicity: float
    rms_db: float

    @property
    def midi(self) -> float:
        """The pitch as a MIDI note number (NaN where unvoiced)."""
        return float(69.0 + 12.0 * np.log2(self.f0_hz / 440.0)) if self.f0_hz > 0 else float("nan")


class YinTracker:
    """Streaming YIN: ``process(samples)`` returns the frames completed by those samples.

    ``start_sample`` is the show sample of the first sample it will be given. ``reset()``
    forgets the audio heard so far.
    """

    def __init__(self, start_sample: int = 0, threshold: float = THRESHOLD) -> None:
        self.threshold = threshold
        self._start = start_sample
        self.reset(start_sample)

    def reset(self, start_sample: int | None = None) -> None:
        """Forget all audio; the next sample given sits at ``start_sample``."""
        if start_sample is not None:
            self._start = start_sample
        self._history = np.zeros(len(_FIR) - 1)  # the input the filter still reaches back to
        self._phase = 0  # input samples to skip before the next decimated one
        self._buf = np.zeros(_LEAD)
        self._analysed = 0  # 16 kHz samples consumed into hops

    def process(self, samples: np.ndarray) -> list[PitchFrame]:
        """Feed mono 48 kHz samples; frames for each 5 ms hop they completed."""
        x = np.asarray(samples, dtype=np.float64).reshape(-1)
        if not len(x):
            return []
        # the causal FIR as a 'valid' convolution over the kept history (a tenth of
        # ``lfilter``'s cost on a 5 ms chunk)
        padded = np.concatenate([self._history, x])
        filtered = np.convolve(padded, _FIR, mode="valid")
        self._history = padded[len(padded) - (len(_FIR) - 1):]
        low = filtered[self._phase::DECIMATE]
        self._phase = (self._phase - len(x)) % DECIMATE
        self._buf = np.concatenate([self._buf, low])
        frames: list[PitchFrame] = []
        while len(self._buf) >= _FRAME:
            frame = self._buf[:_FRAME]
            self._analysed += _HOP
            end_sample = self._start + (self._analysed + _FRAME - _HOP - _LEAD) * DECIMATE
            frames.append(self._analyse(frame, end_sample))
            self._buf = self._buf[_HOP:]
        return frames

    def _analyse(self, frame: np.ndarray, end_sample: int) -> PitchFrame:
        newest = frame[-_WINDOW:]
        rms = float(np.sqrt(np.mean(newest * newest)))
        rms_db = 20.0 * np.log10(max(rms, 1e-9))
        # YIN's window is the frame's first part, compared with the audio after it: given
        # the frame reversed, it is the newest audio, compared with what came before.
        f0, periodicity = yin(frame[::-1], self.threshold)
        return PitchFrame(end_sample, f0, periodicity, rms_db)


def yin(frame: np.ndarray, threshold: float = THRESHOLD) -> tuple[float, float]:
    """(f0 Hz or 0, periodicity 0..1) of one 16 kHz frame of ``WINDOW + MAX_LAG`` samples
    (its first ``WINDOW`` samples compared with those up to ``MAX_LAG`` after them)."""
    x = frame - frame.mean()
    w = x[:_WINDOW]
    spec_x = np.fft.rfft(x, _FFT)
    spec_w = np.fft.rfft(w, _FFT)
    acf = np.fft.irfft(spec_x * np.conj(spec_w), _FFT)[: _MAX_LAG + 1]
    sq = np.concatenate([[0.0], np.cumsum(x * x)])
    lags = np.arange(_MAX_LAG + 1)
    energy_w = sq[_WINDOW]
    energy_lag = sq[lags + _WINDOW] - sq[lags]
    diff = np.maximum(energy_w + energy_lag - 2.0 * acf, 0.0)
    diff[0] = 0.0
    cum = np.cumsum(diff[1:])
    cmnd = np.ones_like(diff)
    cmnd[1:] = diff[1:] * np.arange(1, _MAX_LAG + 1) / np.maximum(cum, 1e-12)
    search = cmnd[_MIN_LAG:_MAX_LAG]
    # The first dip that is nearly as deep as the deepest: a formant-boosted harmonic can dip
    # under a fixed threshold a few times shorter than the period.
    floor = float(search.min())
    below = np.flatnonzero(search < max(threshold, floor + 0.08))
    i = int(below[0])
    while i + 1 < len(search) and search[i + 1] < search[i]:
        i += 1
    tau = i + _MIN_LAG
    best = float(cmnd[tau])
    if best > 0.5 or energy_w <= 1e-10:
        return 0.0, max(0.0, 1.0 - best)
    if 1 <= tau < _MAX_LAG:
        a, b, c = cmnd[tau - 1], cmnd[tau], cmnd[tau + 1]
        denom = a - 2 * b + c
        shift = 0.5 * (a - c) / denom if abs(denom) > 1e-12 else 0.0
        tau_f = tau + float(np.clip(shift, -1.0, 1.0))
    else:
        tau_f = float(tau)
    return ANALYSIS_RATE_HZ / tau_f, max(0.0, 1.0 - best)
