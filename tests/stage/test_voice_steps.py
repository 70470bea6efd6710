"""``--voice-steps N``: a DiffSinger voice's diffusion steps chosen by the show (``serve``,
``render``), carried by the bank's reference to whoever renders; a bad count is one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from singer.backends.diffsinger.backend import DiffSingerBackend
from singer.backends.diffsinger.render import acceleration
from singer.backends.discovery import describe_bank
from singer.backends.live import BankRef, open_bank
from singer.contracts import SAMPLE_RATE_HZ
from singer.scores.load import load_score
from stage.cli import main
from tests.measure import note_cents_errors
from tests.singer.backends.diffsinger_bank import build_bank
from tests.singer.backends.scores import DIFFSINGER_SCORE, write_ust


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bank(tmp_path_factory.mktemp("voices") / "tiny")


def test_the_steps_travel_with_the_bank_reference(bank: Path) -> None:
    ref = BankRef.of(describe_bank(bank), steps=3)
    backend = open_bank(ref)
    assert isinstance(backend, DiffSingerBackend)
    assert backend.settings.steps == 3
    assert acceleration(backend.bank, backend.settings) == {"steps": 3}  # the model's input
    default = open_bank(BankRef.of(describe_bank(bank)))
    assert isinstance(default, DiffSingerBackend) and default.settings.steps == 20


def test_render_with_voice_steps_sings_and_a_bad_count_is_one_line(
        bank: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ust = write_ust(tmp_path / "song.ust", DIFFSINGER_SCORE)
    out = tmp_path / "out.wav"
    assert main(["render", str(ust), "-o", str(out), "--voice", str(bank), "--voice-steps",
                 "4", "--no-watermark", "--no-audible-label"]) == 0
    audio, rate = sf.read(out, dtype="float32")
    assert rate == SAMPLE_RATE_HZ
    errors = np.abs(note_cents_errors(audio, list(load_score(str(ust)).notes)))
    assert np.median(errors) <= 10.0, errors
    capsys.readouterr()
    for bad in ("0", "many", "1001"):
        with pytest.raises(SystemExit) as exit_:
            main(["render", str(ust), "-o", str(tmp_path / "x.wav"), "--voice", str(bank),
                  "--voice-steps", bad])
        assert exit_.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert "--voice-steps" in err and f"{bad!r} is not a step count" in err
        with pytest.raises(SystemExit):
            main(["serve", "--headless", "--voice-steps", bad])
        assert "--voice-steps" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()
