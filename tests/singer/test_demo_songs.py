"""The demo songs, rendered offline, are sung in tune on their notes."""

from __future__ import annotations

import numpy as np
import pytest

from singer.render import render_score
from singer.scores.musicxml import read_musicxml
from singer.songs import song_path
from tests.measure import note_cents_errors


@pytest.mark.parametrize(("song", "voice"), [("jasmine", "soprano"), ("twinkle", "tenor")])
def test_demo_song_pitch(song: str, voice: str, keep_audio) -> None:
    score = read_musicxml(song_path(song))
    audio = render_score(score, voice, seed=0)
    keep_audio(song, audio)
    assert len(audio) >= score.end_sample
    errors = np.abs(note_cents_errors(audio, score.notes))
    assert len(errors) >= 0.8 * len(score.notes)
    assert np.median(errors) <= 10.0, np.sort(errors)[-10:]
    assert np.percentile(errors, 95) <= 25.0
