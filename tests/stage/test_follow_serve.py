"""``serve --follow``: the idol follows a performer's MIDI file played in real time on the
show clock; the idol's onsets are measured in the recording against the performer's."""

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
from stage.serve import ServeError, ServeOptions, serve
from tests.stage.test_duet_cli import duet_musicxml


def _midi_file(perf: corpus.Performance, path: Path) -> None:
    """The performance's notes as a MIDI file (its own tempo map in 0.25-beat steps)."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    events = []
    for n in perf.notes:
        events.append((perf.tempo_map.beat_to_sample(n.beat_on), "note_on", int(n.pitch_midi)))
        events.append((perf.tempo_map.beat_to_sample(n.beat_off), "note_off",
                       int(n.pitch_midi)))
    track.append(mido.MetaMessage("set_tempo", tempo=500_000))  # 1 tick = 1/960 s
    last = 0
    for sample, kind, pitch in sorted(events):
        tick = round(sample / SAMPLE_RATE_HZ * 960)
        track.append(mido.Message(kind, note=pitch, velocity=90, time=tick - last))
        last = tick
    mid.save(str(path))


@pytest.mark.parametrize("synthesis", ["process", "thread"])
async def test_serve_follows_a_midi_performer(tmp_path: Path, synthesis: str) -> None:
    xml = tmp_path / "duet.musicxml"
    duet_musicxml(xml, bars=4)
    score = corpus.score_a(4)
    perf = corpus.perform(score, bpm=126.0, sing=False)  # the score says 100
    _midi_file(perf, tmp_path / "perf.mid")
    handles: dict[str, object] = {}
    opts = ServeOptions(osc_port=None, http_port=None, headless=True, record=tmp_path / "rec",
                        song=str(xml), follow="performer", synthesis=synthesis,
                        performer_midi=str(tmp_path / "perf.mid"), audible_label="off")
    task = asyncio.ensure_future(serve(opts, handles=handles))
    end_s = perf.tempo_map.beat_to_sample(16.0) / SAMPLE_RATE_HZ + 1.5
    # where the follower started (its part's beat 0 on the show clock, which the recording
    # starts at), read while it follows: the show drops its follower when it ends (read after
    # the end, it was None and the recording was cut at sample 0: the "process mode lands
    # ~155 ms off" of an earlier round)
    start: int | None = None
    for _ in range(int(60 / 0.1)):
        await asyncio.sleep(0.1)
        follow = handles.get("follow")
        pacer = handles.get("pacer")
        if follow is not None and follow.start_sample is not None:
            start = follow.start_sample
        if start is not None and pacer is not None \
                and pacer.playout_sample > start + end_s * SAMPLE_RATE_HZ:
            break
    status = handles["director"].status()  # type: ignore[attr-defined]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert status["follow"]["started"] and abs(status["follow"]["bpm"] / 126.0 - 1) < 0.05
    audio, rate = sf.read(str(tmp_path / "rec" / "audio.wav"), dtype="float32")
    # the duet starts with the show, whichever synthesis: the follower armed by --follow
    # waits for the show clock to run (a synthesis process sets its origin only once warm;
    # the start chosen on the clock before that lay 0.5-1 s into the show)
    assert start is not None and start < 0.4 * SAMPLE_RATE_HZ, start / SAMPLE_RATE_HZ
    values = [v for v in idol_asynchrony_ms(score, perf, audio[start:], [(0, 4)])
              if np.isfinite(v)]  # (a note cut by a rare xrun under load has no onset)
    med, p95 = summary(values)
    # (p95 of ten notes is set by the worst two: one note of the live show late on the loaded
    # machine, 121 ms once on the slow shared machine, is bench duet's to measure, offline:
    # MIDI rubato p95 37 ms; a follower that lags sets the median. With --synthesis thread the
    # idol's chunks share the GIL with the follower and the network loop (docs/synthesis.md):
    # on the slow shared machine, sum(range(3e7)) ~0.9 s, its median was 67 ms once)
    bound_med, bound_p95 = (30.0, 130.0) if synthesis == "process" else (100.0, 250.0)
    assert len(values) >= 8 and med <= bound_med and p95 <= bound_p95, values


@pytest.mark.parametrize("options,message", [
    ({"follow": "performer"}, "--follow performer needs --song"),
    ({"performer_audio": "x.wav"}, "need --follow PART"),
    ({"follow": "performer", "song": "twinkle", "performer_audio": "x.wav",
      "performer_midi": "x.mid"}, "name one input.*not both"),
    ({"follow": "performer", "song": "twinkle"}, "--follow performer: .*performer"),
])
async def test_follow_options_checked(options: dict[str, str], message: str) -> None:
    with pytest.raises(ServeError, match=message):
        await serve(ServeOptions(osc_port=None, http_port=None, headless=True,
                                 **options))  # type: ignore[arg-type]
