"""Phoneme timeline: where each phoneme of each syllable sits on the show clock.

Singers place the consonants of a syllable before its note so that the vowel starts on the
beat (UTAU's pre-utterance); a coda consonant closes the syllable just before the next one
begins; a melisma keeps the vowel through all its notes; a diphthong glides into its second
vowel near the end. A consonant that would start before show sample 0 or eat more than half
of the previous note is shortened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.phonemes import PhonemeSpec, spec

Phase = Literal["closure", "burst", "frication", "aspiration", "voiced"]

GLIDE_S = 0.05
OFFGLIDE_S = 0.12
MAX_CODA_SHARE = 0.3
MAX_STEAL_SHARE = 0.5
MIN_ONSET_S = 0.03
"""An onset squeezed for room (at show start, after a short note) keeps at least this much;
only then does its vowel start after the beat."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One phase of one phoneme, ``[start, end)`` in show samples.

    ``phase`` says how it sounds: ``closure`` (silence, or a voice bar for voiced stops),
    ``burst``/``frication`` (noise in the phoneme's band), ``aspiration`` (breath noise
    through the next vowel's formants) or ``voiced`` (vowels, glides, nasals, liquids).
    ``note`` indexes the note whose syllable it belongs to.
    """

    start: int
    end: int
    phoneme: str
    phase: Phase
    note: int


@dataclass(frozen=True, slots=True)
class _Syllable:
    first: int  # index of the first note
    last: int  # index of the last note (melisma)
    onset: tuple[str, ...]
    nucleus: tuple[str, ...]
    coda: tuple[str, ...]


def split_syllable(phonemes: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...],
                                                       tuple[str, ...]]:
    """Split a syllable's phonemes into (onset consonants, glides+vowels, coda consonants)."""
    specs = [spec(p) for p in phonemes]
    vowel_idx = [i for i, s in enumerate(specs) if s.is_vowel]
    if not vowel_idx:
        raise ValueError(f"syllable {' '.join(phonemes)!r} has no vowel")
    first_v, last_v = vowel_idx[0], vowel_idx[-1]
    start = first_v
    while start > 0 and specs[start - 1].kind == "glide":
        start -= 1
    return phonemes[:start], phonemes[start:last_v + 1], phonemes[last_v + 1:]


def _syllables(notes: list[Note]) -> list[_Syllable]:
    out: list[_Syllable] = []
    for i, note in enumerate(notes):
        contiguous = bool(out) and notes[out[-1].last].t_off >= note.t_on - 1
        if note.is_melisma and out and contiguous:
            prev = out[-1]
            out[-1] = _Syllable(prev.first, i, prev.onset, prev.nucleus, prev.coda)
            continue
        phonemes = note.phonemes or ("a",)
        onset, nucleus, coda = split_syllable(phonemes)
        out.append(_Syllable(i, i, onset, nucleus, coda))
    return out


def _s(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE_HZ))


def _consonant_phases(p: PhonemeSpec) -> list[tuple[Phase, float]]:
    """(phase, seconds) pieces of one consonant in the order they sound."""
    if p.kind == "plosive":
        return [("closure", p.closure_s), ("burst", p.duration_s), ("aspiration", p.aspiration_s)]
    if p.kind == "affricate":
        return [("closure", p.closure_s), ("frication", p.duration_s),
                ("aspiration", p.aspiration_s)]
    if p.kind == "fricative":
        return [("frication", p.duration_s)]
    if p.kind == "aspirate":
        return [("aspiration", p.duration_s)]
    return [("voiced", p.duration_s)]


def _place(phonemes: tuple[str, ...], start: int, end: int, note: int) -> list[Segment]:
    """Lay consonants end to end over ``[start, end)``, scaled to fit."""
    pieces = [(name, phase, sec) for name in phonemes
              for phase, sec in _consonant_phases(spec(name)) if sec > 0]
    total = sum(sec for _, _, sec in pieces)
    if not pieces or end <= start or total <= 0:
        return []
    scale = (end - start) / _s(total) if _s(total) > 0 else 0.0
    segs: list[Segment] = []
    t = float(start)
    for name, phase, sec in pieces:
        t_end = t + _s(sec) * scale
        if int(round(t_end)) > int(round(t)):
            segs.append(Segment(int(round(t)), int(round(t_end)), name, phase, note))
        t = t_end
    return segs


def _lead_samples(phonemes: tuple[str, ...]) -> int:
    return _s(sum(spec(p).lead_s for p in phonemes))


def build_timeline(notes: list[Note] | tuple[Note, ...]) -> list[Segment]:
    """Phoneme segments for a monophonic line of notes, sorted by start."""
    notes = list(notes)
    sylls = _syllables(notes)
    # Where each syllable's onset consonants start (before its first note).
    onset_start: list[int] = []
    for k, syl in enumerate(sylls):
        t_on = notes[syl.first].t_on
        floor = 0
        if k > 0:
            prev = sylls[k - 1]
            prev_on, prev_off = notes[prev.last].t_on, notes[prev.last].t_off
            floor = min(t_on, prev_off - int(MAX_STEAL_SHARE * (prev_off - prev_on)))
        onset_start.append(max(floor, t_on - _lead_samples(syl.onset)))

    segments: list[Segment] = []
    for k, syl in enumerate(sylls):
        first, last = notes[syl.first], notes[syl.last]
        lead = _lead_samples(syl.onset)
        vowel_start = max(first.t_on, onset_start[k] + min(lead, _s(MIN_ONSET_S)))
        segments += _place(syl.onset, onset_start[k], vowel_start, syl.first)
        end = last.t_off
        if k + 1 < len(sylls):
            end = min(end, onset_start[k + 1])
        coda_len = min(_lead_samples(syl.coda), int(MAX_CODA_SHARE * (end - vowel_start)))
        vowel_end = end - coda_len
        t = vowel_start
        glides = [p for p in syl.nucleus if spec(p).kind == "glide"]
        vowels = [p for p in syl.nucleus if spec(p).is_vowel]
        for g in glides:
            g_end = min(t + _s(GLIDE_S), t + (vowel_end - t) // 4)
            if g_end > t:
                segments.append(Segment(t, g_end, g, "voiced", syl.first))
                t = g_end
        main_end = vowel_end
        if len(vowels) > 1:
            main_end = max(t, vowel_end - min(_s(OFFGLIDE_S), int(0.3 * (vowel_end - t))))
        if main_end > t:
            segments.append(Segment(t, main_end, vowels[0], "voiced", syl.first))
        if len(vowels) > 1 and vowel_end > main_end:
            segments.append(Segment(main_end, vowel_end, vowels[-1], "voiced", syl.first))
        segments += _place(syl.coda, vowel_end, end, syl.first)
    return sorted(segments, key=lambda s: s.start)
