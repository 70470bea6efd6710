"""Viewers of the show over WebRTC: the stage page, broadcasters (WHEP), other tools.

Each viewer has its own peer connection, audio track and pose channel with bounded buffers:
a slow or vanished viewer drops its own oldest data and never slows the pacer or the others.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from rigs.pose import PoseFrame
from singer.contracts import SAMPLE_RATE_HZ, AudioChunk
from streams.ice import ice_configuration
from streams.webrtc_audio import ShowAudioTrack

log = logging.getLogger(__name__)

POSE_BUFFER_BYTES = 16 * 1024
"""A pose channel with more than this waiting to go out skips frames."""
SYNC_EVERY_S = 0.5


class OfferError(ValueError):
    """An SDP offer that cannot be answered; the message says why."""


@dataclass
class Viewer:
    """One connected viewer."""

    id: str
    pc: RTCPeerConnection
    track: ShowAudioTrack
    kind: str  # "stage" or "whep"
    created: float = field(default_factory=time.monotonic)
    channel: RTCDataChannel | None = None
    poses_sent: int = 0
    poses_dropped: int = 0
    last_sync: float = 0.0

    def stats(self) -> dict[str, object]:
        """What the overlay and the status show for this viewer."""
        return {"id": self.id, "kind": self.kind, "state": self.pc.connectionState,
                "audio_frames": self.track.frames_sent,
                "audio_dropped": self.track.frames_dropped, "poses_sent": self.poses_sent,
                "poses_dropped": self.poses_dropped,
                "age_s": round(time.monotonic() - self.created, 1)}


class ViewerHub:
    """Answers offers and fans the show's audio and pose out to every viewer.

    ``ice_servers``: STUN/TURN URLs for the peer connections (``streams.ice``); none by
    default, so nothing is asked of a public STUN server.
    """

    def __init__(self, max_viewers: int = 32, ice_servers: Sequence[str] = ()) -> None:
        self.max_viewers = max_viewers
        self.viewers: dict[str, Viewer] = {}
        self.poses_rejected = 0
        """Pose frames sent to no viewer because a number in them was not finite."""
        self.ice_servers = tuple(ice_servers)
        ice_configuration(self.ice_servers)  # a bad URL is refused now, not at the first offer

    async def answer(self, sdp: str, kind: str = "stage") -> tuple[Viewer, str]:
        """Answer an SDP offer: a new viewer receiving audio (+ pose if it offers a channel)."""
        if len(self.viewers) >= self.max_viewers:
            raise OfferError(f"too many viewers ({self.max_viewers}); try again later")
        if "v=0" not in sdp or "m=" not in sdp:
            raise OfferError("not an SDP offer (no 'v=0' or no media section)")
        if "m=audio" not in sdp:
            raise OfferError("the offer has no audio section to receive the show's audio")
        pc = RTCPeerConnection(ice_configuration(self.ice_servers))
        track = ShowAudioTrack()
        viewer = Viewer(secrets.token_urlsafe(12), pc, track, kind)

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label == "pose":
                viewer.channel = channel

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close(viewer.id)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
            for transceiver in pc.getTransceivers():
                if transceiver.kind == "audio":
                    transceiver.direction = "sendonly"
                    track.sender = transceiver.sender
                    transceiver.sender.replaceTrack(track)
                    break
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as err:  # aiortc raises ValueError & friends on bad SDP
            await pc.close()
            raise OfferError(f"cannot answer this offer: {err}") from None
        self.viewers[viewer.id] = viewer
        log.info("viewer %s (%s) joined; %d viewers", viewer.id, kind, len(self.viewers))
        return viewer, pc.localDescription.sdp

    async def close(self, viewer_id: str) -> bool:
        """End a viewer's session; False when there was no such viewer."""
        viewer = self.viewers.pop(viewer_id, None)
        if viewer is None:
            return False
        viewer.track.stop()
        await viewer.pc.close()
        log.info("viewer %s left; %d viewers", viewer_id, len(self.viewers))
        return True

    async def close_all(self) -> None:
        """End every session (the show is stopping)."""
        await asyncio.gather(*(self.close(v) for v in list(self.viewers)))

    def push_audio(self, chunk: AudioChunk) -> None:
        """Pacer sink: the chunk goes to every viewer's own queue."""
        for viewer in self.viewers.values():
            viewer.track.push(chunk)

    def push_pose(self, frame: PoseFrame) -> None:
        """Send a pose frame to every viewer with an open pose channel (or skip it). A frame
        with a non-finite number is sent to nobody and counted (``poses_rejected``)."""
        try:
            text = frame.to_json()
        except ValueError as err:
            self.poses_rejected += 1
            log.warning("viewers: %s; dropped (%d so far)", err, self.poses_rejected)
            return
        now = time.monotonic()
        for viewer in self.viewers.values():
            channel = viewer.channel
            if channel is None or channel.readyState != "open":
                continue
            if channel.bufferedAmount > POSE_BUFFER_BYTES:
                viewer.poses_dropped += 1
                continue
            if viewer.track.rtp_minus_show is not None and now - viewer.last_sync > SYNC_EVERY_S:
                channel.send(json.dumps({"sync": {"rtp_minus_show": viewer.track.rtp_minus_show,
                                                  "sample_rate": SAMPLE_RATE_HZ}},
                                        allow_nan=False))
                viewer.last_sync = now
            channel.send(text)
            viewer.poses_sent += 1
