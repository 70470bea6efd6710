"""One placed sample resynthesised at the note's pitch, in fixed blocks (WORLD-style).

The output of a unit is a train of pulses whose times follow the target f0 (phase counted
from the unit's start, so a pulse's time never depends on which block asks for it). Each
pulse takes the analysis frame its output time maps to: the consonant part at the velocity's
speed, then the vowel as recorded, then, past the recorded end, back and forth over the
vowel's steady part, so a note of any length (or a held live note) sustains. A pulse is the
frame's periodic response scaled by the square root of the pulse period plus period-long
noise through the frame's aperiodic filter, as WORLD synthesises. Blocks are overlap-added
from the pulses reaching into them, so any block equals the same samples of a whole render.

Expression (``Shaping``, per pulse at its show sample): ``breathiness`` scales the noise part
(WORLD's aperiodic component) of voiced frames by its square (+12 dB per doubling: a
recording's own breath noise is faint), consonants as recorded; ``formant_shift`` warps the spectral
envelope of both parts along frequency (every formant times the factor) before the
minimum-phase responses are rebuilt; ``tension`` tilts the spectrum above 500 Hz by up to
±4 dB per octave (brighter above 0.5, darker below); ``volume`` scales the output samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from singer.backends.utau.analysis import (
    FFT_SIZE,
    FRAME_MS,
    FRAME_SAMPLES,
    SampleFeatures,
    minimum_phase,
)
from singer.backends.utau.plan import Unit, consonant_speed
from singer.contracts import SAMPLE_RATE_HZ

BLOCK_SAMPLES = 960
"""A unit is rendered and cached in 20 ms blocks."""
STEADY_SHARE = 0.6
"""The last 60 % of the vowel is the steady part a long note loops over."""
_NOISE = np.random.default_rng(20240917).standard_normal(1 << 16)
TILT_PIVOT_HZ = 500.0
TILT_DB_PER_OCTAVE = 4.0
"""Spectral tilt above ``TILT_PIVOT_HZ`` at tension 1 (tension 0: the same, downwards)."""
NEUTRAL = {"breathiness": 1.0, "formant_shift": 1.0, "tension": 0.5, "volume": 1.0}
Shaping = Callable[[np.ndarray], dict[str, np.ndarray]]
"""Expression curves at show samples (int64 array) -> field -> values (``NEUTRAL`` keys)."""


@dataclass
class UnitTrack:
    """A unit's output frames so far: target f0, analysis frame and pulse phase (grows as a
    held note goes on; values already computed never change)."""

    f0_hz: np.ndarray = field(default_factory=lambda: np.zeros(0))
    source_frame: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    phase: np.ndarray = field(default_factory=lambda: np.zeros(1))
    """Cycles before output frame k (one more entry than frames)."""


def source_ms(unit: Unit, out_ms: np.ndarray, velocity: float) -> np.ndarray:
    """Where (ms after the offset) the sample is read at output time ``out_ms`` after the
    unit's start (past the recorded end: to and fro over the steady part)."""
    entry = unit.entry
    speed = consonant_speed(velocity)
    fixed, length = entry.consonant_ms, entry.length_ms
    t = out_ms + unit.skip_ms
    src = np.where(t * speed < fixed, t * speed, fixed + (t - fixed / speed))
    steady = fixed + (1.0 - STEADY_SHARE) * max(length - fixed, 0.0)
    span = max(length - steady, FRAME_MS)
    over = src - length
    m = np.mod(np.maximum(over, 0.0), 2 * span)
    looped = np.where(m < span, length - m, length - 2 * span + m)
    return np.where(over > 0, looped, src)


def extend_track(track: UnitTrack, unit: Unit, features: SampleFeatures, n_frames: int,
                 f0_at: Callable[[np.ndarray], np.ndarray], velocity: float) -> UnitTrack:
    """``track`` with at least ``n_frames`` output frames."""
    have = len(track.f0_hz)
    if have >= n_frames:
        return track
    n_frames = max(n_frames, 2 * have)
    k = np.arange(have, n_frames)
    f0 = np.maximum(f0_at(unit.start + k * FRAME_SAMPLES), 1.0)
    src = source_ms(unit, k * FRAME_MS, velocity)
    frame = np.clip(np.round((unit.entry.offset_ms + src) / FRAME_MS).astype(np.int64), 0,
                    features.n_frames - 1)
    f0_all = np.concatenate([track.f0_hz, f0])
    phase = np.concatenate([[0.0], np.cumsum(f0_all * (FRAME_SAMPLES / SAMPLE_RATE_HZ))])
    return UnitTrack(f0_all, np.concatenate([track.source_frame, frame]), phase)


def frames_needed(block: int) -> int:
    """Output frames a block's pulses need (its end, plus one for interpolation)."""
    return (block + 1) * BLOCK_SAMPLES // FRAME_SAMPLES + 2


def _shaped(periodic: np.ndarray, aperiodic: np.ndarray, formant: np.ndarray,
            tension: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pulse responses ``[P, FFT]`` and noise filters ``[P, FFT/2+1]`` with their envelopes
    warped by ``formant`` (per pulse: the factor every formant is scaled by) and tilted above
    ``TILT_PIVOT_HZ`` by ``tension`` (0.5: none); minimum phase rebuilt."""
    bins = np.arange(FFT_SIZE // 2 + 1, dtype=np.float64)
    hz = bins * (SAMPLE_RATE_HZ / FFT_SIZE)
    tilt_db = (TILT_DB_PER_OCTAVE * 2.0 * (tension[:, None] - 0.5)
               * np.log2(np.maximum(hz, TILT_PIVOT_HZ) / TILT_PIVOT_HZ))
    mag_p = np.abs(np.fft.rfft(periodic, axis=1))
    mag_a = np.abs(aperiodic)
    warped_p = np.empty_like(mag_p)
    warped_a = np.empty_like(mag_a)
    for i, alpha in enumerate(formant):
        src = bins / float(alpha)
        warped_p[i] = np.interp(src, bins, mag_p[i])
        warped_a[i] = np.interp(src, bins, mag_a[i])
    warped_p *= 10.0 ** (tilt_db / 20.0)
    warped_a *= 10.0 ** (tilt_db / 20.0)
    pulses = np.fft.irfft(minimum_phase(warped_p), n=FFT_SIZE, axis=1)
    window = np.hanning(FFT_SIZE)
    pulses -= window[None, :] * (pulses.sum(axis=1, keepdims=True) / window.sum())
    return pulses, minimum_phase(warped_a)


def render_block(unit: Unit, block: int, track: UnitTrack, features: SampleFeatures,
                 gain: float = 1.0, shaping: Shaping | None = None) -> np.ndarray:
    """Samples ``[block * B, (block + 1) * B)`` after the unit's start (float32; zeros past
    its stop), from a track with at least ``frames_needed(block)`` frames; ``shaping``: the
    singer's expression (``None``: as recorded)."""
    b0 = block * BLOCK_SAMPLES
    b1 = b0 + BLOCK_SAMPLES
    length = unit.stop - unit.start
    out = np.zeros(BLOCK_SAMPLES, dtype=np.float64)
    if b0 >= length:
        return out.astype(np.float32)
    frame_t = np.arange(len(track.phase)) * float(FRAME_SAMPLES)
    lo_phase = np.interp(max(b0 - FFT_SIZE, 0), frame_t, track.phase)
    hi_phase = np.interp(min(b1, length), frame_t, track.phase)
    cycles = np.arange(math.ceil(lo_phase), math.ceil(hi_phase))
    if len(cycles):
        times = np.round(np.interp(cycles, track.phase, frame_t)).astype(np.int64)
        k = np.clip(np.round(times / FRAME_SAMPLES).astype(np.int64), 0, len(track.f0_hz) - 1)
        src = track.source_frame[k]
        period = np.clip(np.round(SAMPLE_RATE_HZ / track.f0_hz[k]).astype(np.int64), 16,
                         FFT_SIZE)
        noise = np.zeros((len(cycles), FFT_SIZE))
        for i, (cycle, n) in enumerate(zip(cycles, period, strict=True)):
            at = (int(cycle) * 7919 + unit.start) % (len(_NOISE) - FFT_SIZE)
            piece = _NOISE[at:at + n]
            noise[i, :n] = piece - piece.mean()
        periodic, filters = features.periodic[src], features.aperiodic[src]
        breath = np.ones(len(cycles))
        if shaping is not None:
            curves = shaping(unit.start + times)
            # breath noise of the voiced frames only: consonants stay as recorded
            breath = np.where(features.f0_hz[src] > 0, curves["breathiness"] ** 2, 1.0)
            warp = (np.abs(curves["formant_shift"] - 1.0) > 1e-4) \
                | (np.abs(curves["tension"] - 0.5) > 1e-4)
            if warp.any():
                periodic, filters = periodic.astype(np.float64), filters.astype(np.complex128)
                periodic[warp], filters[warp] = _shaped(
                    periodic[warp], filters[warp], curves["formant_shift"][warp],
                    curves["tension"][warp])
        aperiodic = np.fft.irfft(np.fft.rfft(noise, axis=1) * filters, n=FFT_SIZE, axis=1)
        pulses = periodic * np.sqrt(period)[:, None] + breath[:, None] * aperiodic
        for t, pulse in zip(times, pulses, strict=True):
            a, b = max(t, b0), min(t + FFT_SIZE, b1)
            if a < b:
                out[a - b0:b - b0] += pulse[a - t:b - t]
    n = np.arange(b0, b1)
    envelope = np.clip(n / max(unit.fade_in, 1), 0.0, 1.0) \
        * np.clip((length - n) / max(unit.fade_out, 1), 0.0, 1.0)
    if shaping is not None:
        envelope = envelope * shaping(unit.start + n)["volume"]
    return (out * envelope * gain).astype(np.float32)
