"""``livesinger soak``: a short soak of the whole show (the one CI runs) and its bad options."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from stage.soak.flood import SURFACES
from stage.soak.runner import FD_ALLOWANCE, THREAD_ALLOWANCE, VOICE_FAULT_RENDERS
from tests.stage.cli_runs import livesinger_all

KEYS = ("minutes", "xruns", "cues_sent", "cues_applied", "cues_lost", "cues_reordered",
        "malformed_sent", "rss_growth_pct", "fds_start", "fds_end", "threads_start",
        "threads_end", "engine_cpu", "faults", "xruns_in_faults", "xruns_outside_faults",
        "rss", "collector")


def run_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stage.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.mark.timeout(600)
def test_two_minute_soak_keeps_every_cue_recovers_every_fault_and_gives_back_fds() -> None:
    done = run_cli("soak", "--minutes", "2", "--json", timeout=540)  # the CI soak
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for key in KEYS:
        assert key in report, key
    assert report["minutes"] == 2
    # the show as a venue deploys it: serve --realtime (SCHED_FIFO synthesis; root here)
    assert report["realtime"] == {"asked": True, "granted": True}
    assert report["synthesis"]["realtime"] is True
    assert report["cues_sent"] > 400
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
    assert set(faults) == {"voice_raised", "synthesis_killed", "broker_restarted",
                           "mocap_restarted"}
    for fault in faults.values():
        assert fault["recovered"] is True and fault["recovery_s"] is not None, fault
    # the voice raised in 20 renders: each one's line was sung on in the same chunk
    assert faults["voice_raised"]["rows_carried_on"] == VOICE_FAULT_RENDERS
    assert faults["voice_raised"]["chunks_lost"] == 0
    assert report["synthesis"]["voice_fallbacks"] == VOICE_FAULT_RENDERS
    assert report["synthesis"]["render_errors"] == 0
    assert "the built-in voice sings on" in done.stderr
    # poses from the capture process arrived before the kill and again after its restart
    assert report["mocap"]["frames"] > 0 and faults["mocap_restarted"]["source_start_s"] > 0
    assert report["synthesis"]["restarts"] == 1
    assert report["xruns_in_faults"] + report["xruns_outside_faults"] == \
        report["xruns_after_warmup"]
    # each chunk the synthesis process skipped or wrote too late is blamed on a cause
    late = report["synthesis"]["late_causes"]
    assert set(late) == {"woke_late", "gc", "slow_work", "off_cpu"}
    assert sum(late.values()) >= report["synthesis"]["stale_chunks"]
    thread = report["synthesis_thread"]
    assert thread["pid"] == report["synthesis"]["pid"] and thread["run_s"] > 0
    assert report["late_handouts"] >= 0 and report["handout_lag_ms_max"] >= 0
    # RSS per process; the synthesis process that was killed and its replacement apart
    rss = report["rss"]
    assert [seg["pid"] for seg in rss["synthesis"]["segments"]][-1] == report["synthesis"]["pid"]
    assert len(rss["synthesis"]["segments"]) == 2 and len(rss["serve"]["segments"]) == 1
    assert report["rss_growth_pct"] == max(rss["serve"]["growth_pct"],
                                           rss["synthesis"]["growth_pct"])
    assert report["collector"]["passes"] >= 2  # the show's cyclic garbage was collected
    assert report["fds_end"] <= report["fds_start"] + FD_ALLOWANCE
    assert report["threads_end"] <= report["threads_start"] + THREAD_ALLOWANCE
    assert "soak:" in done.stderr  # progress lines


def test_soak_refuses_a_bad_duration_in_one_line() -> None:
    cases = [(["--minutes", "0"], "--minutes: 0: want minutes > 0"),
             (["--minutes", "soon"], "'soon' is not a number of minutes"),
             (["--flood-scale", "-1"], "--flood-scale: -1: want a factor > 0"),
             (["--loads", "cues,viewers"],
              "--loads: 'cues,viewers': want a comma list of cues, notes, listeners"),
             (["--realtime", "yes"], "unrecognized arguments: yes")]
    runs = livesinger_all(*(["soak", *args] for args, _ in cases), timeout=60)
    for (args, words), done in zip(cases, runs, strict=True):
        assert done.returncode == 2, (args, done.stderr)
        assert words in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_trace_memory_names_the_line_whose_allocations_are_still_held(
        capsys: pytest.CaptureFixture[str]) -> None:
    import tracemalloc

    from stage.soak.runner import _print_growth

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


def test_the_cue_tap_counts_applied_reordered_and_lost_ids_in_a_byte_per_cue() -> None:
    import asyncio

    from stage.soak.parts import CUE_ID_SCALE, CueTap
    from streams.cue import make_cue

    class Show:  # the Director's one entry point, as the tap wraps it
        async def handle(self, cue: object) -> object:
            return None

    show = Show()
    tap = CueTap(show)

    async def apply(ids: list[int]) -> None:
        for cue_id in ids:
            await show.handle(make_cue("expr", {"name": "tension",
                                                "value": cue_id * CUE_ID_SCALE}, source="http"))

    asyncio.run(apply([0, 1, 3, 2, 4, 4]))
    assert tap.applied == 6
    assert tap.reordered == 1  # 2 after 3
    assert tap.distinct(6) == 5  # 5 never applied: lost
    assert len(tap._seen) == 5  # a byte per id seen, nothing per cue beyond that
