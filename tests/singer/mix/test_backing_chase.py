"""The backing under a timecode chase (``BackingPlayer.chase``): read at the chase's rate from
a fractional position (windowed-sinc), steered onto the chased position without a jump."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from singer.contracts import SAMPLE_RATE_HZ as SR
from singer.mix.backing import BackingPlayer, load_backing
from singer.mix.backing_spec import files_spec
from singer.tempo import TempoChange, TempoMap

HZ = 1000.0
AMP = 0.5


def _player(tmp_path: Path) -> BackingPlayer:
    tone = (AMP * np.sin(2 * np.pi * HZ * np.arange(20 * SR) / SR)).astype(np.float32)
    sf.write(tmp_path / "tone.wav", tone, SR, subtype="FLOAT")
    return BackingPlayer(load_backing(files_spec([str(tmp_path / "tone.wav")])),
                         TempoMap([TempoChange(0.0, 120.0)]))


def _read(player: BackingPlayer, a: int, b: int, chunk: int = 240) -> np.ndarray:
    return np.concatenate([player.read(t, min(chunk, b - t)) for t in range(a, b, chunk)])


def test_chase_trims_resample_onto_the_chased_position_without_a_jump(tmp_path: Path) -> None:
    player = _player(tmp_path)
    player.play(0, 0.0)
    rate = 1.001
    trims = [(k * SR // 10, k * 0.1 * rate * 2.0) for k in range(1, 40)]  # beats at 120 bpm
    for at, beat in trims[:1]:
        player.chase(at, beat + 0.0001, rate)  # 2.4 samples off where it is: steered onto
    out = [_read(player, 0, trims[0][0])]
    for (at, beat), (nxt, _) in zip(trims, [*trims[1:], (40 * SR // 10, 0.0)], strict=True):
        if at != trims[0][0]:
            player.chase(at, beat + 0.0001, rate)
        out.append(_read(player, at, nxt))
    audio = np.concatenate(out).astype(np.float64)
    # no discontinuity anywhere: the second difference stays within a sine's bound
    d2 = np.abs(np.diff(audio, 2))
    bound = AMP * (2 * np.sin(np.pi * HZ * 1.005 / SR)) ** 2 * 1.02
    assert float(d2.max()) <= bound, (float(d2.max()), bound, int(np.argmax(d2)))
    # ... and it plays the chased position: at the last trim, within a sample of it
    at, beat = trims[-1]
    assert abs(player.position_at(at) - (beat + 0.0001) * SR / 2.0) < 1.0
    # what sounds there is the tone at the (fractional) positions read, interpolated well
    positions = np.array([player.position_at(int(t)) for t in range(at, at + 480)])
    want = AMP * np.sin(2 * np.pi * HZ * positions / SR)
    assert float(np.max(np.abs(audio[at:at + 480] - want))) < 1e-3 * AMP


def test_a_chase_far_off_jumps_and_a_stopped_backing_starts_there(tmp_path: Path) -> None:
    player = _player(tmp_path)
    player.chase(4800, 2.0, 1.0)  # stopped: a locate
    assert player.playing_at(4800) and player.position_at(4800) == 2.0 * SR / 2.0
    player.chase(9600, 4.0, 1.001)  # 0.9 s away: a jump, not a 7-minute catch-up
    assert player.position_at(9600) == 4.0 * SR / 2.0
    assert abs(player.position_at(9600 + SR) - (4.0 * SR / 2.0 + SR * 1.001)) < 1e-6
