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

from singer.mix.backing_spec import BackingError, BackingSpec, parse_backing
from streams.cue import Cue, CueError, make_cue
from streams.osc_address import shown

MAIN_ARGUMENT = {"song.load": "song", "song.play": "beat", "song.seek": "beat", "tempo": "bpm",
                 "lyric": "text", "voice": "name", "note.off": "pitch"}


MAX_CUES = 2000
MAX_COMMANDS = 64
"""Cues a list holds and commands a cue fires, at most (YAML aliases cannot multiply them)."""


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
            raise CueListError("duplicate cue ids: "
                               + ", ".join(shown(d, 80) for d in sorted(dupes)))
        self.entries = entries
        self._playhead = 0
        self.last_fired: str | None = None
        """Id of the cue fired last (what is playing, as far as the list knows)."""
        self.backing: dict[str, BackingSpec] = {}
        """Song name → its backing, from the file's ``backing:`` mapping (docs/mix.md)."""

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
        self.last_fired = entry.id

    def stand_by(self, cue_id: str) -> CueEntry:
        """Put the playhead on the cue ``cue_id``: the next GO fires it (``CueError`` when
        there is no such cue)."""
        entry = self.find(cue_id)
        self._playhead = self.entries.index(entry)
        return entry

    def peek_id(self) -> str | None:
        """Id of the cue ``/go`` would fire next."""
        return self.entries[self._playhead].id if self._playhead < len(self.entries) else None


def load_cue_list(path: str | Path) -> CueList:
    """Read and validate a cue list file (YAML or JSON)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise CueListError(f"{path}: cannot read: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise CueListError(f"{path}: not UTF-8 text (byte {err.start})") from None
    return parse_cue_list(text, str(path))


def parse_cue_list(text: str, path: str = "cue list") -> CueList:
    """Validate the text of a cue list file (YAML or JSON); errors name ``path``, the cue and
    the command."""
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as err:  # PyYAML recurses into nested collections
        raise CueListError(f"{path}: not YAML/JSON: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cues"), list):
        raise CueListError(f"{path}: expected a mapping with a 'cues' list")
    if len(data["cues"]) > MAX_CUES:
        raise CueListError(f"{path}: {len(data['cues'])} cues, at most {MAX_CUES}")
    entries = []
    for n, raw in enumerate(data["cues"], start=1):
        if not isinstance(raw, dict) or "id" not in raw or not isinstance(raw.get("do"), list):
            raise CueListError(f"{path}: cue #{n}: needs 'id' and a 'do' list of commands")
        cue_id = str(raw["id"])
        shown_id = shown(cue_id, 80)
        if len(raw["do"]) > MAX_COMMANDS:
            raise CueListError(f"{path}: cue {shown_id}: {len(raw['do'])} commands, at most "
                               f"{MAX_COMMANDS}")
        commands = []
        for k, command in enumerate(raw["do"], start=1):
            where = f"{path}: cue {shown_id} command {k}"
            if not isinstance(command, dict) or len(command) != 1:
                raise CueListError(f"{where}: write one 'kind: value' per command")
            ((kind, value),) = command.items()
            args = value if isinstance(value, dict) else (
                {} if value is None else {MAIN_ARGUMENT.get(str(kind), "value"): value})
            if kind in ("go", "cue.start", "cue.stop", "playhead"):
                raise CueListError(f"{where}: a cue cannot fire other cues")
            try:
                commands.append(make_cue(str(kind), args, singer=args.pop("singer", None)
                                         if isinstance(args, dict) else None,
                                         source=str(path)))
            except CueError as err:
                raise CueListError(f"{where}: {err}") from None
        entries.append(CueEntry(cue_id, str(raw.get("name", "")), tuple(commands)))
    try:
        cue_list = CueList(entries)
    except CueListError as err:
        raise CueListError(f"{path}: {err}") from None
    cue_list.backing = _backing(data.get("backing"), path)
    return cue_list


def _backing(raw: object, path: str) -> dict[str, BackingSpec]:
    """``backing: {SONG: {stems: [...], offset_s: S}}``; files relative to the cue file."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise CueListError(f"{path}: 'backing' must map song names to their backing")
    try:
        return {str(song): parse_backing(spec, Path(path).parent,
                                         f"{path}: backing {shown(str(song), 80)}")
                for song, spec in raw.items()}
    except BackingError as err:
        raise CueListError(str(err)) from None


def dump_cue_list(cue_list: CueList) -> str:
    """The cue list in the file format ``load_cue_list`` reads (YAML; arguments as
    mappings, so every command reads back the same)."""
    cues = []
    for entry in cue_list.entries:
        commands: list[dict[str, object]] = []
        for cue in entry.commands:
            args = {k: v for k, v in cue.args.items() if v is not None}
            if cue.singer is not None:
                args["singer"] = cue.singer
            commands.append({cue.kind: args or None})
        cues.append({"id": entry.id, "name": entry.name, "do": commands})
    return str(yaml.safe_dump({"cues": cues}, allow_unicode=True, sort_keys=False))
