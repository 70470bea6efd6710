"""Bounds a score file must keep before any reader parses it.

A score is a regular file of bounded size; a compressed MusicXML (``.mxl``) archive also
bounds how many members it holds and how much they expand to (a zip bomb is refused from
its directory, before anything is inflated). A FIFO or a device is refused without being
read, so it can never block the thread that loads it.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path
from typing import BinaryIO

from singer.score import ScoreError

MAX_SCORE_BYTES = 64 * 1024 * 1024
"""Largest score file (64 MiB: a long orchestral MusicXML is a few tens of MiB)."""
MAX_ARCHIVE_BYTES = 64 * 1024 * 1024
"""Largest total uncompressed size of the members of an ``.mxl`` archive."""
MAX_ARCHIVE_MEMBERS = 256
"""Most members an ``.mxl`` archive may hold (a score, its container, a few images)."""


def check_score_file(path: str | Path) -> None:
    """Raise ``ScoreError`` unless ``path`` is a regular file within the size bounds (and,
    for a zip archive, within the member count and uncompressed size bounds)."""
    path = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; nothing is read from it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as err:
        raise ScoreError(f"{path}: cannot read the file: {err.strerror or err}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ScoreError(f"{path}: a folder, not a score file")
        if not stat.S_ISREG(info.st_mode):
            raise ScoreError(f"{path}: not a regular file (a pipe, socket or device)")
        if info.st_size > MAX_SCORE_BYTES:
            raise ScoreError(f"{path}: {info.st_size} bytes; a score file may hold at most "
                             f"{MAX_SCORE_BYTES} bytes")
        if zipfile.is_zipfile(f):
            _check_archive(path, f)


def _check_archive(path: Path, f: BinaryIO) -> None:
    try:
        with zipfile.ZipFile(f) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as err:
        raise ScoreError(f"{path}: not a valid .mxl file: {err}") from None
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise ScoreError(f"{path}: an archive of {len(members)} members; at most "
                         f"{MAX_ARCHIVE_MEMBERS}")
    total = sum(m.file_size for m in members)
    if total > MAX_ARCHIVE_BYTES:
        raise ScoreError(f"{path}: an archive expanding to {total} bytes; at most "
                         f"{MAX_ARCHIVE_BYTES}")
