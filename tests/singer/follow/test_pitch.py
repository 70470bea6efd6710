"""The YIN tracker: pitch within cents on tones, the same frames however the input is
chunked, nothing voiced in silence or noise, and onsets found in the project's voice."""

from __future__ import annotations

import numpy as np
import pytest

from singer.contracts import SAMPLE_RATE_HZ
from singer.follow import corpus
from singer.follow.events import OnsetDetector
from singer.follow.pitch import YinTracker


def _tone(hz: float, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
    return (0.3 * np.sin(2 * np.pi * hz * t) + 0.15 * np.sin(4 * np.pi * hz * t)
            + 0.1 * np.sin(6 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("hz", [98.0, 220.0, 392.0, 700.0])
def test_tone_pitch_within_five_cents(hz: float) -> None:
    frames = YinTracker().process(_tone(hz))
    f0 = np.array([f.f0_hz for f in frames[5:]])
    assert len(f0) > 30 and np.all(f0 > 0)
    assert np.max(np.abs(1200 * np.log2(f0 / hz))) < 5.0


def test_chunking_gives_the_same_frames() -> None:
    x = _tone(261.6, 0.3)
    whole = YinTracker().process(x)
    for size in (1, 7, 160, 480):
        tracker = YinTracker()
        frames = [f for i in range(0, len(x), size) for f in tracker.process(x[i:i + size])]
        assert [f.t_sample for f in frames] == [f.t_sample for f in whole]
        np.testing.assert_allclose([f.f0_hz for f in frames], [f.f0_hz for f in whole],
                                   rtol=1e-9)


def test_silence_and_noise_are_not_voiced() -> None:
    detector = OnsetDetector()
    silence = YinTracker().process(np.zeros(SAMPLE_RATE_HZ // 2, np.float32))
    noise = YinTracker().process(
        np.random.default_rng(0).normal(0, 0.1, SAMPLE_RATE_HZ // 2).astype(np.float32))
    assert all(f.f0_hz == 0 for f in silence)
    assert detector.process(silence) == [] and detector.process(noise) == []


def test_onsets_of_a_sung_line_found_once_and_near_their_vowels() -> None:
    """Every note of the voice singing part A at 20 dB SNR is found once, near its vowel."""
    perf = corpus.perform(corpus.score_a(), bpm=120.0)
    tracker, detector = YinTracker(), OnsetDetector()
    events = [e for i in range(0, len(perf.audio), 240)
              for e in detector.process(tracker.process(perf.audio[i:i + 240]))]
    truth = np.array([perf.tempo_map.beat_to_sample(n.beat_on) for n in perf.notes])
    assert len(events) == len(truth)
    errors_ms = (np.array([e.onset_sample for e in events]) - truth) / SAMPLE_RATE_HZ * 1e3
    pitch_errors = [e.pitch_midi - n.pitch_midi for e, n in zip(events, perf.notes,
                                                                strict=True)]
    late = np.abs(errors_ms[1:])  # the first vowel is squeezed late by the show start
    assert np.median(late) < 15.0 and np.percentile(late, 95) < 40.0 and late.max() < 60.0
    # The first frames of a note carry the voice's preparation and overshoot: decided on the
    # 10 ms after its first voiced frame (5 ms hops), a note's pitch is still moving into it
    # (median error 0.73 semitones, against 0.5 when it was decided 20 ms later).
    assert np.median(np.abs(pitch_errors)) < 0.85 and np.max(np.abs(pitch_errors)) < 2.0
