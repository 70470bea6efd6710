"""``livesinger render --backing``: the program mix written, the dry voice and stems beside
it, all aligned; the song's sidecar used; a bad backing one clear line before any render."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from singer.contracts import SAMPLE_RATE_HZ as SR
from singer.songs import song_path
from stage.cli import main


def _pulse_file(path: Path, rate: int, at_s: float) -> None:
    audio = np.zeros(int(rate * 3), np.float32)
    audio[int(at_s * rate)] = 0.9
    sf.write(path, audio, rate)


def test_render_writes_program_dry_and_stems_aligned(tmp_path: Path) -> None:
    _pulse_file(tmp_path / "click.wav", SR, 1.0)
    out, stems = tmp_path / "song.wav", tmp_path / "stems"
    assert main(["render", "twinkle", "-o", str(out), "--backing", str(tmp_path / "click.wav"),
                 "--backing-offset", "0.5", "--stems", str(stems), "--no-watermark"]) == 0
    program, _ = sf.read(out, dtype="float32")
    dry, _ = sf.read(stems / "dry.wav", dtype="float32")
    click, _ = sf.read(stems / "click.wav", dtype="float32")
    assert len(dry) == len(click) == len(program)
    lead = int(np.argmax(click)) - int(1.5 * SR)  # the click: score time 0.5 + 1.0 s
    assert lead >= 0  # the audible label's lead-in, the same in every file
    np.testing.assert_allclose(program[lead:], (dry + click)[lead:], atol=1e-5)
    assert np.sqrt(np.mean(dry[lead + SR // 10:lead + SR // 2] ** 2)) > 0.01


def test_sidecar_beside_the_song_is_used(tmp_path: Path) -> None:
    shutil.copy(song_path("twinkle"), tmp_path / "twinkle.musicxml")
    _pulse_file(tmp_path / "band.flac", 44_100, 0.25)
    (tmp_path / "twinkle.backing.yaml").write_text(
        "offset_s: 0.5\nstems:\n  - file: band.flac\n    name: band\n    gain_db: -6\n")
    out = tmp_path / "out.wav"
    assert main(["render", str(tmp_path / "twinkle.musicxml"), "-o", str(out),
                 "--no-audible-label", "--no-watermark", "--stems", str(tmp_path / "s")]) == 0
    band, _ = sf.read(tmp_path / "s" / "band.wav", dtype="float32")
    assert abs(int(np.argmax(np.abs(band))) - int(0.75 * SR)) <= 1  # resampled, in place
    assert float(np.max(np.abs(band))) < 0.9 * 10 ** (-6 / 20) + 0.05


def test_bad_backing_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["render", "twinkle", "-o", str(tmp_path / "x.wav"),
                 "--backing", str(tmp_path / "nope.wav")])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "nope.wav: backing file not found" in lines[0]
    assert not (tmp_path / "x.wav").exists()
