"""``livesinger demo --headless --record DIR``: sings live; SIGINT/SIGTERM leave whole files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from singer.contracts import SAMPLE_RATE_HZ
from singer.scores.musicxml import read_musicxml
from singer.songs import song_path
from tests.measure import note_cents_errors


@pytest.mark.timeout(120)
@pytest.mark.parametrize("stop_with", [signal.SIGINT, signal.SIGTERM])
def test_demo_records_what_it_sang_and_stops_cleanly(tmp_path: Path, stop_with: int) -> None:
    record = tmp_path / "rec"
    proc = subprocess.Popen(
        [sys.executable, "-m", "stage.cli", "demo", "--headless", "--no-open", "--record",
         str(record), "--http-port", "0", "--audible-label", "off"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = None
    deadline = time.monotonic() + 60
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "serving" in line:
            started = time.monotonic()
            break
    assert started, "the demo did not start"
    time.sleep(4.0)
    proc.send_signal(stop_with)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "xruns" in out and "Traceback" not in err

    audio, rate = sf.read(record / "audio.wav", dtype="float32")
    assert rate == SAMPLE_RATE_HZ
    assert 3.0 * SAMPLE_RATE_HZ <= len(audio) <= 6.0 * SAMPLE_RATE_HZ
    # what was recorded is the demo song, in tune, from show sample 0
    score = read_musicxml(song_path("jasmine"))
    heard = [n for n in score.notes if n.t_off < len(audio)]
    errors = np.abs(note_cents_errors(audio, heard))
    assert len(errors) >= 4 and np.median(errors) <= 10.0, errors
    poses = [json.loads(line)  # (the first line is the AIGC header)
             for line in (record / "pose.jsonl").read_text().splitlines()[1:]]
    assert len(poses) >= 3.0 * 50  # about 60 per second
    assert all(len(json.dumps(p)) < 1024 for p in poses)
    singing = [p for p in poses if p["t"] > heard[0].t_on + 4800 and p["t"] < heard[0].t_off]
    assert singing and max(p["e"].get("aa", 0) for p in singing) > 0.3  # 好 opens on /a/
