"""Bank voices in the live ensemble: a picklable reference to a bank, and the loaded banks.

A live singer whose voice is a bank carries a ``BankRef`` (its type, folder and name: three
strings, so an edit naming it crosses to the synthesis process by value; the bank itself is
never pickled). Whoever renders opens the bank from its folder once per process
(``open_bank``, cached, warmed) and one ``BackendLine`` per singer. The show's own process
needs a bank's text files only (``live_lead_samples``, ``check_syllable``, ``check_lyrics``,
read once by ``load_text``, in a worker thread): UTAU's oto.ini says how far before its
vowel a live note's sample starts and which syllables it has; a DiffSinger bank's
dictionaries and phoneme list which lyrics it sings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from singer.contracts import SAMPLE_RATE_HZ, Note

if TYPE_CHECKING:
    from singer.backends.contract import VoiceBackend, VoiceInfo
    from singer.backends.diffsinger.phonemize import BankLexicon
    from singer.backends.utau.bank import UtauBank


@dataclass(frozen=True, slots=True)
class BankRef:
    """A bank voice by value: its type (``utau``, ``diffsinger``), folder and name."""

    type: str
    path: str
    name: str
    steps: int | None = None
    """A DiffSinger bank's diffusion steps (``serve --voice-steps``; ``None``: 20)."""

    @classmethod
    def of(cls, info: VoiceInfo, steps: int | None = None) -> BankRef:
        """The reference of a resolved bank voice."""
        if info.type == "builtin" or info.path is None:
            raise ValueError(f"voice {info.name!r} is built in, not a bank")
        return cls(info.type, str(info.path), info.name, steps)


_lock = threading.Lock()
_backends: dict[BankRef, VoiceBackend] = {}
T = TypeVar("T")
_utau_banks: dict[str, UtauBank] = {}
_lexicons: dict[str, BankLexicon] = {}
_ds_fields: dict[str, frozenset[str]] = {}


def open_bank(ref: BankRef, device: str | None = None) -> VoiceBackend:
    """The loaded, warmed backend of ``ref`` (once per process; ``VoiceError``/``BankError``
    naming the file when it cannot be loaded)."""
    with _lock:
        found = _backends.get(ref)
    if found is not None:
        return found
    from singer.backends.discovery import describe_bank, open_backend

    backend = open_backend(describe_bank(Path(ref.path)), device=device, steps=ref.steps)
    backend.warm_up()
    with _lock:
        return _backends.setdefault(ref, backend)


def _loaded(cache: dict[str, T], path: str, load: Callable[[str], T]) -> T:
    """``load(path)`` once per process (outside the lock: it reads files), kept in ``cache``."""
    with _lock:
        found = cache.get(path)
    if found is None:
        found = load(path)
        with _lock:
            found = cache.setdefault(path, found)
    return found


def _utau_bank(ref: BankRef) -> UtauBank:
    from singer.backends.utau.bank import UtauBank

    return _loaded(_utau_banks, ref.path, UtauBank.load)


def _lexicon(ref: BankRef) -> BankLexicon:
    from singer.backends.diffsinger.phonemize import BankLexicon

    return _loaded(_lexicons, ref.path, BankLexicon.load)


def load_text(ref: BankRef) -> None:
    """Read (once per process) the bank's text files the show's process consults: a UTAU
    bank's oto.ini files, a DiffSinger bank's dictionaries. Slow for a big bank: call it in
    a worker thread, never on the event loop."""
    if ref.type == "utau":
        _utau_bank(ref)
    elif ref.type == "diffsinger":
        expression_fields(ref)


def check_lyrics(ref: BankRef, notes: list[Note] | tuple[Note, ...], what: str = "") -> None:
    """Raise ``ValueError`` (one line naming the bank, the part ``what``, the note and its
    syllable) if the bank cannot sing every lyric of ``notes``. Reads the bank's text files
    on first use: call it in a worker thread."""
    try:
        if ref.type == "utau":
            from singer.backends.utau.plan import check_singable

            check_singable(_utau_bank(ref), notes, what)
        elif ref.type == "diffsinger":
            from singer.backends.diffsinger.phonemize import check_singable as check_ds

            check_ds(_lexicon(ref), notes, what)
    except ValueError as err:
        reason = getattr(err, "reason", None) or getattr(err, "problem", None) or str(err)
        raise ValueError(f"voice {ref.name!r} cannot sing this song: {reason}") from None


UTAU_EXPRESSIONS = frozenset({"vibrato_depth", "vibrato_rate", "breathiness", "tension",
                              "volume", "formant_shift"})
"""What a UTAU bank honours (``UtauBackend.expression_fields``)."""


def expression_fields(ref: BankRef) -> frozenset[str]:
    """The expression fields the bank honours (from its text files: a DiffSinger bank's
    dsconfig says which inputs its acoustic model takes, and whether it has a pitch model)."""
    if ref.type == "utau":
        return UTAU_EXPRESSIONS
    if ref.type == "diffsinger":
        from singer.backends.diffsinger.render import expression_fields as ds_fields

        with _lock:
            found = _ds_fields.get(ref.path)
        if found is None:
            has_pitch = (Path(ref.path) / "dspitch" / "dsconfig.yaml").is_file()
            found = ds_fields(_lexicon(ref).config, has_pitch)
            with _lock:
                _ds_fields[ref.path] = found
        return found
    return frozenset()


def check_expression(ref: BankRef, field: str) -> None:
    """Raise ``ValueError`` (one line) if the bank cannot honour expression ``field``."""
    fields = expression_fields(ref)
    if field not in fields:
        why = {"utau": "", "diffsinger": " (its dsconfig declares no input for it, or its "
               "pitch model makes the f0 curve)"}.get(ref.type, "")
        raise ValueError(f"voice {ref.name!r} ({ref.type}) cannot honour the expression "
                         f"{field!r}{why}; it honours: {', '.join(sorted(fields)) or 'none'}")


def sings_held_notes(ref: BankRef) -> bool:
    """Whether the bank sings a live note as a held note (``BackendLine.queue_note_on``:
    a first segment rendered in the bank worker, extended while held, released at note-off)
    rather than from the note list: phrase-ahead banks (DiffSinger), whose phrases would
    otherwise have to render the open note (docs/voices.md, "Live notes per backend")."""
    return ref.type == "diffsinger"


def check_syllable(ref: BankRef, lyric: str, pitch_midi: float) -> None:
    """Raise ``ValueError`` (one line) if the bank cannot sing ``lyric`` (UTAU: no alias;
    DiffSinger: not in its dictionaries, read without loading a model)."""
    if ref.type == "diffsinger":
        from singer.backends.diffsinger.phonemize import syllable_phonemes
        from singer.lyrics import detect_language

        try:
            syllable_phonemes(_lexicon(ref), lyric, detect_language([lyric]))
        except ValueError as err:
            raise ValueError(f"voice {ref.name!r}: {getattr(err, 'problem', err)}") from None
        return
    if ref.type != "utau":
        return
    from singer.backends.utau.plan import resolve_main
    from singer.backends.utau.syllables import syllable_of

    bank = _utau_bank(ref)
    try:
        resolve_main(bank, syllable_of(lyric, bank.presamp), pitch_midi, None)
    except ValueError as err:
        raise ValueError(f"voice {ref.name!r}: {err}") from None


def live_lead_samples(ref: BankRef, lyric: str, pitch_midi: float, velocity: float = 100.0
                      ) -> int | None:
    """Samples a live note's sound starts before its vowel with this bank (UTAU: the oto
    preutterance), or ``None`` where the built-in voice's consonant lead applies."""
    if ref.type != "utau":
        return None
    from singer.backends.utau.plan import out_ms, resolve_main
    from singer.backends.utau.syllables import syllable_of

    bank = _utau_bank(ref)
    entry, _ = resolve_main(bank, syllable_of(lyric, bank.presamp), pitch_midi, None)
    return int(round(out_ms(entry, entry.preutterance_ms, velocity) * SAMPLE_RATE_HZ / 1000.0))
