"""One entry point for every score: ``load_score(path_or_song_name)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from singer.score import Score, ScoreError


def load_score(ref: str | Path, **options: Any) -> Score:
    """A score from a file (by extension) or a demo song by name; ``ScoreError`` otherwise."""
    from singer.musicxml import read_musicxml
    from singer.songs import DEMO_SONGS, song_path

    path = Path(ref)
    if not path.exists() and str(ref) in DEMO_SONGS:
        path = song_path(str(ref))
    if not path.exists():
        raise ScoreError(f"{ref}: no such score file or song (songs: {', '.join(DEMO_SONGS)})")
    if path.suffix.lower() in (".musicxml", ".xml", ".mxl"):
        return read_musicxml(path, **options)
    raise ScoreError(f"{path}: cannot tell what kind of score this is (MusicXML: .musicxml, "
                     ".xml, .mxl)")
