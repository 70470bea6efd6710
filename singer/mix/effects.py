"""Streaming vocal effects: biquad EQ, compressor, de-esser, feedback delay.

Every effect is a streaming object: ``process(chunk) -> chunk`` (mono float32, any length,
chunked output equals one-shot output), ``reset()``, ``latency_samples`` (what it delays the
signal by: only the compressor's look-ahead), and ``set(param, value)`` for cues. Filters are
RBJ "Audio EQ Cookbook" biquads run by ``scipy.signal.sosfilt`` with carried state; level
detectors and smoothers are one-pole ``lfilter``s, so no per-sample Python loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from types import ModuleType
from typing import Any, Literal, Protocol

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ

FS = float(SAMPLE_RATE_HZ)


def _signal() -> ModuleType:
    """``scipy.signal``, imported on first use: over a second of imports that every
    ``livesinger`` command line paid just to list the chain presets in its help."""
    from scipy import signal

    return signal
BandKind = Literal["peak", "lowshelf", "highshelf", "highpass", "lowpass", "bandpass"]


class Effect(Protocol):
    """What a chain holds."""

    name: str

    @property
    def latency_samples(self) -> int: ...

    def process(self, chunk: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...

    def set(self, param: str, value: float) -> None: ...


class ParamError(ValueError):
    """A parameter name or value an effect does not take; the message names both."""


def _replace_param(params: Any, param: str, value: float, ranges: dict[str, tuple[float, float]],
                   owner: str) -> Any:
    names = [f.name for f in fields(params) if f.name in ranges]
    if param not in ranges:
        raise ParamError(f"{owner}: no parameter {param!r}; known: {', '.join(names)}")
    low, high = ranges[param]
    if not math.isfinite(value) or not low <= value <= high:
        raise ParamError(f"{owner}.{param}: {value} is out of {low:g}..{high:g}")
    return replace(params, **{param: float(value)})


def biquad_sos(kind: BandKind, freq_hz: float, q: float = 0.707, gain_db: float = 0.0
               ) -> np.ndarray:
    """One RBJ cookbook biquad as a ``[1, 6]`` second-order section."""
    w0 = 2 * math.pi * freq_hz / FS
    cw, sw = math.cos(w0), math.sin(w0)
    alpha = sw / (2 * q)
    a = 10 ** (gain_db / 40)
    if kind == "peak":
        b = [1 + alpha * a, -2 * cw, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cw, 1 - alpha / a]
    elif kind in ("lowshelf", "highshelf"):
        sa = 2 * math.sqrt(a) * alpha
        s = 1 if kind == "lowshelf" else -1
        b = [a * ((a + 1) - s * (a - 1) * cw + sa), s * 2 * a * ((a - 1) - s * (a + 1) * cw),
             a * ((a + 1) - s * (a - 1) * cw - sa)]
        den = [(a + 1) + s * (a - 1) * cw + sa, -s * 2 * ((a - 1) + s * (a + 1) * cw),
               (a + 1) + s * (a - 1) * cw - sa]
    elif kind == "highpass":
        b = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2]
        den = [1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "lowpass":
        b = [(1 - cw) / 2, 1 - cw, (1 - cw) / 2]
        den = [1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "bandpass":
        b = [alpha, 0.0, -alpha]
        den = [1 + alpha, -2 * cw, 1 - alpha]
    else:
        raise ParamError(f"unknown EQ band kind {kind!r}")
    return np.array([[*(v / den[0] for v in b), 1.0, den[1] / den[0], den[2] / den[0]]])


@dataclass(frozen=True, slots=True)
class Band:
    """One EQ band."""

    kind: BandKind
    freq_hz: float
    gain_db: float = 0.0
    """Boost (+) or cut (-) for peak and shelf bands; unused by pass filters."""
    q: float = 0.707


BAND_RANGES = {"freq_hz": (20.0, 20000.0), "gain_db": (-24.0, 24.0), "q": (0.1, 20.0)}


class Equalizer:
    """Cascaded biquad bands; cue parameters as ``BAND.gain_db`` (``BAND`` = its index)."""

    name = "eq"

    def __init__(self, bands: list[Band] | tuple[Band, ...]) -> None:
        self.bands = list(bands)
        self._sos = self._design()
        self._zi = np.zeros((len(self.bands), 2))

    @property
    def latency_samples(self) -> int:
        return 0

    def _design(self) -> np.ndarray:
        if not self.bands:
            return np.zeros((0, 6))
        return np.vstack([biquad_sos(b.kind, b.freq_hz, b.q, b.gain_db) for b in self.bands])

    def process(self, chunk: np.ndarray) -> np.ndarray:
        if not self.bands or len(chunk) == 0:
            return chunk.astype(np.float32, copy=True)
        out, self._zi = _signal().sosfilt(self._sos, chunk.astype(np.float64), zi=self._zi)
        return out.astype(np.float32)

    def reset(self) -> None:
        self._zi = np.zeros((len(self.bands), 2))

    def set(self, param: str, value: float) -> None:
        index, _, field = param.partition(".")
        if not index.isdigit() or int(index) >= len(self.bands):
            raise ParamError(f"eq: no band {index!r} (bands 0..{len(self.bands) - 1})")
        i = int(index)
        self.bands[i] = _replace_param(self.bands[i], field, value, BAND_RANGES, f"eq.{i}")
        self._sos = self._design()  # the state is kept: a parameter glide, not a restart


class _Delay:
    """A fixed delay line of ``n`` samples with carried state."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._buf = np.zeros(n, np.float32)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        if self.n == 0:
            return chunk
        joined = np.concatenate([self._buf, chunk.astype(np.float32)])
        self._buf = joined[len(joined) - self.n:].copy()
        return joined[:len(chunk)]

    def reset(self) -> None:
        self._buf[:] = 0.0


def _one_pole(time_s: float) -> float:
    """Pole of a one-pole smoother with time constant ``time_s``."""
    return math.exp(-1.0 / max(time_s * FS, 1.0))


@dataclass(frozen=True, slots=True)
class CompressorParams:
    """A feed-forward RMS compressor."""

    threshold_db: float = -18.0
    ratio: float = 3.0
    attack_ms: float = 5.0
    """RMS detector time constant: how fast gain reduction builds."""
    release_ms: float = 80.0
    """Gain-reduction smoother time constant: how fast it lets go."""
    makeup_db: float = 0.0
    lookahead_ms: float = 0.0
    """The audio is delayed this much so the gain is down before a transient (= latency)."""


COMP_RANGES = {"threshold_db": (-60.0, 0.0), "ratio": (1.0, 30.0), "attack_ms": (0.1, 200.0),
               "release_ms": (5.0, 2000.0), "makeup_db": (-24.0, 24.0)}


class Compressor:
    """RMS detector → static curve (dB over threshold × (1 − 1/ratio)) → smoothed gain,
    applied to the audio delayed by the look-ahead. ``gain_reduction_db`` is the largest
    reduction of the last chunk (a meter)."""

    name = "comp"

    def __init__(self, params: CompressorParams | None = None) -> None:
        self.params = params or CompressorParams()
        self._delay = _Delay(round(self.params.lookahead_ms * FS / 1000))
        self.gain_reduction_db = 0.0
        self.reset()

    @property
    def latency_samples(self) -> int:
        return self._delay.n

    def reset(self) -> None:
        self._det_zi = np.zeros(1)
        self._gr_zi = np.zeros(1)
        self._delay.reset()

    def gain_db(self, chunk: np.ndarray) -> np.ndarray:
        """Gain (dB, ≤ makeup) for each sample of ``chunk``; advances the detector."""
        p = self.params
        a = _one_pole(p.attack_ms / 1000)
        power, self._det_zi = _signal().lfilter([1 - a], [1, -a], chunk.astype(np.float64) ** 2,
                                             zi=self._det_zi)
        level_db = 10 * np.log10(np.maximum(power, 1e-12)) + 3.0103  # sine RMS → peak dB
        target = np.maximum(level_db - p.threshold_db, 0.0) * (1 - 1 / p.ratio)
        r = _one_pole(p.release_ms / 1000)
        gr, self._gr_zi = _signal().lfilter([1 - r], [1, -r], target, zi=self._gr_zi)
        return p.makeup_db - gr

    def process(self, chunk: np.ndarray) -> np.ndarray:
        if len(chunk) == 0:
            return chunk.astype(np.float32, copy=True)
        g = self.gain_db(chunk)
        self.gain_reduction_db = float(self.params.makeup_db - g.min())
        return (self._delay.process(chunk) * 10 ** (g / 20)).astype(np.float32)

    def set(self, param: str, value: float) -> None:
        self.params = _replace_param(self.params, param, value, COMP_RANGES, "comp")


@dataclass(frozen=True, slots=True)
class DeEsserParams:
    """A split-band de-esser: only the sibilant band is turned down."""

    freq_hz: float = 6500.0
    q: float = 1.2
    threshold_db: float = -30.0
    ratio: float = 4.0


DEESS_RANGES = {"freq_hz": (2000.0, 16000.0), "q": (0.3, 6.0), "threshold_db": (-60.0, 0.0),
                "ratio": (1.0, 20.0)}


class DeEsser:
    """Band-pass the sibilance band, compress that band alone and put it back:
    ``out = x + (g − 1) · band``; zero latency."""

    name = "deess"

    def __init__(self, params: DeEsserParams | None = None) -> None:
        self.params = params or DeEsserParams()
        self._design()
        self.reset()

    @property
    def latency_samples(self) -> int:
        return 0

    def _design(self) -> None:
        p = self.params
        self._sos = biquad_sos("bandpass", p.freq_hz, p.q)
        self._comp = CompressorParams(p.threshold_db, p.ratio, attack_ms=1.0, release_ms=40.0)

    def reset(self) -> None:
        self._zi = np.zeros((1, 2))
        self._detector = Compressor(self._comp)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        if len(chunk) == 0:
            return chunk.astype(np.float32, copy=True)
        band, self._zi = _signal().sosfilt(self._sos, chunk.astype(np.float64), zi=self._zi)
        g = 10 ** (self._detector.gain_db(band) / 20)
        return (chunk + (g - 1) * band).astype(np.float32)

    def set(self, param: str, value: float) -> None:
        self.params = _replace_param(self.params, param, value, DEESS_RANGES, "deess")
        self._design()
        self._detector.params = self._comp


@dataclass(frozen=True, slots=True)
class DelayParams:
    """A feedback echo."""

    time_ms: float = 250.0
    feedback: float = 0.3
    mix: float = 0.15


DELAY_RANGES = {"feedback": (0.0, 0.95), "mix": (0.0, 1.0)}
MAX_DELAY_MS = 2000.0


class Echo:
    """``d[t] = x[t] + feedback · d[t − D]``, ``out = x + mix · d[t − D]``; run in blocks of at
    most D samples, so no per-sample loop. ``time_ms`` is fixed at construction."""

    name = "delay"

    def __init__(self, params: DelayParams | None = None) -> None:
        self.params = params or DelayParams()
        if not 1.0 <= self.params.time_ms <= MAX_DELAY_MS:
            raise ParamError(f"delay.time_ms: {self.params.time_ms} is out of 1..{MAX_DELAY_MS}")
        self._n = round(self.params.time_ms * FS / 1000)
        self.reset()

    @property
    def latency_samples(self) -> int:
        return 0

    def reset(self) -> None:
        self._buf = np.zeros(self._n, np.float64)  # the last D samples of d
        self._pos = 0

    def process(self, chunk: np.ndarray) -> np.ndarray:
        x = chunk.astype(np.float64)
        out = np.empty_like(x)
        p = self.params
        i = 0
        while i < len(x):
            take = min(len(x) - i, self._n - self._pos)  # up to the ring's wrap
            past = self._buf[self._pos:self._pos + take].copy()  # d[t − D]
            self._buf[self._pos:self._pos + take] = x[i:i + take] + p.feedback * past
            out[i:i + take] = x[i:i + take] + p.mix * past
            self._pos = (self._pos + take) % self._n
            i += take
        return out.astype(np.float32)

    def set(self, param: str, value: float) -> None:
        self.params = _replace_param(self.params, param, value, DELAY_RANGES, "delay")
