"""The One Euro filter (Casiez, Roussel, Vogel, CHI 2012), vectorised over landmarks.

A low-pass filter whose cutoff rises with speed: still landmarks are smoothed hard (no
jitter), fast ones follow with little lag. Per element of the array::

    dx      = (x - x_prev) / dt, low-passed at d_cutoff_hz
    cutoff  = min_cutoff_hz + beta * |dx|
    alpha   = 1 / (1 + 1 / (2 pi cutoff dt))
    y       = y_prev + alpha (x - y_prev)

``beta`` is in 1/(units of x): tune it per stream (metres for world landmarks, pixels for the
face mesh). mediapipe's own pose smoothing uses min_cutoff 0.1, beta 40, d_cutoff 1.0 on
normalised coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class OneEuroParams:
    """Parameters of one One Euro filter."""

    min_cutoff_hz: float = 1.0
    """Cutoff when still: lower = less jitter, more lag at slow speeds."""
    beta: float = 10.0
    """Speed coefficient (1/units): higher = less lag on fast moves."""
    d_cutoff_hz: float = 1.0
    """Cutoff of the speed estimate."""


def _alpha(cutoff_hz: np.ndarray | float, dt_s: float) -> np.ndarray | float:
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff_hz))
    return 1.0 / (1.0 + tau / dt_s)


class OneEuroFilter:
    """Filters successive arrays of one shape; ``process`` once per frame, ``reset`` on loss."""

    def __init__(self, params: OneEuroParams | None = None) -> None:
        self.params = params or OneEuroParams()
        self._y: np.ndarray | None = None
        self._dy: np.ndarray | None = None
        self._t_s = 0.0

    def reset(self) -> None:
        """Forget the past: the next ``process`` passes its input through."""
        self._y = self._dy = None

    def process(self, x: np.ndarray, t_s: float) -> np.ndarray:
        """Filtered ``x`` at time ``t_s`` (seconds, increasing)."""
        x = np.asarray(x, dtype=float)
        if self._y is None or self._dy is None or self._y.shape != x.shape:
            self._y, self._dy, self._t_s = x.copy(), np.zeros_like(x), t_s
            return x.copy()
        dt = t_s - self._t_s
        if dt <= 0:
            return self._y.copy()
        p = self.params
        dx = (x - self._y) / dt
        self._dy = self._dy + _alpha(p.d_cutoff_hz, dt) * (dx - self._dy)
        cutoff = p.min_cutoff_hz + p.beta * np.abs(self._dy)
        self._y = self._y + _alpha(cutoff, dt) * (x - self._y)
        self._t_s = t_s
        return self._y.copy()
