"""Where to publish: ``janus:http://HOST:PORT/janus?room=N[&secret=S][&pin=P][&display=D]``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

PREFIX = "janus:"
KEYS = ("room", "secret", "pin", "display")
MAX_ROOM = 2**53 - 1  # Janus keeps numeric ids in a JSON number


class JanusTargetError(ValueError):
    """A ``--publish`` value that does not name a Janus room; the message says why."""


@dataclass(frozen=True, slots=True)
class JanusTarget:
    """A VideoRoom on a Janus server to publish the show into."""

    api_url: str
    """Janus's HTTP API, e.g. ``http://127.0.0.1:8088/janus``."""
    room: int
    """The VideoRoom's numeric id (created when missing)."""
    secret: str | None = None
    """The room's secret: set on a room this engine creates, needed for ``rtp_forward``."""
    pin: str | None = None
    """The room's PIN, where joining it needs one."""
    display: str = "livesinger"
    """The publisher's display name in the room."""

    def __str__(self) -> str:
        return f"janus:{self.api_url}?room={self.room}"  # never the secret


def parse_target(text: str) -> JanusTarget:
    """Read a ``--publish`` value (``JanusTargetError`` naming what is wrong)."""
    if not text.startswith(PREFIX):
        raise JanusTargetError(f"{text!r}: want janus:http://HOST:PORT/janus?room=N")
    parts = urlsplit(text[len(PREFIX):])
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise JanusTargetError(f"{text!r}: want janus:http://HOST:PORT/janus?room=N "
                               "(an http or https URL of Janus's API)")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise JanusTargetError(f"{text!r}: the port is not a number 0..65535") from None
    query: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in KEYS:
            raise JanusTargetError(f"{text!r}: unknown parameter {key!r} "
                                   f"(known: {', '.join(KEYS)})")
        if key in query:
            raise JanusTargetError(f"{text!r}: {key!r} given twice")
        query[key] = value
    room_text = query.get("room")
    if room_text is None:
        raise JanusTargetError(f"{text!r}: no room (add ?room=N)")
    if not room_text.isdigit() or not 1 <= int(room_text) <= MAX_ROOM:
        raise JanusTargetError(f"{text!r}: room {room_text!r} is not a number 1..{MAX_ROOM}")
    api_url = urlunsplit((parts.scheme, parts.netloc, parts.path or "/janus", "", ""))
    return JanusTarget(api_url, int(room_text), query.get("secret") or None,
                       query.get("pin") or None, query.get("display") or "livesinger")
