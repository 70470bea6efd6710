"""Benchmarks run in smoke mode and print the JSON they promise."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


def _rows(script: str, timeout_s: int = 240, *extra: str) -> list[dict[str, object]]:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--smoke", *extra],
                         capture_output=True, text=True, check=True, timeout=timeout_s).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip().startswith("{")]


def test_osc_benchmark_smoke_hears_its_notes_and_counts_the_flood() -> None:
    (row,) = _rows("bench_osc.py")
    assert {"latency_ms_p50", "latency_ms_p99", "bad_packets_per_s", "xruns"} <= set(row)
    assert row["notes_heard"] >= 0.9 * row["notes"]  # type: ignore[operator]
    assert 0 < row["latency_ms_p50"] <= row["latency_ms_p99"]  # type: ignore[operator]
    assert row["bad_packets_per_s"] > 1000  # type: ignore[operator]


BROWSER_IDLE = "--browser-idle"
"""The measuring Chromium below the engine: its software GL shares these two cores, and on a
slow machine it took the CPU time the engine needed on time (xruns, cues lost)."""


def test_webrtc_benchmark_smoke_hears_cues_in_chromium() -> None:
    rows = _rows("bench_webrtc.py", 240, BROWSER_IDLE)
    # both stage paths are measured, each with the page alone, then the page + a WHEP listener
    assert sorted({str(r["path"]) for r in rows}) == ["datachannel", "rtp"]
    for path in ("rtp", "datachannel"):
        path_rows = [r for r in rows if r["path"] == path]
        assert [r["viewers"] for r in path_rows] == [1, 2]
        assert path_rows[1]["viewers_connected"] == 2  # the page and one WHEP listener
        row = path_rows[0]
        assert {"path", "viewers", "cue_to_audio_ms", "sync_err_ms_p50", "sync_err_ms_p99",
                "sync_vowels", "arrival_gap_ms_max", "send_gap_ms_max", "loadavg_1m",
                "cpu_per_viewer", "xruns"} <= set(row)
        # (a smoke run proves the path end to end; a cue the page missed while starved of
        # CPU on the slow shared machine, 2 of 3 heard once, is the benchmark's figure)
        assert row["browser_idle"] is True and 1 <= row["cues_heard"] <= row["cues"]
        assert 0 < row["engine_cue_ms"] < row["cue_to_audio_ms"]  # type: ignore[operator]


@pytest.mark.skipif(shutil.which("janus") is None, reason="janus is not installed")
def test_webrtc_janus_benchmark_smoke_hears_cues_through_janus() -> None:
    rows = _rows("bench_webrtc.py", 240, "--janus", BROWSER_IDLE)
    assert [r["viewers"] for r in rows] == [1, 2]
    assert [r["subscribers"] for r in rows] == [0, 1]  # the page, then one aiortc subscriber
    for row in rows:
        assert row["path"] == "janus/rtp" and row["publisher_state"] == "live"
        assert row["browser_idle"] is True
        assert {"engine_cpu", "janus_cpu", "janus_cpu_per_viewer", "cue_to_audio_ms",
                "sync_err_ms_p50", "loadavg_1m"} <= set(row)
        assert row["cues_heard"] >= 1 and row["cue_to_audio_ms"] > 0  # type: ignore[operator]
        assert row["janus_cpu"] > 0  # type: ignore[operator]


def test_mocap_benchmark_smoke_tracks_frames() -> None:
    (row,) = _rows("bench_mocap.py")
    assert {"ms_p50", "ms_p99", "fps", "bare_ms_p50"} <= set(row)
    assert 0 < row["ms_p50"] <= row["ms_p99"] and row["fps"] > 0  # type: ignore[operator]


def test_voice_benchmark_smoke_has_a_row_per_backend() -> None:
    # smoke mode: a 4-syllable UTAU stand-in and the DiffSinger stand-in (published sizes)
    # with one diffusion step instead of 20
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_voice.py"), "--smoke",
                          "--backends", "utau,diffsinger"],
                         capture_output=True, text=True, check=True, timeout=180).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert {(r["backend"], r["device"]) for r in rows} >= {("utau", "cpu"), ("diffsinger", "cpu")}
    for row in rows:
        assert {"rtf", "phrase_ms", "note_on_ms_p50", "note_on_ms_p99"} <= set(row)
        assert 0 < row["note_on_ms_p50"] <= row["note_on_ms_p99"]  # type: ignore[operator]
        assert row["rtf"] > 0 and row["phrase_ms"] > 0  # type: ignore[operator]
    ds = next(r for r in rows if r["backend"] == "diffsinger")
    assert ds["steps"] == 1 and ds["phrases"] >= 1 and "preroll_s" in ds
    # its note-on figures are live notes as the show plays them (held notes, bank worker):
    # every one heard, never before its first segment could be rendered
    assert ds["live_notes"] == 3 and ds["live_notes_missed"] == 0
    assert ds["live_chunks"] > 0 and "first_segment_ms_p50" in ds  # type: ignore[operator]


def test_mix_benchmark_smoke_prints_its_keys() -> None:
    rows = _rows("bench_mix.py", 120)
    assert {r["singers"] for r in rows} == {1, 4}
    for row in rows:
        assert {"singers", "chain", "stems", "chunk_ms", "mix_ms_p50", "mix_ms_p99",
                "rtf"} <= set(row)
        assert 0 < row["mix_ms_p50"] <= row["mix_ms_p99"]  # type: ignore[operator]
        assert row["rtf"] > 0  # type: ignore[operator]
