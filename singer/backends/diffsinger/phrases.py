"""Phrase-ahead singing: split a line into phrases, render each once (cached by content),
and mix them onto the show clock with crossfaded joins.

A phrase ends at any gap between notes (OpenUtau's rule). Rendered phrases overlap by their
SP lead-in/out; where two overlap, the earlier fades out and the later fades in with
complementary raised-cosine weights (they sum to one), so a join never steps.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from singer.backends.diffsinger.bank import DiffSingerBank
from singer.backends.diffsinger.render import (
    DEFAULT_SETTINGS,
    NEUTRAL_EXPRESSION,
    PhraseExpression,
    RenderedPhrase,
    RenderSettings,
    phrase_key,
    render_phrase,
)
from singer.contracts import Note
from singer.performer import Expression, ExpressionEvent


def split_phrases(notes: list[Note] | tuple[Note, ...]) -> list[tuple[Note, ...]]:
    """Runs of touching notes, in time order: a phrase ends wherever a gap follows a note."""
    out: list[list[Note]] = []
    for note in sorted(notes, key=lambda n: n.t_on):
        if out and note.t_on <= out[-1][-1].t_off:
            out[-1].append(note)
        else:
            out.append([note])
    return [tuple(p) for p in out]


class PhraseRenderer:
    """Renders phrases of one bank with fixed settings; an LRU cache keyed by content hash.

    Thread-safe: a worker may render ahead while the audio thread reads cached phrases.
    """

    def __init__(self, bank: DiffSingerBank, settings: RenderSettings = DEFAULT_SETTINGS,
                 cache_size: int = 256) -> None:
        self.bank = bank
        self.settings = settings
        self._cache: OrderedDict[str, RenderedPhrase] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.renders = 0
        """How many phrases were actually rendered (cache misses)."""
        self._expression: PhraseExpression = NEUTRAL_EXPRESSION

    def set_expression(self, base: Expression,
                       events: tuple[ExpressionEvent, ...] | list[ExpressionEvent]) -> None:
        """Sing with the singer's expression from now on: a phrase is sung with the changes
        made before its first note (``expression_of``), so a change re-renders only the
        phrases that start after it, never the one sounding (phrase-ahead: a change in the
        middle of a phrase is heard from the next one)."""
        with self._lock:
            self._expression = (base, tuple(sorted(events)))

    def expression_of(self, phrase: tuple[Note, ...]) -> PhraseExpression:
        """The expression that shapes ``phrase``: the base and the changes made before its
        first note starts (each gliding in where it was made)."""
        with self._lock:
            base, events = self._expression
        return base, tuple(e for e in events if e[0] < phrase[0].t_on)

    def key(self, phrase: tuple[Note, ...]) -> str:
        """The cache key of a phrase (its notes, settings and expression)."""
        expression = self.expression_of(phrase)
        extra = "" if expression == NEUTRAL_EXPRESSION else repr(expression)
        return phrase_key(self.bank, phrase, self.settings, extra)

    def cached(self, phrase: tuple[Note, ...]) -> RenderedPhrase | None:
        """The phrase if it is already rendered."""
        key = self.key(phrase)  # takes the lock itself
        with self._lock:
            return self._cache.get(key)

    def render(self, phrase: tuple[Note, ...]) -> RenderedPhrase:
        """The rendered phrase (from the cache when its content was rendered before)."""
        expression = self.expression_of(phrase)
        extra = "" if expression == NEUTRAL_EXPRESSION else repr(expression)
        key = phrase_key(self.bank, phrase, self.settings, extra)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        rendered = render_phrase(self.bank, phrase, self.settings, expression=expression)
        with self._lock:
            self.renders += 1
            self._cache[key] = rendered
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return rendered


def crossfade_weights(phrases: list[RenderedPhrase]) -> list[np.ndarray]:
    """Per phrase (sorted by start), its gain over its samples: complementary where they meet.

    Where phrase ``k`` overlaps phrase ``k+1`` the earlier fades out (cos²) and the later
    fades in (sin²) across the overlap; the weights of every overlapping pair sum to 1.
    """
    weights = [np.ones(len(p.samples), np.float32) for p in phrases]
    for k in range(len(phrases) - 1):
        a, b = phrases[k], phrases[k + 1]
        lo, hi = b.start, min(a.end, b.end)
        if hi <= lo:
            continue
        n = hi - lo
        ramp = (np.sin(0.5 * np.pi * (np.arange(n) + 0.5) / n) ** 2).astype(np.float32)
        weights[k][lo - a.start:hi - a.start] *= 1.0 - ramp
        weights[k + 1][:n] *= ramp
    return weights


def mix(phrases: list[RenderedPhrase], start: int, length: int) -> np.ndarray:
    """Show samples ``[start, start + length)`` of the phrases, crossfaded where they meet."""
    out = np.zeros(length, np.float32)
    ordered = sorted(phrases, key=lambda p: p.start)
    for p, w in zip(ordered, crossfade_weights(ordered), strict=True):
        lo, hi = max(start, p.start), min(start + length, p.end)
        if hi > lo:
            out[lo - start:hi - start] += p.samples[lo - p.start:hi - p.start] \
                * w[lo - p.start:hi - p.start]
    return out


@dataclass
class PhraseTrack:
    """A singer's line sung phrase-ahead: ``prepare`` renders ahead, ``read`` mixes.

    ``set_notes`` replaces the line (a cue); phrases whose content did not change keep their
    rendering, so only the affected phrases are rendered again.
    """

    renderer: PhraseRenderer
    notes: tuple[Note, ...] = ()

    def __post_init__(self) -> None:
        self._phrases = split_phrases(self.notes)

    def set_notes(self, notes: list[Note] | tuple[Note, ...]) -> None:
        """Replace the line; rendered phrases are reused where their notes are unchanged."""
        self.notes = tuple(notes)
        self._phrases = split_phrases(self.notes)

    @property
    def phrases(self) -> list[tuple[Note, ...]]:
        """The line's phrases in time order."""
        return list(self._phrases)

    def prepare(self, until_sample: int) -> int:
        """Render every phrase starting before ``until_sample``; returns how many rendered."""
        before = self.renderer.renders
        for phrase in self._phrases:
            if phrase[0].t_on - self._lead_samples() < until_sample:
                self.renderer.render(phrase)
        return self.renderer.renders - before

    def due(self, until_sample: int) -> list[tuple[Note, ...]]:
        """The phrases starting before ``until_sample`` that are not rendered yet."""
        return [p for p in self._phrases if p[0].t_on - self._lead_samples() < until_sample
                and self.renderer.cached(p) is None]

    def render_one(self, phrase: tuple[Note, ...]) -> int:
        """Render one phrase (``due``); returns 1 if it was rendered, 0 if it was cached."""
        before = self.renderer.renders
        self.renderer.render(phrase)
        return self.renderer.renders - before

    def _lead_samples(self) -> int:
        return int(2.0 * 48_000)  # onsets and lead-in never reach 2 s before a note

    def read(self, start: int, length: int) -> np.ndarray:
        """Audio of ``[start, start + length)``; phrases not yet rendered are rendered now."""
        window = [self.renderer.render(p) for p in self._phrases
                  if p[0].t_on - self._lead_samples() < start + length
                  and p[-1].t_off + self._lead_samples() > start]
        return mix(window, start, length)

    def render_all(self) -> list[RenderedPhrase]:
        """Every phrase of the line, rendered (offline use)."""
        return [self.renderer.render(p) for p in self._phrases]
