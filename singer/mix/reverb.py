"""A feedback delay network reverb (Jot/Stautner–Puckette FDN), written here because no
library with a licence that fits an MIT project offers a streaming one (scipy has the filters,
not a reverb; pedalboard's and DawDreamer's are GPL-3.0, pyo's LGPL).

Eight delay lines of mutually prime lengths, a Householder feedback matrix (orthogonal: the
loop is lossless before the per-line gains), a gain per line that sets the RT60, and a
one-pole low-pass per line that makes the highs die faster (damping). Lines are processed in
blocks no longer than the shortest line, so the recursion needs no per-sample loop and any
chunking gives the same samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from singer.mix.effects import FS, ParamError, _replace_param, _signal

BASE_DELAYS = (1031, 1327, 1523, 1871, 2053, 2311, 2539, 2857)
"""Line lengths (samples at 48 kHz) for ``size`` 1."""


@dataclass(frozen=True, slots=True)
class ReverbParams:
    """A hall/plate-like tail."""

    rt60_s: float = 1.8
    """Time for the tail to fall 60 dB (mid frequencies)."""
    damping: float = 0.35
    """0: highs last as long as mids; near 1: dark tail."""
    mix: float = 0.2
    """Wet level added to the dry voice."""
    predelay_ms: float = 20.0
    size: float = 1.0
    """Scales the line lengths (0.5..2); fixed at construction."""


REVERB_RANGES = {"rt60_s": (0.1, 10.0), "damping": (0.0, 0.95), "mix": (0.0, 1.0)}


class FdnReverb:
    """``process(chunk)`` returns the dry voice plus ``mix`` × the tail; zero latency (the
    dry path is not delayed; the pre-delay only delays the tail)."""

    name = "reverb"

    def __init__(self, params: ReverbParams | None = None) -> None:
        self.params = params or ReverbParams()
        p = self.params
        if not 0.5 <= p.size <= 2.0:
            raise ParamError(f"reverb.size: {p.size} is out of 0.5..2")
        if not 0.0 <= p.predelay_ms <= 200.0:
            raise ParamError(f"reverb.predelay_ms: {p.predelay_ms} is out of 0..200")
        self._delays = np.array([int(round(d * p.size)) | 1 for d in BASE_DELAYS])
        n = len(self._delays)
        self._matrix = np.eye(n) - 2.0 / n * np.ones((n, n))
        self._in_gain = np.where(np.arange(n) % 2 == 0, 1.0, -1.0) / np.sqrt(n)
        self._out_gain = np.where(np.arange(n) % 3 == 0, -1.0, 1.0) / np.sqrt(n)
        self._predelay = int(round(p.predelay_ms * FS / 1000))
        self._design()
        self.reset()

    @property
    def latency_samples(self) -> int:
        return 0

    def _design(self) -> None:
        p = self.params
        self._gains = 10 ** (-3 * self._delays / (p.rt60_s * FS))
        self._pole = p.damping

    def reset(self) -> None:
        self._lines = [np.zeros(int(d)) for d in self._delays]
        self._pos = np.zeros(len(self._delays), dtype=np.int64)
        self._lp_zi = np.zeros((len(self._delays), 1))
        self._pre = np.zeros(self._predelay)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        x = chunk.astype(np.float64)
        if len(x) == 0:
            return chunk.astype(np.float32, copy=True)
        if self._predelay:
            joined = np.concatenate([self._pre, x])
            self._pre = joined[len(x):].copy()
            feed = joined[:len(x)]
        else:
            feed = x
        wet = np.empty_like(x)
        i = 0
        step = int(self._delays.min())
        while i < len(x):
            take = min(step, len(x) - i)
            wet[i:i + take] = self._block(feed[i:i + take])
            i += take
        return (x + self.params.mix * wet).astype(np.float32)

    def _block(self, feed: np.ndarray) -> np.ndarray:
        """``len(feed)`` ≤ the shortest line: every read precedes this block's writes."""
        n = len(feed)
        outs = np.empty((len(self._delays), n))
        for k, line in enumerate(self._lines):
            idx = (self._pos[k] + np.arange(n)) % len(line)
            outs[k] = line[idx]
        damped, self._lp_zi = _signal().lfilter([1 - self._pole], [1, -self._pole], outs, axis=1,
                                             zi=self._lp_zi)
        back = self._matrix @ (damped * self._gains[:, None]) + np.outer(self._in_gain, feed)
        for k, line in enumerate(self._lines):
            idx = (self._pos[k] + np.arange(n)) % len(line)
            line[idx] = back[k]
            self._pos[k] = (self._pos[k] + n) % len(line)
        return np.asarray(self._out_gain @ outs)

    def set(self, param: str, value: float) -> None:
        self.params = _replace_param(self.params, param, value, REVERB_RANGES, "reverb")
        self._design()
