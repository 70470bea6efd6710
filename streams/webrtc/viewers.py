"""Viewers of the show over WebRTC: the stage page, broadcasters (WHEP), other tools.

Each viewer has its own peer connection, audio track and pose channel with bounded buffers:
a slow or vanished viewer drops its own oldest data and never slows the pacer or the others.

The show's voice is encoded once for all viewers (``streams.webrtc.opus_encoder``): 20 ms frames
for the RTP audio track (every stage page without WebCodecs, every WHEP player) and 10 ms
frames for the stage page's low-latency path, a ``voice`` data channel (unordered, no
retransmits) carrying ``VOICE_HEADER`` + Opus packet per message. A stage page on that path
offers no audio section, only its data channels.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from rigs.pose import PoseFrame
from singer.contracts import SAMPLE_RATE_HZ, AudioChunk
from streams.webrtc.audio_track import FRAME_SAMPLES, ShowAudioTrack
from streams.webrtc.ice import ice_configuration
from streams.webrtc.opus_encoder import OpusFrame, ShowOpusEncoder
from streams.webrtc.sctp_window import keep_window_open

log = logging.getLogger(__name__)

POSE_BUFFER_BYTES = 16 * 1024
"""A pose channel with more than this waiting to go out skips frames."""
VOICE_BUFFER_BYTES = 4 * 1024
"""A voice channel with more than this (about 250 ms of voice) waiting skips frames: late
voice is worth nothing to a page that buffers a few tens of ms."""
VOICE_FRAME_SAMPLES = 480
"""10 ms: the low-latency path's Opus frame."""
STAGE_RTP_FRAME_SAMPLES = VOICE_FRAME_SAMPLES
"""The stage page's RTP fallback takes the 10 ms frames too (measured: docs/benchmarks.md)."""
SYNC_EVERY_S = 0.5


class OfferError(ValueError):
    """An SDP offer that cannot be answered; the message says why."""


class ViewersFull(OfferError):
    """Every viewer place is taken (HTTP 503: try again later)."""


async def close_refused(pc: RTCPeerConnection) -> None:
    """Close the peer of an offer that could not be answered. aiortc cannot always close a
    peer that a bad offer left half set up (its SCTP transport has no DTLS transport yet);
    what it leaves is dropped with the peer, and the offer is refused all the same."""
    try:
        await pc.close()
    except Exception as err:  # aiortc raises AttributeError on half-built peers
        log.debug("closing a refused peer connection failed: %r", err)


@dataclass
class Viewer:
    """One connected viewer."""

    id: str
    pc: RTCPeerConnection
    track: ShowAudioTrack | None
    """The RTP audio track (``None``: the page takes the voice on its data channel)."""
    kind: str  # "stage" or "whep"
    mix: str = "program"
    """What it hears: ``program`` or ``voice`` (the voice alone: ``/whep?mix=voice``)."""
    created: float = field(default_factory=time.monotonic)
    channel: RTCDataChannel | None = None
    voice: RTCDataChannel | None = None
    """The low-latency path's ``voice`` channel, once the page opened it."""
    poses_sent: int = 0
    poses_dropped: int = 0
    voice_frames: int = 0
    voice_dropped: int = 0
    last_sync: float = 0.0
    last_rtp_minus_show: int | None = None

    @property
    def path(self) -> str:
        """``datachannel`` (the low-latency voice channel) or ``rtp`` (the audio track)."""
        return "datachannel" if self.voice is not None or self.track is None else "rtp"

    def stats(self) -> dict[str, object]:
        """What the overlay and the status show for this viewer."""
        track = self.track
        return {"id": self.id, "kind": self.kind, "mix": self.mix,
                "state": self.pc.connectionState,
                "path": self.path,
                "audio_frames": (track.frames_sent if track else 0) + self.voice_frames,
                "audio_dropped": (track.frames_dropped if track else 0) + self.voice_dropped,
                "poses_sent": self.poses_sent, "poses_dropped": self.poses_dropped,
                "age_s": round(time.monotonic() - self.created, 1)}


class ViewerHub:
    """Answers offers and fans the show's audio and pose out to every viewer.

    ``ice_servers``: STUN/TURN URLs for the peer connections (``streams.webrtc.ice``); none by
    default, so nothing is asked of a public STUN server.
    """

    def __init__(self, max_viewers: int = 32, ice_servers: Sequence[str] = ()) -> None:
        self.max_viewers = max_viewers
        self.viewers: dict[str, Viewer] = {}
        self.poses_rejected = 0
        """Pose frames sent to no viewer because a number in them was not finite."""
        self.ice_servers = tuple(ice_servers)
        ice_configuration(self.ice_servers)  # a bad URL is refused now, not at the first offer
        self.rtp_encoder = ShowOpusEncoder(FRAME_SAMPLES)
        """The show's 20 ms Opus, encoded once for every RTP audio track."""
        self.voice_encoder = ShowOpusEncoder(VOICE_FRAME_SAMPLES)
        """The show's 10 ms Opus, encoded once for every ``voice`` data channel."""
        self._voice_subscription: Callable[[], None] | None = None
        self.stage_rtp_frame_samples = STAGE_RTP_FRAME_SAMPLES
        """The Opus frame a stage page's RTP track gets: 480 (the 10 ms voice encoder's) or
        960 (the 20 ms frames WHEP players get)."""
        self.voice_only_encoder = ShowOpusEncoder(FRAME_SAMPLES)
        """The voice alone (no backing), 20 ms Opus, for ``mix=voice`` listeners (in-ears);
        fed only once the first of them asks (``wants_voice_only``)."""
        self.wants_voice_only: Callable[[], None] | None = None
        """Called when a ``mix=voice`` listener is answered: the show then feeds
        ``push_voice_only`` (the cost of a voice-only stream is paid only from then on)."""

    def push_voice_only(self, chunk: AudioChunk) -> None:
        """Voice-only sink: encoded once for every ``mix=voice`` listener."""
        self.voice_only_encoder.push(chunk)

    async def answer(self, sdp: str, kind: str = "stage", mix: str = "program"
                     ) -> tuple[Viewer, str]:
        """Answer an SDP offer: a new viewer receiving audio (+ pose if it offers a channel);
        ``mix="voice"``: the voice alone on its audio track."""
        if mix not in ("program", "voice"):
            raise OfferError(f"mix={mix[:40]!r}: want program or voice")
        if len(self.viewers) >= self.max_viewers:
            raise ViewersFull(f"too many viewers ({self.max_viewers}); try again later")
        if "v=0" not in sdp or "m=" not in sdp:
            raise OfferError("not an SDP offer (no 'v=0' or no media section)")
        has_audio = "m=audio" in sdp
        if not has_audio and (kind != "stage" or "m=application" not in sdp):
            raise OfferError("the offer has no audio section to receive the show's audio"
                             + (" (nor a data channel for its voice)" if kind == "stage"
                                else ""))
        pc = RTCPeerConnection(ice_configuration(self.ice_servers))
        if mix == "voice" and self.wants_voice_only is not None:
            self.wants_voice_only()
        encoder = self.voice_only_encoder if mix == "voice" else self.rtp_encoder
        if kind == "stage" and mix == "program" \
                and self.stage_rtp_frame_samples == VOICE_FRAME_SAMPLES:
            encoder = self.voice_encoder
        track = ShowAudioTrack(encoder) if has_audio else None
        viewer = Viewer(secrets.token_urlsafe(12), pc, track, kind, mix)

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label == "pose":
                viewer.channel = channel
            elif channel.label == "voice" and kind == "stage":
                viewer.voice = channel
                self._update_voice_subscription()

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close(viewer.id)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
            for transceiver in pc.getTransceivers():
                if transceiver.kind == "audio" and track is not None:
                    transceiver.direction = "sendonly"
                    track.sender = transceiver.sender
                    transceiver.sender.replaceTrack(track)
                    break
            await pc.setLocalDescription(await pc.createAnswer())
            keep_window_open(pc)  # late SACKs never hold the voice and pose back
        except Exception as err:  # aiortc raises ValueError & friends on bad SDP
            if track is not None:
                track.stop()
            await close_refused(pc)
            raise OfferError(f"cannot answer this offer: {err}") from None
        self.viewers[viewer.id] = viewer
        log.info("viewer %s (%s) joined; %d viewers", viewer.id, kind, len(self.viewers))
        return viewer, pc.localDescription.sdp

    async def close(self, viewer_id: str) -> bool:
        """End a viewer's session; False when there was no such viewer."""
        viewer = self.viewers.pop(viewer_id, None)
        if viewer is None:
            return False
        if viewer.track is not None:
            viewer.track.stop()
        viewer.voice = None
        self._update_voice_subscription()
        await viewer.pc.close()
        log.info("viewer %s left; %d viewers", viewer_id, len(self.viewers))
        return True

    async def close_all(self) -> None:
        """End every session (the show is stopping)."""
        await asyncio.gather(*(self.close(v) for v in list(self.viewers)))

    def push_audio(self, chunk: AudioChunk) -> None:
        """Pacer sink: the chunk is encoded once per path (only for paths with viewers) and
        the same frames go to every viewer's own queue or channel."""
        self.rtp_encoder.push(chunk)
        self.voice_encoder.push(chunk)

    def _update_voice_subscription(self) -> None:
        """Encode the 10 ms voice only while some page takes it."""
        wanted = any(v.voice is not None for v in self.viewers.values())
        if wanted and self._voice_subscription is None:
            self._voice_subscription = self.voice_encoder.subscribe(self._send_voice)
        elif not wanted and self._voice_subscription is not None:
            self._voice_subscription()
            self._voice_subscription = None

    def _send_voice(self, frame: OpusFrame) -> None:
        """Voice subscriber: one message built once, sent on every open ``voice`` channel
        (a channel with too much waiting skips the frame: unordered, no retransmits)."""
        message = frame.voice_message()
        for viewer, channel in self._open_channels("voice"):
            channel.send(message)
            viewer.voice_frames += 1

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
        for viewer, channel in self._open_channels("pose"):
            offset = viewer.track.rtp_minus_show if viewer.track is not None else None
            if offset is not None and (now - viewer.last_sync > SYNC_EVERY_S
                                       or offset != viewer.last_rtp_minus_show):
                channel.send(json.dumps({"sync": {"rtp_minus_show": offset,
                                                  "sample_rate": SAMPLE_RATE_HZ}},
                                        allow_nan=False))
                viewer.last_sync = now
                viewer.last_rtp_minus_show = offset
            channel.send(text)
            viewer.poses_sent += 1

    def _open_channels(self, kind: Literal["voice", "pose"]
                       ) -> Iterator[tuple[Viewer, RTCDataChannel]]:
        """Every viewer's open ``kind`` channel with room for one more message. A channel with
        more than its limit waiting (``VOICE_BUFFER_BYTES``, ``POSE_BUFFER_BYTES``) skips the
        message, counted in that viewer's ``voice_dropped`` or ``poses_dropped``."""
        voice = kind == "voice"
        limit_bytes = VOICE_BUFFER_BYTES if voice else POSE_BUFFER_BYTES
        for viewer in self.viewers.values():
            channel = viewer.voice if voice else viewer.channel
            if channel is None or channel.readyState != "open":
                continue
            if channel.bufferedAmount <= limit_bytes:
                yield viewer, channel
            elif voice:
                viewer.voice_dropped += 1
            else:
                viewer.poses_dropped += 1
