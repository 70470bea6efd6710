"""The voice backend contract with the tiny DiffSinger bank: a score read from a file sung in
tune and in time, phrase-ahead work done by ``prepare`` (``render`` then only mixes), a real
join between two phrases whose voiced audio overlaps without a click, live notes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from singer.backends.diffsinger.backend import DiffSingerBackend, DiffSingerLine
from singer.backends.discovery import open_backend, resolve_voice
from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.render import render_score_with
from singer.scores.load import load_score
from tests.measure import band_energy_onset, note_cents_errors
from tests.singer.backends.diffsinger_bank import build_bank
from tests.singer.backends.scores import DIFFSINGER_SCORE, write_ust

SR = SAMPLE_RATE_HZ


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> DiffSingerBackend:
    folder = build_bank(tmp_path_factory.mktemp("voices") / "tiny")
    info = resolve_voice(str(folder))
    assert (info.type, info.name, info.languages) == ("diffsinger", "Tiny Test Singer", ("zh",))
    loaded = open_backend(info, device="cpu")
    assert isinstance(loaded, DiffSingerBackend)
    loaded.warm_up()
    return loaded


def _jump(audio: np.ndarray) -> np.ndarray:
    """Sample-to-sample second difference: a click is a spike in it."""
    return np.abs(np.diff(audio.astype(np.float64), 2))


def test_score_through_the_contract_is_in_tune_and_in_time(backend: DiffSingerBackend,
                                                           tmp_path: Path) -> None:
    score = load_score(str(write_ust(tmp_path / "ds.ust", DIFFSINGER_SCORE)))
    assert backend.ahead.mode == "phrase_ahead" and backend.ahead.lookahead_samples > 0
    audio = render_score_with(score, [backend])
    notes = list(score.notes)
    errors = np.abs(note_cents_errors(audio, notes))
    assert len(errors) == len(notes)
    assert np.median(errors) <= 10.0 and errors.max() <= 25.0, errors
    # in time: each phrase's first vowel lands on its note (±10 ms)
    for k, n in enumerate(notes):
        if k and notes[k - 1].t_off >= n.t_on:
            continue  # inside a phrase the previous vowel is in the same band
        hz = 440.0 * 2 ** ((n.pitch_midi - 69) / 12)
        onset = band_energy_onset(audio, hz, n.t_on / SR)
        assert abs(onset - n.t_on / SR) <= 0.010, (n.lyric, onset, n.t_on / SR)


def _envelope(audio: np.ndarray, frame: int = 240) -> np.ndarray:
    """RMS per 5 ms frame."""
    return np.sqrt(np.mean(audio[:len(audio) // frame * frame].reshape(-1, frame) ** 2, axis=1))


def _note(on_s: float, off_s: float, midi: float, lyric: str, phonemes: tuple[str, ...]
          ) -> Note:
    return Note(int(on_s * SR), int(off_s * SR), midi, lyric, phonemes)


def test_prepare_renders_ahead_and_a_voiced_join_is_click_free(backend: DiffSingerBackend
                                                               ) -> None:
    # two phrases 5 ms apart: the second's lead-in and consonant overlap the first's vowel,
    # so the crossfade is between two voiced phrases, not across silence
    notes = [_note(0.5, 1.0, 60, "ma", ("m", "a")), _note(1.0, 1.5, 62, "la", ("l", "a")),
             _note(1.505, 2.0, 64, "ni", ("n", "i")), _note(2.0, 2.5, 62, "a", ("a",))]
    line = backend.open_line("lead", notes)
    assert isinstance(line, DiffSingerLine)
    assert line.prepare(3 * SR) == 2
    rendered = line.track.render_all()
    renders = line.renderer.renders
    chunks = [line.render(t, 480) for t in range(0, line.end_sample, 480)]
    assert line.renderer.renders == renders  # render only mixed what prepare made
    audio = np.concatenate(chunks)
    first, second = rendered
    lo, hi = second.start, first.end
    assert hi - lo > 0.1 * SR  # they overlap
    level = np.sqrt(np.mean(first.samples[lo - first.start - 2400:lo - first.start] ** 2))
    assert level > 0.05  # the first phrase is still singing where the second comes in
    jump = _jump(audio)
    body = np.percentile(jump[int(0.7 * SR):int(2.3 * SR)], 99.9)
    assert jump[lo - 480:hi + 480].max() <= 1.5 * body, (jump[lo - 480:hi + 480].max(), body)
    # no hole at the join: nothing quieter than the same notes sung as one phrase (whose
    # softest part is the /n/ the join falls on)
    touching = [*notes[:2], _note(1.5, 2.0, 64, "ni", ("n", "i")), notes[3]]
    one = backend.open_line("one", touching)
    assert len(one.track.phrases) == 1
    reference = one.render(0, len(audio))
    voiced, ref = (_envelope(x)[int(0.7 * SR) // 240:int(2.3 * SR) // 240]
                   for x in (audio, reference))
    assert voiced.min() >= 0.8 * ref.min(), (voiced.min(), ref.min())
    errors = note_cents_errors(audio, notes)
    assert np.median(np.abs(errors)) <= 10.0, errors


def test_live_note_through_the_contract(backend: DiffSingerBackend) -> None:
    line = backend.open_line("live")
    on = int(0.3 * SR)
    live = line.note_on(on, 64.0, "la")
    assert live.sound_sample == on and live.vowel_sample > on
    assert line.prepare(int(1.8 * SR)) >= 1  # held: continuation segments rendered ahead
    off = int(2.0 * SR)
    line.note_off(live.id, off)
    line.note_off(live.id, off + SR)  # a second note-off changes nothing
    audio = line.render(0, int(2.6 * SR))
    held = Note(live.vowel_sample, off, 64.0, "la", ("l", "a"))
    assert abs(note_cents_errors(audio, [held])[0]) <= 10.0
    assert np.abs(audio[off + int(0.25 * SR):]).max() < 1e-3  # released
    line.forget_before(3 * SR)
    assert line.end_sample == 0
