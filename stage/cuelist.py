"""A cue list, QLab-style: numbered cues of commands, fired by ``/go`` or by id.

File format (YAML or JSON)::

    cues:
      - id: "1"
        name: Jasmine, soprano
        do:
          - song.load: jasmine
          - voice: soprano
          - song.play: 0          # or {beat: 0}
      - id: "2"
        do:
          - expr: {name: vibrato_depth, value: 1.6}

Each command is ``kind: value`` where value is the command's main argument or a mapping of
its arguments (see ``docs/osc.md`` for the commands). Every command is validated when the
file is loaded; an error names the cue and the command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from streams.cue import Cue, CueError, make_cue

MAIN_ARGUMENT = {"song.load": "song", "song.play": "beat", "song.seek": "beat", "tempo": "bpm",
                 "lyric": "text", "voice": "name", "note.off": "pitch"}


class CueListError(ValueError):
    """A cue list file that cannot be used; the message names the file, cue and command."""


@dataclass(frozen=True, slots=True)
class CueEntry:
    """One cue: an id, a name and the commands it fires together."""

    id: str
    name: str
    commands: tuple[Cue, ...]


class CueList:
    """Ordered cues with a playhead: ``next()`` is what ``/go`` fires."""

    def __init__(self, entries: list[CueEntry]) -> None:
        ids = [e.id for e in entries]
        dupes = {i for i in ids if ids.count(i) > 1}
        if dupes:
            raise CueListError(f"duplicate cue ids: {', '.join(sorted(dupes))}")
        self.entries = entries
        self._playhead = 0

    def next(self) -> CueEntry:
        """The cue at the playhead (``CueError`` at the end of the list)."""
        if self._playhead >= len(self.entries):
            raise CueError("end of the cue list: nothing left to GO"
                           if self.entries else "no cue list loaded (serve --cues FILE)")
        return self.entries[self._playhead]

    def find(self, cue_id: str) -> CueEntry:
        """The cue called ``cue_id`` (``CueError`` naming the known ids otherwise)."""
        for entry in self.entries:
            if entry.id == cue_id:
                return entry
        known = ", ".join(e.id for e in self.entries) or "none"
        raise CueError(f"unknown cue {cue_id!r}; cues: {known}")

    def started(self, entry: CueEntry) -> None:
        """Move the playhead after a cue that was just fired."""
        self._playhead = self.entries.index(entry) + 1

    def peek_id(self) -> str | None:
        """Id of the cue ``/go`` would fire next."""
        return self.entries[self._playhead].id if self._playhead < len(self.entries) else None


def load_cue_list(path: str | Path) -> CueList:
    """Read and validate a cue list file (YAML or JSON)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise CueListError(f"{path}: cannot read: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise CueListError(f"{path}: not YAML/JSON: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cues"), list):
        raise CueListError(f"{path}: expected a mapping with a 'cues' list")
    entries = []
    for n, raw in enumerate(data["cues"], start=1):
        if not isinstance(raw, dict) or "id" not in raw or not isinstance(raw.get("do"), list):
            raise CueListError(f"{path}: cue #{n}: needs 'id' and a 'do' list of commands")
        cue_id = str(raw["id"])
        commands = []
        for k, command in enumerate(raw["do"], start=1):
            where = f"{path}: cue {cue_id} command {k}"
            if not isinstance(command, dict) or len(command) != 1:
                raise CueListError(f"{where}: write one 'kind: value' per command")
            ((kind, value),) = command.items()
            args = value if isinstance(value, dict) else (
                {} if value is None else {MAIN_ARGUMENT.get(str(kind), "value"): value})
            if kind in ("go", "cue.start", "cue.stop"):
                raise CueListError(f"{where}: a cue cannot fire other cues")
            try:
                commands.append(make_cue(str(kind), args, singer=args.pop("singer", None)
                                         if isinstance(args, dict) else None,
                                         source=str(path)))
            except CueError as err:
                raise CueListError(f"{where}: {err}") from None
        entries.append(CueEntry(cue_id, str(raw.get("name", "")), tuple(commands)))
    return CueList(entries)
