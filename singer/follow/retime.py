"""Re-timing the idol's coming notes on the show clock from where the performer is predicted.

Antescofo's two synchronisation strategies, per note: at a phrase start of the idol's line
(and after any jump bigger than ``JUMP_BEATS``, and for a note the performer has already
reached: its onset was heard) the note goes exactly where the follower predicts or heard the
performer to be (*tight*); inside a phrase the schedule bends towards the
prediction over ``loose_beats`` of score (*loose*), so a sung phrase keeps its shape and
never lurches. Notes already started keep their start; only their ends move. Nothing is
placed before ``horizon`` (the first sample an edit can still change), so the voice never
jumps or clicks: it re-renders only audio not yet played.

Call and response: an idol phrase that answers a phrase of the performer is placed from the
call's heard end (``ScoreFollower.phrase_end_sample``) at the performer's tempo.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.follow.follower import ScoreFollower
from singer.follow.part import PHRASE_REST_BEATS, FollowedPart
from singer.score import Part
from singer.tempo import TempoMap

JUMP_BEATS = 0.5
LEGATO_BEATS = 0.02
TREND_AFTER_BEATS = 1.5
"""An idol note this many beats or more past the performer's last onset heard is moved by
the tempo's trend (MIDI) and waits by its uncertainty (``_across_held_note``)."""
WAIT_SHARE = 1.0
"""An idol note due with a performer note across a long one waits this many standard
deviations of the prediction (``KalmanTempo.sd_s``). On ``bench duet``'s rubato curve: MIDI
p95 74.6 -> 37.3 ms, audio 86.1 -> 72.4 ms; no other curve moved by over 4 ms
(docs/benchmarks.md)."""
MOVE_SAMPLES = 24
"""Moves smaller than this (0.5 ms) are not worth an edit."""


@dataclass(frozen=True, slots=True)
class IdolNote:
    """One idol note in score beats, with the note it sings."""

    beat_on: float
    beat_off: float
    note: Note
    phrase_start: bool


def idol_notes(part: Part, tempo_map: TempoMap) -> list[IdolNote]:
    """The notes of an idol's part in score beats, with its phrase starts marked."""
    out: list[IdolNote] = []
    last_off: float | None = None
    for note in part.notes:
        on, off = tempo_map.sample_to_beat(note.t_on), tempo_map.sample_to_beat(note.t_off)
        phrase = last_off is None or on - last_off >= PHRASE_REST_BEATS
        out.append(IdolNote(on, off, note, phrase))
        last_off = off
    return out


@dataclass(frozen=True, slots=True)
class Response:
    """An idol phrase that answers a phrase of the performer (call and response): it starts
    after the call's last note ends and before the performer's next note."""

    call_index: int
    """The performer's note that ends the call (``FollowedPart.notes`` index)."""
    call_end_beat: float
    first: int
    """The idol notes ``first``..``stop`` - 1 make the response."""
    stop: int


def responses(line: list[IdolNote], call: FollowedPart) -> list[Response]:
    """The idol's phrases in ``line`` that answer a phrase of the performer's part."""
    out: list[Response] = []
    notes = call.notes
    for k, n in enumerate(line):
        if not n.phrase_start:
            continue
        ended = [c for c, p in enumerate(notes) if p.beat_off <= n.beat_on + LEGATO_BEATS]
        if not ended:
            continue
        c = ended[-1]
        nxt = notes[c + 1].beat_on if c + 1 < len(notes) else float("inf")
        if nxt <= n.beat_on or (c + 1 < len(notes) and not notes[c + 1].phrase_start):
            continue  # the performer is still singing then: not an answer
        stop = k
        while stop < len(line) and line[stop].beat_on < nxt:
            stop += 1
        out.append(Response(c, notes[c].beat_off, k, stop))
    return out


class IdolRetimer:
    """Keeps one idol line's schedule (``notes``, on the show clock) in step with a follower.

    Before the follower's first match the line sits on the score's own tempo from
    ``start_sample``.
    """

    def __init__(self, line: list[IdolNote], tempo_map: TempoMap, start_sample: int = 0,
                 loose_beats: float = 1.0, call: FollowedPart | None = None) -> None:
        """``call``: the performer's part, to find the idol's responses to its phrases
        (placed from the heard end of the call, at the performer's tempo)."""
        self.line = line
        self.loose_beats = loose_beats
        self.responses = responses(line, call) if call is not None else []
        self.times: list[tuple[int, int]] = [
            (start_sample + tempo_map.beat_to_sample(n.beat_on),
             start_sample + tempo_map.beat_to_sample(n.beat_off)) for n in line]
        self.dropped: set[int] = set()

    @property
    def notes(self) -> list[Note]:
        """The line as it is scheduled now."""
        return [replace(n.note, t_on=on, t_off=off)
                for k, (n, (on, off)) in enumerate(zip(self.line, self.times, strict=True))
                if k not in self.dropped and off > on]

    def update(self, follower: ScoreFollower, horizon: int) -> bool:
        """Re-time the notes not yet started at ``horizon``; True if any moved."""
        if not follower.started:
            return False
        now_beat = follower.beat_at(horizon)
        period = follower.tempo.period_s * SAMPLE_RATE_HZ
        heard = follower.matcher.current
        heard_beat = float(follower.part.onsets[heard]) if heard >= 0 else -1.0
        answered = self._answers(follower, horizon, period)
        changed = False
        new_times = list(self.times)
        floor = -1  # no note may start before the previous one
        for k, n in enumerate(self.line):
            on, off = self.times[k]
            if k in self.dropped:
                continue
            if off <= horizon:  # sung and over: kept as it was
                floor = max(floor, on)
                continue
            started = on < horizon
            origin = answered.get(k)
            target_off = follower.sample_of(n.beat_off) if origin is None \
                else origin[0] + (n.beat_off - origin[1]) * period
            if started:
                new_on = on
            else:
                target_on = follower.sample_of(n.beat_on) if origin is None \
                    else origin[0] + (n.beat_on - origin[1]) * period
                if origin is None and not follower.holding(horizon):
                    target_on += _across_held_note(follower, n.beat_on)
                error_beats = abs(on - target_on) / period
                # a note the performer has reached (heard) goes where they are: exact
                reached = n.beat_on <= heard_beat + 1e-3
                tight = n.phrase_start or error_beats > JUMP_BEATS or self.loose_beats <= 0 \
                    or origin is not None or reached
                share = 1.0 if tight else _loose_share(n.beat_on - now_beat, self.loose_beats)
                new_on = int(round(on + (target_on - on) * share))
                if n.beat_on < now_beat - 1e-6 and target_off <= horizon:
                    self.dropped.add(k)  # the performer is past it: never sung
                    changed = True
                    continue
                new_on = max(new_on, horizon, floor)
            new_off = int(round(target_off))
            new_times[k] = (new_on, new_off)
            # Legato: the previous note ends where this one starts.
            j = self._previous(k)
            if j is not None and abs(self.line[j].beat_off - n.beat_on) <= LEGATO_BEATS:
                p_on, _ = new_times[j]
                if new_on >= horizon or new_times[j][1] > horizon:
                    new_times[j] = (p_on, max(new_on, p_on + 1))
            floor = max(floor, new_on)
        for k, ((a_on, a_off), (b_on, b_off)) in enumerate(zip(self.times, new_times,
                                                              strict=True)):
            if k in self.dropped:
                continue
            if a_off <= horizon:  # over: it stays as it was sung
                new_times[k] = (a_on, a_off)
                continue
            b_off = max(b_off, horizon, b_on + 1)
            new_times[k] = (b_on, b_off)
            if abs(a_on - b_on) > MOVE_SAMPLES or abs(a_off - b_off) > MOVE_SAMPLES:
                changed = True
        if changed:
            self.times = new_times
        return changed

    def _answers(self, follower: ScoreFollower, horizon: int, period: float
                 ) -> dict[int, tuple[float, float]]:
        """Each note of a response whose call has ended (or is ending now): (show sample,
        score beat) it is placed from -- the response's first note, which goes the score's
        gap after the call's heard end, at the performer's tempo."""
        out: dict[int, tuple[float, float]] = {}
        for r in self.responses:
            end = follower.phrase_end_sample(r.call_index)
            if end is None:
                continue
            first = self.line[r.first]
            on = self.times[r.first][0]
            if on < horizon and r.first not in self.dropped:  # started: the rest follows it
                origin = (float(on), first.beat_on)
            else:
                origin = (max(end + (first.beat_on - r.call_end_beat) * period, horizon),
                          first.beat_on)
            for k in range(r.first, r.stop):
                out[k] = origin
        return out

    def repitch(self, beat_on: float, pitch_midi: float) -> bool:
        """Sing the note at score ``beat_on`` at ``pitch_midi`` instead; True if it changed."""
        for k, n in enumerate(self.line):
            if abs(n.beat_on - beat_on) < 1e-3:
                if n.note.pitch_midi == pitch_midi:
                    return False
                self.line[k] = replace(n, note=replace(n.note, pitch_midi=pitch_midi))
                return True
        return False

    def _previous(self, k: int) -> int | None:
        j = k - 1
        while j >= 0 and j in self.dropped:
            j -= 1
        return j if j >= 0 else None


def _loose_share(beats_ahead: float, loose_beats: float) -> float:
    """Inside a phrase, the share of the way to the prediction a note moves: half for a note
    about to start, all of it for one ``loose_beats`` or more ahead."""
    return min(1.0, max(0.5, 0.5 + 0.5 * beats_ahead / loose_beats))


def _across_held_note(follower: ScoreFollower, beat: float) -> float:
    """Samples an idol note is moved by when it falls with a performer note still to be
    heard, far (``TREND_AFTER_BEATS`` or more) past the last one heard: across a long note
    the plain prediction misses by as much as the tempo drifted meanwhile. MIDI: the tempo's
    recent trend, integrated over the beats ahead. Both inputs: a wait of ``WAIT_SHARE`` of
    the prediction's standard deviation (``KalmanTempo.sd_s``, growing with the span): the
    note is placed where the performer is expected plus a share of its uncertainty, and
    once their note is heard it goes where they are (it is then *reached*: tight)."""
    anchor = follower.tempo.anchor
    if anchor is None or beat - anchor.beat < TREND_AFTER_BEATS:
        return 0.0
    onsets = follower.part.onsets
    j = int(np.searchsorted(onsets, beat - 1e-3))
    if j >= len(onsets) or abs(onsets[j] - beat) > 1e-3 or follower.matcher.current >= j:
        return 0.0
    shift = WAIT_SHARE * follower.tempo.sd_s(beat)
    if follower.midi:  # (audio onsets jitter too much for a trend: measured worse, 28 -> 31 ms)
        shift += follower.tempo.trend_s(beat)
    return shift * SAMPLE_RATE_HZ
