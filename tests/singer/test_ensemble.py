"""Ensemble state over a long show: a singer joining keeps the others' phase, and folding what
was played changes nothing still to be rendered while bounding what a line keeps."""

from __future__ import annotations

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ
from singer.ensemble import Ensemble, SingerLine
from singer.performer import EXPRESSION_GLIDE_S
from singer.synth import HarmonicNoiseSynth
from singer.voices import get_voice
from tests.singer.helpers import line

SR = SAMPLE_RATE_HZ
CHUNK = 240


def render_chunks(ensemble: Ensemble, start: int, stop: int) -> np.ndarray:
    return np.concatenate([ensemble.render_mix_samples(t, CHUNK)
                           for t in range(start, stop, CHUNK)])


def test_a_singer_joining_keeps_the_others_phase_for_a_rewind() -> None:
    notes = line([(0.1, 1.5, 62, ("a",))])
    synth = HarmonicNoiseSynth(device="cpu")
    reference = render_chunks(Ensemble(synth, [SingerLine("lead", get_voice("soprano"), notes)]),
                              0, SR)
    live = Ensemble(synth, [SingerLine("lead", get_voice("soprano"), notes)])
    played = render_chunks(live, 0, 24_000)  # played up to 0.5 s...
    ahead = render_chunks(live, 24_000, 24_000 + 4 * CHUNK)  # ... and 4 chunks rendered ahead
    live.add_line(SingerLine("alto", get_voice("soprano"), seed=1))  # silent so far
    # an edit re-renders the lookahead from the chunk after playout
    rewound = render_chunks(live, 24_000, SR)
    assert np.allclose(ahead, reference[24_000:24_000 + 4 * CHUNK], atol=1e-5)
    streamed = np.concatenate([played, rewound])
    # the lead carries on from its own phase at the rewind point: the samples of one render
    # from start to end, with no step at the edit
    np.testing.assert_allclose(streamed, reference, atol=1e-4)


def test_folding_played_events_bounds_a_line_and_changes_no_later_sample() -> None:
    notes = line([(0.05 + 0.25 * k, 0.2, 60 + k % 5, ("l", "a")) for k in range(40)])
    voice = get_voice("soprano")
    synth = HarmonicNoiseSynth(device="cpu")
    whole = SingerLine("lead", voice, notes)
    folded = SingerLine("lead", voice, notes)
    for k in range(3000):  # a controller sweeping volume and breathiness every 3 ms
        sample = 144 * k
        for target in (whole, folded):
            target.add_expression(sample, "volume", 0.5 + 0.4 * np.sin(k / 50))
            target.add_expression(sample, "breathiness", 1.0 + 0.5 * np.cos(k / 70))
    playout = 8 * SR
    reference = Ensemble(synth, [whole])
    live = Ensemble(synth, [folded])
    # both play up to playout the same way; then the live line folds what was played
    render_chunks(reference, 0, playout)
    render_chunks(live, 0, playout)
    settled = folded.settled_before(playout)
    n_events, n_dropped = folded.fold_before(settled)
    assert n_events > 4000 and n_dropped > 20
    # what the line keeps follows the span still to come, not the 8 s of show so far
    kept = folded.expression_events
    glide = EXPRESSION_GLIDE_S * SR
    assert len(kept) == sum(1 for e in whole.expression_events if e[0] + glide > settled)
    assert len(kept) < len(whole.expression_events) // 3
    assert folded.notes == [n for n in notes if n.t_off >= settled]
    # and sings on exactly as the line that kept everything (a rewind at playout included)
    np.testing.assert_allclose(render_chunks(live, playout, playout + SR),
                               render_chunks(reference, playout, playout + SR), atol=1e-5)


def test_expression_changes_on_one_sample_coalesce_and_the_last_wins() -> None:
    singer = SingerLine("lead", get_voice("soprano"), line([(0.0, 1.0, 60, ("a",))]))
    for value in (0.3, 1.8, 0.6):
        singer.add_expression(4800, "volume", value)
    singer.add_expression(4800, "tension", 0.7)
    assert sorted(singer.expression_events) == [(4800, "tension", 0.7), (4800, "volume", 0.6)]
