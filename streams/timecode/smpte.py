"""SMPTE timecode values and rates: 24, 25, 29.97 drop-frame and 30 fps.

A ``Timecode`` is hours:minutes:seconds:frames at a ``Rate``; ``frame_count`` numbers its
frames from 00:00:00:00 (drop-frame skips frames 0 and 1 of every minute but each tenth) and
``seconds`` is the real time it names (29.97 df: ``frame_count × 1001 / 30000``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

RateName = Literal["24", "25", "29.97df", "30"]


@dataclass(frozen=True, slots=True)
class Rate:
    """A timecode rate: ``nominal`` frames counted per second, real ``fps``."""

    name: RateName
    nominal: int
    fps: Fraction
    drop: bool
    mtc_code: int
    """The rate's 2-bit code in MTC (quarter frame 7, full frame hours byte)."""


RATES: dict[str, Rate] = {
    "24": Rate("24", 24, Fraction(24), False, 0),
    "25": Rate("25", 25, Fraction(25), False, 1),
    "29.97df": Rate("29.97df", 30, Fraction(30000, 1001), True, 2),
    "30": Rate("30", 30, Fraction(30), False, 3),
}
BY_MTC_CODE = {r.mtc_code: r for r in RATES.values()}


class TimecodeError(ValueError):
    """A timecode or rate that does not exist; the message says which."""


def rate(name: str) -> Rate:
    """The rate called ``name`` (24, 25, 29.97df, 30)."""
    if name not in RATES:
        raise TimecodeError(f"unknown timecode rate {name!r}; rates: {', '.join(RATES)}")
    return RATES[name]


@dataclass(frozen=True, slots=True)
class Timecode:
    """HH:MM:SS:FF at ``rate``."""

    hours: int
    minutes: int
    seconds_field: int
    frames: int
    rate: Rate

    def __post_init__(self) -> None:
        if not (0 <= self.hours < 24 and 0 <= self.minutes < 60 and 0 <= self.seconds_field < 60
                and 0 <= self.frames < self.rate.nominal):
            raise TimecodeError(f"{self} is not a {self.rate.name} fps timecode")
        if (self.rate.drop and self.seconds_field == 0 and self.frames < 2
                and self.minutes % 10 != 0):
            raise TimecodeError(f"{self} is a dropped frame number at 29.97df")

    def __str__(self) -> str:
        sep = ";" if self.rate.drop else ":"
        return (f"{self.hours:02d}:{self.minutes:02d}:{self.seconds_field:02d}{sep}"
                f"{self.frames:02d}")

    @property
    def frame_count(self) -> int:
        """Frames since 00:00:00:00."""
        nominal = self.rate.nominal
        total_minutes = 60 * self.hours + self.minutes
        count = (3600 * self.hours + 60 * self.minutes + self.seconds_field) * nominal
        count += self.frames
        if self.rate.drop:
            count -= 2 * (total_minutes - total_minutes // 10)
        return count

    @property
    def seconds(self) -> float:
        """Real time from 00:00:00:00, in seconds."""
        return float(self.frame_count / self.rate.fps)

    @classmethod
    def from_frames(cls, count: int, rate: Rate) -> Timecode:
        """The timecode of frame ``count`` (wraps at 24 h)."""
        nominal = rate.nominal
        if rate.drop:
            per_10min = 10 * 60 * nominal - 9 * 2
            per_min = 60 * nominal - 2
            day = 24 * 6 * per_10min
            count %= day
            tens, rest = divmod(count, per_10min)
            if rest >= 2:
                count += 18 * tens + 2 * ((rest - 2) // per_min)
            else:
                count += 18 * tens
        else:
            count %= 24 * 3600 * nominal
        frames = count % nominal
        secs = count // nominal
        return cls(secs // 3600, secs // 60 % 60, secs % 60, frames, rate)

    def add_frames(self, n: int) -> Timecode:
        return Timecode.from_frames(self.frame_count + n, self.rate)


def parse_timecode(text: str, rate_: Rate) -> Timecode:
    """``HH:MM:SS:FF`` (``;`` before the frames for drop-frame is accepted too)."""
    parts = text.replace(";", ":").split(":")
    # ASCII digits only: str.isdigit() also takes '²' and other digits int() refuses
    if len(parts) != 4 or not all(p.isascii() and p.isdigit() and len(p) <= 2 for p in parts):
        raise TimecodeError(f"{text!r}: write a timecode as HH:MM:SS:FF")
    h, m, s, f = (int(p) for p in parts)
    return Timecode(h, m, s, f, rate_)
