"""The performer's capture sources: a WAV at another rate and channel count, audio pushed in
from a receiver, the MIDI queue and port; bad sources answered with one clear line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mocap.performer_audio import (
    PerformerAudioError,
    PushedAudioSource,
    WavFileSource,
    open_performer_audio,
)
from mocap.performer_midi import MidiEventQueue, MidiPortSource, PerformerMidiError
from singer.contracts import SAMPLE_RATE_HZ
from singer.follow.pitch import YinTracker


def _cents_off(samples: np.ndarray, hz: float) -> float:
    frames = YinTracker().process(samples)[5:-2]
    f0 = np.array([f.f0_hz for f in frames])
    assert len(f0) and np.all(f0 > 0)
    return float(np.max(np.abs(1200 * np.log2(f0 / hz))))


def test_wav_at_44k1_stereo_is_resampled_onto_the_show_clock(tmp_path: Path) -> None:
    t = np.arange(44_100) / 44_100
    tone = 0.3 * np.sin(2 * np.pi * 440.0 * t)
    path = tmp_path / "perf.wav"
    sf.write(str(path), np.stack([tone, tone], axis=1), 44_100)
    source = WavFileSource(path, start_sample=960)
    chunks = list(source.chunks())
    assert source.source_rate_hz == 44_100 and source.latency_samples == 0
    assert abs(sum(len(c.samples) for c in chunks) - SAMPLE_RATE_HZ) <= 2
    assert chunks[0].t == 960 and all(a.end == b.t for a, b in zip(chunks, chunks[1:],
                                                                      strict=False))
    assert _cents_off(np.concatenate([c.samples for c in chunks]), 440.0) < 5.0


def test_pushed_audio_is_resampled_and_stamped() -> None:
    source = PushedAudioSource(latency_samples=240)
    t = np.arange(44_100) / 44_100
    tone = (0.3 * np.sin(2 * np.pi * 330.0 * t)).astype(np.float32)
    for i in range(0, len(tone), 441):  # 10 ms frames, as a WebRTC track delivers them
        source.push(tone[i:i + 441], 44_100, capture_sample=i * SAMPLE_RATE_HZ // 44_100)
    chunks = []
    while (chunk := source.read(0.0)) is not None:
        chunks.append(chunk)
    assert len(chunks) <= 50 and source.dropped == 100 - len(chunks) or source.dropped == 0
    assert all(a.end == b.t for a, b in zip(chunks, chunks[1:], strict=False))
    assert _cents_off(np.concatenate([c.samples for c in chunks]), 330.0) < 5.0
    with pytest.raises(PerformerAudioError, match="sample rate 1000 Hz"):
        source.push(tone[:10], 1000, 0)


@pytest.mark.parametrize("content,message", [
    (b"RIFF\x00\x00\x00\x00WAVEjunk", "not a readable sound file"),
    (None, "no such file"),
])
def test_bad_wav_is_one_line(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(PerformerAudioError) as err:
        WavFileSource(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_sound_card_is_one_line() -> None:
    with pytest.raises(PerformerAudioError) as err:
        open_performer_audio("mic:99", now_sample=lambda: 0)
    assert "sound card input" in str(err.value) and "\n" not in str(err.value)


def test_midi_queue_and_bad_port() -> None:
    events = MidiEventQueue()
    events.note_on(64.0, 0.5, 1000)
    events.note_on(67.0, 0.7, 2000)
    assert [(e.pitch_midi, e.onset_sample) for e in events.drain()] == [(64.0, 1000),
                                                                         (67.0, 2000)]
    with pytest.raises(PerformerMidiError, match="out of range"):
        events.note_on(200.0, 0.5, 0)
    with pytest.raises(PerformerMidiError) as err:
        MidiPortSource("no such keyboard", now_sample=lambda: 0)
    assert "MIDI" in str(err.value) and "\n" not in str(err.value)
