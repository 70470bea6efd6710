"""What the follower hears: note onsets found in a sung line, or played on a MIDI input.

``OnsetDetector`` turns pitch frames into ``PerformerEvent``s: a note starts where voicing
starts after a gap, where the pitch settles on a new note (a step of over ``STEP_SEMITONES``),
or where the level rises again after a dip (a repeated note sung on one pitch). An event is
issued once ``CONFIRM_FRAMES`` frames agree on its pitch, and stamped with the show sample at
which the note began (the decision itself comes ``decided_sample`` later).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ
from singer.follow.pitch import FRAME_DELAY_S, HOP_S, PitchFrame

STEP_SEMITONES = 0.8
CONFIRM_FRAMES = 3
"""Frames (10 ms at 5 ms hops) that must agree on a new note's pitch before it is issued."""
STABLE_SEMITONES = 0.5
"""The confirming frames must agree within this (a glide is still moving)."""
MAX_PENDING_FRAMES = round(0.12 / HOP_S)
"""A new note that has not settled within 120 ms is a slide, not a note."""
GAP_FRAMES = round(0.02 / HOP_S)
"""Unvoiced for 20 ms: the next voiced frame starts a note (after a consonant or a breath)."""
PEAK_DECAY_DB = 5.0 * HOP_S
"""The loudest level heard lately decays 5 dB a second ..."""
SEGMENT_DECAY_DB = 30.0 * HOP_S
"""... a note's own level 30 dB a second (a dip under it, then a rise, is a repeated note)."""
SEGMENT_PITCH_SMOOTHING = 20.0 * HOP_S
"""Share of each frame's pitch in a held note's running pitch (a time constant of 50 ms)."""
MIN_IOI_S = 0.07
"""Onsets closer than this to the previous one are the same note."""
MIN_PERIODICITY = 0.6
FLOOR_DB = -50.0
"""Frames quieter than this (dBFS) are silence whatever their periodicity."""
RELATIVE_FLOOR_DB = 30.0
"""... and so are frames this far under the loudest frame heard lately."""
DIP_DB = 5.0
"""A level dip of this much inside a voiced stretch, then a rise, starts a repeated note."""
ONSET_OFFSET_S = 0.002
"""Calibration, measured on the project's voices: a vowel begins this long after the centre
of its first voiced frame's window (negative: before; tests/singer/follow/test_pitch.py)."""


@dataclass(frozen=True, slots=True)
class PerformerEvent:
    """A performer's note began at show sample ``onset_sample`` with ``pitch_midi``.

    ``decided_sample`` is when the follower could know it (audio: after confirmation; MIDI:
    on arrival); ``kind`` says where it came from: ``"audio"`` or ``"midi"``.
    """

    onset_sample: int
    pitch_midi: float
    decided_sample: int
    kind: str = "audio"
    velocity: float = 0.8
    cause: str = ""
    """Audio: what started it (``voice`` after a gap, a pitch ``step``, a level ``dip``)."""


class OnsetDetector:
    """Pitch frames in, note onsets out; ``reset()`` forgets the line heard so far."""

    def __init__(self) -> None:
        self._delay = int(round((FRAME_DELAY_S - ONSET_OFFSET_S) * SAMPLE_RATE_HZ))
        self.reset()

    def reset(self) -> None:
        """Forget everything heard: the next voiced frame may start a note."""
        self._pending: list[PitchFrame] = []
        self._candidate_kind = ""
        self._seg_pitch: float | None = None
        self._seg_level = -120.0
        self._valley_db = 0.0
        self._peak_db = -120.0
        self._unvoiced = 99
        self._last_onset = -(1 << 40)
        self.level_db = -120.0
        self.voiced = False

    def process(self, frames: list[PitchFrame]) -> list[PerformerEvent]:
        """Events completed by ``frames`` (in order)."""
        out: list[PerformerEvent] = []
        for frame in frames:
            event = self._step(frame)
            if event is not None:
                out.append(event)
        return out

    def _is_voiced(self, frame: PitchFrame) -> bool:
        self._peak_db = max(frame.rms_db, self._peak_db - PEAK_DECAY_DB)
        return (frame.f0_hz > 0 and frame.periodicity >= MIN_PERIODICITY
                and frame.rms_db > FLOOR_DB
                and frame.rms_db > self._peak_db - RELATIVE_FLOOR_DB)

    def _step(self, frame: PitchFrame) -> PerformerEvent | None:
        self.level_db = frame.rms_db
        voiced = self._is_voiced(frame)
        self.voiced = voiced
        if not voiced:
            self._unvoiced += 1
            self._pending = []
            self._candidate_kind = ""
            if self._unvoiced >= GAP_FRAMES:
                self._seg_pitch = None
            return None
        midi = frame.midi
        gap = self._unvoiced
        self._unvoiced = 0
        if self._seg_pitch is None or gap >= GAP_FRAMES:
            if not self._pending:
                self._candidate_kind = "voice"
            self._pending.append(frame)
            return self._confirm(frame)
        if self._pending:
            self._pending.append(frame)
            return self._confirm(frame)
        if _tracker_slip(midi - self._seg_pitch):
            return None  # an octave (or twelfth) slip of the tracker, not a sung step
        if abs(midi - self._seg_pitch) > STEP_SEMITONES:
            self._pending = [frame]
            self._candidate_kind = "step"
            return None
        # Same note carries on: follow its level for a dip-and-rise (a repeated pitch).
        self._seg_level = max(frame.rms_db, self._seg_level - SEGMENT_DECAY_DB)
        self._valley_db = min(self._valley_db, frame.rms_db)
        if (self._seg_level - self._valley_db >= DIP_DB
                and frame.rms_db - self._valley_db >= DIP_DB):
            self._pending = [frame]
            self._candidate_kind = "dip"
            self._valley_db = frame.rms_db
            return self._confirm(frame)
        self._seg_pitch += SEGMENT_PITCH_SMOOTHING * (midi - self._seg_pitch)
        return None

    def _confirm(self, frame: PitchFrame) -> PerformerEvent | None:
        pending = self._pending
        if len(pending) < CONFIRM_FRAMES:
            return None
        recent = np.array([f.midi for f in pending[-CONFIRM_FRAMES:]])
        if float(np.ptp(recent)) > STABLE_SEMITONES:
            if len(pending) >= MAX_PENDING_FRAMES:  # never settled: a slide, not a note
                self._pending = []
                self._candidate_kind = ""
            return None  # still gliding: wait for it to settle
        pitch = float(np.median(recent))
        kind = self._candidate_kind
        self._pending = []
        self._candidate_kind = ""
        if kind == "step" and self._seg_pitch is not None \
                and abs(pitch - self._seg_pitch) <= STEP_SEMITONES:
            return None  # a vibrato swing or an overshoot that came back
        self._seg_pitch = pitch
        self._seg_level = max(f.rms_db for f in pending)
        self._valley_db = self._seg_level
        onset = pending[0].t_sample - self._delay
        if onset - self._last_onset < MIN_IOI_S * SAMPLE_RATE_HZ:
            return None
        self._last_onset = onset
        return PerformerEvent(onset, pitch, frame.t_sample, "audio", cause=kind)


def _tracker_slip(semitones: float) -> bool:
    """True for a jump of an octave, a twelfth or two octaves (up or down): the tracker
    locking onto a harmonic or subharmonic, which singers almost never sing legato."""
    return any(abs(abs(semitones) - k) < 0.7 for k in (12.0, 19.02, 24.0))
