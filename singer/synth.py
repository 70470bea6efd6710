"""The built-in singing synthesizer: harmonic-plus-noise through a formant envelope, in torch.

Controls arrive once per hop (frame ``i`` describes show sample ``i * hop``) and are
interpolated linearly to every sample. Everything is a pure function of the absolute sample
index except the oscillator phase, which ``SynthState`` carries from block to block; so any
split of a render into blocks gives the same samples, and there is no seam between chunks.
Noise comes from a seeded table indexed by the sample position, never from a running RNG.

Shapes: ``B`` singers, ``T`` frames, ``K`` harmonics, ``n`` samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from singer.contracts import DEFAULT_HOP_SAMPLES, SAMPLE_RATE_HZ

NOISE_TABLE_SIZE = 1 << 20
SOURCE_CORNER_HZ = 300.0
"""Above this the glottal source (with lip radiation) falls by 6 dB per octave."""
SOURCE_FLOOR = 0.12
"""Level of the source floor under the formants, re the F1 peak (about -18 dB)."""


def pick_device(name: str | None = None) -> torch.device:
    """The device the voice runs on: ``name`` if given, else CUDA when present, else CPU."""
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass(frozen=True, slots=True)
class SynthControls:
    """Per-frame controls for ``B`` singers over ``T`` frames (all float32 tensors).

    f0_hz, amp, tension, breath, fric_amp, fric_hz, fric_bw_hz: ``[B, T]``.
    formant_hz, formant_bw_hz, formant_level (linear, re F1): ``[B, T, 5]``.
    ``amp`` is the RMS of the voiced part; ``breath`` and ``fric_amp`` the RMS of the
    aspiration and frication noise.
    """

    f0_hz: torch.Tensor
    amp: torch.Tensor
    formant_hz: torch.Tensor
    formant_bw_hz: torch.Tensor
    formant_level: torch.Tensor
    tension: torch.Tensor
    breath: torch.Tensor
    fric_amp: torch.Tensor
    fric_hz: torch.Tensor
    fric_bw_hz: torch.Tensor

    @property
    def batch(self) -> int:
        """Number of singers."""
        return int(self.f0_hz.shape[0])


@dataclass(frozen=True, slots=True)
class SynthState:
    """Oscillator phase (radians, float64) of each singer at the start of the next block."""

    phase: torch.Tensor

    @classmethod
    def zeros(cls, batch: int, device: torch.device) -> SynthState:
        """The state at show start: every oscillator at phase 0."""
        return cls(torch.zeros(batch, dtype=torch.float64, device=device))


@dataclass(frozen=True, slots=True)
class FrameParams:
    """What the oscillators and noise filters need per frame, derived once from controls.

    f0_hz ``[B, T]`` (float64), harm_amp ``[B, T, K]`` (amplitude of each harmonic),
    noise_fir ``[B, 2, T, L]`` (aspiration and frication filters, gain included).
    """

    f0_hz: torch.Tensor
    harm_amp: torch.Tensor
    noise_fir: torch.Tensor

    @property
    def n_frames(self) -> int:
        """Number of frames covered."""
        return int(self.f0_hz.shape[1])

    def frames(self, first: int, count: int) -> FrameParams:
        """Frames ``[first, first + count)``, silent (zero amplitude) outside the range."""
        total = self.n_frames
        if first >= 0 and first + count <= total:
            sl = slice(first, first + count)
            return FrameParams(self.f0_hz[:, sl], self.harm_amp[:, sl], self.noise_fir[:, :, sl])
        idx = torch.arange(first, first + count, device=self.f0_hz.device)
        inside = ((idx >= 0) & (idx < total)).to(self.harm_amp.dtype)
        idx = idx.clamp(0, total - 1)
        return FrameParams(self.f0_hz[:, idx], self.harm_amp[:, idx] * inside[:, None],
                           self.noise_fir[:, :, idx] * inside[:, None])

    @staticmethod
    def stack(parts: list[FrameParams]) -> FrameParams:
        """Batch single-singer params into one ``FrameParams`` (one forward pass)."""
        if len(parts) == 1:
            return parts[0]
        return FrameParams(torch.cat([p.f0_hz for p in parts]),
                           torch.cat([p.harm_amp for p in parts]),
                           torch.cat([p.noise_fir for p in parts]))


def formant_envelope(freq_hz: torch.Tensor, formant_hz: torch.Tensor, bw_hz: torch.Tensor,
                     level: torch.Tensor, tension: torch.Tensor) -> torch.Tensor:
    """Spectral envelope (linear magnitude) at ``freq_hz`` ``[..., K]`` for formants ``[..., 5]``.

    A parallel formant model: each formant is a resonance peaking at its ``level`` (linear,
    re F1) with bandwidth ``bw_hz``; under them lies the glottal source floor, strong around
    the first harmonics and falling 6 dB/octave above ``SOURCE_CORNER_HZ``. ``tension`` tilts
    the whole spectrum brighter (above 0.5) or darker (below).
    """
    f = freq_hz.unsqueeze(-1)  # [..., K, 1]
    ff = formant_hz.unsqueeze(-2)  # [..., 1, 5]
    bw = bw_hz.unsqueeze(-2)
    # Power response of a second-order resonance, widened to keep the -3 dB bandwidth: its
    # steeper skirts keep a weak formant beside a strong one a visible peak.
    resonance = 1.0 / (1.0 + ((f * f - ff * ff) / (f * bw * 1.554 + 1e-6)) ** 2)
    formants = (resonance * level.unsqueeze(-2)).sum(-1)
    source = SOURCE_FLOOR * torch.rsqrt(1.0 + (freq_hz / SOURCE_CORNER_HZ) ** 2)
    tilt = (freq_hz / 1000.0).clamp_min(1e-3) ** ((tension - 0.5).unsqueeze(-1) * 1.2)
    return (formants + source) * tilt


class HarmonicNoiseSynth:
    """Renders blocks of singing from per-hop controls; stateless apart from ``SynthState``.

    One instance serves any number of singers at once (the batch dimension).
    """

    def __init__(self, *, hop_samples: int = DEFAULT_HOP_SAMPLES, n_harmonics: int = 96,
                 noise_taps: int = 64, max_freq_hz: float = 11_000.0,
                 device: torch.device | str | None = None) -> None:
        self.hop = hop_samples
        self.n_harmonics = n_harmonics
        self.noise_taps = noise_taps
        self.max_freq_hz = min(max_freq_hz, 0.45 * SAMPLE_RATE_HZ)
        self.device = pick_device(str(device) if device is not None else None)
        gen = torch.Generator().manual_seed(0x51A6E4)
        self._noise = torch.randn(NOISE_TABLE_SIZE, generator=gen).to(self.device)
        self._k = torch.arange(1, n_harmonics + 1, dtype=torch.float32, device=self.device)
        self._bins_hz = torch.linspace(0.0, SAMPLE_RATE_HZ / 2, noise_taps // 2 + 1,
                                       device=self.device)
        self._taper = torch.hann_window(noise_taps, periodic=False, device=self.device)

    def frames_for(self, start_sample: int, n_samples: int) -> tuple[int, int]:
        """First frame index and frame count the block ``[start, start+n)`` needs."""
        first = start_sample // self.hop
        last = (start_sample + n_samples - 1) // self.hop + 1
        return first, last - first + 1

    @torch.no_grad()
    def frame_params(self, controls: SynthControls, block_frames: int = 2048) -> FrameParams:
        """Derive harmonic amplitudes and noise filters from controls, in blocks of frames."""
        f0s, amps, firs = [], [], []
        total = int(controls.f0_hz.shape[1])
        for a in range(0, max(total, 1), block_frames):
            c = SynthControls(*(getattr(controls, f)[:, a:a + block_frames]
                                for f in SynthControls.__slots__))
            f0s.append(c.f0_hz.to(torch.float64))
            amps.append(self._harmonic_amplitudes(c))
            firs.append(torch.stack(self._noise_filters(c), dim=1))
        return FrameParams(torch.cat(f0s, 1), torch.cat(amps, 1), torch.cat(firs, 2))

    @torch.no_grad()
    def render(self, params: FrameParams, start_sample: int, n_samples: int,
               state: SynthState, noise_offsets: torch.Tensor) -> tuple[torch.Tensor, SynthState]:
        """Audio ``[B, n]`` for show samples ``[start, start + n)`` and the state after it.

        ``params`` cover the frames given by ``frames_for``; ``noise_offsets`` ``[B]`` (int64)
        give each singer its own noise.
        """
        first_frame, n_frames = self.frames_for(start_sample, n_samples)
        if params.n_frames != n_frames:
            raise ValueError(f"params have {params.n_frames} frames, block needs {n_frames}")
        pos = torch.arange(start_sample, start_sample + n_samples, device=self.device)
        idx = torch.div(pos, self.hop, rounding_mode="floor") - first_frame
        frac = (pos % self.hop).to(torch.float32) / self.hop  # [n]
        rows = torch.arange(n_samples, device=self.device)

        def crossfade(per_frame: torch.Tensor) -> torch.Tensor:
            """Linear interpolation between frames of ``[B, n, T]`` outputs, per sample."""
            a, b = per_frame[:, rows, idx], per_frame[:, rows, idx + 1]
            return a + (b - a) * frac

        # Oscillator phase: the only state carried between blocks.
        f0 = params.f0_hz
        f0_n = f0[:, idx] + (f0[:, idx + 1] - f0[:, idx]) * frac.to(torch.float64)
        omega = f0_n * (2.0 * math.pi / SAMPLE_RATE_HZ)
        phase = state.phase.unsqueeze(1) + torch.cumsum(omega, dim=1)
        new_state = SynthState(torch.remainder(phase[:, -1], 2.0 * math.pi))
        # Phase of sample n is the phase *before* adding its own increment.
        phase = torch.remainder(phase - omega, 2.0 * math.pi).to(torch.float32)

        # Summing harmonics with each frame's amplitudes and crossfading the results equals
        # summing with amplitudes interpolated per sample, at a fraction of the cost.
        k = self._active_harmonics(f0)
        sines = torch.sin(phase.unsqueeze(-1) * self._k[:k])  # [B, n, K]
        voiced = crossfade(torch.bmm(sines, params.harm_amp[:, :, :k].transpose(1, 2)))

        noise = self._noise_windows(start_sample, n_samples, noise_offsets)  # [B, n, L]
        firs = params.noise_fir.flatten(1, 2)  # [B, 2T, L]
        filtered = torch.bmm(noise, firs.transpose(1, 2))  # [B, n, 2T]
        aspiration = crossfade(filtered[:, :, :n_frames])
        frication = crossfade(filtered[:, :, n_frames:])
        pulse = 0.55 + 0.45 * torch.cos(phase)  # aspiration rides on the glottal cycle
        return voiced + aspiration * pulse + frication, new_state

    def _active_harmonics(self, f0_hz: torch.Tensor) -> int:
        """How many harmonics can sound below the cutoff for the lowest f0 in the block."""
        if self.device.type != "cpu":
            return self.n_harmonics  # no host sync on accelerators
        lowest = float(f0_hz.min().clamp_min(20.0))
        return max(1, min(self.n_harmonics, int(self.max_freq_hz / lowest) + 1))

    def _harmonic_amplitudes(self, c: SynthControls) -> torch.Tensor:
        """Amplitude of each harmonic per frame, scaled so the voiced RMS equals ``amp``."""
        f0 = c.f0_hz.clamp_min(20.0).unsqueeze(-1)
        freqs = f0 * self._k  # [B, T, K]
        env = formant_envelope(freqs, c.formant_hz, c.formant_bw_hz, c.formant_level, c.tension)
        edge = self.max_freq_hz
        env = env * ((edge - freqs) / (0.15 * edge)).clamp(0.0, 1.0)
        rms = torch.sqrt((env * env).sum(-1, keepdim=True) * 0.5 + 1e-12)
        return env / rms * c.amp.unsqueeze(-1)

    def _noise_filters(self, c: SynthControls) -> tuple[torch.Tensor, torch.Tensor]:
        """Linear-phase FIRs per frame shaping aspiration and frication, with unit-power gain."""
        bins = self._bins_hz.clamp_min(1.0)
        shape = bins.expand(*c.f0_hz.shape, -1)  # [B, T, bins]
        asp_mag = formant_envelope(shape, c.formant_hz, c.formant_bw_hz, c.formant_level,
                                   c.tension + 0.3)
        asp_mag = asp_mag * (shape / 800.0) ** 2 / (1.0 + (shape / 800.0) ** 2)  # turbulence
        fc = c.fric_hz.clamp_min(100.0).unsqueeze(-1)
        fbw = c.fric_bw_hz.clamp_min(100.0).unsqueeze(-1)
        fric_mag = 1.0 / torch.sqrt(1.0 + ((shape - fc) / (0.5 * fbw)) ** 2) ** 2
        return (self._fir(asp_mag) * c.breath.unsqueeze(-1),
                self._fir(fric_mag) * c.fric_amp.unsqueeze(-1))

    def _fir(self, magnitude: torch.Tensor) -> torch.Tensor:
        taps = torch.fft.irfft(magnitude, n=self.noise_taps, dim=-1)
        taps = torch.roll(taps, self.noise_taps // 2, dims=-1) * self._taper
        power = (taps * taps).sum(-1, keepdim=True)
        return taps * torch.rsqrt(power + 1e-20)

    def _noise_windows(self, start: int, n: int, offsets: torch.Tensor) -> torch.Tensor:
        """White noise windows ``[B, n, L]``: window j ends at sample ``start + j``."""
        length = self.noise_taps
        pos = torch.arange(start - length + 1, start + n, device=self.device)
        index = (pos.unsqueeze(0) + offsets.unsqueeze(1)) % NOISE_TABLE_SIZE
        return self._noise[index].unfold(1, length, 1)
