"""What broadcasters do to audio, reproduced offline to measure the watermark against it.

Codecs go through PyAV's FFmpeg (libopus, libmp3lame), the same libraries a broadcaster's
chain uses; every function takes and returns float mono at ``sample_rate``.
"""

from __future__ import annotations

from fractions import Fraction
from typing import cast

import numpy as np
from scipy.signal import resample_poly


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Polyphase resampling (what an SRC to 44.1 kHz does)."""
    ratio = Fraction(rate_out, rate_in)
    return resample_poly(audio.astype(np.float64), ratio.numerator, ratio.denominator)


def gain(audio: np.ndarray, db: float) -> np.ndarray:
    """A level change of ``db`` decibels."""
    return audio * 10.0 ** (db / 20.0)


def mix_under(audio: np.ndarray, other: np.ndarray, db: float = -6.0) -> np.ndarray:
    """``audio`` mixed ``db`` below ``other`` (RMS), ``other`` looped or cut to length."""
    reps = int(np.ceil(len(audio) / max(1, len(other))))
    bed = np.tile(other, reps)[:len(audio)]
    rms_a = np.sqrt(np.mean(audio ** 2)) + 1e-12
    rms_b = np.sqrt(np.mean(bed ** 2)) + 1e-12
    return bed + audio * (rms_b / rms_a) * 10.0 ** (db / 20.0)


def codec_round_trip(audio: np.ndarray, codec: str, bitrate: int,
                     sample_rate: int = 48_000) -> np.ndarray:
    """Encode with ``codec`` (``libopus``, ``libmp3lame``) at ``bitrate`` bit/s and decode."""
    import av
    from av.audio.codeccontext import AudioCodecContext

    enc = cast(AudioCodecContext, av.CodecContext.create(codec, "w"))
    enc.sample_rate = sample_rate
    enc.layout = "mono"
    enc.format = "s16"
    enc.bit_rate = bitrate
    enc.open()
    size = enc.frame_size or 960
    pcm = np.clip(np.asarray(audio, dtype=np.float64), -1.0, 1.0)
    pcm16 = np.round(pcm * 32767.0).astype(np.int16)
    pcm16 = np.concatenate([pcm16, np.zeros((-len(pcm16)) % size, np.int16)])
    dec = cast(AudioCodecContext,
               av.CodecContext.create(codec.removeprefix("lib").replace("mp3lame", "mp3"), "r"))
    dec.sample_rate = sample_rate
    dec.layout = "mono"
    out: list[np.ndarray] = []

    def take(packets: list[av.Packet]) -> None:
        for packet in packets:
            for frame in dec.decode(packet):
                out.append(frame.to_ndarray().astype(np.float64).reshape(-1)
                           / (32768.0 if frame.format.name.startswith("s16") else 1.0))

    for i in range(0, len(pcm16), size):
        frame = av.AudioFrame.from_ndarray(pcm16[None, i:i + size], format="s16",
                                           layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = i
        take(enc.encode(frame))
    take(enc.encode(None))
    return np.concatenate(out) if out else np.zeros(0)
