"""Singers and a long show's state: cues cannot add singers without bound, a singer joining
mid-show does not click the others, and what a show keeps does not grow with its length
(real pacer, real voice)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
import pytest

from singer.contracts import SAMPLE_RATE_HZ
from singer.ensemble import Ensemble, SingerLine
from singer.performer import EXPRESSION_GLIDE_S
from singer.synth import HarmonicNoiseSynth
from singer.voices import get_voice
from stage.director import LEAD, MAX_SINGERS
from streams.cue import CueError
from tests.measure import f0_track, xrun_budget
from tests.stage.test_director import Show

SR = SAMPLE_RATE_HZ
CHUNK = 240


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


async def test_a_singer_joining_mid_note_leaves_the_lead_unbroken(
        keep_audio: Callable[[str, np.ndarray], None]) -> None:
    async with Show(lookahead_chunks=8) as show:
        on_at = (await show.cue("note.on", pitch=62, velocity=0.8, syllable="a"))["at_sample"]  # type: ignore[index]
        open_note = show.director.line(LEAD).notes
        await asyncio.sleep(0.5)
        # a cue names a new singer: it joins (silent), and the edit re-renders the lookahead
        joined = (await show.cue("expr", singer="alto", name="volume", value=0.9))["at_sample"]  # type: ignore[index]
        await asyncio.sleep(0.3)
        await show.cue("voice", singer="alto", name="tenor")  # another re-render
        await asyncio.sleep(0.3)
        off_at = (await show.cue("note.off", pitch=62))["at_sample"]  # type: ignore[index]
        closed_note = show.director.line(LEAD).notes
        await asyncio.sleep(0.3)
    streamed = show.audio()
    keep_audio("streamed", streamed)
    # the lead alone, its two edits replayed offline at their samples, in the same chunks:
    # what the show should have played (phase is carried, so the silence before the note
    # counts: it is replayed as it was sung, without the note)
    replay = Ensemble(HarmonicNoiseSynth(device="cpu"), [SingerLine(LEAD, get_voice("soprano"))])

    def play(start: int, stop: int) -> list[np.ndarray]:
        return [replay.render_mix_samples(t, CHUNK) for t in range(start, stop, CHUNK)]
    parts = play(0, on_at)
    replay.lines[0].set_notes(open_note, changed_from=on_at)
    parts += play(on_at, off_at)
    replay.lines[0].set_notes(closed_note, changed_from=off_at)
    parts += play(off_at, len(streamed))
    reference = np.concatenate(parts)
    keep_audio("replayed", reference)
    assert on_at < joined < off_at  # mid-note
    assert show.pacer.xruns <= xrun_budget(show.pacer.chunks_played)
    # no step at the join: the sample-to-sample change there is no larger than anywhere in
    # the sustained vowel before it (a restarted oscillator jumps by up to twice its level)
    steps = np.abs(np.diff(streamed))
    before = steps[joined - int(0.1 * SR):joined - 2 * CHUNK].max()
    assert steps[joined - 4:joined + 4].max() <= 1.2 * before, (joined, before)
    if show.pacer.xruns == 0:
        # and, when no chunk came late (an xrun skips audio, so the phase moves on from
        # there), every chunk is the replay's, through the join and on (a late edit plays
        # the superseded chunk and crossfades the next: two chunks excused each)
        differs = [t for t in range(0, len(streamed), CHUNK)
                   if np.abs(streamed[t:t + CHUNK] - reference[t:t + CHUNK]).max() > 1e-4]
        assert len(differs) <= 2 * show.pacer.late_edits, (differs[:5], joined)


async def test_the_singer_past_the_cap_is_refused_and_the_show_sings_on() -> None:
    async with Show() as show:
        await show.cue("note.on", pitch=64, velocity=0.8, syllable="a")
        for k in range(1, MAX_SINGERS):
            await show.cue("expr", singer=f"s{k}", name="volume", value=1.0)
        for kind, args in (("expr", {"name": "volume", "value": 1.0}),
                           ("note.on", {"pitch": 60.0, "velocity": 0.8, "syllable": "a"}),
                           ("lyric", {"text": "la"})):
            with pytest.raises(CueError) as err:
                await show.cue(kind, singer="extra", **args)
            assert str(err.value) == (
                f"asked for new singer(s) 'extra', but the show holds at most {MAX_SINGERS} "
                f"singers (singers: lead, {', '.join(f's{k}' for k in range(1, MAX_SINGERS))})")
        refused_at = show.pacer.playout_sample
        await asyncio.sleep(0.4)
        status = show.director.status()
        await show.cue("note.off", pitch=64)
    assert len(status["singers"]) == MAX_SINGERS  # type: ignore[arg-type]
    assert status["singing"] == [{"singer": LEAD, "pitch": 64.0, "lyric": "a"}]
    # the lead sang on through the refusals
    assert rms(show.audio()[refused_at:refused_at + int(0.3 * SR)]) > 0.02


async def test_thousands_of_cues_leave_the_show_state_bounded_and_sung_right() -> None:
    async with Show(lookahead_chunks=4) as show:
        director = show.director
        line = director.line(LEAD)
        sent = 0
        for k in range(1500):  # a fader and a keyboard for ~4 s of show
            await show.cue("expr", name="breathiness", value=1.0 + 0.5 * np.sin(k / 40))
            sent += 1
            if k % 10 == 0:
                await show.cue("note.on", pitch=60 + (k // 10) % 5, velocity=0.8,
                               syllable="a")
                sent += 1
            await asyncio.sleep(0.002)
        shown_s = show.pacer.playout_sample / SR
        # what a singer keeps follows the few seconds still to come, not the cues sent
        kept_events, kept_notes = line.expression_events, line.notes
        playout = show.pacer.playout_sample
        settled = line.settled_before(playout)
        events, notes = len(kept_events), len(kept_notes)
        live = len(director._singers[LEAD].live)
        await show.cue("expr", name="breathiness", value=1.0)
        await show.cue("note.on", pitch=67, velocity=0.8, syllable="a")
        loud_at = show.pacer.playout_sample
        await asyncio.sleep(0.6)
        await show.cue("expr", name="volume", value=0.3)
        soft_at = show.pacer.playout_sample
        await asyncio.sleep(0.6)
        await show.cue("note.off", pitch=67)
        await asyncio.sleep(0.1)
    assert sent > 1600 and shown_s > 3.0
    # kept: at most one change per chunk (cues landing on one chunk coalesce) over the span
    # not yet folded (about 1.5 s behind playout, plus what is rendered ahead) -- not 1500
    assert events <= 2.0 * SR / CHUNK < 1500, events
    assert all(e[0] + EXPRESSION_GLIDE_S * SR > settled - 0.2 * SR for e in kept_events)
    # and the notes of that span only, in the line and in the Director alike -- not all 150:
    # notes were sent evenly over the show, so the span still kept (settled .. playout, plus
    # what is rendered ahead) holds its share of them, however fast this machine sent them
    span_s = (playout - settled) / SR + 0.3
    share = 150 * span_s / shown_s
    assert notes <= live <= notes + 5, (notes, live)
    assert notes <= 1.5 * share + 5 and span_s < 0.8 * shown_s, (notes, share, span_s, shown_s)
    assert all(n.t_off >= settled - 0.2 * SR for n in kept_notes)
    audio = show.audio()
    # and the show sings what it was told: G4, at the volume asked
    times, f0 = f0_track(audio, 150, 800)
    body = (times > loud_at / SR + 0.2) & (times < loud_at / SR + 0.55) & (f0 > 0)
    assert abs(1200 * np.log2(np.median(f0[body]) / 392.0)) < 20
    loud = rms(audio[loud_at + int(0.3 * SR):loud_at + int(0.55 * SR)])
    soft = rms(audio[soft_at + int(0.3 * SR):soft_at + int(0.55 * SR)])
    assert 0.2 < soft / loud < 0.45
