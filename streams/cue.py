"""``Cue``: the one command vocabulary every input surface (OSC, MQTT, web) parses into.

Anything that fails validation never becomes a ``Cue``: the surface raises ``CueError`` with
a message naming what was wrong, replies with it, and counts it.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field
from typing import Literal, Protocol

CueKind = Literal[
    "song.load", "song.play", "song.stop", "song.seek", "tempo",
    "lyric", "note.on", "note.off", "voice", "expr",
    "go", "cue.start", "cue.stop", "thump", "panic", "playhead",
    "perform.note_on", "perform.note_off", "follow.start", "follow.stop",
    "backing.gain", "backing.mute", "chain.set",
]

EXPRESSIONS = {
    # name: (min, max, what it does)
    "vibrato_depth": (0.0, 3.0, "vibrato depth, times the voice's own (1 = default)"),
    "vibrato_rate": (0.25, 3.0, "vibrato rate, times the voice's own"),
    "breathiness": (0.0, 4.0, "breath noise, times the voice's own"),
    "tension": (0.0, 1.0, "brightness of the source (0.5 = neutral)"),
    "volume": (0.0, 2.0, "loudness, linear (1 = default)"),
    "formant_shift": (0.7, 1.4, "scales every formant (1 = none; >1 brighter, younger)"),
}
"""Live expressions: name -> (minimum, maximum, meaning)."""

MAX_TEXT = 1000
MAX_VOICE_NAME = 64
"""Characters a voice name may hold (a bank's character name, in any script)."""


class CueError(ValueError):
    """A command that could not become a ``Cue``; the message says what was wrong."""


@dataclass(frozen=True, slots=True)
class Cue:
    """A validated command for the show.

    ``singer`` names the singer it addresses (``None`` = the lead / every singer for song
    commands). ``at_sample`` is the show sample it takes effect at (``None`` = at the next
    chunk boundary). ``args`` holds the command's validated arguments:

    - song.load ``{"song": str}`` (path or library name); song.play ``{"beat": float | None}``;
      song.stop ``{}``; song.seek ``{"beat": float}``; tempo ``{"bpm": float}``;
    - lyric ``{"text": str}``; note.on ``{"pitch": float, "velocity": float,
      "syllable": str | None}``; note.off ``{"pitch": float}``;
    - voice ``{"name": str}``; expr ``{"name": str, "value": float}``;
    - go ``{}``; cue.start / cue.stop ``{"id": str}``; thump ``{}``; panic ``{}``;
      playhead ``{"id": str}`` (stand by that cue: the next GO fires it);
    - perform.note_on ``{"pitch": float, "velocity": float}`` / perform.note_off
      ``{"pitch": float}``: the performer's note events for follow mode (heard at
      ``at_sample``, else on arrival); follow.start ``{"part": str}`` (arm follow mode on
      the loaded song's part: a name or a number from 1) ``{"part": str, "input": str |
      None}`` (``input``: ``FOLLOW_INPUTS``; ``None``: the command line's); follow.stop ``{}``;
    - backing.gain ``{"stem": str, "db": float, "fade_s": float}`` / backing.mute ``{"stem":
      str, "on": bool, "fade_s": float}``: a backing stem's gain or mute from ``at_sample``
      over ``fade_s`` (the program mix, docs/mix.md);
    - chain.set ``{"preset": str, "param": None, "value": None}`` or ``{"preset": None,
      "param": "EFFECT.PARAM", "value": float}``: the vocal chain of ``singer`` (``None``:
      every singer) from the next chunk mixed (docs/mix.md).
    """

    kind: CueKind
    args: dict[str, object] = field(default_factory=dict)
    singer: str | None = None
    at_sample: int | None = None
    source: str = ""


def number(value: object, what: str, low: float, high: float) -> float:
    """``value`` as a finite float within ``[low, high]``, else ``CueError`` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CueError(f"{what} must be a number, got {type(value).__name__} {value!r}")
    x = float(value)
    if not math.isfinite(x) or not low <= x <= high:
        raise CueError(f"{what} must be within {low:g}..{high:g}, got {value!r}")
    return x


def text(value: object, what: str, *, allow_empty: bool = False) -> str:
    """``value`` as a short string, else ``CueError`` naming ``what``."""
    if not isinstance(value, str):
        raise CueError(f"{what} must be a string, got {type(value).__name__} {value!r}")
    if not value.strip() and not allow_empty:
        raise CueError(f"{what} must not be empty")
    if len(value) > MAX_TEXT:
        raise CueError(f"{what} is too long ({len(value)} characters, at most {MAX_TEXT})")
    return value


def name(value: object, what: str) -> str:
    """A singer, voice, cue or expression name: letters, digits, ``_-.``."""
    s = text(value, what)
    if not all(c.isalnum() or c in "_-." for c in s) or len(s) > 64:
        raise CueError(f"{what} {s!r} may only hold letters, digits, '_', '-', '.'")
    return s


def voice_name(value: object, what: str = "voice") -> str:
    """A voice's name: any script (a bank's character name such as ``小测`` or
    ``初音ミク V3``), at most ``MAX_VOICE_NAME`` characters, no control or format
    characters, not blank."""
    s = text(value, what)
    if len(s) > MAX_VOICE_NAME:
        raise CueError(f"{what} name is too long ({len(s)} characters, at most "
                       f"{MAX_VOICE_NAME})")
    bad = next((c for c in s if unicodedata.category(c)[0] == "C"), None)
    if bad is not None:
        raise CueError(f"{what} {s!r} holds the control character U+{ord(bad):04X}")
    return s


FOLLOW_INPUTS = "notes, page, mic, mic:DEVICE, midi:PORT, midi:FILE.mid or a sound file"
"""What ``follow.start``'s ``input`` may name (resolved by ``stage.follow.desk``)."""
MAX_FOLLOW_INPUT = 200


def follow_input(value: object) -> str:
    """A performer input for ``follow.start`` (``FOLLOW_INPUTS``): its form only; whether
    it exists is the follow desk's to say."""
    s = text(value, "input").strip()
    if len(s) > MAX_FOLLOW_INPUT or s in ("midi", "midi:", "mic:") \
            or any(unicodedata.category(c)[0] == "C" for c in s):
        shown = s if len(s) <= 40 else s[:40] + "..."
        raise CueError(f"input {shown!r}: want {FOLLOW_INPUTS}")
    return s


def make_cue(kind: str, args: dict[str, object], *, singer: str | None = None,
             at_sample: int | None = None, source: str = "") -> Cue:
    """Validate a command into a ``Cue`` (the single place every surface goes through)."""
    a = dict(args)
    out: dict[str, object]
    if kind == "song.load":
        out = {"song": text(a.get("song"), "song")}
    elif kind == "song.play":  # no beat: from where the song was stopped or sought to
        beat = a.get("beat")
        out = {"beat": None if beat is None else number(beat, "beat", 0.0, 1e6)}
    elif kind == "song.seek":
        out = {"beat": number(a.get("beat"), "beat", 0.0, 1e6)}
    elif kind == "tempo":
        out = {"bpm": number(a.get("bpm"), "tempo (bpm)", 10.0, 400.0)}
    elif kind == "lyric":
        out = {"text": text(a.get("text"), "lyric")}
    elif kind == "note.on":
        syllable = a.get("syllable")
        out = {"pitch": number(a.get("pitch"), "pitch (MIDI)", 0.0, 127.0),
               "velocity": number(a.get("velocity", 0.8), "velocity", 0.0, 1.0),
               "syllable": None if syllable is None else text(syllable, "syllable")}
    elif kind == "note.off":
        out = {"pitch": number(a.get("pitch"), "pitch (MIDI)", 0.0, 127.0)}
    elif kind == "voice":
        out = {"name": voice_name(a.get("name"))}
    elif kind == "expr":
        ename = name(a.get("name"), "expression")
        if ename not in EXPRESSIONS:
            raise CueError(f"unknown expression {ename!r}; known: {', '.join(EXPRESSIONS)}")
        low, high, _ = EXPRESSIONS[ename]
        out = {"name": ename, "value": number(a.get("value"), ename, low, high)}
    elif kind == "perform.note_on":
        out = {"pitch": number(a.get("pitch"), "pitch (MIDI)", 0.0, 127.0),
               "velocity": number(a.get("velocity", 0.8), "velocity", 0.0, 1.0)}
    elif kind == "perform.note_off":
        out = {"pitch": number(a.get("pitch"), "pitch (MIDI)", 0.0, 127.0)}
    elif kind == "follow.start":
        out = {"part": text(a.get("part"), "part"),
               "input": None if a.get("input") in (None, "") else follow_input(a["input"])}
    elif kind == "backing.gain":
        out = {"stem": name(a.get("stem"), "stem"), "db": number(a.get("db"), "gain (dB)",
                                                                  -96.0, 24.0),
               "fade_s": number(a.get("fade_s", 0.0), "fade_s", 0.0, 60.0)}
    elif kind == "backing.mute":
        on = a.get("on")
        if on not in (0, 1):
            raise CueError(f"on must be 1 (mute) or 0 (unmute), got {on!r}")
        out = {"stem": name(a.get("stem"), "stem"), "on": bool(on),
               "fade_s": number(a.get("fade_s", 0.0), "fade_s", 0.0, 60.0)}
    elif kind == "chain.set":
        preset, param = a.get("preset"), a.get("param")
        if (preset is None) == (param is None):
            raise CueError("chain.set takes a preset, or a param with a value")
        if preset is not None:
            out = {"preset": name(preset, "chain preset"), "param": None, "value": None}
        else:
            out = {"preset": None, "param": name(param, "chain parameter"),
                   "value": number(a.get("value"), "chain parameter value", -1e6, 1e6)}
    elif kind in ("cue.start", "cue.stop", "playhead"):
        out = {"id": name(a.get("id"), "cue id")}
    elif kind in ("song.stop", "go", "thump", "panic", "follow.stop"):
        out = {}
    else:
        raise CueError(f"unknown command {kind!r}")
    if singer is not None:
        singer = name(singer, "singer")
    return Cue(kind, out, singer, at_sample, source)  # type: ignore[arg-type]


def describe(cue: Cue) -> str:
    """A cue in a few words, for logs and the console: ``song.load jasmine``,
    ``expr vibrato_depth 1.6 (alto)``."""
    words = [str(v) for v in cue.args.values() if v is not None]
    return " ".join([cue.kind, *words]) + (f" ({cue.singer})" if cue.singer else "")


class CueHandler(Protocol):
    """What the show offers every input surface (the Director implements it)."""

    async def handle(self, cue: Cue) -> object:
        """Apply or schedule ``cue``; returns reply data; raises ``CueError`` if refused."""
        ...

    def show_sample_at_unix(self, unix_s: float) -> int:
        """The show sample that plays at a wall-clock (Unix) time (for OSC timetags)."""
        ...

    def status(self) -> dict[str, object]:
        """The show's state for status publishing (song, position, notes, xruns, latency)."""
        ...
