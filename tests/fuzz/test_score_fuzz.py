"""Score files through ``singer.scores.load.load_score`` (MusicXML, MIDI, USTX, UST): any bytes in
a file end in a ``Score`` or a one-line ``ScoreError``, within the deadline."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from singer.score import Score, ScoreError
from singer.scores.load import load_score
from tests.fuzz.strategies import mutated
from tests.singer.test_midi import _english_file
from tests.singer.test_ust import ENGLISH, _ust
from tests.singer.test_ustx import HEADER, MELODY, _note

pytestmark = pytest.mark.timeout(120)

MUSICXML = """<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1"><part-list><score-part id="P1"><part-name>V</part-name>
</score-part></part-list><part id="P1"><measure number="1"><attributes><divisions>1</divisions>
<time><beats>4</beats><beat-type>4</beat-type></time></attributes>
<sound tempo="100"/>
<note><pitch><step>C</step><octave>4</octave></pitch><duration>2</duration><type>half</type>
<lyric><syllabic>single</syllabic><text>la</text></lyric></note>
<note><pitch><step>E</step><alter>1</alter><octave>4</octave></pitch><duration>2</duration>
<type>half</type><lyric><text>li</text></lyric></note></measure></part></score-partwise>
"""
USTX = HEADER.replace("name: Xiao", "ustx_version: '0.6'\nresolution: 480\nbpm: 120\nname: Xiao") \
    + "".join(_note(*n) for n in MELODY[:3]) + "  curves: []\nwave_parts: []\n"
_serial = itertools.count()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scores")


@pytest.fixture(scope="module")
def midi_bytes(folder: Path) -> bytes:
    return _english_file(folder / "seed.mid").read_bytes()


def check(folder: Path, data: bytes, suffix: str) -> None:
    path = folder / f"f{next(_serial)}{suffix}"
    path.write_bytes(data)
    try:
        score = load_score(path)
    except ScoreError as err:
        assert str(err) and "\n" not in str(err), repr(str(err))
    else:
        assert isinstance(score, Score)
    finally:
        path.unlink()


SUFFIXES = st.sampled_from([".mid", ".ust", ".ustx", ".musicxml", ".txt"])


@given(st.data())
def test_any_midi_bytes(folder: Path, midi_bytes: bytes, data: st.DataObject) -> None:
    check(folder, data.draw(mutated(st.just(midi_bytes))), data.draw(SUFFIXES))


@given(mutated(st.just(_ust(ENGLISH, "fuzz").encode("cp932"))), SUFFIXES)
def test_any_ust_bytes(folder: Path, data: bytes, suffix: str) -> None:
    check(folder, data, suffix)


@given(mutated(st.just(USTX.encode())), SUFFIXES)
@example(b"\0" + USTX.encode(), ".ustx")  # found: PyYAML's two-line error in the message
@example(b"ustx_version: [" + b"[" * 1500, ".ustx")  # found: RecursionError escaped
def test_any_ustx_bytes(folder: Path, data: bytes, suffix: str) -> None:
    check(folder, data, suffix)


@settings(max_examples=20, deadline=None)  # music21 takes a while per document
@given(mutated(st.just(MUSICXML.encode())))
def test_any_musicxml_bytes(folder: Path, data: bytes) -> None:
    check(folder, data, ".musicxml")


@given(st.binary(max_size=300), SUFFIXES)
def test_any_bytes_at_all(folder: Path, data: bytes, suffix: str) -> None:
    check(folder, data, suffix)
