"""Singing with a UTAU bank recorded from the built-in voice: in tune, in time, chunked
equals whole, analysis cached on disk, live notes held and released."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from singer.backends.utau import SampleAnalyser, UtauBank, UtauLine
from singer.contracts import SAMPLE_RATE_HZ, Note
from tests.measure import band_energy_onset, f0_track, note_cents_errors
from tests.singer.backends.utau_bank import build_bank

SR = SAMPLE_RATE_HZ


def note(start_s: float, length_s: float, midi: float, lyric: str) -> Note:
    return Note(int(start_s * SR), int((start_s + length_s) * SR), midi, lyric, (lyric,))


SCORE = [note(0.5, 0.5, 62, "撒"), note(1.0, 0.5, 64, "fa"), note(1.5, 0.5, 65, "八"),
         note(2.0, 0.6, 67, "sa"), note(3.2, 0.5, 60, "发"), note(3.7, 0.7, 62, "啊")]
END = int(4.9 * SR)


@pytest.fixture(scope="module")
def banks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("utau")
    return {"gbk": build_bank(root / "gbk", "gbk"),
            "shift_jis": build_bank(root / "sjis", "shift_jis", declare="line",
                                    negative_cutoff=False),
            "cache": root / "cache"}


@pytest.fixture(scope="module")
def sung(banks: dict[str, Path]) -> tuple[UtauLine, np.ndarray]:
    line = UtauLine(UtauBank.load(banks["gbk"]), SCORE, cache_dir=banks["cache"])
    return line, line.render(0, END)


def test_score_in_tune_and_in_time(sung: tuple[UtauLine, np.ndarray]) -> None:
    line, audio = sung
    aliases = [u.entry.alias for u in line.units]
    assert aliases == ["sa", "a f", "fa", "a b", "ba", "a s", "sa_H", "a R", "fa", "a", "a R"]
    errors = np.abs(note_cents_errors(audio, SCORE))
    assert np.median(errors) <= 10.0 and errors.max() <= 20.0, errors
    for n in SCORE:
        hz = 440.0 * 2 ** ((n.pitch_midi - 69) / 12)
        onset = band_energy_onset(audio, hz, n.t_on / SR)
        assert abs(onset - n.t_on / SR) <= 0.010, (n.lyric, onset, n.t_on / SR)


def test_chunked_equals_whole(sung: tuple[UtauLine, np.ndarray], banks: dict[str, Path]) -> None:
    _, whole = sung
    fresh = UtauLine(UtauBank.load(banks["gbk"]), SCORE, cache_dir=banks["cache"])
    for sizes in ((1, 7, 160, 480, 48000), (4800, 13, 2400, 961)):
        out, t, k = [], 0, 0
        while t < END:
            n = min(sizes[k % len(sizes)], END - t)
            out.append(fresh.render(t, n))
            t, k = t + n, k + 1
        assert np.abs(np.concatenate(out) - whole).max() <= 1e-4


def test_other_charset_same_voice_and_analysis_from_disk(
        sung: tuple[UtauLine, np.ndarray], banks: dict[str, Path]) -> None:
    _, whole = sung
    analyser = SampleAnalyser(banks["cache"])
    line = UtauLine(UtauBank.load(banks["shift_jis"]), SCORE, analyser=analyser)
    audio = line.render(0, END)
    assert analyser.analysed == 0  # same samples (by content): nothing analysed again
    assert len(list(banks["cache"].glob("*.npz"))) == len({u.entry.wav for u in line.units})
    assert np.abs(audio - whole).max() <= 1e-3  # positive cutoffs put the same regions


def test_live_note_starts_at_once_sustains_and_releases(banks: dict[str, Path]) -> None:
    line = UtauLine(UtauBank.load(banks["gbk"]), cache_dir=banks["cache"])
    start = SR
    live = line.note_on(start, 64.0, "sa")
    assert live.held and live.note.t_on > start
    lead = line.render(start, live.note.t_on - start)
    audible = np.nonzero(np.abs(lead) > 1e-3)[0]
    # the sample starts at once: its consonant (after the 40 ms of silence its oto keeps)
    assert len(audible) and audible[0] <= 0.05 * SR
    held = np.concatenate([line.render(start + k * 480, 480) for k in range(int(2.5 * 100))])
    done = line.note_off(live.id, start + int(2.5 * SR))
    tail = line.render(start + int(2.5 * SR), int(0.5 * SR))
    rms = [float(np.sqrt(np.mean(held[int(a * SR):int(b * SR)] ** 2)))
           for a, b in ((0.4, 0.9), (1.6, 2.4))]
    assert 0.5 < rms[1] / rms[0] < 2.0, rms  # sustained past the 1 s the sample holds
    times, f0 = f0_track(held, 150, 500)
    body = f0[(times > 1.2) & (times < 2.4)]
    assert abs(1200 * np.log2(np.median(body[body > 0]) / 329.63)) <= 10.0  # vibrato averages
    assert not done.held
    assert np.abs(tail[int(0.1 * SR):]).max() < 1e-4  # released: silent after the fade
