"""A UTAU voicebank as loaded from its folder: characters, aliases, prefix map, presamp."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from singer.backends.utau.bank_files import (
    Character,
    PrefixMap,
    Presamp,
    read_character,
    read_prefix_map,
    read_presamp,
)
from singer.backends.utau.errors import BankError
from singer.backends.utau.oto import OtoEntry, find_oto_files, read_oto


@dataclass(frozen=True, slots=True)
class UtauBank:
    """A classic UTAU bank: every alias of every ``oto.ini`` under ``root``."""

    root: Path
    character: Character
    entries: dict[str, OtoEntry]
    """Alias -> entry (the first line of an alias wins)."""
    prefix_map: PrefixMap
    presamp: Presamp | None
    duplicates: tuple[OtoEntry, ...] = ()
    """Later lines of an alias already defined (ignored, listed for ``check``)."""

    @property
    def name(self) -> str:
        """The bank's name (``character.txt``'s name/名前, else the folder's)."""
        return self.character.name

    @classmethod
    def load(cls, folder: Path | str, *, encoding: str | None = None) -> UtauBank:
        """Read a bank folder; ``BankError`` naming the file and line of the first problem.

        ``encoding`` overrides every text file's charset (else character.yaml's
        ``text_file_encoding``, a ``#Charset:`` line, or a guess preferring Shift-JIS).
        """
        root = Path(folder)
        if not root.is_dir():
            raise BankError(root, None, "not a folder")
        character = read_character(root, encoding)
        text_encoding = encoding or character.text_file_encoding
        otos = find_oto_files(root)
        if not otos:
            raise BankError(root, None, "no oto.ini in this folder or its subfolders")
        entries: dict[str, OtoEntry] = {}
        duplicates: list[OtoEntry] = []
        durations: dict[Path, float] = {}
        for oto in otos:
            for entry in read_oto(oto, text_encoding, durations):
                if entry.alias in entries:
                    duplicates.append(entry)
                else:
                    entries[entry.alias] = entry
        return cls(root, character, entries,
                   read_prefix_map(root, character.subbanks, text_encoding),
                   read_presamp(root, text_encoding), tuple(duplicates))

    def get(self, alias: str, pitch_midi: float | None = None) -> OtoEntry | None:
        """The entry of ``alias`` for a pitch: with the prefix map's prefix/suffix for that
        note first, then the bare alias; ``None`` when the bank has neither."""
        affixes = self.prefix_map.affixes(pitch_midi) if pitch_midi is not None else (("", ""),)
        for prefix, suffix in affixes:
            entry = self.entries.get(prefix + alias + suffix)
            if entry is not None:
                return entry
        return None

    def wav_files(self) -> list[Path]:
        """Every sample file an alias uses, once each."""
        return sorted({e.wav for e in self.entries.values()})
