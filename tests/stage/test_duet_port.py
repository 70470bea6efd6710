"""``livesinger duet --input midi:PORT``: a performer played on a real MIDI port (a private
JACK server, ``tests/midi_ports.py``) at 126 bpm into a score that says 100; the idol's
onsets measured in ``DIR/audio.wav`` against the moments the notes were sent. A port that is
not there is one line naming it and the ports there are; a port that goes away mid-song and
Ctrl-C both end the run with the recording written."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import mido
import numpy as np
import pytest
import soundfile as sf

from singer.contracts import SAMPLE_RATE_HZ
from singer.follow import corpus
from singer.follow.evaluate import idol_asynchrony_ms, summary
from stage.cli import main
from tests import midi_ports
from tests.midi_ports import JackMidi
from tests.stage.test_duet_cli import duet_musicxml

jack_midi = midi_ports.jack_midi
pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[2]
ORIGIN = re.compile(r"show sample 0 = monotonic ([0-9.]+) s")


class SentBeats:
    """Where the performer reached each score beat: the moments its notes were sent."""

    def __init__(self, beats: list[float], samples: list[float]) -> None:
        self.beats, self.samples = beats, samples

    def sample_of(self, beat: float) -> float | None:
        if beat > self.beats[-1]:
            return None
        return float(np.interp(beat, self.beats, self.samples))


def _start(xml: Path, rec: Path, jack: JackMidi, port: str) -> tuple[subprocess.Popen[str],
                                                                    float]:
    """``livesinger duet`` on ``port`` as a child process; its show sample 0 (monotonic s)
    from the line it prints once the port is open."""
    proc = subprocess.Popen([sys.executable, "-m", "stage.cli", "duet", str(xml), "--follow",
                             "performer", "--input", f"midi:{port}", "--record", str(rec)],
                            cwd=ROOT, env=jack.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    found = ORIGIN.search(line)
    if found is None:
        proc.kill()
        raise AssertionError(line + proc.stderr.read())
    return proc, float(found.group(1))


def _play(keys: Any, perf: corpus.Performance, origin_s: float,
          until_beat: float = 1e9) -> tuple[list[float], list[float]]:
    """Send the performer's note-ons when due; (beats, samples sent at) as sent."""
    beats, sent = [], []
    for note in perf.notes:
        if note.beat_on >= until_beat:
            break
        due = origin_s + perf.tempo_map.beat_to_sample(note.beat_on) / SAMPLE_RATE_HZ
        while (left := due - time.monotonic()) > 0:
            time.sleep(min(left, 0.001))
        keys.send(mido.Message("note_on", note=int(note.pitch_midi), velocity=90))
        sent.append((time.monotonic() - origin_s) * SAMPLE_RATE_HZ)
        beats.append(note.beat_on)
    return beats, sent


def test_duet_follows_a_live_midi_port(tmp_path: Path, jack_midi: JackMidi) -> None:
    keys = jack_midi.virtual_output("performer-keys")
    xml = tmp_path / "duet.musicxml"
    duet_musicxml(xml, bars=4)
    score = corpus.score_a(4)
    perf = corpus.perform(score, bpm=126.0, sing=False)  # the score says 100
    rec = tmp_path / "rec"
    proc, origin = _start(xml, rec, jack_midi, "performer-keys")
    beats, sent = _play(keys, perf, origin)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.startswith("song over at"), out
    audio, rate = sf.read(str(rec / "audio.wav"), dtype="float32")
    rows = [json.loads(line) for line in (rec / "follow.jsonl").read_text().splitlines()]
    # (jackd's dummy driver, not real-time here, can lose a note-on when the machine is busy)
    assert rate == SAMPLE_RATE_HZ and len(perf.notes) - 2 <= len(rows) <= len(perf.notes)
    assert abs(np.median([r["bpm"] for r in rows[4:]]) / 126.0 - 1) < 0.05, rows
    # the song ends after the performer's last note and the idol's, plus the tail
    assert sent[-1] + 1.0 * SAMPLE_RATE_HZ < len(audio) < sent[-1] + 3.0 * SAMPLE_RATE_HZ
    values = [v for v in idol_asynchrony_ms(score, SentBeats(beats, sent), audio, [(0, 4)])
              if np.isfinite(v)]
    med, p95 = summary(values)
    print(f"duet on a port: {len(values)} idol notes, median {med:.1f} ms, p95 {p95:.1f} ms")
    assert len(values) >= 8 and med <= 30.0 and p95 <= 80.0, values


def test_a_missing_port_is_one_line_naming_the_ports_there(
        tmp_path: Path, jack_midi: JackMidi, capsys: pytest.CaptureFixture[str]) -> None:
    jack_midi.virtual_output("performer-keys")
    xml = tmp_path / "duet.musicxml"
    duet_musicxml(xml, bars=4)
    status = main(["duet", str(xml), "--follow", "performer", "--input", "midi:no-such-keys",
                   "--record", str(tmp_path / "rec")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1, lines
    assert "MIDI port 'no-such-keys' not found" in lines[0], lines
    assert "performer-keys" in lines[0], lines  # the port that is there
    assert not (tmp_path / "rec").exists()


def test_the_port_going_away_ends_the_run_with_the_recording(tmp_path: Path,
                                                             jack_midi: JackMidi) -> None:
    keys = jack_midi.virtual_output("performer-keys")
    xml = tmp_path / "duet.musicxml"
    duet_musicxml(xml, bars=4)
    perf = corpus.perform(corpus.score_a(4), bpm=126.0, sing=False)
    rec = tmp_path / "rec"
    proc, origin = _start(xml, rec, jack_midi, "performer-keys")
    _play(keys, perf, origin, until_beat=4.0)
    keys.close()  # the keyboard is unplugged mid-song
    gone_s = time.monotonic() - origin
    out, err = proc.communicate(timeout=60)
    lines = err.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, (out, err)
    assert "MIDI port" in lines[0] and "performer-keys" in lines[0] \
        and "went away" in lines[0], lines
    audio, _ = sf.read(str(rec / "audio.wav"), dtype="float32")
    rows = [json.loads(line) for line in (rec / "follow.jsonl").read_text().splitlines()]
    assert 2 <= len(rows) <= 4  # the notes played before
    assert gone_s * SAMPLE_RATE_HZ <= len(audio) <= (gone_s + 2.0) * SAMPLE_RATE_HZ
    assert np.sqrt(np.mean(audio ** 2)) > 0.01  # the idol sang with them


def test_ctrl_c_stops_with_the_files_complete(tmp_path: Path, jack_midi: JackMidi) -> None:
    keys = jack_midi.virtual_output("performer-keys")
    xml = tmp_path / "duet.musicxml"
    duet_musicxml(xml, bars=4)
    perf = corpus.perform(corpus.score_a(4), bpm=126.0, sing=False)
    rec = tmp_path / "rec"
    proc, origin = _start(xml, rec, jack_midi, "performer-keys")
    _play(keys, perf, origin, until_beat=4.0)
    proc.send_signal(signal.SIGINT)
    stopped_s = time.monotonic() - origin
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.startswith("stopped at"), (out, err)
    audio, _ = sf.read(str(rec / "audio.wav"), dtype="float32")
    rows = [json.loads(line) for line in (rec / "follow.jsonl").read_text().splitlines()]
    assert 2 <= len(rows) <= 4
    assert stopped_s * SAMPLE_RATE_HZ <= len(audio) <= (stopped_s + 2.0) * SAMPLE_RATE_HZ
