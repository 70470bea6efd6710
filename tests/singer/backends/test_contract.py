"""The voice backend contract with the UTAU bank and the built-in voice: a score read from a
file is sung in tune and in time through it, streamed equals offline, live notes start at
once, the built-in adapter sings the ensemble's samples; voices are found by name or path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from singer.backends.builtin import BuiltinBackend
from singer.backends.contract import UnsupportedEditError, VoiceError
from singer.backends.discovery import (
    describe_bank,
    find_voices,
    open_backend,
    resolve_voice,
    voices_dirs,
)
from singer.backends.utau.backend import UtauBackend
from singer.contracts import SAMPLE_RATE_HZ
from singer.render import build_ensemble, render_ensemble, render_score_with
from singer.score import Score
from singer.scores.load import load_score
from tests.measure import band_energy_onset, note_cents_errors
from tests.singer.backends.scores import UTAU_SCORE, write_ust
from tests.singer.backends.utau_bank import build_bank

SR = SAMPLE_RATE_HZ


@pytest.fixture(scope="module")
def voices_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("voices")
    bank = build_bank(root / "xiaoce", "gbk")
    (bank / "readme.txt").write_bytes("小测 声库\r\n使用规约：仅限测试\r\n".encode("gbk"))
    return root


@pytest.fixture(scope="module")
def backend(voices_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> UtauBackend:
    info = resolve_voice("小测", [voices_dir])
    loaded = open_backend(info, cache_dir=tmp_path_factory.mktemp("cache"))
    assert isinstance(loaded, UtauBackend)
    loaded.warm_up()
    return loaded


@pytest.fixture(scope="module")
def score(tmp_path_factory: pytest.TempPathFactory) -> Score:
    return load_score(str(write_ust(tmp_path_factory.mktemp("score") / "utau.ust", UTAU_SCORE)))


@pytest.fixture(scope="module")
def offline(backend: UtauBackend, score: Score) -> np.ndarray:
    return render_score_with(score, [backend])


def test_score_through_the_contract_is_in_tune_and_in_time(score: Score,
                                                           offline: np.ndarray) -> None:
    notes = list(score.notes)
    errors = np.abs(note_cents_errors(offline, notes))
    assert np.median(errors) <= 10.0 and errors.max() <= 20.0, errors
    for n in notes:
        hz = 440.0 * 2 ** ((n.pitch_midi - 69) / 12)
        onset = band_energy_onset(offline, hz, n.t_on / SR)
        assert abs(onset - n.t_on / SR) <= 0.010, (n.lyric, onset, n.t_on / SR)


def test_streamed_equals_offline(backend: UtauBackend, score: Score,
                                 offline: np.ndarray) -> None:
    line = backend.open_line("lead", score.parts[0].notes)
    assert backend.ahead.mode == "streaming" and line.prepare(10 * SR) == 0
    out, t, k = [], 0, 0
    sizes = (1, 7, 160, 480, 48000, 240)
    while t < len(offline):
        n = min(sizes[k % len(sizes)], len(offline) - t)
        out.append(line.render(t, n))
        t, k = t + n, k + 1
    assert np.abs(np.concatenate(out) - offline).max() <= 1e-4


def test_live_note_starts_at_once_and_releases(backend: UtauBackend) -> None:
    line = backend.open_line("live")
    at = SR
    live = line.note_on(at, 64.0, "sa")
    assert live.sound_sample == at and live.vowel_sample > at
    held = line.render(at, int(1.5 * SR))
    audible = np.nonzero(np.abs(held) > 1e-3)[0]
    assert len(audible) and audible[0] <= 0.05 * SR  # the sample starts at once
    assert np.sqrt(np.mean(held[int(1.0 * SR):] ** 2)) > 0.01  # held past its note-on
    line.note_off(live.id, at + int(1.5 * SR))
    line.note_off(live.id, at + int(1.6 * SR))  # a second note-off changes nothing
    tail = line.render(at + int(1.5 * SR), int(0.5 * SR))
    assert np.abs(tail[int(0.1 * SR):]).max() < 1e-4
    with pytest.raises(UnsupportedEditError, match="vibrato_depth"):
        line.add_expression(at, "vibrato_depth", 2.0)


def test_builtin_adapter_sings_the_ensembles_samples(score: Score) -> None:
    ensemble = build_ensemble(score, "tenor", seed=3)
    reference = render_ensemble(ensemble)
    backend = BuiltinBackend("tenor")
    assert backend.ahead.mode == "streaming" and backend.device == "cpu"
    audio = render_score_with(score, [backend], seed=3)
    n = min(len(audio), len(reference))
    assert np.abs(audio[:n] - reference[:n]).max() <= 1e-5
    line = backend.open_line("live")
    live = line.note_on(SR, 62.0, "sa")
    assert live.vowel_sample > live.sound_sample == SR  # the consonant starts at note-on
    chunk = line.render(SR, int(0.3 * SR))
    assert np.abs(chunk[:int(0.15 * SR)]).max() > 1e-3
    line.add_expression(SR, "vibrato_depth", 0.0)  # supported: no error


def test_voices_are_found_by_name_folder_env_and_path(voices_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    bank = voices_dir / "xiaoce"
    by_path = resolve_voice(str(bank))
    assert (by_path.type, by_path.name, by_path.path) == ("utau", "小测", bank)
    assert resolve_voice("XIAOCE", [voices_dir]).path == bank  # the folder's name
    assert resolve_voice("Soprano").type == "builtin"
    info = describe_bank(bank)
    assert info.languages == ("zh",) and "_H" in info.speakers
    assert "使用规约" in info.terms and info.terms_file == bank / "readme.txt"
    monkeypatch.setenv("LIVESINGER_VOICES", str(voices_dir))
    assert resolve_voice("小测").path == bank
    monkeypatch.delenv("LIVESINGER_VOICES")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert voices_dirs()[-1] == tmp_path / "livesinger" / "voices"
    assert [v.name for v in find_voices(voices_dirs())] == ["soprano", "tenor"]
    with pytest.raises(VoiceError) as err:
        resolve_voice("小测")
    message = str(err.value)
    assert "unknown voice '小测'" in message and "soprano, tenor" in message
    assert str(tmp_path / "livesinger" / "voices") in message and "\n" not in message
