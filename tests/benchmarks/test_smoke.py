"""Benchmarks run in smoke mode and print the JSON they promise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_voice_benchmark_smoke_prints_its_keys() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_voice.py"), "--smoke"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert {r["voices"] for r in rows} == {1, 4}
    for row in rows:
        assert {"voices", "device", "chunk_ms", "chunk_ms_p50", "chunk_ms_p99", "rtf"} <= set(row)
        assert 0 < row["chunk_ms_p50"] <= row["chunk_ms_p99"]
        assert row["rtf"] > 0
