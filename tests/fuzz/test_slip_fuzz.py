"""SLIP and length-prefixed framing (``streams.slip``): any byte stream, cut anywhere, ends
in packets or ``SlipError``s; memory stays within the frame limit; what was encoded comes
back whole."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams import slip

pytestmark = pytest.mark.timeout(60)

LIMIT = 64


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    out, start = [], 0
    for p in points:
        out.append(data[start:p])
        start = p
    out.append(data[start:])
    return out


@given(st.lists(st.binary(min_size=1, max_size=80), max_size=6), st.lists(st.integers(0, 600)))
def test_encoded_packets_come_back_whole_however_the_stream_is_cut(
        packets: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(slip.encode(p) for p in packets)
    decoder = slip.SlipDecoder(max_frame_bytes=1000)
    got: list[bytes | slip.SlipError] = []
    for piece in chunks(stream, cuts):
        got.extend(decoder.feed(piece))
    assert got == packets


@given(st.lists(st.binary(max_size=200).map(
    lambda b: b.replace(b"\x01", b"\xc0").replace(b"\x02", b"\xdb")), max_size=8))
def test_any_stream_gives_packets_or_errors_within_the_limit(pieces: list[bytes]) -> None:
    decoder = slip.SlipDecoder(max_frame_bytes=LIMIT)
    for piece in pieces:
        for item in decoder.feed(piece):
            if isinstance(item, slip.SlipError):
                assert str(item) and "\n" not in str(item)
            else:
                assert isinstance(item, bytes) and 0 < len(item) <= LIMIT
        held = len(decoder._buffer) - decoder._escapes
        assert held <= LIMIT


@given(st.lists(st.binary(min_size=1, max_size=80), max_size=6), st.lists(st.integers(0, 600)))
def test_length_prefixed_packets_come_back_whole(packets: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(slip.encode_length_prefixed(p) for p in packets)
    decoder = slip.LengthPrefixDecoder(max_frame_bytes=1000)
    got: list[bytes | slip.SlipError] = []
    for piece in chunks(stream, cuts):
        got.extend(decoder.feed(piece))
    assert got == packets


@given(st.lists(st.binary(max_size=100), max_size=8))
def test_length_prefixed_garbage_ends_in_packets_or_one_error(pieces: list[bytes]) -> None:
    decoder = slip.LengthPrefixDecoder(max_frame_bytes=LIMIT)
    errors = 0
    for piece in pieces:
        for item in decoder.feed(piece):
            if isinstance(item, slip.SlipError):
                errors += 1
            else:
                assert len(item) <= LIMIT
        assert len(decoder._buffer) <= LIMIT + 4 + max(len(p) for p in pieces)
    assert errors <= 1 and (errors == 0 or decoder.broken)


@given(st.binary(max_size=300))
def test_decode_frame_undoes_encode_or_names_the_bad_escape(frame: bytes) -> None:
    try:
        packet = slip.decode_frame(frame)
    except slip.SlipError as err:
        assert "escape" in str(err)
        return
    if b"\xc0" not in frame:  # a raw END cannot be inside a frame; anything else round-trips
        assert slip.encode(packet)[1:-1] == frame
