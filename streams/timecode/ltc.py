"""Linear timecode (SMPTE 12M LTC) as audio: 80-bit frames, biphase-mark coded.

Every bit cell starts with a transition; a 1 has a second one in its middle. The frame ends
with the sync word 0011 1111 1111 1101. ``encode`` writes frames as a square-ish wave;
``LtcDecoder`` finds transitions (zero crossings with hysteresis), tells half cells from
whole cells by their length against a running estimate, and reads frames at the sync word —
at any speed near nominal and either polarity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streams.timecode.smpte import Rate, Timecode, TimecodeError

SYNC = (0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1)


def frame_bits(tc: Timecode) -> list[int]:
    """The 80 bits of ``tc``'s LTC frame (user bits zero, polarity bit set)."""
    bits = [0] * 80

    def put(at: int, width: int, value: int) -> None:
        for i in range(width):
            bits[at + i] = (value >> i) & 1

    put(0, 4, tc.frames % 10)
    put(8, 2, tc.frames // 10)
    bits[10] = int(tc.rate.drop)
    put(16, 4, tc.seconds_field % 10)
    put(24, 3, tc.seconds_field // 10)
    put(32, 4, tc.minutes % 10)
    put(40, 3, tc.minutes // 10)
    put(48, 4, tc.hours % 10)
    put(56, 2, tc.hours // 10)
    bits[64:80] = SYNC
    parity = 59 if tc.rate.nominal == 25 else 27
    bits[parity] = sum(bits) % 2  # an even count of ones: every frame starts alike
    return bits


def encode(start: Timecode, frames: int, sample_rate_hz: int = 48_000, amplitude: float = 0.5,
           speed: float = 1.0) -> np.ndarray:
    """``frames`` LTC frames from ``start`` as float32 audio; ``speed`` > 1 runs fast (the
    source's clock ahead of ours). Sample 0 is the first frame's first edge."""
    cell = sample_rate_hz / (float(start.rate.fps) * 80 * speed)
    edges: list[float] = []
    t = 0.0
    for k in range(frames):
        for bit in frame_bits(start.add_frames(k)):
            edges.append(t)
            if bit:
                edges.append(t + cell / 2)
            t += cell
    n = int(np.ceil(t))
    level = np.zeros(n, np.float32)
    idx = np.searchsorted(np.array(edges), np.arange(n), side="right")
    level = np.where(idx % 2 == 1, amplitude, -amplitude).astype(np.float32)
    # soften the edges a little (real LTC has a rise time of ~25 µs)
    kernel = np.ones(3, np.float32) / 3
    return np.convolve(level, kernel, mode="same").astype(np.float32)


@dataclass(frozen=True, slots=True)
class LtcFrame:
    """A decoded frame: its timecode and the input sample of its first edge."""

    timecode: Timecode
    start_sample: float


class LtcDecoder:
    """Streaming: ``feed(audio)`` returns the frames completed in it. ``rate`` is the rate
    expected (the bit rate alone cannot tell 30 from 29.97)."""

    def __init__(self, rate: Rate, sample_rate_hz: int = 48_000) -> None:
        self.rate = rate
        self.sample_rate_hz = sample_rate_hz
        self._cell = sample_rate_hz / (float(rate.fps) * 80)
        self._n = 0  # samples fed so far
        self._high = False
        self._last_edge: float | None = None
        self._half_pending: float | None = None
        self._bits: list[tuple[int, float]] = []  # (bit, sample of its cell's first edge)

    def feed(self, audio: np.ndarray) -> list[LtcFrame]:
        x = np.asarray(audio, dtype=np.float32)
        peak = float(np.max(np.abs(x))) if len(x) else 0.0
        hyst = max(0.05 * peak, 1e-4)
        frames: list[LtcFrame] = []
        # hysteresis comparator: where the level crosses ±hyst against the current state
        i = 0
        while i < len(x):
            seg = x[i:]
            hit = np.nonzero(seg < -hyst)[0] if self._high else np.nonzero(seg > hyst)[0]
            if len(hit) == 0:
                break
            j = i + int(hit[0])
            self._high = not self._high
            edge = self._n + self._crossing(x, j)
            frames.extend(self._edge(edge))
            i = j + 1
        self._n += len(x)
        return frames

    @staticmethod
    def _crossing(x: np.ndarray, j: int) -> float:
        """Sub-sample time of the zero crossing at or before sample ``j``."""
        k = j
        while k > 0 and np.sign(x[k - 1]) == np.sign(x[j]):
            k -= 1
        if k == 0:
            return float(j)
        a, b = float(x[k - 1]), float(x[k])
        return k - 1 + (a / (a - b) if a != b else 0.5)

    def _edge(self, edge: float) -> list[LtcFrame]:
        last, self._last_edge = self._last_edge, edge
        if last is None:
            return []
        gap = edge - last
        if gap < 0.75 * self._cell:  # a half cell
            if self._half_pending is None:
                self._half_pending = last
                return []
            start, self._half_pending = self._half_pending, None
            self._cell += 0.05 * (edge - start - self._cell)
            return self._bit(1, start)
        if gap < 1.5 * self._cell:
            if self._half_pending is not None:  # lost sync on a half cell: start afresh
                self._half_pending = None
            self._cell += 0.05 * (gap - self._cell)
            return self._bit(0, last)
        self._half_pending = None  # silence or a dropout: not a cell at all
        self._bits.clear()
        return []

    def _bit(self, bit: int, at: float) -> list[LtcFrame]:
        self._bits.append((bit, at))
        if len(self._bits) > 80:
            del self._bits[0]
        if len(self._bits) < 80 or tuple(b for b, _ in self._bits[64:]) != SYNC:
            return []
        bits = [b for b, _ in self._bits]
        start = self._bits[0][1]
        self._bits.clear()
        tc = _read(bits, self.rate)
        return [] if tc is None else [LtcFrame(tc, start)]


def _read(bits: list[int], rate: Rate) -> Timecode | None:
    def get(at: int, width: int) -> int:
        return sum(bits[at + i] << i for i in range(width))

    try:
        return Timecode(get(56, 2) * 10 + get(48, 4), get(40, 3) * 10 + get(32, 4),
                        get(24, 3) * 10 + get(16, 4), get(8, 2) * 10 + get(0, 4), rate)
    except TimecodeError:
        return None
