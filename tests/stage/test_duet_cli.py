"""``livesinger duet``: a MusicXML duet, the performer as a WAV file → the idol's audio and
the follow log; bad input answered with one line and exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from singer.contracts import SAMPLE_RATE_HZ
from singer.follow import corpus
from singer.provenance.aigc import read_label
from singer.provenance.detector import detect
from stage.cli import main


def duet_musicxml(path: Path, bars: int = 12) -> None:
    """Score A as MusicXML with the parts 'Performer' and 'Idol' (written by music21)."""
    import music21

    score = corpus.score_a(bars)
    tm = score.tempo_map
    m21 = music21.stream.Score()
    for part, name in zip(score.parts, ("Performer", "Idol"), strict=True):
        p = music21.stream.Part()
        p.partName = name
        p.insert(0, music21.tempo.MetronomeMark(number=100))
        p.insert(0, music21.meter.TimeSignature("4/4"))
        for note in part.notes:
            on = tm.sample_to_beat(note.t_on)
            n = music21.note.Note(int(note.pitch_midi), quarterLength=round(
                tm.sample_to_beat(note.t_off) - on + 0.03, 2))
            n.lyric = note.lyric
            p.insert(round(on, 2), n)
        m21.insert(0, p)
    m21.write("musicxml", fp=str(path))


def test_duet_writes_the_idol_and_the_follow_log(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    xml = tmp_path / "duet.musicxml"
    duet_musicxml(xml)
    perf = corpus.perform(corpus.score_a(), bpm=110.0, snr_db=30.0)
    wav = tmp_path / "performer.wav"
    sf.write(str(wav), perf.audio, SAMPLE_RATE_HZ)
    out = tmp_path / "rec"
    status = main(["duet", str(xml), "--follow", "performer", "--input", str(wav),
                   "--record", str(out)])
    assert status == 0, capsys.readouterr().err
    audio, rate = sf.read(str(out / "audio.wav"), dtype="float32")
    rows = [json.loads(line) for line in (out / "follow.jsonl").read_text().splitlines()]
    assert rate == SAMPLE_RATE_HZ and np.sqrt(np.mean(audio ** 2)) > 0.01
    assert len(rows) >= len(perf.notes) - 2
    assert {"show_sample", "beat", "bpm", "confidence"} <= set(rows[0])
    # Past the first bars the follower found the performer's tempo (110 bpm, score 100).
    assert abs(np.median([r["bpm"] for r in rows[8:]]) / 110.0 - 1.0) < 0.05
    # Labelled and watermarked as AI-generated, like every other output.
    label = read_label(out / "audio.wav")
    assert label is not None
    found = detect(audio, rate)
    assert found.detected and found.payload is not None
    assert found.payload.id == label.watermark_id


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    xml = tmp_path / "duet.musicxml"
    duet_musicxml(xml)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    cases = [
        (["--follow", "tenor", "--input", str(junk)], "no part 'tenor' to follow; parts:"),
        (["--follow", "performer", "--input", str(junk)], "not a readable sound file"),
        (["--follow", "performer", "--input", str(tmp_path / "none.wav")], "no such file"),
        (["--follow", "performer", "--input", "midi:" + str(junk)],
         "not a readable MIDI file"),
        (["--follow", "performer", "--input", str(junk), "--sing", "choir"],
         "no part 'choir'"),
    ]
    for args, message in cases:
        status = main(["duet", str(xml), *args, "--record", str(tmp_path / "r")])
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert status == 2 and len(lines) == 1 and message in lines[0], (args, err)
    assert not (tmp_path / "r").exists()
    # Run as ``python -m stage.cli`` too: the subcommand's error is still one line, exit 2.
    done = subprocess.run([sys.executable, "-m", "stage.cli", "duet", str(xml), "--follow",
                           "tenor", "--input", str(junk), "--record", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "no part 'tenor' to follow" in done.stderr


def test_bench_duet_prints_compute_and_asynchrony_per_curve(
        capsys: pytest.CaptureFixture[str]) -> None:
    """``bench duet --smoke``: the compute row, then the step curve played as MIDI, measured
    in the idol's audio, with its targets beside it; progress on stderr."""
    assert main(["bench", "duet", "--json", "--smoke"]) == 0
    captured = capsys.readouterr()
    compute, curve = [json.loads(line) for line in captured.out.strip().splitlines()]
    assert compute["bench"] == "duet" and compute["row"] == "compute"
    assert compute["events"] >= compute["notes"] - 1
    assert 0 < compute["compute_ms_p50"] <= compute["compute_ms_p99"]
    assert 0 < compute["decision_latency_ms_median"] < 100
    assert (curve["row"], curve["curve"], curve["input"]) == ("curve", "step", "midi")
    assert curve["idol_notes"] >= 10 and curve["idol_notes_missing"] <= 1
    assert 0 <= curve["async_ms_median"] <= curve["async_ms_p95"] < 200
    assert (curve["async_target_ms_median"], curve["async_target_ms_p95"]) == (20.0, 50.0)
    assert curve["tempo_error_pct_from_4_beats"] < 10 and curve["tempo_target_pct"] == 5.0
    assert "bench duet: [1/1] step, midi" in captured.err


def test_bench_duet_refuses_an_unknown_curve(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "duet", "--curves", "steady,polka"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "unknown curve(s) polka; curves: steady, ramp_up" in err
