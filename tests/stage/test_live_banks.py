"""Bank voices in the live show: a UTAU bank sung by the ensemble (as the synthesis process
replays it) equals ``render --voice``; a voice switch crossfades at the next phrase; a live
show in a synthesis process sings OSC-style notes with the bank, in tune; an unknown voice
cue is one line and changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from singer.backends.discovery import describe_bank
from singer.backends.live import BankRef, open_bank
from singer.contracts import SAMPLE_RATE_HZ, AudioChunk
from singer.ensemble import Ensemble, LineEdit, SingerLine
from singer.render import render_score_with
from singer.score import Score
from singer.scores.load import load_score
from singer.synth import HarmonicNoiseSynth
from singer.voices import get_voice
from stage.director import Director
from stage.pacer import PacerConfig
from stage.song_loader import local_loader
from stage.synthesis import ProcessPacer
from streams.cue import CueError, make_cue
from tests.measure import f0_track, note_cents_errors, xrun_budget
from tests.singer.backends.scores import UTAU_SCORE, write_ust
from tests.singer.backends.utau_bank import build_bank

SR = SAMPLE_RATE_HZ


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> BankRef:
    folder = build_bank(tmp_path_factory.mktemp("voices") / "xiaoce", "gbk")
    ref = BankRef.of(describe_bank(folder))
    open_bank(ref)  # analysed once (the disk cache serves the synthesis process)
    return ref


@pytest.fixture(scope="module")
def score(tmp_path_factory: pytest.TempPathFactory) -> Score:
    return load_score(str(write_ust(tmp_path_factory.mktemp("score") / "utau.ust", UTAU_SCORE)))


def _replayed_copy(line: SingerLine, synth: HarmonicNoiseSynth) -> tuple[Ensemble, list[LineEdit]]:
    """What the synthesis process holds: an ensemble built from the line's state, fed the
    edits made since (``LineEdit`` replay)."""
    edits: list[LineEdit] = []
    show = Ensemble(synth, [line])
    show.set_listener(edits.append)
    copy = Ensemble(synth, [SingerLine.from_state(s) for s in show.states()])
    return copy, edits


def test_a_bank_line_in_the_ensemble_sings_what_render_voice_sings(bank: BankRef,
                                                                   score: Score) -> None:
    synth = HarmonicNoiseSynth(device="cpu")
    line = SingerLine("lead", get_voice("soprano"), hop=synth.hop, bank=bank)
    copy, edits = _replayed_copy(line, synth)
    copy.warm_banks()
    line.set_notes(list(score.parts[0].notes), changed_from=0)  # a song installed live
    for edit in edits:
        copy.apply(edit)
    n = score.end_sample + SR
    live = np.concatenate([copy.render_mix_samples(t, 240) for t in range(0, n, 240)])
    offline = render_score_with(score, [open_bank(bank)])
    m = min(len(live), len(offline))
    assert np.abs(offline[:m]).max() > 0.05
    assert float(np.abs(live[:m] - offline[:m]).max()) <= 1e-4
    assert np.abs(offline[m:]).max(initial=0.0) < 1e-4 and np.abs(live[m:]).max(initial=0.0) < 1e-4
    errors = note_cents_errors(live, score.parts[0].notes)
    assert float(np.median(np.abs(errors))) <= 10.0


def test_a_voice_switch_crossfades_at_the_next_phrase(bank: BankRef, score: Score) -> None:
    synth = HarmonicNoiseSynth(device="cpu")
    notes = sorted(score.parts[0].notes, key=lambda n: n.t_on)
    line = SingerLine("lead", get_voice("soprano"), notes, hop=synth.hop, bank=bank)
    copy, edits = _replayed_copy(line, synth)
    gap = next(b for a, b in zip(notes, notes[1:], strict=False) if b.t_on - a.t_off > SR // 4)
    mid_first = notes[1].t_on  # a cue while the first phrase sounds
    at = line.set_bank(None, mid_first)  # to the built-in voice
    for edit in edits:
        copy.apply(edit)
    assert copy.lines[0].banks == line.banks
    assert mid_first < at <= gap.t_on  # the next phrase's first sound, not the cue's sample
    n = score.end_sample + SR // 2
    audio = np.concatenate([copy.render(t, 240)[0] for t in range(0, n, 240)])
    utau = render_score_with(score, [open_bank(bank)])
    builtin = Ensemble(synth, [SingerLine("lead", get_voice("soprano"), notes, hop=synth.hop)])
    alone = np.concatenate([builtin.render(t, 240)[0] for t in range(0, n, 240)])
    xf = 480
    before, after = slice(0, at - xf), slice(at + xf, n)
    m = min(len(utau), at - xf)
    assert float(np.abs(audio[:m] - utau[:m]).max()) <= 1e-4  # the bank sang the first phrase
    assert float(np.abs(audio[after] - alone[after]).max()) <= 1e-4  # the built-in, the next
    assert np.abs(audio[before]).max() > 0.05 and np.abs(audio[after]).max() > 0.05
    # and the two phrases differ in timbre (the built-in voice is not the bank's)
    assert float(np.abs(alone[gap.t_on:gap.t_off] - _pad(utau, n)[gap.t_on:gap.t_off]).max()) > 0.05
    # no click at the switch: sample steps there no bigger than in the sung body
    step = np.abs(np.diff(audio))
    body = float(np.percentile(step[np.abs(audio[1:]) > 0.01], 99.9))
    assert float(step[at - 2 * xf:at + 2 * xf].max()) <= 1.5 * body


def _pad(audio: np.ndarray, n: int) -> np.ndarray:
    return np.pad(audio, (0, max(0, n - len(audio))))[:n]


class BankShow:
    """A Director singing with the bank, its synthesis in a process, recording what it plays."""

    def __init__(self, bank: BankRef) -> None:
        self.director = Director(HarmonicNoiseSynth(device="cpu"), local_loader(),
                                 voice=bank.path)
        self.chunks: list[AudioChunk] = []
        self.pacer = ProcessPacer(self.director.ensemble, [self.chunks.append],
                                  PacerConfig(240, 4), device="cpu")
        self.director.attach(self.pacer)
        self.director.prefetch = "controls"

    async def __aenter__(self) -> BankShow:
        self.task = asyncio.ensure_future(self.pacer.run())
        self.prefetch = asyncio.ensure_future(self.director.run_prefetch())
        while self.pacer.chunks_played < 20:
            assert not self.task.done(), self.task
            await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.task.cancel()
        self.prefetch.cancel()
        await asyncio.gather(self.task, self.prefetch, return_exceptions=True)
        self.director.close()

    async def cue(self, kind: str, **args: object) -> dict[str, Any]:
        reply = await self.director.handle(make_cue(kind, args))
        assert isinstance(reply, dict)
        return reply

    def audio(self) -> np.ndarray:
        return np.concatenate([c.samples for c in self.chunks])


async def test_a_live_show_sings_note_ons_with_the_bank_in_tune(bank: BankRef) -> None:
    async with BankShow(bank) as show:
        first = show.chunks[0].t
        assert show.director.status()["singers"] == {"lead": bank.name}
        sung = []
        for pitch, syllable in ((67, "sa"), (62, "fa")):
            reply = await show.cue("note.on", pitch=pitch, velocity=0.8, syllable=syllable)
            sung.append((reply["at_sample"] - first, pitch))
            await asyncio.sleep(0.7)
            await show.cue("note.off", pitch=pitch)
            await asyncio.sleep(0.3)
        with pytest.raises(CueError, match="unknown voice 'nobody'"):
            await show.cue("voice", name="nobody")
        assert show.director.line("lead").bank == bank  # nothing changed
        played = show.pacer.chunks_played
        xruns = show.pacer.xruns
    audio = show.audio()
    assert xruns <= xrun_budget(played)
    for at, pitch in sung:
        assert np.abs(audio[at - 2400:at]).max() < 1e-3  # nothing before the note-on
        times, f0 = f0_track(audio, 150, 800)
        body = (times > at / SR + 0.25) & (times < at / SR + 0.6) & (f0 > 0)
        hz = 440.0 * 2 ** ((pitch - 69) / 12)
        assert abs(1200 * float(np.log2(np.median(f0[body]) / hz))) < 25


async def test_serve_with_a_bank_by_name_sings_osc_note_ons_in_tune(bank: BankRef,
                                                                    tmp_path: Path) -> None:
    from stage.cli import _voices
    from tests.stage.test_serve_live import Engine, UdpOsc, onset

    voices = str(Path(bank.path).parent)
    voice = _voices(bank.name, "", [voices])[0]  # what `serve --voice 小测 --voices DIR` runs
    assert voice == bank.path
    async with Engine(tmp_path, voice=voice, voices_dirs=(Path(voices),)) as engine:
        ctl = UdpOsc(engine.osc)
        reply = await ctl.ask("/livesinger/note/on", 67, 0.8, "sa")
        assert reply["status"] == "ok", reply
        await asyncio.sleep(0.7)
        await ctl.ask("/livesinger/note/off", 67)
        await asyncio.sleep(0.3)
    audio = engine.audio()
    at = onset(audio, 0)
    assert at > 0
    times, f0 = f0_track(audio, 150, 800)
    body = (times > at / SR + 0.25) & (times < at / SR + 0.6) & (f0 > 0)
    assert abs(1200 * float(np.log2(np.median(f0[body]) / 392.0))) < 25


async def test_a_voice_cue_names_a_voice_and_never_opens_a_server_path(
        bank: BankRef, monkeypatch: pytest.MonkeyPatch) -> None:
    # the bank's folder is reachable as a relative path from the working directory, but it
    # is in no voices folder: a cue (a remote surface) may not open it by path; by name from
    # the voices folders it switches
    from stage.director import CueError as DirectorCueError
    from stage.pacer import AudioPacer

    folder = Path(bank.path)
    monkeypatch.chdir(folder.parent)
    monkeypatch.delenv("LIVESINGER_VOICES", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(folder.parent / "nowhere"))
    director = Director(HarmonicNoiseSynth(device="cpu"), local_loader(), voice="soprano")
    director.attach(AudioPacer(director.render, config=PacerConfig(240, 4)))
    for ref in (folder.name, ".", ".."):
        with pytest.raises((CueError, DirectorCueError), match="unknown voice"):
            await director.handle(make_cue("voice", {"name": ref}))
    assert director.line("lead").bank is None  # type: ignore[union-attr]
    named = Director(HarmonicNoiseSynth(device="cpu"), local_loader(), voice="soprano",
                     voices_dirs=(folder.parent,))
    named.attach(AudioPacer(named.render, config=PacerConfig(240, 4)))
    reply = await named.handle(make_cue("voice", {"name": folder.name}))
    assert reply["voice"] == bank.name  # type: ignore[index]
