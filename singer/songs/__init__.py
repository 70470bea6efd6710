"""Demo songs shipped with the package: public-domain melodies written as MusicXML 3.1.

* ``jasmine`` — 茉莉花 (Mo Li Hua, Jiangsu folk song), first verse in Chinese, soprano,
  G major 2/4 at 76 bpm, about 43 s.
* ``twinkle`` — "Twinkle, Twinkle, Little Star" (Jane Taylor, 1806), first stanza, tenor,
  C major 4/4 at 100 bpm with a ritardando to 80 bpm for the last line, 30 s.
"""

from __future__ import annotations

from pathlib import Path

SONGS_DIR = Path(__file__).resolve().parent
"""Folder holding the demo song files."""

DEMO_SONGS: dict[str, str] = {
    "jasmine": "jasmine_flower.musicxml",
    "twinkle": "twinkle.musicxml",
}
"""Demo song name → file name in ``SONGS_DIR``."""


def song_path(name: str) -> Path:
    """Path of the demo song ``name``; ``ValueError`` listing the known names otherwise."""
    try:
        filename = DEMO_SONGS[name]
    except KeyError:
        known = ", ".join(sorted(DEMO_SONGS))
        raise ValueError(f"unknown demo song {name!r}; the demo songs are: {known}") from None
    return SONGS_DIR / filename
