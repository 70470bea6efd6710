"""Singers and the ensemble that renders them together: one synthesizer, one forward pass.

A ``SingerLine`` owns what one singer will sing (notes and expression changes on the show
clock) and turns it into synthesis parameters lazily, in cached blocks of frames. Editing the
line (a live note, a song starting, an expression change) drops the cached blocks from the
edit on; nothing before it changes. Blocks sit on a fixed grid, so any chunking of a render
reads the same parameters.
"""

from __future__ import annotations

import bisect
import logging
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import torch

from singer.contracts import DEFAULT_HOP_SAMPLES, SAMPLE_RATE_HZ, AudioChunk, ControlFrame, Note
from singer.performer import (
    EXPRESSION_GLIDE_S,
    TAIL_S,
    ControlTrack,
    Expression,
    ExpressionEvent,
    compile_track,
    stack_controls,
)
from singer.synth import NOISE_TABLE_SIZE, FrameParams, HarmonicNoiseSynth, SynthState
from singer.timeline import build_timeline
from singer.voices import VoiceProfile

if TYPE_CHECKING:
    from singer.backends.contract import BackendLine
    from singer.backends.live import BankRef

BLOCK_FRAMES = 20
"""Frames computed together (0.2 s at the default hop): small, so a live edit recompiles
little inside the audio thread."""
PAD_FRAMES = 40
"""Context on each side of a block, so smoothing and pitch filters settle."""
CONTEXT_S = 1.0
"""Notes this far outside a block still take part (onset stealing, transitions)."""


log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class LineEdit:
    """One edit of a singer's line, small and picklable, so a copy of the ensemble in another
    process (the synthesis process) can replay it and stay sample for sample the same.

    ``op`` names the ``SingerLine`` method (``set_notes``, ``add_expression``, ``set_voice``,
    ``set_bank``, ``fold_before``, ``held_on``, ``held_off``, ``held_move``) or
    ``add_line``; ``args``
    are its arguments (``set_notes`` sends how many leading and trailing notes stay and the
    notes between them, not the whole list).
    """

    singer: str
    op: str
    args: tuple[object, ...]


EditListener = Callable[[LineEdit], None]
"""Receives every edit of an ensemble's lines, on the thread that made it."""


@dataclass(frozen=True, slots=True)
class HeldNote:
    """A note played live (note-on, end unknown until its note-off), as a phrase-ahead bank
    sings it: through ``BackendLine.queue_note_on``/``queue_note_off``, not its phrases. The
    same note is in the line's notes (``note_t_on``: its ``t_on`` there) for the built-in
    controls (lip-sync)."""

    id: int
    sample: int
    """Show sample the note's first sound is asked for (the cue's edit sample)."""
    pitch_midi: float
    lyric: str
    velocity: float
    note_t_on: int
    off_sample: int | None = None


@dataclass(frozen=True, slots=True)
class LiveReport:
    """Where a held live note really starts or ends (``Ensemble.live_reports``): the bank
    worker made its segment ready (``sample``: where it sounds; later than the ``HeldNote``
    asked when it was late), or the chunk holding the asked sample was rendered without it
    (``sample`` ``None``: not known yet, a report with the sample follows)."""

    singer: str
    held_id: int
    kind: str
    """``on`` (the first segment) or ``off`` (the release)."""
    sample: int | None


@dataclass(frozen=True, slots=True)
class LineState:
    """Everything that decides what a ``SingerLine`` sings (picklable): enough to build an
    identical line elsewhere (``SingerLine.from_state``)."""

    name: str
    voice: VoiceProfile
    seed: int
    hop: int
    expression: Expression
    notes: tuple[Note, ...]
    events: tuple[ExpressionEvent, ...]
    phrase_starts: tuple[int, ...]
    banks: tuple[tuple[int, BankRef | None], ...] = ()
    held: tuple[HeldNote, ...] = ()


BankTimeline = tuple[tuple[int, "BankRef | None"], ...]
"""Which bank sings a line from which show sample on (``None``: the built-in voice)."""
SINCE_ALWAYS = -(1 << 62)
NO_CHANGE = 1 << 62
LIVE_WAIT_MARGIN_S = 0.008
"""What a render loop keeps, before a chunk is due, to render it after waiting for a held
note's first segment (``Ensemble.seconds_until``)."""
VOICE_XFADE_SAMPLES = 480
"""Half the crossfade between two voices of a line at a switch (10 ms each side)."""


class SingerLine:
    """One singer: voice, seed, and the notes and expression changes it will sing.

    Thread-safe: the show edits it on the event loop while the synth thread renders it.
    """

    def __init__(self, name: str, voice: VoiceProfile, notes: list[Note] | tuple[Note, ...] = (),
                 seed: int = 0, expression: Expression | None = None,
                 hop: int = DEFAULT_HOP_SAMPLES, bank: BankRef | None = None) -> None:
        self.name = name
        self.hop = hop
        self.voice = voice
        self.seed = seed
        self.expression = expression or Expression()
        self._notes: list[Note] = sorted(notes, key=lambda n: n.t_on)
        self._phrase_starts = _phrase_starts(self._notes)
        self._events: list[ExpressionEvent] = []
        self._lock = threading.Lock()
        self._version = 0  # bumped by every edit: work computed for an older one is dropped
        self._tracks: dict[int, ControlTrack] = {}
        self._params: dict[tuple[int, str], FrameParams] = {}
        # Work in progress by key: a second thread wanting the same block of the same version
        # (the audio thread and the pose stream after an edit) waits for it instead of
        # computing it again beside it.
        self._inflight: dict[object, tuple[int, threading.Event]] = {}
        # A bank voice sings the notes where the timeline names one; the built-in voice's
        # controls still serve lip-sync. Watchers (the bank lines) learn where notes changed.
        self._banks: BankTimeline = ((SINCE_ALWAYS, bank),)
        self._dirty: dict[object, int] = {}
        self._held: dict[int, HeldNote] = {}
        self.listener: EditListener | None = None
        """Told of every edit (the ensemble sets it: see ``Ensemble.set_listener``)."""
        self.wake: Callable[[], None] | None = None
        """Called after a held note starts or ends (the ensemble's bank worker wakes)."""
        # Filter designs and this seed's jitter tables, now rather than on the first live note.
        compile_track([Note(0, 4 * hop, 60.0, "a", ("a",))], voice, hop=hop, seed=seed,
                      frame_range=(0, 8))

    @property
    def noise_offset(self) -> int:
        """Where this singer reads the shared noise table (from its name and seed)."""
        return zlib.crc32(f"{self.name}:{self.seed}".encode()) % NOISE_TABLE_SIZE

    @property
    def notes(self) -> list[Note]:
        """A copy of the notes, sorted by onset."""
        with self._lock:
            return list(self._notes)

    @property
    def end_sample(self) -> int:
        """Show sample after which this singer is silent (for now)."""
        with self._lock:
            last = max((n.t_off for n in self._notes), default=0)
        return last + int(TAIL_S * SAMPLE_RATE_HZ) if last else 0

    def set_notes(self, notes: list[Note], changed_from: int) -> None:
        """Replace the notes; only what sounds from show sample ``changed_from`` on changes.

        The cost follows the notes near the change, not the length of the show so far.
        """
        ordered = sorted(notes, key=lambda n: n.t_on)
        with self._lock:
            old_notes, old_starts = self._notes, self._phrase_starts
        starts = _phrase_starts_from(ordered, old_starts, changed_from)
        with self._lock:
            self._notes = ordered
            self._phrase_starts = starts
            self._invalidate(changed_from)
        if self.listener is not None:
            head, tail = _common_ends(old_notes, ordered)
            self.listener(LineEdit(self.name, "set_notes",
                                   (head, tuple(ordered[head:len(ordered) - tail]), tail,
                                    changed_from)))

    def _set_notes_between(self, head: int, middle: tuple[Note, ...], tail: int,
                           changed_from: int) -> None:
        """Replay of a ``set_notes`` edit: the first ``head`` and last ``tail`` notes stay,
        ``middle`` replaces what is between them."""
        with self._lock:
            old = self._notes
        self.set_notes(old[:head] + list(middle) + old[len(old) - tail:], changed_from)

    def held_note_on(self, held: HeldNote) -> None:
        """A live note starts (also add it to the notes, for the built-in controls): a
        phrase-ahead bank sings it as a held note (``HeldNote``)."""
        with self._lock:
            self._held[held.id] = held
        if self.listener is not None:
            self.listener(LineEdit(self.name, "held_on", (held,)))
        if self.wake is not None:
            self.wake()

    def held_note_off(self, note_id: int, sample: int) -> None:
        """The held live note ``note_id`` is released at ``sample`` (once)."""
        with self._lock:
            held = self._held.get(note_id)
            if held is None or held.off_sample is not None:
                return
            self._held[note_id] = replace(held, off_sample=sample)
        if self.listener is not None:
            self.listener(LineEdit(self.name, "held_off", (note_id, sample)))
        if self.wake is not None:
            self.wake()

    @property
    def held_notes(self) -> tuple[HeldNote, ...]:
        """The live notes started and not yet folded away, in the order they started."""
        with self._lock:
            return tuple(self._held.values())

    def held_note_moved(self, note_id: int, note_t_on: int) -> None:
        """The held note ``note_id``'s note (for lip-sync) now starts at ``note_t_on`` (its
        voice started later than asked): call before ``set_notes`` moves it there."""
        with self._lock:
            held = self._held.get(note_id)
            if held is None or held.note_t_on == note_t_on:
                return
            self._held[note_id] = replace(held, note_t_on=note_t_on)
        if self.listener is not None:
            self.listener(LineEdit(self.name, "held_move", (note_id, note_t_on)))

    def notes_without_held(self) -> list[Note]:
        """The notes a phrase-ahead bank sings as phrases: all but the held live notes."""
        with self._lock:
            held = {(h.note_t_on, h.pitch_midi) for h in self._held.values()}
            return [n for n in self._notes if (n.t_on, n.pitch_midi) not in held]

    def add_expression(self, sample: int, field: str, value: float) -> None:
        """Glide expression ``field`` to ``value`` from show sample ``sample`` on.

        A later change of the same field at the same sample replaces the earlier one (cues
        that land on one chunk coalesce: the last one wins).
        """
        with self._lock:
            self._events = [e for e in self._events if e[0] != sample or e[1] != field]
            self._events.append((sample, field, value))
            self._invalidate(sample)
        if self.listener is not None:
            self.listener(LineEdit(self.name, "add_expression", (sample, field, value)))

    @property
    def expression_events(self) -> list[ExpressionEvent]:
        """A copy of the expression changes not yet folded into ``expression``."""
        with self._lock:
            return list(self._events)

    def settled_before(self, playout_sample: int) -> int:
        """The show sample before which notes and expression changes no longer shape any
        block that can still be computed, with playout at ``playout_sample`` (the blocks
        from the one before playout on, with their padding and note context)."""
        block = playout_sample // self.hop // BLOCK_FRAMES - 1
        return (block * BLOCK_FRAMES - PAD_FRAMES) * self.hop - int(CONTEXT_S * SAMPLE_RATE_HZ)

    def fold_before(self, sample: int) -> tuple[int, int]:
        """Fold what is over by ``sample`` (from ``settled_before``) into the base state: an
        expression change whose glide has ended becomes the base ``expression``; a note that
        ended is dropped. Nothing at or after ``sample`` sounds different; the work and
        memory of a line then follow what is still to come, not the length of the show.
        Returns (events folded, notes dropped)."""
        glide = int(round(EXPRESSION_GLIDE_S * SAMPLE_RATE_HZ))
        with self._lock:
            done = sorted(e for e in self._events if e[0] + glide <= sample)
            dropped = sum(1 for n in self._notes if n.t_off < sample)
            if done:
                # in the order expression_curves applies them: the last one per field holds
                base = {e[1]: e[2] for e in done}
                self.expression = replace(self.expression, **base)
                self._events = [e for e in self._events if e[0] + glide > sample]
            if dropped:
                self._notes = [n for n in self._notes if n.t_off >= sample]
                self._phrase_starts = [s for s in self._phrase_starts if s >= sample]
                for key, was in self._dirty.items():
                    self._dirty[key] = min(was, sample)
            if any(h.off_sample is not None and h.off_sample < sample
                   for h in self._held.values()):  # released, and its note is gone too
                kept = {(n.t_on, n.pitch_midi) for n in self._notes}
                self._held = {k: h for k, h in self._held.items()
                              if h.off_sample is None or h.off_sample >= sample
                              or (h.note_t_on, h.pitch_midi) in kept}
        if (done or dropped) and self.listener is not None:
            self.listener(LineEdit(self.name, "fold_before", (sample,)))
        return len(done), dropped

    def set_voice(self, voice: VoiceProfile, from_sample: int) -> None:
        """Sing with another voice from ``from_sample`` on (takes effect at a block edge)."""
        with self._lock:
            self.voice = voice
            self._invalidate(from_sample)
        if self.listener is not None:
            self.listener(LineEdit(self.name, "set_voice", (voice, from_sample)))

    @property
    def bank(self) -> BankRef | None:
        """The bank that sings the line's latest notes (``None``: the built-in voice)."""
        with self._lock:
            return self._banks[-1][1]

    @property
    def banks(self) -> BankTimeline:
        """Which bank sings from which show sample on."""
        with self._lock:
            return self._banks

    def set_bank(self, bank: BankRef | None, from_sample: int) -> int:
        """Sing with ``bank`` (``None``: the built-in voice) from the first phrase boundary
        at or after ``from_sample``: there if nothing sounds then, else the next phrase's
        start (or ``from_sample`` when no phrase follows). The two voices crossfade there.
        Returns the switch sample."""
        tail = int(TAIL_S * SAMPLE_RATE_HZ)
        with self._lock:
            sounding = any(n.t_on - int(PHRASE_CONTEXT_S * SAMPLE_RATE_HZ) <= from_sample
                           < n.t_off + tail for n in self._notes)
            later = [s for s in self._phrase_starts if s >= from_sample]
        at = later[0] if sounding and later else from_sample
        self._switch_bank(bank, at)
        return at

    def _switch_bank(self, bank: BankRef | None, at: int) -> None:
        with self._lock:
            kept = tuple(e for e in self._banks if e[0] < at)
            self._banks = (kept or ((SINCE_ALWAYS, None),)) + ((at, bank),)
        if self.listener is not None:
            self.listener(LineEdit(self.name, "set_bank", (bank, at)))

    def watch(self, key: object) -> None:
        """Start recording where the notes change for ``key`` (see ``take_change``)."""
        with self._lock:
            self._dirty[key] = NO_CHANGE

    def take_change(self, key: object) -> int | None:
        """The earliest show sample changed since the last call for ``key`` (``None``:
        nothing changed)."""
        with self._lock:
            was = self._dirty.get(key)
            if was is None or was == NO_CHANGE:
                return None
            self._dirty[key] = NO_CHANGE
            return was

    def apply(self, edit: LineEdit) -> None:
        """Replay an edit made to a copy of this line (see ``LineEdit``)."""
        if edit.op == "set_bank":
            bank, at = edit.args
            self._switch_bank(bank, at)  # type: ignore[arg-type]
            return
        if edit.op == "set_notes":
            head, middle, tail, changed_from = edit.args
            self._set_notes_between(head, middle, tail, changed_from)  # type: ignore[arg-type]
        elif edit.op == "add_expression":
            sample, field, value = edit.args
            self.add_expression(sample, field, value)  # type: ignore[arg-type]
        elif edit.op == "set_voice":
            voice, from_sample = edit.args
            self.set_voice(voice, from_sample)  # type: ignore[arg-type]
        elif edit.op == "fold_before":
            self.fold_before(edit.args[0])  # type: ignore[arg-type]
        elif edit.op == "held_on":
            self.held_note_on(edit.args[0])  # type: ignore[arg-type]
        elif edit.op == "held_off":
            note_id, sample = edit.args
            self.held_note_off(note_id, sample)  # type: ignore[arg-type]
        elif edit.op == "held_move":
            note_id, note_t_on = edit.args
            self.held_note_moved(note_id, note_t_on)  # type: ignore[arg-type]
        else:
            raise ValueError(f"unknown edit {edit.op!r} of singer {self.name!r}")

    def state(self) -> LineState:
        """What this line sings now (see ``LineState``)."""
        with self._lock:
            return LineState(self.name, self.voice, self.seed, self.hop, self.expression,
                             tuple(self._notes), tuple(self._events),
                             tuple(self._phrase_starts), self._banks,
                             tuple(self._held.values()))

    @classmethod
    def from_state(cls, state: LineState) -> SingerLine:
        """A line singing exactly what the line ``state`` was taken from sings."""
        line = cls(state.name, state.voice, seed=state.seed, expression=state.expression,
                   hop=state.hop)
        line._notes = list(state.notes)
        line._events = list(state.events)
        line._phrase_starts = list(state.phrase_starts)
        if state.banks:
            line._banks = state.banks
        line._held = {h.id: h for h in state.held}
        return line

    def _invalidate(self, sample: int) -> None:
        """Drop cached blocks whose computation window reaches ``sample`` or later."""
        self._version += 1
        for key, was in self._dirty.items():
            self._dirty[key] = min(was, sample)
        frame = sample // self.hop
        self._drop_blocks(lambda block: (block + 1) * BLOCK_FRAMES + PAD_FRAMES > frame)

    def _drop_blocks(self, drop: Callable[[int], bool]) -> None:
        for block in [b for b in self._tracks if drop(b)]:
            del self._tracks[block]
        for key in [k for k in self._params if drop(k[0])]:
            del self._params[key]

    def track_block(self, block: int) -> ControlTrack:
        """The controls of one block of frames (cached; computed without holding the lock, so
        an edit never waits behind a compile, and once even when several threads ask)."""
        def compute() -> ControlTrack:
            with self._lock:  # a fold swaps base and events together
                notes, events, voice = self._notes, list(self._events), self.voice
                expression = self.expression
            if block < 0:
                return _silent_block(block, self.hop)
            return self._compile_block(block, notes, events, voice, expression)
        return self._cached(self._tracks, block, compute)

    def _cached(self, cache: dict[K, V], key: K, compute: Callable[[], V]) -> V:
        """``cache[key]``, computed by ``compute`` outside the lock if missing; a result
        computed for an older version (an edit came meanwhile) is computed again."""
        work_key = (id(cache), key)
        while True:
            with self._lock:
                if key in cache:
                    return cache[key]
                version = self._version
                pending = self._inflight.get(work_key)
                if pending is not None and pending[0] == version:
                    done, owner = pending[1], False
                else:
                    done, owner = threading.Event(), True
                    self._inflight[work_key] = (version, done)
            if not owner:
                done.wait(timeout=0.1)
                continue
            try:
                value = compute()
            finally:
                with self._lock:
                    if self._inflight.get(work_key, (0, None))[1] is done:
                        del self._inflight[work_key]
                done.set()
            with self._lock:
                if version == self._version:
                    cache[key] = value
                    return value

    def _compile_block(self, block: int, notes: list[Note], events: list[ExpressionEvent],
                       voice: VoiceProfile, expression: Expression) -> ControlTrack:
        hop = self.hop
        first = block * BLOCK_FRAMES - PAD_FRAMES
        stop = (block + 1) * BLOCK_FRAMES + PAD_FRAMES
        context = int(CONTEXT_S * SAMPLE_RATE_HZ)
        lo, hi = first * hop - context, stop * hop + context
        starts = [n.t_on for n in notes]
        near = [n for n in notes[:bisect.bisect_right(starts, hi)] if n.t_off >= lo]
        events = [e for e in events if e[0] <= stop * hop]
        full = compile_track(near, voice, hop=hop, seed=self.seed,
                             expression=expression, expression_events=events,
                             frame_range=(first, stop))
        keep = slice(PAD_FRAMES, PAD_FRAMES + BLOCK_FRAMES)
        return ControlTrack(
            hop=hop, f0_hz=full.f0_hz[keep], amp=full.amp[keep],
            formant_hz=full.formant_hz[keep], formant_bw_hz=full.formant_bw_hz[keep],
            formant_level=full.formant_level[keep], tension=full.tension[keep],
            breath=full.breath[keep], fric_amp=full.fric_amp[keep], fric_hz=full.fric_hz[keep],
            fric_bw_hz=full.fric_bw_hz[keep], vibrato_cents=full.vibrato_cents[keep],
            phoneme_id=full.phoneme_id[keep], phoneme_names=full.phoneme_names,
            first_frame=block * BLOCK_FRAMES)

    def params(self, synth: HarmonicNoiseSynth, first: int, count: int) -> FrameParams:
        """Synthesis parameters for show frames ``[first, first + count)``."""
        if synth.hop != self.hop:
            raise ValueError(f"singer {self.name!r} has hop {self.hop}, synth {synth.hop}")
        parts = []
        frame = first
        while frame < first + count:
            block = frame // BLOCK_FRAMES
            block_params = self.block_params(synth, block)
            lo = frame - block * BLOCK_FRAMES
            hi = min(BLOCK_FRAMES, first + count - block * BLOCK_FRAMES)
            parts.append(block_params.frames(lo, hi - lo))
            frame = block * BLOCK_FRAMES + hi
        if len(parts) == 1:
            return parts[0]
        return FrameParams(torch.cat([p.f0_hz for p in parts], 1),
                           torch.cat([p.harm_amp for p in parts], 1),
                           torch.cat([p.noise_fir for p in parts], 2))

    def has_block(self, block: int, synth: HarmonicNoiseSynth) -> bool:
        """Whether the block's synthesis parameters are cached."""
        with self._lock:
            return (block, str(synth.device)) in self._params

    def block_params(self, synth: HarmonicNoiseSynth, block: int) -> FrameParams:
        """Synthesis parameters of one block of frames (cached, computed outside the lock)."""
        key = (block, str(synth.device))

        def compute() -> FrameParams:
            track = self.track_block(block)
            return synth.frame_params(stack_controls(
                [track.window(track.first_frame, track.n_frames)], synth.device))
        return self._cached(self._params, key, compute)

    def control_frame(self, sample: int) -> ControlFrame:
        """The ``ControlFrame`` for the hop containing ``sample`` (lip-sync, status)."""
        frame = max(0, sample // self.hop)
        return self.track_block(frame // BLOCK_FRAMES).frame(frame)

    def onset_gate(self, start: int, n: int) -> np.ndarray | None:
        """Gain per sample of ``[start, start + n)`` that makes each phrase start exactly on
        its sample: silent before it, a short fade-in after (``None``: nothing to gate).

        Controls are per hop, so without it a phrase would leak in up to a hop early.
        """
        with self._lock:
            starts = self._phrase_starts
        lo = bisect.bisect_left(starts, start - ONSET_FADE_SAMPLES)
        hi = bisect.bisect_left(starts, start + n + self.hop)
        if lo == hi:
            return None
        pos = np.arange(start, start + n)
        gate = np.ones(n, dtype=np.float32)
        for onset in starts[lo:hi]:
            near = (pos >= onset - self.hop) & (pos < onset + ONSET_FADE_SAMPLES)
            gate[near] = np.minimum(gate[near],
                                    np.clip((pos[near] - onset) / ONSET_FADE_SAMPLES, 0.0, 1.0))
        return gate

    def forget_before(self, sample: int) -> None:
        """Drop cached blocks wholly before ``sample`` (they will not be rendered again)."""
        last_needed = sample // self.hop // BLOCK_FRAMES - 1
        with self._lock:
            self._drop_blocks(lambda block: block < last_needed)


ONSET_FADE_SAMPLES = 96
"""2 ms: how a phrase fades in from its exact start sample."""


PHRASE_CONTEXT_S = 1.0
"""Longer than any consonant lead or coda: notes further apart do not shape each other."""


def _common_ends(old: list[Note], new: list[Note]) -> tuple[int, int]:
    """How many leading and (after those) trailing notes ``old`` and ``new`` share (identity
    first: an edit keeps most note objects, so this is cheap even for a long song)."""
    n = min(len(old), len(new))
    head = 0
    while head < n and (old[head] is new[head] or old[head] == new[head]):
        head += 1
    tail = 0
    while tail < n - head and (old[-1 - tail] is new[-1 - tail]
                               or old[-1 - tail] == new[-1 - tail]):
        tail += 1
    return head, tail


def _phrase_starts_from(notes: list[Note], old_starts: list[int], changed_from: int
                        ) -> list[int]:
    """Phrase starts of ``notes``, recomputed only around and after ``changed_from`` (the
    ones before it are ``old_starts``, which an edit from there on leaves as they were)."""
    context = int(PHRASE_CONTEXT_S * SAMPLE_RATE_HZ)
    cut = changed_from - context
    first = next((i for i, n in enumerate(notes) if n.t_off >= cut - context), len(notes))
    first = max(0, first - 2)
    if first == 0:
        return _phrase_starts(notes)
    # notes[first] ends before cut - context, so the window's first phrase (which has no
    # context) starts before cut and is left out; everything from cut on sees its neighbours
    fresh = [s for s in _phrase_starts(notes[first:]) if s >= cut]
    return [s for s in old_starts if s < cut] + fresh


def _phrase_starts(notes: list[Note]) -> list[int]:
    """Show samples where sound starts after silence (the first consonant of a phrase)."""
    segments = build_timeline(notes)
    starts, end = [], None
    for seg in segments:
        if end is None or seg.start > end:
            starts.append(seg.start)
        end = seg.end if end is None else max(end, seg.end)
    return starts


def _fade_in(pos: np.ndarray, at: int) -> np.ndarray:
    """A raised-cosine ramp from 0 to 1 over ``at`` ± ``VOICE_XFADE_SAMPLES``."""
    x = np.clip((pos - (at - VOICE_XFADE_SAMPLES)) / (2 * VOICE_XFADE_SAMPLES), 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


def _with_new_singer(state: SynthState, device: torch.device) -> SynthState:
    """``state`` with one more oscillator, at phase 0."""
    zero = torch.zeros(1, dtype=torch.float64, device=device)
    return SynthState(torch.cat([state.phase, zero]))


def _silent_block(block: int, hop: int) -> ControlTrack:
    n = BLOCK_FRAMES
    z = np.zeros(n)
    return ControlTrack(hop=hop, f0_hz=np.full(n, 100.0), amp=z, formant_hz=np.full((n, 5), 1000.0),
                        formant_bw_hz=np.full((n, 5), 100.0), formant_level=np.ones((n, 5)),
                        tension=np.full(n, 0.5), breath=z, fric_amp=z, fric_hz=np.full(n, 4000.0),
                        fric_bw_hz=np.full(n, 4000.0), vibrato_cents=z,
                        phoneme_id=np.full(n, -1, dtype=np.int16), first_frame=block * n)


class Ensemble:
    """Renders several singers block by block on the show clock; holds their phase state.

    ``render(start, n)`` may be called with any block sizes; consecutive calls give the same
    samples as one call over their union. Calling it again for a start it rendered before
    (the show re-renders its lookahead after a live edit) resumes from the phase it had there.
    """

    SNAPSHOTS = 64

    def __init__(self, synth: HarmonicNoiseSynth, lines: list[SingerLine]) -> None:
        if not lines:
            raise ValueError("an ensemble needs at least one singer")
        self.synth = synth
        self.lines = list(lines)
        self._lock = threading.Lock()
        self._listener: EditListener | None = None
        self._bank_lines: dict[tuple[str, BankRef], BackendLine] = {}
        self._bank_expressions: dict[tuple[str, BankRef],
                                     tuple[Expression, tuple[ExpressionEvent, ...]]] = {}
        # bank lines whose live notes go through queue_note_on: held note id -> (the bank
        # line's id, note-off sent)
        self._routed: dict[tuple[str, BankRef], dict[int, tuple[int, bool]]] = {}
        self.bank_work = threading.Event()
        """Set when a bank line has work for ``prepare_banks`` now (a held note started or
        ended): the worker calling it waits on this between rounds."""
        self.live_reports: Callable[[LiveReport], None] | None = None
        """Told where held live notes really start and end (``LiveReport``), from the render
        loop or the bank worker (so the show can keep the mouth on the voice)."""
        self._report_lock = threading.Lock()  # a held note's queueing and its reports
        self._held_of: dict[tuple[tuple[str, BankRef], int], int] = {}  # bank id -> held id
        self.seconds_until: Callable[[int], float] | None = None
        """The show clock (seconds until a show sample is due), where a render loop plays
        in real time: ``render`` then waits for a held note's first segment at most until
        its chunk is due (less ``LIVE_WAIT_MARGIN_S``), never longer."""
        for line in self.lines:
            line.wake = self.bank_work.set
        self._renders = 0
        self.voice_fallbacks = 0
        """Chunk rows a singer's voice failed to render, sung by the built-in voice instead."""
        self._failing: set[str] = set()  # singers whose voice failed in their last render
        self._voice_faults: dict[str, int] = {}  # injected: renders left to fail, by singer
        self.reset()

    def set_listener(self, listener: EditListener | None) -> None:
        """Tell ``listener`` of every edit of every line from now on (``add_line`` too), in
        the order they are made; ``apply`` replays them on a copy."""
        with self._lock:
            self._listener = listener
            for line in self.lines:
                line.listener = listener

    def apply(self, edit: LineEdit) -> None:
        """Replay an edit made to a copy of this ensemble (``add_line`` or a line's edit)."""
        if edit.op == "add_line":
            self.add_line(SingerLine.from_state(edit.args[0]))  # type: ignore[arg-type]
            return
        line = self.line(edit.singer)
        if line is None:
            raise ValueError(f"edit {edit.op!r} of unknown singer {edit.singer!r}")
        line.apply(edit)

    def states(self) -> list[LineState]:
        """What every singer sings now (to build a copy: ``SingerLine.from_state``)."""
        return [line.state() for line in list(self.lines)]

    def reset(self) -> None:
        """Start every oscillator from phase 0 (a new show)."""
        with self._lock:
            self._state = SynthState.zeros(len(self.lines), self.synth.device)
            self._offsets = torch.tensor([line.noise_offset for line in self.lines],
                                         dtype=torch.int64, device=self.synth.device)
            self._snapshots: dict[int, SynthState] = {}
            self._next_start = 0

    def add_line(self, line: SingerLine) -> None:
        """Add a singer (its oscillator starts at phase 0).

        The phase snapshots are extended, not dropped: a re-render after the new singer
        joined resumes every other singer from the phase it had there (no click).
        """
        with self._lock:
            self.lines.append(line)
            line.listener = self._listener
            line.wake = self.bank_work.set
            if self._listener is not None:
                self._listener(LineEdit(line.name, "add_line", (line.state(),)))
            self._state = _with_new_singer(self._state, self.synth.device)
            self._snapshots = {t: _with_new_singer(state, self.synth.device)
                               for t, state in self._snapshots.items()}
            self._offsets = torch.tensor([ln.noise_offset for ln in self.lines],
                                         dtype=torch.int64, device=self.synth.device)

    def line(self, name: str) -> SingerLine | None:
        """The singer called ``name``, if any."""
        return next((ln for ln in self.lines if ln.name == name), None)

    @property
    def end_sample(self) -> int:
        """Show sample after which every singer is silent."""
        return max(line.end_sample for line in self.lines)

    def render(self, start_sample: int, n_samples: int) -> np.ndarray:
        """Per-singer audio ``[singers, n]`` (float32) for ``[start, start + n)``."""
        self._wait_for_held(start_sample, n_samples)
        with self._lock:
            if start_sample != self._next_start and start_sample in self._snapshots:
                self._state = self._snapshots[start_sample]
            self._snapshots[start_sample] = self._state
            first, count = self.synth.frames_for(start_sample, n_samples)
            params = FrameParams.stack([line.params(self.synth, first, count)
                                        for line in self.lines])
            audio, self._state = self.synth.render(params, start_sample, n_samples, self._state,
                                                   self._offsets)
            out = audio.to("cpu", torch.float32).numpy()
            for row, line in enumerate(self.lines):
                gate = line.onset_gate(start_sample, n_samples)
                if gate is not None:
                    out[row] *= gate
                out[row] = self._carried_row(line, out[row], start_sample, n_samples)
            self._renders += 1
            if self._renders % 64 == 0:  # bank audio this far back will not be asked again
                for bank_line in self._bank_lines.values():
                    bank_line.forget_before(start_sample - SAMPLE_RATE_HZ)
            self._next_start = start_sample + n_samples
            if len(self._snapshots) > self.SNAPSHOTS:
                for key in sorted(self._snapshots)[: -self.SNAPSHOTS]:
                    del self._snapshots[key]
        return out

    def fail_voice(self, singer: str, renders: int) -> None:
        """Fault injection (``LIVESINGER_FAULT_HOOKS``, docs/synthesis.md): the next
        ``renders`` renders of ``singer``'s voice raise, as a voice that breaks mid-phrase."""
        with self._lock:
            self._voice_faults[singer] = self._voice_faults.get(singer, 0) + renders

    def _carried_row(self, line: SingerLine, builtin: np.ndarray, start: int,
                     n: int) -> np.ndarray:
        """A line's row in the voices its bank timeline names (``builtin``: the built-in
        voice's row). If its voice raises, the line sings on in the built-in voice in this
        very chunk: logged once per failure, counted in ``voice_fallbacks``."""
        try:
            left = self._voice_faults.pop(line.name, 0)
            if left:
                if left > 1:
                    self._voice_faults[line.name] = left - 1
                raise RuntimeError("injected voice fault (LIVESINGER_FAULT_HOOKS)")
            banks = line.banks
            row = builtin
            if len(banks) > 1 or banks[0][1] is not None:
                row = self._voiced_row(line, banks, builtin, start, n)
        except Exception as err:  # a broken voice must not silence the show
            self.voice_fallbacks += 1
            if line.name not in self._failing:
                self._failing.add(line.name)
                log.warning("singer %r: the voice failed at show sample %d (%s: %s); the "
                            "built-in voice sings on", line.name, start, type(err).__name__,
                            err)
            return builtin
        if line.name in self._failing:
            self._failing.discard(line.name)
            log.warning("singer %r: the voice sings again from show sample %d", line.name,
                        start)
        return row

    def _voiced_row(self, line: SingerLine, banks: BankTimeline, builtin: np.ndarray,
                    start: int, n: int) -> np.ndarray:
        """A line's row sung by the voices its bank timeline names, crossfaded at each
        switch (``builtin`` is the built-in voice's row)."""
        pos = np.arange(start, start + n, dtype=np.float64)
        row = np.zeros(n, dtype=np.float32)
        for i, (since, bank) in enumerate(banks):
            until = banks[i + 1][0] if i + 1 < len(banks) else None
            weight = _fade_in(pos, since) if since > SINCE_ALWAYS else np.ones(n)
            if until is not None:
                weight = weight * (1.0 - _fade_in(pos, until))
            if not weight.any():
                continue
            audio = builtin if bank is None else self._bank_line(line, bank).render(start, n)
            row += (weight * audio).astype(np.float32)
        return row

    def _bank_line(self, line: SingerLine, bank: BankRef) -> BackendLine:
        """The bank's line for ``line``, its notes and held live notes brought up to date
        (opened and its bank loaded on first use: ``warm_banks`` does that before the show).

        A phrase-ahead bank sings a live note as a held note (``queue_note_on``, extended
        while held, released at its note-off): its phrases leave the live notes out (the
        note list holds them open for ``OPEN_NOTE_S``, which it must not render). A
        streaming bank sings them from the note list."""
        from singer.backends.live import open_bank

        key = (line.name, bank)
        found = self._bank_lines.get(key)
        if found is None:
            line.watch(key)
            backend = open_bank(bank, self.synth.device.type)
            routed = backend.ahead.mode == "phrase_ahead"
            found = backend.open_line(
                line.name, line.notes_without_held() if routed else line.notes,
                seed=line.seed, expression=line.expression)
            self._bank_lines[key] = found
            self._sync_expression(key, line, found, 0)
            if routed:  # notes over before the line opened are not sung again
                self._routed[key] = {h.id: (0, True) for h in line.held_notes
                                     if h.off_sample is not None}
                found.live_listener = partial(self._live_report, line.name, key)
        else:
            changed = line.take_change(key)
            if changed is not None:
                self._sync_expression(key, line, found, changed)
                found.set_notes(line.notes_without_held() if key in self._routed
                                else line.notes, changed)
        routed_ids = self._routed.get(key)
        if routed_ids is not None:
            self._sync_held(key, line, found, routed_ids)
        return found

    def _sync_held(self, key: tuple[str, BankRef], line: SingerLine, bank_line: BackendLine,
                   routed: dict[int, tuple[int, bool]]) -> None:
        """Queue the held notes' starts and ends the bank line has not heard of yet."""
        held = line.held_notes
        for note in held:
            got = routed.get(note.id)
            if got is None:
                with self._report_lock:  # its reports find it from the start
                    got = (bank_line.queue_note_on(note.sample, note.pitch_midi, note.lyric,
                                                   note.velocity), False)
                    self._held_of[(key, got[0])] = note.id
                routed[note.id] = got
                self.bank_work.set()
            if note.off_sample is not None and not got[1]:
                bank_line.queue_note_off(got[0], note.off_sample)
                routed[note.id] = (got[0], True)
                self.bank_work.set()
        if len(routed) > len(held):  # folded away: over for good
            ids = {h.id for h in held}
            for gone in [k for k in routed if k not in ids]:
                with self._report_lock:
                    self._held_of.pop((key, routed[gone][0]), None)
                del routed[gone]

    def _live_report(self, singer: str, key: tuple[str, BankRef], bank_id: int, kind: str,
                     sample: int | None) -> None:
        """A bank line's report on one of its live notes, as the held note it sings."""
        with self._report_lock:
            held_id = self._held_of.get((key, bank_id))
        sink = self.live_reports
        if held_id is not None and sink is not None:
            sink(LiveReport(singer, held_id, kind, sample))

    def live_latency_samples(self) -> int:
        """How long after a held note's cue its segment is expected to be ready (the largest
        of the phrase-ahead bank lines' ``live_latency_samples``; 0 with none open here)."""
        lines = [self._bank_lines.get(key) for key in list(self._routed)]
        return max([ln.live_latency_samples for ln in lines if ln is not None], default=0)

    def _wait_for_held(self, start: int, n: int) -> None:
        """Before rendering ``[start, start + n)`` in real time: give held notes that should
        start in it the time left until the chunk is due (less ``LIVE_WAIT_MARGIN_S``) to
        get their first segment; a note not ready by then starts in a later chunk (which
        does not wait for it: the render loop keeps its lookahead)."""
        if self.seconds_until is None or not self._routed:
            return
        with self._lock:
            waiting = []
            for line in self.lines:
                for _, bank in line.banks:
                    if bank is not None and (line.name, bank) in self._routed:
                        bank_line = self._bank_line(line, bank)
                        if bank_line.has_queued:
                            waiting.append(bank_line)
        for bank_line in waiting:
            budget = self.seconds_until(start) - LIVE_WAIT_MARGIN_S
            if budget <= 0:
                return
            bank_line.wait_ready(start, start + n, budget)

    def _sync_expression(self, key: tuple[str, BankRef], line: SingerLine,
                         bank_line: BackendLine, changed: int) -> None:
        """Hand the singer's expression (base and changes) to its bank line when it differs
        from what that line last had (expression cues reach bank voices this way)."""
        state = (line.expression, tuple(line.expression_events))
        if self._bank_expressions.get(key, (Expression(), ())) != state:
            self._bank_expressions[key] = state
            bank_line.set_expression(state[0], state[1], changed)

    def warm_banks(self) -> None:
        """Load, warm and open every bank a line sings with now (the slow part of a bank
        voice, so it happens before the show clock runs or between chunks)."""
        with self._lock:
            for line in self.lines:
                for _, bank in line.banks:
                    if bank is not None:
                        self._bank_line(line, bank)

    def has_phrase_ahead_banks(self) -> bool:
        """Whether any line sings (or will) with a phrase-ahead bank (DiffSinger)."""
        return any(bank is not None and bank.type == "diffsinger"
                   for line in list(self.lines) for _, bank in line.banks)

    def prepare_banks(self, playout_sample: int) -> int:
        """Phrase-ahead work of every bank line (``BackendLine.prepare`` up to the
        backend's lookahead past ``playout_sample``); returns the units of work done."""
        from singer.backends.live import open_bank

        with self._lock:
            work = [(self._bank_line(line, bank), bank) for line in self.lines
                    for _, bank in line.banks if bank is not None]
        done = 0
        work.sort(key=lambda w: not w[0].has_queued)  # a held note's start or end first
        for bank_line, bank in work:
            ahead = open_bank(bank).ahead
            if ahead.mode == "phrase_ahead":
                done += bank_line.prepare(playout_sample + ahead.lookahead_samples)
        return done

    def prefetch(self, start_sample: int, horizon_s: float = 0.6,
                 yield_now: Callable[[], bool] | None = None, params: bool = True) -> int:
        """Compute the controls of every singer's coming blocks ahead of the audio thread.

        Stops early when ``yield_now()`` turns true. Returns how many blocks it computed.
        Safe to call from another thread. ``params=False``: the controls only, not the
        synthesis parameters (where another process renders, the controls serve lip-sync).
        """
        first = start_sample // self.synth.hop // BLOCK_FRAMES
        last = (start_sample + int(horizon_s * SAMPLE_RATE_HZ)) // self.synth.hop // BLOCK_FRAMES
        done = 0
        for line in list(self.lines):
            for block in range(first, last + 1):
                if yield_now is not None and yield_now():
                    return done
                if not params:
                    line.track_block(block)  # cached: cheap when already there
                elif not line.has_block(block, self.synth):
                    line.block_params(self.synth, block)
                    done += 1
        return done

    def render_mix_samples(self, start_sample: int, n_samples: int) -> np.ndarray:
        """The singers summed into mono samples (the pacer's renderer)."""
        return self.render(start_sample, n_samples).sum(axis=0)

    def render_mix(self, start_sample: int, n_samples: int) -> AudioChunk:
        """The singers summed into one mono chunk."""
        return AudioChunk(start_sample, self.render_mix_samples(start_sample, n_samples))
