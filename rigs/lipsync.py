"""Lip-sync from the singer's own phonemes: no audio analysis, no analysis delay.

The singer knows what it sings and when, so the mouth shape for a show sample comes from the
phoneme mix of that hop (``ControlFrame.phonemes``) and its loudness.
"""

from __future__ import annotations

from singer.contracts import ControlFrame

MOUTH_EXPRESSIONS = ("aa", "ih", "ou", "ee", "oh")

VISEMES: dict[str, dict[str, float]] = {
    # vowels
    "a": {"aa": 1.0}, "ae": {"aa": 0.6, "ee": 0.4}, "ah": {"aa": 0.7, "oh": 0.1},
    "ao": {"oh": 0.9, "aa": 0.2}, "e": {"ee": 1.0}, "eh": {"ee": 0.6, "aa": 0.35},
    "er": {"ou": 0.4, "ih": 0.3}, "i": {"ih": 1.0}, "ih": {"ih": 0.7, "ee": 0.25},
    "o": {"oh": 1.0}, "u": {"ou": 1.0}, "uh": {"ou": 0.6, "oh": 0.2},
    "ue": {"ou": 0.6, "ih": 0.35}, "ex": {"oh": 0.4, "ee": 0.3, "aa": 0.2},
    "ix": {"ih": 0.5, "ee": 0.2},
    # glides and liquids take the shape of their vowel
    "w": {"ou": 0.8}, "j": {"ih": 0.6}, "yw": {"ou": 0.5, "ih": 0.3},
    "l": {"aa": 0.3, "ih": 0.2}, "r": {"ou": 0.4}, "rr": {"ou": 0.3, "ih": 0.2},
    # lips closed: m b p (all zero); labiodentals barely open
    "m": {}, "b": {}, "p": {}, "f": {"ih": 0.15}, "v": {"ih": 0.15},
    # teeth and tongue consonants: a small opening
    "n": {"ih": 0.2}, "ng": {"aa": 0.2}, "t": {"ih": 0.2}, "d": {"ih": 0.2},
    "s": {"ih": 0.3}, "z": {"ih": 0.3}, "sh": {"ou": 0.4}, "zh": {"ou": 0.4},
    "ch": {"ou": 0.35}, "jh": {"ou": 0.35}, "ts": {"ih": 0.3}, "tsh": {"ih": 0.3},
    "tc": {"ih": 0.3}, "tch": {"ih": 0.3}, "xx": {"ih": 0.3}, "th": {"ih": 0.25},
    "dh": {"ih": 0.25}, "k": {"aa": 0.25}, "g": {"aa": 0.25}, "kh": {"aa": 0.3},
    "hh": {"aa": 0.4},
}
"""Phoneme -> VRM mouth expression weights (fully sung)."""


def mouth_from_control(frame: ControlFrame, reference_loudness: float = 0.12) -> dict[str, float]:
    """VRM mouth expression weights for one control frame (all zero in silence)."""
    weights = dict.fromkeys(MOUTH_EXPRESSIONS, 0.0)
    if not frame.phonemes:
        return weights
    # Louder singing opens wider; voiceless consonants (no voiced loudness) still show.
    opening = min(1.0, max(0.5, (max(frame.loudness, 0.0) / reference_loudness) ** 0.5))
    for phoneme, share in frame.phonemes.items():
        for expression, w in VISEMES.get(phoneme, {}).items():
            weights[expression] += share * w * opening
    return {k: min(1.0, v) for k, v in weights.items()}
