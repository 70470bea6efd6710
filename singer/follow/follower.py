"""The score follower: where the performer is in their part, how fast they go, what comes next.

Audio goes through the YIN tracker and the onset detector; MIDI note-ons come in as events
directly. Each onset steps the note matcher (an HMM over the part's notes); a confident match
updates the Kalman tempo model, which then predicts the show sample of any coming beat. Work
per 10 ms hop is one YIN frame; per onset, one HMM step over a bounded window of notes.

Between onsets the performer is assumed to go on at the estimated tempo, up to the next note
they owe: once that is overdue by ``hold_s`` (a fermata, a held breath) the follower holds its
position there until they sing again. After ``silence_s`` without a voiced frame the director's
choice applies: ``on_silence="hold"`` keeps holding, ``"carry"`` carries on at the last tempo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ
from singer.follow.events import OnsetDetector, PerformerEvent
from singer.follow.matcher import Match, NoteMatcher
from singer.follow.part import FollowedPart
from singer.follow.pitch import YinTracker
from singer.follow.tempo import KalmanTempo

SILENT_AFTER_S = 0.05
"""A phrase's end is heard once the performer has been unvoiced this long (5 hops)."""
MIN_CONFIDENCE = 0.3
"""Matches less sure than this (or off pitch by over a semitone) move no tempo."""
HOLD_BEATS = 0.5
AUDIO_ONSET_SD_S = 0.015
"""How far a sung onset found by ``OnsetDetector`` sits from its vowel (standard deviation;
median 6 ms, p95 < 40 ms on the project's voice at 20 dB SNR): the part of the tempo
model's misses that is not the performer's tempo (``KalmanTempo.sd_s``)."""
SilencePolicy = Literal["hold", "carry"]


@dataclass(frozen=True, slots=True)
class FollowState:
    """The follower's view after an event (one row of ``follow.jsonl``)."""

    sample: int
    """Show sample of the event (the onset heard)."""
    decided_sample: int
    beat: float
    bpm: float
    confidence: float
    note_index: int
    pitch_midi: float

    def as_json(self) -> dict[str, object]:
        """The row ``--record`` writes and the MQTT state carries."""
        return {"show_sample": self.sample, "decided_sample": self.decided_sample,
                "beat": round(self.beat, 4), "bpm": round(self.bpm, 3),
                "confidence": round(self.confidence, 4), "note": self.note_index,
                "pitch": round(self.pitch_midi, 3)}


class ScoreFollower:
    """Follows one performer through ``part``: ``feed_audio``/``feed_midi`` then ask
    ``sample_of(beat)`` or ``beat_at(sample)``."""

    def __init__(self, part: FollowedPart, *, start_sample: int = 0, midi: bool = False,
                 on_silence: SilencePolicy = "hold", silence_s: float = 2.0) -> None:
        if on_silence not in ("hold", "carry"):
            raise ValueError(f"on_silence must be 'hold' or 'carry', got {on_silence!r}")
        self.part = part
        self.on_silence = on_silence
        self.silence_samples = int(silence_s * SAMPLE_RATE_HZ)
        self.midi = midi
        self.tempo = KalmanTempo(part.bpm, miss_jitter_s=0.0 if midi else AUDIO_ONSET_SD_S)
        self.matcher = NoteMatcher(part, pitch_sigma=0.25 if midi else 0.6)
        self._tracker = YinTracker(start_sample)
        self._detector = OnsetDetector()
        self.history: list[FollowState] = []
        self.last_voiced_sample = start_sample
        self.heard_sample = start_sample
        self.live_pitch_midi = float("nan")
        self.events = 0

    @property
    def started(self) -> bool:
        """True once a first note was matched."""
        return self.tempo.anchor is not None

    def feed_audio(self, samples: np.ndarray) -> list[FollowState]:
        """The performer's next 48 kHz samples (contiguous with the previous ones)."""
        out: list[FollowState] = []
        for frame in self._tracker.process(samples):
            self.heard_sample = frame.t_sample
            for event in self._detector.process([frame]):
                state = self.on_event(event)
                if state is not None:
                    out.append(state)
            if self._detector.voiced:
                self.last_voiced_sample = frame.t_sample
                self.live_pitch_midi = frame.midi
            else:
                self.live_pitch_midi = float("nan")
        return out

    def resync(self, sample: int) -> None:
        """The next audio starts at show ``sample`` (after a gap in a live input): the
        tracker starts afresh there; the score position and tempo are kept."""
        self._tracker.reset(sample)
        self._detector.reset()
        self.heard_sample = sample

    def feed_midi(self, event: PerformerEvent) -> FollowState | None:
        """A MIDI note-on the performer played."""
        self.heard_sample = max(self.heard_sample, event.decided_sample)
        self.last_voiced_sample = max(self.last_voiced_sample, event.onset_sample)
        return self.on_event(event)

    def on_event(self, event: PerformerEvent) -> FollowState | None:
        """Step the matcher and the tempo model with one onset."""
        self.events += 1
        match: Match = self.matcher.step(event.pitch_midi, event.onset_sample,
                                         self.tempo.period_s)
        if match.index < 0:
            return None
        note = self.part.notes[match.index]
        # A second onset on the note already matched (a level dip inside a held note) says
        # nothing of the beat: it moves neither the tempo nor where the performer is.
        trusted = match.confidence >= MIN_CONFIDENCE and abs(match.pitch_error) <= 1.0 \
            and match.step != 0
        if not trusted and self.started:
            state = FollowState(event.onset_sample, event.decided_sample,
                                self.tempo.beat_at(event.onset_sample), self.tempo.bpm,
                                match.confidence, match.index, event.pitch_midi)
        else:
            self.tempo.update(note.beat_on, event.onset_sample, jump=match.step != 1)
            state = FollowState(event.onset_sample, event.decided_sample, note.beat_on,
                                self.tempo.bpm, match.confidence, match.index, event.pitch_midi)
        self.history.append(state)
        return state

    # -- predictions ----------------------------------------------------------------------

    def _owed_beat(self) -> float | None:
        """Score beat of the next note the performer owes (None past the last one)."""
        nxt = self.matcher.current + 1
        return float(self.part.onsets[nxt]) if nxt < len(self.part) else None

    def holding(self, now: int) -> bool:
        """True while the performer is overdue on their next note (fermata, pause)."""
        if not self.started:
            return False
        owed = self._owed_beat()
        if owed is None:
            return False
        silent = now - self.last_voiced_sample > self.silence_samples
        if silent and self.on_silence == "carry":
            return False
        hold_s = max(HOLD_BEATS * self.tempo.period_s, 0.15)
        return now > self.tempo.sample_of(owed) + hold_s * SAMPLE_RATE_HZ

    def at_phrase_end(self) -> bool:
        """True while the last note matched ends a phrase of the performer's part (the
        idol may be due to answer it: re-time as the end is heard)."""
        if not self.started:
            return False
        nxt = self.matcher.current + 1
        return self.matcher.current >= 0 and (nxt >= len(self.part)
                                              or self.part.notes[nxt].phrase_start)

    def phrase_end_sample(self, index: int, now: int | None = None) -> float | None:
        """Where the performer ended their note ``index`` (the last of a phrase: call and
        response), as known at ``now``: its onset plus its written length at their tempo;
        for audio, later if they held it on (the last voiced frame once they fell silent,
        ``now`` while they still sound it). None until that note was the last one matched.
        """
        if not self.started or self.matcher.current != index or not self.history:
            return None
        now = self.heard_sample if now is None else now
        onset = next((s.sample for s in reversed(self.history) if s.note_index == index),
                     None)
        if onset is None:
            return None
        note = self.part.notes[index]
        written = onset + (note.beat_off - note.beat_on) * self.tempo.period_s * SAMPLE_RATE_HZ
        if self.midi or self.last_voiced_sample <= written:
            return written
        if now - self.last_voiced_sample < SILENT_AFTER_S * SAMPLE_RATE_HZ:
            return float(now)  # still sounding past its written end: not over yet
        return float(self.last_voiced_sample)

    def beat_at(self, sample: int, now: int | None = None) -> float:
        """Where the performer is (or will be) at show ``sample``, as known at ``now``."""
        now = self.heard_sample if now is None else now
        beat = self.tempo.beat_at(sample)
        if self.holding(now):
            owed = self._owed_beat()
            assert owed is not None
            return min(beat, owed + (sample - now) / (self.tempo.period_s * SAMPLE_RATE_HZ))
        return beat

    def sample_of(self, beat: float, now: int | None = None) -> float:
        """Show sample at which the performer is predicted to reach ``beat`` (as of ``now``).

        While holding, beats past the owed note move on with the clock: they stay as far
        ahead of ``now`` as they were when the hold began.
        """
        now = self.heard_sample if now is None else now
        predicted = self.tempo.sample_of(beat)
        if self.holding(now):
            owed = self._owed_beat()
            assert owed is not None
            if beat >= owed:
                hold_s = max(HOLD_BEATS * self.tempo.period_s, 0.15)
                late = now - (self.tempo.sample_of(owed) + hold_s * SAMPLE_RATE_HZ)
                return predicted + late
        return predicted
