"""``serve --follow --performer-midi PORT`` when the port goes away mid-song (the program
sending on it quits) on a private JACK server (``tests/midi_ports.py``): the follower's
status says the input is lost within a bound, naming the port and the ports there are; it is
logged once; the show plays on; a port of that name coming back is opened again and the
performer is followed again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mido
import pytest

from singer.contracts import SAMPLE_RATE_HZ
from singer.follow import corpus
from stage.serve import ServeOptions, serve
from tests import midi_ports
from tests.measure import StallWatch
from tests.midi_ports import JackMidi
from tests.stage.test_duet_cli import duet_musicxml
from tests.stage.test_follow_cues import _ready

jack_midi = midi_ports.jack_midi
pytestmark = pytest.mark.timeout(120)
LOST_WITHIN_S = 1.0
"""The watch looks every 0.25 s; listing the ports takes well under a millisecond."""
BACK_WITHIN_S = 1.5
"""A look, then opening the port again (10-20 ms on JACK)."""


async def _within(bound_s: float, holds: Callable[[], bool], stalls: StallWatch) -> float:
    """Seconds until ``holds()``, less the time the machine did not run this process;
    fails past ``bound_s`` of that."""
    t0, stalled0 = time.monotonic(), stalls.stalled_s
    while True:
        took = time.monotonic() - t0 - (stalls.stalled_s - stalled0)
        if holds():
            return took
        assert took <= bound_s, f"not within {bound_s} s"
        await asyncio.sleep(0.01)


async def _play(keys: Any, pacer: Any, start: int, perf: corpus.Performance,
                beats: tuple[float, float]) -> int:
    """Send the performer's note-ons with ``beats[0] <= beat < beats[1]`` when due on the
    show clock (those over 0.1 s past are skipped); how many were sent."""
    sent = 0
    for note in perf.notes:
        due = start + perf.tempo_map.beat_to_sample(note.beat_on)
        if not beats[0] <= note.beat_on < beats[1] \
                or due < pacer.playout_sample - SAMPLE_RATE_HZ // 10:
            continue
        while pacer.playout_sample < due:
            await asyncio.sleep(0.002)
        keys.send(mido.Message("note_on", note=int(note.pitch_midi), velocity=90))
        sent += 1
    return sent


async def test_a_port_that_goes_away_is_reported_and_followed_again_when_back(
        tmp_path: Path, jack_midi: JackMidi, caplog: pytest.LogCaptureFixture) -> None:
    jack_midi.virtual_output("other-keys")  # a port that stays: the error lists it
    keys = jack_midi.virtual_output("performer-keys")
    xml = tmp_path / "duet.musicxml"
    duet_musicxml(xml, bars=4)
    perf = corpus.perform(corpus.score_a(4), bpm=126.0, sing=False)
    handles: dict[str, Any] = {}
    # (synthesis in a thread: the watch does not care where chunks are rendered, and a
    # thread starts seconds sooner than a process)
    opts = ServeOptions(osc_port=None, http_port=None, headless=True, song=str(xml),
                        follow="performer", performer_midi="midi:performer-keys",
                        audible_label="off", synthesis="thread")
    caplog.set_level(logging.INFO, logger="stage.follow.live")
    task = asyncio.ensure_future(serve(opts, handles=handles))
    try:
        with StallWatch() as stalls:
            await _ready(handles, task)  # type: ignore[arg-type]
            pacer, desk = handles["pacer"], handles["follow"]
            await _within(10.0, lambda: desk.start_sample is not None, stalls)
            start = int(desk.start_sample)

            def follow() -> dict[str, Any]:
                return dict(handles["director"].status()["follow"])

            before = follow()
            played = await _play(keys, pacer, start, perf, (0.0, 3.0))
            await asyncio.sleep(0.1)
            heard = follow()
            keys.close()  # the program sending on the port quits
            lost_s = await _within(LOST_WITHIN_S, lambda: follow()["input_lost"], stalls)
            lost = follow()
            at = pacer.playout_sample
            await asyncio.sleep(0.6)  # two more looks while it is gone
            still = follow()
            moved = pacer.playout_sample - at
            keys = jack_midi.virtual_output("performer-keys")  # it starts again
            back_s = await _within(BACK_WITHIN_S, lambda: not follow()["input_lost"], stalls)
            resumed = await _play(keys, pacer, start, perf, (0.0, 9.0))
            await asyncio.sleep(0.1)
            after = follow()
            xruns, played_chunks = pacer.xruns, pacer.chunks_played
        assert not task.done(), task  # the show went on throughout
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    print(f"input lost seen in {lost_s:.3f} s, back in {back_s:.3f} s (stalled "
          f"{stalls.stalled_s:.3f} s); {xruns} xruns in {played_chunks} chunks")
    assert before["input_lost"] is False and "input_error" not in before, before
    # (jackd's dummy driver, not real-time here, can lose a note-on when the machine is busy)
    assert played == 3 and heard["events"] >= 2, heard
    error = lost["input_error"]
    assert error.startswith("MIDI port '") and "performer-keys' went away" in error, error
    assert "other-keys'" in error, error  # the ports there are
    assert still["input_lost"] and still["input_error"] == error, still
    assert still["events"] == heard["events"], still
    assert moved >= 0.3 * SAMPLE_RATE_HZ, moved  # the show plays on as through a silence
    lost_logs = [r for r in caplog.records if "went away" in r.getMessage()]
    back_logs = [r for r in caplog.records if "is back" in r.getMessage()]
    assert len(lost_logs) == 1 and lost_logs[0].levelno == logging.WARNING, lost_logs
    assert len(back_logs) == 1, back_logs
    # followed again: the notes played on the port that came back are heard
    assert resumed >= 2 and after["events"] >= heard["events"] + resumed - 1, after
    assert after["input_lost"] is False and "input_error" not in after, after
