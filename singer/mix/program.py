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
from dataclasses import dataclass

import numpy as np

from singer.mix.backing import BackingPlayer
from singer.mix.chain import VocalChain
from singer.mix.effects import _Delay


class ProgramMix:
    """Chains per singer (by name) and an optional backing player; stateful (the chains'
    filters and tails), so one owner renders it in show order."""

    def __init__(self, chains: Mapping[str, VocalChain], backing: BackingPlayer | None = None,
                 voice_gain: float = 1.0) -> None:
        self.chains = dict(chains)
        self.backing = backing
        self.voice_gain = voice_gain
        self._pads: dict[str, _Delay] = {}
        self._dry_pad = _Delay(0)
        self.last_stems = np.zeros((0, 0), np.float32)
        """The backing stems of the last ``render`` (``[stems, n]``, gains applied)."""
        self._relatch()

    @property
    def latency_samples(self) -> int:
        """How far behind its input the program runs (the longest chain's latency)."""
        return max((c.latency_samples for c in self.chains.values()), default=0)

    def _relatch(self) -> None:
        top = self.latency_samples
        self._pads = {name: _Delay(top - c.latency_samples) for name, c in self.chains.items()}
        self._dry_pad = _Delay(top)

    def set_chain(self, singer: str, chain: VocalChain) -> None:
        """Give ``singer`` a chain (between songs: the latency may change)."""
        self.chains[singer] = chain
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
            wet += pad.process(voice if chain is None else chain.process(voice))
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
    t = 0
    while t < total + top:
        n = min(block_samples, total + top - t)
        chunk = {name: _slice(v, t, n) for name, v in voices.items()}
        program[t:t + n], dry[t:t + n] = mix.render(t, n, chunk)
        if names:
            stem_audio[:, t:t + n] = mix.last_stems
        t += n
        if progress:
            progress(min(t, total), total)
    stems = {name: stem_audio[i, top:] for i, name in enumerate(names)}
    return ProgramRender(program[top:], dry[top:], stems)


def _slice(voice: np.ndarray, t: int, n: int) -> np.ndarray:
    out = np.zeros(n, np.float32)
    part = voice[t:t + n]
    out[:len(part)] = part
    return out
