"""Built-in voice profiles: formant tables and singing habits of each voice.

A profile tells the performer where a voice's formants sit for every phoneme and how it
sings (range, vibrato, breath). The synthesizer itself is shared by all voices, so singers
with different profiles batch into one forward pass.

Formant frequencies, levels and bandwidths of the cardinal vowels are the singing formant
table of the Csound manual (soprano and tenor). Other vowels and consonant loci are men's
speech values scaled onto the voice by the ratio fitted on /a/, /i/, /u/.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from singer.phonemes import CARDINAL_VOWELS, PHONEMES

N_FORMANTS = 5

# Men's speech F1-F3 of /a/, /i/, /u/ (Peterson & Barney 1952: aa, iy, uw): the reference
# the consonant loci and extra vowels in singer.phonemes are written against.
_MALE_REFERENCE = {"a": (730.0, 1090.0, 2440.0), "i": (270.0, 2290.0, 3010.0),
                   "u": (300.0, 870.0, 2240.0)}


class UnknownVoiceError(ValueError):
    """A voice name that no built-in voice answers to."""


@dataclass(frozen=True, slots=True)
class FormantSet:
    """Five formants: frequencies (Hz), levels (dB re F1) and bandwidths (Hz)."""

    freqs_hz: tuple[float, ...]
    levels_db: tuple[float, ...]
    bandwidths_hz: tuple[float, ...]


@dataclass(frozen=True, eq=False)
class VoiceProfile:
    """A singing voice: formant table, range and expression defaults.

    ``vibrato_*`` set the default vibrato (depth in cents, rate in Hz, onset delay in
    seconds); ``breath`` (0..1) the aspiration mixed into voiced sound; ``tension`` (0..1)
    the brightness of the source; ``range_midi`` the comfortable range.
    """

    name: str
    description: str
    cardinal: dict[str, FormantSet]
    range_midi: tuple[int, int]
    vibrato_cents: float = 45.0
    vibrato_rate_hz: float = 5.6
    vibrato_delay_s: float = 0.25
    breath: float = 0.08
    tension: float = 0.5
    loudness: float = 0.12
    _table: dict[str, FormantSet] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._table.update(_derive_table(self.cardinal))

    def formants(self, phoneme: str) -> FormantSet:
        """Formant targets of ``phoneme`` for this voice (vowel or consonant locus)."""
        try:
            return self._table[phoneme]
        except KeyError:
            raise KeyError(f"voice {self.name!r} has no phoneme {phoneme!r}") from None

    def formant_arrays(self) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """All phonemes as (names, freqs[P,5], linear levels[P,5], bandwidths[P,5])."""
        names = sorted(self._table)
        freqs = np.array([self._table[n].freqs_hz for n in names], dtype=np.float64)
        levels = np.array([self._table[n].levels_db for n in names], dtype=np.float64)
        bws = np.array([self._table[n].bandwidths_hz for n in names], dtype=np.float64)
        return names, freqs, 10.0 ** (levels / 20.0), bws


def _derive_table(cardinal: dict[str, FormantSet]) -> dict[str, FormantSet]:
    """Formant sets for every phoneme, from the voice's five cardinal vowels."""
    scale = [
        float(np.exp(np.mean([np.log(cardinal[v].freqs_hz[j] / _MALE_REFERENCE[v][j])
                              for v in _MALE_REFERENCE])))
        for j in range(3)
    ]
    upper_f = [float(np.mean([c.freqs_hz[j] for c in cardinal.values()])) for j in (3, 4)]
    mean_bw = [float(np.mean([c.bandwidths_hz[j] for c in cardinal.values()]))
               for j in range(N_FORMANTS)]
    table: dict[str, FormantSet] = dict(cardinal)
    for name, spec in PHONEMES.items():
        if name in cardinal:
            continue
        if spec.formants_hz is None:  # /h/: takes the neighbouring vowel's formants
            ref = (500.0, 1500.0, 2500.0)
        else:
            ref = spec.formants_hz
        freqs = tuple(ref[j] * scale[j] for j in range(3)) + tuple(upper_f)
        freqs = _keep_ordered(freqs)
        levels = _levels_for(spec.kind, freqs, cardinal)
        bws = tuple(mean_bw)
        if spec.kind == "nasal":
            bws = tuple(b * 2.0 for b in bws)
        table[name] = FormantSet(freqs, levels, bws)
    return table


def _keep_ordered(freqs: tuple[float, ...]) -> tuple[float, ...]:
    out = list(freqs)
    for j in range(1, len(out)):
        out[j] = max(out[j], out[j - 1] + 150.0)
    return tuple(out)


def _levels_for(kind: str, freqs: tuple[float, ...],
                cardinal: dict[str, FormantSet]) -> tuple[float, ...]:
    """Levels of the nearest cardinal vowel in (F1, F2); nasals keep their murmur low."""
    nearest = min(cardinal.values(), key=lambda c: (np.log(c.freqs_hz[0] / freqs[0])) ** 2
                  + (np.log(c.freqs_hz[1] / freqs[1])) ** 2)
    levels = nearest.levels_db
    if kind == "nasal":
        return (0.0, -20.0, -30.0, -36.0, -50.0)
    return levels


def _fs(f: tuple[float, ...], db: tuple[float, ...], bw: tuple[float, ...]) -> FormantSet:
    return FormantSet(tuple(map(float, f)), tuple(map(float, db)), tuple(map(float, bw)))


SOPRANO = VoiceProfile(
    name="soprano",
    description="bright lyric soprano (Csound singing formant table)",
    cardinal={
        "a": _fs((800, 1150, 2900, 3900, 4950), (0, -6, -32, -20, -50), (80, 90, 120, 130, 140)),
        "e": _fs((350, 2000, 2800, 3600, 4950), (0, -20, -15, -40, -56),
                 (60, 100, 120, 150, 200)),
        "i": _fs((270, 2140, 2950, 3900, 4950), (0, -12, -26, -26, -44),
                 (60, 90, 100, 120, 120)),
        "o": _fs((450, 800, 2830, 3800, 4950), (0, -11, -22, -22, -50), (70, 80, 100, 130, 135)),
        "u": _fs((325, 700, 2700, 3800, 4950), (0, -16, -35, -40, -60), (50, 60, 170, 180, 200)),
    },
    range_midi=(60, 84),
    vibrato_cents=50.0,
    vibrato_rate_hz=5.8,
    breath=0.10,
)

TENOR = VoiceProfile(
    name="tenor",
    description="warm tenor (Csound singing formant table)",
    cardinal={
        "a": _fs((650, 1080, 2650, 2900, 3250), (0, -6, -7, -8, -22), (80, 90, 120, 130, 140)),
        "e": _fs((400, 1700, 2600, 3200, 3580), (0, -14, -12, -14, -20), (70, 80, 100, 120, 120)),
        "i": _fs((290, 1870, 2800, 3250, 3540), (0, -15, -18, -20, -30), (40, 90, 100, 120, 120)),
        "o": _fs((400, 800, 2600, 2800, 3000), (0, -10, -12, -12, -26), (40, 80, 100, 120, 120)),
        "u": _fs((350, 600, 2700, 2900, 3300), (0, -20, -17, -14, -26), (40, 60, 100, 120, 120)),
    },
    range_midi=(48, 72),
    vibrato_cents=40.0,
    vibrato_rate_hz=5.4,
    breath=0.06,
)

VOICES: dict[str, VoiceProfile] = {v.name: v for v in (SOPRANO, TENOR)}
"""Built-in voices by name."""

assert set(CARDINAL_VOWELS) == set(SOPRANO.cardinal) == set(TENOR.cardinal)


def get_voice(name: str) -> VoiceProfile:
    """The built-in voice called ``name``; ``UnknownVoiceError`` lists the known names."""
    try:
        return VOICES[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(VOICES))
        raise UnknownVoiceError(f"unknown voice {name!r}; known voices: {known}") from None
