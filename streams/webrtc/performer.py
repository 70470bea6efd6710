"""The performer's camera over WebRTC: one peer connection receiving one video track.

``PerformerDesk.answer(sdp)`` answers the ``/perform`` page's offer and hands the received
video track to ``on_track`` (the capture source: ``mocap.webrtc_source.WebRtcSource.consume``).
One performer at a time: while one is connected (or still connecting, for at most
``connect_timeout_s``) a second offer is refused with ``PerformerBusy`` (HTTP 409), so nobody
can take over a live performance by opening the page; the first performer must leave
(``DELETE /perform/<id>``, closing the page, or a dead link) before another can start.

Cleanup: when the performer's peer connection fails or closes, or the track ends, the peer
is closed and its task awaited; ``close_all`` at the end of the show does the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from streams.webrtc.ice import ice_configuration
from streams.webrtc.viewers import OfferError, close_refused

log = logging.getLogger(__name__)


class PerformerBusy(OfferError):
    """Another performer is connected; the message says who and what to do."""


@dataclass
class Performer:
    """The connected performer."""

    id: str
    pc: RTCPeerConnection
    created: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None
    """Receives the video track (``on_track``)."""
    audio_task: asyncio.Task[None] | None = None
    """Receives the microphone's track (``on_audio``), when the show listens to it."""
    watchdog: asyncio.TimerHandle | None = None

    def stats(self) -> dict[str, object]:
        """What ``/status`` shows."""
        return {"id": self.id, "state": self.pc.connectionState,
                "receiving": self.task is not None and not self.task.done(),
                "age_s": round(time.monotonic() - self.created, 1)}


class PerformerDesk:
    """Answers performer offers, one performer at a time.

    ``ice_servers``: STUN/TURN URLs for the peer connection (``streams.webrtc.ice``); none by
    default.
    """

    def __init__(self, on_track: Callable[[MediaStreamTrack], Awaitable[None]],
                 connect_timeout_s: float = 20.0, ice_servers: Sequence[str] = ()) -> None:
        self.ice_servers = tuple(ice_servers)
        ice_configuration(self.ice_servers)  # a bad URL is refused now, not at the first offer
        self.performer: Performer | None = None
        self.joined = 0
        self.left = 0
        self._on_track = on_track
        self.on_audio: Callable[[MediaStreamTrack], Awaitable[None]] | None = None
        """Receives the page's microphone track (follow mode's ``--performer-audio page``);
        None: the microphone is not received."""
        self._connect_timeout_s = connect_timeout_s
        self._closing: set[asyncio.Task[bool]] = set()

    async def answer(self, sdp: str) -> tuple[Performer, str]:
        """Answer a performer's offer (``PerformerBusy`` if one is on; ``OfferError`` if the
        offer is unusable)."""
        current = self.performer
        if current is not None:
            raise PerformerBusy(
                f"a performer is already connected (id {current.id}, "
                f"{current.pc.connectionState}); only one at a time: they must leave first")
        if "v=0" not in sdp or "m=" not in sdp:
            raise OfferError("not an SDP offer (no 'v=0' or no media section)")
        if "m=video" not in sdp:
            raise OfferError("the offer has no video section: the performer page sends the "
                             "camera as a video track")
        pc = RTCPeerConnection(ice_configuration(self.ice_servers))
        performer = Performer(secrets.token_urlsafe(12), pc)
        self.performer = performer  # taken now: a concurrent offer gets PerformerBusy

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video" and performer.task is None:
                performer.task = asyncio.ensure_future(self._receive(performer, track))
            elif (track.kind == "audio" and performer.audio_task is None
                  and self.on_audio is not None):
                performer.audio_task = asyncio.ensure_future(self.on_audio(track))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close(performer.id)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
            video = audio = False
            for transceiver in pc.getTransceivers():
                if transceiver.kind == "video" and not video:
                    transceiver.direction = "recvonly"
                    video = True
                elif transceiver.kind == "audio" and not audio and self.on_audio is not None:
                    transceiver.direction = "recvonly"  # the microphone, for follow mode
                    audio = True
                else:  # more cameras, or a microphone nobody would read: not received
                    transceiver.direction = "inactive"
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as err:  # aiortc raises ValueError & friends on bad SDP
            if self.performer is performer:
                self.performer = None
            await close_refused(pc)
            raise OfferError(f"cannot answer this offer: {err}") from None
        loop = asyncio.get_running_loop()
        performer.watchdog = loop.call_later(self._connect_timeout_s, self._expire, performer)
        self.joined += 1
        log.info("performer %s joined", performer.id)
        return performer, pc.localDescription.sdp

    async def _receive(self, performer: Performer, track: MediaStreamTrack) -> None:
        try:
            await self._on_track(track)
        finally:  # the track ended: the performer is gone
            if self.performer is performer:
                self._spawn_close(performer.id)

    def _expire(self, performer: Performer) -> None:
        if self.performer is performer and performer.pc.connectionState != "connected":
            log.warning("performer %s did not connect in %.0f s; dropped", performer.id,
                        self._connect_timeout_s)
            self._spawn_close(performer.id)

    def _spawn_close(self, performer_id: str) -> None:
        task = asyncio.ensure_future(self.close(performer_id))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self, performer_id: str) -> bool:
        """End the performer's session; False when ``performer_id`` is not the performer."""
        performer = self.performer
        if performer is None or performer.id != performer_id:
            return False
        self.performer = None
        self.left += 1
        if performer.watchdog is not None:
            performer.watchdog.cancel()
        await performer.pc.close()
        for task in (performer.task, performer.audio_task):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        log.info("performer %s left", performer_id)
        return True

    async def close_all(self) -> None:
        """End the session (the show is stopping) and wait for pending cleanups."""
        if self.performer is not None:
            await self.close(self.performer.id)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def stats(self) -> dict[str, object] | None:
        """The performer's state, or None when nobody performs."""
        return self.performer.stats() if self.performer else None
