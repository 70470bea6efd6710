"""Voice benchmark: per-chunk compute time and real-time factor for 1..N simultaneous voices."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterator

import numpy as np
import torch

from singer.contracts import DEFAULT_HOP_SAMPLES, SAMPLE_RATE_HZ, Note
from singer.ensemble import Ensemble, SingerLine
from singer.synth import HarmonicNoiseSynth
from singer.voices import get_voice


def _bench_notes(seconds: float) -> list[Note]:
    """A busy line: 250 ms notes with consonants, across the soprano range."""
    syllables = [("s", "a"), ("l", "i"), ("m", "o"), ("t", "u"), ("k", "a", "n"),
                 ("sh", "eh"), ("p", "a", "ih")]
    notes, t, i = [], 0, 0
    step = SAMPLE_RATE_HZ // 4
    while t < seconds * SAMPLE_RATE_HZ:
        notes.append(Note(t, t + step, 62 + (i * 5) % 17, "x", syllables[i % len(syllables)]))
        t, i = t + step, i + 1
    return notes


def bench_voice(voices: int, device: str, seconds: float = 5.0, threads: int = 1,
                chunk_samples: int = DEFAULT_HOP_SAMPLES) -> dict[str, object]:
    """Render ``seconds`` of ``voices`` singers chunk by chunk; times each chunk."""
    torch.set_num_threads(threads)
    synth = HarmonicNoiseSynth(device=device)
    voice = get_voice("soprano")
    notes = _bench_notes(seconds)
    ensemble = Ensemble(synth, [SingerLine(f"s{i}", voice, notes, seed=i) for i in range(voices)])
    for line in ensemble.lines:  # what a show does when a song loads: controls ahead of time
        line.params(synth, 0, int(seconds * SAMPLE_RATE_HZ) // synth.hop + 2)
    n_chunks = int(seconds * SAMPLE_RATE_HZ) // chunk_samples
    times = []
    for k in range(n_chunks):
        start = time.perf_counter()
        ensemble.render(k * chunk_samples, chunk_samples)
        if synth.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    ms = np.array(times[min(20, n_chunks // 10):]) * 1000.0
    chunk_ms = chunk_samples / SAMPLE_RATE_HZ * 1000.0
    return {
        "bench": "voice", "backend": "builtin", "voices": voices, "device": synth.device.type,
        "threads": threads,
        "chunk_ms": chunk_ms, "chunk_ms_p50": round(float(np.percentile(ms, 50)), 4),
        "chunk_ms_p99": round(float(np.percentile(ms, 99)), 4),
        "rtf": round(float(np.mean(ms)) / chunk_ms, 4),
        "chunks": int(len(ms)), "machine": machine_name(),
    }


def machine_name() -> str:
    """A short description of the machine the benchmark ran on."""
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores{gpu}"


def run_voice_benchmarks(counts: tuple[int, ...] = (1, 8, 32), seconds: float = 5.0,
                         ) -> Iterator[dict[str, object]]:
    """Every voice count on CPU (1 thread, and all cores for batches) and on CUDA if present."""
    cores = os.cpu_count() or 1
    for voices in counts:
        yield bench_voice(voices, "cpu", seconds, threads=1)
        if voices > 1 and cores > 1:
            yield bench_voice(voices, "cpu", seconds, threads=cores)
        if torch.cuda.is_available():
            yield bench_voice(voices, "cuda", seconds)
