"""Timecode: MTC and LTC round trips, and the chase locking to them, riding drift and
freewheeling when they stop (simulated time, fed as (arrival, timecode) pairs)."""

from __future__ import annotations

import numpy as np
import pytest

from stage.timecode.chase import ChaseOptions, TimecodeChase
from streams.timecode.ltc import LtcDecoder, encode, frame_bits
from streams.timecode.mtc import MtcGenerator, MtcReader, full_frame, parse_full_frame
from streams.timecode.smpte import RATES, Timecode, TimecodeError, parse_timecode

SR = 48_000


@pytest.mark.parametrize("name", list(RATES))
def test_mtc_round_trip_every_rate(name: str) -> None:
    rate = RATES[name]
    start = parse_timecode("01:02:03:04", rate)
    gen = MtcGenerator(rate, start)
    reader = MtcReader()
    got = [p for _, m in gen.messages(0, SR * 2) if (p := reader.feed(m)) is not None]
    assert got[0].timecode == start
    quarter = 1 / float(rate.fps) / 4
    # every position after the first run advances by a quarter frame
    assert np.allclose(np.diff([p.seconds for p in got]), quarter)
    assert got[0].seconds == pytest.approx(start.seconds + 7 * quarter)
    tc = start.add_frames(100)
    assert parse_full_frame(full_frame(tc)) == tc


def test_drop_frame_numbers() -> None:
    df = RATES["29.97df"]
    assert str(Timecode.from_frames(1800, df)) == "00:01:00;02"
    assert str(Timecode.from_frames(17982, df)) == "00:10:00;00"
    assert Timecode.from_frames(107892, df).seconds == pytest.approx(3600 * 1.0, abs=0.004)
    with pytest.raises(TimecodeError, match="dropped frame"):
        Timecode(0, 1, 0, 0, df)


def _feed_mtc(chase: TimecodeChase, rate_name: str, speed: float, seconds: float,
              jitter_s: float = 0.0005) -> list[tuple[float, float, str]]:
    """Feed MTC sent at ``speed`` × real time, arriving with jitter; returns (local time,
    error in frames, state) after each position."""
    rate = RATES[rate_name]
    gen = MtcGenerator(rate, parse_timecode("00:59:58:00", rate))
    reader = MtcReader()
    rng = np.random.default_rng(1)
    trace = []
    for at, msg in gen.messages(0, int(seconds * SR * speed)):
        arrival = at / SR / speed + rng.uniform(0, jitter_s)
        pos = reader.feed(msg)
        if pos is not None:
            status = chase.update(arrival, pos.seconds, locate=pos.full_frame)
            trace.append((arrival, status.error_frames, status.state))
    return trace


@pytest.mark.parametrize("rate_name", ["25", "30"])
@pytest.mark.parametrize("speed", [1.0, 1.001, 0.999])
def test_mtc_chase_locks_and_rides_drift(rate_name: str, speed: float) -> None:
    fps = float(RATES[rate_name].fps)
    origin = parse_timecode("01:00:00:00", RATES[rate_name]).seconds
    chase = TimecodeChase(ChaseOptions(fps=fps, timecode_origin_s=origin))
    trace = _feed_mtc(chase, rate_name, speed, 12.0)
    locked_at = next(t for t, _, s in trace if s == "locked")
    assert locked_at < 2.0
    after = [e for t, e, _ in trace if t >= locked_at]
    assert max(abs(e) for e in after) < 2.0
    assert chase.relocations == 1  # the first fix only: drift was never a jump
    assert chase.speed == pytest.approx(speed, abs=1e-4)  # resampling rides the drift
    assert abs(chase.ratio - speed) < 2e-3
    t_end = trace[-1][0]
    assert all(s == "locked" for t, _, s in trace if t > locked_at)
    assert t_end > 11.0


def test_chase_freewheels_when_timecode_stops_and_relocks() -> None:
    chase = TimecodeChase(ChaseOptions(fps=25.0))
    trace = _feed_mtc(chase, "25", 1.001, 4.0)
    assert trace[-1][2] == "locked"
    last = trace[-1][0]
    pos = chase.position_at(last)
    assert chase.poll(last + 0.1).state == "locked"
    status = chase.poll(last + 0.5)
    assert status.state == "freewheel"
    # freewheeling runs on at the learnt speed, no jump
    assert chase.ratio == chase.speed == pytest.approx(1.001, abs=1e-4)
    moved = chase.position_at(last + 1.5) - chase.position_at(last + 0.5)
    assert moved == pytest.approx(SR * chase.speed, rel=1e-9)
    assert abs(chase.position_at(last + 0.5) - (pos + 0.5 * SR * 1.001)) < 0.05 * SR / 25


def test_timecode_back_from_a_dropout_is_pulled_in_not_jumped_to() -> None:
    """Timecode resuming within 10 frames of where the freewheel ran is ridden by the loop
    (before the fix, every return from freewheel counted as a fresh start and jumped)."""
    chase = TimecodeChase(ChaseOptions(fps=25.0))
    _feed_mtc(chase, "25", 1.0, 3.0)
    assert chase.state == "locked" and chase.relocations == 1
    chase.poll(3.5)
    assert chase.state == "freewheel"
    # the source comes back 1 s later, 3 frames ahead of where the show freewheeled to
    resumed = chase.position_at(4.0) / SR + 3 / 25
    before = chase.position_at(4.0)
    chase.update(4.0, resumed)
    assert chase.relocations == 1  # no jump...
    assert chase.position_at(4.0) == pytest.approx(before)  # ...the show is where it was
    assert chase.ratio > 1.0  # and speeds up to catch the timecode


def test_full_frame_locates() -> None:
    rate = RATES["25"]
    chase = TimecodeChase(ChaseOptions(fps=25.0))
    _feed_mtc(chase, "25", 1.0, 2.0)
    before = chase.relocations
    tc = parse_timecode("02:00:00:00", rate)
    pos = MtcReader().feed(full_frame(tc))
    assert pos is not None and pos.full_frame
    chase.update(2.1, pos.seconds, locate=True)
    assert chase.relocations == before + 1
    assert chase.position_at(2.1) == pytest.approx(tc.seconds * SR)


def test_ltc_frame_bits_have_even_parity_and_sync() -> None:
    for name in RATES:
        bits = frame_bits(parse_timecode("10:11:12:13", RATES[name]))
        assert sum(bits) % 2 == 0
        assert bits[64:] == [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1]


@pytest.mark.parametrize("speed", [1.0, 1.001, 0.999])
def test_ltc_decoded_locks_the_chase(speed: float) -> None:
    rate = RATES["25"]
    start = parse_timecode("00:00:10:00", rate)
    audio = encode(start, 25 * 8, SR, speed=speed)
    audio = np.concatenate([audio, np.zeros(SR, np.float32)])  # the timecode stops
    audio = audio * -1  # polarity does not matter
    decoder = LtcDecoder(rate)
    chase = TimecodeChase(ChaseOptions(fps=25.0, timecode_origin_s=start.seconds))
    trace = []
    for i in range(0, len(audio), 480):
        for frame in decoder.feed(audio[i:i + 480]):
            status = chase.update(frame.start_sample / SR, frame.timecode.seconds)
            trace.append((frame.start_sample / SR, status.error_frames, status.state))
        chase.poll((i + 480) / SR)
    frames = [t for t, _, _ in trace]
    assert len(frames) >= 25 * 8 - 2  # every frame but the last (no closing edge) decoded
    locked_at = next(t for t, _, s in trace if s == "locked")
    assert locked_at < 2.0
    assert max(abs(e) for t, e, _ in trace if t >= locked_at) < 2.0
    assert chase.relocations == 1
    assert chase.speed == pytest.approx(speed, abs=2e-4)
    assert chase.state == "freewheel"
