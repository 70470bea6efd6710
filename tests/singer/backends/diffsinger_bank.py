"""A tiny DiffSinger bank built in the real format for the tests.

Its ONNX models are exported (torch's TorchScript exporter, ``dynamo=False``) from small torch
modules with exactly the contract's input and output names: the acoustic model writes the f0
it is given into the mel (a bump at the f0's mel bin over a floor set by the phoneme: vowels
loud, consonants soft, SP/AP silent) and the "vocoder" synthesises a harmonic tone at the f0
it is given, as loud as the mel's floor. A score sung with it is in tune by construction,
so the tests measure what the engine does around the models: timing, f0, frames, joins.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

PHONEMES = ["<PAD>", "SP", "AP", "a", "i", "o", "u", "e", "ao", "b", "d", "h", "l", "m", "n",
            "s", "w"]
VOWELS = {"a", "i", "o", "u", "e", "ao"}
ENTRIES = {"ba": ["b", "a"], "ma": ["m", "a"], "la": ["l", "a"], "da": ["d", "a"],
           "ni": ["n", "i"], "hao": ["h", "ao"], "wo": ["w", "o"], "a": ["a"],
           "san": ["s", "a", "n"], "mi": ["m", "i"], "lu": ["l", "u"]}


@dataclass
class BankSpec:
    """What to build: mel settings of each side, sampling variant, scalar ranks, speakers."""

    mel_base: str = "10"
    vocoder_mel_base: str = "10"
    continuous: bool = True
    variable_depth: bool = False
    scalar_rank: int = 0
    speakers: tuple[str, ...] = ()
    hidden_size: int = 8
    phonemes_json: bool = False
    sample_rate: int = 44100
    hop_size: int = 512
    num_mel_bins: int = 32
    vocoder_overrides: dict[str, object] = field(default_factory=dict)
    work_layers: int = 0
    """Dense 1024-wide layers the acoustic model runs per frame and throws away: a bank as
    slow as a real one (its first live segment takes a real-sized render time)."""


def _mel_centres(bins: int, fmin: float, fmax: float) -> torch.Tensor:
    lo, hi = (2595 * math.log10(1 + f / 700) for f in (fmin, fmax))
    return torch.linspace(lo, hi, bins)


class ToyAcoustic(torch.nn.Module):
    """tokens, durations, f0 (+ sampling, speaker) → mel [1, T, bins] in base ``base``."""

    work: torch.Tensor

    def __init__(self, names: list[str], spec: BankSpec) -> None:
        super().__init__()
        self.names = names
        gain = [0.0 if p in ("<PAD>", "SP", "AP") else 1.0 if p in VOWELS else 0.3
                for p in PHONEMES]
        self.register_buffer("gain", torch.tensor(gain))
        self.register_buffer("centres", _mel_centres(spec.num_mel_bins, 40.0, 16000.0))
        self.width = float(self.centres[1] - self.centres[0]) * 1.5
        self.log_base = math.log(10.0) if spec.mel_base == "10" else 1.0
        self.work_layers = spec.work_layers
        self.register_buffer("work", torch.randn(1024, 1024) / 32.0)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        x = dict(zip(self.names, inputs, strict=True))
        wasted = torch.zeros(())
        if self.work_layers:
            h = (x["f0"][0] / 1000.0).unsqueeze(1).repeat(1, 1024)
            for _ in range(self.work_layers):
                h = torch.tanh(h @ self.work)
            wasted = h.sum() * 0.0
        tokens, durations, f0 = x["tokens"][0], x["durations"][0], x["f0"][0]
        ends = torch.cumsum(durations, 0)
        t = torch.arange(f0.shape[0]).unsqueeze(1)
        idx = (t >= ends.unsqueeze(0)).long().sum(1).clamp(max=tokens.shape[0] - 1)
        gain = self.gain[tokens[idx]]
        m = 2595 * torch.log10(1 + f0 / 700)
        bump = torch.exp(-0.5 * ((m.unsqueeze(1) - self.centres.unsqueeze(0)) / self.width) ** 2)
        lin = gain.unsqueeze(1) * (0.25 + bump) + 1e-4
        unused = sum((v.float().sum() * 0.0 for k, v in x.items()
                      if k not in ("tokens", "durations", "f0")), torch.zeros(()))
        return (torch.log(lin) / self.log_base + unused + wasted).unsqueeze(0)


class ToyVocoder(torch.nn.Module):
    """mel [1, T, bins], f0 [1, T] → waveform [1, T·hop]: a harmonic tone at f0."""

    def __init__(self, spec: BankSpec) -> None:
        super().__init__()
        self.hop = spec.hop_size
        self.rate = spec.sample_rate
        self.log_base = math.log(10.0) if spec.vocoder_mel_base == "10" else 1.0

    def forward(self, mel: torch.Tensor, f0: torch.Tensor) -> torch.Tensor:
        floor = torch.exp(mel[0] * self.log_base).min(dim=1).values - 1e-4  # [T]
        amp = floor / 0.25 * 0.2
        both = torch.stack([amp, f0[0]]).unsqueeze(0)  # [1, 2, T]
        up = torch.nn.functional.interpolate(both, scale_factor=float(self.hop), mode="linear",
                                             align_corners=False)[0]
        phase = torch.cumsum(2 * math.pi * up[1] / self.rate, 0)
        tone = torch.sin(phase) + 0.5 * torch.sin(2 * phase) + 0.25 * torch.sin(3 * phase)
        return (up[0] * tone / 1.75).unsqueeze(0)


def _export(module: torch.nn.Module, args: tuple[torch.Tensor, ...], names: list[str],
            output: str, dynamic: dict[str, dict[int, str]], path: Path) -> None:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buf, input_names=names, output_names=[output],
                          dynamic_axes=dynamic, opset_version=17, dynamo=False)
    path.write_bytes(buf.getvalue())


def acoustic_names(spec: BankSpec) -> list[str]:
    """The acoustic inputs the spec's dsconfig implies, in export order."""
    names = ["tokens", "durations", "f0", "steps" if spec.continuous else "speedup"]
    if spec.variable_depth:
        names.append("depth")
    if spec.speakers:
        names.append("spk_embed")
    return names


def build_bank(folder: Path, spec: BankSpec | None = None) -> Path:
    """Write a complete DiffSinger bank into ``folder`` and return it."""
    spec = spec or BankSpec()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "character.txt").write_text("name=Tiny Test Singer\nauthor=tests\n",
                                          encoding="utf-8")
    (folder / "character.yaml").write_text("singer_type: diffsinger\n", encoding="utf-8")
    if spec.phonemes_json:
        (folder / "phonemes.json").write_text(json.dumps({p: i for i, p in enumerate(PHONEMES)}))
    else:
        (folder / "phonemes.txt").write_text("\n".join(PHONEMES) + "\n", encoding="utf-8")
    mel = {"sample_rate": spec.sample_rate, "hop_size": spec.hop_size, "win_size": 2048,
           "fft_size": 2048, "num_mel_bins": spec.num_mel_bins, "mel_fmin": 40,
           "mel_fmax": 16000, "mel_scale": "slaney"}
    config = {"phonemes": "phonemes.json" if spec.phonemes_json else "phonemes.txt",
              "acoustic": "acoustic.onnx", "vocoder": "tiny_tone", "hidden_size":
              spec.hidden_size, "use_continuous_acceleration": spec.continuous,
              "use_variable_depth": spec.variable_depth,
              "max_depth": (0.6 if spec.continuous else 600) if spec.variable_depth else -1,
              "mel_base": spec.mel_base, **mel}
    if spec.speakers:
        config["speakers"] = list(spec.speakers)
        for k, name in enumerate(spec.speakers):
            np.full(spec.hidden_size, k, "<f4").tofile(folder / f"{name}.emb")
    (folder / "dsconfig.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    symbols = [{"symbol": p, "type": "vowel" if p in VOWELS else "consonant"}
               for p in PHONEMES[3:]]
    entries = [{"grapheme": g, "phonemes": ph} for g, ph in ENTRIES.items()]
    (folder / "dsdict.yaml").write_text(yaml.safe_dump({"symbols": symbols, "entries": entries}),
                                        encoding="utf-8")
    names = acoustic_names(spec)
    scalar = (lambda v, dt: torch.tensor(v, dtype=dt)) if spec.scalar_rank == 0 else \
        (lambda v, dt: torch.tensor([v], dtype=dt))
    samples = {"tokens": torch.ones(1, 3, dtype=torch.long),
               "durations": torch.tensor([[2, 3, 2]]), "f0": torch.full((1, 7), 220.0),
               "steps": scalar(10, torch.long), "speedup": scalar(50, torch.long),
               "depth": scalar(0.5, torch.float32) if spec.continuous
               else scalar(500, torch.long),
               "spk_embed": torch.zeros(1, 7, spec.hidden_size)}
    dyn = {"tokens": {1: "n"}, "durations": {1: "n"}, "f0": {1: "t"}, "spk_embed": {1: "t"},
           "mel": {1: "t"}}
    _export(ToyAcoustic(names, spec), tuple(samples[n] for n in names), names, "mel",
            {k: v for k, v in dyn.items() if k in names or k == "mel"},
            folder / "acoustic.onnx")
    vocoder = folder / "dsvocoder"
    vocoder.mkdir(exist_ok=True)
    _export(ToyVocoder(spec), (torch.zeros(1, 7, spec.num_mel_bins), torch.full((1, 7), 220.0)),
            ["mel", "f0"], "waveform", {"mel": {1: "t"}, "f0": {1: "t"}, "waveform": {1: "s"}},
            vocoder / "tone.onnx")
    voc = {"name": "tiny_tone", "model": "tone.onnx", "mel_base": spec.vocoder_mel_base,
           "pitch_controllable": True, **mel, **spec.vocoder_overrides}
    (vocoder / "vocoder.yaml").write_text(yaml.safe_dump(voc), encoding="utf-8")
    return folder


class ToyLinguistic(torch.nn.Module):
    """tokens + (word_div, word_dur | ph_dur) → encoder_out [1, N, 8], x_masks [1, N]."""

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = dict(zip(self.names, inputs, strict=True))
        tokens = x["tokens"]
        unused = sum((v.float().sum() * 0.0 for k, v in x.items() if k != "tokens"),
                     torch.zeros(()))
        enc = tokens.float().unsqueeze(-1).repeat(1, 1, 8) + unused
        return enc, tokens > 0


class ToyDuration(torch.nn.Module):
    """Every phoneme lasts 5 frames (before the engine fits words to their notes)."""

    def forward(self, encoder_out: torch.Tensor, x_masks: torch.Tensor,
                ph_midi: torch.Tensor) -> torch.Tensor:
        zero = encoder_out.sum() * 0.0 + x_masks.float().sum() * 0.0 + ph_midi.float().sum() * 0.0
        return torch.ones_like(encoder_out[:, :, 0]) * 5.0 + zero


class ToyPitch(torch.nn.Module):
    """The notes' pitches expanded over their frames, 50 cents sharp (so its use is heard)."""

    def forward(self, encoder_out: torch.Tensor, ph_dur: torch.Tensor, note_midi: torch.Tensor,
                note_dur: torch.Tensor, pitch: torch.Tensor, retake: torch.Tensor,
                steps: torch.Tensor) -> torch.Tensor:
        zero = (encoder_out.sum() + ph_dur.float().sum() + retake.float().sum()
                + steps.float().sum()) * 0.0
        ends = torch.cumsum(note_dur[0], 0)
        t = torch.arange(pitch.shape[1]).unsqueeze(1)
        idx = (t >= ends.unsqueeze(0)).long().sum(1).clamp(max=note_midi.shape[1] - 1)
        return (note_midi[0][idx] + 0.5 + zero).unsqueeze(0)


def add_predictors(folder: Path) -> Path:
    """Add a ``dsdur/`` and a ``dspitch/`` predictor (own dsconfig, linguistic and model)."""
    n = {"tokens": torch.ones(1, 4, dtype=torch.long), "word_div": torch.tensor([[1, 2, 1]]),
         "word_dur": torch.tensor([[3, 4, 5]]), "ph_dur": torch.tensor([[2, 3, 2, 5]])}
    for kind, ling_names in (("dur", ["tokens", "word_div", "word_dur"]),
                             ("pitch", ["tokens", "ph_dur"])):
        sub = folder / f"ds{kind}"
        sub.mkdir(exist_ok=True)
        config = {"phonemes": "../phonemes.txt", "linguistic": "linguistic.onnx",
                  kind: f"{kind}.onnx", "hidden_size": 8, "use_continuous_acceleration": True}
        (sub / "dsconfig.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        dyn = {k: {1: f"d{k}"} for k in ling_names}
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(ToyLinguistic(ling_names), tuple(n[k] for k in ling_names), buf,
                              input_names=ling_names, output_names=["encoder_out", "x_masks"],
                              dynamic_axes={**dyn, "encoder_out": {1: "n"}, "x_masks": {1: "n"}},
                              opset_version=17, dynamo=False)
        (sub / "linguistic.onnx").write_bytes(buf.getvalue())
    enc = torch.zeros(1, 4, 8)
    _export(ToyDuration(), (enc, torch.ones(1, 4, dtype=torch.bool),
                            torch.full((1, 4), 60, dtype=torch.long)),
            ["encoder_out", "x_masks", "ph_midi"], "ph_dur_pred",
            {"encoder_out": {1: "n"}, "x_masks": {1: "n"}, "ph_midi": {1: "n"},
             "ph_dur_pred": {1: "n"}}, folder / "dsdur" / "dur.onnx")
    names = ["encoder_out", "ph_dur", "note_midi", "note_dur", "pitch", "retake", "steps"]
    _export(ToyPitch(), (enc, torch.tensor([[2, 3, 2, 5]]), torch.tensor([[60.0, 62.0]]),
                         torch.tensor([[6, 6]]), torch.zeros(1, 12),
                         torch.ones(1, 12, dtype=torch.bool), torch.tensor(10)),
            names, "pitch_pred", {"encoder_out": {1: "n"}, "ph_dur": {1: "n"},
                                  "note_midi": {1: "m"}, "note_dur": {1: "m"},
                                  "pitch": {1: "t"}, "retake": {1: "t"}, "pitch_pred": {1: "t"}},
            folder / "dspitch" / "pitch.onnx")
    return folder
