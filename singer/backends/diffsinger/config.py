"""DiffSinger bank files as OpenUtau reads them: dsconfig.yaml, vocoder.yaml, phonemes, dsdict.

Every reader validates at the edge and raises ``BankError`` naming the file and the field or
line; nothing downstream re-checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from singer.backends.diffsinger.errors import BankError

MEL_BASES = ("10", "e")
MEL_SCALES = ("slaney", "htk")
MEL_FIELDS = ("sample_rate", "hop_size", "win_size", "fft_size", "num_mel_bins", "mel_fmin",
              "mel_fmax", "mel_base", "mel_scale")
"""The mel contract an acoustic model and its vocoder must share (``mel_base`` converts)."""


def _text(path: Path) -> str:
    """The file's UTF-8 text (a BOM is dropped); ``BankError`` when it does not decode."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BankError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _json(path: Path) -> Any:
    """The file's JSON; ``BankError`` naming the line where it does not parse."""
    try:
        return json.loads(_text(path))
    except json.JSONDecodeError as exc:
        raise BankError(path, f"not valid JSON: {exc.msg}", f"line {exc.lineno}") from None
    except RecursionError:
        raise BankError(path, "not valid JSON: nested too deeply") from None


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from ``path`` (a clear error when missing, unreadable or not a mapping)."""
    if not path.is_file():
        raise BankError(path, "file is missing")
    try:
        data = yaml.safe_load(_text(path))
    except RecursionError:  # PyYAML composes nested collections recursively
        raise BankError(path, "not valid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise BankError(path, f"not valid YAML: {problem}", where) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BankError(path, f"expected a mapping at the top, got {type(data).__name__}")
    return data


class _Fields:
    """Typed getters over one YAML mapping that name the file and field on a bad value."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path, self.data = path, data

    def _get(self, key: str, default: Any) -> Any:
        value = self.data.get(key, default)
        return default if value is None else value

    def flag(self, key: str, default: bool = False) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise BankError(self.path, f"expected true or false, got {value!r}", key)
        return value

    def integer(self, key: str, default: int, minimum: int = 1) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise BankError(self.path, f"expected an integer >= {minimum}, got {value!r}", key)
        return value

    def number(self, key: str, default: float) -> float:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not np.isfinite(value):
            raise BankError(self.path, f"expected a number, got {value!r}", key)
        return float(value)

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self._get(key, default)
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)  # mel_base: 10 is written unquoted
        if not isinstance(value, str) or not value.strip():
            raise BankError(self.path, f"expected text, got {value!r}", key)
        return value.strip()

    def required(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise BankError(self.path, "required field is missing", key)
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(key, default) or default
        if value not in choices:
            raise BankError(self.path, f"expected one of {', '.join(choices)}, got {value!r}",
                            key)
        return value


@dataclass(frozen=True, slots=True)
class MelSpec:
    """The mel spectrogram an acoustic model makes and a vocoder takes."""

    sample_rate: int = 44100
    hop_size: int = 512
    win_size: int = 2048
    fft_size: int = 2048
    num_mel_bins: int = 128
    mel_fmin: float = 40.0
    mel_fmax: float = 16000.0
    mel_base: str = "10"
    mel_scale: str = "slaney"

    @property
    def frame_s(self) -> float:
        """Seconds per mel frame (hop / sample rate)."""
        return self.hop_size / self.sample_rate


def read_mel_spec(f: _Fields) -> MelSpec:
    """The mel settings of a dsconfig.yaml or vocoder.yaml (OpenUtau's defaults)."""
    spec = MelSpec(
        sample_rate=f.integer("sample_rate", 44100), hop_size=f.integer("hop_size", 512),
        win_size=f.integer("win_size", 2048), fft_size=f.integer("fft_size", 2048),
        num_mel_bins=f.integer("num_mel_bins", 128), mel_fmin=f.number("mel_fmin", 40.0),
        mel_fmax=f.number("mel_fmax", 16000.0),
        mel_base=f.choice("mel_base", "10", MEL_BASES),
        mel_scale=f.choice("mel_scale", "slaney", MEL_SCALES))
    if not 0 <= spec.mel_fmin < spec.mel_fmax <= spec.sample_rate / 2:
        raise BankError(f.path, f"need 0 <= mel_fmin < mel_fmax <= sample_rate/2, got "
                        f"{spec.mel_fmin}..{spec.mel_fmax} at {spec.sample_rate} Hz", "mel_fmax")
    return spec


def mel_base_factor(acoustic: MelSpec, vocoder: MelSpec) -> float:
    """What the acoustic model's log-mel is multiplied by to be in the vocoder's log base."""
    if acoustic.mel_base == vocoder.mel_base:
        return 1.0
    return float(np.log(10.0)) if acoustic.mel_base == "10" else float(1.0 / np.log(10.0))


def mel_mismatches(acoustic: MelSpec, vocoder: MelSpec) -> list[str]:
    """Each mel setting (but the base, which converts) on which the two disagree."""
    out = []
    for name in MEL_FIELDS:
        if name == "mel_base":
            continue
        a, v = getattr(acoustic, name), getattr(vocoder, name)
        same = abs(a - v) <= 1e-5 if isinstance(a, float) else a == v
        if not same:
            out.append(f"{name}: acoustic {a} != vocoder {v}")
    return out


@dataclass(frozen=True)
class DsConfig:
    """One dsconfig.yaml (the bank's, or a dsdur/dspitch/dsvariance one)."""

    path: Path
    phonemes: str | None
    languages: str | None
    acoustic: str | None
    vocoder: str | None
    speakers: tuple[str, ...]
    hidden_size: int
    use_key_shift_embed: bool
    use_speed_embed: bool
    use_energy_embed: bool
    use_breathiness_embed: bool
    use_voicing_embed: bool
    use_tension_embed: bool
    use_continuous_acceleration: bool
    use_variable_depth: bool
    max_depth_raw: float
    use_lang_id: bool
    key_shift_range: tuple[float, float]
    dur: str | None
    linguistic: str | None
    pitch: str | None
    variance: str | None
    predict_dur: bool
    predict_energy: bool
    predict_breathiness: bool
    predict_voicing: bool
    predict_tension: bool
    use_expr: bool
    use_note_rest: bool
    mel: MelSpec
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def folder(self) -> Path:
        """The folder the config's relative paths are resolved in."""
        return self.path.parent

    @property
    def max_depth(self) -> float:
        """Largest shallow-diffusion depth as a fraction 0..1 (legacy writes it in 1/1000)."""
        return self.max_depth_raw if self.use_continuous_acceleration \
            else self.max_depth_raw / 1000.0

    @property
    def variance_embeds(self) -> tuple[str, ...]:
        """Variance curves the acoustic model takes (energy, breathiness, voicing, tension)."""
        names = ("energy", "breathiness", "voicing", "tension")
        return tuple(n for n in names if getattr(self, f"use_{n}_embed"))


def read_dsconfig(path: Path) -> DsConfig:
    """Parse a dsconfig.yaml (snake_case keys, OpenUtau's defaults)."""
    f = _Fields(path, read_yaml(path))
    speakers = f.data.get("speakers") or []
    if not isinstance(speakers, list) or not all(isinstance(s, str) and s for s in speakers):
        raise BankError(path, f"expected a list of speaker names, got {speakers!r}", "speakers")
    # use_variable_depth wins; the legacy name use_shallow_diffusion stands in for it
    use_variable_depth = f.flag("use_variable_depth") if "use_variable_depth" in f.data \
        else f.flag("use_shallow_diffusion")
    aug = f.data.get("augmentation_args") or {}
    shifting = aug.get("random_pitch_shifting") if isinstance(aug, dict) else None
    shift = (shifting.get("range") if isinstance(shifting, dict) else None) or [-5.0, 5.0]
    if not (isinstance(shift, list) and len(shift) == 2
            and all(isinstance(x, int | float) for x in shift)):
        raise BankError(path, f"expected [low, high], got {shift!r}",
                        "augmentation_args.random_pitch_shifting.range")
    cfg = DsConfig(
        path=path, phonemes=f.text("phonemes", "phonemes.txt"), languages=f.text("languages"),
        acoustic=f.text("acoustic"), vocoder=f.text("vocoder"), speakers=tuple(speakers),
        hidden_size=f.integer("hidden_size", 256),
        use_key_shift_embed=f.flag("use_key_shift_embed"),
        use_speed_embed=f.flag("use_speed_embed"), use_energy_embed=f.flag("use_energy_embed"),
        use_breathiness_embed=f.flag("use_breathiness_embed"),
        use_voicing_embed=f.flag("use_voicing_embed"),
        use_tension_embed=f.flag("use_tension_embed"),
        use_continuous_acceleration=f.flag("use_continuous_acceleration"),
        use_variable_depth=use_variable_depth, max_depth_raw=f.number("max_depth", -1.0),
        use_lang_id=f.flag("use_lang_id"), key_shift_range=(float(shift[0]), float(shift[1])),
        dur=f.text("dur"), linguistic=f.text("linguistic"), pitch=f.text("pitch"),
        variance=f.text("variance"), predict_dur=f.flag("predict_dur", True),
        predict_energy=f.flag("predict_energy", True),
        predict_breathiness=f.flag("predict_breathiness", True),
        predict_voicing=f.flag("predict_voicing"), predict_tension=f.flag("predict_tension"),
        use_expr=f.flag("use_expr"), use_note_rest=f.flag("use_note_rest"),
        mel=read_mel_spec(f), raw=f.data)
    if cfg.use_variable_depth and cfg.max_depth_raw <= 0:
        raise BankError(path, "use_variable_depth needs a positive max_depth", "max_depth")
    if cfg.use_lang_id and not cfg.languages:
        raise BankError(path, "use_lang_id needs a languages file", "languages")
    return cfg


@dataclass(frozen=True, slots=True)
class VocoderConfig:
    """A vocoder.yaml: the model file and the mel it expects."""

    path: Path
    name: str
    model: str
    pitch_controllable: bool
    mel: MelSpec

    @property
    def model_path(self) -> Path:
        """The vocoder's ONNX file."""
        return self.path.parent / self.model


def read_vocoder_config(path: Path) -> VocoderConfig:
    """Parse a vocoder.yaml."""
    f = _Fields(path, read_yaml(path))
    return VocoderConfig(path=path, name=f.text("name", path.parent.name) or path.parent.name,
                         model=f.text("model", "model.onnx") or "model.onnx",
                         pitch_controllable=f.flag("pitch_controllable"),
                         mel=read_mel_spec(f))


def read_phonemes(path: Path) -> dict[str, int]:
    """Phoneme → token id: phonemes.txt (line index is the id) or a json {phoneme: id}.

    Token 0 must be ``<PAD>`` (txt) and ``SP`` and ``AP`` must exist.
    """
    if not path.is_file():
        raise BankError(path, "phoneme list is missing")
    table: dict[str, int] = {}
    if path.suffix.lower() == ".json":
        data = _json(path)
        if not isinstance(data, dict):
            raise BankError(path, "expected a JSON object {phoneme: token id}")
        for name, token in data.items():
            if isinstance(token, bool) or not isinstance(token, int) or token < 0:
                raise BankError(path, f"token id of {name!r} must be an integer >= 0, "
                                f"got {token!r}", name)
            table[name] = token
    else:
        for number, line in enumerate(_text(path).splitlines(), start=1):
            name = line.strip()
            if not name:
                raise BankError(path, "empty line (each line is one phoneme; its index is "
                                "the token id)", f"line {number}")
            if name in table:
                raise BankError(path, f"phoneme {name!r} listed twice", f"line {number}")
            table[name] = number - 1
        if table and table.get("<PAD>") != 0:
            raise BankError(path, "token 0 must be <PAD>", "line 1")
    for needed in ("SP", "AP"):
        if needed not in table:
            raise BankError(path, f"phoneme {needed!r} is missing (every bank has SP and AP)")
    return table


def read_languages(path: Path) -> dict[str, int]:
    """Language code → id from a json languages file."""
    if not path.is_file():
        raise BankError(path, "languages file is missing")
    data = _json(path)
    if not isinstance(data, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in data.values()):
        raise BankError(path, "expected a JSON object {language: integer id}")
    return {str(k): int(v) for k, v in data.items()}


def read_speaker_embed(path: Path, hidden_size: int) -> np.ndarray:
    """A speaker's ``.emb``: raw float32 × ``hidden_size``."""
    if not path.is_file():
        raise BankError(path, "speaker embedding is missing")
    raw = path.read_bytes()
    if len(raw) != 4 * hidden_size:
        raise BankError(path, f"expected {hidden_size} float32 values ({4 * hidden_size} "
                        f"bytes, hidden_size), got {len(raw)} bytes")
    emb = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if not np.all(np.isfinite(emb)):
        raise BankError(path, "holds non-finite values")
    return emb


SYMBOL_TYPES = ("vowel", "consonant", "semivowel", "liquid", "stop", "fricative", "affricate",
                "nasal", "aspirate", "tap", "trill")


@dataclass(frozen=True)
class DsDict:
    """A dsdict.yaml: grapheme → phonemes, and each symbol's type."""

    path: Path
    entries: dict[str, tuple[str, ...]]
    symbol_types: dict[str, str]

    def is_vowel(self, symbol: str) -> bool:
        """True when the dictionary types ``symbol`` (or its unprefixed name) as a vowel."""
        kind = self.symbol_types.get(symbol) or self.symbol_types.get(symbol.split("/")[-1])
        return kind == "vowel"


def read_dsdict(path: Path) -> DsDict:
    """Parse a dsdict.yaml (``symbols`` with types, ``entries`` grapheme → phonemes)."""
    data = read_yaml(path)
    symbols = data.get("symbols") or []
    entries = data.get("entries") or []
    if not isinstance(symbols, list) or not isinstance(entries, list):
        raise BankError(path, "symbols and entries must be lists")
    types: dict[str, str] = {}
    for k, item in enumerate(symbols):
        if not isinstance(item, dict) or not isinstance(item.get("symbol"), str):
            raise BankError(path, f"symbol must be {{symbol, type}}, got {item!r}",
                            f"symbols[{k}]")
        kind = item.get("type", "consonant")
        if kind not in SYMBOL_TYPES:
            raise BankError(path, f"unknown symbol type {kind!r}", f"symbols[{k}]")
        types[item["symbol"]] = kind
    table: dict[str, tuple[str, ...]] = {}
    for k, item in enumerate(entries):
        if not isinstance(item, dict) or not isinstance(item.get("grapheme"), str) or not (
                isinstance(item.get("phonemes"), list)
                and all(isinstance(p, str) and p for p in item["phonemes"])):
            raise BankError(path, f"entry must be {{grapheme, phonemes: [...]}}, got {item!r}",
                            f"entries[{k}]")
        table.setdefault(item["grapheme"], tuple(item["phonemes"]))
    return DsDict(path=path, entries=table, symbol_types=types)
