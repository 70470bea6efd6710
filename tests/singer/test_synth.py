"""The voice renders the same samples in any chunking, without seams, deterministically."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from singer.contracts import SAMPLE_RATE_HZ
from singer.ensemble import Ensemble, SingerLine
from singer.synth import HarmonicNoiseSynth
from singer.voices import get_voice
from tests.singer.helpers import ensemble_for, line, sing

PHRASE = line([
    (0.02, 0.30, 67, ("s", "a")), (0.32, 0.30, 69, ("l", "i")), (0.62, 0.25, 72, ("t", "o", "n")),
    (0.87, 0.40, 71, ("k", "a", "ih")), (1.27, 0.05, 71, ()), (1.40, 0.35, 64, ("sh", "ue")),
])


def chunked(ens: Ensemble, total: int, size: int) -> np.ndarray:
    out, t = [], 0
    while t < total:
        n = min(size, total - t)
        out.append(ens.render(t, n).sum(0))
        t += n
    return np.concatenate(out)


def test_streaming_equals_offline_for_any_chunk_size(keep_audio) -> None:
    whole = sing(PHRASE, seed=3)
    keep_audio("whole", whole)
    assert np.abs(whole).max() > 0.05  # it sings
    for size in (1, 7, 160, 480, 48000):
        if size == 1:  # one sample per call is slow: check the first 0.1 s
            total = SAMPLE_RATE_HZ // 10
        else:
            total = len(whole)
        streamed = chunked(ensemble_for(PHRASE, seed=3), total, size)
        keep_audio(f"chunks_{size}", streamed)
        assert np.max(np.abs(streamed - whole[:total])) <= 1e-4, f"chunk size {size}"


def test_no_click_at_chunk_boundaries() -> None:
    audio = chunked(ensemble_for(PHRASE, seed=1), int(1.8 * SAMPLE_RATE_HZ), 480)
    jumps = np.abs(np.diff(audio))
    at_seams = jumps[479::480]
    inside = np.delete(jumps, np.arange(479, len(jumps), 480))
    # A seam is no bigger a step than what the waveform does anyway between samples.
    assert at_seams.max() <= inside.max()
    assert np.percentile(at_seams, 99) <= 1.5 * np.percentile(inside, 99.5)


def test_deterministic_for_a_seed_and_different_across_seeds() -> None:
    a, b, c = sing(PHRASE, seed=5), sing(PHRASE, seed=5), sing(PHRASE, seed=6)
    assert np.array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_silence_in_silence_out() -> None:
    audio = sing(line([(0.5, 0.3, 60, ("a",))]))
    assert np.abs(audio[: int(0.4 * SAMPLE_RATE_HZ)]).max() == 0.0
    assert np.abs(audio[-int(0.1 * SAMPLE_RATE_HZ):]).max() < 1e-6


def test_harmonics_stay_below_the_cutoff() -> None:
    audio = sing(line([(0.05, 1.0, 74, ("a",))]))  # a vowel: no frication noise
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    freqs = np.fft.rfftfreq(len(audio), 1 / SAMPLE_RATE_HZ)
    peak = spectrum.max()
    above = spectrum[freqs > 12_500].max()
    assert 20 * np.log10(above / peak) < -60  # only the breath noise floor up there


def test_several_singers_batch_into_one_pass_and_equal_solo_renders() -> None:
    synth = HarmonicNoiseSynth(device="cpu")
    soprano, tenor = get_voice("soprano"), get_voice("tenor")
    low = line([(0.05, 0.6, 55, ("m", "a"))])
    duet = Ensemble(synth, [SingerLine("s", soprano, PHRASE), SingerLine("t", tenor, low)])
    both = duet.render(0, SAMPLE_RATE_HZ)
    solo = Ensemble(synth, [SingerLine("t", tenor, low)]).render(0, SAMPLE_RATE_HZ)
    assert both.shape == (2, SAMPLE_RATE_HZ)
    assert np.max(np.abs(both[1] - solo[0])) < 1e-5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu() -> None:
    notes = PHRASE
    cpu = sing(notes, seed=2)
    voice = get_voice("soprano")
    ens = Ensemble(HarmonicNoiseSynth(device="cuda"), [SingerLine("lead", voice, notes, 2)])
    gpu = ens.render(0, len(cpu)).sum(0)
    assert np.max(np.abs(gpu - cpu)) < 1e-3
