"""The voice's phoneme inventory: names, classes and acoustic targets.

One inventory serves Mandarin and English. Vowel formants come from the voice profile
(``singer.voices``); consonant targets here are loci for a male vocal tract that the profile
scales. Names are lowercase ASCII; ``ipa`` tells what each one is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["vowel", "glide", "liquid", "nasal", "fricative", "aspirate", "plosive",
               "affricate"]


@dataclass(frozen=True, slots=True)
class PhonemeSpec:
    """Acoustic description of one phoneme.

    ``formants_hz`` are F1..F3 targets (male reference; ``None`` for vowels, whose formants
    come from the voice). ``voice_amp``/``noise_amp`` are relative levels during the
    constriction; ``noise_hz`` is the frication band (centre, bandwidth). Durations are the
    consonant's usual length before the vowel: ``closure_s`` of silence, then ``duration_s``
    of constriction or frication, then ``aspiration_s`` of breathy release.
    """

    name: str
    ipa: str
    kind: Kind
    formants_hz: tuple[float, float, float] | None = None
    voice_amp: float = 1.0
    noise_amp: float = 0.0
    noise_hz: tuple[float, float] = (0.0, 0.0)
    duration_s: float = 0.0
    closure_s: float = 0.0
    aspiration_s: float = 0.0

    @property
    def is_vowel(self) -> bool:
        """True for vowels (the syllable nucleus)."""
        return self.kind == "vowel"

    @property
    def is_consonant(self) -> bool:
        """True for anything sung before or after the vowel (glides are not consonants here)."""
        return self.kind not in ("vowel", "glide")

    @property
    def lead_s(self) -> float:
        """Time this consonant takes before the next sound starts."""
        return self.closure_s + self.duration_s + self.aspiration_s


def _v(name: str, ipa: str, f: tuple[float, float, float] | None = None) -> PhonemeSpec:
    return PhonemeSpec(name, ipa, "vowel", f)


# Peterson & Barney (1952) men's F1/F2/F3 for the English vowels the soprano/tenor tables do
# not list; Mandarin ü, ɤ from Wu Zongji's table; the apical vowel from its usual description.
VOWELS = [
    _v("a", "a"), _v("e", "e"), _v("i", "i"), _v("o", "o"), _v("u", "u"),
    _v("ae", "æ", (660, 1720, 2410)),
    _v("ah", "ʌ", (520, 1190, 2390)),
    _v("ao", "ɔ", (570, 840, 2410)),
    _v("eh", "ɛ", (530, 1840, 2480)),
    _v("er", "ɝ", (490, 1350, 1690)),
    _v("ih", "ɪ", (390, 1990, 2550)),
    _v("uh", "ʊ", (440, 1020, 2240)),
    _v("ue", "y", (290, 2160, 2300)),
    _v("ex", "ɤ", (540, 1040, 2600)),
    _v("ix", "ɨ", (360, 1400, 2600)),
]

CONSONANTS = [
    # glides: sung from the note onset, quickly, into the vowel
    PhonemeSpec("w", "w", "glide", (290, 650, 2200), 0.8, duration_s=0.05),
    PhonemeSpec("j", "j", "glide", (260, 2200, 3000), 0.8, duration_s=0.05),
    PhonemeSpec("yw", "ɥ", "glide", (260, 1900, 2200), 0.8, duration_s=0.05),
    # liquids
    PhonemeSpec("l", "l", "liquid", (360, 1300, 2800), 0.55, duration_s=0.06),
    PhonemeSpec("r", "ɹ", "liquid", (350, 1100, 1600), 0.6, duration_s=0.06),
    PhonemeSpec("rr", "ʐ", "liquid", (350, 1250, 1800), 0.45, 0.08, (3000, 2500), 0.07),
    # nasals
    PhonemeSpec("m", "m", "nasal", (250, 1100, 2200), 0.32, duration_s=0.07),
    PhonemeSpec("n", "n", "nasal", (250, 1500, 2500), 0.32, duration_s=0.07),
    PhonemeSpec("ng", "ŋ", "nasal", (250, 1900, 2600), 0.32, duration_s=0.07),
    # fricatives
    PhonemeSpec("f", "f", "fricative", (300, 1000, 2300), 0.0, 0.16, (6000, 9000), 0.09),
    PhonemeSpec("v", "v", "fricative", (300, 1000, 2300), 0.3, 0.10, (6000, 9000), 0.07),
    PhonemeSpec("th", "θ", "fricative", (300, 1400, 2600), 0.0, 0.13, (6500, 9000), 0.09),
    PhonemeSpec("dh", "ð", "fricative", (300, 1400, 2600), 0.3, 0.08, (6500, 9000), 0.06),
    PhonemeSpec("s", "s", "fricative", (300, 1600, 2600), 0.0, 0.5, (7000, 4500), 0.10),
    PhonemeSpec("z", "z", "fricative", (300, 1600, 2600), 0.3, 0.3, (7000, 4500), 0.08),
    PhonemeSpec("sh", "ʃ", "fricative", (300, 1800, 2400), 0.0, 0.5, (3800, 3000), 0.10),
    PhonemeSpec("zh", "ʒ", "fricative", (300, 1800, 2400), 0.3, 0.3, (3800, 3000), 0.08),
    PhonemeSpec("xx", "ɕ", "fricative", (300, 2100, 2800), 0.0, 0.45, (5000, 3500), 0.10),
    PhonemeSpec("kh", "x", "fricative", (400, 1500, 2500), 0.0, 0.3, (1600, 2500), 0.08),
    PhonemeSpec("hh", "h", "aspirate", None, 0.0, 0.35, (0.0, 0.0), 0.07),
    # plosives: closure, then burst and aspiration; the vowel starts after the aspiration
    PhonemeSpec("p", "pʰ", "plosive", (300, 900, 2200), 0.0, 0.3, (1200, 2500), 0.01, 0.05, 0.05),
    PhonemeSpec("b", "b", "plosive", (300, 900, 2200), 0.08, 0.25, (1200, 2500), 0.01, 0.05, 0.01),
    PhonemeSpec("t", "tʰ", "plosive", (300, 1700, 2600), 0.0, 0.4, (4500, 4000), 0.01, 0.04, 0.05),
    PhonemeSpec("d", "d", "plosive", (300, 1700, 2600), 0.08, 0.3, (4500, 4000), 0.01, 0.04, 0.01),
    PhonemeSpec("k", "kʰ", "plosive", (300, 1900, 2400), 0.0, 0.4, (2000, 2000), 0.01, 0.05, 0.06),
    PhonemeSpec("g", "g", "plosive", (300, 1900, 2400), 0.08, 0.3, (2000, 2000), 0.01, 0.05, 0.015),
    # affricates: closure, then frication, then (for the aspirated ones) aspiration
    PhonemeSpec("ch", "tʃʰ", "affricate", (300, 1800, 2400), 0.0, 0.5, (3800, 3000), 0.06, 0.04,
                0.03),
    PhonemeSpec("jh", "dʒ", "affricate", (300, 1800, 2400), 0.1, 0.4, (3800, 3000), 0.05, 0.04),
    PhonemeSpec("ts", "ts", "affricate", (300, 1600, 2600), 0.0, 0.45, (7000, 4500), 0.05, 0.03),
    PhonemeSpec("tsh", "tsʰ", "affricate", (300, 1600, 2600), 0.0, 0.5, (7000, 4500), 0.05, 0.03,
                0.04),
    PhonemeSpec("tc", "tɕ", "affricate", (300, 2100, 2800), 0.0, 0.45, (5000, 3500), 0.05, 0.03),
    PhonemeSpec("tch", "tɕʰ", "affricate", (300, 2100, 2800), 0.0, 0.5, (5000, 3500), 0.05, 0.03,
                0.04),
]

PHONEMES: dict[str, PhonemeSpec] = {p.name: p for p in VOWELS + CONSONANTS}
"""Every phoneme the voice can sing, by name."""

VOWEL_NAMES = tuple(p.name for p in VOWELS)
CARDINAL_VOWELS = ("a", "e", "i", "o", "u")
"""Vowels whose formants each voice lists itself (the singing formant tables)."""


def spec(name: str) -> PhonemeSpec:
    """The spec of phoneme ``name``; ``KeyError`` names the unknown phoneme."""
    try:
        return PHONEMES[name]
    except KeyError:
        raise KeyError(f"unknown phoneme {name!r}") from None
