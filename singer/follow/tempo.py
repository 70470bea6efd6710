"""The performer's tempo: a Kalman filter on the beat period, fed by matched note onsets.

As the ACCompanion's Kalman tempo model: the state is the beat period (seconds per beat), it
drifts between observations (variance per beat of score), and each matched onset observes the
period over the last stretch of score (at least ``BASELINE_BEATS``), with the onset jitter as
observation noise. An observation far off the prediction (a fermata, a pause, a jump) does not
move the tempo: it only re-anchors where the performer is.

How sure a prediction is (``sd_s``) is measured, not modelled: the median of how far the
last few onsets missed their prediction, per beat ahead, scaled by the beats ahead. A
Kalman filter with a second state for the period's change (Music Plus One's model) was
measured too and not kept: on the corpus's ±8 % rubato it lags the turns by about a
quarter of their period, predicting across half notes 59-94 ms early (the period alone:
37-78 ms), and on a faster rubato (±12 %, 12 beats) it overshot by 300 ms.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass

from singer.contracts import SAMPLE_RATE_HZ

TRANSITION_VAR = 0.03 ** 2
"""Relative drift of the period per beat of score (variance of a fraction)."""
ONSET_JITTER_S = 0.015
"""How far an onset sits from where it was meant (standard deviation): the observation noise,
which sets how fast the period follows. 15 ms is the sung onsets' measured spread
(``follower.AUDIO_ONSET_SD_S``); at 25 ms the filter lagged a ±8 % rubato by about two
beats (``bench duet``: rubato audio median 30.7 -> 28.8 ms, MIDI 14.6 -> 13.1 ms, tempo
after the MIDI step 3.0 -> 1.2 %; docs/benchmarks.md)."""
OUTLIER_RATIO = 0.3
"""A period observation off the prediction by more than this fraction moves no tempo ..."""
OUTLIER_RUN = 3
"""... unless this many in a row agree with each other (within half that fraction): then
the estimate was wrong (a first onset stamped late, a tempo far from the score's) and the
period starts again from theirs. Without this a wrong estimate held for good: every true
observation after it was an outlier (the ``/perform`` page's first onset, stamped 0.3 s late
while the stream's clock settled, held the tempo at 134 bpm for a performer at 100)."""
BASELINE_BEATS = 1.0
TREND_SPANS = 4
TREND_MIN_BEATS = 0.4
TREND_SHARE = 0.5
"""Share of the period's trend ``trend_s`` predicts with (measured on MIDI case B: 0.35
and 1.0 did worse than 0.5-0.7; docs/follow.md)."""
HISTORY = 16
MISS_SPANS = 8
"""``sd_s`` is made from the misses of the predictions of this many last onsets."""


@dataclass(frozen=True, slots=True)
class Anchor:
    """The performer was at score beat ``beat`` at show sample ``sample``."""

    beat: float
    sample: int


class KalmanTempo:
    """Beat period and phase of the performer; ``update`` on each matched onset."""

    def __init__(self, bpm: float, miss_jitter_s: float = 0.0) -> None:
        """``miss_jitter_s``: the standard deviation of an onset's own timing error (0 for
        MIDI), taken out of the misses ``sd_s`` is made from."""
        self.initial_bpm = bpm
        self.miss_jitter_s = miss_jitter_s
        self.reset()

    def reset(self) -> None:
        """Back to the score's tempo, with no anchor."""
        self.period_s = 60.0 / self.initial_bpm
        self.var = (0.15 * self.period_s) ** 2
        self.anchor: Anchor | None = None
        self._history: deque[Anchor] = deque(maxlen=HISTORY)
        self.outliers = 0
        self._outlier_run: deque[float] = deque(maxlen=OUTLIER_RUN)
        self._misses: deque[float] = deque(maxlen=MISS_SPANS)

    @property
    def bpm(self) -> float:
        """The current tempo estimate in beats per minute."""
        return 60.0 / self.period_s

    def sample_of(self, beat: float) -> float:
        """Predicted show sample at which the performer reaches ``beat``."""
        if self.anchor is None:
            raise RuntimeError("no onset matched yet")
        return self.anchor.sample + (beat - self.anchor.beat) * self.period_s * SAMPLE_RATE_HZ

    def beat_at(self, sample: float) -> float:
        """Predicted score beat at show sample ``sample``."""
        if self.anchor is None:
            raise RuntimeError("no onset matched yet")
        return self.anchor.beat + (sample - self.anchor.sample) / (self.period_s * SAMPLE_RATE_HZ)

    def trend_s(self, beat: float) -> float:
        """Seconds the period's recent trend adds to the prediction of ``beat``: a line
        through the local periods of the last ``TREND_SPANS`` spans (each ``TREND_MIN_BEATS``
        or longer) continued past the anchor, damped by ``TREND_SHARE`` (rubato turns; a
        whole trend overshoots). 0 without enough history."""
        if self.anchor is None:
            return 0.0
        hist = list(self._history)
        points = [((a.beat + b.beat) / 2, (b.sample - a.sample) / SAMPLE_RATE_HZ
                   / (b.beat - a.beat)) for a, b in zip(hist[:-1], hist[1:], strict=True)
                  if b.beat - a.beat >= TREND_MIN_BEATS][-TREND_SPANS:]
        if len(points) < 2 or points[-1][0] - points[0][0] < 1.0:
            return 0.0
        xs = [x for x, _ in points]
        ys = [y for _, y in points]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)
        ahead = beat - self.anchor.beat
        return TREND_SHARE * 0.5 * slope * ahead * ahead

    def sd_s(self, beat: float) -> float:
        """Standard deviation (seconds) of the prediction of ``beat``: how far the model's
        own predictions of the last ``MISS_SPANS`` onsets missed, per beat predicted ahead
        (less the onsets' own jitter ``miss_jitter_s``; the median, so one step change or
        wrong note does not count for long), times the beats ahead of the last onset. Near
        0 for a steady performer, growing with the span for one in rubato; 0 before two
        misses are known."""
        if self.anchor is None or len(self._misses) < 2:
            return 0.0
        ahead = max(beat - self.anchor.beat, 0.0)
        return ahead * statistics.median(self._misses) ** 0.5

    def update(self, beat: float, sample: int, jump: bool = False) -> bool:
        """The performer played score ``beat`` at show ``sample``; False if it moved no tempo.

        ``jump`` says the follower moved anywhere but to the next note: the history restarts.
        """
        now = Anchor(beat, sample)
        if jump or (self._history and beat <= self._history[-1].beat):
            self._history.clear()
        base = None
        for past in self._history:
            if beat - past.beat >= BASELINE_BEATS:
                base = past
        if base is None and self._history:
            base = self._history[0]
        self._history.append(now)
        moved = False
        anchor = self.anchor
        if base is not None and beat > base.beat:
            span = beat - base.beat
            z = (sample - base.sample) / SAMPLE_RATE_HZ / span
            period_before = self.period_s
            if abs(z / self.period_s - 1.0) > OUTLIER_RATIO:
                self.outliers += 1
                self._history.clear()
                self._history.append(now)
                run = self._outlier_run
                run.append(z)
                mid = statistics.median(run)
                if len(run) == OUTLIER_RUN and all(
                        abs(p / mid - 1.0) <= OUTLIER_RATIO / 2 for p in run):
                    self.period_s = mid
                    self.var = (0.15 * mid) ** 2
                    self._misses.clear()
                    run.clear()
                    moved = True
            else:
                self._outlier_run.clear()
                last = self._history[-2] if len(self._history) >= 2 else base
                self.var += TRANSITION_VAR * self.period_s ** 2 * max(beat - last.beat, 0.25)
                r = 2 * (ONSET_JITTER_S / span) ** 2
                gain = self.var / (self.var + r)
                self.period_s += gain * (z - self.period_s)
                self.var *= 1.0 - gain
                moved = True
                if anchor is not None and beat - anchor.beat >= TREND_MIN_BEATS:
                    ahead = beat - anchor.beat
                    miss_s = (sample - anchor.sample) / SAMPLE_RATE_HZ - ahead * period_before
                    noise = 2 * self.miss_jitter_s ** 2
                    self._misses.append(max(miss_s * miss_s - noise, 0.0) / ahead ** 2)
        self.anchor = now
        return moved
