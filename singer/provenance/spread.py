"""The watermark's second, *additive* layer: a keyed noise shaped under the singing voice.

The band-energy patchwork (``watermark.py``) is a host-modulated mark: another, louder signal
mixed over it dilutes its log-energy modulation and its detection falls away. This layer is
added instead: ``y = x + Σ_k g_k(t) · p_k(t)``, where ``p`` is a keyed pseudo-noise of flat
spectrum (unit magnitude, random phase) that repeats every ``PERIOD_SAMPLES`` (2**16, 1.37 s)
on the show clock, split into ``BAND_EDGES_HZ`` bands ``p_k`` (each of unit RMS), and
``g_k = STRENGTH · (the host's RMS in band k)``, measured causally on the last 512 input
samples at every 256-sample block and ramped linearly across the block. So the noise sits
``-20·log10(STRENGTH)`` dB (30) under the voice in every band (under its masking threshold), is
exactly zero in silence, and adds no latency.

Detection (``whiten``, then ``correlate``) is linear in the received signal, so an
interfering signal only adds noise to it: the clip is whitened per 4096-sample frame (phase
only, inside the mark's bands), folded modulo the period, and cross-correlated with the
period's phase by one FFT;
the z-score of the largest |correlation| over the period's 2**16 lags is the statistic
(unmarked audio: ~N(0, 1) per lag). The payload stays on the patchwork; this layer only says
*marked or not*, and where the clip sits in the period.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

SAMPLE_RATE_HZ = 48_000
PERIOD_SAMPLES = 1 << 16
"""The noise repeats every 65,536 samples (1.365 s) of show time."""
KEY = 0x5EED_5B7D
BAND_EDGES_HZ = (300.0, 450.0, 600.0, 800.0, 1000.0, 1250.0, 1600.0, 2000.0, 2500.0, 3150.0,
                 4000.0, 5000.0, 6300.0, 8000.0, 10_000.0, 12_500.0)
"""The shaping bands (about a third of an octave each, 300 Hz–12.5 kHz)."""
BANDS = len(BAND_EDGES_HZ) - 1
STRENGTH = 0.03
"""Mark RMS / host RMS in each band (−30 dB)."""
BLOCK_SAMPLES = 256
"""The gains are re-measured every 256 samples (5.3 ms) and ramped across the block."""
ANALYSIS_SAMPLES = 512
"""The gains come from the host's last 512 samples (10.7 ms; Hann window)."""
MEMORY_SAMPLES = ANALYSIS_SAMPLES + 2 * BLOCK_SAMPLES
"""After a seek, output is the same as an unbroken stream's once this many samples passed."""
FRAME = 4096
"""The detector's whitening frame (hop 2048): fine enough in frequency (11.7 Hz) to weigh the
gaps between a louder song's harmonics, where the mark is least covered, like the rest."""
PER_CLIP_FALSE_RATE = 5e-7
"""Chance that one analysis window (~5 s) of unmarked audio fires this layer."""


def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The keyed noise per band (BANDS, PERIOD), the first bin of each band in a 512-point
    rFFT (BANDS + 1: the last is the end), and the reference phase spectrum for detection."""
    rng = np.random.default_rng(KEY)
    freqs = np.fft.rfftfreq(PERIOD_SAMPLES, 1.0 / SAMPLE_RATE_HZ)
    phase = np.exp(2j * np.pi * rng.random(len(freqs)))
    tables = np.empty((BANDS, PERIOD_SAMPLES))
    inside = np.zeros(len(freqs), dtype=bool)
    for k in range(BANDS):
        band = (freqs >= BAND_EDGES_HZ[k]) & (freqs < BAND_EDGES_HZ[k + 1])
        inside |= band
        p = np.fft.irfft(np.where(band, phase, 0.0), PERIOD_SAMPLES)
        tables[k] = p / np.sqrt(np.mean(p * p))
    reference = np.where(inside, phase, 0.0)
    small = np.fft.rfftfreq(ANALYSIS_SAMPLES, 1.0 / SAMPLE_RATE_HZ)
    first_bins = np.searchsorted(small, BAND_EDGES_HZ)
    return tables, first_bins, reference


_TABLES, _FIRST_BINS, _REFERENCE = _tables()
_WINDOW = np.hanning(ANALYSIS_SAMPLES + 1)[:-1]
_POWER_SCALE = 2.0 / (ANALYSIS_SAMPLES * float(np.sum(_WINDOW ** 2)))
_RAMP = (np.arange(BLOCK_SAMPLES) + 0.5) / BLOCK_SAMPLES


def band_gains(history: np.ndarray, strength: float = STRENGTH) -> np.ndarray:
    """``strength`` × the RMS of ``history`` (the last 512 samples) in each band: (BANDS,)."""
    spectrum = np.fft.rfft(history * _WINDOW)[_FIRST_BINS[0]:_FIRST_BINS[-1]]
    power = spectrum.real ** 2 + spectrum.imag ** 2
    band_power = np.add.reduceat(power, _FIRST_BINS[:-1] - _FIRST_BINS[0])
    return strength * np.sqrt(band_power * _POWER_SCALE)


class SpreadLayer:
    """Causal streaming generator of the additive mark: ``mark(chunk)`` returns what to add.

    Output sample ``t`` depends on input before the block holding ``t`` only (no latency);
    blocks sit on the stream's sample grid, so any chunking gives the same samples."""

    def __init__(self, strength: float = STRENGTH) -> None:
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"spread watermark strength must be in [0, 1), not {strength}")
        self.strength = strength
        self.seek(0)

    def seek(self, sample: int) -> None:
        """Continue at stream sample ``sample`` (the host history is cleared: no mark until
        it refills)."""
        self._pos = sample
        self._history = np.zeros(ANALYSIS_SAMPLES)
        self._gains = np.zeros((2, BANDS))  # the block's start gains, and their change

    def mark(self, x: np.ndarray) -> np.ndarray:
        """The mark to add to ``x`` (float64, the samples from the current position)."""
        out = np.empty(len(x))
        i = 0
        while i < len(x):
            offset = self._pos % BLOCK_SAMPLES
            if offset == 0:
                start = self._gains[0] + self._gains[1]
                self._gains = np.stack([start, band_gains(self._history, self.strength) - start])
            n = min(BLOCK_SAMPLES - offset, len(x) - i)
            p0 = self._pos % PERIOD_SAMPLES
            level, change = self._gains @ _TABLES[:, p0:p0 + n]
            out[i:i + n] = level + _RAMP[offset:offset + n] * change
            if n >= ANALYSIS_SAMPLES:
                self._history = x[i + n - ANALYSIS_SAMPLES:i + n].copy()
            else:
                self._history[:-n] = self._history[n:]
                self._history[-n:] = x[i:i + n]
            self._pos += n
            i += n
        return out


def whiten(x: np.ndarray) -> np.ndarray:
    """``x`` (48 kHz) with every ``FRAME``-sample frame's spectrum set to unit magnitude inside
    the mark's bands (zero outside), overlap-added back (Hann, half-frame hop): same length."""
    hop = FRAME // 2
    padded = np.concatenate([np.zeros(hop), x, np.zeros(FRAME)])
    frames = (len(padded) - FRAME) // hop + 1
    view = np.lib.stride_tricks.sliding_window_view(padded, FRAME)[::hop][:frames]
    window = np.hanning(FRAME + 1)[:-1]
    freqs = np.fft.rfftfreq(FRAME, 1.0 / SAMPLE_RATE_HZ)
    band = (freqs >= BAND_EDGES_HZ[0]) & (freqs < BAND_EDGES_HZ[-1])
    out = np.zeros(len(padded))
    for a in range(0, frames, 512):
        spec = np.fft.rfft(view[a:a + 512] * window, axis=1)
        mag = np.abs(spec)
        floor = 1e-9 * float(mag.max(initial=0.0)) + 1e-30
        flat = np.fft.irfft(np.where(band, spec / (mag + floor), 0.0), FRAME, axis=1)
        for j, frame in enumerate(flat):
            s = (a + j) * hop
            out[s:s + FRAME] += frame
    return out[hop:hop + len(x)]


def correlate(white: np.ndarray, start: int, length: int) -> tuple[float, int]:
    """z-score of the largest |correlation| with the period, and the period sample at which
    ``white[start]`` sits, for ``length`` samples of a whitened signal from ``start``."""
    folded = np.zeros(PERIOD_SAMPLES)
    seg = white[start:start + length]
    for a in range(0, len(seg), PERIOD_SAMPLES):
        part = seg[a:a + PERIOD_SAMPLES]
        folded[:len(part)] += part
    c = np.fft.irfft(np.fft.rfft(folded) * np.conj(_REFERENCE), PERIOD_SAMPLES)
    std = float(np.std(c))
    if std <= 0.0:
        return 0.0, 0
    z = np.abs(c - c.mean()) / std
    lag = int(np.argmax(z))
    return float(z[lag]), (-lag) % PERIOD_SAMPLES


def threshold(per_window_false_rate: float = PER_CLIP_FALSE_RATE) -> float:
    """The z-score at which one window of unmarked audio fires with ``per_window_false_rate``:
    its 2 × 2**16 candidates (every lag, either sign) each taken as N(0, 1)."""
    return float(-ndtri(per_window_false_rate / (2 * PERIOD_SAMPLES)))


THRESHOLD = round(threshold(), 2)
