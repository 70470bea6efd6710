"""A failing helper (prefetch, the pose stream, mocap, MQTT) is logged, restarted with a
bounded backoff and stopped cleanly; only the pacer ends the show (real engine, recorded)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from singer.contracts import SAMPLE_RATE_HZ
from stage.director import Director
from stage.pacer import AudioPacer
from stage.serve import ServeOptions, serve
from stage.supervise import Backoff, Supervisor
from tests.measure import xrun_budget

SR = SAMPLE_RATE_HZ


async def test_a_failing_helper_is_logged_once_per_failure_and_restarted_with_backoff(
        caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    runs: list[float] = []
    hopeless: list[float] = []

    async def flaky() -> None:  # fails four times, then runs until cancelled
        runs.append(loop.time())
        await asyncio.sleep(0)
        if len(runs) <= 4:
            raise RuntimeError(f"boom {len(runs)}")
        await asyncio.Event().wait()

    async def always_fails() -> None:  # cancelled in the middle of its backoff
        hopeless.append(loop.time())
        raise OSError("no such device")

    async def one_shot() -> None:  # a helper that ends (a capture file played out)
        return None

    caplog.set_level(logging.INFO, logger="stage.supervise")
    async with asyncio.TaskGroup() as group:
        helpers = Supervisor(group, Backoff(first_s=0.01, max_s=0.04))
        helpers.start("flaky", flaky)
        slow = Supervisor(group, Backoff(first_s=60.0))
        slow.start("hopeless", always_fails)
        helpers.start("one-shot", one_shot)
        with pytest.raises(ValueError, match="already supervised"):
            helpers.start("flaky", flaky)
        while len(runs) < 5 or not hopeless:
            await asyncio.sleep(0.005)
        helpers.cancel()
        slow.cancel()
    # the TaskGroup ended without an error: every helper was cancelled cleanly
    assert all(t.done() and t.cancelled() for t in helpers.tasks[:1] + slow.tasks)
    assert helpers.restarts == {"flaky": 4, "one-shot": 0} and slow.restarts == {"hopeless": 1}
    assert helpers.last_error == {"flaky": "RuntimeError: boom 4"}
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    flaky_logs = [r for r in failures if r.args and r.args[0] == "flaky"]  # type: ignore[index]
    assert len(flaky_logs) == 4  # once per failure, with its traceback
    assert [str(r.exc_info[1]) for r in flaky_logs if r.exc_info] == [
        "boom 1", "boom 2", "boom 3", "boom 4"]
    # the backoff doubled up to its bound, and each restart waited at least that long
    delays = [r.args[2] for r in flaky_logs]  # type: ignore[index]
    assert delays == [0.01, 0.02, 0.04, 0.04]
    assert all(b - a >= d - 0.001 for a, b, d in zip(runs[:-1], runs[1:], delays, strict=True))
    assert "show helper 'one-shot' ended" in caplog.text


def frames_after(path: Path, sample: int) -> int:
    """Pose frames recorded for show samples after ``sample``."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]  # after the AIGC header line
    return sum(1 for line in lines if json.loads(line)["t"] > sample)


@pytest.mark.timeout(120)
async def test_a_helper_failing_mid_show_is_restarted_and_the_show_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="stage.supervise")
    handles: dict[str, object] = {}
    ready = asyncio.Event()
    opts = ServeOptions(osc_port=None, http_port=None, headless=True, record=tmp_path,
                        song="twinkle", play_song=True)
    show = asyncio.ensure_future(serve(opts, lambda _ports: ready.set(), handles))
    await asyncio.wait_for(ready.wait(), 60)
    director, pacer, helpers = handles["director"], handles["pacer"], handles["helpers"]
    assert isinstance(director, Director) and isinstance(pacer, AudioPacer)
    assert isinstance(helpers, Supervisor)
    await asyncio.sleep(0.5)

    # Real helpers fail once each: prefetch's computation and the pose stream's singer lookup.
    def prefetch_fails(*_args: object) -> int:
        del director.ensemble.prefetch  # type: ignore[attr-defined]  # the next run is real
        raise RuntimeError("injected prefetch failure")

    def line_fails(_name: str) -> object:
        del director.line  # type: ignore[attr-defined]
        raise RuntimeError("injected pose failure")

    failed_at = pacer.playout_sample
    director.ensemble.prefetch = prefetch_fails  # type: ignore[method-assign, assignment]
    director.line = line_fails  # type: ignore[assignment, method-assign]
    for _ in range(500):
        if helpers.restarts["prefetch"] and helpers.restarts["pose stream"]:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(1.5)  # the show goes on, helpers running again
    assert not show.done()
    os.kill(os.getpid(), signal.SIGINT)  # stop as an operator does
    summary = await asyncio.wait_for(show, 15)

    assert summary["helper_restarts"] == {"prefetch": 1, "pose stream": 1}
    logged = [r.getMessage() for r in caplog.records if r.name == "stage.supervise"]
    assert len(logged) == 2 and "'prefetch' failed" in " ".join(logged)
    assert "'pose stream' failed" in " ".join(logged)
    # stopped cleanly: every helper ended, the synthesis thread too, the files are complete
    assert all(task.done() for task in helpers.tasks)
    assert "livesinger-synth" not in {t.name for t in threading.enumerate()}
    audio, rate = sf.read(tmp_path / "audio.wav", dtype="float32")
    assert rate == SR and len(audio) == pacer.playout_sample
    after = audio[failed_at:]
    assert len(after) >= int(1.5 * SR)
    assert pacer.xruns <= xrun_budget(pacer.chunks_played)
    # the song went on being sung after the failures (twinkle sings through its first bars)
    window = int(0.1 * SR)
    rms = [float(np.sqrt(np.mean(after[i:i + window] ** 2)))
           for i in range(0, int(1.5 * SR), window)]
    assert sum(r > 0.01 for r in rms) >= 10, rms
    # and the pose stream, restarted, kept streaming poses of the show as it went on
    assert frames_after(tmp_path / "pose.jsonl", failed_at + int(1.0 * SR)) >= 20
