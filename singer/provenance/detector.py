"""Finding the watermark in a clip: sync search at unknown offset, then payload decoding.

Each ~5 s window is searched by both layers: the patchwork's sync pattern (``_search``) and
the additive noise's correlation (``spread.correlate``). Either firing at its threshold (each
5e-7 false alarms per window on unmarked audio, so 1e-6 together) means found; the payload is
decoded from the patchwork."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from math import erfc, sqrt

import numpy as np
from scipy.signal import resample_poly

from singer.provenance import spread, wmcode
from singer.provenance import watermark as wm

_FINE = 64                                   # analysis hop: the offset resolution
_FINE_PER_SLOT = wm.SLOT_SAMPLES // _FINE
_WINDOW_SLOTS = 2 * wm.SLOTS_PER_PERIOD + 4  # ~5 s analysed at a time
_MIN_SLOTS = 24                              # ~1 s: shorter clips are not searched
_BLOCK_FRAMES = 4096


@dataclass(frozen=True, slots=True)
class Segment:
    """One stretch of the file where the mark was found (one analysis window)."""

    start_s: float
    end_s: float
    score: float
    """The patchwork's sync z-score here."""
    payloads: tuple[tuple[float, wm.Payload], ...]
    """(from s, payload) for each stretch whose payload decoded with a good CRC."""
    spread_score: float = 0.0
    """The additive layer's correlation z-score here."""

    def to_json(self) -> dict[str, object]:
        """The segment as JSON."""
        return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                "score": round(self.score, 2), "spread_score": round(self.spread_score, 2),
                "payloads": [{"from_s": round(t, 3), **p.to_json()} for t, p in self.payloads]}


@dataclass(frozen=True, slots=True)
class Detection:
    """What ``detect`` found: whether, which payload, how sure, and where."""

    detected: bool
    payload: wm.Payload | None
    """The first payload whose CRC checked (None when none did)."""
    confidence: float
    """1 - the chance that unmarked audio scores as high anywhere in the search."""
    score: float
    """Best sync z-score (unmarked audio: ~N(0, 1) per candidate; found at ``threshold``)."""
    segments: tuple[Segment, ...] = field(default=())
    spread_score: float = 0.0
    """Best z-score of the additive layer (~N(0, 1) per lag; found at ``spread.THRESHOLD``)."""

    def to_json(self) -> dict[str, object]:
        """``detected``, ``payload``, ``confidence``, ``segments`` (and both layers' scores)."""
        return {"detected": self.detected,
                "payload": None if self.payload is None else self.payload.to_json(),
                "confidence": round(self.confidence, 6), "score": round(self.score, 2),
                "spread_score": round(self.spread_score, 2),
                "segments": [s.to_json() for s in self.segments]}


def _to_48k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if sample_rate != wm.SAMPLE_RATE_HZ:
        ratio = Fraction(wm.SAMPLE_RATE_HZ, int(sample_rate))
        x = resample_poly(x, ratio.numerator, ratio.denominator)
    return x


def band_energies(x: np.ndarray) -> np.ndarray:
    """Energy of each watermark band in 512-sample Hann frames every 64 samples: (T, 26)."""
    frames = (len(x) - wm.FFT_SIZE) // _FINE + 1
    if frames <= 0:
        return np.zeros((0, wm.BANDS))
    window = np.hanning(wm.FFT_SIZE + 1)[:-1]
    view = np.lib.stride_tricks.sliding_window_view(x, wm.FFT_SIZE)[::_FINE]
    hi = wm.FIRST_BIN + wm.BANDS * wm.BINS_PER_BAND
    out = np.empty((frames, wm.BANDS))
    for a in range(0, frames, _BLOCK_FRAMES):
        spec = np.fft.rfft(view[a:a + _BLOCK_FRAMES] * window, axis=1)[:, wm.FIRST_BIN:hi]
        power = spec.real ** 2 + spec.imag ** 2
        out[a:a + _BLOCK_FRAMES] = power.reshape(len(power), wm.BANDS, -1).sum(axis=2)
    return out


def residuals(slot_energy: np.ndarray) -> np.ndarray:
    """De-trended, robustly scaled log-energies (slots 1..n-2 of ``slot_energy``)."""
    floor = 1e-9 * float(slot_energy.max()) + 1e-30
    level = np.log(slot_energy + floor)
    r = level[1:-1] - 0.5 * (level[:-2] + level[2:])       # remove slow changes in time
    r -= r.mean(axis=1, keepdims=True)                      # and the level of the slot
    scale = 1.4826 * np.median(np.abs(r), axis=0, keepdims=True) + 1e-12
    return np.clip(r / scale, -1.0, 1.0)


def _slot_energies(cum: np.ndarray, phase: int, slots: int) -> np.ndarray:
    edges = phase + _FINE_PER_SLOT * np.arange(slots + 1)
    return cum[edges[1:]] - cum[edges[:-1]]


def _decode(r: np.ndarray, positions: np.ndarray) -> wm.Payload | None:
    """The payload from residual rows ``r`` at period slots ``positions``; None if CRC fails."""
    cells = ~wm.IS_SYNC[positions]
    soft = np.bincount(wm.BIT_INDEX[positions][cells], (r * wm.DATA_CHIPS[positions])[cells],
                       minlength=3 * (wm.MESSAGE_BITS + wmcode.TAIL_BITS))
    bits = wmcode.decode(soft)
    body = bits[:wm.ID_BITS + wm.COUNTER_BITS]
    if not np.array_equal(wmcode.crc8(body), bits[-8:]):
        return None
    value = int("".join(map(str, body.tolist())), 2)
    return wm.Payload(value >> wm.COUNTER_BITS, value & ((1 << wm.COUNTER_BITS) - 1))


def _payloads(r: np.ndarray, p: int, t0: float) -> list[tuple[float, wm.Payload]]:
    """Decode the whole window, else each side of every period boundary (an epoch change)."""
    positions = (np.arange(len(r)) + 1 + p) % wm.SLOTS_PER_PERIOD
    whole = _decode(r, positions)
    if whole is not None:
        return [(t0, whole)]
    found = []
    for b in np.flatnonzero(positions == 0):
        for rows in (slice(0, b), slice(b, len(r))):
            if rows.stop - (rows.start or 0) >= wm.SLOTS_PER_PERIOD // 2:
                decoded = _decode(r[rows], positions[rows])
                at = t0 + (rows.start or 0) * wm.SLOT_SAMPLES / wm.SAMPLE_RATE_HZ
                if decoded is not None and (at, decoded) not in found:
                    found.append((at, decoded))
    return sorted(found, key=lambda f: f[0])


def _search(cum: np.ndarray, start: int, slots: int) -> tuple[float, int, int]:
    """Best (score, phase, period slot) for ``slots`` slots from fine frame ``start``."""
    period = wm.SLOTS_PER_PERIOD
    shifts = (np.arange(slots - 2)[None, :] + 1 + np.arange(period)[:, None]) % period
    sync = wm.SYNC_CHIPS[shifts]                 # (P, n, K): pattern for every period slot
    mask = wm.IS_SYNC[shifts]
    best = (-np.inf, 0, 0)
    for phase in range(_FINE_PER_SLOT):
        r = residuals(_slot_energies(cum, start + phase, slots))
        num = np.einsum("jk,pjk->p", r, sync)
        den = np.sqrt(np.einsum("jk,pjk->p", r * r, mask)) + 1e-12
        score = num / den
        p = int(np.argmax(score))
        if score[p] > best[0]:
            best = (float(score[p]), phase, p)
    return best


def detect(audio: np.ndarray, sample_rate: int, *, threshold: float = wm.THRESHOLD,
           spread_threshold: float = spread.THRESHOLD) -> Detection:
    """Look for the watermark in ``audio`` (mono or (n, channels), any rate, any length)."""
    x = _to_48k(audio, sample_rate)
    white = spread.whiten(x)
    energy = band_energies(x)
    cum = np.concatenate([np.zeros((1, wm.BANDS)), np.cumsum(energy, axis=0)])
    total_slots = (len(energy) - _FINE_PER_SLOT) // _FINE_PER_SLOT
    if total_slots < _MIN_SLOTS:
        return Detection(False, None, 0.0, 0.0)
    starts = list(range(0, max(1, total_slots - _WINDOW_SLOTS + 1), wm.SLOTS_PER_PERIOD))
    if starts[-1] + _WINDOW_SLOTS < total_slots:
        starts.append(total_slots - _WINDOW_SLOTS)
    candidates = _FINE_PER_SLOT * wm.SLOTS_PER_PERIOD * len(starts)
    best_score, best_spread, payload, segments = -np.inf, 0.0, None, []
    for first in starts:
        slots = min(_WINDOW_SLOTS, total_slots)
        start = first * _FINE_PER_SLOT
        score, phase, p = _search(cum, start, slots)
        spread_score, _ = spread.correlate(white, start * _FINE,
                                           (slots + 1) * wm.SLOT_SAMPLES + wm.FFT_SIZE)
        best_score = max(best_score, score)
        best_spread = max(best_spread, spread_score)
        if score < threshold and spread_score < spread_threshold:
            continue
        t0 = (start + phase) * _FINE / wm.SAMPLE_RATE_HZ
        found: list[tuple[float, wm.Payload]] = []
        if score >= threshold:
            r = residuals(_slot_energies(cum, start + phase, slots))
            found = _payloads(r, p, t0 + wm.SLOT_SAMPLES / wm.SAMPLE_RATE_HZ)
        if payload is None and found:
            payload = found[0][1]
        segments.append(Segment(t0, t0 + slots * wm.SLOT_SAMPLES / wm.SAMPLE_RATE_HZ,
                                score, tuple(found), spread_score))
    p_sync = min(1.0, candidates * 0.5 * erfc(best_score / sqrt(2.0)))
    p_spread = min(1.0, len(starts) * spread.PERIOD_SAMPLES * erfc(best_spread / sqrt(2.0)))
    p_value = min(1.0, 2.0 * min(p_sync, p_spread))
    return Detection(best_score >= threshold or best_spread >= spread_threshold, payload,
                     1.0 - p_value, best_score, tuple(segments), best_spread)
