"""Reading backing audio: any file soundfile (libsndfile) or PyAV decodes, any rate, made
mono float32 at the show rate once, at load.

Resampling is scipy's polyphase resampler (``scipy.signal.resample_poly``, BSD): it is
exact for the rational ratios audio rates have (44.1k→48k is 160/147), its anti-alias filter
is a Kaiser-windowed FIR (linear phase, its delay compensated by scipy, so sample 0 stays at
time 0), and scipy is already a dependency. ``soxr`` would be faster but is LGPL, and speed
does not matter for a one-time resample off the audio path.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ

MAX_BACKING_S = 3600.0
"""Longest backing file accepted (an hour: 690 MB of float32 at 48 kHz)."""


class AudioFileError(ValueError):
    """A backing file that cannot be used; the message names the file and the reason."""


def load_mono(path: str | Path, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """The file at ``path`` as mono float32 at ``sample_rate_hz`` (channels averaged).

    WAV, FLAC and Ogg (Vorbis, Opus) through soundfile; anything else PyAV decodes (mp3,
    m4a, ...) through PyAV. Raises ``AudioFileError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: backing file not found")
    try:
        audio, rate = _read_soundfile(path)
    except _NotForSoundfile:
        audio, rate = _read_av(path)
    if audio.size == 0:
        raise AudioFileError(f"{path}: no audio in the file")
    if len(audio) > MAX_BACKING_S * rate:
        raise AudioFileError(f"{path}: {len(audio) / rate:.0f} s long, at most "
                             f"{MAX_BACKING_S:.0f} s")
    if not np.all(np.isfinite(audio)):
        raise AudioFileError(f"{path}: the audio holds non-finite samples")
    return resample(audio, rate, sample_rate_hz)


def resample(audio: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """``audio`` (mono) resampled from ``from_hz`` to ``to_hz`` by polyphase filtering;
    float32 out."""
    if from_hz == to_hz:
        return np.ascontiguousarray(audio, dtype=np.float32)
    from scipy.signal import resample_poly

    ratio = Fraction(to_hz, from_hz)
    out = resample_poly(audio.astype(np.float64), ratio.numerator, ratio.denominator)
    return out.astype(np.float32)


class _NotForSoundfile(Exception):
    pass


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as err:
        if "format" in str(err).lower() or "recogni" in str(err).lower():
            raise _NotForSoundfile from None
        raise AudioFileError(f"{path}: cannot read: {err}") from None
    except RuntimeError:
        raise _NotForSoundfile from None
    return data.mean(axis=1), int(rate)


def _read_av(path: Path) -> tuple[np.ndarray, int]:
    import av

    try:
        with av.open(str(path)) as container:
            streams = container.streams.audio
            if not streams:
                raise AudioFileError(f"{path}: no audio stream")
            stream = streams[0]
            rate = int(stream.rate or 0)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            parts: list[np.ndarray] = []
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
    except AudioFileError:
        raise
    except (av.FFmpegError, ValueError) as err:
        raise AudioFileError(f"{path}: not an audio file soundfile or PyAV can read: "
                             f"{' '.join(str(err).split())}") from None
    if rate <= 0:
        raise AudioFileError(f"{path}: the audio stream has no sample rate")
    return (np.concatenate(parts) if parts else np.zeros(0, np.float32)), rate
