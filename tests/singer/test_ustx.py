"""The USTX reader on OpenUtau projects written here after the published format (ustx 0.6)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from singer.contracts import SAMPLE_RATE_HZ
from singer.render import build_ensemble, render_ensemble
from singer.score import ScoreError, TimeSignature, Vibrato
from singer.scores.ustx import read_ustx
from singer.tempo import TempoChange
from tests.measure import f0_track
from tests.singer.excerpts import sung_cents

SR = SAMPLE_RATE_HZ

HEADER = """\
name: Xiao Xing Xing
comment: ''
output_dir: Vocal
cache_dir: UCache
ustx_version: '0.6'
resolution: 480
bpm: 120
beat_per_bar: 4
beat_unit: 4
expressions:
  vol:
    name: volume
    abbr: vol
    type: Numerical
    min: 0
    max: 200
    default_value: 100
    is_flag: false
    flag: ''
exp_selectors: [dyn, pitd, clr, eng, vel]
time_signatures:
- bar_position: 0
  beat_per_bar: 4
  beat_unit: 4
- bar_position: 2
  beat_per_bar: 3
  beat_unit: 4
tempos:
- position: 0
  bpm: 96
- position: 3840
  bpm: 72
tracks:
- singer: SomeVoicebank
  phonemizer: OpenUtau.Core.DefaultPhonemizer
  renderer_settings: {renderer: CLASSIC}
  track_name: Lead
  mute: false
  solo: false
  volume: 0
  pan: 0
voice_parts:
- name: Verse
  comment: ''
  track_no: 0
  position: 960
  notes:
"""

# (position in the part, duration, tone, lyric, vibrato length %)
MELODY = [(0, 480, 60, "一", 0), (480, 480, 60, "闪", 0), (960, 480, 67, "一", 0),
          (1440, 480, 67, "闪", 0), (1920, 480, 69, "亮", 0), (2400, 480, 69, "晶", 0),
          (2880, 960, 67, "晶", 70), (3840, 480, 65, "+", 0), (4320, 720, 65, "放", 0)]


def _note(pos: int, dur: int, tone: int, lyric: str, vib: float, bend: int = 0,
          extra: str = "") -> str:
    return f"""\
  - position: {pos}
    duration: {dur}
    tone: {tone}
    lyric: {lyric}
    pitch:
      data:
      - {{x: -25, y: {-20 if pos else 0}, shape: io}}
      - {{x: 25, y: {bend}, shape: io}}
      snap_first: true
    vibrato: {{length: {vib}, period: 200, depth: 60, in: 10, out: 10, shift: 0, drift: 0}}
    note_expressions: []
    phoneme_expressions: []
    phoneme_overrides: []
{extra}"""


def _project(tmp_path: Path, notes: str | None = None, tail: str = "  curves: []\n",
             name: str = "song.ustx") -> Path:
    body = notes if notes is not None else "".join(_note(*n) for n in MELODY)
    path = tmp_path / name
    path.write_text(HEADER + body + tail + "wave_parts: []\n", encoding="utf-8")
    return path


def _sample(tick: float) -> int:
    """The test's tempo arithmetic: 96 bpm to tick 3840, 72 bpm after."""
    beats = tick / 480
    return round((min(beats, 8) * 60 / 96 + max(0.0, beats - 8) * 60 / 72) * SR)


def test_notes_lyrics_timing_and_meters(tmp_path: Path) -> None:
    score = read_ustx(_project(tmp_path))
    assert score.title == "Xiao Xing Xing" and score.language == "zh"
    assert [p.name for p in score.parts] == ["Lead"]
    assert score.tempo_map.changes == (TempoChange(0.0, 96.0), TempoChange(8.0, 72.0))
    assert score.time_signatures == (TimeSignature(0.0, 4, 4), TimeSignature(8.0, 3, 4))
    notes = score.notes
    assert len(notes) == len(MELODY)
    for note, (pos, dur, tone, lyric, _) in zip(notes, MELODY, strict=True):
        assert (note.t_on, note.t_off) == (_sample(960 + pos), _sample(960 + pos + dur))
        assert note.pitch_midi == tone
        assert note.lyric == ("-" if lyric == "+" else lyric)
    assert notes[7].is_melisma  # "+" carries 晶 on
    assert notes[0].phonemes == ("i",)
    assert not score.notices  # default portamento only, no unknown fields


def test_pitch_follows_the_notes(tmp_path: Path) -> None:
    errors = sung_cents(read_ustx(_project(tmp_path)), "tenor")
    assert len(errors) == 8 and np.median(errors) <= 10.0, errors


def test_vibrato_maps_onto_the_voice(tmp_path: Path) -> None:
    score = read_ustx(_project(tmp_path))
    marks = dict(score.parts[0].vibrato)
    assert marks[score.notes[0].t_on] == Vibrato(0.0, 5.0)  # length 0: straight
    assert marks[score.notes[6].t_on] == Vibrato(60.0, 5.0)  # 200 ms period
    audio = render_ensemble(build_ensemble(score, "tenor"), end_sample=score.notes[6].t_off)
    times, f0 = f0_track(audio, 60, 400)

    def swing(note_index: int) -> float:
        """Peak-to-peak cents of the sung f0 over the note's second half."""
        note = score.notes[note_index]
        sel = (times > (note.t_on + note.t_off) / 2 / SR) & (times < note.t_off / SR - 0.05)
        sel &= f0 > 0
        cents = 1200 * np.log2(f0[sel] / (440 * 2 ** ((note.pitch_midi - 69) / 12)))
        return float(np.percentile(cents, 95) - np.percentile(cents, 5))

    assert swing(3) < 25.0  # the voice's own vibrato switched off
    assert swing(6) > 70.0  # about 2 × 60 cents


def test_drawn_pitch_curves_and_unknown_fields_are_reported(tmp_path: Path) -> None:
    notes = _note(0, 480, 60, "la", 0, bend=-30, extra="    mystery_field: 1\n")
    notes += _note(480, 480, 62, "la", 0)
    curves = "  curves:\n  - {xs: [0, 480], ys: [0, 50], abbr: pitd}\n"
    score = read_ustx(_project(tmp_path, notes, tail=curves))
    assert len(score.notes) == 2
    text = "\n".join(score.notices)
    assert "1 notes have hand-drawn pitch curves" in text
    assert "'pitd' curve is not sung" in text
    assert "note.mystery_field" in text


def test_yaml_that_is_not_ustx(tmp_path: Path) -> None:
    cues = tmp_path / "cues.ustx"
    cues.write_text("cues:\n- at: 0\n  go: song\n", encoding="utf-8")
    with pytest.raises(ScoreError, match=r"cues\.ustx: not a USTX project: no 'ustx_version'"):
        read_ustx(cues)
    broken = tmp_path / "broken.ustx"
    broken.write_text("ustx_version: '0.6'\nvoice_parts: [\n  - {a: 1\n", encoding="utf-8")
    with pytest.raises(ScoreError, match=r"broken\.ustx: not a USTX project: YAML error at "
                                         r"line \d+, column \d+"):
        read_ustx(broken)


def test_bad_note_names_its_place(tmp_path: Path) -> None:
    notes = _note(0, 480, 60, "la", 0) + _note(480, 480, 60, "la", 0).replace(
        "tone: 60", "tone: high")
    with pytest.raises(ScoreError, match=r"song\.ustx: voice_parts\[0\] \(Verse\) note 1\.tone: "
                                         r"'high' is not a number"):
        read_ustx(_project(tmp_path, notes))
    notes = _note(0, 480, 60, "la", 0).replace("    tone: 60\n", "")
    with pytest.raises(ScoreError, match=r"note 0: missing 'tone'"):
        read_ustx(_project(tmp_path, notes))
