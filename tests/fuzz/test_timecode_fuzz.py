"""Timecode in (``streams.timecode``): any ``HH:MM:SS:FF`` text ends in a ``Timecode`` or a
``TimecodeError``; any MIDI byte stream into the MTC reader and any audio into the LTC
decoder give valid timecodes or nothing."""

from __future__ import annotations

import math

import mido
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from streams.timecode import ltc
from streams.timecode.mtc import MtcReader, full_frame, quarter_frames
from streams.timecode.smpte import RATES, Timecode, TimecodeError, parse_timecode, rate
from tests.fuzz.strategies import text_mutations

pytestmark = pytest.mark.timeout(60)

RATE = st.sampled_from(sorted(RATES))


@given(text_mutations(st.sampled_from(["01:02:03:04", "23:59:59;29", "00:00:00:00"])), RATE)
@example("0²:00:00:00", "25")  # found: a superscript digit passed isdigit() and broke int()
def test_any_text_is_a_timecode_or_a_timecode_error(text: str, rate_name: str) -> None:
    try:
        tc = parse_timecode(text, rate(rate_name))
    except TimecodeError as err:
        assert str(err) and "\n" not in str(err)
        return
    assert Timecode.from_frames(tc.frame_count, tc.rate) == tc


@given(st.text(max_size=10))
def test_any_rate_name_is_a_rate_or_a_timecode_error(name: str) -> None:
    try:
        rate(name)
    except TimecodeError:
        pass


@given(st.lists(st.one_of(st.binary(min_size=1, max_size=12),
                          st.integers(0, 127).map(lambda v: bytes([0xF1, v]))), max_size=60),
       RATE, st.integers(0, 24 * 3600 * 24 - 1))
def test_any_midi_stream_into_the_mtc_reader(chunks: list[bytes], rate_name: str,
                                             start: int) -> None:
    r = rate(rate_name)
    tc = Timecode.from_frames(start % (24 * 3600 * r.nominal), r)
    parser = mido.Parser()
    for chunk in chunks:
        parser.feed(chunk)
    messages = [*parser, full_frame(tc), *quarter_frames(tc)]
    reader = MtcReader()
    for msg in messages:
        position = reader.feed(msg)
        if position is not None:
            assert math.isfinite(position.seconds) and position.seconds >= 0


@given(st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), max_size=400),
       RATE)
def test_any_audio_into_the_ltc_decoder(samples: list[float], rate_name: str) -> None:
    r = rate(rate_name)
    clean = ltc.encode(Timecode(1, 0, 0, 0, r), 2)
    decoder = ltc.LtcDecoder(r)
    decoder.feed(np.asarray(samples, dtype=np.float32))
    frames = decoder.feed(clean)
    for frame in frames:
        assert isinstance(frame.timecode, Timecode)
