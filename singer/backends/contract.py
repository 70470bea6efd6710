"""The voice backend contract: what every voice (built-in, UTAU, DiffSinger) offers the engine.

A ``VoiceBackend`` is one loaded voice (a built-in profile, a bank folder); it says what it
needs rendered ahead of playout (``Ahead``), on which device it runs, warms up once, and opens
a ``BackendLine`` per singer. A line is the singer's part on the show clock: notes in
(``set_notes``, live ``note_on``/``note_off``, ``add_expression`` where supported), mono
float32 audio of any show-sample range out (``render``), ``prepare`` for the work a
phrase-ahead voice does in a worker before playout reaches it, ``forget_before`` to drop what
will not be played again. Nothing above ``singer/`` needs to know which backend sings.

Design note — how the live path holds non-builtin lines (wired for UTAU and DiffSinger
through ``singer.backends.live`` and ``Ensemble``; live notes join the note list, and for a
phrase-ahead backend also go to ``queue_note_on``/``queue_note_off``, its phrases leaving
them out: docs/voices.md, "In the live show"):

- **Ensemble**: keeps batching every built-in ``SingerLine`` into one torch forward pass as
  today (``BuiltinLine.singer_line`` exposes the ``SingerLine`` for that, so built-in voices
  never go through ``BuiltinLine.render`` live). Non-builtin singers are held beside them as
  ``BackendLine``s; ``Ensemble.render(start, n)`` appends one row per backend line, filled by
  ``line.render(start, n)``, so the mix, the per-singer rows and the lookahead re-render after
  an edit work unchanged. Both ``UtauLine`` and the DiffSinger line are pure functions of
  (notes, show samples) with caches, so a re-render of the lookahead gives the same samples and
  no phase snapshot is needed for them.
- **Director**: a singer's voice ref goes through ``discovery.resolve_voice`` then
  ``discovery.open_backend`` (off the event loop: loading a bank and ``warm_up`` take seconds);
  note-on/off cues call ``line.note_on``/``line.note_off`` instead of editing the note list
  (each backend times a live note itself: the consonant starts at the note-on sample);
  song loads and lyric/tempo edits call ``line.set_notes(notes, changed_from)``;
  expression cues call ``add_expression`` only where ``line.supports_expression``, and answer
  a clear error otherwise. A voice switch (cue) opens a line on the new backend and
  crossfades the two rows at the next phrase boundary.
- **Pacer / prefetch**: for ``Ahead.mode == "streaming"`` nothing changes (chunks are rendered
  on demand within the lookahead). For ``"phrase_ahead"`` the prefetch helper (the one that
  already computes control blocks ahead, ``Ensemble.prefetch``) also calls
  ``line.prepare(playout + ahead.lookahead_samples)`` in its worker, so ``render`` in the
  audio thread only mixes phrases that are ready; a held live note is extended there too.
  ``forget_before(playout)`` is called where the director already calls it on ``SingerLine``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from singer.contracts import Note
from singer.performer import Expression, ExpressionEvent

VoiceType = Literal["builtin", "utau", "diffsinger"]
AheadMode = Literal["streaming", "phrase_ahead"]


class VoiceError(ValueError):
    """A voice that cannot be found, loaded or asked for something it cannot do (one line)."""


class UnsupportedEditError(VoiceError):
    """An edit this backend's lines do not take (e.g. an expression change on a bank)."""


@dataclass(frozen=True, slots=True)
class Ahead:
    """What a backend needs rendered ahead of playout."""

    mode: AheadMode
    """``streaming``: any show-sample range renders on demand, sample-accurate (built-in,
    UTAU); ``phrase_ahead``: whole phrases are rendered in a worker before they play."""
    lookahead_samples: int = 0
    """For ``phrase_ahead``: how far ahead of playout ``prepare`` must have been called."""


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    """A voice as ``livesinger voices`` lists it (read without loading any model)."""

    name: str
    """The name ``--voice`` accepts (the bank's character name, or the built-in name)."""
    type: VoiceType
    path: Path | None
    """The bank folder (``None`` for a built-in voice)."""
    languages: tuple[str, ...] = ()
    """Lyrics languages it sings (``zh``, ``en``, ``ja``...; empty when unknown)."""
    speakers: tuple[str, ...] = ()
    """DiffSinger speakers, UTAU voice colours / pitch subbanks (empty for one voice)."""
    terms: str = ""
    """Licence or terms of use as the bank states them (first lines; empty: none found)."""
    terms_file: Path | None = None
    """The readme/licence file ``terms`` was read from."""
    description: str = ""

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (paths as strings)."""
        return {"name": self.name, "type": self.type,
                "path": str(self.path) if self.path else None,
                "languages": list(self.languages), "speakers": list(self.speakers),
                "terms": self.terms, "terms_file": str(self.terms_file) if self.terms_file
                else None, "description": self.description}


@dataclass(frozen=True, slots=True)
class LiveStart:
    """A live note as a line started it: its id (for ``note_off``), the show sample its
    first sound starts at, and the sample its vowel lands on."""

    id: int
    sound_sample: int
    vowel_sample: int


LiveListener = Callable[[int, str, "int | None"], None]
"""``BackendLine.live_listener``: (live note id, ``on``/``off``, show sample or ``None``)."""


class BackendLine(ABC):
    """One singer's line sung by a backend (thread-safe: edits on the event loop, renders in
    the synthesis thread, ``prepare`` in a worker)."""

    name: str
    supports_expression: bool = False
    """Whether ``add_expression`` takes effect for this backend."""

    @abstractmethod
    def set_notes(self, notes: list[Note] | tuple[Note, ...], changed_from: int = 0) -> None:
        """Sing ``notes`` (live notes stay); audio before ``changed_from`` is unchanged."""

    def add_expression(self, sample: int, field: str, value: float) -> None:
        """Glide expression ``field`` to ``value`` from ``sample`` on (where supported)."""
        raise UnsupportedEditError(f"{type(self).__name__} {self.name!r}: expression changes "
                                   f"({field}) are not supported by this voice")

    def set_expression(self, base: Expression,  # noqa: B027 - a voice may honour none
                       events: tuple[ExpressionEvent, ...] | list[ExpressionEvent],
                       changed_from: int = 0) -> None:
        """Sing with expression ``base`` and its timed changes ``events`` (the singer's own,
        as ``SingerLine`` holds them); audio before ``changed_from`` is unchanged. A bank
        honours the fields ``VoiceBackend.expression_fields`` names and ignores the rest
        (the show refuses those cues: ``singer.backends.live.check_expression``)."""

    @abstractmethod
    def note_on(self, sample: int, pitch_midi: float, lyric: str,
                velocity: float = 0.8) -> LiveStart:
        """Start a held live note whose sound begins at show sample ``sample``."""

    @abstractmethod
    def note_off(self, note_id: int, sample: int) -> None:
        """Release the live note ``note_id`` at show sample ``sample``."""

    def queue_note_on(self, sample: int, pitch_midi: float, lyric: str,
                      velocity: float = 0.8) -> int:
        """The live show's note-on: like ``note_on`` but never renders in the caller (the
        render loop); returns the note's id. A phrase-ahead backend renders the note's first
        segment in the next ``prepare`` and sounds it from ``sample`` if that is ready in
        time, else from the first chunk rendered after it is ready. Streaming backends
        start it here."""
        return self.note_on(sample, pitch_midi, lyric, velocity).id

    def queue_note_off(self, note_id: int, sample: int) -> None:
        """The live show's note-off (see ``queue_note_on``): the release is rendered by the
        next ``prepare`` where the backend is phrase-ahead."""
        self.note_off(note_id, sample)

    def wait_ready(self, start_sample: int, until_sample: int, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for queued notes starting in ``[start, until)`` (the
        chunk about to be rendered) to be ready to sound; True if none waits there."""
        return True

    @property
    def has_queued(self) -> bool:
        """Whether queued live-note work waits for ``prepare``."""
        return False

    live_listener: LiveListener | None = None
    """Told where each queued live note really starts and ends (phrase-ahead backends):
    ``(id, "on" | "off", sample)`` when its first segment / its release is ready (``sample``:
    where it sounds, later than asked when it was late), ``(id, kind, None)`` when the
    chunk holding its asked sample was rendered without it. Called from the render loop or
    the worker, never under the line's own lock."""

    @property
    def live_latency_samples(self) -> int:
        """How long after a ``queue_note_on``/``queue_note_off`` its segment is expected to
        be ready, in show samples (a running high percentile; 0: at once, as streaming
        backends do)."""
        return 0

    def prepare(self, until_sample: int) -> int:
        """Do the work needed to render up to ``until_sample`` now (in a worker); returns how
        many units of work (phrases, segments) it did. Streaming backends do nothing."""
        return 0

    @abstractmethod
    def render(self, start_sample: int, n_samples: int) -> np.ndarray:
        """Mono float32 audio of show samples ``[start, start + n)``; any chunking of a range
        gives the same samples."""

    @abstractmethod
    def forget_before(self, sample: int) -> None:
        """Drop cached work that ends before ``sample`` (it will not be played again)."""

    @property
    @abstractmethod
    def end_sample(self) -> int:
        """Show sample after which the line is silent (for now)."""


class VoiceBackend(ABC):
    """One loaded voice: what it needs ahead, its device, its warm-up, its lines."""

    info: VoiceInfo
    ahead: Ahead
    expression_fields: frozenset[str] = frozenset()
    """The expression fields (``streams.cue.EXPRESSIONS``) its lines honour."""

    @property
    @abstractmethod
    def device(self) -> str:
        """Where it renders (``cpu``, ``cuda``...)."""

    def warm_up(self) -> None:  # noqa: B027 - a backend with nothing to warm keeps this
        """Do the slow first-time work (model sessions, sample analysis, filter designs) now,
        so the first note sings from ready data."""

    @abstractmethod
    def open_line(self, name: str, notes: list[Note] | tuple[Note, ...] = (), *, seed: int = 0,
                  expression: Expression | None = None) -> BackendLine:
        """A new singer's line with this voice."""
