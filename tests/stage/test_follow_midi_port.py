"""``serve --follow --performer-midi PORT`` on a real MIDI port: a private JACK server (the
``jack_midi`` fixture, ``tests/midi_ports.py``), a virtual output the test plays the
performer into at 126 bpm (the score says 100); the idol's onsets measured in the
recording land with the performer's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from singer.contracts import SAMPLE_RATE_HZ
from singer.follow import corpus
from singer.follow.evaluate import idol_asynchrony_ms, summary
from stage.serve import ServeOptions, serve
from tests import midi_ports
from tests.midi_ports import JackMidi
from tests.stage.test_duet_cli import duet_musicxml
from tests.stage.test_follow_cues import _ready

jack_midi = midi_ports.jack_midi
pytestmark = pytest.mark.timeout(120)


async def test_serve_follows_notes_on_a_jack_midi_port(tmp_path: Path,
                                                       jack_midi: JackMidi) -> None:
    keys = jack_midi.virtual_output("performer-keys")
    xml = tmp_path / "duet.musicxml"
    duet_musicxml(xml, bars=4)
    score = corpus.score_a(4)
    perf = corpus.perform(score, bpm=126.0, sing=False)
    handles: dict[str, object] = {}
    opts = ServeOptions(osc_port=None, http_port=None, headless=True, record=tmp_path / "rec",
                        song=str(xml), follow="performer",
                        performer_midi="midi:performer-keys", audible_label="off")
    task = asyncio.ensure_future(serve(opts, handles=handles))
    try:
        await _ready(handles, task)
        pacer, desk = handles["pacer"], handles["follow"]
        for _ in range(500):
            if desk.start_sample is not None:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.01)
        start = int(desk.start_sample)  # type: ignore[attr-defined]
        for note in perf.notes:  # each note-on sent on the port when the performer plays it
            due = start + perf.tempo_map.beat_to_sample(note.beat_on)
            while pacer.playout_sample < due:  # type: ignore[attr-defined]
                await asyncio.sleep(0.002)
            keys.send(mido.Message("note_on", note=int(note.pitch_midi), velocity=90))
        end = start + perf.tempo_map.beat_to_sample(16.0) + SAMPLE_RATE_HZ
        while pacer.playout_sample < end:  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)
        following = handles["director"].status()["follow"]  # type: ignore[attr-defined]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert following["input"] == "midi midi:performer-keys", following
    assert following["events"] == len(perf.notes), following
    assert abs(following["bpm"] / 126.0 - 1) < 0.05, following
    audio, _ = sf.read(str(tmp_path / "rec" / "audio.wav"), dtype="float32")
    values = [v for v in idol_asynchrony_ms(score, perf, audio[start:], [(0, 4)])
              if np.isfinite(v)]  # (a note cut by a rare xrun under load has no onset)
    med, p95 = summary(values)
    # as the note events over OSC (tests/stage/test_follow_cues.py): stamped on arrival
    assert len(values) >= 8 and med <= 40.0 and p95 <= 100.0, values
