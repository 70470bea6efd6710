"""The show's voice encoded to Opus once, for every viewer and publisher that sends it.

A ``ShowOpusEncoder`` is a pacer sink: it cuts the chunks it is handed into frames of
``frame_samples``, encodes each frame once (PyAV's libopus) as soon as its last sample has
been played on the show clock, and hands the same ``OpusFrame`` to every subscriber. The
subscribers (one ``ShowAudioTrack`` per RTP viewer, one data-channel voice per stage page, a
Janus publisher) only queue it and send its bytes: a viewer costs the show SRTP and socket
work, never an encoder.

Timestamps: ``stream_sample`` (the frame's RTP-style timestamp, 48 kHz) is strictly
increasing, one frame apart for contiguous audio and further apart across a gap in the show
(chunks the pacer skipped), never repeated and never going back — even when the show's
chunks do (a new pacer starting over): such a jump only changes the mapping to the show
(``show_sample = stream_sample - stream_minus_show``), which every frame carries.
``show_sample`` is the show sample *heard* at the frame's first decoded sample: the codec's
own lookahead (``delay_samples``) is already taken off.
"""

from __future__ import annotations

import fractions
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np

from singer.contracts import SAMPLE_RATE_HZ, AudioChunk

log = logging.getLogger(__name__)

TIME_BASE = fractions.Fraction(1, SAMPLE_RATE_HZ)
FRAME_DURATIONS_SAMPLES = (120, 240, 480, 960, 1920, 2880)
"""The frame sizes libopus encodes: 2.5, 5, 10, 20, 40 and 60 ms at 48 kHz."""
VOICE_HEADER = struct.Struct("<BBHqq")
"""A voice message on a data channel: kind (1: Opus), channels, frame samples,
stream sample, show sample (little-endian), then the Opus packet."""
VOICE_KIND_OPUS = 1


@dataclass(frozen=True, slots=True)
class OpusFrame:
    """One encoded frame of the show, shared (read-only) by every subscriber."""

    packet: av.Packet
    """The Opus packet; ``pts`` is ``stream_sample`` in ``1/48000`` (aiortc sends it as is)."""
    stream_sample: int
    """Strictly increasing timestamp of the frame's first sample (48 kHz)."""
    show_sample: int
    """Show sample heard at the frame's first decoded sample (codec delay taken off)."""
    frame_samples: int

    @property
    def stream_minus_show(self) -> int:
        """``stream_sample - show_sample``: changes only when the show's chunks jump back."""
        return self.stream_sample - self.show_sample

    def voice_message(self) -> bytes:
        """This frame as a data-channel voice message (``VOICE_HEADER`` + the packet)."""
        return VOICE_HEADER.pack(VOICE_KIND_OPUS, 1, self.frame_samples, self.stream_sample,
                                 self.show_sample) + bytes(self.packet)


Subscriber = Callable[[OpusFrame], None]
"""Receives every frame as it is encoded; must not block (queue it and return)."""


class ShowOpusEncoder:
    """Pacer sink encoding the show once into ``frame_samples`` Opus frames for subscribers.

    ``application``: libopus's mode; ``lowdelay`` (the default: 2.5 ms of codec delay) or
    ``voip``/``audio`` (6.5 ms). Frames are only encoded while someone subscribes.
    """

    def __init__(self, frame_samples: int = 960, bitrate_bps: int = 64_000,
                 application: str = "lowdelay") -> None:
        if frame_samples not in FRAME_DURATIONS_SAMPLES:
            raise ValueError(f"an Opus frame is one of {FRAME_DURATIONS_SAMPLES} samples at "
                             f"48 kHz, not {frame_samples}")
        if application not in ("lowdelay", "voip", "audio"):
            raise ValueError(f"Opus application must be lowdelay, voip or audio, "
                             f"not {application!r}")
        self.frame_samples = frame_samples
        self.bitrate_bps = bitrate_bps
        self.application = application
        self._codec = self._new_codec()
        self._subscribers: list[Subscriber] = []
        self._pending = np.zeros(0, dtype=np.float32)
        self._pending_start = 0  # show sample of _pending[0]
        self._next_stream: int | None = None  # stream sample of the next frame
        self._stream_minus_show = 0
        self._input_pts = 0  # the codec's own input counter
        self.delay_samples: int | None = None
        """libopus's lookahead (known after the first frame): 120 for lowdelay, 312 else."""
        self.frames_encoded = 0
        self.jumps = 0
        """Times the show's chunks went back or left a gap (the stream mapping moved on)."""

    def _new_codec(self) -> av.AudioCodecContext:
        codec = av.AudioCodecContext.create("libopus", "w")
        codec.sample_rate = SAMPLE_RATE_HZ
        codec.format = "s16"
        codec.layout = "mono"
        codec.bit_rate = self.bitrate_bps
        codec.time_base = TIME_BASE
        codec.options = {"application": self.application,
                         "frame_duration": str(1000 * self.frame_samples / SAMPLE_RATE_HZ
                                               ).removesuffix(".0")}
        return codec

    # ---- subscribers --------------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Hand every frame from now on to ``subscriber``; returns the unsubscribe call."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)
        return unsubscribe

    @property
    def subscribers(self) -> int:
        """How many subscribers the frames go to."""
        return len(self._subscribers)

    # ---- the pacer sink -----------------------------------------------------------------
    def push(self, chunk: AudioChunk) -> None:
        """Pacer sink: called at the chunk's play time; encodes each frame it completes."""
        if not self._subscribers:
            self._pending = np.zeros(0, dtype=np.float32)
            return
        if self._pending.size and self._pending_start + self._pending.size != chunk.t:
            self._pending = np.zeros(0, dtype=np.float32)  # a jump: the partial frame goes
        if self._pending.size == 0:
            self._pending_start = chunk.t
        self._pending = np.concatenate([self._pending, chunk.samples])
        n = self.frame_samples
        while self._pending.size >= n:
            samples, self._pending = self._pending[:n], self._pending[n:]
            self._encode(samples, self._pending_start)
            self._pending_start += n

    def _encode(self, samples: np.ndarray, show_start: int) -> None:
        n = self.frame_samples
        if self._next_stream is None:
            self._stream_minus_show = -show_start  # the stream starts at 0
        elif show_start + self._stream_minus_show != self._next_stream:
            self.jumps += 1
            # forward (a gap in the show): the stream skips as far; back: it carries on
            skip = max(0, show_start + self._stream_minus_show - self._next_stream)
            self._stream_minus_show = self._next_stream + skip - show_start
        stream = show_start + self._stream_minus_show
        pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE_HZ
        frame.pts = self._input_pts
        frame.time_base = TIME_BASE
        packets = self._codec.encode(frame)
        self._next_stream = stream + n
        for packet in packets:
            if self.delay_samples is None:
                self.delay_samples = self._input_pts - int(packet.pts or 0)
            # the packet's sound starts delay_samples before the input frame it came with
            heard = show_start - (self.delay_samples or 0)
            packet.pts = stream
            packet.time_base = TIME_BASE
            out = OpusFrame(packet, stream, heard, n)
            self.frames_encoded += 1
            for subscriber in list(self._subscribers):
                try:
                    subscriber(out)
                except Exception:  # one broken subscriber never stops the others
                    log.exception("opus subscriber %r failed; removing it", subscriber)
                    if subscriber in self._subscribers:
                        self._subscribers.remove(subscriber)
        self._input_pts += n
