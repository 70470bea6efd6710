"""Live notes (note-on now, end unknown) sung by a DiffSinger bank.

DiffSinger renders whole phrases, so a held note is sung provisionally: at note-on a short
first segment (onset consonants and the vowel, no release) is rendered; while the note is
held, continuation segments of the same vowel are rendered ahead, each overlapping the one
before by ``overlap_s``, time-aligned to it within half a pitch period (so the two waveforms
are in phase) and crossfaded; at note-off a last segment sings the vowel into its coda and
the SP release. The f0 of every segment comes from the one note curve, so vibrato continues
across segments.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from singer.backends.diffsinger.phonemize import BankPhone, time_phones
from singer.backends.diffsinger.phrases import PhraseRenderer, mix
from singer.backends.diffsinger.render import RenderedPhrase, render_phrase
from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.lyrics import phonemize_word
from singer.lyrics.errors import LyricError

FAR_S = 3600.0
"""A held note's provisional end for its f0 curve (an hour: later than any release)."""
TRIM_FADE_S = 0.002
"""Fade-in where a first segment is cut (its lead-in was already played)."""


class LiveNote:
    """One held note of a live singer, rendered in crossfaded segments.

    ``on_sample`` is the show sample its first phoneme sounds at (note-on plus the latency
    the caller budgets); ``begin`` must be called first, then ``extend`` while held and
    ``release`` once at note-off; ``read`` mixes what was rendered.
    """

    def __init__(self, renderer: PhraseRenderer, on_sample: int, pitch_midi: float,
                 lyric: str, velocity: float = 0.8, *, first_s: float = 0.3,
                 segment_s: float = 1.0, overlap_s: float = 0.08) -> None:
        self.renderer = renderer
        self.bank = renderer.bank
        self.settings = renderer.settings
        self.first_s, self.segment_s, self.overlap_s = first_s, segment_s, overlap_s
        self.pitch_midi = pitch_midi
        try:
            ours = phonemize_word([lyric], self.settings.language or "zh")[0]
        except LyricError:
            ours = ("a",)
        probe = Note(on_sample, on_sample + SAMPLE_RATE_HZ, pitch_midi, lyric, ours, velocity)
        phones = time_phones(self.bank, [probe], self.settings.language)
        shift = on_sample - phones[0].start  # the first phoneme sounds at on_sample
        self.note = dataclasses.replace(probe, t_on=probe.t_on + shift,
                                        t_off=probe.t_on + shift + int(FAR_S * SAMPLE_RATE_HZ))
        self._onset = [dataclasses.replace(p, start=p.start + shift, end=p.end + shift)
                       for p in phones if p.start + shift < self.note.t_on]
        body = [p for p in phones if p.start + shift >= self.note.t_on]
        vowels = [p for p in body if p.is_vowel]
        self._vowel = (vowels or body)[-1].symbol
        self._coda = [p.symbol for p in body[body.index((vowels or body)[-1]) + 1:]]
        self.segments: list[RenderedPhrase] = []
        self.released = False

    @property
    def rendered_until(self) -> int:
        """Show sample up to which audio is rendered."""
        return self.segments[-1].end if self.segments else self.note.t_on

    def begin(self) -> RenderedPhrase:
        """Render the first segment: onset consonants, then the vowel for ``first_s``."""
        end = self.note.t_on + int(self.first_s * SAMPLE_RATE_HZ)
        phones = self._onset + [BankPhone(self._vowel, self.note.t_on, end, 0, True)]
        seg = self._render(phones, head=True, tail=False)
        self.segments.append(seg)
        return seg

    def extend(self, until_sample: int) -> list[RenderedPhrase]:
        """Render held-vowel segments until the audio reaches ``until_sample``."""
        out = []
        while not self.released and self.rendered_until < until_sample:
            start = self.rendered_until - int(self.overlap_s * SAMPLE_RATE_HZ)
            end = start + int(self.segment_s * SAMPLE_RATE_HZ)
            seg = self._render([BankPhone(self._vowel, start, end, 0, True)], head=False,
                               tail=False)
            out.append(self._aligned(seg))
            self.segments.append(out[-1])
        return out

    def release(self, off_sample: int) -> RenderedPhrase:
        """Render the last segment: the vowel until ``off_sample``, its coda, the SP release."""
        return self.commit_release(self.render_release(off_sample))

    def render_release(self, off_sample: int) -> RenderedPhrase:
        """The release segment for a note-off at ``off_sample``, rendered but not yet part
        of the note (``commit_release`` makes it so)."""
        if self.released:
            raise RuntimeError("this live note was already released")
        start = min(self.rendered_until, max(off_sample, self.note.t_on)) \
            - int(self.overlap_s * SAMPLE_RATE_HZ)
        coda_s = int(0.08 * SAMPLE_RATE_HZ)
        vowel_end = max(off_sample - coda_s * len(self._coda), start + 1)
        phones = [BankPhone(self._vowel, start, vowel_end, 0, True)]
        for k, s in enumerate(self._coda):
            phones.append(BankPhone(s, vowel_end + k * coda_s, vowel_end + (k + 1) * coda_s, 0,
                                    False))
        return self._render(phones, head=False, tail=True)

    def commit_release(self, seg: RenderedPhrase, not_before: int | None = None
                       ) -> RenderedPhrase:
        """Make ``seg`` (from ``render_release``) the note's end. ``not_before``: audio
        before this show sample is already played, so the release starts no earlier (moved
        later, then into phase with the held vowel it fades from)."""
        if self.released:
            raise RuntimeError("this live note was already released")
        if not_before is not None and seg.start < not_before:
            seg = dataclasses.replace(seg, start=not_before)
        seg = self._aligned(seg)
        # segments rendered past the release are dropped; the last one kept ends where the
        # crossfade into the release does
        kept = [s for s in self.segments if s.start < seg.start]
        cut = seg.start + int(self.overlap_s * SAMPLE_RATE_HZ)
        if kept and kept[-1].end > cut:
            kept[-1] = dataclasses.replace(kept[-1],
                                           samples=kept[-1].samples[:cut - kept[-1].start])
        self.segments = kept + [seg]
        self.released = True
        return seg

    def shift(self, samples: int) -> None:
        """Move the note ``samples`` later (its first segment was ready after its own
        sample was played). Only before any continuation: the first segment moves with the
        note, so what it sings is unchanged."""
        if len(self.segments) > 1 or self.released:
            raise RuntimeError("a live note moves only while it has its first segment only")
        self.note = dataclasses.replace(self.note, t_on=self.note.t_on + samples,
                                        t_off=self.note.t_off + samples)
        self._onset = [dataclasses.replace(p, start=p.start + samples, end=p.end + samples)
                       for p in self._onset]
        self.segments = [dataclasses.replace(s, start=s.start + samples) for s in self.segments]

    def read(self, start: int, length: int) -> np.ndarray:
        """Show samples ``[start, start + length)`` of this note as rendered so far."""
        return mix(self.segments, start, length)

    def _render(self, phones: list[BankPhone], head: bool, tail: bool) -> RenderedPhrase:
        settings = dataclasses.replace(
            self.settings, head_frames=self.settings.head_frames if head else 0,
            tail_frames=self.settings.tail_frames if tail else 0)
        return render_phrase(self.bank, [self.note], settings, phones=phones)

    def trim_before(self, sample: int) -> None:
        """Drop what the first segment has before ``sample`` (its SP lead-in, already
        played by the time it was ready), fading in over ``TRIM_FADE_S`` from there."""
        first = self.segments[0]
        if len(self.segments) > 1 or first.start >= sample:
            return
        samples = first.samples[sample - first.start:].copy()
        n = min(len(samples), int(TRIM_FADE_S * SAMPLE_RATE_HZ))
        samples[:n] *= (np.sin(0.5 * np.pi * (np.arange(n) + 0.5) / n) ** 2).astype(np.float32)
        self.segments = [dataclasses.replace(first, start=sample, samples=samples)]

    def _aligned(self, seg: RenderedPhrase) -> RenderedPhrase:
        """``seg`` moved by up to half a period so it is in phase with the audio it fades
        from: the last segment that starts before it (a release may land under segments
        rendered further ahead)."""
        before = [s for s in self.segments if s.start <= seg.start]
        if not before:
            return seg
        prev = before[-1]
        n = min(prev.end - seg.start, int(self.overlap_s * SAMPLE_RATE_HZ))
        if n <= 8:
            return seg
        period = int(SAMPLE_RATE_HZ / (440.0 * 2 ** ((self.pitch_midi - 69) / 12)))
        ref = prev.samples[seg.start - prev.start:][:n].astype(np.float64)
        best, best_lag = -np.inf, 0
        for lag in range(-period // 2, period // 2 + 1):
            a = ref[max(0, lag):n + min(0, lag)]
            b = seg.samples[max(0, -lag):max(0, -lag) + len(a)].astype(np.float64)
            if len(a) < 8 or len(b) < len(a):
                continue
            score = float(a @ b) / float(np.linalg.norm(a) * np.linalg.norm(b) + 1e-12)
            if score > best:
                best, best_lag = score, lag
        return dataclasses.replace(seg, start=seg.start + best_lag)
