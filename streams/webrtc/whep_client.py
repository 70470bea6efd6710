"""A WHEP listener: pulls the show's audio like a broadcaster's player does.

Used as a load of real WebRTC viewers (``python -m streams.webrtc.whep_client URL --count N``)
and as a check that a WHEP endpoint answers with audio. Each listener offers a receive-only audio
transceiver, posts the offer to ``/whep``, decodes every frame it gets, and leaves with a
``DELETE`` on the session's location.
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
from urllib.parse import urljoin

import aiohttp
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from streams.webrtc.ice import IceServerError, ice_configuration


class WhepListener:
    """One WHEP session that counts the audio frames it receives.

    ``ice_servers``: STUN/TURN URLs (``streams.webrtc.ice``); none by default. ``keep_audio``: keep
    the decoded audio (mono float, 48 kHz) in ``audio``, as a broadcaster's recorder would.
    """

    def __init__(self, url: str, token: str | None = None,
                 ice_servers: Sequence[str] = (), keep_audio: bool = False) -> None:
        self.url = url
        self.token = token
        self.frames = 0
        self.location: str | None = None
        self.headers: dict[str, str] = {}
        """The WHEP answer's HTTP headers (e.g. ``AIGC-Label``)."""
        self.keep_audio = keep_audio
        self.audio: list[np.ndarray] = []
        self._pc = RTCPeerConnection(ice_configuration(ice_servers))
        self._pull: asyncio.Task[None] | None = None

    async def start(self, http: aiohttp.ClientSession) -> None:
        """Offer, get the answer, and start pulling audio (``WhepError`` if refused)."""
        self._pc.addTransceiver("audio", direction="recvonly")
        self._pc.on("track", self._on_track)
        await self._pc.setLocalDescription(await self._pc.createOffer())
        headers = {"Content-Type": "application/sdp"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        async with http.post(self.url, data=self._pc.localDescription.sdp,
                             headers=headers) as res:
            if res.status != 201:
                raise WhepError(f"{self.url}: {res.status} {await res.text()}")
            self.location = res.headers.get("Location")
            self.headers = dict(res.headers)
            answer = await res.text()
        await self._pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    def _on_track(self, track: MediaStreamTrack) -> None:
        async def pull() -> None:
            with contextlib.suppress(MediaStreamError):
                while True:
                    frame = await track.recv()
                    self.frames += 1
                    if self.keep_audio:
                        self.audio.append(_mono(frame))
        self._pull = asyncio.ensure_future(pull())

    async def stop(self, http: aiohttp.ClientSession) -> None:
        """Leave: ``DELETE`` the session and close the peer."""
        if self.location:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.delete(urljoin(self.url, self.location)):
                    pass
        if self._pull is not None:
            self._pull.cancel()
            await asyncio.gather(self._pull, return_exceptions=True)
        await self._pc.close()


def _mono(frame: Any) -> np.ndarray:
    """A decoded audio frame as mono float (interleaved s16 or float, any channel count)."""
    pcm = frame.to_ndarray().astype(np.float64)
    pcm = pcm.T if frame.format.is_planar else pcm.reshape(-1, len(frame.layout.channels))
    return pcm.mean(axis=1) / (32768.0 if frame.format.name.startswith("s16") else 1.0)


class WhepError(RuntimeError):
    """The WHEP endpoint refused the session."""


async def listen(url: str, count: int, seconds: float | None, token: str | None = None,
                 ready: asyncio.Event | None = None, stop: asyncio.Event | None = None,
                 stagger_s: float = 0.0, after_s: float = 0.0,
                 ice_servers: Sequence[str] = ()) -> list[int]:
    """Hold ``count`` listeners for ``seconds`` or until ``stop`` is set; the frames each
    received."""
    async with aiohttp.ClientSession() as http:
        listeners = [WhepListener(url, token, ice_servers) for _ in range(count)]
        if after_s:
            print(json.dumps({"waiting_s": after_s}), flush=True)
            await asyncio.sleep(after_s)
        try:
            for i, listener in enumerate(listeners):
                if i and stagger_s:
                    await asyncio.sleep(stagger_s)  # viewers arriving one after another
                await listener.start(http)
            if ready is not None:
                ready.set()
            print(json.dumps({"listening": count}), flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for((stop or asyncio.Event()).wait(), seconds)
        finally:
            for listener in listeners:
                await listener.stop(http)
    return [listener.frames for listener in listeners]


def main(argv: list[str] | None = None) -> int:
    """``python -m streams.webrtc.whep_client URL [--count N] [--seconds S]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the WHEP endpoint, e.g. http://127.0.0.1:8080/whep")
    parser.add_argument("--count", type=int, default=1, help="listeners (default 1)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="how long to listen (default: until interrupted)")
    parser.add_argument("--token", default=None, help="bearer token, when the engine has one")
    parser.add_argument("--after", type=float, default=0.0, metavar="S",
                        help="wait this long before the first listener joins (default 0)")
    parser.add_argument("--stagger", type=float, default=0.0, metavar="S",
                        help="seconds between one listener joining and the next (default 0)")
    parser.add_argument("--ice-server", action="append", default=[], metavar="URL",
                        help="STUN/TURN server (stun:HOST[:PORT], turn:USER:PASS@HOST[:PORT]); "
                             "none by default")
    args = parser.parse_args(argv)
    try:
        ice_configuration(args.ice_server)
    except IceServerError as err:
        parser.error(f"--ice-server {err}")
    async def run() -> list[int]:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):  # leave cleanly, then report
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        return await listen(args.url, args.count, args.seconds, args.token, stop=stop,
                            stagger_s=args.stagger, after_s=args.after,
                            ice_servers=args.ice_server)

    try:
        frames = asyncio.run(run())
    except (WhepError, aiohttp.ClientError) as err:
        print(f"whep_client: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"frames": frames}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
