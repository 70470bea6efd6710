"""The AIGC implicit label: JSON in the standard's order, RIFF chunk in WAV, the CLI."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from singer.provenance.aigc import AigcLabel, LabelError, read_wav_label, write_wav_label
from stage.cli import main

ORDER = ["Label", "ContentProducer", "ProduceID", "ReservedCode1", "ContentPropagator",
         "PropagateID", "ReservedCode2"]


def test_fields_and_json_keep_the_standards_order() -> None:
    label = AigcLabel.new("studio-x")
    assert [f.name for f in fields(AigcLabel)] == ORDER
    assert list(json.loads(label.to_json())["AIGC"]) == ORDER
    assert AigcLabel.from_json(label.to_json()) == label
    assert label.ContentPropagator == "studio-x" and label.PropagateID == label.ProduceID
    assert AigcLabel.new().ProduceID != AigcLabel.new().ProduceID


@pytest.mark.parametrize(("text", "message"), [
    ('{"AIGC": {"Label": "1"}}', "lacks field(s) ContentProducer"),
    ("not json", "not JSON"),
    ('{"AIGC": {"Label": "9", "ContentProducer": "a", "ProduceID": "b", "ReservedCode1": "",'
     ' "ContentPropagator": "a", "PropagateID": "b", "ReservedCode2": ""}}', "Label must be"),
    ('{"AIGC": {"ContentProducer": "a", "Label": "1", "ProduceID": "b", "ReservedCode1": "",'
     ' "ContentPropagator": "a", "PropagateID": "b", "ReservedCode2": ""}}', "out of order"),
])
def test_bad_labels_are_named(text: str, message: str) -> None:
    with pytest.raises(LabelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AigcLabel.from_json(text)


@pytest.mark.parametrize("samples", [1000, 1001])  # odd sizes need RIFF padding
def test_wav_chunk_round_trips_and_audio_stays_readable(tmp_path: Path, samples: int) -> None:
    path = tmp_path / "a.wav"
    audio = np.linspace(-0.5, 0.5, samples, dtype=np.float32)
    sf.write(path, audio, 48_000, subtype="FLOAT")
    assert read_wav_label(path) is None
    label = AigcLabel.new("演出公司")
    write_wav_label(path, label)
    write_wav_label(path, label)  # replaced, not duplicated
    data = path.read_bytes()
    assert data.count(b'{"AIGC"') == 1
    assert int.from_bytes(data[4:8], "little") == len(data) - 8
    assert read_wav_label(path) == label
    back, rate = sf.read(path, dtype="float32")
    assert rate == 48_000 and np.array_equal(back, audio)


def test_label_check_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(100, np.float32), 48_000)
    assert main(["label", "check", str(path)]) == 1
    assert "no AIGC label" in capsys.readouterr().out
    label = AigcLabel.new()
    write_wav_label(path, label)
    assert main(["label", "check", str(path), "--json"]) == 0
    assert AigcLabel.from_json(capsys.readouterr().out) == label
    (tmp_path / "x.wav").write_bytes(b"hello")
    assert main(["label", "check", str(tmp_path / "x.wav")]) == 2
    assert "not a RIFF/WAVE file" in capsys.readouterr().err
