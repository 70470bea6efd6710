"""The show published into a Janus VideoRoom: its Opus audio and the pose on a data channel.

One publisher per ``--publish`` target: a WebRTC peer (aiortc) of Janus whose audio track
sends the show's shared 20 ms Opus frames (``streams.webrtc.opus_encoder``: the frames every direct
RTP viewer gets, encoded once), for every viewer behind that Janus. Janus going away (killed,
restarted, unreachable) only ends this peer: the publisher says so in its state, waits
(backoff doubling from 0.5 s to 10 s) and publishes again. Nothing it does can block the
pacer or touch the show's other outputs; its buffers are bounded like a viewer's.

Janus rewrites RTP timestamps per subscriber, so a subscriber cannot map its RTP time to show
samples as a direct viewer does (``rtp_minus_show``). Every pose message therefore also says
``"a"``: the show sample heard at the first decoded sample of the audio frame the publisher
had just sent when the message left (``ShowAudioTrack.last_heard_sample``: the encoder's own
delay already taken off). Data and audio ride the same bundled transport through Janus, so a
subscriber pairs ``a`` with the RTP timestamp of the newest audio packet it has received:
``rtp - a`` (mod 2^32) is its own RTP-to-show offset (take the median over many messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from rigs.pose import PoseFrame
from streams.janus.api import JanusError, JanusGone, JanusSession
from streams.janus.target import JanusTarget
from streams.webrtc.audio_track import FRAME_SAMPLES, ShowAudioTrack
from streams.webrtc.ice import ice_configuration
from streams.webrtc.opus_encoder import ShowOpusEncoder

log = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"
POSE_BUFFER_BYTES = 16 * 1024
"""A pose channel with more than this waiting to go out skips frames (as a viewer's)."""
ROOM_EXISTS = 427
CONNECT_TIMEOUT_S = 20.0


@dataclass(frozen=True, slots=True)
class Reconnect:
    """How long the publisher waits before trying Janus again."""

    first_s: float = 0.5
    """The wait after a first failure."""
    max_s: float = 10.0
    """The wait doubles with each failure in a row, up to this; it starts over after a
    successful publish."""


class JanusPublisher:
    """Publishes the show into ``target`` until cancelled, reconnecting when Janus goes away.

    ``encoder``: the show's 20 ms ``ShowOpusEncoder`` (the viewer hub's ``rtp_encoder``, or
    one of the show's own fed by the pacer where there is no hub); each publish subscribes a
    fresh track to it. ``push_pose`` is the pose stream's sink; ``run()`` is the long-lived
    task; ``stats()`` its state for ``/status`` and MQTT.
    """

    def __init__(self, target: JanusTarget, encoder: ShowOpusEncoder,
                 ice_servers: Sequence[str] = (), reconnect: Reconnect | None = None) -> None:
        if encoder.frame_samples != FRAME_SAMPLES:
            raise ValueError(f"a Janus publisher sends {FRAME_SAMPLES}-sample Opus frames, "
                             f"not {encoder.frame_samples}")
        self.target = target
        self.encoder = encoder
        self.ice_servers = tuple(ice_servers)
        self.reconnect = reconnect or Reconnect()
        self.state = "starting"
        """``starting``, ``connecting``, ``live`` or ``down`` (waiting to try again)."""
        self.last_error: str | None = None
        self.publishes = 0
        """Times the show went live in the room (1 + the republishes after a loss)."""
        self.publisher_id: int | None = None
        self.since = time.monotonic()
        self.poses_sent = 0
        self.poses_dropped = 0
        self._track: ShowAudioTrack | None = None
        self._channel: RTCDataChannel | None = None

    # ---- the pose stream's sink (never blocks) ------------------------------------------
    def push_pose(self, frame: PoseFrame) -> None:
        """Pose sink: the frame, with the show sample of the audio being sent (``"a"``)."""
        channel, track = self._channel, self._track
        if channel is None or track is None or channel.readyState != "open":
            return
        if track.last_heard_sample is None:
            return  # no audio went out yet: nothing to line the pose up with
        if channel.bufferedAmount > POSE_BUFFER_BYTES:
            self.poses_dropped += 1
            return
        try:
            text = frame.to_json()
        except ValueError:
            return  # the pose stream counts these; nobody gets a non-finite frame
        channel.send(f'{{"a":{track.last_heard_sample},{text[1:]}')
        self.poses_sent += 1

    def stats(self) -> dict[str, object]:
        """The publisher's state for ``/status`` and MQTT."""
        return {"target": str(self.target), "state": self.state,
                "for_s": round(time.monotonic() - self.since, 1),
                "publishes": self.publishes, "publisher_id": self.publisher_id,
                "last_error": self.last_error,
                "audio_frames": self._track.frames_sent if self._track else 0,
                "poses_sent": self.poses_sent, "poses_dropped": self.poses_dropped}

    # ---- the long-lived task ---------------------------------------------------------
    async def run(self) -> None:
        """Publish, and publish again after every loss, until cancelled."""
        delay = self.reconnect.first_s
        async with aiohttp.ClientSession() as http:
            while True:
                self._set_state("connecting")
                try:
                    await self._run_published(http)
                except* (JanusError, aiohttp.ClientError, OSError, TimeoutError) as group:
                    err = _first(group)
                    self.last_error = f"{type(err).__name__}: {err}"
                if self.state == "live":
                    delay = self.reconnect.first_s  # it had worked: try again soon
                self._set_state("down")
                log.warning("janus %s: %s; publishing again in %.1f s (the show goes on)",
                            self.target, self.last_error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect.max_s)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.since = time.monotonic()

    async def _run_published(self, http: aiohttp.ClientSession) -> None:
        session = JanusSession(http, self.target.api_url)
        pc = RTCPeerConnection(ice_configuration(self.ice_servers))
        track = ShowAudioTrack(self.encoder)
        failed = asyncio.Event()

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                failed.set()

        try:
            await session.create()
            async with asyncio.TaskGroup() as group:
                group.create_task(session.run())
                await self._publish(session, pc, track)
                await asyncio.wait_for(_connected(pc), CONNECT_TIMEOUT_S)
                self._track = track
                self.publishes += 1
                self._set_state("live")
                self.last_error = None
                log.info("janus %s: publishing as %s", self.target, self.publisher_id)
                await failed.wait()
                raise JanusGone(f"peer connection {pc.connectionState}")
        finally:
            self._track = self._channel = None
            track.stop()
            await pc.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(session.destroy(), 2.0)

    async def _publish(self, session: JanusSession, pc: RTCPeerConnection,
                       track: ShowAudioTrack) -> None:
        target = self.target
        handle = await session.attach(VIDEOROOM)
        create: dict[str, object] = {"request": "create", "room": target.room,
                                     "publishers": 4, "audiocodec": "opus",
                                     "notify_joining": False}
        if target.secret:
            create["secret"] = target.secret
        if target.pin:
            create["pin"] = target.pin
        try:
            await handle.request(create)
        except JanusError as err:
            if err.code != ROOM_EXISTS:
                raise
        # the channel first: Janus wants it in the offer (aiortc then opens it itself)
        channel = pc.createDataChannel("pose")
        pc.addTransceiver(track, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())  # gathers: no trickle
        join: dict[str, object] = {"request": "joinandconfigure", "ptype": "publisher",
                                   "room": target.room, "display": target.display}
        if target.pin:
            join["pin"] = target.pin
        data, jsep = await handle.message(join, {"type": "offer", "trickle": False,
                                                 "sdp": pc.localDescription.sdp})
        if jsep is None or jsep.get("type") != "answer":
            raise JanusError(f"janus {target}: no SDP answer to the publisher's offer")
        self.publisher_id = int(data.get("id", 0)) or None
        await pc.setRemoteDescription(RTCSessionDescription(jsep["sdp"], "answer"))
        self._channel = channel


async def _connected(pc: RTCPeerConnection) -> None:
    while pc.connectionState != "connected":
        if pc.connectionState in ("failed", "closed"):
            raise JanusGone(f"peer connection {pc.connectionState} before it connected")
        await asyncio.sleep(0.05)


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    err: BaseException = group
    while isinstance(err, BaseExceptionGroup):
        err = err.exceptions[0]
    return err

