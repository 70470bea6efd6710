"""Following a sung performer: the project's voice sings the performer's part of a duet at
another tempo, with a step change, rubato, a fermata and a skipped bar; the idol's part is
rendered by the causal duet loop, and its onsets are measured in its own audio against the
beats the performer really sang (the tempo curve's ground truth)."""

from __future__ import annotations

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ, AudioChunk
from singer.follow import bench, corpus
from singer.follow.duet import CHUNK_SAMPLES, DuetResult, DuetSession, duet_from_audio
from singer.follow.evaluate import idol_asynchrony_ms, summary
from singer.score import Score


def _duet(score: Score, perf: corpus.Performance) -> tuple[DuetSession, DuetResult,
                                                          list[tuple[int, float]]]:
    """Run the duet; also the follower's position (score beat) after every 10 ms heard."""
    session = DuetSession(score, "performer")
    positions: list[tuple[int, float]] = []

    def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(perf.audio), CHUNK_SAMPLES):
            if session.follower.started:
                positions.append((i, session.follower.beat_at(i)))
            yield AudioChunk(i, perf.audio[i:i + CHUNK_SAMPLES])

    return session, duet_from_audio(session, chunks()), positions


def _position_errors_ms(perf: corpus.Performance, positions: list[tuple[int, float]],
                        settle: list[tuple[float, float]]) -> list[float]:
    """Follower's beat against the truth at each hop, as time (ms) at the true tempo."""
    out = []
    for sample, beat in positions:
        truth = perf.sample_of(beat)
        if truth is None or any(a <= beat < b for a, b in settle):
            continue
        out.append(1000.0 * (sample - truth) / SAMPLE_RATE_HZ)
    return out


def test_step_change_followed_within_targets() -> None:
    """Score A sung at 95 bpm (score: 100), +15 % from beat 16."""
    score = corpus.score_a()
    perf = corpus.perform(score, bpm=95.0, curve=corpus.step(16.0))
    session, result, positions = _duet(score, perf)
    med, p95 = summary(idol_asynchrony_ms(score, perf, result.audio, [(0, 8), (16, 24)]))
    assert med <= 30.0 and p95 <= 80.0, (med, p95)
    # Tempo within ±5 % within 4 beats after the change.
    after = [s.bpm for s in result.log if 20.0 <= s.beat < 40.0]
    assert after and max(abs(b / (95.0 * 1.15) - 1.0) for b in after) <= 0.05, after
    pos_med, pos_p95 = summary(_position_errors_ms(perf, positions, [(0, 2), (16, 20)]))
    assert pos_med <= 30.0 and pos_p95 <= 100.0, (pos_med, pos_p95)


def test_rubato_fermata_and_skipped_bar() -> None:
    """Score A at 112 bpm with ±8 % rubato, a 2-beat fermata on beat 11, bar 7 left out."""
    score = corpus.score_a()
    perf = corpus.perform(score, bpm=112.0, curve=corpus.rubato(), fermata_note=9,
                          skip_bar=6)
    session, result, _ = _duet(score, perf)
    med, p95 = summary(idol_asynchrony_ms(score, perf, result.audio,
                                          [(0, 8), (11, 19), (24, 36)]))
    assert med <= 30.0 and p95 <= 100.0, (med, p95)
    # Back in place within 2 bars of the skip: every event from beat 36 on is the right note.
    truth_errors = [abs(s.sample - (perf.sample_of(s.beat) or 0)) / SAMPLE_RATE_HZ
                    for s in result.log if s.beat >= 36.0 and s.confidence > 0.5]
    assert truth_errors and max(truth_errors) < 0.06, truth_errors
    # The fermata: the idol holds the note it is on until the performer moves on.
    start, end = perf.sample_of(11.0), perf.sample_of(12.0)
    assert start is not None and end is not None
    middle = (start + end) / 2 + 0.3 * SAMPLE_RATE_HZ
    held = [n for n in result.notes["idol"] if n.t_on <= middle < n.t_off]
    assert held and held[0].t_off >= end - 0.1 * SAMPLE_RATE_HZ, held


def test_second_score_three_four_with_eighths() -> None:
    """Score B (3/4, 84 bpm, eighths; the idol in whole bars) sung at 70 bpm with rubato,
    a fermata and a skipped bar, by another voice than the idol's."""
    score = corpus.score_b()
    perf = corpus.perform(score, bpm=70.0, curve=corpus.rubato(), meter=3, skip_bar=5,
                          fermata_note=4, voice="soprano")
    _, result, _ = _duet(score, perf)
    values = idol_asynchrony_ms(score, perf, result.audio, [(0, 6), (4, 13), (15, 24)])
    med, p95 = summary(values)
    # Every idol note falls with a performer note after a held one: predicted across it, or
    # placed once heard. With onsets decided 19 ms after they are sung (46 ms before the
    # 5 ms hops; docs/follow.md) the median is 25 ms; it was 43.
    assert len(values) >= 4 and med <= 30.0 and p95 <= 80.0, (values, med, p95)
    assert np.all(np.isfinite(result.audio))


def test_rubato_curve_across_half_notes() -> None:
    """``bench duet``'s ±8 % rubato on score A, sung: its p95 was 86.1 ms (the idol's notes
    after the performer's half notes predicted 80-135 ms early where they slow), and its
    median 31.4 ms (the notes placed once heard, 46 ms after the onset was sung). The wait
    by the prediction's measured uncertainty and onsets decided in 19 ms bring both within
    the issue's 30 / 80 ms (docs/follow.md)."""
    case = next(c for c in corpus.CURVES if c.name == "rubato")
    row = bench.curve_row(case, "audio")
    assert row["idol_notes_missing"] == 0, row
    med, p95 = row["async_ms_median"], row["async_ms_p95"]
    assert isinstance(med, float) and isinstance(p95, float), row
    assert med <= 30.0 and p95 <= 80.0, row
