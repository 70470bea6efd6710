"""Recorder sinks: what was streamed, to ``DIR/audio.wav`` (from show sample 0) and
``DIR/pose.jsonl`` (the pose frames with the show samples the viewers got)."""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

import numpy as np
import soundfile as sf

from rigs.pose import PoseFrame
from singer.contracts import SAMPLE_RATE_HZ, AudioChunk

log = logging.getLogger(__name__)


class AudioRecorder:
    """A pacer sink that writes chunks to a 48 kHz float WAV from a writer thread.

    Chunks land at their show-sample position (a gap is written as silence), so WAV time is
    show time. ``close()`` flushes and finalises the file; it is complete after it returns.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = sf.SoundFile(self.path, "w", SAMPLE_RATE_HZ, 1, subtype="FLOAT")
        self._queue: queue.SimpleQueue[AudioChunk | None] = queue.SimpleQueue()
        self._written = 0
        self._thread = threading.Thread(target=self._run_writer, name="livesinger-recorder",
                                        daemon=True)
        self._thread.start()

    def __call__(self, chunk: AudioChunk) -> None:
        """Queue a chunk for writing (never blocks the pacer)."""
        self._queue.put(chunk)

    @property
    def samples_written(self) -> int:
        """How many samples are in the file so far."""
        return self._written

    def _run_writer(self) -> None:
        try:
            while (chunk := self._queue.get()) is not None:
                if chunk.t > self._written:
                    self._file.write(np.zeros(chunk.t - self._written, dtype=np.float32))
                    self._written = chunk.t
                skip = self._written - chunk.t
                if skip < len(chunk.samples):
                    self._file.write(chunk.samples[skip:])
                    self._written = chunk.end
        finally:
            self._file.close()

    def close(self) -> None:
        """Write everything queued and finalise the WAV header."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        log.info("recorded %.2f s to %s", self._written / SAMPLE_RATE_HZ, self.path)


class PoseRecorder:
    """A pose sink writing ``DIR/pose.jsonl``: one ``PoseFrame`` JSON per line, as streamed."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8", buffering=1 << 16)
        self.frames = 0
        self.rejected = 0
        """Frames not written because a number in them was not finite (not JSON)."""

    def __call__(self, frame: PoseFrame) -> None:
        """Append one frame (buffered; small); a frame that is not finite is dropped and
        counted, so every line stays strict JSON."""
        try:
            line = frame.to_json()
        except ValueError as err:
            self.rejected += 1
            log.warning("recorder: %s; dropped (%d so far)", err, self.rejected)
            return
        self._file.write(line + "\n")
        self.frames += 1

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()
