"""OpenUtau project reader (``.ustx``, YAML, 480 ticks per quarter by default) → ``Score``.

Read: tempos, time signatures, tracks (one singer per track; its voice parts merged), notes
(``position``, ``duration``, ``tone``, ``lyric``), each note's ``vibrato`` (as a ``Vibrato``
the render maps onto the voice's vibrato depth and rate) and ``vol`` expression (velocity).
A note's pitch points that only shape the slide from the previous note (OpenUtau's default
portamento) are what the performer does itself; hand-drawn pitch points and the ``pitd``
curve cannot be carried by the note contract and are reported in ``Score.notices``, as are
fields this reader does not know. Every failure is a ``ScoreError`` naming the file and place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from singer.score import Score, ScoreError, SourceNote, TimeSignature, Vibrato, assemble_score
from singer.tempo import TempoChange, TempoMap
from singer.text_encoding import EncodingError, decode_file

DEFAULT_RESOLUTION = 480
"""Ticks per quarter note when the project does not say."""

_PROJECT_KEYS = {
    "name", "comment", "output_dir", "cache_dir", "ustx_version", "resolution", "bpm",
    "beat_per_bar", "beat_unit", "expressions", "exp_selectors", "exp_primary",
    "exp_secondary", "key", "time_signatures", "tempos", "tracks", "voice_parts",
    "wave_parts", "voice_color_names",
}
_PART_KEYS = {"name", "comment", "track_no", "position", "duration", "notes", "curves"}
_NOTE_KEYS = {"position", "duration", "tone", "lyric", "pitch", "vibrato", "note_expressions",
              "phoneme_expressions", "phoneme_overrides", "expressions", "phonemes"}
_EXTEND = ("+", "-", "_")
_REST_LYRICS = {"R", "r"}


def read_ustx(
    path: str | Path,
    *,
    part: str | int | None = None,
    language: str = "auto",
    default_syllable: str = "la",
    encoding: str | None = None,
) -> Score:
    """Read an OpenUtau ``.ustx`` project into a ``Score`` (one part per track with notes).

    ``part`` keeps one track by 0-based number or name. OpenUtau writes UTF-8; ``encoding``
    names another charset, else a file that is not UTF-8 is read in the charset guessed from
    all of it (with a notice). Raises ``ScoreError`` for a file that is not YAML, YAML that is
    not a USTX project, or a note that cannot be sung.
    """
    path = Path(path)
    name = str(path)
    notices: list[str] = []
    project = _load(path, encoding, notices)
    unknown: set[str] = {f"project.{k}" for k in project if k not in _PROJECT_KEYS}
    res = _number(project.get("resolution", DEFAULT_RESOLUTION), name, "resolution")
    if res <= 0:
        raise ScoreError(f"{name}: resolution {res} is not a positive tick count")
    tempo_map = _tempo_map(project, res, name)
    meters = _time_signatures(project, name)
    tracks = _list(project.get("tracks") or [], name, "tracks")
    parts: dict[str, list[SourceNote]] = {}
    pitch_ignored = 0
    for pi, vpart in enumerate(_list(project.get("voice_parts") or [], name, "voice_parts")):
        where = f"voice_parts[{pi}]"
        if not isinstance(vpart, dict):
            raise ScoreError(f"{name}: {where}: not a mapping")
        unknown |= {f"voice_part.{k}" for k in vpart if k not in _PART_KEYS}
        track_no = int(_number(vpart.get("track_no", 0), name, f"{where}.track_no"))
        label = _track_label(tracks, track_no)
        offset = _number(vpart.get("position", 0), name, f"{where}.position")
        for curve in vpart.get("curves") or []:
            if isinstance(curve, dict) and any(y for y in curve.get("ys") or []):
                notices.append(f"{name}: {where}: the {curve.get('abbr', '?')!r} curve is "
                               "not sung (the voice draws its own pitch and dynamics)")
        notes = parts.setdefault(label, [])
        for ni, raw in enumerate(_list(vpart.get("notes") or [], name, f"{where}.notes")):
            nwhere = f"{where} ({vpart.get('name', 'part')}) note {ni}"
            if not isinstance(raw, dict):
                raise ScoreError(f"{name}: {nwhere}: not a mapping")
            unknown |= {f"note.{k}" for k in raw if k not in _NOTE_KEYS}
            note, drawn = _note(raw, offset, res, name, nwhere)
            pitch_ignored += drawn
            if note is not None:
                notes.append(note)
    if part is not None:
        parts = _select(parts, part, name)
    if not any(parts.values()):
        raise ScoreError(f"{name}: the project has no notes to sing")
    if pitch_ignored:
        notices.append(f"{name}: {pitch_ignored} notes have hand-drawn pitch curves; they are "
                       "sung with the voice's own transitions instead")
    if unknown:
        notices.append(f"{name}: ignored unknown USTX fields: {', '.join(sorted(unknown))}")
    title = str(project.get("name") or "").strip()
    if not title or title == "New Project":
        title = path.stem
    return assemble_score(title, tempo_map, {k: v for k, v in parts.items() if v},
                          source=name, language=language, default_syllable=default_syllable,
                          notices=notices, time_signatures=meters)


def _load(path: Path, encoding: str | None, notices: list[str]) -> dict[str, Any]:
    """The project mapping; ``ScoreError`` for unreadable, non-YAML or non-USTX files."""
    import yaml

    if not path.is_file():
        raise ScoreError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    try:
        decoded = decode_file(path.read_bytes(), encoding)
    except OSError as err:
        raise ScoreError(f"{path}: cannot read the file: {err.strerror or err}") from err
    except EncodingError as err:
        raise ScoreError(f"{path}: {err}") from None
    notice = decoded.notice(str(path))
    if notice:
        notices.append(notice)
    text = decoded.texts[0]
    try:
        data = yaml.safe_load(text)
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ScoreError(f"{path}: not a USTX project: YAML nested too deeply") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        raise ScoreError(f"{path}: not a USTX project: YAML error{at}: {problem}") from err
    if not isinstance(data, dict) or not ({"ustx_version", "voice_parts"} & set(data)):
        raise ScoreError(f"{path}: not a USTX project: no 'ustx_version' or 'voice_parts' "
                         "at the top level")
    return data


def _note(raw: dict[str, Any], offset: float, res: float, name: str, where: str
          ) -> tuple[SourceNote | None, int]:
    """The note (``None`` for a rest lyric) and 1 if it has hand-drawn pitch points."""
    for key in ("position", "duration", "tone"):
        if key not in raw:
            raise ScoreError(f"{name}: {where}: missing '{key}'")
    pos = _number(raw["position"], name, f"{where}.position")
    dur = _number(raw["duration"], name, f"{where}.duration")
    tone = _number(raw["tone"], name, f"{where}.tone")
    if dur <= 0:
        raise ScoreError(f"{name}: {where}: duration {dur} is not positive")
    if not 0 <= tone <= 127:
        raise ScoreError(f"{name}: {where}: tone {tone} is not a MIDI note number (0..127)")
    lyric = str(raw.get("lyric", "a")).strip()
    if lyric in _REST_LYRICS:
        return None, 0
    extend = lyric.startswith(_EXTEND)  # OpenUtau's "+", "+~", "+*" and "-" extenders
    velocity = 0.8
    for exp in raw.get("note_expressions") or []:
        if isinstance(exp, dict) and exp.get("abbr") == "vol" and exp.get("value") is not None:
            velocity = min(1.0, max(0.0, 0.8 * _number(exp["value"], name, where) / 100.0))
    note = SourceNote(
        beat_on=(offset + pos) / res, beat_off=(offset + pos + dur) / res,
        pitch_midi=float(tone), lyric=None if extend or not lyric else lyric,
        extend=extend, velocity=velocity, where=where,
        vibrato=_vibrato(raw.get("vibrato"), name, where))
    return note, int(_drawn_pitch(raw.get("pitch")))


def _vibrato(raw: Any, name: str, where: str) -> Vibrato | None:
    """OpenUtau's vibrato (length % of the note, period ms, depth cents) as a ``Vibrato``.

    Length 0 sings the note straight; the fade-in/out, shift and drift are the performer's.
    """
    if not isinstance(raw, dict):
        return None
    length = _number(raw.get("length", 0), name, f"{where}.vibrato.length")
    if length <= 0:
        return Vibrato(0.0, 5.0)
    period_ms = _number(raw.get("period", 175), name, f"{where}.vibrato.period")
    depth = _number(raw.get("depth", 25), name, f"{where}.vibrato.depth")
    return Vibrato(max(0.0, depth), 1000.0 / min(500.0, max(20.0, period_ms)))


def _drawn_pitch(raw: Any) -> bool:
    """True when pitch points do more than slide in from the previous note (snap_first)."""
    if not isinstance(raw, dict):
        return False
    points = [p for p in raw.get("data") or [] if isinstance(p, dict)]
    if raw.get("snap_first", True):
        points = points[1:]
    return any(float(p.get("y", 0) or 0) != 0 for p in points)


def _tempo_map(project: dict[str, Any], res: float, name: str) -> TempoMap:
    """``tempos`` (tick position, bpm); projects before 0.6 have one top-level ``bpm``."""
    raw = project.get("tempos") or [{"position": 0, "bpm": project.get("bpm", 120)}]
    changes = []
    for i, tempo in enumerate(_list(raw, name, "tempos")):
        if not isinstance(tempo, dict):
            raise ScoreError(f"{name}: tempos[{i}]: not a mapping")
        bpm = _number(tempo.get("bpm"), name, f"tempos[{i}].bpm")
        if not 1.0 <= bpm <= 1000.0:
            raise ScoreError(f"{name}: tempos[{i}]: tempo {bpm} bpm is out of 1..1000")
        changes.append(TempoChange(_number(tempo.get("position", 0), name,
                                           f"tempos[{i}].position") / res, bpm))
    return TempoMap(changes)


def _time_signatures(project: dict[str, Any], name: str) -> list[TimeSignature]:
    """``time_signatures`` (at bar numbers) placed at beats through the bars before them."""
    raw = project.get("time_signatures") or [
        {"bar_position": 0, "beat_per_bar": project.get("beat_per_bar", 4),
         "beat_unit": project.get("beat_unit", 4)}]
    out: list[TimeSignature] = []
    items = sorted((s for s in _list(raw, name, "time_signatures") if isinstance(s, dict)),
                   key=lambda s: _number(s.get("bar_position", 0), name, "bar_position"))
    bar, beat = 0.0, 0.0
    for i, sig in enumerate(items):
        at = _number(sig.get("bar_position", 0), name, f"time_signatures[{i}].bar_position")
        num = int(_number(sig.get("beat_per_bar", 4), name, f"time_signatures[{i}]"))
        den = int(_number(sig.get("beat_unit", 4), name, f"time_signatures[{i}]"))
        if num <= 0 or den <= 0:
            raise ScoreError(f"{name}: time_signatures[{i}]: {num}/{den} is not a meter")
        if out:
            beat += (at - bar) * out[-1].numerator * 4.0 / out[-1].denominator
        bar = at
        out.append(TimeSignature(beat, num, den))
    return out


def _track_label(tracks: list[Any], track_no: int) -> str:
    """A track's name (``track_name``, else its singer), else ``track N``."""
    if 0 <= track_no < len(tracks) and isinstance(tracks[track_no], dict):
        trk = tracks[track_no]
        label = str(trk.get("track_name") or "").strip()
        if label and label != "New Track":
            return label
    return f"track {track_no}"


def _select(parts: dict[str, list[SourceNote]], wanted: str | int, name: str
            ) -> dict[str, list[SourceNote]]:
    names = [k for k, v in parts.items() if v]
    if isinstance(wanted, int) and -len(names) <= wanted < len(names):
        return {names[wanted]: parts[names[wanted]]}
    if wanted in parts:
        return {str(wanted): parts[str(wanted)]}
    raise ScoreError(f"{name}: no track {wanted!r}; the tracks are "
                     f"{', '.join(repr(n) for n in names)}")


def _list(value: Any, name: str, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ScoreError(f"{name}: {where}: expected a list, got {type(value).__name__}")
    return value


def _number(value: Any, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScoreError(f"{name}: {where}: {value!r} is not a number")
    return float(value)
