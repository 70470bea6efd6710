"""Malformed DiffSinger banks: each gets one clear error naming the file (and field/line),
and ``check_bank`` lists the problems of a folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml

from singer.backends.diffsinger import BankError, DiffSingerBank, check_bank, render_phrase
from singer.contracts import SAMPLE_RATE_HZ, Note
from tests.singer.backends.diffsinger_bank import build_bank


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bank(tmp_path_factory.mktemp("ds") / "tiny")


@pytest.fixture
def bank_dir(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "bank"))


def _edit_yaml(path: Path, **changes: object) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


def _load_error(folder: Path) -> str:
    with pytest.raises(BankError) as info:
        DiffSingerBank.load(folder, device="cpu")
    return str(info.value)


def test_pristine_bank_has_no_problems(bank_dir: Path) -> None:
    assert check_bank(bank_dir) == []


def test_wrong_onnx_input_names_are_named_both_ways(bank_dir: Path) -> None:
    model = onnx.load(str(bank_dir / "acoustic.onnx"))
    for node in model.graph.node:
        node.input[:] = ["pitch" if x == "f0" else x for x in node.input]
    for item in model.graph.input:
        if item.name == "f0":
            item.name = "pitch"
    onnx.save(model, str(bank_dir / "acoustic.onnx"))
    message = _load_error(bank_dir)
    assert "acoustic.onnx" in message
    assert "lacks input(s) f0" in message and "unexpected input(s) pitch" in message


def test_a_config_the_model_does_not_match_is_named(bank_dir: Path) -> None:
    # dsconfig says legacy speedup sampling; the model was exported with steps
    _edit_yaml(bank_dir / "dsconfig.yaml", use_continuous_acceleration=False)
    message = _load_error(bank_dir)
    assert "acoustic.onnx" in message and "speedup" in message and "steps" in message


@pytest.mark.parametrize("field,value", [("hop_size", 256), ("mel_fmax", 8000),
                                         ("num_mel_bins", 128), ("mel_scale", "htk")])
def test_mel_contract_mismatch_is_named(bank_dir: Path, field: str, value: object) -> None:
    _edit_yaml(bank_dir / "dsvocoder" / "vocoder.yaml", **{field: value})
    message = _load_error(bank_dir)
    assert "vocoder.yaml" in message and field in message
    assert any(field in p for p in check_bank(bank_dir))


def test_unknown_syllable_is_named(bank_dir: Path) -> None:
    bank = DiffSingerBank.load(bank_dir, device="cpu")
    note = Note(SAMPLE_RATE_HZ, 2 * SAMPLE_RATE_HZ, 60.0, "qiong", ("tch", "j", "u", "ng"))
    with pytest.raises(BankError) as info:
        render_phrase(bank, [note])
    assert "'qiong'" in str(info.value) and "dsdict.yaml" in str(info.value)


def test_dictionary_phoneme_missing_from_the_phoneme_list(bank_dir: Path) -> None:
    path = bank_dir / "dsdict.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["entries"].append({"grapheme": "zha", "phonemes": ["zh", "a"]})
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    bank = DiffSingerBank.load(bank_dir, device="cpu")
    with pytest.raises(BankError) as info:
        render_phrase(bank, [Note(SAMPLE_RATE_HZ, 2 * SAMPLE_RATE_HZ, 60.0, "zha", ("jh", "a"))])
    assert "phonemes.txt" in str(info.value) and "'zh'" in str(info.value)
    assert any("dsdict.yaml (entries: zha)" in p for p in check_bank(bank_dir))


@pytest.mark.parametrize("remove", ["acoustic.onnx", "phonemes.txt", "dsvocoder"])
def test_missing_files_are_named(bank_dir: Path, remove: str) -> None:
    target = bank_dir / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    message = _load_error(bank_dir)
    assert (remove in message) or (remove == "dsvocoder" and "vocoder 'tiny_tone' not found"
                                   in message and "dsconfig.yaml" in message)
    assert check_bank(bank_dir)


def test_malformed_files_name_line_or_field(bank_dir: Path) -> None:
    (bank_dir / "dsconfig.yaml").write_text("acoustic: acoustic.onnx\nvocoder: [unclosed\n",
                                            encoding="utf-8")
    message = _load_error(bank_dir)
    assert "dsconfig.yaml" in message and "line" in message


def test_phoneme_list_without_pad_first(bank_dir: Path) -> None:
    path = bank_dir / "phonemes.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[1:] + lines[:1]) + "\n", encoding="utf-8")
    message = _load_error(bank_dir)
    assert "phonemes.txt" in message and "<PAD>" in message and "line 1" in message


def test_speaker_embedding_of_the_wrong_size(pristine: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(pristine, tmp_path / "spk"))
    _edit_yaml(folder / "dsconfig.yaml", speakers=["alto"])
    np.zeros(3, "<f4").tofile(folder / "alto.emb")
    message = _load_error(folder)
    assert "alto.emb" in message and "hidden_size" in message


def test_variance_switch_without_a_variance_model(bank_dir: Path) -> None:
    _edit_yaml(bank_dir / "dsconfig.yaml", use_energy_embed=True)
    message = _load_error(bank_dir)
    assert "dsconfig.yaml" in message and "dsvariance" in message
