"""``livesinger bench watermark``: embed cost, detection per attack, false positives."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from singer.provenance import attacks, spread
from singer.provenance import watermark as wm
from singer.provenance.masking import imperceptibility

CLIP_S = 5.0
CHUNK_SAMPLES = 240  # 5 ms at 48 kHz

Attack = Callable[[np.ndarray], tuple[np.ndarray, int]]


def attack_suite(bed: np.ndarray, music: np.ndarray | None = None) -> dict[str, Attack]:
    """The broadcaster's treatments measured, by name (``bed``: the song mixed over the voice;
    ``music``: music-like notes mixed over it, when given)."""
    sr = wm.SAMPLE_RATE_HZ
    extra: dict[str, Attack] = {} if music is None else {
        "mix_-6db_under_music": lambda x: (attacks.mix_under(x, music, -6.0), sr)}
    return {
        "none": lambda x: (x, sr),
        "resample_44k1": lambda x: (attacks.resample(x, sr, 44_100), 44_100),
        "gain_-6db": lambda x: (attacks.gain(x, -6.0), sr),
        "mix_-6db_under": lambda x: (attacks.mix_under(x, bed, -6.0), sr),
        "opus_32k": lambda x: (attacks.codec_round_trip(x, "libopus", 32_000), sr),
        "opus_96k": lambda x: (attacks.codec_round_trip(x, "libopus", 96_000), sr),
        "mp3_128k": lambda x: (attacks.codec_round_trip(x, "libmp3lame", 128_000), sr),
        **extra,
    }


def demo_renders() -> dict[str, np.ndarray]:
    """The demo songs rendered unmarked (soprano and tenor)."""
    from singer.render import render_score
    from singer.scores.load import load_score

    return {"jasmine": render_score(load_score("jasmine"), "soprano"),
            "twinkle": render_score(load_score("twinkle"), "tenor")}


def made_phrases(seed: int = 0, count: int = 4) -> list[np.ndarray]:
    """Renders of test-made scores (random stepwise melodies, ~12 s) by the project's voices."""
    from singer.contracts import Note
    from singer.ensemble import Ensemble, SingerLine
    from singer.render import render_ensemble
    from singer.synth import HarmonicNoiseSynth
    from singer.voices import get_voice

    rng = np.random.default_rng(seed)
    sr = wm.SAMPLE_RATE_HZ
    out = []
    for i in range(count):
        voice, base = ("soprano", 67) if i % 2 == 0 else ("tenor", 55)
        notes, t, pitch = [], 0.2, base
        vowels = ("a", "e", "i", "o", "u")
        while t < 12.0:
            dur = float(rng.choice([0.25, 0.5, 0.75, 1.0]))
            pitch = int(np.clip(pitch + rng.integers(-3, 4), base - 7, base + 9))
            ph = ("l", str(rng.choice(vowels)))
            a, b = int(t * sr), int((t + 0.92 * dur) * sr)
            notes.append(Note(a, b, pitch, " ".join(ph), ph))
            t += dur
        line = SingerLine("lead", get_voice(voice), notes, i, None)
        out.append(render_ensemble(Ensemble(HarmonicNoiseSynth(device="cpu"), [line])))
    return out


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    white = rng.standard_normal(n)
    pink = np.fft.irfft(np.fft.rfft(white) / np.sqrt(np.arange(1, n // 2 + 2)), n)
    return pink / (pink.std() + 1e-12)


def _slice(rng: np.random.Generator, audio: np.ndarray, n: int) -> np.ndarray:
    s = int(rng.integers(0, len(audio) - n))
    return audio[s:s + n].copy()


def _notes_music(rng: np.random.Generator, n: int) -> np.ndarray:
    """Music-like: plucked harmonic notes on a beat, a bass line and a hi-hat of noise."""
    sr = wm.SAMPLE_RATE_HZ
    out = np.zeros(n)
    beat = int(sr * 60.0 / float(rng.uniform(70, 160)))
    for start in range(0, n, beat):
        for base in (float(rng.uniform(40, 64)), float(rng.uniform(60, 84))):
            f0 = 440.0 * 2.0 ** ((round(base) - 69) / 12.0)
            m = min(n - start, 2 * beat)
            t = np.arange(m) / sr
            env = np.exp(-t * float(rng.uniform(2, 8)))
            tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 12)
                       if k * f0 < 15_000)
            out[start:start + m] += 0.1 * env * tone
        m = min(n - start, 2000)
        out[start:start + m] += 0.05 * rng.standard_normal(m) * np.exp(-np.arange(m) / 300.0)
    return out


def _babble(rng: np.random.Generator, n: int) -> np.ndarray:
    """Speech-like: a glottal pulse train through moving formants, in ~4 Hz syllables."""
    from scipy.signal import lfilter

    sr = wm.SAMPLE_RATE_HZ
    t = np.arange(n) / sr
    f0 = float(rng.uniform(90, 220)) * (1 + 0.15 * np.sin(2 * np.pi * 0.7 * t))
    pulses = np.diff(np.floor(np.cumsum(f0) / sr), prepend=0.0) + 0.02 * rng.standard_normal(n)
    out = np.zeros(n)
    seg = int(sr * 0.25)
    for s in range(0, n, seg):
        x = pulses[s:s + seg]
        y = np.zeros(len(x))
        for f in (float(rng.uniform(300, 900)), float(rng.uniform(900, 2500)), 3000.0):
            r = np.exp(-np.pi * 100.0 / sr)
            y += lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * f / sr), r * r], x)
        out[s:s + len(x)] = y * np.hanning(len(x))
    return 0.2 * out / (out.std() + 1e-12)


def unmarked_clips(songs: dict[str, np.ndarray], count: int, seed: int = 0,
                   phrases: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """``count`` 5 s clips of unmarked audio, in turn: the demo renders, renders of made-up
    scores, white and pink noise, vibrato tones, music-like notes, speech-like babble, mixes
    of a render over music or noise, and silence."""
    rng = np.random.default_rng(seed)
    n = int(CLIP_S * wm.SAMPLE_RATE_HZ)
    renders = [a for a in songs.values() if len(a) > n]
    made = [a for a in (phrases or []) if len(a) > n] or renders
    out = []
    for i in range(count):
        kind = i % 10
        if kind == 0:
            out.append(_slice(rng, renders[i % len(renders)], n))
        elif kind == 1:
            out.append(_slice(rng, made[i % len(made)], n))
        elif kind == 2:
            out.append(0.1 * rng.standard_normal(n))
        elif kind == 3:
            out.append(0.1 * _pink(rng, n))
        elif kind == 4:
            t = np.arange(n) / wm.SAMPLE_RATE_HZ
            f = float(rng.uniform(100, 2000))
            out.append(0.2 * np.sin(2 * np.pi * f * t * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))))
        elif kind == 5:
            out.append(_notes_music(rng, n))
        elif kind == 6:
            out.append(_babble(rng, n))
        elif kind == 7:
            voice = _slice(rng, made[i % len(made)], n)
            out.append(voice + float(rng.uniform(0.3, 2.0)) * _notes_music(rng, n))
        elif kind == 8:
            voice = _slice(rng, renders[i % len(renders)], n)
            other = _slice(rng, made[(i + 1) % len(made)], n)
            out.append(voice + other + 0.02 * _pink(rng, n))
        else:
            out.append(np.zeros(n) if i % 20 == 9 else 1e-4 * rng.standard_normal(n))
    return out


def embed_cost_us(audio: np.ndarray, chunks: int = 4000) -> dict[str, float]:
    """Per-5 ms-chunk embedding time on this thread: p50, p99, max (microseconds)."""
    emb = wm.Embedder(0x12345678)
    x = np.resize(audio.astype(np.float32), chunks * CHUNK_SAMPLES)
    times = np.empty(chunks)
    for i in range(chunks):
        chunk = x[i * CHUNK_SAMPLES:(i + 1) * CHUNK_SAMPLES]
        t0 = time.perf_counter()
        emb.process(chunk)
        times[i] = time.perf_counter() - t0
    us = times * 1e6
    return {"p50_us": round(float(np.percentile(us, 50)), 1),
            "p99_us": round(float(np.percentile(us, 99)), 1), "max_us": round(float(us.max()), 1)}


def threshold_for(per_clip_false_rate: float = 1e-6) -> float:
    """The sync threshold whose chance of firing on an unmarked 5 s clip is
    ``per_clip_false_rate``, taking each of the clip's search candidates (every slot of the
    period at every 64-sample phase) as N(0, 1): the model the measured unmarked scores (the
    best candidate per clip) are checked against."""
    from scipy.special import ndtri

    candidates = wm.SLOTS_PER_PERIOD * (wm.SLOT_SAMPLES // 64)
    return float(-ndtri(per_clip_false_rate / candidates))


def bench_watermark(clips: int = 20, unmarked: int = 1000) -> dict[str, object]:
    """The whole benchmark as one JSON-able dict."""
    import os

    songs = demo_renders()
    ident = 0x1A2B3C4D
    marked = {k: wm.embed(a, ident) for k, a in songs.items()}
    n = int(CLIP_S * wm.SAMPLE_RATE_HZ)
    rng = np.random.default_rng(1)
    bed = np.roll(songs["twinkle"], 12_345)
    music = _notes_music(np.random.default_rng(2), n)
    rates: dict[str, dict[str, float]] = {}
    for name, attack in attack_suite(bed, music).items():
        found = payload_ok = 0
        attacked: list[tuple[float, float]] = []
        for i in range(clips):
            a = list(marked.values())[i % len(marked)]
            s = int(rng.integers(0, len(a) - n))
            d = wm.detect(*attack(a[s:s + n]))
            found += d.detected
            payload_ok += d.payload is not None and d.payload.id == ident
            attacked.append((d.score, d.spread_score))
        sync, noise = np.array(attacked).T
        rates[name] = {"detected": found / clips, "payload_exact": payload_ok / clips,
                       "score_min": round(float(sync.min()), 2),
                       "score_mean": round(float(sync.mean()), 2),
                       "spread_score_min": round(float(noise.min()), 2),
                       "spread_score_mean": round(float(noise.mean()), 2)}
    pool = unmarked_clips(songs, unmarked, phrases=made_phrases())
    found_pool = [wm.detect(c, wm.SAMPLE_RATE_HZ) for c in pool]
    scores = np.array([d.score for d in found_pool])
    spread_scores = np.array([d.spread_score for d in found_pool])
    jasmine = songs["jasmine"]
    return {"bench": "watermark", "strength": wm.STRENGTH, "threshold": wm.THRESHOLD,
            "spread_strength": spread.STRENGTH, "spread_threshold": spread.THRESHOLD,
            "load_average_1min": round(os.getloadavg()[0], 2),
            "embed_per_5ms_chunk": embed_cost_us(jasmine),
            "latency_samples": wm.LATENCY_SAMPLES,
            "imperceptibility": imperceptibility(jasmine, marked["jasmine"]),
            "imperceptibility_patchwork_only": imperceptibility(
                jasmine, wm.embed(jasmine, ident, spread_strength=0.0)),
            "imperceptibility_spread_only": imperceptibility(
                jasmine, jasmine + spread.SpreadLayer().mark(jasmine.astype(np.float64))),
            "clips_per_attack": clips, "detection": rates,
            "unmarked_clips": unmarked,
            "false_positives": int(sum(d.detected for d in found_pool)),
            "unmarked_score_max": round(float(scores.max()), 2),
            "unmarked_score_p99": round(float(np.percentile(scores, 99)), 2),
            "unmarked_score_mean": round(float(np.mean(scores)), 2),
            "unmarked_score_std": round(float(np.std(scores)), 2),
            "unmarked_spread_score_max": round(float(spread_scores.max()), 2),
            "unmarked_spread_score_p99": round(float(np.percentile(spread_scores, 99)), 2),
            "unmarked_spread_score_mean": round(float(np.mean(spread_scores)), 2),
            "threshold_for_5e-7_per_clip": round(threshold_for(5e-7), 2),
            "spread_threshold_for_5e-7_per_clip": round(spread.threshold(5e-7), 2)}
