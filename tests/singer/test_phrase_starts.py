"""Phrase starts (where sound begins after silence) kept up to date edit by edit."""

from __future__ import annotations

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.ensemble import SingerLine, _phrase_starts
from singer.lyrics import phonemize_word
from singer.voices import get_voice

SR = SAMPLE_RATE_HZ


def test_live_edits_keep_the_same_phrase_starts_as_a_full_recompute() -> None:
    rng = np.random.default_rng(3)
    words = ["la", "strong", "sky", "a", "spring", "mo"]
    line = SingerLine("lead", get_voice("soprano"))
    notes: list[Note] = []
    t = 0
    for i in range(120):
        t += int(rng.choice([0.0, 0.05, 0.11, 0.4, 1.5]) * SR)  # legato .. long rests
        length = int(rng.uniform(0.04, 0.6) * SR)
        word = words[i % len(words)]
        notes.append(Note(t, t + length, 60 + i % 12, word, phonemize_word([word], "en")[0]))
        line.set_notes(list(notes), changed_from=t)
        t += length
        if i % 17 == 0:  # now and then the last note is cut short (a note-off)
            last = notes[-1]
            notes[-1] = Note(last.t_on, last.t_on + length // 2, last.pitch_midi, last.lyric,
                             last.phonemes)
            line.set_notes(list(notes), changed_from=last.t_on + length // 2)
            t = notes[-1].t_off
    assert line._phrase_starts == _phrase_starts(notes)
    assert len(line._phrase_starts) > 20
