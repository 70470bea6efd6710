"""The performer's voice as a capture source: a WAV file, the sound card input, or audio
pushed from elsewhere (the ``/perform`` page's WebRTC microphone), all as 48 kHz chunks on
the show clock.

Every source yields ``AudioChunk``s whose ``t`` is the show sample at which that sound was
made, with ``latency_samples`` saying how much later the engine gets it (the card's reported
input latency; 0 for a file). A file is resampled once when opened; live input is resampled
as it arrives (PyAV's resampler, state kept across frames).
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator, Iterator
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ, AudioChunk

CHUNK_SAMPLES = 240
"""Chunks of 5 ms: the show's chunk and one pitch-tracker hop (``singer.follow.pitch``)."""
MAX_FILE_S = 3600.0
QUEUE_CHUNKS = SAMPLE_RATE_HZ // 2 // CHUNK_SAMPLES
"""Live input waits in a queue of 0.5 s; a reader slower than that loses the oldest chunks
(counted in ``dropped``), never the newest."""


class PerformerAudioError(ValueError):
    """The performer's audio cannot be opened; the message names the source and why."""


class WavFileSource:
    """A recording of the performer (rehearsal, tests), mixed to mono and resampled to 48 kHz.

    ``chunks()`` gives it as fast as asked; ``stream(clock)`` plays it in real time.
    """

    latency_samples = 0

    def __init__(self, path: str | Path, start_sample: int = 0) -> None:
        import soundfile as sf

        self.path = Path(path)
        self.start_sample = start_sample
        if not self.path.is_file():
            raise PerformerAudioError(f"performer audio {str(self.path)!r}: no such file")
        try:
            info = sf.info(str(self.path))
            if info.duration > MAX_FILE_S:
                raise PerformerAudioError(f"performer audio {str(self.path)!r}: "
                                          f"{info.duration:.0f} s is longer than "
                                          f"{MAX_FILE_S:.0f} s")
            data, rate = sf.read(str(self.path), dtype="float32", always_2d=True)
        except PerformerAudioError:
            raise
        except Exception as err:  # soundfile raises LibsndfileError, RuntimeError, ...
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise PerformerAudioError(f"performer audio {str(self.path)!r}: not a readable "
                                      f"sound file ({reason})") from None
        if len(data) == 0:
            raise PerformerAudioError(f"performer audio {str(self.path)!r}: no samples")
        mono = data.mean(axis=1)
        self.source_rate_hz = int(rate)
        self.samples = resample(mono, int(rate))

    def chunks(self, chunk_samples: int = CHUNK_SAMPLES) -> Iterator[AudioChunk]:
        """The whole file in chunks, as fast as they are taken."""
        for i in range(0, len(self.samples), chunk_samples):
            yield AudioChunk(self.start_sample + i, self.samples[i:i + chunk_samples])

    async def stream(self, chunk_samples: int = CHUNK_SAMPLES,
                     now_sample: Any = None) -> AsyncIterator[AudioChunk]:
        """The file played in real time: each chunk handed out once its last sample is due
        on ``now_sample()`` (the show clock; default: wall time from the first chunk)."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()

        def wall() -> int:
            return self.start_sample + int((loop.time() - t0) * SAMPLE_RATE_HZ)

        clock = now_sample or wall
        for chunk in self.chunks(chunk_samples):
            wait = (chunk.end - clock()) / SAMPLE_RATE_HZ
            if wait > 0:
                await asyncio.sleep(wait)
            yield chunk


class PushedAudioSource:
    """Audio pushed in by a receiver (a WebRTC microphone track): any rate and channel
    count, resampled to 48 kHz mono and queued for one reader."""

    def __init__(self, latency_samples: int = 0, name: str = "pushed audio") -> None:
        self.latency_samples = latency_samples
        self.name = name
        self._queue: queue.Queue[AudioChunk] = queue.Queue(QUEUE_CHUNKS)
        self._resamplers: dict[int, _StreamResampler] = {}
        self._next_sample: int | None = None
        self.dropped = 0
        self.closed = False

    def push(self, samples: np.ndarray, sample_rate_hz: int, capture_sample: int) -> None:
        """Samples (frames × channels, or mono) captured from show sample ``capture_sample``."""
        if not 8_000 <= sample_rate_hz <= 192_000:
            raise PerformerAudioError(f"{self.name}: sample rate {sample_rate_hz} Hz is out "
                                      "of 8000..192000")
        data = np.asarray(samples, dtype=np.float32)
        mono = data.mean(axis=1) if data.ndim == 2 else data.reshape(-1)
        if not np.all(np.isfinite(mono)):
            mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
        rs = self._resamplers.setdefault(sample_rate_hz, _StreamResampler(sample_rate_hz))
        out = rs.process(mono)
        if len(out) == 0:
            return
        t = capture_sample if self._next_sample is None else self._next_sample
        if abs(t - capture_sample) > SAMPLE_RATE_HZ // 10:  # a gap or restart: re-anchor
            t = capture_sample
        self._next_sample = t + len(out)
        chunk = AudioChunk(t, out)
        try:
            self._queue.put_nowait(chunk)
        except queue.Full:
            self._queue.get_nowait()
            self.dropped += 1
            self._queue.put_nowait(chunk)

    def read(self, timeout_s: float = 0.1) -> AudioChunk | None:
        """The oldest queued chunk, or None after ``timeout_s`` without one."""
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def close(self) -> None:
        """No more audio will come."""
        self.closed = True


class SoundCardSource(PushedAudioSource):
    """The sound card input (PortAudio through sounddevice), opened at 48 kHz mono.

    ``device`` is a PortAudio device index or name (None: the default input). The card's
    reported input latency becomes ``latency_samples``; chunks are stamped with the show
    sample they were captured at, from ``now_sample()`` at the callback minus that latency.
    """

    def __init__(self, device: int | str | None, now_sample: Any) -> None:
        try:
            import sounddevice
        except OSError as err:  # PortAudio missing
            raise PerformerAudioError(f"sound card input: PortAudio unavailable ({err})") \
                from None
        try:
            info = sounddevice.query_devices(device, "input")
            stream = sounddevice.InputStream(
                device=device, samplerate=SAMPLE_RATE_HZ, channels=1, dtype="float32",
                blocksize=CHUNK_SAMPLES, callback=self._callback)
        except Exception as err:  # PortAudioError, ValueError for unknown devices
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise PerformerAudioError(f"sound card input {device!r}: {reason}") from None
        latency = int(round(float(stream.latency) * SAMPLE_RATE_HZ))
        super().__init__(latency, f"sound card input {info.get('name', device)!r}")
        self._now = now_sample
        self._stream = stream
        self._stream.start()

    def _callback(self, data: np.ndarray, frames: int, _time: Any, status: Any) -> None:
        captured = int(self._now()) - frames - self.latency_samples
        self.push(data[:, 0].copy(), SAMPLE_RATE_HZ, captured)

    def close(self) -> None:
        """Stop and close the input stream."""
        super().close()
        self._stream.stop()
        self._stream.close()


class _StreamResampler:
    """Mono float32 at ``rate_hz`` → 48 kHz, keeping the filter state across calls."""

    def __init__(self, rate_hz: int) -> None:
        self.rate_hz = rate_hz
        self._resampler: Any = None
        if rate_hz != SAMPLE_RATE_HZ:
            import av

            self._resampler = av.AudioResampler(format="flt", layout="mono",
                                                rate=SAMPLE_RATE_HZ)
        self._pts = 0

    def process(self, mono: np.ndarray) -> np.ndarray:
        if self._resampler is None:
            return mono.astype(np.float32, copy=False)
        import av

        frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1).astype(np.float32), format="flt",
                                           layout="mono")
        frame.sample_rate = self.rate_hz
        frame.pts = self._pts
        self._pts += len(mono)
        parts = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def resample(mono: np.ndarray, rate_hz: int) -> np.ndarray:
    """A whole mono signal at ``rate_hz`` resampled to 48 kHz (polyphase, float32)."""
    if rate_hz == SAMPLE_RATE_HZ:
        return mono.astype(np.float32, copy=False)
    from scipy import signal

    g = gcd(rate_hz, SAMPLE_RATE_HZ)
    return signal.resample_poly(mono, SAMPLE_RATE_HZ // g, rate_hz // g).astype(np.float32)


def open_performer_audio(spec: str, now_sample: Any = None) -> WavFileSource | SoundCardSource:
    """``mic`` / ``mic:DEVICE`` (the sound card input) or a path to a sound file."""
    if spec == "mic" or spec.startswith("mic:"):
        device: int | str | None = spec[4:] or None
        if isinstance(device, str) and device.isdigit():
            device = int(device)
        if now_sample is None:
            raise PerformerAudioError("sound card input needs the show clock")
        return SoundCardSource(device, now_sample)
    return WavFileSource(spec)
