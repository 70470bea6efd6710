"""The program mix keeps the score's relation between sung onsets and the backing's beats
within 1 ms: at the start, after a seek, after stop/play and through a tempo change in the
score, with a vocal chain whose latency is compensated; a stem mute silences that stem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from singer.contracts import SAMPLE_RATE_HZ as SR
from singer.mix.backing import BackingPlayer, load_backing
from singer.mix.backing_spec import parse_backing
from singer.mix.chain import VocalChain
from singer.mix.effects import Band, Compressor, CompressorParams, Equalizer
from singer.mix.program import ProgramMix, render_program
from singer.render import build_ensemble
from singer.score import Score, SourceNote, assemble_score
from singer.tempo import TempoChange, TempoMap
from tests.measure import band_energy_onset

NOTE_BEATS = (1.0, 3.0, 5.0, 9.0, 11.0, 13.0)
PITCH = 57.0  # A3, 220 Hz
HZ = 220.0
CLICK_HZ = 3000.0
OFFSET_S = 0.25  # backing time 0 at score time 0.25 s


def _score() -> Score:
    tempo = TempoMap([TempoChange(0.0, 120.0), TempoChange(8.0, 90.0)])
    notes = [SourceNote(b, b + 1.0, PITCH, "la") for b in NOTE_BEATS]
    return assemble_score("sync", tempo, {"lead": notes}, language="en")


def _click_file(tmp: Path, score: Score, rate_hz: int) -> Path:
    """Clicks (3 kHz bursts) at every note's beat, written at another rate."""
    length = int((score.end_sample / SR + 1.0) * rate_hz)
    audio = np.zeros(length, np.float32)
    burst = np.sin(2 * np.pi * CLICK_HZ * np.arange(int(0.02 * rate_hz)) / rate_hz)
    for beat in NOTE_BEATS:
        at = round((score.tempo_map.beat_to_sample(beat) / SR - OFFSET_S) * rate_hz)
        audio[at:at + len(burst)] += 0.8 * burst
    path = tmp / "clicks.flac"
    sf.write(path, audio, rate_hz)
    return path


def _click_onsets(program: np.ndarray, near: list[int]) -> list[float]:
    sos = signal.butter(4, [2600, 3400], btype="band", fs=SR, output="sos")
    band = signal.sosfiltfilt(sos, program.astype(np.float64))
    env = np.sqrt(np.convolve(band ** 2, np.ones(48) / 48, mode="same"))
    out = []
    for at in near:
        a, b = at - SR // 50, at + SR // 50
        seg = env[a:b]
        out.append((a + int(np.nonzero(seg >= 0.5 * seg.max())[0][0])) / SR)
    return out


def _chain() -> VocalChain:
    """A chain with latency (the look-ahead) whose sound has no memory to blur onsets."""
    return VocalChain([Equalizer([Band("peak", 2000.0, 3.0, 1.0)]),
                       Compressor(CompressorParams(0.0, 3.0, lookahead_ms=2.0))])


def test_onsets_and_beats_keep_the_score_relation(tmp_path: Path) -> None:
    score = _score()
    _click_file(tmp_path, score, 44_100)  # resampled at load
    spec = parse_backing({"offset_s": OFFSET_S, "stems": [{"file": "clicks.flac"}]}, tmp_path,
                         "test")
    track = load_backing(spec)
    player = BackingPlayer(track, score.tempo_map)
    ensemble = build_ensemble(score, "soprano")
    tm = score.tempo_map
    # the transport: play from beat 0; seek back to beat 2.5; stop; play on from beat 8.5
    seek_at, stop_at, play_at = tm.beat_to_sample(6.0), tm.beat_to_sample(6.0) + 80_000, 0
    play_at = stop_at + 30_000
    segments = [(0, 0), (seek_at, tm.beat_to_sample(2.5)), (stop_at, None),
                (play_at, tm.beat_to_sample(8.5))]
    player.play(0, 0.0)
    player.seek(seek_at, 2.5)
    player.stop(stop_at)
    player.seek(stop_at + 10, 8.5)
    player.resume(play_at)
    total = play_at + (score.end_sample - tm.beat_to_sample(8.5)) + SR // 2
    voice = np.zeros(total, np.float32)
    for k, (show, song) in enumerate(segments):
        end = segments[k + 1][0] if k + 1 < len(segments) else total
        if song is None:
            continue
        for t in range(show, end, 480):
            n = min(480, end - t)
            voice[t:t + n] = ensemble.render(song + t - show, n)[0]
    mix = ProgramMix({"lead": _chain()}, player)
    assert mix.latency_samples == 96
    out = render_program({"lead": voice}, mix)
    # reference: the voice sung straight through the same chain, onsets measured the same way
    ref = build_ensemble(score, "soprano")
    plain = np.concatenate([ref.render(t, 480)[0] for t in range(0, score.end_sample, 480)])
    plain = _chain_voice(plain)
    expected: list[tuple[int, int]] = []  # (show sample of a note's beat, its note)
    for k, (show, song) in enumerate(segments):
        end = segments[k + 1][0] if k + 1 < len(segments) else total
        if song is None:
            continue
        for i, note in enumerate(score.notes):
            at = show + note.t_on - song
            if show + SR // 10 <= at < end - SR // 5:
                expected.append((at, i))
    assert len(expected) >= 6  # notes at the start, after the seek, after play, at 90 bpm
    clicks = _click_onsets(out.program, [at for at, _ in expected])
    for (at, i), click in zip(expected, clicks, strict=True):
        note = score.notes[i]
        sung = band_energy_onset(out.program, HZ, at / SR)
        sung_ref = band_energy_onset(plain, HZ, note.t_on / SR)
        relation = sung - click
        relation_ref = sung_ref - note.t_on / SR
        assert abs(relation - relation_ref) < 0.001, (i, at, relation, relation_ref)
        assert abs(click - at / SR) < 0.001
    # the stems come out aligned with the program too
    assert np.allclose(out.stems["clicks"] + 0, out.program - _chain_voice(voice), atol=0.2)


def _chain_voice(voice: np.ndarray) -> np.ndarray:
    mix = ProgramMix({"lead": _chain()})
    return render_program({"lead": voice}, mix).program[:len(voice)]


def test_stem_mute_silences_that_stem_alone(tmp_path: Path) -> None:
    tone = (0.3 * np.sin(2 * np.pi * 500 * np.arange(SR * 2) / SR)).astype(np.float32)
    noise = (0.3 * np.random.default_rng(0).standard_normal(SR * 2)).astype(np.float32)
    sf.write(tmp_path / "pad.wav", tone, SR)
    sf.write(tmp_path / "drums.ogg", noise, SR)
    spec = parse_backing({"stems": ["pad.wav", {"file": "drums.ogg", "gain_db": -6}]},
                         tmp_path, "test")
    player = BackingPlayer(load_backing(spec), TempoMap())
    player.play(0)
    player.mute("drums", True, SR // 2, fade_s=0.01)
    stems = player.read_stems(0, SR)
    before, after = stems[:, :SR // 2 - 10], stems[:, SR // 2 + 480:]
    assert np.sqrt(np.mean(after[1] ** 2)) == 0.0
    # (Vorbis low-passes the noise a little)
    assert np.sqrt(np.mean(before[1] ** 2)) == pytest.approx(0.3 * 10 ** (-6 / 20), rel=0.2)
    assert np.sqrt(np.mean(after[0] ** 2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.02)
    player.mute("drums", False, SR, fade_s=0.0)
    assert np.sqrt(np.mean(player.read_stems(SR, 4800)[1] ** 2)) > 0.1


def test_backing_declared_in_a_cue_list(tmp_path: Path) -> None:
    from stage.cuelist import CueListError, load_cue_list

    sf.write(tmp_path / "band.wav", np.zeros(480, np.float32), SR)
    cues = tmp_path / "show.yaml"
    cues.write_text("backing:\n  jasmine: {offset_s: 1.5, stems: [band.wav]}\n"
                    "cues:\n  - id: '1'\n    do:\n      - song.load: jasmine\n")
    spec = load_cue_list(cues).backing["jasmine"]
    assert spec.offset_s == 1.5 and spec.stems[0].path == tmp_path / "band.wav"
    cues.write_text("backing:\n  jasmine: {stems: [gone.wav]}\ncues: []\n")
    with pytest.raises(CueListError, match="backing jasmine: stem #1: .*gone.wav: backing "
                                           "file not found"):
        load_cue_list(cues)


def test_retime_inside_the_backing_is_refused(tmp_path: Path) -> None:
    from singer.mix.backing import BackingLockError

    sf.write(tmp_path / "band.wav", np.zeros(SR * 4, np.float32), SR)
    spec = parse_backing({"file": "band.wav", "offset_s": 1.0}, tmp_path, "test")
    player = BackingPlayer(load_backing(spec), TempoMap([TempoChange(0.0, 120.0)]))
    assert player.locked_beats() == (2.0, 10.0)
    player.check_retime(1.0)  # before the backing: free
    player.check_retime(10.0)  # after it: free
    with pytest.raises(BackingLockError, match="beat 4 is inside the backing track"):
        player.check_retime(4.0)
