"""A DiffSinger voicebank folder loaded the way OpenUtau loads it, checked before it sings.

Layout: ``character.txt``/``character.yaml`` (name, type, encoding), ``dsconfig.yaml``, the
phoneme list, ``dsdict-<lang>.yaml``/``dsdict.yaml``, speaker ``.emb`` files, the acoustic
ONNX model, the vocoder (``dsvocoder/vocoder.yaml`` or the one ``vocoder`` names among
``vocoder_dirs``) and the optional ``dsdur/``, ``dspitch/``, ``dsvariance/`` predictors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from singer.backends.diffsinger.config import (
    DsConfig,
    DsDict,
    VocoderConfig,
    mel_base_factor,
    mel_mismatches,
    read_dsconfig,
    read_dsdict,
    read_languages,
    read_phonemes,
    read_speaker_embed,
    read_vocoder_config,
    read_yaml,
)
from singer.backends.diffsinger.errors import BankError
from singer.backends.diffsinger.onnx_model import OnnxModel

VARIANCE_NAMES = ("energy", "breathiness", "voicing", "tension")


@dataclass(frozen=True)
class Character:
    """What ``character.txt``/``character.yaml`` say about the bank."""

    name: str
    author: str = ""
    web: str = ""
    version: str = ""
    singer_type: str = ""
    default_phonemizer: str = ""
    text_file_encoding: str = "utf-8"


def read_character(folder: Path) -> Character:
    """Name and metadata from character.yaml and character.txt (folder name otherwise)."""
    yml: dict[str, object] = {}
    yaml_path = folder / "character.yaml"
    if yaml_path.is_file():
        yml = read_yaml(yaml_path)
    encoding = str(yml.get("text_file_encoding") or "utf-8")
    info: dict[str, str] = {}
    txt = folder / "character.txt"
    if txt.is_file():
        try:
            text = txt.read_bytes().decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise BankError(txt, f"cannot be read as {encoding} (character.yaml "
                            f"text_file_encoding): {exc}") from None
        for line in text.lstrip("\ufeff").splitlines():
            key, sep, value = line.partition("=")
            if sep:
                info[key.strip().lower()] = value.strip()
    name = str(yml.get("name") or info.get("name") or info.get("名前") or folder.name)
    return Character(name=name, author=info.get("author", ""), web=info.get("web", ""),
                     version=info.get("version", ""),
                     singer_type=str(yml.get("singer_type") or ""),
                     default_phonemizer=str(yml.get("default_phonemizer") or ""),
                     text_file_encoding=encoding)


def is_diffsinger_bank(folder: Path) -> bool:
    """True for a folder OpenUtau would load as DiffSinger."""
    if (folder / "dsconfig.yaml").is_file():
        return True
    yaml_path = folder / "character.yaml"
    return yaml_path.is_file() and read_yaml(yaml_path).get("singer_type") == "diffsinger"


def acceleration_inputs(cfg: DsConfig) -> set[str]:
    """Sampling inputs: ``steps`` (continuous) or ``speedup`` (legacy), + ``depth``."""
    names = {"steps" if cfg.use_continuous_acceleration else "speedup"}
    if cfg.use_variable_depth:
        names.add("depth")
    return names


def acoustic_inputs(cfg: DsConfig) -> set[str]:
    """The exact input names an acoustic model with this dsconfig takes."""
    names = {"tokens", "durations", "f0"} | acceleration_inputs(cfg)
    if cfg.speakers:
        names.add("spk_embed")
    if cfg.use_lang_id:
        names.add("languages")
    if cfg.use_key_shift_embed:
        names.add("gender")
    if cfg.use_speed_embed:
        names.add("velocity")
    return names | set(cfg.variance_embeds)


@dataclass
class Predictor:
    """A ``dsdur``/``dspitch``/``dsvariance`` predictor: linguistic encoder + its model."""

    kind: str
    config: DsConfig
    linguistic: OnnxModel
    model: OnnxModel
    phonemes: dict[str, int]
    languages: dict[str, int]
    speakers: dict[str, np.ndarray]

    @property
    def variance_names(self) -> tuple[str, ...]:
        """Curves a variance predictor predicts."""
        return tuple(n for n in VARIANCE_NAMES if getattr(self.config, f"predict_{n}"))

    def expected_inputs(self) -> tuple[set[str], set[str]]:
        """(linguistic inputs, model inputs) this predictor's dsconfig implies."""
        cfg = self.config
        ling = {"tokens"} | ({"languages"} if cfg.use_lang_id else set())
        ling |= {"word_div", "word_dur"} if self.kind == "dur" else {"ph_dur"}
        spk = {"spk_embed"} if cfg.speakers else set()
        if self.kind == "dur":
            return ling, {"encoder_out", "x_masks", "ph_midi"} | spk
        accel = acceleration_inputs(cfg) - {"depth"}
        if self.kind == "pitch":
            model = {"encoder_out", "ph_dur", "note_midi", "note_dur", "pitch", "retake"}
            model |= ({"note_rest"} if cfg.use_note_rest else set())
            model |= ({"expr"} if cfg.use_expr else set())
            return ling, model | spk | accel
        return ling, ({"encoder_out", "ph_dur", "pitch", "retake"} | set(self.variance_names)
                      | spk | accel)

    def output_names(self) -> tuple[str, ...]:
        """The model outputs the engine reads."""
        if self.kind == "dur":
            return ("ph_dur_pred",)
        if self.kind == "pitch":
            return ("pitch_pred",)
        return tuple(f"{n}_pred" for n in self.variance_names)


@dataclass
class DiffSingerBank:
    """A loaded, validated DiffSinger bank ready to sing (see ``render.render_phrase``)."""

    folder: Path
    character: Character
    config: DsConfig
    phonemes: dict[str, int]
    languages: dict[str, int]
    speakers: dict[str, np.ndarray]
    dictionaries: dict[str, DsDict]
    vocoder_config: VocoderConfig
    acoustic: OnnxModel
    vocoder: OnnxModel
    mel_factor: float
    predictors: dict[str, Predictor] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The bank's display name."""
        return self.character.name

    @property
    def sample_rate_hz(self) -> int:
        """The rate the vocoder renders at."""
        return self.config.mel.sample_rate

    @property
    def frame_s(self) -> float:
        """Seconds per acoustic frame."""
        return self.config.mel.frame_s

    @property
    def device(self) -> str:
        """The execution provider the acoustic model runs on."""
        return self.acoustic.device

    def dictionary_order(self, language: str) -> list[DsDict]:
        """Dictionaries tried for ``language``: dsdict-<lang>.yaml, then dsdict.yaml."""
        return [d for key in (language, "") if (d := self.dictionaries.get(key)) is not None]

    def speaker_embed(self, speaker: str | None) -> np.ndarray | None:
        """The embedding of ``speaker`` (first speaker by default; None without speakers)."""
        if not self.speakers:
            return None
        if speaker is None:
            return next(iter(self.speakers.values()))
        if speaker not in self.speakers:
            raise BankError(self.config.path, f"unknown speaker {speaker!r} (this bank has "
                            f"{', '.join(self.speakers)})", "speakers")
        return self.speakers[speaker]

    @classmethod
    def load(cls, folder: Path | str, *, device: str = "auto",
             vocoder_dirs: tuple[Path, ...] = (), threads: int = 0) -> DiffSingerBank:
        """Load and validate the bank in ``folder``; raises ``BankError`` naming the file."""
        folder = Path(folder)
        if not folder.is_dir():
            raise BankError(folder, "is not a folder")
        character = read_character(folder)
        cfg = read_dsconfig(folder / "dsconfig.yaml")
        for key in ("acoustic", "vocoder", "phonemes"):
            if not getattr(cfg, key):
                raise BankError(cfg.path, "required field is missing", key)
        if cfg.variance_embeds and not (folder / "dsvariance" / "dsconfig.yaml").is_file():
            switch = f"use_{cfg.variance_embeds[0]}_embed"
            raise BankError(cfg.path, f"{switch} needs a dsvariance/ predictor (dsvariance/"
                            "dsconfig.yaml), and the bank has none", switch)
        phonemes = read_phonemes(folder / str(cfg.phonemes))
        languages = read_languages(folder / cfg.languages) if cfg.use_lang_id and \
            cfg.languages else {}
        speakers = {s: read_speaker_embed(folder / f"{s}.emb", cfg.hidden_size)
                    for s in cfg.speakers}
        dictionaries = read_dictionaries(folder)
        vocoder_config = find_vocoder(folder, cfg, vocoder_dirs)
        problems = mel_mismatches(cfg.mel, vocoder_config.mel)
        if problems:
            raise BankError(vocoder_config.path, "mel contract differs from the acoustic "
                            f"model's ({cfg.path.name}): {'; '.join(problems)}")
        acoustic = OnnxModel(folder / str(cfg.acoustic), device=device, threads=threads)
        acoustic.verify_inputs(acoustic_inputs(cfg), "acoustic")
        acoustic.verify_outputs(("mel",), "acoustic")
        vocoder = OnnxModel(vocoder_config.model_path, device=device, threads=threads)
        vocoder.verify_inputs({"mel", "f0"}, "vocoder")
        vocoder.verify_outputs(("waveform",), "vocoder")
        bank = cls(folder=folder, character=character, config=cfg, phonemes=phonemes,
                   languages=languages, speakers=speakers, dictionaries=dictionaries,
                   vocoder_config=vocoder_config, acoustic=acoustic, vocoder=vocoder,
                   mel_factor=mel_base_factor(cfg.mel, vocoder_config.mel))
        for kind, sub in (("dur", "dsdur"), ("pitch", "dspitch"), ("variance", "dsvariance")):
            if (folder / sub / "dsconfig.yaml").is_file():
                bank.predictors[kind] = load_predictor(kind, folder / sub, device, threads)
        return bank


def read_dictionaries(folder: Path) -> dict[str, DsDict]:
    """``dsdict-<lang>.yaml`` keyed by language and ``dsdict.yaml`` under ``""``."""
    out = {}
    for path in sorted(folder.glob("dsdict*.yaml")):
        stem = path.stem
        lang = stem[len("dsdict-"):] if stem.startswith("dsdict-") else ""
        if stem == "dsdict" or stem.startswith("dsdict-"):
            out[lang] = read_dsdict(path)
    return out


def find_vocoder(folder: Path, cfg: DsConfig, vocoder_dirs: tuple[Path, ...]) -> VocoderConfig:
    """The bank's own ``dsvocoder/vocoder.yaml``, else the vocoder ``cfg.vocoder`` names."""
    own = folder / "dsvocoder" / "vocoder.yaml"
    if own.is_file():
        return read_vocoder_config(own)
    for base in vocoder_dirs:
        for candidate in sorted(Path(base).glob("*/vocoder.yaml")):
            voc = read_vocoder_config(candidate)
            if cfg.vocoder in (voc.name, candidate.parent.name):
                return voc
    raise BankError(cfg.path, f"vocoder {cfg.vocoder!r} not found: no dsvocoder/vocoder.yaml "
                    "in the bank and none of that name in the vocoder folders "
                    f"({', '.join(map(str, vocoder_dirs)) or 'none given'})", "vocoder")


def load_predictor(kind: str, folder: Path, device: str, threads: int) -> Predictor:
    """A dsdur/dspitch/dsvariance folder: its dsconfig, phonemes and two models, verified."""
    cfg = read_dsconfig(folder / "dsconfig.yaml")
    if not cfg.linguistic:
        raise BankError(cfg.path, "required field is missing", "linguistic")
    model_file = getattr(cfg, kind)
    if not model_file:
        raise BankError(cfg.path, "required field is missing", kind)
    phonemes = read_phonemes(folder / str(cfg.phonemes))
    languages = read_languages(folder / cfg.languages) if cfg.use_lang_id and cfg.languages \
        else {}
    speakers = {s: read_speaker_embed(folder / f"{s}.emb", cfg.hidden_size)
                for s in cfg.speakers}
    pred = Predictor(kind, cfg, OnnxModel(folder / cfg.linguistic, device=device,
                                          threads=threads),
                     OnnxModel(folder / model_file, device=device, threads=threads),
                     phonemes, languages, speakers)
    ling, model = pred.expected_inputs()
    pred.linguistic.verify_inputs(ling, f"{kind} linguistic")
    pred.linguistic.verify_outputs(("encoder_out", "x_masks"), f"{kind} linguistic")
    pred.model.verify_inputs(model, kind)
    pred.model.verify_outputs(pred.output_names(), kind)
    return pred
