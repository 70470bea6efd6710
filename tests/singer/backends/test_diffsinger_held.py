"""Held live notes of a DiffSinger line as the live show plays them (``queue_note_on`` /
``queue_note_off``, the work done by ``prepare`` in a worker, ``render`` only mixing): a note
ready after its sample was played starts at the first chunk after it, nothing before; a
release that lands under segments rendered further ahead joins in phase; the show's copy of a
line carries held notes as edits and leaves them out of the phrases."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from singer.backends.diffsinger.backend import DiffSingerBackend, DiffSingerLine
from singer.backends.discovery import open_backend, resolve_voice
from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.ensemble import HeldNote, LineEdit, SingerLine
from singer.voices import get_voice
from tests.measure import note_cents_errors
from tests.singer.backends.diffsinger_bank import build_bank

SR = SAMPLE_RATE_HZ
CHUNK = 240


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> DiffSingerBackend:
    folder = build_bank(tmp_path_factory.mktemp("voices") / "tiny")
    loaded = open_backend(resolve_voice(str(folder)), device="cpu")
    assert isinstance(loaded, DiffSingerBackend)
    loaded.warm_up()
    return loaded


def _play(line: DiffSingerLine, start: int, end: int) -> np.ndarray:
    return np.concatenate([line.render(t, CHUNK) for t in range(start, end, CHUNK)])


def test_a_note_ready_late_starts_at_the_first_chunk_after_it(backend: DiffSingerBackend
                                                              ) -> None:
    line = backend.open_line("live")
    reports: list[tuple[int, str, int | None]] = []
    line.live_listener = lambda *report: reports.append(report)
    at = SR // 2
    note = line.queue_note_on(at, 64.0, "la")
    assert line.has_queued
    # the render loop plays past the note's sample before the worker gets to it: nothing of
    # the note is heard (render never renders a queued note itself)
    early = _play(line, 0, at + 20 * CHUNK)
    assert np.abs(early).max() == 0.0
    assert not line.wait_ready(at, at + CHUNK, 0.0)  # not ready: the render loop does not wait
    assert line.wait_ready(at + CHUNK, at + 2 * CHUNK, 0.0)  # later chunks never wait for it
    # told late once, before its sample was rendered (the show's mouth must hear of it
    # before it opens), then where it sounds once ready
    assert reports == [(note, "on", None)]
    assert line.prepare(at + 4 * SR) >= 1
    assert not line.has_queued and line.wait_ready(at, at + CHUNK, 0.0)
    start = at + 20 * CHUNK  # the first chunk after it was ready
    assert reports[1:] == [(note, "on", start)]
    held = _play(line, start, start + int(1.6 * SR))
    assert np.abs(held[:2]).max() < 0.01  # faded in from the cut, no step
    loud = np.nonzero(np.abs(held) > 1e-3)[0]
    assert len(loud) and loud[0] < CHUNK  # it starts right there, not its lead-in later
    line.queue_note_off(note, start + int(1.6 * SR))
    line.prepare(start + 6 * SR)
    # asked at the end of what was played: its release (which starts a crossfade before the
    # note-off) is late, moved as a whole, and the report says where the vowel now ends
    off = start + int(1.6 * SR)
    assert [r[:2] for r in reports[2:]] == [(note, "off")]
    assert off < reports[2][2] <= off + int(0.1 * SR), reports  # type: ignore[operator]
    assert line.live_latency_samples > 0  # the waits measured (and the warm-up's seed)
    audio = np.concatenate([np.zeros(start, np.float32), held,
                            _play(line, start + int(1.6 * SR), start + int(2.2 * SR))])
    errors = note_cents_errors(audio, [Note(start + SR // 10, start + int(1.5 * SR), 64.0, "la",
                                            ("a",))])
    assert abs(errors[0]) <= 10.0, errors
    assert np.abs(audio[start + int(2.0 * SR):]).max() < 1e-3  # released


def test_a_release_under_segments_rendered_ahead_joins_in_phase(backend: DiffSingerBackend
                                                                ) -> None:
    # the worker extends a held note up to 1.5 s past what was played, so a note-off lands
    # under segments rendered ahead: the release must fade from the one sounding there
    line = backend.open_line("live")
    at = SR // 2
    note = line.queue_note_on(at, 67.0, "la")
    line.prepare(at + 2 * SR)
    played = at + int(0.8 * SR)
    body = _play(line, 0, played)
    line.prepare(at + 2 * SR)  # held: segments rendered ahead of what was played
    off = at + int(0.9 * SR)  # inside the first continuation, under the next one's start
    line.queue_note_off(note, off)
    line.prepare(at + 2 * SR)
    audio = np.concatenate([body, _play(line, played, at + 2 * SR)])
    env = np.sqrt(np.convolve(audio.astype(np.float64) ** 2, np.ones(480) / 480, "same"))
    steady = float(np.median(env[at + SR // 2:played]))
    # through the crossfade into the release (the 80 ms before the note-off) no dip: the
    # two are in phase (out of phase they cancel: measured 0.43..0.62 of the body before)
    join = env[off - int(0.085 * SR):off - 240]
    assert join.min() > 0.75 * steady, (join.min(), steady)


def test_held_notes_travel_as_edits_and_stay_out_of_the_phrases() -> None:
    line = SingerLine("lead", get_voice("soprano"))
    edits: list[LineEdit] = []
    line.listener = edits.append
    open_note = Note(12_000, 12_000 + 600 * SR, 64.0, "la", ("l", "a"))
    song = Note(4 * SR, 5 * SR, 60.0, "ba", ("b", "a"))
    line.held_note_on(HeldNote(1, 11_000, 64.0, "la", 0.8, open_note.t_on))
    line.set_notes([open_note, song], 11_000)
    line.held_note_off(1, 30_000)
    line.held_note_off(1, 40_000)  # a second note-off changes nothing
    line.set_notes([replace(open_note, t_off=30_000), song], 30_000)  # as the director closes it
    assert [e.op for e in edits] == ["held_on", "set_notes", "held_off", "set_notes"]
    copy = SingerLine("lead", get_voice("soprano"))
    for edit in edits:
        copy.apply(edit)
    assert copy.held_notes == line.held_notes
    assert copy.held_notes[0].off_sample == 30_000
    assert copy.notes_without_held() == [song]  # the open note is not a phrase to render
    assert SingerLine.from_state(line.state()).held_notes == line.held_notes
    line.fold_before(40_000)  # released, its note over: folded away with it
    assert line.held_notes == () and line.notes == [song]


def test_the_live_latency_is_a_high_percentile_of_the_waits_seeded_at_warm_up() -> None:
    from singer.backends.segment_latency import MARGIN_S, WINDOW, SegmentLatency

    latency = SegmentLatency()
    assert latency.expected_s == 0.0  # nothing known: no delay
    latency.seed(0.1)  # the warm-up's render, doubled, until a few waits are measured
    assert latency.expected_s == pytest.approx(0.2 + MARGIN_S)
    latency.record(0.05)
    assert latency.expected_s == pytest.approx(0.2 + MARGIN_S)
    for k in range(WINDOW):
        latency.record(0.3 if k == 0 else 0.04 + 0.001 * k)
    # one slow wait in the window is above the 95th percentile; the window's top is not
    assert latency.expected_s == pytest.approx(0.04 + 0.001 * (WINDOW - 1) + MARGIN_S)
    assert latency.expected_samples == round(latency.expected_s * SR)
