"""The command address space shared by OSC addresses and MQTT command topics.

``resolve("/livesinger/singer/alto/note/on")`` gives a ``Route``: the command kind, its
parameters (for signatures, error messages and MQTT payload fields), arguments carried in the
address itself (an expression name, a cue id) and the singer. ``Route.osc_cue`` then checks
OSC arguments against the signature and validates them into a ``Cue`` through ``make_cue``.
Every address is documented in ``docs/osc.md``; MQTT topics (``docs/mqtt.md``) are the same
paths under ``livesinger/<show>/cmd/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from streams.cue import Cue, CueError, make_cue, name

AUTH = "auth"
"""``Route.kind`` of ``/livesinger/auth`` and QLab's ``/connect`` (not a ``Cue``)."""

NUMBER_TAGS = frozenset("ihfd")
"""OSC type tags accepted where a number is expected (int32, int64, float32, float64)."""


@dataclass(frozen=True, slots=True)
class Param:
    """One argument of a command."""

    name: str
    """Its name: the ``make_cue`` argument and the MQTT payload field."""
    type: Literal["i", "f", "s"]
    """What it is documented as; ``i`` and ``f`` both accept any OSC number."""
    optional: bool = False
    """Whether it may be left out (only trailing parameters are optional)."""

    def __str__(self) -> str:
        text = f"{self.type}:{self.name}"
        return f"[{text}]" if self.optional else text


@dataclass(frozen=True, slots=True)
class Route:
    """Where an address leads: a command kind and what the address itself carries."""

    kind: str
    """A ``CueKind`` or ``AUTH``."""
    params: tuple[Param, ...]
    """The arguments the command takes, in OSC order."""
    fixed: dict[str, object] = field(default_factory=dict)
    """Arguments taken from the address (``expr/<name>``, ``cue/<id>/start``)."""
    singer: str | None = None
    """From ``/livesinger/singer/<name>/...``."""

    @property
    def signature(self) -> str:
        """E.g. ``i:pitch [f:velocity] [s:syllable]``; ``(no arguments)`` when empty."""
        return " ".join(str(p) for p in self.params) or "(no arguments)"

    def osc_args(self, address: str, tags: str, values: list[object]) -> dict[str, object]:
        """OSC arguments (type ``tags`` and parsed ``values``) by parameter name.

        Raises ``CueError`` naming the expected signature on a wrong count or type.
        """
        if "[" in tags:
            raise CueError(f"{shown(address)} expects {self.signature}; "
                           "OSC arrays are not accepted")
        required = sum(1 for p in self.params if not p.optional)
        if not required <= len(values) <= len(self.params):
            raise CueError(f"{shown(address)} expects {self.signature}; got {len(values)} "
                           f"argument{'s' if len(values) != 1 else ''} (,{tags})")
        if len(tags) != len(values):
            raise CueError(f"{shown(address)}: type tags ,{tags} do not match "
                           f"{len(values)} values")
        out: dict[str, object] = {}
        given = self.params[:len(values)]
        for i, (param, tag, value) in enumerate(zip(given, tags, values, strict=True)):
            want_number = param.type in ("i", "f")
            if (want_number and tag not in NUMBER_TAGS) or (not want_number and tag != "s"):
                what = "a number (i or f)" if want_number else "a string (s)"
                raise CueError(f"{shown(address)} expects {self.signature}; argument {i + 1} "
                               f"({param.name}) must be {what}, got {tag} {_short(value)}")
            out[param.name] = value
        return out

    def osc_cue(self, address: str, tags: str, values: list[object], *,
                at_sample: int | None, source: str) -> Cue:
        """Validate an OSC message into a ``Cue`` (``CueError`` says what was wrong)."""
        args = {**self.fixed, **self.osc_args(address, tags, values)}
        return make_cue(self.kind, args, singer=self.singer, at_sample=at_sample,
                        source=source)


_COMMANDS: dict[str, tuple[Param, ...]] = {
    "song/load": (Param("song", "s"),),
    "song/play": (Param("beat", "f", optional=True),),
    "song/stop": (),
    "song/seek": (Param("beat", "f"),),
    "tempo": (Param("bpm", "f"),),
    "lyric": (Param("text", "s"),),
    "note/on": (Param("pitch", "i"), Param("velocity", "f", optional=True),
                Param("syllable", "s", optional=True)),
    "note/off": (Param("pitch", "i"),),
    "voice": (Param("name", "s"),),
    "go": (),
    "thump": (),
    "panic": (),
    "playhead": (Param("id", "s"),),
    "perform/note_on": (Param("pitch", "i"), Param("velocity", "f", optional=True)),
    "perform/note_off": (Param("pitch", "i"),),
    "follow/start": (Param("part", "s"), Param("input", "s", optional=True)),
    "follow/stop": (),
    "backing/gain": (Param("stem", "s"), Param("db", "f"), Param("fade_s", "f", optional=True)),
    "backing/mute": (Param("stem", "s"), Param("on", "i"), Param("fade_s", "f", optional=True)),
    "chain/preset": (Param("preset", "s"),),
    "chain/set": (Param("param", "s"), Param("value", "f")),
}
"""Static commands under ``/livesinger/``: path -> parameters (kind = path with ``.``)."""

_KIND = {"song/load": "song.load", "song/play": "song.play", "song/stop": "song.stop",
         "song/seek": "song.seek", "note/on": "note.on", "note/off": "note.off",
         "perform/note_on": "perform.note_on", "perform/note_off": "perform.note_off",
         "follow/start": "follow.start", "follow/stop": "follow.stop",
         "backing/gain": "backing.gain", "backing/mute": "backing.mute",
         "chain/preset": "chain.set", "chain/set": "chain.set"}
_QLAB = frozenset({"go", "thump", "panic"})
"""Commands QLab habits send at the root (plus ``/cue/<id>/start|stop`` and ``/connect``)."""
_AUTH_PARAMS = (Param("token", "s"),)


class UnknownAddress(CueError):
    """An address nothing answers to."""


def unknown(address: str) -> UnknownAddress:
    """The error for an address nothing answers to."""
    return UnknownAddress(f"unknown address {shown(address)} (see docs/osc.md)")


def shown(text: str, limit: int = 200) -> str:
    """``text`` as it may appear in a one-line message: itself when printable, else its
    ``repr`` (a newline or NUL from a sender must not split a reply or a log line)."""
    text = text[:limit]
    return text if text.isprintable() else repr(text)


def resolve(address: str) -> Route:
    """The route for an OSC address, else ``UnknownAddress`` (or ``CueError`` for a bad
    singer name).

    No OSC pattern matching: ``*``, ``?``, ``[]`` and ``{}`` are not expanded (a singer or
    cue id holding them is refused by name validation).
    """
    if not address.startswith("/") or len(address) > 512:
        raise unknown(address[:80])
    parts = address[1:].split("/")
    namespaced = parts[0] == "livesinger"
    if namespaced:
        parts = parts[1:]
    singer: str | None = None
    if namespaced and len(parts) >= 3 and parts[0] == "singer":
        singer = name(parts[1], "singer")
        parts = parts[2:]
    path = "/".join(parts)
    if path in ("auth", "connect") and singer is None and (namespaced or path == "connect"):
        return Route(AUTH, _AUTH_PARAMS)
    if len(parts) == 3 and parts[0] == "cue" and parts[2] in ("start", "stop"):
        return Route(f"cue.{parts[2]}", (), {"id": parts[1]}, singer)
    if path in _QLAB or (namespaced and path in _COMMANDS):
        return Route(_KIND.get(path, path), _COMMANDS[path], {}, singer)
    if namespaced and len(parts) == 2 and parts[0] == "expr":
        return Route("expr", (Param("value", "f"),), {"name": parts[1]}, singer)
    raise unknown(address)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
