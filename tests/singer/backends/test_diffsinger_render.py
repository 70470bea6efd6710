"""A tiny DiffSinger bank (real format, ONNX models exported from torch) sung by the engine:
in tune, phrases joined without clicks, phrase-ahead cache, live notes, the variants' inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from singer.backends.diffsinger import (
    DiffSingerBank,
    LiveNote,
    PhraseRenderer,
    PhraseTrack,
    RenderSettings,
    split_phrases,
)
from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.lyrics import phonemize_word
from tests.measure import f0_track, note_cents_errors
from tests.singer.backends.diffsinger_bank import BankSpec, build_bank


def _note(on_s: float, off_s: float, midi: float, lyric: str) -> Note:
    return Note(int(on_s * SAMPLE_RATE_HZ), int(off_s * SAMPLE_RATE_HZ), midi, lyric,
                phonemize_word([lyric], "zh")[0])


SCORE = [_note(0.4, 0.9, 60, "ma"), _note(0.9, 1.4, 62, "la"), _note(1.4, 2.0, 64, "san"),
         _note(2.03, 2.6, 67, "好"), _note(2.6, 3.2, 65, "wo"),  # 30 ms gap: phrases overlap
         _note(3.5, 4.2, 69, "ni"), _note(4.2, 4.8, 72, "da")]


@pytest.fixture(scope="module")
def bank_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bank(tmp_path_factory.mktemp("ds") / "tiny")


@pytest.fixture(scope="module")
def bank(bank_dir: Path) -> DiffSingerBank:
    return DiffSingerBank.load(bank_dir, device="cpu")


def _jump(audio: np.ndarray) -> np.ndarray:
    """Sample-to-sample second difference: a click is a spike in it."""
    return np.abs(np.diff(audio.astype(np.float64), 2))


def test_bank_loads_as_openutau_does(bank: DiffSingerBank) -> None:
    assert bank.name == "Tiny Test Singer"
    assert bank.phonemes["<PAD>"] == 0 and "SP" in bank.phonemes
    assert set(bank.acoustic.inputs) == {"tokens", "durations", "f0", "steps"}
    assert bank.acoustic.inputs["steps"].rank == 0
    assert bank.vocoder_config.path.parent.name == "dsvocoder"
    assert bank.frame_s == pytest.approx(512 / 44100)


def test_score_is_in_tune_and_joins_are_click_free(bank: DiffSingerBank) -> None:
    phrases = split_phrases(SCORE)
    assert [len(p) for p in phrases] == [3, 2, 2]  # a phrase ends at any gap
    track = PhraseTrack(PhraseRenderer(bank), tuple(SCORE))
    audio = track.read(0, 5 * SAMPLE_RATE_HZ)
    errors = note_cents_errors(audio, SCORE)
    assert len(errors) == len(SCORE)
    assert np.median(np.abs(errors)) <= 10.0, errors
    assert max(abs(e) for e in errors) <= 25.0, errors

    rendered = track.render_all()
    assert rendered[0].end > rendered[1].start  # the 30 ms gap: lead-out and lead-in overlap
    jump = _jump(audio)
    body = np.percentile(jump[int(0.5 * SAMPLE_RATE_HZ):int(4.7 * SAMPLE_RATE_HZ)], 99.9)
    for p in rendered:
        for edge in (p.start, p.end):
            lo, hi = max(0, edge - 480), min(len(jump), edge + 480)
            assert jump[lo:hi].max() <= 1.5 * body, (edge, jump[lo:hi].max(), body)
    # the engine's lead-in: every phrase's first phoneme starts before its first note
    for p, notes in zip(rendered, phrases, strict=True):
        assert p.start < p.voice_start <= notes[0].t_on


def test_chunked_reads_equal_one_read(bank: DiffSingerBank) -> None:
    track = PhraseTrack(PhraseRenderer(bank), tuple(SCORE))
    whole = track.read(0, 5 * SAMPLE_RATE_HZ)
    pieces, t = [], 0
    for size in (1, 7, 160, 480, 48000, 33333):
        pieces.append(track.read(t, size))
        t += size
    pieces.append(track.read(t, 5 * SAMPLE_RATE_HZ - t))
    np.testing.assert_allclose(np.concatenate(pieces), whole, atol=1e-7)


def test_phrases_are_cached_and_a_cue_rerenders_only_what_changed(bank: DiffSingerBank) -> None:
    renderer = PhraseRenderer(bank)
    track = PhraseTrack(renderer, tuple(SCORE))
    assert track.prepare(10 * SAMPLE_RATE_HZ) == 3
    assert track.prepare(10 * SAMPLE_RATE_HZ) == 0
    changed = list(SCORE)
    changed[5] = _note(3.5, 4.2, 70, "ni")  # the last phrase changes
    track.set_notes(changed)
    assert track.prepare(10 * SAMPLE_RATE_HZ) == 1
    audio = track.read(0, 5 * SAMPLE_RATE_HZ)
    assert abs(note_cents_errors(audio, changed)[5]) <= 15.0


def test_live_note_sings_while_held_and_releases(bank: DiffSingerBank) -> None:
    renderer = PhraseRenderer(bank)
    on = int(0.2 * SAMPLE_RATE_HZ)
    live = LiveNote(renderer, on, 64.0, "la", first_s=0.3, segment_s=0.5)
    first = live.begin()
    assert first.voice_start == on  # the first phoneme sounds at the budgeted sample
    live.extend(int(1.9 * SAMPLE_RATE_HZ))
    assert len(live.segments) >= 4
    off = int(2.0 * SAMPLE_RATE_HZ)
    live.release(off)
    audio = live.read(0, int(2.6 * SAMPLE_RATE_HZ))
    held = Note(on + int(0.06 * SAMPLE_RATE_HZ), off, 64.0, "la", ("l", "a"))
    assert abs(note_cents_errors(audio, [held])[0]) <= 10.0
    body = audio[int(0.5 * SAMPLE_RATE_HZ):int(1.9 * SAMPLE_RATE_HZ)]
    # segment joins: no click, no dip (the continuation is phase-aligned)
    jump = _jump(audio)
    ref = np.percentile(_jump(body), 99.9)
    for seg in live.segments[1:]:
        assert jump[seg.start - 480:seg.start + 4000].max() <= 1.5 * ref
    frame = 480
    rms = np.sqrt(np.mean(body[: len(body) // frame * frame].reshape(-1, frame) ** 2, axis=1))
    assert rms.min() >= 0.8 * np.median(rms)
    # released: silent after the SP tail
    assert np.abs(audio[off + int(0.25 * SAMPLE_RATE_HZ):]).max() < 1e-3


@pytest.mark.parametrize("spec", [
    BankSpec(mel_base="10", vocoder_mel_base="e"),
    BankSpec(continuous=False, variable_depth=True, scalar_rank=1),
    BankSpec(continuous=True, variable_depth=True, speakers=("alto", "soft"),
             phonemes_json=True),
], ids=["mel-base-converted", "legacy-speedup-depth-rank1", "speakers-json-depth"])
def test_variants_sing_the_same_tune(bank: DiffSingerBank, tmp_path: Path,
                                     spec: BankSpec) -> None:
    other = DiffSingerBank.load(build_bank(tmp_path / "variant", spec), device="cpu")
    notes = SCORE[:3]
    ref = PhraseTrack(PhraseRenderer(bank), tuple(notes)).read(0, 2 * SAMPLE_RATE_HZ)
    audio = PhraseTrack(PhraseRenderer(other, RenderSettings(speaker=spec.speakers[-1]
                                                             if spec.speakers else None)),
                        tuple(notes)).read(0, 2 * SAMPLE_RATE_HZ)
    # same loudness: a log10 mel read as ln without conversion would be 10x off
    rms_ref, rms = np.sqrt(np.mean(ref ** 2)), np.sqrt(np.mean(audio ** 2))
    assert rms == pytest.approx(rms_ref, rel=0.01)
    assert np.median(np.abs(note_cents_errors(audio, notes))) <= 10.0
    _, f0 = f0_track(audio)
    assert (f0 > 0).mean() > 0.5


def test_the_banks_own_duration_and_pitch_models_are_used(bank_dir: Path,
                                                           tmp_path: Path) -> None:
    import shutil

    from singer.backends.diffsinger.phonemize import time_phones
    from tests.singer.backends.diffsinger_bank import add_predictors

    folder = add_predictors(Path(shutil.copytree(bank_dir, tmp_path / "predicting")))
    bank_p = DiffSingerBank.load(folder, device="cpu")
    assert set(bank_p.predictors) == {"dur", "pitch"}
    notes = SCORE[:3]
    phones = time_phones(bank_p, notes)
    # uniform predicted durations fitted to the 0.5 s word "a l": the l takes half of it
    # (capped at half the note before), where the engine's own timing gives ~0.1 s
    lead_l = notes[1].t_on - next(p.start for p in phones if p.symbol == "l")
    assert lead_l == pytest.approx(0.25 * SAMPLE_RATE_HZ, abs=0.02 * SAMPLE_RATE_HZ)
    # the toy pitch model sings 50 cents sharp: the curve sung is the model's
    audio = PhraseTrack(PhraseRenderer(bank_p), tuple(notes)).read(0, 2 * SAMPLE_RATE_HZ)
    assert np.median(note_cents_errors(audio, notes)) == pytest.approx(50.0, abs=10.0)
