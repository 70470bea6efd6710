"""Chasing external timecode: a pure model that turns (arrival time, timecode) pairs into the
show sample the engine should be at and the resampling ratio that gets it there smoothly.

Feed it every timecode position as it arrives (``update``) and ask it where the show is at any
local time (``position_at``). The first position after silence, a locate (an MTC full
frame) or an error over ``relocate_frames`` jumps the show there; otherwise a PI controller
trims ``ratio`` (show samples per local sample, clamped to ±``max_trim``), so drift is ridden
by resampling, never by jumps. ``poll`` notices when timecode stops: the show freewheels at
its last ratio and ``state`` says so. docs/timecode.md says how the pacer will use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from singer.contracts import SAMPLE_RATE_HZ

ChaseState = Literal["idle", "locking", "locked", "freewheel"]


@dataclass(frozen=True, slots=True)
class ChaseOptions:
    """How the chase follows."""

    fps: float = 25.0
    """Frame rate of the incoming timecode (frames measure lock and relocate thresholds)."""
    timecode_origin_s: float = 0.0
    """Timecode (seconds) that is show sample ``show_origin_sample``."""
    show_origin_sample: int = 0
    lock_frames: float = 2.0
    """Locked when the error stays within this many frames for ``lock_hold_s``."""
    lock_hold_s: float = 0.25
    relocate_frames: float = 10.0
    """An error larger than this is a locate, not drift: jump."""
    dropout_s: float = 0.25
    """No timecode for this long: freewheel."""
    time_constant_s: float = 0.4
    """Loop speed: the PI loop is critically damped with this time constant."""
    settled_time_constant_s: float | None = None
    """A slower loop once the error is within ``settle_samples`` (``None``: one speed):
    arrival jitter then moves the ratio less, while a larger error is still pulled in fast."""
    settle_samples: float = 48.0
    max_trim: float = 0.005
    """Largest speed correction (0.5 %: under 9 cents of pitch)."""


@dataclass(frozen=True, slots=True)
class ChaseStatus:
    """What the state reports."""

    state: ChaseState
    error_frames: float
    ratio: float
    """Show samples per local sample now (speed plus the error's correction)."""
    speed: float
    """The timecode's speed learnt against the local clock."""
    relocations: int


class TimecodeChase:
    """The chase model; times are local seconds (the audio clock's), positions show samples."""

    def __init__(self, options: ChaseOptions | None = None) -> None:
        self.options = options or ChaseOptions()
        self.state: ChaseState = "idle"
        self.ratio = 1.0
        self.relocations = 0
        self.error_samples = 0.0
        self._integral = 0.0
        self._t: float | None = None  # local time of the last update
        self._pos = 0.0  # show sample at self._t
        self._last_arrival: float | None = None
        self._within_since: float | None = None

    def target_sample(self, timecode_s: float) -> float:
        """The show sample a timecode position names."""
        o = self.options
        return o.show_origin_sample + (timecode_s - o.timecode_origin_s) * SAMPLE_RATE_HZ

    def position_at(self, local_s: float) -> float:
        """Show sample (fractional) the engine should be at, at local time ``local_s``."""
        if self._t is None:
            return float(self.options.show_origin_sample)
        return self._pos + (local_s - self._t) * SAMPLE_RATE_HZ * self.ratio

    def update(self, arrival_s: float, timecode_s: float, locate: bool = False) -> ChaseStatus:
        """Timecode position ``timecode_s`` was true at local time ``arrival_s``."""
        o = self.options
        frame = SAMPLE_RATE_HZ / o.fps
        target = self.target_sample(timecode_s)
        fresh = self._t is None or self.state == "idle"
        predicted = self.position_at(arrival_s)
        error = target - predicted
        if fresh or locate or abs(error) > o.relocate_frames * frame:
            if not fresh and self.state == "freewheel" and abs(error) <= o.relocate_frames * frame:
                self._advance(arrival_s, predicted, error)  # back from a dropout: no jump
            else:
                self._pos, self._t = target, arrival_s
                self._integral = 0.0
                self.ratio = 1.0
                self.error_samples = 0.0
                self.relocations += 1
            self.state = "locking"
            self._within_since = None
        else:
            self._advance(arrival_s, predicted, error)
        self._last_arrival = arrival_s
        if abs(self.error_samples) <= o.lock_frames * frame:
            if self._within_since is None:
                self._within_since = arrival_s
            if arrival_s - self._within_since >= o.lock_hold_s:
                self.state = "locked"
        else:
            self._within_since = None
            self.state = "locking"
        return self.status()

    def _advance(self, arrival_s: float, predicted: float, error: float) -> None:
        """PI step: ratio = 1 + Kp·e + ∫Ki·e (e in seconds), critically damped."""
        o = self.options
        dt = arrival_s - (self._t if self._t is not None else arrival_s)
        self._pos, self._t = predicted, arrival_s
        self.error_samples = error
        settled = o.settled_time_constant_s is not None and abs(error) <= o.settle_samples
        kp = 2.0 / (o.settled_time_constant_s if settled and o.settled_time_constant_s
                    else o.time_constant_s)
        ki = kp * kp / 4.0
        e = error / SAMPLE_RATE_HZ
        self._integral = min(max(self._integral + ki * e * dt, -o.max_trim), o.max_trim)
        self.ratio = 1.0 + min(max(kp * e + self._integral, -o.max_trim), o.max_trim)

    @property
    def speed(self) -> float:
        """The timecode's speed against our clock as learnt (the integral term): the ratio
        without the correction of the current error."""
        return 1.0 + self._integral

    def poll(self, local_s: float) -> ChaseStatus:
        """Say whether timecode is still arriving; freewheels after ``dropout_s`` without."""
        if (self._last_arrival is not None and self.state in ("locking", "locked")
                and local_s - self._last_arrival > self.options.dropout_s):
            self.state = "freewheel"
            self._within_since = None
            # run on at the learnt speed, without the last correction's wobble
            self._pos, self._t = self.position_at(local_s), local_s
            self.ratio = self.speed
        return self.status()

    def status(self) -> ChaseStatus:
        frame = SAMPLE_RATE_HZ / self.options.fps
        return ChaseStatus(self.state, self.error_samples / frame, self.ratio, self.speed,
                           self.relocations)
