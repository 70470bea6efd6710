"""The render report: its YIN f0 against closed-form tones and Praat, the PNG, and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from singer.contracts import SAMPLE_RATE_HZ
from singer.render import build_ensemble, render_ensemble
from singer.report import measure_f0, write_report
from singer.scores.load import load_score
from stage.cli import main
from tests.measure import note_cents_errors

SR = SAMPLE_RATE_HZ


@pytest.mark.parametrize("f0_hz", [98.0, 261.63, 587.33, 880.0])
def test_yin_on_harmonic_tones(f0_hz: float) -> None:
    """A tone with a strong second harmonic (the trap of YIN's half-period dip)."""
    t = np.arange(SR) / SR
    tone = 0.3 * np.sin(2 * np.pi * f0_hz * t) + 0.5 * np.sin(4 * np.pi * f0_hz * t) \
        + 0.1 * np.sin(6 * np.pi * f0_hz * t)
    times, f0 = measure_f0(tone, floor_hz=60.0, ceiling_hz=1200.0)
    body = f0[(times > 0.1) & (times < 0.9)]
    assert (body > 0).all()
    assert np.max(np.abs(1200 * np.log2(body / f0_hz))) < 2.0
    silent = measure_f0(np.zeros(SR // 2))[1]
    assert not silent.any()


def test_report_png_and_measured_pitch(tmp_path: Path) -> None:
    score = load_score("twinkle")
    notes = score.notes[:8]
    audio = render_ensemble(build_ensemble(score, "tenor"), end_sample=notes[-1].t_off)
    result = write_report(score, audio, tmp_path / "report.png", subtitle="tenor")
    png = image.imread(tmp_path / "report.png")
    assert png.shape[0] == 750 and png.shape[1] >= 1000
    assert png[..., :3].std() > 0.05  # something drawn
    measured = result.note_cents[:8]
    assert np.isfinite(measured).all()
    assert np.median(np.abs(measured)) <= 10.0, measured
    praat = np.array(note_cents_errors(audio, notes, min_body_s=0.15))
    assert np.max(np.abs(measured - praat)) < 5.0, (measured, praat)
    assert len(result.loudness_db) == len(result.times_s)
    sung = (result.times_s > notes[0].t_on / SR + 0.1) & (result.times_s < notes[0].t_off / SR)
    assert np.median(result.loudness_db[sung]) > -40.0


def test_cli_render_with_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ust = tmp_path / "hi.ust"
    ust.write_text("[#SETTING]\nTempo=120\n[#0000]\nLength=480\nLyric=hi\nNoteNum=67\n"
                   "[#0001]\nLength=720\nLyric=there\nNoteNum=64\n[#TRACKEND]\n",
                   encoding="utf-8")
    out = tmp_path / "hi.wav"
    assert main(["render", str(ust), "-o", str(out), "--voice", "soprano",
                 "--report", str(tmp_path / "hi.png")]) == 0
    captured = capsys.readouterr()
    assert out.is_file() and (tmp_path / "hi.png").is_file()
    assert "median pitch error" in captured.out
    assert "livesinger: report: measuring the sung pitch" in captured.err
    bad = tmp_path / "bad.ust"
    bad.write_text("[#SETTING]\nTempo=120\n[#0000]\nLength=480\nLyric=hi\nNoteNum=G4\n",
                   encoding="utf-8")
    assert main(["render", str(bad), "-o", str(out)]) == 2
    assert "bad.ust: line 6: note [#0000]: NoteNum 'G4'" in capsys.readouterr().err
