"""Sound card output: plays the pacer's chunks on the default output device."""

from __future__ import annotations

import logging
import queue
from typing import Any

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ, AudioChunk

log = logging.getLogger(__name__)


class SoundDeviceUnavailable(RuntimeError):
    """No sound output can be opened here (no PortAudio, no device)."""


class SoundDeviceSink:
    """A pacer sink feeding a PortAudio output stream through a small bounded buffer.

    The buffer holds a few chunks; when the device falls behind, the oldest chunk is
    dropped (the pacer is the clock, the card follows it).
    """

    def __init__(self, chunk_samples: int, buffer_chunks: int = 4) -> None:
        try:
            import sounddevice  # PortAudio is loaded here; absent on many servers
            self._stream: Any = sounddevice.OutputStream(
                samplerate=SAMPLE_RATE_HZ, channels=1, dtype="float32",
                blocksize=chunk_samples, callback=self._callback)
        except Exception as err:  # OSError (no PortAudio) or PortAudioError (no device)
            raise SoundDeviceUnavailable(f"no sound output: {err}") from err
        self._queue: queue.Queue[np.ndarray] = queue.Queue(buffer_chunks)
        self._stream.start()

    def __call__(self, chunk: AudioChunk) -> None:
        """Queue a chunk for the card, dropping the oldest when full."""
        try:
            self._queue.put_nowait(chunk.samples)
        except queue.Full:
            self._queue.get_nowait()
            self._queue.put_nowait(chunk.samples)

    def _callback(self, out: np.ndarray, frames: int, _time: Any, _status: Any) -> None:
        try:
            data = self._queue.get_nowait()
        except queue.Empty:
            out.fill(0.0)
            return
        out[:, 0] = data[:frames] if len(data) >= frames else np.pad(data, (0, frames - len(data)))

    def close(self) -> None:
        """Stop and close the output stream."""
        self._stream.stop()
        self._stream.close()
