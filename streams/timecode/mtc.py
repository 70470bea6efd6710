"""MIDI Time Code as mido messages: quarter frames and full frames, both ways.

Quarter frame ``k`` (0..7) carries one nibble of the timecode of the frame in which piece 0
was sent; a run of eight spans two frames, so when piece 7 arrives the source is at that
timecode + 7/4 frames. ``MtcReader`` turns every quarter frame (after the first full run)
and every full frame into (timecode seconds at that message); ``MtcGenerator`` makes the
messages for a show position, each with the show sample it is due at.
"""

from __future__ import annotations

from dataclasses import dataclass

import mido

from streams.timecode.smpte import BY_MTC_CODE, Rate, Timecode, TimecodeError

FULL_FRAME_HEAD = (0x7F, 0x7F, 0x01, 0x01)
"""SysEx data of a full frame before hh mm ss ff (device 0x7F: all)."""


def quarter_frames(tc: Timecode) -> list[mido.Message]:
    """The eight quarter-frame messages that carry ``tc`` (pieces 0..7)."""
    hours_hi = (tc.hours >> 4) & 0x1 | (tc.rate.mtc_code << 1)
    values = [tc.frames & 0xF, tc.frames >> 4, tc.seconds_field & 0xF, tc.seconds_field >> 4,
              tc.minutes & 0xF, tc.minutes >> 4, tc.hours & 0xF, hours_hi]
    return [mido.Message("quarter_frame", frame_type=k, frame_value=v)
            for k, v in enumerate(values)]


def full_frame(tc: Timecode) -> mido.Message:
    """The full-frame SysEx that locates a receiver at ``tc``."""
    return mido.Message("sysex", data=(*FULL_FRAME_HEAD, tc.rate.mtc_code << 5 | tc.hours,
                                       tc.minutes, tc.seconds_field, tc.frames))


def parse_full_frame(msg: mido.Message) -> Timecode | None:
    """The timecode of a full-frame SysEx; ``None`` for any other message."""
    if msg.type != "sysex" or len(msg.data) != 8 or tuple(msg.data[:4]) != FULL_FRAME_HEAD:
        return None
    hh, mm, ss, ff = msg.data[4:]
    return Timecode(hh & 0x1F, mm, ss, ff, BY_MTC_CODE[(hh >> 5) & 0x3])


@dataclass(frozen=True, slots=True)
class MtcPosition:
    """What a message told: the source's timecode position (seconds) when it was sent."""

    seconds: float
    timecode: Timecode
    full_frame: bool = False
    """A locate (full frame): a jump, not motion."""


class MtcReader:
    """Feed every incoming MIDI message; returns an ``MtcPosition`` when one is known."""

    def __init__(self) -> None:
        self._nibbles: list[int | None] = [None] * 8
        self._expect = 0
        self._base: Timecode | None = None
        """Timecode of the run in progress (from the last complete run + 2 frames)."""

    def feed(self, msg: mido.Message) -> MtcPosition | None:
        tc = parse_full_frame(msg)
        if tc is not None:
            self._base, self._expect = None, 0
            return MtcPosition(tc.seconds, tc, True)
        if msg.type != "quarter_frame":
            return None
        k, v = msg.frame_type, msg.frame_value
        if k != self._expect:  # out of sequence (reverse play, a lost byte): resync
            self._nibbles = [None] * 8
            self._base = None
            if k != 0:
                self._expect = 0
                return None
        self._nibbles[k] = v
        self._expect = (k + 1) % 8
        if k == 7:
            got = _decode(self._nibbles)
            self._nibbles = [None] * 8
            if got is None:
                return None
            self._base = got.add_frames(2)  # the next run carries the frame after these two
            return MtcPosition(got.seconds + 7 / 4 / float(got.rate.fps), got)
        if self._base is not None:
            return MtcPosition(self._base.seconds + k / 4 / float(self._base.rate.fps),
                               self._base)
        return None


def _decode(n: list[int | None]) -> Timecode | None:
    if any(v is None for v in n):
        return None
    v = [int(x) for x in n]  # type: ignore[arg-type]
    try:
        return Timecode(v[6] | (v[7] & 1) << 4, v[4] | v[5] << 4, v[2] | v[3] << 4,
                        v[0] | v[1] << 4, BY_MTC_CODE[(v[7] >> 1) & 0x3])
    except TimecodeError:
        return None


class MtcGenerator:
    """Lead: MTC from the show position. ``messages(start, end)`` gives every quarter frame
    due in show samples ``[start, end)`` as (show sample, message); ``locate(sample)`` a full
    frame. Show sample ``origin_sample`` is timecode ``start``."""

    def __init__(self, rate: Rate, start: Timecode | None = None, origin_sample: int = 0,
                 sample_rate_hz: int = 48_000) -> None:
        self.rate = rate
        self.start = start or Timecode(0, 0, 0, 0, rate)
        self.origin_sample = origin_sample
        self.sample_rate_hz = sample_rate_hz

    def _quarter_s(self) -> float:
        return 1.0 / float(self.rate.fps) / 4

    def messages(self, start_sample: int, end_sample: int) -> list[tuple[int, mido.Message]]:
        """Quarter frames due in ``[start, end)`` (each run of eight starts on an even
        frame)."""
        q = self._quarter_s() * self.sample_rate_hz
        first = max(0, int((start_sample - self.origin_sample) // q))
        out = []
        i = first
        while True:
            at = self.origin_sample + round(i * q)
            if at >= end_sample:
                break
            if at >= start_sample:
                run, piece = divmod(i, 8)
                tc = self.start.add_frames(2 * run)
                out.append((at, quarter_frames(tc)[piece]))
            i += 1
        return out

    def locate(self, show_sample: int) -> mido.Message:
        """The full frame for the frame sounding at ``show_sample``."""
        frames = int((show_sample - self.origin_sample) / self.sample_rate_hz
                     * float(self.rate.fps))
        return full_frame(self.start.add_frames(max(0, frames)))
