"""The live show's provenance end to end: the marked fan-out (no latency, one mark for every
output), the recorder's AIGC label and the pose track's header, the audible label, the WHEP
answer's ``AIGC-Label``, ``aigc`` in ``/status`` — and a WHEP listener's Opus recording is
detected with the show's ID."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import soundfile as sf

from singer.contracts import SAMPLE_RATE_HZ, AudioChunk
from singer.provenance import watermark as wm
from singer.provenance.aigc import AigcLabel, read_label
from singer.provenance.audible import beep_lengths_units, rhythm_cue
from singer.provenance.live import MarkedFanout
from singer.synth import HarmonicNoiseSynth
from stage.cli import main
from stage.serve import ServeOptions, serve
from streams.recorder import read_pose_track
from streams.webrtc.whep_client import WhepListener

SR = SAMPLE_RATE_HZ


def test_fanout_marks_once_for_every_sink_and_keeps_show_time() -> None:
    label = AigcLabel.new("test-producer")
    fanout = MarkedFanout(label, audible_label=False)
    got: list[list[AudioChunk]] = [[], []]
    fanout.add_sink(got[0].append)

    def broken(_chunk: AudioChunk) -> None:
        raise RuntimeError("a sink that fails")

    fanout.add_sink(broken)
    fanout.add_sink(got[1].append)
    rng = np.random.default_rng(3)
    x = (0.1 * rng.standard_normal(4 * SR)).astype(np.float32)
    for t in range(0, 2 * SR, 240):
        fanout(AudioChunk(t, x[t:t + 240]))
    skip = 3 * SR  # the pacer skipped stale chunks: a gap in show samples
    for t in range(skip, 4 * SR, 240):
        fanout(AudioChunk(t, x[t:t + 240]))
    assert fanout.sinks == (got[0].append, got[1].append)  # the broken one went, no others
    assert [c.t for c in got[0]] == [c.t for c in got[1]]
    assert all(a.samples is b.samples for a, b in zip(*got, strict=True))  # marked once
    out = np.concatenate([c.samples for c in got[0]])
    ref = wm.embed(x, label.watermark_id)
    np.testing.assert_allclose(out[:2 * SR], ref[:2 * SR], atol=1e-6)  # no latency
    later = out[2 * SR:]
    np.testing.assert_allclose(later[wm.MEMORY_SAMPLES:], ref[skip + wm.MEMORY_SAMPLES:],
                               atol=1e-6)


def test_audible_cue_is_short_long_short_short() -> None:
    assert beep_lengths_units(rhythm_cue()) == [1, 3, 1, 1]
    fanout = MarkedFanout(AigcLabel.new(), audible_label=True)
    got: list[AudioChunk] = []
    fanout.add_sink(got.append)
    for t in range(0, 2 * SR, 240):
        fanout(AudioChunk(t, np.zeros(240, np.float32)))
    audio = np.concatenate([c.samples for c in got])
    assert beep_lengths_units(audio) == [1, 3, 1, 1]
    assert np.abs(audio[int(1.2 * SR):]).max() < 1e-3  # then nothing but the (silent) show


def test_audible_cue_at_every_song_start_over_the_song() -> None:
    """A real Director's transport: the cue plays at show start and again from each song
    start's play point (mixed over the song, which is not delayed), not at a tempo change."""
    from stage.director import Director
    from stage.pacer import AudioPacer, PacerConfig
    from stage.song_loader import local_loader
    from streams.cue import make_cue

    director = Director(HarmonicNoiseSynth(device="cpu"), local_loader())
    director.attach(AudioPacer(director.render, [], PacerConfig(240, 2)))
    fanout = MarkedFanout(AigcLabel.new(), audible_label=True)
    director.transport_listeners.append(fanout.transport)
    got: list[AudioChunk] = []
    fanout.add_sink(got.append)
    director.install(local_loader()("twinkle"), 0)
    director.apply_now(make_cue("song.play", {"beat": 0.0}), 3 * SR)
    director.apply_now(make_cue("tempo", {"bpm": 140}), int(4.5 * SR))  # no cue
    director.apply_now(make_cue("song.stop", {}), 6 * SR)
    director.apply_now(make_cue("song.play", {"beat": 0.0}), 8 * SR)
    song = np.concatenate([director.render(t, 240) for t in range(0, 10 * SR, 240)])
    for t in range(0, 10 * SR, 240):
        fanout(AudioChunk(t, song[t:t + 240]))
    audio = np.concatenate([c.samples for c in got])
    starts = [0, 3 * SR, 8 * SR]
    for start in starts:
        assert beep_lengths_units(audio[start:start + int(1.2 * SR)]) == [1, 3, 1, 1], start
    assert beep_lengths_units(audio[int(4.2 * SR):8 * SR]) == []  # the tempo change: none
    # the song is where the Director put it, undelayed: the output is the song plus the
    # cues at those samples, marked
    cue = np.zeros(len(audio), np.float32)
    for start in starts:
        cue[start:start + len(rhythm_cue())] += rhythm_cue()
    expected = wm.embed(song + cue, fanout.label.watermark_id)
    np.testing.assert_allclose(audio, expected, atol=1e-5)


async def _get(http: aiohttp.ClientSession, url: str) -> dict[str, object]:
    async with http.get(url) as res:
        assert res.status == 200
        data: dict[str, object] = await res.json()
        return data


@pytest.mark.timeout(120)
async def test_live_show_recording_and_whep_listener_carry_the_show_id(tmp_path: Path) -> None:
    record = tmp_path / "rec"
    opts = ServeOptions(osc_port=None, http_port=0, headless=True, record=record,
                        song="jasmine", play_song=True, producer="Studio 7")
    handles: dict[str, object] = {}
    ready = asyncio.Event()
    ports: dict[str, object] = {}

    def on_ready(bound: dict[str, object]) -> None:
        ports.update(bound)
        ready.set()

    task = asyncio.ensure_future(serve(opts, on_ready, handles))
    listener = None
    try:
        await asyncio.wait_for(ready.wait(), 60)
        base = f"http://127.0.0.1:{ports['http']}"
        async with aiohttp.ClientSession() as http:
            status = await _get(http, base + "/status")
            listener = WhepListener(base + "/whep", keep_audio=True)
            await listener.start(http)
            pacer = handles["pacer"]
            start = pacer.playout_sample  # type: ignore[attr-defined]
            while pacer.playout_sample < start + 7 * SR:  # type: ignore[attr-defined]
                await asyncio.sleep(0.1)
            await listener.stop(http)
    finally:
        task.cancel()
        summary = await asyncio.gather(task, return_exceptions=True)
    aigc = status["aigc"]
    assert isinstance(aigc, dict)
    assert aigc["ai_generated"] is True and aigc["text"] == "AI生成"  # jasmine is Mandarin
    assert aigc["producer"] == "Studio 7" and aigc["audible_label"] == "start"
    produce_id = aigc["produce_id"]
    assert isinstance(produce_id, str)
    # the WHEP answer says the stream is AI-generated, with the show's label
    header = json.loads(listener.headers["AIGC-Label"])
    assert header["AIGC"]["ProduceID"] == produce_id and header["AIGC"]["Label"] == "1"
    # the recording: labelled (RIFF AIGC chunk, pose header), audible cue first, marked
    label = read_label(record / "audio.wav")
    assert label is not None and label.ProduceID == produce_id
    assert label.ContentProducer == "Studio 7"
    pose_label, frames = read_pose_track(record / "pose.jsonl")
    assert pose_label == label and len(frames) > 100 and all("t" in f for f in frames)
    audio, rate = sf.read(record / "audio.wav", dtype="float32")
    cue = rhythm_cue()  # matched filter: the song under it (and xruns of a busy CI) aside
    assert float(np.dot(audio[:len(cue)], cue) / np.dot(cue, cue)) > 0.6
    found = wm.detect(audio[-6 * SR:], rate)
    assert found.detected and found.payload is not None
    assert found.payload.id == label.watermark_id
    # what a broadcaster's WHEP player heard (Opus through our WebRTC path) carries it too
    heard = np.concatenate(listener.audio)
    assert len(heard) > 5 * SR
    found = wm.detect(heard[-5 * SR:], SR)
    assert found.detected and found.payload is not None, found.score
    assert found.payload.id == label.watermark_id
    assert isinstance(summary[0], (dict, asyncio.CancelledError))


def test_label_check_reads_every_writer(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from streams.recorder import AudioRecorder, PoseRecorder

    label = AigcLabel.new("round-trip", "0123abcd" + "e" * 24)
    wav = AudioRecorder(tmp_path / "audio.wav", label)
    wav(AudioChunk(0, np.zeros(480, np.float32)))
    wav.close()
    pose = PoseRecorder(tmp_path / "pose.jsonl", label)
    pose.close()
    for path in (tmp_path / "audio.wav", tmp_path / "pose.jsonl"):
        capsys.readouterr()
        assert main(["label", "check", str(path), "--json"]) == 0
        assert AigcLabel.from_json(capsys.readouterr().out) == label
    unlabelled = PoseRecorder(tmp_path / "bare.jsonl")
    unlabelled.close()
    assert main(["label", "check", str(tmp_path / "bare.jsonl")]) == 1
    assert "no AIGC label" in capsys.readouterr().out
    (tmp_path / "x.mp4").write_bytes(b"")
    assert main(["label", "check", str(tmp_path / "x.mp4")]) == 2
    assert "no AIGC carrier known" in capsys.readouterr().err
