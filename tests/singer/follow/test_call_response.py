"""Call and response: the idol answers each of the performer's phrases with the score's
response phrase, placed from the heard end of the call at the performer's tempo.

The performer (the project's voice, 20 dB SNR) sings two-bar calls at 0.85 x the score's
tempo with rubato, and holds the last note of the third call 1.5 beats longer than written.
Measured in the idol's audio: each response's first vowel onset against the performer's
real end of the call plus the score's gap at the performer's tempo, and the response's
inner tempo (its onsets fitted against their beats) against the tempo the call was sung at
(the score's own 90 bpm would be 13 % too fast)."""

from __future__ import annotations

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ
from singer.follow import corpus
from singer.follow.corpus import Performance
from singer.follow.duet import DuetSession, duet_from_audio
from singer.follow.retime import idol_notes
from singer.score import Score
from tests.measure import band_energy_onset

SR = SAMPLE_RATE_HZ
CALL = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0]  # two bars; the idol answers in the next two
CALL_PITCHES = [67, 69, 71, 67, 72, 71, 69]
ANSWER = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]  # after a beat's rest
ANSWER_PITCHES = [64, 62, 60, 62, 64, 65, 64]
CALLS = 4


def call_response_score() -> Score:
    """4/4 at 90 bpm: the performer calls (bars 1-2, 5-6, ...), the idol answers a beat after
    each call ends (bars 3-4, 7-8, ...)."""
    rhythm: list[float] = []
    melody: list[int] = []
    idol_rhythm: list[float] = []
    harmony: list[int] = []
    for _ in range(CALLS):
        rhythm += CALL + [8.0]
        melody += CALL_PITCHES + [0]
        idol_rhythm += [9.0] + ANSWER
        harmony += [0] + ANSWER_PITCHES
    return corpus.duet_score(rhythm, melody, harmony, 90.0, 4, "call and response",
                             idol_rhythm)


def _onset_s(audio: np.ndarray, pitch_midi: float, around: float) -> float:
    lo = max(0, int(around - 0.5 * SR))
    hz = 440.0 * 2 ** ((pitch_midi - 69) / 12)
    t = band_energy_onset(audio[lo:int(around + 0.8 * SR)], hz, (around - lo) / SR,
                          search_s=0.25)
    return lo / SR + t


def test_responses_start_from_the_heard_end_of_the_call_at_the_performers_tempo() -> None:
    score = call_response_score()
    base_bpm = 90.0 * 0.85
    perf = corpus.perform(score, bpm=base_bpm, curve=corpus.rubato(0.06, 16.0),
                          fermata_note=3 * len(CALL) - 1, fermata_beats=1.5)
    session = DuetSession(score, "performer")
    result = duet_from_audio(session, _chunks(perf))
    line = idol_notes(next(p for p in score.parts if p.name == "idol"), score.tempo_map)
    sung = {n.t_on: n for n in result.notes["idol"]}
    starts_ms, tempo_ratios = [], []
    for call in range(CALLS):
        last = perf.notes[(call + 1) * len(CALL) - 1]  # in performance beats, held or not
        end = perf.tempo_map.beat_to_sample(last.beat_off)
        bpm_end = perf.tempo_map.bpm_at(last.beat_off)
        answer = line[call * len(ANSWER):(call + 1) * len(ANSWER)]
        gap_beats = answer[0].beat_on - session.part.notes[(call + 1) * len(CALL) - 1].beat_off
        truth = end + gap_beats * 60.0 / bpm_end * SR
        measured = _onset_s(result.audio, answer[0].note.pitch_midi, truth)
        starts_ms.append(1000 * (measured - truth / SR))
        # the answer's inner tempo: its sung onsets against their beats
        placed = sorted(sung)[call * len(ANSWER):(call + 1) * len(ANSWER)]
        onsets = [_onset_s(result.audio, n.note.pitch_midi, t)
                  for n, t in zip(answer, placed, strict=True)]
        slope = np.polyfit([n.beat_on for n in answer], onsets, 1)[0]
        first = perf.notes[call * len(CALL)]
        played_s = (perf.tempo_map.beat_to_sample(last.beat_on)
                    - perf.tempo_map.beat_to_sample(first.beat_on)) / SR
        call_bpm = 60.0 * (last.beat_on - first.beat_on) / played_s  # the tempo it was sung at
        tempo_ratios.append(60.0 / slope / call_bpm)
    a = np.abs(starts_ms)
    assert np.median(a) <= 30.0 and np.percentile(a, 95) <= 80.0, starts_ms
    assert all(abs(r - 1.0) <= 0.05 for r in tempo_ratios), tempo_ratios
    # (measured before responses were placed from the call's heard end: starts 66-110 ms
    # early, the performer still sounding the call's last note)


def _chunks(perf: Performance):  # noqa: ANN202
    from mocap.performer_audio import CHUNK_SAMPLES
    from singer.contracts import AudioChunk

    for i in range(0, len(perf.audio), CHUNK_SAMPLES):
        yield AudioChunk(i, perf.audio[i:i + CHUNK_SAMPLES])
