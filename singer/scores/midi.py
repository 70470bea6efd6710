"""Standard MIDI file reader (a DAW's export): notes of one track, lyric events → ``Score``.

mido does the parsing. The reader takes the notes of one track (and optionally one channel)
and attaches lyric meta events (``FF 05``, from the track itself or from a words-only track
as in karaoke files; text events ``FF 01`` when there are none) to the note-ons at their
tick. The tempo map and time signatures come from the file's meta events. The charset of the
text events is decided once for the whole file (``singer.text_encoding``). Every failure is a
``ScoreError`` naming the file and the place (track, note, tick)."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from singer.score import Score, ScoreError, SourceNote, Syllabic, TimeSignature, assemble_score
from singer.tempo import TempoChange, TempoMap
from singer.text_encoding import EncodingError, decode_pieces

DRUM_CHANNEL = 10
"""General MIDI percussion channel (1-based); never sung unless chosen explicitly."""

_KAR_MARKS = re.compile(r"^[/\\]+")


@dataclass
class _Track:
    """What one MIDI track holds, in ticks."""

    index: int
    name: str
    notes: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    """(tick on, tick off, pitch, velocity 1..127, channel 1..16)"""
    lyrics: list[tuple[int, str]] = field(default_factory=list)
    texts: list[tuple[int, str]] = field(default_factory=list)
    unclosed: int = 0

    @property
    def label(self) -> str:
        return f"track {self.index}" + (f" ({self.name})" if self.name else "")


def read_midi(
    path: str | Path,
    *,
    track: int | str | None = None,
    channel: int | None = None,
    language: str = "auto",
    default_syllable: str = "la",
    encoding: str | None = None,
) -> Score:
    """Read a Standard MIDI File (type 0 or 1) into a one-part ``Score``.

    ``track`` picks a track by 0-based index or name; by default the first track with notes
    and lyrics (else the first with notes, drums aside). ``channel`` (1..16, as DAWs number
    them) keeps one channel of that track. Lyric texts ending in ``-`` continue a word on the
    next note (``Twin-`` ``kle``); ``-``/``+``/``_`` alone extend the previous syllable.
    ``encoding`` names the charset of the text events; by default it is guessed from all of
    them together (a notice says which legacy charset was guessed).
    """
    path = Path(path)
    name = str(path)
    mid = _open(path)
    tpb = mid.ticks_per_beat
    if not isinstance(tpb, int) or tpb <= 0:
        raise ScoreError(f"{name}: SMPTE time division is not supported (only ticks per beat)")
    notices: list[str] = []
    decode = _decoder(mid, name, encoding, notices)
    tracks, tempos, meters = _scan(mid, name, decode)
    chosen = _choose(tracks, track, channel, name)
    notes = [n for n in chosen.notes if channel is None or n[4] == channel]
    if channel is None and track is None:
        notes = [n for n in notes if n[4] != DRUM_CHANNEL] or notes
    top: dict[int, tuple[int, int, int, int, int]] = {}
    for note in notes:  # a chord is sung as its top note (as in the MusicXML reader)
        if note[0] not in top or note[2] > top[note[0]][2]:
            top[note[0]] = note
    notes = [top[tick] for tick in sorted(top)]
    if not notes:
        where = chosen.label + (f" channel {channel}" if channel is not None else "")
        raise ScoreError(f"{name}: {where} has no notes")
    if chosen.unclosed:
        notices.append(f"{name}: {chosen.label}: {chosen.unclosed} notes never released; "
                       "they end at the end of the track")
    # Karaoke files keep the words in a track of their own, without notes.
    lyrics = chosen.lyrics or [ly for t in tracks if not t.notes for ly in t.lyrics]
    if not lyrics:
        lyrics = [(tick, text) for tick, text in chosen.texts if not text.startswith("@")]
    source_notes, extra = _with_lyrics(notes, sorted(lyrics), tpb, chosen, name)
    if extra:
        notices.append(f"{name}: {chosen.label}: {extra} lyric events after the last note "
                       "were not sung")
    tempo_map = _tempo_map(tempos, tpb, name)
    signatures = [TimeSignature(tick / tpb, num, den) for tick, num, den in meters]
    title = chosen.name if chosen.name and len(tracks) == 1 else ""
    title = title or next((t.name for t in tracks if t.name), "") or path.stem
    if len(tracks) > 1 and tracks[0].name and not tracks[0].notes:
        title = tracks[0].name  # type 1: the conductor track carries the song's name
    part = chosen.name or f"track {chosen.index}"
    return assemble_score(title, tempo_map, {part: source_notes}, source=name,
                          language=language, default_syllable=default_syllable,
                          notices=notices, time_signatures=signatures)


def _open(path: Path) -> Any:
    """The parsed file; a truncated or foreign file becomes a ``ScoreError``."""
    import mido

    if not path.is_file():
        raise ScoreError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    try:
        # latin-1 keeps every byte of a text event; _decoder re-reads it in its real charset.
        mid = mido.MidiFile(path, charset="latin1")
    except EOFError as err:
        raise ScoreError(f"{path}: not a readable MIDI file: it is truncated "
                         f"({_describe(err)})") from err
    except Exception as err:  # mido raises OSError, ValueError, KeyError... on bad data
        raise ScoreError(f"{path}: not a readable MIDI file: {_describe(err)}") from err
    if mid.type == 2:
        raise ScoreError(f"{path}: MIDI type 2 (independent sequences) is not supported")
    return mid


def _decoder(mid: Any, name: str, encoding: str | None,
             notices: list[str]) -> Callable[[str], str]:
    """Text event (read as latin-1) → text, in the ONE charset of the file: ``encoding`` when
    given, else the one that reads every text event of the file best."""
    raw = [t.encode("latin-1") for t in _texts(mid)]
    try:
        decoded = decode_pieces(raw, encoding)
    except EncodingError as err:
        raise ScoreError(f"{name}: text events: {err}") from None
    notice = decoded.notice(name)
    if notice:
        notices.append(notice)
    table = dict(zip(raw, decoded.texts, strict=True))
    return lambda text: table[text.encode("latin-1")]


def _texts(mid: Any) -> list[str]:
    """Every text a reader shows: track names, lyrics and text events (as latin-1)."""
    out: list[str] = []
    for mtrack in mid.tracks:
        out.append(mtrack.name)
        out += [msg.text for msg in mtrack if msg.type in ("lyrics", "text")]
    return list(dict.fromkeys(out))


def _scan(mid: Any, name: str, decode: Callable[[str], str]
          ) -> tuple[list[_Track], list[tuple[int, float, str]], list[tuple[int, int, int]]]:
    """Tracks (notes, lyrics, texts), tempo changes (tick, bpm, where) and meters by tick."""
    import mido

    tracks: list[_Track] = []
    tempos: list[tuple[int, float, str]] = []
    meters: dict[int, tuple[int, int]] = {}
    for index, mtrack in enumerate(mid.tracks):
        trk = _Track(index, decode(mtrack.name).strip())
        sounding: dict[tuple[int, int], list[tuple[int, int]]] = {}
        tick = 0
        for msg in mtrack:
            tick += msg.time
            kind = msg.type
            if kind == "note_on" and msg.velocity > 0:
                sounding.setdefault((msg.channel, msg.note), []).append((tick, msg.velocity))
            elif kind in ("note_off", "note_on"):
                started = sounding.get((msg.channel, msg.note))
                if started:
                    on, vel = started.pop(0)
                    trk.notes.append((on, tick, msg.note, vel, msg.channel + 1))
            elif kind == "lyrics":
                trk.lyrics.append((tick, decode(msg.text)))
            elif kind == "text":
                trk.texts.append((tick, decode(msg.text)))
            elif kind == "set_tempo":
                tempos.append((tick, float(mido.tempo2bpm(msg.tempo)),
                               f"{trk.label} tick {tick}"))
            elif kind == "time_signature":
                meters[tick] = (msg.numerator, msg.denominator)
        for (chan, pitch), started in sounding.items():
            for on, vel in started:
                trk.notes.append((on, max(tick, on + 1), pitch, vel, chan + 1))
                trk.unclosed += 1
        trk.notes.sort()
        tracks.append(trk)
    return tracks, tempos, [(t, n, d) for t, (n, d) in sorted(meters.items())]


def _choose(tracks: list[_Track], wanted: int | str | None, channel: int | None,
            name: str) -> _Track:
    """The track to sing: the one asked for, else the first with notes and lyrics."""
    if channel is not None and not 1 <= channel <= 16:
        raise ScoreError(f"{name}: channel {channel} is not a MIDI channel (1..16)")
    with_notes = [t for t in tracks if any(channel in (None, n[4]) for n in t.notes)]
    labels = ", ".join(t.label for t in with_notes) or "none"
    if wanted is None:
        if not with_notes:
            raise ScoreError(f"{name}: no track has notes"
                             + (f" on channel {channel}" if channel is not None else ""))
        tuneful = [t for t in with_notes if any(n[4] != DRUM_CHANNEL for n in t.notes)]
        pool = tuneful or with_notes
        return next((t for t in pool if t.lyrics or t.texts), pool[0])
    for trk in tracks:
        if wanted in (trk.index, trk.name) or (isinstance(wanted, str) and wanted.isdigit()
                                              and int(wanted) == trk.index):
            return trk
    raise ScoreError(f"{name}: no track {wanted!r}; tracks with notes: {labels}")


def _with_lyrics(notes: list[tuple[int, int, int, int, int]], lyrics: list[tuple[int, str]],
                 tpb: int, trk: _Track, name: str) -> tuple[list[SourceNote], int]:
    """``SourceNote``s with each lyric on the first free note at (or just after) its tick.

    Returns the notes and how many lyric events found no note.
    """
    onsets = [n[0] for n in notes]
    texts: dict[int, str] = {}
    slack = max(1, tpb // 32)  # a lyric written a hair before its note still belongs to it
    extra = 0
    for tick, text in lyrics:
        i = bisect.bisect_left(onsets, tick - slack)  # several events on one note join up
        if i >= len(notes):
            extra += 1
            continue
        texts[i] = texts.get(i, "") + text
    out: list[SourceNote] = []
    continues = False
    for i, (on, off, pitch, vel, chan) in enumerate(notes):
        raw = texts.get(i)
        lyric, syllabic, extend, next_continues = _syllable(raw, continues)
        if lyric is not None or extend:
            continues = next_continues
        out.append(SourceNote(
            beat_on=on / tpb, beat_off=off / tpb, pitch_midi=float(pitch), lyric=lyric,
            syllabic=syllabic, extend=extend, velocity=vel / 127.0,
            where=f"{trk.label} note {i + 1} (channel {chan}, tick {on})"))
    return out, extra


def _syllable(raw: str | None, continues: bool) -> tuple[str | None, Syllabic, bool, bool]:
    """(lyric, syllabic, extend, next note continues the word) from a lyric event's text."""
    if raw is None:
        return None, "single", False, continues
    text = _KAR_MARKS.sub("", raw.replace("\r", " ").replace("\n", " ")).strip()
    if not text:
        return None, "single", False, continues
    if text in ("-", "+", "_", "~"):
        return None, "single", True, continues
    more = text.endswith("-") and len(text) > 1
    text = text.rstrip("-").strip()
    syllabic: Syllabic
    if continues:
        syllabic = "middle" if more else "end"
    else:
        syllabic = "begin" if more else "single"
    return text, syllabic, False, more


def _tempo_map(tempos: list[tuple[int, float, str]], tpb: int, name: str) -> TempoMap:
    """The tempo map of every tempo event (the last of several at one tick wins)."""
    changes: dict[float, float] = {}
    for tick, bpm, where in sorted(tempos, key=lambda t: t[0]):
        if not 1.0 <= bpm <= 1000.0:
            raise ScoreError(f"{name}: {where}: tempo {bpm:.3f} bpm is out of 1..1000")
        changes[tick / tpb] = bpm
    return TempoMap([TempoChange(b, bpm) for b, bpm in sorted(changes.items())]
                    or [TempoChange(0.0, 120.0)])


def _describe(err: BaseException) -> str:
    text = str(err).strip()
    return text or type(err).__name__
