"""The command line: renders, and answers bad input with one clear line and exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from singer.contracts import SAMPLE_RATE_HZ
from singer.scores.musicxml import read_musicxml
from singer.songs import song_path
from stage.cli import main
from tests.stage.cli_runs import livesinger_all


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stage.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_render_lines_up_score_time_with_wav_time(tmp_path: Path) -> None:
    out = tmp_path / "twinkle.wav"
    assert main(["render", "twinkle", "-o", str(out), "--voice", "tenor", "--seed", "3",
                 "--no-audible-label"]) == 0  # (the label would move the song 1.5 s on)
    audio, rate = sf.read(out, dtype="float32")
    assert rate == SAMPLE_RATE_HZ
    score = read_musicxml(song_path("twinkle"))
    first, last = score.notes[0], score.notes[-1]
    assert first.t_on == 0 and first.phonemes[0] == "t"
    # the /t/ that would start before 0 is squeezed in at the start, not dropped
    assert np.sqrt(np.mean(audio[:1440] ** 2)) > 1e-3
    body = audio[first.t_on + 4800:first.t_on + 14400]
    assert np.sqrt(np.mean(body ** 2)) > 0.03
    # the last note ends where the score says, and the WAV holds it whole
    assert len(audio) >= last.t_off
    assert np.sqrt(np.mean(audio[last.t_off - 9600:last.t_off - 4800] ** 2)) > 0.02


def test_bad_input_gets_one_clear_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.musicxml"
    broken.write_text(song_path("twinkle").read_text(encoding="utf-8")[:3000], encoding="utf-8")
    cases = [
        (["render", "twinkle", "-o", str(tmp_path / "x.wav"), "--voice", "baritone"],
         "unknown voice 'baritone'"),
        (["render", str(broken), "-o", str(tmp_path / "x.wav")], "broken.musicxml"),
        (["render", str(tmp_path / "missing.musicxml"), "-o", str(tmp_path / "x.wav")],
         "missing.musicxml"),
        (["bench", "voice", "--voices", "one"], "--voices"),
        (["bench", "webrtc", "--page", "latency=0 #x"], "--page wants a query"),
    ]
    for (args, words), done in zip(cases, livesinger_all(*(a for a, _ in cases)), strict=True):
        assert done.returncode == 2, (args, done.stderr)
        assert words in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
        assert done.stderr.strip().count("\n") == 0, done.stderr


def test_help_lists_every_command() -> None:
    done = run_cli("--help")
    for command in ("render", "demo", "serve", "voices", "bench"):
        assert command in done.stdout
