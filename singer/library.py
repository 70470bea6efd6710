"""The song library: a folder of score files a show loads by name.

A song's name is its file name without the extension (``verse.ustx`` → ``verse``); when two
files share a stem, each is named with its extension (``verse.mid``, ``verse.ustx``). The
built-in demo folder keeps its demo names (``jasmine``, ``twinkle``). Metadata comes from
loading each score once; it is cached by path, size and modification time. A file that cannot
be read is listed with its error instead of stopping the listing.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from singer.contracts import SAMPLE_RATE_HZ
from singer.score import Score, ScoreError

SONGS_ENV = "LIVESINGER_SONGS"
"""Environment variable naming the songs folder."""


@dataclass(frozen=True, slots=True)
class SongInfo:
    """What a director needs to pick a song: name, file and the score's metadata.

    ``error`` is set (and the metadata empty) when the file cannot be read.
    """

    name: str
    path: Path
    format: str = ""
    title: str = ""
    language: str = ""
    tempo_bpm: tuple[float, ...] = ()
    """Every tempo of the song, the opening one first."""
    length_s: float = 0.0
    singers: tuple[str, ...] = ()
    """The score's parts, one singer each."""
    notes: int = 0
    notices: tuple[str, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the score loads."""
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields."""
        return {"name": self.name, "path": str(self.path), "format": self.format,
                "title": self.title, "language": self.language,
                "tempo_bpm": list(self.tempo_bpm), "length_s": round(self.length_s, 2),
                "singers": list(self.singers), "notes": self.notes,
                "notices": list(self.notices), "error": self.error}


_CACHE: dict[tuple[str, int, int], SongInfo] = {}
_CACHE_LOCK = threading.Lock()


class SongLibrary:
    """The songs of one folder (not its subfolders), by name."""

    def __init__(self, folder: str | Path) -> None:
        from singer.scores.load import SUFFIX_FORMATS

        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise ScoreError(f"{self.folder}: songs folder not found")
        files = sorted(p for p in self.folder.iterdir()
                       if p.is_file() and p.suffix.lower() in SUFFIX_FORMATS
                       and not p.name.startswith("."))
        stems: dict[str, int] = {}
        for p in files:
            stems[p.stem] = stems.get(p.stem, 0) + 1
        demo = _demo_names(self.folder)
        self._files: dict[str, Path] = {}
        for p in files:
            name = demo.get(p.name) or (p.stem if stems[p.stem] == 1 else p.name)
            self._files[name] = p

    def names(self) -> list[str]:
        """Song names, sorted."""
        return sorted(self._files)

    def find(self, name: str) -> Path | None:
        """The file of song ``name`` (also found by its file name), ``None`` if absent."""
        if name in self._files:
            return self._files[name]
        return next((p for p in self._files.values() if p.name == name), None)

    def path(self, name: str) -> Path:
        """The file of song ``name``; ``ScoreError`` listing the names otherwise."""
        found = self.find(name)
        if found is None:
            raise ScoreError(f"{name}: no such song in {self.folder} "
                             f"(songs: {', '.join(self.names()) or 'none'})")
        return found

    def load(self, name: str, **options: Any) -> Score:
        """The score of song ``name`` (options as for ``load_score``)."""
        from singer.scores.load import load_score

        return load_score(self.path(name), **options)

    def info(self, name: str) -> SongInfo:
        """Metadata of song ``name`` (loaded once per file version, then cached)."""
        path = self.path(name)
        try:
            stat = path.stat()
        except OSError as err:
            return SongInfo(name, path, error=f"{path}: {err.strerror or err}")
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
        if cached is None:
            cached = _describe(path)
            with _CACHE_LOCK:
                _CACHE[key] = cached
        return dataclasses.replace(cached, name=name)

    def songs(self) -> list[SongInfo]:
        """Every song's metadata, by name; unreadable files carry their error."""
        return [self.info(n) for n in self.names()]


def default_folder() -> Path:
    """The songs folder: ``LIVESINGER_SONGS`` when set, else the built-in demo songs."""
    from singer.songs import SONGS_DIR

    env = os.environ.get(SONGS_ENV, "").strip()
    return Path(env) if env else SONGS_DIR


def default_libraries() -> list[SongLibrary]:
    """Where a bare song name is looked up: the ``LIVESINGER_SONGS`` folder, then the demos."""
    from singer.songs import SONGS_DIR

    folders = [default_folder()]
    if folders[0].resolve() != SONGS_DIR.resolve():
        folders.append(SONGS_DIR)
    return [SongLibrary(f) for f in folders]


def _describe(path: Path) -> SongInfo:
    from singer.scores.load import detect_format, load_score

    try:
        fmt = detect_format(path)
        score = load_score(path)
    except ScoreError as err:
        return SongInfo("", path, error=str(err))
    except Exception as err:  # a reader's bug must not hide the other songs
        return SongInfo("", path, error=f"{path}: {type(err).__name__}: {err}")
    bpms = tuple(dict.fromkeys(c.bpm for c in score.tempo_map.changes))
    return SongInfo("", path, fmt, score.title, score.language, bpms,
                    score.end_sample / SAMPLE_RATE_HZ, tuple(p.name for p in score.parts),
                    sum(len(p.notes) for p in score.parts), score.notices)


def _demo_names(folder: Path) -> dict[str, str]:
    """File name → demo song name, for the built-in songs folder only."""
    from singer.songs import DEMO_SONGS, SONGS_DIR

    if folder.resolve() != SONGS_DIR.resolve():
        return {}
    return {filename: name for name, filename in DEMO_SONGS.items()}
