"""Expression cues on bank voices, measured in the audio: vibrato depth and rate from the
f0, breathiness from the harmonics-to-noise ratio, formant shift from the spectral envelope,
tension from the spectral tilt, volume from the level — for the UTAU test bank through the
live path (a ``SingerLine`` edited as the show does, replayed on the synthesis process's
copy), and for the DiffSinger test bank where its tiny models honour the input (f0, level).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from singer.backends.diffsinger.backend import DiffSingerBackend
from singer.backends.discovery import describe_bank, open_backend
from singer.backends.live import BankRef, check_expression, open_bank
from singer.backends.utau import UtauBank, UtauLine
from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.ensemble import Ensemble, LineEdit, SingerLine
from singer.performer import Expression
from singer.synth import HarmonicNoiseSynth
from singer.voices import get_voice
from tests.measure import f0_track, formant_peaks
from tests.singer.backends.diffsinger_bank import build_bank as build_ds_bank
from tests.singer.backends.utau_bank import build_bank

SR = SAMPLE_RATE_HZ
NOTE = Note(int(0.3 * SR), int(2.8 * SR), 64.0, "sa", ("s", "a"))
BODY = (1.2, 2.6)  # seconds: the held vowel, vibrato fully in
END = int(3.2 * SR)


@pytest.fixture(scope="module")
def utau(tmp_path_factory: pytest.TempPathFactory) -> BankRef:
    folder = build_bank(tmp_path_factory.mktemp("voices") / "xiaoce", "gbk")
    ref = BankRef.of(describe_bank(folder))
    open_bank(ref)
    return ref


def _live(bank: BankRef, edits: list[tuple[int, str, float]], chunk: int = 480) -> np.ndarray:
    """The note sung by a bank singer as the synthesis process sings it: the show's line is
    edited (expression cues at their samples, each made when playout is just before it), the
    edits replayed on a copy, which renders chunk by chunk."""
    synth = HarmonicNoiseSynth(device="cpu")
    line = SingerLine("lead", get_voice("soprano"), [NOTE], hop=synth.hop, bank=bank)
    show = Ensemble(synth, [line])
    made: list[LineEdit] = []
    show.set_listener(made.append)
    copy = Ensemble(synth, [SingerLine.from_state(s) for s in show.states()])
    pending = sorted(edits)
    out = []
    for t in range(0, END, chunk):
        while pending and pending[0][0] <= t + 4 * chunk:  # a cue lands a lookahead ahead
            sample, field, value = pending.pop(0)
            line.add_expression(sample, field, value)
        for edit in made:
            copy.apply(edit)
        made.clear()
        out.append(copy.render(t, chunk)[0])
    return np.concatenate(out)


def _cents(audio: np.ndarray, span: tuple[float, float]) -> tuple[np.ndarray, float]:
    """The f0 over ``span`` in cents about its median, and the frame rate (Hz)."""
    times, f0 = f0_track(audio, 150, 800)
    sel = (times > span[0]) & (times < span[1]) & (f0 > 0)
    cents = 1200 * np.log2(f0[sel] / np.median(f0[sel]))
    return cents - np.median(cents), 1.0 / float(np.median(np.diff(times)))


def _vibrato(audio: np.ndarray, span: tuple[float, float] = BODY) -> tuple[float, float]:
    """(depth: RMS cents, rate: the strongest modulation frequency in Hz) over ``span``."""
    cents, rate = _cents(audio, span)
    spectrum = np.abs(np.fft.rfft(cents * np.hanning(len(cents)), 8192))
    freqs = np.fft.rfftfreq(8192, 1.0 / rate)
    band = (freqs > 2.0) & (freqs < 15.0)
    return float(np.sqrt(np.mean(cents ** 2))), float(freqs[band][np.argmax(spectrum[band])])


def _hnr_db(audio: np.ndarray, span: tuple[float, float] = BODY) -> float:
    """Praat's harmonicity (cross-correlation method), mean over ``span``, in dB."""
    import parselmouth

    sound = parselmouth.Sound(audio[int(span[0] * SR):int(span[1] * SR)].astype(np.float64),
                              SR)
    hnr = sound.to_harmonicity_cc(time_step=0.01, minimum_pitch=150.0).values[0]
    return float(np.mean(hnr[hnr > -100]))


def _band_db(audio: np.ndarray, lo_hz: float, hi_hz: float,
             span: tuple[float, float] = BODY) -> float:
    x = audio[int(span[0] * SR):int(span[1] * SR)].astype(np.float64)
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / SR)
    return float(10 * np.log10(power[(freqs >= lo_hz) & (freqs < hi_hz)].sum()))


def _rms(audio: np.ndarray, span: tuple[float, float] = BODY) -> float:
    return float(np.sqrt(np.mean(audio[int(span[0] * SR):int(span[1] * SR)] ** 2)))


def test_utau_vibrato_cues_shape_the_f0_depth_and_rate(utau: BankRef) -> None:
    plain = _live(utau, [])
    deep = _live(utau, [(int(0.5 * SR), "vibrato_depth", 3.0)])
    fast = _live(utau, [(int(0.5 * SR), "vibrato_rate", 2.0)])
    flat = _live(utau, [(int(0.5 * SR), "vibrato_depth", 0.0)])
    depth, rate = _vibrato(plain)
    assert depth > 10.0  # the voice's own vibrato is there to scale
    assert 2.3 <= _vibrato(deep)[0] / depth <= 3.6
    assert _vibrato(flat)[0] < 0.35 * depth  # drift only
    assert abs(_vibrato(fast)[1] / rate - 2.0) < 0.25


def test_a_vibrato_cue_in_the_middle_of_a_held_note_takes_effect_there(utau: BankRef) -> None:
    at = int(1.9 * SR)  # mid-note: the unit sounding is re-timed from there on, not redone
    audio = _live(utau, [(at, "vibrato_depth", 3.0)])
    before = _vibrato(audio, (1.2, 1.85))[0]
    after = _vibrato(audio, (2.05, 2.7))[0]
    assert after > 2.0 * before
    plain = _live(utau, [])
    head = slice(0, at - SR // 10)
    assert float(np.abs(audio[head] - plain[head]).max()) <= 1e-4  # nothing earlier changed
    # the live path (cue mid-note, chunked) equals the same expression given up front
    line = UtauLine(UtauBank.load(utau.path), [NOTE], voice=get_voice("soprano"))
    line.set_expression(Expression(), ((at, "vibrato_depth", 3.0),))
    whole = line.render(0, END)
    assert float(np.abs(audio - whole).max()) <= 1e-4


def test_utau_breathiness_lowers_the_harmonics_to_noise_ratio(utau: BankRef) -> None:
    hnr = {b: _hnr_db(_live(utau, [(int(0.5 * SR), "breathiness", b)]))
           for b in (0.0, 1.0, 2.0, 4.0)}
    assert hnr[4.0] < hnr[1.0] - 6.0, hnr  # +24 dB of breath noise
    assert hnr[2.0] < hnr[1.0] - 1.5, hnr
    assert hnr[0.0] >= hnr[1.0] - 0.5, hnr  # none: no noisier than the recording


def test_utau_formant_shift_moves_the_spectral_envelope(utau: BankRef) -> None:
    plain = _live(utau, [])
    shifted = _live(utau, [(int(0.5 * SR), "formant_shift", 1.25)])
    # the upper formants (F1 of a 330 Hz voice sits on a harmonic: not measurable) move up
    # by the factor (±5 %), the pitch stays
    low = [p for p in formant_peaks(plain, *BODY) if 2000 < p < 4500][:2]
    high = [p for p in formant_peaks(shifted, *BODY) if 2000 * 1.25 < p < 4500 * 1.25][:2]
    assert len(low) == len(high) == 2, (low, high)
    for a, b in zip(low, high, strict=True):
        assert abs(b / a - 1.25) < 0.05 * 1.25, (low, high)
    assert abs(float(np.median(_cents(shifted, BODY)[0]))) < 5.0


def test_utau_tension_tilts_the_spectrum_and_volume_scales_the_level(utau: BankRef) -> None:
    plain = _live(utau, [])
    tense = _live(utau, [(int(0.5 * SR), "tension", 1.0)])
    lax = _live(utau, [(int(0.5 * SR), "tension", 0.0)])

    def tilt(a: np.ndarray) -> float:
        return _band_db(a, 3000, 8000) - _band_db(a, 200, 1000)
    assert tilt(tense) > tilt(plain) + 6.0
    assert tilt(lax) < tilt(plain) - 6.0
    soft = _live(utau, [(int(0.5 * SR), "volume", 0.5)])
    assert abs(_rms(soft) / _rms(plain) - 0.5) < 0.02


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> DiffSingerBackend:
    folder = build_ds_bank(tmp_path_factory.mktemp("voices") / "tiny")
    backend = open_backend(describe_bank(folder), device="cpu")
    assert isinstance(backend, DiffSingerBackend)
    return backend


def _ds_sing(backend: DiffSingerBackend, events: tuple[tuple[int, str, float], ...]
             ) -> np.ndarray:
    note = Note(NOTE.t_on, NOTE.t_off, NOTE.pitch_midi, "la", ("l", "a"))
    line = backend.open_line("lead", [note])
    line.set_expression(Expression(), events)
    line.prepare(END)
    return line.render(0, END)


def test_diffsinger_vibrato_and_volume_cues_reach_the_phrases(ds: DiffSingerBackend) -> None:
    before = int(0.2 * SR)  # a change before the phrase's first note: the whole phrase
    plain = _ds_sing(ds, ())
    deep = _ds_sing(ds, ((before, "vibrato_depth", 3.0),))
    fast = _ds_sing(ds, ((before, "vibrato_rate", 2.0),))
    soft = _ds_sing(ds, ((before, "volume", 0.5),))
    depth, rate = _vibrato(plain)
    assert depth > 10.0
    assert 2.3 <= _vibrato(deep)[0] / depth <= 3.6
    assert abs(_vibrato(fast)[1] / rate - 2.0) < 0.25
    assert abs(_rms(soft) / _rms(plain) - 0.5) < 0.02



def test_a_diffsinger_change_mid_phrase_is_sung_from_the_next_phrase(
        ds: DiffSingerBackend) -> None:
    # phrase-ahead: the phrase sounding is not rendered again; the next one takes the change
    notes = [Note(int(0.3 * SR), int(1.8 * SR), 64.0, "la", ("l", "a")),
             Note(int(2.3 * SR), int(3.8 * SR), 64.0, "la", ("l", "a"))]
    end = int(4.2 * SR)

    def sing(events: tuple[tuple[int, str, float], ...]) -> np.ndarray:
        line = ds.open_line("lead", notes)
        line.set_expression(Expression(), events)
        line.prepare(end)
        return line.render(0, end)
    plain, late = sing(()), sing(((int(1.0 * SR), "vibrato_depth", 3.0),))
    first = slice(0, int(2.0 * SR))
    assert float(np.abs(late[first] - plain[first]).max()) == 0.0
    assert _vibrato(late, (3.0, 3.7))[0] > 2.0 * _vibrato(plain, (3.0, 3.7))[0]


def test_a_cue_a_bank_cannot_honour_is_refused_with_one_line(ds: DiffSingerBackend,
                                                             utau: BankRef) -> None:
    ref = BankRef.of(ds.info)
    assert ds.expression_fields == {"volume", "vibrato_depth", "vibrato_rate"}
    for field in ("breathiness", "tension", "formant_shift"):
        with pytest.raises(ValueError, match=f"cannot honour the expression '{field}'") as err:
            check_expression(ref, field)
        assert "\n" not in str(err.value)
    for field in ("vibrato_depth", "breathiness", "formant_shift", "tension", "volume"):
        check_expression(utau, field)


def test_diffsinger_breathiness_and_gender_feed_the_declared_inputs(tmp_path: Path) -> None:
    from singer.backends.diffsinger.config import read_dsconfig
    from singer.backends.diffsinger.render import _expressed, expression_fields

    folder = build_ds_bank(tmp_path / "tiny")
    cfg = read_dsconfig(folder / "dsconfig.yaml")
    import dataclasses

    declared = dataclasses.replace(cfg, use_breathiness_embed=True, use_tension_embed=True,
                                   use_key_shift_embed=True)
    assert expression_fields(declared, has_pitch_model=True) == {
        "volume", "breathiness", "tension", "formant_shift"}
    curves = {"breathiness": np.array([1.0, 10.0]), "tension": np.array([0.5, 1.0])}
    base = np.array([-40.0, -40.0], np.float32)
    assert np.allclose(_expressed("breathiness", base, curves), [-40.0, -20.0])
    assert np.allclose(_expressed("tension", base, curves), [-40.0, -35.0])
