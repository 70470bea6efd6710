"""Origin → edge fan-out: the origin Janus ``rtp_forward``s the show into an edge's Streaming
mountpoint, and viewers watch the edge (docs/janus.md).

``python -m streams.janus.fanout ORIGIN_API ROOM EDGE_API --edge-host IP --mountpoint ID``
creates the mountpoint on the edge (audio: Opus; data: the pose messages, as text) and asks
the origin to forward the room's publisher there; with ``--keep`` it checks every few
seconds and forwards again after the publisher republished or either Janus restarted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from dataclasses import dataclass
from typing import Any

import aiohttp

from streams.janus.api import JanusError, JanusHandle, JanusSession

log = logging.getLogger(__name__)

OPUS_PT = 111
MOUNTPOINT_EXISTS = 456
"""The Streaming plugin's "cannot create" (the id is taken)."""


@dataclass(frozen=True, slots=True)
class Edge:
    """A Streaming mountpoint on an edge Janus that the origin forwards the show into."""

    api_url: str
    """The edge's HTTP API (where the mountpoint is created)."""
    host: str
    """The edge's address as the origin reaches it (where RTP is sent)."""
    mountpoint: int
    audio_port: int
    """UDP port the edge receives the show's Opus on."""
    data_port: int
    """UDP port the edge receives the pose messages on."""


async def create_mountpoint(handle: JanusHandle, edge: Edge) -> bool:
    """Create the edge's mountpoint; False when it was already there."""
    try:
        await handle.request({
            "request": "create", "type": "rtp", "id": edge.mountpoint,
            "description": "livesinger show", "media": [
                {"type": "audio", "mid": "a", "port": edge.audio_port, "pt": OPUS_PT,
                 "codec": "opus"},
                {"type": "data", "mid": "d", "port": edge.data_port, "datatype": "text"}]})
    except JanusError as err:
        if err.code != MOUNTPOINT_EXISTS:
            raise
        return False
    return True


async def publisher_id(handle: JanusHandle, room: int) -> int | None:
    """The room's publisher (the engine), or None while nobody publishes."""
    data = await handle.request({"request": "listparticipants", "room": room})
    for participant in data.get("participants", []):
        if participant.get("publisher"):
            return int(participant["id"])
    return None


async def forward(handle: JanusHandle, room: int, publisher: int, edge: Edge,
                  secret: str | None = None) -> dict[str, object]:
    """Ask the origin to forward ``publisher``'s audio and data to the edge; Janus's answer."""
    body: dict[str, object] = {"request": "rtp_forward", "room": room,
                               "publisher_id": publisher, "host": edge.host,
                               "audio_port": edge.audio_port, "data_port": edge.data_port}
    if secret:
        body["secret"] = secret
    return await handle.request(body)


async def forwarded_to(handle: JanusHandle, room: int, publisher: int, edge: Edge,
                       secret: str | None = None) -> bool:
    """Whether the origin already forwards ``publisher`` to the edge's audio port."""
    body: dict[str, object] = {"request": "listforwarders", "room": room}
    if secret:
        body["secret"] = secret
    data = await handle.request(body)
    entries: list[dict[str, Any]] = data.get("publishers") or []
    for entry in entries:
        if int(entry.get("publisher_id", 0)) != publisher:
            continue
        forwarders: list[dict[str, Any]] = entry.get("forwarders") or []
        if any(int(f.get("port", 0)) == edge.audio_port and f.get("host") == edge.host
               for f in forwarders):
            return True
    return False


async def fan_out(origin_url: str, room: int, edge: Edge, secret: str | None = None,
                  keep: bool = False, every_s: float = 2.0) -> None:
    """Forward the room's publisher to the edge once (``keep``: and again whenever the
    forward is lost: the publisher republished, or either Janus restarted)."""
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                await _fan_out_once(http, origin_url, room, edge, secret)
            except JanusError as err:
                if not keep:
                    raise
                log.warning("fan-out to %s: %s; trying again in %.0f s", edge.api_url, err,
                            every_s)
            if not keep:
                return
            await asyncio.sleep(every_s)


async def _fan_out_once(http: aiohttp.ClientSession, origin_url: str, room: int, edge: Edge,
                        secret: str | None) -> None:
    edge_session = JanusSession(http, edge.api_url)
    origin_session = JanusSession(http, origin_url)
    try:
        await edge_session.create()
        if await create_mountpoint(await edge_session.attach("janus.plugin.streaming"), edge):
            log.info("fan-out: mountpoint %d created on %s", edge.mountpoint, edge.api_url)
        await origin_session.create()
        handle = await origin_session.attach("janus.plugin.videoroom")
        publisher = await publisher_id(handle, room)
        if publisher is None:
            raise JanusError(f"room {room} on {origin_url}: nobody publishes there yet")
        if not await forwarded_to(handle, room, publisher, edge, secret):
            await forward(handle, room, publisher, edge, secret)
            log.info("fan-out: room %d publisher %d -> %s:%d/%d", room, publisher,
                     edge.host, edge.audio_port, edge.data_port)
    finally:
        for session in (edge_session, origin_session):
            with contextlib.suppress(JanusError):
                await session.destroy()


def main(argv: list[str] | None = None) -> int:
    """``python -m streams.janus.fanout ORIGIN_API ROOM EDGE_API ...``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("origin", help="origin Janus API, e.g. http://10.0.0.1:8088/janus")
    parser.add_argument("room", type=int, help="the VideoRoom the engine publishes into")
    parser.add_argument("edge", help="edge Janus API, e.g. http://10.0.0.2:8088/janus")
    parser.add_argument("--edge-host", required=True,
                        help="the edge's address as the origin reaches it (RTP goes there)")
    parser.add_argument("--mountpoint", type=int, default=1, help="mountpoint id (default 1)")
    parser.add_argument("--audio-port", type=int, default=5002, help="default 5002")
    parser.add_argument("--data-port", type=int, default=5004, help="default 5004")
    parser.add_argument("--secret", default=None, help="the room's secret, if it has one")
    parser.add_argument("--keep", action="store_true",
                        help="keep checking, and forward again after a republish or restart")
    args = parser.parse_args(argv)
    for name in ("audio_port", "data_port"):
        if not 1 <= getattr(args, name) <= 65535:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: want 1..65535")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    edge = Edge(args.edge, args.edge_host, args.mountpoint, args.audio_port, args.data_port)
    try:
        asyncio.run(fan_out(args.origin, args.room, edge, args.secret, keep=args.keep))
    except JanusError as err:
        print(f"fanout: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(json.dumps({"forwarding": args.room, "edge": args.edge,
                      "mountpoint": args.mountpoint}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
