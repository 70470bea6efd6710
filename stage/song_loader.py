"""Loading songs during a show: which songs a remote cue may name, and parsing them off the
event loop.

Remote surfaces (OSC, MQTT, the web) may load library songs by name, or files inside the
configured song folders; any other path is refused with one message whether or not it
exists, so the replies tell nothing about the server's files. Local surfaces (the command
line, cue list files) name any path.

Parsing runs in a worker process: music21 holds the GIL for the whole parse, so a thread would
still stall the show's event loop and its synthesis thread. The cue list's songs are parsed
when the show starts, so a GO that loads one finds it ready.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.process
import functools
import logging
import multiprocessing
import pickle
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from singer.score import Score, ScoreError

log = logging.getLogger(__name__)

ScoreLoader = Callable[[str], Score]
"""``load(path_or_name) -> Score``; raises ``ScoreError`` (or ``ValueError``/``OSError``)."""

MAX_NAMES_SHOWN = 20


def local_loader(songs: Path | None = None) -> ScoreLoader:
    """``load_score`` for local references, names looked up in ``songs`` (default: the song
    library); it can be sent to the worker process (the worker imports no more than it)."""
    from singer.scores.load import load_score

    return functools.partial(load_score, songs=songs)


def default_song_folders() -> list[Path]:
    """The folders whose songs a remote cue may load when none are configured: the
    ``LIVESINGER_SONGS`` folder, then the demo songs (as for bare song names)."""
    from singer.library import default_folder
    from singer.songs import SONGS_DIR

    folders = [default_folder()]
    if folders[0].resolve() != SONGS_DIR.resolve():
        folders.append(SONGS_DIR)
    return folders


class RemoteSongs:
    """The songs a remote cue may load: library names and regular files inside ``folders``."""

    def __init__(self, folders: Sequence[Path]) -> None:
        self.folders = [Path(f).expanduser() for f in folders]

    def resolve(self, ref: str) -> Path:
        """The file of the song ``ref`` names; ``ScoreError`` with the same message for
        anything else (a path outside the folders, missing or not, a pipe, a folder)."""
        from singer.library import SongLibrary

        names: list[str] = []
        for folder in self.folders:
            try:
                library = SongLibrary(folder)
            except ScoreError:  # a configured folder that is gone offers nothing
                continue
            found = library.find(ref)
            if found is not None and found.is_file():
                return found
            names += [n for n in library.names() if n not in names]
        inside = self._inside(ref)
        if inside is not None:
            return inside
        shown = ", ".join(names[:MAX_NAMES_SHOWN]) + (", ..." if len(names) > MAX_NAMES_SHOWN
                                                      else "")
        raise ScoreError(f"unknown song {ref!r}: remote cues load library songs by name, or "
                         f"files inside the song folders (songs: {shown or 'none'})")

    def _inside(self, ref: str) -> Path | None:
        """``ref`` as a regular file inside one of the folders (resolved: no escaping through
        ``..`` or a link), else ``None``."""
        for folder in self.folders:
            try:
                root = folder.resolve(strict=True)
                path = (root / ref).resolve(strict=True)  # an absolute ref replaces root
            except (OSError, RuntimeError, ValueError):  # missing, a link loop, a NUL byte
                continue
            if path.is_relative_to(root) and path.is_file():
                return path
        return None


def _warm_up() -> None:
    """Import the readers in the worker, so the first song parses as fast as the next."""
    import singer.scores.load
    import singer.scores.midi
    import singer.scores.musicxml  # music21, the slow import

    del singer


class SongLoader:
    """Parses songs in a worker process (a thread when ``load`` cannot be sent to one) and
    keeps the songs parsed ahead (``preload``) for when they are asked for."""

    def __init__(self, load: ScoreLoader, folders: Sequence[Path] | None = None, *,
                 process: bool = True) -> None:
        self._load = load
        self.remote = RemoteSongs(default_song_folders() if folders is None else folders)
        self._use_process = process and _picklable(load)
        self._pool: concurrent.futures.Executor | None = None
        self._preloaded: dict[str, concurrent.futures.Future[Score]] = {}

    @property
    def in_process(self) -> bool:
        """Whether songs are parsed in a worker process (else in a worker thread)."""
        return self._use_process

    def _executor(self) -> concurrent.futures.Executor:
        if self._pool is None:
            if self._use_process:
                # spawn: forking a process that runs torch and the synthesis thread can
                # deadlock the child
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"))
                self._pool.submit(_warm_up)
            else:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="livesinger-songs")
        return self._pool

    def preload(self, refs: Iterable[str]) -> None:
        """Start parsing ``refs`` (local references: paths or names) now; ``load`` of one of
        them then waits for that parse instead of starting one."""
        for ref in refs:
            if ref not in self._preloaded:
                future = self._executor().submit(self._load, ref)
                future.add_done_callback(_report_preload(ref))
                self._preloaded[ref] = future

    def ready(self, ref: str) -> bool:
        """Whether ``ref`` was preloaded and its parse has finished (well or not)."""
        future = self._preloaded.get(ref)
        return future is not None and future.done()

    async def load(self, ref: str) -> Score:
        """The song ``ref`` (a local reference: any path or name), parsed off the loop."""
        future = self._preloaded.get(ref)
        if future is None or (future.done() and future.exception() is not None):
            self._preloaded.pop(ref, None)  # a failed preload is tried again: maybe fixed
            try:
                future = self._executor().submit(self._load, ref)
            except concurrent.futures.process.BrokenProcessPool:
                future = self._restart().submit(self._load, ref)
        try:
            # shielded: a cancelled cue must not cancel a parse another cue may wait for
            return await asyncio.shield(asyncio.wrap_future(future))
        except concurrent.futures.process.BrokenProcessPool:
            self._restart()
            raise ScoreError(f"{ref}: the song loader's worker died while parsing it") from None

    def _restart(self) -> concurrent.futures.Executor:
        """A new worker after the old one died (killed, out of memory)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None
        self._preloaded.clear()
        return self._executor()

    async def load_remote(self, ref: str) -> Score:
        """The song a remote cue names (see ``RemoteSongs``), parsed off the loop."""
        path = await asyncio.to_thread(self.remote.resolve, ref)
        return await self.load(str(path))

    def close(self) -> None:
        """Stop the worker (a parse in progress is abandoned)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _report_preload(ref: str) -> Callable[[concurrent.futures.Future[Score]], None]:
    def done(future: concurrent.futures.Future[Score]) -> None:
        if future.cancelled():
            return
        err = future.exception()
        if err is not None:  # the GO that loads it answers with the same error
            log.warning("cue list song %s cannot be loaded: %s", ref, err)
    return done


def _picklable(load: ScoreLoader) -> bool:
    try:
        pickle.dumps(load)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True
