"""Which samples sing a line of notes, and where: the UTAU wavtool's placement.

Each syllable gets its main sample (VCV ``a ka`` after a joined note, else ``- ka`` at a
phrase start, else CV ``ka``); a CVVC bank also gets a VC sample (``a k``) at the end of a
note joined to a syllable with a consonant, and an end sample (``a R``) after the last note of
a phrase. A sample is placed so that its preutterance lands on its position (a note's
``t_on``: the vowel on the beat) and crossfades with the sample before it over its overlap.
A preutterance that would push more than half into the previous note is squeezed (with the
overlap), as UTAU does, by skipping the start of the consonant.
"""

from __future__ import annotations

from dataclasses import dataclass

from singer.backends.utau.bank import UtauBank
from singer.backends.utau.errors import UnknownSyllableError
from singer.backends.utau.oto import OtoEntry
from singer.backends.utau.syllables import Syllable, syllable_of
from singer.contracts import SAMPLE_RATE_HZ, Note

JOIN_GAP_SAMPLES = SAMPLE_RATE_HZ // 100
"""Notes closer than this (10 ms) are sung joined (VCV, VC, crossfades)."""
MIN_FADE_SAMPLES = SAMPLE_RATE_HZ // 200
"""The shortest crossfade or fade (5 ms)."""
RELEASE_SAMPLES = SAMPLE_RATE_HZ * 3 // 100
"""Fade after a phrase's last note when the bank has no end sample (30 ms)."""
MIN_VC_SHARE = 0.3
"""A VC sample may not start in the first 30 % of its note."""


@dataclass(frozen=True, slots=True)
class Unit:
    """One sample placed on the show clock.

    It sounds over ``[start, stop)``: fades in over ``fade_in`` samples and out over the last
    ``fade_out``; its source is read from ``skip_ms`` (after the offset, in the output's time
    of the consonant) on.
    """

    entry: OtoEntry
    kind: str
    """``vcv``, ``begin`` (``- ka``), ``cv``, ``vc``, ``end`` or ``alias`` (the lyric is one)."""
    note: int
    """Index (in ``t_on`` order) of the note it belongs to."""
    pitch_midi: float
    pos: int
    start: int
    stop: int
    fade_in: int
    fade_out: int
    skip_ms: float


def consonant_speed(velocity: float) -> float:
    """UTAU's consonant velocity: the consonant plays at 0.5^(1 - velocity/100) speed."""
    return 0.5 ** (1.0 - velocity / 100.0)


def out_ms(entry: OtoEntry, source_ms: float, velocity: float) -> float:
    """Output time (ms after the offset) of a point ``source_ms`` after the offset: the
    consonant part is slowed or sped by the velocity, the rest plays as recorded."""
    speed = consonant_speed(velocity)
    fixed = entry.consonant_ms
    return source_ms / speed if source_ms <= fixed else fixed / speed + source_ms - fixed


def _ms(samples_ms: float) -> int:
    return int(round(samples_ms * SAMPLE_RATE_HZ / 1000.0))


@dataclass(frozen=True, slots=True)
class _Group:
    first: int
    t_on: int
    t_off: int
    pitch: float
    syllable: Syllable


def _groups(notes: list[Note], bank: UtauBank) -> list[_Group]:
    groups: list[_Group] = []
    for i, note in enumerate(notes):
        t_off = note.t_off
        if i + 1 < len(notes):
            t_off = min(t_off, notes[i + 1].t_on)
        if (note.is_melisma or note.lyric.strip() in ("-", "+", "")) and groups:
            last = groups[-1]
            groups[-1] = _Group(last.first, last.t_on, t_off, last.pitch, last.syllable)
            continue
        groups.append(_Group(i, note.t_on, t_off, note.pitch_midi,
                             syllable_of(note.lyric, bank.presamp)))
    return groups


def resolve_main(bank: UtauBank, syllable: Syllable, pitch: float,
                 prev: Syllable | None) -> tuple[OtoEntry, str]:
    """The main sample of a syllable: itself as an alias, VCV after ``prev`` (a joined
    note), ``- CV`` at a phrase start, CV; ``UnknownSyllableError`` naming the syllable."""
    tried: list[str] = []

    def get(alias: str) -> OtoEntry | None:
        tried.append(alias)
        return bank.get(alias, pitch)

    if " " in syllable.text:  # the lyric names an alias itself (``- ka``, ``a ka``)
        entry = get(syllable.text)
        if entry is not None:
            return entry, "alias"
    if prev is not None:
        for vowel in prev.vowels:
            for spelling in syllable.spellings:
                entry = get(f"{vowel} {spelling}")
                if entry is not None:
                    return entry, "vcv"
    order = ("- {}", "{}") if prev is None else ("{}", "- {}")
    for pattern in order:
        for spelling in syllable.spellings:
            entry = get(pattern.format(spelling))
            if entry is not None:
                return entry, "begin" if pattern.startswith("-") else "cv"
    entry = get(syllable.text)
    if entry is not None:
        return entry, "alias"
    shown = ", ".join(repr(a) for a in dict.fromkeys(tried))
    raise UnknownSyllableError(bank.root, None, f"no sample for the syllable "
                               f"{syllable.text!r} (aliases tried: {shown})")


def check_singable(bank: UtauBank, notes: list[Note] | tuple[Note, ...],
                   what: str = "") -> None:
    """``UnknownSyllableError`` naming the first note of ``notes`` (its number from 1, its
    time, ``what`` part) whose syllable the bank has no sample for; ``None`` if all sing."""
    ordered = sorted(notes, key=lambda n: n.t_on)
    for g in _groups(ordered, bank):
        try:
            resolve_main(bank, g.syllable, g.pitch, None)
        except UnknownSyllableError as err:
            note = ordered[g.first]
            where = f"{what}, " if what else ""
            raise UnknownSyllableError(
                bank.root, None, f"{where}note {g.first + 1} ({note.lyric!r} at "
                f"{note.t_on / SAMPLE_RATE_HZ:.2f} s, MIDI {note.pitch_midi:g}): "
                f"{err.reason}") from None


def plan_units(bank: UtauBank, notes: list[Note] | tuple[Note, ...],
               velocity: float = 100.0) -> list[Unit]:
    """Every sample that sings ``notes``, in start order (see the module docstring)."""
    ordered = sorted(notes, key=lambda n: n.t_on)
    groups = _groups(ordered, bank)
    joined = [i > 0 and groups[i].t_on - groups[i - 1].t_off <= JOIN_GAP_SAMPLES
              for i in range(len(groups))]
    mains = [resolve_main(bank, g.syllable, g.pitch,
                          groups[i - 1].syllable if joined[i] else None)
             for i, g in enumerate(groups)]
    # (entry, kind, group, pos, pre, overlap, skip) per sample, before the crossfades
    placed: list[tuple[OtoEntry, str, int, int, int, int, float]] = []
    for i, g in enumerate(groups):
        entry, kind = mains[i]
        pre = _ms(out_ms(entry, entry.preutterance_ms, velocity))
        ovl = _ms(out_ms(entry, max(entry.overlap_ms, 0.0), velocity)) \
            if entry.overlap_ms >= 0 else _ms(entry.overlap_ms)
        room = (g.t_on - groups[i - 1].t_on) // 2 if joined[i] else g.t_on
        skip = 0.0
        if pre > room and pre > 0:
            scale = room / pre
            skip = (pre - room) * 1000.0 / SAMPLE_RATE_HZ
            pre, ovl = room, int(ovl * scale)
        placed.append((entry, kind, i, g.t_on, pre, ovl, skip))
        nxt = i + 1 < len(groups) and joined[i + 1]
        if nxt and mains[i + 1][1] != "vcv" and groups[i + 1].syllable.consonant:
            vc = _vc(bank, g, groups[i + 1], mains[i + 1][0], velocity)
            if vc is not None:
                placed.append((vc[0], "vc", i, vc[1], vc[2], vc[3], 0.0))
        if not nxt:
            for vowel in g.syllable.vowels:
                end = bank.get(f"{vowel} R", g.pitch) or bank.get(f"{vowel} -", g.pitch)
                if end is not None:
                    placed.append((end, "end", i, g.t_off,
                                   _ms(out_ms(end, end.preutterance_ms, velocity)),
                                   _ms(out_ms(end, max(end.overlap_ms, 0.0), velocity)), 0.0))
                    break
    return _crossfade(placed, groups, joined, velocity)


def _vc(bank: UtauBank, g: _Group, nxt: _Group, next_entry: OtoEntry,
        velocity: float) -> tuple[OtoEntry, int, int, int] | None:
    """(entry, pos, pre, overlap) of the VC sample joining ``g`` into ``nxt``, or ``None``."""
    next_start = nxt.t_on - _ms(out_ms(next_entry, next_entry.preutterance_ms, velocity))
    for vowel in g.syllable.vowels:
        entry = bank.get(f"{vowel} {nxt.syllable.consonant}", g.pitch)
        if entry is None:
            continue
        pre = _ms(out_ms(entry, entry.preutterance_ms, velocity))
        ovl = _ms(out_ms(entry, max(entry.overlap_ms, 0.0), velocity))
        if next_start - pre >= g.t_on + MIN_VC_SHARE * (g.t_off - g.t_on):
            return entry, next_start, pre, ovl
        return None
    return None


def _crossfade(placed: list[tuple[OtoEntry, str, int, int, int, int, float]],
               groups: list[_Group], joined: list[bool], velocity: float) -> list[Unit]:
    units: list[Unit] = []
    placed.sort(key=lambda p: p[3] - p[4])
    for k, (entry, kind, gi, pos, pre, ovl, skip) in enumerate(placed):
        start = pos - pre
        fade_in = max(ovl, MIN_FADE_SAMPLES)
        after = placed[k + 1] if k + 1 < len(placed) else None
        chained = after is not None and (after[2] == gi or joined[after[2]])
        if after is not None and chained:
            next_start, next_ovl = after[3] - after[4], after[5]
            fade_out = max(next_ovl, MIN_FADE_SAMPLES)
            stop = next_start + max(next_ovl, MIN_FADE_SAMPLES) if next_ovl >= 0 \
                else next_start + next_ovl
        elif kind == "end":
            natural = _ms(out_ms(entry, entry.length_ms, velocity)) - _ms(skip)
            fade_out, stop = 4 * MIN_FADE_SAMPLES, start + natural
        else:
            fade_out, stop = RELEASE_SAMPLES, groups[gi].t_off + RELEASE_SAMPLES
        stop = max(stop, start + 2 * MIN_FADE_SAMPLES)
        fade_out = min(fade_out, stop - start - 1)
        units.append(Unit(entry, kind, groups[gi].first, groups[gi].pitch, pos, start, stop,
                          min(fade_in, stop - start), fade_out, skip))
    return units
