"""``livesinger soak``: a short soak of the whole show (the one CI runs) and its bad options."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from stage.soak import FD_ALLOWANCE, THREAD_ALLOWANCE
from stage.soak_flood import SURFACES

KEYS = ("minutes", "xruns", "cues_sent", "cues_applied", "cues_lost", "cues_reordered",
        "malformed_sent", "rss_growth_pct", "fds_start", "fds_end", "threads_start",
        "threads_end", "engine_cpu", "faults")


def run_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stage.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_short_soak_keeps_every_cue_recovers_every_fault_and_gives_back_fds() -> None:
    done = run_cli("soak", "--minutes", "0.5", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for key in KEYS:
        assert key in report, key
    assert report["minutes"] == 0.5
    assert report["cues_sent"] > 50
    assert report["cues_acknowledged"] == report["cues_sent"]
    assert report["cues_applied"] == report["cues_sent"]
    assert report["cues_lost"] == 0 and report["cues_reordered"] == 0
    assert report["songs_acknowledged"] == report["songs_sent"] > 0
    flooded = report["malformed_sent"]
    for surface in SURFACES:
        assert flooded[surface] > 0, surface
    assert flooded["total"] == sum(flooded[s] for s in SURFACES)
    assert report["listeners"]["joined"] >= 3 and report["listeners"]["killed"] >= 1
    assert report["listeners"]["frames"] > 0  # the listeners heard the show
    faults = {f["fault"]: f for f in report["faults"]}
    assert set(faults) == {"synthesis_killed", "broker_restarted"}
    for fault in faults.values():
        assert fault["recovered"] is True and fault["recovery_s"] is not None, fault
    assert report["synthesis"]["restarts"] == 1
    assert report["fds_end"] <= report["fds_start"] + FD_ALLOWANCE
    assert report["threads_end"] <= report["threads_start"] + THREAD_ALLOWANCE
    assert "soak:" in done.stderr  # progress lines


def test_soak_refuses_a_bad_duration_in_one_line() -> None:
    done = run_cli("soak", "--minutes", "0", timeout=60)
    assert done.returncode == 2
    assert "--minutes: 0: want minutes > 0" in done.stderr
    done = run_cli("soak", "--minutes", "soon", timeout=60)
    assert done.returncode == 2
    assert "'soon' is not a number of minutes" in done.stderr
    done = run_cli("soak", "--flood-scale", "-1", timeout=60)
    assert done.returncode == 2
    assert "--flood-scale: -1: want a factor > 0" in done.stderr


def test_trace_memory_names_the_line_whose_allocations_are_still_held(
        capsys: pytest.CaptureFixture[str]) -> None:
    import tracemalloc

    from stage.soak import _print_growth

    tracemalloc.start(4)
    try:
        held = [bytearray(4096) for _ in range(256)]  # 1 MiB still held at the snapshot
        _print_growth(tracemalloc.take_snapshot())
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err
    assert len(held) == 256
    first = err.split("trace-memory:")[2]  # the biggest site, after the total
    assert float(first.split("KiB")[0]) >= 1024 and "bytearray(4096)" in first
    assert "live objects at the end" in err
