"""``livesinger bench watermark``: embed cost, detection per attack, false positives."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from singer.provenance import attacks
from singer.provenance import watermark as wm
from singer.provenance.masking import imperceptibility

CLIP_S = 5.0
CHUNK_SAMPLES = 240  # 5 ms at 48 kHz

Attack = Callable[[np.ndarray], tuple[np.ndarray, int]]


def attack_suite(bed: np.ndarray) -> dict[str, Attack]:
    """The broadcaster's treatments measured, by name (``bed``: the signal mixed over)."""
    sr = wm.SAMPLE_RATE_HZ
    return {
        "none": lambda x: (x, sr),
        "resample_44k1": lambda x: (attacks.resample(x, sr, 44_100), 44_100),
        "gain_-6db": lambda x: (attacks.gain(x, -6.0), sr),
        "mix_-6db_under": lambda x: (attacks.mix_under(x, bed, -6.0), sr),
        "opus_32k": lambda x: (attacks.codec_round_trip(x, "libopus", 32_000), sr),
        "opus_96k": lambda x: (attacks.codec_round_trip(x, "libopus", 96_000), sr),
        "mp3_128k": lambda x: (attacks.codec_round_trip(x, "libmp3lame", 128_000), sr),
    }


def demo_renders() -> dict[str, np.ndarray]:
    """The demo songs rendered unmarked (soprano and tenor)."""
    from singer.load import load_score
    from singer.render import render_score

    return {"jasmine": render_score(load_score("jasmine"), "soprano"),
            "twinkle": render_score(load_score("twinkle"), "tenor")}


def unmarked_clips(songs: dict[str, np.ndarray], count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` 5 s clips of unmarked audio: renders, white and pink noise, tones, silence."""
    rng = np.random.default_rng(seed)
    n = int(CLIP_S * wm.SAMPLE_RATE_HZ)
    pool = [a for a in songs.values() if len(a) > n]
    out = []
    for i in range(count):
        kind = i % 4
        if kind in (0, 1) and pool:
            a = pool[i % len(pool)]
            s = int(rng.integers(0, len(a) - n))
            out.append(a[s:s + n].copy())
        elif kind == 2:
            white = rng.standard_normal(n)
            pink = np.fft.irfft(np.fft.rfft(white) / np.sqrt(np.arange(1, n // 2 + 2)), n)
            out.append(0.1 * (white if i % 8 == 2 else pink / (pink.std() + 1e-12)))
        else:
            t = np.arange(n) / wm.SAMPLE_RATE_HZ
            f = float(rng.uniform(100, 2000))
            out.append(0.2 * np.sin(2 * np.pi * f * t * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))))
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


def bench_watermark(clips: int = 20, unmarked: int = 200) -> dict[str, object]:
    """The whole benchmark as one JSON-able dict."""
    songs = demo_renders()
    ident = 0x1A2B3C4D
    marked = {k: wm.embed(a, ident) for k, a in songs.items()}
    n = int(CLIP_S * wm.SAMPLE_RATE_HZ)
    rng = np.random.default_rng(1)
    bed = np.roll(songs["twinkle"], 12_345)
    rates: dict[str, dict[str, float]] = {}
    for name, attack in attack_suite(bed).items():
        found = payload_ok = 0
        for i in range(clips):
            a = list(marked.values())[i % len(marked)]
            s = int(rng.integers(0, len(a) - n))
            d = wm.detect(*attack(a[s:s + n]))
            found += d.detected
            payload_ok += d.payload is not None and d.payload.id == ident
        rates[name] = {"detected": found / clips, "payload_exact": payload_ok / clips}
    scores = [wm.detect(c, wm.SAMPLE_RATE_HZ).score for c in unmarked_clips(songs, unmarked)]
    return {"bench": "watermark", "strength": wm.STRENGTH, "threshold": wm.THRESHOLD,
            "embed_per_5ms_chunk": embed_cost_us(songs["jasmine"]),
            "latency_samples": wm.LATENCY_SAMPLES,
            "imperceptibility": imperceptibility(songs["jasmine"], marked["jasmine"]),
            "clips_per_attack": clips, "detection": rates,
            "unmarked_clips": unmarked,
            "false_positives": int(sum(s >= wm.THRESHOLD for s in scores)),
            "unmarked_score_max": round(float(max(scores)), 2),
            "unmarked_score_mean": round(float(np.mean(scores)), 2),
            "unmarked_score_std": round(float(np.std(scores)), 2)}
