"""A singer's vocal chain: EQ → de-esser → compressor → delay → reverb, with presets and
cue-able parameters (``chain.set("comp.threshold_db", -24)``).

Library choice: scipy.signal (BSD) runs the filters; pedalboard and DawDreamer would give a
full chain but are GPL-3.0, pyo is LGPL (and a server of its own, not a streaming function),
so the compressor, de-esser, echo and FDN reverb are written here on top of scipy's
``sosfilt``/``lfilter`` (docs/mix.md).
"""

from __future__ import annotations

import numpy as np

from singer.mix.effects import (
    Band,
    Compressor,
    CompressorParams,
    DeEsser,
    DeEsserParams,
    DelayParams,
    Echo,
    Effect,
    Equalizer,
    ParamError,
)
from singer.mix.reverb import FdnReverb, ReverbParams


class VocalChain:
    """Effects in series: ``process(chunk)``, ``reset()``, ``latency_samples`` (the sum of the
    effects' latencies: the program mix delays everything else by it)."""

    def __init__(self, effects: list[Effect] | None = None, preset: str = "custom") -> None:
        self.effects: list[Effect] = list(effects or [])
        self.preset = preset
        names = [e.name for e in self.effects]
        if len(set(names)) != len(names):
            raise ParamError(f"a chain holds each effect once, got {', '.join(names)}")

    @property
    def latency_samples(self) -> int:
        return sum(e.latency_samples for e in self.effects)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        out = np.asarray(chunk, dtype=np.float32)
        for effect in self.effects:
            out = effect.process(out)
        return out

    def reset(self) -> None:
        for effect in self.effects:
            effect.reset()

    def effect(self, name: str) -> Effect:
        """The effect called ``name`` (``ParamError`` naming those in the chain)."""
        for effect in self.effects:
            if effect.name == name:
                return effect
        have = ", ".join(e.name for e in self.effects) or "none"
        raise ParamError(f"the {self.preset} chain has no {name!r} effect (it has: {have})")

    def set(self, path: str, value: float) -> None:
        """A cue: ``EFFECT.PARAM`` (``reverb.mix``, ``comp.ratio``, ``eq.1.gain_db``)."""
        name, _, param = path.partition(".")
        if not param:
            raise ParamError(f"chain parameter {path!r}: write EFFECT.PARAM, e.g. reverb.mix")
        self.effect(name).set(param, float(value))


def _pop() -> VocalChain:
    return VocalChain([
        Equalizer([Band("highpass", 90.0), Band("peak", 3000.0, 3.0, 1.0),
                   Band("highshelf", 10000.0, 2.0)]),
        DeEsser(DeEsserParams()),
        Compressor(CompressorParams(-20.0, 3.0, lookahead_ms=1.5)),
        FdnReverb(ReverbParams(rt60_s=1.6, mix=0.15)),
    ], "pop")


def _ballad() -> VocalChain:
    return VocalChain([
        Equalizer([Band("highpass", 80.0), Band("peak", 250.0, -2.0, 1.0),
                   Band("peak", 4000.0, 2.0, 1.0)]),
        DeEsser(DeEsserParams(threshold_db=-32.0)),
        Compressor(CompressorParams(-22.0, 2.5, attack_ms=10.0, release_ms=150.0,
                                    lookahead_ms=1.5)),
        Echo(DelayParams(time_ms=375.0, feedback=0.25, mix=0.1)),
        FdnReverb(ReverbParams(rt60_s=2.8, mix=0.25, predelay_ms=30.0, size=1.3)),
    ], "ballad")


def _broadcast() -> VocalChain:
    return VocalChain([
        Equalizer([Band("highpass", 100.0), Band("peak", 2500.0, 2.0, 1.0)]),
        DeEsser(DeEsserParams(threshold_db=-28.0)),
        Compressor(CompressorParams(-24.0, 4.0, attack_ms=3.0, release_ms=60.0,
                                    makeup_db=4.0, lookahead_ms=2.0)),
    ], "broadcast")


PRESETS = {"dry": lambda: VocalChain([], "dry"), "pop": _pop, "ballad": _ballad,
           "broadcast": _broadcast}
"""Chain presets by name: ``dry`` (no effect), ``pop``, ``ballad``, ``broadcast``."""


def chain_preset(name: str) -> VocalChain:
    """A fresh chain of preset ``name`` (``ParamError`` naming the presets otherwise)."""
    if name not in PRESETS:
        raise ParamError(f"unknown chain preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]()


def chain_plan(specs: list[str] | tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """``--chain`` values: ``PRESET`` (every singer; the last one wins) and ``SINGER=PRESET``
    (that singer) → ``(default preset, {singer: preset})``; ``ParamError`` names a bad one."""
    default, per_singer = "dry", {}
    for spec in specs:
        singer, eq, preset = spec.rpartition("=")
        if eq and not singer.strip():
            raise ParamError(f"chain {spec!r}: write PRESET or SINGER=PRESET")
        if preset not in PRESETS:
            raise ParamError(f"chain {spec!r}: unknown preset {preset!r}; presets: "
                             f"{', '.join(PRESETS)}")
        if eq:
            per_singer[singer.strip()] = preset
        else:
            default = preset
    return default, per_singer


def max_latency(presets: list[str] | tuple[str, ...]) -> int:
    """The longest latency (samples) of the named presets' chains."""
    return max((chain_preset(p).latency_samples for p in presets), default=0)
