"""The program mix: every singer through their vocal chain, plus the backing, in time.

``ProgramMix.render(start, n, voices)`` takes each singer's dry voice for show samples
``[start, start + n)`` and returns ``(program, dry)`` for show samples
``[start − L, start − L + n)``, where ``L = latency_samples`` is the longest chain latency:
shorter chains are padded to ``L`` and the backing is read ``L`` earlier, so voice and backing
keep the score's relation to the sample. Offline, ``render_program`` drops the first ``L``
samples; live, the pacer asks for the voice ``L`` samples ahead (docs/mix.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from singer.mix.backing import BackingPlayer
from singer.mix.chain import VocalChain
from singer.mix.effects import _Delay

TAIL_S = 3.0
"""Seconds a song's end rings on through an effect chain (reverb, echo): ``render`` runs
this far past the last note, and a show that ends with its song plays it out."""


class ProgramMix:
    """Chains per singer (by name) and an optional backing player; stateful (the chains'
    filters and tails), so one owner renders it in show order."""

    def __init__(self, chains: Mapping[str, VocalChain], backing: BackingPlayer | None = None,
                 voice_gain: float = 1.0, min_latency: int = 0) -> None:
        self.chains = dict(chains)
        self.backing = backing
        self.voice_gain = voice_gain
        self.min_latency = min_latency
        """The program runs at least this far behind its input (live: fixed for the show,
        so a chain swapped in later does not move the program on the clock)."""
        self._pads: dict[str, _Delay] = {}
        self._dry_pad = _Delay(0)
        self._part_pads: dict[str, _Delay] = {}
        self._fading: dict[str, tuple[VocalChain, _Delay]] = {}
        self.last_stems = np.zeros((0, 0), np.float32)
        """The backing stems of the last ``render`` (``[stems, n]``, gains applied)."""
        self.last_dry: dict[str, np.ndarray] = {}
        """Each singer's dry voice of the last ``render``, on the program's timeline."""
        self.last_wet: dict[str, np.ndarray] = {}
        """Each singer through their chain in the last ``render`` (what they add)."""
        self._relatch()

    @property
    def latency_samples(self) -> int:
        """How far behind its input the program runs (the longest chain's latency)."""
        return max(self.min_latency,
                   max((c.latency_samples for c in self.chains.values()), default=0))

    def _relatch(self) -> None:
        """Pads for the latency now; a pad whose length stays keeps what it holds."""
        top = self.latency_samples

        def pad(old: _Delay | None, n: int) -> _Delay:
            return old if old is not None and old.n == n else _Delay(n)

        self._pads = {name: pad(self._pads.get(name), top - c.latency_samples)
                      for name, c in self.chains.items()}
        self._dry_pad = pad(self._dry_pad, top)
        self._part_pads = {name: pad(p, top) for name, p in self._part_pads.items()}

    def set_chain(self, singer: str, chain: VocalChain, crossfade: bool = False) -> None:
        """Give ``singer`` a chain (a latency past ``min_latency`` moves the program: do
        that between songs). ``crossfade``: the old chain fades out over the next render
        as the new one fades in (a live swap, no click; the old tail is cut there)."""
        old = self.chains.get(singer)
        old_pad = self._pads.get(singer)
        self.chains[singer] = chain
        if crossfade and old is not None and old_pad is not None:
            self._fading[singer] = (old, old_pad)
            self._pads.pop(singer)
        self._relatch()

    def reset(self) -> None:
        """Forget every tail (a new song)."""
        for chain in self.chains.values():
            chain.reset()
        for pad in self._pads.values():
            pad.reset()
        self._dry_pad.reset()

    def render(self, start_sample: int, n_samples: int, voices: Mapping[str, np.ndarray]
               ) -> tuple[np.ndarray, np.ndarray]:
        """``(program, dry)`` float32 for show samples ``[start − L, start − L + n)``; every
        singer in ``voices`` (name → ``n`` samples) is rendered through its chain (none: dry).
        """
        top = self.latency_samples
        dry_in = np.zeros(n_samples, np.float32)
        wet = np.zeros(n_samples, np.float32)
        for name in [*voices, *(c for c in self.chains if c not in voices)]:
            voice = voices.get(name)
            if voice is None:  # a silent singer's chain still rings out its tail
                voice = np.zeros(n_samples, np.float32)
            elif len(voice) != n_samples:
                raise ValueError(f"singer {name}: {len(voice)} samples, expected {n_samples}")
            dry_in += voice
            chain = self.chains.get(name)
            pad = self._pads.get(name)
            if pad is None:  # a singer without a chain: dry, delayed like the others
                pad = self._pads[name] = _Delay(top)
            part_pad = self._part_pads.get(name)
            if part_pad is None:
                part_pad = self._part_pads[name] = _Delay(top)
            self.last_dry[name] = part_pad.process(voice)
            self.last_wet[name] = sung = pad.process(
                voice if chain is None else chain.process(voice))
            fading = self._fading.pop(name, None)
            if fading is not None:
                old_chain, old_pad = fading
                ramp = np.linspace(0.0, 1.0, n_samples, dtype=np.float32)
                old = old_pad.process(old_chain.process(voice))
                self.last_wet[name] = sung = sung * ramp + old * (1.0 - ramp)
            wet += sung
        dry = self._dry_pad.process(dry_in)
        program = wet * self.voice_gain
        self.last_stems = np.zeros((0, n_samples), np.float32)
        if self.backing is not None:
            self.last_stems = self.backing.read_stems(start_sample - top, n_samples)
            program = program + self.last_stems.sum(axis=0)
        return program.astype(np.float32), dry


@dataclass(frozen=True)
class ProgramRender:
    """An offline program mix: show sample 0 at index 0 of every array."""

    program: np.ndarray
    dry: np.ndarray
    stems: dict[str, np.ndarray]
    parts: dict[str, np.ndarray] = field(default_factory=dict)
    """Each singer's dry voice (when there is more than one singer)."""


def render_program(voices: Mapping[str, np.ndarray], mix: ProgramMix, *,
                   block_samples: int = 24_000, tail_samples: int = 0,
                   progress: Callable[[int, int], None] | None = None) -> ProgramRender:
    """The whole program offline from per-singer dry voices (same length, show sample 0 at
    index 0), block by block as live; runs ``tail_samples`` past the voices (reverb tails,
    the backing's end) and drops the first ``latency_samples`` so nothing is offset."""
    length = max((len(v) for v in voices.values()), default=0)
    top = mix.latency_samples
    total = length + tail_samples
    program = np.zeros(total + top, np.float32)
    dry = np.zeros(total + top, np.float32)
    names = mix.backing.track.names if mix.backing is not None else ()
    stem_audio = np.zeros((len(names), total + top), np.float32)
    singers = list(voices) if len(voices) > 1 else []
    part_audio = {name: np.zeros(total + top, np.float32) for name in singers}
    t = 0
    while t < total + top:
        n = min(block_samples, total + top - t)
        chunk = {name: _slice(v, t, n) for name, v in voices.items()}
        program[t:t + n], dry[t:t + n] = mix.render(t, n, chunk)
        if names:
            stem_audio[:, t:t + n] = mix.last_stems
        for name in singers:
            part_audio[name][t:t + n] = mix.last_dry[name]
        t += n
        if progress:
            progress(min(t, total), total)
    stems = {name: stem_audio[i, top:] for i, name in enumerate(names)}
    return ProgramRender(program[top:], dry[top:], stems,
                         {name: a[top:] for name, a in part_audio.items()})


def _slice(voice: np.ndarray, t: int, n: int) -> np.ndarray:
    out = np.zeros(n, np.float32)
    part = voice[t:t + n]
    out[:len(part)] = part
    return out
