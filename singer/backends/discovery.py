"""Finding voices: built-in names, banks in the voices folders, or a path to a bank folder.

Voices folders, searched in order: the ``--voices DIR`` given (repeatable), then every folder
in ``$LIVESINGER_VOICES`` (``os.pathsep``-separated), then the user folder
``$XDG_DATA_HOME/livesinger/voices`` (``~/.local/share/livesinger/voices``). Each
subfolder of a voices folder that is a bank (``dsconfig.yaml`` or a ``character.yaml`` with
``singer_type: diffsinger``: DiffSinger; an ``oto.ini``, or a character file with ``oto.ini``s
in subfolders: UTAU) is a voice,
named by its character name (its folder name works too). Describing a bank reads its text
files only: no model is loaded and no sample analysed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from singer.backends.builtin import BuiltinBackend, builtin_info, builtin_infos
from singer.backends.contract import VoiceBackend, VoiceError, VoiceInfo, VoiceType
from singer.lyrics.errors import LyricError
from singer.lyrics.mandarin import is_cjk, normalise_pinyin, split_pinyin
from singer.voices import VOICES

TERMS_NAMES = ("licen", "terms", "kiyaku", "利用規約", "規約", "使用规约", "使用規約", "readme",
               "read me", "説明", "说明", "りーどみー")
"""File name starts (case-insensitive) read for a bank's terms, the licence/terms ones first."""
TERMS_CHARS = 240


def user_voices_dir() -> Path:
    """``$XDG_DATA_HOME/livesinger/voices`` (``~/.local/share/livesinger/voices``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "livesinger" / "voices"


def voices_dirs(given: Sequence[Path | str] = ()) -> list[Path]:
    """The voices folders searched: ``given``, then ``$LIVESINGER_VOICES``, then the user
    folder (duplicates once)."""
    env = [p for p in os.environ.get("LIVESINGER_VOICES", "").split(os.pathsep) if p]
    out: list[Path] = []
    for p in [*map(Path, given), *map(Path, env), user_voices_dir()]:
        if p not in out:
            out.append(p)
    return out


def bank_type(folder: Path) -> VoiceType | None:
    """``diffsinger``/``utau`` for a bank folder, ``None`` for anything else."""
    from singer.backends.diffsinger.bank import is_diffsinger_bank
    from singer.backends.diffsinger.errors import BankError

    if not folder.is_dir():
        return None
    try:
        if is_diffsinger_bank(folder):
            return "diffsinger"
    except BankError:  # an unreadable character.yaml: not what OpenUtau would load
        pass
    from singer.backends.utau.oto import find_oto_files

    names = {p.name.lower() for p in folder.iterdir() if p.is_file()}
    if "oto.ini" in names:
        return "utau"
    # oto.ini only in subfolders (pitch sets): a bank when the folder has its character file,
    # so a folder of banks is not taken for one
    has_character = bool(names & {"character.txt", "character.yaml"})
    return "utau" if has_character and find_oto_files(folder) else None


def describe_bank(folder: Path) -> VoiceInfo:
    """Name, type, languages, speakers and terms of the bank in ``folder`` (a bank that cannot
    be read is described by its error, named by its folder)."""
    kind = bank_type(folder)
    if kind is None:
        raise VoiceError(f"{folder}: not a voicebank (no dsconfig.yaml, no oto.ini)")
    terms, terms_file = read_terms(folder)
    try:
        if kind == "diffsinger":
            name, languages, speakers = _diffsinger_facts(folder)
        else:
            name, languages, speakers = _utau_facts(folder)
    except (ValueError, OSError) as err:
        return VoiceInfo(folder.name, kind, folder, terms=terms, terms_file=terms_file,
                         description=f"cannot be read: {err}")
    return VoiceInfo(name, kind, folder, languages, speakers, terms, terms_file)


def find_voices(dirs: Iterable[Path]) -> list[VoiceInfo]:
    """The built-in voices, then every bank in the voices folders, in folder order."""
    found = builtin_infos()
    seen: set[Path] = set()
    for base in dirs:
        if not base.is_dir():
            continue
        candidates = [base] if bank_type(base) else sorted(p for p in base.iterdir()
                                                          if p.is_dir())
        for folder in candidates:
            real = folder.resolve()
            if real in seen or bank_type(folder) is None:
                continue
            seen.add(real)
            found.append(describe_bank(folder))
    return found


def resolve_voice(ref: str, dirs: Sequence[Path | str] = (), *,
                  paths: bool = True) -> VoiceInfo:
    """The voice ``ref`` names: a built-in name, a bank's name (or folder name) in the voices
    folders, or (``paths``: the local command line, not a remote cue) a path to a bank
    folder; ``VoiceError`` (one line listing what exists)."""
    text = ref.strip()
    if text.lower() in VOICES:
        return builtin_info(VOICES[text.lower()])
    path = Path(text).expanduser()
    if paths and path.is_dir():
        return describe_bank(path)
    searched = voices_dirs(dirs)
    voices = find_voices(searched)
    for match in (lambda v: v.name == text, lambda v: v.name.casefold() == text.casefold(),
                  lambda v: v.path is not None and v.path.name.casefold() == text.casefold()):
        hits = [v for v in voices if match(v)]
        if hits:
            return hits[0]
    known = ", ".join(v.name if v.type == "builtin" else f"{v.name} ({v.type})" for v in voices)
    where = ", ".join(str(d) for d in searched)
    looks_like_path = paths and (os.sep in text or text.startswith("."))
    what = f"no voicebank folder {text!r}" if looks_like_path else f"unknown voice {text!r}"
    raise VoiceError(f"{what}; known voices: {known} (voices folders: {where})")


def open_backend(info: VoiceInfo, *, device: str | None = None,
                 cache_dir: Path | str | None = None, steps: int | None = None
                 ) -> VoiceBackend:
    """Load the voice ``info`` describes; a bank's ``BankError`` names file and line.
    ``steps``: a DiffSinger bank's diffusion steps (``None``: 20, OpenUtau's default; the
    other voices have none)."""
    if info.type == "builtin":
        from singer.synth import HarmonicNoiseSynth

        return BuiltinBackend(VOICES[info.name], HarmonicNoiseSynth(device=device))
    assert info.path is not None
    if info.type == "utau":
        from singer.backends.utau.backend import UtauBackend

        return UtauBackend.load(info.path, info, cache_dir=cache_dir)
    from singer.backends.diffsinger.backend import DiffSingerBackend
    from singer.backends.diffsinger.render import RenderSettings

    return DiffSingerBackend.load(info.path, info, device=_ort_device(device),
                                  settings=RenderSettings(steps=steps) if steps else None)


def check_voice(path: Path) -> list[str]:
    """Every problem of the bank at ``path``, one line each (empty: it loads and sings)."""
    kind = bank_type(path)
    if kind is None:
        what = "not a folder" if not path.is_dir() else \
            "not a voicebank (no dsconfig.yaml, no oto.ini in it or its subfolders)"
        return [f"{path}: {what}"]
    if kind == "diffsinger":
        from singer.backends.diffsinger.check import check_bank as check_ds

        return check_ds(path)
    from singer.backends.utau.check import check_bank as check_utau

    return check_utau(path)


def read_terms(folder: Path) -> tuple[str, Path | None]:
    """The first lines of the bank's licence / terms / readme file (and that file)."""
    from singer.text_encoding import EncodingError, decode_file

    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in
             (".txt", ".md", "")]
    for start in TERMS_NAMES:
        for path in sorted(files):
            if not path.name.lower().startswith(start):
                continue
            try:
                text = "\n".join(decode_file(path.read_bytes()[:65536]).texts)
            except (EncodingError, OSError):
                continue
            lines = [ln.strip(" \t#*=-") for ln in text.lstrip("\ufeff").splitlines()]
            summary = " / ".join(ln for ln in lines if ln)
            if summary:
                if len(summary) > TERMS_CHARS:
                    summary = summary[:TERMS_CHARS - 1] + "…"
                return summary, path
    return "", None


def _ort_device(device: str | None) -> str:
    """A torch-style device name as the DiffSinger loader takes it."""
    if device is None or device == "auto":
        return "auto"
    return "cuda" if device.startswith("cuda") else "cpu"


def _diffsinger_facts(folder: Path) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    from singer.backends.diffsinger.bank import read_character, read_dictionaries
    from singer.backends.diffsinger.config import read_dsconfig

    character = read_character(folder)
    cfg = read_dsconfig(folder / "dsconfig.yaml")
    dicts = read_dictionaries(folder)
    languages = [lang for lang in dicts if lang]
    phonemizer = character.default_phonemizer.lower()
    for key, lang in (("chinese", "zh"), ("mandarin", "zh"), ("japanese", "ja"),
                      ("english", "en"), ("korean", "ko")):
        if key in phonemizer and lang not in languages:
            languages.append(lang)
    if not languages and "" in dicts:
        languages += _guess_languages(dicts[""].entries)
    return character.name, tuple(languages), tuple(cfg.speakers)


def _utau_facts(folder: Path) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    from singer.backends.utau.bank import UtauBank

    bank = UtauBank.load(folder)
    cvs = {alias for alias in bank.entries if " " not in alias}  # VC/VCV aliases aside
    languages = _guess_languages(cvs)
    if bank.presamp is not None and "zh" not in languages:
        languages.insert(0, "zh")
    colours = [f"{s.prefix}{s.suffix}".strip() for s in bank.character.subbanks]
    colours += [p + s for affixes in bank.prefix_map.by_note.values() for p, s in affixes]
    return bank.name, tuple(languages), tuple(dict.fromkeys(c for c in colours if c))


def _guess_languages(words: Iterable[str]) -> list[str]:
    """Languages the spellings (dictionary graphemes, CV aliases) look like."""
    kana = cjk = pinyin = total = 0
    for word in words:
        total += 1
        if any("\u3040" <= c <= "\u30ff" for c in word):
            kana += 1
        elif any(is_cjk(c) for c in word):
            cjk += 1
        elif word.isascii() and word.isalpha():
            try:
                split_pinyin(normalise_pinyin(re.sub(r"_.*$", "", word)))
                pinyin += 1
            except LyricError:
                pass
    out = []
    if cjk or (total and pinyin >= 0.5 * total):
        out.append("zh")
    if kana:
        out.append("ja")
    return out
