"""A duet rendered causally: the performer heard chunk by chunk, the idol re-timed and sung.

This is the live engine's loop without the wall clock (rehearsal, offline evaluation, tests):
after each 10 ms of the performer's input arrives (``latency_samples`` after it was made),
or on each MIDI note-on's own sample, the follower updates, the idol's coming notes are
re-timed from the first sample the live pacer could still change then (``edit_horizon``:
the next 5 ms chunk boundary at least its 4 ms edit margin ahead), and the idol's audio is
rendered up to there. So the idol never uses anything it could not have heard yet, nor
changes audio the live engine would already have rendered for good. The output is the idol
alone; output sample 0 = input sample 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ, AudioChunk, Note
from singer.ensemble import Ensemble, SingerLine
from singer.follow.events import PerformerEvent
from singer.follow.follower import FollowState, ScoreFollower, SilencePolicy
from singer.follow.harmony import INTERVALS, Interval, estimate_key, harmony_part, harmony_pitch
from singer.follow.part import FollowedPart, find_part
from singer.follow.retime import IdolRetimer, idol_notes
from singer.score import Score, ScoreError
from singer.synth import HarmonicNoiseSynth
from singer.voices import get_voice

CHUNK_SAMPLES = 240
"""The live show's chunk (``serve --chunk-ms 5``): an edit starts on a chunk boundary."""
EDIT_MARGIN_S = 0.004
"""The live pacer's edit margin (``stage.pacer.PacerConfig.edit_margin_s``): the first chunk
an edit can change starts at least this long after the edit is asked for. (The pacer's
lookahead costs no edit latency: an edit renders again what was rendered ahead.)"""
HOLD_RETIME_S = 0.05
HARMONY = "harmony"
"""The idol line singing harmony to the performer."""
REPITCH_SEMITONES = 0.7
"""A performer this far off the written note is harmonised from what they sang ..."""
REPITCH_FROM_S, REPITCH_UNTIL_S = 0.08, 0.15
"""... judged on the pitch heard from 80 to 150 ms after the note's onset (the glide into it
and the overshoot after a leap left out)."""


@dataclass
class DuetResult:
    """The idol's audio (float32 mono, 48 kHz) and the follower's log."""

    audio: np.ndarray
    log: list[FollowState]
    notes: dict[str, list[Note]] = field(default_factory=dict)
    retimes: int = 0

    def write(self, folder: Path) -> None:
        """``folder/audio.wav`` (the idol alone) and ``folder/follow.jsonl``."""
        import soundfile as sf

        folder.mkdir(parents=True, exist_ok=True)
        sf.write(str(folder / "audio.wav"), self.audio, SAMPLE_RATE_HZ, subtype="FLOAT")
        with open(folder / "follow.jsonl", "w", encoding="utf-8") as fh:
            for state in self.log:
                fh.write(json.dumps(state.as_json()) + "\n")


def edit_horizon(heard_sample: int) -> int:
    """The first show sample an edit asked for at ``heard_sample`` can change in a live show
    (``AudioPacer.earliest_editable_sample``): the next chunk boundary at least
    ``EDIT_MARGIN_S`` ahead."""
    at = heard_sample + int(EDIT_MARGIN_S * SAMPLE_RATE_HZ)
    return -(-at // CHUNK_SAMPLES) * CHUNK_SAMPLES


def idol_parts(score: Score, follow: str, sing: Sequence[str] | None) -> list[str]:
    """Names of the parts the idol sings: ``sing`` (checked) or all but the followed one."""
    followed = find_part(score, follow).name
    if sing:
        return [find_part(score, name).name for name in sing]
    names = [p.name for p in score.parts if p.name != followed]
    if not names:
        raise ScoreError(f"{score.source or score.title}: only the part {followed!r}; "
                         "nothing left for the idol to sing (name one with --sing)")
    return names


class DuetSession:
    """One follower, the idol's lines and their re-timers; ``hear_*`` then ``render_to``."""

    def __init__(self, score: Score, follow: str, *, sing: Sequence[str] | None = None,
                 voice: str = "soprano", midi: bool = False, seed: int = 0,
                 on_silence: SilencePolicy = "hold", loose_beats: float = 1.0,
                 harmony: Interval | None = None,
                 synth: HarmonicNoiseSynth | None = None) -> None:
        """``harmony``: the idol sings the performer's line that far away in the song's key
        (re-pitched from the performer's live pitch where it strays from the score) instead
        of the other parts (unless ``sing`` names some)."""
        self.part = FollowedPart.of(score, follow)
        self.harmony = harmony
        self.key = estimate_key(score)
        parts = {p.name: p for p in score.parts}
        names = [] if harmony is not None and not sing else idol_parts(score, follow, sing)
        if harmony is not None:
            if harmony not in INTERVALS:
                raise ValueError(f"harmony {harmony!r}: want one of {', '.join(INTERVALS)}")
            parts[HARMONY] = harmony_part(find_part(score, follow), self.key, harmony, HARMONY)
            names.append(HARMONY)
        self.follower = ScoreFollower(self.part, midi=midi, on_silence=on_silence)
        self.synth = synth or HarmonicNoiseSynth()
        profile = get_voice(voice)
        self.retimers: dict[str, IdolRetimer] = {}
        lines = []
        for i, name in enumerate(names):
            part = parts[name]
            retimer = IdolRetimer(idol_notes(part, score.tempo_map), score.tempo_map,
                                  loose_beats=loose_beats, call=self.part)
            self.retimers[name] = retimer
            lines.append(SingerLine(name, profile, retimer.notes, seed=seed + i,
                                    hop=self.synth.hop))
        self.ensemble = Ensemble(self.synth, lines)
        self.rendered_until = 0
        self._audio: list[np.ndarray] = []
        self.retimes = 0
        self._last_hold_retime = -(1 << 40)
        self.log: list[FollowState] = []
        # the note heard last: its index, its onset, its pitches heard since
        self._sung: tuple[int, int, list[float]] | None = None

    def retime(self, horizon: int, repitched: frozenset[str] = frozenset()) -> bool:
        """Re-time every idol line from ``horizon`` on; True if a note moved."""
        moved = False
        for name, retimer in self.retimers.items():
            if retimer.update(self.follower, horizon) or name in repitched:
                line = self.ensemble.line(name)
                assert line is not None
                line.set_notes(retimer.notes, changed_from=horizon)
                moved = True
        if moved:
            self.retimes += 1
        return moved

    def after_hearing(self, states: list[FollowState], heard_sample: int) -> None:
        """The follower heard up to ``heard_sample``: re-time what can still change."""
        self.log += states
        horizon = max(edit_horizon(heard_sample), self.rendered_until)
        # held notes and phrase ends (the idol may answer once the call is heard to end)
        # are re-timed as time passes, not only at onsets
        waiting = self.follower.holding(heard_sample) or self.follower.at_phrase_end()
        due = waiting and heard_sample - self._last_hold_retime >= HOLD_RETIME_S * SAMPLE_RATE_HZ
        repitched = self._repitch(states, heard_sample)
        if states or due or repitched:
            # What is before the horizon was sung with the notes as they were: render it
            # now (deferred until here, it is the same audio as rendered chunk by chunk).
            self.render_to(horizon)
            self.retime(horizon, repitched)
            if due:
                self._last_hold_retime = heard_sample

    def _repitch(self, states: list[FollowState], heard_sample: int) -> frozenset[str]:
        """Harmony from the performer's live pitch where it strays from the written note:
        judged once on the pitch held ``REPITCH_FROM_S``..``REPITCH_UNTIL_S`` after the
        note's onset."""
        if self.harmony is None:
            return frozenset()
        if states:
            self._sung = (states[-1].note_index, states[-1].sample, [])
        if self._sung is None:
            return frozenset()
        index, onset, pitches = self._sung
        since_s = (heard_sample - onset) / SAMPLE_RATE_HZ
        if since_s >= REPITCH_FROM_S:
            pitches.append(self.follower.live_pitch_midi)
        if since_s < REPITCH_UNTIL_S:
            return frozenset()
        self._sung = None  # judged once
        held = np.array(pitches)
        held = held[np.isfinite(held)]
        written = self.part.notes[index]
        if len(held) < 3:
            return frozenset()
        sung = float(np.median(held))
        if abs(sung - written.pitch_midi) <= REPITCH_SEMITONES or \
                round(sung) == round(written.pitch_midi):
            return frozenset()
        target = harmony_pitch(round(sung), self.key, self.harmony)
        if self.retimers[HARMONY].repitch(written.beat_on, target):
            return frozenset({HARMONY})
        return frozenset()

    def render_to(self, end_sample: int, block_samples: int = 24_000) -> None:
        """Sing the idol from where it stopped up to ``end_sample`` (into ``audio``)."""
        while self.rendered_until < end_sample:
            n = min(block_samples, end_sample - self.rendered_until)
            self._audio.append(self.ensemble.render_mix_samples(self.rendered_until, n))
            self.rendered_until += n

    @property
    def audio(self) -> np.ndarray:
        """The idol's audio rendered so far (float32, from show sample 0)."""
        if not self._audio:
            return np.zeros(0, np.float32)
        return np.concatenate(self._audio).astype(np.float32)

    def notes(self) -> dict[str, list[Note]]:
        """Each idol line as finally scheduled."""
        return {name: r.notes for name, r in self.retimers.items()}


def duet_from_audio(session: DuetSession, chunks: Iterable[AudioChunk],
                    latency_samples: int = 0, tail_s: float = 1.0) -> DuetResult:
    """Follow the performer's audio ``chunks`` (contiguous, from show sample 0)."""
    end = 0
    for chunk in chunks:
        states = session.follower.feed_audio(chunk.samples)
        session.after_hearing(states, chunk.end + latency_samples)
        end = chunk.end
    session.render_to(max(end, _last_off(session)) + int(tail_s * SAMPLE_RATE_HZ))
    return DuetResult(session.audio, session.log, session.notes(), session.retimes)


def duet_from_midi(session: DuetSession, events: Iterable[PerformerEvent],
                   end_sample: int | None = None, tail_s: float = 1.0,
                   hop_samples: int = 480) -> DuetResult:
    """Follow the performer's note-ons, each acted on at its own ``decided_sample`` (a
    note-on is exact and instantaneous: the live loop wakes on its arrival), and every
    ``hop_samples`` between them (holds and phrase ends are re-timed as time passes)."""
    pending = sorted(events, key=lambda e: e.decided_sample)
    last = pending[-1].decided_sample if pending else 0
    stop = end_sample if end_sample is not None else last + 4 * SAMPLE_RATE_HZ
    k = 0
    for tick in range(hop_samples, stop + hop_samples, hop_samples):
        while k < len(pending) and pending[k].decided_sample <= tick:
            heard = pending[k].decided_sample
            states: list[FollowState] = []
            while k < len(pending) and pending[k].decided_sample == heard:
                state = session.follower.feed_midi(pending[k])
                if state is not None:
                    states.append(state)
                k += 1
            session.follower.heard_sample = max(session.follower.heard_sample, heard)
            session.after_hearing(states, heard)
        session.follower.heard_sample = tick
        session.after_hearing([], tick)
    session.render_to(max(stop, _last_off(session)) + int(tail_s * SAMPLE_RATE_HZ))
    return DuetResult(session.audio, session.log, session.notes(), session.retimes)


def _last_off(session: DuetSession) -> int:
    return max((n.t_off for notes in session.notes().values() for n in notes), default=0)
