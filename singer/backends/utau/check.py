"""``check_bank``: everything wrong with a UTAU bank folder, as lines a person can act on
(for ``livesinger voice check PATH``)."""

from __future__ import annotations

from pathlib import Path

from singer.backends.utau.analysis import read_wav_48k
from singer.backends.utau.bank import UtauBank
from singer.backends.utau.bank_files import read_bank_text, read_character
from singer.backends.utau.errors import BankError
from singer.backends.utau.oto import find_oto_files, parse_oto_line


def check_bank(folder: Path | str, *, encoding: str | None = None,
               read_audio: bool = True) -> list[str]:
    """Problems found in a bank folder (empty when it is usable): every malformed line of
    every ``oto.ini`` (not just the first), unreadable text files, duplicate aliases,
    samples that cannot be read or are silent; each names the file and line."""
    root = Path(folder)
    if not root.is_dir():
        return [f"{root}: not a folder"]
    problems: list[str] = []
    text_encoding = encoding
    try:
        character = read_character(root, encoding)
        text_encoding = encoding or character.text_file_encoding
    except BankError as err:
        problems.append(str(err))
    otos = find_oto_files(root)
    if not otos:
        problems.append(f"{root}: no oto.ini in this folder or its subfolders")
    durations: dict[Path, float] = {}
    for oto in otos:
        problems.extend(_check_oto(oto, text_encoding, durations))
    if problems:
        return problems
    try:
        bank = UtauBank.load(root, encoding=encoding)
    except BankError as err:
        return [str(err)]
    for dup in bank.duplicates:
        first = bank.entries[dup.alias]
        problems.append(f"{dup.source}:{dup.line}: alias {dup.alias!r} is already defined at "
                        f"{first.source}:{first.line} (the first one is used)")
    if read_audio:
        for wav in bank.wav_files():
            try:
                audio = read_wav_48k(wav)
            except BankError as err:
                problems.append(str(err))
                continue
            if not len(audio) or float(abs(audio).max()) < 1e-5:
                problems.append(f"{wav}: silent sample")
    return problems


def _check_oto(path: Path, encoding: str | None, durations: dict[Path, float]) -> list[str]:
    """Every bad line of one oto.ini (each line checked on its own)."""
    try:
        text = read_bank_text(path, encoding)
    except BankError as err:
        return [str(err)]
    problems = []
    for number, line in enumerate(text.lines, 1):
        if not line.strip():
            continue
        try:
            parse_oto_line(path, number, line.strip(), durations)
        except BankError as err:
            problems.append(str(err))
    return problems
