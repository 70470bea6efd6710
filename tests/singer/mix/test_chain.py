"""The vocal chain: chunked equals one-shot, and each effect does what it is asked
(measured: EQ band gain, compressor gain reduction, reverb tail energy, latency)."""

from __future__ import annotations

import numpy as np
import pytest

from singer.contracts import SAMPLE_RATE_HZ as SR
from singer.mix.chain import PRESETS, VocalChain, chain_preset
from singer.mix.effects import Band, Compressor, CompressorParams, Equalizer, ParamError
from singer.mix.program import ProgramMix, render_program
from singer.mix.reverb import FdnReverb, ReverbParams


def _tone(hz: float, seconds: float, amp: float) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * hz * np.arange(int(SR * seconds)) / SR)).astype(np.float32)


def _rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2))))


@pytest.mark.parametrize("preset", [p for p in PRESETS if p != "dry"])
@pytest.mark.parametrize("chunk", [1, 7, 240, 48000])
def test_chunked_equals_one_shot(preset: str, chunk: int) -> None:
    x = (0.2 * np.random.default_rng(0).standard_normal(SR if chunk > 1 else 4000)
         ).astype(np.float32)
    whole = chain_preset(preset).process(x)
    chain = chain_preset(preset)
    parts = np.concatenate([chain.process(x[i:i + chunk]) for i in range(0, len(x), chunk)])
    np.testing.assert_allclose(parts, whole, atol=1e-6)
    chain.reset()
    np.testing.assert_allclose(chain.process(x), whole, atol=1e-6)


def test_eq_band_gain_is_what_was_asked() -> None:
    eq = Equalizer([Band("peak", 1000.0, 6.0, 1.0)])
    at = eq.process(_tone(1000.0, 1.0, 0.1))[SR // 2:]
    away = Equalizer([Band("peak", 1000.0, 6.0, 1.0)]).process(_tone(100.0, 1.0, 0.1))[SR // 2:]
    assert _rms_db(at) - _rms_db(_tone(1000.0, 0.5, 0.1)) == pytest.approx(6.0, abs=0.1)
    assert _rms_db(away) - _rms_db(_tone(100.0, 0.5, 0.1)) == pytest.approx(0.0, abs=0.3)
    eq.set("0.gain_db", -12.0)  # a cue
    cut = eq.process(_tone(1000.0, 1.0, 0.1))[SR // 2:]
    assert _rms_db(cut) - _rms_db(_tone(1000.0, 0.5, 0.1)) == pytest.approx(-12.0, abs=0.1)


def test_compressor_gain_reduction_is_measured() -> None:
    comp = Compressor(CompressorParams(threshold_db=-20.0, ratio=4.0))
    loud = comp.process(_tone(440.0, 1.0, 10 ** (-4 / 20)))  # peak −4 dB: 16 dB over
    # 16 dB over at 4:1 → 12 dB down
    assert _rms_db(loud[SR // 2:]) - _rms_db(_tone(440.0, 0.5, 10 ** (-4 / 20))) == \
        pytest.approx(-12.0, abs=0.5)
    quiet = Compressor(CompressorParams(threshold_db=-20.0, ratio=4.0))
    soft = quiet.process(_tone(440.0, 1.0, 10 ** (-30 / 20)))
    assert quiet.gain_reduction_db == pytest.approx(0.0, abs=0.01)
    assert _rms_db(soft[SR // 2:]) == pytest.approx(_rms_db(_tone(440.0, 0.5, 10 ** -1.5)),
                                                    abs=0.01)


def test_reverb_tail_decays_at_its_rt60() -> None:
    burst = np.zeros(SR * 3, np.float32)
    burst[:480] = np.random.default_rng(1).standard_normal(480).astype(np.float32) * 0.5
    out = FdnReverb(ReverbParams(rt60_s=1.0, mix=1.0, damping=0.0)).process(burst)
    early = _rms_db(out[int(0.2 * SR):int(0.4 * SR)])
    late = _rms_db(out[int(0.7 * SR):int(0.9 * SR)])
    assert early - late == pytest.approx(30.0, abs=6.0)  # 60 dB per s: 30 dB in 0.5 s
    longer = FdnReverb(ReverbParams(rt60_s=2.5, mix=1.0, damping=0.0)).process(burst)
    assert _rms_db(longer[int(0.7 * SR):int(0.9 * SR)]) > late + 10
    dry = FdnReverb(ReverbParams(mix=0.0)).process(burst)
    np.testing.assert_array_equal(dry, burst)


def test_latency_is_compensated_in_the_program() -> None:
    voice = np.zeros(SR, np.float32)
    voice[10_000] = 1.0
    chained = VocalChain([Compressor(CompressorParams(0.0, 2.0, lookahead_ms=3.0))])
    assert chained.latency_samples == 144
    mix = ProgramMix({"a": chained, "b": VocalChain([])})
    out = render_program({"a": voice, "b": voice}, mix)
    assert int(np.argmax(out.program)) == 10_000  # both singers, on the score's sample
    assert out.program[10_000] == pytest.approx(2.0)
    assert int(np.argmax(out.dry)) == 10_000


def test_bad_parameters_are_named() -> None:
    chain = chain_preset("pop")
    with pytest.raises(ParamError, match=r"comp.ratio: 0.5 is out of 1..30"):
        chain.set("comp.ratio", 0.5)
    with pytest.raises(ParamError, match="has no 'delay' effect"):
        chain.set("delay.mix", 0.2)
    with pytest.raises(ParamError, match="unknown chain preset 'loud'"):
        chain_preset("loud")
    chain.set("reverb.mix", 0.4)
    assert chain.effect("reverb").params.mix == 0.4  # type: ignore[attr-defined]
