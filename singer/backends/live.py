"""Bank voices in the live ensemble: a picklable reference to a bank, and the loaded banks.

A live singer whose voice is a bank carries a ``BankRef`` (its type, folder and name: three
strings, so an edit naming it crosses to the synthesis process by value; the bank itself is
never pickled). Whoever renders opens the bank from its folder once per process
(``open_bank``, cached, warmed) and one ``BackendLine`` per singer. The show's own process
needs a bank's text files only (``live_lead_samples``, ``check_syllable``): UTAU's oto.ini
says how far before its vowel a live note's sample starts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from singer.contracts import SAMPLE_RATE_HZ

if TYPE_CHECKING:
    from singer.backends.contract import VoiceBackend, VoiceInfo
    from singer.backends.utau.bank import UtauBank


@dataclass(frozen=True, slots=True)
class BankRef:
    """A bank voice by value: its type (``utau``, ``diffsinger``), folder and name."""

    type: str
    path: str
    name: str

    @classmethod
    def of(cls, info: VoiceInfo) -> BankRef:
        """The reference of a resolved bank voice."""
        if info.type == "builtin" or info.path is None:
            raise ValueError(f"voice {info.name!r} is built in, not a bank")
        return cls(info.type, str(info.path), info.name)


_lock = threading.Lock()
_backends: dict[BankRef, VoiceBackend] = {}
_utau_banks: dict[str, UtauBank] = {}


def open_bank(ref: BankRef, device: str | None = None) -> VoiceBackend:
    """The loaded, warmed backend of ``ref`` (once per process; ``VoiceError``/``BankError``
    naming the file when it cannot be loaded)."""
    with _lock:
        found = _backends.get(ref)
    if found is not None:
        return found
    from singer.backends.discovery import describe_bank, open_backend

    backend = open_backend(describe_bank(Path(ref.path)), device=device)
    backend.warm_up()
    with _lock:
        return _backends.setdefault(ref, backend)


def _utau_bank(ref: BankRef) -> UtauBank:
    with _lock:
        bank = _utau_banks.get(ref.path)
    if bank is None:
        from singer.backends.utau.bank import UtauBank

        bank = UtauBank.load(ref.path)
        with _lock:
            bank = _utau_banks.setdefault(ref.path, bank)
    return bank


def check_live_note(ref: BankRef) -> None:
    """Raise ``ValueError`` (one line) if the bank cannot sing a note played live.

    A phrase-ahead bank (DiffSinger) renders whole phrases; a live note, whose end is not
    known, would make the synthesis render minutes of audio before its first sample and
    stall the show (measured: docs/voices.md). Until held notes are routed to its live-note
    design, such a bank sings scored songs only.
    """
    if ref.type == "diffsinger":
        raise ValueError(f"voice {ref.name!r} is a DiffSinger bank: it sings scored songs "
                         "(phrase-ahead), not notes played live; give this singer a UTAU "
                         "or built-in voice for live notes")


def check_syllable(ref: BankRef, lyric: str, pitch_midi: float) -> None:
    """Raise ``ValueError`` (one line) if the bank cannot sing ``lyric`` (UTAU: no alias)."""
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
