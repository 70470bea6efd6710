"""The show's audio as an aiortc track: one per viewer, sending the show's shared Opus frames.

aiortc's sender sends whatever ``recv()`` returns as soon as it returns, and sends an
``av.Packet`` as is (``OpusEncoder.pack``: no encoder of its own, the RTP timestamp is the
sender's random origin + the packet's ``pts``). So this track encodes nothing and invents no
timing: a ``ShowOpusEncoder`` (one for the whole show) hands it each frame (20 ms; 10 ms for a
stage page) when its
last sample plays on the show clock, and ``recv()`` returns it. RTP timestamps are therefore
strictly increasing, one frame apart, identical payloads for every viewer. A viewer that
cannot keep up loses its own oldest frames (bounded queue); it never slows the pacer, the
encoder or other viewers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from singer.contracts import SAMPLE_RATE_HZ, AudioChunk
from streams.webrtc.opus_encoder import OpusFrame, ShowOpusEncoder

log = logging.getLogger(__name__)

FRAME_SAMPLES = 960
"""20 ms: the frame the RTP path sends (one packet per 20 ms, as browsers expect)."""
QUEUE_S = 0.5
"""At most this much audio waits for a slow viewer; older audio is dropped."""


class ShowAudioTrack(MediaStreamTrack):
    """An audio track sending the show's Opus frames (``recv()`` returns ``av.Packet``).

    ``encoder``: the show's shared 20 ms ``ShowOpusEncoder``. Without one the track owns a
    private encoder (``voip``, as aiortc's own) fed through ``push(chunk)``, for a sender
    that is alone (a publisher not yet on the shared encoder).
    """

    kind = "audio"

    def __init__(self, encoder: ShowOpusEncoder | None = None) -> None:
        super().__init__()
        self._own_encoder = encoder is None
        self.encoder = encoder or ShowOpusEncoder(FRAME_SAMPLES, 96_000, "voip")
        self._frames: asyncio.Queue[OpusFrame] = asyncio.Queue(
            max(1, int(QUEUE_S * SAMPLE_RATE_HZ) // self.encoder.frame_samples))
        self._unsubscribe: Callable[[], None] | None = self.encoder.subscribe(self._enqueue)
        self.first_sample: int | None = None
        self.frames_sent = 0
        self.frames_dropped = 0
        self.last_sent_sample: int | None = None
        """Show sample of the first *input* sample of the frame sent last (before the codec's
        delay, as aiortc's own encoder stamped it)."""
        self.last_heard_sample: int | None = None
        """Show sample heard at the first decoded sample of the frame sent last."""
        self.last_stream_sample: int | None = None
        self._stream_minus_show = 0
        self._rtp_origin: int | None = None
        self.sender: object | None = None  # the RTCRtpSender sending this track

    def push(self, chunk: AudioChunk) -> None:
        """Feed a track with its own encoder (a track on the shared encoder ignores it)."""
        if self._own_encoder and self.readyState == "live":
            self.encoder.push(chunk)

    def _enqueue(self, frame: OpusFrame) -> None:
        if self.readyState != "live":
            return
        if self._frames.full():
            self._frames.get_nowait()
            self.frames_dropped += 1
        self._frames.put_nowait(frame)

    @property
    def rtp_minus_show(self) -> int | None:
        """How RTP timestamps map to show samples heard: ``rtp = show + rtp_minus_show``
        (mod 2^32); ``None`` until the first packet went out."""
        if self._rtp_origin is None:
            return None
        return (self._rtp_origin + self._stream_minus_show) % (1 << 32)

    def _learn_rtp_origin(self) -> None:
        """aiortc starts RTP time at a random origin it keeps to itself; when ``recv`` is
        called again, the previous packet has just gone out with ``origin + pts``."""
        if self._rtp_origin is not None or self.last_stream_sample is None or not self.sender:
            return
        sent = getattr(self.sender, "_RTCRtpSender__rtp_timestamp", 0)
        if getattr(self.sender, "_RTCRtpSender__packet_count", 0):
            self._rtp_origin = (sent - self.last_stream_sample) % (1 << 32)

    async def recv(self) -> av.Packet:  # type: ignore[override]
        """The next Opus frame of the show, when it has been played on the show clock."""
        if self.readyState != "live":
            raise MediaStreamError
        self._learn_rtp_origin()
        frame = await self._frames.get()
        if self.first_sample is None:
            self.first_sample = frame.show_sample
        self.frames_sent += 1
        self.last_heard_sample = frame.show_sample
        self.last_sent_sample = frame.show_sample + (self.encoder.delay_samples or 0)
        self.last_stream_sample = frame.stream_sample
        self._stream_minus_show = frame.stream_minus_show
        return frame.packet

    def stop(self) -> None:
        """Stop sending and leave the encoder."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        super().stop()
