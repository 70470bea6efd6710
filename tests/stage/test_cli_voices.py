"""``livesinger voices``, ``voice check`` and ``render --voice NAME|PATH --voices DIR``: banks
listed with their facts, every problem of a bank named with file and line (exit 2), a score
rendered with a bank in tune, unknown voices answered with one line listing what exists."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from singer.contracts import SAMPLE_RATE_HZ
from singer.scores.load import load_score
from stage.cli import main
from tests.measure import note_cents_errors
from tests.singer.backends.diffsinger_bank import BankSpec
from tests.singer.backends.diffsinger_bank import build_bank as build_ds_bank
from tests.singer.backends.scores import DIFFSINGER_SCORE, UTAU_SCORE, write_ust
from tests.singer.backends.utau_bank import build_bank as build_utau_bank


@pytest.fixture(scope="module")
def voices_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("voices")
    utau = build_utau_bank(root / "xiaoce", "gbk")
    (utau / "readme.txt").write_bytes("小测 声库\r\n使用规约：仅限测试\r\n".encode("gbk"))
    ds = build_ds_bank(root / "tiny", BankSpec(speakers=("alto", "soft")))
    (ds / "LICENSE.txt").write_text("CC BY-NC 4.0\n", encoding="utf-8")
    return root


def _lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def test_voices_lists_builtin_and_banks_with_their_facts(
        voices_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["voices", "--voices", str(voices_dir), "--json"]) == 0
    rows = {r["name"]: r for r in map(json.loads, _lines(capsys.readouterr().out))}
    assert {"soprano", "tenor", "小测", "Tiny Test Singer"} <= set(rows)
    utau, ds = rows["小测"], rows["Tiny Test Singer"]
    assert (utau["type"], utau["languages"], utau["path"]) == ("utau", ["zh"],
                                                               str(voices_dir / "xiaoce"))
    assert "使用规约：仅限测试" in utau["terms"]
    assert (ds["type"], ds["speakers"], ds["terms"]) == ("diffsinger", ["alto", "soft"],
                                                          "CC BY-NC 4.0")
    assert main(["voices", "--voices", str(voices_dir)]) == 0
    text = capsys.readouterr().out
    assert "小测" in text and "utau" in text and "terms: CC BY-NC 4.0" in text


def test_voice_check_names_every_problem_with_file_and_line(
        voices_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["voice", "check", str(voices_dir / "xiaoce")]) == 0
    assert "ok (utau bank '小测'" in capsys.readouterr().out
    broken = Path(shutil.copytree(voices_dir / "xiaoce", tmp_path / "broken"))
    oto = broken / "oto.ini"
    lines = oto.read_bytes().decode("gbk").splitlines()
    lines[1] = lines[1].replace(",", ",x", 1)  # a bad number on line 2
    lines[3] = lines[3].rsplit(",", 3)[0] + ",-1,5,oops,1"  # and another on line 4
    oto.write_bytes("\r\n".join(lines).encode("gbk"))
    assert main(["voice", "check", str(broken)]) == 2
    out = _lines(capsys.readouterr().out)
    assert len(out) == 2, out
    assert out[0].startswith(f"{oto}:2: ") and out[1].startswith(f"{oto}:4: "), out
    ds = Path(shutil.copytree(voices_dir / "tiny", tmp_path / "ds"))
    (ds / "dsconfig.yaml").write_text((ds / "dsconfig.yaml").read_text(encoding="utf-8")
                                      .replace("hop_size: 512", "hop_size: 256"),
                                      encoding="utf-8")
    assert main(["voice", "check", str(ds)]) == 2
    (problem,) = _lines(capsys.readouterr().out)
    assert "vocoder.yaml" in problem and "hop" in problem
    assert main(["voice", "check", str(tmp_path)]) == 2
    assert "not a voicebank" in capsys.readouterr().out


@pytest.mark.parametrize("voice, entries", [("小测", UTAU_SCORE),
                                            ("tiny", DIFFSINGER_SCORE)], ids=["utau", "diffsinger"])
def test_render_with_a_bank_is_in_tune(voices_dir: Path, tmp_path: Path, voice: str,
                                       entries: list[tuple[str, int, int]]) -> None:
    ust = write_ust(tmp_path / "song.ust", entries)
    out = tmp_path / "out.wav"
    assert main(["render", str(ust), "-o", str(out), "--voice", voice, "--voices",
                 str(voices_dir), "--no-watermark", "--no-audible-label"]) == 0
    audio, rate = sf.read(out, dtype="float32")
    assert rate == SAMPLE_RATE_HZ
    notes = list(load_score(str(ust)).notes)
    errors = np.abs(note_cents_errors(audio, notes))
    assert np.median(errors) <= 10.0, errors


def test_unknown_voices_and_banks_on_the_live_show_get_one_line(
        voices_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ust = write_ust(tmp_path / "song.ust", UTAU_SCORE)
    assert main(["render", str(ust), "-o", str(tmp_path / "x.wav"), "--voice", "nobody",
                 "--voices", str(voices_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown voice 'nobody'" in err and "小测 (utau)" in err
    assert "Tiny Test Singer (diffsinger)" in err and "\n" not in err
    assert main(["render", str(ust), "-o", str(tmp_path / "x.wav"), "--voice",
                 str(tmp_path / "missing" / "bank")]) == 2
    assert "no voicebank folder" in capsys.readouterr().err
    assert main(["serve", "--headless", "--voice", "nobody", "--voices", str(voices_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown voice 'nobody'" in err and "小测 (utau)" in err and "\n" not in err
    assert not (tmp_path / "x.wav").exists()
