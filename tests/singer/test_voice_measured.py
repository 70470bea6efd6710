"""What the voice sings, measured from the audio: pitch, vowel timing, formants."""

from __future__ import annotations

import numpy as np
import pytest

from singer.contracts import SAMPLE_RATE_HZ
from singer.phonemes import VOWEL_NAMES
from singer.voices import get_voice
from tests.measure import band_energy_onset, formant_peaks, note_cents_errors
from tests.singer.helpers import line, sing

SR = SAMPLE_RATE_HZ


def _melody(base: int, voice_range: tuple[int, int], rng: np.random.Generator) -> list:
    steps = rng.integers(-5, 6, size=10)
    pitches = np.clip(base + np.cumsum(steps), *voice_range)
    syllables = [("l", "a"), ("m", "i"), ("n", "o"), ("s", "u"), ("t", "a", "n"),
                 ("k", "eh"), ("w", "a", "ih"), ("d", "ih", "ng")]
    spec, t = [], 0.05
    for i, p in enumerate(pitches):
        dur = float(rng.choice([0.3, 0.45, 0.6]))
        spec.append((t, dur, float(p), syllables[i % len(syllables)]))
        t += dur + (0.1 if i % 4 == 3 else 0.0)
    return line(spec)


@pytest.mark.parametrize("voice", ["soprano", "tenor"])
def test_sung_pitch_follows_generated_melodies(voice: str, keep_audio) -> None:
    profile = get_voice(voice)
    rng = np.random.default_rng(7)
    lo, hi = profile.range_midi
    notes = _melody((lo + hi) // 2, (lo + 2, hi - 2), rng)
    audio = sing(notes, voice, seed=1)
    keep_audio(f"melody_{voice}", audio)
    errors = np.abs(note_cents_errors(audio, notes))
    assert len(errors) == len(notes)
    assert np.median(errors) <= 10.0, errors
    assert errors.max() <= 30.0, errors  # no note is off (vibrato and overshoot included)


def test_vowel_lands_on_the_beat_after_voiceless_consonants(keep_audio) -> None:
    # Voiceless onsets: the fundamental appears only when the vowel starts.
    onsets = [0.4, 1.0, 1.6, 2.2, 2.8, 3.4]
    syllables = [("s", "a"), ("t", "a"), ("k", "a"), ("sh", "a"), ("p", "a"), ("tsh", "a")]
    notes = line([(t, 0.45, 57, ph) for t, ph in zip(onsets, syllables, strict=True)])
    audio = sing(notes, "soprano", seed=2)
    keep_audio("onsets", audio)
    f0 = 440 * 2 ** ((57 - 69) / 12)
    measured = [band_energy_onset(audio, f0, t) for t in onsets]
    errors_ms = [1000 * (m - t) for m, t in zip(measured, onsets, strict=True)]
    assert all(abs(e) <= 10.0 for e in errors_ms), errors_ms
    # and the consonant really sounds before the beat: noise energy before each onset
    for t in onsets:
        before = audio[int((t - 0.06) * SR):int((t - 0.01) * SR)]
        assert np.sqrt(np.mean(before ** 2)) > 1e-3


def test_consonant_before_the_first_note_is_shortened_not_cut() -> None:
    notes = line([(0.03, 0.5, 60, ("s", "a"))])  # /s/ wants 100 ms, only 30 ms exist
    audio = sing(notes, "tenor")
    noise = audio[: int(0.03 * SR)]
    assert np.sqrt(np.mean(noise ** 2)) > 1e-3  # the /s/ is there, inside the WAV
    f0 = 440 * 2 ** ((60 - 69) / 12)
    assert abs(band_energy_onset(audio, f0, 0.03, search_s=0.03) - 0.03) <= 0.01


def _resolvable(f1: float, f2: float, f0: float) -> bool:
    """Formants a harmonic spectrum can show: F1 above 2.5 f0, F2 three harmonics away."""
    return f1 >= 2.5 * f0 and f2 - f1 >= 3 * f0


@pytest.mark.parametrize(("voice", "midi"), [("tenor", 43), ("soprano", 53)])
def test_sustained_vowel_formants_match_the_voice_targets(voice: str, midi: int,
                                                          keep_audio) -> None:
    profile = get_voice(voice)
    f0 = 440 * 2 ** ((midi - 69) / 12)
    checked = []
    for vowel in VOWEL_NAMES:
        target = profile.formants(vowel).freqs_hz
        if not _resolvable(target[0], target[1], f0):
            continue
        audio = sing(line([(0.1, 1.5, midi, (vowel,))]), voice, seed=4)
        keep_audio(f"{voice}_{vowel}", audio)
        peaks = formant_peaks(audio, 0.5, 1.4, above_hz=1.2 * f0)  # nothing below f0
        f1, f2 = peaks[0], peaks[1]
        assert abs(f1 / target[0] - 1) <= 0.12, (vowel, f1, target[0])
        assert abs(f2 / target[1] - 1) <= 0.12, (vowel, f2, target[1])
        checked.append(vowel)
    assert len(checked) >= (12 if voice == "tenor" else 4), checked
