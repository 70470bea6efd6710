"""The director's console WebSocket (``GET /director/ws``): cues in, the show's state out.

One WebSocket per open console page, on the engine's web server (aiohttp). Text frames of
JSON, in both directions (docs/director.md):

- in: ``{"id": 7, "command": "go", "args": {}, "singer": null}`` — any command of the cue
  vocabulary, validated by ``streams.cue.make_cue`` exactly as OSC and MQTT are, then applied
  by the show; or ``{"id": 8, "command": "cues.load", "args": {"text": "<cue file>"}}``, which
  replaces the cue list (the ``--cues`` file format). Each is answered
  ``{"type": "reply", "id", "data"}`` or ``{"type": "error", "id", "error": "<one line>"}``.
- out: ``{"type": "hello", ...}`` once (songs, voices, expressions, limits), then
  ``{"type": "state", ...}`` to every console at least every ``push_period_s`` and right after
  each cue (show status, cue list, song, meters, health, the event log).

Bad input never disturbs the show: a frame over ``max_frame_bytes``, a binary frame, bad
JSON, an unknown or invalid command each get an error reply and the connection stays; past
``close_above_bytes`` the connection is closed (1009). Each console may send ``rate_per_s``
messages a second (bursts of ``burst``); past that its messages are dropped unread and one
error reply says so. Each console has a bounded queue of states (``queue_size``): a console
that reads slowly loses the oldest states, never the show's time.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from streams.cue import EXPRESSIONS, Cue, CueError, describe, make_cue
from streams.level_meter import LevelMeter
from streams.rate_limit import SourceLimits
from streams.web_guard import BadRequest, foreign_origin, one_line

log = logging.getLogger(__name__)

CONSOLE_COMMANDS = frozenset({"cues.load"})
"""Commands the console answers itself (they change the console's cue list, not the sound)."""
MAX_EVENTS = 200
EVENTS_SENT = 40
"""The event log keeps this many events; each state carries the latest ``EVENTS_SENT``."""


class ConsoleShow(Protocol):
    """What the console needs of the show (the Director offers it)."""

    async def handle(self, cue: Cue) -> object:
        """Apply ``cue`` (``CueError`` if refused)."""
        ...

    def status(self) -> dict[str, object]:
        """The show's state."""
        ...

    def song_state(self) -> dict[str, object]:
        """The loaded song: tempo, bars, the current lyric line."""
        ...

    def cue_list_state(self) -> dict[str, object]:
        """The cue list: entries, the cue standing by, the one fired last."""
        ...

    def load_cue_text(self, text: str) -> dict[str, object]:
        """Replace the cue list with one in the ``--cues`` file format (``CueError``)."""
        ...

    def cue_file(self) -> str:
        """The cue list in the ``--cues`` file format."""
        ...


@dataclass(frozen=True, slots=True)
class ConsoleLimits:
    """What one console may send and how much is kept for it."""

    max_frame_bytes: int = 64 * 1024
    """A text frame larger than this is answered with an error, unread."""
    close_above_bytes: int = 1024 * 1024
    """A frame larger than this closes the connection (1009) before it is read whole."""
    rate_per_s: float = 50.0
    """Messages a console may send a second (a keyboard played fast sends ~20)."""
    burst: float = 100.0
    """Messages a console may send at once."""
    queue_size: int = 8
    """States kept for a console that reads slowly (the oldest is dropped)."""
    max_consoles: int = 16
    """Consoles open at once (more are answered 503)."""
    push_period_s: float = 0.05
    """The longest time between two states (meters move at this rate)."""


@dataclass
class _Console:
    id: int
    ws: web.WebSocketResponse
    remote: str
    queue: deque[str]
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    throttled: bool = False
    dropped_messages: int = 0
    dropped_states: int = 0


class DirectorSocket:
    """Serves the console WebSocket and broadcasts the show's state (``run``, supervised)."""

    def __init__(self, show: ConsoleShow, *, meter: LevelMeter | None = None,
                 health: Callable[[], dict[str, object]] | None = None,
                 catalog: Callable[[], dict[str, object]] | None = None,
                 limits: ConsoleLimits | None = None) -> None:
        """``health`` gives what the console shows besides the show's status (viewers,
        mocap, OSC/MQTT counters...); ``catalog`` the songs and voices to choose from."""
        self.show = show
        self.meter = meter
        self.health = health or dict
        self.catalog = catalog or dict
        self.limits = limits or ConsoleLimits()
        self._consoles: dict[int, _Console] = {}
        self._ids = itertools.count(1)
        self._rates = SourceLimits(self.limits.rate_per_s, self.limits.burst,
                                   max_sources=4 * self.limits.max_consoles)
        self._changed = asyncio.Event()
        self._seq = 0
        self._last_counts: dict[str, int] = {}
        self.events: deque[dict[str, object]] = deque(maxlen=MAX_EVENTS)
        """The event log: ``{"t": "HH:MM:SS", "level": "info"|"warn"|"error", "text"}``."""
        self.errors_sent = 0
        """Error replies sent to consoles."""
        self.messages_dropped = 0
        """Messages dropped unread (a console over its rate)."""

    @property
    def consoles(self) -> int:
        """Consoles connected now."""
        return len(self._consoles)

    def event(self, text: str, level: str = "info") -> None:
        """Add a line to the event log (every console sees it with the next state)."""
        self.events.append({"t": time.strftime("%H:%M:%S"), "level": level,
                            "text": one_line(text)})
        self._changed.set()

    # -- the broadcaster --------------------------------------------------------------

    async def run(self) -> None:
        """Send the state to every console right after a change and at least every
        ``push_period_s`` (runs for the whole show; supervised)."""
        loop = asyncio.get_running_loop()
        while True:
            # a timer, not wait_for: wait_for can swallow a cancellation that meets its timeout
            timer = loop.call_later(self.limits.push_period_s, self._changed.set)
            try:
                await self._changed.wait()
            finally:
                timer.cancel()
            self._changed.clear()
            if not self._consoles:
                if self.meter is not None:
                    self.meter.read()  # a fresh window for the next console
                continue
            message = json.dumps(self.state(), default=str, allow_nan=False)
            for console in list(self._consoles.values()):
                if len(console.queue) == console.queue.maxlen:
                    console.dropped_states += 1  # drop-oldest: the deque pushes it out
                console.queue.append(message)
                console.ready.set()

    def state(self) -> dict[str, object]:
        """Everything a console shows, as one JSON-ready message."""
        self._seq += 1
        status = self.show.status()
        self._note_counts(status)
        return {
            "type": "state", "seq": self._seq, "time_ms": round(time.time() * 1000),
            "show": status,
            "cues": self.show.cue_list_state(),
            "song": self.show.song_state(),
            "meters": self.meter.read() if self.meter is not None else None,
            "health": {**self.health(), "consoles": len(self._consoles),
                       "console_errors": self.errors_sent,
                       "console_dropped": self.messages_dropped},
            "events": list(self.events)[-EVENTS_SENT:],
        }

    def _note_counts(self, status: dict[str, object]) -> None:
        """Log the show's new xruns and late edits (once per state, with how many)."""
        for key, what in (("xruns", "xrun"), ("late_edits", "late edit")):
            value = status.get(key)
            if not isinstance(value, int):
                continue
            before = self._last_counts.get(key, value)
            self._last_counts[key] = value
            if value > before:
                n = value - before
                self.event(f"{n} {what}{'s' if n > 1 else ''} (total {value})", "warn")

    # -- one console ------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The ``GET /director/ws`` route (the web server checked the control right)."""
        refusal = origin_refusal(request)
        if refusal:
            raise BadRequest(403, refusal)
        if len(self._consoles) >= self.limits.max_consoles:
            raise BadRequest(503, f"too many director consoles open (at most "
                                  f"{self.limits.max_consoles})")
        ws = web.WebSocketResponse(max_msg_size=self.limits.close_above_bytes, heartbeat=20)
        await ws.prepare(request)
        console = _Console(next(self._ids), ws, request.remote or "unknown",
                           deque(maxlen=self.limits.queue_size))
        self._consoles[console.id] = console
        self.event(f"console {console.id} joined from {console.remote}")
        sender = asyncio.create_task(self._run_sender(console))
        try:
            hello = {"type": "hello", "console": console.id, **self.catalog(),
                     "expressions": {k: [lo, hi, meaning]
                                     for k, (lo, hi, meaning) in EXPRESSIONS.items()},
                     "limits": {"max_frame_bytes": self.limits.max_frame_bytes,
                                "rate_per_s": self.limits.rate_per_s}}
            await ws.send_str(json.dumps(hello, default=str))
            self._changed.set()  # its first state right away
            await self._run_receiver(console)
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            self._consoles.pop(console.id, None)
            self._rates.forget(console.id)
            self.event(f"console {console.id} left")
        return ws

    async def _run_sender(self, console: _Console) -> None:
        """Hand the console its queued states, oldest first."""
        while not console.ws.closed:
            await console.ready.wait()
            console.ready.clear()
            while console.queue and not console.ws.closed:
                await console.ws.send_str(console.queue.popleft())

    async def _run_receiver(self, console: _Console) -> None:
        ws = console.ws
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await self._on_text(console, msg.data)
            elif msg.type == WSMsgType.BINARY:
                await self._on_bad(console, None, "binary frames are not taken: send JSON text")
            elif msg.type == WSMsgType.ERROR:
                log.debug("console %d: %s", console.id, ws.exception())
                break

    async def _on_text(self, console: _Console, text: str) -> None:
        if not self._rates.take(console.id):
            self.messages_dropped += 1
            console.dropped_messages += 1
            if not console.throttled:
                console.throttled = True
                self.event(f"console {console.id} sends too fast: messages dropped", "warn")
                await self._reply_error(
                    console, None, f"too many messages (at most {self.limits.rate_per_s:g} a "
                    "second): dropped unread until you slow down")
            return
        console.throttled = False
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self.limits.max_frame_bytes:
            await self._on_bad(console, None, f"message of {size} bytes is over the limit "
                                              f"of {self.limits.max_frame_bytes} bytes")
            return
        try:
            body = json.loads(text, parse_constant=_no_constant)
        except RecursionError:
            await self._on_bad(console, None, "message is not JSON we take: nested too deeply")
            return
        except ValueError as err:
            await self._on_bad(console, None, f"message is not JSON: {err}")
            return
        if not isinstance(body, dict) or not isinstance(body.get("command"), str):
            await self._on_bad(console, _id_of(body),
                               'expected {"command": "...", "args": {...}, "singer": ...}')
            return
        ident = _id_of(body)
        args = body.get("args") or {}
        if not isinstance(args, dict):
            await self._on_bad(console, ident, "'args' must be an object")
            return
        try:
            data = await self._apply(console, body["command"], args, body.get("singer"))
        except CueError as err:
            await self._on_bad(console, ident, str(err))
            return
        except Exception:  # a defect of ours: logged once, the console and the show go on
            log.exception("console %d: error applying %s", console.id, body["command"])
            await self._on_bad(console, ident, "internal error (see the engine's log)")
            return
        self._changed.set()
        await _send(console, {"type": "reply", "id": ident, "data": data})

    async def _apply(self, console: _Console, command: str, args: dict[str, Any],
                     singer: object) -> object:
        if command == "cues.load":
            source = args.get("text")
            if not isinstance(source, str):
                raise CueError("cues.load needs {\"text\": \"<cue list file>\"}")
            loaded = self.show.load_cue_text(source)
            self.event(f"console {console.id} loaded a cue list of {loaded.get('cues')} cues")
            return loaded
        cue = make_cue(command, args, singer=singer,  # type: ignore[arg-type]
                       source=f"console {console.id}")
        reply = await self.show.handle(cue)
        if cue.kind in ("go", "cue.start", "panic", "song.load", "cue.stop"):
            self.event(f"console {console.id}: {describe(cue)}"
                       + (f" → cue {reply.get('cue')}" if isinstance(reply, dict)
                          and reply.get("cue") else ""))
        return reply

    async def _on_bad(self, console: _Console, ident: object, message: str) -> None:
        self.event(f"console {console.id}: {message}", "error")
        await self._reply_error(console, ident, message)

    async def _reply_error(self, console: _Console, ident: object, message: str) -> None:
        self.errors_sent += 1
        await _send(console, {"type": "error", "id": ident, "error": one_line(message)})


async def _send(console: _Console, message: dict[str, object]) -> None:
    if not console.ws.closed:
        await console.ws.send_str(json.dumps(message, default=str))


def _id_of(body: object) -> object:
    """The request id a console gave (a short string or an integer), else ``None``."""
    ident = body.get("id") if isinstance(body, dict) else None
    if isinstance(ident, bool) or not isinstance(ident, int | str):
        return None
    return ident if isinstance(ident, int) or len(ident) <= 64 else None


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def origin_refusal(request: web.Request) -> str | None:
    """Why a WebSocket upgrade comes from a page of another site, or ``None``.

    Browsers send ``Origin`` with every WebSocket; it must be this server. An upgrade
    without it is not a page's (a script), and is left to the token."""
    return foreign_origin(request, "WebSocket")
