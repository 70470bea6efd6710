"""A stand-in Mandarin CV UTAU bank recorded from the built-in voice (for benchmarks).

Real UTAU banks cost what their samples cost (WORLD analysis once, then resampling per note),
not what their voice sounds like, so a bank of the usual shape — one 44.1 kHz 16-bit WAV per
CV syllable, about 1.5 s each, an ``oto.ini`` with offset, consonant, cutoff, preutterance and
overlap set from the voice's own phoneme timeline — measures the real cost.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.timeline import build_timeline

SYLLABLES = {"a": ("a",), "ba": ("b", "a"), "da": ("d", "a"), "la": ("l", "a"),
             "ma": ("m", "a"), "na": ("n", "a"), "sa": ("s", "a"), "li": ("l", "i"),
             "mi": ("m", "i"), "lu": ("l", "u")}
SLOT_S = 2.0
NOTE_ON_S = 0.4
NOTE_S = 1.0
PITCH_MIDI = 60.0


def build_standin_bank(folder: Path, syllables: tuple[str, ...] | None = None) -> Path:
    """Write the bank (all ``SYLLABLES``, or the ones named) into ``folder``; returns it."""
    from singer.backends.builtin import BuiltinBackend

    folder.mkdir(parents=True, exist_ok=True)
    sr = SAMPLE_RATE_HZ
    chosen = {a: SYLLABLES[a] for a in (syllables or tuple(SYLLABLES))}
    notes = []
    for k, (alias, phonemes) in enumerate(chosen.items()):
        on = int((k * SLOT_S + NOTE_ON_S) * sr)
        notes.append(Note(on, on + int(NOTE_S * sr), PITCH_MIDI, alias, phonemes))
    line = BuiltinBackend("soprano").open_line("standin", notes)
    audio = line.render(0, int(len(chosen) * SLOT_S * sr))
    lines = []
    for k, alias in enumerate(chosen):
        piece = audio[int(k * SLOT_S * sr):int((k * SLOT_S + NOTE_ON_S + NOTE_S + 0.2) * sr)]
        wave = signal.resample_poly(piece.astype(np.float64), 147, 160)
        sf.write(str(folder / f"{alias}.wav"), wave, 44100, subtype="PCM_16")
        note = notes[k]
        first = build_timeline([note])[0].start - int(k * SLOT_S * sr)
        offset_ms = max(0.0, 1000.0 * first / sr - 30.0)
        pre_ms = 1000.0 * NOTE_ON_S - offset_ms
        end_ms = 1000.0 * (NOTE_ON_S + NOTE_S) - 50.0
        lines.append(f"{alias}.wav={alias},{offset_ms:.1f},{pre_ms + 80.0:.1f},"
                     f"{-(end_ms - offset_ms):.1f},{pre_ms:.1f},{min(30.0, pre_ms / 2):.1f}")
    (folder / "oto.ini").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    (folder / "character.txt").write_text("name=Stand-in CV (built-in voice)\r\n",
                                          encoding="utf-8")
    return folder
