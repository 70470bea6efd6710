"""Malformed input for the soak: byte mutators and a flooder of every network surface.

Runs in a process of its own (``python -m stage.soak.flood``) so the flood's own CPU does not
count as the engine's: it sends broken OSC over UDP and TCP (SLIP), broken JSON to ``/cue``,
broken SDP to ``/whep``, broken frames to the console WebSocket and broken MQTT commands, each
surface at a bounded rate, on loopback only, until told to stop (SIGINT/SIGTERM) or its time
is up; then it prints one JSON line of what it sent per surface.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from streams.slip import encode as slip_encode
from streams.vmc import osc_message

SEEDS_OSC = (
    osc_message("/livesinger/note/on", "ifs", 60, 0.8, "la"),
    osc_message("/livesinger/expr/tension", "f", 0.5),
    osc_message("/livesinger/song/load", "s", "twinkle"),
    b"#bundle\0" + struct.pack(">Q", 1) + struct.pack(">i", 16)
    + osc_message("/livesinger/go", ""),
)
"""Well-formed OSC packets whose mutations reach past a parser's first check."""

SEEDS_JSON = (
    b'{"command": "note.on", "args": {"pitch": 60, "syllable": "la"}}',
    b'{"command": "expr", "args": {"name": "tension", "value": 0.5}}',
    b'{"command": "song.load", "args": {"song": "twinkle"}}',
)

SEED_SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
            b"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=recvonly\r\n")


def mutate(seed: bytes, rng: random.Random) -> bytes:
    """``seed`` with a few bytes flipped, cut, repeated or inserted (or pure noise)."""
    data = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        how = rng.randrange(5)
        at = rng.randrange(len(data) + 1)
        if how == 0 and data:
            data[min(at, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif how == 1:
            del data[at:at + rng.randint(1, 8)]
        elif how == 2:
            data[at:at] = data[at:at + rng.randint(1, 16)] * rng.randint(2, 4)
        elif how == 3:
            data[at:at] = rng.randbytes(rng.randint(1, 8))
        else:
            data = bytearray(rng.randbytes(rng.randint(0, 64)))
    return bytes(data)


def broken_json(rng: random.Random) -> bytes:
    """A JSON body that cannot become a cue: cut short, so never valid JSON."""
    body = mutate(rng.choice(SEEDS_JSON), rng)
    return body[:max(0, len(body) - 1 - rng.randrange(4))] + b"{"


FLOOD_SOURCE = "127.0.0.2"
"""Loopback address the flood sends from (Linux answers all of 127/8)."""

SURFACES = ("osc_udp", "osc_tcp", "http_cue", "http_whep", "websocket", "mqtt")
RATES_PER_S = {"osc_udp": 420.0, "osc_tcp": 120.0, "http_cue": 25.0, "http_whep": 5.0,
               "websocket": 40.0, "mqtt": 60.0}
"""Malformed inputs per second per surface: about 670/s, 1.2 million in 30 minutes."""
MAX_BEHIND_S = 1.0
"""A surface this far behind its schedule starts a new one (no burst to catch up)."""


class Flood:
    """Sends malformed input to every surface of one show; ``sent`` counts per surface."""

    def __init__(self, host: str, osc_port: int, http_port: int, mqtt_port: int | None,
                 show: str = "default", seed: int = 0, rate_scale: float = 1.0,
                 source: str = FLOOD_SOURCE) -> None:
        self.host, self.osc_port, self.http_port = host, osc_port, http_port
        self.mqtt_port, self.show = mqtt_port, show
        self.rng = random.Random(seed)
        self.rate_scale = rate_scale
        self.source = source
        """The loopback address the flood sends from: not the show's own clients' (each
        surface limits refused requests per source address)."""
        self.sent = {surface: 0 for surface in SURFACES}
        self.errors = {surface: 0 for surface in SURFACES}
        self._origin: dict[str, float] = {}  # when each surface's schedule started
        """Connections refused or dropped (the surface said no, or was restarting)."""

    async def run(self, seconds: float, stop: asyncio.Event) -> None:
        """Flood until ``stop`` or ``seconds``."""
        loops = [("osc_udp", self._osc_udp), ("osc_tcp", self._osc_tcp),
                 ("http_cue", self._http), ("websocket", self._websocket)]
        if self.mqtt_port is not None:
            loops.append(("mqtt", self._mqtt))
        tasks = [asyncio.ensure_future(self._guard(name, f, stop)) for name, f in loops]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _guard(self, surface: str, loop: Callable[[asyncio.Event], Awaitable[None]],
                     stop: asyncio.Event) -> None:
        """Run one surface's loop again whenever its connection fails (counted)."""
        while not stop.is_set():
            try:
                await loop(stop)
            except asyncio.CancelledError:
                return
            except Exception:  # refused or dropped (aiohttp, aiomqtt, OSError): the surface
                self.errors[surface] += 1  # went away for a while (the broker's restart)
                await asyncio.sleep(0.2)

    async def _paced(self, surface: str, stop: asyncio.Event, batch: int) -> None:
        """Sleep until ``surface``'s next batch of ``batch`` is due on its schedule, so the
        rate holds whatever the sending took (a loaded machine); a surface more than
        ``MAX_BEHIND_S`` behind (it was away: the broker's restart) drops that debt."""
        rate = RATES_PER_S[surface] * self.rate_scale
        now = time.monotonic()
        sent = self.sent[surface]
        origin = self._origin.setdefault(surface, now - sent / rate)
        due = origin + sent / rate
        if now - due > MAX_BEHIND_S:
            self._origin[surface] = now - sent / rate
            due = now
        with contextlib.suppress(TimeoutError):  # told to stop: at once, not after the sleep
            await asyncio.wait_for(stop.wait(), max(0.0, due - now))
        if stop.is_set():
            raise asyncio.CancelledError

    def _connector(self) -> Any:
        import aiohttp

        return aiohttp.TCPConnector(local_addr=(self.source, 0))

    async def _osc_udp(self, stop: asyncio.Event) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((self.source, 0))
            while not stop.is_set():
                for _ in range(20):
                    sock.sendto(mutate(self.rng.choice(SEEDS_OSC), self.rng),
                                (self.host, self.osc_port))
                    self.sent["osc_udp"] += 1
                await self._paced("osc_udp", stop, 20)

    async def _osc_tcp(self, stop: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.osc_port,
                                                       local_addr=(self.source, 0))
        try:
            while not stop.is_set():
                frames = b"".join(slip_encode(mutate(self.rng.choice(SEEDS_OSC), self.rng))
                                  for _ in range(10))
                writer.write(frames)
                await writer.drain()
                self.sent["osc_tcp"] += 10
                with contextlib.suppress(TimeoutError):  # read replies so none pile up
                    await asyncio.wait_for(reader.read(65536), 0.001)
                await self._paced("osc_tcp", stop, 10)
        finally:
            writer.close()

    async def _http(self, stop: asyncio.Event) -> None:
        import aiohttp

        base = f"http://{self.host}:{self.http_port}"
        async with aiohttp.ClientSession(connector=self._connector()) as http:
            while not stop.is_set():
                for _ in range(5):
                    async with http.post(base + "/cue", data=broken_json(self.rng),
                                         headers={"Content-Type": "application/json"}) as r:
                        await r.read()
                    self.sent["http_cue"] += 1
                if self.rng.random() < RATES_PER_S["http_whep"] * 5 / RATES_PER_S["http_cue"]:
                    async with http.post(base + "/whep", data=mutate(SEED_SDP, self.rng)[:-3],
                                         headers={"Content-Type": "application/sdp"}) as r:
                        await r.read()
                    self.sent["http_whep"] += 1
                await self._paced("http_cue", stop, 5)

    async def _websocket(self, stop: asyncio.Event) -> None:
        import aiohttp

        url = f"http://{self.host}:{self.http_port}/director/ws"
        async with aiohttp.ClientSession(connector=self._connector()) as http, \
                http.ws_connect(url) as ws:
            while not stop.is_set() and not ws.closed:
                for _ in range(10):
                    body = broken_json(self.rng)
                    if self.rng.random() < 0.5:
                        await ws.send_bytes(body)
                    else:
                        await ws.send_str(body.decode("utf-8", "replace"))
                    self.sent["websocket"] += 1
                await self._paced("websocket", stop, 10)

    async def _mqtt(self, stop: asyncio.Event) -> None:
        import aiomqtt

        commands = ("note/on", "expr/tension", "song/load", "go", "lyric", "bogus/x")
        async with aiomqtt.Client(self.host, self.mqtt_port or 1883) as client:
            while not stop.is_set():
                for _ in range(10):
                    topic = f"livesinger/{self.show}/cmd/{self.rng.choice(commands)}"
                    await client.publish(topic, broken_json(self.rng))
                    self.sent["mqtt"] += 1
                await self._paced("mqtt", stop, 10)


def main(argv: list[str] | None = None) -> int:
    """``python -m stage.soak.flood HOST OSC_PORT HTTP_PORT [--mqtt-port P] --seconds S``."""
    p = argparse.ArgumentParser(prog="python -m stage.soak.flood")
    p.add_argument("host")
    p.add_argument("osc_port", type=int)
    p.add_argument("http_port", type=int)
    p.add_argument("--mqtt-port", type=int)
    p.add_argument("--show", default="default")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--rate-scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        print(f"soak_flood: {args.host} is not loopback; refusing", file=sys.stderr)
        return 2
    flood = Flood(args.host, args.osc_port, args.http_port, args.mqtt_port, args.show,
                  args.seed, args.rate_scale)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(json.dumps({"flooding": True}), flush=True)
        await flood.run(args.seconds, stop)

    start = time.monotonic()
    asyncio.run(run())
    print(json.dumps({"sent": flood.sent, "errors": flood.errors,
                      "seconds": round(time.monotonic() - start, 2)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
