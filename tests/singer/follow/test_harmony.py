"""Harmony: the idol sings a third above the performer, in key, on time, re-pitched where
the performer strays from the score; the sung pitch measured in the idol's audio."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from singer.contracts import AudioChunk
from singer.follow import corpus
from singer.follow.duet import CHUNK_SAMPLES, HARMONY, DuetSession, duet_from_audio
from singer.follow.harmony import Key, estimate_key, harmony_pitch
from singer.score import Part
from tests.measure import note_cents_errors


@pytest.mark.parametrize("pitch,interval,expected", [
    (60, "third_above", 64), (64, "third_above", 67), (71, "third_above", 74),
    (60, "sixth_below", 52), (65, "third_below", 62), (61, "third_above", 64),
])
def test_harmony_pitch_in_c_major(pitch: float, interval: str, expected: float) -> None:
    assert harmony_pitch(pitch, Key(0, "major"), interval) == expected  # type: ignore[arg-type]


def test_keys_of_the_test_scores() -> None:
    assert estimate_key(corpus.score_a()) == Key(0, "major")
    assert estimate_key(corpus.score_b()) == Key(7, "major")


def test_live_harmony_a_third_above_in_key_and_in_tune() -> None:
    score = corpus.score_a(6)
    written = score.parts[0]
    # The performer sings note 9 a tone higher than written (and the rest as written).
    sung = tuple(replace(n, pitch_midi=n.pitch_midi + 2) if k == 9 else n
                 for k, n in enumerate(written.notes))
    perf = corpus.perform(replace(score, parts=(Part(written.name, sung),) + score.parts[1:]),
                          bpm=108.0)
    session = DuetSession(score, "performer", harmony="third_above")
    n = CHUNK_SAMPLES
    chunks = (AudioChunk(i, perf.audio[i:i + n]) for i in range(0, len(perf.audio), n))
    result = duet_from_audio(session, chunks)
    line = result.notes[HARMONY]
    key = Key(0, "major")
    assert len(line) == len(sung)
    expected = [harmony_pitch(n.pitch_midi, key, "third_above") for n in sung]
    assert [n.pitch_midi for n in line] == expected  # note 9 re-pitched from what was sung
    assert all(key.contains(p) for p in expected)
    cents = note_cents_errors(result.audio, line, min_body_s=0.3)
    assert len(cents) >= 12 and np.max(np.abs(cents)) <= 20.0, cents
