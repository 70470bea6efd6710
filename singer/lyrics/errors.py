"""The error every lyric problem raises."""

from __future__ import annotations


class LyricError(ValueError):
    """A syllable or word the singer cannot pronounce; the message names it and says why."""
