"""Backing audio on the show clock: loaded once into memory (off the loop), then read for
any show-sample range without blocking, following the song's transport.

Alignment: backing time 0 falls at score time ``offset_s`` (seconds from beat 0 in the
score's own tempo map), so backing sample ``k`` sits at song sample ``offset + k``. The
transport maps show samples to song samples: ``play(at, beat)`` says show sample ``at``
sounds song sample ``tempo_map.beat_to_sample(beat)``; the song then runs at the score's
speed until ``stop``/``seek``/``play`` again. ``chase(at, beat, rate)`` (the timecode chase's
trims) makes it read at ``rate`` song samples per show sample from a fractional position,
band-limited (windowed-sinc) interpolation, steering smoothly onto ``beat`` instead of jumping
(a resampling: the pitch moves by the rate, under 9 cents at the chase's ±0.5 %). The
backing cannot be re-timed without time-stretching, so the score span it covers is *locked*
(``locked_beats``): live tempo edits and the duet follower may not re-time the voice inside
it (docs/mix.md).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ, seconds_to_samples
from singer.mix.audio_file import AudioFileError, load_mono
from singer.mix.backing_spec import BackingError, BackingSpec
from singer.tempo import TempoMap

DECLICK_SAMPLES = 96
"""A stop or a seek fades the old position out over 2 ms (the new one starts exactly)."""
MAX_ANCHORS = 256
SINC_HALF = 8
"""Interpolation taps each side of a fractional read position (16 in all)."""
SINC_PHASES = 512
"""Fractional positions tabulated (linear between them: errors near −76 dB up to 10 kHz)."""
SINC_CUTOFF = 0.94
"""Pass band of the interpolator, a fraction of the show's Nyquist frequency."""
SINC_BETA = 8.0
"""Kaiser window shape of the interpolator's taps."""
CATCHUP_S = 0.2
"""A chase trim steers the backing onto its new position over at least this long..."""
MAX_CATCHUP = 0.002
"""... at most this far off the chase's rate (0.2 %: 3.5 cents) while it catches up."""
CHASE_JUMP_SAMPLES = 480
"""A chase trim further than this (10 ms) from where the backing is jumps there instead."""
_STOPPED = -(2 ** 62)
"""Song position of a stopped show sample: outside any stem, whatever the offset."""


@dataclass(frozen=True)
class BackingTrack:
    """Loaded stems: mono float32 at the show rate, ``offset_samples`` = song sample of
    backing sample 0."""

    spec: BackingSpec
    stems: tuple[np.ndarray, ...]
    offset_samples: int

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.spec.stems)

    @property
    def length_samples(self) -> int:
        return max(len(s) for s in self.stems)


def load_backing(spec: BackingSpec) -> BackingTrack:
    """Decode and resample every stem (blocking: call it through ``asyncio.to_thread``)."""
    stems = []
    for stem in spec.stems:
        try:
            stems.append(load_mono(stem.path))
        except AudioFileError as err:
            raise BackingError(f"{spec.source}: stem {stem.name}: {err}") from None
    return BackingTrack(spec, tuple(stems), seconds_to_samples(spec.offset_s))


class BackingLockError(ValueError):
    """A re-timing asked inside the span the backing track locks."""


@dataclass(frozen=True, slots=True)
class _Anchor:
    show_sample: int
    song_sample: float | None
    """``None``: stopped from ``show_sample`` on."""
    rate: float = 1.0
    """Song samples per show sample from here on."""
    jump: bool = True
    """A discontinuity (the old position fades out over ``DECLICK_SAMPLES``); a chase
    trim's anchors continue the position and are not."""

    def song_at(self, show_sample: np.ndarray) -> np.ndarray:
        assert self.song_sample is not None
        if self.rate == 1.0:
            return self.song_sample + (show_sample - self.show_sample).astype(np.float64)
        return self.song_sample + (show_sample - self.show_sample) * self.rate


class BackingPlayer:
    """Reads the backing for any show range ``[a, a + n)``; transport and gain cues take a
    show sample, so timetagged cues land exactly. Not thread-safe: one owner (the pacer)."""

    def __init__(self, track: BackingTrack, tempo_map: TempoMap) -> None:
        self.track = track
        self.tempo_map = tempo_map
        self._anchors: list[_Anchor] = [_Anchor(_STOPPED, None)]
        self._paused_song = 0.0
        self._gain = [10 ** (s.gain_db / 20) for s in track.spec.stems]
        self._muted = [s.mute for s in track.spec.stems]
        start = [0.0 if m else g for g, m in zip(self._gain, self._muted, strict=True)]
        self._env: list[list[tuple[int, float]]] = [[(_STOPPED, v)] for v in start]

    # transport ---------------------------------------------------------------------------
    def song_sample(self, beat: float) -> int:
        """Song sample (score samples from beat 0) of ``beat``."""
        return self.tempo_map.beat_to_sample(beat) - self.tempo_map.origin_sample

    def play(self, at_sample: int, beat: float = 0.0, rate: float = 1.0) -> None:
        """From show sample ``at_sample``, sound the song from ``beat`` on (at ``rate``
        times the score's speed)."""
        self._put(_Anchor(at_sample, float(self.song_sample(beat)), rate))

    def chase(self, at_sample: int, beat: float, rate: float) -> None:
        """A timecode chase trim: from ``at_sample`` the song should be at ``beat`` and run
        at ``rate``. Playing, the backing is not jumped: it reads on from where it is at a
        rate a little off ``rate`` until it reaches the chased position (over
        ``CATCHUP_S`` or more, at most ``MAX_CATCHUP`` off), then at ``rate``. Stopped, or
        further off than ``CHASE_JUMP_SAMPLES``, it plays from ``beat`` (a locate)."""
        target = float(self.song_sample(beat))
        if not self.playing_at(at_sample):
            self.play(at_sample, beat, rate)
            return
        here = self.position_at(at_sample)
        error = target - here
        if abs(error) > CHASE_JUMP_SAMPLES:
            self.play(at_sample, beat, rate)
            return
        span = max(CATCHUP_S * SAMPLE_RATE_HZ, abs(error) / MAX_CATCHUP)
        n = max(1, int(round(span)))
        self._put(_Anchor(at_sample, here, rate + error / n, jump=False))
        self._anchors.append(_Anchor(at_sample + n, target + n * rate, rate, jump=False))

    def seek(self, at_sample: int, beat: float) -> None:
        """Jump to ``beat`` at ``at_sample``: playing goes on from there; stopped, the next
        ``resume`` starts there."""
        if self.playing_at(at_sample):
            self.play(at_sample, beat)
        else:
            self._paused_song = self.song_sample(beat)

    def stop(self, at_sample: int) -> None:
        """Silence from ``at_sample`` (the old position fades over ``DECLICK_SAMPLES``)."""
        if self.playing_at(at_sample):
            self._paused_song = self.position_at(at_sample)
        self._put(_Anchor(at_sample, None))

    def resume(self, at_sample: int) -> None:
        """Play on from where ``stop`` (or a ``seek`` while stopped) left the song."""
        self._put(_Anchor(at_sample, self._paused_song))

    def playing_at(self, show_sample: int) -> bool:
        return self._anchor_at(show_sample).song_sample is not None

    def position_at(self, show_sample: int) -> float:
        """Song sample (fractional while chasing) sounding at ``show_sample`` (the paused one
        when stopped)."""
        anchor = self._anchor_at(show_sample)
        if anchor.song_sample is None:
            return self._paused_song
        return anchor.song_sample + (show_sample - anchor.show_sample) * anchor.rate

    def locked_beats(self) -> tuple[float, float]:
        """The score span (beats) the backing covers: no re-timing inside it."""
        first = self.track.offset_samples
        last = first + self.track.length_samples
        return self.tempo_map.sample_to_beat(first), self.tempo_map.sample_to_beat(last)

    def check_retime(self, beat: float) -> None:
        """``BackingLockError`` when a tempo edit or follower re-timing at ``beat`` falls in
        the locked span (what the director asks before applying one)."""
        first, last = self.locked_beats()
        if first <= beat < last:
            raise BackingLockError(
                f"beat {beat:g} is inside the backing track (beats {first:g}..{last:g}): the "
                "voice is locked to it there; re-time outside it")

    # gains -------------------------------------------------------------------------------
    def stem_index(self, name: str) -> int:
        """Index of stem ``name`` (``BackingError`` naming the stems otherwise)."""
        try:
            return self.track.names.index(name)
        except ValueError:
            raise BackingError(f"no stem {name!r}; stems: {', '.join(self.track.names)}"
                               ) from None

    def set_gain(self, stem: str, gain_db: float, at_sample: int, fade_s: float = 0.0) -> None:
        """Stem gain (dB) reached ``fade_s`` after ``at_sample`` (a linear ramp)."""
        i = self.stem_index(stem)
        self._gain[i] = 10 ** (gain_db / 20)
        self._ramp(i, at_sample, fade_s)

    def mute(self, stem: str, muted: bool, at_sample: int, fade_s: float = 0.0) -> None:
        """Mute (or unmute, back to its gain) a stem from ``at_sample`` over ``fade_s``."""
        i = self.stem_index(stem)
        self._muted[i] = muted
        self._ramp(i, at_sample, fade_s)

    def _ramp(self, i: int, at_sample: int, fade_s: float) -> None:
        env = self._env[i]
        start_value = float(self._gains_at(i, np.array([at_sample]))[0])
        target = 0.0 if self._muted[i] else self._gain[i]
        kept = [p for p in env if p[0] < at_sample][-MAX_ANCHORS:]
        end = at_sample + max(0, seconds_to_samples(fade_s))
        kept.append((at_sample, start_value))
        kept.append((end if end > at_sample else at_sample, target))
        self._env[i] = kept

    def _gains_at(self, i: int, samples: np.ndarray) -> np.ndarray:
        env = self._env[i]
        xs = np.array([p[0] for p in env], dtype=np.float64)
        ys = np.array([p[1] for p in env], dtype=np.float64)
        # a step (two points at one sample) takes the later value from that sample on
        idx = np.searchsorted(xs, samples, side="right") - 1
        nxt = np.minimum(idx + 1, len(xs) - 1)
        span = xs[nxt] - xs[idx]
        frac = np.where(span > 0, (samples - xs[idx]) / np.where(span > 0, span, 1), 0.0)
        return ys[idx] + (ys[nxt] - ys[idx]) * np.clip(frac, 0.0, 1.0)

    # reading -----------------------------------------------------------------------------
    def read_stems(self, start_sample: int, n_samples: int) -> np.ndarray:
        """``[stems, n]`` float32: each stem as heard over ``[start, start + n)`` (gains,
        mutes and fades applied)."""
        t = np.arange(start_sample, start_sample + n_samples, dtype=np.int64)
        song, tail_song, tail_w = self._positions(t)
        out = np.zeros((len(self.track.stems), n_samples), np.float32)
        for i, stem in enumerate(self.track.stems):
            x = _take(stem, song - self.track.offset_samples)
            if tail_w is not None:
                x += _take(stem, tail_song - self.track.offset_samples) * tail_w
            out[i] = x * self._gains_at(i, t.astype(np.float64))
        self._forget_before(start_sample)
        return out

    def read(self, start_sample: int, n_samples: int) -> np.ndarray:
        """The stems summed: mono float32 for ``[start, start + n)``."""
        return self.read_stems(start_sample, n_samples).sum(axis=0)

    def _positions(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Song sample per show sample (``_STOPPED`` when stopped), and the old position fading
        out after a stop or seek (with its weights)."""
        song = np.full(len(t), _STOPPED, np.float64)
        tail_song = np.full(len(t), _STOPPED, np.float64)
        tail_w = np.zeros(len(t))
        shows = [a.show_sample for a in self._anchors]
        first = max(0, bisect.bisect_right(shows, int(t[0])) - 1) if len(t) else 0
        for k in range(first, len(self._anchors)):
            a = self._anchors[k]
            end = self._anchors[k + 1].show_sample if k + 1 < len(self._anchors) else None
            lo = int(np.searchsorted(t, a.show_sample, side="left"))
            hi = len(t) if end is None else int(np.searchsorted(t, end, side="left"))
            if a.song_sample is not None and hi > lo:
                song[lo:hi] = a.song_at(t[lo:hi])
            prev = self._anchors[k - 1] if k > 0 else None
            if a.jump and prev is not None and prev.song_sample is not None:
                d_end = a.show_sample + DECLICK_SAMPLES
                dlo = lo
                dhi = int(np.searchsorted(t, d_end, side="left"))
                if end is not None:
                    dhi = min(dhi, hi)
                if dhi > dlo:
                    tt = t[dlo:dhi]
                    tail_song[dlo:dhi] = prev.song_at(tt)
                    tail_w[dlo:dhi] = 1.0 - (tt - a.show_sample + 1) / (DECLICK_SAMPLES + 1)
            if end is not None and end > t[-1]:
                break
        return song, tail_song, (tail_w if tail_w.any() else None)

    def _anchor_at(self, show_sample: int) -> _Anchor:
        shows = [a.show_sample for a in self._anchors]
        return self._anchors[max(0, bisect.bisect_right(shows, show_sample) - 1)]

    def _put(self, anchor: _Anchor) -> None:
        """A transport event at its show sample; later scheduled ones are replaced."""
        kept = [a for a in self._anchors if a.show_sample < anchor.show_sample]
        self._anchors = [*kept, anchor][-MAX_ANCHORS:]

    def _forget_before(self, sample: int) -> None:
        """Drop anchors that no longer matter (keep the one in force and the one before it,
        whose position a declick fade may still read)."""
        shows = [a.show_sample for a in self._anchors]
        k = bisect.bisect_right(shows, sample) - 1
        if k > 1:
            del self._anchors[:k - 1]
        for i, env in enumerate(self._env):
            j = bisect.bisect_right([p[0] for p in env], sample) - 1
            if j > 1:
                self._env[i] = env[j - 1:]


def _take(stem: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``stem`` at (fractional) positions ``pos``, zeros outside it (or stopped): whole
    positions are read as they are, fractional ones through the windowed-sinc interpolator."""
    whole = np.floor(pos)
    if np.array_equal(whole, pos):
        idx = pos.astype(np.int64)
        ok = (idx >= 0) & (idx < len(stem))
        out = np.zeros(len(idx), np.float32)
        out[ok] = stem[idx[ok]]
        return out
    return _interpolate(stem, pos)


def _interpolate(stem: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Band-limited reading of ``stem`` at fractional positions (Kaiser-windowed sinc,
    ``2 × SINC_HALF`` taps, phases tabulated and interpolated linearly)."""
    out = np.zeros(len(pos), np.float32)
    near = (pos > -SINC_HALF) & (pos < len(stem) + SINC_HALF)
    if not near.any():
        return out
    p = pos[near]
    base = np.floor(p).astype(np.int64)
    phase = (p - base) * SINC_PHASES
    row = np.minimum(phase.astype(np.int64), SINC_PHASES - 1)
    w = (phase - row)[:, None]
    taps = _SINC_TABLE[row] * (1.0 - w) + _SINC_TABLE[row + 1] * w
    idx = base[:, None] + _SINC_OFFSETS[None, :]
    inside = (idx >= 0) & (idx < len(stem))
    samples = np.where(inside, stem[np.clip(idx, 0, len(stem) - 1)], 0.0)
    out[near] = np.sum(samples * taps, axis=1)
    return out


def _sinc_table() -> tuple[np.ndarray, np.ndarray]:
    """Taps for every tabulated fraction ``f`` (rows ``0..SINC_PHASES``): the tap at offset
    ``k`` weighs ``stem[floor(pos) + k]`` for ``pos = floor(pos) + f``."""
    offsets = np.arange(-SINC_HALF + 1, SINC_HALF + 1)
    frac = np.arange(SINC_PHASES + 1)[:, None] / SINC_PHASES
    x = offsets[None, :] - frac
    window = np.i0(SINC_BETA * np.sqrt(np.clip(1.0 - (x / SINC_HALF) ** 2, 0.0, 1.0)))
    taps = SINC_CUTOFF * np.sinc(SINC_CUTOFF * x) * window / np.i0(SINC_BETA)
    taps /= taps.sum(axis=1, keepdims=True)  # unity gain at DC for every fraction
    return taps, offsets


_SINC_TABLE, _SINC_OFFSETS = _sinc_table()


def seconds(samples: int) -> float:
    """Show samples as seconds (for messages)."""
    return samples / SAMPLE_RATE_HZ
