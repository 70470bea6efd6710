"""Live expressions heard in the audio: each is cued through the Director as an OSC or MQTT
``expr`` cue is, on a sustained vowel, at a low and a high value, and measured with Praat
(parselmouth) and scipy: vibrato depth and rate from the pitch track, breathiness from the
harmonics-to-noise ratio, tension from the spectral tilt, formant shift from Burg formants."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import signal

from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.ensemble import BLOCK_FRAMES, SingerLine
from singer.performer import EXPRESSION_GLIDE_S, compile_track
from singer.score import Score, ScoreError
from singer.synth import HarmonicNoiseSynth
from singer.voices import get_voice
from stage.clock import ClockSync
from stage.director import Director
from stage.pacer import AudioPacer, PacerConfig
from streams.cue import EXPRESSIONS, make_cue
from tests.measure import f0_track

SR = SAMPLE_RATE_HZ
NOTE_ON_S = 0.1
CUE_S = 0.6
"""The expression cue lands mid-note, once the vibrato has set in (as a live cue does)."""
END_S = 1.9
BODY_S = (CUE_S + EXPRESSION_GLIDE_S + 0.07, END_S - 0.05)
"""Where the new value holds: after the cue's glide, before the note-off."""
CHUNK_SAMPLES = 2400
TILT_DB_PER_OCTAVE = 1.2 * 20 * math.log10(2)
"""The synth's tension model (``formant_envelope``): the spectrum is multiplied by
``(f / 1 kHz) ** (1.2 * (tension - 0.5))``, i.e. this many dB per octave per unit of tension."""


def _no_songs(ref: str) -> Score:
    raise ScoreError(f"no songs in this test ({ref!r})")


@pytest.fixture(scope="module")
def synth() -> HarmonicNoiseSynth:
    return HarmonicNoiseSynth(device="cpu")


async def sing_with_cue(synth: HarmonicNoiseSynth, name: str, value: float, *, voice: str,
                        pitch: float, syllable: str) -> np.ndarray:
    """A held note, with ``expr name value`` cued at ``CUE_S``, as the show plays it.

    The pacer is not started: its clock puts show sample 0 an hour away, so every cue lands on
    its own sample (as one in a timetagged bundle does); the audio then comes chunk by chunk
    from the pacer's renderer.
    """
    director = Director(synth, _no_songs, voice=voice)
    clock = ClockSync(time.monotonic_ns() + 3600 * 1_000_000_000)
    director.attach(AudioPacer(director.render, config=PacerConfig(240, 2), clock=clock))
    await director.handle(make_cue("note.on", {"pitch": pitch, "velocity": 0.8,
                                               "syllable": syllable},
                                   at_sample=int(NOTE_ON_S * SR), source="osc"))
    reply = await director.handle(make_cue("expr", {"name": name, "value": value},
                                           at_sample=int(CUE_S * SR), source="osc"))
    assert isinstance(reply, dict) and reply["at_sample"] == int(CUE_S * SR)  # on its sample
    await director.handle(make_cue("note.off", {"pitch": pitch}, at_sample=int(END_S * SR),
                                   source="osc"))
    n = int(END_S * SR)
    return np.concatenate([director.render(t, min(CHUNK_SAMPLES, n - t))
                           for t in range(0, n, CHUNK_SAMPLES)])


def _body(audio: np.ndarray) -> np.ndarray:
    return audio[int(BODY_S[0] * SR):int(BODY_S[1] * SR)].astype(np.float64)


def _vibrato_cents(audio: np.ndarray, pitch: float) -> tuple[np.ndarray, np.ndarray]:
    """(times s, sung pitch in cents re the note, linear trend removed) over the body."""
    hz = 440.0 * 2 ** ((pitch - 69) / 12)
    times, f0 = f0_track(audio, floor_hz=hz / 2, ceiling_hz=hz * 1.5)
    sel = (times > BODY_S[0]) & (times < BODY_S[1])
    assert (f0[sel] > 0).all(), "the held vowel is voiced throughout"
    t, cents = times[sel], 1200 * np.log2(f0[sel] / hz)
    return t, cents - np.polyval(np.polyfit(t, cents, 1), t)


def _half_periods(t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Seconds between successive zero crossings of ``x`` (linearly interpolated)."""
    i = np.nonzero(np.signbit(x[:-1]) != np.signbit(x[1:]))[0]
    crossings = t[i] + (t[i + 1] - t[i]) * x[i] / (x[i] - x[i + 1])
    return np.diff(crossings)


def _hnr_db(audio: np.ndarray) -> float:
    """Praat's harmonics-to-noise ratio (cross-correlation), mean over the voiced body."""
    import parselmouth

    harmonicity = parselmouth.Sound(_body(audio), SR).to_harmonicity_cc(0.01, 75.0, 0.1, 1.0)
    values = harmonicity.values[harmonicity.values > -200]  # -200: Praat's unvoiced
    return float(np.mean(values))


def _power_spectrum(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return signal.welch(_body(audio), SR, nperseg=8192)  # type: ignore[no-any-return]


def _formants(audio: np.ndarray, shift: float) -> tuple[float, float]:
    """Median F1, F2 (Hz) from Praat's Burg tracker, its ceiling scaled with the speaker."""
    import parselmouth

    formant = parselmouth.Sound(_body(audio), SR).to_formant_burg(
        time_step=0.01, max_number_of_formants=4, maximum_formant=3500.0 * shift)
    f1, f2 = ([formant.get_value_at_time(k, x) for x in formant.xs()] for k in (1, 2))
    return float(np.nanmedian(f1)), float(np.nanmedian(f2))


@dataclass(frozen=True)
class Case:
    """An expression sung at ``low`` and ``high`` and what the audio must show."""

    name: str
    low: float
    high: float
    voice: str
    pitch: float
    syllable: str
    check: Callable[[Case, np.ndarray, np.ndarray], None]


def check_vibrato_depth(case: Case, low: np.ndarray, high: np.ndarray) -> None:
    """The pitch swings by the voice's vibrato depth times the value (amplitude, in cents)."""
    own = get_voice(case.voice).vibrato_cents
    swing = {}
    for value, audio in ((case.low, low), (case.high, high)):
        _, cents = _vibrato_cents(audio, case.pitch)
        swing[value] = math.sqrt(2) * float(np.std(cents))  # a sine's amplitude from its RMS
        assert swing[value] == pytest.approx(own * value, rel=0.15), (value, swing)
    assert swing[case.high] / swing[case.low] == pytest.approx(case.high / case.low, rel=0.1)


def check_vibrato_rate(case: Case, low: np.ndarray, high: np.ndarray) -> None:
    """The pitch swings at the voice's vibrato rate times the value, from the cue's glide on,
    cycle after cycle (no late change, no jump in phase)."""
    own = get_voice(case.voice).vibrato_rate_hz
    rate = {}
    for value, audio in ((case.low, low), (case.high, high)):
        t, cents = _vibrato_cents(audio, case.pitch)
        halves = _half_periods(t, cents)
        assert len(halves) >= 4, (value, halves)
        rate[value] = 1.0 / (2.0 * float(np.mean(halves)))
        # the voice varies its rate a little from note to note (by at most 7 %)
        assert rate[value] == pytest.approx(own * value, rel=0.1), (value, rate)
        assert np.abs(halves * 2 * rate[value] - 1).max() < 0.25, (value, halves)
    # the same note: its own rate cancels
    assert rate[case.high] / rate[case.low] == pytest.approx(case.high / case.low, rel=0.05)


def check_breathiness(case: Case, low: np.ndarray, high: np.ndarray) -> None:
    """More breath noise: the harmonics-to-noise ratio falls by a clear margin."""
    clear, breathy = _hnr_db(low), _hnr_db(high)
    assert clear > 25.0, clear
    assert breathy < clear - 10.0, (clear, breathy)


def check_tension(case: Case, low: np.ndarray, high: np.ndarray) -> None:
    """Tension tilts the spectrum: brighter by the model's dB per octave, centroid higher."""
    freqs, dark = _power_spectrum(low)
    _, bright = _power_spectrum(high)
    band = (freqs > 300) & (freqs < 6000)
    gain_db = 10 * np.log10(bright[band] / dark[band])
    slope = float(np.polyfit(np.log2(freqs[band]), gain_db, 1)[0])
    assert slope == pytest.approx(TILT_DB_PER_OCTAVE * (case.high - case.low), rel=0.25), slope

    def centroid(p: np.ndarray) -> float:
        return float((freqs * p).sum() / p.sum())

    def above_2k_db(p: np.ndarray) -> float:
        return float(10 * np.log10(p[freqs > 2000].sum() / p.sum()))

    assert centroid(bright) > 1.1 * centroid(dark), (centroid(dark), centroid(bright))
    assert above_2k_db(bright) > above_2k_db(dark) + 4.0, (above_2k_db(dark),
                                                           above_2k_db(bright))


def check_formant_shift(case: Case, low: np.ndarray, high: np.ndarray) -> None:
    """F1 and F2 move to the voice's formants of the vowel times the value."""
    target = get_voice(case.voice).formants("eh").freqs_hz
    measured = {value: _formants(audio, value) for value, audio in ((case.low, low),
                                                                     (case.high, high))}
    for value, (f1, f2) in measured.items():
        assert f1 == pytest.approx(target[0] * value, rel=0.1), (value, f1, target[0])
        assert f2 == pytest.approx(target[1] * value, rel=0.05), (value, f2, target[1])
    ratio = case.high / case.low
    for k in (0, 1):
        moved = measured[case.high][k] / measured[case.low][k]
        assert moved == pytest.approx(ratio, rel=0.06), (k + 1, moved, ratio)


CASES = [
    Case("vibrato_depth", 0.5, 2.5, "soprano", 67, "ah", check_vibrato_depth),
    Case("vibrato_rate", 0.5, 2.0, "soprano", 67, "ah", check_vibrato_rate),
    Case("breathiness", 0.25, 4.0, "soprano", 67, "ah", check_breathiness),
    Case("tension", 0.1, 0.9, "soprano", 67, "ah", check_tension),
    # a low tenor /eh/: harmonics close enough for Burg to find F1 and F2 between them
    Case("formant_shift", 0.75, 1.3, "tenor", 43, "eh", check_formant_shift),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_expression_cue_is_heard_in_the_audio(case: Case, synth: HarmonicNoiseSynth,
                                                    keep_audio) -> None:  # noqa: ANN001
    low_limit, high_limit, _ = EXPRESSIONS[case.name]
    assert low_limit <= case.low < case.high <= high_limit
    sung = {}
    for value in (case.low, case.high):
        sung[value] = await sing_with_cue(synth, case.name, value, voice=case.voice,
                                          pitch=case.pitch, syllable=case.syllable)
        keep_audio(f"{case.name}_{value:g}", sung[value])
    case.check(case, sung[case.low], sung[case.high])


def test_every_expression_but_volume_is_measured_here() -> None:
    # volume is measured in tests/stage/test_director.py
    assert {c.name for c in CASES} == set(EXPRESSIONS) - {"volume"}


def test_a_vibrato_rate_change_sings_the_same_in_live_blocks_as_whole() -> None:
    # The live show compiles a line in short blocks of frames; a rate change mid-note must not
    # depend on where a block starts (it once read the rate at each block's first frame).
    voice = get_voice("soprano")
    notes = [Note(int(0.1 * SR), int(4.0 * SR), 67.0, "a", ("a",))]
    changes = [(int(0.6 * SR), "vibrato_rate", 2.0), (int(1.3 * SR), "vibrato_rate", 0.7)]
    line = SingerLine("lead", voice, notes)
    for change in changes:
        line.add_expression(*change)
    blocks = np.concatenate([line.track_block(b).f0_hz for b in range(15)])
    whole = compile_track(notes, voice, expression_events=changes,
                          frame_range=(0, 15 * BLOCK_FRAMES)).f0_hz
    assert np.abs(1200 * np.log2(blocks / whole)).max() < 0.01  # cents
