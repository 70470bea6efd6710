"""A singer's voice that raises mid-phrase: the line sings on in the built-in voice in that very
chunk, the ensemble says so once and counts it, and nothing else in the chunk changes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from singer.backends.live import BankRef
from singer.contracts import SAMPLE_RATE_HZ
from tests.singer.helpers import ensemble_for, line

SR = SAMPLE_RATE_HZ
CHUNK = 240
NOTES = line([(0.0, 1.0, 62, ("a",))])


def render(ensemble: object, start: int, stop: int) -> np.ndarray:
    return np.concatenate([ensemble.render_mix_samples(t, CHUNK)  # type: ignore[attr-defined]
                           for t in range(start, stop, CHUNK)])


def test_a_bank_that_fails_mid_phrase_is_sung_on_by_the_built_in_voice(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    reference = render(ensemble_for(NOTES), 0, SR // 2)
    live = ensemble_for(NOTES)
    played = render(live, 0, SR // 4)  # a quarter of a second into the note...
    # ... its bank goes away (a drive unplugged): opening it raises at its first render
    switch = live.lines[0].set_bank(BankRef("utau", str(tmp_path / "gone"), "gone"), SR // 4)
    assert switch == SR // 4
    with caplog.at_level(logging.WARNING, logger="singer.ensemble"):
        rest = render(live, SR // 4, SR // 2)
    sung = np.concatenate([played, rest])
    np.testing.assert_allclose(sung, reference, atol=1e-6)  # the line went on, no gap
    assert 20 * np.log10(np.sqrt(np.mean(rest ** 2))) > -40.0  # sung, not silence
    assert live.voice_fallbacks == (SR // 2 - SR // 4) // CHUNK  # every chunk since, carried
    said = [r.getMessage() for r in caplog.records if "built-in voice sings on" in r.getMessage()]
    assert len(said) == 1 and "'lead'" in said[0] and f"sample {SR // 4}" in said[0]


def test_an_injected_voice_fault_is_carried_on_for_its_renders_then_the_voice_returns(
        caplog: pytest.LogCaptureFixture) -> None:
    reference = render(ensemble_for(NOTES), 0, 40 * CHUNK)
    live = ensemble_for(NOTES)
    first = render(live, 0, 20 * CHUNK)
    live.fail_voice("lead", 3)
    with caplog.at_level(logging.WARNING, logger="singer.ensemble"):
        rest = render(live, 20 * CHUNK, 40 * CHUNK)
    np.testing.assert_allclose(np.concatenate([first, rest]), reference, atol=1e-6)
    assert live.voice_fallbacks == 3
    messages = [r.getMessage() for r in caplog.records]
    assert sum("built-in voice sings on" in m for m in messages) == 1
    assert any(f"sings again from show sample {23 * CHUNK}" in m for m in messages)
