"""Declaring a song's backing audio: the sidecar ``<song>.backing.yaml`` beside the score,
or a ``backing:`` entry in a cue list (docs/songs.md)::

    offset_s: 0.0          # score time (s from beat 0) at which backing time 0 falls
    stems:
      - file: band.flac    # relative to the declaring file
        name: band         # default: the file's stem
        gain_db: 0
        mute: false

A single ``file: band.wav`` may stand for a one-stem ``stems`` list.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MAX_STEMS = 32
SIDECAR_SUFFIX = ".backing.yaml"
_STEM_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class BackingError(ValueError):
    """A backing declaration or file that cannot be used; the message names what and where."""


@dataclass(frozen=True, slots=True)
class StemSpec:
    """One stem: its file, name, initial gain and mute."""

    name: str
    path: Path
    gain_db: float = 0.0
    mute: bool = False


@dataclass(frozen=True, slots=True)
class BackingSpec:
    """A song's backing: its stems and where backing time 0 falls in score time."""

    stems: tuple[StemSpec, ...]
    offset_s: float = 0.0
    source: str = ""


def sidecar_for(score_path: str | Path) -> Path | None:
    """The ``<song>.backing.yaml`` beside a score file, ``None`` when there is none."""
    path = Path(score_path)
    sidecar = path.with_name(path.stem + SIDECAR_SUFFIX)
    return sidecar if sidecar.is_file() else None


def load_backing_spec(path: str | Path) -> BackingSpec:
    """Read and validate a sidecar file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise BackingError(f"{path}: cannot read: {err.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as err:
        raise BackingError(f"{path}: not YAML: {' '.join(str(err).split())}") from None
    return parse_backing(data, path.parent, str(path))


def parse_backing(data: Any, base_dir: Path, where: str) -> BackingSpec:
    """Validate a backing declaration (the sidecar's mapping); files relative to
    ``base_dir``; errors name ``where`` and the stem."""
    if not isinstance(data, dict):
        raise BackingError(f"{where}: expected a mapping with 'stems' (or 'file')")
    unknown = set(data) - {"stems", "file", "offset_s"}
    if unknown:
        raise BackingError(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))} "
                           "(known: stems, file, offset_s)")
    offset = _number(data.get("offset_s", 0.0), f"{where}: offset_s", -3600.0, 3600.0)
    if "file" in data and "stems" in data:
        raise BackingError(f"{where}: give 'file' or 'stems', not both")
    raw = [{"file": data["file"]}] if "file" in data else data.get("stems")
    if not isinstance(raw, list) or not raw:
        raise BackingError(f"{where}: 'stems' must be a non-empty list")
    if len(raw) > MAX_STEMS:
        raise BackingError(f"{where}: {len(raw)} stems, at most {MAX_STEMS}")
    stems = []
    for n, item in enumerate(raw, start=1):
        at = f"{where}: stem #{n}"
        if isinstance(item, str):
            item = {"file": item}
        if not isinstance(item, dict) or not isinstance(item.get("file"), str):
            raise BackingError(f"{at}: needs 'file'")
        extra = set(item) - {"file", "name", "gain_db", "mute"}
        if extra:
            raise BackingError(f"{at}: unknown keys {', '.join(sorted(map(str, extra)))}")
        path = (base_dir / item["file"]).expanduser()
        if not path.is_file():
            raise BackingError(f"{at}: {path}: backing file not found")
        name = str(item.get("name", path.stem))
        if not _STEM_NAME.match(name):
            raise BackingError(f"{at}: stem name {name!r}: 1-32 of A-Z a-z 0-9 _ . -")
        gain = _number(item.get("gain_db", 0.0), f"{at}: gain_db", -96.0, 24.0)
        mute = item.get("mute", False)
        if not isinstance(mute, bool):
            raise BackingError(f"{at}: mute must be true or false")
        stems.append(StemSpec(name, path, gain, mute))
    names = [s.name for s in stems]
    dupes = sorted({s for s in names if names.count(s) > 1})
    if dupes:
        raise BackingError(f"{where}: stem names repeat: {', '.join(dupes)}")
    return BackingSpec(tuple(stems), offset, where)


def files_spec(files: list[str], offset_s: float = 0.0) -> BackingSpec:
    """A spec from command-line files (one stem each, named after the file)."""
    stems = [{"file": str(Path(f).resolve())} for f in files]
    names = [re.sub(r"[^A-Za-z0-9_.-]", "_", Path(f).stem)[:28] or "stem" for f in files]
    for i, name in enumerate(names):  # the same file name twice: number the repeats
        stems[i]["name"] = f"{name}.{i + 1}" if names.count(name) > 1 else name
    return parse_backing({"stems": stems, "offset_s": offset_s}, Path("/"), "--backing")


def _number(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BackingError(f"{where}: expected a number, got {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise BackingError(f"{where}: {value} is out of {low:g}..{high:g}")
    return float(value)
