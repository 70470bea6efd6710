"""A viewer of the show through Janus (aiortc): a VideoRoom subscriber or a Streaming
mountpoint's watcher, as a test, a benchmark or a quick check from a shell uses one.

It hears the audio, reads the pose messages, and lines them up on the show clock: Janus
rewrote the RTP timestamps, so each pose message's ``"a"`` (the show sample of the audio the
publisher was sending) is paired with the newest RTP timestamp received when the message
arrived (``streams.janus.publisher``); the median of ``rtp - a`` maps this viewer's RTP time
to show samples.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from singer.contracts import SAMPLE_RATE_HZ
from streams.janus.api import JanusError, JanusHandle, JanusSession
from streams.webrtc.ice import ice_configuration

WRAP = 1 << 32


class JanusViewer:
    """Watches ``room``'s publisher (VideoRoom) or ``mountpoint`` (Streaming) on ``url``."""

    def __init__(self, url: str, room: int | None = None, mountpoint: int | None = None,
                 pin: str | None = None, ice_servers: Sequence[str] = (),
                 keep: bool = True) -> None:
        """``keep=False``: a load viewer that decodes and counts what it hears and keeps none
        of it (``frames_heard``, ``poses_heard``), so it can watch for as long as wanted."""
        if (room is None) == (mountpoint is None):
            raise ValueError("watch either a room or a mountpoint")
        self.keep = keep
        self.frames_heard = 0
        self.poses_heard = 0
        self.url, self.room, self.mountpoint, self.pin = url, room, mountpoint, pin
        self.pc = RTCPeerConnection(ice_configuration(ice_servers))
        self.frames: list[tuple[int, np.ndarray]] = []
        """(RTP timestamp as received, mono float samples) per decoded frame."""
        self.messages: list[str] = []
        self.offsets: list[int] = []
        """``rtp - a`` (mod 2^32) for every pose message that arrived after some audio."""
        self._newest_rtp: int | None = None
        self._rtp_origin: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._session: JanusSession | None = None

    async def start(self, http: aiohttp.ClientSession, timeout_s: float = 10.0) -> None:
        """Join and answer Janus's offer (``JanusError`` if nothing is published there)."""
        session = self._session = JanusSession(http, self.url)
        await session.create()
        self._tasks.append(asyncio.ensure_future(self._run_session(session)))
        if self.room is not None:
            handle = await session.attach("janus.plugin.videoroom")
            feed = await _wait_for_publisher(handle, self.room, timeout_s)
            body: dict[str, Any] = {"request": "join", "ptype": "subscriber", "room": self.room,
                                    "streams": [{"feed": feed}]}
            if self.pin:
                body["pin"] = self.pin
        else:
            handle = await session.attach("janus.plugin.streaming")
            body = {"request": "watch", "id": self.mountpoint}
        _data, jsep = await handle.message(body, timeout_s=timeout_s)
        if jsep is None:
            raise JanusError(f"{self.url}: no offer to watch {body}")
        self.pc.on("track", self._on_track)
        await self.pc.setRemoteDescription(RTCSessionDescription(jsep["sdp"], "offer"))
        # aiortc starts SCTP (and so receives Janus's channel) only once it has one of its own
        channel = self.pc.createDataChannel("viewer")
        channel.on("message", self._on_message)
        self.pc.on("datachannel", lambda ch: ch.on("message", self._on_message))
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "audio":
                self._watch_packets(transceiver.receiver)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await handle.message({"request": "start"},
                             {"type": "answer", "sdp": self.pc.localDescription.sdp},
                             timeout_s=timeout_s)

    async def _run_session(self, session: JanusSession) -> None:
        with contextlib.suppress(JanusError):  # Janus went away: this viewer just stops
            await session.run()

    def _watch_packets(self, receiver: Any) -> None:
        handle = receiver._handle_rtp_packet

        async def noted(packet: Any, arrival_time_ms: int) -> None:
            self._newest_rtp = int(packet.timestamp)
            if self._rtp_origin is None:
                self._rtp_origin = int(packet.timestamp)
            await handle(packet, arrival_time_ms)

        receiver._handle_rtp_packet = noted

    def _on_track(self, track: MediaStreamTrack) -> None:
        async def pull() -> None:
            with contextlib.suppress(MediaStreamError):
                while True:
                    frame = await track.recv()
                    if not isinstance(frame, av.AudioFrame):
                        continue
                    self.frames_heard += 1
                    if not self.keep:
                        continue
                    pcm = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0]
                    rtp = (int(frame.pts or 0) + (self._rtp_origin or 0)) % WRAP
                    self.frames.append((rtp, pcm.astype(np.float32) / 32768))
        self._tasks.append(asyncio.ensure_future(pull()))

    def _on_message(self, message: str | bytes) -> None:
        text = message.decode() if isinstance(message, bytes) else message
        self.poses_heard += text.startswith('{"a":')
        if not self.keep:
            return
        self.messages.append(text)
        if self._newest_rtp is not None and text.startswith('{"a":'):
            self.offsets.append((self._newest_rtp - int(json.loads(text)["a"])) % WRAP)

    def rtp_minus_show(self) -> int | None:
        """This viewer's RTP-to-show offset: the median of what the pose messages said."""
        if not self.offsets:
            return None
        base = self.offsets[0]
        rel = sorted((o - base + WRAP // 2) % WRAP - WRAP // 2 for o in self.offsets)
        return (base + rel[len(rel) // 2]) % WRAP

    def show_audio(self) -> tuple[int, np.ndarray]:
        """(first show sample, audio) heard, placed on the show clock (gaps are silence)."""
        offset = self.rtp_minus_show()
        if offset is None or not self.frames:
            return 0, np.zeros(0, dtype=np.float32)
        starts = [(rtp - offset) % WRAP for rtp, _ in self.frames]
        first = min(starts)
        end = max(s + len(pcm) for s, (_, pcm) in zip(starts, self.frames, strict=True))
        audio = np.zeros(end - first, dtype=np.float32)
        for start, (_, pcm) in zip(starts, self.frames, strict=True):
            audio[start - first:start - first + len(pcm)] = pcm
        return first, audio

    def poses(self) -> list[dict[str, Any]]:
        """The pose messages received, parsed."""
        return [json.loads(m) for m in self.messages if m.startswith('{"a":')]

    async def close(self) -> None:
        """Leave Janus and close the peer."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()
        if self._session is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._session.destroy(), 2.0)


async def _wait_for_publisher(handle: JanusHandle, room: int, timeout_s: float) -> int:
    """The id of the room's first publisher (``JanusError`` if none appears in time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        with contextlib.suppress(JanusError):
            data = await handle.request({"request": "listparticipants", "room": room})
            for participant in data.get("participants", []):
                if participant.get("publisher"):
                    return int(participant["id"])
        if loop.time() > deadline:
            raise JanusError(f"room {room}: nobody publishes there")
        await asyncio.sleep(0.2)


def seconds_heard(viewer: JanusViewer) -> float:
    """Seconds of audio the viewer decoded."""
    return sum(len(pcm) for _, pcm in viewer.frames) / SAMPLE_RATE_HZ


async def watch_many(url: str, room: int, count: int, stop: asyncio.Event,
                     ice_servers: Sequence[str] = ()) -> list[JanusViewer]:
    """``count`` load viewers (``keep=False``) of ``room`` until ``stop`` is set; prints
    ``{"listening": count}`` once all have started."""
    async with aiohttp.ClientSession() as http:
        viewers = [JanusViewer(url, room=room, ice_servers=ice_servers, keep=False)
                   for _ in range(count)]
        try:
            for viewer in viewers:
                await viewer.start(http)
            print(json.dumps({"listening": count}), flush=True)
            await stop.wait()
        finally:
            for viewer in viewers:
                await viewer.close()
    return viewers


def main(argv: list[str] | None = None) -> int:
    """``python -m streams.janus.subscriber URL ROOM [--count N]``: N viewers of the room
    through Janus until interrupted (a load for benchmarks); prints what each heard."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("url", help="Janus's HTTP API, e.g. http://127.0.0.1:8088/janus")
    parser.add_argument("room", type=int, help="the VideoRoom the show is published into")
    parser.add_argument("--count", type=int, default=1, help="viewers (default 1)")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f"--count wants 1 or more viewers, not {args.count}")

    async def run() -> list[JanusViewer]:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):  # leave cleanly, then report
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        return await watch_many(args.url, args.room, args.count, stop)

    try:
        viewers = asyncio.run(run())
    except (JanusError, aiohttp.ClientError) as err:
        print(f"janus subscriber: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"frames": [v.frames_heard for v in viewers],
                      "poses": [v.poses_heard for v in viewers]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
