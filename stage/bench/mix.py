"""``livesinger bench mix``: what the live program mix costs per chunk.

The show's real ``ProgramStage`` (each singer through their vocal chain, the dry sums, the
per-singer meters, the backing's stems read and summed) is fed played chunks as the pacer
hands them out (``AudioChunk.parts``: one row per singer), one 5 ms chunk at a time on one
thread, for 1, 4 and 8 singers, with a backing of 4 stems loaded from WAV files like any
song's. Voices are band-limited noise (the chains' cost does not depend on the signal).
Rows: p50/p99/max ms per chunk and the real-time factor (compute time / audio time).
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from singer.contracts import SAMPLE_RATE_HZ, AudioChunk
from singer.mix.backing import BackingPlayer, load_backing
from singer.mix.backing_spec import files_spec
from singer.tempo import TempoChange, TempoMap
from stage.program import ProgramStage

STEMS = 4
WARMUP_CHUNKS = 50


def bench_mix(singers: int, preset: str, seconds: float, *, stems: int = STEMS,
              chunk_samples: int = SAMPLE_RATE_HZ * 5 // 1000, folder: Path) -> dict[str, object]:
    """One row: ``singers`` singers through ``preset`` over ``stems`` backing stems."""
    rng = np.random.default_rng(singers)
    n_total = int(seconds * SAMPLE_RATE_HZ)
    paths = []
    for i in range(stems):
        path = folder / f"stem{i}.wav"
        if not path.exists():
            sf.write(path, (0.05 * rng.standard_normal(n_total + SAMPLE_RATE_HZ))
                     .astype(np.float32), SAMPLE_RATE_HZ, subtype="FLOAT")
        paths.append(str(path))
    track = load_backing(files_spec(paths, 0.0)) if stems else None
    names = [f"singer{i}" for i in range(singers)]
    stage = ProgramStage(lambda _chunk: None, preset, singers=lambda: names)
    if track is not None:
        player = BackingPlayer(track, TempoMap([TempoChange(0.0, 120.0)]))
        player.play(0, 0.0)
        stage.mix.backing = player
    voices = (0.1 * rng.standard_normal((singers, n_total))).astype(np.float32)
    times = []
    t = 0
    count = 0
    while t + chunk_samples <= n_total:
        parts = voices[:, t:t + chunk_samples]
        chunk = AudioChunk(t, parts.sum(axis=0, dtype=np.float32), parts)
        began = time.perf_counter()
        stage(chunk)
        elapsed = time.perf_counter() - began
        if count >= WARMUP_CHUNKS:
            times.append(elapsed)
        count += 1
        t += chunk_samples
    ms = np.array(times) * 1000.0
    chunk_ms = 1000.0 * chunk_samples / SAMPLE_RATE_HZ
    return {"bench": "mix", "singers": singers, "chain": preset, "stems": stems,
            "chunk_ms": chunk_ms, "chunks": len(ms),
            "mix_ms_p50": round(float(np.percentile(ms, 50)), 4),
            "mix_ms_p99": round(float(np.percentile(ms, 99)), 4),
            "mix_ms_max": round(float(ms.max()), 4),
            "rtf": round(float(ms.mean()) / chunk_ms, 4),
            "cpus": os.cpu_count(), "machine": platform.machine(),
            "loadavg_1m": round(os.getloadavg()[0], 2)}


def run_mix_benchmarks(counts: tuple[int, ...] = (1, 4, 8), seconds: float = 10.0,
                       presets: tuple[str, ...] = ("dry", "pop", "ballad"),
                       ) -> Iterator[dict[str, object]]:
    """Every singer count with every preset, over a 4-stem backing."""
    with tempfile.TemporaryDirectory(prefix="livesinger-bench-mix-") as folder:
        for preset in presets:
            for singers in counts:
                yield bench_mix(singers, preset, seconds, folder=Path(folder))
