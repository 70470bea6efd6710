"""A stand-in DiffSinger bank with the published networks' sizes and random weights.

For benchmarks only: it costs what a real bank costs. The acoustic model is a FastSpeech2-style
encoder (hidden 256, 4 FFN conv blocks) feeding a WaveNet denoiser of DiffSinger's default size
(20 residual layers × 512 channels, 128 mel bins) run ``steps`` times in an ONNX loop
(continuous acceleration); the vocoder is an NSF-HiFiGAN of the 44.1 kHz release's shape
(upsampling 8·8·2·2·2 = 512 from 512 channels, resblock kernels 3/7/11 with dilations 1/3/5,
a harmonic-plus-noise source at f0). Exported with torch's TorchScript ONNX exporter.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import cast

import torch
import yaml
from torch import nn

HIDDEN = 256
MEL_BINS = 128
HOP = 512
RATE = 44100
PHONEMES = ["<PAD>", "SP", "AP", "a", "i", "u", "e", "o", "b", "d", "l", "m", "n", "s"]


class _ResidualLayer(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.dilated = nn.Conv1d(channels, 2 * channels, 3, padding=dilation, dilation=dilation)
        self.cond = nn.Conv1d(HIDDEN, 2 * channels, 1)
        self.step = nn.Linear(channels, channels)
        self.out = nn.Conv1d(channels, 2 * channels, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, step: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.dilated(x + self.step(step).unsqueeze(-1)) + self.cond(cond)
        gate, filt = y.chunk(2, dim=1)
        y = self.out(torch.sigmoid(gate) * torch.tanh(filt))
        res, skip = y.chunk(2, dim=1)
        return (x + res) / math.sqrt(2.0), skip


class WaveNetDenoiser(nn.Module):
    """DiffSinger's WaveNet denoiser: 20 layers × 512 channels, dilation cycle 4."""

    def __init__(self, layers: int = 20, channels: int = 512) -> None:
        super().__init__()
        self.channels = channels
        self.inp = nn.Conv1d(MEL_BINS, channels, 1)
        self.layers = nn.ModuleList(_ResidualLayer(channels, 2 ** (k % 4)) for k in range(layers))
        self.skip = nn.Conv1d(channels, channels, 1)
        self.outp = nn.Conv1d(channels, MEL_BINS, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        half = self.channels // 2
        freqs = torch.exp(torch.arange(half, dtype=torch.float32) * (-math.log(1e4) / half))
        step = torch.cat([torch.sin(t * 1000 * freqs), torch.cos(t * 1000 * freqs)]).unsqueeze(0)
        h = torch.relu(self.inp(x))
        skips = torch.zeros_like(h)
        for layer in self.layers:
            h, s = layer(h, cond, step)
            skips = skips + s
        return self.outp(torch.relu(self.skip(skips / math.sqrt(len(self.layers)))))


class StandinAcoustic(nn.Module):
    """tokens, durations, f0, steps → mel: encoder + ``steps`` Euler steps of the denoiser."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(len(PHONEMES), HIDDEN)
        # FastSpeech2's FFN blocks (conv 256→1024 k9, 1024→256); the attention is left out: it
        # is a small share of the cost and traces to fixed lengths
        self.encoder = nn.ModuleList(nn.Sequential(
            nn.Conv1d(HIDDEN, 1024, 9, padding=4), nn.ReLU(), nn.Conv1d(1024, HIDDEN, 1))
            for _ in range(4))
        self.pitch = nn.Linear(1, HIDDEN)
        self.denoiser = WaveNetDenoiser()

    def condition(self, tokens: torch.Tensor, durations: torch.Tensor, f0: torch.Tensor
                  ) -> torch.Tensor:
        """Encoder states expanded to frames, plus the pitch embedding: ``[1, H, T]``."""
        h = self.embed(tokens).transpose(1, 2)
        for block in self.encoder:
            h = h + block(h)
        enc = h[0].t()
        ends = torch.cumsum(durations[0], 0)
        frames = torch.arange(f0.shape[1]).unsqueeze(1)
        idx = (frames >= ends.unsqueeze(0)).long().sum(1).clamp(max=tokens.shape[1] - 1)
        mel2ph = enc[idx] + self.pitch(torch.log2(f0[0].unsqueeze(1) / 440.0 + 1e-3))
        return mel2ph.t().unsqueeze(0)


class _AcousticGraph(nn.Module):
    """The exported acoustic graph: ``n_steps`` Euler steps unrolled (``steps`` is accepted
    and kept in the graph, but the cost is fixed at export: that is what is measured)."""

    def __init__(self, n_steps: int) -> None:
        super().__init__()
        self.model = StandinAcoustic()
        self.n_steps = n_steps

    def forward(self, tokens: torch.Tensor, durations: torch.Tensor, f0: torch.Tensor,
                steps: torch.Tensor) -> torch.Tensor:
        cond = self.model.condition(tokens, durations, f0)
        x = torch.zeros(1, MEL_BINS, f0.shape[1]) + 0.0 * steps.float()
        dt = 1.0 / self.n_steps
        for k in range(self.n_steps):
            t = torch.full([1], k * dt)
            x = x + dt * self.model.denoiser(x, t, cond)
        return x.transpose(1, 2) - 5.0


class _ResBlock(nn.Module):
    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d,
                                              padding=(kernel * d - d) // 2) for d in (1, 3, 5))
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel,
                                              padding=(kernel - 1) // 2) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            x = x + c2(nn.functional.leaky_relu(c1(nn.functional.leaky_relu(x, 0.1)), 0.1))
        return x


class NsfHifigan(nn.Module):
    """mel [1, T, 128], f0 [1, T] → waveform [1, T·512]: NSF-HiFiGAN's 44.1 kHz shape."""

    RATES = (8, 8, 2, 2, 2)
    KERNELS = (16, 16, 4, 4, 4)

    def __init__(self, channels: int = 512, harmonics: int = 8) -> None:
        super().__init__()
        self.harmonics = harmonics
        self.source = nn.Linear(harmonics + 1, 1)
        self.conv_pre = nn.Conv1d(MEL_BINS, channels, 7, padding=3)
        self.ups = nn.ModuleList()
        self.noise_convs = nn.ModuleList()
        self.blocks = nn.ModuleList()
        ch = channels
        for k, (rate, kernel) in enumerate(zip(self.RATES, self.KERNELS, strict=True)):
            self.ups.append(nn.ConvTranspose1d(ch, ch // 2, kernel, rate,
                                               padding=(kernel - rate) // 2))
            ch //= 2
            rest = math.prod(self.RATES[k + 1:])
            self.noise_convs.append(nn.Conv1d(1, ch, 2 * rest if rest > 1 else 1, stride=rest,
                                              padding=rest // 2 if rest > 1 else 0))
            self.blocks.append(nn.ModuleList(_ResBlock(ch, kz) for kz in (3, 7, 11)))
        self.conv_post = nn.Conv1d(ch, 1, 7, padding=3)

    def forward(self, mel: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
        f0_up = nn.functional.interpolate(f0.unsqueeze(1), scale_factor=float(HOP))[:, 0]
        phase = torch.cumsum(2 * math.pi * f0_up / RATE, dim=1)
        k = torch.arange(1, self.harmonics + 2, dtype=torch.float32)
        sines = torch.sin(phase.unsqueeze(-1) * k) * 0.1
        har = torch.tanh(self.source(sines)).transpose(1, 2)  # [1, 1, S]
        x = self.conv_pre(mel.transpose(1, 2))
        for up, noise, blocks in zip(self.ups, self.noise_convs, self.blocks, strict=True):
            x = up(nn.functional.leaky_relu(x, 0.1))
            src = noise(har)
            x = x + src[:, :, :x.shape[2]]
            x = sum((b(x) for b in cast(nn.ModuleList, blocks)), torch.zeros_like(x)) / 3.0
        return torch.tanh(self.conv_post(nn.functional.leaky_relu(x)))[:, 0]


def _export(module: nn.Module, args: tuple[torch.Tensor, ...], names: list[str], output: str,
            dynamic: dict[str, dict[int, str]], path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), input_names=names, output_names=[output],
                          dynamic_axes=dynamic, opset_version=17, dynamo=False)


def build_standin_bank(folder: Path, *, n_steps: int = 20, seed: int = 0) -> Path:
    """Write a stand-in bank (random weights, real sizes) into ``folder``; returns it."""
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "character.txt").write_text("name=Stand-in (random weights)\n", encoding="utf-8")
    (folder / "phonemes.txt").write_text("\n".join(PHONEMES) + "\n", encoding="utf-8")
    mel = {"sample_rate": RATE, "hop_size": HOP, "win_size": 2048, "fft_size": 2048,
           "num_mel_bins": MEL_BINS, "mel_fmin": 40, "mel_fmax": 16000, "mel_base": "e",
           "mel_scale": "slaney"}
    config = {"phonemes": "phonemes.txt", "acoustic": "acoustic.onnx", "vocoder": "nsf_hifigan",
              "hidden_size": HIDDEN, "use_continuous_acceleration": True, **mel}
    (folder / "dsconfig.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    vowels = {"a", "i", "u", "e", "o"}
    symbols = [{"symbol": p, "type": "vowel" if p in vowels else "consonant"}
               for p in PHONEMES[3:]]
    entries = [{"grapheme": c + v, "phonemes": [c, v]} for c in ("b", "d", "l", "m", "n", "s")
               for v in sorted(vowels)] + [{"grapheme": v, "phonemes": [v]} for v in vowels]
    (folder / "dsdict.yaml").write_text(yaml.safe_dump({"symbols": symbols, "entries": entries}),
                                        encoding="utf-8")
    with torch.no_grad():
        acoustic = _AcousticGraph(n_steps).eval()
        _export(acoustic, (torch.ones(1, 3, dtype=torch.long), torch.tensor([[2, 3, 2]]),
                           torch.full((1, 7), 220.0), torch.tensor(n_steps)),
                ["tokens", "durations", "f0", "steps"], "mel",
                {"tokens": {1: "n"}, "durations": {1: "n"}, "f0": {1: "t"}, "mel": {1: "t"}},
                folder / "acoustic.onnx")
        voc_dir = folder / "dsvocoder"
        voc_dir.mkdir(exist_ok=True)
        _export(NsfHifigan().eval(), (torch.zeros(1, 7, MEL_BINS), torch.full((1, 7), 220.0)),
                ["mel", "f0"], "waveform", {"mel": {1: "t"}, "f0": {1: "t"},
                                            "waveform": {1: "s"}}, voc_dir / "model.onnx")
    (voc_dir / "vocoder.yaml").write_text(yaml.safe_dump(
        {"name": "nsf_hifigan", "model": "model.onnx", "pitch_controllable": True, **mel}),
        encoding="utf-8")
    return folder


def parameter_counts() -> dict[str, int]:
    """Parameters of the stand-in's denoiser, whole acoustic model and vocoder."""
    acoustic = StandinAcoustic()
    return {"denoiser": sum(p.numel() for p in acoustic.denoiser.parameters()),
            "acoustic": sum(p.numel() for p in acoustic.parameters()),
            "vocoder": sum(p.numel() for p in NsfHifigan().parameters())}
