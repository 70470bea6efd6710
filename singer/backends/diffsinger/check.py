"""``check_bank``: every problem with a DiffSinger bank folder, as one line each.

Loading stops at the first error; the check reads each part on its own, cross-checks the
dictionaries against the phoneme list, then loads the bank and sings a short probe phrase,
so ``livesinger voice check PATH`` can list every problem it finds.
"""

from __future__ import annotations

from pathlib import Path

from singer.backends.diffsinger.bank import DiffSingerBank, read_character, read_dictionaries
from singer.backends.diffsinger.config import DsDict, read_dsconfig, read_phonemes
from singer.backends.diffsinger.errors import BankError
from singer.contracts import SAMPLE_RATE_HZ, Note


def check_bank(folder: Path | str, *, vocoder_dirs: tuple[Path, ...] = (),
               probe: bool = True) -> list[str]:
    """Problems found in the bank at ``folder`` (empty when it loads and sings)."""
    folder = Path(folder)
    if not (folder / "dsconfig.yaml").is_file():
        return [f"{folder}: no dsconfig.yaml (not a DiffSinger bank)"]
    problems: list[str] = []
    phonemes: dict[str, int] | None = None
    dicts: dict[str, DsDict] | None = None
    try:
        read_character(folder)
    except BankError as exc:
        problems.append(str(exc))
    try:
        cfg = read_dsconfig(folder / "dsconfig.yaml")
        phonemes = read_phonemes(folder / str(cfg.phonemes))
    except BankError as exc:
        problems.append(str(exc))
    try:
        dicts = read_dictionaries(folder)
    except BankError as exc:
        problems.append(str(exc))
    if dicts == {}:
        problems.append(f"{folder}: no dsdict.yaml or dsdict-<lang>.yaml (lyrics cannot be "
                        "sung)")
    if dicts and phonemes is not None:
        problems += _dictionary_problems(dicts, phonemes)
    if problems:
        return problems
    try:
        bank = DiffSingerBank.load(folder, vocoder_dirs=vocoder_dirs, device="cpu")
        if probe:
            _probe(bank)
    except (BankError, OSError) as exc:
        problems.append(str(exc))
    return problems


def _dictionary_problems(dicts: dict[str, DsDict], phonemes: dict[str, int]) -> list[str]:
    """Dictionary entries that use a phoneme the bank's phoneme list lacks."""
    out = []
    for lang, d in dicts.items():
        for grapheme, symbols in d.entries.items():
            lacking = [s for s in symbols if s not in phonemes and f"{lang}/{s}" not in phonemes]
            if lacking:
                out.append(f"{d.path} (entries: {grapheme}): phoneme(s) {', '.join(lacking)} "
                           "not in the bank's phoneme list")
    return out


def _probe(bank: DiffSingerBank) -> None:
    """Sing one note of the first dictionary entry: the models must run end to end."""
    import numpy as np

    from singer.backends.diffsinger.render import render_phrase

    d = next(iter(bank.dictionaries.values()))
    grapheme = next(iter(d.entries))
    note = Note(SAMPLE_RATE_HZ // 2, SAMPLE_RATE_HZ, 60.0, f"[{' '.join(d.entries[grapheme])}]",
                ("a",))
    out = render_phrase(bank, [note])
    if not len(out.samples) or not np.all(np.isfinite(out.samples)):
        raise BankError(bank.vocoder.path, "the probe phrase came out empty or non-finite")
